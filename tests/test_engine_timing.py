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


def _sim(g: nx.DiGraph, hw: HardwareSpec, planes: dict | int, fidelity: str,
         images: int = 1, policy: str = "static",
         replicas: dict[str, int] | None = None) -> PipelineResult:
    m = map_network(g.copy(), hw, MappingOptions(replicate=False, replicas=replicas or {}))
    if isinstance(planes, int):
        planes = _planes(m, planes, images)
    return simulate_pipeline(m.graph, m, hw, planes, policy, "p", fidelity, images)


def _engine(g: nx.DiGraph, hw: HardwareSpec, b: int, fidelity: str = "group",
            ) -> tuple[ChipSimulation, NetworkMapping]:
    """A ChipSimulation built like simulate_pipeline (static policy), not yet run."""
    m = map_network(g.copy(), hw, MappingOptions(replicate=False))
    ledger = EnergyLedger(hw.energy.per_event(), 100.0, BUSY_CLASSES)
    plans = build_plan(m.graph, m, hw, ledger, False)
    return ChipSimulation(plans, _planes(m, b), hw, ledger, 1, fidelity), m


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


@pytest.mark.parametrize("fidelity", ["group", "plane", "analytic"])
def test_single_mvm_zero_planes_costs_no_time(fidelity: str) -> None:
    hw = tiny_hw(crossbars=1, adcs=1)
    res = _sim(_one_linear(), hw, 0, fidelity)
    assert res.latency_ns == 0.0
    # the skipped group is still counted (eDRAM read of 128 bytes), with no plane
    assert res.counts()["groups"] == 1 and res.counts()["bit_planes"] == 0
    assert res.ledger.event_counts()["edram_byte"] == pytest.approx(128 + 16)  # in + out


def test_conversion_slower_than_read() -> None:
    """With c > r the ADC is the bottleneck: T(b) = r + b*c.

    4 ADC-less ... one ADC per crossbar at a quarter of the rate would do; here we use a
    2-crossbar lane in a 1-ADC IMA instead: linear 128 -> 62 = 2 column blocks of
    31*4+1 = 125 columns, both crossbars in one IMA holding min(2, 1) = 1 ADC, so
    c = 250 / 1.28 = 195.3125 ns > r and T(3) = 100 + 3 * 195.3125 = 685.9375.
    """
    hw = tiny_hw(crossbars=2, adcs=1)
    g = _graph({"x": _node("input", 0, (128,), (128,)), "fc": _lin(1, 128, 62),
                "out": _node("output", 2, (62,), (62,))}, [("x", "fc"), ("fc", "out")])
    for fid in ("group", "plane", "analytic"):
        assert _sim(g, hw, 3, fid).latency_ns == pytest.approx(685.9375, abs=1e-9), fid
