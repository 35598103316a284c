"""A lane: the crossbars of one row block of one layer replica, executing MVMs.

The crossbars of all column blocks of a row block receive the same activation group
(broadcast), with their DACs, sample-and-holds, input/output registers and IMA
shift-and-add, and work in lockstep. Per group:

1. wait for a free slot of the input register (``TimingRules.input_slots`` per lane; a
   slot is freed when its group's last plane is converted), then load the group from the
   tile's eDRAM bank over the bus (``TileMemory.load``);
2. dynamic policies: the tile's on-line unit (ReDy's statistics unit or the lossless
   policies' detect unit) takes the group's values as they cross the bus, at bus rate,
   and has its decision ``depth_cycles`` after the last byte (``TimingRules.online_ns``):
   the first read waits for it. The unit is pipelined at bus rate, so it never queues;
   while the lane streams the previous group this latency is hidden;
3. stream its b planes: crossbar read (r) → S+H → conversion by the held ADCs (c). The
   reader starts a plane once the S+H is free (the converter took the previous sample),
   the converter takes a sample once it finished the previous one, so
   T(b) = r + c + (b − 1)·max(r, c) for one group, and consecutive groups overlap.

- :class:`LaneState` computes a group's times in one step (``group`` fidelity): the
  closed form above when the lane owns its ADCs and c ≤ r, else the plane recurrence
  with the IMA's :class:`~simulator.engine.components.adc_pool.FluidAdcPool`.
- :class:`PlaneLane`: the same pipeline as SimPy processes, one event per bit plane
  (``plane`` fidelity): loader, reader and converter joined by a ``simpy.Store`` of
  capacity 1 (the S+H), the register slots a ``simpy.Container``, the ADCs taken from a
  ``simpy.Container`` per IMA.
"""

from __future__ import annotations

from collections import deque

import simpy

from simulator.engine.components.adc_pool import trace_hold
from simulator.engine.components.edram_buffer import ready_for_row
from simulator.model.plan import Lane

_NEG = -1e30


class LaneState:
    """One lane's pipeline state and its group rule (``group`` fidelity)."""

    __slots__ = ("lane", "memory", "pools", "slots", "reader_free", "take",
                 "conv_free", "busy", "prev_end", "nbytes", "r", "c", "fast", "ledger",
                 "trace", "unit_ns", "kind", "_x", "_b", "_left", "_p", "last_end", "rec",
                 "image_end")

    def __init__(self, lane: Lane, rules, memory, unit_ns: float, pools, ledger, kind: int,
                 channel, trace=None) -> None:
        self.lane = lane
        self.memory = memory  # the TileMemory of the lane's tile
        self.unit_ns = unit_ns  # the on-line unit's decision after the load (0: static)
        # shared ADCs: [(FluidAdcPool, crossbars, ADC-ns of work, longest job)] per IMA
        # part; None: an ADC per crossbar
        self.pools = pools
        self.slots = deque([0.0] * rules.input_slots)  # register slots, oldest first
        self.reader_free = _NEG  # last put into the S+H (the next read may start)
        self.take = _NEG  # when the converter took the last sample
        self.conv_free = _NEG  # end of the last conversion
        self.busy = 0.0
        self.prev_end = 0.0
        self.nbytes = lane.rows * rules.act_bytes
        self.r, self.c = rules.read_ns, lane.conv_ns
        self.fast = pools is None and lane.conv_ns <= rules.read_ns
        self.ledger = ledger
        self.rec = channel.append  # the engine's RecordChannel into the ledger
        self.trace = trace
        self.kind = kind  # the ledger id of the lane's MVM (the pipeline's KindIds)
        #: when watched (a list): per image, the end of its last streamed group
        self.image_end: list[float] | None = None

    def group(self, loaded: float, b: int, hold: float = _NEG) -> float:
        """Stream one group of *b* planes that is in the input register at *loaded*
        (``TileMemory.load_batch`` once ``slots[0]`` is free), its first read not before
        *hold*; returns when its last plane is converted (for a skipped group: when it
        was inspected and left the register)."""
        slots = self.slots
        slots.popleft()
        loaded += self.unit_ns
        if b == 0:  # skipped: loaded and inspected, no plane streamed; it leaves the
            # register in order, once the reader is past the previous group
            end = loaded if loaded > self.reader_free else self.reader_free
            slots.append(end)
            self.rec((end, end, self.kind, 0))
            return end
        r, c = self.r, self.c
        x = loaded if loaded > self.reader_free else self.reader_free
        if hold > x:
            x = hold
        if self.fast:
            first = x + r
            if first < self.conv_free:
                first = self.conv_free
            end = first + c + (b - 1) * r
            self.conv_free = end
            self.take = self.reader_free = end - c
        else:
            end = self._planes(x, b)
            first = x + r
        slots.append(end)
        busy_from = x if x > self.prev_end else self.prev_end
        self.busy += end - busy_from
        self.prev_end = end
        self.rec((x, end, self.kind, b))
        if self.trace:
            self.trace.mvm(self.lane, x, end, b)
            trace_hold(self.trace, self.lane, first, end)
        return end

    # -- shared ADCs: the planes of several lanes converted in the order they are ready --
    def begin(self, loaded: float, b: int, hold: float = _NEG) -> float | None:
        """Start a group on a shared ADC pool (``adc_pool.SharedAdcArbiter``): returns
        when its first sample is ready for conversion, or None for a skipped group
        (done)."""
        slots = self.slots
        slots.popleft()
        loaded += self.unit_ns
        if b == 0:
            end = loaded if loaded > self.reader_free else self.reader_free
            slots.append(end)
            self.ledger.record(end, end, self.kind, 0, 1)
            self.last_end = end
            return None
        x = loaded if loaded > self.reader_free else self.reader_free
        if hold > x:
            x = hold
        self._x, self._b, self._left = x, b, b
        q = x + self.r
        p = q if q > self.take else self.take
        self._p = p
        g = p if p > self.conv_free else self.conv_free
        self.take = g
        return g

    def advance(self) -> float | None:
        """Convert the sample taken at ``self.take``; returns when the next one is ready,
        or None once the group's last plane is converted (its end in ``last_end``)."""
        e = self._convert(self.take)
        self.conv_free = e
        self._left -= 1
        if self._left:
            q = self._p + self.r
            p = q if q > self.take else self.take
            self._p = p
            g = p if p > e else e
            self.take = g
            return g
        self.reader_free = self._p
        x, b, end = self._x, self._b, e
        self.slots.append(end)
        busy_from = x if x > self.prev_end else self.prev_end
        self.busy += end - busy_from
        self.prev_end = end
        self.ledger.record(x, end, self.kind, b, 1)
        if self.trace:
            self.trace.mvm(self.lane, x, end, b)
            trace_hold(self.trace, self.lane, x + self.r, end)
        self.last_end = end
        return None

    def _planes(self, x: float, b: int) -> float:
        """The plane recurrence: q read end, p put into the S+H, g taken by the
        converter, e conversion end (docs/model.md)."""
        r = self.r
        p_prev, g, e = self.reader_free, self.take, self.conv_free
        q = x + r
        for i in range(b):
            if i:
                q = p_prev + r
            p = q if q > g else g
            g = p if p > e else e
            e = self._convert(g)
            p_prev = p
        self.reader_free, self.take, self.conv_free = p_prev, g, e
        return e

    def _convert(self, t: float) -> float:
        if self.pools is None:
            return t + self.c
        end = t
        for pool, k, work, longest in self.pools:
            e = pool.convert(t, k, work, longest)
            if e > end:
                end = e
        return end


class PlaneLane:
    """A lane's loader, reader and converter processes (``plane`` fidelity)."""

    def __init__(self, env: simpy.Environment, lane: Lane, rules, memory, unit_ns: float, adcs,
                 waits, room, planes, ow: int, images: int, done, ledger, kind: int,
                 trace=None, held_back=None, depth: int = 2) -> None:
        self.env = env
        self.lane = lane
        self.rules = rules
        self.memory = memory
        self.unit_ns = unit_ns  # the on-line unit's decision after the load (0: static)
        self.jobs = adcs  # shared ADCs: [(simpy.Container, job ns)] per crossbar; None: own
        self.waits = waits  # [(arrival progress per image at the lane's tile, thresholds)]
        self.room = room
        self.planes = planes  # (images, positions of the lane) bit planes
        self.ow = ow
        self.images = images
        self.done = done  # callable(img, pos): the lane's group of pos is converted now
        # held_back(seq): event of the merge of the replica's seq-th position (its value:
        # the end of that position's output path)
        self.held_back = held_back
        self.depth = depth  # positions the replica may have ahead of its output path
        self.ledger = ledger
        self.kind = kind  # the ledger id of the lane's MVM
        self.trace = trace
        #: when watched (a list): per image, the end of its last streamed group
        self.image_end: list[float] | None = None
        self.slots = simpy.Container(env, rules.input_slots, init=rules.input_slots)
        self.loaded = simpy.Store(env)
        self.sample_hold = simpy.Store(env, capacity=1)
        self.busy = 0.0

    def start(self) -> None:
        """Start the three processes."""
        self.env.process(self.loader())
        self.env.process(self.reader())
        self.env.process(self.converter())

    def loader(self):
        """Groups into free input-register slots, inspected by the on-line unit."""
        env, lane, nbytes = self.env, self.lane, self.lane.rows * self.rules.act_bytes
        for img in range(self.images):
            bs = self.planes[img]
            for k, pos in enumerate(lane.positions.tolist()):
                yield from ready_for_row(self.waits, self.room, img, pos // self.ow)
                yield self.slots.get(1)
                ready = self.memory.load(env.now, nbytes) + self.unit_ns
                if ready > env.now:
                    yield env.timeout(ready - env.now)
                yield self.loaded.put((img, pos, int(bs[k])))

    def reader(self):
        """One crossbar read per bit plane into the S+H."""
        env, r = self.env, self.rules.read_ns
        n = len(self.lane.positions)
        for seq in range(self.images * n):
            img, pos, b = yield self.loaded.get()
            if seq >= self.depth and self.held_back is not None and b:
                out_end, _ = yield self.held_back(seq - self.depth)
                if out_end > env.now:
                    yield env.timeout(out_end - env.now)
            if b == 0:
                self.ledger.record(env.now, env.now, self.kind, 0, 1)
                self.slots.put(1)
                self.done(img, pos)
                continue
            start = env.now
            for i in range(b):
                yield env.timeout(r)
                yield self.sample_hold.put((img, pos, b, start, i == b - 1, i == 0, seq))

    def converter(self):
        """The ADCs convert each sampled plane: one job per crossbar, each on the next
        free ADC of its IMA (in FIFO order) when the ADCs are shared."""
        env, lane = self.env, self.lane
        c = lane.conv_ns
        prev_end = 0.0
        while True:
            img, pos, b, start, last, first, seq = yield self.sample_hold.get()
            if first and seq and self.held_back is not None:
                # the adders take this position's first plane once the previous
                # position's results left them (replica.py, ``or_delay``): only a
                # congested bus holds them longer than a read
                ev = self.held_back(seq - 1)
                if ev.triggered and ev.value[1] > self.rules.read_ns:
                    t = prev_end + ev.value[1] - c
                    if t > env.now:
                        yield env.timeout(t - env.now)
            if self.jobs is None:
                yield env.timeout(c)
            else:
                yield self._convert_jobs()
            if last:
                end = env.now
                self.busy += end - max(start, prev_end)
                prev_end = end
                if self.image_end is not None:
                    self.image_end.extend([end] * (img + 1 - len(self.image_end)))
                    self.image_end[img] = end
                self.ledger.record(start, end, self.kind, b, 1)
                if self.trace:
                    self.trace.mvm(lane, start, end, b)
                    trace_hold(self.trace, lane, start + self.rules.read_ns, end)
                self.slots.put(1)  # the group's register slot is free once it is converted
                self.done(img, pos)

    def _convert_jobs(self) -> simpy.Event:
        """Event that fires when every crossbar job of one plane is converted."""
        env = self.env
        done = env.event()
        left = [len(self.jobs)]

        def finished(pool) -> None:
            pool.put(1)
            left[0] -= 1
            if not left[0]:
                done.succeed()

        for pool, d in self.jobs:
            pool.get(1).callbacks.append(
                lambda _ev, pool=pool, d=d: env.timeout(d).callbacks.append(
                    lambda _t, pool=pool: finished(pool)))
        return done
