"""Scenario files: the bundled ones load, bad ones fail with messages naming file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.core.config_io import ConfigError
from simulator.runner.flow import run
from simulator.runner.scenario import Scenario, load_scenario
from workloads.errors import WorkloadError

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "configs" / "scenarios").glob("*.yaml"))
HARDWARE = ROOT / "configs" / "hardware" / "isaac8.yaml"


def _base() -> dict[str, Any]:
    """The digits scenario with an absolute hardware path (so it can live in tmp_path)."""
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(HARDWARE)
    data["simulation"]["images"] = 1
    return data


def _write(tmp_path: Path, data: dict[str, Any], name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as ei:
        load_scenario(path)
    msg = str(ei.value)
    assert str(path) in msg, msg
    return msg


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_bundled_scenarios_load(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    ds = data["workload"].get("dataset")
    if ds is not None and not (path.parent / ds["path"]).is_dir():
        # a user's data set (the ImageNet validation folder) is not shipped: the only
        # problem is its absence, named in one line
        msg = _error(path)
        assert "workload.dataset.path: not found" in msg and "\n" not in msg
        return
    sc = load_scenario(path)
    assert isinstance(sc, Scenario) and sc.source == str(path)
    assert sc.resolve(sc.hardware).is_file()
    assert "static" in sc.pipelines and "redy" in sc.pipelines


def test_valid_copy_loads(tmp_path: Path) -> None:
    sc = load_scenario(_write(tmp_path, _base(), "ok.yaml"))
    assert sc.workload.model == "digits" and sc.simulation.images == 1


def test_unknown_top_level_key(tmp_path: Path) -> None:
    data = _base()
    data["simulaton"] = {"images": 2}
    msg = _error(_write(tmp_path, data))
    assert "simulaton" in msg and "unknown key" in msg


def test_unknown_nested_key(tmp_path: Path) -> None:
    data = _base()
    data["simulation"]["fidelty"] = "plane"
    msg = _error(_write(tmp_path, data))
    assert "simulation.fidelty" in msg and "unknown key" in msg


def test_wrong_type(tmp_path: Path) -> None:
    data = _base()
    data["simulation"]["images"] = "many"
    msg = _error(_write(tmp_path, data))
    assert "simulation.images" in msg and "integer" in msg and "'many'" in msg


@pytest.mark.parametrize("section,key", [("simulation", "images"),
                                         ("simulation", "workers"),
                                         ("simulation", "trace_sample"),
                                         ("workload", "calibration_images")])
def test_impossible_value(tmp_path: Path, section: str, key: str) -> None:
    data = _base()
    data[section][key] = 0
    msg = _error(_write(tmp_path, data))
    assert f"{section}.{key}" in msg and "greater than or equal to 1" in msg and "(got 0)" in msg


def test_mapping_tile_aligned_must_be_boolean(tmp_path: Path) -> None:
    data = _base()
    data.setdefault("mapping", {})["tile_aligned"] = "sometimes"
    msg = _error(_write(tmp_path, data))
    assert "mapping.tile_aligned" in msg and "'sometimes'" in msg


def test_unknown_fidelity_lists_choices(tmp_path: Path) -> None:
    data = _base()
    data["simulation"]["fidelity"] = "exact"
    msg = _error(_write(tmp_path, data))
    assert "simulation.fidelity" in msg
    assert all(f in msg for f in ("plane", "group", "analytic"))


def test_unknown_policy_lists_valid_ones(tmp_path: Path) -> None:
    data = _base()
    data["pipelines"]["redy"]["policy"] = "reddy"
    msg = _error(_write(tmp_path, data))
    assert "pipelines.redy.policy" in msg and "reddy" in msg
    assert all(p in msg for p in ("static", "msb-trim", "redy"))


def test_missing_hardware_file(tmp_path: Path) -> None:
    data = _base()
    data["hardware"] = "no_such_hw.yaml"
    msg = _error(_write(tmp_path, data))
    assert "hardware" in msg and "not found" in msg and "no_such_hw.yaml" in msg


def test_missing_weights_file(tmp_path: Path) -> None:
    data = _base()
    data["workload"]["weights"] = "missing.pt"
    msg = _error(_write(tmp_path, data))
    assert "workload.weights" in msg and "not found" in msg and "missing.pt" in msg


def test_empty_pipelines(tmp_path: Path) -> None:
    data = _base()
    data["pipelines"] = {}
    msg = _error(_write(tmp_path, data))
    assert "pipelines" in msg and "at least one pipeline" in msg


def test_quantization_bits_must_match_hardware(tmp_path: Path) -> None:
    data = _base()
    data["quantization"]["bits"] = 6
    path = _write(tmp_path, data)
    load_scenario(path)  # valid on its own: the hardware decides
    with pytest.raises(ConfigError) as ei:
        run(path)
    msg = str(ei.value)
    assert str(path) in msg and "quantization.bits" in msg and "(got 6)" in msg
    assert "activations.bits" in msg and "8" in msg


def test_unknown_model_name(tmp_path: Path) -> None:
    data = _base()
    data["workload"]["model"] = "resnet9000"
    with pytest.raises(WorkloadError) as ei:
        run(load_scenario(_write(tmp_path, data)))
    msg = str(ei.value)
    assert "resnet9000" in msg
    assert all(n in msg for n in ("resnet18", "vgg16", "mobilenet_v2", "digits"))


def test_pipeline_include(tmp_path: Path) -> None:
    (tmp_path / "tuned.yaml").write_text(
        yaml.safe_dump({"policy": "redy", "k": 2.5, "epsilon": 0.25, "min_bits": 3,
                        "layers": {"conv2": {"k": 4.0}}}))
    data = _base()
    data["pipelines"]["redy"] = {"include": "tuned.yaml", "min_bits": 2}  # local key wins
    sc = load_scenario(_write(tmp_path, data, "inc.yaml"))
    p = sc.pipelines["redy"]
    assert (p.policy, p.k, p.epsilon, p.min_bits) == ("redy", 2.5, 0.25, 2)
    assert p.params_for("conv2")["k"] == 4.0 and p.params_for("conv3")["k"] == 2.5


def test_pipeline_include_missing_file(tmp_path: Path) -> None:
    data = _base()
    data["pipelines"]["redy"] = {"include": "nope.yaml"}
    msg = _error(_write(tmp_path, data))
    assert "pipelines.redy.include" in msg and "nope.yaml" in msg


def test_pipeline_include_bad_key(tmp_path: Path) -> None:
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump({"policy": "redy", "kk": 1.0}))
    data = _base()
    data["pipelines"]["redy"] = {"include": "tuned.yaml"}
    msg = _error(_write(tmp_path, data))
    assert "pipelines.redy.kk" in msg and "unknown key" in msg
