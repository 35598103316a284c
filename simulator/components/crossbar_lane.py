"""A lane: the crossbars of one row block of one layer replica, executing MVMs.

The crossbars of all column blocks of a row block receive the same activation group
(broadcast), with their DACs, sample-and-holds, input/output registers and IMA
shift-and-add, and work in lockstep. An MVM of b bit planes is a two-stage pipeline:
crossbar read (read_ns) → S+H → conversion by the held ADCs (conv_ns), so
T(b) = r + c + (b − 1)·max(r, c); ReDy's selection latency precedes the first read.

Each group is first loaded from the tile's eDRAM over the bus into a free slot of the
input register (``edram_port``).

- ``group_lane``: one event per row-block MVM (default fidelity).
- ``plane_loader`` / ``plane_reader`` / ``plane_converter``: one event per bit plane, the
  register slots a ``simpy.Container``, the crossbar a ``simpy.Resource`` and the S+H a
  ``simpy.Store`` of capacity 1 between the read and conversion stages.
"""

from __future__ import annotations

from collections import deque

import simpy

from simulator.workplan import Lane, NodePlan, plane_duration


def group_lane(sim, plan: NodePlan, lane: Lane):
    """SimPy process of one lane at ``group`` fidelity.

    Per group: wait for the inputs (and room in the consumers' buffers), wait for a free
    input-register slot, load the group through the tile's eDRAM bank and bus, then
    stream its b planes. Without shared ADCs, consecutive groups overlap exactly as the
    plane pipeline does: a group's first read starts as soon as it is loaded and the
    reader is free (the previous group's last plane entered the S+H), so back-to-back
    groups cost b·max(r, c) each and plane/group latencies agree. With a shared ADC pool
    a group takes its ADCs when it starts and holds them for T(b).
    """
    env, ledger, trace = sim.env, sim.ledger, sim.trace
    held = sim.adc.of(lane) if sim.adc.shared else []
    port = sim.port(lane.parts[0].tile)
    nbytes = lane.rows * sim.act_bytes
    ow = plan.out_w
    busy = 0.0
    select_ns = sim.select_ns
    kind = lane.kind_mvm
    r_ns, c_ns = sim.read_ns, lane.conv_ns
    step = max(r_ns, c_ns)
    conv_free = -1e30  # end of the previous group's last conversion
    reader_free = -1e30  # when the reader finished handing the previous group to the S+H
    slot_free = deque([0.0] * sim.load_times.input_slots)  # register slots, oldest first
    # groups computed but not yet complete: the lane wakes at its register-slot times,
    # which (two slots) are its previous groups' ends, and completes them then; any that
    # would be late is handed to a timeout callback
    pending: deque = deque()
    prev_end = 0.0
    producers = [(prod, plan.thresholds[prod]) for prod in plan.producers]
    out_bufs = sim.buffers.of(plan.name)

    def complete_due() -> None:
        now = env.now
        while pending and pending[0][0] <= now:
            _, i, p = pending.popleft()
            sim.position_done(plan, i, p)

    def hand_over(before: float) -> None:
        while pending and pending[0][0] < before:
            t, i, p = pending.popleft()
            _complete_at(sim, plan, i, p, t)

    for img in range(sim.images):
        planes = sim.planes[plan.name][img, lane.row_block]
        progs = [(sim.arrival[(prod, plan.name)][img], thr) for prod, thr in producers]
        pos_list = lane.positions.tolist()
        b_list = planes[lane.positions].tolist()
        durations = plane_duration(planes[lane.positions], r_ns, c_ns)
        for pos, b, dur in zip(pos_list, b_list, durations.tolist(), strict=True):
            row = pos // ow
            complete_due()
            for prog, thr in progs:
                need = thr[row]
                if prog.level < need:
                    hand_over(float("inf"))
                    yield prog.wait(need)
                    complete_due()
            for counter, cap, h in out_bufs:
                need = img * h + row - cap + 1
                if counter.level < need:
                    hand_over(float("inf"))
                    yield counter.wait(need)
                    complete_due()
            slot = slot_free.popleft()
            if slot > env.now:
                hand_over(slot)
                yield env.timeout(slot - env.now)
                complete_due()
            loaded = port.load(env.now, nbytes)
            if b == 0:  # a skipped group: loaded and inspected, no plane streamed
                x = max(loaded, reader_free)
                end = reader_free = x + select_ns
                slot_free.append(end)
                ledger.record(x, end, kind, 0, 1)
                pending.append((end, img, pos))
                continue
            if held:
                hand_over(float("inf"))
                if loaded > env.now:
                    yield env.timeout(loaded - env.now)
                yield from sim.adc.acquire(held)
                x = env.now
                yield env.timeout(dur + select_ns)
                sim.adc.release(held)
                end = env.now
                if trace:
                    sim.adc.trace_hold(trace, lane, x, end)
            else:
                x = max(loaded, reader_free)
                first_conv = max(x + select_ns + r_ns, conv_free)
                end = first_conv + c_ns + (b - 1) * step
                conv_free = end
                if trace:
                    sim.adc.trace_hold(trace, lane, x + select_ns + r_ns, end)
            reader_free = end - c_ns
            slot_free.append(end)  # a register slot is free once its group is converted
            if trace:
                trace.mvm(lane, x, end, b)
            busy += end - max(x, prev_end)
            prev_end = end
            ledger.record(x, end, kind, b, 1)
            pending.append((end, img, pos))
    complete_due()
    hand_over(float("inf"))
    sim.lane_busy[(lane.layer, lane.replica, lane.row_block)] = busy


def _complete_at(sim, plan: NodePlan, img: int, pos: int, t: float) -> None:
    """Mark the lane's group of position *pos* done at time *t* (now or later)."""
    delay = t - sim.env.now
    if delay <= 0:
        sim.position_done(plan, img, pos)
        return
    ev = sim.env.timeout(delay)
    ev.callbacks.append(lambda _ev: sim.position_done(plan, img, pos))


def plane_loader(sim, plan: NodePlan, lane: Lane, loaded: simpy.Store,
                 slots: simpy.Container):
    """``plane`` fidelity, load stage: groups into free input-register slots."""
    port = sim.port(lane.parts[0].tile)
    nbytes = lane.rows * sim.act_bytes
    ow = plan.out_w
    for img in range(sim.images):
        for pos in lane.positions.tolist():
            yield from sim.wait_inputs(plan, img, pos // ow)
            yield from sim.buffers.wait_room(plan.name, img, pos // ow)
            yield slots.get(1)
            yield from port.load(nbytes)
            yield loaded.put((img, pos))


def plane_reader(sim, plan: NodePlan, lane: Lane, loaded: simpy.Store,
                 slots: simpy.Container, sample_hold: simpy.Store):
    """``plane`` fidelity, read stage: one crossbar read per bit plane into the S+H."""
    env, ledger = sim.env, sim.ledger
    xbar = simpy.Resource(env, capacity=1)
    for _ in range(sim.images * len(lane.positions)):
        img, pos = yield loaded.get()
        b = int(sim.planes[plan.name][img, lane.row_block, pos])
        t_start = env.now
        if sim.select_ns:
            yield env.timeout(sim.select_ns)
        if b == 0:
            ledger.record(t_start, env.now, lane.kind_read_first, 0, 1)
            slots.put(1)
            sim.position_done(plan, img, pos)
            continue
        sim.group_start[(id(lane), img, pos)] = t_start
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


def plane_converter(sim, plan: NodePlan, lane: Lane, sample_hold: simpy.Store,
                    slots: simpy.Container):
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
            slots.put(1)  # the group's register slot is free once it is converted
            sim.position_done(plan, img, pos)
