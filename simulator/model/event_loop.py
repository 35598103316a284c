"""The event loop: SimPy's environment with a tighter run loop, and a light timed call.

The group engine steps ~70,000 events per ResNet-18 image; most are a replica's merge of
one output position at the simulated time its last lane converted, or a row arriving.
Both additions keep SimPy's order of events exactly: the queue holds ``(time, priority,
id, event)`` and is popped in that order, ties broken by the id drawn when the event was
scheduled, as ``simpy.Environment.schedule`` does.

- :class:`EventLoop` runs the queue to its end without ``step``'s method call and
  exception frame per event (``run(until=...)`` is SimPy's own);
- :func:`call_later` schedules a plain call at a later simulated time on any SimPy
  environment, ordered exactly as ``env.timeout(delay).callbacks.append(fn)`` would be,
  without the ``Timeout`` object, and with the call's argument carried by the queue entry
  instead of a closure.

Both read SimPy's queue, clock and id counter (``_queue``, ``_now``, ``_eid``; simpy 4);
tests/test_event_loop.py checks the order against SimPy's own timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL


class TimedCall:
    """A queue entry that calls ``fn(entry)`` when the loop reaches it: an event that has
    already succeeded, without a value, whose only callback is the call; ``arg`` is what
    the call needs."""

    __slots__ = ("callbacks", "arg")
    _ok = True  # read by the loop as for any event: a call never fails

    def __init__(self, fn: Callable[[TimedCall], None], arg: Any) -> None:
        self.callbacks = [fn]
        self.arg = arg


def call_later(env: simpy.Environment, delay: float, fn: Callable[[TimedCall], None],
               arg: Any = None) -> None:
    """Call ``fn(entry)`` (``entry.arg`` is *arg*) *delay* ≥ 0 ns after ``env.now``,
    ordered among the other events as a ``Timeout`` of that delay scheduled now would be."""
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), TimedCall(fn, arg)))


class EventLoop(simpy.Environment):
    """A ``simpy.Environment`` whose ``run()`` to the end is a tight loop (same order)."""

    def run(self, until: Any = None) -> Any:
        """Process every event in order until none is left (with *until*: SimPy's run)."""
        if until is not None:
            return super().run(until)
        queue = self._queue
        pop = heappop
        while queue:
            self._now, _, _, event = pop(queue)
            callbacks, event.callbacks = event.callbacks, None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                # a failed event nobody handled: crash as simpy.Environment.step does
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc
        return None
