"""simulator/model/event_loop.py: the same order of events as SimPy's own loop."""

from __future__ import annotations

import pytest
import simpy

from simulator.model.event_loop import EventLoop, call_later


def _scenario(env: simpy.Environment, light: bool) -> list[tuple[float, str]]:
    """Processes and timed calls that tie at the same times; returns the order seen."""
    seen: list[tuple[float, str]] = []

    def later(delay: float, name: str) -> None:
        if light:
            call_later(env, delay, lambda entry: seen.append((env.now, entry.arg)), name)
        else:
            env.timeout(delay).callbacks.append(lambda _ev, n=name: seen.append((env.now, n)))

    def proc(name: str, step: float):
        for i in range(4):
            later(2.0 * step, f"{name}-call{i}")  # ties with the other process's events
            yield env.timeout(step)
            seen.append((env.now, f"{name}-{i}"))

    env.process(proc("a", 1.0))
    env.process(proc("b", 2.0))
    later(0.0, "now")
    later(3.0, "three")
    return seen


@pytest.mark.parametrize("light", [False, True])
def test_event_loop_keeps_simpys_order(light: bool) -> None:
    ref_env = simpy.Environment()
    ref = _scenario(ref_env, light=False)
    ref_env.run()
    env = EventLoop()
    got = _scenario(env, light=light)
    env.run()
    assert got == ref
    # by hand, at t = 2: a-call0 and b's wake-up were both scheduled at t = 0, a's first
    # (a started first); a's second wake-up was scheduled at t = 1
    at2 = [name for t, name in got if t == 2.0]
    assert at2 == ["a-call0", "b-0", "a-1"]
    # the last event: b's call scheduled at t = 6 for 2 x 2 ns later
    assert got[-1] == (10.0, "b-call3") and env.now == 10.0


def test_event_loop_raises_an_unhandled_failure() -> None:
    env = EventLoop()

    def bad():
        yield env.timeout(1.0)
        raise ValueError("boom")

    env.process(bad())
    with pytest.raises(ValueError, match="boom"):
        env.run()


def test_event_loop_run_until_is_simpys() -> None:
    env = EventLoop()
    hits: list[float] = []
    for t in (1.0, 2.0, 5.0):
        call_later(env, t, lambda entry: hits.append(entry.arg), t)
    env.run(until=3.0)
    assert hits == [1.0, 2.0] and env.now == 3.0
    env.run()
    assert hits == [1.0, 2.0, 5.0]
