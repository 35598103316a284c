"""Run-size estimate: the work counts by hand, the model's arithmetic, the refusals.

The refusal tests run the CLI in-process with a huge ``images`` (in the YAML and with
``--images``) and assert that it stops before the activations are captured: the
capture function is replaced by one that fails the test.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from simulator.cli.main import main
from simulator.runner import estimate as E
from simulator.runner.estimate import (
    RunTooLarge,
    check_fits,
    check_workload_fits,
    estimate_run,
    work_counts,
)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def digits():
    """Graph and mapping of the digits scenario."""
    from simulator.runner.flow import prepare
    from simulator.runner.scenario import load_scenario

    sc = load_scenario(ROOT / "configs" / "scenarios" / "digits.yaml")
    hw, wl, mapping = prepare(sc)
    return sc, hw, wl, mapping


def test_work_counts_of_digits_by_hand(digits) -> None:
    """Digits CNN on 128-row crossbars, kernel-aligned row blocks (docs/mapping.md):

    conv1 3x3x1 = 9 rows -> 1 row block, 8x8 outputs: 64 MVMs;
    conv2 3x3x16 = 144 rows, 14 channels (126 rows) per block -> 2 blocks x 64 = 128;
    conv3 3x3x32 = 288 rows -> 3 blocks x 4x4 = 48; fc 256 rows -> 2 blocks x 1 = 2.
    Lane MVMs 64 + 128 + 48 + 2 = 242. Nodes: x, conv1, conv2, pool1, conv3, pool2,
    flatten, fc, output = 9; positions 64+64+64+16+16+4+1+1+1 = 231; rows
    8+8+8+4+4+2+1+1+1 = 37.
    """
    _, _, wl, mapping = digits
    assert work_counts(wl.traced.graph, mapping) == E.WorkCounts(242, 9, 231, 37)


def _sim(**kw) -> SimpleNamespace:
    base = dict(images=10, fidelity="group", workers=2, trace=False, trace_sample=1,
                trace_max_events=700_000)
    return SimpleNamespace(**{**base, **kw})


#: round values for the model's constants, so that every expected figure below is hand
#: arithmetic (the constants themselves are measured; bench/estimate_calibration.py)
ROUND = {"EVENTS_PER_NODE": 2.0, "EVENTS_PER_POSITION": 0.5, "EVENTS_PER_ROW": 1.0,
         "EVENTS_PER_PLANE": 3.0,
         "PLAN_BYTES_PER_MVM": 10.0, "NODE_BYTES": 100.0, "POSITION_BYTES": 1.0,
         "MVM_BYTES": 2.0, "ROW_BYTES": 4.0, "RECORD_BYTES_PER_MVM": 1000.0,
         "DYNAMIC_CAP": {"group": 1_000_000, "plane": 64_000_000, "analytic": 8_000_000},
         "BYTES_PER_TRACE_EVENT": 100.0, "TRACE_EVENTS_PER_MVM": 3, "ROW_SECONDS": 1e-3,
         "ANALYTIC_MVM_SECONDS": 1e-4, "GROUP_MVM_SECONDS": 1e-3, "PLANE_SECONDS": 1e-4,
         "TRACE_TIME_FACTOR": 2.0}


def test_estimate_arithmetic(digits, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model of the module's docstring (docs/robustness.md) with the round constants
    above, on the digits counts of test_work_counts_of_digits_by_hand: G = 242 lane MVMs,
    V = 9 nodes, P = 231 positions, H = 37 rows per image; N = 10 images, B = 8."""
    for name, value in ROUND.items():
        monkeypatch.setattr(E, name, value)
    _, _, wl, mapping = digits
    g = wl.traced.graph
    # group, 3 pipelines on 2 workers: events 2*9 + (0.5*231 + 1*37)*10 = 1,543 per
    # pipeline;
    # memory 10*242 (plans) + min(1000*2420, 1e6) (buffers, capped) + 10*(100*9 + 231 +
    # 2*242) = 2,420 + 1,000,000 + 16,150 = 1,018,570; time 1e-3*37*10 + 1e-4*2420 +
    # 1e-3*2420 = 3.032 s per pipeline, two rounds
    est = estimate_run(_sim(), 3, g, mapping, 8, available_bytes=1e12, load_factor=1.0)
    assert est.events == pytest.approx(3 * 1_543)
    assert est.bytes_per_pipeline == pytest.approx(1_018_570)
    assert est.concurrent == 2 and est.peak_bytes == pytest.approx(2_037_140)
    assert est.seconds == pytest.approx(6.064)
    # plane, one pipeline: events 3*8*2420 = 58,080; buffers per plane 1000*2420*8 =
    # 19,360,000 (under the cap); time 0.37 + 0.242 + 1e-4*8*2420 = 2.548 s
    plane = estimate_run(_sim(fidelity="plane"), 1, g, mapping, 8, available_bytes=1e12,
                         load_factor=1.0)
    assert plane.events == pytest.approx(58_080)
    assert plane.peak_bytes == pytest.approx(2_420 + 19_360_000 + 16_150)
    assert plane.seconds == pytest.approx(2.548)
    # analytic: no events; per image 4*37 + 2*242 = 632 B; time 0.37 + 0.242 s
    ana = estimate_run(_sim(fidelity="analytic"), 1, g, mapping, 8, available_bytes=1e12,
                       load_factor=1.0)
    assert ana.events == 0 and ana.seconds == pytest.approx(0.612)
    assert ana.peak_bytes == pytest.approx(2_420 + 2_420_000 + 6_320)
    # group with a trace, 2 pipelines: 3*2420 = 7,260 kept events x 100 B = 726,000 B per
    # pipeline; peak = 2*(1,018,570 + 2*726,000) + 2*726,000 = 6,393,140; time x2
    traced = estimate_run(_sim(trace=True), 2, g, mapping, 8, available_bytes=1e12,
                          load_factor=1.0)
    assert traced.trace_bytes == pytest.approx(1_452_000)
    assert traced.peak_bytes == pytest.approx(6_393_140)
    assert traced.seconds == pytest.approx(6.064)


def test_estimate_matches_the_engine_events(digits) -> None:
    """Calibration check: the SimPy events of a real run against the estimate."""
    from simulator.engine import chip as engine
    from simulator.runner.flow import layer_specs
    from simulator.runner.simulate import simulate_pipeline
    from workloads.precision.passes import compute_precision
    from workloads.precision.quantize import calibrate_scales

    sc, hw, wl, mapping = digits
    specs = layer_specs(wl.traced, mapping)
    scales = calibrate_scales(wl.traced.module, specs, wl.calib_inputs, sc.quantization)
    pp = compute_precision(wl.traced.module, specs, wl.eval_inputs[:4], scales,
                           sc.quantization, {"redy": sc.pipelines["redy"]})["redy"]
    planes = {k: lp.planes for k, lp in pp.layers.items()}
    seen: list[int] = []
    orig = engine.ChipSimulation.run

    def counted(self, *a, **k):
        out = orig(self, *a, **k)
        seen.append(next(self.env._eid))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine.ChipSimulation, "run", counted)
        for fid in ("group", "plane"):
            simulate_pipeline(wl.traced.graph, mapping, hw, planes, "redy", "redy", fid, 4)
    est = [estimate_run(_sim(images=4, fidelity=f), 1, wl.traced.graph, mapping, 8,
                        available_bytes=1e12).events for f in ("group", "plane")]
    assert 0.7 < est[0] / seen[0] < 1.4, (est[0], seen[0])  # group: a calibrated figure
    assert 1.0 <= est[1] / seen[1] < 2.0, (est[1], seen[1])  # plane: B planes, a bound


def test_refusal_names_what_to_change(digits) -> None:
    _, _, wl, mapping = digits
    est = estimate_run(_sim(images=10**9), 3, wl.traced.graph, mapping, 8,
                       available_bytes=20 * 2**30, load_factor=1.0)
    assert not est.fits()
    with pytest.raises(RunTooLarge) as exc:
        check_fits(est, "sc.yaml")
    msg = str(exc.value)
    fixed, per_image = E.pipeline_bytes(est.work, "group", 10**9)
    fit = int((20 * 2**30 - 2 * fixed) // (2 * per_image))
    assert msg.startswith("sc.yaml: run too large") and "\n" not in msg
    assert f"about {fit:,} would fit" in msg and "--yes" in msg and "workers: 1" in msg


def test_workload_inputs_checked_before_building() -> None:
    ws = SimpleNamespace(model="resnet18", input_size=100_000, input_shape=None,
                         calibration_images=4, eval_images=1)
    with pytest.raises(RunTooLarge, match="workload too large: 5 input image"):
        check_workload_fits(ws, "sc.yaml", available_bytes=20 * 2**30)
    ws.input_size = 224
    check_workload_fits(ws, "sc.yaml", available_bytes=20 * 2**30)


# ------------------------------------------------------------------ the CLI, in-process
@pytest.fixture()
def small_scenario(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    data["workload"]["accuracy_images"] = 16
    p = tmp_path / "d.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


class Captured(Exception):
    """The run reached the activation capture."""


@pytest.fixture()
def no_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    import workloads.precision.passes as passes

    def capture(*a, **k):
        raise Captured

    # the flow imports the pass where it runs one (no torch before a capture is needed)
    monkeypatch.setattr(passes, "compute_precision", capture)


def test_huge_images_in_yaml_refused(small_scenario: Path, tmp_path: Path, no_capture,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(small_scenario.read_text())
    data["simulation"]["images"] = 1_000_000_000
    small_scenario.write_text(yaml.safe_dump(data))
    rc = main(["run", str(small_scenario), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if not x.startswith("[")]
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"redysim: error: {small_scenario}: run too large")
    assert "--yes" in lines[0] and "--images" in lines[0]
    assert "estimate: 3 pipeline(s) × 1,000,000,000 image(s)" in err  # the run header
    assert not (tmp_path / "o").exists()


def test_huge_images_option_refused_and_yes_overrides(small_scenario: Path, tmp_path: Path,
                                                      no_capture,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    argv = ["run", str(small_scenario), "-o", str(tmp_path / "o"), "--images",
            "1000000000", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run too large" in err
    with pytest.raises(Captured):  # --yes: past the check, on to the capture
        main([*argv, "--yes"])
