"""Simulate one precision pipeline on the mapped chip and collect its figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from simulator.engine.chip import ChipSimulation, fewer_collections
from simulator.model.analytic import analytic_timing, book_analytic
from simulator.model.bound import (
    LANE,
    NocLoad,
    busiest_by_class,
    demand_layers,
    demands,
    noc_load,
    throughput_bound,
)
from simulator.model.ledger import EnergyLedger
from simulator.model.noc_routes import STAGE_LABELS, NocTopology, stage_where
from simulator.model.outcome import EngineResult
from simulator.model.plan import KindIds, Lane, NodePlan
from simulator.model.power import static_power_mw
from simulator.model.timing import TILE_UNITS, TimingRules
from simulator.model.workplan import plan_structure, register_kinds
from workloads.precision.options import online_unit

BUSY_CLASSES = ("crossbar", "adc", "digital", "edram", "bus", "noc")


@dataclass
class PipelineResult:
    """Everything measured for one pipeline (static, redy, ...)."""

    name: str
    policy: str
    fidelity: str
    images: int
    latency_ns: float
    throughput_ips: float  # the steady-state measurement when there is one, else the bound
    throughput_basis: str  # which of the two, and how it was measured
    timing: EngineResult
    ledger: EnergyLedger
    plans: dict[str, NodePlan]
    capacity: dict[str, float]  # instances per busy class (for utilization)
    static_mw: dict[str, float] = field(default_factory=dict)
    trace: object | None = None  # TraceRecorder when a trace was asked for
    throughput_measured_ips: float | None = None  # steady state (analytic: an estimate)
    throughput_bound_ips: float = float("inf")
    bounding_unit: dict = field(default_factory=dict)  # the busiest resource per image
    busiest_units: list[dict] = field(default_factory=list)  # busiest of each class
    warmup_images: int = 0  # the steady-state window starts at this image's completion
    noc_traffic: dict[str, dict[str, float]] = field(default_factory=dict)
    ids: KindIds | None = None  # the ledger ids of the plans' activity kinds
    unit: str | None = None  # the on-line unit its policy uses (precision_select / _detect)
    #: per graph node, the resource its work loads most per image (unit, where, ns)
    layer_busiest: dict[str, dict] = field(default_factory=dict)

    @property
    def throughput_is(self) -> str:
        """What ``throughput_ips`` is: ``"measured"`` (steady state) or ``"bound"``."""
        return "measured" if self.throughput_measured_ips is not None else "bound"

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



def event_energies(hw, mapping) -> dict[str, float]:
    """Energy per event (pJ) of a run on *mapping*: the hardware's, except that on several
    chips the input link's bytes cost nothing more (every off-chip link is static power
    then, ``offchip.static_w``; docs/model.md, "Input path")."""
    energies = hw.energy.per_event()
    if int(getattr(mapping, "chips", 1)) > 1:
        energies["input_byte"] = 0.0
    return energies


@dataclass
class SteadyState:
    """The steady-state window of a stream of images (:func:`steady_state_window`)."""

    first: int  # the window starts when image `first` completes ...
    last: int  # ... and ends when image `last` completes (last > first: a measurement)
    reason: str  # how the window was chosen, or why there is none


def steady_state_window(done_ns: list[float], ref_ns: list[float], warmup: int,
                        ref: str = "the busiest unit") -> SteadyState:
    """The window of completions that leaves out the pipeline's fill and its drain.

    *ref_ns*: when the busiest unit (*ref*: the unit itself, or the layer that loads it
    most) finished its work on each image. Fill: the window starts at the completion of
    image w = max(1, *warmup*): image 0 fills the pipeline. Drain: it ends at the
    completion of image v, the last image done before the busiest unit finished the last
    image of the stream; later completions are the drain (that unit has no work left, and
    the units that share resources with the layers before it are freed, so images complete
    faster than it can serve them). With v > w the throughput is (v − w) images over
    :func:`window_ns`.
    """
    n = len(done_ns)
    if n < 2:
        return SteadyState(0, 0, "one image streamed")
    w = max(1, warmup)
    v = max((i for i, t in enumerate(done_ns) if t <= ref_ns[-1]), default=-1)
    if v <= w:
        return SteadyState(w, v, (
            f"steady state not reached: of {n} images, the window would start at image {w} "
            f"(after the fill) and {'no image' if v < 0 else f'image {v}'} is the last "
            f"done before {ref} finished image {n - 1} (the drain)"))
    return SteadyState(w, v, (
        f"measured in steady state: images {w}..{v} of {n} streamed (from image {w}: "
        f"the fill excluded; to image {v}, the last done before {ref} finished image "
        f"{n - 1}: the drain excluded)"))


def window_ns(done_ns: list[float], ref_ns: list[float], win: SteadyState,
              ref_busy_ns: list[float] | None = None) -> float:
    """Time the pipeline took for the images of a steady-state window: the longest of
    the interval between the completions of images w and v, the interval between the
    busiest unit finishing them and, when *ref_busy_ns* (how long that unit was busy
    with each image, as the engine reserved it) is given, its busy time on images
    w+1..v. Over a short window the completions can read short when the latency between
    the busiest unit and the output changes (a dynamic policy's work differs per image),
    and a unit that interleaves consecutive images (a NoC link) can finish image w late
    and image v on time; in a steady state the unit cannot serve the window's images in
    less time than it was busy with them."""
    return max(window_terms(done_ns, ref_ns, win, ref_busy_ns).values())


def window_terms(done_ns: list[float], ref_ns: list[float], win: SteadyState,
                 ref_busy_ns: list[float] | None = None) -> dict[str, float]:
    """The spans :func:`window_ns` takes the longest of, by what they measure."""
    terms = {"the completions' interval": done_ns[win.last] - done_ns[win.first],
             "the busiest unit's interval": ref_ns[win.last] - ref_ns[win.first]}
    if ref_busy_ns:
        terms["the busiest unit's busy time on those images"] = sum(
            ref_busy_ns[win.first + 1:win.last + 1])
    return terms


def streamed_images_needed(latency_ns: float, bound_ips: float, warmup: int) -> int:
    """Images to stream for a steady-state window of two intervals: the fill (max(1,
    warm-up)), the drain (at most the images in flight, latency × rate), two more."""
    flight = int(math.ceil(latency_ns * bound_ips / 1e9)) if math.isfinite(bound_ips) else 1
    return max(1, warmup) + flight + 3


def simulate_pipeline(graph: nx.DiGraph, mapping, hw, planes: dict[str, np.ndarray],
                      policy: str, name: str, fidelity: str, images: int,
                      power_gating: bool = True, trace=None, progress: bool = False,
                      load_timing: bool = True, warmup: int = 1,
                      prepared: TimingPlan | None = None) -> PipelineResult:
    """Run one pipeline at the requested fidelity.

    *planes* maps each weight layer to its bit planes per group, uint8 array of shape
    (images, row_blocks, positions). Images beyond those captured reuse them cyclically.
    *prepared* (:func:`prepare_timing`) lets the pipelines of a run share their plans.
    The garbage collector works less throughout (``fewer_collections``: the setup and the
    booking allocate as the event loop does).
    """
    with fewer_collections():
        return _simulate_pipeline(graph, mapping, hw, planes, policy, name, fidelity, images,
                                  power_gating, trace, progress, load_timing, warmup,
                                  prepared)


def _simulate_pipeline(graph: nx.DiGraph, mapping, hw, planes: dict[str, np.ndarray],
                       policy: str, name: str, fidelity: str, images: int,
                       power_gating: bool, trace, progress: bool, load_timing: bool,
                       warmup: int, prepared: TimingPlan | None) -> PipelineResult:
    planes = {k: _cycle_images(v, images) for k, v in planes.items()}
    unit = online_unit(policy)
    ledger = EnergyLedger(event_energies(hw, mapping), float(hw.crossbar.read_ns),
                          BUSY_CLASSES)
    prepared = prepared or prepare_timing(graph, mapping, hw)
    plans, topo, noc = prepared.plans, prepared.topo, prepared.noc
    ids = register_kinds(plans, ledger, unit)
    rules = TimingRules(hw, load_timing)
    # the busiest unit over the streamed images, and the layer whose work loads it most:
    # the steady-state window is seen from there (the engine watches it if it is a lane)
    by_layer = demand_layers(plans, planes, hw, images, rules, noc)
    dem = {k: sum(v.values()) for k, v in by_layer.items()}
    bound, busiest, busiest_ns = throughput_bound(dem)
    layer = max(by_layer[busiest], key=by_layer[busiest].__getitem__) if dem else None
    watch = None
    if busiest[0] == LANE:
        watch = next(lane.key for lane in plans[layer].lanes
                     if f"{lane.layer} r{lane.replica} rb{lane.row_block}" == busiest[1])
    elif busiest[0] in STAGE_LABELS.values():
        watch = next(k for k in noc.stage_ns
                     if (STAGE_LABELS[k[0]], stage_where(k)) == busiest)
    if fidelity == "analytic" or progress:
        estimate = analytic_timing(plans, planes, rules, topo, images, unit)
    if fidelity == "analytic":
        book_analytic(plans, planes, ledger, ids, images, estimate, noc)
        timing = estimate.result
        timing.noc_traffic = {k: {m: v * images for m, v in d.items()}
                              for k, d in noc.traffic.items()}
    else:
        sim = ChipSimulation(plans, planes, hw, ledger, images, fidelity, unit, trace,
                             load_timing, topo, ids, watch)
        timing = sim.run(progress_total_ns=estimate.result.end_ns if progress else None,
                         label=name)
    ledger.flush()
    ledger.end_ns = max(ledger.end_ns, timing.end_ns)
    done, entered = timing.image_done_ns, timing.image_in_ns or [0.0] * images
    ref_busy = None
    if watch is not None and len(timing.watched_ns) == images:
        ref, where = timing.watched_ns, f"the busiest unit ({busiest[0]} {busiest[1]})"
        if len(timing.watched_busy_ns) == images:
            ref_busy = timing.watched_busy_ns
    elif layer and plans[layer].kind != "input" and timing.node_done_ns.get(layer):
        ref, where = timing.node_done_ns[layer], f"layer {layer} (the busiest unit's)"
    else:
        ref, where = done, "the pipeline"
    win = steady_state_window(done, ref, warmup, where)
    measured = None
    if win.last > win.first:
        terms = window_terms(done, ref, win, ref_busy)
        span_by = max(terms, key=terms.__getitem__)
        span = terms[span_by]
        measured = (win.last - win.first) / span * 1e9
        # the bound over the same images (a dynamic policy's work differs per image)
        window = {k: v[win.first + 1:win.last + 1] for k, v in planes.items()}
        dem = demands(plans, window, hw, win.last - win.first, rules, noc)
        bound, busiest, busiest_ns = throughput_bound(dem)
    bound_text = (f"bound: 1 / the busiest unit's work per image ({busiest[0]}, "
                  f"{busiest[1]}: {busiest_ns:.1f} ns)")
    if fidelity == "analytic":
        # the recurrence ignores contention: an estimate, not a measurement of the chip
        basis = bound_text + "; the analytic fidelity measures no throughput"
        if measured is not None:
            basis += (f" (its row recurrence, without contention, estimates "
                      f"{measured:.1f} img/s: {win.reason.replace('measured in', 'in')})")
        headline, measured = bound, None
    elif measured is not None:
        n = win.last - win.first
        basis = (f"{win.reason}; {span / n:.1f} ns per image, set by {span_by} (the "
                 "longest of " + ", ".join(f"{k} {v / n:.1f}" for k, v in terms.items())
                 + " ns per image)")
        headline = measured
    else:
        need = streamed_images_needed(done[0] - entered[0], bound, warmup)
        basis = (f"{bound_text}; no measurement: {win.reason}"
                 + (f" (stream about {need} images: simulation.images)" if images > 1 else ""))
        headline = bound
    static = static_power_mw(hw, mapping, power_gating, unit)
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
    layer_busiest: dict[str, dict] = {}
    for (label, where), per in by_layer.items():
        for node, ns in per.items():
            if ns > layer_busiest.get(node, {}).get("busy_ns_per_image", 0.0):
                layer_busiest[node] = {"unit": label, "where": where,
                                       "busy_ns_per_image": ns}
    return PipelineResult(
        name, policy, fidelity, images, done[0] - entered[0], headline, basis, timing,
        ledger, plans, capacity, static, trace, measured, bound,
        {"unit": busiest[0], "where": busiest[1], "busy_ns_per_image": busiest_ns},
        busiest_by_class(dem), win.first, timing.noc_traffic, ids, unit, layer_busiest)


def _cycle_images(arr: np.ndarray, images: int) -> np.ndarray:
    if arr.shape[0] >= images:
        return arr[:images]
    reps = -(-images // arr.shape[0])
    return np.concatenate([arr] * reps, axis=0)[:images]
