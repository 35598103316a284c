"""Precision policies and the bit window: properties and hand-worked groups."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from workloads.precision.policies import (
    PolicySpec,
    apply_window,
    bit_length,
    msb_trim,
    redy,
    resolve_policy,
    static,
    window_limits,
)


def half_policy(codes, *, signed, bits, **params):
    """Custom test policy: the upper half of the static planes."""
    n = codes.shape[0]
    return torch.full((n,), bits // 2, dtype=torch.int64), torch.full((n,), bits - bits // 2,
                                                                        dtype=torch.int64)


def narrow_policy(codes, *, bits, width=2):
    """Custom test policy without **kwargs: only the parameters it names are passed."""
    n = codes.shape[0]
    return torch.zeros(n, dtype=torch.int64), torch.full((n,), width, dtype=torch.int64)


@st.composite
def groups(draw, signed=None):
    bits = draw(st.integers(2, 10))
    sg = draw(st.booleans()) if signed is None else signed
    q = (1 << (bits - 1)) - 1 if sg else (1 << bits) - 1
    lo = -q if sg else 0
    n = draw(st.integers(1, 6))
    size = draw(st.integers(1, 12))
    sparse = draw(st.booleans())
    vals = draw(st.lists(st.integers(lo, q), min_size=n * size, max_size=n * size))
    c = torch.tensor(vals, dtype=torch.int64).reshape(n, size)
    if sparse:
        c[:, ::2] = 0
        if n > 1:
            c[0] = 0
    return c, sg, bits


def test_bit_length():
    x = torch.tensor([0, 1, 2, 3, 4, 7, 8, 255, 256, 65535])
    assert bit_length(x).tolist() == [0, 1, 2, 2, 3, 3, 4, 8, 9, 16]


@settings(max_examples=200, deadline=None)
@given(groups())
def test_static_full_planes(g):
    c, sg, bits = g
    low, planes = static(c, signed=sg, bits=bits)
    assert low.tolist() == [0] * len(c) and planes.tolist() == [bits] * len(c)
    assert torch.equal(apply_window(c, low, planes, sg, bits), c)


@settings(max_examples=300, deadline=None)
@given(groups(), st.booleans())
def test_msb_trim_lossless_and_minimal(g, skip):
    c, sg, bits = g
    low, planes = msb_trim(c, signed=sg, bits=bits, skip_zero_groups=skip)
    assert (low == 0).all() and (planes <= bits).all() and (planes >= 0).all()
    assert torch.equal(apply_window(c, low, planes, sg, bits), c)
    zero = (c == 0).all(dim=1)
    assert (planes[zero] == (0 if skip else 1)).all()
    # one plane fewer would lose information for every non-zero group
    nz = ~zero & (planes > 0)
    if nz.any():
        fewer = apply_window(c[nz], low[nz], planes[nz] - 1, sg, bits)
        assert ((fewer != c[nz]).any(dim=1)).all()


@settings(max_examples=300, deadline=None)
@given(groups(), st.floats(0, 8), st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 8.0]),
       st.integers(1, 10), st.booleans())
def test_redy_window_bounds(g, k, eps, min_bits, skip):
    c, sg, bits = g
    low, planes = redy(c, signed=sg, bits=bits, k=k, epsilon=eps, min_bits=min_bits,
                       skip_zero_groups=skip)
    assert low.dtype == torch.int64 and planes.shape == (len(c),)
    assert (low >= 0).all() and (low + planes <= bits).all()
    mag = bits - 1 if sg else bits
    want = min(min_bits, mag) + (1 if sg else 0)
    zero = (c == 0).all(dim=1)
    if skip:
        assert (planes[zero] == 0).all()
    assert (planes[~zero] >= want).all() if skip else (planes >= want).all()
    w = apply_window(c, low, planes, sg, bits)
    lo, hi = window_limits(low[:, None], planes[:, None], sg)
    assert ((w >= lo) & (w <= hi)).all()
    assert (w % (torch.ones_like(low) << low)[:, None] == 0).all()
    # inside the window's range, the error is at most half a step
    inside = (c >= lo) & (c <= hi - (torch.ones_like(low) << low)[:, None] // 2)
    err = (w - c).abs()
    assert (err[inside] <= ((torch.ones_like(low) << low)[:, None] // 2).expand_as(c)[inside]).all()


@settings(max_examples=100, deadline=None)
@given(groups())
def test_redy_large_k_no_eps_is_lossless(g):
    c, sg, bits = g
    low, planes = redy(c, signed=sg, bits=bits, k=1e6, epsilon=0.0, min_bits=1)
    assert (low == 0).all()
    assert torch.equal(apply_window(c, low, planes, sg, bits), c)


def test_redy_hand_worked_unsigned():
    c = torch.tensor([[0, 0, 0, 8]])  # mu = 2, sigma = sqrt(12) = 3.464, max = 8
    # k=3: clip = min(8, 2 + 10.39) = 8 -> top = bit_length(8) = 4
    low, planes = redy(c, signed=False, bits=8, k=3.0)
    assert (low.item(), planes.item()) == (0, 4)
    # k=1: clip = 5.46 -> round 5 -> top 3: 8 saturates to 7
    low, planes = redy(c, signed=False, bits=8, k=1.0)
    assert (low.item(), planes.item()) == (0, 3)
    assert apply_window(c, low, planes, False, 8).tolist() == [[0, 0, 0, 7]]
    # eps=0.6: eps*sigma = 2.08 -> d = 1 -> planes [1, 3): {0, 2, 4, 6}
    low, planes = redy(c, signed=False, bits=8, k=1.0, epsilon=0.6)
    assert (low.item(), planes.item()) == (1, 2)
    assert apply_window(c, low, planes, False, 8).tolist() == [[0, 0, 0, 6]]
    # constant group: sigma = 0, clip = 4 -> 3 planes, lossless
    c4 = torch.tensor([[4, 4, 4, 4]])
    low, planes = redy(c4, signed=False, bits=8, k=3.0, epsilon=1.0)
    assert (low.item(), planes.item()) == (0, 3)


def test_redy_hand_worked_min_bits_lowers_low():
    c = torch.tensor([[100, 0, 0, 0]])  # mu = 25, sigma = 43.30, clip = 100 -> top = 7
    sigma = math.sqrt((100**2) / 4 - 25**2)
    assert math.floor(math.log2(sigma)) == 5
    low, planes = redy(c, signed=False, bits=8, k=3.0, epsilon=1.0, min_bits=1)
    assert (low.item(), planes.item()) == (5, 2)  # planes [5, 7)
    assert apply_window(c, low, planes, False, 8).tolist() == [[96, 0, 0, 0]]
    low, planes = redy(c, signed=False, bits=8, k=3.0, epsilon=1.0, min_bits=4)
    assert (low.item(), planes.item()) == (3, 4)  # planes [3, 7): multiples of 8 up to 120
    assert apply_window(c, low, planes, False, 8).tolist() == [[104, 0, 0, 0]]
    # a sparse group whose clip rounds to 0 still gets min_bits planes
    c1 = torch.tensor([[1] + [0] * 7])  # mu + 3 sigma = 0.125 + 3 * 0.331 = 1.12 -> top 1
    assert redy(c1, signed=False, bits=8, k=3.0)[1].item() == 1
    assert redy(c1, signed=False, bits=8, k=0.5)[1].item() == 1  # clip 0.29 -> top 0 -> 1
    assert [t.item() for t in redy(c1, signed=False, bits=8, min_bits=3)] == [0, 3]


def test_redy_hand_worked_signed():
    c = torch.tensor([[-8, 0, 0, 0], [0, 0, 0, 0]])  # |c|: same stats as [0, 0, 0, 8]
    low, planes = redy(c, signed=True, bits=8, k=3.0)
    assert low.tolist() == [0, 0] and planes.tolist() == [5, 0]  # 4 magnitude + sign
    low, planes = redy(c, signed=True, bits=8, k=1.0)
    assert planes.tolist() == [4, 0]  # [-8, 7]: -8 still fits
    assert apply_window(c, low, planes, True, 8).tolist() == c.tolist()
    low, planes = redy(c, signed=True, bits=8, k=1.0, skip_zero_groups=False)
    assert planes.tolist() == [4, 2]
    cp = torch.tensor([[8, 0, 0, 0]])
    low, planes = redy(cp, signed=True, bits=8, k=1.0)
    assert apply_window(cp, low, planes, True, 8).tolist() == [[7, 0, 0, 0]]


def test_msb_trim_signed_hand_worked():
    c = torch.tensor([[-1, 0], [-2, 1], [3, -4], [-5, 0], [0, 0], [127, -127]])
    low, planes = msb_trim(c, signed=True, bits=8)
    assert planes.tolist() == [1, 2, 3, 4, 0, 8]


def test_apply_window_rounding_and_saturation():
    c = torch.tensor([[0, 1, 2, 3, 5, 6, 7, 255]])
    w = apply_window(c, torch.tensor([1]), torch.tensor([2]), False, 8)
    assert w.tolist() == [[0, 2, 2, 4, 6, 6, 6, 6]]  # round half up, then saturate at 6
    assert apply_window(c, torch.tensor([0]), torch.tensor([0]), False, 8).tolist() == [[0] * 8]
    s = torch.tensor([[-5, -3, -1, 1, 3, 9]])
    w = apply_window(s, torch.tensor([1]), torch.tensor([3]), True, 8)  # [-8, 6] step 2
    assert w.tolist() == [[-4, -2, 0, 2, 4, 6]]


def test_spec_validation_messages():
    assert PolicySpec().policy == "static"
    with pytest.raises(ValidationError, match="valid: static, zero-skip, msb-trim, redy"):
        PolicySpec(policy="dynamic")
    with pytest.raises(ValidationError, match="cannot import module"):
        PolicySpec(policy="no_such_pkg.mod:fn")
    with pytest.raises(ValidationError, match="has no function"):
        PolicySpec(policy=f"{__name__}:missing_fn")
    with pytest.raises(ValidationError):
        PolicySpec(policy="redy", kk=3)
    with pytest.raises(ValidationError):
        PolicySpec(policy="redy", epsilon=-1)
    with pytest.raises(ValidationError):
        PolicySpec(policy="redy", layers={"conv1": {"k": 2, "bogus": 1}})


def test_params_for_overrides():
    spec = PolicySpec(policy="redy", k=3, layers={"conv1": {"k": 2.0}, "features.0": {
        "min_bits": 3}})
    assert spec.params_for("conv1")["k"] == 2.0
    assert spec.params_for("conv2")["k"] == 3.0
    assert spec.params_for("x", "features.0")["min_bits"] == 3


def test_custom_dotted_path_policy():
    spec = PolicySpec(policy=f"{__name__}:half_policy")
    fn = resolve_policy(spec)
    low, planes = fn(torch.zeros(3, 4, dtype=torch.int64), signed=False, bits=8,
                     **spec.params_for("l"))
    assert low.tolist() == [4, 4, 4] and planes.tolist() == [4, 4, 4]
    spec = PolicySpec(policy=f"{__name__}:narrow_policy", params={"width": 3})
    fn = resolve_policy(spec)
    low, planes = fn(torch.zeros(2, 4, dtype=torch.int64), signed=False, bits=8,
                     **spec.params_for("l"))
    assert planes.tolist() == [3, 3]
    assert resolve_policy("redy") is redy
