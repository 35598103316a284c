"""Reservation servers: the shared FIFO resources of a tile and of the NoC.

A :class:`Server` is ``count`` identical instances (eDRAM banks, a bus, a digital unit
with its aggregate rate, a NoC link or port), each kept as a calendar of reserved
intervals. ``reserve(t, d)`` books the earliest interval of length ``d`` that starts at or
after ``t`` on the instance that can start it first, and returns ``(start, end)``.

Why calendars instead of ``simpy.Resource``: a request made at the current simulated
time (the usual case) is served exactly as a FIFO ``simpy.Resource`` would serve it, but
without the request, release and timeout events. Requests for a later time (the next
stage of a pipelined path, a lane's next group) are *advance reservations*: a request made
later that fits in a gap before them takes the gap, so the server is work-conserving
and, as long as the gaps are used in time order, equal to FIFO by arrival time.

:func:`cut_through` chains servers the way a pipelined path uses them (a NoC packet over
its ports and links, an output vector through the tile's digital units): the head enters
stage k ``lat`` after it entered stage k − 1 and the tail cannot leave stage k less than
``lat`` after it left stage k − 1, so a stage waiting for a slower upstream stays held
(virtual cut-through; docs/model.md).

Busy intervals are kept until they end before the current simulated time and are then
handed over in bulk (``drain``), so the per-request cost is a few list operations. A
request for a time before the end of the intervals handed over (a replica that loads a
group whose register slot freed while it waited for something else) starts at that end
(``floors``, per instance): it cannot see the gaps of the history dropped, and must not
double-book it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

_PRUNE = 64  # intervals kept per instance before the calendar is pruned up to now
_NEG = float("-inf")


def _never() -> float:
    """The clock of a server without one: no interval is ever final (nothing pruned)."""
    return _NEG


class Server:
    """``count`` identical instances of a FIFO resource, as reservation calendars.

    *label* names the resource in reports (e.g. ``"max-pool"``), *where* the instance
    (e.g. ``"tile 3"``), *cls* its busy class in the ledger's timeline. Every reservation
    adds its instance-time to :attr:`busy_ns`. *clock* returns the simulated time (the
    horizon before which intervals are final).
    """

    __slots__ = ("label", "where", "cls", "count", "_st", "_en", "_st0", "_en0", "busy_ns",
                 "clock", "done_st", "done_en", "floor", "floors")

    def __init__(self, label: str, where: str, count: int = 1, cls: str | None = None,
                 clock=None) -> None:
        if count < 1:
            raise ValueError(f"{label}: a server needs at least one instance")
        self.label = label
        self.where = where
        self.cls = cls
        self.count = count
        self._st: list[list[float]] = [[] for _ in range(count)]
        self._en: list[list[float]] = [[] for _ in range(count)]
        self._st0, self._en0 = self._st[0], self._en[0]  # instance 0 (the only one, often)
        self.busy_ns = 0.0
        self.clock = clock if clock is not None else _never
        self.done_st: list[float] = []  # final busy intervals (pruned from the calendars)
        self.done_en: list[float] = []
        #: per instance, the end of the last interval handed over: no request starts there
        #: before it; ``floor`` is the latest of them (one comparison for most requests)
        self.floors = [_NEG] * count
        self.floor = _NEG

    # ------------------------------------------------------------------ reservation
    def reserve(self, t: float, dur: float, end_min: float = _NEG) -> tuple[float, float]:
        """Book the earliest ``[s, e]`` with ``s >= t`` and ``e = max(s + dur, end_min)``."""
        # the hottest function of the group engine (one call per unit, bank, bus, port or
        # link a request uses): the single-instance case is written out in full, without
        # helper calls (issue 20)
        if t < self.floor:  # a late request: the history it would reach is gone
            if self.count > 1:
                return self._reserve_any(t, dur, end_min)
            t = self.floor
        if self.count == 1:
            st, en = self._st0, self._en0
            if not en or t >= en[-1]:  # idle from t on: the usual case
                e = t + dur
                if e < end_min:
                    e = end_min
                if e > t:
                    if en and en[-1] == t:
                        en[-1] = e
                    else:
                        st.append(t)
                        en.append(e)
                        if len(st) > _PRUNE and en[0] <= self.clock():
                            self._prune(0)
                    self.busy_ns += e - t
                return t, e
            # a request before the last reservation: the first gap that fits (``_fit``)
            i = bisect_right(en, t)  # intervals[i:] end after t
            s = t
            n = len(st)
            while i < n:
                e = s + dur
                if e < end_min:
                    e = end_min
                if e <= st[i]:
                    break
                if en[i] > s:
                    s = en[i]
                i += 1
            else:
                e = s + dur
                if e < end_min:
                    e = end_min
            if e <= s:
                return s, e
            # book [s, e] before interval i (``_book``)
            self.busy_ns += e - s
            if i and en[i - 1] == s:
                if i < n and st[i] == e:  # fills a gap exactly: join both neighbours
                    en[i - 1] = en[i]
                    del st[i]
                    del en[i]
                else:
                    en[i - 1] = e
            elif i < n and st[i] == e:
                st[i] = s
            else:
                st.insert(i, s)
                en.insert(i, e)
            if len(st) > _PRUNE and en[0] <= self.clock():
                self._prune(0)
            return s, e
        if self.count == 2:  # (two eDRAM banks, the usual tile) the same rule, unrolled
            st, en = self._st0, self._en0
            if en and t < en[-1]:
                i = 1
                st, en = self._st[1], self._en[1]
                if en and t < en[-1]:  # neither is idle from t on: the first gap that fits
                    s0, e0, p0 = _fit(self._st0, self._en0, t, dur, end_min)
                    if s0 <= t:
                        self._book(0, p0, s0, e0)
                        return s0, e0
                    s, e, pos = _fit(st, en, t, dur, end_min)
                    if s < s0:
                        self._book(1, pos, s, e)
                        return s, e
                    self._book(0, p0, s0, e0)
                    return s0, e0
            else:
                i = 0
            e = t + dur  # instance i is idle from t on
            if e < end_min:
                e = end_min
            if e > t:  # ``_book`` at the end of the calendar
                self.busy_ns += e - t
                if en and en[-1] == t:
                    en[-1] = e
                else:
                    st.append(t)
                    en.append(e)
                if len(st) > _PRUNE and en[0] <= self.clock():
                    self._prune(i)
            return t, e
        return self._reserve_any(t, dur, end_min)  # three or more instances: rare

    def _book(self, i: int, pos: int, s: float, e: float) -> None:
        if e <= s:
            return
        st, en = self._st[i], self._en[i]
        self.busy_ns += e - s
        if pos and en[pos - 1] == s:
            if pos < len(st) and st[pos] == e:  # fills a gap exactly: join both neighbours
                en[pos - 1] = en[pos]
                del st[pos]
                del en[pos]
            else:
                en[pos - 1] = e
        elif pos < len(st) and st[pos] == e:
            st[pos] = s
        else:
            st.insert(pos, s)
            en.insert(pos, e)
        if len(st) > _PRUNE and en[0] <= self.clock():
            self._prune(i)

    def _prune(self, i: int) -> None:
        """Move the intervals that ended before now to the final list (its callers call
        it only when the first has: the calendar is sorted, so there is one to move)."""
        en = self._en[i]
        k = bisect_right(en, self.clock())
        if k:
            st = self._st[i]
            self.done_st.extend(st[:k])
            self.done_en.extend(en[:k])
            if en[k - 1] > self.floors[i]:
                self.floors[i] = en[k - 1]
                if en[k - 1] > self.floor:
                    self.floor = en[k - 1]
            del st[:k]
            del en[:k]

    def _reserve_any(self, t: float, dur: float, end_min: float) -> tuple[float, float]:
        """:meth:`reserve` on any number of instances, each request starting no earlier
        than its instance's ``floors`` (a late request; three or more instances)."""
        floors = self.floors
        for i in range(self.count):  # an instance idle from t on: take it at once
            en = self._en[i]
            if (not en or t >= en[-1]) and t >= floors[i]:
                e = t + dur
                if e < end_min:
                    e = end_min
                self._book(i, len(en), t, e)
                return t, e
        best = None
        for i in range(self.count):
            s, e, pos = _fit(self._st[i], self._en[i], t if t >= floors[i] else floors[i],
                             dur, end_min)
            if best is None or s < best[0]:
                best = (s, e, pos, i)
                if s <= t:
                    break
        s, e, pos, i = best
        self._book(i, pos, s, e)
        return s, e

    def drain(self) -> tuple[list[float], list[float]]:
        """All busy intervals (final ones and those still in the calendars)."""
        st, en = list(self.done_st), list(self.done_en)
        for i in range(self.count):
            st.extend(self._st[i])
            en.extend(self._en[i])
        return st, en

    def __repr__(self) -> str:
        return f"Server({self.label!r}, {self.where!r}, count={self.count})"


def _fit(st: list[float], en: list[float], t: float, dur: float, end_min: float,
         ) -> tuple[float, float, int]:
    """Earliest feasible (start, end, insertion index) in one instance's calendar."""
    if not en or t >= en[-1]:
        e = t + dur
        return t, (e if e >= end_min else end_min), len(en)
    i = bisect_right(en, t)  # intervals[i:] end after t
    s = t
    n = len(st)
    while i < n:
        e = s + dur
        if e < end_min:
            e = end_min
        if e <= st[i]:
            return s, e, i
        if en[i] > s:
            s = en[i]
        i += 1
    e = s + dur
    return s, (e if e >= end_min else end_min), n


def cut_through(stages: Sequence[tuple[Server, float, float]], t: float,
                ) -> tuple[float, float]:
    """Pass a pipelined transfer through *stages* ``(server, duration, lat)``, entering at *t*.

    Stage k starts no earlier than the start of stage k − 1 plus its *lat* and ends no
    earlier than ``start + duration`` nor than the end of stage k − 1 plus *lat* (the
    first stage starts at or after *t*). Returns (start of the first stage, end of the
    last).
    """
    it = iter(stages)
    server, dur, _ = next(it)
    first, e_prev = server.reserve(t, dur)
    s_prev = first
    for server, dur, lat in it:
        s_prev, e_prev = server.reserve(s_prev + lat, dur, e_prev + lat)
    return first, e_prev
