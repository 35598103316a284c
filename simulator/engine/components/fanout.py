"""Produced rows to every tile that needs them (the fan-out of a tensor edge).

When a producer row completes, every part of it that a destination tile needs and that
was computed on another tile is sent over the NoC (``simulator.model.transfers.row_packets``:
one packet per source and destination tile, or one multicast per source). The row is
present in a destination tile's eDRAM when its last packet is written there; a
destination whose parts are all local has it at once. Consumers wait on the arrival
progress of their own tile.

Send window: a producer keeps the rows it has produced but not yet delivered to every
destination in its tiles' output registers, so it can be at most ``window`` rows ahead of
the delivery: it stalls before computing row r until row r − window is delivered
(``delivered``, counted across images like the buffers' released rows). A congested NoC
therefore throttles its producers, as finite router buffers would.
"""

from __future__ import annotations

import simpy

from simulator.model.dataflow import FeatureMapProgress, RowCounter, at
from simulator.model.transfers import row_packets


class Fanout:
    """Arrival progress of one edge's rows at each destination tile."""

    def __init__(self, env: simpy.Environment, ep, producer, produced: list[FeatureMapProgress],
                 noc, memory, act_bits: int, window: int = 0) -> None:
        self.env = env
        self.ep = ep
        self.producer = producer
        self.noc = noc
        self.memory = memory  # tile -> TileMemory
        self.act_bits = act_bits
        self.multicast = noc.rules.multicast
        images = len(produced)
        if not ep.remote:
            self.arrivals = {d: produced for d in ep.dst_tiles}
            return
        p_u = producer.positions
        self.arrivals = {d: [FeatureMapProgress(env, p_u) for _ in range(images)]
                         for d in ep.dst_tiles}
        self.sent = [0] * images
        h = producer.out_h
        self.window = window
        self.delivered = RowCounter(env)  # rows delivered everywhere, across images
        self._left = [[len(ep.dst_tiles)] * h for _ in range(images)]
        self._done = [[False] * h for _ in range(images)]
        self._prefix = 0  # rows delivered in order, over all images (img * h + row)
        for img in range(images):
            produced[img].listeners.append(
                lambda old, new, img=img: self._on_rows(img, new))

    def room(self) -> list[tuple[RowCounter, int, int]]:
        """The producer's send window as a (counter, rows, rows per image) room entry."""
        if not self.ep.remote or not self.window:
            return []
        return [(self.delivered, self.window, self.producer.out_h)]

    def of(self, tile: int) -> list[FeatureMapProgress]:
        """Arrival progress (per image) at destination *tile*."""
        return self.arrivals[tile]

    def _on_rows(self, img: int, prefix: int) -> None:
        prod, ep = self.producer, self.ep
        w, p_u = prod.out_w, prod.positions
        rows = prod.out_h if prefix >= p_u else prefix // w
        r0 = self.sent[img]
        if rows <= r0:
            return
        self.sent[img] = rows
        now = self.env.now
        dst = ep.dst_tiles
        for k in range(r0, rows):
            arrive = [now] * len(dst)
            for src, dsts, bits in row_packets(ep, k, self.multicast, self.act_bits):
                tiles = [dst[j] for j in dsts]
                ends = self.noc.send(now, src, tiles, bits, "activations", prod,
                                     [self.memory(t) for t in tiles])
                for j, e in zip(dsts, ends, strict=True):
                    if e > arrive[j]:
                        arrive[j] = e
            first, count = k * w, min(p_u, (k + 1) * w) - k * w
            for j, d in enumerate(dst):
                prog = self.arrivals[d][img]
                at(self.env, arrive[j], lambda prog=prog, first=first, count=count, k=k:
                   self._arrived(prog, first, count, img, k))

    def _arrived(self, prog: FeatureMapProgress, first: int, count: int, img: int,
                 row: int) -> None:
        prog.complete(first, count)
        left = self._left[img]
        left[row] -= 1
        if left[row]:
            return
        self._done[img][row] = True
        h = self.producer.out_h
        p = self._prefix
        while p < len(self._done) * h and self._done[p // h][p % h]:
            p += 1
        if p != self._prefix:
            self._prefix = p
            self.delivered.advance(p)
