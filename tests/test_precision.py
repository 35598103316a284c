"""compute_precision: windows inside the forward pass, grouping, accuracy, tuning."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from tiny_nets import tiny_net
from torch import nn

from workloads.errors import WorkloadError
from workloads.precision.metrics import float_accuracy, topk
from workloads.precision.passes import compute_precision
from workloads.precision.policies import PolicySpec, apply_window, redy
from workloads.precision.quantize import QuantConfig, calibrate_scales, dequantize, quantize
from workloads.precision.records import LayerSpec
from workloads.precision.tune import policy_to_yaml, tune_redy


def four_planes(codes, *, signed, bits, **params):
    """Custom policy for the dotted-path test: planes [bits-4, bits) for every group."""
    n = codes.shape[0]
    return (torch.full((n,), bits - 4, dtype=torch.int64),
            torch.full((n,), 4, dtype=torch.int64))


LAYERS = {
    "c0": LayerSpec("0", "conv", [(0, 27)], True),
    "dw": LayerSpec("2", "conv", [(0, 36), (36, 72)]),
    "g4": LayerSpec("4", "conv", [(0, 18), (18, 72)]),
    "pw": LayerSpec("6", "conv", [(0, 12)]),
    "fc": LayerSpec("9", "linear", [(0, 50), (50, 96)]),
}


@pytest.fixture(scope="module")
def setup():
    m = tiny_net().eval()
    x = torch.randn(6, 3, 8, 8)
    q = QuantConfig()
    scales = calibrate_scales(m, LAYERS, x, q)
    return m, x, q, scales


def fake_quant_forward(m: nn.Sequential, x: torch.Tensor, scales, q: QuantConfig):
    """Independent reference: each conv/linear sees dequantize(quantize(input))."""
    names = {spec.module: (n, spec) for n, spec in LAYERS.items()}
    for i, layer in enumerate(m):
        if str(i) in names:
            n, spec = names[str(i)]
            xq = dequantize(quantize(x, scales[n], q.bits, spec.signed_input), scales[n])
            if isinstance(layer, nn.Conv2d):
                x = F.conv2d(xq, layer.weight, layer.bias, layer.stride, layer.padding,
                             layer.dilation, layer.groups)
            else:
                x = F.linear(xq, layer.weight, layer.bias)
        else:
            x = layer(x)
    return x


def test_static_equals_fake_quantized_forward(setup):
    m, x, q, scales = setup
    res = compute_precision(m, LAYERS, x, scales, q, {"s": PolicySpec(policy="static"),
                                                      "t": PolicySpec(policy="msb-trim")},
                            batch_size=4)
    ref = fake_quant_forward(m, x, scales, q)
    assert torch.allclose(res["s"].logits, ref, atol=1e-5, rtol=1e-4)
    assert torch.allclose(res["t"].logits, ref, atol=1e-5, rtol=1e-4)  # lossless
    for lp in res["s"].layers.values():
        assert lp.planes.dtype == np.uint8 and (lp.planes == 8).all() and (lp.low == 0).all()
        assert lp.rel_rms_error == 0.0 and lp.mean_bits == 8.0
        assert lp.hist[8] == lp.planes.size
    assert res["s"].layers["dw"].planes.shape == (6, 2, 64)
    assert res["s"].layers["g4"].planes.shape == (6, 2, 16)
    assert res["s"].layers["fc"].planes.shape == (6, 2, 1)
    for lp in res["t"].layers.values():
        assert lp.rel_rms_error == 0.0 and lp.saturated_fraction == 0.0
        assert lp.mean_bits <= 8.0
    # hooks are removed afterwards
    assert torch.equal(m(x), m(x))
    assert not any(mod._forward_hooks for mod in m)


def test_float_model_unchanged_and_accuracy(setup):
    m, x, q, scales = setup
    y = m(x).argmax(dim=1)
    assert float_accuracy(m, x, y) == 100.0
    res = compute_precision(m, LAYERS, x, scales, q, {"s": PolicySpec(policy="static")},
                            labels=y)
    assert 0.0 <= res["s"].accuracy <= 100.0


def test_redy_groups_match_manual_unfold(setup):
    """The planes of each (image, row block, position) equal the policy applied by hand to
    the codes of that row block at that position (errors propagate, so use layer inputs
    recorded from the same pipeline's forward)."""
    m, x, q, scales = setup
    spec = PolicySpec(policy="redy", k=1.5, epsilon=0.5)
    captured = {}
    handle = m[4].register_forward_pre_hook(lambda _m, a: captured.__setitem__("g4", a[0]))
    try:
        res = compute_precision(m, LAYERS, x, scales, q, {"r": spec})
    finally:
        handle.remove()
    inp = captured["g4"]  # last batch = all 6 images (batch_size 64)
    codes = quantize(inp, scales["g4"], 8, False)
    cols = F.unfold(codes.float(), 3, padding=1, stride=2).to(torch.int64)  # (6, 72, 16)
    lp = res["r"].layers["g4"]
    for bi, (a, b) in enumerate(LAYERS["g4"].row_ranges):
        grp = cols[:, a:b, :].transpose(1, 2).reshape(-1, b - a)
        low, planes = redy(grp, signed=False, bits=8, k=1.5, epsilon=0.5)
        assert np.array_equal(lp.planes[:, bi, :].reshape(-1), planes.numpy())
        assert np.array_equal(lp.low[:, bi, :].reshape(-1), low.numpy())
    assert lp.mean_bits < 8 and lp.rel_rms_error > 0
    assert lp.hist.sum() == lp.planes.size


def test_custom_policy_window_error_through_grouped_conv(setup):
    """A lossy dotted-path policy: the grouped conv output equals F.conv2d on windowed
    inputs, and in the whole net the error propagates to the logits."""
    m, x, q, scales = setup
    path = f"{__name__}:four_planes"
    inp = {}
    h = m[4].register_forward_pre_hook(lambda _m, a: inp.__setitem__("x", a[0]))
    try:
        m(x)
    finally:
        h.remove()
    single = nn.Sequential(m[4])
    res = compute_precision(single, {"g": LayerSpec("0", "conv", [(0, 18), (18, 72)])},
                            inp["x"], {"g": scales["g4"]}, q, {"c": PolicySpec(policy=path)})
    lp = res["c"].layers["g"]
    assert (lp.planes == 4).all() and (lp.low == 4).all()
    codes = quantize(inp["x"], scales["g4"], 8, False)
    n = codes.numel()
    w = apply_window(codes.reshape(1, n), torch.tensor([4]), torch.tensor([4]), False, 8)
    xw = dequantize(w.reshape(codes.shape), scales["g4"])
    ref = F.conv2d(xw, m[4].weight, m[4].bias, 2, 1, 1, 4)
    assert torch.allclose(res["c"].logits, ref, atol=1e-5, rtol=1e-4)
    assert lp.rel_rms_error > 0
    full = compute_precision(m, {"g4": LAYERS["g4"]}, x, scales, q,
                             {"c": PolicySpec(policy=path), "s": PolicySpec()})
    assert not torch.allclose(full["c"].logits, full["s"].logits)


def test_depthwise_single_layer_matches_reference():
    torch.manual_seed(1)
    conv = nn.Conv2d(6, 12, 3, stride=1, padding=2, dilation=2, groups=6)
    net = nn.Sequential(conv)
    x = torch.rand(3, 6, 7, 7)
    q = QuantConfig(bits=6)
    layers = {"d": LayerSpec("0", "conv", [(0, 27), (27, 54)])}
    scales = calibrate_scales(net, layers, x, q)
    res = compute_precision(net, layers, x, scales, q, {"s": PolicySpec(policy="static")})
    xq = dequantize(quantize(x, scales["d"], 6, False), scales["d"])
    ref = F.conv2d(xq, conv.weight, conv.bias, 1, 2, 2, 6)
    assert torch.allclose(res["s"].logits, ref, atol=1e-5, rtol=1e-4)
    assert res["s"].layers["d"].planes.shape == (3, 2, 49)
    assert res["s"].layers["d"].hist.tolist() == [0] * 6 + [3 * 2 * 49]


def test_duplicate_ranges_and_order(setup):
    m, x, q, scales = setup
    layers = dict(LAYERS)
    layers["g4"] = LayerSpec("4", "conv", [(18, 72), (0, 18), (18, 72)])
    spec = PolicySpec(policy="redy", k=2.0)
    a = compute_precision(m, LAYERS, x, scales, q, {"r": spec})["r"].layers["g4"]
    b = compute_precision(m, layers, x, scales, q, {"r": spec})["r"].layers["g4"]
    assert np.array_equal(b.planes[:, 0], a.planes[:, 1])
    assert np.array_equal(b.planes[:, 1], a.planes[:, 0])
    assert np.array_equal(b.planes[:, 2], a.planes[:, 1])


def test_bad_ranges_and_unknown_layers(setup):
    m, x, q, scales = setup
    bad = dict(LAYERS)
    bad["dw"] = LayerSpec("2", "conv", [(0, 40), (36, 72)])
    with pytest.raises(WorkloadError, match="partition"):
        compute_precision(m, bad, x, scales, q, {"s": PolicySpec()})
    bad["dw"] = LayerSpec("2", "conv", [(0, 36)])
    with pytest.raises(WorkloadError, match="cover 36 of 72"):
        compute_precision(m, bad, x, scales, q, {"s": PolicySpec()})
    with pytest.raises(WorkloadError, match="unknown layer"):
        compute_precision(m, LAYERS, x, scales, q,
                          {"r": PolicySpec(policy="redy", layers={"nope": {"k": 1}})})
    bad = dict(LAYERS)
    bad["dw"] = LayerSpec("2", "linear", [(0, 72)])
    with pytest.raises(WorkloadError, match="expected Linear"):
        compute_precision(m, bad, x, scales, q, {"s": PolicySpec()})


def test_per_layer_override_changes_only_that_layer(setup):
    m, x, q, scales = setup
    base = PolicySpec(policy="redy", k=3.0)
    over = PolicySpec(policy="redy", k=3.0, layers={"fc": {"min_bits": 7}})
    a = compute_precision(m, LAYERS, x, scales, q, {"a": base, "b": over})
    assert np.array_equal(a["a"].layers["c0"].planes, a["b"].layers["c0"].planes)
    assert (a["b"].layers["fc"].planes >= 7).all()


def test_tune_and_yaml(setup):
    m, x, q, scales = setup
    y = m(x).argmax(dim=1)
    spec, report = tune_redy(m, LAYERS, x, y, scales, q, budget_points=0.0,
                             k_grid=(1.0, 3.0, 1e6), eps_grid=(0.0, 1.0), min_bits_grid=(1,),
                             per_layer=True)
    assert report["feasible"]
    assert report["accuracy"] >= report["static_accuracy"]
    assert report["mean_bits"] < 8.0
    assert spec.policy == "redy"
    text = policy_to_yaml(spec, header="tuned")
    again = PolicySpec(**yaml.safe_load(text))
    assert again == spec
    # without labels: agreement with the static predictions
    _, rep2 = tune_redy(m, LAYERS, x, None, scales, q, k_grid=(1e6,), eps_grid=(0.0,),
                        min_bits_grid=(1,))
    assert rep2["static_accuracy"] == 100.0 and rep2["accuracy"] == 100.0


# -- the statistics fast path against the im2col path ------------------------------------

CODES_REDY = "workloads.precision.policies:redy"  # a dotted path: the im2col (codes) path


@pytest.mark.parametrize("params", [{"k": 1.0, "epsilon": 0.0}, {"k": 1.5, "epsilon": 0.5},
                                    {"k": 3.0, "epsilon": 2.0, "min_bits": 3}])
def test_fast_path_equals_im2col_path(setup, params):
    """Built-in redy (group statistics, conv + correction of lossy groups) and the same
    function given as a custom policy (im2col, window on every group) agree on windows,
    logits and error statistics, through signed, depthwise, grouped, 1x1 and linear layers."""
    m, x, q, scales = setup
    fast = compute_precision(m, LAYERS, x, scales, q, {"r": PolicySpec(policy="redy", **params)},
                             weight_bits=6)["r"]
    slow = compute_precision(m, LAYERS, x, scales, q,
                             {"r": PolicySpec(policy=CODES_REDY, **params)},
                             weight_bits=6)["r"]
    assert torch.allclose(fast.logits, slow.logits, atol=1e-4, rtol=1e-4)
    for name in LAYERS:
        a, b = fast.layers[name], slow.layers[name]
        assert np.array_equal(a.planes, b.planes) and np.array_equal(a.low, b.low), name
        assert np.array_equal(a.image_planes, b.image_planes), name
        assert np.array_equal(a.image_zero_groups, b.image_zero_groups), name
        assert np.array_equal(a.image_msb_planes, b.image_msb_planes), name
        assert a.rel_rms_error == pytest.approx(b.rel_rms_error, rel=1e-9, abs=1e-12), name
        assert a.saturated_fraction == pytest.approx(b.saturated_fraction, abs=1e-12), name
        assert a.zero_group_fraction == b.zero_group_fraction, name


def test_weights_quantized_per_output_channel(setup):
    """weight_bits: the static pipeline equals a fake-quantized forward whose weights are
    rounded by hand to 2^(b-1) - 1 levels of each output channel's max |w|."""
    m, x, q, scales = setup
    ref_net = copy.deepcopy(m)
    for layer in ref_net:
        if isinstance(layer, nn.Conv2d | nn.Linear):
            w = layer.weight.data
            for o in range(w.shape[0]):
                step = w[o].abs().max() / 7  # 4 bits: codes -7..7
                w[o] = torch.round(w[o] / step) * step
    res = compute_precision(m, LAYERS, x, scales, q, {"s": PolicySpec()}, weight_bits=4)
    ref = fake_quant_forward(ref_net, x, scales, q)
    assert torch.allclose(res["s"].logits, ref, atol=1e-5, rtol=1e-4)
    float_w = compute_precision(m, LAYERS, x, scales, q, {"s": PolicySpec()})
    assert not torch.allclose(res["s"].logits, float_w["s"].logits)


def test_shared_pass_kept_images_and_workers(setup):
    """Lossless pipelines share one pass (same logits as alone); keep_images keeps the first
    planes only while per-image sums cover all; forked workers give the same result."""
    m, x, q, scales = setup
    pipes = {"s": PolicySpec(), "z": PolicySpec(policy="zero-skip"),
             "t": PolicySpec(policy="msb-trim"), "r": PolicySpec(policy="redy", k=1.0)}
    one = compute_precision(m, LAYERS, x, scales, q, pipes, keep_images=2)
    alone = compute_precision(m, LAYERS, x, scales, q, {"t": pipes["t"]})
    two = compute_precision(m, LAYERS, x, scales, q, pipes, keep_images=2, workers=2)
    assert list(one) == list(pipes)
    assert torch.equal(one["t"].logits, one["s"].logits)
    assert torch.allclose(one["t"].logits, alone["t"].logits)
    for name in LAYERS:
        lp, full = one["t"].layers[name], alone["t"].layers[name]
        assert lp.planes.shape[0] == 2 and full.planes.shape[0] == len(x)
        assert np.array_equal(lp.planes, full.planes[:2])
        assert np.array_equal(lp.image_planes, full.planes.sum(axis=2, dtype=np.int64))
        assert lp.mean_bits == pytest.approx(full.planes.mean())
        # msb-trim of the static activations, whoever computes it
        assert np.array_equal(one["s"].layers[name].image_msb_planes, lp.image_planes)
        for p in pipes:
            assert np.array_equal(one[p].layers[name].planes, two[p].layers[name].planes)
    assert torch.equal(one["r"].logits, two["r"].logits)


def test_top5(setup):
    m, x, q, scales = setup
    y = m(x).argmax(dim=1)
    res = compute_precision(m, LAYERS, x, scales, q, {"s": PolicySpec()}, labels=y)
    assert res["s"].top5 == 100.0 and res["s"].images == len(x)
    assert topk(torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]]), torch.tensor([2, 2]), 2) \
        == 50.0


def test_tune_objective_is_the_energy_function(setup):
    """With an energy function the chosen point is the feasible point of least energy:
    an energy that rewards bits picks the feasible point with the most bits."""
    from workloads.precision.tune import mean_bits

    m, x, q, scales = setup
    y = m(x).argmax(dim=1)
    kw = dict(budget_points=100.0, k_grid=(1.0, 3.0), eps_grid=(0.0, 1.0),
              min_bits_grid=(1, 2))
    spec, rep = tune_redy(m, LAYERS, x, y, scales, q, energy=lambda pp: -mean_bits(pp), **kw)
    feasible = [p for p in rep["evaluated"] if p["accuracy"] >= rep["target_accuracy"]]
    assert rep["objective"] == "energy per image"
    assert rep["mean_bits"] == max(p["mean_bits"] for p in feasible)
    assert all("energy_ratio" in p for p in rep["evaluated"])
    _, rep_bits = tune_redy(m, LAYERS, x, y, scales, q, **kw)
    assert rep_bits["mean_bits"] == min(p["mean_bits"] for p in feasible)


def test_pareto_front():
    from workloads.precision.tune import pareto

    pts = [{"accuracy": a, "e": e} for a, e in ((90, 1), (95, 2), (93, 3), (99, 4), (99, 5))]
    assert [(p["accuracy"], p["e"]) for p in pareto(pts, "e")] == [(90, 1), (95, 2), (99, 4)]
