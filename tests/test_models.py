"""Tests for workloads.models and workloads.inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workloads.errors import WorkloadError
from workloads.graph import count_kinds, trace_model
from workloads.inputs import sample_images
from workloads.models import MODEL_NAMES, TORCHVISION_MODELS, build_model, calibrate_batchnorm

EXPECTED_KINDS = {
    "alexnet": {"conv": 5, "maxpool": 3, "flatten": 1, "linear": 3},
    "vgg11": {"conv": 8, "maxpool": 5, "flatten": 1, "linear": 3},
    "vgg16": {"conv": 13, "maxpool": 5, "flatten": 1, "linear": 3},
    "resnet18": {"conv": 20, "maxpool": 1, "add": 8, "avgpool": 1, "flatten": 1, "linear": 1},
    "resnet34": {"conv": 36, "maxpool": 1, "add": 16, "avgpool": 1, "flatten": 1, "linear": 1},
    "resnet50": {"conv": 53, "maxpool": 1, "add": 16, "avgpool": 1, "flatten": 1, "linear": 1},
    "mobilenet_v2": {"conv": 52, "add": 10, "avgpool": 1, "flatten": 1, "linear": 1},
    "squeezenet1_1": {"conv": 26, "maxpool": 3, "concat": 8, "avgpool": 1, "flatten": 1},
    "googlenet": {
        "conv": 57,
        "maxpool": 13,
        "concat": 9,
        "avgpool": 1,
        "flatten": 1,
        "linear": 1,
    },  # fmt: skip
    "densenet121": {
        "conv": 120,
        "maxpool": 1,
        "concat": 62,
        "avgpool": 4,
        "flatten": 1,
        "linear": 1,
    },  # fmt: skip
}
# torchvision's documented GFLOPS (multiply-accumulates of conv + linear layers)
EXPECTED_GMACS = {
    "alexnet": 0.71, "vgg11": 7.61, "vgg16": 15.47, "resnet18": 1.81, "resnet34": 3.66,
    "resnet50": 4.09, "mobilenet_v2": 0.30, "squeezenet1_1": 0.35, "googlenet": 1.50,
    "densenet121": 2.83,
}  # fmt: skip


@pytest.mark.parametrize("name", list(TORCHVISION_MODELS))
def test_torchvision_models_trace_at_224(name: str) -> None:
    model, shape = build_model(name, 224, seed=0)
    assert shape == (3, 224, 224) and not model.training
    tw = trace_model(model, shape, name)  # speed is measured in bench/, not here
    kinds = count_kinds(tw.graph)
    assert kinds == {"input": 1, "output": 1, **EXPECTED_KINDS[name]}
    assert tw.graph.graph == {"name": name, "input_shape": (3, 224, 224)}
    out = tw.graph.nodes["output"]
    assert out["out_shape"] == (1000,)
    macs = sum(d["macs"] for _, d in tw.graph.nodes(data=True))
    assert macs / 1e9 == pytest.approx(EXPECTED_GMACS[name], abs=0.006)


def test_seeded_construction() -> None:
    a, _ = build_model("resnet18", 32, seed=5)
    b, _ = build_model("resnet18", 32, seed=5)
    c, _ = build_model("resnet18", 32, seed=6)
    torch.testing.assert_close(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_num_classes_and_small_input() -> None:
    model, shape = build_model("resnet18", 64, seed=0, num_classes=10)
    assert shape == (3, 64, 64)
    tw = trace_model(model, shape, "r18")
    assert tw.graph.nodes["output"]["out_shape"] == (10,)


def test_unknown_model_name() -> None:
    with pytest.raises(WorkloadError) as exc:
        build_model("resnet19", 224, seed=0)
    msg = str(exc.value)
    assert "resnet19" in msg and all(n in msg for n in MODEL_NAMES)
    assert "package.module:factory" in msg


def test_factory_model() -> None:
    model, shape = build_model("torchvision.models:resnet18", 32, seed=0, input_shape=(3, 48, 48))
    assert isinstance(model, nn.Module) and shape == (3, 48, 48)
    _, shape = build_model("torchvision.models:resnet18", 32, seed=0)
    assert shape == (3, 32, 32)
    with pytest.raises(WorkloadError, match="cannot import module 'no_such_pkg.mod'"):
        build_model("no_such_pkg.mod:f", 32, seed=0)
    with pytest.raises(WorkloadError, match="has no callable 'nope'"):
        build_model("torchvision.models:nope", 32, seed=0)


def test_missing_weights_file(tmp_path) -> None:
    path = tmp_path / "missing.pt"
    with pytest.raises(WorkloadError, match="missing.pt' does not exist"):
        build_model("resnet18", 32, seed=0, weights_path=str(path))


def test_weights_roundtrip_and_mismatch(tmp_path) -> None:
    src, _ = build_model("squeezenet1_1", 32, seed=1)
    good = tmp_path / "sq.pt"
    torch.save(src.state_dict(), good)
    model, _ = build_model("squeezenet1_1", 32, seed=2, weights_path=good)
    torch.testing.assert_close(model.state_dict(), src.state_dict())

    state = src.state_dict()
    state["features.0.weight_renamed"] = state.pop("features.0.weight")
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(WorkloadError) as exc:
        build_model("squeezenet1_1", 32, seed=0, weights_path=bad)
    msg = str(exc.value)
    assert "bad.pt" in msg and "features.0.weight" in msg and "features.0.weight_renamed" in msg

    other, _ = build_model("squeezenet1_1", 32, seed=0, num_classes=10)
    wrong = tmp_path / "wrong.pt"
    torch.save(other.state_dict(), wrong)
    with pytest.raises(WorkloadError, match="shape mismatches.*classifier.1.weight"):
        build_model("squeezenet1_1", 32, seed=0, weights_path=wrong)


def test_calibrate_batchnorm() -> None:
    model, _ = build_model("resnet18", 64, seed=0)
    model.layer1[0].bn1.momentum = 0.3
    images = sample_images(8, 64, seed=1)
    with torch.no_grad():
        conv1_out = model.conv1(images)
    calibrate_batchnorm(model, images, batch_size=8)  # one batch: exact mean and var
    assert not model.training and not model.bn1.training
    assert model.layer1[0].bn1.momentum == 0.3
    mean = conv1_out.mean((0, 2, 3))
    torch.testing.assert_close(model.bn1.running_mean, mean, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        model.bn1.running_var, conv1_out.var((0, 2, 3), unbiased=True), atol=1e-5, rtol=1e-3
    )
    # after calibration the BN output is roughly normalized
    with torch.no_grad():
        y = model.bn1(conv1_out)
    assert y.mean().abs() < 0.05 and (y.std() - 1).abs() < 0.1


def test_sample_images() -> None:
    a = sample_images(6, 32, seed=0)
    assert a.shape == (6, 3, 32, 32) and a.dtype == torch.float32 and torch.isfinite(a).all()
    torch.testing.assert_close(a, sample_images(6, 32, seed=0))
    assert not torch.equal(a, sample_images(6, 32, seed=1))
    assert -1.5 < float(a.mean()) < 1.5 and 0.3 < float(a.std()) < 2.0
    assert a.min() >= -2.2 and a.max() <= 2.7  # ImageNet-normalized range of [0, 1] pixels
    assert len({tuple(x.flatten()[:8].tolist()) for x in a}) == 6  # all crops differ


def test_sample_photographs_are_scikit_learns() -> None:
    """The photographs read without importing scikit-learn equal its own loader's pixels."""
    from sklearn.datasets import load_sample_images

    from workloads.inputs import _photos

    ref = load_sample_images().images
    ours = _photos()
    assert len(ours) == len(ref) == 2
    for x, y in zip(ours, ref, strict=True):
        assert torch.equal(x, torch.tensor(y).permute(2, 0, 1).float() / 255.0)
