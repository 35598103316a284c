"""Static quantization: codes, scales and calibration."""

from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from torch import nn

from workloads.precision.quantize import (
    QuantConfig,
    calibrate_scales,
    dequantize,
    qmax,
    quantize,
    quantize_weights,
    quantize_weights_in_place,
)


def test_config_validation():
    assert QuantConfig().bits == 8
    with pytest.raises(ValidationError):
        QuantConfig(bits=1)
    with pytest.raises(ValidationError):
        QuantConfig(bits=17)
    with pytest.raises(ValidationError):
        QuantConfig(percentile=0)
    with pytest.raises(ValidationError):
        QuantConfig(calibration="mse")
    with pytest.raises(ValidationError):
        QuantConfig(bitz=8)


@settings(max_examples=50, deadline=None)
@given(bits=st.integers(2, 16), signed=st.booleans(),
       vals=st.lists(st.floats(-100, 100), min_size=1, max_size=50),
       scale=st.floats(0.01, 10))
def test_quantize_range_and_error(bits, signed, vals, scale):
    x = torch.tensor(vals, dtype=torch.float32)
    c = quantize(x, scale, bits, signed)
    q = qmax(bits, signed)
    assert c.dtype == torch.int64
    assert int(c.max()) <= q and int(c.min()) >= (-q if signed else 0)
    lo = -q * scale if signed else 0.0
    inside = (x >= lo) & (x <= q * scale)
    err = (dequantize(c, scale) - x).abs()
    assert bool((err[inside] <= scale / 2 + 1e-4 * scale + 1e-6).all())


def test_qmax():
    assert qmax(8, False) == 255 and qmax(8, True) == 127


def test_calibrate_max_and_percentile():
    m = nn.Sequential(nn.Identity(), nn.Linear(4, 2))
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5], [0.0, 0.0, -6.0, 1.0]])
    layers = {"fc": "1"}
    s = calibrate_scales(m, layers, x, QuantConfig())
    assert s["fc"] == pytest.approx(6.0 / 255)

    class Spec:
        module = "1"
        signed_input = True

    s = calibrate_scales(m, {"fc": Spec()}, x, QuantConfig(bits=4))
    assert s["fc"] == pytest.approx(6.0 / 7)
    # percentile 50 of |x| = [0,0,0.5,1,1,2,3,6] (lower nearest rank: 4th of 8) = 1
    s = calibrate_scales(m, layers, x, QuantConfig(calibration="percentile", percentile=50),
                         batch_size=1)
    assert s["fc"] == pytest.approx(1.0 / 255)


def test_calibrate_zero_input_and_unknown_module():
    from workloads.errors import WorkloadError

    m = nn.Sequential(nn.ReLU(), nn.Linear(3, 2))
    s = calibrate_scales(m, {"fc": "1"}, -torch.ones(2, 3), QuantConfig())
    assert s["fc"] == pytest.approx(1 / 255)
    with pytest.raises(WorkloadError, match="no submodule"):
        calibrate_scales(m, {"fc": "7"}, torch.ones(2, 3), QuantConfig())


def _net() -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=2), nn.Linear(12, 5))
    with torch.no_grad():
        net[0].weight[2].zero_()  # a channel of zeros: scale 1, stays zero
        net[2].weight[1, :3] = torch.tensor([-4.0, 4.0, 1.0])  # |min| = max
    return net


def test_weights_quantized_in_place_bit_for_bit():
    """quantize_weights_in_place leaves in each listed module's weight what
    quantize_weights returns for it (the passes' own copies), bit for bit; a second call
    (the next pass) changes nothing; the module itself, not a copy, is changed."""
    net = _net()
    want = {i: quantize_weights(net[i].weight, 4) for i in range(3)}
    w0 = net[0].weight
    layers = {"a": "0", "b": SimpleNamespace(module="1"), "c": "2"}
    assert quantize_weights_in_place(net, layers, 4)
    assert net[0].weight is w0
    for i in range(3):
        assert torch.equal(net[i].weight.detach(), want[i])
    assert quantize_weights_in_place(net, layers, 4)
    for i in range(3):
        assert torch.equal(net[i].weight.detach(), want[i])
    with pytest.raises(ValueError, match="quantized to 4 bits already"):
        quantize_weights_in_place(net, layers, 8)


def test_weights_in_place_refused_unless_every_weight_is_float32():
    net = _net()
    before = [m.weight.detach().clone() for m in net]
    net[2].double()
    assert not quantize_weights_in_place(net, {"a": "0", "c": "2"}, 8)
    assert not quantize_weights_in_place(net, {"a": "0", "x": "nope"}, 8)
    assert torch.equal(net[0].weight.detach(), before[0])  # nothing changed
