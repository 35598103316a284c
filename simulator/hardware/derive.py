"""What follows from the structure of a hardware spec: counts, ADC needs, scalings, peaks.

An architect changes one key and the rest is derived here (DESIGN §9):

- **counts** (:func:`fill_derived`, on the raw YAML data before validation): crossbars per
  IMA = ``ima.crossbars``; DACs = crossbars x ``crossbar.rows``; sample-and-holds =
  crossbars x ``crossbar.cols``; ADCs = ``ima.crossbars / ima.crossbars_per_adc`` (or the
  sharing factor from an explicit ``ima.adcs``); one input and one output register per
  IMA; one eDRAM, bus and output register per tile; the input register's size
  ``ima.input_register_bytes`` = crossbars x ``crossbar.rows`` x
  ``ima.input_register_bits_per_row`` / 8 (or the bits per row from an explicit size). A
  count written in the YAML is kept and checked against the structure by
  :meth:`HardwareSpec.consistency_problems`; :data:`DERIVED_KEYS` lists every key filled
  in here (a key missing only because a bad value upstream kept it from being derived is
  not reported: :func:`derived_key`);
- **ADC needs**: the resolution a full column sum needs (:func:`adc_bits_needed`) and the
  sample rate that keeps the crossbars busy (:func:`adc_rate_needed_gsps`), with warnings
  when the configured ADC falls short (:func:`hardware_warnings`);
- **scalings** by the cited models of the YAML's ``scaling`` section: crossbar read energy
  and area against the array size, ADC energy and area against resolution and sample rate;
- **peak rates**: crossbar bit-planes per ns that the crossbars and the ADCs allow
  (:func:`plane_rates_per_ima`).

Nothing here holds a hardware number: every constant comes from the spec.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from simulator.core import column_sum
from simulator.hardware.schema import SIZED_COMPONENTS, HardwareParts

#: IMA components whose count follows the structure (name -> rule, for messages).
DERIVED_IMA_COUNTS: dict[str, str] = {
    "crossbar": "ima.crossbars",
    "dac": "ima.crossbars x crossbar.rows",
    "sample_hold": "ima.crossbars x crossbar.cols",
    "adc": "ima.crossbars / ima.crossbars_per_adc",
    "input_register": "one register per IMA",
    "ima_output_register": "one register per IMA",
}
#: Tile components with one instance per tile.
ONE_PER_TILE: tuple[str, ...] = ("edram", "bus", "tile_output_register")

#: Key paths that :func:`fill_derived` fills in when they are not written.
DERIVED_KEYS: frozenset[tuple[str, ...]] = frozenset({
    ("ima", "adcs"), ("ima", "crossbars_per_adc"),
    ("ima", "input_register_bytes"), ("ima", "input_register_bits_per_row"),
    *(("components", "ima", name, "count") for name in DERIVED_IMA_COUNTS),
    *(("components", "tile", name, "count") for name in ONE_PER_TILE),
})


def derived_key(loc: tuple[str | int, ...]) -> bool:
    """Whether key path *loc* is one that :func:`fill_derived` fills in (so that its absence
    after a bad value upstream is a consequence, not a second problem)."""
    return tuple(str(x) for x in loc) in DERIVED_KEYS


def input_register_bytes(crossbars: int, rows: int, bits_per_row: float) -> int:
    """Bytes of an input register holding *bits_per_row* bits per row of every crossbar."""
    return math.ceil(crossbars * rows * bits_per_row / 8)


def _pos_int(d: Any, *path: str) -> int | None:
    """The positive int at *path* of nested dict *d* (None if absent or not a positive int)."""
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
        return None
    return d


def _pos_num(d: Any, *path: str) -> float | None:
    """The positive number at *path* (None if absent or not a positive number)."""
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    if isinstance(d, bool) or not isinstance(d, int | float) or d <= 0:
        return None
    return float(d)


def structural_counts(data: dict[str, Any]) -> dict[str, int | None]:
    """Counts per IMA that the structure fixes, from raw data (None where not computable)."""
    xb = _pos_int(data, "ima", "crossbars")
    rows = _pos_int(data, "crossbar", "rows")
    cols = _pos_int(data, "crossbar", "cols")
    adcs = _pos_int(data, "ima", "adcs")
    return {
        "crossbar": xb,
        "dac": xb * rows if xb and rows else None,
        "sample_hold": xb * cols if xb and cols else None,
        "adc": adcs,
        "input_register": 1,
        "ima_output_register": 1,
    }


class DerivationError(ValueError):
    """The raw data cannot be completed (a derived component lacks its reference count)."""


def fill_derived(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of raw hardware *data* with every structural count filled in where absent.

    Only well-typed inputs are used; anything else is left for the validation to report.
    ``ima.adcs`` and ``ima.crossbars_per_adc`` are two spellings of the ADC sharing: the one
    missing is computed from the other (a sharing that does not divide the crossbars is
    rounded here and reported by the consistency check). A structural component without
    ``count`` must say how many instances its ``power_mw``/``area_mm2`` describe
    (``reference_count``), else :class:`DerivationError`.
    """
    data = copy.deepcopy(data)
    ima = data.get("ima")
    if isinstance(ima, dict):
        xb = _pos_int(ima, "crossbars")
        if "adcs" not in ima and xb:
            cpa = _pos_num(ima, "crossbars_per_adc")
            if cpa:
                ima["adcs"] = max(1, round(xb / cpa))
        elif "crossbars_per_adc" not in ima and xb:
            adcs = _pos_int(ima, "adcs")
            if adcs:
                ratio = xb / adcs
                ima["crossbars_per_adc"] = int(ratio) if ratio.is_integer() else ratio
        rows = _pos_int(data, "crossbar", "rows")
        if xb and rows:
            if "input_register_bytes" not in ima:
                bpr = _pos_num(ima, "input_register_bits_per_row")
                if bpr:
                    ima["input_register_bytes"] = input_register_bytes(xb, rows, bpr)
            elif "input_register_bits_per_row" not in ima:
                nbytes = _pos_int(ima, "input_register_bytes")
                if nbytes:
                    bpr = nbytes * 8 / (xb * rows)
                    ima["input_register_bits_per_row"] = int(bpr) if bpr.is_integer() else bpr
    counts = structural_counts(data)
    comps = data.get("components")
    ima_comps = comps.get("ima") if isinstance(comps, dict) else None
    if isinstance(ima_comps, dict):
        for name, n in counts.items():
            c = ima_comps.get(name)
            if not isinstance(c, dict) or "count" in c:
                continue
            if "reference_count" not in c and name in ("crossbar", "dac", "sample_hold", "adc"):
                raise DerivationError(
                    f"components.ima.{name}: its count follows the structure "
                    f"({DERIVED_IMA_COUNTS[name]}), so give reference_count: the number of "
                    "instances that power_mw and area_mm2 describe")
            if n is not None:
                c["count"] = n
    tile_comps = comps.get("tile") if isinstance(comps, dict) else None
    if isinstance(tile_comps, dict):
        for name in ONE_PER_TILE:
            c = tile_comps.get(name)
            if isinstance(c, dict) and "count" not in c:
                c["count"] = 1
    return data


# --------------------------------------------------------------------------- ADC needs


def column_sum_max(hw: HardwareParts) -> int:
    """Largest sum one column can produce in one plane: rows x (2^cell_bits - 1) x 1.

    Inputs are streamed one bit per plane (1-bit DACs), so each row adds at most one
    cell's largest value. With ``weights.flip_encoding`` (ISAAC §IV-B) every column is
    stored as w or as its complement so that its sum stays at or below half that
    maximum, which saves one ADC bit. The rule itself is stated once, in
    :mod:`simulator.core.column_sum` (the exact accuracy mode uses it too).
    """
    return column_sum.column_sum_max(hw.crossbar.rows, hw.crossbar.cell_bits,
                                     hw.weights.flip_encoding)


def adc_bits_needed(hw: HardwareParts) -> int:
    """ADC resolution that converts every column sum, the unit column's included, without
    saturating: ceil(log2(max + 1)) (:func:`simulator.core.column_sum.adc_bits_never_clip`;
    equal to cell_bits + ceil(log2 rows) - flip for a power-of-two row count)."""
    return column_sum.adc_bits_never_clip(hw.crossbar.rows, hw.crossbar.cell_bits,
                                          hw.weights.flip_encoding,
                                          unit_column=hw.weights.unit_column)


def adc_rate_needed_gsps(hw: HardwareParts) -> float:
    """Per-ADC sample rate that keeps every crossbar reading a plane per ``read_ns``.

    One plane of a crossbar needs ``cols`` conversions; an ADC serves
    ``crossbars_per_adc`` crossbars: ``crossbars_per_adc x cols / read_ns`` (GS/s).
    """
    return hw.ima.crossbars_per_adc * hw.crossbar.cols / hw.crossbar.read_ns


def plane_rates_per_ima(hw: HardwareParts) -> dict[str, float]:
    """Bit-planes per ns one IMA can read: as the crossbars allow, as the ADCs allow, and
    the peak (the smaller; every plane converts all ``cols`` columns)."""
    xbar = hw.ima.crossbars / hw.crossbar.read_ns
    adc = hw.ima.adcs * hw.ima.adc_rate_gsps / hw.crossbar.cols
    return {"crossbars": xbar, "adcs": adc, "peak": min(xbar, adc)}


def peak_bound(hw: HardwareParts) -> str:
    """Which analog unit bounds the peak: ``crossbars``, ``ADCs`` or ``balanced``."""
    r = plane_rates_per_ima(hw)
    if math.isclose(r["crossbars"], r["adcs"], rel_tol=1e-9):
        return "balanced"
    return "ADCs" if r["adcs"] < r["crossbars"] else "crossbars"


def hardware_warnings(hw: HardwareParts) -> list[str]:
    """Configurations that run but fall short: an ADC too coarse or too slow."""
    out: list[str] = []
    need = adc_bits_needed(hw)
    b = hw.ima.adc_bits
    if b < need:
        cells = (1 << hw.crossbar.cell_bits) - 1
        full = hw.crossbar.rows * cells
        enc = (f", {column_sum_max(hw)} after weights.flip_encoding"
               if hw.weights.flip_encoding else "")
        out.append(
            f"ima.adc_bits: {b}-bit ADCs are too coarse: a full column sum needs {need} bits "
            f"({hw.crossbar.rows} rows x {cells} ({hw.crossbar.cell_bits}-bit cells) x 1 "
            f"(1-bit DAC) = {full}{enc}); column sums above {(1 << b) - 1} saturate")
    rate_need = adc_rate_needed_gsps(hw)
    rate = hw.ima.adc_rate_gsps
    if rate < rate_need * (1 - 1e-9):
        cpa = hw.ima.crossbars_per_adc
        out.append(
            f"ima.adc_rate_gsps: the ADCs bound throughput: each ADC serves {cpa:g} "
            f"crossbar(s) of {hw.crossbar.cols} columns per {hw.crossbar.read_ns:g} ns read, "
            f"which needs {rate_need:g} GS/s, and converts {rate:g} GS/s; the crossbars can "
            f"be busy {100 * rate / rate_need:.0f}% of the time at most")
    return out


# --------------------------------------------------------------------------- scalings


def crossbar_scale(hw: HardwareParts) -> tuple[float, float]:
    """(read energy, area) factors of one crossbar relative to the reference array.

    ``(rows x cols / (ref_rows x ref_cols)) ** exponent`` with the exponents of
    ``scaling.crossbar`` (the YAML cites the model).
    """
    s = hw.scaling.crossbar
    cells = hw.crossbar.rows * hw.crossbar.cols / (s.reference_rows * s.reference_cols)
    return cells ** s.read_energy_exponent, cells ** s.area_exponent


def adc_scale(hw: HardwareParts) -> tuple[float, float]:
    """(energy per conversion, area) factors of one ADC relative to the reference ADC.

    Resolution: the factors of ``scaling.adc.resolution[ima.adc_bits]``. Sample rate: flat
    up to the reference rate, ``(rate / reference_rate) ** exponent`` above it.
    """
    s = hw.scaling.adc
    point = s.resolution[hw.ima.adc_bits]
    over = max(1.0, hw.ima.adc_rate_gsps / s.reference_rate_gsps)
    return (point.energy * over ** s.rate_energy_exponent,
            point.area * over ** s.rate_area_exponent)


def component_area_mm2(hw: HardwareParts, name: str) -> float:
    """Area of all instances of IMA or tile component *name* in one IMA / one tile, mm².

    Per-instance area (``area_mm2 / reference_count``) x count, times the crossbar's size
    scaling, the ADC's resolution and rate scaling, or, for a memory that gives
    ``reference_bytes``, its configured size / reference_bytes (the input register's size
    follows the crossbars: a 256-row array doubles it).
    """
    ic, tc = hw.components.ima, hw.components.tile
    if name in ("precision_select", "precision_detect"):
        return getattr(tc, name).area_mm2
    if name == "router":
        return tc.router.area_mm2
    spec = getattr(ic, name) if hasattr(ic, name) else getattr(tc, name)
    area = spec.area_mm2_of_count
    if name == "crossbar":
        area *= crossbar_scale(hw)[1]
    elif name == "adc":
        area *= adc_scale(hw)[1]
    elif name in SIZED_COMPONENTS and spec.reference_bytes:
        section, key = SIZED_COMPONENTS[name]
        area *= getattr(getattr(hw, section), key) / spec.reference_bytes
    return area
