"""Producer → consumer progress of feature maps, for inter-layer pipelining.

Every graph node publishes, per image, how many of its output positions (row-major
H×W, or 1 for a vector) are complete. Completion can be out of order (replicas work on
interleaved positions), so the published figure is the length of the contiguous
completed prefix. Consumers wait until the prefix covers the input rows an output
position needs (sliding-window dependency).
"""

from __future__ import annotations

import bisect
import heapq
import itertools

import simpy

from simulator.model.event_loop import TimedCall, call_later


class WaitableLevel:
    """A level that only rises, with SimPy events for processes waiting on a threshold."""

    _seq = itertools.count()

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.level = 0
        self._waiters: list[tuple[int, int, simpy.Event]] = []

    def wait(self, threshold: int) -> simpy.Event:
        """Event that fires once the level reaches *threshold*."""
        ev = self.env.event()
        if self.level >= threshold:
            ev.succeed()
        else:
            heapq.heappush(self._waiters, (threshold, next(self._seq), ev))
        return ev

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.level:
            heapq.heappop(self._waiters)[2].succeed()


class FeatureMapProgress(WaitableLevel):
    """Contiguous completed prefix (the level) of one node's output positions, one image."""

    def __init__(self, env: simpy.Environment, positions: int) -> None:
        super().__init__(env)
        self.positions = positions
        # plain lists, not arrays: numpy scalars read back from them (np.float64) would
        # spread into every time computed from them and make the engine's arithmetic slow
        self.done = [False] * positions
        #: time at which the prefix first covered each position
        self.reached_at = [0.0] * positions
        self.finished_at: float | None = None
        #: callables (old_prefix, new_prefix) run whenever the prefix advances
        self.listeners: list = []

    @property
    def prefix(self) -> int:
        """Leading positions complete."""
        return self.level

    def ready(self, threshold: int) -> bool:
        """True when at least *threshold* leading positions are complete."""
        return self.level >= threshold

    def complete(self, first: int, count: int = 1) -> None:
        """Mark positions [first, first+count) complete and wake satisfied waiters."""
        n = self.positions
        done = self.done
        end = first + count
        if end > n:
            end = n
        done[first:end] = [True] * (end - first)
        old = self.level
        if first > old:
            return
        p = end if end > old else old  # [old, end) is complete now: scan on from there
        while p < n and done[p]:
            p += 1
        self.level = p
        if p != old:
            self.reached_at[old:p] = [self.env.now] * (p - old)
            for fn in self.listeners:
                fn(old, p)
        if p == n and self.finished_at is None:
            self.finished_at = self.env.now
        self._wake()


def rows_needed(out_row: int, kernel_h: int, stride_h: int, pad_h: int, dil_h: int,
                in_h: int) -> int:
    """Number of leading input rows needed to compute output row *out_row* of a window op."""
    last = out_row * stride_h - pad_h + (kernel_h - 1) * dil_h
    return max(1, min(in_h, last + 1))


class RowCounter(WaitableLevel):
    """Rows released by a consumer (the level), counted across images."""

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env)
        self._values: list[int] = [0]
        self._times: list[float] = [0.0]

    @property
    def value(self) -> int:
        """Rows released so far."""
        return self.level

    def reached_at(self, threshold: int) -> float:
        """Time at which the counter first reached *threshold* (it must have)."""
        return self._times[bisect.bisect_left(self._values, threshold)]

    def advance(self, value: int) -> None:
        """Raise the counter to *value* (never lowers it) and wake satisfied waiters."""
        if value <= self.level:
            return
        self.level = value
        self._values.append(value)
        self._times.append(self.env.now)
        self._wake()


def at(env: simpy.Environment, t: float, fn) -> None:
    """Call *fn()* at simulated time *t* (now, if *t* is not in the future)."""
    delay = t - env._now
    if delay <= 0:
        fn()
    else:
        call_later(env, delay, _call, fn)


def _call(entry: TimedCall) -> None:
    entry.arg()


class NodeOutput:
    """Publishes a node's output rows: a row is complete when its last position is.

    Positions are reported with the (present or future) time they complete; the row's
    completion is scheduled at the latest of them, and its progress advances then.
    """

    def __init__(self, env: simpy.Environment, progress: list[FeatureMapProgress],
                 out_h: int, out_w: int) -> None:
        self.env = env
        self.progress = progress
        self.w = out_w
        self.left = [[out_w] * out_h for _ in progress]
        self.end = [[0.0] * out_h for _ in progress]

    def position_done(self, img: int, pos: int, t: float) -> None:
        """Output position *pos* of image *img* is complete at time *t*."""
        row = pos // self.w
        end = self.end[img]
        if t > end[row]:
            end[row] = t
        left = self.left[img]
        left[row] -= 1
        if not left[row]:
            self.row_done(img, row, end[row])

    def row_done(self, img: int, row: int, t: float) -> None:
        """Output row *row* of image *img* is complete at time *t*."""
        prog, w = self.progress[img], self.w
        at(self.env, t, lambda: prog.complete(row * w, w))
