"""Hardware knobs that are one key each, and hardware files that include a base.

Expected numbers are derived by hand from ISAAC Table I (per instance: crossbar 0.3 mW and
0.0002/8 mm², DAC 4/1024 mW, ADC 2 mW and 0.0012 mm²), the crossbar and ADC geometry, and
the scaling factors copied from ``../shared/data/adc_scaling.csv``; none is read back
from the program.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.cli.main import main
from simulator.core.config_io import ConfigError
from simulator.hardware.report import hardware_report
from simulator.hardware.spec import HardwareSpec, load_hardware

HW_DIR = Path(__file__).resolve().parents[1] / "configs" / "hardware"
ISAAC = HW_DIR / "isaac.yaml"
ISAAC8 = HW_DIR / "isaac8.yaml"


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# ----------------------------------------------------------------------------- geometry


def test_rows_256_is_one_key() -> None:
    hw = load_hardware(ISAAC8).with_changes({"crossbar.rows": 256})
    ima = hw.components.ima
    assert ima.dac.count == 8 * 256 and ima.sample_hold.count == 8 * 128
    assert ima.adc.count == 8 and ima.crossbar.count == 8
    # read energy ~ cells: 30 pJ x (256 x 128) / (128 x 128)
    assert hw.energy.crossbar_read == pytest.approx(60.0)
    assert hw.energy.per_event()["crossbar_read"] == pytest.approx(60.0)
    rep = hardware_report(hw)["components"]
    assert rep["dac"]["area_mm2"] == pytest.approx(0.00017 / 1024 * 2048 * 12)
    assert rep["crossbar"]["area_mm2"] == pytest.approx(0.0002 / 8 * 8 * 2 * 12)
    assert rep["dac"]["table_power_mw"] == pytest.approx(4.0 / 1024 * 2048 * 12)


def test_adc_resolution_needed_and_warning() -> None:
    hw = load_hardware(ISAAC8)
    # 128 rows x 3 (2-bit cells) x 1 (1-bit DAC) = 384, halved by the flip encoding: 192 -> 8 b
    assert hw.adc_bits_needed == 8 and hw.warnings() == []
    big = hw.with_changes({"crossbar.rows": 256})
    assert big.adc_bits_needed == 9  # 768 / 2 = 384 < 512
    (warning,) = big.warnings()
    assert warning.startswith("ima.adc_bits: 8-bit ADCs are too coarse")
    assert "needs 9 bits" in warning and "above 255 saturate" in warning
    assert big.with_changes({"ima.adc_bits": 9}).warnings() == []
    # without the encoding a full sum of 384 needs 9 bits already at 128 rows
    assert hw.with_changes({"weights.flip_encoding": False}).adc_bits_needed == 9
    text = hardware_report(big)["warnings"]
    assert text == big.warnings()


def test_cols_256_needs_a_faster_adc() -> None:
    hw = load_hardware(ISAAC8).with_changes({"crossbar.cols": 256})
    assert hw.adc_rate_needed_gsps == pytest.approx(2.56)  # 256 columns / 100 ns
    (warning,) = hw.warnings()
    assert warning.startswith("ima.adc_rate_gsps:") and "2.56 GS/s" in warning
    chip = hardware_report(hw)["chip"]
    assert chip["peak_bound"] == "ADCs"
    assert chip["peak_tops_adcs"] == pytest.approx(chip["peak_tops_crossbars"] / 2)


def test_explicit_count_that_contradicts_the_structure(tmp_path: Path) -> None:
    data = yaml.safe_load(ISAAC.read_text())
    data["components"]["ima"]["dac"]["count"] = 1024  # right for 128 rows
    data["crossbar"]["rows"] = 256
    with pytest.raises(ConfigError) as info:
        load_hardware(_write(tmp_path / "hw.yaml", data))
    msg = str(info.value)
    assert "components.ima.dac.count: must equal ima.crossbars x crossbar.rows = 8 x 256" in msg
    assert "= 2048 (got 1024)" in msg


def test_derived_component_needs_a_reference_count(tmp_path: Path) -> None:
    data = yaml.safe_load(ISAAC.read_text())
    del data["components"]["ima"]["adc"]["reference_count"]
    with pytest.raises(ConfigError, match="components.ima.adc: its count follows the structure"):
        load_hardware(_write(tmp_path / "hw.yaml", data))


# ----------------------------------------------------------------------------- ADC sharing


def test_adc_sharing_is_one_key() -> None:
    hw = load_hardware(ISAAC8).with_changes({"ima.crossbars_per_adc": 4})
    assert hw.ima.adcs == 2 and hw.components.ima.adc.count == 2
    rep = hardware_report(hw)
    adc = rep["components"]["adc"]
    # 2 ADCs x 12 IMAs, each 2 mW at full activity and 0.0012 mm2
    assert adc["power_mw"] == pytest.approx(2 * 12 * 2.0)
    assert adc["table_power_mw"] == pytest.approx(2 * 12 * 2.0)
    assert adc["area_mm2"] == pytest.approx(2 * 12 * 0.0012)
    # crossbars can read only as many planes as 2 ADCs convert: 2 x 1.28 / 128 per ns
    assert rep["components"]["crossbar"]["events_per_ns_per_tile"] == pytest.approx(
        12 * 2 * 1.28 / 128)
    # peak: 16128 crossbars x 128 rows x 32 weights x 2 ops per 8 planes of 100 ns, / 4
    unshared = 2 * 16128 * 128 * 32 / (8 * 100) / 1000
    assert rep["chip"]["peak_tops"] == pytest.approx(unshared / 4)
    assert rep["chip"]["peak_bound"] == "ADCs"
    assert rep["chip"]["peak_tops_crossbars"] == pytest.approx(unshared)


def test_two_spellings_of_the_sharing() -> None:
    hw = load_hardware(ISAAC8)
    a = hw.with_changes({"ima.adcs": 2})  # replaces crossbars_per_adc: 1
    assert a.ima.crossbars_per_adc == pytest.approx(4.0)
    b = hw.with_changes({"ima.crossbars": 2, "ima.adcs": 1, "components.ima.adc.count": 1})
    assert b.ima.crossbars_per_adc == pytest.approx(2.0)
    with pytest.raises(ConfigError, match=r"ima.adcs: must equal .* = 8 / 1 = 8 \(got 3\)"):
        hw.with_changes({"ima.adcs": 3, "ima.crossbars_per_adc": 1})
    with pytest.raises(ConfigError, match="ima.crossbars_per_adc: must divide ima.crossbars"):
        hw.with_changes({"ima.crossbars_per_adc": 3})
    two_per_crossbar = hw.with_changes({"ima.crossbars_per_adc": 0.5})
    assert two_per_crossbar.ima.adcs == 16


def test_explicit_adc_count_change_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"components.ima.adc.count: must equal .* \(got 2\)"):
        load_hardware(ISAAC8).with_changes({"components.ima.adc.count": 2})


# ----------------------------------------------------------------------------- ADC scaling


@pytest.mark.parametrize(("bits", "energy", "area"),
                         [(4, 0.4740, 0.3009), (6, 0.7200, 0.5224), (9, 1.1814, 1.5232)])
def test_adc_resolution_scales_energy_and_area(bits: int, energy: float, area: float) -> None:
    hw = load_hardware(ISAAC8).with_changes({"ima.adc_bits": bits})
    assert hw.energy.adc_conversion == pytest.approx(1.5625 * energy)
    adc = hardware_report(hw)["components"]["adc"]
    assert adc["area_mm2"] == pytest.approx(0.0096 * 12 * area)
    assert adc["power_mw"] == pytest.approx(16.0 * 12 * energy)


def test_adc_rate_scaling() -> None:
    hw = load_hardware(ISAAC8)
    fast = hw.with_changes({"ima.adc_rate_gsps": 2.56})
    assert fast.energy.adc_conversion == pytest.approx(1.5625 * 2)  # (2.56 / 1.28) ** 1
    assert hardware_report(fast)["components"]["adc"]["area_mm2"] == pytest.approx(0.0096 * 12 * 2)
    slow = hw.with_changes({"ima.adc_rate_gsps": 0.64})
    assert slow.energy.adc_conversion == pytest.approx(1.5625)  # flat below the reference
    # the slow ADCs convert half the planes the crossbars could read
    assert hardware_report(slow)["chip"]["peak_bound"] == "ADCs"


# ----------------------------------------------------------------------------- include


def test_isaac8_is_isaac_with_8_bit_operation() -> None:
    i16, i8 = load_hardware(ISAAC).model_dump(), load_hardware(ISAAC8).model_dump()
    assert i8["weights"]["bits"] == 8 and i8["activations"]["bits"] == 8
    # 8-bit operation yields 96 x 32 outputs per 800 ns = 4x ISAAC's 96 x 16 per 1600 ns,
    # so isaac8.yaml sizes the tile's digital units 4x Table I's (DESIGN.md section 9).
    t16, t8 = i16["components"]["tile"], i8["components"]["tile"]
    for unit, isaac_count in (("activation", 2), ("tile_shift_add", 1), ("maxpool", 1)):
        assert t16[unit]["count"] == isaac_count and t8[unit]["count"] == 4 * isaac_count
        t8[unit]["count"] = isaac_count
    reg16, reg8 = t16["tile_output_register"], t8["tile_output_register"]
    assert reg8["values_per_cycle"] == 4 * reg16["values_per_cycle"]
    assert reg8["power_mw"] == pytest.approx(4 * reg16["power_mw"])
    assert reg8["area_mm2"] == pytest.approx(4 * reg16["area_mm2"])
    t8["tile_output_register"] = reg16
    for d in (i16, i8):
        d.pop("name")
        d["weights"].pop("bits")
        d["activations"].pop("bits")
    assert i16 == i8


def test_include_override_and_chain(tmp_path: Path) -> None:
    _write(tmp_path / "mid.yaml", {"include": str(ISAAC8), "name": "mid",
                                   "ima": {"crossbars_per_adc": 2}})
    top = _write(tmp_path / "top.yaml", {"include": "mid.yaml", "name": "top",
                                         "crossbar": {"rows": 256}})
    hw = load_hardware(top)
    assert hw.name == "top" and hw.ima.adcs == 4 and hw.crossbar.rows == 256
    assert hw.activations.bits == 8 and hw.components.ima.dac.count == 8 * 256


def test_include_missing(tmp_path: Path) -> None:
    p = _write(tmp_path / "a.yaml", {"include": "nowhere.yaml"})
    with pytest.raises(ConfigError, match=r"a.yaml: include: file not found: .*nowhere.yaml"):
        load_hardware(p)


def test_include_cycle(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", {"include": "b.yaml"})
    _write(tmp_path / "b.yaml", {"include": "a.yaml"})
    with pytest.raises(ConfigError, match=r"include cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_hardware(tmp_path / "a.yaml")


def test_include_unknown_key_names_the_override(tmp_path: Path) -> None:
    p = _write(tmp_path / "v.yaml", {"include": str(ISAAC8), "ima": {"adc_speed": 3}})
    with pytest.raises(ConfigError) as info:
        load_hardware(p)
    assert str(info.value).startswith(f"{p}: ima.adc_speed: unknown key")


def test_include_type_error_names_the_override(tmp_path: Path) -> None:
    p = _write(tmp_path / "v.yaml", {"include": str(ISAAC8), "crossbar": {"rows": "many"}})
    with pytest.raises(ConfigError, match=rf"^{p}: crossbar.rows"):
        load_hardware(p)


def test_include_must_be_a_path(tmp_path: Path) -> None:
    p = _write(tmp_path / "v.yaml", {"include": ["a.yaml"]})
    with pytest.raises(ConfigError, match="include: must be the path"):
        load_hardware(p)


# ----------------------------------------------------------------------------- round trips


def test_dump_loads_again_and_changes_follow() -> None:
    hw = load_hardware(ISAAC8).with_changes({"ima.crossbars_per_adc": 2, "ima.adc_bits": 6})
    again = HardwareSpec.model_validate(hw.model_dump())
    assert again.model_dump() == hw.model_dump()
    assert again.energy.adc_conversion == pytest.approx(hw.energy.adc_conversion)
    # changes made on a spec carry the earlier ones along
    more = hw.with_changes({"crossbar.rows": 64})
    assert (more.ima.adcs, more.ima.adc_bits, more.components.ima.dac.count) == (4, 6, 8 * 64)


def test_hw_command_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hw", str(ISAAC8), "--set", "ima.crossbars_per_adc=4", "--json"]) == 0
    import json

    rep = json.loads(capsys.readouterr().out)
    assert rep["precision"]["adcs_per_ima"] == 2
    assert math.isclose(rep["chip"]["peak_tops"], rep["chip"]["peak_tops_crossbars"] / 4)
    assert main(["hw", str(ISAAC8), "--set", "ima.crossbarz=4"]) == 2
    assert "ima.crossbarz: unknown key" in capsys.readouterr().err
