"""End to end on the digits CNN: bit planes, a closed-form recount of the hardware events,
ReDy vs static, agreement of the three fidelities, timeline and accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.results.write import build_summary, timeline
from simulator.runner.flow import RunResult, run
from simulator.runner.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 2
PIPES = ("static", "redy", "msb-trim")
COUNT_KEYS = ("groups", "bit_planes", "crossbar_reads", "adc_conversions", "dac_drives")


def _scenario(fidelity: str, accuracy_images: int = 0) -> Scenario:
    return Scenario.model_validate({
        "name": f"digits-{fidelity}",
        "hardware": "../hardware/isaac8.yaml",  # resolved against `source`
        "source": str(ROOT / "configs" / "scenarios" / "digits.yaml"),
        "workload": {"model": "digits", "calibration_images": 64,
                     "accuracy_images": accuracy_images},
        "quantization": {"bits": 8, "calibration": "max"},
        "pipelines": {"static": {"policy": "static"},
                      "redy": {"policy": "redy", "k": 3.0, "epsilon": 0.0, "min_bits": 1},
                      "msb-trim": {"policy": "msb-trim"}},
        "simulation": {"fidelity": fidelity, "images": IMAGES},
    })


@pytest.fixture(scope="module")
def rr() -> RunResult:
    return run(_scenario("group"))


@pytest.fixture(scope="module")
def others() -> dict[str, RunResult]:
    # accuracy is not checked here: a short precision pass; the simulated images are the
    # same first test images (checked in test_fidelities_agree)
    return {f: run(_scenario(f, accuracy_images=8)) for f in ("plane", "analytic")}


def _planes(r: RunResult, pipe: str, layer: str) -> np.ndarray:
    """Bit planes (IMAGES, row blocks, positions) of the simulated images, cycled."""
    p = r.precision[pipe].layers[layer].planes.astype(np.int64)
    return p[np.arange(IMAGES) % p.shape[0]]


def _recount(r: RunResult, pipe: str) -> dict[str, int]:
    """Closed-form event counts from the mapping and the bit-plane arrays alone."""
    tot = dict.fromkeys(COUNT_KEYS, 0)
    for name, lm in r.mapping.layers.items():
        planes = _planes(r, pipe, name)
        assert planes.shape == (IMAGES, len(lm.row_blocks), lm.positions)
        for i, rb in enumerate(lm.row_blocks):
            s = int(planes[:, i, :].sum())
            n_x = len(rb.crossbar_cols)
            tot["groups"] += lm.positions * IMAGES
            tot["bit_planes"] += s
            tot["crossbar_reads"] += s * n_x
            tot["adc_conversions"] += s * sum(rb.crossbar_cols)
            tot["dac_drives"] += s * (rb.rows[1] - rb.rows[0]) * n_x
    return tot


def test_plane_ranges(rr: RunResult) -> None:
    for name in rr.mapping.layers:
        assert (rr.precision["static"].layers[name].planes == 8).all()
        for pipe in ("redy", "msb-trim"):
            p = rr.precision[pipe].layers[name].planes.astype(np.int64)
            assert p.min() >= 0 and p.max() <= 8


@pytest.mark.parametrize("pipe", PIPES)
def test_closed_form_recount(rr: RunResult, pipe: str) -> None:
    expect = _recount(rr, pipe)
    pr = rr.pipelines[pipe]
    assert pr.counts() == expect
    assert build_summary(rr)["pipelines"][pipe]["counts"] == expect
    ev = pr.ledger.event_counts()
    assert ev["crossbar_read"] == expect["crossbar_reads"]
    assert ev["adc_conversion"] == expect["adc_conversions"]
    assert ev["dac_drive"] == expect["dac_drives"]
    assert pr.mean_bits_per_group() == pytest.approx(expect["bit_planes"] / expect["groups"])
    adc_pj = pr.ledger.energy_by_component()["adc"]
    assert adc_pj == pytest.approx(expect["adc_conversions"] * rr.hardware.energy.adc_conversion,
                                   rel=1e-9)


def test_redy_saves(rr: RunResult) -> None:
    st, rd = rr.pipelines["static"], rr.pipelines["redy"]
    cs, cr = st.counts(), rd.counts()
    assert cr["bit_planes"] < cs["bit_planes"]
    assert cr["adc_conversions"] < cs["adc_conversions"]
    assert rd.ledger.total_energy() < st.ledger.total_energy()
    assert rd.ledger.dynamic_energy() < st.ledger.dynamic_energy()
    assert rd.mean_bits_per_group() < st.mean_bits_per_group() == 8.0


def test_fidelities_agree(rr: RunResult, others: dict[str, RunResult]) -> None:
    for fid, other in others.items():
        for pipe in PIPES:
            for name in rr.mapping.layers:
                assert np.array_equal(_planes(other, pipe, name), _planes(rr, pipe, name))
            a, b = rr.pipelines[pipe], other.pipelines[pipe]
            assert b.fidelity == fid
            assert b.counts() == a.counts(), (fid, pipe)
            assert b.ledger.event_counts() == pytest.approx(a.ledger.event_counts(), rel=1e-12)
            assert b.ledger.dynamic_energy() == pytest.approx(a.ledger.dynamic_energy(),
                                                              rel=1e-12), (fid, pipe)
    # default hardware: one ADC per crossbar, so the plane-level pipeline has no ADC waits
    hw = rr.hardware
    assert hw.ima.adcs >= hw.ima.crossbars
    # the tile's bus and units are shared by the lanes and replicas of a tile: requests at
    # one instant are served in request order, which the two fidelities tie-break
    # differently (group fidelity: the order SimPy wakes the replica processes; plane: the
    # order the lanes' converters finish). With bands, conv3's 16 one-position replicas
    # merge on two tiles at the same instants, each merge holding the tile's adders and
    # output register for ~27 ns: a reordering of up to ~5 of them moves a merge by up to
    # ~0.15 us of the ~4.2 us latency
    assert others["plane"].pipelines["static"].latency_ns == pytest.approx(
        rr.pipelines["static"].latency_ns, rel=0.03)


@pytest.mark.parametrize("pipe", PIPES)
def test_latency_throughput_timeline(rr: RunResult, others: dict[str, RunResult],
                                     pipe: str) -> None:
    for r in (rr, *others.values()):
        pr = r.pipelines[pipe]
        assert pr.latency_ns > 0 and pr.throughput_ips > 0
        assert pr.latency_ns <= pr.timing.end_ns
        tl = timeline(pr, r.scenario.simulation.time_bins)
        for cls in ("crossbar", "adc", "digital"):
            u = tl[f"util:{cls}"]
            assert ((u >= 0) & (u <= 1)).all(), (pr.fidelity, cls)
        _, busy = pr.ledger.busy_bins()
        for cls, arr in busy.items():  # unclipped: timeline() clips to [0, 1]
            assert (arr >= -1e-6).all()
            assert (arr <= pr.ledger.bin_ns * pr.capacity[cls] * (1 + 1e-9)).all(), cls
        integral = float((tl["util:crossbar"] * tl["bin_ns"]).sum()) * pr.capacity["crossbar"]
        assert integral == pytest.approx(float(busy["crossbar"].sum()), rel=1e-9)
        # closed form, the same in every fidelity: each plane keeps every crossbar of its
        # row block reading for read_ns, and its held ADCs converting for the lane's conv time
        hw = r.hardware
        xbar_ns = adc_ns = 0.0
        for name, lm in r.mapping.layers.items():
            pl = r.precision[pipe].layers[name].planes.astype(np.int64)
            pl = np.concatenate([pl] * -(-pr.images // pl.shape[0]))[: pr.images]
            for rb_i, rb in enumerate(lm.row_blocks):
                b_total = int(pl[:, rb_i, :].sum())
                xbar_ns += b_total * len(rb.crossbar_cols) * hw.crossbar.read_ns
                # one ADC per crossbar on this hardware, each converting its own columns
                adc_ns += b_total * max(rb.crossbar_cols) / hw.ima.adc_rate_gsps * len(
                    rb.crossbar_cols)
        assert float(busy["crossbar"].sum()) == pytest.approx(xbar_ns, rel=1e-9)
        assert hw.ima.adcs >= hw.ima.crossbars
        if all(len(set(rb.crossbar_cols)) == 1 for lm in r.mapping.layers.values()
               for rb in lm.row_blocks):
            assert float(busy["adc"].sum()) == pytest.approx(adc_ns, rel=1e-9)


def test_accuracy(rr: RunResult) -> None:
    assert rr.float_accuracy is not None and rr.float_accuracy >= 97.0
    assert rr.precision["static"].accuracy == pytest.approx(rr.float_accuracy, abs=0.5)


def test_bus_and_noc_busy_time(rr: RunResult) -> None:
    """timeline's eDRAM-to-IMA bus and NoC busy time equal the closed form / the totals of
    the ports and links."""
    hw = rr.hardware
    bus_bytes_per_ns = hw.tile.bus_wires / 8 * hw.clock_ghz  # 384 wires: 48 B/clk = 57.6 B/ns
    for pipe, pr in rr.pipelines.items():
        _, busy = pr.ledger.busy_bins()
        # every group crosses the bus once: rows x 1 byte / 57.6 B/ns; and its partial
        # sums come back: one per output channel of the row block, 8 + 8 + 7 = 23 bits
        expect = 0.0
        psum = (hw.activations.bits + hw.weights.bits + 7) / 8  # log2(128 rows) = 7
        for lm in rr.mapping.layers.values():
            groups = lm.positions * pr.images  # per row block, over all replicas
            expect += sum(groups * rb.n_rows / bus_bytes_per_ns for rb in lm.row_blocks)
            expect += sum(groups * (rb.out_channels[1] - rb.out_channels[0]) * psum
                          / bus_bytes_per_ns for rb in lm.row_blocks)
        assert float(busy["bus"].sum()) == pytest.approx(expect, rel=1e-9), pipe
        assert float(busy["noc"].sum()) == pytest.approx(
            sum(pr.timing.link_busy_ns.values()), rel=1e-9), pipe


def test_one_time_axis_for_all_pipelines(rr: RunResult, tmp_path) -> None:
    """timeline.csv: every pipeline has the same bins (start times and widths), the width
    a whole multiple of every pipeline's ledger bin, and the integral of each pipeline's
    crossbar busy time is kept by the re-binning."""
    import csv

    from simulator.results.write import time_axis, write_timeline_csv

    bins = rr.scenario.simulation.time_bins
    width, n = time_axis(rr.pipelines.values(), bins)
    assert n <= bins + 1
    for pr in rr.pipelines.values():
        assert width / pr.ledger.bin_ns == pytest.approx(round(width / pr.ledger.bin_ns))
    path = tmp_path / "timeline.csv"
    write_timeline_csv(rr, path, bins)
    rows = list(csv.DictReader(path.open()))
    axes = {}
    for r in rows:
        axes.setdefault(r["pipeline"], []).append((float(r["t_ns"]), float(r["bin_ns"])))
    assert set(axes) == set(rr.pipelines)
    first = next(iter(axes.values()))
    assert all(a == first for a in axes.values())
    assert len(first) == n and first[1][0] - first[0][0] == pytest.approx(width)
    for name, pr in rr.pipelines.items():
        util = sum(float(r["util:crossbar"]) * float(r["bin_ns"]) for r in rows
                   if r["pipeline"] == name) * pr.capacity["crossbar"]
        _, busy = pr.ledger.busy_bins()
        assert util == pytest.approx(float(busy["crossbar"].sum()), rel=1e-5)


@pytest.fixture(scope="module")
def shared_adcs() -> dict[str, RunResult]:
    """The digits CNN on isaac8 with 4 ADCs for the 8 crossbars of an IMA (2 crossbars
    per ADC), 1 image, at group and plane fidelity (8 accuracy images: a short pass)."""
    from simulator.hardware.spec import load_hardware

    hw = load_hardware(ROOT / "configs" / "hardware" / "isaac8.yaml").with_changes(
        {"ima.adcs": 4, "components.ima.adc.count": 4}, source="isaac8, 4 ADCs per IMA")
    out = {}
    for fid in ("group", "plane"):
        sc = _scenario(fid, accuracy_images=8)
        sc.simulation.images = 1
        out[fid] = run(sc, hardware=hw)
    return out


def test_shared_adcs_group_agrees_with_plane(shared_adcs: dict[str, RunResult]) -> None:
    # Issue 18's criterion for the fidelities with shared ADCs: group within 5 % of plane
    # (plane: FIFO jobs on per-IMA ADC containers; group: the fluid pools served in the
    # order samples are ready, docs/model.md "ADC pools") for every pipeline, the same
    # sign of each dynamic pipeline's latency difference to static, identical counts and
    # dynamic energy.
    g, p = shared_adcs["group"], shared_adcs["plane"]
    assert g.hardware.ima.adcs * 2 == g.hardware.ima.crossbars
    for pipe in PIPES:
        a, b = g.pipelines[pipe], p.pipelines[pipe]
        assert a.counts() == b.counts(), pipe
        assert a.ledger.dynamic_energy() == pytest.approx(b.ledger.dynamic_energy(),
                                                          rel=1e-12), pipe
        assert a.latency_ns == pytest.approx(b.latency_ns, rel=0.05), pipe
    for pipe in ("redy", "msb-trim"):
        dg = g.pipelines[pipe].latency_ns - g.pipelines["static"].latency_ns
        dp = p.pipelines[pipe].latency_ns - p.pipelines["static"].latency_ns
        assert dg * dp > 0, (pipe, dg, dp)
