"""Analytic fidelity: closed-form counts and a row-level latency estimate, no event loop.

Counts and dynamic energy are exactly those of the event engine: the same activity kinds,
the same bit planes, the same packets (``simulator.model.bound.noc_load``). Time comes from a
per-output-row recurrence using the engine's rules (``simulator.model.timing``): each replica
of a layer is a server that starts its share of output row r when the producer rows it
needs have arrived (the producer row's end plus the uncontended cut-through latency of
its packets) and it has finished its share of row r − 1; its share streams its groups
back to back (Σ b·max(r, c) of each position's slowest row block, plus one r + c − max(r, c)
pipeline fill) and ends with the output path of its last position (partial sums from
other tiles, adds, activation, output register, eDRAM write). A digital node's row runs
on its tile after the previous row there. Not modelled: ADC sharing, contention on the
eDRAM, bus, digital units and NoC, bounded buffers. It is a quick estimate for sweeps,
neither an upper nor a lower bound of the engine's latency; the throughput bound is
``simulator.model.bound``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.model.bound import NocLoad, input_row_bytes
from simulator.model.ledger import EnergyLedger
from simulator.model.noc_routes import PORT, NocTopology
from simulator.model.outcome import EngineResult
from simulator.model.plan import WEIGHT_KINDS, EdgePlan, KindIds, NodePlan
from simulator.model.timing import TimingRules
from simulator.model.transfers import row_packets


@dataclass
class AnalyticTiming:
    """Row completion times of every node, and the resulting timing."""

    result: EngineResult
    row_end: dict[str, list[np.ndarray]]  # node → per image, end of each output row
    first_start: dict[str, float]  # node → start of its first row of image 0


def analytic_timing(plans: dict[str, NodePlan], planes: dict[str, np.ndarray],
                    rules: TimingRules, topo: NocTopology, images: int,
                    unit: str | None = None) -> AnalyticTiming:
    """The row-level recurrence (no booking)."""
    row_end: dict[str, list[np.ndarray]] = {}
    order = sorted(plans, key=lambda n: plans[n].order)
    lane_busy: dict[tuple[str, int, int], float] = {}
    first_start: dict[str, float] = {}
    lat = {(ep.producer, ep.consumer): _edge_latency(ep, plans[ep.producer], rules, topo)
           for p in plans.values() for ep in p.out_edges}
    select = rules.online_ns(unit)  # the policy's on-line unit, after the group's load
    for name in order:
        plan = plans[name]
        ends = []
        free = np.zeros(max(plan.replicas, 1))
        tile_free: dict[int, float] = {}  # digital nodes: per tile, when it is free
        if plan.kind in WEIGHT_KINDS:
            tail = _output_latency(plan, rules, topo) + select
        for img in range(images):
            if plan.kind == "input":  # back to back over the input link
                row_ns = rules.input_ns(input_row_bytes(plan, rules))
                ends.append((img * plan.out_h + np.arange(1, plan.out_h + 1)) * row_ns)
                continue
            e = np.zeros(plan.out_h)
            if plan.kind in WEIGHT_KINDS:
                row_t, fill = _row_times(plan, planes, img, rules, lane_busy)
            for r in range(plan.out_h):
                ready = 0.0
                for prod in plan.producers:
                    pw = plans[prod].out_w
                    need = int(-(-int(plan.thresholds[prod][r]) // pw))
                    edge_lat = lat[(prod, name)]
                    ready = max(ready, float(row_end[prod][img][need - 1])
                                + float(edge_lat[need - 1]))
                if plan.kind in WEIGHT_KINDS:
                    busy = row_t[r] > 0
                    start = np.maximum(free, ready)
                    if img == 0 and r == 0:
                        first_start[name] = float(start.min())
                    free = np.where(busy, start + row_t[r], free)
                    # a row of skipped groups still writes its positions (the tail)
                    e[r] = (float(free[busy].max()) + fill if busy.any() else ready) + tail
                else:  # each tile computes its share of the row
                    e[r] = ready
                    for t, n in plan.row_parts(r):
                        start = max(tile_free.get(t, 0.0), ready)
                        if img == 0 and r == 0:
                            first_start[name] = min(first_start.get(name, start), start)
                        tile_free[t] = start + _digital_row_ns(plan, rules, n / plan.out_w)
                        e[r] = max(e[r], tile_free[t])
            ends.append(e)
        row_end[name] = ends
    outs = [n for n in order if plans[n].kind == "output"]
    done = [max(float(row_end[n][img][-1]) for n in outs) for img in range(images)]
    end = max(float(row_end[n][-1][-1]) for n in order)
    entered = [0.0] * images
    for name in order:
        plan = plans[name]
        if plan.kind == "input":  # the first row's start on the input link
            row_ns = rules.input_ns(input_row_bytes(plan, rules))
            entered = [float(row_end[name][img][0]) - row_ns for img in range(images)]
    node_done = {n: [float(e[-1]) for e in row_end[n]] for n in order}
    return AnalyticTiming(EngineResult(done, end, lane_busy, image_in_ns=entered,
                                       node_done_ns=node_done), row_end, first_start)


def _row_times(plan: NodePlan, planes: dict[str, np.ndarray], img: int, rules: TimingRules,
               lane_busy: dict) -> tuple[np.ndarray, float]:
    """Streaming time of each output row per replica, shape (rows, replicas), and the
    pipeline fill of a group (r + c − max(r, c) of the slowest lane)."""
    P = plan.positions
    pos_t = np.zeros(P)
    r = rules.read_ns
    fill = 0.0
    for lane in plan.lanes:
        b = planes[plan.name][img, lane.row_block, lane.positions].astype(float)
        step = max(r, lane.conv_ns)
        d = b * step
        key = lane.key
        lane_busy[key] = lane_busy.get(key, 0.0) + float(d.sum())
        pos_t[lane.positions] = np.maximum(pos_t[lane.positions], d)
        fill = max(fill, r + lane.conv_ns - step)
    rows = np.arange(P) // plan.out_w
    replica = plan.pos_replica
    per = np.zeros((plan.out_h, plan.replicas))
    np.add.at(per, (rows, replica), pos_t)
    return per, fill


def _output_latency(plan: NodePlan, rules: TimingRules, topo: NocTopology) -> float:
    """Uncontended output path of one position: partial sums, adds, activation, output
    register and eDRAM write (the slowest replica)."""
    cyc = rules.cycle_ns
    worst = 0.0
    for rp in plan.replica_plans:
        t = 0.0
        bus = [b / rules.bus_bytes_per_ns for b in rp.bus_bytes]  # partial sums in
        for i in range(1, len(rp.tiles)):
            adds = rules.unit_ns("tile_shift_add", rp.merges[i])
            t = max(t, _chain_ns([bus[i], adds], cyc) + _packet_ns(
                rules, topo, rp.tiles[i], rp.merge_tile, rp.psum_bits[i], False))
        stages = [bus[0]]  # the local sums cross the bus while the remote ones travel
        if rp.merges[0]:
            stages.append(rules.unit_ns("tile_shift_add", rp.merges[0]))
        if plan.act:
            stages.append(rules.unit_ns("activation", plan.out_c))
        stages.append(rules.unit_ns("tile_output_register", plan.out_c))
        stages.append(rules.bank_ns(plan.out_c * rules.act_bytes))
        worst = max(worst, _chain_ns(stages, cyc),
                    t + _chain_ns(stages[1:], cyc) if t > 0 else 0.0)
    return worst


def _digital_row_ns(plan: NodePlan, rules: TimingRules, f: float = 1.0) -> float:
    """A share *f* of one row of a digital node through eDRAM read, unit, activation,
    eDRAM write."""
    if not (plan.unit or plan.row_in_bytes or plan.row_out_bytes):
        return 0.0
    stages = [rules.bank_ns(plan.row_in_bytes * f)]
    if plan.unit:
        stages.append(rules.unit_ns(plan.unit, plan.row_values * f))
    if plan.row_act:
        stages.append(rules.unit_ns("activation", plan.row_act * f))
    stages.append(rules.bank_ns(plan.row_out_bytes * f))
    return _chain_ns(stages, rules.cycle_ns)


def _chain_ns(durations: list[float], lat: float) -> float:
    """Uncontended cut-through time of stages entered one *lat* apart."""
    s, e = 0.0, 0.0
    for i, d in enumerate(durations):
        if i:
            s += lat
            e = max(s + d, e + lat)
        else:
            e = d
    return e


def _packet_ns(rules: TimingRules, topo: NocTopology, src: int, dst: int, bits: float,
               recv: bool) -> float:
    """Uncontended delivery time of one packet (cut-through over its stages)."""
    path = topo.path(src, dst)
    nbytes = bits / 8.0
    d = rules.serial_ns(rules.flits(bits))
    durs = [rules.offchip_ns(nbytes) if k[0] == "offchip" else d for k in path.stages]
    t = _chain_ns(durs, rules.hop_ns)
    if recv and src != PORT:  # activations are read from the source's eDRAM first
        t = max(t + rules.cycle_ns, rules.bank_ns(nbytes) + rules.cycle_ns + rules.hop_ns
                * (len(durs) - 1) + (d if durs else 0.0))
    return t + (rules.bank_ns(nbytes) if recv else 0.0)


def _edge_latency(ep: EdgePlan, producer: NodePlan, rules: TimingRules,
                  topo: NocTopology) -> np.ndarray:
    """Per producer row: the uncontended delivery time of its slowest packet."""
    out = np.zeros(max(producer.out_h, 1))
    if not ep.remote:
        return out
    for k in range(producer.out_h):
        for src, dsts, bits in row_packets(ep, k, rules.multicast, rules.act_bits):
            for j in dsts:
                out[k] = max(out[k], _packet_ns(rules, topo, src, ep.dst_tiles[j], bits, True))
    return out


def book_analytic(plans: dict[str, NodePlan], planes: dict[str, np.ndarray],
                  ledger: EnergyLedger, ids: KindIds, images: int, timing: AnalyticTiming,
                  noc: NocLoad) -> None:
    """Book all activity: one bulk record per kind (*ids*: the pipeline's ledger ids) over
    the node's active interval."""
    row_end, first_start = timing.row_end, timing.first_start
    for name in sorted(plans, key=lambda n: plans[n].order):
        plan = plans[name]
        t0 = first_start.get(name, 0.0)
        t1 = max(float(row_end[name][-1][-1]), t0)
        if plan.kind == "input":
            pass  # its activity: the input link and its packets (below)
        elif plan.kind in WEIGHT_KINDS:
            for lane in plan.lanes:
                b = planes[name][:, lane.row_block, lane.positions].astype(np.int64)
                # busy time = planes × per-plane busy, spread over the layer's interval
                ledger.record(t0, t1, ids.mvm[lane.key], float(b.sum()), float(b.size))
            ledger.record(t0, t1, ids.of("output", name), 0, float(plan.positions * images))
        else:
            ledger.record(t0, t1, ids.of("output", name), 0, float(plan.out_h * images))
        for role, n in noc.layer_units.get(name, {}).items():
            if n:
                ledger.record(t0, t1, ids.of(role, name), n * images, 0)
