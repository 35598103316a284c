"""Analytic fidelity: closed-form counts and a row-level pipeline bound, no event loop.

Counts and dynamic energy are exactly those of the event-driven engine (same activity
kinds, same bit planes). Timing uses a per-output-row recurrence instead of events:
each replica of a layer is a server that starts its share of output row r when the
producer rows it needs are done and it has finished its share of row r − 1; its share
takes Σ over its positions in the row of the slowest row block's T(b). Not modelled
here: ADC sharing, NoC transfers, bounded buffers and the overlap of consecutive groups
in a lane (all in the event engine), so this is a quick estimate, not a bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.engine import EngineResult
from simulator.ledger import EnergyLedger
from simulator.workplan import WEIGHT_KINDS, NodePlan, plane_duration


@dataclass
class AnalyticTiming:
    """Row completion times of every node, and the resulting timing."""

    result: EngineResult
    row_end: dict[str, list[np.ndarray]]  # node → per image, end of each output row
    first_start: dict[str, float]  # node → start of its first row of image 0


def analytic_run(plans: dict[str, NodePlan], planes: dict[str, np.ndarray], hw,
                 ledger: EnergyLedger, images: int, select_ns: float = 0.0) -> EngineResult:
    """Book all activity in *ledger* and return the estimated timing."""
    timing = analytic_timing(plans, planes, hw, images, select_ns)
    book_analytic(plans, planes, ledger, images, timing)
    return timing.result


def analytic_timing(plans: dict[str, NodePlan], planes: dict[str, np.ndarray], hw,
                    images: int, select_ns: float = 0.0) -> AnalyticTiming:
    """The row-level recurrence (no booking)."""
    read_ns = float(hw.crossbar.read_ns)
    row_end: dict[str, list[np.ndarray]] = {}
    order = sorted(plans, key=lambda n: plans[n].order)
    lane_busy: dict[tuple[str, int, int], float] = {}
    first_start: dict[str, float] = {}
    for name in order:
        plan = plans[name]
        ends = []
        free = np.zeros(max(plan.replicas, 1))  # when each replica (server) is next free
        for img in range(images):
            if plan.kind == "input":
                ends.append(np.zeros(plan.out_h))
                continue
            row_t = _row_times(plan, planes, img, read_ns, select_ns, lane_busy)
            e = np.zeros(plan.out_h)
            for r in range(plan.out_h):
                ready = 0.0
                for prod in plan.producers:
                    pw = plans[prod].out_w
                    need = int(-(-int(plan.thresholds[prod][r]) // pw))
                    ready = max(ready, float(row_end[prod][img][need - 1]))
                # every replica starts its share of row r when the row's inputs are
                # there and it has finished its share of the previous rows
                busy = row_t[r] > 0
                start = np.maximum(free, ready)
                if img == 0 and r == 0:
                    first_start[name] = float(start.min())
                free = np.where(busy, start + row_t[r], free)
                e[r] = float(free[busy].max()) if busy.any() else ready
            ends.append(e)
        row_end[name] = ends
    outs = [n for n in order if plans[n].kind == "output"]
    done = [max(float(row_end[n][img][-1]) for n in outs) for img in range(images)]
    end = max(float(row_end[n][-1][-1]) for n in order)
    return AnalyticTiming(EngineResult(done, end, lane_busy), row_end, first_start)


def book_analytic(plans: dict[str, NodePlan], planes: dict[str, np.ndarray],
                  ledger: EnergyLedger, images: int, timing: AnalyticTiming) -> None:
    """Book all activity: one bulk record per kind over the node's active interval."""
    row_end, first_start = timing.row_end, timing.first_start
    for name in sorted(plans, key=lambda n: plans[n].order):
        plan = plans[name]
        if plan.kind == "input":
            continue
        t0 = first_start.get(name, 0.0)
        t1 = max(float(row_end[name][-1][-1]), t0)
        span = max(t1 - t0, 1e-9)
        if plan.kind in WEIGHT_KINDS:
            for lane in plan.lanes:
                b = planes[name][:, lane.row_block, lane.positions].astype(np.int64)
                # busy time = planes × per-plane busy, spread over the layer's interval
                ledger.record(t0, t1, lane.kind_mvm, float(b.sum()), float(b.size))
            ledger.record(t0, t1, plan.kind_output, 0, float(plan.positions * images),
                          busy_scale=0.0)
        else:
            busy = plan.row_ns * plan.out_h * images
            ledger.record(t0, t1, plan.kind_output, 0, float(plan.out_h * images),
                          busy_scale=busy / span)


def _row_times(plan: NodePlan, planes: dict[str, np.ndarray], img: int, read_ns: float,
               select_ns: float, lane_busy: dict) -> np.ndarray:
    """Service time of each output row per replica, shape (rows, replicas)."""
    if plan.kind not in WEIGHT_KINDS:
        return np.full((plan.out_h, 1), plan.row_ns)
    P = plan.positions
    pos_t = np.zeros(P)
    for lane in plan.lanes:
        b = planes[plan.name][img, lane.row_block, lane.positions]
        # a dynamic pipeline inspects every group, skipped ones included
        d = plane_duration(b, read_ns, lane.conv_ns) + select_ns
        key = (plan.name, lane.replica, lane.row_block)
        lane_busy[key] = lane_busy.get(key, 0.0) + float(d.sum())
        pos_t[lane.positions] = np.maximum(pos_t[lane.positions], d)
    # a position's time is its slowest row block's; replica p mod R serves position p
    rows = np.arange(P) // plan.out_w
    replica = np.arange(P) % plan.replicas
    per = np.zeros((plan.out_h, plan.replicas))
    np.add.at(per, (rows, replica), pos_t)
    return per
