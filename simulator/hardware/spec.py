"""Hardware specification of an ISAAC-like ReRAM processing-in-memory accelerator.

The hierarchy is chip -> tiles (on a concentrated mesh) -> IMAs -> crossbars, as in
ISAAC (Shafiee et al., ISCA 2016).  Every number comes from a YAML file in
``configs/hardware/`` (see ``docs/hardware.md``); nothing here holds a default value of the
hardware.  The models are strict (``extra="forbid"``, no silent type coercion) and frozen;
cross-field consistency is checked after the per-field validation.

One key per knob
----------------
Counts that follow the structure are derived (:mod:`simulator.hardware.derive`): DACs and
sample-and-holds from the crossbar geometry, ADCs from the sharing ``ima.crossbars_per_adc``
(or, equivalently, ``ima.adcs``). A count written in the YAML must agree, else the error
names both. Power and area follow the counts: a component's ``power_mw`` and ``area_mm2``
describe ``reference_count`` instances.

Scaled energies and areas
-------------------------
The YAML gives the energy of one read of the *reference* crossbar
(``energy.crossbar_read_ref``) and of one conversion of the *reference* ADC
(``energy.adc_conversion_ref``); ``scaling`` holds the cited models that scale them with
the array size and with the ADC resolution and sample rate. ``hw.energy.crossbar_read`` and
``hw.energy.adc_conversion`` (and :meth:`EnergyTable.per_event`) are the scaled values the
engine books.

A hardware file may ``include:`` a base file and override what differs
(:mod:`simulator.hardware.include`). To change a value programmatically (sweeps), use
:meth:`HardwareSpec.with_changes`, which merges the change into the data as written and
re-validates the whole spec (``model_copy(update=...)`` would skip the checks, the
derivations and the scalings).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from pydantic import (
    NonNegativeFloat,
    PositiveFloat,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from simulator.core.config_io import ConfigError, format_validation_error
from simulator.hardware import derive as hwderive
from simulator.hardware.include import (
    HardwareSource,
    dotted_to_nested,
    load_hardware_data,
    merge_override,
)
from simulator.hardware.schema import (
    COMPONENTS,
    ActivationSpec,
    ChipSpec,
    Components,
    CrossbarSpec,
    EnergyTable,
    ImaSpec,
    NocSpec,
    OffchipSpec,
    ScalingSpec,
    TileSpec,
    WeightSpec,
    _Spec,
)


class HardwareSpec(_Spec):
    """Complete accelerator description (see ``docs/hardware.md``)."""

    name: str
    crossbar: CrossbarSpec
    weights: WeightSpec
    activations: ActivationSpec
    ima: ImaSpec
    tile: TileSpec
    chip: ChipSpec
    noc: NocSpec
    clock_ghz: PositiveFloat
    """Digital clock of the tile units (shift-and-add, activation, max-pool, registers)."""
    offchip: OffchipSpec
    energy: EnergyTable
    scaling: ScalingSpec
    static_mw: dict[str, NonNegativeFloat] = {}
    """Leakage power per component *instance*, mW; missing components leak 0."""
    components: Components

    _source_data: dict[str, Any] | None = PrivateAttr(default=None)
    _origin: tuple[str, dict[str, Any]] | None = PrivateAttr(default=None)
    """(file, its data as written, includes resolved) this spec was loaded from, kept
    through :meth:`with_changes`, so a variant can say what it changed."""

    # ----------------------------------------------------------- derived quantities
    @property
    def weight_slices(self) -> int:
        """Adjacent crossbar columns per weight: ceil(weights.bits / cell_bits)."""
        return math.ceil(self.weights.bits / self.crossbar.cell_bits)

    @property
    def weights_per_crossbar(self) -> int:
        """Whole weights (logical output columns) one crossbar holds, unit column excluded."""
        usable = self.crossbar.cols - (1 if self.weights.unit_column else 0)
        return usable // self.weight_slices

    @property
    def crossbars_per_tile(self) -> int:
        """Crossbars in one tile."""
        return self.tile.imas * self.ima.crossbars

    @property
    def crossbars_per_chip(self) -> int:
        """Crossbars in one chip."""
        return self.chip.tiles * self.crossbars_per_tile

    @property
    def adc_bits_needed(self) -> int:
        """ADC resolution a full column sum needs (rows, cell bits, 1-bit DAC, encoding)."""
        return hwderive.adc_bits_needed(self)

    @property
    def adc_rate_needed_gsps(self) -> float:
        """Per-ADC sample rate that keeps every crossbar busy (GS/s)."""
        return hwderive.adc_rate_needed_gsps(self)

    def warnings(self) -> list[str]:
        """Configurations that run but fall short (ADC too coarse or too slow)."""
        return hwderive.hardware_warnings(self)

    def static_mw_of(self, component: str) -> float:
        """Leakage of one instance of *component*, mW (0 when not given)."""
        return float(self.static_mw.get(component, 0.0))

    # ----------------------------------------------------------- consistency
    def consistency_problems(self) -> list[str]:
        """Cross-field problems as ``'key.path: problem (got value)'`` lines (empty if OK)."""
        p: list[str] = []
        cb, ima, tile, chip, comp = self.crossbar, self.ima, self.tile, self.chip, self.components
        if cb.cell_bits > self.weights.bits:
            p.append(
                f"crossbar.cell_bits: must be <= weights.bits ({self.weights.bits})"
                f" (got {cb.cell_bits})"
            )
        need_cols = self.weight_slices + (1 if self.weights.unit_column else 0)
        if cb.cols < need_cols:
            p.append(
                f"crossbar.cols: a {self.weights.bits}-bit weight needs {self.weight_slices}"
                f" columns of {cb.cell_bits}-bit cells"
                f"{' plus the unit column' if self.weights.unit_column else ''}"
                f" (got {cb.cols})"
            )
        if not math.isclose(ima.adcs * ima.crossbars_per_adc, ima.crossbars, rel_tol=1e-9):
            if "adcs" in (self._written_ima_keys() or ()) and "crossbars_per_adc" in (
                    self._written_ima_keys() or ()):
                p.append(
                    f"ima.adcs: must equal ima.crossbars / ima.crossbars_per_adc = "
                    f"{ima.crossbars} / {ima.crossbars_per_adc:g} = "
                    f"{ima.crossbars / ima.crossbars_per_adc:g} (got {ima.adcs})")
            else:
                p.append(
                    f"ima.crossbars_per_adc: must divide ima.crossbars ({ima.crossbars}) into"
                    f" a whole number of ADCs (got {ima.crossbars_per_adc:g})")
        if self.offchip.input_links > self.offchip.links:
            p.append(f"offchip.input_links: must be <= offchip.links ({self.offchip.links})"
                     f" (got {self.offchip.input_links})")
        sa = self.scaling.adc
        ref = sa.resolution.get(sa.reference_bits)
        if ref is None or not (math.isclose(ref.energy, 1.0) and math.isclose(ref.area, 1.0)):
            p.append(
                f"scaling.adc.resolution: must contain the reference resolution "
                f"{sa.reference_bits} with energy 1.0 and area 1.0 (scaling.adc.reference_bits; "
                f"the energy and area of the reference ADC are energy.adc_conversion_ref and "
                f"components.ima.adc) (got {ref!r})")
        if ima.adc_bits not in sa.resolution:
            p.append(
                f"ima.adc_bits: no entry in scaling.adc.resolution (has {sorted(sa.resolution)})"
                f" (got {ima.adc_bits})"
            )
        p.extend(self._input_register_problems())
        if tile.edram_bytes % tile.edram_banks:
            p.append(
                f"tile.edram_bytes: must divide evenly into {tile.edram_banks} banks"
                f" (got {tile.edram_bytes})"
            )
        if chip.tiles_per_router > chip.tiles:
            p.append(
                f"chip.tiles_per_router: must be <= chip.tiles ({chip.tiles})"
                f" (got {chip.tiles_per_router})"
            )
        if chip.mesh_cols > chip.routers:
            p.append(
                f"chip.mesh_cols: must be <= the number of routers ({chip.routers} ="
                f" ceil(tiles / tiles_per_router)) (got {chip.mesh_cols})"
            )
        expected = {
            "crossbar": ("ima.crossbars", ima.crossbars),
            "adc": (f"ima.crossbars / ima.crossbars_per_adc = {ima.crossbars} / "
                    f"{ima.crossbars_per_adc:g}", ima.adcs),
            "dac": (f"ima.crossbars x crossbar.rows = {ima.crossbars} x {cb.rows}",
                    ima.crossbars * cb.rows),
            "sample_hold": (f"ima.crossbars x crossbar.cols = {ima.crossbars} x {cb.cols}",
                            ima.crossbars * cb.cols),
            "input_register": ("one register per IMA", 1),
            "ima_output_register": ("one register per IMA", 1),
        }
        for name, (what, n) in expected.items():
            got = getattr(comp.ima, name).count
            if got != n:
                p.append(f"components.ima.{name}.count: must equal {what} = {n} (got {got}); "
                         "remove the count to have it derived")
        for name in hwderive.ONE_PER_TILE:
            got = getattr(comp.tile, name).count
            if got != 1:
                p.append(f"components.tile.{name}.count: must be 1 per tile (got {got})")
        for key in self.static_mw:
            if key not in COMPONENTS:
                p.append(f"static_mw.{key}: unknown component (allowed: {', '.join(COMPONENTS)})")
        return p

    def _input_register_problems(self) -> list[str]:
        """The input register: its two spellings agree, and it holds one input per row."""
        ima, rows, act = self.ima, self.crossbar.rows, self.activations.bits
        written = self._written_ima_keys() or set()
        size = hwderive.input_register_bytes(ima.crossbars, rows,
                                             ima.input_register_bits_per_row)
        if {"input_register_bytes", "input_register_bits_per_row"} <= written and (
                size != ima.input_register_bytes):
            return [f"ima.input_register_bytes: must equal ima.crossbars x crossbar.rows x "
                    f"ima.input_register_bits_per_row / 8 = {ima.crossbars} x {rows} x "
                    f"{ima.input_register_bits_per_row:g} / 8 = {size} "
                    f"(got {ima.input_register_bytes}); write one of the two"]
        need = hwderive.input_register_bytes(ima.crossbars, rows, act)
        if ima.input_register_bytes >= need:
            return []
        if "input_register_bytes" in written:
            return [f"ima.input_register_bytes: must hold one {act}-bit input per row of "
                    f"every crossbar ({ima.crossbars} x {rows} x {act} bits = {need} B) "
                    f"(got {ima.input_register_bytes}); remove it to have it derived from "
                    "ima.input_register_bits_per_row"]
        return [f"ima.input_register_bits_per_row: must hold one {act}-bit input "
                f"(activations.bits) per row of every crossbar "
                f"(got {ima.input_register_bits_per_row:g})"]

    def _written_ima_keys(self) -> set[str] | None:
        """Keys of ``ima`` as written (before derivation), when known."""
        src = self._source_data
        if src is None or not isinstance(src.get("ima"), dict):
            return None
        return set(src["ima"])

    @model_validator(mode="wrap")
    @classmethod
    def _derive_check_bind(cls, data: Any, handler: Any) -> HardwareSpec:
        """Fill in the counts that follow the structure, validate the fields, remember the
        data as written, check the cross-field consistency, bind the scaled energies."""
        raw = None
        if isinstance(data, dict):
            raw = copy.deepcopy(data)
            try:
                data = hwderive.fill_derived(data)
            except hwderive.DerivationError as exc:
                raise PydanticCustomError(
                    "hardware_consistency", "{problems}", {"problems": str(exc)}) from None
        inst = handler(data)
        if raw is not None:
            inst._source_data = raw
        problems = inst.consistency_problems()
        if problems:
            raise PydanticCustomError(
                "hardware_consistency", "{problems}", {"problems": "\n".join(problems)}
            )
        inst.energy._adc_bits = inst.ima.adc_bits
        inst.energy._adc_scale = hwderive.adc_scale(inst)[0]
        inst.energy._crossbar_scale = hwderive.crossbar_scale(inst)[0]
        return inst

    # ----------------------------------------------------------- modification
    def source_data(self) -> dict[str, Any]:
        """The data this spec was validated from, as written (includes resolved), a copy.

        Derived counts are absent unless they were written. A spec built without raw data
        falls back to its full dump.
        """
        if self._source_data is not None:
            return copy.deepcopy(self._source_data)
        return self.model_dump()

    def with_changes(self, changes: dict[str, Any], source: str = "<with_changes>") -> HardwareSpec:
        """Return a re-validated copy with *changes* merged into the data as written.

        *changes* is a nested dict such as ``{"ima": {"adc_bits": 6}}``; keys may also be
        dotted paths (``{"ima.adc_bits": 6}``). Derived counts follow (change
        ``crossbar.rows`` alone and the DACs follow); setting ``ima.adcs`` replaces the
        sharing ``ima.crossbars_per_adc`` and vice versa. Raises :class:`ConfigError` like
        loading.
        """
        new = hardware_from_dict(merge_override(self.source_data(), dotted_to_nested(changes)),
                                 source)
        new._origin = self._origin
        return new

    # ----------------------------------------------------------- provenance
    def resolved(self) -> dict[str, Any]:
        """Every value of this spec, derived ones included, as JSON-ready data (loads again
        with ``HardwareSpec.model_validate``)."""
        return self.model_dump(mode="json")

    def sha256(self) -> str:
        """Hash of :meth:`resolved` (sorted keys): equal hashes, equal hardware."""
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def provenance(self) -> dict[str, Any]:
        """What results record about the hardware (summary.json ``hardware_spec``):

        ``file`` (the YAML it was loaded from, None for a spec built from a dict),
        ``changes_from_file`` (dotted key -> ``{"file": value, "now": value}`` for every
        key written differently from the file, e.g. by :meth:`with_changes`; ``None``
        stands for "not written", i.e. derived; empty when unchanged, None without a
        file), ``sha256`` and ``resolved`` (the full spec).
        """
        origin = self._origin
        return {
            "file": origin[0] if origin else None,
            "changes_from_file": (_diff(origin[1], self.source_data()) if origin else None),
            "sha256": self.sha256(),
            "resolved": self.resolved(),
        }


def _diff(a: Any, b: Any, path: str = "") -> dict[str, dict[str, Any]]:
    """Dotted key -> {"file": value in *a*, "now": value in *b*} where they differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: dict[str, dict[str, Any]] = {}
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            out.update(_diff(a.get(key), b.get(key), sub))
        return out
    return {} if a == b else {path: {"file": a, "now": b}}


def _format_errors(exc: ValidationError, source: str | HardwareSource) -> str:
    """Format pydantic errors as 'file: key.path: problem' lines (cross-field ones too).

    With a :class:`HardwareSource` (a file with includes), each field error names the file
    that wrote the key; cross-field problems name the file the user loaded.
    """
    top = source.top if isinstance(source, HardwareSource) else source
    lines: list[str] = []
    for err in exc.errors():
        if err["type"] == "hardware_consistency":
            lines.extend(f"{top}: {line}" for line in err["ctx"]["problems"].split("\n"))
    if lines:
        return "\n".join(lines)
    errors = _root_causes(exc.errors())
    if not isinstance(source, HardwareSource):
        return format_validation_error(_Errors(errors), source)
    marker = "\x00"
    lines = format_validation_error(_Errors(errors), marker).split("\n")
    return "\n".join(
        line.replace(marker, source.origin_of(tuple(err["loc"])), 1)
        for line, err in zip(lines, errors, strict=True))


class _Errors:
    """A list of pydantic error dicts that passes for a ValidationError where only
    ``errors()`` is read (:func:`format_validation_error`)."""

    def __init__(self, errors: list[Any]) -> None:
        self._errors = errors

    def errors(self) -> list[Any]:
        return self._errors


def _root_causes(errors: list[Any]) -> list[Any]:
    """Drop "required key is missing" for a derived key when another error is reported: a
    derived count (``components.ima.dac.count``, ``ima.adcs``, ...) is only missing because
    a bad value it follows from (``crossbar.rows: abc``) kept it from being derived."""
    kept = [e for e in errors if not (e["type"] == "missing" and hwderive.derived_key(e["loc"]))]
    return kept or errors


def hardware_from_dict(data: dict[str, Any], source: str | HardwareSource) -> HardwareSpec:
    """Validate a hardware mapping; *source* names it in :class:`ConfigError` messages."""
    try:
        return HardwareSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_hardware(path: str | Path) -> HardwareSpec:
    """Load and validate a hardware YAML file, resolving ``include:`` (raises ConfigError)."""
    data, source = load_hardware_data(path)
    hw = hardware_from_dict(data, source)
    hw._origin = (os.path.normpath(str(path)), copy.deepcopy(data))
    return hw
