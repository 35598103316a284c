"""Timing of the event engine (simulator/engine/chip.py) on tiny hand-built cases.

Every expected number is derived by hand in the comments from docs/model.md:

* one lane MVM with b bit planes: T(b) = r + c + (b - 1) * max(r, c), T(0) = 0,
  r = crossbar.read_ns = 100 ns, c = the longest conversion job of the lane: a crossbar's
  active columns / 1.28 GS/s on its own ADC (one ADC per crossbar unless shared);
* a weight layer with 8-bit weights on 2-bit cells uses 4 columns per output plus
  one unit column per crossbar, at most (128 - 1) // 4 = 31 outputs per crossbar;
* the output path of a position on isaac8: its partial-sum adds on the tile
  shift-and-add (4 units x 1.2 GHz = 4.8 values/ns), the activation (8 x 1.2 = 9.6/ns),
  the output register (1 x 4 values/cycle x 1.2 = 4.8/ns) and the eDRAM write
  (256 bits x 1.2 GHz = 38.4 B/ns), one value per clock through each: cut-through, each
  stage entered one cycle (1/1.2 ns) after the previous one and ending no earlier than
  the previous stage's end plus a cycle (:func:`out_path`);
* NoC: packets of ceil(bits / 32) flits; ports and links hold a packet for flits / 1.2
  GHz; the head advances one hop per (3 router cycles + 1 link cycle) / 1.2 GHz =
  10/3 ns (virtual cut-through); the payload is then written to the destination's eDRAM.

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
from simulator.core.errors import SimulationError
from simulator.engine.chip import ChipSimulation
from simulator.hardware.spec import HardwareSpec, load_hardware
from simulator.model.ledger import EnergyLedger
from simulator.model.workplan import build_plan
from simulator.runner.simulate import BUSY_CLASSES, PipelineResult, simulate_pipeline

ISAAC8 = Path(__file__).resolve().parents[1] / "configs" / "hardware" / "isaac8.yaml"

R = 100.0        # crossbar.read_ns
RATE = 1.28      # ima.adc_rate_gsps (conversions per ns per ADC)
NOC_GHZ = 1.2    # noc.clock_ghz
ROUTER = 3       # noc.router_latency_cycles
HOP = (ROUTER + 1) / NOC_GHZ   # 10/3 ns: router pipeline + one link cycle
CYC = 1 / 1.2    # digital clock cycle, ns
SA = 4 * 1.2     # tile shift-and-add: 4 units x 1.2 GHz = 4.8 values/ns
ACT = 8 * 1.2    # activation units: 9.6 values/ns
OREG = 4 * 1.2   # output register: 4 values per cycle = 4.8 values/ns
BANK = 38.4      # eDRAM bank: 256 bits x 1.2 GHz = 38.4 B/ns
BUS = 57.6       # eDRAM-to-IMA bus: 384 wires x 1.2 GHz


def out_path(values: int, merges: int = 0, act: bool = False) -> float:
    """Uncontended output path of one position of *values* 8-bit outputs (docstring).

    Stages in order: adds (merges / 4.8 ns), activation (values / 9.6), output register
    (values / 4.8), eDRAM write (values / 38.4). Stage k starts a cycle after stage k-1
    started and ends at max(start + duration, previous end + a cycle).
    """
    durations = ([merges / SA] if merges else []) + ([values / ACT] if act else [])
    durations += [values / OREG, values / BANK]
    s, e = 0.0, durations[0]
    for d in durations[1:]:
        s += CYC
        e = max(s + d, e + CYC)
    return e


# one 16-output position: output register 16 / 4.8 = 3.3333 ns, the write ends a cycle
# later (its 16 / 38.4 = 0.4167 ns fit inside): 3.3333 + 0.8333 = 4.1667 = 25/6 ns
OUT16 = 25 / 6


@cache
def isaac8() -> HardwareSpec:
    return load_hardware(ISAAC8)


def tiny_hw(crossbars: int = 1, adcs: int = 1, imas: int = 1, tiles: int = 4,
            tiles_per_router: int = 1, mesh_cols: int = 2,
            edram_bytes: int = 65536) -> HardwareSpec:
    """isaac8 with `crossbars` crossbars and `adcs` ADCs per IMA, `imas` IMAs per tile.

    The component counts that must follow ima.crossbars / ima.adcs (consistency checks
    of simulator/hardware/spec.py) change with them: DACs = S+Hs = crossbars * 128.
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
    plans, ids = build_plan(m.graph, m, hw, ledger, False)
    return ChipSimulation(plans, _planes(m, b), hw, ledger, 1, fidelity,
                          load_timing=False, ids=ids), m


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
    expect = 100 + 50.78125 + (b - 1) * 100 + 25 / 6  # T(b), then the 16 outputs' path
    assert c == 50.78125 and out_path(16) == pytest.approx(OUT16)
    assert res.latency_ns == pytest.approx(expect, abs=1e-9)
    assert res.latency_ns == pytest.approx(T(b, c) + OUT16, abs=1e-9)
    # counts: b planes of one crossbar: b reads, 128*b DAC drives, 65*b conversions
    assert res.counts() == {"groups": 1, "bit_planes": b, "crossbar_reads": b,
                            "adc_conversions": 65 * b, "dac_drives": 128 * b}


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_single_mvm_dynamic_policy_adds_select_latency(fidelity: str) -> None:
    # precision_select.latency_ns = 30 ns: the lane has nothing to stream meanwhile, so
    # the selection of its only group is exposed: 30 + 100 + 50.78125 + 7*100 + 25/6
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 8, fidelity, policy="redy")
    assert res.latency_ns == pytest.approx(30 + 100 + 50.78125 + 700 + OUT16, abs=1e-9)


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_selection_overlaps_streaming(fidelity: str) -> None:
    # 3 images through the single lane, redy: group 0 is selected in [0, 30] (exposed);
    # groups 1, 2 are in the register (16 slots) from t = 0 and the IMA's unit selects
    # them in [30, 60] and [60, 90], while group 0 streams: hidden. Each image then
    # streams 800 ns behind the previous one: done_i = 30 + 800 (i + 1) + c + 25/6.
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 8, fidelity, images=3, policy="redy")
    assert res.timing.image_done_ns == pytest.approx(
        [30 + 800 * (i + 1) + 50.78125 + OUT16 for i in range(3)])


@pytest.mark.parametrize("policy", ["static", "redy"])
@pytest.mark.parametrize("fidelity", ["group", "plane", "analytic"])
def test_single_mvm_zero_planes_costs_no_time(fidelity: str, policy: str) -> None:
    # T(0) = 0: no plane streamed; a dynamic policy still spends its 30 ns selection
    # deciding to skip the group (static: 0 ns). The position is still written: the
    # 16 outputs take the output path, 25/6 ns.
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 0, fidelity, policy=policy)
    assert res.latency_ns == pytest.approx((30.0 if policy == "redy" else 0.0) + OUT16)
    # the skipped group is still counted (eDRAM read of 128 bytes), with no plane
    assert res.counts()["groups"] == 1 and res.counts()["bit_planes"] == 0
    assert res.ledger.event_counts()["edram_byte"] == pytest.approx(128 + 16)  # in + out


def test_load_single_group() -> None:
    # The linear layer's group: 128 inputs x 1 byte.  eDRAM bank: 256 bits = 32 B per
    # 1.2 GHz cycle = 38.4 B/ns -> 3.3333 ns; bus: 384 wires = 48 B/cycle = 57.6 B/ns ->
    # 2.2222 ns; the first read starts after both: latency = 5.5556 + T(8) + 25/6
    load = 128 / BANK + 128 / BUS
    hw = tiny_hw(crossbars=1, adcs=1)
    for fid in ("group", "plane"):
        res = _sim(_one_linear(), hw, 8, fid, load_timing=True)
        assert res.latency_ns == pytest.approx(load + 850.78125 + OUT16), fid


def test_load_is_prefetched_into_the_second_register_slot() -> None:
    # 8-bit inputs: the 2 KB input register holds
    # ima.input_register_bytes // (crossbars x 128 rows x 1 B) = 2048 // 128 = 16 slots
    # on this 1-crossbar IMA, so every later group is loaded while the previous streams.
    # 3 images back to back: only the first load is exposed:
    #   done_i = load + 800 (i + 1) + c + 25/6,  c = 65 / 1.28 = 50.78125
    load = 128 / BANK + 128 / BUS
    hw = tiny_hw(crossbars=1, adcs=1)
    for fid in ("group", "plane"):
        res = _sim(_one_linear(), hw, 8, fid, images=3, load_timing=True)
        assert res.timing.image_done_ns == pytest.approx(
            [load + 800 * (i + 1) + 50.78125 + OUT16 for i in range(3)]), fid


# two row blocks of 16 outputs: 16 partial-sum adds (16 / 4.8 = 3.3333 ns), the output
# register a cycle later (ends at max(0.8333 + 3.3333, 3.3333 + 0.8333) = 4.1667) and the
# write a cycle after that: 5.0 ns
OUT16_2RB = 5.0


def test_load_two_lanes_share_the_tile_bus() -> None:
    # Linear 256 -> 16: two row blocks (lanes) of 128 rows in one IMA of one tile.  Both
    # loads are requested at t = 0: bank reads in parallel (2 banks, 3.3333 ns each), then
    # the bus serially: lane 1 in at 3.3333 + 2.2222 = 5.5556, lane 2 at 7.7778 ns.
    # Each lane then takes T(8) = 100 + c + 700 with its own ADC (c = 65/1.28): the
    # position's lanes are done with the later one at 7.7778 + 850.78125, merged in 5 ns.
    hw = tiny_hw(crossbars=2, adcs=2)
    assert out_path(16, merges=16) == pytest.approx(OUT16_2RB)
    for fid in ("group", "plane"):
        res = _sim(_two_row_blocks(), hw, 8, fid, load_timing=True)
        assert res.latency_ns == pytest.approx(
            128 / BANK + 2 * 128 / BUS + 850.78125 + OUT16_2RB), fid


def test_streamed_images_group_vs_plane() -> None:
    # 3 images through the single linear lane, 8 planes each, one ADC per crossbar.
    # plane: the reader streams 24 reads back to back (c < r, so the S+H is always free
    #   by the next read's end); image i's last read ends 800 (i + 1), its conversion
    #   c = 50.78125 later and its output path 25/6 after that.
    # group: the next group's first read starts when the S+H is free (previous group's
    #   last plane entered conversion), so groups overlap exactly as the planes do.
    # Measured throughput: image 0 is the warm-up, one interval of 800 ns: 1.25 M/s.
    hw = tiny_hw(crossbars=1, adcs=1)
    g = _sim(_one_linear(), hw, 8, "group", images=3)
    p = _sim(_one_linear(), hw, 8, "plane", images=3)
    expect = [800 * (i + 1) + 50.78125 + OUT16 for i in range(3)]
    assert g.timing.image_done_ns == pytest.approx(expect)
    assert p.timing.image_done_ns == pytest.approx(expect)
    for res in (g, p):
        assert res.throughput_measured_ips == pytest.approx(1e9 / 800)
        assert res.warmup_images == 1
        assert "measured" in res.throughput_basis
    # one image: no measured figure; the bound is the busiest unit's work per image: the
    # lane's 8 planes x 100 ns (the output register's 3.3 ns are far less)
    one = _sim(_one_linear(), hw, 8, "group")
    assert one.throughput_measured_ips is None
    assert one.throughput_ips == pytest.approx(1e9 / 800)
    assert one.throughput_bound_ips == pytest.approx(1e9 / 800)
    assert one.bounding_unit["unit"] == "crossbar lane"
    assert one.bounding_unit["busy_ns_per_image"] == pytest.approx(800)
    assert "bound" in one.throughput_basis


def test_conversion_slower_than_read() -> None:
    """With c > r the ADC is the bottleneck: T(b) = r + b*c.

    A 2-crossbar lane in a 1-ADC IMA: linear 128 -> 62 = 2 column blocks of
    31*4+1 = 125 columns, both crossbars in one IMA with one ADC, which converts the two
    crossbars' columns one after the other: c = 2 x 125 / 1.28 = 195.3125 ns > r and
    T(3) = 100 + 3 * 195.3125 = 685.9375. The 62 outputs' path: 62 / 4.8 = 12.9167 ns in
    the output register, the write a cycle later: 13.75 ns.
    """
    hw = tiny_hw(crossbars=2, adcs=1)
    g = _graph({"x": _node("input", 0, (128,), (128,)), "fc": _lin(1, 128, 62),
                "out": _node("output", 2, (62,), (62,))}, [("x", "fc"), ("fc", "out")])
    assert out_path(62) == pytest.approx(13.75)
    for fid in ("group", "plane", "analytic"):
        assert _sim(g, hw, 3, fid).latency_ns == pytest.approx(685.9375 + 13.75,
                                                                abs=1e-9), fid


def test_lane_waits_for_its_longest_crossbar() -> None:
    """One ADC per crossbar: a lane's plane is converted when its fullest crossbar is.

    Linear 128 -> 32: column blocks of 31 weights (125 columns) and 1 weight (4 + 1 = 5
    columns) in one IMA with two ADCs: c = max(125, 5) / 1.28 = 97.65625 ns,
    T(2) = 100 + 97.65625 + 100 = 297.65625, then 32 outputs: 32 / 4.8 + 1/1.2 = 7.5 ns.
    """
    hw = tiny_hw(crossbars=2, adcs=2)
    g = _graph({"x": _node("input", 0, (128,), (128,)), "fc": _lin(1, 128, 32),
                "out": _node("output", 2, (32,), (32,))}, [("x", "fc"), ("fc", "out")])
    for fid in ("group", "plane"):
        assert _sim(g, hw, 2, fid).latency_ns == pytest.approx(297.65625 + 7.5), fid


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
@pytest.mark.parametrize("fidelity", ["plane", "group"])
def test_two_crossbars_share_one_adc(b: int, fidelity: str) -> None:
    # One ADC for the IMA's two crossbars (lanes L0, L1). Both lanes read plane 1 in
    # [0, 100].
    # plane (FIFO jobs on the ADC): from t = 100 the ADC converts L0 p1, L1 p1, L0 p2,
    #   L1 p2, ... back to back: each lane's next plane is read (100 ns) while the ADC
    #   works on the other lane's plane (2c = 101.5625 > 100), so the ADC never idles and
    #   the position's last conversion ends after 2b of them: r + 2*b*c.
    # group (fluid pool): the replica's lanes convert their planes in the order their
    #   samples are ready (ties: lane order): L0 p1 at 100 takes the ADC until 150.78,
    #   L1 p1 (ready at 100) gets it next until 201.56, L0 p2 (ready at 200) waits for it
    #   until 201.56, ...: the same alternation.
    #   b = 1: 100 + 2*50.78125  = 201.5625
    #   b = 2: 100 + 4*50.78125  = 303.125
    #   b = 8: 100 + 16*50.78125 = 912.5
    # then the two row blocks' 16 outputs are merged: 5 ns.
    hw = tiny_hw(crossbars=2, adcs=1)
    res = _sim(_two_row_blocks(), hw, b, fidelity)
    assert res.latency_ns == pytest.approx(100 + 2 * b * 50.78125 + OUT16_2RB, abs=1e-9)
    assert res.latency_ns - OUT16_2RB == pytest.approx({1: 201.5625, 2: 303.125,
                                                        8: 912.5}[b], abs=1e-9)
    # lane occupancy (first read to last conversion of the group): L0 wins the ADC at
    # t = 100, so its last conversion is the (2b-1)-th: 100 + (2b-1) c; L1's is the
    # 2b-th: 100 + 2 b c
    busy = res.timing.lane_busy_ns
    assert busy[("fc", 0, 0)] == pytest.approx(100 + (2 * b - 1) * 50.78125)
    assert busy[("fc", 0, 1)] == pytest.approx(100 + 2 * b * 50.78125)


def test_adc_sharing_without_contention_and_analytic() -> None:
    # Two ADCs for the two crossbars: no sharing, T(8) = 850.78125 in both fidelities;
    # the analytic estimate ignores ADC contention: T(8) even with one ADC.
    for fid in ("group", "plane"):
        assert _sim(_two_row_blocks(), tiny_hw(crossbars=2, adcs=2), 8, fid).latency_ns \
            == pytest.approx(850.78125 + OUT16_2RB, abs=1e-9), fid
    assert _sim(_two_row_blocks(), tiny_hw(crossbars=2, adcs=1), 8, "analytic").latency_ns \
        == pytest.approx(850.78125 + OUT16_2RB, abs=1e-9)


def test_adc_sharing_streamed_group_within_3_percent_of_plane() -> None:
    # 3 images through the two lanes sharing one ADC. Per image the ADC has 16 jobs of
    # c = 50.78125 = 812.5 ns of work > the lanes' 8 x 100 ns of reads, so it is the
    # bottleneck and never idles from t = 100: image i's last conversion ends at
    # 100 + 812.5 (i + 1) in plane fidelity (FIFO jobs); group fidelity converts the
    # lanes' planes in the order they are ready on a work-conserving pool: within 3 %.
    hw = tiny_hw(crossbars=2, adcs=1)
    p = _sim(_two_row_blocks(), hw, 8, "plane", images=3)
    g = _sim(_two_row_blocks(), hw, 8, "group", images=3)
    expect = [100 + 812.5 * (i + 1) + OUT16_2RB for i in range(3)]
    assert p.timing.image_done_ns == pytest.approx(expect)
    for a, b in zip(g.timing.image_done_ns, expect, strict=True):
        assert abs(a / b - 1) <= 0.03
    # measured: one 812.5 ns interval after the warm-up image; the bound names the pool
    assert p.throughput_measured_ips == pytest.approx(1e9 / 812.5)
    assert g.throughput_bound_ips == pytest.approx(1e9 / 812.5)
    assert g.bounding_unit["unit"] == "ADC pool"


# ----------------------------------------------------------------------------- unit bound
def _wide_1x1(width: int) -> nx.DiGraph:
    """x (128 x 1 x width) -> c (1x1 conv 128 -> 124) -> out, on one tile.

    c: 128 rows = one row block, 124 outputs = 4 column blocks of 31 weights (125 columns)
    = one lane of 4 crossbars in one IMA with 4 ADCs: c = 125 / 1.28 = 97.65625 < r.
    One replica computes the `width` positions of the single output row in order.
    """
    conv = _node("conv", 1, (128, 1, width), (124, 1, width), in_channels=128,
                 out_channels=124, kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                 dilation=(1, 1), groups=1, macs=128 * 124 * width, weights=128 * 124,
                 module="m")
    return _graph({"x": _node("input", 0, (128, 1, width), (128, 1, width)), "c": conv,
                   "out": _node("output", 2, (124, 1, width), (124, 1, width))},
                  [("x", "c"), ("c", "out")])


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_output_register_bounds_throughput(fidelity: str) -> None:
    """A tile output register of ISAAC's width (1 value per cycle) behind 1-plane groups.

    The lane streams a position every r = 100 ns (position k converted at
    T(1) + 100 k = 197.65625 + 100 k), but the output register takes 124 / 1.2 =
    103.3333 ns per position, so positions queue for it: position k leaves it at
    197.65625 + 103.3333 (k + 1), its write ends a cycle later (124 B / 38.4 = 3.2 ns
    inside that). The register holds 3072 B = 24 positions of 124 B, far more than the
    ~3 ns the queue grows per position needs here, so the lane never stalls.
    With W = 12 positions per image and 3 images streamed back to back, image i ends at
    197.65625 + 103.3333 x 12 (i + 1) + 0.8333: the measured interval is 1240 ns, the
    register's work per image, which is also the bound (the lane's is 1200 ns).
    """
    w = 12
    hw = tiny_hw(crossbars=4, adcs=4).with_changes(
        {"components.tile.tile_output_register.values_per_cycle": 1})
    res = _sim(_wide_1x1(w), hw, 1, fidelity, images=3)
    reg = 124 / 1.2
    expect = [197.65625 + reg * w * (i + 1) + CYC for i in range(3)]
    assert res.timing.image_done_ns == pytest.approx(expect)
    assert res.throughput_measured_ips == pytest.approx(1e9 / (reg * w))
    assert res.throughput_bound_ips == pytest.approx(1e9 / (reg * w))
    assert res.bounding_unit == {"unit": "tile output register", "where": "tile 0",
                                 "busy_ns_per_image": pytest.approx(reg * w)}
    lane = next(u for u in res.busiest_units if u["unit"] == "crossbar lane")
    assert lane["busy_ns_per_image"] == pytest.approx(100 * w)
    # the engine's register was busy for exactly that work: 3 images x 12 x 103.33 ns
    assert res.timing.unit_busy_ns[("tile output register", "tile 0")] == pytest.approx(
        3 * w * reg)
    # the stock isaac8 register (4 values per cycle) is 4x faster: the lane bounds it
    fast = _sim(_wide_1x1(w), tiny_hw(crossbars=4, adcs=4), 1, fidelity, images=3)
    assert fast.bounding_unit["unit"] == "crossbar lane"
    assert fast.throughput_measured_ips == pytest.approx(1e9 / (100 * w))


# ----------------------------------------------------------------------------- case 3
T1 = 100 + 5 / 1.28   # 103.90625: 1 -> 1 channel conv = 1 output * 4 + 1 unit = 5 columns
# c = 5 / 1.28 = 3.90625 ns of conversion after the last read, then the position's one
# output: 1 / 4.8 = 0.2083 ns in the output register, the write a cycle (0.8333) later:
# out_path(1) = 1.0417 ns. Every position completes C5 = c + 1.0417 after its last read.
C5 = 5 / 1.28 + (1 / OREG + CYC)   # 4.9479...


def _conv_chain(k_b: int = 3) -> nx.DiGraph:
    """x (1x6x6) -> a (3x3 conv 1->1, pad 1) -> b (k_b x k_b conv 1->1, pad k_b//2) -> out.

    Both convs: 9 (or 1) rows, 5 columns = one crossbar; with ima.crossbars = 1 and
    tile.imas = 2 they sit in IMAs 0 and 1 of tile 0 (no NoC transfer, no shared ADC).
    One plane per group: every MVM takes T(1) = 100 + 5/1.28 = 103.90625 ns (= T1), and
    back-to-back groups 100 ns each; a position completes C5 after its last read.
    One row of a = 1 channel * 6 columns * 1 byte = 6 bytes; the a -> b buffer is the only
    buffered edge on tile 0, so it gets the whole eDRAM: cap = edram_bytes // 6 rows.
    Everything is on tile 0: no NoC transfer.
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
    # values of test_pipeline_plane_fidelity_rows hold: a row k at 600(k+1) + C5,
    # b row r at 1800 + 2 C5 + 600 r, latency 4800 + 2 C5 = 4809.8958 ns.
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 65536, "group")
    assert rows_a == pytest.approx([600 * (k + 1) + C5 for k in range(6)])
    assert rows_b == pytest.approx([1800 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(4800 + 2 * C5) and lat == pytest.approx(4809.8958333)


def test_pipeline_three_row_buffer_group_stalls() -> None:
    # 18-byte eDRAM -> 3 rows of a, exactly b's window: the hand values of the plane test
    # below (a row 3 waits for b's 2nd row; rows then alternate), latency 6600 + 8 C5.
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 18, "group")
    assert rows_a == pytest.approx([600 + C5, 1200 + C5, 1800 + C5, 3000 + 3 * C5,
                                    4200 + 5 * C5, 5400 + 7 * C5])
    assert rows_b == pytest.approx([1800 + 2 * C5, 2400 + 2 * C5, 3600 + 4 * C5,
                                    4800 + 6 * C5, 6000 + 8 * C5, 6600 + 8 * C5])
    assert lat == pytest.approx(6600 + 8 * C5)
    big = _sim(_conv_chain(), tiny_hw(imas=2), 1, "group").latency_ns
    assert lat > big == pytest.approx(4800 + 2 * C5)


def test_pipeline_plane_fidelity_rows() -> None:
    # Plane fidelity: a lane's reader starts the next group's read while the previous
    # group converts, so back-to-back MVMs cost 100 ns each (+ C5 once at the end of a
    # burst: the conversion c = 3.90625 and the position's output path), not T1.
    # Large buffer: a position p done at 100(p+1) + C5, a row k at 600(k+1) + C5.
    # b row 0 starts reading when a has 2 rows (1200 + C5), then b's reader never waits
    # (it reaches row r at 1200 + C5 + 600 r = the time a's row r+1 is done):
    # b row r done at 1800 + 2 C5 + 600 r;  latency = 4800 + 2 C5.
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 65536, "plane")
    assert rows_a == pytest.approx([600 * (k + 1) + C5 for k in range(6)])
    assert rows_b == pytest.approx([1800 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(4800 + 2 * C5)
    # 3-row buffer: a row 3 waits for b's 2nd row (2400 + 2 C5): b frees a row of a when
    # one of its output rows completes (its output path included), then rows alternate:
    #   a row 3 done 3000 + 3 C5; b row 2 3600 + 4 C5; a row 4 4200 + 5 C5;
    #   b row 3 4800 + 6 C5; a row 5 5400 + 7 C5; b row 4 6000 + 8 C5;
    #   b row 5 (reads back to back) 6600 + 8 C5
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 18, "plane")
    assert rows_a == pytest.approx([600 + C5, 1200 + C5, 1800 + C5, 3000 + 3 * C5,
                                    4200 + 5 * C5, 5400 + 7 * C5])
    assert rows_b == pytest.approx([1800 + 2 * C5, 2400 + 2 * C5, 3600 + 4 * C5,
                                    4800 + 6 * C5, 6000 + 8 * C5, 6600 + 8 * C5])
    assert lat == pytest.approx(6600 + 8 * C5)


def test_pipeline_one_row_buffer_for_1x1_consumer() -> None:
    # b is a 1x1 conv: its row r needs a's rows 0..r, and it frees a's row r when done.
    # Large buffer: a's 36 reads run back to back (a row r at 600(r+1) + C5); b's row r
    # starts when a's row r is there and its 6 reads take 600 ns: b row r done at
    # 600(r+2) + 2 C5; latency 4200 + 2 C5.
    # One-row buffer (6 bytes): a row r+1 waits until b finished row r; strict
    # alternation: a row r done 1200 r + 600 + (2r+1) C5, b row r 1200(r+1) + (2r+2) C5;
    # latency 7200 + 12 C5.
    g = _conv_chain(k_b=1)
    _, rows_b, lat = _run_rows(g, 65536, "group")
    assert rows_b == pytest.approx([600 * (r + 2) + 2 * C5 for r in range(6)])
    assert lat == pytest.approx(4200 + 2 * C5)
    rows_a, rows_b, lat = _run_rows(g, 6, "group")
    assert rows_a == pytest.approx([1200 * r + 600 + (2 * r + 1) * C5 for r in range(6)])
    assert rows_b == pytest.approx([1200 * (r + 1) + (2 * r + 2) * C5 for r in range(6)])
    assert lat == pytest.approx(7200 + 12 * C5)
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
    # Large buffer: a row k done 600(k+1) + C5; b row r needs min(6, r + 3) rows of a:
    # row 0 starts at a's 3rd row (1800 + C5), then b's reads never wait (row r starts
    # at 1800 + C5 + 600 r, a's row r+2 is there by then): b row r at
    # 2400 + 2 C5 + 600 r, latency 5400 + 2 C5.
    # 5-row buffer (30 bytes): a row 5 waits until b frees a row; b frees
    # rows_done(b) - 2, so after b's 3rd row (3600 + 2 C5): a row 5 at 4200 + 3 C5; b row
    # 3 (needs 6 rows) starts then: 4800 + 4 C5, rows 4, 5: 5400 + 4 C5, 6000 + 4 C5.
    _, rows_b, lat = _run_rows(_dilated_chain(), 65536, "group")
    assert rows_b == pytest.approx([2400 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(5400 + 2 * C5)
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
    # The analytic recurrence has no buffers: each replica streams a row's groups back to
    # back (6 x 100 ns), plus one conversion tail and the output path per row (C5), after
    # the producer rows it needs: a row k at 600 (k + 1) + C5, b row r at
    # max(its previous row, a's row r + 1) + 600 + C5: 1800 + 2 C5 + 600 r, whatever the
    # buffer (the engine takes 6600 + 8 C5 with the 3-row buffer). It is an estimate:
    # here it equals the engine with a large buffer.
    hw = tiny_hw(crossbars=1, adcs=1, imas=2, edram_bytes=18)
    ana = _sim(_conv_chain(), hw, 1, "analytic").latency_ns
    assert ana == pytest.approx(4800 + 2 * C5)


# ----------------------------------------------------------------------------- case 4
def _residual() -> nx.DiGraph:
    """x (1x6x6) -> a (3x3) -> b (3x3) -> add(a, b) -> out; all on tile 0.

    The add runs on the tiles of its last producer (b: tile 0, like a), so no NoC.
    Its row: 6 values, one add each (2 inputs), read from the eDRAM (2 x 6 = 12 B,
    12 / 38.4 = 0.3125 ns), added on the tile shift-and-add (6 / 4.8 = 1.25 ns) and
    written back (6 B, 0.15625 ns), one value per clock: the adds start a cycle after the
    read and end at max(0.8333 + 1.25, 0.3125 + 0.8333) = 2.0833, the write ends a cycle
    after them: 2.9167 ns per row. Joins have unbounded buffers.
    """
    nodes = {"x": _node("input", 0, (1, 6, 6), (1, 6, 6)), "a": _conv3(1, 1, 1, 6),
             "b": _conv3(2, 1, 1, 6), "add": _node("add", 3, (1, 6, 6), (1, 6, 6)),
             "out": _node("output", 4, (1, 6, 6), (1, 6, 6))}
    return _graph(nodes, [("x", "a"), ("a", "b"), ("a", "add"), ("b", "add"),
                          ("add", "out")])


ADD_ROW = 35 / 12   # 2.9167 ns (see _residual)


def test_residual_add_group() -> None:
    # b row r done 1800 + 2 C5 + 600 r (as in test_pipeline_large_buffer_group_rows), a's
    # rows earlier; add row r waits for b's row r and takes 2.9167 ns:
    # add row r done 1800 + 2 C5 + 600 r + 2.9167; latency 4800 + 2 C5 + 2.9167.
    sim, _ = _engine(_residual(), tiny_hw(crossbars=1, adcs=1, imas=2), 1, "group")
    rows_add = _row_times(sim, "add", 6)
    rows_b = _row_times(sim, "b", 6)
    res = sim.run()
    plan = sim.plans["add"]
    assert (plan.unit, plan.row_values, plan.row_in_bytes, plan.row_out_bytes) == \
        ("tile_shift_add", 6, 12, 6)
    assert rows_add == pytest.approx([1800 + 2 * C5 + 600 * r + ADD_ROW for r in range(6)])
    for r in range(6):
        assert rows_add[r] == pytest.approx(rows_b[r] + ADD_ROW)
    assert res.image_done_ns[0] == pytest.approx(4800 + 2 * C5 + ADD_ROW)


def test_residual_add_plane_and_analytic() -> None:
    # plane: b row r done 1800 + 2 C5 + 600 r (test_pipeline_plane_fidelity_rows):
    #   latency = 4800 + 2 C5 + 2.9167
    # analytic: b's rows as in test_analytic_ignores_buffers, the add row after b's: the same
    hw = tiny_hw(crossbars=1, adcs=1, imas=2)
    assert _sim(_residual(), hw, 1, "plane").latency_ns == pytest.approx(
        4800 + 2 * C5 + ADD_ROW)
    assert _sim(_residual(), hw, 1, "analytic").latency_ns == pytest.approx(
        4800 + 2 * C5 + ADD_ROW)


# ----------------------------------------------------------------------------- case 5
def _noc_net(compete: bool) -> nx.DiGraph:
    """Two producers on tiles 0 and 1, two consumers on tile 2 of a 1 x 3 router mesh.

    Hardware: 1 crossbar per IMA, 2 IMAs per tile, 3 tiles, 1 tile per router, mesh_cols 3:
    tile t = router t; dense placement in graph order:
      a: linear 256 -> 31: 2 row blocks x 1 crossbar (125 columns)  -> slots 0, 1 = tile 0
      s: linear 128 -> 62: 1 row block x 2 crossbars (125 columns)  -> slots 2, 3 = tile 1
      b: linear 31 -> 16:  1 crossbar (65 columns)                   -> slot 4     = tile 2
      c: linear 62 -> 16:  1 crossbar (65 columns)                   -> slot 5     = tile 2
    a -> b routes inj(0), link (0,1), link (1,2), ej(2): two hops; s -> c inj(1),
    link (1,2), ej(2): one hop, sharing link (1,2) and ej(2) with a -> b.
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


# a and s: one plane, every crossbar (125 columns) on its own ADC: T(1) = 197.65625.
TA = 100 + 125 / 1.28
# a's position: 31 partial-sum adds (6.4583 ns), the output register a cycle later (ends
# max(0.8333 + 6.4583, 6.4583 + 0.8333) = 7.2917), the write a cycle after: 8.125 ns.
OA = 8.125
# s's position (one row block): 62 / 4.8 = 12.9167 in the output register + a cycle = 13.75
OS = 13.75
# a's packet: 31 bytes = 248 bits = 8 flits, held 8 / 1.2 = 20/3 ns per port or link
FA = 8 / NOC_GHZ
# s's packet: 62 bytes = 496 bits = 16 flits: 40/3 ns
FS = 16 / NOC_GHZ
# b and c: 65 columns, T(1) = 100 + 50.78125, then 16 outputs: 25/6
TB = 150.78125 + OUT16


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_noc_two_hops_cut_through(fidelity: str) -> None:
    assert (TA, OA, FA, FS) == pytest.approx((197.65625, out_path(31, merges=31), 20 / 3,
                                              40 / 3))
    assert OS == pytest.approx(out_path(62))
    sim, m = _engine(_noc_net(False), _noc_hw(), 1, fidelity)
    assert m.layers["a"].tiles == [0] and m.layers["s"].tiles == [1]
    assert m.layers["b"].tiles == [2]
    res = sim.run()
    # a's row leaves at TA + OA: inj(0) [0, FA], link (0,1) [HOP, HOP + FA], link (1,2)
    # [2 HOP, 2 HOP + FA], ej(2) [3 HOP, 3 HOP + FA] (relative), then the 31 bytes are
    # written into tile 2's eDRAM (31 / 38.4 ns): arrival = TA + OA + 3 HOP + FA + 0.807
    arrive = TA + OA + 3 * HOP + FA + 31 / BANK
    assert arrive == pytest.approx(223.2552083)   # (store-and-forward: 197.66 + 18.33)
    assert sim.fanouts[("a", "b")].of(2)[0].finished_at == pytest.approx(arrive)
    assert res.link_busy_ns == pytest.approx({("inj", 0): FA, ("link", 0, 1): FA,
                                              ("link", 1, 2): FA, ("ej", 2): FA})
    assert res.image_done_ns[0] == pytest.approx(arrive + TB)   # 378.2031...
    # 8 flits x 3 routers = 24 flit-hops; traffic by kind: one activation packet
    sim.ledger.flush()
    assert sim.ledger.event_counts()["router_flit_hop"] == pytest.approx(24)
    assert res.noc_traffic["activations"] == {"packets": 1, "bytes": 31.0, "flits": 8,
                                              "flit_hops": 24}
    assert res.noc_traffic["psum"]["packets"] == 0


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_noc_shared_link_waits(fidelity: str) -> None:
    sim, m = _engine(_noc_net(True), _noc_hw(), 1, fidelity)
    assert m.layers["b"].tiles == [2] and m.layers["c"].tiles == [2]
    res = sim.run()
    # a and s finish their MVMs together at TA; times below are relative to TA.
    # a's row leaves first (OA = 8.125 < OS = 13.75): link (1,2) [8.125 + 2 HOP,
    # 8.125 + 2 HOP + FA] = [14.7917, 21.4583], ej(2) [18.125, 24.7917], then its write.
    # s's row leaves at 13.75: inj(1) [13.75, 27.0833]; link (1,2) is held by a's packet
    # until 21.4583 (alone it would start at 17.0833), so s's head waits: [21.4583,
    # max(21.4583 + FS, 27.0833 + HOP) = 34.7917]; ej(2) from 24.7917 (free again) to
    # max(24.7917 + FS, 34.7917 + HOP) = 38.125; its 62 bytes written by 38.125 + 1.6146.
    arr_a = TA + OA + 3 * HOP + FA + 31 / BANK
    arr_s = TA + (OA + 2 * HOP + FA) + FS + HOP + 62 / BANK
    assert arr_s - TA == pytest.approx(39.7395833)
    alone_s = TA + OS + 2 * HOP + FS + 62 / BANK      # 35.3646 after TA
    assert arr_s - alone_s == pytest.approx(4.375)
    assert sim.fanouts[("a", "b")].of(2)[0].finished_at == pytest.approx(arr_a)
    assert sim.fanouts[("s", "c")].of(2)[0].finished_at == pytest.approx(arr_s)
    busy = res.link_busy_ns
    assert busy[("link", 1, 2)] == pytest.approx(FA + FS)
    assert busy[("ej", 2)] == pytest.approx(FA + FS)
    # b done arr_a + TB; c done arr_s + TB = TA + 39.7396 + 154.9479 (the output)
    assert res.image_done_ns[0] == pytest.approx(arr_s + TB)
    sim.ledger.flush()
    # 24 (a -> b) + 16 flits x 2 routers (s -> c) = 56 flit-hops
    assert sim.ledger.event_counts()["router_flit_hop"] == pytest.approx(24 + 32)


# ----------------------------------------------------------------------------- case 6
@pytest.fixture(scope="module")
def digits_runs() -> dict[str, PipelineResult]:
    from workloads.graph import trace_model
    from workloads.trained.digits import load_digits_model

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
        assert other.noc_traffic == g.noc_traffic
    # isaac8: 8 ADCs for 8 crossbars per IMA -> no ADC sharing. The two event fidelities
    # differ only in when shared units are asked for: plane fidelity when a position's
    # last lane converts, group fidelity when its replica computes it (the loads of a
    # replica's lanes together); the latencies agree within a fraction of a percent.
    for i in range(2):
        assert p.timing.image_done_ns[i] == pytest.approx(g.timing.image_done_ns[i],
                                                          rel=0.01)
    assert g.counts()["groups"] > 0 and g.counts()["bit_planes"] > 0
    # the bound is the same for all fidelities (the same work per resource)
    assert a.throughput_bound_ips == pytest.approx(g.throughput_bound_ips)
    assert p.throughput_bound_ips == pytest.approx(g.throughput_bound_ips)
