"""Tests of the hardware spec (simulator/hardware/spec.py) and its report
(simulator/hardware/report.py).

The Table I / Table IV targets below are ISAAC's published numbers (Shafiee et al., ISCA
2016), not values computed by the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.core.config_io import ConfigError
from simulator.hardware.report import format_hw_report, full_activity_rates, hardware_report
from simulator.hardware.schema import ENERGY_EVENTS
from simulator.hardware.spec import HardwareSpec, load_hardware

HW_DIR = Path(__file__).resolve().parents[1] / "configs" / "hardware"
ISAAC = HW_DIR / "isaac.yaml"
ISAAC8 = HW_DIR / "isaac8.yaml"


def _raw(path: Path = ISAAC) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _write(tmp_path: Path, data: dict[str, Any], name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _load_error(tmp_path: Path, data: dict[str, Any]) -> str:
    p = _write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_hardware(p)
    msg = str(info.value)
    assert str(p) in msg
    return msg


# ----------------------------------------------------------------------------- loading


@pytest.mark.parametrize("path", [ISAAC, ISAAC8])
def test_good_files_load(path: Path) -> None:
    hw = load_hardware(path)
    assert isinstance(hw, HardwareSpec)
    assert hw.crossbar.rows == 128 and hw.crossbar.cols == 128
    assert hw.crossbar.cell_bits == 2 and hw.crossbar.read_ns == 100.0
    assert hw.ima.crossbars == 8 and hw.ima.adcs == 8 and hw.ima.adc_bits == 8
    assert hw.ima.adc_rate_gsps == pytest.approx(1.28)
    assert hw.tile.imas == 12 and hw.chip.tiles == 168 and hw.chip.tiles_per_router == 4
    assert hw.chip.routers == 42 and hw.chip.mesh_rows * hw.chip.mesh_cols >= 42
    assert hw.noc.flit_bits == 32 and hw.clock_ghz == pytest.approx(1.2)
    assert hw.offchip.static_w == pytest.approx(10.4)
    assert set(hw.energy.per_event()) == set(ENERGY_EVENTS)
    assert all(v == 0.0 for v in hw.static_mw.values())


def test_precisions_of_the_two_files() -> None:
    isaac, isaac8 = load_hardware(ISAAC), load_hardware(ISAAC8)
    assert (isaac.weights.bits, isaac.activations.bits, isaac.weight_slices) == (16, 16, 8)
    assert (isaac8.weights.bits, isaac8.activations.bits, isaac8.weight_slices) == (8, 8, 4)
    # same hardware, same per-event energies
    assert isaac.energy.per_event() == isaac8.energy.per_event()
    assert isaac8.weights_per_crossbar == 31  # (128 - unit column) // 4


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_hardware("nope.yaml")


def test_unknown_key(tmp_path: Path) -> None:
    data = _raw()
    data["ima"]["adc_speed"] = 3
    msg = _load_error(tmp_path, data)
    assert "ima.adc_speed" in msg and "unknown key" in msg


def test_unknown_top_level_key(tmp_path: Path) -> None:
    data = _raw()
    data["tiles"] = 3
    assert "tiles: unknown key" in _load_error(tmp_path, data)


def test_wrong_type(tmp_path: Path) -> None:
    data = _raw()
    data["crossbar"]["rows"] = "many"
    msg = _load_error(tmp_path, data)
    assert "crossbar.rows" in msg and "'many'" in msg


def test_string_number_is_not_coerced(tmp_path: Path) -> None:
    data = _raw()
    data["tile"]["imas"] = "12"
    assert "tile.imas" in _load_error(tmp_path, data)


def test_zero_crossbars(tmp_path: Path) -> None:
    data = _raw()
    data["ima"]["crossbars"] = 0
    msg = _load_error(tmp_path, data)
    assert "ima.crossbars" in msg and "greater than 0" in msg


def test_adc_bits_zero(tmp_path: Path) -> None:
    data = _raw()
    data["ima"]["adc_bits"] = 0
    msg = _load_error(tmp_path, data)
    assert "ima.adc_bits" in msg and "greater than 0" in msg


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("ima", "adc_rate_gsps", 0.0),
        ("crossbar", "read_ns", -1.0),
        ("offchip", "bandwidth_gbps", 0),
        ("noc", "clock_ghz", 0),
        ("energy", "crossbar_read_ref", -30.0),
    ],
)
def test_non_positive_values(tmp_path: Path, section: str, key: str, value: float) -> None:
    data = _raw()
    data[section][key] = value
    assert f"{section}.{key}" in _load_error(tmp_path, data)


def test_missing_key(tmp_path: Path) -> None:
    data = _raw()
    del data["energy"]["dac_drive"]
    msg = _load_error(tmp_path, data)
    assert "energy.dac_drive: required key is missing" in msg


def test_cross_field_cell_bits(tmp_path: Path) -> None:
    data = _raw()
    data["weights"]["bits"] = 1
    msg = _load_error(tmp_path, data)
    assert "crossbar.cell_bits: must be <= weights.bits" in msg


def test_cross_field_adc_bits_not_in_scale_table(tmp_path: Path) -> None:
    data = _raw()
    data["ima"]["adc_bits"] = 12
    msg = _load_error(tmp_path, data)
    assert "ima.adc_bits: no entry in scaling.adc.resolution" in msg and "(got 12)" in msg


def test_cross_field_adc_sharing_spellings_disagree(tmp_path: Path) -> None:
    data = _raw()
    data["ima"]["adcs"] = 4  # crossbars_per_adc: 1 -> 8 ADCs
    msg = _load_error(tmp_path, data)
    assert "ima.adcs: must equal ima.crossbars / ima.crossbars_per_adc = 8 / 1 = 8 (got 4)" in msg


def test_cross_field_component_count(tmp_path: Path) -> None:
    data = _raw()
    data["components"]["ima"]["adc"]["count"] = 4  # explicit count against 8 / 1
    msg = _load_error(tmp_path, data)
    assert ("components.ima.adc.count: must equal ima.crossbars / ima.crossbars_per_adc = "
            "8 / 1 = 8 (got 4)") in msg


def test_cross_field_input_register_too_small(tmp_path: Path) -> None:
    data = _raw()
    data["ima"]["input_register_bytes"] = 1024
    assert "ima.input_register_bytes" in _load_error(tmp_path, data)


def test_unknown_static_component(tmp_path: Path) -> None:
    data = _raw()
    data["static_mw"]["flux_capacitor"] = 1.0
    assert "static_mw.flux_capacitor: unknown component" in _load_error(tmp_path, data)


def test_scale_table_must_be_relative_to_the_reference(tmp_path: Path) -> None:
    data = _raw()
    data["scaling"]["adc"]["resolution"][8]["energy"] = 1.1
    msg = _load_error(tmp_path, data)
    assert "scaling.adc.resolution: must contain the reference resolution 8" in msg


def test_frozen() -> None:
    hw = load_hardware(ISAAC)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        hw.ima.adcs = 4  # type: ignore[misc]


# ----------------------------------------------------------------------------- energies


def test_hand_checked_energies() -> None:
    e = load_hardware(ISAAC).energy
    assert e.adc_conversion == pytest.approx(2.0 * (1 / 1.28))  # 2 mW x 0.78125 ns
    assert e.adc_conversion == pytest.approx(1.5625)
    assert e.dac_drive == pytest.approx(4.0 / 1024 * 100)  # 0.390625
    assert e.crossbar_read == pytest.approx(2.4 / 8 * 100)  # 30
    assert e.sh_sample == pytest.approx(0.010 / 1024 * 100, rel=1e-3)  # ~0.000977
    assert e.router_flit_hop == pytest.approx(42 / (8 * 1.2))
    assert e.offchip_byte == 0.0


def test_adc_resolution_scaling() -> None:
    hw = load_hardware(ISAAC8)
    hw6 = hw.with_changes({"ima": {"adc_bits": 6}})
    assert hw6.ima.adc_bits == 6 and hw6.energy.adc_bits == 6
    # factors of ../shared/data/adc_scaling.csv (energy_rel)
    assert hw6.energy.adc_conversion == pytest.approx(0.7200 * 1.5625)
    assert hw6.energy.adc_conversion_ref == pytest.approx(1.5625)
    hw10 = hw.with_changes({"ima.adc_bits": 10})
    assert hw10.energy.adc_conversion == pytest.approx(1.4274 * 1.5625)
    assert hw.energy.adc_conversion == pytest.approx(1.5625)  # original untouched


def test_with_changes_validates() -> None:
    hw = load_hardware(ISAAC8)
    with pytest.raises(ConfigError, match="ima.crossbars"):
        hw.with_changes({"ima.crossbars": 0})


# ----------------------------------------------------------------------------- report


def test_table_i_tile_and_ima_power() -> None:
    rep = hardware_report(load_hardware(ISAAC))
    assert rep["tile"]["power_mw"] == pytest.approx(330.0, rel=0.02)
    assert rep["ima"]["power_mw_per_tile"] == pytest.approx(289.0, rel=0.02)
    assert rep["ima"]["power_mw"] == pytest.approx(24.09, rel=0.02)
    assert rep["tile"]["area_mm2"] == pytest.approx(0.372, rel=0.02)
    assert rep["ima"]["area_mm2_per_tile"] == pytest.approx(0.157, rel=0.02)
    assert rep["chip"]["tiles_power_w"] == pytest.approx(55.4, rel=0.02)
    assert rep["chip"]["power_w"] == pytest.approx(65.8, rel=0.02)
    assert rep["chip"]["area_mm2"] == pytest.approx(85.4, rel=0.02)


def test_table_i_per_component_power() -> None:
    rep = hardware_report(load_hardware(ISAAC))
    for name, c in rep["components"].items():
        if c["table_power_mw"] is not None:
            assert c["power_mw"] == pytest.approx(c["table_power_mw"], rel=0.02), name
    adc = rep["components"]["adc"]
    assert adc["power_mw"] == pytest.approx(16.0 * 12)


def test_table_iv_peak() -> None:
    chip = hardware_report(load_hardware(ISAAC))["chip"]
    assert chip["peak_tops"] == pytest.approx(41.0, rel=0.03)
    assert chip["peak_gops_per_w"] == pytest.approx(627.5, rel=0.03)


def test_full_activity_rates() -> None:
    hw = load_hardware(ISAAC)
    r = full_activity_rates(hw)
    assert set(r) == set(ENERGY_EVENTS)
    assert r["adc_conversion"] == pytest.approx(12 * 8 * 1.28)
    assert r["adc_conversion"] == pytest.approx(r["sh_sample"])  # 1 ADC per crossbar
    # the input-register fills, 12 x 2048 B per 1.6 us, and the partial sums back to the
    # tile: 96 crossbars x 16 outputs x (16 + 16 + 7) bits per 1.6 us
    assert r["bus_byte"] == pytest.approx(12 * 2048 / 1600 + 96 * 16 * 39 / 8 / 1600)
    assert r["bus_byte"] * hw.energy.bus_byte == pytest.approx(7.0)  # Table I's bus
    assert r["edram_byte"] == pytest.approx(17.28)
    assert r["router_flit_hop"] == pytest.approx(2.4)
    assert r["offchip_byte"] == 0.0


def test_static_power_is_added(tmp_path: Path) -> None:
    data = _raw()
    data["static_mw"]["adc"] = 0.5  # per ADC instance
    rep = hardware_report(load_hardware(_write(tmp_path, data, "leaky.yaml")))
    base = hardware_report(load_hardware(ISAAC))
    assert rep["tile"]["power_mw"] - base["tile"]["power_mw"] == pytest.approx(0.5 * 96)


def test_adc_bits_change_report() -> None:
    hw = load_hardware(ISAAC8)
    base = hardware_report(hw)["components"]["adc"]["power_mw"]
    low = hardware_report(hw.with_changes({"ima.adc_bits": 6}))["components"]["adc"]["power_mw"]
    assert low == pytest.approx(0.7200 * base)


def test_redy_unit_reported_apart() -> None:
    rep = hardware_report(load_hardware(ISAAC8))
    psu = rep["components"]["precision_select"]
    assert psu["redy_only"] and psu["power_mw"] > 0
    assert rep["tile"]["power_mw_redy"] == pytest.approx(rep["tile"]["power_mw"] + psu["power_mw"])


def test_format_report() -> None:
    text = format_hw_report(hardware_report(load_hardware(ISAAC)))
    assert "adc" in text and "TOPS" in text and "GOPS/W" in text and "329.8" in text
