"""Area, power and peak-throughput report of a hardware spec (``redysim hw``).

Power is *computed*, not copied: every component's power at full activity is
``rate x energy + static``, where the rate is the number of events per ns that the
component performs when it is fully busy (:func:`full_activity_rates`, the definition
written at the top of ``configs/hardware/*.yaml`` and in ``docs/hardware.md``) and the energy
is the per-event energy the simulator books.  With the ISAAC energies this reproduces
ISAAC Table I; the Table I figure given in the YAML (``components.*.power_mw``) is shown
next to it as a reference.

The on-line units of the dynamic policies are not part of ISAAC: ReDy's
precision-selection unit (``redy_only``) and the lossless policies' detect unit are listed
among the components (``online_unit``) but left out of the baseline IMA/tile/chip totals,
which have ``*_redy`` counterparts that include ReDy's unit.

Shared or slow ADCs: full activity is the chip's peak, so when the ADCs cannot keep every
crossbar busy the crossbars, DACs, sample-and-holds, input registers and buses run at the
rate the ADCs allow (:func:`simulator.hardware.derive.plane_rates_per_ima`), and the peak TOPS
says which unit bounds it. Areas follow the counts and the cited scalings
(:func:`simulator.hardware.derive.component_area_mm2`); the reference column is Table I's power
per instance times the configured count.
"""

from __future__ import annotations

import math
from typing import Any

from simulator.hardware import derive as hwderive
from simulator.hardware.schema import (
    ENERGY_EVENTS,
    EVENT_COMPONENT,
    IMA_COMPONENTS,
    ONLINE_UNITS,
    TILE_COMPONENTS,
)
from simulator.hardware.spec import HardwareSpec


def _planes_per_ns_per_tile(hw: HardwareSpec) -> float:
    """Bit-plane reads per ns of one tile at the chip's peak (crossbars or ADCs bound)."""
    return hw.tile.imas * hwderive.plane_rates_per_ima(hw)["peak"]


def _output_values_per_ns_per_tile(hw: HardwareSpec) -> float:
    """Outputs the tile's IMAs deliver at full activity (one per weight per input vector).

    Each crossbar holds ``cols // weight_slices`` weights (the paper's convention; the unit
    column is not subtracted) and finishes an input vector every ``activations.bits`` planes.
    """
    per_crossbar = hw.crossbar.cols // hw.weight_slices
    return _planes_per_ns_per_tile(hw) * per_crossbar / hw.activations.bits


def full_activity_rates(hw: HardwareSpec) -> dict[str, float]:
    """Events per ns per tile of every energy event when every unit is fully busy.

    Definition (see ``docs/hardware.md``):

    - crossbar: every crossbar reads one bit-plane per ``read_ns`` (or, when the ADCs
      cannot keep up, as many planes as they convert); every row DAC drives and every
      column sample-and-hold samples once per plane; the input register delivers one bit
      per DAC drive;
    - ADC: every column of every plane is converted (ISAAC: every ADC converts continuously
      at ``adc_rate_gsps``); the IMA shift-and-add and output register handle one ADC
      result each;
    - bus: the input-register fills (one ``activations.bits``-bit input per row of every
      crossbar every ``activations.bits`` planes) and the partial sums of the outputs
      back to the tile (one per output, ``activations.bits + weights.bits + log2 rows``
      bits);
    - eDRAM: the reads of the input-register fills plus the writes of the tile's outputs
      (:func:`_output_values_per_ns_per_tile` values of ``ceil(activations.bits / 8)`` bytes);
    - tile digital units (activation, shift-and-add, max-pool, output register): every
      instance handles one value per ``clock_ghz`` cycle;
    - router: every port forwards one flit per ``noc.clock_ghz`` cycle, the router's
      power shared by ``chip.tiles_per_router`` tiles;
    - on-line units (ReDy precision select, detect): one group per crossbar per input
      vector;
    - off-chip link: no per-byte events (its power is static; the input link's bytes are
      booked by a run, not at full activity).
    """
    act_bits = hw.activations.bits
    tc = hw.components.tile

    planes_per_ns = _planes_per_ns_per_tile(hw)
    dac = planes_per_ns * hw.crossbar.rows
    adc = planes_per_ns * hw.crossbar.cols
    loads = planes_per_ns * hw.crossbar.rows / 8  # B-bit inputs every B planes
    # and every output's partial sum (B_act + B_w + log2 rows bits) back to the tile
    psum_bits = hw.activations.bits + hw.weights.bits + math.ceil(math.log2(hw.crossbar.rows))
    bus = loads + _output_values_per_ns_per_tile(hw) * psum_bits / 8
    edram_writes = _output_values_per_ns_per_tile(hw) * math.ceil(act_bits / 8)
    rates = {
        "crossbar_read": planes_per_ns,
        "dac_drive": dac,
        "sh_sample": planes_per_ns * hw.crossbar.cols,
        "adc_conversion": adc,
        "ima_shift_add": adc,
        "input_register_bit": dac,
        "ima_output_register": adc,
        "edram_byte": loads + edram_writes,
        "bus_byte": bus,
        "tile_shift_add": _unit_rate(tc.tile_shift_add, hw),
        "activation": _unit_rate(tc.activation, hw),
        "maxpool": _unit_rate(tc.maxpool, hw),
        "tile_output_register": _unit_rate(tc.tile_output_register, hw),
        "router_flit_hop": hw.noc.ports * hw.noc.clock_ghz / hw.chip.tiles_per_router,
        "precision_select": planes_per_ns / act_bits,
        "precision_detect": planes_per_ns / act_bits,
        "offchip_byte": 0.0,
        "input_byte": 0.0,
    }
    assert set(rates) == set(ENERGY_EVENTS)
    return rates


def _unit_rate(spec, hw: HardwareSpec) -> float:
    """Values per ns of a tile digital unit kind at full activity."""
    return spec.count * spec.values_per_cycle * hw.clock_ghz


def peak_ops_per_ns(hw: HardwareSpec, *, count_unit_column: bool = False,
                    bound: str = "peak") -> float:
    """Peak operations (2 per MAC) per ns of one chip at ``activations.bits``-bit inputs.

    Every crossbar does ``rows x cols / weight_slices`` MACs per input vector of
    ``activations.bits`` planes (ISAAC's convention), at the plane rate that the crossbars
    and the ADCs allow (*bound* ``"peak"``), or that one of them allows alone
    (``"crossbars"``, ``"adcs"``). With *count_unit_column* only the whole weights that fit
    next to the unit column count.
    """
    weights = hw.weights_per_crossbar if count_unit_column else hw.crossbar.cols // hw.weight_slices
    planes_per_ns = hw.chip.tiles * hw.tile.imas * hwderive.plane_rates_per_ima(hw)[bound]
    return 2.0 * planes_per_ns * hw.crossbar.rows * weights / hw.activations.bits


def hardware_report(hw: HardwareSpec) -> dict[str, Any]:
    """Per-component, IMA, tile and chip power/area at full activity, and peak throughput."""
    rates = full_activity_rates(hw)
    energies = hw.energy.per_event()
    comp_event = {c: e for e, c in EVENT_COMPONENT.items()}
    imas = hw.tile.imas
    ic, tc = hw.components.ima, hw.components.tile

    components: dict[str, dict[str, Any]] = {}
    for name in IMA_COMPONENTS + TILE_COMPONENTS:
        event = comp_event[name]
        spec = getattr(ic, name) if name in IMA_COMPONENTS else getattr(tc, name)
        area = hwderive.component_area_mm2(hw, name)
        if name in IMA_COMPONENTS:
            level = "ima"
            count_per_tile = float(spec.count * imas)
            area *= imas
            table = spec.power_mw_of_count * imas if hasattr(spec, "power_mw") else None
        elif name == "router":
            level = "tile"
            count_per_tile = 1.0 / hw.chip.tiles_per_router
            area *= count_per_tile
            table = spec.power_mw * count_per_tile
        else:
            level = "tile"
            count_per_tile = float(spec.count)
            table = spec.power_mw_of_count if hasattr(spec, "power_mw") else None
        dynamic = rates[event] * energies[event]
        static = hw.static_mw_of(name) * count_per_tile
        components[name] = {
            "level": level,
            "count_per_tile": count_per_tile,
            "event": event,
            "energy_pj_per_event": energies[event],
            "events_per_ns_per_tile": rates[event],
            "dynamic_mw": dynamic,
            "static_mw": static,
            "power_mw": dynamic + static,
            "table_power_mw": table,
            "area_mm2": area,
            "redy_only": name == "precision_select",
            "online_unit": name in ONLINE_UNITS,
        }

    def total(names: tuple[str, ...], key: str) -> float:
        return sum(components[n][key] for n in names if not components[n]["online_unit"])

    psu = components["precision_select"]
    ima_power_tile = total(IMA_COMPONENTS, "power_mw")
    ima_area_tile = total(IMA_COMPONENTS, "area_mm2")
    ima_table_tile = total(IMA_COMPONENTS, "table_power_mw")
    tile_power = ima_power_tile + total(TILE_COMPONENTS, "power_mw")
    tile_area = ima_area_tile + total(TILE_COMPONENTS, "area_mm2")
    tile_table = ima_table_tile + total(TILE_COMPONENTS, "table_power_mw")

    n_tiles = hw.chip.tiles
    tiles_w = n_tiles * tile_power / 1000.0
    tiles_w_redy = n_tiles * (tile_power + psu["power_mw"]) / 1000.0
    tiles_area = n_tiles * tile_area
    off_w = hw.offchip.static_w
    chip_w = tiles_w + off_w
    peak_gops = peak_ops_per_ns(hw)
    chip_area = tiles_area + hw.offchip.area_mm2

    adc_e, adc_a = hwderive.adc_scale(hw)
    xb_e, xb_a = hwderive.crossbar_scale(hw)
    return {
        "name": hw.name,
        "precision": {
            "weight_bits": hw.weights.bits,
            "activation_bits": hw.activations.bits,
            "adc_bits": hw.ima.adc_bits,
            "adc_bits_needed": hw.adc_bits_needed,
            "column_sum_max": hwderive.column_sum_max(hw),
            "adc_model": hw.ima.adc_model,
            "adc_noise_lsb": hw.ima.adc_noise_lsb,
            "adc_rate_gsps": hw.ima.adc_rate_gsps,
            "adc_rate_needed_gsps": hw.adc_rate_needed_gsps,
            "crossbars_per_adc": hw.ima.crossbars_per_adc,
            "adcs_per_ima": hw.ima.adcs,
            "adc_energy_scale": adc_e,
            "adc_area_scale": adc_a,
            "crossbar_energy_scale": xb_e,
            "crossbar_area_scale": xb_a,
            "weight_slices": hw.weight_slices,
            "weights_per_crossbar": hw.weights_per_crossbar,
        },
        "warnings": hw.warnings(),
        "components": components,
        "ima": {
            "count_per_tile": imas,
            "power_mw": ima_power_tile / imas,
            "area_mm2": ima_area_tile / imas,
            "table_power_mw": ima_table_tile / imas,
            "power_mw_per_tile": ima_power_tile,
            "area_mm2_per_tile": ima_area_tile,
        },
        "tile": {
            "power_mw": tile_power,
            "area_mm2": tile_area,
            "table_power_mw": tile_table,
            "power_mw_redy": tile_power + psu["power_mw"],
            "area_mm2_redy": tile_area + psu["area_mm2"],
        },
        "chip": {
            "tiles": n_tiles,
            "crossbars": hw.crossbars_per_chip,
            "routers": hw.chip.routers,
            "mesh": [hw.chip.mesh_rows, hw.chip.mesh_cols],
            "tiles_power_w": tiles_w,
            "tiles_area_mm2": tiles_area,
            "offchip_power_w": off_w,
            "offchip_area_mm2": hw.offchip.area_mm2,
            "power_w": chip_w,
            "area_mm2": chip_area,
            "power_w_redy": tiles_w_redy + off_w,
            "area_mm2_redy": n_tiles * (tile_area + psu["area_mm2"]) + hw.offchip.area_mm2,
            "peak_tops": peak_gops / 1000.0,
            "peak_bound": hwderive.peak_bound(hw),
            "peak_tops_crossbars": peak_ops_per_ns(hw, bound="crossbars") / 1000.0,
            "peak_tops_adcs": peak_ops_per_ns(hw, bound="adcs") / 1000.0,
            "peak_tops_with_unit_column": peak_ops_per_ns(hw, count_unit_column=True) / 1000.0,
            "peak_gops_per_w": peak_gops / chip_w,
            "peak_gops_per_mm2": peak_gops / chip_area,
        },
    }


def _num(x: float | None, width: int = 10) -> str:
    """Right-aligned number with ~4 significant digits ('-' for None)."""
    if x is None:
        return "-".rjust(width)
    if x == 0:
        return "0".rjust(width)
    if float(x).is_integer() and abs(x) < 1e9:
        return f"{int(x)}".rjust(width)
    if abs(x) >= 1000 or abs(x) < 0.001:
        return f"{x:.4g}".rjust(width)
    return f"{x:.4f}".rstrip("0").rstrip(".").rjust(width)


def format_hw_report(report: dict[str, Any]) -> str:
    """Readable text table of :func:`hardware_report`'s result."""
    prec = report["precision"]
    lines = [
        f"Hardware: {report['name']}  (weights {prec['weight_bits']} b in "
        f"{prec['weight_slices']} slices, activations {prec['activation_bits']} b)",
        f"ADC: {prec['adc_bits']} b (a full column sum of {prec['column_sum_max']} needs "
        f"{prec['adc_bits_needed']} b; {prec['adc_model']} in the exact accuracy mode"
        + (f", read noise {prec['adc_noise_lsb']:g} LSB" if prec["adc_noise_lsb"] else "")
        + f"), {prec['adc_rate_gsps']:g} GS/s (keeping the "
        f"crossbars busy needs {prec['adc_rate_needed_gsps']:g}), {prec['adcs_per_ima']} per "
        f"IMA ({prec['crossbars_per_adc']:g} crossbar(s) per ADC); energy x"
        f"{prec['adc_energy_scale']:.4g}, area x{prec['adc_area_scale']:.4g} of the reference ADC",
        f"crossbar read energy x{prec['crossbar_energy_scale']:.4g}, area "
        f"x{prec['crossbar_area_scale']:.4g} of the reference array",
        *[f"WARNING: {w}" for w in report.get("warnings", [])],
        "Full activity, per tile (power = events/ns x pJ/event + static; Table I = reference "
        "power per instance x count)",
        "",
        f"{'component':<28}{'level':>5}{'count':>9}{'pJ/event':>11}{'events/ns':>11}"
        f"{'power mW':>10}{'Table I':>10}{'area mm2':>11}",
    ]
    for name, c in report["components"].items():
        tag = (" (ReDy)" if c["redy_only"] else " (lossless)" if c.get("online_unit")
               else "")
        lines.append(
            f"{(name + tag):<28}{c['level']:>5}{_num(c['count_per_tile'], 9)}"
            f"{_num(c['energy_pj_per_event'], 11)}{_num(c['events_per_ns_per_tile'], 11)}"
            f"{_num(c['power_mw'])}{_num(c['table_power_mw'])}{_num(c['area_mm2'], 11)}"
        )
    ima, tile, chip = report["ima"], report["tile"], report["chip"]
    lines += [
        "",
        f"IMA  (x{ima['count_per_tile']} per tile): {ima['power_mw']:.3f} mW "
        f"(Table I {ima['table_power_mw']:.3f}), {ima['area_mm2']:.5f} mm2; all IMAs of a tile "
        f"{ima['power_mw_per_tile']:.2f} mW, {ima['area_mm2_per_tile']:.4f} mm2",
        f"tile: {tile['power_mw']:.2f} mW (Table I {tile['table_power_mw']:.2f}), "
        f"{tile['area_mm2']:.4f} mm2; with ReDy unit {tile['power_mw_redy']:.2f} mW, "
        f"{tile['area_mm2_redy']:.4f} mm2",
        f"chip: {chip['tiles']} tiles ({chip['crossbars']} crossbars, {chip['routers']} routers, "
        f"mesh {chip['mesh'][0]}x{chip['mesh'][1]}): tiles {chip['tiles_power_w']:.2f} W, "
        f"{chip['tiles_area_mm2']:.2f} mm2; off-chip links {chip['offchip_power_w']:.2f} W, "
        f"{chip['offchip_area_mm2']:.2f} mm2",
        f"      total {chip['power_w']:.2f} W, {chip['area_mm2']:.2f} mm2 (links counted, as "
        f"ISAAC Table IV); with ReDy unit {chip['power_w_redy']:.2f} W, "
        f"{chip['area_mm2_redy']:.2f} mm2",
        f"peak: {chip['peak_tops']:.2f} TOPS at {prec['activation_bits']}-bit inputs "
        f"({chip['peak_tops_with_unit_column']:.2f} counting the unit column), "
        f"{chip['peak_gops_per_w']:.1f} GOPS/W, {chip['peak_gops_per_mm2']:.1f} GOPS/mm2",
        f"      bound by: {chip['peak_bound']} (crossbars allow "
        f"{chip['peak_tops_crossbars']:.2f} TOPS, ADCs {chip['peak_tops_adcs']:.2f})",
    ]
    return "\n".join(lines)
