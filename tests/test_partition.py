"""Partitioning of single layers into crossbar row/column blocks (mapping/partition.py).

Every expected count below is derived by hand in the comments from the rules of
DESIGN.md §4 (8-bit weights, offset encoding with one unit column per crossbar):

    slices S = 8 / cell_bits          (2-bit cells: 4, 1-bit cells: 8)
    weights per crossbar W = (C - 1) // S
        128x128, 2-bit: 127 // 4 = 31      128x128, 1-bit: 127 // 8 = 15
        256x256, 2-bit: 255 // 4 = 63      256x256, 1-bit: 255 // 8 = 31
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mapping.errors import MappingError
from mapping.partition import RowBlock, partition_layer
from simulator.hardware.spec import HardwareSpec, load_hardware

ISAAC8 = Path(__file__).resolve().parents[1] / "configs" / "hardware" / "isaac8.yaml"


@cache
def hw_variant(size: int = 128, cell_bits: int = 2, unit: bool = True) -> HardwareSpec:
    """isaac8 with a size x size crossbar of cell_bits-bit cells (counts kept consistent)."""
    base = load_hardware(ISAAC8)
    xb = base.ima.crossbars
    return base.with_changes({
        "crossbar.rows": size,
        "crossbar.cols": size,
        "crossbar.cell_bits": cell_bits,
        "weights.unit_column": unit,
        "components.ima.dac.count": xb * size,
        "components.ima.sample_hold.count": xb * size,
        "ima.input_register_bytes": max(base.ima.input_register_bytes, xb * size),
    })


def conv(cin: int, cout: int, k: int, groups: int = 1, hw_out: int = 8) -> dict[str, Any]:
    return {"kind": "conv", "in_channels": cin, "out_channels": cout, "kernel": (k, k),
            "stride": (1, 1), "padding": (k // 2, k // 2), "dilation": (1, 1),
            "groups": groups, "in_shape": (cin, hw_out, hw_out),
            "out_shape": (cout, hw_out, hw_out)}


def linear(fin: int, fout: int) -> dict[str, Any]:
    return {"kind": "linear", "in_channels": fin, "out_channels": fout, "kernel": (1, 1),
            "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1,
            "in_shape": (fin,), "out_shape": (fout,)}


def rows_of(blocks: list[RowBlock]) -> list[tuple[int, int]]:
    return [tuple(b.rows) for b in blocks]


def n_xbars(blocks: list[RowBlock]) -> int:
    return sum(b.n_crossbars for b in blocks)


# ------------------------------------------------------------------ 3x3 conv 64 -> 64
# L = 9 * 64 = 576 rows, 64 logical columns.
# R = 128: 128 // 9 = 14 channels = 126 rows; 64 = 4*14 + 8 -> 5 row blocks
# R = 256: 256 // 9 = 28 channels = 252 rows; 64 = 2*28 + 8 -> 3 row blocks
# column blocks = ceil(64 / W): 128/2b 3 (31,31,2); 128/1b 5 (15,15,15,15,4);
#                               256/2b 2 (63,1);    256/1b 3 (31,31,2)
@pytest.mark.parametrize(("size", "cell", "rblocks", "cols", "xbars"), [
    (128, 2, [(0, 126), (126, 252), (252, 378), (378, 504), (504, 576)],
     [31 * 4 + 1, 31 * 4 + 1, 2 * 4 + 1], 5 * 3),
    (128, 1, [(0, 126), (126, 252), (252, 378), (378, 504), (504, 576)],
     [15 * 8 + 1] * 4 + [4 * 8 + 1], 5 * 5),
    (256, 2, [(0, 252), (252, 504), (504, 576)], [63 * 4 + 1, 1 * 4 + 1], 3 * 2),
    (256, 1, [(0, 252), (252, 504), (504, 576)], [31 * 8 + 1, 31 * 8 + 1, 2 * 8 + 1], 3 * 3),
])
def test_conv3x3(size: int, cell: int, rblocks: list, cols: list[int], xbars: int) -> None:
    rows, ncols, blocks = partition_layer(conv(64, 64, 3), hw_variant(size, cell))
    assert (rows, ncols) == (576, 64)
    assert rows_of(blocks) == rblocks
    assert all(b.crossbar_cols == cols for b in blocks)
    assert all(b.out_channels == (0, 64) for b in blocks)
    assert n_xbars(blocks) == xbars


# ------------------------------------------------------------------ 7x7 conv 3 -> 64
# L = 49 * 3 = 147 rows.
# R = 128: 128 // 49 = 2 channels = 98 rows -> [0,98), [98,147)   (2 row blocks)
# R = 256: 256 // 49 = 5 channels >= 3        -> [0,147)          (1 row block)
# crossbars = row blocks * column blocks (same column blocks as above for 64 outputs)
@pytest.mark.parametrize(("size", "cell", "rblocks", "xbars"), [
    (128, 2, [(0, 98), (98, 147)], 2 * 3),
    (128, 1, [(0, 98), (98, 147)], 2 * 5),
    (256, 2, [(0, 147)], 1 * 2),
    (256, 1, [(0, 147)], 1 * 3),
])
def test_conv7x7(size: int, cell: int, rblocks: list, xbars: int) -> None:
    rows, ncols, blocks = partition_layer(conv(3, 64, 7), hw_variant(size, cell))
    assert (rows, ncols) == (147, 64)
    assert rows_of(blocks) == rblocks
    assert n_xbars(blocks) == xbars


def test_window_larger_than_crossbar_is_split() -> None:
    # R = 32 < 49: each channel's 7x7 window is split into [0,32) and [32,49) of the
    # channel; 3 channels -> 6 row blocks; 64 outputs on 128 cols 2-bit -> 3 col blocks.
    hw = hw_variant(128, 2).with_changes({"crossbar.rows": 32,
                                           "components.ima.dac.count": 8 * 32})
    _, _, blocks = partition_layer(conv(3, 64, 7), hw)
    assert rows_of(blocks) == [(0, 32), (32, 49), (49, 81), (81, 98), (98, 130), (130, 147)]
    assert n_xbars(blocks) == 6 * 3


# ------------------------------------------------------------------ 1x1 conv 256 -> 64
# L = 256 rows; 1x1 fills all R rows: R=128 -> 2 row blocks, R=256 -> 1.
@pytest.mark.parametrize(("size", "cell", "rblocks", "xbars"), [
    (128, 2, [(0, 128), (128, 256)], 2 * 3),
    (128, 1, [(0, 128), (128, 256)], 2 * 5),
    (256, 2, [(0, 256)], 1 * 2),
    (256, 1, [(0, 256)], 1 * 3),
])
def test_conv1x1(size: int, cell: int, rblocks: list, xbars: int) -> None:
    rows, ncols, blocks = partition_layer(conv(256, 64, 1), hw_variant(size, cell))
    assert (rows, ncols) == (256, 64)
    assert rows_of(blocks) == rblocks
    assert n_xbars(blocks) == xbars


# ------------------------------------------------------------------ depthwise 3x3, 32 ch
# One group: L = 9 rows, 1 column.  Groups per crossbar = min(R // 9, W // 1):
#   128/2b: min(14, 31) = 14 -> 32 = 14 + 14 + 4 -> 3 crossbars, cols 14*4+1=57, 57, 4*4+1=17
#   128/1b: min(14, 15) = 14 -> 3 crossbars, cols 14*8+1=113, 113, 4*8+1=33
#   256/2b: min(28, 63) = 28 -> 32 = 28 + 4 -> 2 crossbars, cols 28*4+1=113, 17
#   256/1b: min(28, 31) = 28 -> 2 crossbars, cols 28*8+1=225, 33
@pytest.mark.parametrize(("size", "cell", "rblocks", "cols", "outs"), [
    (128, 2, [(0, 126), (126, 252), (252, 288)], [57, 57, 17], [(0, 14), (14, 28), (28, 32)]),
    (128, 1, [(0, 126), (126, 252), (252, 288)], [113, 113, 33], [(0, 14), (14, 28), (28, 32)]),
    (256, 2, [(0, 252), (252, 288)], [113, 17], [(0, 28), (28, 32)]),
    (256, 1, [(0, 252), (252, 288)], [225, 33], [(0, 28), (28, 32)]),
])
def test_depthwise(size: int, cell: int, rblocks: list, cols: list[int], outs: list) -> None:
    rows, ncols, blocks = partition_layer(conv(32, 32, 3, groups=32), hw_variant(size, cell))
    assert (rows, ncols) == (9, 1)
    assert rows_of(blocks) == rblocks
    assert [b.crossbar_cols for b in blocks] == [[c] for c in cols]
    assert [b.out_channels for b in blocks] == outs


def test_grouped_packing_limited_by_columns() -> None:
    # groups 4, 3x3, 16 -> 64: per group L = 9*4 = 36 rows, 16 columns.
    # 128/2b: rows allow 128 // 36 = 3 groups, columns only 31 // 16 = 1 -> 1 group per
    # crossbar: 4 crossbars of 36 rows and 16*4+1 = 65 columns.
    _, _, blocks = partition_layer(conv(16, 64, 3, groups=4), hw_variant(128, 2))
    assert rows_of(blocks) == [(0, 36), (36, 72), (72, 108), (108, 144)]
    assert [b.crossbar_cols for b in blocks] == [[65]] * 4
    assert [b.out_channels for b in blocks] == [(0, 16), (16, 32), (32, 48), (48, 64)]


def test_grouped_too_big_is_partitioned_per_group() -> None:
    # groups 2, 3x3, 64 -> 64: per group L = 9*32 = 288 rows > 128, 32 columns.
    # Each group: 14 channels per crossbar -> 32 = 14 + 14 + 4 -> rows 126, 126, 36;
    # columns ceil(32 / 31) = 2 (31 -> 125 cols, 1 -> 5 cols); 3*2 = 6 crossbars per group.
    _, _, blocks = partition_layer(conv(64, 64, 3, groups=2), hw_variant(128, 2))
    assert rows_of(blocks) == [(0, 126), (126, 252), (252, 288),
                               (288, 414), (414, 540), (540, 576)]
    assert all(b.crossbar_cols == [125, 5] for b in blocks)
    assert [b.out_channels for b in blocks] == [(0, 32)] * 3 + [(32, 64)] * 3
    assert n_xbars(blocks) == 12


# ------------------------------------------------------------------ FC 512 -> 1000
# L = 512 rows (fill R): R=128 -> 4 row blocks, R=256 -> 2.
# columns: 128/2b ceil(1000/31) = 33 (32*31 = 992 < 1000); 128/1b ceil(1000/15) = 67
#          (66*15 = 990); 256/2b ceil(1000/63) = 16 (15*63 = 945); 256/1b ceil(1000/31) = 33
@pytest.mark.parametrize(("size", "cell", "n_rb", "n_cb"), [
    (128, 2, 4, 33), (128, 1, 4, 67), (256, 2, 2, 16), (256, 1, 2, 33),
])
def test_fc(size: int, cell: int, n_rb: int, n_cb: int) -> None:
    rows, ncols, blocks = partition_layer(linear(512, 1000), hw_variant(size, cell))
    assert (rows, ncols) == (512, 1000)
    assert len(blocks) == n_rb
    assert rows_of(blocks)[0] == (0, size)
    assert all(b.n_crossbars == n_cb for b in blocks)
    assert n_xbars(blocks) == n_rb * n_cb


def test_fc_last_column_block() -> None:
    # 128/2b: 32 crossbars of 31 weights (31*4+1 = 125 cols), the last holds
    # 1000 - 992 = 8 weights (8*4+1 = 33 cols).
    _, _, blocks = partition_layer(linear(512, 1000), hw_variant(128, 2))
    assert blocks[0].crossbar_cols == [125] * 32 + [33]


def test_no_unit_column() -> None:
    # Without the unit column a 128-col 2-bit crossbar holds 128 // 4 = 32 weights:
    # 3x3 64->64 -> 2 column blocks of 128 columns; 5 row blocks -> 10 crossbars.
    _, _, blocks = partition_layer(conv(64, 64, 3), hw_variant(128, 2, unit=False))
    assert all(b.crossbar_cols == [128, 128] for b in blocks)
    assert n_xbars(blocks) == 10


def test_blocks_cover_rows_and_never_exceed_crossbar() -> None:
    hw = hw_variant(128, 2)
    for node in (conv(64, 64, 3), conv(3, 64, 7), conv(256, 64, 1), conv(32, 32, 3, 32),
                 conv(64, 64, 3, 2), linear(512, 1000)):
        rows, _, blocks = partition_layer(node, hw)
        g = node["groups"]
        covered = sorted(rows_of(blocks))
        # groups partitioned separately repeat nothing; contiguous cover of g*L rows
        assert covered[0][0] == 0 and covered[-1][1] == g * rows
        assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))
        assert all(b.n_rows <= 128 for b in blocks)
        assert all(1 <= c <= 128 for b in blocks for c in b.crossbar_cols)


def test_non_weight_node_rejected() -> None:
    with pytest.raises(MappingError):
        partition_layer({"kind": "maxpool"}, hw_variant())
