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

import numpy as np
import simpy


class FeatureMapProgress:
    """Contiguous completed prefix of one node's output positions for one image."""

    _seq = itertools.count()

    def __init__(self, env: simpy.Environment, positions: int) -> None:
        self.env = env
        self.positions = positions
        self.done = np.zeros(positions, dtype=bool)
        self.prefix = 0
        #: time at which the prefix first covered each position
        self.reached_at = np.zeros(positions)
        self.finished_at: float | None = None
        self._waiters: list[tuple[int, int, simpy.Event]] = []
        #: callables (old_prefix, new_prefix) run whenever the prefix advances
        self.listeners: list = []

    def ready(self, threshold: int) -> bool:
        """True when at least *threshold* leading positions are complete."""
        return self.prefix >= threshold

    def wait(self, threshold: int) -> simpy.Event:
        """Event that fires once *threshold* leading positions are complete."""
        ev = self.env.event()
        if self.prefix >= threshold:
            ev.succeed()
        else:
            heapq.heappush(self._waiters, (threshold, next(self._seq), ev))
        return ev

    def complete(self, first: int, count: int = 1) -> None:
        """Mark positions [first, first+count) complete and wake satisfied waiters."""
        self.done[first : first + count] = True
        if first > self.prefix:
            return
        old = p = self.prefix
        n = self.positions
        while p < n and self.done[p]:
            p += 1
        self.prefix = p
        if p != old:
            self.reached_at[old:p] = self.env.now
            for fn in self.listeners:
                fn(old, p)
        if p == n and self.finished_at is None:
            self.finished_at = self.env.now
        while self._waiters and self._waiters[0][0] <= p:
            heapq.heappop(self._waiters)[2].succeed()


def rows_needed(out_row: int, kernel_h: int, stride_h: int, pad_h: int, dil_h: int,
                in_h: int) -> int:
    """Number of leading input rows needed to compute output row *out_row* of a window op."""
    last = out_row * stride_h - pad_h + (kernel_h - 1) * dil_h
    return max(1, min(in_h, last + 1))


class RowCounter:
    """A monotonic counter (rows released by a consumer) that processes can wait on."""

    _seq = itertools.count()

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.value = 0
        self._waiters: list[tuple[int, int, simpy.Event]] = []
        self._values: list[int] = [0]
        self._times: list[float] = [0.0]

    def reached_at(self, threshold: int) -> float:
        """Time at which the counter first reached *threshold* (it must have)."""
        return self._times[bisect.bisect_left(self._values, threshold)]

    def wait(self, threshold: int) -> simpy.Event:
        """Event that fires once the counter reaches *threshold*."""
        ev = self.env.event()
        if self.value >= threshold:
            ev.succeed()
        else:
            heapq.heappush(self._waiters, (threshold, next(self._seq), ev))
        return ev

    def advance(self, value: int) -> None:
        """Raise the counter to *value* (never lowers it) and wake satisfied waiters."""
        if value <= self.value:
            return
        self.value = value
        self._values.append(value)
        self._times.append(self.env.now)
        while self._waiters and self._waiters[0][0] <= value:
            heapq.heappop(self._waiters)[2].succeed()
