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


def test_counts_are_labelled_and_the_headline_is_one_figure(rr: RunResult) -> None:
    """Issue 19 item 4: counts were totals over the images printed beside per-image energy,
    and two redy / static energy ratios were printed with no word on their bases."""
    s = build_summary(rr)
    for name, p in s["pipelines"].items():
        assert p["counts_per_image"] == {k: v / N for k, v in p["counts"].items()}, name
    assert s["basis"]["pipelines.*.counts"] == f"total over the {N} simulated image(s)"
    assert s["basis"]["pipelines.*.precision"] == (f"over the {N} measured image(s) of the "
                                                   "precision pass")
    head = s["headline"]
    redy_step = next(d for d in s["decomposition"] if d["step"] == "redy (lossy)")
    assert head["ratio"] == redy_step["ratio_to_static"] and head["images"] == N
    assert head["basis"].startswith(f"mean over the {N} measured images")
    # here the measured images are the simulated ones: the ledgers' ratio is the same figure
    assert head["ratio"] == pytest.approx(s["comparison"]["dynamic_energy_ratio"], rel=1e-12)
    text = format_table(s)
    adc = s["pipelines"]["static"]["counts"]["adc_conversions"] / N / 1e6
    (row,) = [ln for ln in text.splitlines() if ln.startswith("ADC conversions / image (M)")]
    assert row.split()[5] == f"{adc:.3f}"
    assert "ADC conversions (M)" not in text
    assert text.count(f"×{head['ratio']:.3f}") == 2  # the headline and the decomposition
    (line,) = [ln for ln in text.splitlines() if ln.startswith("headline:")]
    assert line == (f"headline: redy / static energy per image ×{head['ratio']:.3f}, mean "
                    f"over the {N} measured images (dynamic energy; this chip has no static "
                    "power)")
    (sim,) = [ln for ln in text.splitlines() if ln.startswith("redy / static over")]
    assert "energy" not in sim and f"over the {N} simulated image(s)" in sim
    # a summary.json written before the headline existed: the energy ratio on that line
    del s["headline"]
    (sim,) = [ln for ln in format_table(s).splitlines() if ln.startswith("redy / static over")]
    assert f"energy {s['comparison']['energy_ratio']:.3f}, latency" in sim


def test_headline_with_leakage_is_the_steady_state() -> None:
    """With static power the dynamic decomposition is not the whole energy: the headline is
    the simulated steady state (a summary written by hand)."""
    from simulator.results.write import headline

    def pipe(static_pj: float) -> dict:
        return {"images": 3, "energy_pj": {"static": static_pj}}

    s = {"pipelines": {"static": pipe(5.0), "redy": pipe(4.0)},
         "decomposition": [{"pipeline": "redy", "lossless": False, "ratio_to_static": 0.8,
                            "images": 16}],
         "comparison": {"steady_state_energy_ratio": 0.85}}
    h = headline(s)
    assert (h["ratio"], h["images"], h["source"]) == (0.85, 3,
                                                       "comparison.steady_state_energy_ratio")
    s["pipelines"] = {"static": pipe(0.0), "redy": pipe(0.0)}
    assert headline(s)["ratio"] == 0.8
    assert headline({"pipelines": {"static": pipe(0.0)}}) is None


def test_a_hardware_variant_is_recorded(rr: RunResult) -> None:
    """Issue 19 item 6: summary.json said "hardware": "isaac8" for a variant built with
    with_changes, so two results folders could not be told apart."""
    from simulator.hardware.spec import HardwareSpec, load_hardware

    isaac8 = ROOT / "configs" / "hardware" / "isaac8.yaml"
    base = build_summary(rr)["hardware_spec"]
    assert base["file"] == str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    assert base["changes_from_file"] == {}
    variant = load_hardware(isaac8).with_changes({"ima.crossbars_per_adc": 2})
    vr = run(rr.scenario, hardware=variant)
    spec = build_summary(vr)["hardware_spec"]
    assert spec["changes_from_file"] == {"ima.crossbars_per_adc": {"file": 1, "now": 2}}
    assert spec["sha256"] != base["sha256"]
    assert spec["resolved"]["ima"]["adcs"] == 4  # 8 crossbars / 2
    again = HardwareSpec.model_validate(spec["resolved"])  # the record is the whole spec
    assert again.sha256() == spec["sha256"] and again.ima.adcs == 4
