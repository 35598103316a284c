"""Static quantization: codes, scales and calibration."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from torch import nn

from workloads.precision.quantize import QuantConfig, calibrate_scales, dequantize, qmax, quantize


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
