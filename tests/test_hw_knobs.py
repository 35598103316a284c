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


# ------------------------------------------------------- docs/hardware.md's derived table


def _derived_table() -> list[tuple[str, list[str]]]:
    """(first code name of the row, knobs named in its second column) of every row of the
    table under "One key per knob: what is derived" in docs/hardware.md."""
    text = (HW_DIR.parents[1] / "docs" / "hardware.md").read_text()
    section = text.split("## One key per knob: what is derived", 1)[1]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("derived quantity", "---") or set(cells[0]) <= {"-"}:
            continue
        name = cells[0].split("`")[1]
        knobs = [k for i, k in enumerate(cells[1].split("`")) if i % 2]
        rows.append((name, knobs))
    return rows


def _report(hw: HardwareSpec, *path: str) -> Any:
    out: Any = hardware_report(hw)
    for p in path:
        out = out[p]
    return out


def _slots(hw: HardwareSpec) -> int:
    from simulator.model.timing import TimingRules

    return TimingRules(hw).input_slots


def _psum(hw: HardwareSpec) -> int:
    from simulator.model.timing import psum_bits

    return psum_bits(hw)


def _counted(comp: str):
    return lambda h: (_report(h, "components", comp, "area_mm2"),
                      _report(h, "components", comp, "table_power_mw"))


#: per row of the table: knob -> (new value, what to read, value worked out by hand);
#: the base is isaac8 (8 crossbars of 128 x 128 two-bit cells per IMA, 12 IMAs per tile,
#: 168 tiles, 4 per router, 7 routers per mesh row, 8-bit weights and inputs, one 8-bit
#: 1.28 GS/s ADC per crossbar, a 16-bit-per-row input register, 100 ns reads); per tile =
#: x 12 IMAs. Table I per instance: DAC 4/1024 mW and 0.00017/1024 mm2, S+H 0.01/1024 mW
#: and 0.00004/1024 mm2, ADC 2 mW and 0.0096/8 mm2, crossbar 0.0002/8 mm2, input
#: register 0.0021 mm2 for 2048 B.
DERIVED_CHECKS: dict[str, dict[str | None, tuple[Any, Any, Any]]] = {
    "components.ima.crossbar.count": {
        "ima.crossbars": (4, lambda h: h.components.ima.crossbar.count, 4)},
    "components.ima.dac.count": {
        "ima.crossbars": (4, lambda h: h.components.ima.dac.count, 4 * 128),
        "crossbar.rows": (256, lambda h: h.components.ima.dac.count, 8 * 256)},
    "components.ima.sample_hold.count": {
        "ima.crossbars": (4, lambda h: h.components.ima.sample_hold.count, 4 * 128),
        "crossbar.cols": (256, lambda h: h.components.ima.sample_hold.count, 8 * 256)},
    "ima.adcs": {
        "ima.crossbars": (4, lambda h: (h.ima.adcs, h.components.ima.adc.count), (4, 4)),
        "ima.crossbars_per_adc": (4, lambda h: (h.ima.adcs, h.components.ima.adc.count),
                                  (2, 2))},
    "ima.input_register_bytes": {
        "ima.crossbars": (4, lambda h: h.ima.input_register_bytes, 4 * 128 * 16 // 8),
        "crossbar.rows": (512, lambda h: h.ima.input_register_bytes, 8 * 512 * 16 // 8),
        "ima.input_register_bits_per_row": (32, lambda h: h.ima.input_register_bytes,
                                            8 * 128 * 32 // 8)},
    "TimingRules.input_slots": {
        "ima.input_register_bits_per_row": (32, _slots, 32 // 8),
        "activations.bits": (4, _slots, 16 // 4)},
    "components.ima.input_register.count": {
        None: (None, lambda h: (h.components.ima.input_register.count,
                                h.components.ima.ima_output_register.count,
                                h.components.tile.edram.count, h.components.tile.bus.count,
                                h.components.tile.tile_output_register.count),
               (1, 1, 1, 1, 1))},
    "components.<c>": {
        "crossbar.rows": (256, _counted("dac"),
                          (0.00017 / 1024 * 8 * 256 * 12, 4.0 / 1024 * 8 * 256 * 12)),
        "crossbar.cols": (256, _counted("sample_hold"),
                          (0.00004 / 1024 * 8 * 256 * 12, 0.01 / 1024 * 8 * 256 * 12)),
        "ima.crossbars_per_adc": (4, _counted("adc"), (0.0096 / 8 * 2 * 12, 2.0 * 2 * 12))},
    "components.input_register.area_mm2": {
        "crossbar.rows": (256, lambda h: _report(h, "components", "input_register", "area_mm2"),
                          0.0021 * (8 * 256 * 16 / 8) / 2048 * 12),
        "ima.input_register_bits_per_row": (
            8, lambda h: _report(h, "components", "input_register", "area_mm2"),
            0.0021 * (8 * 128 * 8 / 8) / 2048 * 12)},
    "hw.energy.crossbar_read": {
        "crossbar.rows": (256, lambda h: (h.energy.crossbar_read,
                                          _report(h, "components", "crossbar", "area_mm2")),
                          (30.0 * 2, 0.0002 / 8 * 8 * 2 * 12)),
        "crossbar.cols": (256, lambda h: (h.energy.crossbar_read,
                                          _report(h, "components", "crossbar", "area_mm2")),
                          (30.0 * 2, 0.0002 / 8 * 8 * 2 * 12))},
    "hw.energy.adc_conversion": {
        "ima.adc_bits": (6, lambda h: (h.energy.adc_conversion,
                                       _report(h, "components", "adc", "area_mm2")),
                         (1.5625 * 0.7200, 0.0096 / 8 * 8 * 0.5224 * 12)),
        "ima.adc_rate_gsps": (2.56, lambda h: (h.energy.adc_conversion,
                                               _report(h, "components", "adc", "area_mm2")),
                              (1.5625 * 2, 0.0096 / 8 * 8 * 2 * 12))},
    "hw.adc_bits_needed": {
        "crossbar.rows": (256, lambda h: h.adc_bits_needed, 9),  # 256 x 3 / 2 = 384 < 512
        "crossbar.cell_bits": (3, lambda h: h.adc_bits_needed, 9),  # 128 x 7 / 2 = 448 < 512
        # (with 1-bit cells the weight columns would need 7 bits, but the unit column of
        # cells of 1 sums up to 128 rows: 8, as today, so 1 cannot tell the change)
        "weights.flip_encoding": (False, lambda h: h.adc_bits_needed, 9)},  # 384 < 512
    "hw.adc_rate_needed_gsps": {
        "ima.crossbars_per_adc": (2, lambda h: h.adc_rate_needed_gsps, 2 * 128 / 100),
        "crossbar.cols": (256, lambda h: h.adc_rate_needed_gsps, 256 / 100),
        "crossbar.read_ns": (50.0, lambda h: h.adc_rate_needed_gsps, 128 / 50)},
    "hw.weight_slices": {
        "weights.bits": (16, lambda h: h.weight_slices, 16 // 2),
        "crossbar.cell_bits": (1, lambda h: h.weight_slices, 8)},
    "hw.weights_per_crossbar": {
        "crossbar.cols": (256, lambda h: h.weights_per_crossbar, 255 // 4),
        "weights.bits": (16, lambda h: h.weights_per_crossbar, 127 // 8),
        "weights.unit_column": (False, lambda h: h.weights_per_crossbar, 128 // 4)},
    "psum_bits": {
        "crossbar.rows": (256, _psum, 8 + 8 + 8),
        "activations.bits": (16, _psum, 16 + 8 + 7),
        "weights.bits": (16, _psum, 8 + 16 + 7)},
    "hw.crossbars_per_chip": {
        "ima.crossbars": (4, lambda h: h.crossbars_per_chip, 4 * 12 * 168),
        "tile.imas": (6, lambda h: h.crossbars_per_chip, 8 * 6 * 168),
        "chip.tiles": (84, lambda h: h.crossbars_per_chip, 8 * 12 * 84)},
    "hw.chip.routers": {
        "chip.tiles": (84, lambda h: (h.chip.routers, h.chip.mesh_rows), (21, 3)),
        "chip.tiles_per_router": (8, lambda h: (h.chip.routers, h.chip.mesh_rows), (21, 3)),
        "chip.mesh_cols": (6, lambda h: (h.chip.routers, h.chip.mesh_rows), (42, 7))},
    # 16128 crossbars x 128 rows x 32 weights x 2 ops per 8 planes of 100 ns = 165.15 TOPS
    "chip.peak_tops": {
        "crossbar.rows": (256, lambda h: (_report(h, "chip", "peak_tops"),
                                          _report(h, "chip", "peak_bound")),
                          (16128 * 256 * 32 * 2 / 800 / 1000, "balanced")),
        "ima.crossbars_per_adc": (4, lambda h: (_report(h, "chip", "peak_tops"),
                                                _report(h, "chip", "peak_bound")),
                                  (16128 * 128 * 32 * 2 / 800 / 1000 / 4, "ADCs")),
        "activations.bits": (16, lambda h: (_report(h, "chip", "peak_tops"),
                                            _report(h, "chip", "peak_bound")),
                             (16128 * 128 * 32 * 2 / 1600 / 1000, "balanced"))},
}


def test_every_derived_quantity_of_the_docs_is_checked() -> None:
    rows = _derived_table()
    assert len(rows) >= 15, rows
    assert [n for n, _ in rows] == list(DERIVED_CHECKS), "docs table and checks differ"
    for name, knobs in rows:
        assert sorted(k for k in DERIVED_CHECKS[name] if k) == sorted(knobs), name


@pytest.mark.parametrize(("name", "knob"), [(n, k) for n, ks in DERIVED_CHECKS.items()
                                            for k in ks])
def test_derived_quantity_follows_its_knob(name: str, knob: str | None) -> None:
    value, read, expected = DERIVED_CHECKS[name][knob]
    base = load_hardware(ISAAC8)
    hw = base if knob is None else base.with_changes({knob: value})
    got = read(hw)
    assert got == pytest.approx(expected), (name, knob, got, expected)
    if knob is not None:
        assert read(base) != pytest.approx(expected), "the check cannot tell the change"


@pytest.mark.parametrize(("path", "sets"), [
    (ISAAC, ["crossbar.rows=256", "crossbar.cols=256"]),
    (ISAAC8, ["crossbar.rows=512"]),
])
def test_rows_carry_the_input_register(path: Path, sets: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19 item 7: these exited 2 ("input_register_bytes must hold ... 4096 B")."""
    argv = ["hw", str(path), "--json"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0, capsys.readouterr().err
    import json

    rep = json.loads(capsys.readouterr().out)
    rows = int(sets[0].split("=")[1])
    bits = 16  # isaac.yaml's input_register_bits_per_row, which isaac8 includes
    assert rep["components"]["input_register"]["area_mm2"] == pytest.approx(
        0.0021 * (8 * rows * bits / 8) / 2048 * 12)
    hw = load_hardware(path).with_changes({k: int(v) for k, v in (s.split("=") for s in sets)})
    assert hw.ima.input_register_bytes == 8 * rows * bits // 8


@pytest.mark.parametrize(("where", "value", "expected"), [
    ("set", "abc", "crossbar.rows: Input should be a valid integer (got 'abc')"),
    ("set", "128.5", "crossbar.rows: Input should be a valid integer (got 128.5)"),
    ("file", 0, "crossbar.rows: Input should be greater than 0 (got 0)"),
    ("file", -128, "crossbar.rows: Input should be greater than 0 (got -128)"),
])
def test_bad_rows_give_one_line(where: str, value: Any, expected: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19 item 9: each added "components.ima.dac.count: required key is missing"."""
    if where == "set":
        argv = ["hw", str(ISAAC), "--set", f"crossbar.rows={value}"]
    else:
        data = yaml.safe_load(ISAAC.read_text())
        data["crossbar"]["rows"] = value
        argv = ["hw", str(_write(tmp_path / "bad.yaml", data))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "required key" not in err, err


def test_bad_sharing_gives_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A sharing 'two' added ima.adcs and components.ima.adc.count as missing."""
    assert main(["hw", str(ISAAC8), "--set", "ima.crossbars_per_adc=two"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "ima.crossbars_per_adc: Input should be a valid number (got 'two')" in err


def test_a_missing_knob_is_still_reported(tmp_path: Path) -> None:
    """Only the derived keys' absence is a consequence; a deleted knob is still named."""
    data = yaml.safe_load(ISAAC.read_text())
    del data["crossbar"]["rows"]
    with pytest.raises(ConfigError) as exc:
        load_hardware(_write(tmp_path / "norows.yaml", data))
    assert str(exc.value).splitlines() == [f"{tmp_path / 'norows.yaml'}: crossbar.rows: "
                                           "required key is missing"]


def test_input_register_spellings(tmp_path: Path) -> None:
    hw = load_hardware(ISAAC8)
    assert (hw.ima.input_register_bytes, hw.ima.input_register_bits_per_row) == (2048, 16)
    # bytes written alone: bits per row derived; both written and disagreeing: an error
    assert hw.with_changes({"ima.input_register_bytes": 4096}).ima.input_register_bits_per_row \
        == 32
    data = yaml.safe_load(ISAAC.read_text())
    data["ima"]["input_register_bytes"] = 4096
    with pytest.raises(ConfigError, match=r"ima.input_register_bytes: must equal ima.crossbars "
                                          r"x crossbar.rows x ima.input_register_bits_per_row "
                                          r"/ 8 = 8 x 128 x 16 / 8 = 2048 \(got 4096\)"):
        load_hardware(_write(tmp_path / "both.yaml", data))
    with pytest.raises(ConfigError, match="ima.input_register_bits_per_row: must hold one "
                                          "8-bit input"):
        hw.with_changes({"ima.input_register_bits_per_row": 4})
