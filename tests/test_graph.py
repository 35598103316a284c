"""Tests for workloads.graph: tracing torchvision/digits CNNs into the dataflow graph."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workloads.errors import WorkloadError
from workloads.graph import KINDS, TracedWorkload, count_kinds, trace_model
from workloads.inputs import sample_images
from workloads.models import build_model, calibrate_batchnorm

NODE_ATTRS = {
    "kind", "order", "module", "in_shape", "out_shape", "in_channels", "out_channels", "kernel",
    "stride", "padding", "dilation", "groups", "act", "macs", "weights", "signed_input",
}  # fmt: skip


@pytest.fixture(scope="module")
def resnet18() -> TracedWorkload:
    model, shape = build_model("resnet18", 224, seed=0)
    return trace_model(model, shape, "resnet18")


@pytest.fixture(scope="module")
def vgg11() -> TracedWorkload:
    model, shape = build_model("vgg11", 224, seed=0)
    return trace_model(model, shape, "vgg11")


def _by_module(tw: TracedWorkload) -> dict[str, dict]:
    return {d["module"]: d for _, d in tw.graph.nodes(data=True) if d["module"]}


def _check_well_formed(tw: TracedWorkload) -> None:
    g = tw.graph
    orders = sorted(d["order"] for _, d in g.nodes(data=True))
    assert orders == list(range(g.number_of_nodes()))
    for v, d in g.nodes(data=True):
        assert NODE_ATTRS <= set(d), v
        assert d["kind"] in KINDS
        preds = list(g.predecessors(v))
        if d["kind"] == "input":
            assert not preds
        else:
            assert preds, v
            assert all(g.nodes[u]["order"] < d["order"] for u in preds)
        if d["kind"] != "output":
            assert list(g.successors(v)), v
        if d["kind"] in ("conv", "linear"):
            tw.module.get_submodule(d["module"])  # qualified name resolves
    for u, _v, e in g.edges(data=True):
        assert e["shape"] == g.nodes[u]["out_shape"]
        assert e["numel"] == math.prod(e["shape"]) == e["bytes"]
    assert [n for n, d in g.nodes(data=True) if d["kind"] == "output"] == ["output"]


def test_resnet18_counts_and_shapes(resnet18: TracedWorkload) -> None:
    g = resnet18.graph
    assert count_kinds(g) == {
        "input": 1, "conv": 20, "maxpool": 1, "add": 8, "avgpool": 1, "flatten": 1,
        "linear": 1, "output": 1,
    }  # fmt: skip
    # 2 stem + 8 blocks x 4 (+3 downsample) + avgpool/flatten/fc/output
    assert g.number_of_edges() == 2 + 8 * 4 + 3 + 4
    convs = [d for _, d in g.nodes(data=True) if d["kind"] == "conv"]
    assert Counter(d["kernel"] for d in convs) == {(7, 7): 1, (3, 3): 16, (1, 1): 3}
    _check_well_formed(resnet18)
    m = _by_module(resnet18)
    assert m["conv1"]["in_shape"] == (3, 224, 224)
    assert m["conv1"]["out_shape"] == (64, 112, 112)
    assert m["conv1"]["stride"] == (2, 2) and m["conv1"]["padding"] == (3, 3)
    assert m["layer2.0.downsample.0"]["out_shape"] == (128, 28, 28)
    assert m["layer4.1.conv2"]["out_shape"] == (512, 7, 7)
    assert m["fc"]["in_shape"] == (512,) and m["fc"]["out_shape"] == (1000,)
    assert m["fc"]["kernel"] == (1, 1) and m["fc"]["groups"] == 1
    maxpool = next(d for _, d in g.nodes(data=True) if d["kind"] == "maxpool")
    assert maxpool["in_shape"] == (64, 112, 112) and maxpool["out_shape"] == (64, 56, 56)
    avg = next(d for _, d in g.nodes(data=True) if d["kind"] == "avgpool")
    assert avg["kernel"] == (7, 7) and avg["out_shape"] == (512, 1, 1)
    # activations: conv1 of each block has relu, conv2 does not (the add does)
    assert m["layer1.0.conv1"]["act"] == "relu" and m["layer1.0.conv2"]["act"] is None
    assert all(d["act"] == "relu" for _, d in g.nodes(data=True) if d["kind"] == "add")
    # MACs as documented by torchvision (1.81 GFLOPS) and weights = conv/linear params
    assert sum(d["macs"] for _, d in g.nodes(data=True)) == 1_814_073_344
    assert sum(d["weights"] for _, d in g.nodes(data=True)) == 11_678_912


def test_resnet18_signed_input(resnet18: TracedWorkload) -> None:
    g = resnet18.graph
    layers = resnet18.weight_layers()
    assert g.nodes[layers[0]]["module"] == "conv1"
    assert g.nodes[layers[0]]["signed_input"] is True
    assert all(g.nodes[n]["signed_input"] is False for n in layers[1:])
    # adds sum a conv without activation: their inputs are signed
    assert all(d["signed_input"] for _, d in g.nodes(data=True) if d["kind"] == "add")


def test_vgg11_counts_and_shapes(vgg11: TracedWorkload) -> None:
    g = vgg11.graph
    assert count_kinds(g) == {
        "input": 1, "conv": 8, "maxpool": 5, "flatten": 1, "linear": 3, "output": 1,
    }  # fmt: skip
    assert g.number_of_edges() == g.number_of_nodes() - 1  # a chain
    _check_well_formed(vgg11)
    m = _by_module(vgg11)
    assert [d["out_shape"] for d in m.values() if d["kind"] == "conv"] == [
        (64, 224, 224), (128, 112, 112), (256, 56, 56), (256, 56, 56),
        (512, 28, 28), (512, 28, 28), (512, 14, 14), (512, 14, 14),
    ]  # fmt: skip
    flat = next(d for _, d in g.nodes(data=True) if d["kind"] == "flatten")
    assert flat["in_shape"] == (512, 7, 7) and flat["out_shape"] == (25088,)
    assert m["classifier.0"]["in_channels"] == 25088 and m["classifier.6"]["out_channels"] == 1000
    assert [m[k]["act"] for k in ("classifier.0", "classifier.3", "classifier.6")] == [
        "relu", "relu", None,
    ]  # fmt: skip
    assert sum(d["macs"] for _, d in g.nodes(data=True)) == 7_609_090_048
    assert all(not d["signed_input"] for d in m.values() if d["module"] != "features.0")


def test_googlenet_nodes_and_edges() -> None:
    model, shape = build_model("googlenet", 224, seed=0)
    tw = trace_model(model, shape, "googlenet")
    g = tw.graph
    assert count_kinds(g) == {
        "input": 1, "conv": 3 + 9 * 6, "maxpool": 4 + 9, "concat": 9, "avgpool": 1,
        "flatten": 1, "linear": 1, "output": 1,
    }  # fmt: skip
    assert g.number_of_nodes() == 84
    # stem 5 + per inception (4 fan-out, 3 inside branches, 4 into the concat) + 2 pools + tail 4
    assert g.number_of_edges() == 5 + 9 * 11 + 2 + 4
    _check_well_formed(tw)
    cats = [d for _, d in g.nodes(data=True) if d["kind"] == "concat"]
    assert cats[0]["out_shape"] == (256, 28, 28) and cats[-1]["out_shape"] == (1024, 7, 7)


def test_mobilenet_v2_linear_bottleneck_signed() -> None:
    model, shape = build_model("mobilenet_v2", 224, seed=0)
    tw = trace_model(model, shape, "mobilenet_v2")
    _check_well_formed(tw)
    m = _by_module(tw)
    assert m["features.0.0"]["signed_input"] is True
    assert m["features.0.0"]["act"] == "relu6"
    # block 1 (t=1): depthwise then linear projection (no activation)
    assert m["features.1.conv.0.0"]["groups"] == 32 and not m["features.1.conv.0.0"]["signed_input"]
    assert m["features.1.conv.1"]["act"] is None
    # the 1x1 expansion conv after a linear bottleneck has a signed input; depthwise does not
    assert m["features.2.conv.0.0"]["signed_input"] is True
    assert m["features.2.conv.1.0"]["signed_input"] is False
    assert m["features.3.conv.0.0"]["signed_input"] is True  # after block 2 (no residual)
    assert m["features.4.conv.0.0"]["signed_input"] is True  # after block 3's residual add
    assert m["features.18.0"]["signed_input"] is True
    assert m["classifier.1"]["signed_input"] is False
    signed = {k for k, d in m.items() if d["signed_input"]}
    assert signed == {"features.0.0", "features.18.0"} | {
        f"features.{i}.conv.0.0" for i in range(2, 18)
    }
    adds = [d for _, d in tw.graph.nodes(data=True) if d["kind"] == "add"]
    assert len(adds) == 10 and all(d["act"] is None for d in adds)


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            n = mod.num_features
            mod.weight.data = 0.5 + torch.rand(n, generator=gen)
            mod.bias.data = torch.randn(n, generator=gen) * 0.1
            mod.running_mean = torch.randn(n, generator=gen) * 0.1
            mod.running_var = 0.5 + torch.rand(n, generator=gen)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "densenet121", "googlenet"])
def test_folded_bn_matches_original(name: str) -> None:
    size = 64
    model, shape = build_model(name, size, seed=1)
    images = sample_images(4, size, seed=3)
    calibrate_batchnorm(model, images)
    if name == "resnet18":
        _randomize_bn(model)
    with torch.no_grad():
        ref = model(images)
    tw = trace_model(model, shape, name)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in tw.module.modules()) or (
        name == "densenet121"  # pre-activation BN after concat cannot be folded
    )
    with torch.no_grad():
        out = tw.module(images)
        again = model(images)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(again, ref)  # the original model is untouched


def test_densenet_unfolded_bn_is_recorded() -> None:
    model, shape = build_model("densenet121", 64, seed=0)
    g = trace_model(model, shape, "densenet121").graph
    cats = [d for _, d in g.nodes(data=True) if d["kind"] == "concat"]
    assert len(cats) == 58 + 4
    assert all(d["bn"] is not None and d["act"] == "relu" for d in cats)
    convs = [d for _, d in g.nodes(data=True) if d["kind"] == "conv"]
    assert len(convs) == 120 and not any(d["signed_input"] for d in convs[1:])


class _Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.id = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(16 * 2 * 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn(self.c1(x)), inplace=True)
        b = self.c2(a)
        b += a
        c = torch.add(b, self.id(a)).relu_()
        c = self.pool(c)  # identity at 4x4
        c = F.max_pool2d(c, 2)
        c = torch.cat([c, c.contiguous()], dim=1)
        c = self.drop(c.view(c.size(0), -1))
        return F.relu6(self.fc(c.reshape(c.shape[0], -1)))


def test_functional_forms_fused_and_elided() -> None:
    torch.manual_seed(0)
    model = _Small()
    tw = trace_model(model, (3, 4, 4), "small")
    g = tw.graph
    assert count_kinds(g) == {
        "input": 1, "conv": 2, "add": 2, "maxpool": 1, "concat": 1, "flatten": 1,
        "linear": 1, "output": 1,
    }  # fmt: skip
    _check_well_formed(tw)
    m = _by_module(tw)
    assert m["c1"]["act"] == "relu" and m["c2"]["act"] is None and m["fc"]["act"] == "relu6"
    adds = [d for _, d in g.nodes(data=True) if d["kind"] == "add"]
    adds.sort(key=lambda d: d["order"])
    assert adds[0]["act"] is None and adds[1]["act"] == "relu"
    assert adds[0]["signed_input"] and adds[1]["signed_input"]
    assert not m["fc"]["signed_input"]
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(tw.module(x), model(x))


def test_digits_graph_and_hooks() -> None:
    from workloads.trained.digits import DigitsCNN

    torch.manual_seed(0)
    tw = trace_model(DigitsCNN(), (1, 8, 8), "digits")
    assert count_kinds(tw.graph) == {
        "input": 1, "conv": 3, "maxpool": 2, "flatten": 1, "linear": 1, "output": 1,
    }  # fmt: skip
    _check_well_formed(tw)
    seen: dict[str, tuple[int, ...]] = {}
    for n in tw.weight_layers():
        d = tw.graph.nodes[n]
        mod = tw.module.get_submodule(d["module"])
        mod.register_forward_hook(lambda _m, i, _o, n=n: seen.__setitem__(n, tuple(i[0].shape)))
    tw.module(torch.zeros(2, 1, 8, 8))
    assert seen == {n: (2, *tw.graph.nodes[n]["in_shape"]) for n in tw.weight_layers()}
    assert [tw.graph.nodes[n]["act"] for n in tw.weight_layers()] == ["relu"] * 3 + [None]


class _Mul(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y * torch.sigmoid(y)


class _SharedRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return F.relu(y) + y


class _Upsample(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.AdaptiveAvgPool2d((5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))


def test_unsupported_op_error() -> None:
    with pytest.raises(WorkloadError) as exc:
        trace_model(_Mul(), (3, 8, 8), "mul")
    msg = str(exc.value)
    assert "sigmoid" in msg and "'sigmoid'" in msg  # the op and the fx node
    assert "Supported operations" in msg and "nn.Conv2d" in msg


def test_unsupported_patterns() -> None:
    with pytest.raises(WorkloadError, match="also feeds other nodes"):
        trace_model(_SharedRelu(), (3, 8, 8), "shared")
    with pytest.raises(WorkloadError, match="adaptive pool from 6x6 to 5x5"):
        trace_model(_Upsample(), (3, 8, 8), "up")


def test_untraceable_model_error() -> None:
    class Dyn(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(WorkloadError, match="torch.fx could not trace"):
        trace_model(Dyn(), (3, 4, 4), "dyn")
