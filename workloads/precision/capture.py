"""Per-group bit windows, applied inside the forward pass (DESIGN §4-§5).

For every pipeline (a :class:`~workloads.precision.policies.PolicySpec`) each listed conv/linear
layer's forward is replaced by: quantize the input with its static scale → per row block,
the policy picks each activation group's window → the windowed codes are dequantized and
multiplied by the layer's weights (quantized to the chip's weight bits when asked) → bias.
Quantization and window errors therefore propagate to later layers, and the logits give
the pipeline's accuracy.

Two ways to the same windows (docs/precision.md §4):

* built-in policies (static, zero-skip, msb-trim, redy) work on exact integer group
  statistics (:class:`~workloads.precision.policies.GroupStats`). For a conv whose row blocks hold
  whole input channels (the mapper's kernel-aligned blocks) these come from channel
  reductions and window sums/max-pools of the code maps, without im2col; the layer output
  is one ``conv2d`` of the dequantized codes, plus, for a lossy policy, a correction
  ``W_block · (windowed − codes)`` over the im2col columns of the groups whose window
  changes a code. All lossless pipelines see the same activations and share one pass.
* custom (dotted-path) policies, and blocks that split a kernel window, go through
  im2col (``F.unfold``) and the policy on the codes of every group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workloads.errors import WorkloadError
from workloads.precision.crossbar import CrossbarLayer, CrossbarModel
from workloads.precision.policies import (
    BUILTIN_STATS,
    LOSSLESS,
    GroupStats,
    PolicySpec,
    apply_window,
    msb_trim_stats,
    resolve_policy,
    window_limits,
)
from workloads.precision.quantize import QuantConfig, qmax, quantize_weight_codes
from workloads.precision.records import LayerPrecision, LayerSpec

#: im2col elements processed at once (bounds memory: ~8 bytes each, a few copies)
CHUNK_ELEMENTS = 1 << 22


@dataclass
class _Acc:
    """Per-layer, per-pipeline accumulator over the batches of one forward pass."""

    planes: list[np.ndarray] = field(default_factory=list)
    low: list[np.ndarray] = field(default_factory=list)
    image_planes: list[np.ndarray] = field(default_factory=list)
    image_zero: list[np.ndarray] = field(default_factory=list)
    image_msb: list[np.ndarray] = field(default_factory=list)
    hist: np.ndarray | None = None
    sq_err: float = 0.0
    sq_ref: float = 0.0
    saturated: int = 0
    nonzero: int = 0
    zero_groups: int = 0
    groups: int = 0
    plane_sum: int = 0


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


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1).to(torch.int64)


@dataclass
class _Consumer:
    """One pipeline served by a layer runner."""

    name: str
    spec: PolicySpec
    params: dict[str, Any]
    acc: _Acc = field(default_factory=_Acc)


class LayerRunner:
    """Replacement forward of one layer, serving one lossy pipeline or several lossless ones."""

    def __init__(self, name: str, spec: LayerSpec, module: nn.Module, scale: float,
                 qcfg: QuantConfig, consumers: list[tuple[str, PolicySpec]],
                 keep_images: int | None, weight_bits: int | None,
                 crossbar: CrossbarModel | None = None, collect: bool = False) -> None:
        self.name, self.spec, self.module = name, spec, module
        self.scale, self.bits, self.signed = float(scale), qcfg.bits, bool(spec.signed_input)
        self.keep = keep_images
        self.seen = 0
        self.calls = 0
        self.consumers = [_Consumer(n, ps, ps.params_for(name, spec.module)) for n, ps in consumers]
        first = consumers[0][1]
        self.custom = first.policy not in BUILTIN_STATS
        self.lossless = all(ps.policy in LOSSLESS for _, ps in consumers)
        if len(consumers) > 1 and not self.lossless:
            raise ValueError("only lossless built-in pipelines can share a pass")
        self.codes_policy = resolve_policy(first) if self.custom else None
        if spec.kind == "conv":
            if not isinstance(module, nn.Conv2d):
                raise WorkloadError(f"layer {name}: module {spec.module!r} is "
                                    f"{type(module).__name__}, expected Conv2d")
            self.geom = _conv_geometry(module, name)
            self.khkw = math.prod(_pair(module.kernel_size))
            n_rows = module.in_channels * self.khkw
        elif spec.kind == "linear":
            if not isinstance(module, nn.Linear):
                raise WorkloadError(f"layer {name}: module {spec.module!r} is "
                                    f"{type(module).__name__}, expected Linear")
            self.khkw = 1
            n_rows = module.in_features
        else:
            raise WorkloadError(f"layer {name}: unknown kind {spec.kind!r}")
        self.n_rows = n_rows
        self.distinct = _check_ranges(name, list(spec.row_ranges), n_rows)
        self.block_of = [self.distinct.index((int(a), int(b))) for a, b in spec.row_ranges]
        self.aligned = all(a % self.khkw == 0 and b % self.khkw == 0 for a, b in self.distinct)
        w = module.weight.detach().float()
        self.xlayer: CrossbarLayer | None = None
        if weight_bits:
            w_codes, w_scale = quantize_weight_codes(w, weight_bits)
            # in place unless the exact mode keeps the codes: one layer-sized buffer, not
            # two (VGG-16's first dense layer is 411 MB; docs/benchmarks.md, peak memory)
            self.weight = w_codes * w_scale if crossbar is not None else w_codes.mul_(w_scale)
        else:
            self.weight = w
        self.bias = module.bias.detach().float() if module.bias is not None else None
        self._w_full: torch.Tensor | None = None
        if crossbar is not None:
            if weight_bits != crossbar.weight_bits:
                raise ValueError(f"layer {name}: the exact crossbar mode needs the weights "
                                 f"quantized to the crossbar's {crossbar.weight_bits} bits "
                                 f"(got weight_bits={weight_bits})")
            if len(consumers) > 1:
                raise ValueError("the exact crossbar mode serves one pipeline per pass")
            self.w_scale = w_scale.reshape(-1).to(torch.float64)
            self.xlayer = CrossbarLayer(crossbar, name, self._dense(w_codes), self.distinct,
                                        getattr(module, "groups", 1), collect)
        q = qmax(self.bits, self.signed)
        max_rows = max(b - a for a, b in self.distinct)
        # float32 sums of integer codes are exact while every partial sum stays < 2^24
        self.sum_dtype = torch.float32 if max_rows * q * q < (1 << 24) else torch.float64

    # -- the replacement forward ---------------------------------------------------------
    def __call__(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.calls += 1
        with torch.no_grad():
            codes = torch.round(x.float() / self.scale)
            q = qmax(self.bits, self.signed)
            codes = codes.clamp_(-q if self.signed else 0, q)
            if self.spec.kind == "conv":
                out = self._conv(codes)
            else:
                out = self._linear(codes)
        self.seen += codes.shape[0]
        return out.to(x.dtype)

    # -- weights -------------------------------------------------------------------------
    def _full_weight(self) -> torch.Tensor:
        """Dense (C_out, L) weight matrix over the im2col rows (block diagonal if grouped)."""
        if self._w_full is None:
            self._w_full = self._dense(self.weight)
        return self._w_full

    def _dense(self, weight: torch.Tensor) -> torch.Tensor:
        """*weight* (the module's shape) as a dense (C_out, L) matrix over the im2col rows."""
        m = self.module
        if isinstance(m, nn.Linear):
            return weight
        g, cout = m.groups, m.out_channels
        w = weight.reshape(cout, -1)
        if g == 1:
            return w
        full = torch.zeros(cout, self.n_rows, device=w.device)
        cog, lg = cout // g, self.n_rows // g
        for gi in range(g):
            full[gi * cog:(gi + 1) * cog, gi * lg:(gi + 1) * lg] = w[gi * cog:(gi + 1) * cog]
        return full

    # -- statistics ----------------------------------------------------------------------
    def _conv_stats(self, codes: torch.Tensor) -> tuple[list[GroupStats], list[torch.Tensor]]:
        """Per distinct block: GroupStats over (n·P,) groups and nonzero counts, from channel
        reductions and window sums / max-pools of the code maps (no im2col)."""
        k, s, p, d = self.geom
        dt = self.sum_dtype
        c = codes.to(dt)
        a = c.abs() if self.signed else c
        sq = c * c
        nz = (c != 0).to(dt)
        maps: dict[str, list[torch.Tensor]] = {"s1": [], "s2": [], "nz": [], "am": [],
                                               "cp": [], "cn": []}
        for r0, r1 in self.distinct:
            c0, c1 = r0 // self.khkw, r1 // self.khkw
            maps["s1"].append(a[:, c0:c1].sum(1))
            maps["s2"].append(sq[:, c0:c1].sum(1))
            maps["nz"].append(nz[:, c0:c1].sum(1))
            maps["am"].append(a[:, c0:c1].amax(1))
            if self.signed:
                maps["cp"].append(c[:, c0:c1].amax(1).clamp(min=0))
                maps["cn"].append((-c[:, c0:c1]).amax(1).clamp(min=0))
        nb = len(self.distinct)
        ones = torch.ones(nb, 1, *k, dtype=dt, device=codes.device)

        def wsum(key: str) -> torch.Tensor:
            return F.conv2d(torch.stack(maps[key], 1), ones, None, s, p, d, nb)

        def wmax(key: str) -> torch.Tensor:
            padded = F.pad(torch.stack(maps[key], 1), (p[1], p[1], p[0], p[0]))
            return F.max_pool2d(padded, k, s, 0, d)

        s1, s2, nzc, am = wsum("s1"), wsum("s2"), wsum("nz"), wmax("am")
        if self.signed:
            cp, cn = wmax("cp"), wmax("cn")
        else:
            cp, cn = am, torch.zeros_like(am)
        stats, nonzero = [], []
        for bi, (r0, r1) in enumerate(self.distinct):
            stats.append(GroupStats(r1 - r0, _flat(s1[:, bi]), _flat(s2[:, bi]),
                                    _flat(am[:, bi]), _flat(cp[:, bi]), _flat(cn[:, bi])))
            nonzero.append(_flat(nzc[:, bi]))
        return stats, nonzero

    def _cols(self, codes: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
        """im2col rows [r0, r1) of a conv input: (n, r1 - r0, P), float32."""
        k, s, p, d = self.geom
        if self.aligned:
            c0, c1 = r0 // self.khkw, r1 // self.khkw
            return F.unfold(codes[:, c0:c1], k, dilation=d, padding=p, stride=s)
        return F.unfold(codes, k, dilation=d, padding=p, stride=s)[:, r0:r1]

    @staticmethod
    def _slab_stats(slab: torch.Tensor, signed: bool) -> tuple[GroupStats, torch.Tensor]:
        """GroupStats of (n, rows, P) codes, groups ordered (n, P)."""
        n, rows, pp = slab.shape
        groups = slab.transpose(1, 2).reshape(n * pp, rows).to(torch.int64)
        return GroupStats.of_codes(groups, signed), (groups != 0).sum(dim=1)

    # -- layer computations --------------------------------------------------------------
    def _conv(self, codes: torch.Tensor) -> torch.Tensor:
        m: nn.Conv2d = self.module  # type: ignore[assignment]
        k, s, p, d = self.geom
        n = codes.shape[0]
        if self.custom:
            return self._conv_custom(codes)
        if self.aligned:
            stats, nonzero = self._conv_stats(codes)
        else:
            stats, nonzero = [], []
            for r0, r1 in self.distinct:
                st, nzc = self._slab_stats(self._cols(codes, r0, r1), self.signed)
                stats.append(st)
                nonzero.append(nzc)
        out = F.conv2d(codes * self.scale, self.weight, self.bias, s, p, d, m.groups)
        npos = out.shape[2] * out.shape[3]
        windows = self._record(stats, nonzero, n, npos)
        if windows is not None and not self.lossless:
            self._correct_conv(codes, out, windows, n, npos)
        if self.xlayer is not None:
            assert windows is not None
            self._crossbar_conv(codes, out, windows, nonzero, n, npos)
        return out

    def _window_diff(self, codes: torch.Tensor, low: torch.Tensor,
                     planes: torch.Tensor) -> torch.Tensor:
        """windowed − codes for float32 integer codes; *low*/*planes* broadcast against
        them (same arithmetic as :func:`~workloads.precision.policies.apply_window`, exact in
        float32 for codes below 2^24): round half up to a multiple of 2^low, saturate."""
        lo, hi = window_limits(low, planes, self.signed)
        lo, hi = lo.to(torch.float32), hi.to(torch.float32)
        if bool((low == 0).all()):  # a pure clamp (ε = 0)
            return torch.clamp(codes, lo, hi).sub_(codes)
        step = torch.pow(2.0, low.to(torch.float32))
        win = torch.floor(codes / step + 0.5).mul_(step)
        return torch.clamp(win, lo, hi).sub_(codes)

    def _correct_conv(self, codes: torch.Tensor, out: torch.Tensor,
                      windows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                      n: int, npos: int) -> None:
        """Add W_block · (windowed − codes) for every group whose window changes a code.

        Blocks with few such groups gather only their im2col columns (from the zero-padded
        input, with separable row and position offsets); blocks with many unfold the whole
        block and correct every position at once.
        """
        acc = self.consumers[0].acc
        cout = out.shape[1]
        k, s, p, d = self.geom
        padded = F.pad(codes, (p[1], p[1], p[0], p[0])).reshape(n, -1)
        hp, wp = codes.shape[2] + 2 * p[0], codes.shape[3] + 2 * p[1]
        wo = out.shape[3]
        pos_all = torch.arange(npos, device=codes.device)
        pos_off = (pos_all // wo) * s[0] * wp + (pos_all % wo) * s[1]
        o: torch.Tensor | None = None  # (n, P, C_out) copy of the output, made when needed
        dense = out.reshape(n, cout, npos)
        for bi, (r0, r1) in enumerate(self.distinct):
            low, planes, lossy = windows[bi]
            n_lossy = int(lossy.sum())
            if not n_lossy:
                continue
            w_blk = self._full_weight()[:, r0:r1]
            if n_lossy > 0.25 * lossy.numel():  # most groups: unfold the whole block
                if o is not None:  # fold the gathered corrections back first
                    dense.copy_(o.permute(0, 2, 1))
                    o = None
                step = max(1, CHUNK_ELEMENTS // max(1, (r1 - r0) * npos))
                lo2, pl2 = low.reshape(n, 1, npos), planes.reshape(n, 1, npos)
                for i in range(0, n, step):
                    cols = self._cols(codes[i:i + step], r0, r1)  # (c, rows, P)
                    diff = self._window_diff(cols, lo2[i:i + step], pl2[i:i + step])
                    self._error_stats(acc, diff, lo2[i:i + step])
                    dense[i:i + step] += torch.matmul(w_blk, diff * self.scale)
                continue
            gi = lossy.nonzero().reshape(-1)
            img, pos = gi // npos, gi % npos
            if self.aligned:
                r = torch.arange(r0, r1, device=codes.device)
                c, ij = r // self.khkw, r % self.khkw
                row_off = c * hp * wp + (ij // k[1]) * d[0] * wp + (ij % k[1]) * d[1]
            step = max(1, CHUNK_ELEMENTS // max(1, r1 - r0))
            for j in range(0, len(gi), step):
                im, po, g = img[j:j + step], pos[j:j + step], gi[j:j + step]
                if self.aligned:
                    grp = padded[im[:, None], pos_off[po][:, None] + row_off[None, :]]
                else:
                    grp = torch.cat([self._cols(codes[a:a + 1], r0, r1)[0, :, b][None]
                                     for a, b in zip(im.tolist(), po.tolist(), strict=True)])
                diff = self._window_diff(grp, low[g][:, None], planes[g][:, None])
                self._error_stats(acc, diff, low[g][:, None])
                if o is None:
                    o = dense.permute(0, 2, 1).contiguous()
                o.index_put_((im, po), (diff * self.scale) @ w_blk.T, accumulate=True)
        # the gathered corrections, kept in the (n, P, C_out) copy over consecutive gathered
        # blocks (each output still gets its blocks' corrections in block order), folded
        # back once: a copy and a transpose of the layer's output per layer, not per block
        if o is not None:
            dense.copy_(o.permute(0, 2, 1))

    # -- the exact crossbar mode ----------------------------------------------------------
    def _crossbar_conv(self, codes: torch.Tensor, out: torch.Tensor,
                       windows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                       nonzero: list[torch.Tensor], n: int, npos: int) -> None:
        """Add to *out* what the ADC changes (:mod:`workloads.precision.crossbar`), for the
        groups whose conversions may be inexact: their windowed codes are gathered from the
        zero-padded input when they are few, the block unfolded when they are many."""
        xl = self.xlayer
        assert xl is not None
        cout = out.shape[1]
        flat = out.view(-1)
        k, s, p, d = self.geom
        padded = None
        hp, wp = codes.shape[2] + 2 * p[0], codes.shape[3] + 2 * p[1]
        wo = out.shape[3]
        pos_all = torch.arange(npos, device=codes.device)
        pos_off = (pos_all // wo) * s[0] * wp + (pos_all % wo) * s[1]
        for bi, (r0, r1) in enumerate(self.distinct):
            low, planes, _ = windows[bi]
            gi = xl.candidates(bi, nonzero[bi], planes).nonzero().reshape(-1)
            if not gi.numel():
                continue
            rows = r1 - r0
            if self.aligned and gi.numel() <= 0.25 * n * npos:
                if padded is None:
                    padded = F.pad(codes, (p[1], p[1], p[0], p[0])).reshape(n, -1)
                r = torch.arange(r0, r1, device=codes.device)
                c, ij = r // self.khkw, r % self.khkw
                row_off = c * hp * wp + (ij // k[1]) * d[0] * wp + (ij % k[1]) * d[1]
                step = max(1, CHUNK_ELEMENTS // max(1, rows))
                for j in range(0, gi.numel(), step):
                    g = gi[j:j + step]
                    grp = padded[(g // npos)[:, None], pos_off[g % npos][:, None] + row_off]
                    self._crossbar_groups(flat, bi, g, grp, low[g], planes[g], cout, npos)
                continue
            cand = torch.zeros(n * npos, dtype=torch.bool, device=codes.device)
            cand[gi] = True
            step = max(1, CHUNK_ELEMENTS // max(1, rows * npos))
            for i in range(0, n, step):
                sel = cand[i * npos:(i + step) * npos].nonzero().reshape(-1)
                if not sel.numel():
                    continue
                cols = self._cols(codes[i:i + step], r0, r1)            # (c, rows, P)
                grp = cols.transpose(1, 2).reshape(-1, rows)[sel]
                g = sel + i * npos
                self._crossbar_groups(flat, bi, g, grp, low[g], planes[g], cout, npos)

    def _crossbar_groups(self, flat: torch.Tensor, bi: int, g: torch.Tensor,
                         grp: torch.Tensor, low: torch.Tensor, planes: torch.Tensor,
                         cout: int, npos: int) -> None:
        """Window the codes *grp* of groups *g* (image · npos + position) of block *bi*,
        and add the ADC's error to *flat* (the (n, C_out, npos) output, flattened)."""
        xl = self.xlayer
        assert xl is not None
        if not self.lossless:
            grp = grp + self._window_diff(grp, low[:, None], planes[:, None])
        err = xl.error(bi, grp, low, planes, self.signed)
        if err is None:
            return
        ch0, ch1 = xl.channels(bi)
        val = (err * (self.scale * self.w_scale[ch0:ch1])).to(flat.dtype)
        ch = torch.arange(ch0, ch1, device=flat.device)
        idx = (g // npos)[:, None] * (cout * npos) + ch[None, :] * npos + (g % npos)[:, None]
        flat.index_add_(0, idx.reshape(-1), val.reshape(-1))

    def _crossbar_cols(self, win: torch.Tensor, windows: list[tuple[torch.Tensor, torch.Tensor]],
                       nonzero: list[torch.Tensor], cout: int) -> torch.Tensor | None:
        """What the ADC changes for windowed im2col codes *win* (n, L, P): (n, C_out, P)
        float32, or None when no conversion can be inexact."""
        xl = self.xlayer
        assert xl is not None
        n, _, npos = win.shape
        corr: torch.Tensor | None = None
        for bi, (r0, r1) in enumerate(self.distinct):
            low, planes = windows[bi][0], windows[bi][1]
            gi = xl.candidates(bi, nonzero[bi], planes).nonzero().reshape(-1)
            if not gi.numel():
                continue
            if corr is None:
                corr = torch.zeros(n, cout, npos, device=win.device)
            grp = win[:, r0:r1].transpose(1, 2).reshape(n * npos, r1 - r0)[gi]
            err = xl.error(bi, grp, low[gi], planes[gi], self.signed)
            if err is None:
                continue
            ch0, ch1 = xl.channels(bi)
            val = (err * (self.scale * self.w_scale[ch0:ch1])).to(corr.dtype)
            ch = torch.arange(ch0, ch1, device=win.device)
            idx = ((gi // npos)[:, None] * (cout * npos) + ch[None, :] * npos
                   + (gi % npos)[:, None])
            corr.view(-1).index_add_(0, idx.reshape(-1), val.reshape(-1))
        return corr

    def _error_stats(self, acc: _Acc, diff: torch.Tensor, low: torch.Tensor) -> None:
        """Squared error and saturated values of windowed − codes (*low* broadcasts)."""
        a = diff.abs()
        acc.sq_err += float(torch.linalg.vecdot(a.reshape(-1), a.reshape(-1)))
        # clipped by the window's top: error beyond the half step of rounding
        half = torch.where(low > 0, torch.pow(2.0, (low - 1).clamp(min=0).to(torch.float32)),
                           0.0)
        acc.saturated += int((a > half).sum())

    def _conv_custom(self, codes: torch.Tensor) -> torch.Tensor:
        """im2col path of a codes policy: window every group, then W × windowed im2col."""
        m: nn.Conv2d = self.module  # type: ignore[assignment]
        k, s, p, d = self.geom
        n_img = codes.shape[0]
        g, cout = m.groups, m.out_channels
        w = self.weight.reshape(g, cout // g, -1)
        ho = (codes.shape[2] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        wo = (codes.shape[3] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
        chunk = max(1, CHUNK_ELEMENTS // max(1, self.n_rows * ho * wo))
        outs = []
        for i in range(0, n_img, chunk):
            cols = F.unfold(codes[i:i + chunk], k, dilation=d, padding=p, stride=s)
            win, windows, nonzero = self._custom_blocks(cols)
            nn_ = win.shape[0]
            xerr = (self._crossbar_cols(win, windows, nonzero, cout)
                    if self.xlayer is not None else None)
            win = win.mul_(self.scale).reshape(nn_, g, self.n_rows // g, -1)
            y = torch.matmul(w, win).reshape(nn_, cout, ho, wo)
            if xerr is not None:
                y = y + xerr.reshape(y.shape)
            if self.bias is not None:
                y = y + self.bias.reshape(1, -1, 1, 1)
            outs.append(y)
        return torch.cat(outs)

    def _custom_blocks(self, cols: torch.Tensor) -> tuple[
            torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor]]:
        """Window (n, L, P) im2col codes with the codes policy, block by block (in place);
        also the (low, planes) windows and nonzero counts of every block's groups."""
        n, _, pp = cols.shape
        stats, nonzero, windows = [], [], []
        for r0, r1 in self.distinct:
            slab = cols[:, r0:r1]
            st, nzc = self._slab_stats(slab, self.signed)
            groups = slab.transpose(1, 2).reshape(n * pp, r1 - r0).to(torch.int64)
            c = self.consumers[0]
            assert self.codes_policy is not None
            low, planes = self.codes_policy(groups, signed=self.signed, bits=self.bits,
                                            **c.params)
            low, planes = self._check(low, planes, n * pp)
            lossy = ~((low == 0) & (planes == self.bits))
            if bool(lossy.any()):
                win = apply_window(groups, low, planes, self.signed, self.bits)
                self._error_stats(c.acc, (win - groups).to(torch.float32), low[:, None])
                cols[:, r0:r1] = win.reshape(n, pp, r1 - r0).transpose(1, 2).to(cols.dtype)
            stats.append(st)
            nonzero.append(nzc)
            windows.append((low, planes))
        self._record(stats, nonzero, n, pp, windows)
        return cols, windows, nonzero

    def _linear(self, codes: torch.Tensor) -> torch.Tensor:
        m: nn.Linear = self.module  # type: ignore[assignment]
        lead = codes.shape[:-1]
        n_img = codes.shape[0] if codes.dim() > 1 else 1
        xs = codes.reshape(n_img, -1, m.in_features)  # (n, positions, F)
        npos = xs.shape[1]
        cols = xs.transpose(1, 2)  # (n, F, positions)
        if self.custom:
            win, wins, nonzero = self._custom_blocks(cols.clone())
        else:
            stats, nonzero = [], []
            for r0, r1 in self.distinct:
                st, nzc = self._slab_stats(cols[:, r0:r1], self.signed)
                stats.append(st)
                nonzero.append(nzc)
            windows = self._record(stats, nonzero, n_img, npos)
            win = cols
            wins = [(lo, pl) for lo, pl, _ in windows] if windows is not None else []
            if windows is not None and not self.lossless:
                win = cols.clone()
                acc = self.consumers[0].acc
                for bi, (r0, r1) in enumerate(self.distinct):
                    low, planes, lossy = windows[bi]
                    if not bool(lossy.any()):
                        continue
                    grp = cols[:, r0:r1].transpose(1, 2).reshape(n_img * npos, r1 - r0)
                    grp = grp.to(torch.int64)
                    w_ = apply_window(grp, low, planes, self.signed, self.bits)
                    self._error_stats(acc, (w_ - grp).to(torch.float32), low[:, None])
                    win[:, r0:r1] = w_.reshape(n_img, npos, r1 - r0).transpose(1, 2).float()
        y = (win * self.scale).transpose(1, 2) @ self.weight.T
        if self.xlayer is not None:
            xerr = self._crossbar_cols(win, wins, nonzero, m.out_features)
            if xerr is not None:
                y = y + xerr.transpose(1, 2)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, m.out_features)

    # -- policies and bookkeeping --------------------------------------------------------
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

    def _lossy(self, st: GroupStats, low: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
        """Groups whose window changes at least one code (conservative for low > 0)."""
        lo, hi = window_limits(low, planes, self.signed)
        over = st.cmax > hi
        if self.signed:
            over |= -st.nmax < lo
        return over | (low > 0)

    def _record(self, stats: list[GroupStats], nonzero: list[torch.Tensor], n: int, npos: int,
                windows: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None:
        """Windows of every consumer for this batch; accumulate their statistics.

        Returns the (low, planes, lossy) windows per distinct block for a single lossy
        built-in consumer (or any single consumer in the exact crossbar mode), else None.
        *windows* are given by the custom (codes) path.
        """
        nb = len(self.distinct)
        zero = [(st.amax == 0).reshape(n, npos) for st in stats]
        msb = [msb_trim_stats(st, signed=self.signed, bits=self.bits)[1].reshape(n, npos)
               for st in stats]
        sq_ref = sum(float(st.s2.sum()) for st in stats)
        nonzero_tot = sum(int(x.sum()) for x in nonzero)
        out = None
        for c in self.consumers:
            if windows is not None:
                wins = [(lo, pl) for lo, pl in windows]
            else:
                fn = BUILTIN_STATS[c.spec.policy]
                wins = [self._check(*fn(st, signed=self.signed, bits=self.bits, **c.params),
                                    n * npos) for st in stats]
            if windows is None and (not self.lossless or self.xlayer is not None):
                out = [(lo, pl, self._lossy(st, lo, pl))
                       for st, (lo, pl) in zip(stats, wins, strict=True)]
            planes = torch.stack([pl.reshape(n, npos) for _, pl in wins], 1)  # (n, nb, P)
            lows = torch.stack([lo.reshape(n, npos) for lo, _ in wins], 1)
            a = c.acc
            idx = self.block_of
            keep = n if self.keep is None else max(0, min(n, self.keep - self.seen))
            pl_np = planes.cpu().numpy().astype(np.uint8)
            if keep:
                a.planes.append(pl_np[:keep][:, idx])
                a.low.append(lows.cpu().numpy().astype(np.uint8)[:keep][:, idx])
            per_block = planes.sum(dim=2).cpu().numpy().astype(np.int64)  # (n, nb)
            a.image_planes.append(per_block[:, idx])
            zb = torch.stack(zero, 1).sum(dim=2).cpu().numpy().astype(np.int64)
            a.image_zero.append(zb[:, idx])
            mb = torch.stack(msb, 1).sum(dim=2).cpu().numpy().astype(np.int64)
            a.image_msb.append(mb[:, idx])
            # statistics count every group of the layer's row ranges (duplicates included)
            h = np.bincount(pl_np[:, idx].reshape(-1), minlength=self.bits + 1)[: self.bits + 1]
            a.hist = h if a.hist is None else a.hist + h
            dup = np.bincount(np.asarray(idx), minlength=nb)
            a.plane_sum += int((per_block.sum(axis=0) * dup).sum())
            a.groups += n * npos * len(idx)
            a.zero_groups += int((zb.sum(axis=0) * dup).sum())
            a.nonzero += nonzero_tot
            a.sq_ref += sq_ref
        return out

    def result(self, consumer: _Consumer) -> LayerPrecision:
        a = consumer.acc
        if not a.image_planes:
            raise WorkloadError(f"layer {self.name}: module {self.spec.module!r} was never "
                                "called in the forward pass")
        nb = len(self.block_of)
        planes = (np.concatenate(a.planes) if a.planes
                  else np.zeros((0, nb, 0), dtype=np.uint8))
        low = np.concatenate(a.low) if a.low else np.zeros_like(planes)
        image_planes = np.concatenate(a.image_planes)
        hist = a.hist if a.hist is not None else np.zeros(self.bits + 1, np.int64)
        return LayerPrecision(
            planes=planes, low=low, hist=hist.astype(np.int64),
            mean_bits=a.plane_sum / a.groups if a.groups else 0.0,
            saturated_fraction=a.saturated / a.nonzero if a.nonzero else 0.0,
            zero_group_fraction=a.zero_groups / a.groups if a.groups else 0.0,
            rel_rms_error=math.sqrt(a.sq_err / a.sq_ref) if a.sq_ref > 0 else 0.0,
            image_planes=image_planes, image_zero_groups=np.concatenate(a.image_zero),
            image_msb_planes=np.concatenate(a.image_msb),
            positions=int(a.groups // max(1, nb * image_planes.shape[0])))


