"""Simulate one precision pipeline on the mapped chip and collect its figures."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from simulator.analytic import analytic_timing, book_analytic
from simulator.engine import ChipSimulation, EngineResult
from simulator.ledger import EnergyLedger
from simulator.power import static_power_mw
from simulator.workplan import Lane, NodePlan, build_plan

BUSY_CLASSES = ("crossbar", "adc", "digital", "edram", "noc")


@dataclass
class PipelineResult:
    """Everything measured for one pipeline (static, redy, ...)."""

    name: str
    policy: str
    fidelity: str
    images: int
    latency_ns: float
    throughput_ips: float
    throughput_basis: str
    timing: EngineResult
    ledger: EnergyLedger
    plans: dict[str, NodePlan]
    capacity: dict[str, float]  # instances per busy class (for utilization)
    static_mw: dict[str, float] = field(default_factory=dict)
    trace: object | None = None  # TraceRecorder when a trace was asked for

    def counts(self) -> dict[str, int]:
        """Headline event counts (summary.json `counts`)."""
        ev = self.ledger.event_counts()
        groups, planes = self.group_and_plane_counts()
        return {"groups": int(groups), "bit_planes": int(planes),
                "crossbar_reads": int(round(ev["crossbar_read"])),
                "adc_conversions": int(round(ev["adc_conversion"])),
                "dac_drives": int(round(ev["dac_drive"]))}

    def group_and_plane_counts(self) -> tuple[int, int]:
        """Activation groups processed and bit planes streamed (summed over images)."""
        groups = planes = 0
        for plan in self.plans.values():
            g, p = self.lanes_groups_and_planes(plan.lanes)
            groups, planes = groups + g, planes + p
        return groups, planes

    def lanes_groups_and_planes(self, lanes: list[Lane]) -> tuple[int, int]:
        """Groups and bit planes of *lanes* (group fidelity books ``kind_mvm``, plane
        fidelity ``kind_read_first`` once per group and ``kind_read`` for later planes)."""
        occ = self.ledger.occurrences_by_kind()
        units = self.ledger.units_by_kind()
        groups = sum(occ[la.kind_mvm] + occ[la.kind_read_first] for la in lanes)
        planes = sum(units[la.kind_mvm] + units[la.kind_read_first] + units[la.kind_read]
                     for la in lanes)
        return int(round(groups)), int(round(planes))

    def mean_bits_per_group(self) -> float:
        """Bit planes streamed per activation group."""
        g, p = self.group_and_plane_counts()
        return p / g if g else 0.0


def _dynamic(policy: str) -> bool:
    return policy != "static"


def simulate_pipeline(graph: nx.DiGraph, mapping, hw, planes: dict[str, np.ndarray],
                      policy: str, name: str, fidelity: str, images: int,
                      time_bins: int = 400, power_gating: bool = True, trace=None,
                      progress: bool = False, load_timing: bool = True) -> PipelineResult:
    """Run one pipeline at the requested fidelity.

    *planes* maps each weight layer to its bit planes per group, uint8 array of shape
    (images, row_blocks, positions). Images beyond those captured reuse them cyclically.
    """
    planes = {k: _cycle_images(v, images) for k, v in planes.items()}
    dynamic = _dynamic(policy)
    select_ns = float(hw.components.ima.precision_select.latency_ns) if dynamic else 0.0
    ledger = EnergyLedger(hw.energy.per_event(), float(hw.crossbar.read_ns), BUSY_CLASSES)
    plans = build_plan(graph, mapping, hw, ledger, dynamic)
    # the analytic estimate of the run's length sizes the time bins (and is the result
    # itself at analytic fidelity)
    estimate = analytic_timing(plans, planes, hw, images, select_ns)
    est = estimate.result.end_ns
    ledger.set_bin(max(est / time_bins, float(hw.crossbar.read_ns)))
    if fidelity == "analytic":
        book_analytic(plans, planes, ledger, images, estimate)
        timing = estimate.result
    else:
        sim = ChipSimulation(plans, planes, hw, ledger, images, fidelity, select_ns, trace,
                             load_timing)
        timing = sim.run(progress_total_ns=est if progress else None, label=name)
    ledger.flush()
    ledger.end_ns = max(ledger.end_ns, timing.end_ns)
    latency = timing.image_done_ns[0]
    if images > 1:
        span = timing.image_done_ns[-1] - timing.image_done_ns[0]
        thr = (images - 1) / span * 1e9 if span > 0 else float("inf")
        basis = f"measured: {images} images streamed, completions spaced over {span:.1f} ns"
    else:
        period = max(timing.lane_busy_ns.values(), default=0.0)
        digital = max((p.row_ns * p.out_h for p in plans.values()), default=0.0)
        period = max(period, digital)
        thr = 1e9 / period if period > 0 else float("inf")
        basis = ("pipeline bound: 1 / busiest lane's busy time per image "
                 "(stream images for a measured figure)")
    static = static_power_mw(hw, mapping, power_gating)
    for comp, mw in static.items():
        ledger.add_static(comp, mw * timing.end_ns)  # mW × ns = pJ
    capacity = {
        "crossbar": float(sum(lane.crossbars for p in plans.values() for lane in p.lanes)),
        "adc": float(len({part.ima for p in plans.values() for lane in p.lanes
                          for part in lane.parts}) * int(hw.ima.adcs)),
        "digital": float(max(len(mapping.used_tiles()), 1)),
        # one eDRAM-to-IMA bus per tile holding lanes; every NoC link some edge uses
        "edram": float(max(len({part.tile for p in plans.values() for lane in p.lanes
                                for part in lane.parts}), 1)),
        "noc": float(max(len({link for p in plans.values() for e in p.out_edges
                              for r in e.src_routes for link in r}), 1)),
    }
    return PipelineResult(name, policy, fidelity, images, latency, thr, basis, timing, ledger,
                          plans, capacity, static, trace)


def _cycle_images(arr: np.ndarray, images: int) -> np.ndarray:
    if arr.shape[0] >= images:
        return arr[:images]
    reps = -(-images // arr.shape[0])
    return np.concatenate([arr] * reps, axis=0)[:images]

