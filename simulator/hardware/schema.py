"""The parts of a hardware description: component names, the per-event energy names and
the pydantic models of every section of the YAML (crossbar, IMA, tile, chip, NoC, energy,
scalings, components). :class:`~simulator.hardware.spec.HardwareSpec` assembles them.

:class:`HardwareParts` is the shape of a whole description that the derived quantities
(:mod:`simulator.hardware.derive`) read, so that they need not import the spec.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    model_validator,
)

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
    "precision_detect",
    "offchip_byte",
    "input_byte",
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
    "precision_detect": "precision_detect",
    "offchip_byte": "offchip",
    "input_byte": "offchip",
}

IMA_COMPONENTS: tuple[str, ...] = (
    "crossbar",
    "dac",
    "sample_hold",
    "adc",
    "ima_shift_add",
    "input_register",
    "ima_output_register",
)
TILE_COMPONENTS: tuple[str, ...] = (
    "edram",
    "bus",
    "router",
    "activation",
    "tile_shift_add",
    "maxpool",
    "tile_output_register",
    "precision_select",
    "precision_detect",
)
#: the on-line units of the dynamic policies (not part of ISAAC): ReDy's statistics unit
#: and the lossless policies' detect unit (docs/hardware.md)
ONLINE_UNITS: tuple[str, ...] = ("precision_select", "precision_detect")
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
    flip_encoding: bool
    """ISAAC's column encoding (each column stored as w or its complement, whichever keeps
    the column sum at or below half its maximum): the ADC needs one bit less."""


class ActivationSpec(_Spec):
    """Activation (input) precision: number of bit-slices of a static input."""

    bits: PositiveInt


class ImaSpec(_Spec):
    """In-situ multiply-accumulate unit (IMA): crossbars sharing a pool of ADCs.

    The ADC sharing is one knob with two spellings: ``crossbars_per_adc`` (the YAML's) or
    ``adcs``; the one not written is derived from the other (``adcs = crossbars /
    crossbars_per_adc``), and both must agree when both are written. The input register's
    size is another: ``input_register_bits_per_row`` (the YAML's) or
    ``input_register_bytes``.
    """

    crossbars: PositiveInt
    crossbars_per_adc: PositiveFloat
    """ADC sharing factor: crossbars served by one ADC (0.5 = two ADCs per crossbar)."""
    adcs: PositiveInt
    """ADCs per IMA (derived from ``crossbars_per_adc`` unless written)."""
    adc_bits: PositiveInt
    adc_rate_gsps: PositiveFloat
    """Conversions per ns of one ADC (GS/s)."""
    adc_model: Literal["ideal", "calibrated"] = "ideal"
    """Transfer function the exact accuracy mode (scenario ``accuracy.crossbar: exact``)
    applies to every column sum: ``ideal`` = one level per unit of column sum, clipping at
    2^adc_bits - 1; ``calibrated`` = 2^adc_bits levels spread over a range set on the
    calibration images (``adc_range_percentile``), rounding to the nearest level. Optional;
    the energy does not depend on it."""
    adc_range_percentile: float = Field(100.0, gt=0, le=100)
    """``calibrated``: the range's top is this percentile of the calibration images'
    column sums (100: their maximum). Optional."""
    adc_noise_lsb: NonNegativeFloat = 0.0
    """Gaussian read noise of a conversion, standard deviation in ADC LSB (exact mode;
    0: none). Optional."""
    adc_noise_seed: NonNegativeInt = 0
    """Seed of the read noise (the same seed gives the same noise). Optional."""
    input_register_bits_per_row: PositiveFloat
    """Bits the input register holds per row of every crossbar (ISAAC: one 16-bit input);
    the input register's size follows the crossbars: ``input_register_bytes``."""
    input_register_bytes: PositiveInt
    """Size of the input register, bytes: ``crossbars x crossbar.rows x
    input_register_bits_per_row / 8`` (derived unless written; the two are one knob)."""
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
    input_links: PositiveInt
    """Links of chip 0 (at its router 0) that bring the network's input in, each at
    ``bandwidth_gbps / links`` (docs/model.md, "Input path")."""


# --------------------------------------------------------------------------- energy


class EnergyTable(_Spec):
    """Energy per event in pJ (names: :data:`ENERGY_EVENTS`).

    ``crossbar_read_ref`` and ``adc_conversion_ref`` are the YAML inputs, for the reference
    crossbar and ADC of ``scaling``; ``crossbar_read`` and ``adc_conversion`` are the
    energies of the configured array and ADC, bound when the enclosing
    :class:`HardwareSpec` is validated (a stand-alone ``EnergyTable`` has scale 1.0).
    """

    crossbar_read_ref: NonNegativeFloat
    """One bit-plane read of the reference array (``scaling.crossbar.reference_*``)."""
    dac_drive: NonNegativeFloat
    sh_sample: NonNegativeFloat
    adc_conversion_ref: NonNegativeFloat
    """One conversion of the reference ADC (``scaling.adc.reference_*``)."""
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
    """ReDy's statistics unit, per activation group it inspects."""
    precision_detect: NonNegativeFloat
    """The lossless policies' detect unit (OR tree), per activation group it inspects."""
    offchip_byte: NonNegativeFloat
    input_byte: NonNegativeFloat
    """One byte of the network's input over an input link (``offchip.input_links``)."""

    _adc_bits: int | None = PrivateAttr(default=None)
    _adc_scale: float = PrivateAttr(default=1.0)
    _crossbar_scale: float = PrivateAttr(default=1.0)

    @property
    def adc_bits(self) -> int | None:
        """ADC resolution that :attr:`adc_conversion` refers to (None: stand-alone table)."""
        return self._adc_bits

    @property
    def adc_scale(self) -> float:
        """Factor applied to ``adc_conversion_ref`` (resolution x sample rate)."""
        return self._adc_scale

    @property
    def crossbar_scale(self) -> float:
        """Factor applied to ``crossbar_read_ref`` (array size)."""
        return self._crossbar_scale

    @property
    def adc_conversion(self) -> float:
        """Energy of one conversion of the configured ADC, pJ."""
        return self.adc_conversion_ref * self._adc_scale

    @property
    def crossbar_read(self) -> float:
        """Energy of one bit-plane read of the configured crossbar, pJ."""
        return self.crossbar_read_ref * self._crossbar_scale

    def per_event(self) -> dict[str, float]:
        """All per-event energies (pJ) by event name, ADC already scaled."""
        return {name: float(getattr(self, name)) for name in ENERGY_EVENTS}


# --------------------------------------------------------------------------- components


class ComponentSpec(_Spec):
    """One row of ISAAC Table I: ``count`` instances per IMA (or per tile).

    ``power_mw`` and ``area_mm2`` are for ``reference_count`` instances together, as in the
    table (``reference_count`` defaults to ``count``), so power and area follow the count:
    :attr:`area_mm2_of_count`. ``power_mw`` is the *reference* power at full activity; the
    simulator books per-event energies, and the ``hw`` report compares rate x energy with
    this reference. Counts that follow the structure are filled in before validation.
    """

    count: PositiveInt
    reference_count: PositiveInt
    """Instances that ``power_mw`` and ``area_mm2`` describe."""
    power_mw: NonNegativeFloat
    area_mm2: NonNegativeFloat
    values_per_cycle: PositiveInt = 1
    """Values one instance handles per clock (tile digital units and registers: the port
    width of the tile output register). ISAAC's units handle one value per cycle."""
    reference_bytes: PositiveInt | None = None
    """Memories only (input and output registers, eDRAM): the size of one instance that
    ``area_mm2`` describes; the area then follows the configured size
    (:data:`SIZED_COMPONENTS`). Absent: the area is the written one whatever the size."""

    @model_validator(mode="before")
    @classmethod
    def _default_reference(cls, data: Any) -> Any:
        if isinstance(data, dict) and "reference_count" not in data and "count" in data:
            data = {**data, "reference_count": data["count"]}
        return data

    @property
    def power_mw_of_count(self) -> float:
        """Reference power of the ``count`` instances: power_mw / reference_count x count."""
        return self.power_mw / self.reference_count * self.count

    @property
    def area_mm2_of_count(self) -> float:
        """Area of the ``count`` instances: area_mm2 / reference_count x count (unscaled)."""
        return self.area_mm2 / self.reference_count * self.count


#: Memory components and the key that sets the size of one instance (bytes).
SIZED_COMPONENTS: dict[str, tuple[str, str]] = {
    "input_register": ("ima", "input_register_bytes"),
    "ima_output_register": ("ima", "output_register_bytes"),
    "edram": ("tile", "edram_bytes"),
    "tile_output_register": ("tile", "output_register_bytes"),
}


class RouterSpec(_Spec):
    """One router of the concentrated mesh (shared by ``chip.tiles_per_router`` tiles)."""

    power_mw: NonNegativeFloat
    area_mm2: NonNegativeFloat


class OnlineUnitSpec(_Spec):
    """An on-line unit of a tile at its eDRAM-to-IMA bus: it inspects every activation
    group as the bus carries it (at bus rate, pipelined) and has its decision ``depth_cycles``
    clock cycles after the group's last byte (``precision_select``: ReDy's statistics
    unit, Σx, Σx², max -> bit window; ``precision_detect``: the lossless policies' OR tree,
    highest set bit and zero flag). Its energy per group is ``energy.<name>``; only the
    policies that need it use it, and it is reported apart from the ISAAC baseline.
    """

    count: PositiveInt
    """Units per tile."""
    depth_cycles: Annotated[int, Field(ge=0)]
    """Pipeline depth: clock cycles from a group's last byte to its decision."""
    area_mm2: NonNegativeFloat
    """Area of the ``count`` units of one tile."""


class ImaComponents(_Spec):
    """Table I, IMA level (per IMA)."""

    crossbar: ComponentSpec
    dac: ComponentSpec
    sample_hold: ComponentSpec
    adc: ComponentSpec
    ima_shift_add: ComponentSpec
    input_register: ComponentSpec
    ima_output_register: ComponentSpec


class TileComponents(_Spec):
    """Table I, tile level (per tile; the router entry is per router)."""

    edram: ComponentSpec
    bus: ComponentSpec
    router: RouterSpec
    activation: ComponentSpec
    tile_shift_add: ComponentSpec
    maxpool: ComponentSpec
    tile_output_register: ComponentSpec
    precision_select: OnlineUnitSpec
    precision_detect: OnlineUnitSpec


class Components(_Spec):
    """Per-component counts, reference power and area (ISAAC Table I layout)."""

    ima: ImaComponents
    tile: TileComponents


# --------------------------------------------------------------------------- scaling


class CrossbarScaling(_Spec):
    """Crossbar read energy and area against the array size (model cited in the YAML).

    factor = (rows x cols / (reference_rows x reference_cols)) ** exponent.
    """

    reference_rows: PositiveInt
    reference_cols: PositiveInt
    read_energy_exponent: NonNegativeFloat
    area_exponent: NonNegativeFloat


class AdcPoint(_Spec):
    """ADC energy per conversion and area at one resolution, relative to the reference."""

    energy: PositiveFloat
    area: PositiveFloat


class AdcScaling(_Spec):
    """ADC energy per conversion and area against resolution and sample rate.

    Resolution: the table ``resolution`` (bits -> factors). Sample rate: flat up to
    ``reference_rate_gsps``, ``(rate / reference_rate) ** rate_*_exponent`` above it.
    """

    reference_bits: PositiveInt
    reference_rate_gsps: PositiveFloat
    resolution: dict[Annotated[int, Field(strict=False, gt=0)], AdcPoint]
    """Keys also accept digit strings so that a JSON dump of the spec loads again."""
    rate_energy_exponent: NonNegativeFloat
    rate_area_exponent: NonNegativeFloat


class ScalingSpec(_Spec):
    """Cited models that scale the reference crossbar and ADC (see docs/hardware.md)."""

    crossbar: CrossbarScaling
    adc: AdcScaling


# --------------------------------------------------------------------------- top level



class HardwareParts(Protocol):
    """The sections of a hardware description that the derived quantities read."""

    crossbar: CrossbarSpec
    weights: WeightSpec
    ima: ImaSpec
    tile: TileSpec
    scaling: ScalingSpec
    components: Components
