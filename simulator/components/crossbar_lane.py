"""A lane: the crossbars of one row block of one layer replica, executing MVMs.

The crossbars of all column blocks of a row block receive the same activation group
(broadcast), with their DACs, sample-and-holds, input/output registers and IMA
shift-and-add, and work in lockstep. An MVM of b bit planes is a two-stage pipeline:
crossbar read (read_ns) → S+H → conversion by the held ADCs (conv_ns), so
T(b) = r + c + (b − 1)·max(r, c); ReDy's selection latency precedes the first read.

- ``group_lane``: one event per row-block MVM (default fidelity).
- ``plane_reader`` / ``plane_converter``: one event per bit plane, the crossbar a
  ``simpy.Resource`` and the S+H a ``simpy.Store`` of capacity 1 between the stages.
"""

from __future__ import annotations

import simpy

from simulator.workplan import Lane, NodePlan, plane_duration


def group_lane(sim, plan: NodePlan, lane: Lane):
    """SimPy process of one lane at ``group`` fidelity.

    Without shared ADCs, consecutive groups overlap exactly as the plane pipeline does:
    a group's first read starts as soon as its inputs are ready and the S+H is free (the
    previous group's last plane entered conversion), so back-to-back groups cost
    b·max(r, c) each and plane/group latencies agree. With a shared ADC pool a group
    takes its ADCs when it starts and holds them for T(b).
    """
    env, ledger, trace = sim.env, sim.ledger, sim.trace
    held = sim.adc.of(lane) if sim.adc.shared else []
    ow = plan.out_w
    busy = 0.0
    select_ns = sim.select_ns
    kind = lane.kind_mvm
    r_ns, c_ns = sim.read_ns, lane.conv_ns
    step = max(r_ns, c_ns)
    conv_free = -1e30  # end of the previous group's last conversion
    prev_end = 0.0
    producers = [(prod, plan.thresholds[prod]) for prod in plan.producers]
    out_bufs = sim.buffers.of(plan.name)
    for img in range(sim.images):
        planes = sim.planes[plan.name][img, lane.row_block]
        progs = [(sim.arrival[(prod, plan.name)][img], thr) for prod, thr in producers]
        pos_list = lane.positions.tolist()
        b_list = planes[lane.positions].tolist()
        durations = plane_duration(planes[lane.positions], r_ns, c_ns)
        for pos, b, dur in zip(pos_list, b_list, durations.tolist(), strict=True):
            row = pos // ow
            ready = 0.0  # when the inputs and the output buffer room were all there
            for prog, thr in progs:
                need = thr[row]
                if prog.prefix < need:
                    yield prog.wait(need)
                    ready = env.now
                else:
                    ready = max(ready, prog.reached_at[need - 1])
            for counter, cap, h in out_bufs:
                need = img * h + row - cap + 1
                if counter.value < need:
                    yield counter.wait(need)
                    ready = env.now
                elif need > 0:
                    ready = max(ready, counter.reached_at(need))
            if b == 0:  # a skipped group: eDRAM read and selection only, no time
                ledger.record(env.now, env.now, kind, 0, 1)
                sim.position_done(plan, img, pos)
                continue
            if held:
                yield from sim.adc.acquire(held)
                x = env.now
                if trace:
                    sim.adc.trace_change(trace, lane, +1)
                yield env.timeout(dur + select_ns)
                sim.adc.release(held)
                if trace:
                    sim.adc.trace_change(trace, lane, -1)
                end = env.now
            else:
                x = max(ready, conv_free - c_ns)
                first_conv = max(x + select_ns + r_ns, conv_free)
                end = first_conv + c_ns + (b - 1) * step
                conv_free = end
                if trace:
                    sim.adc.trace_interval(trace, lane, x + select_ns + r_ns, end)
                yield env.timeout(end - env.now)
            if trace:
                trace.mvm(lane, x, end, b)
            busy += end - max(x, prev_end)
            prev_end = end
            ledger.record(x, end, kind, b, 1)
            sim.position_done(plan, img, pos)
    sim.lane_busy[(lane.layer, lane.replica, lane.row_block)] = busy


def plane_reader(sim, plan: NodePlan, lane: Lane, sample_hold: simpy.Store):
    """``plane`` fidelity, read stage: one crossbar read per bit plane into the S+H."""
    env, ledger = sim.env, sim.ledger
    xbar = simpy.Resource(env, capacity=1)
    ow = plan.out_w
    for img in range(sim.images):
        planes = sim.planes[plan.name][img, lane.row_block]
        for pos in lane.positions.tolist():
            yield from sim.wait_inputs(plan, img, pos // ow)
            yield from sim.buffers.wait_room(plan.name, img, pos // ow)
            b = int(planes[pos])
            if b == 0:
                ledger.record(env.now, env.now, lane.kind_read_first, 0, 1)
                sim.position_done(plan, img, pos)
                continue
            sim.group_start[(id(lane), img, pos)] = env.now
            if sim.select_ns:
                yield env.timeout(sim.select_ns)
            for i in range(b):
                with xbar.request() as req:
                    yield req
                    t0 = env.now
                    yield env.timeout(sim.read_ns)
                    ledger.record(t0, env.now,
                                  lane.kind_read_first if i == 0 else lane.kind_read, 1, 1)
                    if sim.trace:
                        sim.trace.mvm(lane, t0, env.now, 1)
                yield sample_hold.put((img, pos, i == b - 1))


def plane_converter(sim, plan: NodePlan, lane: Lane, sample_hold: simpy.Store):
    """``plane`` fidelity, conversion stage: the held ADCs convert each sampled plane."""
    env, ledger = sim.env, sim.ledger
    held = sim.adc.of(lane)
    busy = 0.0
    prev_end = 0.0
    while True:
        img, pos, last = yield sample_hold.get()
        yield from sim.adc.acquire(held)
        t0 = env.now
        yield env.timeout(lane.conv_ns)
        sim.adc.release(held)
        ledger.record(t0, env.now, lane.kind_convert, 1, 1)
        if last:
            # lane occupancy: how far this group extended the lane's busy timeline
            start = sim.group_start.pop((id(lane), img, pos))
            busy += env.now - max(start, prev_end)
            prev_end = env.now
            sim.lane_busy[(lane.layer, lane.replica, lane.row_block)] = busy
            sim.position_done(plan, img, pos)
