"""Timing of the event engine (simulator/engine/chip.py) on tiny hand-built cases.

Every expected number is derived by hand in the comments from docs/model.md:

* one lane MVM with b bit planes: T(b) = r + c + (b - 1) * max(r, c), T(0) = 0,
  r = crossbar.read_ns = 100 ns, c = the longest conversion job of the lane: a crossbar's
  active columns / 1.28 GS/s on its own ADC (one ADC per crossbar unless shared);
* a weight layer with 8-bit weights on 2-bit cells uses 4 columns per output plus
  one unit column per crossbar, at most (128 - 1) // 4 = 31 outputs per crossbar;
* the output path of a position on isaac8: its partial sums cross the tile bus from the
  IMA output registers (8 + 8 + 7 = 23 bits each, 384 wires x 1.2 GHz = 57.6 B/ns), then
  its partial-sum adds on the tile shift-and-add (4 units x 1.2 GHz = 4.8 values/ns), the
  activation (8 x 1.2 = 9.6/ns), the output register (1 x 4 values/cycle x 1.2 = 4.8/ns)
  and the eDRAM write (256 bits x 1.2 GHz = 38.4 B/ns), one value per clock through each:
  cut-through, each stage entered one cycle (1/1.2 ns) after the previous one and ending
  no earlier than the previous stage's end plus a cycle (:func:`out_path`);
* NoC: packets of ceil(bits / 32) flits; ports and links hold a packet for flits / 1.2
  GHz; the head advances one hop per (3 router cycles + 1 link cycle) / 1.2 GHz =
  10/3 ns (virtual cut-through); the payload is read from the source tile's eDRAM first
  (the injection starts a cycle after the read and cannot end before the read ends plus
  a cycle) and written into the destination's eDRAM;
* the network input: one input link (25.6 GB/s / 4 links = 6.4 B/ns) brings it in row by
  row; each row then leaves the input port at router 0 as a packet (the port holds it for
  its flits, like any port) to the eDRAM of every tile that reads it (:func:`input_at`);
* dynamic policies: ReDy's statistics unit decides 10 cycles (8.333 ns) after a group's
  last byte, the lossless policies' detect unit 2 cycles (configs/hardware/isaac.yaml).

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
PSUM = 23 / 8    # bytes of a partial sum: 8 (inputs) + 8 (weights) + log2(128) = 23 bits
LINK = 6.4       # input link: 25.6 GB/s over 4 links, 1 of them brings the input in
UNIT = 10 / 1.2  # ReDy's statistics unit: decision 10 cycles after a group's last byte


def out_path(values: int, merges: int = 0, act: bool = False, psums: int | None = None,
             ) -> float:
    """Uncontended output path of one position of *values* 8-bit outputs (docstring).

    Stages in order: the partial sums over the tile bus (*psums*, default *values*, x 23
    bits / 57.6 B/ns), adds (merges / 4.8 ns), activation (values / 9.6), output register
    (values / 4.8), eDRAM write (values / 38.4). Stage k starts a cycle after stage k-1
    started and ends at max(start + duration, previous end + a cycle).
    """
    psums = values if psums is None else psums
    durations = [psums * PSUM / BUS] + ([merges / SA] if merges else [])
    durations += ([values / ACT] if act else []) + [values / OREG, values / BANK]
    s, e = 0.0, durations[0]
    for d in durations[1:]:
        s += CYC
        e = max(s + d, e + CYC)
    return e


def input_at(nbytes: float, hops: int = 0) -> float:
    """When an input row of *nbytes* is in the eDRAM of a tile *hops* router links from
    router 0, the link and the port idle: the link (nbytes / 6.4), the port, the links and
    the tile's ejection port (hops + 2 stages of ceil(8 nbytes / 32) flits / 1.2 GHz each,
    entered one hop apart: (hops + 1) hops + one serialization), the eDRAM write."""
    flits = math.ceil(8 * nbytes / 32)
    return nbytes / LINK + (hops + 1) * HOP + flits / NOC_GHZ + nbytes / BANK


# one 16-output position: its 16 partial sums cross the bus in 16 x 23 / 8 = 46 B / 57.6 =
# 0.7986 ns, the output register a cycle later for 16 / 4.8 = 3.3333 ns (ends 4.1667), the
# write a cycle after that (its 16 / 38.4 = 0.4167 ns fit inside): 5.0 ns
OUT16 = 5.0
# the input vector x of 128 bytes in tile 0's eDRAM (router 0: no link): 128 / 6.4 = 20 ns
# on the link, 32 flits = 26.667 ns through the port and tile 0's ejection port one hop
# apart (+ 3.333), the write 128 / 38.4 = 3.333: 53.333 ns
IN128 = 160 / 3


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
    # the input is in tile 0's eDRAM at 53.333 ns, then T(b), then the 16 outputs' path
    expect = 160 / 3 + 100 + 50.78125 + (b - 1) * 100 + 5.0
    assert c == 50.78125 and out_path(16) == pytest.approx(OUT16)
    assert input_at(128) == pytest.approx(IN128)
    if fidelity != "analytic":
        # the engine's lane is busy T(b) = r + c + (b - 1) r (c = 65 / 1.28 = 50.78125 ns)
        # and its tile output register 16 values / 4.8 per ns = 10/3 ns
        assert res.timing.lane_busy_ns == {("fc", 0, 0): pytest.approx(
            100 + 50.78125 + (b - 1) * 100, abs=1e-9)}
        assert res.timing.unit_busy_ns[("tile output register", "tile 0")] == \
            pytest.approx(10 / 3)
    assert res.latency_ns == pytest.approx(expect, abs=1e-9)
    assert res.latency_ns == pytest.approx(IN128 + T(b, c) + OUT16, abs=1e-9)
    # counts: b planes of one crossbar: b reads, 128*b DAC drives, 65*b conversions
    assert res.counts() == {"groups": 1, "bit_planes": b, "crossbar_reads": b,
                            "adc_conversions": 65 * b, "dac_drives": 128 * b}


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_single_mvm_dynamic_policy_adds_select_latency(fidelity: str) -> None:
    # ReDy's statistics unit decides 10 cycles = 8.333 ns after the group's last byte: the
    # lane has nothing to stream meanwhile, so it is exposed:
    # 53.333 (input) + 8.333 + 100 + 50.78125 + 7*100 + 5.0
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 8, fidelity, policy="redy")
    assert res.latency_ns == pytest.approx(IN128 + UNIT + 850.78125 + OUT16, abs=1e-9)
    # msb-trim needs only the detect unit: 2 cycles = 1.667 ns
    res = _sim(_one_linear(), hw, 8, fidelity, policy="msb-trim")
    assert res.latency_ns == pytest.approx(IN128 + 2 / 1.2 + 850.78125 + OUT16, abs=1e-9)


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_selection_overlaps_streaming(fidelity: str) -> None:
    # 3 images through the single lane, redy. Image 0's group is in tile 0 at 53.333 and
    # decided 8.333 later (exposed); images 1 and 2 follow on the link (20 ns each) and the
    # port (26.667 ns each, busy with image 0 until 46.667): in the eDRAM at 80 and 106.667,
    # decided by 115 at the latest, while group 0 streams: hidden (the unit is pipelined at
    # bus rate and never queues). Each image then streams 800 ns behind the previous one:
    # done_i = 61.667 + 800 (i + 1) + c + 5.0.
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 8, fidelity, images=3, policy="redy")
    assert res.timing.image_done_ns == pytest.approx(
        [IN128 + UNIT + 800 * (i + 1) + 50.78125 + OUT16 for i in range(3)])


@pytest.mark.parametrize("policy", ["static", "redy"])
@pytest.mark.parametrize("fidelity", ["group", "plane", "analytic"])
def test_single_mvm_zero_planes_costs_no_time(fidelity: str, policy: str) -> None:
    # T(0) = 0: no plane streamed; a dynamic policy still spends its unit's 8.333 ns
    # deciding to skip the group (static: 0 ns). The position is still written: the
    # 16 (zero) partial sums and outputs take the output path, 5.0 ns, after the input.
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 0, fidelity, policy=policy)
    assert res.latency_ns == pytest.approx(IN128 + (UNIT if policy == "redy" else 0.0)
                                           + OUT16)
    # the skipped group is still counted (eDRAM read of 128 bytes), with no plane
    assert res.counts()["groups"] == 1 and res.counts()["bit_planes"] == 0
    # eDRAM bytes: the input written (128), the group read (128), the output written (16)
    assert res.ledger.event_counts()["edram_byte"] == pytest.approx(128 + 128 + 16)


def test_load_single_group() -> None:
    # The linear layer's group: 128 inputs x 1 byte, in tile 0's eDRAM at 53.333 ns. eDRAM
    # bank: 256 bits = 32 B per 1.2 GHz cycle = 38.4 B/ns -> 3.3333 ns; bus: 384 wires =
    # 48 B/cycle = 57.6 B/ns -> 2.2222 ns; the first read starts after both:
    # latency = 53.333 + 5.5556 + T(8) + 5.0
    load = 128 / BANK + 128 / BUS
    hw = tiny_hw(crossbars=1, adcs=1)
    for fid in ("group", "plane"):
        res = _sim(_one_linear(), hw, 8, fid, load_timing=True)
        assert res.latency_ns == pytest.approx(IN128 + load + 850.78125 + OUT16), fid


def test_load_is_prefetched_into_the_second_register_slot() -> None:
    # 8-bit inputs: the 2 KB input register holds
    # ima.input_register_bytes // (crossbars x 128 rows x 1 B) = 2048 // 128 = 16 slots
    # on this 1-crossbar IMA, so every later group is loaded while the previous streams
    # (images 1, 2 are in the eDRAM at 80 and 106.667 ns, see
    # test_selection_overlaps_streaming). 3 images back to back: only the first load is
    # exposed:  done_i = 53.333 + load + 800 (i + 1) + c + 5.0,  c = 65 / 1.28 = 50.78125
    load = 128 / BANK + 128 / BUS
    hw = tiny_hw(crossbars=1, adcs=1)
    for fid in ("group", "plane"):
        res = _sim(_one_linear(), hw, 8, fid, images=3, load_timing=True)
        assert res.timing.image_done_ns == pytest.approx(
            [IN128 + load + 800 * (i + 1) + 50.78125 + OUT16 for i in range(3)]), fid


# two row blocks of 16 outputs: 32 partial sums over the bus (92 B / 57.6 = 1.5972 ns), 16
# partial-sum adds a cycle later (ends max(0.8333 + 3.3333, 1.5972 + 0.8333) = 4.1667),
# the output register a cycle later (ends max(1.6667 + 3.3333, 4.1667 + 0.8333) = 5.0) and
# the write a cycle after that: 5.8333 ns
OUT16_2RB = 35 / 6
# the input vector of 256 bytes in tile 0's eDRAM: 40 (link) + 3.333 + 53.333 (64 flits)
# + 6.667 (write) = 103.333 ns
IN256 = 310 / 3


def test_load_two_lanes_share_the_tile_bus() -> None:
    # Linear 256 -> 16: two row blocks (lanes) of 128 rows in one IMA of one tile. The
    # input is in the eDRAM at 103.333; both loads are requested then: bank reads in
    # parallel (2 banks, 3.3333 ns each), then the bus serially: lane 1 in 3.3333 + 2.2222
    # later, lane 2 2.2222 after that. Each lane then takes T(8) = 100 + c + 700 with its
    # own ADC (c = 65/1.28): the position's lanes are done with the later one at
    # 103.333 + 7.7778 + 850.78125, merged in 5.8333 ns.
    hw = tiny_hw(crossbars=2, adcs=2)
    assert out_path(16, merges=16, psums=32) == pytest.approx(OUT16_2RB)
    assert input_at(256) == pytest.approx(IN256)
    for fid in ("group", "plane"):
        res = _sim(_two_row_blocks(), hw, 8, fid, load_timing=True)
        assert res.latency_ns == pytest.approx(
            IN256 + 128 / BANK + 2 * 128 / BUS + 850.78125 + OUT16_2RB), fid


def test_streamed_images_group_vs_plane() -> None:
    # 4 images through the single linear lane, 8 planes each, one ADC per crossbar; the
    # inputs are in the eDRAM long before the lane needs them (80, 106.667, 133.333).
    # plane: the reader streams 32 reads back to back from 53.333 (c < r, so the S+H is
    #   always free by the next read's end); image i's last read ends 53.333 + 800 (i + 1),
    #   its conversion c = 50.78125 later and its output path 5.0 after that.
    # group: the next group's first read starts when the S+H is free (previous group's
    #   last plane entered conversion), so groups overlap exactly as the planes do.
    # Measured throughput: the lane is the busiest unit (800 ns per image). Image 0 fills
    # the pipeline: the window starts at image 1; the lane finishes image 3 at
    # 53.333 + 3200 + c, after image 2 is done (53.333 + 2400 + c + 5) but before image 3:
    # the window is images 1..2, 800 ns apart in the completions and in the lane: 1.25 M/s.
    hw = tiny_hw(crossbars=1, adcs=1)
    g = _sim(_one_linear(), hw, 8, "group", images=4)
    p = _sim(_one_linear(), hw, 8, "plane", images=4)
    expect = [IN128 + 800 * (i + 1) + 50.78125 + OUT16 for i in range(4)]
    assert g.timing.image_done_ns == pytest.approx(expect)
    assert p.timing.image_done_ns == pytest.approx(expect)
    for res in (g, p):
        assert res.throughput_measured_ips == pytest.approx(1e9 / 800)
        assert res.throughput_ips == res.throughput_measured_ips
        assert res.warmup_images == 1
        assert "measured in steady state" in res.throughput_basis
        assert "images 1..2" in res.throughput_basis
    # one image: no measured figure; the bound is the busiest unit's work per image: the
    # lane's 8 planes x 100 ns (the input link's 20 ns and the output register's 3.3 ns
    # are far less)
    one = _sim(_one_linear(), hw, 8, "group")
    assert one.throughput_measured_ips is None
    assert one.throughput_ips == pytest.approx(1e9 / 800)
    assert one.throughput_bound_ips == pytest.approx(1e9 / 800)
    assert one.bounding_unit["unit"] == "crossbar lane"
    assert one.bounding_unit["busy_ns_per_image"] == pytest.approx(800)
    assert one.throughput_basis.startswith("bound")
    # three images: image 2 is done after the lane finished the last image (the drain),
    # so the window 1..1 is empty: the bound, and how many images to stream
    three = _sim(_one_linear(), hw, 8, "group", images=3)
    assert three.throughput_measured_ips is None
    assert three.throughput_ips == pytest.approx(1e9 / 800)
    assert "steady state not reached" in three.throughput_basis


def test_conversion_slower_than_read() -> None:
    """With c > r the ADC is the bottleneck: T(b) = r + b*c.

    A 2-crossbar lane in a 1-ADC IMA: linear 128 -> 62 = 2 column blocks of
    31*4+1 = 125 columns, both crossbars in one IMA with one ADC, which converts the two
    crossbars' columns one after the other: c = 2 x 125 / 1.28 = 195.3125 ns > r and
    T(3) = 100 + 3 * 195.3125 = 685.9375, after the input (53.333). The 62 outputs' path:
    their partial sums over the bus (62 x 23 / 8 = 178.25 B / 57.6 = 3.0946 ns), 62 / 4.8
    = 12.9167 ns in the output register a cycle later (ends 13.75), the write a cycle
    after: 14.5833 ns.
    """
    hw = tiny_hw(crossbars=2, adcs=1)
    g = _graph({"x": _node("input", 0, (128,), (128,)), "fc": _lin(1, 128, 62),
                "out": _node("output", 2, (62,), (62,))}, [("x", "fc"), ("fc", "out")])
    assert out_path(62) == pytest.approx(14.5833333)
    for fid in ("group", "plane", "analytic"):
        assert _sim(g, hw, 3, fid).latency_ns == pytest.approx(
            IN128 + 685.9375 + 14.5833333, abs=1e-6), fid


def test_lane_waits_for_its_longest_crossbar() -> None:
    """One ADC per crossbar: a lane's plane is converted when its fullest crossbar is.

    Linear 128 -> 32: column blocks of 31 weights (125 columns) and 1 weight (4 + 1 = 5
    columns) in one IMA with two ADCs: c = max(125, 5) / 1.28 = 97.65625 ns,
    T(2) = 100 + 97.65625 + 100 = 297.65625 after the input (53.333), then 32 outputs:
    92 B of partial sums (1.5972 ns), the output register a cycle later (32 / 4.8 =
    6.6667: ends 7.5), the write a cycle after: 8.3333 ns.
    """
    hw = tiny_hw(crossbars=2, adcs=2)
    g = _graph({"x": _node("input", 0, (128,), (128,)), "fc": _lin(1, 128, 32),
                "out": _node("output", 2, (32,), (32,))}, [("x", "fc"), ("fc", "out")])
    assert out_path(32) == pytest.approx(25 / 3)
    for fid in ("group", "plane"):
        assert _sim(g, hw, 2, fid).latency_ns == pytest.approx(
            IN128 + 297.65625 + 25 / 3), fid


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
    # all after the input (103.333); then the two row blocks' 16 outputs are merged:
    # 5.8333 ns.
    hw = tiny_hw(crossbars=2, adcs=1)
    res = _sim(_two_row_blocks(), hw, b, fidelity)
    assert res.latency_ns == pytest.approx(IN256 + 100 + 2 * b * 50.78125 + OUT16_2RB,
                                           abs=1e-9)
    assert res.latency_ns - OUT16_2RB - IN256 == pytest.approx(
        {1: 201.5625, 2: 303.125, 8: 912.5}[b], abs=1e-9)
    # lane occupancy (first read to last conversion of the group): L0 wins the ADC at
    # t = 100, so its last conversion is the (2b-1)-th: 100 + (2b-1) c; L1's is the
    # 2b-th: 100 + 2 b c
    busy = res.timing.lane_busy_ns
    assert busy[("fc", 0, 0)] == pytest.approx(100 + (2 * b - 1) * 50.78125)
    assert busy[("fc", 0, 1)] == pytest.approx(100 + 2 * b * 50.78125)


def test_adc_sharing_without_contention_and_analytic() -> None:
    # Two ADCs for the two crossbars: no sharing, T(8) = 850.78125 in both fidelities,
    # after the input (103.333); the analytic estimate ignores ADC contention: T(8) even
    # with one ADC.
    for fid in ("group", "plane"):
        assert _sim(_two_row_blocks(), tiny_hw(crossbars=2, adcs=2), 8, fid).latency_ns \
            == pytest.approx(IN256 + 850.78125 + OUT16_2RB, abs=1e-9), fid
    assert _sim(_two_row_blocks(), tiny_hw(crossbars=2, adcs=1), 8, "analytic").latency_ns \
        == pytest.approx(IN256 + 850.78125 + OUT16_2RB, abs=1e-9)


def test_adc_sharing_streamed_group_equals_plane() -> None:
    # 3 images through the two lanes sharing one ADC. Per image the ADC has 16 jobs of
    # c = 50.78125 = 812.5 ns of work > the lanes' 8 x 100 ns of reads, so it is the
    # bottleneck and never idles from 100 ns after the input (103.333; images 1, 2 are in
    # the eDRAM by 156.667 and 210: long before): image i's last conversion ends at
    # 103.333 + 100 + 812.5 (i + 1) in plane fidelity (FIFO jobs); group fidelity converts
    # the lanes' planes in the order they are ready on a work-conserving pool, so the
    # same (within 3 % before its arbiter converted in time order across requests).
    hw = tiny_hw(crossbars=2, adcs=1)
    p = _sim(_two_row_blocks(), hw, 8, "plane", images=3)
    g = _sim(_two_row_blocks(), hw, 8, "group", images=3)
    expect = [IN256 + 100 + 812.5 * (i + 1) + OUT16_2RB for i in range(3)]
    assert p.timing.image_done_ns == pytest.approx(expect)
    assert g.timing.image_done_ns == pytest.approx(expect)
    # measured: the pool is the busiest unit, seen through its layer fc, which finishes
    # each image when it completes; the window is images 1..2 (image 0 fills, image 2 is
    # the last done by the time fc finishes the last image): one 812.5 ns interval
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

    The input row (128 channels x 12 columns = 1536 B) is in the eDRAM at 240 (link) +
    3.333 + 320 (384 flits) + 40 (write) = 603.333 ns. The lane then streams a position
    every r = 100 ns (position k converted at 603.333 + T(1) + 100 k, T(1) = 197.65625);
    its 124 partial sums cross the bus (6.19 ns), but the output register, entered a cycle
    later, takes 124 / 1.2 = 103.3333 ns per position, so positions queue for it: position
    k leaves it at 603.333 + 197.65625 + 0.8333 + 103.3333 (k + 1), its write ends a cycle
    later (124 B / 38.4 = 3.2 ns inside that). The register holds 3072 B = 24 positions of
    124 B, far more than the ~3 ns the queue grows per position needs here, so the lane
    never stalls. With W = 12 positions per image and 3 images streamed back to back (the
    inputs of images 1, 2 are in by ~923 and ~1243 ns), image i ends at
    603.333 + 197.65625 + 2 x 0.8333 + 103.3333 x 12 (i + 1): the measured interval is
    1240 ns, the register's work per image, which is also the bound (the lane's is 1200
    ns). The window: the register's layer c finishes each image when it completes, so
    images 1..2.
    """
    w = 12
    hw = tiny_hw(crossbars=4, adcs=4).with_changes(
        {"components.tile.tile_output_register.values_per_cycle": 1})
    res = _sim(_wide_1x1(w), hw, 1, fidelity, images=3)
    reg = 124 / 1.2
    inp = input_at(1536)
    assert inp == pytest.approx(603.3333333)
    expect = [inp + 197.65625 + 2 * CYC + reg * w * (i + 1) for i in range(3)]
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
    # the stock isaac8 register (4 values per cycle) is 4x faster: the lane bounds it.
    # The lane is watched: it finishes image 3 (of 4) after image 2 is done, so the window
    # is images 1..2, 1200 ns apart in the completions and in the lane
    fast = _sim(_wide_1x1(w), tiny_hw(crossbars=4, adcs=4), 1, fidelity, images=4)
    assert fast.bounding_unit["unit"] == "crossbar lane"
    assert fast.throughput_measured_ips == pytest.approx(1e9 / (100 * w))


# ----------------------------------------------------------------------------- case 3
T1 = 100 + 5 / 1.28   # 103.90625: 1 -> 1 channel conv = 1 output * 4 + 1 unit = 5 columns
# c = 5 / 1.28 = 3.90625 ns of conversion after the last read, then the position's one
# output: its partial sum over the bus (2.875 B, 0.05 ns), 1 / 4.8 = 0.2083 ns in the
# output register a cycle later (ends 1.0417), the write a cycle after that: out_path(1) =
# 1.875 ns. Every position completes C5 = c + 1.875 = 5.78125 ns after its last read.
C5 = 5 / 1.28 + 1.875
# The input x (1 x 6 x 6, rows of 6 B) on tile 0: row k is on the link in [0.9375 k,
# 0.9375 (k + 1)], then a 2-flit packet (1.6667 ns on the port and on tile 0's ejection
# port, one hop apart) and the write (6 / 38.4 = 0.15625). Row 0: port [0.9375, 2.6042],
# ejection [4.2708, 5.9375], written by 6.0938. Row 1 waits for the port: [2.6042,
# 4.2708], ejection [5.9375, 7.6042], written by D = 7.7604: a's first row needs rows 0
# and 1 of x, so a starts at D; later rows of x follow 1.6667 ns apart, long before a
# needs them (unless its input buffer is full, below).
D = 6 / LINK + 2 * (2 / NOC_GHZ) + HOP + 6 / BANK
# a row of x that the port starts when the link and the port are idle: in the eDRAM
# 0.9375 + 1.6667 + 3.3333 + 0.15625 = 6.0938 ns later (input_at)
IN_ROW = input_at(6)


def _conv_chain(k_b: int = 3) -> nx.DiGraph:
    """x (1x6x6) -> a (3x3 conv 1->1, pad 1) -> b (k_b x k_b conv 1->1, pad k_b//2) -> out.

    Both convs: 9 (or 1) rows, 5 columns = one crossbar; with ima.crossbars = 1 and
    tile.imas = 2 they sit in IMAs 0 and 1 of tile 0 (no NoC transfer, no shared ADC).
    One plane per group: every MVM takes T(1) = 100 + 5/1.28 = 103.90625 ns (= T1), and
    back-to-back groups 100 ns each; a position completes C5 after its last read.
    One row of x or a = 1 channel * 6 columns * 1 byte = 6 bytes. Tile 0's eDRAM holds
    two bounded buffers: a's of x rows (a 3-row window: 18 B) and b's of a rows (its
    window: 18 B for a 3x3 b, 6 B for a 1x1 b); the eDRAM is divided between them in
    proportion to those needs. Everything but the input is on tile 0: no NoC transfer.
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
    # values of test_pipeline_plane_fidelity_rows hold: a row k at D + 600(k+1) + C5,
    # b row r at D + 1800 + 2 C5 + 600 r, latency D + 4800 + 2 C5 = 4819.3229 ns.
    assert D == pytest.approx(7.7604167)
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 65536, "group")
    assert rows_a == pytest.approx([D + 600 * (k + 1) + C5 for k in range(6)])
    assert rows_b == pytest.approx([D + 1800 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(D + 4800 + 2 * C5) and lat == pytest.approx(4819.3229167)


# 36-byte eDRAM: 18 B (3 rows) for each buffer, exactly the windows. Write Ca_r, Cb_r for
# the completion of a's, b's row r, I = IN_ROW. A row of a (or b) streams its 6 groups back
# to back and completes 600 + C5 after its first read; it starts when its input rows are
# in the eDRAM and its consumer has room:
#  - the port brings x row k (k >= 3) once a has freed row k - 3: a frees the rows below
#    its next window, rows done - 1, so after a has done k - 1 rows; it is in I later;
#  - a row r needs x rows up to r + 1 and room for row r: b has done r - 1 rows (r >= 3);
#  - b row r needs a rows up to r + 1 (all 6 for r = 5).
#   a0 = D, Ca0 = D + 600 + C5;  a1 = D + 600, Ca1 = D + 1200 + C5
#   b0 = Ca1, Cb0 = D + 1800 + 2 C5
#   a2 waits for x row 3 (in at Ca1 + I): Ca2 = D + 1800 + 2 C5 + I
#   b1 waits for a2: Cb1 = D + 2400 + 3 C5 + I
#   a3 waits for room (b done 2 rows, Cb1; x row 4 is in at Ca2 + I, earlier):
#     Ca3 = D + 3000 + 4 C5 + I;  b2 = Ca3: Cb2 = D + 3600 + 5 C5 + I
#   a4 waits for room (Cb2; x row 5 in at Ca3 + I): Ca4 = D + 4200 + 6 C5 + I
#   b3 = Ca4: Cb3 = D + 4800 + 7 C5 + I;  a5 waits for room (Cb3): Ca5 = D + 5400 + 8 C5 + I
#   b4 = Ca5: Cb4 = D + 6000 + 9 C5 + I;  b5 streams on: Cb5 = D + 6600 + 9 C5 + I
THREE_ROW_A = [D + 600 + C5, D + 1200 + C5, D + 1800 + 2 * C5 + IN_ROW,
               D + 3000 + 4 * C5 + IN_ROW, D + 4200 + 6 * C5 + IN_ROW,
               D + 5400 + 8 * C5 + IN_ROW]
THREE_ROW_B = [D + 1800 + 2 * C5, D + 2400 + 3 * C5 + IN_ROW, D + 3600 + 5 * C5 + IN_ROW,
               D + 4800 + 7 * C5 + IN_ROW, D + 6000 + 9 * C5 + IN_ROW,
               D + 6600 + 9 * C5 + IN_ROW]


def test_pipeline_three_row_buffer_group_stalls() -> None:
    # the hand values above (the plane test below has the same)
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 36, "group")
    assert rows_a == pytest.approx(THREE_ROW_A)
    assert rows_b == pytest.approx(THREE_ROW_B)
    assert lat == pytest.approx(D + 6600 + 9 * C5 + IN_ROW)
    big = _sim(_conv_chain(), tiny_hw(imas=2), 1, "group").latency_ns
    assert lat > big == pytest.approx(D + 4800 + 2 * C5)


def test_pipeline_plane_fidelity_rows() -> None:
    # Plane fidelity: a lane's reader starts the next group's read while the previous
    # group converts, so back-to-back MVMs cost 100 ns each (+ C5 once at the end of a
    # burst: the conversion c = 3.90625 and the position's output path), not T1.
    # Large buffer: a position p done at D + 100(p+1) + C5, a row k at D + 600(k+1) + C5.
    # b row 0 starts reading when a has 2 rows (D + 1200 + C5), then b's reader never waits
    # (it reaches row r at D + 1200 + C5 + 600 r = the time a's row r+1 is done):
    # b row r done at D + 1800 + 2 C5 + 600 r;  latency = D + 4800 + 2 C5.
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 65536, "plane")
    assert rows_a == pytest.approx([D + 600 * (k + 1) + C5 for k in range(6)])
    assert rows_b == pytest.approx([D + 1800 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(D + 4800 + 2 * C5)
    # 3-row buffers (36-byte eDRAM): the hand values above test_pipeline_three_row_buffer_
    # group_stalls: a row 2 waits for x row 3, then a waits for room in b's buffer and
    # the rows alternate
    rows_a, rows_b, lat = _run_rows(_conv_chain(), 36, "plane")
    assert rows_a == pytest.approx(THREE_ROW_A)
    assert rows_b == pytest.approx(THREE_ROW_B)
    assert lat == pytest.approx(D + 6600 + 9 * C5 + IN_ROW)


def test_pipeline_one_row_buffer_for_1x1_consumer() -> None:
    # b is a 1x1 conv: its row r needs a's rows 0..r, and it frees a's row r when done.
    # Large buffer: a's 36 reads run back to back (a row r at D + 600(r+1) + C5); b's row
    # r starts when a's row r is there and its 6 reads take 600 ns: b row r done at
    # D + 600(r+2) + 2 C5; latency D + 4200 + 2 C5.
    # 24-byte eDRAM: 18 B (3 rows of x) for a, 6 B (one row of a) for b. One-row buffer:
    # a row r+1 waits until b finished row r; strict alternation: a row r done
    # D + 1200 r + 600 + (2r+1) C5, b row r D + 1200(r+1) + (2r+2) C5. a's own input buffer
    # never holds it up: a row r + 1 needs x row r + 2, which the port brings in once a has
    # done rows 0..r (at Ca_r + I), but a row r + 1 waits for room until b's row r is done
    # (Cb_r = Ca_r + 600 + C5, later). Latency D + 7200 + 12 C5.
    g = _conv_chain(k_b=1)
    _, rows_b, lat = _run_rows(g, 65536, "group")
    assert rows_b == pytest.approx([D + 600 * (r + 2) + 2 * C5 for r in range(6)])
    assert lat == pytest.approx(D + 4200 + 2 * C5)
    rows_a, rows_b, lat = _run_rows(g, 24, "group")
    assert rows_a == pytest.approx([D + 1200 * r + 600 + (2 * r + 1) * C5 for r in range(6)])
    assert rows_b == pytest.approx([D + 1200 * (r + 1) + (2 * r + 2) * C5 for r in range(6)])
    assert lat == pytest.approx(D + 7200 + 12 * C5)
    assert _run_rows(g, 24, "plane")[2] == pytest.approx(lat)


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_buffer_smaller_than_window_fails(fidelity: str) -> None:
    # 12 bytes shared by a's and b's buffers in proportion to their windows (18 B each):
    # 6 B = 1 row of x < the 3 rows of a's 3x3 window (18 bytes); checked first (x is
    # the first producer)
    hw = tiny_hw(crossbars=1, adcs=1, imas=2, edram_bytes=12)
    with pytest.raises(SimulationError, match=r"a needs 3 row\(s\) of x \(18 bytes\).*holds 1"):
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
    # Large buffer: a row k done D + 600(k+1) + C5; b row r needs min(6, r + 3) rows of a:
    # row 0 starts at a's 3rd row (D + 1800 + C5), then b's reads never wait (row r starts
    # at D + 1800 + C5 + 600 r, a's row r+2 is there by then): b row r at
    # D + 2400 + 2 C5 + 600 r, latency D + 5400 + 2 C5.
    # 48-byte eDRAM: 18 B (3 rows of x) for a, 30 B (5 rows of a) for b. As in the 3-row
    # case above, a row r (r >= 2) waits for x row r + 1, which the port brings in once a
    # has done r rows (Ca_{r-1} + I); b frees rows_done(b) - 2 rows of a, so a row 5 also
    # waits for b's 3rd row:
    #   Ca0 = D + 600 + C5, Ca1 = D + 1200 + C5, Ca2 = D + 1800 + 2 C5 + I
    #   b0 = Ca2: Cb0 = D + 2400 + 3 C5 + I
    #   Ca3 = Ca2 + I + 600 + C5 = D + 2400 + 3 C5 + 2 I;  b1 = Ca3: Cb1 = D + 3000 + 4 C5 + 2 I
    #   Ca4 = Ca3 + I + 600 + C5 = D + 3000 + 4 C5 + 3 I;  b2 = Ca4: Cb2 = D + 3600 + 5 C5 + 3 I
    #   a5 waits for room (Cb2): Ca5 = D + 4200 + 6 C5 + 3 I;  b3 = Ca5: Cb3 = D + 4800 + 7 C5 + 3 I
    #   b4, b5 stream on: D + 5400 + 7 C5 + 3 I, D + 6000 + 7 C5 + 3 I
    _, rows_b, lat = _run_rows(_dilated_chain(), 65536, "group")
    assert rows_b == pytest.approx([D + 2400 + 2 * C5 + 600 * r for r in range(6)])
    assert lat == pytest.approx(D + 5400 + 2 * C5)
    rows_a, rows_b, lat = _run_rows(_dilated_chain(), 48, "group")
    i = IN_ROW
    assert rows_a == pytest.approx([D + 600 + C5, D + 1200 + C5, D + 1800 + 2 * C5 + i,
                                    D + 2400 + 3 * C5 + 2 * i, D + 3000 + 4 * C5 + 3 * i,
                                    D + 4200 + 6 * C5 + 3 * i])
    assert rows_b == pytest.approx([D + 2400 + 3 * C5 + i, D + 3000 + 4 * C5 + 2 * i,
                                    D + 3600 + 5 * C5 + 3 * i, D + 4800 + 7 * C5 + 3 * i,
                                    D + 5400 + 7 * C5 + 3 * i, D + 6000 + 7 * C5 + 3 * i])
    assert lat == pytest.approx(D + 6000 + 7 * C5 + 3 * i)
    assert _run_rows(_dilated_chain(), 48, "plane")[2] == pytest.approx(lat)


def test_dilated_consumer_buffer_too_small_is_reported_up_front() -> None:
    # One IMA per tile: a on one tile, b on another, each with its own 24-byte eDRAM. a's
    # buffer holds 4 rows of x (enough for its 3-row window); b's 4 rows of a < the 5-row
    # window: a row 4 would need b's row 0 to free a row, but b row 0 frees
    # max(0, 1 - 2) = 0 rows and b row 1 needs a row 4.
    hw = tiny_hw(crossbars=1, adcs=1, imas=1, edram_bytes=24)
    with pytest.raises(SimulationError, match=r"b needs 5 row\(s\) of a"):
        _sim(_dilated_chain(), hw, 1, "group")


def test_analytic_ignores_buffers() -> None:
    # The analytic recurrence has no buffers and no contention: x row k is on the link
    # until 0.9375 (k + 1) and in the eDRAM 5.15625 later (port and ejection port one hop
    # apart: 3.3333 + 1.6667, the write 0.15625; the port's queue is ignored), so a row 0
    # is ready at D_A = 1.875 + 5.15625 = 7.03125. Each replica streams a row's groups
    # back to back (6 x 100 ns), plus one conversion tail and the output path per row
    # (C5), after the producer rows it needs: a row k at D_A + 600 (k + 1) + C5, b row r
    # at max(its previous row, a's row r + 1) + 600 + C5: D_A + 1800 + 2 C5 + 600 r,
    # whatever the buffer (the engine takes D + 6600 + 9 C5 + I with the 3-row buffers).
    hw = tiny_hw(crossbars=1, adcs=1, imas=2, edram_bytes=36)
    ana = _sim(_conv_chain(), hw, 1, "analytic").latency_ns
    assert ana == pytest.approx(2 * 6 / LINK + HOP + 2 / NOC_GHZ + 6 / BANK + 4800 + 2 * C5)


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
    # b row r done D + 1800 + 2 C5 + 600 r (as in test_pipeline_large_buffer_group_rows),
    # a's rows earlier; add row r waits for b's row r and takes 2.9167 ns:
    # add row r done D + 1800 + 2 C5 + 600 r + 2.9167; latency D + 4800 + 2 C5 + 2.9167.
    sim, _ = _engine(_residual(), tiny_hw(crossbars=1, adcs=1, imas=2), 1, "group")
    rows_add = _row_times(sim, "add", 6)
    rows_b = _row_times(sim, "b", 6)
    res = sim.run()
    plan = sim.plans["add"]
    assert (plan.unit, plan.row_values, plan.row_in_bytes, plan.row_out_bytes) == \
        ("tile_shift_add", 6, 12, 6)
    assert rows_add == pytest.approx([D + 1800 + 2 * C5 + 600 * r + ADD_ROW
                                      for r in range(6)])
    for r in range(6):
        assert rows_add[r] == pytest.approx(rows_b[r] + ADD_ROW)
    assert res.image_done_ns[0] == pytest.approx(D + 4800 + 2 * C5 + ADD_ROW)


def test_residual_add_plane_and_analytic() -> None:
    # plane: b row r done D + 1800 + 2 C5 + 600 r (test_pipeline_plane_fidelity_rows):
    #   latency = D + 4800 + 2 C5 + 2.9167
    # analytic: b's rows as in test_analytic_ignores_buffers (from D_A = 7.03125), the
    #   add row after b's: D_A + 4800 + 2 C5 + 2.9167
    hw = tiny_hw(crossbars=1, adcs=1, imas=2)
    assert _sim(_residual(), hw, 1, "plane").latency_ns == pytest.approx(
        D + 4800 + 2 * C5 + ADD_ROW)
    assert _sim(_residual(), hw, 1, "analytic").latency_ns == pytest.approx(
        7.03125 + 4800 + 2 * C5 + ADD_ROW)


# ----------------------------------------------------------------------------- case 5
def _noc_net(compete: bool) -> nx.DiGraph:
    """Two producers on tiles 0 and 1, two consumers on tile 2 of a 1 x 3 router mesh.

    Hardware: 1 crossbar per IMA, 2 IMAs per tile, 3 tiles, 1 tile per router, mesh_cols 3:
    tile t = router t; dense placement in graph order:
      a: linear 32 -> 62: 1 row block x 2 crossbars (125 columns)  -> slots 0, 1 = tile 0
      s: linear 32 -> 62: 1 row block x 2 crossbars (125 columns)  -> slots 2, 3 = tile 1
      b: linear 62 -> 16: 1 crossbar (65 columns)                   -> slot 4     = tile 2
      c: linear 62 -> 16: 1 crossbar (65 columns)                   -> slot 5     = tile 2
    a -> b routes inj(0), link (0,1), link (1,2), ej(2): two hops; s -> c inj(1),
    link (1,2), ej(2): one hop, sharing link (1,2) and ej(2) with a -> b.
    Without competition s feeds the output directly (no NoC) and c does not exist.
    The input x (32 B) comes in at router 0: a's packet first (edges in consumer order),
    then s's, one port serialization later and one hop further.
    """
    nodes = {"x": _node("input", 0, (32,), (32,)), "a": _lin(1, 32, 62),
             "s": _lin(2, 32, 62), "b": _lin(3, 62, 16)}
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


# the input: 32 B on the link (5 ns), then 8-flit packets (6.6667 ns per port or link):
# a's in tile 0's eDRAM at 5 + 3.3333 + 6.6667 + 32 / 38.4 = 15.8333 (input_at); s's
# leaves the port once a's has (11.6667), crosses link (0,1) and tile 1's ejection port:
# 10 ns later (one more serialization and one more hop), 25.8333
IN_A = 5 + HOP + 8 / NOC_GHZ + 32 / BANK
IN_S = IN_A + 8 / NOC_GHZ + HOP
# a and s: one plane, every crossbar (125 columns) on its own ADC: T(1) = 197.65625.
TA = 100 + 125 / 1.28
# a's (and s's) position: 62 partial sums over the bus (3.0946 ns), 62 / 4.8 = 12.9167 in
# the output register a cycle later (ends 13.75), the write a cycle after: 14.5833 ns
OA = 175 / 12
# a's (and s's) packet: 62 bytes = 496 bits = 16 flits, held 16 / 1.2 = 40/3 ns per port or
# link; the source reads them from its eDRAM first (62 / 38.4 = 1.6146 ns, shorter): the
# injection starts a cycle after the read
FA = 16 / NOC_GHZ
# b and c: 65 columns, T(1) = 100 + 50.78125, then 16 outputs: 5.0
TB = 150.78125 + OUT16


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_noc_two_hops_cut_through(fidelity: str) -> None:
    sim, m = _engine(_noc_net(False), _noc_hw(), 1, fidelity)
    assert m.layers["a"].tiles == [0] and m.layers["s"].tiles == [1]
    assert m.layers["b"].tiles == [2]
    res = sim.run()
    # a's row leaves at t0 = IN_A + TA + OA: the read of its 62 bytes from tile 0's eDRAM,
    # inj(0) from a cycle later [CYC, CYC + FA], link (0,1) [CYC + HOP, ...], link (1,2),
    # ej(2) [CYC + 3 HOP, CYC + 3 HOP + FA] (relative), then the 62 bytes are written into
    # tile 2's eDRAM (62 / 38.4 ns): arrival = t0 + CYC + 3 HOP + FA + 1.6146
    t0 = IN_A + TA + OA
    arrive = t0 + CYC + 3 * HOP + FA + 62 / BANK
    assert arrive - t0 == pytest.approx(25.78125)   # (store-and-forward: 4 x 13.3 + ...)
    assert sim.fanouts[("a", "b")].of(2)[0].finished_at == pytest.approx(arrive)
    # the ports and links: the input's two packets (the port twice, tile 0's ejection
    # port, link (0,1) and tile 1's ejection port for s's), a's packet on its route
    fx = 8 / NOC_GHZ
    assert res.link_busy_ns == pytest.approx({("io", 0): 2 * fx, ("ej", 0): fx,
                                              ("link", 0, 1): fx + FA, ("ej", 1): fx,
                                              ("inj", 0): FA, ("link", 1, 2): FA,
                                              ("ej", 2): FA})
    assert res.image_done_ns[0] == pytest.approx(arrive + TB)
    # the units of the output paths: a's and s's 62 values through their tiles' output
    # registers (62 / 4.8 = 12.9167 ns each), a's 16 flits on link (1,2) (40/3 ns)
    busy = res.unit_busy_ns
    assert busy[("tile output register", "tile 0")] == pytest.approx(62 / 4.8)
    assert busy[("tile output register", "tile 1")] == pytest.approx(62 / 4.8)
    assert busy[("NoC link", "1->2")] == pytest.approx(40 / 3)
    # flit-hops: a -> b 16 flits x 3 routers = 48; x -> a 8 x 1 (router 0), x -> s 8 x 2
    sim.ledger.flush()
    assert sim.ledger.event_counts()["router_flit_hop"] == pytest.approx(48 + 8 + 16)
    assert res.noc_traffic["activations"] == {"packets": 3, "bytes": 62.0 + 32 + 32,
                                              "flits": 16 + 8 + 8, "flit_hops": 72}
    assert res.noc_traffic["psum"]["packets"] == 0


@pytest.mark.parametrize("fidelity", ["group", "plane"])
def test_noc_shared_link_waits(fidelity: str) -> None:
    sim, m = _engine(_noc_net(True), _noc_hw(), 1, fidelity)
    assert m.layers["b"].tiles == [2] and m.layers["c"].tiles == [2]
    res = sim.run()
    # s's input is in 10 ns after a's, so s's row leaves 10 ns after a's (t_a = IN_A + TA
    # + OA); times below are relative to t_a.
    # a's packet: inj(0) [0.8333, 14.1667], link (0,1) [4.1667, 17.5], link (1,2)
    # [7.5, 20.8333], ej(2) [10.8333, 24.1667], its 62 bytes written by 25.7813.
    # s's packet: read from tile 1's eDRAM at 10, inj(1) [10.8333, 24.1667]; its head
    # reaches link (1,2) at 14.1667 (alone: [14.1667, 27.5]) but a's packet holds it until
    # 20.8333, so s's head waits there: [20.8333, max(20.8333 + FA, 24.1667 + HOP) =
    # 34.1667]; ej(2) from 24.1667 (free again) to max(24.1667 + FA, 34.1667 + HOP) = 37.5;
    # its 62 bytes written (the other bank) by 37.5 + 1.6146 = 39.1146.
    t_a = IN_A + TA + OA
    arr_a = t_a + CYC + 3 * HOP + FA + 62 / BANK
    arr_s = t_a + CYC + 2 * HOP + FA + FA + HOP + 62 / BANK
    assert sim.fanouts[("a", "b")].of(2)[0].finished_at == pytest.approx(arr_a)
    got_s = sim.fanouts[("s", "c")].of(2)[0].finished_at
    assert got_s - t_a == pytest.approx(39.1145833)
    # alone (a feeds the output, so only s's packet crosses link (1,2) and ej(2)):
    # t_a + 10 + CYC + 2 HOP + FA + 62 / BANK = 32.4479 after t_a, so sharing costs s
    # 20.8333 - 14.1667 = 6.6667 ns: a's packet holds link (1,2) until 20.8333, s's head
    # would have reached it at 14.1667
    alone = _noc_net(True)
    alone.remove_node("b")
    alone.add_edge("a", "out", shape=(62,), numel=62, bytes=62)
    sim1, m1 = _engine(alone, _noc_hw(), 1, fidelity)
    assert m1.layers["s"].tiles == [1] and m1.layers["c"].tiles == [2]
    res1 = sim1.run()
    assert res1.link_busy_ns[("link", 1, 2)] == pytest.approx(FA)   # s's 16 flits only
    alone_s = sim1.fanouts[("s", "c")].of(2)[0].finished_at
    assert alone_s - t_a == pytest.approx(32.4479167)
    assert got_s - alone_s == pytest.approx(20.8333333 - 14.1666667)
    busy = res.link_busy_ns
    assert busy[("link", 1, 2)] == pytest.approx(2 * FA)
    assert busy[("ej", 2)] == pytest.approx(2 * FA)
    # b done arr_a + TB; c done arr_s + TB (the output)
    assert res.image_done_ns[0] == pytest.approx(arr_s + TB)
    sim.ledger.flush()
    # 48 (a -> b) + 16 flits x 2 routers (s -> c) + the input's 8 + 16 = 104 flit-hops
    assert sim.ledger.event_counts()["router_flit_hop"] == pytest.approx(48 + 32 + 24)


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
