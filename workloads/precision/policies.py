"""Precision policies: each activation group's codes → the window of bit planes streamed.

A policy is ``fn(codes, *, signed, bits, **params) -> (low, planes)`` with ``codes`` an
int64 tensor ``(n_groups, group_size)`` of static B-bit codes and ``low``, ``planes`` int64
tensors ``(n_groups,)``: planes ``[low, low + planes)`` enter the crossbar, ``planes == 0``
skips the group. Built in: ``static``, ``zero-skip`` and ``msb-trim`` (lossless) and
``redy`` (the project's reconstruction of ReDy's heuristic, see docs/precision.md); a dotted
path
``package.module:function`` names a custom policy with the same signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from workloads.precision.options import (  # noqa: F401 - re-exported: the torch-free part
    BUILTIN_NAMES,
    LOSSLESS,
    ONLINE_UNIT,
    LayerOverride,
    PolicySpec,
    import_policy,
    online_unit,
)

Policy = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def bit_length(x: torch.Tensor) -> torch.Tensor:
    """Bit length of non-negative integers (0 → 0, 1 → 1, 5 → 3), int64."""
    return torch.frexp(x.to(torch.float64)).exponent.to(torch.int64)


@dataclass
class GroupStats:
    """Exact integer statistics of activation groups, enough for every built-in policy.

    All fields are int64 tensors ``(n_groups,)`` over the group's ``size`` codes (padding
    zeros of a conv window included, as in im2col): ``s1`` = Σ|c| (Σc when unsigned),
    ``s2`` = Σc², ``amax`` = max|c|, ``cmax`` = max c and ``nmax`` = max(−c) (both clamped
    at 0, so a group of one sign has 0 for the other).
    """

    size: int
    s1: torch.Tensor
    s2: torch.Tensor
    amax: torch.Tensor
    cmax: torch.Tensor
    nmax: torch.Tensor

    @classmethod
    def of_codes(cls, codes: torch.Tensor, signed: bool) -> GroupStats:
        """Statistics of ``codes`` (n_groups, size), int64."""
        c = codes.to(torch.int64)
        a = c.abs() if signed else c
        n = c.shape[0]
        if c.shape[1] == 0:
            z = torch.zeros(n, dtype=torch.int64, device=c.device)
            return cls(0, z, z, z, z, z)
        cmax = c.max(dim=1).values.clamp(min=0)
        nmax = (-c.min(dim=1).values).clamp(min=0) if signed else torch.zeros_like(cmax)
        return cls(int(c.shape[1]), a.sum(dim=1), (c * c).sum(dim=1), a.max(dim=1).values,
                   cmax, nmax)


def static_stats(st: GroupStats, *, signed: bool, bits: int,
                 **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Every group streams all B planes."""
    n, dev = st.amax.shape[0], st.amax.device
    return (torch.zeros(n, dtype=torch.int64, device=dev),
            torch.full((n,), bits, dtype=torch.int64, device=dev))


def zero_skip_stats(st: GroupStats, *, signed: bool, bits: int,
                    **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Lossless: all B planes, except that an all-zero group streams nothing."""
    planes = torch.where(st.amax == 0, 0, bits).to(torch.int64)
    return torch.zeros_like(planes), planes


def msb_trim_stats(st: GroupStats, *, signed: bool, bits: int, skip_zero_groups: bool = True,
                   **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Lossless: planes up to the highest set bit (signed: smallest two's complement width)."""
    if signed:
        hi = bit_length(st.cmax)
        lo = bit_length((st.nmax - 1).clamp(min=0))
        planes = torch.maximum(hi, lo) + 1
    else:
        planes = bit_length(st.amax)
    zero = st.amax == 0
    planes = torch.where(zero, 0 if skip_zero_groups else 1, planes).clamp(max=bits)
    return torch.zeros_like(planes), planes


def redy_stats(st: GroupStats, *, signed: bool, bits: int, k: float = 3.0,
               epsilon: float = 0.0, min_bits: int = 1, skip_zero_groups: bool = True,
               **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """ReDy's window from the group's statistics (see :func:`redy`)."""
    mag_bits = bits - 1 if signed else bits
    n = max(st.size, 1)
    s1 = st.s1.to(torch.float64)
    mu = s1 / n
    # population variance from the exact integer sums: (n·Σc² − (Σ|c|)²) / n²
    var = (st.s2 * n - st.s1 * st.s1).to(torch.float64).clamp(min=0) / float(n * n)
    sigma = var.sqrt()
    mx = st.amax.to(torch.float64)
    clip = torch.minimum(mx, mu + k * sigma)
    top = bit_length(torch.floor(clip + 0.5)).clamp(max=mag_bits)
    es = epsilon * sigma
    d = torch.where(es >= 1, torch.floor(torch.log2(es.clamp(min=1))), torch.zeros_like(es))
    d = d.to(torch.int64).clamp(min=0)
    m = (top - d).clamp(min=min(min_bits, mag_bits), max=mag_bits)
    low = (top - m).clamp(min=0)
    low = torch.minimum(low, mag_bits - m)
    planes = m + 1 if signed else m
    if skip_zero_groups:
        zero = st.amax == 0
        planes = torch.where(zero, 0, planes)
        low = torch.where(zero, 0, low)
    return low, planes


def static(codes: torch.Tensor, *, signed: bool, bits: int,
           **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Every group streams all B planes."""
    n, dev = codes.shape[0], codes.device
    return (torch.zeros(n, dtype=torch.int64, device=dev),
            torch.full((n,), bits, dtype=torch.int64, device=dev))


def zero_skip(codes: torch.Tensor, *, signed: bool, bits: int,
              **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Lossless: all B planes, except that an all-zero group streams nothing."""
    return zero_skip_stats(GroupStats.of_codes(codes, signed), signed=signed, bits=bits)


def msb_trim(codes: torch.Tensor, *, signed: bool, bits: int, skip_zero_groups: bool = True,
             **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Lossless: planes up to the highest set bit (signed: smallest two's complement width)."""
    return msb_trim_stats(GroupStats.of_codes(codes, signed), signed=signed, bits=bits,
                          skip_zero_groups=skip_zero_groups)


def redy(codes: torch.Tensor, *, signed: bool, bits: int, k: float = 3.0,
         epsilon: float = 0.0, min_bits: int = 1, skip_zero_groups: bool = True,
         **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstructed ReDy window from the group's mean μ, std σ and max (of |codes| if signed).

    clip = min(max, μ + kσ); top = bit_length(round_half_up(clip)); d = floor(log2(εσ))
    if εσ ≥ 1 else 0; magnitude planes m = clamp(top − d, min_bits, M) with M = B (unsigned)
    or B − 1 (signed); low = max(0, top − m) (clamping to min_bits lowers ``low``); signed
    groups add the sign plane on top (planes = m + 1). All-zero groups get 0 planes when
    *skip_zero_groups*. μ and σ (population) come from the exact integer sums Σ|c| and Σc²
    (:func:`redy_stats`), so the statistics path and this codes path agree bit for bit.
    """
    return redy_stats(GroupStats.of_codes(codes, signed), signed=signed, bits=bits, k=k,
                      epsilon=epsilon, min_bits=min_bits, skip_zero_groups=skip_zero_groups)


BUILTIN: dict[str, Policy] = {"static": static, "zero-skip": zero_skip, "msb-trim": msb_trim,
                              "redy": redy}
#: the same built-in policies on group statistics (the fast path of the activation capture)
BUILTIN_STATS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "static": static_stats, "zero-skip": zero_skip_stats, "msb-trim": msb_trim_stats,
    "redy": redy_stats}
assert tuple(BUILTIN) == BUILTIN_NAMES  # options.py validates policy names without torch


def window_limits(low: torch.Tensor, planes: torch.Tensor,
                  signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest and largest value representable by planes [low, low + planes) (int64).

    Unsigned: multiples of 2^low in [0, 2^(low+planes) − 2^low]; signed (the top plane of
    the window is the two's complement sign plane): [−2^(low+planes−1), 2^(low+planes−1) −
    2^low]. ``planes == 0`` represents only 0.
    """
    one = torch.ones_like(low)
    step = one << low
    top = low + planes
    if signed:
        hi = (one << (top - 1).clamp(min=0)) - step
        lo = -(one << (top - 1).clamp(min=0))
    else:
        hi = (one << top) - step
        lo = torch.zeros_like(low)
    empty = planes <= 0
    return torch.where(empty, 0, lo), torch.where(empty, 0, hi)


def apply_window(codes: torch.Tensor, low: torch.Tensor, planes: torch.Tensor, signed: bool,
                 bits: int) -> torch.Tensor:
    """Codes as the crossbar sees them through the window: round half up to a multiple of
    2^low, then saturate to the window's range. Lossless when the window covers all set bits.
    """
    low_c = low.to(torch.int64)[:, None]
    lo, hi = window_limits(low_c, planes.to(torch.int64)[:, None], signed)
    if bool((low_c == 0).all()):
        return torch.minimum(torch.maximum(codes, lo), hi)
    half = torch.where(low_c > 0, torch.ones_like(low_c) << (low_c - 1).clamp(min=0), 0)
    rounded = ((codes + half) >> low_c) << low_c  # arithmetic shift = floor division
    return torch.minimum(torch.maximum(rounded, lo), hi)


_import_policy = import_policy


def resolve_policy(spec: PolicySpec | str) -> Policy:
    """The policy callable for a spec (or a policy name / dotted path).

    Custom functions receive only the keyword parameters their signature accepts (all of
    them when it has ``**kwargs``).
    """
    name = spec if isinstance(spec, str) else spec.policy
    if name in BUILTIN:
        return BUILTIN[name]
    try:
        fn = _import_policy(name)
    except ValueError as exc:
        from workloads.errors import WorkloadError

        raise WorkloadError(str(exc)) from None
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return fn
    accepted = set(sig.parameters)

    def filtered(codes: torch.Tensor, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return fn(codes, **{key: v for key, v in kw.items() if key in accepted})

    filtered.__name__ = getattr(fn, "__name__", name)
    return filtered
