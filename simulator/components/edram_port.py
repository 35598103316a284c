"""A tile's eDRAM read port (banks) and eDRAM-to-IMA bus, loading activation groups.

Before a lane can stream a group, the group's rows × B/8 bytes are read from one of the
tile's eDRAM banks (``tile.edram_bus_bits`` per clock) and sent over the eDRAM-to-IMA
bus (``tile.bus_wires`` bits per clock) into the IMA's input register. The input
register holds ``input_slots`` groups per lane (2 KB / (crossbars × rows × B/8), at
least 2 because the register is consumed one bit plane at a time); a slot is freed when
its group's last plane is converted, so a lane loads its next group while it streams the
current one, and waits for a slot when all are in use.

- ``plane`` fidelity: the banks are a ``simpy.Resource(capacity=banks)`` and the bus a
  ``simpy.Resource(capacity=1)`` per tile; a loader process per lane fills the slots.
- ``group`` fidelity: the same FIFO servers kept as "next free" timelines, served in
  request order at the current simulated time (the lane process wakes when it makes the
  request), so contention is the same without scheduling SimPy events for each hold.
"""

from __future__ import annotations

import simpy


class TileLoadTimes:
    """Load timing rules shared by both fidelities."""

    def __init__(self, hw, timed: bool = True) -> None:
        clock = float(hw.clock_ghz)
        self.timed = timed  # False: loads take no time (an ablation, and for unit tests)
        self.bank_bytes_per_ns = hw.tile.edram_bus_bits / 8 * clock
        self.bus_bytes_per_ns = hw.tile.bus_wires / 8 * clock
        self.banks = int(hw.tile.edram_banks)
        group_bytes = hw.ima.crossbars * hw.crossbar.rows * hw.activations.bits / 8
        # the register is read one bit plane at a time, so even when it holds a single
        # group (ISAAC at 16 bits) the next group streams in behind the current one:
        # at least two groups are in flight per lane
        self.input_slots = max(2, int(hw.ima.input_register_bytes // group_bytes))

    def bank_ns(self, nbytes: float) -> float:
        """Time one bank is busy reading *nbytes*."""
        return nbytes / self.bank_bytes_per_ns if self.timed else 0.0

    def bus_ns(self, nbytes: float) -> float:
        """Time the bus is busy carrying *nbytes*."""
        return nbytes / self.bus_bytes_per_ns if self.timed else 0.0


class TimelinePort:
    """FIFO servers of one tile (banks, bus) as next-free times, for group fidelity."""

    def __init__(self, times: TileLoadTimes, ledger=None, busy_kind: int = -1) -> None:
        self.times = times
        self.bank_free = [0.0] * times.banks
        self.bus_free = 0.0
        self.ledger, self.busy_kind = ledger, busy_kind  # books the bus busy intervals

    def load(self, now: float, nbytes: float) -> float:
        """Serve a load requested at *now*; returns when the group is in the register."""
        i = min(range(len(self.bank_free)), key=self.bank_free.__getitem__)
        start = max(now, self.bank_free[i])
        read_end = start + self.times.bank_ns(nbytes)
        self.bank_free[i] = read_end
        bus_start = max(read_end, self.bus_free)
        self.bus_free = bus_start + self.times.bus_ns(nbytes)
        if self.ledger is not None and self.bus_free > bus_start:
            self.ledger.record(bus_start, self.bus_free, self.busy_kind, 0, 1)
        return self.bus_free


class ResourcePort:
    """The same servers as SimPy resources, for plane fidelity."""

    def __init__(self, env: simpy.Environment, times: TileLoadTimes, ledger=None,
                 busy_kind: int = -1) -> None:
        self.env = env
        self.times = times
        self.ledger, self.busy_kind = ledger, busy_kind
        self.banks = simpy.Resource(env, capacity=times.banks)
        self.bus = simpy.Resource(env, capacity=1)

    def load(self, nbytes: float):
        """SimPy process fragment: read from a bank, then cross the bus."""
        with self.banks.request() as req:
            yield req
            yield self.env.timeout(self.times.bank_ns(nbytes))
        with self.bus.request() as req:
            yield req
            t0 = self.env.now
            yield self.env.timeout(self.times.bus_ns(nbytes))
            if self.ledger is not None and self.env.now > t0:
                self.ledger.record(t0, self.env.now, self.busy_kind, 0, 1)
