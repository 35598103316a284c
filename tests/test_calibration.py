"""Calibration through the event engine: full activity reproduces ISAAC Table I.

DESIGN.md §3: "a synthetic workload that keeps every unit busy every cycle must reproduce
Table I's power figures". simulator/hardware/report.py checks this in closed form; here the
same rule is checked on the energy the *event engine* books (simulate_pipeline, group
fidelity), so a booking error in simulator/model/workplan.py or simulator/engine/chip.py shows up.

The workload, derived by hand from docs/hardware.md and docs/model.md:

* hardware: configs/hardware/isaac.yaml (16-bit weights on 2-bit cells = 8 columns per
  weight, 16-bit inputs = 16 bit planes, 12 IMAs x 8 crossbars x 8 ADCs per tile);
* one 1x1 conv 128 -> 16 channels on a 96 H x 1 map, pinned to 96 replicas: each
  replica is one lane of one crossbar (128 rows, 16 weights x 8 columns = 128 columns),
  the 96 crossbars fill exactly one tile (12 IMAs x 8), and replica r handles the
  positions p = r (mod 96) (the tile's replicas share its band round robin): H groups per
  lane;
* every group streams all 16 planes; the input path is made fast enough that the lanes
  never wait for data once they started (:func:`fast_input`: a 1-flit packet per 256-byte
  input row, 6.4 TB/s links); rows reach tile 0's eDRAM 3.333 ns apart (two banks of
  6.667 ns writes), so lane r starts up to 96 x 3.333 = 320 ns after lane 0, which starts
  at D0 (the first row in the eDRAM). Full activity is defined with local inputs (docs/
  hardware.md): the input's delivery (its eDRAM writes, router flit-hops and link bytes)
  is subtracted by its hand count where a component is checked;
* the hand-timed tests run with ``load_timing=False`` (groups load from eDRAM in no time,
  so the timeline is exactly the one below); the default engine (load timing on) is
  checked by the tests parametrized on ``load_timing`` and by
  :func:`test_load_timing_is_hidden_in_steady_state`.

Per lane, r = 100 ns, c = 128 columns / (1 ADC x 1.28 GS/s) = 100 ns, so a group is
T(16) = r + c + 15 max(r, c) = 1700 ns and back-to-back groups overlap by one slot: group
j runs over [1600 j, 1600 j + 1700] after the lane's start and the last ends 1600 H + 100
after it (D0 + 1600 H + 100 for lane 0); the output path of the last 96 positions follows
(TAIL).  In steady state
every crossbar reads one plane per 100 ns and every ADC converts 128 columns per 100 ns:
exactly the full-activity definition of docs/hardware.md.

Per IMA in steady state (8 crossbars, 128 rows, 128 columns, one plane per 100 ns):

  component        events per 100 ns   pJ/event        mW
  crossbar         8                   30              2.4
  DAC              8 x 128 = 1024      0.390625        4.0
  S+H              1024                0.0009765625    0.01
  ADC              1024                1.5625          16.0
  IMA S+A          1024                0.01953125      0.2
  input register   1024 bits           0.12109375      1.24
  IMA output reg.  1024                0.0224609375    0.23
                                                 sum   24.08  (x 12 = 288.96 ~ 289 mW)

The unit column: with ``weights.unit_column: true`` (as in isaac.yaml) a crossbar holds
only floor(127 / 8) = 15 weights = 121 columns, so no layer can make an ADC convert 128
columns per plane; Table I's convention (and hwreport's peak) does not subtract the unit
column. The full-activity workload therefore uses isaac.yaml with ``unit_column: false``
(16 weights = 128 columns); :func:`test_unit_column_caps_column_activity` checks what the
stock file gives (121/128 of the column-driven components).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

from mapping.mapper import MappingOptions, map_network
from simulator.hardware.spec import HardwareSpec, load_hardware
from simulator.model.ledger import EVENT_COMPONENT, EVENTS
from simulator.runner.simulate import PipelineResult, simulate_pipeline

ISAAC = Path(__file__).resolve().parents[1] / "configs" / "hardware" / "isaac.yaml"

LANES = 96            # crossbars of one tile: 12 IMAs x 8
W = 96                # map rows per group of each lane: one position per lane per 96 rows
PERIOD = 1600.0       # 16 planes x max(r, c) = 16 x 100 ns per group in steady state
FILL = 100.0          # the last group's conversion tail: T(16) - 1600 = 100 ns
# Lane 0 finishes its last group first, the others 3.333 ns apart; each position's 16
# partial sums cross the bus (16 x 39 bits = 78 B, 1.35 ns) and its 16 outputs pass the tile
# output register one value per cycle (ISAAC: 1.2 values/ns, 13.333 ns per position,
# entered a cycle after the bus): the positions queue for it, 96 x 16 / 1.2 = 1280 ns from
# lane 0's last conversion + a cycle, the last write ending a cycle after the register:
# the run ends 1281.67 ns after lane 0's last conversion. (In steady state the register
# works 1280 of every 1600 ns, so no backlog builds up and the lanes never wait for it.)
TAIL = LANES * 16 / 1.2 + 2 / 1.2
# The first input row (128 x 2 B = 256 B) in tile 0's eDRAM: 256 B / 6400 B/ns on the
# link, one 2048-bit flit through the port and tile 0's ejection port one hop apart
# (0.8333 + 3.3333), the write 256 / 38.4 = 6.6667: D0 = 10.8733 ns
D0 = 256 / 6400 + 1 / 1.2 + 4 / 1.2 + 256 / 38.4

# ISAAC Table I, one IMA, mW
TABLE_IMA_MW = {"crossbar": 2.4, "dac": 4.0, "sample_hold": 0.01, "adc": 16.0,
                "ima_shift_add": 0.2, "input_register": 1.24, "ima_output_register": 0.23}
IMA_TOTAL_MW = 24.08  # sum of the row above; x 12 IMAs = 288.96 (Table I: 289)


def fast_input(changes: dict[str, Any]) -> HardwareSpec:
    """isaac.yaml with *changes* and an input path that never holds the lanes back: 2048-bit
    flits (one per 256-byte input row) and 4 x 6.4 TB/s off-chip links (the calibration
    measures the IMAs and the tile, not the input)."""
    return load_hardware(ISAAC).with_changes(
        {**changes, "noc.flit_bits": 2048, "offchip.bandwidth_gbps": 25600.0})


@cache
def isaac_no_unit_column() -> HardwareSpec:
    return fast_input({"weights.unit_column": False})


@cache
def isaac() -> HardwareSpec:
    return fast_input({})


def _node(kind: str, order: int, in_shape: tuple, out_shape: tuple, **kw: Any) -> dict:
    d = {"kind": kind, "order": order, "module": None, "in_shape": in_shape,
         "out_shape": out_shape, "act": None, "macs": 0, "weights": 0, "signed_input": False}
    d.update(kw)
    return d


def _graph(h: int, cout: int) -> nx.DiGraph:
    """x (128 x 96 h x 1) -> c (1x1 conv 128 -> cout) -> out."""
    conv = _node("conv", 1, (128, h * W, 1), (cout, h * W, 1), in_channels=128,
                 out_channels=cout, kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), groups=1, macs=128 * cout * h * W, weights=128 * cout,
                 module="m")
    nodes = {"x": _node("input", 0, (128, h * W, 1), (128, h * W, 1)), "c": conv,
             "out": _node("output", 2, (cout, h * W, 1), (cout, h * W, 1))}
    g = nx.DiGraph(name="calibration", input_shape=(128, h * W, 1))
    for n, d in nodes.items():
        g.add_node(n, **d)
    for u, v in (("x", "c"), ("c", "out")):
        shape = tuple(nodes[u]["out_shape"])
        numel = math.prod(shape)
        g.add_edge(u, v, shape=shape, numel=numel, bytes=numel)
    return g


def _run(h: int, hw: HardwareSpec, cout: int = 16, fidelity: str = "group",
         load_timing: bool = False) -> PipelineResult:
    m = map_network(_graph(h, cout), hw, MappingOptions(replicate=False, replicas={"c": LANES}))
    lm = m.layers["c"]
    planes = {"c": np.full((1, len(lm.row_blocks), lm.positions), 16, dtype=np.uint8)}
    return simulate_pipeline(m.graph, m, hw, planes, "static", "cal", fidelity, 1,
                             load_timing=load_timing)


@cache
def full_run(h: int, load_timing: bool = False) -> PipelineResult:
    return _run(h, isaac_no_unit_column(), load_timing=load_timing)


def _energy_per_ima(res: PipelineResult) -> dict[int, dict[str, float]]:
    """Dynamic energy (pJ) per IMA per component, from the ledger's per-kind counts."""
    counts = res.ledger.counts_by_kind()
    energy = res.ledger.energy
    out: dict[int, dict[str, float]] = {}
    for lane in res.plans["c"].lanes:
        (part,) = lane.parts
        per = out.setdefault(part.ima, dict.fromkeys(TABLE_IMA_MW, 0.0))
        for ei, e in enumerate(EVENTS):
            comp = EVENT_COMPONENT[e]
            if comp in per:
                per[comp] += float(counts[res.ids.mvm[lane.key], ei] * energy[ei])
    return out


def test_mapping_fills_one_tile() -> None:
    """96 replicas x 1 crossbar = the 12 IMAs x 8 crossbars of tile 0, 128 columns each."""
    hw = isaac_no_unit_column()
    assert hw.weight_slices == 8 and hw.weights_per_crossbar == 16
    m = map_network(_graph(4, 16), hw, MappingOptions(replicate=False, replicas={"c": LANES}))
    lm = m.layers["c"]
    assert lm.replicas == LANES and lm.crossbars == 1
    assert [rb.crossbar_cols for rb in lm.row_blocks] == [[128]]
    assert [tuple(rb.rows) for rb in lm.row_blocks] == [(0, 128)]
    slots = [s for rep in lm.placement for s in rep]
    assert {s.tile for s in slots} == {0}
    per_ima: dict[int, int] = {}
    for s in slots:
        per_ima[s.ima] = per_ima.get(s.ima, 0) + 1
    assert len(per_ima) == 12 and set(per_ima.values()) == {8}
    # every lane: one crossbar, 128 columns, one ADC of its IMA: c = 128 / 1.28 = 100 ns
    res = full_run(50)
    lanes = res.plans["c"].lanes
    assert len(lanes) == LANES
    for lane in lanes:
        assert lane.crossbars == 1 and lane.cols == 128 and lane.rows == 128
        assert [p.adcs for p in lane.parts] == [1]
        assert lane.conv_ns == pytest.approx(100.0)


def test_timing_is_back_to_back() -> None:
    """H groups of T(16) overlapping by one slot: each lane busy 1600 H + 100 from its start,
    no gaps; the run ends at D0 + 1600 H + 100 + TAIL."""
    for h in (50, 200):
        res = full_run(h)
        assert res.timing.end_ns == pytest.approx(D0 + PERIOD * h + FILL + TAIL)
        # lane occupancy = its timeline's extent: 1600 H + 100 for every lane
        busy = res.timing.lane_busy_ns
        assert len(busy) == LANES
        assert all(v == pytest.approx(PERIOD * h + FILL) for v in busy.values())
        groups, planes = res.group_and_plane_counts()
        assert groups == LANES * h and planes == LANES * h * 16


@pytest.mark.parametrize("load_timing", [False, True])
def test_ima_power_whole_run(load_timing: bool) -> None:
    """Energy / simulated time per IMA, 200 groups per lane.

    Without load timing the edge effects are the first input row, the lanes' staggered
    starts and the 100 ns tail: under 0.2 % of 320 us; with it (the default engine) the
    first groups also wait for their loads, less than 96 x 11.11 ns = 1067 ns in all
    (0.3 %).
    """
    res = full_run(200, load_timing)
    t = res.timing.end_ns
    assert t < 1.01 * (D0 + 200 * PERIOD + FILL + TAIL)
    per_ima = _energy_per_ima(res)
    assert sorted(per_ima) == list(range(12))
    for ima, comps in per_ima.items():
        for comp, table in TABLE_IMA_MW.items():
            assert comps[comp] / t == pytest.approx(table, rel=0.02), (ima, comp)
        assert sum(comps.values()) / t == pytest.approx(IMA_TOTAL_MW, rel=0.02), ima
    # the ledger's component totals agree with the per-IMA sum (12 identical IMAs)
    tot = res.ledger.energy_by_component()
    for comp, table in TABLE_IMA_MW.items():
        assert tot[comp] / t / 12 == pytest.approx(table, rel=0.02), comp
    assert sum(tot[c] for c in TABLE_IMA_MW) / t == pytest.approx(12 * IMA_TOTAL_MW, rel=0.02)
    assert 12 * IMA_TOTAL_MW == pytest.approx(289.0, rel=0.002)  # Table I: IMA 289 mW


def test_ima_power_steady_state_by_difference() -> None:
    """Two runs differ only by 150 steady-state groups per lane: (E2 - E1) / (T2 - T1).

    Fill and drain cancel, so the ratio is exactly the full-activity power: per IMA,
    8 crossbars x 16 planes x events / 1600 ns (e.g. ADC 8 x 16 x 128 x 1.5625 / 1600
    = 16 mW).
    """
    a, b = full_run(50), full_run(200)
    dt = b.timing.end_ns - a.timing.end_ns
    assert dt == pytest.approx(150 * PERIOD)
    ea, eb = _energy_per_ima(a), _energy_per_ima(b)
    for ima in range(12):
        for comp, table in TABLE_IMA_MW.items():
            p = (eb[ima][comp] - ea[ima][comp]) / dt
            assert p == pytest.approx(table, rel=1e-6), (ima, comp)
        assert sum(eb[ima].values()) - sum(ea[ima].values()) == pytest.approx(
            IMA_TOTAL_MW * dt, rel=1e-6)


@pytest.mark.parametrize("load_timing", [False, True])
def test_ima_power_middle_of_run_from_time_bins(load_timing: bool) -> None:
    """Ledger time bins over the middle half of the run (fill and drain excluded).

    Group fidelity books a group's energy in the bin where it starts (starts every
    1600 ns), so a window of length L holds floor or ceil(L / 1600) starts per lane:
    with L ~ 160 us that is within 1 % of L / 1600.
    """
    res = full_run(200, load_timing)
    t, bins = res.ledger.energy_bins()
    dt = res.ledger.bin_ns
    end = res.timing.end_ns
    sel = (t >= end / 4) & (t + dt <= 3 * end / 4)
    window = sel.sum() * dt
    assert window > 0.45 * end and PERIOD / window < 0.011
    total = 0.0
    for comp, table in TABLE_IMA_MW.items():
        p = bins[comp][sel].sum() / window / 12
        total += p
        assert p == pytest.approx(table, rel=0.02), comp
    assert total == pytest.approx(IMA_TOTAL_MW, rel=0.02)
    # every crossbar and every ADC is busy: busy instance-time / (96 x window) ~ 1
    tb, busy = res.ledger.busy_bins()
    assert np.array_equal(tb, t)
    assert res.capacity["crossbar"] == LANES and res.capacity["adc"] == LANES
    for cls in ("crossbar", "adc"):
        util = busy[cls][sel].sum() / (res.capacity[cls] * window)
        assert util == pytest.approx(1.0, rel=0.02), cls


def test_tile_bus_and_edram_at_full_activity() -> None:
    """The same run drives the eDRAM-to-IMA bus and the eDRAM at their full-activity rates.

    Per group each lane loads 128 inputs x 2 B = 256 B (bus and eDRAM read), sends its 16
    partial sums of 16 + 16 + 7 = 39 bits = 78 B back over the bus and writes 16 outputs x
    2 B = 32 B: per tile 96 x (256 + 78) B / 1600 ns = 20.04 B/ns on the bus
    (x 0.3493013972 pJ = 7 mW) and 96 x 288 B / 1600 ns = 17.28 B/ns in the eDRAM
    (x 1.1979166667 pJ = 20.7 mW): Table I's bus and eDRAM rows. The input's rows are also
    written into the eDRAM as they arrive (96 x 256 B per 1600 ns = 15.36 B/ns more, not
    part of full activity, whose inputs are local), and cross router 0 (one 2048-bit flit
    per row, 4.375 pJ).
    The tile output register writes 96 x 16 / 1600 = 0.96 values/ns, below its full
    activity of 1.2 per ns (one per clock), so it draws 0.96 x 1.4 = 1.344 mW, not 1.68.
    """
    a, b = full_run(50), full_run(200)
    dt = b.timing.end_ns - a.timing.end_ns
    ea, eb = a.ledger.energy_by_component(), b.ledger.energy_by_component()
    assert (eb["bus"] - ea["bus"]) / dt == pytest.approx(7.0, rel=1e-6)
    received = 15.36 * 1.1979166667  # mW: the input's eDRAM writes
    assert (eb["edram"] - ea["edram"]) / dt == pytest.approx(20.7 + received, rel=1e-6)
    assert (eb["tile_output_register"] - ea["tile_output_register"]) / dt == pytest.approx(
        1.344, rel=1e-6)
    assert eb["router"] == pytest.approx(200 * W * 4.375)  # the input's flits, router 0


@pytest.mark.parametrize("load_timing", [False, True])
def test_peak_throughput_41_tops(load_timing: bool) -> None:
    """MACs booked / simulated time, one tile scaled to 168 tiles.

    Per group a lane does 128 rows x 16 weights = 2048 MACs = 4096 ops; one tile:
    96 x 4096 / 1600 ns = 245.76 ops/ns; x 168 tiles = 41287.68 GOPS = 41.29 TOPS
    (Table IV: 41), less the edge effects (the 100 ns tail, the output path of the last
    positions and, with load timing, the first loads).
    """
    res = full_run(200, load_timing)
    groups, _ = res.group_and_plane_counts()
    assert groups == 200 * LANES
    ops = 2 * groups * 128 * 16
    tops = ops / res.timing.end_ns * 168 / 1000.0
    assert tops == pytest.approx(41.0, rel=0.03)
    if not load_timing:
        assert tops == pytest.approx(
            41.28768 * (200 * PERIOD) / (D0 + 200 * PERIOD + FILL + TAIL), rel=1e-9)


# eDRAM bank: 256 bits x 1.2 GHz = 38.4 B/ns; bus: 384 wires x 1.2 GHz = 57.6 B/ns
LOAD_NS = 256 / 38.4 + 256 / 57.6   # one 128 x 16-bit group: 6.667 + 4.444 = 11.111 ns


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_load_timing_is_hidden_in_steady_state(fidelity: str) -> None:
    """The default engine times every group's load; it must not break full activity.

    A group is 128 inputs x 2 B = 256 B: a bank read of LOAD_NS part 1 (6.667 ns) and a
    bus transfer of 4.444 ns. The input register keeps two groups per lane in flight
    (edram_port: at least 2 slots, even though 2 KB holds only 2048 // (8 x 128 x 2) = 1
    16-bit group), so the next group loads while the current one streams. The tile's bus
    carries 96 x 256 B per 1600 ns = 15.36 B/ns, 27 % of its 57.6 B/ns, and each bank
    48 x 256 B / 1600 ns = 7.68 of 38.4 B/ns: the loads only delay the first groups, so
    the steady-state period stays 1600 ns and every IMA component draws its Table I
    power exactly. (With a single slot the period would be 1600 + 11.111 ns: 99.31 %.)
    """
    h1, h2 = (4, 12) if fidelity == "plane" else (50, 200)
    hw = isaac_no_unit_column()
    a = _run(h1, hw, fidelity=fidelity, load_timing=True)
    b = _run(h2, hw, fidelity=fidelity, load_timing=True)
    assert a.timing.end_ns > D0 + h1 * PERIOD + FILL + TAIL  # the first loads are not free
    assert a.timing.end_ns < D0 + h1 * PERIOD + FILL + TAIL + LANES * LOAD_NS
    dt = b.timing.end_ns - a.timing.end_ns
    assert dt == pytest.approx((h2 - h1) * PERIOD, rel=1e-9)
    ea, eb = _energy_per_ima(a), _energy_per_ima(b)
    for ima in range(12):
        for comp, table in TABLE_IMA_MW.items():
            p = (eb[ima][comp] - ea[ima][comp]) / dt
            assert p == pytest.approx(table, rel=1e-6), (ima, comp)
        total = (sum(eb[ima].values()) - sum(ea[ima].values())) / dt
        assert total == pytest.approx(IMA_TOTAL_MW, rel=1e-6)


def test_unit_column_caps_column_activity() -> None:
    """Stock isaac.yaml (unit column): 15 weights + 1 unit column = 121 columns.

    A 128 -> 15 layer per crossbar: c = 121 / 1.28 = 94.53 ns < r, so the period is still
    16 x 100 ns; the row-driven components (crossbar, DAC, input register) are at Table I
    power but the column-driven ones (S+H, ADC, IMA S+A and output register) convert 121
    of 128 columns: ADC 16 x 121/128 = 15.125 mW; IMA total
    2.4 + 4 + 1.24 + (0.01 + 16 + 0.2 + 0.23) x 121/128 = 7.64 + 15.5409375
    = 23.1809375 mW.
    """
    hw = isaac()
    assert hw.weights_per_crossbar == 15
    a, b = _run(20, hw, cout=15), _run(60, hw, cout=15)
    assert all(lane.cols == 121 for lane in b.plans["c"].lanes)
    dt = b.timing.end_ns - a.timing.end_ns
    assert dt == pytest.approx(40 * PERIOD)
    ea, eb = _energy_per_ima(a), _energy_per_ima(b)
    scale = {"crossbar": 1.0, "dac": 1.0, "input_register": 1.0, "sample_hold": 121 / 128,
             "adc": 121 / 128, "ima_shift_add": 121 / 128, "ima_output_register": 121 / 128}
    for ima in range(12):
        for comp, table in TABLE_IMA_MW.items():
            p = (eb[ima][comp] - ea[ima][comp]) / dt
            assert p == pytest.approx(table * scale[comp], rel=1e-6), (ima, comp)
        total = (sum(eb[ima].values()) - sum(ea[ima].values())) / dt
        assert total == pytest.approx(23.1809375, rel=1e-6)


def test_plane_fidelity_same_steady_state_power() -> None:
    """Plane fidelity (reader and converter per lane) gives the same back-to-back timing
    (end D0 + 1600 H + 100 + TAIL) and the same per-IMA power."""
    a = _run(4, isaac_no_unit_column(), fidelity="plane")
    b = _run(12, isaac_no_unit_column(), fidelity="plane")
    assert a.timing.end_ns == pytest.approx(D0 + 4 * PERIOD + FILL + TAIL)
    assert b.timing.end_ns == pytest.approx(D0 + 12 * PERIOD + FILL + TAIL)
    dt = b.timing.end_ns - a.timing.end_ns
    ea, eb = _energy_per_ima(a), _energy_per_ima(b)
    for ima in range(12):
        for comp, table in TABLE_IMA_MW.items():
            assert (eb[ima][comp] - ea[ima][comp]) / dt == pytest.approx(table, rel=1e-6)
