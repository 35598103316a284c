"""Per-group bit windows, applied inside the forward pass (DESIGN §4-§5).

For every pipeline (a :class:`~workloads.policies.PolicySpec`) one forward pass runs in
which each listed conv/linear layer is replaced (by a forward hook returning the new
output) by: quantize the input with its static scale → im2col (``F.unfold``) → per row
block, the policy picks each activation group's window → :func:`apply_window` →
dequantize → weight matrix × modified im2col (+ bias). Quantization and window errors
therefore propagate to later layers, and the logits give the pipeline's accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workloads.errors import WorkloadError
from workloads.policies import PolicySpec, apply_window, resolve_policy
from workloads.quantize import QuantConfig, quantize

#: im2col elements processed at once (bounds memory: ~8 bytes each, a few copies)
CHUNK_ELEMENTS = 1 << 22


@dataclass
class LayerSpec:
    """A layer whose input is grouped: module name, kind, row blocks, input signedness."""

    module: str
    kind: Literal["conv", "linear"]
    row_ranges: list[tuple[int, int]]
    signed_input: bool = False


@dataclass
class LayerPrecision:
    """Bit windows of one layer's activation groups and their statistics.

    ``planes``/``low``: uint8 ``(images, n_row_blocks, positions)`` in the order of the
    LayerSpec's ``row_ranges``; ``hist[b]`` = groups streaming b planes; ``mean_bits`` =
    mean planes per group; ``saturated_fraction`` = nonzero im2col values clipped by the
    window's top; ``zero_group_fraction`` = all-zero groups; ``rel_rms_error`` =
    ‖windowed − static codes‖ / ‖static codes‖ over im2col values.
    """

    planes: np.ndarray
    low: np.ndarray
    hist: np.ndarray
    mean_bits: float
    saturated_fraction: float
    zero_group_fraction: float
    rel_rms_error: float


@dataclass
class PipelinePrecision:
    """One pipeline's policy, per-layer windows and (optionally) accuracy and logits."""

    policy: PolicySpec
    layers: dict[str, LayerPrecision]
    accuracy: float | None = None
    logits: torch.Tensor | None = None


@dataclass
class _Acc:
    """Per-layer accumulator over the batches of one forward pass."""

    planes: list[np.ndarray] = field(default_factory=list)
    low: list[np.ndarray] = field(default_factory=list)
    sq_err: float = 0.0
    sq_ref: float = 0.0
    saturated: int = 0
    nonzero: int = 0
    zero_groups: int = 0
    groups: int = 0


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_geometry(m: nn.Conv2d, name: str) -> tuple[tuple[int, int], ...]:
    if m.padding_mode != "zeros":
        raise WorkloadError(f"layer {name}: padding_mode {m.padding_mode!r} is not supported")
    k, s, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            p = (0, 0)
        else:
            tot = [d[i] * (k[i] - 1) for i in range(2)]
            if any(t % 2 for t in tot):
                raise WorkloadError(f"layer {name}: asymmetric 'same' padding is not supported")
            p = (tot[0] // 2, tot[1] // 2)
    else:
        p = _pair(m.padding)
    return k, s, p, d


def _check_ranges(name: str, ranges: list[tuple[int, int]], n_rows: int) -> list[tuple[int, int]]:
    """Distinct row ranges must partition [0, n_rows); exact duplicates are allowed."""
    distinct = sorted(set((int(a), int(b)) for a, b in ranges))
    pos = 0
    for a, b in distinct:
        if a != pos or b <= a:
            raise WorkloadError(
                f"layer {name}: row ranges must partition the {n_rows} im2col rows into "
                f"non-empty, non-overlapping [start, end) blocks (got {list(ranges)})")
        pos = b
    if pos != n_rows:
        raise WorkloadError(f"layer {name}: row ranges cover {pos} of {n_rows} im2col rows "
                            f"(got {list(ranges)})")
    return distinct


class _LayerRunner:
    """Replacement computation of one layer under one policy."""

    def __init__(self, name: str, spec: LayerSpec, module: nn.Module, scale: float,
                 qcfg: QuantConfig, pspec: PolicySpec) -> None:
        self.name, self.spec, self.module = name, spec, module
        self.scale, self.bits, self.signed = float(scale), qcfg.bits, bool(spec.signed_input)
        self.policy = resolve_policy(pspec)
        self.params = pspec.params_for(name, spec.module)
        self.acc = _Acc()
        self.calls = 0
        if spec.kind == "conv":
            if not isinstance(module, nn.Conv2d):
                raise WorkloadError(f"layer {name}: module {spec.module!r} is "
                                    f"{type(module).__name__}, expected Conv2d")
            self.geom = _conv_geometry(module, name)
            n_rows = module.in_channels * math.prod(_pair(module.kernel_size))
        elif spec.kind == "linear":
            if not isinstance(module, nn.Linear):
                raise WorkloadError(f"layer {name}: module {spec.module!r} is "
                                    f"{type(module).__name__}, expected Linear")
            n_rows = module.in_features
        else:
            raise WorkloadError(f"layer {name}: unknown kind {spec.kind!r}")
        self.n_rows = n_rows
        self.distinct = _check_ranges(name, list(spec.row_ranges), n_rows)
        self.block_of = [self.distinct.index((int(a), int(b))) for a, b in spec.row_ranges]

    # -- policy over a (n, rows, P) slab of codes ------------------------------------
    def _window_block(self, cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor]:
        """Apply the policy to codes (n, rows, P) → windowed codes (same shape), low, planes
        (n, P)."""
        n, rows, p = cols.shape
        groups = cols.transpose(1, 2).reshape(n * p, rows)
        low, planes = self.policy(groups, signed=self.signed, bits=self.bits, **self.params)
        low, planes = self._check(low, planes, n * p)
        a = self.acc
        nz = groups != 0
        a.nonzero += int(nz.sum())
        a.zero_groups += int((~nz.any(dim=1)).sum())
        a.sq_ref += float((groups * groups).sum())  # exact in int64 for B <= 16
        if bool((low == 0).all()) and bool((planes == self.bits).all()):
            win = groups  # the static window: identity on in-range codes
        else:
            win = apply_window(groups, low, planes, self.signed, self.bits)
            diff = win - groups
            a.sq_err += float((diff * diff).sum())
            # clipped by the window's top: error beyond the half step of rounding
            half = ((torch.ones_like(low) << low) >> 1)[:, None]
            a.saturated += int((diff.abs() > half).sum())
        a.groups += n * p
        return (win.reshape(n, p, rows).transpose(1, 2), low.reshape(n, p),
                planes.reshape(n, p))

    def _check(self, low: Any, planes: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.as_tensor(low).to(torch.int64).reshape(-1)
        planes = torch.as_tensor(planes).to(torch.int64).reshape(-1)
        if low.numel() != n or planes.numel() != n:
            raise WorkloadError(f"layer {self.name}: policy returned {low.numel()}/"
                                f"{planes.numel()} windows for {n} groups")
        bad = (low < 0) | (planes < 0) | (low + planes > self.bits)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise WorkloadError(
                f"layer {self.name}: policy window low={int(low[i])}, planes={int(planes[i])} "
                f"outside the {self.bits} static planes (need 0 ≤ low, low+planes ≤ B)")
        return low, planes

    # -- the replacement forward ---------------------------------------------------------
    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> torch.Tensor:
        self.calls += 1
        x = args[0]
        with torch.no_grad():
            if self.spec.kind == "conv":
                return self._conv(x)
            return self._linear(x)

    def _process(self, codes_cols: torch.Tensor) -> tuple[torch.Tensor, np.ndarray,
                                                          np.ndarray]:
        """Window a float32 (n, L, P) code slab block by block, in place; returns it and
        planes/low (n, n_blocks, P) uint8 in row_ranges order."""
        n, _, p = codes_cols.shape
        out = codes_cols
        planes = np.zeros((n, len(self.distinct), p), dtype=np.uint8)
        low = np.zeros_like(planes)
        for bi, (a, b) in enumerate(self.distinct):
            step = max(1, CHUNK_ELEMENTS // max(1, n * (b - a)))
            for s in range(0, p, step):
                slab = codes_cols[:, a:b, s:s + step].to(torch.int64)
                win, lo, pl = self._window_block(slab)
                out[:, a:b, s:s + step] = win.to(torch.float32)
                planes[:, bi, s:s + step] = pl.numpy().astype(np.uint8)
                low[:, bi, s:s + step] = lo.numpy().astype(np.uint8)
        idx = self.block_of
        self.acc.planes.append(planes[:, idx])
        self.acc.low.append(low[:, idx])
        return out, planes, low

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        m: nn.Conv2d = self.module  # type: ignore[assignment]
        k, s, p, d = self.geom
        n_img = x.shape[0]
        g = m.groups
        cout = m.out_channels
        w = m.weight.detach().float().reshape(g, cout // g, -1)
        outs = []
        ho = (x.shape[2] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        wo = (x.shape[3] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
        per_img = self.n_rows * ho * wo
        chunk = max(1, CHUNK_ELEMENTS // max(1, per_img))
        for i in range(0, n_img, chunk):
            codes = quantize(x[i:i + chunk], self.scale, self.bits, self.signed)
            cols = F.unfold(codes.to(torch.float32), k, dilation=d, padding=p, stride=s)
            win, _, _ = self._process(cols)
            n = win.shape[0]
            win = win.mul_(self.scale).reshape(n, g, self.n_rows // g, -1)
            y = torch.matmul(w, win).reshape(n, cout, ho, wo)
            if m.bias is not None:
                y = y + m.bias.detach().float().reshape(1, -1, 1, 1)
            outs.append(y)
        return torch.cat(outs).to(x.dtype)

    def _linear(self, x: torch.Tensor) -> torch.Tensor:
        m: nn.Linear = self.module  # type: ignore[assignment]
        lead = x.shape[:-1]
        n_img = x.shape[0] if x.dim() > 1 else 1
        xs = x.reshape(n_img, -1, m.in_features)  # (n, positions, F)
        w = m.weight.detach().float()
        outs = []
        per_img = xs.shape[1] * m.in_features
        chunk = max(1, CHUNK_ELEMENTS // max(1, per_img))
        for i in range(0, n_img, chunk):
            codes = quantize(xs[i:i + chunk], self.scale, self.bits, self.signed)
            win, _, _ = self._process(codes.transpose(1, 2).to(torch.float32))
            y = (win * self.scale).transpose(1, 2) @ w.T
            if m.bias is not None:
                y = y + m.bias.detach().float()
            outs.append(y)
        return torch.cat(outs).reshape(*lead, m.out_features).to(x.dtype)

    def result(self) -> LayerPrecision:
        a = self.acc
        if not a.planes:
            raise WorkloadError(f"layer {self.name}: module {self.spec.module!r} was never "
                                "called in the forward pass")
        planes = np.concatenate(a.planes)
        low = np.concatenate(a.low)
        hist = np.bincount(planes.reshape(-1), minlength=self.bits + 1)[: self.bits + 1]
        return LayerPrecision(
            planes=planes, low=low, hist=hist.astype(np.int64),
            mean_bits=float(planes.mean()) if planes.size else 0.0,
            saturated_fraction=a.saturated / a.nonzero if a.nonzero else 0.0,
            zero_group_fraction=a.zero_groups / a.groups if a.groups else 0.0,
            rel_rms_error=math.sqrt(a.sq_err / a.sq_ref) if a.sq_ref > 0 else 0.0)


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return float((logits.argmax(dim=-1) == labels.to(logits.device)).float().mean() * 100)


@torch.no_grad()
def float_accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                   batch_size: int = 64) -> float:
    """Top-1 accuracy (%) of the unquantized model."""
    model.eval()
    logits = torch.cat([model(inputs[i:i + batch_size])
                        for i in range(0, len(inputs), batch_size)])
    return top1(logits, labels)


def _check_overrides(layers: Mapping[str, LayerSpec], pname: str, pspec: PolicySpec) -> None:
    known = set(layers) | {s.module for s in layers.values()}
    unknown = sorted(set(pspec.layers) - known)
    if unknown:
        raise WorkloadError(
            f"pipeline {pname}: layers: unknown layer(s) {', '.join(unknown)}; known: "
            f"{', '.join(layers)}")


@torch.no_grad()
def run_pipeline(model: nn.Module, layers: Mapping[str, LayerSpec], inputs: torch.Tensor,
                 scales: Mapping[str, float], qcfg: QuantConfig, pspec: PolicySpec,
                 labels: torch.Tensor | None = None, name: str = "pipeline",
                 batch_size: int = 64) -> PipelinePrecision:
    """One pipeline: forward pass with every listed layer windowed by *pspec*."""
    _check_overrides(layers, name, pspec)
    model.eval()
    runners: dict[str, _LayerRunner] = {}
    handles = []
    try:
        for lname, spec in layers.items():
            try:
                mod = model.get_submodule(spec.module)
            except AttributeError:
                raise WorkloadError(f"layer {lname}: no submodule named {spec.module!r}") from None
            if lname not in scales:
                raise WorkloadError(f"layer {lname}: no calibrated scale")
            r = _LayerRunner(lname, spec, mod, scales[lname], qcfg, pspec)
            runners[lname] = r
            handles.append(mod.register_forward_hook(r))
        outs = []
        for i in range(0, len(inputs), batch_size):
            before = {n: r.calls for n, r in runners.items()}
            outs.append(model(inputs[i:i + batch_size]))
            twice = [n for n, r in runners.items() if r.calls - before[n] > 1]
            if twice:
                raise WorkloadError(f"layer(s) {', '.join(twice)} called more than once per "
                                    "forward pass (shared modules are not supported)")
    finally:
        for h in handles:
            h.remove()
    logits = torch.cat(outs) if outs else None
    acc = top1(logits, labels) if labels is not None and logits is not None else None
    return PipelinePrecision(policy=pspec, layers={n: r.result() for n, r in runners.items()},
                             accuracy=acc, logits=logits)


def compute_precision(model: nn.Module, layers: Mapping[str, LayerSpec], inputs: torch.Tensor,
                      scales: Mapping[str, float], qcfg: QuantConfig,
                      pipelines: Mapping[str, PolicySpec], labels: torch.Tensor | None = None,
                      batch_size: int = 64) -> dict[str, PipelinePrecision]:
    """Per pipeline: windows of every activation group of every listed layer, one forward
    pass each (errors propagate), accuracy when *labels* are given."""
    return {pname: run_pipeline(model, layers, inputs, scales, qcfg, pspec, labels, pname,
                                batch_size)
            for pname, pspec in pipelines.items()}
