"""Tile digital units (max-pool, shift-and-add) executing non-weight nodes row by row.

A node runs on the tiles of its last producer; each output row takes ``row_ns`` =
values / (unit count × tiles × clock), one value per clock per unit (docs/model.md).
Concat, flatten and the output node are address bookkeeping and take no time.
"""

from __future__ import annotations

from simulator.workplan import NodePlan


def digital_node(sim, plan: NodePlan):
    """SimPy process of one non-weight node."""
    env, ledger = sim.env, sim.ledger
    for img in range(sim.images):
        for row in range(plan.out_h):
            yield from sim.wait_inputs(plan, img, row)
            yield from sim.buffers.wait_room(plan.name, img, row)
            t0 = env.now
            if plan.row_ns:
                yield env.timeout(plan.row_ns)
                if sim.trace:
                    sim.trace.digital(plan.name, plan.tile, t0, env.now)
            ledger.record(t0, env.now, plan.kind_output, 0, 1)
            sim.progress[plan.name][img].complete(row * plan.out_w, plan.out_w)
