"""Numbers and booleans in scenario files are never converted from other types.

The fields are discovered from the models, so fields added later are covered: every
int / float / bool field of every scenario-side model (and int / float values inside
its dicts and tuples) must reject a quoted number, and int fields must reject 2.0.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mapping.mapper import MappingOptions
from simulator.core.config_io import STRICT_CONFIG, ConfigError, StrictModel, validate
from simulator.runner.scenario import Scenario, SimulationOptions, WorkloadSpec, load_scenario
from workloads.precision.policies import LayerOverride, PolicySpec
from workloads.precision.quantize import QuantConfig

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.faults
BASE: dict[str, Any] = {"name": "s", "hardware": "h.yaml", "workload": {"model": "digits"}}

#: where each model sits in a scenario
SECTIONS: dict[type[BaseModel], tuple[str, ...]] = {
    WorkloadSpec: ("workload",),
    SimulationOptions: ("simulation",),
    QuantConfig: ("quantization",),
    MappingOptions: ("mapping",),
    PolicySpec: ("pipelines", "p"),
    LayerOverride: ("pipelines", "p", "layers", "conv1"),
}


def _scalar_kinds(ann: Any) -> set[type]:
    """int / float / bool found anywhere in an annotation."""
    out: set[type] = set()
    if ann in (int, float, bool):
        return {ann}
    for a in typing.get_args(ann):
        out |= _scalar_kinds(a)
    return out


def _container(ann: Any) -> str:
    """'dict', 'tuple' or '' for the outer shape of an annotation (unions unwrapped)."""
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(ann):
            if c := _container(a):
                return c
        return ""
    if origin is dict:
        return "dict"
    if origin is tuple:
        return "tuple"
    return ""


def numeric_fields() -> list[tuple[type[BaseModel], str, set[type], str]]:
    """(model, field, scalar kinds, container) for every numeric or boolean field."""
    out = []
    for model in SECTIONS:
        for name, f in model.model_fields.items():
            kinds = _scalar_kinds(f.annotation)
            if kinds:
                out.append((model, name, kinds, _container(f.annotation)))
    return out


def _scenario_with(model: type[BaseModel], field: str, value: Any) -> dict[str, Any]:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    path = (*SECTIONS[model], field)
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if model is LayerOverride:
        data["pipelines"]["p"].setdefault("policy", "redy")
    elif model is PolicySpec:
        node.setdefault("policy", "redy")
    node[path[-1]] = value
    return data


def _shaped(value: Any, container: str) -> Any:
    if container == "dict":
        return {"conv1": value}
    if container == "tuple":
        return [value, 8, 8]
    return value


def _models_in(ann: Any, seen: set[type]) -> set[type]:
    """Every pydantic model reachable from an annotation (fields of fields...)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        if ann not in seen:
            seen.add(ann)
            for f in ann.model_fields.values():
                _models_in(f.annotation, seen)
        return seen
    for a in typing.get_args(ann):
        _models_in(a, seen)
    return seen


def test_every_scenario_model_is_strict() -> None:
    """Every model a scenario can hold, including ones added later, is strict."""
    models = _models_in(Scenario, set())
    assert set(SECTIONS) <= models
    for model in models:
        assert issubclass(model, StrictModel) or model.model_config.get("strict"), model
        assert model.model_config.get("strict") is True and (
            model.model_config.get("extra") == STRICT_CONFIG["extra"]), model


@pytest.mark.parametrize("model,field,kinds,container", numeric_fields(),
                         ids=lambda x: x if isinstance(x, str) else getattr(x, "__name__", ""))
def test_quoted_numbers_are_rejected(model, field, kinds, container) -> None:
    bad = "true" if kinds == {bool} else "3"
    data = _scenario_with(model, field, _shaped(bad, container))
    with pytest.raises(ConfigError) as exc:
        validate(Scenario, data, "sc.yaml")
    msg = str(exc.value)
    assert f"{field}" in msg and f"(got {bad!r})" in msg, msg
    assert msg.startswith("sc.yaml: " + ".".join(SECTIONS[model])), msg


@pytest.mark.parametrize("model,field,kinds,container",
                         [f for f in numeric_fields() if f[2] == {int} or f[2] == {int, str}],
                         ids=lambda x: x if isinstance(x, str) else getattr(x, "__name__", ""))
def test_integers_reject_floats(model, field, kinds, container) -> None:
    data = _scenario_with(model, field, _shaped(2.0, container))
    with pytest.raises(ConfigError, match=r"valid integer.* \(got 2\.0\); write it as an "
                                          r"integer: 2"):
        validate(Scenario, data, "sc.yaml")


def test_floats_accept_integers_and_bools_only_booleans() -> None:
    sc = validate(Scenario, _scenario_with(PolicySpec, "k", 2), "sc.yaml")
    assert sc.pipelines["p"].k == 2.0 and isinstance(sc.pipelines["p"].k, float)
    for bad in (1, "yes", "true"):
        with pytest.raises(ConfigError, match="simulation.trace: Input should be a valid "
                                              "boolean"):
            validate(Scenario, _scenario_with(SimulationOptions, "trace", bad), "sc.yaml")


def test_input_size_as_text_in_a_yaml_file(tmp_path: Path) -> None:
    """The case of the issue: ``input_size: "224"`` in a file."""
    text = (ROOT / "configs" / "scenarios" / "quickstart.yaml").read_text()
    assert "input_size: 224" in text
    p = tmp_path / "q.yaml"
    p.write_text(text.replace("input_size: 224", 'input_size: "224"')
                 .replace("../hardware/", str(ROOT / "configs" / "hardware") + "/"))
    with pytest.raises(ConfigError) as exc:
        load_scenario(p)
    assert str(exc.value) == (f"{p}: workload.input_size: Input should be a valid integer "
                              "(got '224'); numbers are not read from quoted text: write 224 "
                              "without quotes")


def test_yaml_exponent_without_point_is_text() -> None:
    """YAML 1.1 reads 1e9 as a string: the error says how to write it."""
    with pytest.raises(ConfigError, match=r"YAML reads 1e9 as text: write the number in full "
                                          r"\(1000000000\)"):
        validate(Scenario, _scenario_with(SimulationOptions, "images", "1e9"), "sc.yaml")


def test_union_branches_merge_into_one_line() -> None:
    with pytest.raises(ConfigError) as exc:
        validate(Scenario, _scenario_with(MappingOptions, "chips", "2"), "sc.yaml")
    assert str(exc.value).splitlines() == [
        "sc.yaml: mapping.chips: Input should be a valid integer, or 'auto' (got '2'); "
        "numbers are not read from quoted text: write 2 without quotes"]


def test_lists_still_give_tuples() -> None:
    data = _scenario_with(WorkloadSpec, "input_shape", [3, 32, 32])
    assert validate(Scenario, data, "sc.yaml").workload.input_shape == (3, 32, 32)


@pytest.mark.parametrize("seed", [-1, 2**32, 10**30])
def test_seed_range(seed: int) -> None:
    with pytest.raises(ConfigError, match="workload.seed"):
        validate(Scenario, _scenario_with(WorkloadSpec, "seed", seed), "sc.yaml")


def test_shipped_scenarios_still_load() -> None:
    for p in sorted((ROOT / "configs" / "scenarios").glob("*.yaml")):
        if p.name == "resnet18-imagenet.yaml" and not (ROOT / "data" / "imagenet").is_dir():
            # the user's ImageNet folder (docs/accuracy.md): only the data may be missing
            with pytest.raises(ConfigError, match=r"workload\.dataset\.path: not found"):
                load_scenario(p)
            continue
        assert load_scenario(p).name
