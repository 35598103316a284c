"""Simulate one precision pipeline on the mapped chip and collect its figures."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from simulator.engine.chip import ChipSimulation
from simulator.model.analytic import analytic_timing, book_analytic
from simulator.model.bound import NocLoad, busiest_by_class, demands, noc_load, throughput_bound
from simulator.model.ledger import EnergyLedger
from simulator.model.noc_routes import NocTopology
from simulator.model.outcome import EngineResult
from simulator.model.plan import KindIds, Lane, NodePlan
from simulator.model.power import static_power_mw
from simulator.model.timing import TILE_UNITS, TimingRules
from simulator.model.workplan import plan_structure, register_kinds

BUSY_CLASSES = ("crossbar", "adc", "digital", "edram", "bus", "noc")


@dataclass
class PipelineResult:
    """Everything measured for one pipeline (static, redy, ...)."""

    name: str
    policy: str
    fidelity: str
    images: int
    latency_ns: float
    throughput_ips: float  # measured when images were streamed, else the bound
    throughput_basis: str
    timing: EngineResult
    ledger: EnergyLedger
    plans: dict[str, NodePlan]
    capacity: dict[str, float]  # instances per busy class (for utilization)
    static_mw: dict[str, float] = field(default_factory=dict)
    trace: object | None = None  # TraceRecorder when a trace was asked for
    throughput_measured_ips: float | None = None
    throughput_bound_ips: float = float("inf")
    bounding_unit: dict = field(default_factory=dict)  # the busiest resource per image
    busiest_units: list[dict] = field(default_factory=list)  # busiest of each class
    warmup_images: int = 0
    noc_traffic: dict[str, dict[str, float]] = field(default_factory=dict)
    ids: KindIds | None = None  # the ledger ids of the plans' activity kinds

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
        """Groups and bit planes of *lanes* (every fidelity books one MVM occurrence per
        group, with its planes as units)."""
        occ = self.ledger.occurrences_by_kind()
        units = self.ledger.units_by_kind()
        mvm = self.ids.mvm
        groups = sum(occ[mvm[la.key]] for la in lanes)
        planes = sum(units[mvm[la.key]] for la in lanes)
        return int(round(groups)), int(round(planes))

    def mean_bits_per_group(self) -> float:
        """Bit planes streamed per activation group."""
        g, p = self.group_and_plane_counts()
        return p / g if g else 0.0


@dataclass
class TimingPlan:
    """What every pipeline of a run shares: node plans, NoC routes, packets per image."""

    plans: dict[str, NodePlan]
    topo: NocTopology
    noc: NocLoad


def prepare_timing(graph: nx.DiGraph, mapping, hw) -> TimingPlan:
    """Plan the work of the mapped network once for all its pipelines."""
    plans = plan_structure(graph, mapping, hw)
    topo = NocTopology(hw)
    return TimingPlan(plans, topo, noc_load(plans, topo, TimingRules(hw)))


def _dynamic(policy: str) -> bool:
    return policy != "static"


def measured_throughput(done_ns: list[float], warmup: int) -> tuple[float | None, int, str]:
    """Steady-state images/s from the completions after the first *warmup* images.

    With N images and w = min(warmup, N − 2) of them excluded as warm-up, the throughput
    is (N − 1 − w) / (t[N − 1] − t[w]): the mean interval between successive image
    completions once the pipeline is filled. None with a single image.
    """
    n = len(done_ns)
    if n < 2:
        return None, 0, ""
    w = max(0, min(warmup, n - 2))
    span = done_ns[-1] - done_ns[w]
    thr = (n - 1 - w) / span * 1e9 if span > 0 else float("inf")
    basis = (f"measured: {n} images streamed, mean interval between the completions of "
             f"images {w + 1}..{n} ({span / (n - 1 - w):.1f} ns)"
             + (f", the first {w} image(s) excluded as warm-up" if w else ""))
    return thr, w, basis


def simulate_pipeline(graph: nx.DiGraph, mapping, hw, planes: dict[str, np.ndarray],
                      policy: str, name: str, fidelity: str, images: int,
                      power_gating: bool = True, trace=None, progress: bool = False,
                      load_timing: bool = True, warmup: int = 1,
                      prepared: TimingPlan | None = None) -> PipelineResult:
    """Run one pipeline at the requested fidelity.

    *planes* maps each weight layer to its bit planes per group, uint8 array of shape
    (images, row_blocks, positions). Images beyond those captured reuse them cyclically.
    *prepared* (:func:`prepare_timing`) lets the pipelines of a run share their plans.
    """
    planes = {k: _cycle_images(v, images) for k, v in planes.items()}
    dynamic = _dynamic(policy)
    ledger = EnergyLedger(hw.energy.per_event(), float(hw.crossbar.read_ns), BUSY_CLASSES)
    prepared = prepared or prepare_timing(graph, mapping, hw)
    plans, topo, noc = prepared.plans, prepared.topo, prepared.noc
    ids = register_kinds(plans, ledger, dynamic)
    rules = TimingRules(hw, load_timing)
    if fidelity == "analytic" or progress:
        estimate = analytic_timing(plans, planes, rules, topo, images, dynamic)
    if fidelity == "analytic":
        book_analytic(plans, planes, ledger, ids, images, estimate, noc)
        timing = estimate.result
        timing.noc_traffic = {k: {m: v * images for m, v in d.items()}
                              for k, d in noc.traffic.items()}
    else:
        sim = ChipSimulation(plans, planes, hw, ledger, images, fidelity, dynamic, trace,
                             load_timing, topo, ids)
        timing = sim.run(progress_total_ns=estimate.result.end_ns if progress else None,
                         label=name)
    ledger.flush()
    ledger.end_ns = max(ledger.end_ns, timing.end_ns)
    dem = demands(plans, planes, hw, images, dynamic, rules, noc)
    bound, unit, unit_ns = throughput_bound(dem)
    measured, warm, basis = measured_throughput(timing.image_done_ns, warmup)
    if fidelity == "analytic" and measured is not None:
        basis = basis.replace("measured:", "analytic estimate:")
    if measured is not None and measured > bound * (1 + 1e-9):
        basis += ("; above the bound: a window of completions reads high while the "
                  "busiest unit's lead over them shrinks (the fill, the drain at the end "
                  "of the stream; docs/model.md): stream more images (simulation.images)")
    if measured is None:
        basis = (f"bound: 1 / busiest resource's work per image ({unit[0]}, {unit[1]}: "
                 f"{unit_ns:.1f} ns); stream images (simulation.images >= 3) for a measured "
                 "figure")
    static = static_power_mw(hw, mapping, power_gating)
    for comp, mw in static.items():
        ledger.add_static(comp, mw * timing.end_ns)  # mW × ns = pJ
    tiles = max(len(mapping.used_tiles()), 1)
    lane_tiles = {part.tile for p in plans.values() for lane in p.lanes for part in lane.parts}
    capacity = {
        "crossbar": float(sum(lane.crossbars for p in plans.values() for lane in p.lanes)),
        "adc": float(len({part.ima for p in plans.values() for lane in p.lanes
                          for part in lane.parts}) * int(hw.ima.adcs)),
        "digital": float(tiles * len(TILE_UNITS)),
        "edram": float(tiles * int(hw.tile.edram_banks)),
        "bus": float(max(len(lane_tiles), 1)),
        "noc": float(max(len(noc.stage_ns), 1)),
    }
    return PipelineResult(
        name, policy, fidelity, images, timing.image_done_ns[0],
        measured if measured is not None else bound, basis, timing, ledger, plans, capacity,
        static, trace, measured, bound,
        {"unit": unit[0], "where": unit[1], "busy_ns_per_image": unit_ns},
        busiest_by_class(dem), warm, timing.noc_traffic, ids)


def _cycle_images(arr: np.ndarray, images: int) -> np.ndarray:
    if arr.shape[0] >= images:
        return arr[:images]
    reps = -(-images // arr.shape[0])
    return np.concatenate([arr] * reps, axis=0)[:images]
