"""Per-image dynamic energy, its spread, and the saving decomposition, against the ledgers of
real simulated pipelines (digits CNN, analytic fidelity: counts equal every fidelity's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.results.write import build_summary, format_table
from simulator.runner.flow import RunResult, run
from simulator.runner.image_energy import ImageEnergyModel, spread
from simulator.runner.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
N = 6  # measured = kept = simulated images


@pytest.fixture(scope="module")
def rr() -> RunResult:
    return run(Scenario.model_validate({
        "name": "digits-decomposition",
        "hardware": "../hardware/isaac8.yaml",
        "source": str(ROOT / "configs" / "scenarios" / "digits.yaml"),
        "workload": {"model": "digits", "calibration_images": 32, "accuracy_images": N,
                     "eval_images": N},
        "pipelines": {"static": {"policy": "static"}, "zero-skip": {"policy": "zero-skip"},
                      "msb-trim": {"policy": "msb-trim"},
                      "redy": {"policy": "redy", "k": 2.0, "epsilon": 1.0}},
        "simulation": {"fidelity": "analytic", "images": N, "workers": 1},
    }))


def _noc_units(rr: RunResult) -> dict:
    """The NoC units of one image per layer, planned as the run planned them."""
    from simulator.runner.simulate import prepare_timing

    return prepare_timing(rr.workload.traced.graph, rr.mapping, rr.hardware).noc.layer_units


def test_model_reproduces_each_ledger(rr: RunResult) -> None:
    for name, pr in rr.pipelines.items():
        pp = rr.precision[name]
        model = ImageEnergyModel.from_plans(pr.plans, pr.ledger, pr.policy != "static",
                                            _noc_units(rr))
        e = model.energy({n: lp.image_planes for n, lp in pp.layers.items()})
        assert e.shape == (N,)
        assert float(e.sum()) == pytest.approx(pr.ledger.dynamic_energy(), rel=1e-12), name


def test_static_energy_is_the_same_for_every_image(rr: RunResult) -> None:
    sp = rr.images["spread"]["static"]
    assert sp["images"] == N
    assert sp["mean_bits"] == {"min": 8.0, "median": 8.0, "mean": 8.0, "max": 8.0}
    e = sp["dynamic_energy_pj"]
    assert e["min"] == pytest.approx(e["max"], rel=1e-12)


def test_decomposition_matches_simulated_pipelines(rr: RunResult) -> None:
    """The derived zero-skip and msb-trim steps equal pipelines simulated with those
    policies; the lossy step equals the redy pipeline."""
    dec = {d["step"]: d for d in rr.images["decomposition"]}
    per_image = {n: pr.ledger.dynamic_energy() / N for n, pr in rr.pipelines.items()}
    for step, pipe in (("static", "static"), ("zero-group skipping", "zero-skip"),
                       ("msb-trim (lossless)", "msb-trim"), ("redy (lossy)", "redy")):
        assert dec[step]["dynamic_energy_pj_per_image"] == pytest.approx(
            per_image[pipe], rel=1e-12), step
        assert dec[step]["mean_bits"] == pytest.approx(
            rr.pipelines[pipe].mean_bits_per_group(), rel=1e-12), step
    assert dec["msb-trim (lossless)"]["accuracy"] == dec["static"]["accuracy"]
    assert dec["redy (lossy)"]["accuracy"] == rr.precision["redy"].accuracy
    assert dec["static"]["ratio_to_static"] == 1.0


def test_zero_skip_planes_by_hand(rr: RunResult) -> None:
    """zero-skip streams B planes for every group that is not all zero."""
    st, zs = rr.precision["static"], rr.precision["zero-skip"]
    for name, lp in zs.layers.items():
        zero = st.layers[name].image_zero_groups
        assert np.array_equal(lp.image_planes, 8 * (lp.positions - zero)), name
        kept = lp.planes
        assert set(np.unique(kept)) <= {0, 8}


def test_spread_and_table(rr: RunResult) -> None:
    assert spread(np.array([3.0, 1.0, 2.0])) == {"min": 1.0, "median": 2.0, "mean": 2.0,
                                                  "max": 3.0}
    s = build_summary(rr)
    assert s["decomposition"][0]["step"] == "static"
    assert s["pipelines"]["redy"]["spread"]["images"] == N
    text = format_table(s)
    assert "where the saving comes from" in text and f"over {N} measured images" in text
