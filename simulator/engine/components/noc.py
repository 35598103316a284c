"""On-chip network (concentrated mesh, XY routes) and off-chip links between chips.

A packet from tile s to tile d leaves through s's injection port (tile → router), crosses
the router-to-router links of the XY route, and enters d through its ejection port
(router → tile); tiles of one router go injection port → router → ejection port. Ports
and links are :class:`~simulator.engine.components.server.Server` instances, one flit of
``noc.flit_bits`` per NoC cycle. Flow control is virtual cut-through: the head flit
advances one stage per hop (router pipeline ``router_latency_cycles`` + one link cycle),
the body follows it pipelined, and every port or link is held for the packet's flits
(docs/model.md, "NoC"). An off-chip link (between router 0 of two chips) is held for
bytes / (``offchip.bandwidth_gbps`` / ``offchip.links``).

Energy: one ``router_flit_hop`` per flit per router traversed, booked on the producer's
``noc`` activity kind; activations are read from the source tile's eDRAM before they leave
(``edram_byte``, a bank held for the read) and written into the destination tile's eDRAM on
arrival (a bank held for the write); partial sums leave the source tile's adders and go to
the merge tile's adders; the network input leaves the input port (no eDRAM read).
"""

from __future__ import annotations

from simulator.engine.components.server import Server
from simulator.engine.components.stats import Stats, server_stats
from simulator.model.noc_routes import STAGE_LABELS, NocTopology, stage_where
from simulator.model.timing import TimingRules

TRAFFIC_KINDS = ("activations", "psum")


class Noc:
    """The ports and links of all chips as servers, and the packets sent over them."""

    def __init__(self, topo: NocTopology, rules: TimingRules, ledger=None, clock=None,
                 trace=None, ids=None) -> None:
        self.topo = topo
        self.rules = rules
        self.ledger = ledger  # with *ids* (the pipeline's KindIds): packets are booked
        self.ids = ids
        self.clock = clock
        self.trace = trace
        self.servers: dict[tuple, Server] = {}
        self._routes: dict[tuple[int, int], tuple[list, int, bool]] = {}
        self._sizes: dict[float, tuple[int, float, float, float, float]] = {}
        # per kind: [packets, bytes, flits, flit hops] (``traffic``)
        self._traffic = {k: [0, 0.0, 0, 0] for k in TRAFFIC_KINDS}
        self._watch: Server | None = None  # a port or link whose per-image end is kept
        self.watched: list[float] = []
        self.watched_busy: list[float] = []

    @property
    def traffic(self) -> dict[str, dict[str, float]]:
        """Packets, bytes, flits and flit hops sent so far, per kind of traffic."""
        return {k: {"packets": p, "bytes": b, "flits": f, "flit_hops": h}
                for k, (p, b, f, h) in self._traffic.items()}

    def watch(self, key: tuple) -> None:
        """Keep, per image, when port or link *key* ends its last packet of that image
        (``watched``) and how long it is reserved for that image's packets
        (``watched_busy``): the steady-state window of the busiest unit,
        runner/simulate.py. Packets of consecutive images can interleave on it, so the
        interval between its ends of two images can be shorter than its work on them."""
        self._watch = self.server(key)

    def _note(self, img: int, start: float, end: float) -> None:
        w, wb = self.watched, self.watched_busy
        if img >= len(w):
            w.extend([0.0] * (img + 1 - len(w)))
            wb.extend([0.0] * (img + 1 - len(wb)))
        if end > w[img]:
            w[img] = end
        wb[img] += end - start

    def server(self, key: tuple) -> Server:
        """The port or link *key* (created on first use)."""
        s = self.servers.get(key)
        if s is None:
            s = Server(STAGE_LABELS[key[0]], stage_where(key), 1, "noc", self.clock)
            self.servers[key] = s
        return s

    def _route(self, src: int, dst: int) -> tuple[list, int, bool]:
        """([(server, stage key, off-chip?)] of the path, routers, off-chip) (cached)."""
        key = (src, dst)
        r = self._routes.get(key)
        if r is None:
            path = self.topo.path(src, dst)
            r = ([(self.server(k), k, k[0] == "offchip") for k in path.stages],
                 len(path.routers), path.offchip)
            self._routes[key] = r
        return r

    def send(self, t: float, src: int, dsts: list[int], bits: float, kind: str, plan,
             recv: list | None = None, src_mem=None, img: int = 0) -> list[float]:
        """Send one packet of *bits* from tile *src* at *t* to every tile of *dsts*.

        One destination: a unicast; several: a multicast tree (each port and link of the
        union of the XY routes held once). *src_mem* (the source's ``TileMemory``) reads
        the payload from its eDRAM first: the injection starts a clock cycle after the
        read and cannot end before it (cut-through). *recv* (the destinations'
        ``TileMemory``) writes the payload into their eDRAM. Returns the arrival time at
        each destination. *img*: the image the payload belongs to (for ``watch``).
        """
        if len(dsts) == 1:
            return [self.send_one(t, src, dsts[0], bits, kind, plan,
                                  None if recv is None else recv[0], src_mem, img)]
        rules = self.rules
        ws = self._watch
        flits, dur, nbytes, bank_ns, off_ns = self._size(bits)
        hop = rules.hop_ns
        trace = self.trace if self.trace and self.trace.keep_packet() else None
        s0, e0 = t - hop, float("-inf")  # the stage "before" the first one
        if src_mem is not None:
            s_b, e_b = src_mem.banks.reserve(t, bank_ns)
            s0, e0 = s_b + rules.cycle_ns - hop, e_b + rules.cycle_ns - hop
        held: dict[tuple, tuple[float, float]] = {}
        routers: set[int] = set()
        offchip = False
        arrivals = []
        for j, dst in enumerate(dsts):
            path = self.topo.path(src, dst)
            routers |= path.routers
            offchip = offchip or path.offchip
            s_prev, e_prev = s0, e0
            for server, key, off in self._route(src, dst)[0]:
                span = held.get(key)
                if span is None:
                    span = server.reserve(s_prev + hop, off_ns if off else dur, e_prev + hop)
                    held[key] = span
                    if server is ws:
                        self._note(img, span[0], span[1])
                    if trace:
                        trace.link(key, plan.name, span[0], span[1])
                s_prev, e_prev = span
            end = e_prev
            if recv is not None:
                end = recv[j].banks.reserve(end, bank_ns)[1]
            arrivals.append(end)
        self._book(t, max(arrivals), kind, plan, flits, nbytes, len(routers), len(dsts),
                   recv is not None, src_mem is not None, offchip)
        return arrivals

    def send_one(self, t: float, src: int, dst: int, bits: float, kind: str, plan,
                 recv=None, src_mem=None, img: int = 0) -> float:
        """:meth:`send` to one destination tile *dst* (*recv*: its ``TileMemory`` or None);
        returns the arrival time."""
        rules = self.rules
        flits, dur, nbytes, bank_ns, off_ns = self._size(bits)
        hop = rules.hop_ns
        trace = self.trace if self.trace and self.trace.keep_packet() else None
        if src_mem is not None:
            s_b, e_b = src_mem.banks.reserve(t, bank_ns)
            s_prev, e_prev = s_b + rules.cycle_ns - hop, e_b + rules.cycle_ns - hop
        else:
            s_prev, e_prev = t - hop, float("-inf")  # the stage "before" the first one
        stages, n_routers, offchip = self._route(src, dst)
        ws = self._watch
        for server, key, off in stages:
            s_prev, e_prev = server.reserve(s_prev + hop, off_ns if off else dur, e_prev + hop)
            if server is ws:
                self._note(img, s_prev, e_prev)
            if trace:
                trace.link(key, plan.name, s_prev, e_prev)
        end = e_prev
        if recv is not None:
            end = recv.banks.reserve(end, bank_ns)[1]
        self._book(t, end, kind, plan, flits, nbytes, n_routers, 1, recv is not None,
                   src_mem is not None, offchip)
        return end

    def _size(self, bits: float) -> tuple[int, float, float, float, float]:
        """(flits, ns per port or link, bytes, ns per eDRAM bank, ns per off-chip link) of a
        packet of *bits* (cached per size)."""
        got = self._sizes.get(bits)
        if got is None:
            rules = self.rules
            flits = rules.flits(bits)
            nbytes = bits / 8.0
            got = self._sizes[bits] = (flits, flits * rules.noc_cycle_ns, nbytes,
                                       nbytes / rules.bank_bytes_per_ns,
                                       rules.offchip_ns(nbytes))
        return got

    def _book(self, t: float, last: float, kind: str, plan, flits: int, nbytes: float,
              n_routers: int, n_dsts: int, recv: bool, read: bool, offchip: bool) -> None:
        """Count a packet's traffic and book its energy (see the module docstring)."""
        tr = self._traffic[kind]
        tr[0] += 1
        tr[1] += nbytes
        tr[2] += flits
        tr[3] += flits * n_routers
        ledger = self.ledger
        if ledger is not None:
            node = self.ids.node
            ledger.record(t, last, node["noc"][plan.name], flits * n_routers, 1)
            if recv:
                ledger.record(t, last, node["recv"][plan.name], nbytes * n_dsts, 1)
            if read:
                ledger.record(t, last, node["send"][plan.name], nbytes, 1)
            if offchip:
                ledger.record(t, last, node["offchip"][plan.name], nbytes, 1)

    def link_busy(self) -> dict[tuple, float]:
        """Busy time of every port and link used, by key."""
        return {k: s.busy_ns for k, s in self.servers.items()}

    def stats(self) -> Stats:
        """Busy time of every port and link used, by key and by (label, where)."""
        out = Stats(links=self.link_busy())
        for s in self.servers.values():
            out.merge(server_stats(s))
        return out
