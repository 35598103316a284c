"""Timing of the event engine (simulator/engine.py) on tiny hand-built cases.

Every expected number is derived by hand in the comments from docs/model.md:

* one lane MVM with b bit planes: T(b) = r + c + (b - 1) * max(r, c), T(0) = 0,
  r = crossbar.read_ns = 100 ns, c = active columns / (ADCs held * 1.28 GS/s);
* a weight layer with 8-bit weights on 2-bit cells uses 4 columns per output plus
  one unit column per crossbar, at most (128 - 1) // 4 = 31 outputs per crossbar;
* NoC: one packet per (row, source tile), ceil(bytes * 8 / 32) flits, each link takes
  (flits + 3 router cycles) / 1.2 GHz, store-and-forward link by link.

Graphs are built by hand with the node attributes of docs/interfaces.md (the style of
tests/test_place.py); the hardware is isaac8 shrunk with ``with_changes``.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

from mapping.mapper import MappingOptions, NetworkMapping, map_network
from simulator.engine import ChipSimulation
from simulator.errors import SimulationError
from simulator.hardware import HardwareSpec, load_hardware
from simulator.ledger import EnergyLedger
from simulator.simulate import BUSY_CLASSES, PipelineResult, simulate_pipeline
from simulator.workplan import build_plan

ISAAC8 = Path(__file__).resolve().parents[1] / "configs" / "hardware" / "isaac8.yaml"

R = 100.0        # crossbar.read_ns
RATE = 1.28      # ima.adc_rate_gsps (conversions per ns per ADC)
NOC_GHZ = 1.2    # noc.clock_ghz
ROUTER = 3       # noc.router_latency_cycles


@cache
def isaac8() -> HardwareSpec:
    return load_hardware(ISAAC8)


def tiny_hw(crossbars: int = 1, adcs: int = 1, imas: int = 1, tiles: int = 4,
            tiles_per_router: int = 1, mesh_cols: int = 2,
            edram_bytes: int = 65536) -> HardwareSpec:
    """isaac8 with `crossbars` crossbars and `adcs` ADCs per IMA, `imas` IMAs per tile.

    The component counts that must follow ima.crossbars / ima.adcs (consistency checks
    of simulator/hardware.py) change with them: DACs = S+Hs = crossbars * 128.
    """
    return isaac8().with_changes({
        "ima.crossbars": crossbars, "ima.adcs": adcs,
        "components.ima.crossbar.count": crossbars, "components.ima.adc.count": adcs,
        "components.ima.dac.count": crossbars * 128,
        "components.ima.sample_hold.count": crossbars * 128,
        "tile.imas": imas, "tile.edram_bytes": edram_bytes,
        "chip.tiles": tiles, "chip.tiles_per_router": tiles_per_router,
        "chip.mesh_cols": mesh_cols,
    })


def _node(kind: str, order: int, in_shape: tuple, out_shape: tuple, **kw: Any) -> dict:
    d = {"kind": kind, "order": order, "module": None, "in_shape": in_shape,
         "out_shape": out_shape, "act": None, "macs": 0, "weights": 0, "signed_input": False}
    d.update(kw)
    return d


def _lin(order: int, fin: int, fout: int) -> dict:
    return _node("linear", order, (fin,), (fout,), in_channels=fin, out_channels=fout,
                 kernel=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                 macs=fin * fout, weights=fin * fout, module="m")


def _conv3(order: int, cin: int, cout: int, hw_: int) -> dict:
    """3x3 conv, stride 1, padding 1, on a hw_ x hw_ map (same output size)."""
    return _node("conv", order, (cin, hw_, hw_), (cout, hw_, hw_), in_channels=cin,
                 out_channels=cout, kernel=(3, 3), stride=(1, 1), padding=(1, 1),
                 dilation=(1, 1), groups=1, macs=9 * cin * cout * hw_ * hw_,
                 weights=9 * cin * cout, module="m")


def _graph(nodes: dict[str, dict], edges: list[tuple[str, str]]) -> nx.DiGraph:
    g = nx.DiGraph(name="tiny", input_shape=next(iter(nodes.values()))["out_shape"])
    for n, d in nodes.items():
        g.add_node(n, **d)
    for u, v in edges:
        shape = tuple(nodes[u]["out_shape"])
        numel = math.prod(shape)
        g.add_edge(u, v, shape=shape, numel=numel, bytes=numel)
    return g


def _planes(m: NetworkMapping, b: int, images: int = 1) -> dict[str, np.ndarray]:
    return {n: np.full((images, len(lm.row_blocks), lm.positions), b, dtype=np.uint8)
            for n, lm in m.layers.items()}


# Cases 1-5 isolate the MVM, buffer and NoC timing with free group loads
# (load_timing=False); the eDRAM/bus load itself is checked in the test_load_* cases.
def _sim(g: nx.DiGraph, hw: HardwareSpec, planes: dict | int, fidelity: str,
         images: int = 1, policy: str = "static",
         replicas: dict[str, int] | None = None, load_timing: bool = False) -> PipelineResult:
    m = map_network(g.copy(), hw, MappingOptions(replicate=False, replicas=replicas or {}))
    if isinstance(planes, int):
        planes = _planes(m, planes, images)
    return simulate_pipeline(m.graph, m, hw, planes, policy, "p", fidelity, images,
                             load_timing=load_timing)


def _engine(g: nx.DiGraph, hw: HardwareSpec, b: int, fidelity: str = "group",
            ) -> tuple[ChipSimulation, NetworkMapping]:
    """A ChipSimulation built like simulate_pipeline (static policy), not yet run."""
    m = map_network(g.copy(), hw, MappingOptions(replicate=False))
    ledger = EnergyLedger(hw.energy.per_event(), 100.0, BUSY_CLASSES)
    plans = build_plan(m.graph, m, hw, ledger, False)
    return ChipSimulation(plans, _planes(m, b), hw, ledger, 1, fidelity,
                          load_timing=False), m


def _row_times(sim: ChipSimulation, node: str, width: int) -> list[float]:
    """Attach a listener recording when each output row of *node* (image 0) completes."""
    times: list[float] = []

    def on(old: int, new: int) -> None:
        while len(times) < new // width:
            times.append(sim.env.now)

    sim.progress[node][0].listeners.append(on)
    return times


def T(b: int, c: float) -> float:
    """Lane MVM time of docs/model.md."""
    return 0.0 if b == 0 else R + c + (b - 1) * max(R, c)


# ----------------------------------------------------------------------------- case 1
def _one_linear() -> nx.DiGraph:
    """x (128,) -> fc (linear 128 -> 16) -> out.

    fc: 128 rows = 1 row block; 16 outputs * 4 columns + 1 unit column = 65 columns in one
    crossbar.  With one ADC: c = 65 / 1.28 = 50.78125 ns.
    """
    return _graph({"x": _node("input", 0, (128,), (128,)), "fc": _lin(1, 128, 16),
                   "out": _node("output", 2, (16,), (16,))}, [("x", "fc"), ("fc", "out")])


@pytest.mark.parametrize("b", [1, 2, 5, 8])
@pytest.mark.parametrize("fidelity", ["group", "plane", "analytic"])
def test_single_mvm_latency(b: int, fidelity: str) -> None:
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, b, fidelity)
    c = 65 / 1.28                       # 50.78125 ns < r
    expect = 100 + 50.78125 + (b - 1) * 100   # r + c + (b-1)*max(r, c)
    assert c == 50.78125
    assert res.latency_ns == pytest.approx(expect, abs=1e-9)
    assert res.latency_ns == pytest.approx(T(b, c), abs=1e-9)
    # counts: b planes of one crossbar: b reads, 128*b DAC drives, 65*b conversions
    assert res.counts() == {"groups": 1, "bit_planes": b, "crossbar_reads": b,
                            "adc_conversions": 65 * b, "dac_drives": 128 * b}


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_single_mvm_dynamic_policy_adds_select_latency(fidelity: str) -> None:
    # precision_select.latency_ns = 30 ns is added once per non-skipped group:
    # 8 planes -> 30 + 100 + 50.78125 + 7*100 = 880.78125
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 8, fidelity, policy="redy")
    assert res.latency_ns == pytest.approx(30 + 100 + 50.78125 + 700, abs=1e-9)


@pytest.mark.parametrize("policy", ["static", "redy"])
@pytest.mark.parametrize("fidelity", ["group", "plane", "analytic"])
def test_single_mvm_zero_planes_costs_no_time(fidelity: str, policy: str) -> None:
    # T(0) = 0: no plane streamed; a dynamic policy still spends its 30 ns selection
    # deciding to skip the group (static: 0 ns)
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 0, fidelity, policy=policy)
    assert res.latency_ns == (30.0 if policy == "redy" else 0.0)
    # the skipped group is still counted (eDRAM read of 128 bytes), with no plane
    assert res.counts()["groups"] == 1 and res.counts()["bit_planes"] == 0
    assert res.ledger.event_counts()["edram_byte"] == pytest.approx(128 + 16)  # in + out


def test_load_single_group() -> None:
    # The linear layer's group: 128 inputs x 1 byte.  eDRAM bank: 256 bits = 32 B per
    # 1.2 GHz cycle = 38.4 B/ns -> 3.3333 ns; bus: 384 wires = 48 B/cycle = 57.6 B/ns ->
    # 2.2222 ns; the first read starts after both: latency = 5.5556 + T(8) = 856.3368 ns
    load = 128 / 38.4 + 128 / 57.6
    hw = tiny_hw(crossbars=1, adcs=1)
    for fid in ("group", "plane"):
        res = _sim(_one_linear(), hw, 8, fid, load_timing=True)
        assert res.latency_ns == pytest.approx(load + 850.78125), fid


def test_load_is_prefetched_into_the_second_register_slot() -> None:
    # 8-bit inputs: the 2 KB input register holds
    # ima.input_register_bytes // (crossbars x 128 rows x 1 B) = 2048 // 128 = 16 slots
    # on this 1-crossbar IMA, so every later group is loaded while the previous streams.
    # 3 images back to back: only the first load is exposed:
    #   done_i = load + 800 (i + 1) + c,  c = 65 / 1.28 = 50.78125
    load = 128 / 38.4 + 128 / 57.6
    hw = tiny_hw(crossbars=1, adcs=1)
    for fid in ("group", "plane"):
        res = _sim(_one_linear(), hw, 8, fid, images=3, load_timing=True)
        assert res.timing.image_done_ns == pytest.approx(
            [load + 800 * (i + 1) + 50.78125 for i in range(3)]), fid


def test_load_two_lanes_share_the_tile_bus() -> None:
    # Linear 256 -> 16: two row blocks (lanes) of 128 rows in one IMA of one tile.  Both
    # loads are requested at t = 0: bank reads in parallel (2 banks, 3.3333 ns each), then
    # the bus serially: lane 1 in at 3.3333 + 2.2222 = 5.5556, lane 2 at 7.7778 ns.
    # Each lane then takes T(8) = 100 + c + 700 with its own ADC (c = 65/1.28): the
    # position completes with the later lane: 7.7778 + 850.78125 = 858.559 ns.
    hw = tiny_hw(crossbars=2, adcs=2)
    for fid in ("group", "plane"):
        res = _sim(_two_row_blocks(), hw, 8, fid, load_timing=True)
        assert res.latency_ns == pytest.approx(128 / 38.4 + 2 * 128 / 57.6 + 850.78125), fid


def test_streamed_images_group_vs_plane() -> None:
    # 3 images through the single linear lane, 8 planes each, one ADC per crossbar.
    # plane: the reader streams 24 reads back to back (c < r, so the S+H is always free
    #   by the next read's end); image i's last read ends 800 (i + 1), its conversion
    #   c = 50.78125 later: done 800 (i + 1) + 50.78125; throughput 1 / 800 ns = 1.25 M/s.
    # group: the next group's first read starts when the S+H is free (previous group's
    #   last plane entered conversion at 800 i + 800 - ... ), so groups overlap exactly as
    #   the planes do and the completion times are the same.
    hw = tiny_hw(crossbars=1, adcs=1)
    g = _sim(_one_linear(), hw, 8, "group", images=3)
    p = _sim(_one_linear(), hw, 8, "plane", images=3)
    expect = [800 * (i + 1) + 50.78125 for i in range(3)]
    assert g.timing.image_done_ns == pytest.approx(expect)
    assert p.timing.image_done_ns == pytest.approx(expect)
    assert g.throughput_ips == pytest.approx(1e9 / 800)
    assert p.throughput_ips == pytest.approx(1e9 / 800)
    # one image: the pipeline bound 1 / (busiest lane's busy time) = 1 / T(8)
    one = _sim(_one_linear(), hw, 8, "group")
    assert one.throughput_ips == pytest.approx(1e9 / 850.78125)


def test_conversion_slower_than_read() -> None:
    """With c > r the ADC is the bottleneck: T(b) = r + b*c.

    A 2-crossbar lane in a 1-ADC IMA: linear 128 -> 62 = 2 column blocks of
    31*4+1 = 125 columns, both crossbars in one IMA holding min(2, 1) = 1 ADC, so
    c = 250 / 1.28 = 195.3125 ns > r and T(3) = 100 + 3 * 195.3125 = 685.9375.
    """
    hw = tiny_hw(crossbars=2, adcs=1)
    g = _graph({"x": _node("input", 0, (128,), (128,)), "fc": _lin(1, 128, 62),
                "out": _node("output", 2, (62,), (62,))}, [("x", "fc"), ("fc", "out")])
    for fid in ("group", "plane", "analytic"):
        assert _sim(g, hw, 3, fid).latency_ns == pytest.approx(685.9375, abs=1e-9), fid


# ----------------------------------------------------------------------------- case 2
def _two_row_blocks() -> nx.DiGraph:
    """x (256,) -> fc (linear 256 -> 16) -> out.

    fc: 256 rows = 2 row blocks (lanes) of 128 rows, each one crossbar of 65 columns;
    with ima.crossbars = 2 both crossbars sit in IMA 0.  Each lane holds
    min(1 crossbar, pool) = 1 ADC: c = 65 / 1.28 = 50.78125 ns.
    """
    return _graph({"x": _node("input", 0, (256,), (256,)), "fc": _lin(1, 256, 16),
                   "out": _node("output", 2, (16,), (16,))}, [("x", "fc"), ("fc", "out")])


@pytest.mark.parametrize("b", [1, 2, 8])
def test_two_crossbars_share_one_adc_plane(b: int) -> None:
    # Plane fidelity, one ADC for the IMA's two crossbars.  Both lanes read plane 1 in
    # [0, 100]; from t = 100 the single ADC converts L0 p1, L1 p1, L0 p2, L1 p2, ...
    # back to back: each lane's next plane is read (100 ns) while the ADC works on the
    # other lane's plane (2c = 101.5625 > 100), so the ADC never idles and the position
    # completes when the 2b-th conversion ends:  r + 2*b*c.
    #   b = 1: 100 + 2*50.78125  = 201.5625
    #   b = 2: 100 + 4*50.78125  = 303.125
    #   b = 8: 100 + 16*50.78125 = 912.5
    hw = tiny_hw(crossbars=2, adcs=1)
    res = _sim(_two_row_blocks(), hw, b, "plane")
    assert res.latency_ns == pytest.approx(100 + 2 * b * 50.78125, abs=1e-9)
    assert res.latency_ns == pytest.approx({1: 201.5625, 2: 303.125, 8: 912.5}[b], abs=1e-9)
    # lane occupancy (first read to last conversion of the group): L0 wins the ADC at
    # t = 100 (process order), so its last conversion is the (2b-1)-th: 100 + (2b-1) c;
    # L1's is the 2b-th: 100 + 2 b c
    busy = res.timing.lane_busy_ns
    assert busy[("fc", 0, 0)] == pytest.approx(100 + (2 * b - 1) * 50.78125)
    assert busy[("fc", 0, 1)] == pytest.approx(100 + 2 * b * 50.78125)


def test_two_crossbars_share_one_adc_group_is_slower() -> None:
    # Group fidelity books one timeout of T(8) = 100 + 50.78125 + 7*100 = 850.78125
    # per lane and holds the ADC for all of it, so with one ADC the lanes run one after
    # the other: 2 * 850.78125 = 1701.5625; with two ADCs in parallel: 850.78125.
    one = _sim(_two_row_blocks(), tiny_hw(crossbars=2, adcs=1), 8, "group")
    two = _sim(_two_row_blocks(), tiny_hw(crossbars=2, adcs=2), 8, "group")
    assert one.latency_ns == pytest.approx(2 * 850.78125, abs=1e-9)
    assert two.latency_ns == pytest.approx(850.78125, abs=1e-9)
    assert one.latency_ns > two.latency_ns
    # plane fidelity with two ADCs: no sharing, T(8) = 850.78125 as in group fidelity
    assert _sim(_two_row_blocks(), tiny_hw(crossbars=2, adcs=2), 8, "plane").latency_ns \
        == pytest.approx(850.78125, abs=1e-9)
    # the analytic bound ignores ADC contention: T(8) even with one ADC
    assert _sim(_two_row_blocks(), tiny_hw(crossbars=2, adcs=1), 8, "analytic").latency_ns \
        == pytest.approx(850.78125, abs=1e-9)
    # group fidelity serialises whole MVMs, plane fidelity interleaves the planes:
    # 1701.5625 (group) > 912.5 (plane, previous test) > 850.78125 (no sharing)


# ----------------------------------------------------------------------------- case 3
T1 = 100 + 5 / 1.28   # 103.90625: 1 -> 1 channel conv = 1 output * 4 + 1 unit = 5 columns
C5 = 5 / 1.28         # 3.90625


def _conv_chain(k_b: int = 3) -> nx.DiGraph:
    """x (1x6x6) -> a (3x3 conv 1->1, pad 1) -> b (k_b x k_b conv 1->1, pad k_b//2) -> out.

    Both convs: 9 (or 1) rows, 5 columns = one crossbar; with ima.crossbars = 1 and
    tile.imas = 2 they sit in IMAs 0 and 1 of tile 0 (no NoC transfer, no shared ADC).
    One plane per group: every MVM takes T(1) = 100 + 5/1.28 = 103.90625 ns (= T1).
    One row of a = 1 channel * 6 columns * 1 byte = 6 bytes; the a -> b buffer is the only
    buffered edge on tile 0, so it gets the whole eDRAM: cap = edram_bytes // 6 rows.
    """
    b = _conv3(2, 1, 1, 6)
    if k_b == 1:
        b.update(kernel=(1, 1), padding=(0, 0), macs=36, weights=1)
    return _graph({"x": _node("input", 0, (1, 6, 6), (1, 6, 6)), "a": _conv3(1, 1, 1, 6),
                   "b": b, "out": _node("output", 3, (1, 6, 6), (1, 6, 6))},
                  [("x", "a"), ("a", "b"), ("b", "out")])


def _run_rows(g: nx.DiGraph, edram: int, fidelity: str) -> tuple[list, list, float]:
    sim, _ = _engine(g, tiny_hw(crossbars=1, adcs=1, imas=2, edram_bytes=edram), 1, fidelity)
    rows_a, rows_b = _row_times(sim, "a", 6), _row_times(sim, "b", 6)
    res = sim.run()
    return rows_a, rows_b, res.image_done_ns[0]


def test_pipeline_large_buffer_group_rows() -> None:
    # Group fidelity overlaps a lane's consecutive groups exactly like the plane pipeline
    # (the next read starts when the previous plane entered conversion), so the hand
    # values of test_pipeline_plane_fidelity_rows hold: a row k at 600(k+1) + c,
    # b row r at 1800 + 2c + 600 r, latency 4800 + 2c = 4807.8125 ns.
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 65536, "group")
    assert rows_a == pytest.approx([600 * (k + 1) + C5 for k in range(6)])
    assert rows_b == pytest.approx([1800 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(4807.8125)


def test_pipeline_three_row_buffer_group_stalls() -> None:
    # 18-byte eDRAM -> 3 rows of a, exactly b's window: the hand values of the plane test
    # below (a row 3 waits for b's 2nd row; rows then alternate), latency 6600 + 8c.
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 18, "group")
    assert rows_a == pytest.approx([600 + C5, 1200 + C5, 1800 + C5, 3000 + 3 * C5,
                                    4200 + 5 * C5, 5400 + 7 * C5])
    assert rows_b == pytest.approx([1800 + 2 * C5, 2400 + 2 * C5, 3600 + 4 * C5,
                                    4800 + 6 * C5, 6000 + 8 * C5, 6600 + 8 * C5])
    assert lat == pytest.approx(6631.25)
    big = _sim(_conv_chain(), tiny_hw(imas=2), 1, "group").latency_ns
    assert lat > big == pytest.approx(4807.8125)


def test_pipeline_plane_fidelity_rows() -> None:
    # Plane fidelity: a lane's reader starts the next group's read while the previous
    # group converts, so back-to-back MVMs cost 100 ns each (+ c = 3.90625 once at the
    # end of a burst), not T1 = 103.90625.
    # Large buffer: a position p done at 100(p+1) + c, a row k at 600(k+1) + c.
    # b row 0 starts reading when a has 2 rows (1200 + c), then b's reader never waits
    # (it reaches row r at 1200 + c + 600 r = the time a's row r+1 is done):
    # b row r done at 1800 + 2c + 600 r;  latency = 4800 + 2c = 4807.8125.
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 65536, "plane")
    assert rows_a == pytest.approx([600 * (k + 1) + C5 for k in range(6)])
    assert rows_b == pytest.approx([1800 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(4807.8125)
    # 3-row buffer: a row 3 waits for b's 2nd row (2400 + 2c), then rows alternate:
    #   a row 3 done 3000 + 3c; b row 2 3600 + 4c; a row 4 4200 + 5c; b row 3 4800 + 6c;
    #   a row 5 5400 + 7c; b row 4 6000 + 8c; b row 5 (reads back to back) 6600 + 8c
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 18, "plane")
    assert rows_a == pytest.approx([600 + C5, 1200 + C5, 1800 + C5, 3000 + 3 * C5,
                                    4200 + 5 * C5, 5400 + 7 * C5])
    assert rows_b == pytest.approx([1800 + 2 * C5, 2400 + 2 * C5, 3600 + 4 * C5,
                                    4800 + 6 * C5, 6000 + 8 * C5, 6600 + 8 * C5])
    assert lat == pytest.approx(6631.25)


def test_pipeline_one_row_buffer_for_1x1_consumer() -> None:
    # b is a 1x1 conv: its row r needs a's rows 0..r, and it frees a's row r when done.
    # Large buffer: a's 36 reads run back to back (a row r at 600(r+1) + c); b's row r
    # starts when a's row r is there and its 6 reads take 600 ns: b row r done at
    # 600(r+2) + 2c; latency 4200 + 2c = 4207.8125 ns.
    # One-row buffer (6 bytes): a row r+1 waits until b finished row r; strict
    # alternation: a row r done 1200 r + 600 + (2r+1)c, b row r 1200(r+1) + (2r+2)c;
    # latency 7200 + 12c = 7246.875 ns.
    g = _conv_chain(k_b=1)
    _, rows_b, lat = _run_rows(g, 65536, "group")
    assert rows_b == pytest.approx([600 * (r + 2) + 2 * C5 for r in range(6)])
    assert lat == pytest.approx(4207.8125)
    rows_a, rows_b, lat = _run_rows(g, 6, "group")
    assert rows_a == pytest.approx([1200 * r + 600 + (2 * r + 1) * C5 for r in range(6)])
    assert rows_b == pytest.approx([1200 * (r + 1) + (2 * r + 2) * C5 for r in range(6)])
    assert lat == pytest.approx(7246.875)
    assert _run_rows(g, 6, "plane")[2] == pytest.approx(lat)


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_buffer_smaller_than_window_fails(fidelity: str) -> None:
    # 12 bytes = 2 rows of a < 3 rows of b's 3x3 window (18 bytes)
    hw = tiny_hw(crossbars=1, adcs=1, imas=2, edram_bytes=12)
    with pytest.raises(SimulationError, match=r"b needs 3 row\(s\) of a \(18 bytes\).*holds 2"):
        _sim(_conv_chain(), hw, 1, fidelity)


def _dilated_chain() -> nx.DiGraph:
    """_conv_chain with b dilated: 3x3, dilation 2, padding 2 (6x6 -> 6x6).

    b's output row r reads a's rows r-2, r, r+2: a window of (3-1)*2 + 1 = 5 rows, and
    needs min(6, r + 3) leading rows of a.
    """
    g = _conv_chain()
    g.nodes["b"].update(dilation=(2, 2), padding=(2, 2))
    return g


def test_dilated_consumer_buffers_group() -> None:
    # Large buffer: a row k done 600(k+1) + c; b row r needs min(6, r + 3) rows of a:
    # row 0 starts at a's 3rd row (1800 + c), then b's reads never wait (row r starts at
    # 1800 + c + 600 r, a's row r+2 is there by then): b row r at 2400 + 2c + 600 r,
    # latency 5400 + 2c = 5407.8125 ns.
    # 5-row buffer (30 bytes): a row 5 waits until b frees a row; b frees
    # rows_done(b) - 2, so after b's 3rd row (3600 + 2c): a row 5 at 4200 + 3c; b row 3
    # (needs 6 rows) starts then: 4800 + 4c, rows 4, 5: 5400 + 4c, 6000 + 4c.
    _, rows_b, lat = _run_rows(_dilated_chain(), 65536, "group")
    assert rows_b == pytest.approx([2400 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(5407.8125)
    rows_a, rows_b, lat = _run_rows(_dilated_chain(), 30, "group")
    assert rows_a == pytest.approx([600 * (k + 1) + C5 for k in range(5)] + [4200 + 3 * C5])
    assert rows_b == pytest.approx([2400 + 2 * C5, 3000 + 2 * C5, 3600 + 2 * C5,
                                    4800 + 4 * C5, 5400 + 4 * C5, 6000 + 4 * C5])
    assert lat == pytest.approx(6000 + 4 * C5)
    assert _run_rows(_dilated_chain(), 30, "plane")[2] == pytest.approx(lat)


def test_dilated_consumer_buffer_too_small_is_reported_up_front() -> None:
    # 24 bytes = 4 rows of a < the 5-row window: a row 4 would need b's row 0 to free
    # a row, but b row 0 frees max(0, 1 - 2) = 0 rows and b row 1 needs a row 4.
    hw = tiny_hw(crossbars=1, adcs=1, imas=2, edram_bytes=24)
    with pytest.raises(SimulationError, match=r"b needs 5 row\(s\) of a"):
        _sim(_dilated_chain(), hw, 1, "group")


def test_analytic_ignores_buffers() -> None:
    # The analytic recurrence has no buffers and no overlap between consecutive groups:
    # 48 MVMs of T1 on the critical path = 4987.5 ns whatever the buffer (the engine
    # takes 6631.25 ns with the 3-row buffer).
    hw = tiny_hw(crossbars=1, adcs=1, imas=2, edram_bytes=18)
    ana = _sim(_conv_chain(), hw, 1, "analytic").latency_ns
    assert ana == pytest.approx(4987.5)
    assert ana <= _sim(_conv_chain(), hw, 1, "group").latency_ns


# ----------------------------------------------------------------------------- case 4
def _residual() -> nx.DiGraph:
    """x (1x6x6) -> a (3x3) -> b (3x3) -> add(a, b) -> out; all on tile 0.

    The add runs on the tiles of its last producer (b: tile 0, like a), so no NoC.
    Its row: 6 values, one add each (2 inputs) on 1 tile_shift_add unit at 1.2 GHz on
    1 tile: 6 / 1.2 = 5 ns per row.  Joins have unbounded buffers.
    """
    nodes = {"x": _node("input", 0, (1, 6, 6), (1, 6, 6)), "a": _conv3(1, 1, 1, 6),
             "b": _conv3(2, 1, 1, 6), "add": _node("add", 3, (1, 6, 6), (1, 6, 6)),
             "out": _node("output", 4, (1, 6, 6), (1, 6, 6))}
    return _graph(nodes, [("x", "a"), ("a", "b"), ("a", "add"), ("b", "add"),
                          ("add", "out")])


def test_residual_add_group() -> None:
    # b row r done 1800 + 2c + 600 r (as in test_pipeline_large_buffer_group_rows), a's
    # rows earlier; add row r waits for b's row r and takes 5 ns:
    # add row r done 1805 + 2c + 600 r; latency 4800 + 2c + 5 = 4812.8125 ns.
    sim, _ = _engine(_residual(), tiny_hw(crossbars=1, adcs=1, imas=2), 1, "group")
    rows_add = _row_times(sim, "add", 6)
    rows_b = _row_times(sim, "b", 6)
    res = sim.run()
    assert sim.plans["add"].row_ns == pytest.approx(5.0)
    assert rows_add == pytest.approx([1805 + 2 * C5 + 600 * r for r in range(6)])
    for r in range(6):
        assert rows_add[r] >= rows_b[r] + 5 - 1e-9
    assert res.image_done_ns[0] == pytest.approx(4812.8125)


def test_residual_add_plane_and_analytic() -> None:
    # plane: b row r done 1800 + 2c + 600 r (test_pipeline_plane_fidelity_rows):
    #   latency = 4800 + 2 * 3.90625 + 5 = 4812.8125
    # analytic: row recurrence equal to the group engine here: 48 T1 + 5 = 4992.5
    hw = tiny_hw(crossbars=1, adcs=1, imas=2)
    assert _sim(_residual(), hw, 1, "plane").latency_ns == pytest.approx(4812.8125)
    assert _sim(_residual(), hw, 1, "analytic").latency_ns == pytest.approx(4992.5)


# ----------------------------------------------------------------------------- case 5
def _noc_net(compete: bool) -> nx.DiGraph:
    """Two producers on tiles 0 and 1, two consumers on tile 2 of a 1 x 3 router mesh.

    Hardware: 1 crossbar per IMA, 2 IMAs per tile, 3 tiles, 1 tile per router, mesh_cols 3:
    tile t = router t; dense placement in graph order:
      a: linear 256 -> 31: 2 row blocks x 1 crossbar (125 columns)  -> slots 0, 1 = tile 0
      s: linear 128 -> 62: 1 row block x 2 crossbars (125 columns)  -> slots 2, 3 = tile 1
      b: linear 31 -> 16:  1 crossbar (65 columns)                   -> slot 4     = tile 2
      c: linear 62 -> 16:  1 crossbar (65 columns)                   -> slot 5     = tile 2
    a -> b routes over links (0,1), (1,2); s -> c over (1,2) only (the shared link).
    Without competition s feeds the output directly (no NoC) and c does not exist.
    """
    nodes = {"x": _node("input", 0, (256,), (256,)), "a": _lin(1, 256, 31),
             "s": _lin(2, 128, 62), "b": _lin(3, 31, 16)}
    edges = [("x", "a"), ("x", "s"), ("a", "b"), ("b", "out")]
    if compete:
        nodes["c"] = _lin(4, 62, 16)
        edges += [("s", "c"), ("c", "out")]
    else:
        edges += [("s", "out")]
    nodes["out"] = _node("output", 5, (16,), (16,))
    return _graph(nodes, edges)


def _noc_hw() -> HardwareSpec:
    return tiny_hw(crossbars=1, adcs=1, imas=2, tiles=3, tiles_per_router=1, mesh_cols=3)


# a and s: c = 125 / 1.28 = 97.65625 (a: each row block's crossbar; s: each crossbar in
# its own IMA with its own ADC), one plane: T(1) = 197.65625 for both.
TA = 100 + 125 / 1.28
# a's packet: 31 bytes = 248 bits = 8 flits -> (8 + 3) / 1.2 = 55/6 ns per link
LA = (math.ceil(31 * 8 / 32) + ROUTER) / NOC_GHZ
# s's packet: 62 bytes = 496 bits = 16 flits -> (16 + 3) / 1.2 = 95/6 ns per link
LS = (math.ceil(62 * 8 / 32) + ROUTER) / NOC_GHZ
# b and c: 65 columns, T(1) = 100 + 50.78125
TB = 150.78125


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_noc_two_hops_store_and_forward(fidelity: str) -> None:
    assert (TA, LA, LS) == pytest.approx((197.65625, 55 / 6, 95 / 6))
    sim, m = _engine(_noc_net(False), _noc_hw(), 1, fidelity)
    assert m.layers["a"].tiles == [0] and m.layers["s"].tiles == [1]
    assert m.layers["b"].tiles == [2]
    res = sim.run()
    # alone: (0,1) in [TA, TA + LA], (1,2) in [TA + LA, TA + 2 LA]
    # arrival = 197.65625 + 110/6 = 215.989583...
    assert sim.arrival[("a", "b")][0].finished_at == pytest.approx(TA + 2 * LA)
    assert res.link_busy_ns == pytest.approx({(0, 1): LA, (1, 2): LA})
    assert res.image_done_ns[0] == pytest.approx(TA + 2 * LA + TB)   # 366.7708...
    # 8 flits x (2 hops + 1) routers = 24 flit-hops
    sim.ledger.flush()
    assert sim.ledger.event_counts()["router_flit_hop"] == pytest.approx(24)


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_noc_shared_link_waits(fidelity: str) -> None:
    sim, m = _engine(_noc_net(True), _noc_hw(), 1, fidelity)
    assert m.layers["b"].tiles == [2] and m.layers["c"].tiles == [2]
    res = sim.run()
    # a and s finish together at TA.  s's packet takes link (1,2) at once: [TA, TA + LS].
    # a's packet crosses (0,1) in [TA, TA + LA], then waits for (1,2) until TA + LS
    # (LA = 9.17 < LS = 15.83) and crosses it in [TA + LS, TA + LS + LA]:
    # arrival = TA + 95/6 + 55/6 = TA + 25 = 222.65625 (alone: TA + 18.33 = 215.99)
    arr = sim.arrival[("a", "b")][0].finished_at
    assert arr == pytest.approx(TA + LS + LA) and arr == pytest.approx(222.65625)
    assert arr - (TA + 2 * LA) == pytest.approx(LS - LA)   # the wait: 40/6 = 6.67 ns
    assert sim.arrival[("s", "c")][0].finished_at == pytest.approx(TA + LS)
    assert res.link_busy_ns == pytest.approx({(0, 1): LA, (1, 2): LA + LS})
    # b done 222.65625 + 150.78125 = 373.4375 (c earlier: TA + LS + TB = 364.27)
    assert res.image_done_ns[0] == pytest.approx(373.4375)
    sim.ledger.flush()
    # 24 (a -> b) + 16 flits x 2 routers (s -> c) = 56 flit-hops
    assert sim.ledger.event_counts()["router_flit_hop"] == pytest.approx(24 + 32)


# ----------------------------------------------------------------------------- case 6
@pytest.fixture(scope="module")
def digits_runs() -> dict[str, PipelineResult]:
    from workloads.digits import load_digits_model
    from workloads.graph import trace_model

    tw = trace_model(load_digits_model(), (1, 8, 8), "digits")
    hw = isaac8()
    m = map_network(tw.graph, hw, MappingOptions())
    rng = np.random.default_rng(2024)
    planes = {n: rng.integers(0, 9, size=(2, len(lm.row_blocks), lm.positions),
                              dtype=np.uint8) for n, lm in m.layers.items()}
    return {f: simulate_pipeline(m.graph, m, hw, planes, "static", "p", f, 2)
            for f in ("group", "plane", "analytic")}


def test_digits_fidelities_agree(digits_runs: dict[str, PipelineResult]) -> None:
    g, p, a = digits_runs["group"], digits_runs["plane"], digits_runs["analytic"]
    ev = g.ledger.event_counts()
    for other in (p, a):
        assert other.counts() == g.counts()
        oev = other.ledger.event_counts()
        assert oev.keys() == ev.keys()
        for k in ev:
            assert oev[k] == pytest.approx(ev[k], rel=1e-12, abs=1e-9), k
        assert other.ledger.dynamic_energy() == pytest.approx(g.ledger.dynamic_energy(),
                                                              rel=1e-12)
    # isaac8: 8 ADCs for 8 crossbars per IMA -> no ADC sharing, and in this mapping
    # every lane has at most one group per image before its input arrives, so image 0
    # has the same latency in group and plane fidelity
    assert p.latency_ns == pytest.approx(g.latency_ns, rel=1e-12)
    # image 1 follows image 0 through the same lanes: plane fidelity overlaps a lane's
    # consecutive groups (see test_streamed_images_group_vs_plane), group fidelity not
    assert p.timing.image_done_ns[1] <= g.timing.image_done_ns[1]
    # the analytic time is a bound (no NoC, no buffers, no contention)
    assert a.latency_ns <= g.latency_ns
    assert g.counts()["groups"] > 0 and g.counts()["bit_planes"] > 0
