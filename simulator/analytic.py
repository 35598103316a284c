"""Analytic fidelity: closed-form counts and a row-level pipeline bound, no event loop.

Counts and dynamic energy are exactly those of the event-driven engine (same activity
kinds, same bit planes). Timing uses a per-output-row recurrence instead of events:
a node starts output row r when the producer rows it needs are done and its previous
row is done; a weight layer's row takes Σ over the row's positions of the slowest row
block's MVM time, divided by the replicas working in parallel. Resource contention for
shared ADCs is not modelled here (it is in the event engine).
"""

from __future__ import annotations

import numpy as np

from simulator.engine import EngineResult
from simulator.ledger import EnergyLedger
from simulator.workplan import WEIGHT_KINDS, NodePlan, plane_duration


def analytic_run(plans: dict[str, NodePlan], planes: dict[str, np.ndarray], hw,
                 ledger: EnergyLedger, images: int, select_ns: float = 0.0) -> EngineResult:
    """Book all activity in *ledger* and return the bound timing."""
    read_ns = float(hw.crossbar.read_ns)
    row_end: dict[str, list[np.ndarray]] = {}
    order = sorted(plans, key=lambda n: plans[n].order)
    lane_busy: dict[tuple[str, int, int], float] = {}
    first_start: dict[str, float] = {}
    for name in order:
        plan = plans[name]
        ends = []
        prev_end = 0.0
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
                start = max(prev_end, ready)
                if img == 0 and r == 0:
                    first_start[name] = start
                prev_end = start + row_t[r]
                e[r] = prev_end
            ends.append(e)
        row_end[name] = ends
    # book the activity: one bulk record per kind over the node's active interval
    for name in order:
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
    outs = [n for n in order if plans[n].kind == "output"]
    done = [max(float(row_end[n][img][-1]) for n in outs) for img in range(images)]
    end = max(float(row_end[n][-1][-1]) for n in order)
    return EngineResult(done, end, lane_busy)


def _row_times(plan: NodePlan, planes: dict[str, np.ndarray], img: int, read_ns: float,
               select_ns: float, lane_busy: dict) -> np.ndarray:
    """Service time of each output row of *plan* for image *img*."""
    if plan.kind not in WEIGHT_KINDS:
        return np.full(plan.out_h, plan.row_ns)
    P = plan.positions
    pos_t = np.zeros(P)
    for lane in plan.lanes:
        b = planes[plan.name][img, lane.row_block, lane.positions]
        d = plane_duration(b, read_ns, lane.conv_ns) + np.where(b > 0, select_ns, 0.0)
        key = (plan.name, lane.replica, lane.row_block)
        lane_busy[key] = lane_busy.get(key, 0.0) + float(d.sum())
        pos_t[lane.positions] = np.maximum(pos_t[lane.positions], d)
    per_row = pos_t.reshape(plan.out_h, plan.out_w).sum(axis=1)
    return per_row / plan.replicas
