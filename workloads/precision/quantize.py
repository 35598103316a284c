"""Static per-layer activation quantization (DESIGN §5).

Every listed layer input is quantized with one scale calibrated on a few inputs:
``scale = amax / qmax`` where ``amax`` is max|x| (or a percentile of |x|) and
``qmax = 2^B - 1`` for unsigned inputs (after ReLU) or ``2^(B-1) - 1`` for signed
(symmetric two's complement) inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from workloads.errors import WorkloadError
from workloads.precision.options import QuantConfig  # noqa: F401 - re-exported

#: values kept per layer for percentile calibration (deterministic stride subsampling above it)
_PERCENTILE_MAX_VALUES = 1 << 25
_PERCENTILE_BATCH_VALUES = 1 << 22


def qmax(bits: int, signed: bool) -> int:
    """Largest code: 2^B - 1 (unsigned) or 2^(B-1) - 1 (signed, symmetric)."""
    return (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1


def quantize(x: torch.Tensor, scale: float, bits: int, signed: bool) -> torch.Tensor:
    """Codes ``clamp(round(x / scale))`` as int64; unsigned clamps at 0, signed symmetric."""
    q = qmax(bits, signed)
    lo = -q if signed else 0
    return torch.round(x.float() / scale).clamp_(lo, q).to(torch.int64)


def dequantize(codes: torch.Tensor, scale: float) -> torch.Tensor:
    """Real values ``codes * scale`` (float32)."""
    return codes.to(torch.float32) * scale


def quantize_weights(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Weights as the chip holds them: symmetric ``bits``-bit codes per output channel.

    ``scale_o = max|w_o| / (2^(bits-1) - 1)`` for output channel o (dim 0),
    ``ŵ = clamp(round(w / scale_o)) · scale_o`` (float32, same shape). A channel of zeros
    stays zero. The crossbar's offset encoding and bit slicing represent these codes
    exactly, so ``ŵ`` is what the analog dot product multiplies.
    """
    codes, scale = quantize_weight_codes(w, bits)
    return codes * scale


def quantize_weight_codes(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The integer codes (float32, in ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]``) and the
    per-output-channel scales (shaped to broadcast) of :func:`quantize_weights`."""
    w = w.detach().float()
    scale = _weight_scales(w, bits)
    q = (1 << (bits - 1)) - 1
    return (w / scale).round_().clamp_(-q, q), scale  # in place: one weight-sized buffer


def _weight_scales(w: torch.Tensor, bits: int) -> torch.Tensor:
    """``max|w_o| / (2^(bits-1) - 1)`` per output channel o (1 for a channel of zeros),
    shaped to broadcast against *w*; max|w| as max(max w, -min w), without a weight-sized
    ``|w|`` (VGG-16's first dense layer: 411 MB)."""
    lo, hi = torch.aminmax(w.reshape(w.shape[0], -1), dim=1)
    amax = torch.maximum(hi, -lo)
    scale = torch.where(amax > 0, amax / ((1 << (bits - 1)) - 1), torch.ones_like(amax))
    return scale.reshape(-1, *([1] * (w.dim() - 1)))


@torch.no_grad()
def quantize_weights_in_place(model: nn.Module, layers: Mapping[str, Any], bits: int) -> bool:
    """Quantize the weights of the modules of *layers* in place, to what
    :func:`quantize_weights` returns for them, bit for bit (the same operations, on the
    weight's own memory instead of a copy). A module already quantized to *bits* by this
    function is left as it is, so passes that share the model call it each time.

    *layers* maps a layer name to a LayerSpec-like object or a module name, as in
    :func:`calibrate_scales`. Returns False, changing nothing, unless every module is
    there and its weight is a float32 CPU tensor (the caller then lets each pass quantize
    a copy)."""
    mods: list[nn.Module] = []
    for spec in layers.values():
        try:
            mod = model.get_submodule(_spec_module(spec)[0])
        except AttributeError:
            return False
        w = getattr(mod, "weight", None)
        if not isinstance(w, torch.Tensor) or w.dtype != torch.float32 or w.device.type != "cpu":
            return False
        mods.append(mod)
    done: set[int] = set()  # the weights quantized here (one shared by two modules: once)
    q = (1 << (bits - 1)) - 1
    for mod in mods:
        w = mod.weight.detach()
        got = getattr(mod, "_quantized_weight_bits", None)
        if got is not None and got != bits:
            raise ValueError(f"the weights of {type(mod).__name__} are quantized to {got} "
                             f"bits already, not {bits}")
        if got is None and w.data_ptr() not in done:
            # quantize_weight_codes, then codes * scale: on the weight's own memory
            scale = _weight_scales(w, bits)
            w.div_(scale).round_().clamp_(-q, q).mul_(scale)
            done.add(w.data_ptr())
        mod._quantized_weight_bits = bits  # type: ignore[assignment]
    return True


def _spec_module(spec: Any) -> tuple[str, bool]:
    """(module qualified name, signed) of a LayerSpec-like object or a bare module name."""
    if isinstance(spec, str):
        return spec, False
    return str(spec.module), bool(getattr(spec, "signed_input", False))


def _first_tensor(args: tuple[Any, ...]) -> torch.Tensor:
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor):
        raise WorkloadError("quantized layer input is not a tensor")
    return x


@torch.no_grad()
def calibrate_scales(model: nn.Module, layers: Mapping[str, Any], calib_inputs: torch.Tensor,
                     cfg: QuantConfig, batch_size: int = 16) -> dict[str, float]:
    """Per-layer static scale from one forward pass over *calib_inputs*.

    *layers* maps a layer name to a LayerSpec-like object (``.module`` qualified
    submodule name, ``.signed_input``) or to a module name (unsigned). Forward-pre-hooks
    observe each module's input; the pass is split into batches of *batch_size* images.
    Percentile calibration keeps at most ~4 M values per layer and batch (stride subsample).
    A layer whose input is all zero gets ``scale = 1 / qmax``.
    """
    model.eval()
    amax: dict[str, float] = {}
    values: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = []
    for name, spec in layers.items():
        mod_name, _ = _spec_module(spec)
        try:
            mod = model.get_submodule(mod_name)
        except AttributeError:
            raise WorkloadError(f"layer {name}: no submodule named {mod_name!r}") from None

        def hook(_m: nn.Module, args: tuple[Any, ...], _name: str = name) -> None:
            a = _first_tensor(args).detach().abs().float().flatten()
            if cfg.calibration == "max":
                amax[_name] = max(amax.get(_name, 0.0), float(a.max()) if a.numel() else 0.0)
            else:
                if a.numel() > _PERCENTILE_BATCH_VALUES:  # deterministic stride subsample
                    a = a[:: -(-a.numel() // _PERCENTILE_BATCH_VALUES)]
                values[_name].append(a)

        handles.append(mod.register_forward_pre_hook(hook))
    try:
        for i in range(0, len(calib_inputs), batch_size):
            model(calib_inputs[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
    scales: dict[str, float] = {}
    for name, spec in layers.items():
        _, signed = _spec_module(spec)
        if cfg.calibration == "max":
            a = amax.get(name)
        else:
            a = _percentile(values[name], cfg.percentile)
        if a is None:
            raise WorkloadError(f"layer {name}: module was not called during calibration")
        q = qmax(cfg.bits, signed)
        scales[name] = (a if a > 0 else 1.0) / q
    return scales


def _percentile(chunks: list[torch.Tensor], pct: float) -> float | None:
    """Percentile (0, 100] of the concatenated values (lower nearest rank)."""
    if not chunks:
        return None
    v = torch.cat(chunks)
    if v.numel() > _PERCENTILE_MAX_VALUES:
        step = -(-v.numel() // _PERCENTILE_MAX_VALUES)
        v = v[::step]
    k = max(1, min(v.numel(), int(-(-pct * v.numel() // 100))))
    return float(torch.kthvalue(v, k).values)
