"""Produced rows to every tile that needs them (the fan-out of a tensor edge).

When a producer row completes, every part of it that a destination tile needs and that
was computed on another tile is sent over the NoC (``simulator.model.transfers.row_packets``:
one packet per source and destination tile, or one multicast per source): the source tile
reads the part from its eDRAM (where the output path wrote it), the NoC carries it, the
destination writes it into its eDRAM. The network input's rows leave the input port
instead (no eDRAM read). The row is present in a destination tile's eDRAM when its last
packet is written there; a destination whose parts are all local has it at once.
Consumers wait on the arrival progress of their own tile.

Backpressure: the producer stalls when a consumer's bounded buffer has no room
(``edram_buffer``): rows in flight count against it, so a congested NoC throttles its
producers. Rows waiting to be sent stay in the producer's eDRAM (docs/model.md).
"""

from __future__ import annotations

import simpy

from simulator.model.dataflow import FeatureMapProgress, at
from simulator.model.noc_routes import PORT
from simulator.model.transfers import row_packets


class Fanout:
    """Arrival progress of one edge's rows at each destination tile."""

    def __init__(self, env: simpy.Environment, ep, producer, produced: list[FeatureMapProgress],
                 noc, memory, act_bits: int) -> None:
        self.env = env
        self.ep = ep
        self.producer = producer
        self.noc = noc
        self.memory = memory  # tile -> TileMemory
        self.act_bits = act_bits
        self.multicast = noc.rules.multicast
        self._rows: dict[int, list[tuple]] = {}  # producer row -> its packets (``_packets``)
        images = len(produced)
        if not ep.remote:
            self.arrivals = {d: produced for d in ep.dst_tiles}
            return
        p_u = producer.positions
        self.arrivals = {d: [FeatureMapProgress(env, p_u) for _ in range(images)]
                         for d in ep.dst_tiles}
        self.sent = [0] * images
        for img in range(images):
            produced[img].listeners.append(
                lambda old, new, img=img: self._on_rows(img, new))

    def _packets(self, row: int) -> list[tuple]:
        """``row_packets`` of producer row *row*, with the destination tiles and the
        source's and destinations' ``TileMemory`` (cached per row: every image sends the
        same packets)."""
        got = self._rows.get(row)
        if got is None:
            dst = self.ep.dst_tiles
            got = []
            for src, dsts, bits in row_packets(self.ep, row, self.multicast, self.act_bits):
                tiles = [dst[j] for j in dsts]
                got.append((src, dsts, bits, tiles, [self.memory(t) for t in tiles],
                            None if src == PORT else self.memory(src)))
            self._rows[row] = got
        return got

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
        noc = self.noc
        for k in range(r0, rows):
            arrive = [now] * len(dst)
            for src, dsts, bits, tiles, mems, src_mem in self._packets(k):
                if len(dsts) == 1:
                    e = noc.send_one(now, src, tiles[0], bits, "activations", prod, mems[0],
                                     src_mem, img)
                    j = dsts[0]
                    if e > arrive[j]:
                        arrive[j] = e
                    continue
                ends = noc.send(now, src, tiles, bits, "activations", prod, mems, src_mem,
                                img)
                for j, e in zip(dsts, ends, strict=True):
                    if e > arrive[j]:
                        arrive[j] = e
            first, count = k * w, min(p_u, (k + 1) * w) - k * w
            for j, d in enumerate(dst):
                prog = self.arrivals[d][img]
                at(self.env, arrive[j], lambda prog=prog, first=first, count=count:
                   prog.complete(first, count))
