"""The ADC pool of an IMA, shared by its crossbars (a ``simpy.Container`` of ADCs)."""

from __future__ import annotations

import simpy

from simulator.workplan import Lane


class AdcPools:
    """One pool per IMA in use; a lane holds min(its crossbars there, pool size) ADCs.

    When every IMA has at least one ADC per crossbar no lane can ever wait for one, so
    group fidelity skips the pool's get/put events (``shared`` is False); plane fidelity
    always arbitrates through the pools.
    """

    def __init__(self, env: simpy.Environment, hw, lanes: list[Lane], fidelity: str) -> None:
        self.env = env
        self.size = int(hw.ima.adcs)
        self.shared = self.size < int(hw.ima.crossbars) or fidelity == "plane"
        self.pools: dict[int, simpy.Container] = {}
        for lane in lanes:
            for part in lane.parts:
                if part.ima not in self.pools:
                    self.pools[part.ima] = simpy.Container(env, self.size, init=self.size)

    def of(self, lane: Lane) -> list[tuple[simpy.Container, int]]:
        """(pool, ADCs to hold) for every IMA the lane spans."""
        return [(self.pools[p.ima], p.adcs) for p in lane.parts]

    def acquire(self, held: list[tuple[simpy.Container, int]]):
        """Take the ADCs (pools in IMA order, so no two lanes can deadlock)."""
        for pool, n in held:
            yield pool.get(n)

    @staticmethod
    def release(held: list[tuple[simpy.Container, int]]) -> None:
        """Give the ADCs back (a put on a container with room succeeds at once)."""
        for pool, n in held:
            pool.put(n)

    @staticmethod
    def trace_hold(trace, lane: Lane, t0: float, t1: float) -> None:
        """The lane holds its ADCs over [t0, t1] (counter track of ADCs in use per IMA)."""
        for p in lane.parts:
            trace.adc_delta(p.tile, p.ima, t0, p.adcs)
            trace.adc_delta(p.tile, p.ima, t1, -p.adcs)
