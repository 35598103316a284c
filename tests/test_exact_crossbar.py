"""The exact crossbar mode of the accuracy path (workloads/precision/crossbar.py): values
worked by hand, an independent reference, the never-clip rule, the skipping rule, the
calibrated ADC, read noise, the keys and the device dispatch."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_nets import tiny_net
from torch import nn

from simulator.core.column_sum import adc_bits_never_clip, adc_bits_rule, column_sum_max
from simulator.core.config_io import ConfigError
from simulator.hardware.spec import load_hardware
from simulator.runner.flow import capture_device, crossbar_model
from simulator.runner.scenario import load_scenario
from workloads.device import resolve_device
from workloads.errors import WorkloadError
from workloads.precision.crossbar import CrossbarModel, clip_inputs, lsb_from_hist
from workloads.precision.passes import calibrate_adc, compute_precision
from workloads.precision.policies import PolicySpec
from workloads.precision.quantize import QuantConfig, calibrate_scales
from workloads.precision.records import LayerSpec

ROOT = Path(__file__).resolve().parents[1]
ISAAC8 = ROOT / "configs" / "hardware" / "isaac8.yaml"
STATIC = {"s": PolicySpec(policy="static")}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as redysim runs the capture (two spin on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def xbar(rows: int = 4, n: int = 2, flip: bool = False, **kw) -> CrossbarModel:
    """2-bit cells, 4-bit weights (two cells: u = w + 8 = 4·u1 + u0), unit column."""
    base = dict(rows=rows, cols=8, cell_bits=2, weight_bits=4, unit_column=True,
                flip_encoding=flip, adc_bits=n)
    return CrossbarModel(**{**base, **kw})


def linear(weights: list[list[float]]) -> nn.Module:
    lin = nn.Linear(len(weights[0]), len(weights), bias=False)
    with torch.no_grad():
        lin.weight[:] = torch.tensor(weights)
    return nn.Sequential(lin)


def one_output(weights, codes, *, signed=False, bits=3, **kw) -> float:
    """Output of a bias-free linear layer with activation scale 1 (the inputs are the
    codes) through the exact mode."""
    m = linear(weights)
    layers = {"fc": LayerSpec("0", "linear", [(0, len(codes))], signed)}
    res = compute_precision(m, layers, torch.tensor([codes], dtype=torch.float32),
                            {"fc": 1.0}, QuantConfig(bits=bits), STATIC, weight_bits=4,
                            crossbar=xbar(rows=len(codes), **kw) if kw else None)
    return float(res["s"].logits[0, 0])


# --------------------------------------------------------------------------- by hand

# Weights 0.1·[7, −2, 1, 0] → codes w = [7, −2, 1, 0] (scale 0.1, q = 7); offset codes
# u = w + 8 = [15, 6, 9, 8]; 2-bit cells u0 = [3, 2, 1, 0], u1 = [3, 1, 2, 2].
# Inputs (3-bit, unsigned) [5, 3, 7, 0]: plane 0 = [1,1,1,0], plane 1 = [0,1,1,0],
# plane 2 = [1,0,1,0]. Column sums per plane (u0, u1, unit column):
#   p0: 3+2+1 = 6, 3+1+2 = 6, 3      p1: 2+1 = 3, 1+2 = 3, 2      p2: 3+1 = 4, 3+2 = 5, 2
# Exact: y = 7·5 − 2·3 + 1·7 = 36 → 3.6.
W = [[0.7, -0.2, 0.1, 0.0]]
X = [5, 3, 7, 0]


def test_hand_worked_unclipped_equals_the_product() -> None:
    # 3-bit ADC (top 7): every sum above fits; plane p: A(u0) + 4·A(u1) − 8·A(unit)
    # p0: 6 + 24 − 24 = 6, p1: 3 + 12 − 16 = −1, p2: 4 + 20 − 16 = 8 → 6 − 2 + 32 = 36
    assert one_output(W, X, n=3) == pytest.approx(3.6)
    assert one_output(W, X) == pytest.approx(3.6)  # the fast path


def test_hand_worked_clipped_at_two_bits() -> None:
    # 2-bit ADC (top 3): every weight column reads 3; the unit column 3, 2, 2
    # p0: 3 + 12 − 24 = −9, p1: 3 + 12 − 16 = −1, p2: 3 + 12 − 16 = −1
    # y = −9 + 2·(−1) + 4·(−1) = −15
    assert one_output(W, X, n=2) == pytest.approx(-1.5)


def test_hand_worked_flip_encoding() -> None:
    # flip a column when its cells sum above rows·3/2 = 6: u0 sums 6 (kept), u1 sums 8
    # (stored 3 − u1 = [0, 2, 1, 1]). Stored u1 sums: p0 0+2+1 = 3, p1 2+1 = 3, p2 0+1 = 1;
    # recovered 3·A(unit) − A(stored): p0 9 − 3 = 6, p1 6 − 3 = 3, p2 6 − 1 = 5 (exact).
    # 2-bit ADC: u0 reads 3, 3, 3 → p0 3 + 24 − 24 = 3, p1 3 + 12 − 16 = −1,
    # p2 3 + 20 − 16 = 7 → y = 3 − 2 + 28 = 29
    assert one_output(W, X, n=2, flip=True) == pytest.approx(2.9)
    assert one_output(W, X, n=3, flip=True) == pytest.approx(3.6)


def test_hand_worked_signed_sign_plane() -> None:
    # weights 0.1·[7, −1, 2] → w = [7, −1, 2], u = [15, 7, 10], u0 = [3, 3, 2], u1 = [3, 1, 2]
    # signed 3-bit codes [−3, 2, 1] (two's complement 101, 010, 001): plane 0 = [1,0,1],
    # plane 1 = [0,1,0], plane 2 = the sign plane (weight −4) = [1,0,0]
    # sums (u0, u1, unit): p0 5, 5, 2;  p1 3, 1, 1;  p2 3, 3, 1
    # exact: p0 5 + 20 − 16 = 9, p1 3 + 4 − 8 = −1, p2 3 + 12 − 8 = 7 → 9 − 2 − 28 = −21
    # 2-bit ADC: p0 3 + 12 − 16 = −1 → y = −1 − 2 − 28 = −31
    w, x = [[0.7, -0.1, 0.2]], [-3, 2, 1]
    assert one_output(w, x, signed=True, n=3) == pytest.approx(-2.1)
    assert one_output(w, x, signed=True, n=2) == pytest.approx(-3.1)


def test_hand_worked_calibrated_adc() -> None:
    # calibration on the same image: the largest column sum is 6, so a 2-bit ADC spreads
    # its 3 levels over [0, 6]: level 2. Readings round half up to a multiple of 2:
    # 6 → 6, 3 → 4, 4 → 4, 5 → 6, 2 → 2 (unit column 3 → 4)
    # p0: 6 + 24 − 8·4 = −2, p1: 4 + 16 − 16 = 4, p2: 4 + 24 − 16 = 12 → −2 + 8 + 48 = 54
    m = linear(W)
    layers = {"fc": LayerSpec("0", "linear", [(0, 4)])}
    x = torch.tensor([X], dtype=torch.float32)
    cal = xbar(adc_model="calibrated")
    lsb = calibrate_adc(m, layers, x, {"fc": 1.0}, QuantConfig(bits=3), cal)
    assert lsb == {"fc": 2.0}
    res = compute_precision(m, layers, x, {"fc": 1.0}, QuantConfig(bits=3), STATIC,
                            weight_bits=4, crossbar=cal.with_lsb(lsb))
    assert float(res["s"].logits[0, 0]) == pytest.approx(5.4)


def test_lsb_from_histogram() -> None:
    hist = torch.zeros(11, dtype=torch.int64)
    hist[[1, 4, 10]] = torch.tensor([6, 3, 1])  # ten values: six 1s, three 4s, one 10
    assert lsb_from_hist(hist, 2, 100.0) == pytest.approx(10 / 3)
    assert lsb_from_hist(hist, 2, 90.0) == pytest.approx(4 / 3)   # 9th of 10 values: 4
    assert lsb_from_hist(hist, 3, 90.0) == 1.0                     # never below one unit
    assert lsb_from_hist(torch.zeros(5, dtype=torch.int64), 4, 100.0) == 1.0


def test_clip_inputs_matches_sorted_columns() -> None:
    g = torch.Generator().manual_seed(1)
    for cmax, top in ((1, 5), (3, 20), (3, 200), (15, 40)):
        stored = torch.randint(0, cmax + 1, (37, 23), generator=g).to(torch.uint8)
        best = torch.sort(stored.to(torch.int64), dim=0, descending=True).values
        sums = torch.cat([torch.zeros(1, 23, dtype=torch.int64), best.cumsum(0)])
        over = (sums > top).any(dim=1).nonzero()
        want = int(over[0]) if len(over) else 38
        assert clip_inputs(stored, cmax, top) == want


# --------------------------------------------------------------------------- reference


def reference_conv(x_codes: torch.Tensor, w_codes: torch.Tensor, blocks, n_bits: int,
                   act_bits: int, cell_bits: int, w_bits: int, flip: bool) -> torch.Tensor:
    """The chip's conv output in integer units, written plainly: every block, plane, slice,
    column; offset encoding with the unit column, optional flip, ideal ADC."""
    cols = F.unfold(x_codes, 3, padding=1)                   # (n, L, P)
    n, _, npos = cols.shape
    cout = w_codes.shape[0]
    top, cmax, half = 2 ** n_bits - 1, 2 ** cell_bits - 1, 2 ** (w_bits - 1)
    slices = -(-w_bits // cell_bits)
    y = torch.zeros(n, cout, npos, dtype=torch.float64)
    for r0, r1 in blocks:
        u = (w_codes[:, r0:r1] + half).to(torch.int64)
        for o, j in itertools.product(range(cout), range(slices)):
            cell = (u[o] >> (cell_bits * j)) & cmax
            flipped = flip and 2 * int(cell.sum()) > (r1 - r0) * cmax
            stored = cmax - cell if flipped else cell
            for p in range(act_bits):
                plane = ((cols[:, r0:r1].to(torch.int64) >> p) & 1).to(torch.float64)
                s = torch.einsum("nrp,r->np", plane, stored.to(torch.float64)).clamp(max=top)
                unit = plane.sum(dim=1).clamp(max=top)
                val = cmax * unit - s if flipped else s
                y[:, o] += 2 ** p * 2 ** (cell_bits * j) * val
                if j == 0:
                    y[:, o] -= 2 ** p * half * unit
    return y


@pytest.mark.parametrize("flip", [False, True])
def test_conv_matches_independent_reference(flip: bool) -> None:
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 5, 3, padding=1, bias=False)
    m = nn.Sequential(conv)
    x_codes = torch.randint(0, 8, (2, 3, 5, 5)).float()
    blocks = [(0, 18), (18, 27)]
    layers = {"c": LayerSpec("0", "conv", blocks)}
    cb = CrossbarModel(rows=18, cols=16, cell_bits=2, weight_bits=4, unit_column=True,
                       flip_encoding=flip, adc_bits=4)
    res = compute_precision(m, layers, x_codes, {"c": 1.0}, QuantConfig(bits=3), STATIC,
                            weight_bits=4, crossbar=cb)
    from workloads.precision.quantize import quantize_weight_codes

    w_codes, w_scale = quantize_weight_codes(conv.weight, 4)
    ref = reference_conv(x_codes, w_codes.reshape(5, -1), blocks, 4, 3, 2, 4, flip)
    got = res["s"].logits.reshape(2, 5, 25).double() / w_scale.reshape(1, 5, 1).double()
    exact = torch.einsum("ol,nlp->nop", w_codes.reshape(5, -1).double(),
                         F.unfold(x_codes, 3, padding=1).double())
    assert not torch.allclose(ref, exact)  # the 4-bit ADC clips here
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-3)


# --------------------------------------------------------------------------- rules


LAYERS = {
    "c0": LayerSpec("0", "conv", [(0, 13), (13, 27)], True),  # splits kernel windows
    "dw": LayerSpec("2", "conv", [(0, 36), (36, 72)]),
    "g4": LayerSpec("4", "conv", [(0, 18), (18, 72)]),
    "pw": LayerSpec("6", "conv", [(0, 12)]),
    "fc": LayerSpec("9", "linear", [(0, 50), (50, 96)]),
}


@pytest.fixture(scope="module")
def net():
    m = tiny_net().eval()
    x = torch.randn(6, 3, 8, 8)
    q = QuantConfig()
    return m, x, q, calibrate_scales(m, LAYERS, x, q)


def run_net(net, pipes, cb):
    m, x, q, scales = net
    return compute_precision(m, LAYERS, x, scales, q, pipes, weight_bits=8, crossbar=cb)


@pytest.mark.parametrize("flip", [False, True])
def test_skipping_is_exact(net, flip: bool) -> None:
    """Skipping the planes that cannot clip changes nothing: the mode equals the mode
    forced to compute every streamed plane, bit for bit, for built-in (statistics) and
    custom (im2col) policies, conv (split windows, depthwise, grouped, 1x1) and linear."""
    pipes = {"r": PolicySpec(policy="redy", k=1.0, epsilon=0.5),
             "m": PolicySpec(policy="msb-trim"),
             "c": PolicySpec(policy="workloads.precision.policies:redy", k=1.0)}
    cb = CrossbarModel(rows=72, cols=128, cell_bits=2, weight_bits=8, unit_column=True,
                       flip_encoding=flip, adc_bits=5)
    skip = run_net(net, pipes, cb)
    forced = run_net(net, pipes, dataclasses.replace(cb, force=True))
    fast = run_net(net, pipes, None)
    for name in pipes:
        assert torch.equal(skip[name].logits, forced[name].logits)
        assert not torch.equal(skip[name].logits, fast[name].logits)  # 5 bits clip here


def test_never_clip_bits_equal_the_fast_path(net) -> None:
    """At the resolution the rule gives, the forced exact computation adds exactly zero."""
    pipes = {"r": PolicySpec(policy="redy", k=1.0), "s": PolicySpec(policy="static")}
    for flip in (False, True):
        cb = CrossbarModel(rows=72, cols=128, cell_bits=2, weight_bits=8, unit_column=True,
                           flip_encoding=flip, adc_bits=1)
        cb = dataclasses.replace(cb, adc_bits=cb.never_clip_bits, force=True)
        assert cb.adc_bits == (7 if flip else 8)  # 72 · 3 = 216 (108 with flip)
        exact, fast = run_net(net, pipes, cb), run_net(net, pipes, None)
        for name in pipes:
            assert torch.equal(exact[name].logits, fast[name].logits)


def test_rule_closed_form() -> None:
    # cell bits + ceil(log2 rows) (+ input-slice bits − 1), minus one with flip encoding
    for rows, b, flip in itertools.product((16, 64, 128, 256), (1, 2, 4), (False, True)):
        assert adc_bits_rule(rows, b, flip) == b + rows.bit_length() - 1 - flip
        assert adc_bits_never_clip(rows, b, flip) == adc_bits_rule(rows, b, flip)
    assert adc_bits_rule(128, 2, False, dac_bits=2) == 10            # 128·3·3 = 1152
    assert adc_bits_never_clip(128, 2, False, dac_bits=2) == 11      # ceil(log2 1153)
    assert adc_bits_never_clip(100, 2, False) == 9 == adc_bits_rule(100, 2, False)  # 300
    assert adc_bits_never_clip(72, 2, False) == 8 < adc_bits_rule(72, 2, False)     # 216
    # the unit column sums the inputs: with 1-bit cells and flip it needs the extra bit
    assert column_sum_max(128, 1, True) == 64
    assert adc_bits_never_clip(128, 1, True, unit_column=True) == 8
    # the hardware derivations use the same statement
    hw = load_hardware(ISAAC8)
    for rows, flip in itertools.product((64, 128, 256), (False, True)):
        v = hw.with_changes({"crossbar.rows": rows, "weights.flip_encoding": flip,
                             "ima.input_register_bytes": 2 * rows * 8})
        assert v.adc_bits_needed == adc_bits_rule(rows, 2, flip)
        assert crossbar_model(v).never_clip_bits == v.adc_bits_needed


@pytest.mark.parametrize("rows,cell_bits,flip", [(8, 2, False), (8, 2, True), (16, 1, False),
                                                 (16, 1, True), (16, 2, True)])
def test_rule_against_the_mode(rows: int, cell_bits: int, flip: bool) -> None:
    """Worst-case columns (every cell at its top level; with flip, half the rows +q and
    half −q, whose upper slices sum to exactly half the maximum) and every input set: no
    error at the rule's resolution, an error one bit below."""
    w = [[1.0] * rows, [1.0] * (rows // 2) + [-1.0] * (rows // 2)]
    m = linear(w)
    layers = {"fc": LayerSpec("0", "linear", [(0, rows)])}
    x = torch.full((1, rows), 7.0)  # 3-bit codes 7: every plane sets every input
    need = adc_bits_never_clip(rows, cell_bits, flip, unit_column=True)
    exact = [7.0 * rows, 0.0]  # weight codes ±7 at scale 1/7, inputs 7
    for n, clips in ((need, False), (need - 1, True)):
        cb = CrossbarModel(rows=rows, cols=16, cell_bits=cell_bits, weight_bits=4,
                           unit_column=True, flip_encoding=flip, adc_bits=n)
        res = compute_precision(m, layers, x, {"fc": 1.0}, QuantConfig(bits=3), STATIC,
                                weight_bits=4, crossbar=cb)
        got = res["s"].logits[0].tolist()
        assert (got != pytest.approx(exact)) == clips, (n, got)


# --------------------------------------------------------------------------- noise


def test_read_noise_is_seeded(net) -> None:
    pipes = {"s": PolicySpec(policy="static")}
    cb = CrossbarModel(rows=72, cols=128, cell_bits=2, weight_bits=8, unit_column=True,
                       flip_encoding=True, adc_bits=8)
    fast = run_net(net, pipes, None)["s"].logits
    # 0.01 LSB never moves a reading across a rounding boundary (50 sigma): exact
    tiny = run_net(net, pipes, dataclasses.replace(cb, noise_lsb=0.01))["s"].logits
    assert torch.equal(tiny, fast)
    a = run_net(net, pipes, dataclasses.replace(cb, noise_lsb=1.0))["s"].logits
    b = run_net(net, pipes, dataclasses.replace(cb, noise_lsb=1.0))["s"].logits
    c = run_net(net, pipes, dataclasses.replace(cb, noise_lsb=1.0, noise_seed=1))["s"].logits
    assert torch.equal(a, b) and not torch.equal(a, fast) and not torch.equal(a, c)


# --------------------------------------------------------------------------- keys


def test_crossbar_model_from_hardware_and_checks(tmp_path: Path) -> None:
    hw = load_hardware(ISAAC8).with_changes({"ima.adc_bits": 5, "ima.adc_model": "calibrated",
                                             "ima.adc_noise_lsb": 0.25})
    cb = crossbar_model(hw)
    assert (cb.rows, cb.cols, cb.cell_bits, cb.weight_bits, cb.adc_bits) == (128, 128, 2, 8, 5)
    assert cb.flip_encoding and cb.unit_column and cb.calibrated and cb.noise_lsb == 0.25
    assert cb.per_crossbar == 31 and cb.never_clip_bits == 8
    with pytest.raises(ValueError, match="adc_model must be one of ideal, calibrated"):
        dataclasses.replace(cb, adc_model="flash")
    with pytest.raises(ValueError, match="has no range"):
        cb.layer_lsb("conv1")
    with pytest.raises(ConfigError, match=r"ima\.adc_model"):
        load_hardware(ISAAC8).with_changes({"ima.adc_model": "flash"})
    with pytest.raises(ConfigError, match=r"ima\.adc_noise_lsb"):
        load_hardware(ISAAC8).with_changes({"ima.adc_noise_lsb": -1.0})
    with pytest.raises(ConfigError, match=r"ima\.adc_range_percentile"):
        load_hardware(ISAAC8).with_changes({"ima.adc_range_percentile": 0})


def test_scenario_keys(tmp_path: Path) -> None:
    scen = ROOT / "configs" / "scenarios" / "digits.yaml"
    assert load_scenario(scen).accuracy.crossbar == "fast"
    assert load_scenario(scen).workload.device == "cpu"
    sc = load_scenario(scen, {"accuracy.crossbar": "exact", "workload.device": "auto"})
    assert sc.accuracy.crossbar == "exact" and sc.workload.device == "auto"
    with pytest.raises(ConfigError, match=r"accuracy\.crossbar"):
        load_scenario(scen, {"accuracy.crossbar": "exactly"})
    with pytest.raises(ConfigError, match=r"workload\.device"):
        load_scenario(scen, {"workload.device": "gpu"})


# --------------------------------------------------------------------------- device


def test_device_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU-only: which device each setting picks, and the error when cuda is absent."""
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(WorkloadError, match="workload.device: cuda was asked for, but"):
        resolve_device("cuda")
    sc = load_scenario(ROOT / "configs" / "scenarios" / "digits.yaml",
                       {"workload.device": "cuda"})
    with pytest.raises(ConfigError, match=r"digits\.yaml: workload\.device: cuda was asked"):
        capture_device(sc)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(WorkloadError, match="expected one of cpu, cuda, auto"):
        resolve_device("tpu")


def test_explicit_cpu_device_is_the_default_path(net) -> None:
    m, x, q, scales = net
    cb = CrossbarModel(rows=72, cols=128, cell_bits=2, weight_bits=8, unit_column=True,
                       flip_encoding=False, adc_bits=5)
    a = compute_precision(m, LAYERS, x, scales, q, STATIC, weight_bits=8, crossbar=cb)
    b = compute_precision(m, LAYERS, x, scales, q, STATIC, weight_bits=8, crossbar=cb,
                          device=torch.device("cpu"))
    assert torch.equal(a["s"].logits, b["s"].logits)


# --------------------------------------------------------------------------- trained models


def test_digits_bit_for_bit_at_never_clip_bits() -> None:
    """On the trained digits CNN: with 9-bit ADCs (128 rows, no flip encoding: never clip)
    the exact mode forced to compute every plane gives the fast path's logits bit for bit;
    with 5-bit ADCs it does not. (The residual CNN: tests/test_resnet_digits.py.)"""
    from simulator.runner.flow import layer_specs, prepare

    sc = load_scenario(ROOT / "configs" / "scenarios" / "digits.yaml")
    hw = load_hardware(ISAAC8).with_changes({"weights.flip_encoding": False,
                                             "ima.adc_bits": 9})
    hw, wl, mapping = prepare(sc, hardware=hw)
    specs = layer_specs(wl.traced, mapping)
    mod = wl.traced.module
    scales = calibrate_scales(mod, specs, wl.calib_inputs, sc.quantization)
    x = wl.eval_inputs[:32]
    pipes = {"static": sc.pipelines["static"], "redy": sc.pipelines["redy"]}
    cb = dataclasses.replace(crossbar_model(hw), force=True)
    assert cb.never_clip_bits == 9

    def logits(crossbar):
        res = compute_precision(mod, specs, x, scales, sc.quantization, pipes,
                                weight_bits=8, crossbar=crossbar)
        return {n: r.logits for n, r in res.items()}

    fast, exact = logits(None), logits(cb)
    five = logits(dataclasses.replace(cb, adc_bits=5, force=False))
    for n in pipes:
        assert torch.equal(exact[n], fast[n])
        assert not torch.equal(five[n], fast[n])
