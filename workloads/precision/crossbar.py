"""The exact crossbar mode of the accuracy path (DESIGN §10, docs/precision.md §6).

The fast path multiplies the windowed activation codes by the quantized weights in
floating point: exactly what the chip computes *as long as no column sum exceeds the ADC's
range*. The exact mode computes what the chip computes when one may:

- every activation group streams the bit planes its policy chose (window ``[low, low +
  planes)``; for signed codes the top plane of the window is the two's complement sign
  plane, of weight ``−2^(low+planes−1)``);
- weights are stored as the hardware stores them: the signed weight code ``w`` offset by
  ``2^(w_bits−1)`` (``u = w + 2^(w_bits−1)``, unsigned), cut into ``⌈w_bits / cell_bits⌉``
  cells of ``cell_bits`` bits in adjacent columns (least significant first), each column
  of a row block flipped to ``2^cell_bits − 1 − u_j`` where ``weights.flip_encoding`` says
  so and its cells sum to more than half their maximum (ISAAC §IV-B), and one unit
  column of ones per crossbar (``weights.unit_column``) that sums the plane's inputs;
- per row block, plane and column the column sum ``S`` (an integer) goes through the ADC
  (:meth:`CrossbarModel.convert`), then the digital side shifts and adds: a flipped
  column's value is ``(2^cell_bits − 1)·A(unit) − A(S)``, the slices weigh ``2^(cell_bits·j)``,
  the offset's removal subtracts ``2^(w_bits−1)·A(unit)``, and the planes weigh their
  ``2^p`` (negative for a sign plane). Without a unit column the offset and the flips use
  the plane's input count computed digitally (exact).

The result differs from the fast path's only where an ADC conversion is not exact, so the
mode adds to the fast path's output the difference ``Σ weight · (A(S) − S)`` (in integer
units, times the activation scale and the output channel's weight scale), computed only for
the planes whose conversions can be inexact:

- ``ideal`` ADC, no noise: a plane with ``pc`` set inputs sums at most the ``pc`` largest
  cells of a column; the fewest set inputs with which any column of the block (the unit
  column, which sums them, included) can exceed ``2^N − 1`` is the block's ``clip_k``
  (:func:`clip_inputs`), and a plane with fewer is skipped. A group is skipped at once
  when its count of nonzero codes is below ``clip_k`` (no plane sets more inputs);
- ``calibrated`` with a level wider than one unit: every plane that sets an input;
- read noise: every streamed plane.

Vectorised per row block: the planes to compute form the rows of one 0/1 matrix, the
block's stored cells (slices in the columns) the other; one matmul gives every column sum,
integer-exact in float32 (sums stay far below 2^24; on CUDA float16, exact below 2048).

The mode's parameters (:class:`CrossbarModel`, its cache key) are in the torch-free
:mod:`workloads.precision.crossbar_model`, re-exported here.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import torch

from workloads.precision.crossbar_model import ADC_MODELS, CrossbarModel  # noqa: F401 - re-exported
from workloads.precision.options import AccuracyOptions  # noqa: F401 - re-exported

__all__ = ["ADC_MODELS", "AccuracyOptions", "CrossbarLayer", "CrossbarModel", "lsb_from_hist"]

#: elements of the plane/column matrices handled at once (bounds memory)
CHUNK_ELEMENTS = 1 << 22


def lsb_from_hist(hist: torch.Tensor, adc_bits: int, percentile: float) -> float:
    """Level size of a calibrated ADC from a histogram of integer column sums
    (``hist[v]`` = conversions of value v): the range's top is the *percentile* (nearest
    rank) of the values, spread over ``2^N − 1`` levels, never finer than one unit."""
    total = int(hist.sum())
    if total == 0:
        return 1.0
    rank = max(1, min(total, math.ceil(percentile / 100 * total)))
    top = int(torch.searchsorted(torch.cumsum(hist.to(torch.int64), 0),
                                 torch.tensor([rank], dtype=torch.int64))[0])
    return max(1.0, top / ((1 << adc_bits) - 1))


def clip_inputs(stored: torch.Tensor, cmax: int, top_code: int) -> int:
    """Fewest inputs set in one plane with which a column of *stored* ``(rows, columns)``
    (cell values 0 … *cmax*) can sum above *top_code* (``rows + 1`` when none can).

    A column's k largest cells are its cells of the top level, then of the next, …; with
    ``n_v`` cells of level v, ``a_v`` cells above v summing ``s_v``, the sum first exceeds
    the top after ``a_v + ⌊(top − s_v) / v⌋ + 1`` cells, at the first level where that many
    cells of level v exist (no sort needed)."""
    rows, cols = stored.shape
    dev = stored.device
    found = torch.full((cols,), rows + 1, dtype=torch.int64, device=dev)
    above_n = torch.zeros(cols, dtype=torch.int64, device=dev)
    above_s = torch.zeros(cols, dtype=torch.int64, device=dev)
    for v in range(cmax, 0, -1):
        n_v = (stored == v).sum(dim=0)
        t = torch.div(top_code - above_s, v, rounding_mode="floor") + 1
        hit = (found > rows) & (t <= n_v)
        found = torch.where(hit, above_n + t, found)
        above_n += n_v
        above_s += v * n_v
    return int(found.min()) if cols else rows + 1


@dataclass
class _Block:
    """One row block's crossbars: its stored cells and how their readings combine."""

    ch0: int
    ch1: int
    rows: int
    stored: torch.Tensor      # (rows, C·S) uint8 stored cell values (slices in the columns)
    flip: torch.Tensor        # (C, S) bool: the column is stored complemented
    clip_k: int               # fewest set inputs with which a conversion can clip
    xbar_of: torch.Tensor     # (C,) int64: the crossbar (column block) holding each channel
    n_xbars: int
    cells: torch.Tensor | None = None       # stored, in the matmul's dtype (made when needed)
    slice_coef: torch.Tensor | None = None  # (C, S) float32: ±2^(cell_bits·j) (− if flipped)
    unit_coef: torch.Tensor | None = None   # (C,) float32: M·Σ_j 2^(b·j)·flip_j − 2^(w_bits−1)


@dataclass
class CrossbarLayer:
    """The exact mode of one mapped layer: its row blocks' stored cells and the ADC.

    *weight_codes*: the layer's dense ``(C_out, L)`` signed weight codes over its im2col
    rows (block diagonal for a grouped conv); *blocks*: the distinct ``[r0, r1)`` row
    ranges; *groups*: the conv's groups (the channels a row block's crossbars hold).
    ``collect`` makes :meth:`error` record the histogram of column sums (ADC calibration)
    instead of correcting anything.
    """

    model: CrossbarModel
    name: str
    weight_codes: torch.Tensor
    blocks: list[tuple[int, int]]
    groups: int = 1
    collect: bool = False
    hist: torch.Tensor | None = None
    _enc: list[_Block] = field(default_factory=list)
    _gen: torch.Generator | None = None
    _lsb: float = 1.0

    def __post_init__(self) -> None:
        m = self.model
        w = self.weight_codes.to(torch.int32)
        qw = (1 << (m.weight_bits - 1)) - 1
        if w.numel() and int(w.abs().max()) > qw:
            raise ValueError(f"layer {self.name}: weight codes exceed ±{qw}")
        self.device = w.device
        cout, n_rows = w.shape
        cog, lg = cout // self.groups, n_rows // self.groups
        half = 1 << (m.weight_bits - 1)
        cmax = (1 << m.cell_bits) - 1
        shifts = torch.arange(m.slices, device=self.device, dtype=torch.int32) * m.cell_bits
        for r0, r1 in self.blocks:
            g0, g1 = r0 // lg, (r1 - 1) // lg
            ch0, ch1 = g0 * cog, (g1 + 1) * cog
            u = w[ch0:ch1, r0:r1].T + half                          # (rows, C) offset codes
            cells = ((u[:, :, None] >> shifts) & cmax).to(torch.uint8)   # (rows, C, S)
            if m.flip_encoding:
                flip = 2 * cells.sum(dim=0, dtype=torch.int64) > (r1 - r0) * cmax  # (C, S)
                cells = torch.where(flip[None], cmax - cells, cells)
            else:
                flip = torch.zeros(ch1 - ch0, m.slices, dtype=torch.bool, device=self.device)
            stored = cells.reshape(r1 - r0, -1)                       # (rows, C·S)
            clip_k = clip_inputs(stored, cmax, m.top_code)
            if m.unit_column:  # the unit column sums the set inputs
                clip_k = min(clip_k, m.top_code + 1)
            xb = torch.arange(ch1 - ch0, device=self.device) // m.per_crossbar
            self._enc.append(_Block(ch0, ch1, r1 - r0, stored, flip, clip_k, xb,
                                    int(xb.max()) + 1 if ch1 > ch0 else 1))
        if m.noise_lsb > 0:
            self._gen = torch.Generator(device=self.device)
            self._gen.manual_seed(zlib.crc32(f"{m.noise_seed}:{self.name}".encode()))
        if self.collect:
            most = max(b - a for a, b in self.blocks)
            self.hist = torch.zeros(most * cmax + 1, dtype=torch.int64, device=self.device)
        else:
            self._lsb = m.layer_lsb(self.name)

    def _ready(self, blk: _Block) -> _Block:
        """*blk* with its matmul operand and digital coefficients made (once)."""
        if blk.cells is None:
            m = self.model
            cmax = (1 << m.cell_bits) - 1
            # float16 sums of 0/1 planes and cells are exact below 2^11 (CUDA only)
            half_ok = self.device.type == "cuda" and cmax * blk.rows < 2048
            blk.cells = blk.stored.to(torch.float16 if half_ok else torch.float32)
            weight = torch.pow(2.0, torch.arange(m.slices, device=self.device,
                                                 dtype=torch.float32) * m.cell_bits)
            blk.slice_coef = torch.where(blk.flip, -weight, weight)
            if m.unit_column:
                blk.unit_coef = (cmax * (blk.flip.to(torch.float32) * weight).sum(dim=1)
                                 - float(1 << (m.weight_bits - 1)))
        return blk

    # ------------------------------------------------------------------------- rules
    def channels(self, bi: int) -> tuple[int, int]:
        """Output channels ``[ch0, ch1)`` that row block *bi*'s crossbars hold."""
        return self._enc[bi].ch0, self._enc[bi].ch1

    @property
    def skips_quiet_planes(self) -> bool:
        """Whether planes that cannot clip are skipped (ideal ADC of unit levels, no noise)."""
        m = self.model
        return not (m.force or self.collect or m.noise_lsb > 0 or self._lsb != 1.0)

    def candidates(self, bi: int, nonzero: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
        """Groups of row block *bi* that may have an inexact conversion (bool, per group),
        from each group's count of nonzero codes and its streamed planes."""
        streamed = planes > 0
        m = self.model
        if m.force or m.noise_lsb > 0:
            return streamed
        if not self.skips_quiet_planes:
            return streamed & (nonzero > 0)
        return streamed & (nonzero >= self._enc[bi].clip_k)

    # ------------------------------------------------------------------------- the error
    def error(self, bi: int, codes: torch.Tensor, low: torch.Tensor, planes: torch.Tensor,
              signed: bool) -> torch.Tensor | None:
        """``y_chip − y_exact`` of row block *bi* for groups of windowed *codes*.

        *codes*: ``(m, rows)`` windowed codes (integers; multiples of ``2^low``, inside the
        window), *low* / *planes*: ``(m,)`` windows. Returns ``(m, C)`` float64 in units of
        activation code × weight code over the block's output channels (None when
        collecting the calibration histogram).
        """
        m_groups, rows = codes.shape
        if m_groups == 0:
            return None if self.collect else torch.zeros(0, 0, dtype=torch.float64)
        blk = self._ready(self._enc[bi])
        n_cols = blk.stored.shape[1]
        out = None if self.collect else torch.zeros(
            m_groups, blk.ch1 - blk.ch0, dtype=torch.float64, device=codes.device)
        kmax = int(planes.max())
        step = max(1, CHUNK_ELEMENTS // max(1, kmax * max(rows, n_cols)))
        for i in range(0, m_groups, step):
            self._chunk(blk, codes[i:i + step], low[i:i + step], planes[i:i + step], signed,
                        kmax, None if out is None else out[i:i + step])
        return out

    def _chunk(self, blk: _Block, codes: torch.Tensor, low: torch.Tensor,
               planes: torch.Tensor, signed: bool, kmax: int,
               out: torch.Tensor | None) -> None:
        m = self.model
        dev = codes.device
        c = codes.to(torch.int64)
        t = c >> low[:, None]                          # exact: windowed codes are multiples
        if signed:                                     # two's complement in `planes` bits
            t = t & ((torch.ones_like(planes) << planes) - 1)[:, None]
        # t < 2^planes: one byte per input while the window has at most 8 planes
        small = torch.uint8 if kmax <= 8 else torch.int32
        ks = torch.arange(kmax, device=dev, dtype=small)
        bits = (t.to(small)[:, None, :] >> ks[None, :, None]) & 1           # (g, K, rows)
        pc = bits.sum(dim=2, dtype=torch.int32).to(torch.int64)              # (g, K)
        ks = ks.to(torch.int64)
        streamed = ks[None, :] < planes[:, None]
        if self.collect:
            sel = streamed & (pc > 0)
        elif self.skips_quiet_planes:
            sel = streamed & (pc >= blk.clip_k)
        elif m.noise_lsb > 0 or m.force:
            sel = streamed
        else:
            sel = streamed & (pc > 0)
        gi, ki = sel.nonzero(as_tuple=True)
        if gi.numel() == 0:
            return
        x = bits[gi, ki].to(blk.cells.dtype)                              # (P, rows)
        s = (x @ blk.cells).to(torch.float32)                              # (P, C·S) exact
        unit = pc[gi, ki].to(torch.float32)                                # (P,)
        if self.collect:
            assert self.hist is not None
            vals = torch.cat([s.reshape(-1), unit]).to(torch.int64)
            self.hist += torch.bincount(vals, minlength=self.hist.numel())[:self.hist.numel()]
            return
        assert out is not None
        lsb = self._lsb
        if self._gen is not None:
            noise = torch.randn(s.shape, generator=self._gen, device=dev)
            unoise = torch.randn((unit.numel(), blk.n_xbars), generator=self._gen, device=dev)
        else:
            noise = unoise = None
        e = m.convert(s, lsb, noise).sub_(s)                               # (P, C·S)
        err = (e.view(e.shape[0], -1, m.slices) * blk.slice_coef).sum(dim=2)   # (P, C)
        if m.unit_column:  # each crossbar's unit column (the same reading without noise)
            u = unit[:, None] if unoise is None else unit[:, None].expand(-1, blk.n_xbars)
            eu = m.convert(u, lsb, unoise) - u                                 # (P, 1|xbars)
            err += (eu if unoise is None else eu[:, blk.xbar_of]) * blk.unit_coef
        # plane weights: 2^(low + k), the sign plane of a signed window negative
        pw = torch.pow(2.0, (low[gi] + ki).to(torch.float64))
        if signed:
            pw = torch.where(ki == planes[gi] - 1, -pw, pw)
        out.index_add_(0, gi, err.to(torch.float64) * pw[:, None])
