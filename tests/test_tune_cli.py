"""``redysim tune``: tiny-grid tuning of the digits scenario, the written YAML, includes."""

import argparse
from pathlib import Path

import pytest
import torch
import yaml

from simulator.cli.tune import add_tune_parser
from simulator.core.config_io import ConfigError
from simulator.runner.scenario import load_scenario
from workloads.precision.policies import PolicySpec

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "configs" / "scenarios" / "digits.yaml"


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="redysim")
    sub = p.add_subparsers(dest="command", required=True)
    add_tune_parser(sub)
    return p.parse_args(["tune", *argv])


TINY = ("--images", "48", "--k-grid", "2,3", "--eps-grid", "0,1", "--min-bits-grid", "1")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tune") / "policies" / "digits-redy.yaml"
    args = parse(str(DIGITS), "-o", str(out), "--quiet", *TINY)
    assert args.func(args) == 0
    return out


def test_defaults_and_grid_args():
    a = parse("x.yaml")
    assert (a.budget, a.per_layer, a.pipeline, a.images, a.force, a.output) == \
        (0.5, False, "redy", None, False, None)
    b = parse("x.yaml", "--k-grid", "1.5,3", "--min-bits-grid", "2", "--per-layer")
    assert b.k_grid == [1.5, 3.0] and b.min_bits_grid == [2] and b.per_layer
    with pytest.raises(SystemExit):
        parse("x.yaml", "--k-grid", "a,b")


def test_output_is_a_valid_policy(tuned, capsys):
    text = tuned.read_text()
    assert text.startswith("# ReDy parameters tuned by: redysim tune")
    assert "never the train or test part" in text
    data = yaml.safe_load(text)
    spec = PolicySpec.model_validate(data)
    assert spec.policy == "redy"
    assert spec.k in (2.0, 3.0) and spec.epsilon in (0.0, 1.0) and spec.min_bits == 1


def test_scenario_including_it_loads(tuned, tmp_path):
    """Like the repository layout: scenarios/x.yaml includes ../policies/digits-redy.yaml."""
    sc_data = yaml.safe_load(DIGITS.read_text())
    sc_data["hardware"] = str((DIGITS.parent / sc_data["hardware"]).resolve())
    sc_data["pipelines"]["redy"] = {"include": "../policies/digits-redy.yaml"}
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "digits-redy.yaml").write_text(tuned.read_text())
    (tmp_path / "scenarios").mkdir()
    path = tmp_path / "scenarios" / "digits-tuned.yaml"
    path.write_text(yaml.safe_dump(sc_data))
    sc = load_scenario(path)
    assert sc.pipelines["redy"] == PolicySpec.model_validate(yaml.safe_load(tuned.read_text()))


def test_existing_output_needs_force(tuned):
    before = tuned.read_text()
    args = parse(str(DIGITS), "-o", str(tuned), "--quiet", *TINY)
    with pytest.raises(ConfigError, match="--force"):
        args.func(args)
    assert tuned.read_text() == before


def test_non_redy_pipeline_is_refused(tmp_path):
    args = parse(str(DIGITS), "-o", str(tmp_path / "x.yaml"), "--pipeline", "static",
                 "--quiet", *TINY)
    with pytest.raises(ConfigError, match="only a 'redy' pipeline"):
        args.func(args)
    args = parse(str(DIGITS), "-o", str(tmp_path / "x.yaml"), "--pipeline", "nope", "--quiet")
    with pytest.raises(ConfigError, match="no pipeline 'nope'"):
        args.func(args)


def test_committed_tuned_scenario_loads():
    path = ROOT / "configs" / "scenarios" / "digits-tuned.yaml"
    if not path.is_file():
        pytest.skip("digits-tuned.yaml not generated yet")
    sc = load_scenario(path)
    inc = yaml.safe_load((ROOT / "configs" / "policies" / "digits-redy.yaml").read_text())
    assert sc.pipelines["redy"] == PolicySpec.model_validate(inc)
    assert set(sc.pipelines) == {"static", "msb-trim", "redy"}
