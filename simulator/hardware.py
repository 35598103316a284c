"""Hardware specification of an ISAAC-like ReRAM processing-in-memory accelerator.

The hierarchy is chip -> tiles (on a concentrated mesh) -> IMAs -> crossbars, as in
ISAAC (Shafiee et al., ISCA 2016).  Every number comes from a YAML file in
``configs/hardware/`` (see ``docs/hardware.md``); nothing here holds a default value of the
hardware.  The models are strict (``extra="forbid"``, no silent type coercion) and frozen;
cross-field consistency is checked after the per-field validation.

ADC energy and resolution
-------------------------
The YAML gives the energy of one conversion of an **8-bit** ADC (``energy.adc_conversion_8b``)
and a table ``adc_resolution_scale`` (bits -> factor relative to 8 bits).  The energy that
the engine books per conversion is ``hw.energy.adc_conversion``, which is computed on load as
``adc_conversion_8b * adc_resolution_scale[ima.adc_bits]``; ``hw.energy.adc_scale`` holds the
factor that was applied.  An ``ima.adc_bits`` missing from the table is an error.

To change a value programmatically (sweeps), use :meth:`HardwareSpec.with_changes`, which
re-validates the whole spec (``model_copy(update=...)`` would skip the checks and the ADC
scaling).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from simulator.config_io import ConfigError, format_validation_error, load_yaml

#: Per-event energy names (``hw.energy.<name>``, pJ) booked by the engine.
ENERGY_EVENTS: tuple[str, ...] = (
    "crossbar_read",
    "dac_drive",
    "sh_sample",
    "adc_conversion",
    "ima_shift_add",
    "input_register_bit",
    "ima_output_register",
    "edram_byte",
    "bus_byte",
    "tile_shift_add",
    "activation",
    "maxpool",
    "tile_output_register",
    "router_flit_hop",
    "precision_select",
    "offchip_byte",
)

#: Component (``components.ima.*`` / ``components.tile.*`` / ``offchip``) that each event
#: belongs to.  Component names are also the keys allowed in ``static_mw``.
EVENT_COMPONENT: dict[str, str] = {
    "crossbar_read": "crossbar",
    "dac_drive": "dac",
    "sh_sample": "sample_hold",
    "adc_conversion": "adc",
    "ima_shift_add": "ima_shift_add",
    "input_register_bit": "input_register",
    "ima_output_register": "ima_output_register",
    "edram_byte": "edram",
    "bus_byte": "bus",
    "tile_shift_add": "tile_shift_add",
    "activation": "activation",
    "maxpool": "maxpool",
    "tile_output_register": "tile_output_register",
    "router_flit_hop": "router",
    "precision_select": "precision_select",
    "offchip_byte": "offchip",
}

IMA_COMPONENTS: tuple[str, ...] = (
    "crossbar",
    "dac",
    "sample_hold",
    "adc",
    "ima_shift_add",
    "input_register",
    "ima_output_register",
    "precision_select",
)
TILE_COMPONENTS: tuple[str, ...] = (
    "edram",
    "bus",
    "router",
    "activation",
    "tile_shift_add",
    "maxpool",
    "tile_output_register",
)
#: Every component name (keys accepted by ``static_mw``).
COMPONENTS: tuple[str, ...] = IMA_COMPONENTS + TILE_COMPONENTS + ("offchip",)


class _Spec(BaseModel):
    """Base of all hardware models: unknown keys rejected, no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --------------------------------------------------------------------------- structure


class CrossbarSpec(_Spec):
    """One ReRAM crossbar: ``rows`` x ``cols`` cells of ``cell_bits`` bits."""

    rows: PositiveInt
    cols: PositiveInt
    cell_bits: PositiveInt
    read_ns: PositiveFloat
    """Duration of one bit-plane read (one input bit-slice on all rows), ns."""


class WeightSpec(_Spec):
    """Weight precision and encoding."""

    bits: PositiveInt
    unit_column: bool
    """Offset encoding of signed weights: one extra 'unit' column per crossbar."""


class ActivationSpec(_Spec):
    """Activation (input) precision: number of bit-slices of a static input."""

    bits: PositiveInt


class ImaSpec(_Spec):
    """In-situ multiply-accumulate unit (IMA): crossbars sharing a pool of ADCs."""

    crossbars: PositiveInt
    adcs: PositiveInt
    adc_bits: PositiveInt
    adc_rate_gsps: PositiveFloat
    """Conversions per ns of one ADC (GS/s)."""
    input_register_bytes: PositiveInt
    output_register_bytes: PositiveInt


class TileSpec(_Spec):
    """Tile: IMAs, eDRAM buffer, eDRAM-to-IMA bus and digital units."""

    imas: PositiveInt
    edram_bytes: PositiveInt
    edram_banks: PositiveInt
    edram_bus_bits: PositiveInt
    bus_wires: PositiveInt
    """Wires of the eDRAM-to-IMA bus."""
    output_register_bytes: PositiveInt


class ChipSpec(_Spec):
    """Chip: tiles on a concentrated mesh (``tiles_per_router`` tiles per router)."""

    tiles: PositiveInt
    tiles_per_router: PositiveInt
    mesh_cols: PositiveInt
    """Routers per mesh row; the mesh has ``mesh_rows`` x ``mesh_cols`` routers."""

    @property
    def routers(self) -> int:
        """Number of routers (the last one may be partly populated)."""
        return math.ceil(self.tiles / self.tiles_per_router)

    @property
    def mesh_rows(self) -> int:
        """Router rows of the mesh."""
        return math.ceil(self.routers / self.mesh_cols)


class NocSpec(_Spec):
    """On-chip network: flit width, clock, router ports and per-hop latency."""

    flit_bits: PositiveInt
    clock_ghz: PositiveFloat
    router_latency_cycles: NonNegativeInt
    ports: PositiveInt
    multicast: bool = False
    """One injection carries a packet to every destination tile (a tree of links);
    ISAAC has none: one unicast per destination tile."""


class OffchipSpec(_Spec):
    """Off-chip links joining several chips (HyperTransport in ISAAC)."""

    links: PositiveInt
    bandwidth_gbps: PositiveFloat
    """Aggregate bandwidth of all links, GB/s."""
    static_w: NonNegativeFloat
    """Power of the links, W; booked as static power, only when more than one chip is used."""
    area_mm2: NonNegativeFloat


# --------------------------------------------------------------------------- energy


class EnergyTable(_Spec):
    """Energy per event in pJ (names: :data:`ENERGY_EVENTS`).

    ``adc_conversion_8b`` is the YAML input (8-bit conversion); ``adc_conversion`` is the
    energy at ``ima.adc_bits``, set when the enclosing :class:`HardwareSpec` is validated.
    A stand-alone ``EnergyTable`` describes an 8-bit ADC (scale 1.0).
    """

    crossbar_read: NonNegativeFloat
    dac_drive: NonNegativeFloat
    sh_sample: NonNegativeFloat
    adc_conversion_8b: NonNegativeFloat
    ima_shift_add: NonNegativeFloat
    input_register_bit: NonNegativeFloat
    ima_output_register: NonNegativeFloat
    edram_byte: NonNegativeFloat
    bus_byte: NonNegativeFloat
    tile_shift_add: NonNegativeFloat
    activation: NonNegativeFloat
    maxpool: NonNegativeFloat
    tile_output_register: NonNegativeFloat
    router_flit_hop: NonNegativeFloat
    precision_select: NonNegativeFloat
    offchip_byte: NonNegativeFloat

    _adc_bits: int = PrivateAttr(default=8)
    _adc_scale: float = PrivateAttr(default=1.0)

    @property
    def adc_bits(self) -> int:
        """ADC resolution that :attr:`adc_conversion` refers to."""
        return self._adc_bits

    @property
    def adc_scale(self) -> float:
        """Factor applied to ``adc_conversion_8b`` (``adc_resolution_scale[adc_bits]``)."""
        return self._adc_scale

    @property
    def adc_conversion(self) -> float:
        """Energy of one conversion at the IMA's ADC resolution, pJ."""
        return self.adc_conversion_8b * self._adc_scale

    def per_event(self) -> dict[str, float]:
        """All per-event energies (pJ) by event name, ADC already scaled."""
        return {name: float(getattr(self, name)) for name in ENERGY_EVENTS}


# --------------------------------------------------------------------------- components


class ComponentSpec(_Spec):
    """One row of ISAAC Table I: ``count`` instances per IMA (or per tile).

    ``power_mw`` and ``area_mm2`` are for all ``count`` instances together, as in the table.
    ``power_mw`` is the *reference* power at full activity; the simulator books per-event
    energies, and the ``hw`` report compares rate x energy with this reference.
    """

    count: PositiveInt
    power_mw: NonNegativeFloat
    area_mm2: NonNegativeFloat
    values_per_cycle: PositiveInt = 1
    """Values one instance handles per clock (tile digital units and registers: the port
    width of the tile output register). ISAAC's units handle one value per cycle."""


class RouterSpec(_Spec):
    """One router of the concentrated mesh (shared by ``chip.tiles_per_router`` tiles)."""

    power_mw: NonNegativeFloat
    area_mm2: NonNegativeFloat


class PrecisionSelectSpec(_Spec):
    """ReDy precision-selection unit(s) of an IMA: group statistics -> bit window.

    Its energy per activation group is ``energy.precision_select``; it is used only by the
    ReDy pipeline and reported apart from the ISAAC baseline.
    """

    count: PositiveInt
    """Units per IMA."""
    latency_ns: NonNegativeFloat
    """Time from the last value of a group to its precision decision, ns."""
    area_mm2: NonNegativeFloat
    """Area of the ``count`` units of one IMA."""


class ImaComponents(_Spec):
    """Table I, IMA level (per IMA)."""

    crossbar: ComponentSpec
    dac: ComponentSpec
    sample_hold: ComponentSpec
    adc: ComponentSpec
    ima_shift_add: ComponentSpec
    input_register: ComponentSpec
    ima_output_register: ComponentSpec
    precision_select: PrecisionSelectSpec


class TileComponents(_Spec):
    """Table I, tile level (per tile; the router entry is per router)."""

    edram: ComponentSpec
    bus: ComponentSpec
    router: RouterSpec
    activation: ComponentSpec
    tile_shift_add: ComponentSpec
    maxpool: ComponentSpec
    tile_output_register: ComponentSpec


class Components(_Spec):
    """Per-component counts, reference power and area (ISAAC Table I layout)."""

    ima: ImaComponents
    tile: TileComponents


# --------------------------------------------------------------------------- top level


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
    adc_resolution_scale: dict[Annotated[int, Field(strict=False, gt=0)], PositiveFloat]
    """ADC energy factor by resolution, relative to 8 bits (must contain 8: 1.0).

    Keys also accept digit strings so that a JSON dump of the spec loads again."""
    static_mw: dict[str, NonNegativeFloat] = {}
    """Leakage power per component *instance*, mW; missing components leak 0."""
    components: Components

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
        scale = self.adc_resolution_scale
        if 8 not in scale or not math.isclose(scale[8], 1.0):
            p.append(
                "adc_resolution_scale: must contain 8: 1.0 (energy.adc_conversion_8b is the "
                f"8-bit reference) (got {scale.get(8)!r} for 8)"
            )
        if ima.adc_bits not in scale:
            p.append(
                f"ima.adc_bits: no entry in adc_resolution_scale (has {sorted(scale)})"
                f" (got {ima.adc_bits})"
            )
        need_ir = ima.crossbars * cb.rows * self.activations.bits
        if ima.input_register_bytes * 8 < need_ir:
            p.append(
                f"ima.input_register_bytes: must hold one {self.activations.bits}-bit input per"
                f" row of every crossbar ({need_ir // 8} B) (got {ima.input_register_bytes})"
            )
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
            "adc": ("ima.adcs", ima.adcs),
            "dac": ("ima.crossbars * crossbar.rows", ima.crossbars * cb.rows),
            "sample_hold": ("ima.crossbars * crossbar.cols", ima.crossbars * cb.cols),
            "input_register": ("one register per IMA", 1),
            "ima_output_register": ("one register per IMA", 1),
        }
        for name, (what, n) in expected.items():
            got = getattr(comp.ima, name).count
            if got != n:
                p.append(f"components.ima.{name}.count: must equal {what} = {n} (got {got})")
        for name in ("edram", "bus", "tile_output_register"):
            got = getattr(comp.tile, name).count
            if got != 1:
                p.append(f"components.tile.{name}.count: must be 1 per tile (got {got})")
        for key in self.static_mw:
            if key not in COMPONENTS:
                p.append(f"static_mw.{key}: unknown component (allowed: {', '.join(COMPONENTS)})")
        return p

    @model_validator(mode="after")
    def _check_and_bind(self) -> HardwareSpec:
        problems = self.consistency_problems()
        if problems:
            raise PydanticCustomError(
                "hardware_consistency", "{problems}", {"problems": "\n".join(problems)}
            )
        self.energy._adc_bits = self.ima.adc_bits
        self.energy._adc_scale = float(self.adc_resolution_scale[self.ima.adc_bits])
        return self

    # ----------------------------------------------------------- modification
    def with_changes(self, changes: dict[str, Any], source: str = "<with_changes>") -> HardwareSpec:
        """Return a re-validated copy with *changes* deep-merged in.

        *changes* is a nested dict such as ``{"ima": {"adc_bits": 6}}``; keys may also be
        dotted paths (``{"ima.adc_bits": 6}``).  Raises :class:`ConfigError` like loading.
        """
        data = self.model_dump()
        data["energy"].pop("adc_conversion", None)
        for key, value in changes.items():
            nested: dict[str, Any] = {}
            cur = nested
            parts = key.split(".")
            for part in parts[:-1]:
                cur = cur.setdefault(part, {})
            cur[parts[-1]] = value
            _deep_merge(data, nested)
        return hardware_from_dict(data, source)


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    """Merge *patch* into *base* in place (dicts recursively, other values replaced)."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _format_errors(exc: ValidationError, source: str) -> str:
    """Format pydantic errors as 'file: key.path: problem' lines (cross-field ones too)."""
    lines: list[str] = []
    for err in exc.errors():
        if err["type"] == "hardware_consistency":
            lines.extend(f"{source}: {line}" for line in err["ctx"]["problems"].split("\n"))
    if lines:
        return "\n".join(lines)
    return format_validation_error(exc, source)


def hardware_from_dict(data: dict[str, Any], source: str) -> HardwareSpec:
    """Validate a hardware mapping; *source* names it in :class:`ConfigError` messages."""
    try:
        return HardwareSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_hardware(path: str | Path) -> HardwareSpec:
    """Load and validate a hardware YAML file (raises :class:`ConfigError`)."""
    return hardware_from_dict(load_yaml(path), str(path))
