"""Partition one conv/linear layer's weight matrix into crossbar-sized row/column blocks.

Rules (DESIGN.md §4):

* Weight matrix per conv group: ``L = kh*kw*C_in/g`` rows by ``C_out/g`` logical columns.
* Each weight takes ``ceil(w_bits / cell_bits)`` adjacent physical columns; with
  ``hw.weights.unit_column`` one column per crossbar is the offset-encoding unit column, so
  a crossbar holds ``(C - 1) // slices`` whole weights.  Weights are never split across
  crossbars; column blocks are filled greedily (full crossbars first).
* Row blocks are kernel aligned: ``R // (kh*kw)`` whole input channels per crossbar;
  1x1 convs and linear layers fill all ``R`` rows; a window larger than ``R`` rows is split
  into chunks of ``R`` rows (each chunk inside one channel).
* Grouped/depthwise convs: if one group's ``L`` rows and its columns fit in a crossbar,
  ``min(R // L, weights_per_crossbar // (C_out/g))`` groups are packed block-diagonally
  into one crossbar; otherwise each group is partitioned on its own.

Row ranges index the layer's im2col rows in ``torch.nn.functional.unfold`` order
(``c*kh*kw + i*kw + j`` over all input channels; group ``g`` holds ``[g*L, (g+1)*L)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mapping.errors import MappingError

__all__ = ["RowBlock", "col_layout", "partition_layer", "weight_slices"]


@dataclass
class RowBlock:
    """A set of im2col rows and the crossbars (column blocks) that hold their weights."""

    rows: tuple[int, int]
    """``[start, end)`` into the layer's im2col rows (all groups, unfold order)."""
    crossbar_cols: list[int] = field(default_factory=list)
    """Active physical columns of each crossbar of this row block (incl. unit column)."""
    out_channels: tuple[int, int] = (0, 0)
    """``[start, end)`` output channels produced by these crossbars."""

    @property
    def n_rows(self) -> int:
        """Rows (inputs of one activation group) of this block."""
        return self.rows[1] - self.rows[0]

    @property
    def n_crossbars(self) -> int:
        """Crossbars (column blocks) fed by this row block."""
        return len(self.crossbar_cols)


def weight_slices(hw: Any) -> int:
    """Adjacent physical columns per weight: ``ceil(weights.bits / cell_bits)``."""
    return math.ceil(hw.weights.bits / hw.crossbar.cell_bits)


def _unit(hw: Any) -> int:
    return 1 if hw.weights.unit_column else 0


def _weights_per_crossbar(hw: Any) -> int:
    usable = hw.crossbar.cols - _unit(hw)
    n = usable // weight_slices(hw)
    if n < 1:
        raise MappingError(
            f"a crossbar of {hw.crossbar.cols} columns cannot hold one {hw.weights.bits}-bit "
            f"weight ({weight_slices(hw)} columns of {hw.crossbar.cell_bits}-bit cells"
            f"{' plus the unit column' if _unit(hw) else ''})"
        )
    return n


def col_layout(n_weights: int, hw: Any) -> list[int]:
    """Physical columns of each crossbar holding *n_weights* logical columns (greedy fill)."""
    per = _weights_per_crossbar(hw)
    s, u = weight_slices(hw), _unit(hw)
    out: list[int] = []
    left = n_weights
    while left > 0:
        k = min(per, left)
        out.append(k * s + u)
        left -= k
    return out


def _row_chunks(n_rows: int, k: int, r: int, fill: bool) -> list[tuple[int, int]]:
    """Kernel-aligned ``[start, end)`` chunks of a group's ``n_rows = C*k`` im2col rows."""
    if fill or k == 1:
        return [(s, min(s + r, n_rows)) for s in range(0, n_rows, r)]
    if k <= r:
        step = (r // k) * k  # whole input channels per crossbar
        return [(s, min(s + step, n_rows)) for s in range(0, n_rows, step)]
    chunks: list[tuple[int, int]] = []
    for c0 in range(0, n_rows, k):  # split each channel's window into R-row pieces
        chunks.extend((s, min(s + r, c0 + k)) for s in range(c0, c0 + k, r))
    return chunks


def partition_layer(node: Mapping[str, Any], hw: Any) -> tuple[int, int, list[RowBlock]]:
    """Partition a conv/linear node (graph attributes) for *hw*.

    Returns ``(rows, cols, row_blocks)``: ``rows = L`` and ``cols = C_out/g`` per group, and
    the row blocks in row order (within a row block the crossbars are the column blocks).
    """
    kind = node["kind"]
    if kind not in ("conv", "linear"):
        raise MappingError(f"cannot partition a {kind!r} node (only conv and linear)")
    kh, kw = (1, 1) if kind == "linear" else tuple(node.get("kernel", (1, 1)))
    g = int(node.get("groups", 1) or 1)
    c_in, c_out = int(node["in_channels"]), int(node["out_channels"])
    if c_in % g or c_out % g:
        raise MappingError(f"channels {c_in}->{c_out} are not divisible by groups={g}")
    k = kh * kw
    cin_g, cout_g = c_in // g, c_out // g
    n_rows = k * cin_g
    r = int(hw.crossbar.rows)
    per = _weights_per_crossbar(hw)
    s, u = weight_slices(hw), _unit(hw)

    blocks: list[RowBlock] = []
    if g > 1 and n_rows <= r and cout_g <= per:
        pack = min(r // n_rows, per // cout_g)
        for g0 in range(0, g, pack):
            n = min(pack, g - g0)
            blocks.append(RowBlock(rows=(g0 * n_rows, (g0 + n) * n_rows),
                                   crossbar_cols=[n * cout_g * s + u],
                                   out_channels=(g0 * cout_g, (g0 + n) * cout_g)))
        return n_rows, cout_g, blocks

    chunks = _row_chunks(n_rows, k, r, fill=kind == "linear")
    cols = col_layout(cout_g, hw)
    for gi in range(g):
        base = gi * n_rows
        for a, b in chunks:
            blocks.append(RowBlock(rows=(base + a, base + b), crossbar_cols=list(cols),
                                   out_channels=(gi * cout_g, (gi + 1) * cout_g)))
    return n_rows, cout_g, blocks
