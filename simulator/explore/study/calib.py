"""The engine-driven full-activity check of the study (docs/validation.md).

DESIGN.md §3: a synthetic workload that keeps every unit busy every cycle must reproduce
ISAAC's Table I. :mod:`simulator.hardware.report` checks that in closed form; this runs the same
workload as ``tests/test_calibration.py`` through the event engine (group fidelity, load
timing on) and measures the power each component draws:

* hardware: ``isaac.yaml`` with ``weights.unit_column: false`` (16 weights = 128 columns
  per crossbar, Table I's convention) and an input path fast enough that the lanes never
  wait for their input once started (2048-bit flits, 4 × 6.4 TB/s links: the check
  measures the tile, not the input path);
* one 1×1 convolution 128 → 16 channels on a 96 H × 1 map pinned to 96 replicas, one per
  crossbar of tile 0 (replica r takes rows r, r + 96, ...), every group streaming all 16
  planes;
* full activity has local inputs: the eDRAM writes of the input's rows as they arrive are
  taken out of the eDRAM's power;
* two runs (H = 50 and 200) differ only by 150 steady-state groups per lane, so
  (E₂ − E₁) / (T₂ − T₁) is the steady-state power with fill and drain cancelled.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

LANES = 96  # crossbars of one ISAAC tile (12 IMAs × 8)
IMA_COMPONENTS = ("crossbar", "dac", "sample_hold", "adc", "ima_shift_add",
                  "input_register", "ima_output_register")


def _graph(h: int, width: int = 1, cin: int = 128, cout: int = 16) -> nx.DiGraph:
    """x (cin × LANES·h × width) → c (1×1 conv cin → cout) → out."""
    h = h * LANES
    def node(kind: str, order: int, shape_in: tuple, shape_out: tuple, **kw: Any) -> dict:
        d = {"kind": kind, "order": order, "module": None, "in_shape": shape_in,
             "out_shape": shape_out, "act": None, "macs": 0, "weights": 0,
             "signed_input": False}
        d.update(kw)
        return d

    conv = node("conv", 1, (cin, h, width), (cout, h, width), in_channels=cin,
                out_channels=cout, kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                dilation=(1, 1), groups=1, macs=cin * cout * h * width,
                weights=cin * cout, module="m")
    nodes = {"x": node("input", 0, (cin, h, width), (cin, h, width)), "c": conv,
             "out": node("output", 2, (cout, h, width), (cout, h, width))}
    g = nx.DiGraph(name="full-activity", input_shape=(cin, h, width))
    for n, d in nodes.items():
        g.add_node(n, **d)
    for u, v in (("x", "c"), ("c", "out")):
        shape = tuple(nodes[u]["out_shape"])
        g.add_edge(u, v, shape=shape, numel=math.prod(shape), bytes=math.prod(shape))
    return g


def _run(h: int, hw) -> Any:
    from mapping.mapper import MappingOptions, map_network
    from simulator.runner.simulate import simulate_pipeline

    m = map_network(_graph(h), hw, MappingOptions(replicate=False, replicas={"c": LANES}))
    lm = m.layers["c"]
    bits = int(hw.activations.bits)
    planes = {"c": np.full((1, len(lm.row_blocks), lm.positions), bits, dtype=np.uint8)}
    return simulate_pipeline(m.graph, m, hw, planes, "static", "full-activity", "group", 1)


def full_activity_check(isaac_yaml: str | Path, h1: int = 50, h2: int = 200) -> dict[str, Any]:
    """Steady-state power per IMA (mW) of each IMA component, the tile's eDRAM and bus
    (mW), and the peak TOPS the engine reaches (ops booked / simulated time, one tile
    scaled to the chip's tiles), from two runs of the full-activity workload."""
    from simulator.hardware.spec import load_hardware

    hw = load_hardware(isaac_yaml).with_changes({"weights.unit_column": False,
                                                  "noc.flit_bits": 2048,
                                                  "offchip.bandwidth_gbps": 25600.0})
    a, b = _run(h1, hw), _run(h2, hw)
    dt = b.timing.end_ns - a.timing.end_ns
    ea, eb = a.ledger.energy_by_component(), b.ledger.energy_by_component()
    imas = hw.tile.imas
    ima = {c: (eb[c] - ea[c]) / dt / imas for c in IMA_COMPONENTS}
    tile = {c: (eb[c] - ea[c]) / dt for c in ("edram", "bus")}
    tile["edram"] -= (_input_edram_pj(b) - _input_edram_pj(a)) / dt
    groups, _ = b.group_and_plane_counts()
    ops = 2 * groups * hw.crossbar.rows * hw.weights_per_crossbar
    return {"h": [h1, h2], "period_ns": dt / (h2 - h1), "lanes": LANES, "kernel": [1, 1],
            "planes": int(hw.activations.bits), "ima_mw": ima,
            "ima_total_mw": sum(ima.values()), "tile_mw": tile,
            "peak_tops": ops / b.timing.end_ns * hw.chip.tiles / 1000.0,
            "peak_tops_steady": 2 * (h2 - h1) * LANES * hw.crossbar.rows
            * hw.weights_per_crossbar / dt * hw.chip.tiles / 1000.0}


def _input_edram_pj(res: Any) -> float:
    """eDRAM energy (pJ) of the network input's rows written as they arrive."""
    from simulator.model.ledger import EVENTS

    counts = res.ledger.counts_by_layer().get("x")
    e = EVENTS.index("edram_byte")
    return float(counts[e] * res.ledger.energy[e]) if counts is not None else 0.0
