"""The discrete-event model of the chip (SimPy): composes the hardware components.

Components (``simulator/engine/components/``, one module each) own their state and talk to
explicit collaborators: tiles and their IMAs (``tile``) hold the shared units; crossbar
lanes (``crossbar_lane``) load groups through their tile's eDRAM and bus
(``edram_port``), are inspected by their tile's on-line unit and convert on
their IMA's ADC pool (``adc_pool``); a replica (``replica``) merges
its lanes' partial sums through the NoC (``noc``) and the merge tile's digital units
(``digital_unit``) into the node's output rows (``simulator.model.dataflow.NodeOutput``); the
rows fan out to the tiles of their consumers (``fanout``), whose bounded eDRAM buffers
(``edram_buffer``) stall the producer when full. Several images stream through. This
module only builds those objects, starts their processes and merges the statistics they
report (``stats``). See docs/model.md.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from functools import partial

import numpy as np

from simulator.core.errors import SimulationError
from simulator.engine.components.adc_pool import SharedAdcArbiter, SimpyAdcPools
from simulator.engine.components.crossbar_lane import LaneState, PlaneLane
from simulator.engine.components.digital_unit import DigitalNode, TileUnits
from simulator.engine.components.edram_buffer import InputBuffers
from simulator.engine.components.edram_port import TileMemory
from simulator.engine.components.fanout import Fanout
from simulator.engine.components.input_port import InputPort
from simulator.engine.components.noc import Noc
from simulator.engine.components.replica import (
    GroupReplica,
    PlaneMerge,
    ReplicaMerge,
    ReplicaPlanes,
)
from simulator.engine.components.server import Server
from simulator.engine.components.stats import Stats, server_stats
from simulator.engine.components.tile import Ima, Tile
from simulator.model.dataflow import FeatureMapProgress, NodeOutput
from simulator.model.event_loop import EventLoop
from simulator.model.ledger import EVENTS, ActivityKind, EnergyLedger
from simulator.model.noc_routes import NocTopology
from simulator.model.outcome import EngineResult
from simulator.model.plan import WEIGHT_KINDS, KindIds, NodePlan
from simulator.model.timing import TimingRules
from simulator.model.workplan import register_kinds

#: the cyclic garbage collector's thresholds during the event loop (CPython's defaults:
#: 700 allocations, 10 and 10 collections of the younger generation)
GC_THRESHOLDS = (100_000, 50, 100)


@contextmanager
def fewer_collections():
    """Run the block with the garbage collector working less (restored afterwards).

    The event loop allocates millions of small objects (events, records, reservations)
    that live on; with the default thresholds the collector traversed them again and again
    (~27 % of the group engine's CPU on the quick start, issue 20). So during the block:

    - the young generation is collected every ``GC_THRESHOLDS[0]`` allocations instead of
      every 700, and the older ones after 50 and 100 collections of the one below instead
      of 10 and 10;
    - the objects that exist when it starts (the network, its mapping, the work plan, the
      bit planes: everything the setup built) are frozen (``gc.freeze``): no collection
      traverses them, which is also what keeps a forked worker from copying the pages of
      the parent's objects it inherited. They are unfrozen afterwards.

    Collections still run, so cyclic garbage (SimPy's events and processes) stays bounded.
    """
    old = gc.get_threshold()
    frozen = gc.get_freeze_count()
    if old[0]:  # (a threshold of 0 turns automatic collection off: left so)
        gc.set_threshold(*(max(o, n) for o, n in zip(old, GC_THRESHOLDS, strict=True)))
    gc.freeze()
    try:
        yield
    finally:
        if not frozen:  # (a caller that froze objects itself keeps them frozen)
            gc.unfreeze()
        gc.set_threshold(*old)


def busy_kind(ledger: EnergyLedger, name: str, cls: str) -> int:
    """Register a busy-only activity kind of component class *cls*."""
    zero = np.zeros(len(EVENTS))
    return ledger.register(ActivityKind(name, "", zero, zero, {cls: 1.0}))


class ChipSimulation:
    """SimPy model of one pipeline's run over the mapped chip."""

    def __init__(self, plans: dict[str, NodePlan], planes: dict[str, np.ndarray], hw,
                 ledger: EnergyLedger, images: int, fidelity: str, unit: str | None = None,
                 trace=None, load_timing: bool = True, topo: NocTopology | None = None,
                 ids: KindIds | None = None, watch: tuple | None = None) -> None:
        """*unit*: the on-line unit of the pipeline's policy (``precision_select``,
        ``precision_detect``, None for ``static``); *ids*: the pipeline's ledger ids of the
        plans' kinds (registered in *ledger* here when not given); *watch*: the key
        (layer, replica, row block) of a lane whose per-image end the result reports
        (``EngineResult.watched_ns``)."""
        if fidelity not in ("group", "plane"):
            raise ValueError(f"event engine runs 'group' or 'plane' fidelity, not {fidelity!r}")
        env = self.env = EventLoop()
        self.plans = plans
        self.planes = planes  # layer → uint8 (images, row_blocks, positions)
        self.ledger = ledger
        self.ids = ids if ids is not None else register_kinds(plans, ledger, unit)
        self.channel = ledger.channel()  # the lanes' MVM records
        self.images = images
        self.fidelity = fidelity
        self.trace = trace
        self.rules = rules = TimingRules(hw, load_timing)
        self.act_bits = int(hw.activations.bits)
        # the simulated time, as the servers' calendars read it (``Environment.now`` bound
        # to env: one call, no lambda around it)
        clock = self._clock = partial(type(env).now.fget, env)
        self.kinds = {cls: busy_kind(ledger, label, cls) for cls, label in (
            ("edram", "eDRAM banks"), ("bus", "eDRAM-to-IMA bus"),
            ("digital", "tile digital units"), ("noc", "NoC ports and links"))}
        self.noc = Noc(topo or NocTopology(hw), rules, ledger, clock, trace, self.ids)
        self.tiles: dict[int, Tile] = {}
        self.imas_per_tile = int(hw.tile.imas)
        self.unit_ns = rules.online_ns(unit)  # the on-line unit's decision after a load
        lanes = [lane for p in plans.values() for lane in p.lanes]
        self.adc_size = int(hw.ima.adcs)
        self.adc_rate = float(hw.ima.adc_rate_gsps)
        self.shared_adcs = int(hw.ima.adcs) < int(hw.ima.crossbars)
        self.arbiter = (SharedAdcArbiter(env, rules.read_ns)
                        if fidelity == "group" and self.shared_adcs else None)
        self.simpy_adcs = (SimpyAdcPools(env, self.adc_size, self.adc_rate, lanes)
                           if fidelity == "plane" and self.shared_adcs else None)
        self.progress: dict[str, list[FeatureMapProgress]] = {
            n: [FeatureMapProgress(env, p.positions) for _ in range(images)]
            for n, p in plans.items()}
        self.outputs = {n: NodeOutput(env, self.progress[n], p.out_h, p.out_w)
                        for n, p in plans.items()}
        self.buffers = InputBuffers(env, images)
        self.fanouts: dict[tuple[str, str], Fanout] = {}
        for plan in plans.values():
            for ep in plan.out_edges:
                u, v = ep.producer, ep.consumer
                if ep.remote:
                    self.fanouts[(u, v)] = Fanout(env, ep, plan, self.progress[u], self.noc,
                                                  self.memory, self.act_bits)
                if ep.cap_rows is not None:
                    self.buffers.bound(plan, plans[v], ep, self.progress[v])
        self.output_nodes = [n for n, p in plans.items() if p.kind == "output"]
        self.ports: list[InputPort] = []
        self._thresholds: dict[tuple[str, str], list[int]] = {}
        self.watch = watch
        self.watched: list[float] | None = None
        if watch is not None and watch[0] in ("inj", "ej", "io", "link", "offchip"):
            self.noc.watch(watch)
            self.watched = self.noc.watched

    def room(self, name: str) -> list:
        """What node *name* waits for before an output row: room in its consumers'
        bounded buffers."""
        return list(self.buffers.of(name))

    # -- components, created on first use -------------------------------------------------
    def tile(self, tile: int) -> Tile:
        """Tile *tile* (its memory, digital units and IMAs)."""
        t = self.tiles.get(tile)
        if t is None:
            t = self.tiles[tile] = Tile(tile, self.rules, self._clock)
        return t

    def memory(self, tile: int) -> TileMemory:
        """The eDRAM banks and bus of *tile*."""
        return self.tile(tile).memory

    def tile_units(self, tile: int) -> TileUnits:
        """The digital units of *tile*."""
        return self.tile(tile).units

    def ima(self, ima: int) -> Ima:
        """IMA *ima* (a global id: tile × IMAs per tile + local index)."""
        return self.tile(ima // self.imas_per_tile).ima(ima)

    def inputs(self, plan: NodePlan, tile: int) -> list[tuple[list, np.ndarray]]:
        """(arrival progress per image at *tile*, thresholds) of every producer."""
        out = []
        for prod in plan.producers:
            f = self.fanouts.get((prod, plan.name))
            progs = f.of(tile) if f is not None and tile in f.arrivals else self.progress[prod]
            key = (plan.name, prod)
            thr = self._thresholds.get(key)
            if thr is None:  # a list of ints: numpy scalars are slow in the event loop
                thr = self._thresholds[key] = plan.thresholds[prod].tolist()
            out.append((progs, thr))
        return out

    def _pools(self, lane):
        if self.fidelity == "plane" or not self.shared_adcs:
            return None
        return [(self.ima(p.ima).fluid_pool(self.adc_size), p.crossbars, p.cols / self.adc_rate,
                 max(p.xbar_cols) / self.adc_rate) for p in lane.parts]

    # -- run ----------------------------------------------------------------------------
    def _start_weight(self, plan: NodePlan) -> None:
        merge = ReplicaMerge(self.env, plan, self.rules, self.noc, self.tile_units,
                             self.memory, self.outputs[plan.name], self.ledger,
                             self.ids.of("output", plan.name),
                             publish=self.fidelity == "plane")
        room = self.room(plan.name)
        planes = self.planes[plan.name]
        if self.fidelity == "group":
            per_replica = ReplicaPlanes(planes, [rp.lanes[0].positions
                                                 for rp in plan.replica_plans])
            for rp in plan.replica_plans:
                states = [LaneState(lane, self.rules, self.memory(lane.tile),
                                    self.unit_ns, self._pools(lane),
                                    self.ledger, self.ids.mvm[lane.key], self.channel,
                                    self.trace) for lane in rp.lanes]
                for st in states:
                    self.ima(st.lane.parts[0].ima).lanes.append(st)
                    if st.lane.key == self.watch:
                        st.image_end = self.watched = []
                waits = {t: self.inputs(plan, t)
                         for t in dict.fromkeys(la.tile for la in rp.lanes)}
                proc = GroupReplica(self.env, plan, rp, states, waits, room, per_replica,
                                    self.images, merge, self.arbiter)
                self.env.process(proc.run())
            return
        acc = PlaneMerge(merge)
        for rp in plan.replica_plans:
            done = acc.callback(rp, len(rp.lanes[0].positions))
            for lane in rp.lanes:
                pl = PlaneLane(self.env, lane, self.rules, self.memory(lane.tile),
                               self.unit_ns,
                               self.simpy_adcs.jobs(lane) if self.simpy_adcs else None,
                               self.inputs(plan, lane.tile), room,
                               planes[:, lane.row_block, lane.positions], plan.out_w,
                               self.images, done, self.ledger, self.ids.mvm[lane.key],
                               self.trace, lambda seq, r=rp.index: merge.merged(r, seq),
                               merge.depth[rp.index])
                self.ima(lane.parts[0].ima).lanes.append(pl)
                if lane.key == self.watch:
                    pl.image_end = self.watched = []
                pl.start()

    def _progress_bar(self, total_ns: float, label: str):
        """Advance a progress bar in simulated time until every image is done."""
        from tqdm import tqdm

        outs = [self.progress[n][self.images - 1] for n in self.output_nodes]
        step = max(total_ns / 100.0, 1.0)
        with tqdm(total=round(total_ns / 1e3, 1), unit="µs", desc=f"simulate {label}",
                  leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                  "{n:.0f}/{total:.0f} simulated µs [{elapsed}]") as bar:
            shown = 0.0
            while not all(p.finished_at is not None for p in outs):
                yield self.env.timeout(step)
                now = min(self.env.now, total_ns) / 1e3
                bar.update(now - shown)
                shown = now

    def run(self, progress_total_ns: float | None = None, label: str = "") -> EngineResult:
        """Run every process to completion and return the timing.

        With *progress_total_ns* (an estimate of the end time), a tqdm bar follows the
        simulated time.
        """
        env = self.env
        if progress_total_ns:
            env.process(self._progress_bar(progress_total_ns, label))
        for name, plan in sorted(self.plans.items(), key=lambda kv: kv[1].order):
            if plan.kind == "input":
                port = InputPort(env, plan, self.rules, self.progress[name], self.room(name),
                                 self.ledger, self.ids.of("port", name), self._clock)
                self.ports.append(port)
                env.process(port.run())
            elif plan.kind in WEIGHT_KINDS:
                self._start_weight(plan)
            else:
                node = DigitalNode(env, plan, self.rules, self.images,
                                   lambda t, p=plan: self.inputs(p, t), self.room(name),
                                   self.memory, self.tile_units, self.outputs[name],
                                   self.ledger, self.ids.of("output", name), self.trace)
                env.process(node.run())
        env.run()  # (simulate_pipeline runs the whole simulation with fewer_collections)
        self._book_busy()
        if self.trace:
            self.trace.finalize()
        done = []
        for img in range(self.images):
            times = [self.progress[n][img].finished_at for n in self.output_nodes]
            if any(t is None for t in times):
                raise SimulationError(self._deadlock_report(img))
            done.append(max(times))
        stats = self.stats()
        # the end of the run is the last image's completion (a progress-bar process may
        # have advanced env.now a little further)
        entered = self.ports[0].entered if self.ports else [0.0] * self.images
        node_done = {n: [float(p.finished_at or 0.0) for p in progs]
                     for n, progs in self.progress.items()}
        return EngineResult(done, max(done), stats.lanes, stats.links, stats.units,
                            self.noc.traffic, list(entered), node_done,
                            list(self.watched or []),
                            list(self.noc.watched_busy) if self.watched is self.noc.watched
                            else [])

    def stats(self) -> Stats:
        """The statistics of every tile (its memory, units, IMAs and lanes) and the NoC."""
        out = Stats()
        for t in self.tiles.values():
            out.merge(t.stats())
        for p in self.ports:
            out.merge(server_stats(p.link))
        return out.merge(self.noc.stats())

    def servers(self) -> list[Server]:
        """Every shared server of the run (eDRAM, bus, digital units, NoC)."""
        out: list[Server] = []
        for t in self.tiles.values():
            out += t.servers()
        return out + list(self.noc.servers.values()) + [p.link for p in self.ports]

    def _book_busy(self) -> None:
        """Hand every server's busy intervals to the ledger's timeline, by class."""
        by_cls: dict[str, tuple[list, list]] = {}
        for s in self.servers():
            if s.cls is None:
                continue
            st, en = s.drain()
            acc = by_cls.setdefault(s.cls, ([], []))
            acc[0].extend(st)
            acc[1].extend(en)
        for cls, (st, en) in by_cls.items():
            self.ledger.record_busy(st, en, self.kinds[cls])

    def _deadlock_report(self, img: int) -> str:
        stuck = [f"{n} ({self.progress[n][img].prefix}/{p.positions} positions)"
                 for n, p in sorted(self.plans.items(), key=lambda kv: kv[1].order)
                 if self.progress[n][img].prefix < p.positions][:4]
        return (f"simulation stalled at {self.env.now:.0f} ns: image {img} never completed; "
                f"first unfinished nodes: {', '.join(stuck)}. Producers wait for consumer "
                "buffers that never drain (e.g. a residual branch longer than the buffers "
                "hold): raise tile.edram_bytes in the hardware file")
