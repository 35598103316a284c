"""The ADC pool of an IMA, shared by its crossbars.

Every active column of a crossbar's sample-and-holds is converted by an ADC in 1 / rate;
the columns of one crossbar are one *job* for one ADC (cols / rate). An IMA's ADCs form a
pool: a plane of a lane is converted when the jobs of all its crossbars are, each job on
the next free ADC of its IMA. With at least one ADC per crossbar (ISAAC) no job ever
waits, so a plane takes the longest of its jobs (``workplan.conversion_ns``) and neither
fidelity arbitrates. With fewer ADCs than crossbars (sharing):

- ``plane`` fidelity: a ``simpy.Container`` of ADCs per IMA; each job takes one ADC in
  FIFO order and gives it back (:class:`SimpyAdcPools`): exact arbitration.
- ``group`` fidelity: a :class:`FluidAdcPool` per IMA. A plane's jobs are ADC-ns of work;
  the pool keeps how many ADCs are in use over time and a plane takes, from the moment
  its sample is ready, what the pool has free (at most one ADC per crossbar) until its
  work is done (and no sooner than its longest job). When the lanes of an IMA overlap,
  their planes thus share the pool as the job-level arbitration interleaves them, work is
  conserved, and a busy period ends when plane fidelity's does (docs/model.md).
"""

from __future__ import annotations

import heapq
from bisect import bisect_right

import simpy

from simulator.model.plan import Lane

_EPS = 1e-9


class FluidAdcPool:
    """ADCs in use over time (piecewise constant) of one IMA, for group fidelity."""

    __slots__ = ("size", "bt", "use", "clock", "busy_ns")

    def __init__(self, size: int, clock=None) -> None:
        self.size = size
        self.bt: list[float] = []  # breakpoints; use[i] ADCs busy on [bt[i], bt[i + 1])
        self.use: list[float] = []  # the last entry is always 0 (idle after the last plane)
        self.clock = clock
        self.busy_ns = 0.0

    def convert(self, t: float, k: int, work: float, longest: float) -> float:
        """Convert one plane of k crossbars (*work* ADC-ns, *longest* job) ready at *t*.

        Returns when its conversion ends; the pool's occupancy is updated.
        """
        bt, use = self.bt, self.use
        if len(bt) > 64 and self.clock is not None:
            self._prune(self.clock())
        self.busy_ns += work
        h = min(k, self.size)
        if not bt or t >= bt[-1]:  # the pool is idle from t on
            end = t + max(work / h, longest)
            self._add(t, end, work / (end - t))
            return end
        i = bisect_right(bt, t) - 1
        s = t
        pieces = []
        n = len(bt)
        size = self.size
        while True:
            used = use[i] if i >= 0 else 0.0
            seg_end = bt[i + 1] if i + 1 < n else float("inf")
            rate = size - used
            if rate > h:
                rate = h
            if rate > _EPS:
                need = work / rate
                if s + need <= seg_end + _EPS:
                    end = s + need
                    pieces.append((s, end, rate))
                    break
                pieces.append((s, seg_end, rate))
                work -= rate * (seg_end - s)
            s = seg_end
            i += 1
        for a, b, rate in pieces:
            self._add(a, b, rate)
        return max(end, t + longest)

    def _add(self, a: float, b: float, rate: float) -> None:
        """Add *rate* ADCs in use over [a, b)."""
        if b - a <= _EPS:
            return
        use = self.use
        ia = self._split(a)
        ib = self._split(b)
        for k in range(ia, ib):
            use[k] += rate

    def _split(self, t: float) -> int:
        """Index of a breakpoint at *t* (inserted, with the level in force there)."""
        bt, use = self.bt, self.use
        i = bisect_right(bt, t)
        if i and abs(bt[i - 1] - t) <= _EPS:
            return i - 1
        level = use[i - 1] if i else 0.0
        bt.insert(i, t)
        use.insert(i, level)
        return i

    def _prune(self, horizon: float) -> None:
        """Drop the breakpoints before the segment in force at *horizon*."""
        k = bisect_right(self.bt, horizon) - 1
        if k > 0:
            del self.bt[:k]
            del self.use[:k]


class SharedAdcArbiter:
    """Converts the planes of all lanes on shared ADC pools in the order their samples are
    ready (``group`` fidelity), across groups asked for at different times.

    A replica hands its position's groups here (``request``) and waits for the event,
    whose value is when its last lane is converted. Every pending sample (a plane read
    into a lane's S+H) sits in one heap keyed by the time it is ready; a sample ready at
    *g* is converted, on its IMA's :class:`FluidAdcPool`, once the simulation clock
    reaches *g* − *lookahead*. The lookahead is a crossbar read (``read_ns``): a group
    asked for at *t* has its first sample no earlier than *t* + read (it is loaded, then
    read), so when a sample is converted every sample ready before it is already in the
    heap, and the pools serve samples in time order, as ``plane`` fidelity's FIFO pools
    do, whenever the groups were asked for. Ties go in request order, then lane order.
    A group asked for later whose sample is nevertheless ready earlier than one already
    converted (possible only when its load completed before it was asked for) takes the
    capacity the converted ones left, as a late request does in a FIFO.
    """

    def __init__(self, env: simpy.Environment, lookahead: float) -> None:
        self.env = env
        self.lookahead = lookahead
        self.heap: list[tuple[float, int, int]] = []  # (ready, request, lane)
        self.pending: dict[int, list] = {}  # request -> [states, lanes left, last, event]
        self.seq = 0
        self.wake_at = float("inf")  # the earliest wake-up scheduled

    def request(self, states, loaded, bs, hold) -> simpy.Event:
        """Event whose value is when the position's last lane is converted."""
        env = self.env
        ev = env.event()
        j = self.seq
        self.seq += 1
        last = float("-inf")
        left = 0
        for i, st in enumerate(states):
            g = st.begin(loaded[i], bs[i], hold)
            if g is None:  # skipped: done
                if st.last_end > last:
                    last = st.last_end
            else:
                heapq.heappush(self.heap, (g, j, i))
                left += 1
        if not left:
            ev.succeed(last)
            return ev
        self.pending[j] = [states, left, last, ev]
        self._schedule()
        return ev

    def _schedule(self) -> None:
        """A wake-up when the earliest pending sample may be converted (zero-delay when
        it already may: after the replicas woken at this instant asked)."""
        if not self.heap:
            return
        t = self.heap[0][0] - self.lookahead
        now = self.env.now
        if t < now:
            t = now
        if t < self.wake_at:
            self.wake_at = t
            self.env.timeout(t - now).callbacks.append(self._wake)

    def _wake(self, _ev) -> None:
        now = self.env.now
        if now < self.wake_at:  # superseded by an earlier wake-up that already ran
            return
        self.wake_at = float("inf")
        heap, pending = self.heap, self.pending
        horizon = now + self.lookahead
        while heap and heap[0][0] <= horizon:
            _, j, i = heapq.heappop(heap)
            req = pending[j]
            st = req[0][i]
            g = st.advance()
            if g is not None:
                heapq.heappush(heap, (g, j, i))
                continue
            if st.last_end > req[2]:
                req[2] = st.last_end
            req[1] -= 1
            if not req[1]:
                del pending[j]
                req[3].succeed(req[2])
        self._schedule()


class SimpyAdcPools:
    """One ``simpy.Container`` of ADCs per IMA in use, for plane fidelity."""

    def __init__(self, env: simpy.Environment, size: int, rate: float,
                 lanes: list[Lane]) -> None:
        self.rate = rate
        self.pools: dict[int, simpy.Container] = {}
        for lane in lanes:
            for part in lane.parts:
                if part.ima not in self.pools:
                    self.pools[part.ima] = simpy.Container(env, size, init=size)

    def jobs(self, lane: Lane) -> list[tuple[simpy.Container, float]]:
        """(pool, job duration) of every crossbar of the lane (in IMA order)."""
        return [(self.pools[p.ima], cols / self.rate) for p in lane.parts
                for cols in p.xbar_cols]


def trace_hold(trace, lane: Lane, t0: float, t1: float) -> None:
    """The lane holds its ADCs over [t0, t1] (counter track of ADCs in use per IMA)."""
    for p in lane.parts:
        trace.adc_delta(p.tile, p.ima, t0, p.adcs)
        trace.adc_delta(p.tile, p.ima, t1, -p.adcs)
