"""On-chip network (concentrated mesh, XY routes) and off-chip links between chips.

Every link is a ``simpy.Resource`` of capacity 1. A producer's completed output rows
leave from the tiles that computed them, one packet per (rows, source tile), and travel
store-and-forward to the consumer's first tile: a link is held for
(flits + router latency cycles) / NoC clock, an off-chip link for bytes / its bandwidth.
A row is present at the consumer once every source tile delivered its part.
"""

from __future__ import annotations

import numpy as np
import simpy

from simulator.dataflow import FeatureMapProgress
from simulator.workplan import EdgePlan, NodePlan


class NocNetwork:
    """Links of all chips and the transfer processes of the edges that cross tiles."""

    def __init__(self, env: simpy.Environment, hw, images: int, trace=None) -> None:
        self.env = env
        self.images = images
        self.trace = trace
        self.clock = float(hw.noc.clock_ghz)
        self.flit_bits = int(hw.noc.flit_bits)
        self.router_cycles = int(hw.noc.router_latency_cycles)
        self.routers_per_chip = int(hw.chip.routers)
        self.offchip_gbps = float(hw.offchip.bandwidth_gbps) / int(hw.offchip.links)
        self.links: dict[tuple[int, int], simpy.Resource] = {}
        self.busy: dict[tuple[int, int], float] = {}
        self.ledger = None
        self.busy_kind = -1

    def book(self, ledger, busy_kind: int) -> None:
        """Book every link hold as busy time of class "noc" in *ledger*."""
        self.ledger, self.busy_kind = ledger, busy_kind

    def link_ns(self, link: tuple[int, int], nbytes: float) -> float:
        """Time one packet of *nbytes* holds *link*."""
        a, b = link
        if a // self.routers_per_chip != b // self.routers_per_chip:
            return nbytes / self.offchip_gbps  # GB/s = bytes per ns
        flits = -(-int(round(nbytes * 8)) // self.flit_bits)
        return (flits + self.router_cycles) / self.clock

    def connect(self, plan: NodePlan, ep: EdgePlan,
                produced: list[FeatureMapProgress]) -> list[FeatureMapProgress]:
        """Start the senders of edge *ep*; returns the consumer-side arrival progress."""
        h_u, w_u, p_u = plan.out_h, plan.out_w, plan.positions
        counts = ep.row_counts
        remote = counts > 0
        arrivals = [FeatureMapProgress(self.env, p_u) for _ in range(self.images)]
        pending = [remote.sum(axis=1).astype(np.int64) for _ in range(self.images)]
        queues = [simpy.Store(self.env) for _ in ep.src_tiles]
        for j, route in enumerate(ep.src_routes):
            self.env.process(self._sender(ep, route, queues[j], j, arrivals, pending, w_u, p_u))
        for img in range(self.images):
            sent = {"rows": 0}

            def on_produced(old: int, new: int, img: int = img, sent: dict = sent) -> None:
                rows = h_u if new >= p_u else new // w_u
                r0 = sent["rows"]
                if rows <= r0:
                    return
                sent["rows"] = rows
                for j, q in enumerate(queues):
                    n = int(counts[r0:rows, j].sum())
                    if n:
                        q.put((img, r0, rows, n * ep.row_bytes / w_u))
                for r in range(r0, rows):  # rows computed entirely on the consumer's tile
                    if pending[img][r] == 0:
                        arrivals[img].complete(r * w_u, min(p_u, (r + 1) * w_u) - r * w_u)

            produced[img].listeners.append(on_produced)
        return arrivals

    def _sender(self, ep: EdgePlan, route: list, queue: simpy.Store, j: int, arrivals: list,
                pending: list, w_u: int, p_u: int):
        """Moves one source tile's share of completed rows over its route, link by link."""
        env = self.env
        links = []
        for link in route:
            if link not in self.links:
                self.links[link] = simpy.Resource(env, capacity=1)
                self.busy[link] = 0.0
            links.append((link, self.links[link]))
        remote = ep.row_counts[:, j] > 0
        while True:
            img, r0, r1, nbytes = yield queue.get()
            for link, res in links:
                with res.request() as req:
                    yield req
                    t0 = env.now
                    yield env.timeout(self.link_ns(link, nbytes))
                    self.busy[link] += env.now - t0
                    if self.ledger is not None:
                        self.ledger.record(t0, env.now, self.busy_kind, 0, 1)
                    if self.trace:
                        self.trace.link(link, ep.producer, t0, env.now)
            pend = pending[img]
            for r in range(r0, r1):
                if remote[r]:
                    pend[r] -= 1
                    if pend[r] == 0:
                        arrivals[img].complete(r * w_u, min(p_u, (r + 1) * w_u) - r * w_u)
