"""How large a crossbar column sum can get, and the ADC resolution that never clips it.

The one statement of the rule, shared by the hardware derivations
(:mod:`simulator.hardware.derive`: ``adc_bits_needed``, the warnings, ``redysim hw``) and the
exact crossbar mode of the accuracy path (:mod:`workloads.precision.crossbar`), which may
import only this core layer.

Per bit plane, a row adds its input slice (``dac_bits`` bits, 1 for ISAAC's 1-bit DACs)
times its cell (``cell_bits`` bits), so a column of ``rows`` cells sums at most
``rows · (2^cell_bits − 1) · (2^dac_bits − 1)``. ISAAC's flip encoding (§IV-B) stores a
column as its cells or their complements, whichever sums to at most half of that.
Closed form (ISAAC's, and CrossSim's manual §9.3.3 for bit-sliced arrays):

    bits = cell_bits + ⌈log2 rows⌉ + (dac_bits − 1) − (1 with flip encoding)

This equals ``⌈log2(max + 1)⌉`` when ``rows`` is a power of two, and bounds it otherwise
(:func:`adc_bits_rule` ≥ :func:`adc_bits_never_clip`). The offset encoding's unit column
(cells of 1) sums the inputs, at most ``rows · (2^dac_bits − 1)``; it needs more bits than
the weight columns only with 1-bit cells and flip encoding, and
:func:`adc_bits_never_clip` counts it when asked.
"""

from __future__ import annotations

import math

__all__ = ["adc_bits_never_clip", "adc_bits_rule", "column_sum_max", "unit_column_max"]


def _check(rows: int, cell_bits: int, dac_bits: int) -> None:
    if rows < 1 or cell_bits < 1 or dac_bits < 1:
        raise ValueError(f"rows, cell_bits and dac_bits must be >= 1 (got {rows}, {cell_bits}, "
                         f"{dac_bits})")


def column_sum_max(rows: int, cell_bits: int, flip_encoding: bool, dac_bits: int = 1) -> int:
    """Largest sum one weight column can produce in one plane:
    ``rows · (2^cell_bits − 1) · (2^dac_bits − 1)``, halved (floor) with flip encoding."""
    _check(rows, cell_bits, dac_bits)
    full = rows * ((1 << cell_bits) - 1) * ((1 << dac_bits) - 1)
    return full // 2 if flip_encoding else full


def unit_column_max(rows: int, dac_bits: int = 1) -> int:
    """Largest sum of the offset encoding's unit column (cells of 1) in one plane."""
    _check(rows, 1, dac_bits)
    return rows * ((1 << dac_bits) - 1)


def adc_bits_never_clip(rows: int, cell_bits: int, flip_encoding: bool, dac_bits: int = 1,
                        unit_column: bool = False) -> int:
    """Fewest ADC bits whose top code ``2^N − 1`` holds every column sum of one plane:
    ``⌈log2(max + 1)⌉`` of :func:`column_sum_max` (and of the unit column's when
    *unit_column*)."""
    top = column_sum_max(rows, cell_bits, flip_encoding, dac_bits)
    if unit_column:
        top = max(top, unit_column_max(rows, dac_bits))
    return max(1, math.ceil(math.log2(top + 1)))


def adc_bits_rule(rows: int, cell_bits: int, flip_encoding: bool, dac_bits: int = 1) -> int:
    """The closed form ``cell_bits + ⌈log2 rows⌉ + (dac_bits − 1) − flip``: equal to
    :func:`adc_bits_never_clip` (weight columns) for a power-of-two *rows*, never below it."""
    _check(rows, cell_bits, dac_bits)
    return max(1, cell_bits + math.ceil(math.log2(rows)) + dac_bits - 1
               - (1 if flip_encoding else 0))
