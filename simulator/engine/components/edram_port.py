"""A tile's eDRAM (banks) and eDRAM-to-IMA bus.

Before a lane can stream a group, the group's rows × B/8 bytes are read from one of the
tile's eDRAM banks (``tile.edram_bus_bits`` per clock) and sent over the eDRAM-to-IMA
bus (``tile.bus_wires`` bits per clock) into a slot of the IMA's input register. The
banks also take the writes of the tile's outputs and of the rows that arrive over the
NoC, and the reads and writes of the digital nodes on the tile, so reads and writes
contend for them. Banks and bus are :class:`~simulator.engine.components.server.Server` s.
"""

from __future__ import annotations

from simulator.engine.components.server import Server
from simulator.engine.components.stats import Stats, server_stats
from simulator.model.timing import TimingRules


class TileMemory:
    """The eDRAM banks and the eDRAM-to-IMA bus of one tile."""

    def __init__(self, tile: int, rules: TimingRules, clock=None) -> None:
        self.tile = tile
        self.rules = rules
        self.banks = Server("eDRAM bank", f"tile {tile}", rules.banks, "edram", clock)
        self.bus = Server("eDRAM-to-IMA bus", f"tile {tile}", 1, "bus", clock)

    def load(self, t: float, nbytes: float) -> float:
        """Load one group requested at *t*; returns when it is in the input register."""
        return self.load_batch(t, (nbytes,))[0]

    def load_batch(self, t: float, sizes) -> list[float]:
        """Load groups of *sizes* bytes requested together at *t* (the lanes of a replica
        on this tile, for one output position); returns when each is in its register.

        Group i is read from bank i mod banks (a bank reads its groups back to back),
        then crosses the bus in order as soon as its read is done and the bus is free:
        the same schedule as one request per group at *t*. With ``load_timing`` off the
        loads take no time.
        """
        return self.load_planned(t, self.batch_plan(sizes))

    def batch_plan(self, sizes) -> tuple:
        """What :meth:`load_planned` needs of a batch of *sizes* bytes, computed once (a
        replica loads the same sizes at every position)."""
        rules = self.rules
        n = len(sizes)
        rate, bus_rate = rules.bank_bytes_per_ns, rules.bus_bytes_per_ns
        nb = min(rules.banks, n)
        share = [0.0] * nb
        for i, sz in enumerate(sizes):
            share[i % nb] += sz
        return (n, nb, [sh / rate for sh in share],
                [sz / rate for sz in sizes], [sz / bus_rate for sz in sizes],
                sum(sizes) / rate if n > 1 else 0.0)

    def load_planned(self, t: float, plan: tuple) -> list[float]:
        """:meth:`load_batch` of a :meth:`batch_plan` (the same arithmetic)."""
        n, nb, bank_ns, read_ns, bus_ns, total_ns = plan
        if not self.rules.load_timing:
            return [t] * n
        if n == 1:
            e = self.banks.reserve(t, bank_ns[0])[1]
            return [self.bus.reserve(e, bus_ns[0])[1]]
        if nb == 1:
            _, e = self.banks.reserve(t, total_ns)
            read_end = []
            acc = e - total_ns
            for d in read_ns:
                acc += d
                read_end.append(acc)
        else:
            reserve = self.banks.reserve
            acc = []
            for d in bank_ns:
                acc.append(reserve(t, d)[0])
            read_end = []
            j = 0
            for d in read_ns:
                acc[j] += d
                read_end.append(acc[j])
                j += 1
                if j == nb:
                    j = 0
        # the bus carries the groups in order, each once read; groups that follow each
        # other without a gap share one reservation
        reserve = self.bus.reserve
        ends = []
        seg_start = seg_end = read_end[0]
        seg_len = 0.0
        first_of_seg = 0
        for i in range(n):
            ready = read_end[i]
            if ready > seg_end:  # a gap: book the segment so far
                s = reserve(seg_start, seg_len)[0]
                shift = s - seg_start
                if shift:
                    for j in range(first_of_seg, i):
                        ends[j] += shift
                prev = ends[-1]
                if ready < prev:
                    ready = prev
                seg_start = seg_end = ready
                seg_len = 0.0
                first_of_seg = i
            d = bus_ns[i]
            seg_end += d
            seg_len += d
            ends.append(seg_end)
        s = reserve(seg_start, seg_len)[0]
        shift = s - seg_start
        if shift:
            for j in range(first_of_seg, n):
                ends[j] += shift
        return ends

    def write_stage(self, nbytes: float, lat: float) -> tuple[Server, float, float]:
        """A bank write of *nbytes* as a ``cut_through`` stage."""
        return (self.banks, self.rules.bank_ns(nbytes), lat)

    def read_stage(self, nbytes: float) -> tuple[Server, float, float]:
        """A bank read of *nbytes* as the first ``cut_through`` stage."""
        return (self.banks, self.rules.bank_ns(nbytes), 0.0)

    def servers(self) -> list[Server]:
        """Its reservation servers: the banks and the bus."""
        return [self.banks, self.bus]

    def stats(self) -> Stats:
        """Busy time per bank and of the bus."""
        return server_stats(self.banks).merge(server_stats(self.bus))
