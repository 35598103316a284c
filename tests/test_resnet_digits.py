"""The trained residual CNN (ResNet-20 style on upsampled digits): training, graph, and the
accuracy of every precision pipeline on the held-out test part — the main accuracy subject."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml
from accuracy_bounds import HELD_OUT_BOUND

from simulator.runner.flow import RunResult, run
from simulator.runner.scenario import load_scenario
from workloads.graph import count_kinds, trace_model
from workloads.precision.policies import PolicySpec
from workloads.trained import resnet_digits
from workloads.trained.digits import digits_split, evaluate
from workloads.trained.resnet_digits import (
    INPUT_SHAPE,
    ResNetDigits,
    load_resnet_digits,
    train_resnet_digits,
    upsample_digits,
)
from workloads.trained.store import WEIGHTS_DIR, expected_sha256, sha256_file

ROOT = Path(__file__).resolve().parents[1]
#: a retrain's float top-1 may differ from the committed weights' by this many points
RETRAIN_POINTS = 1.5
SCENARIO = ROOT / "configs" / "scenarios" / "resnet-digits.yaml"
TUNED = ROOT / "configs" / "policies" / "resnet-digits-redy.yaml"


@pytest.fixture(scope="module")
def trained() -> ResNetDigits:
    """The committed model (workloads/trained/weights/resnet_digits.pt)."""
    return load_resnet_digits()


@pytest.fixture(scope="module")
def rr(trained: ResNetDigits) -> RunResult:
    """The shipped scenario (static, msb-trim, redy, redy-tuned) over the whole test part
    (450 images); the chip is simulated at analytic fidelity (accuracy does not depend on
    it)."""
    sc = load_scenario(SCENARIO)
    assert sc.pipelines["redy-tuned"] == PolicySpec.model_validate(
        yaml.safe_load(TUNED.read_text()))
    sc.simulation.fidelity = "analytic"
    sc.simulation.images = 1
    return run(sc)


def test_architecture_and_graph(trained: ResNetDigits) -> None:
    tw = trace_model(trained, INPUT_SHAPE, "resnet-digits")
    kinds = count_kinds(tw.graph)
    # stem + 9 blocks x 2 convs + 2 projection shortcuts; 9 residual adds; one classifier
    assert kinds["conv"] == 21 and kinds["add"] == 9 and kinds["linear"] == 1
    assert all(d["bn"] is None for _, d in tw.graph.nodes(data=True))  # all BN folded
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in trained.modules()) == 21
    x, _ = digits_split().test
    with torch.no_grad():
        torch.testing.assert_close(tw.module(upsample_digits(x[:32])),
                                   trained(upsample_digits(x[:32])), rtol=1e-4, atol=1e-4)


def test_trained_accuracy(trained: ResNetDigits) -> None:
    x, y = digits_split().test
    assert evaluate(trained, upsample_digits(x), y) >= 97.0


def test_training_is_deterministic() -> None:
    a = train_resnet_digits(seed=3, epochs=2, images=128)
    b = train_resnet_digits(seed=3, epochs=2, images=128)
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)


def test_committed_weights_and_their_sum() -> None:
    """The committed file's SHA-256 is the one SHA256SUMS lists (what loading checks)."""
    path = resnet_digits.weights_path()
    assert path.parent == WEIGHTS_DIR
    assert sha256_file(path) == expected_sha256(resnet_digits.WEIGHTS_FILE)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("REDYSIM_RETRAIN") != "1",
                    reason="retraining the residual CNN takes ~45 s of CPU; CI runs it "
                           "(REDYSIM_RETRAIN=1, under ATEN_CPU_CAPABILITY=default)")
def test_retraining_here_gives_the_committed_accuracy(trained: ResNetDigits) -> None:
    """Retrained on this machine (another CPU: other vector kernels, other weights), the
    float top-1 on the 450 test images is within RETRAIN_POINTS of the committed weights';
    bit equality is not a guarantee across machines.

    Another numeric path acts like another seed. Measured on the machine that trained the
    committed weights: seeds 0-3 give 98.44, 98.89, 98.67, 98.89 %, and seed 0 under
    ATEN_CPU_CAPABILITY=default 99.56 %: a spread of 1.1 points (5 images), more than the
    small digits CNN's (0.45), so this network gets 1.5 points (7 images), not 1."""
    x, y = digits_split().test
    again = train_resnet_digits()
    assert evaluate(again, upsample_digits(x), y) == pytest.approx(
        evaluate(trained, upsample_digits(x), y), abs=RETRAIN_POINTS)


def test_upsampling() -> None:
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 4] = 1.0
    up = upsample_digits(x)
    assert up.shape == (1, 1, 16, 16)
    # bilinear, half-pixel centres: the pixel spreads over the 2x2 block it covers and
    # its neighbours, total mass x4
    assert float(up.sum()) == pytest.approx(4.0)
    assert float(up[0, 0, 6:8, 8:10].min()) == pytest.approx(0.5625)


def test_pipeline_accuracy_on_test_part(rr: RunResult) -> None:
    p = rr.precision
    assert p["static"].images == 450 and rr.float_accuracy >= 97.0
    # 8-bit weights and activations cost at most a point; lossless policies nothing
    assert p["static"].accuracy == pytest.approx(rr.float_accuracy, abs=1.0)
    assert p["msb-trim"].accuracy == p["static"].accuracy
    assert torch.equal(p["msb-trim"].logits, p["static"].logits)
    # the dynamic pipelines on the held-out test part: tuning's budget holds on the images
    # it tunes on only, so here the documented looser bound (tests/accuracy_bounds.py)
    for pipe in ("redy", "redy-tuned"):
        assert p[pipe].accuracy >= p["static"].accuracy - HELD_OUT_BOUND, pipe
        assert p[pipe].top5 >= p["static"].top5 - HELD_OUT_BOUND, pipe


def test_energy_ordering(rr: RunResult) -> None:
    """msb-trim saves energy without loss; ReDy's lossy windows save more."""
    dec = {d["step"]: d for d in rr.images["decomposition"]}
    assert dec["msb-trim (lossless)"]["ratio_to_static"] < 1.0
    assert dec["redy (lossy)"]["ratio_to_static"] < dec["msb-trim (lossless)"]["ratio_to_static"]
    s = rr.images["spread"]["redy"]["mean_bits"]
    assert s["min"] <= s["median"] <= s["max"] < 8.0


def test_exact_crossbar_mode_bit_for_bit(rr: RunResult) -> None:
    """The exact crossbar mode (tests/test_exact_crossbar.py) on the trained residual CNN:
    with 9-bit ADCs (128 rows, no flip encoding: never clip) the mode forced to compute
    every plane gives the fast path's logits bit for bit; with 5-bit ADCs it does not."""
    import dataclasses

    from simulator.runner.flow import crossbar_model, layer_specs
    from workloads.precision.passes import compute_precision
    from workloads.precision.quantize import calibrate_scales

    hw = rr.hardware.with_changes({"weights.flip_encoding": False, "ima.adc_bits": 9})
    sc, wl = rr.scenario, rr.workload
    specs = layer_specs(wl.traced, rr.mapping)
    scales = calibrate_scales(wl.traced.module, specs, wl.calib_inputs, sc.quantization)
    cb = dataclasses.replace(crossbar_model(hw), force=True)
    assert cb.never_clip_bits == 9
    pipes = {"redy": sc.pipelines["redy"]}

    def logits(crossbar):
        res = compute_precision(wl.traced.module, specs, wl.eval_inputs[:8], scales,
                                sc.quantization, pipes, weight_bits=8, crossbar=crossbar)
        return res["redy"].logits

    fast = logits(None)
    assert torch.equal(logits(cb), fast)
    assert not torch.equal(logits(dataclasses.replace(cb, adc_bits=5, force=False)), fast)
