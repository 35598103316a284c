"""The discrete-event model of the chip (SimPy).

Resources:
- every lane's crossbars form one ``simpy.Resource`` of capacity 1 (a row block's
  column-block crossbars are fed the same group and work in lockstep);
- every IMA's ADC pool is a ``simpy.Container`` holding its ADC count; a lane takes as
  many ADCs as it has crossbars in that IMA (at most the pool size) while converting,
  so crossbars of different lanes sharing an IMA's ADCs wait for each other;
- in ``plane`` fidelity each lane's sample-and-holds are a ``simpy.Store`` of capacity 1
  between the read stage and the conversion stage.

Processes: one per lane (``group``: one timeout per row-block MVM; ``plane``: a reader
and a converter exchanging planes through the S+H), one per digital node (pool, add,
concat, flatten, output; one step per output row). Feature-map progress objects carry
the sliding-window dependencies between layers, and several images stream through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from simulator.dataflow import FeatureMapProgress, RowCounter
from simulator.errors import SimulationError
from simulator.ledger import EnergyLedger
from simulator.workplan import WEIGHT_KINDS, EdgePlan, Lane, NodePlan, plane_duration


@dataclass
class EngineResult:
    """Timing outcome of one simulated pipeline."""

    image_done_ns: list[float]
    end_ns: float
    lane_busy_ns: dict[tuple[str, int, int], float]  # (layer, replica, row block) → busy
    link_busy_ns: dict[tuple[int, int], float] = field(default_factory=dict)


class ChipSimulation:
    """SimPy model of one pipeline's run over the mapped chip."""

    def __init__(self, plans: dict[str, NodePlan], planes: dict[str, np.ndarray], hw,
                 ledger: EnergyLedger, images: int, fidelity: str,
                 select_ns: float = 0.0, trace=None) -> None:
        if fidelity not in ("group", "plane"):
            raise ValueError(f"event engine runs 'group' or 'plane' fidelity, not {fidelity!r}")
        self.env = simpy.Environment()
        self.plans = plans
        self.planes = planes  # layer → uint8 (images, row_blocks, positions)
        self.hw = hw
        self.ledger = ledger
        self.images = images
        self.fidelity = fidelity
        self.read_ns = float(hw.crossbar.read_ns)
        self.select_ns = select_ns
        self.trace = trace
        self.adc_count = int(hw.ima.adcs)
        self.progress: dict[str, list[FeatureMapProgress]] = {
            n: [FeatureMapProgress(self.env, p.positions) for _ in range(images)]
            for n, p in plans.items()}
        self.adc_pools: dict[int, simpy.Container] = {}
        adcs = int(hw.ima.adcs)
        # When an IMA has at least one ADC per crossbar, no lane can ever wait for one (a
        # lane holds at most one ADC per crossbar it has in the IMA), so the group-fidelity
        # lanes skip the pool's get/put events; plane fidelity always arbitrates.
        self.adc_shared = adcs < int(hw.ima.crossbars) or fidelity == "plane"
        for p in plans.values():
            for lane in p.lanes:
                for part in lane.parts:
                    if part.ima not in self.adc_pools:
                        self.adc_pools[part.ima] = simpy.Container(self.env, adcs, init=adcs)
        self.lanes_done: dict[str, list[np.ndarray]] = {
            n: [np.zeros(p.positions, dtype=np.int32) for _ in range(images)]
            for n, p in plans.items() if p.kind in WEIGHT_KINDS}
        self.lane_busy: dict[tuple[str, int, int], float] = {}
        self._group_start: dict[tuple[int, int, int], float] = {}
        self._adc_in_use: dict[int, int] = {}
        self.output_nodes = [n for n, p in plans.items() if p.kind == "output"]
        self.noc_clock = float(hw.noc.clock_ghz)
        self.flit_bits = int(hw.noc.flit_bits)
        self.router_cycles = int(hw.noc.router_latency_cycles)
        self.routers_per_chip = int(hw.chip.routers)
        self.offchip_link_gbps = float(hw.offchip.bandwidth_gbps) / int(hw.offchip.links)
        self.links: dict[tuple[int, int], simpy.Resource] = {}
        self.link_busy: dict[tuple[int, int], float] = {}
        # arrival[(u, v)][img]: producer rows present in the consumer's eDRAM
        self.arrival: dict[tuple[str, str], list[FeatureMapProgress]] = {}
        # released[(u, v)]: rows of u (counted across images) the consumer v has freed
        self.released: dict[tuple[str, str], RowCounter] = {}
        self.out_buffers: dict[str, list[tuple[RowCounter, int, int]]] = {n: [] for n in plans}
        for plan in plans.values():
            for ep in plan.out_edges:
                self._setup_edge(plan, ep)

    # -- edges: NoC transfers and bounded buffers ---------------------------------------
    def _setup_edge(self, plan: NodePlan, ep: EdgePlan) -> None:
        u, v = ep.producer, ep.consumer
        cons = self.plans[v]
        h_u = plan.out_h
        if ep.src_tiles:
            self.arrival[(u, v)] = self._setup_transfers(plan, ep)
        else:
            self.arrival[(u, v)] = self.progress[u]
        if ep.cap_rows is None or v not in self.progress:
            return
        window = (ep.kernel - 1) * ep.dilation + 1
        need = {"window": min(window, h_u), "row": 1, "image": h_u}[ep.release]
        if ep.cap_rows < need:
            raise SimulationError(
                f"eDRAM buffer too small: {v} needs {need} row(s) of {u} "
                f"({need * ep.row_bytes:.0f} bytes) in its tiles' eDRAM, but its share holds "
                f"{ep.cap_rows} row(s); raise tile.edram_bytes in the hardware file or use "
                "fewer layers per tile")
        counter = RowCounter(self.env)
        self.released[(u, v)] = counter
        self.out_buffers[u].append((counter, ep.cap_rows, h_u))
        w_v, p_v = cons.out_w, cons.positions
        for img in range(self.images):
            def on_consumed(old: int, new: int, img: int = img) -> None:
                if new >= p_v:
                    freed = h_u
                else:
                    rows_v = new // w_v
                    if ep.release == "window":
                        freed = rows_v * ep.stride - ep.pad
                    elif ep.release == "row":
                        freed = rows_v
                    else:
                        freed = 0
                counter.advance(img * h_u + max(0, min(h_u, freed)))

            self.progress[v][img].listeners.append(on_consumed)

    def _setup_transfers(self, plan: NodePlan, ep: EdgePlan) -> list[FeatureMapProgress]:
        """Per source tile a sender process; rows arrive when every source delivered them."""
        h_u, w_u, p_u = plan.out_h, plan.out_w, plan.positions
        counts = ep.row_counts
        remote = counts > 0
        arrivals = [FeatureMapProgress(self.env, p_u) for _ in range(self.images)]
        pending = [remote.sum(axis=1).astype(np.int64) for _ in range(self.images)]
        queues = [simpy.Store(self.env) for _ in ep.src_tiles]
        for j, route in enumerate(ep.src_routes):
            self.env.process(self._noc_sender(ep, route, queues[j], j, arrivals, pending, w_u,
                                              p_u))
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

            self.progress[ep.producer][img].listeners.append(on_produced)
        return arrivals

    def _link_ns(self, link: tuple[int, int], nbytes: float) -> float:
        a, b = link
        if a // self.routers_per_chip != b // self.routers_per_chip:
            return nbytes / self.offchip_link_gbps  # GB/s = bytes per ns
        flits = -(-int(round(nbytes * 8)) // self.flit_bits)
        return (flits + self.router_cycles) / self.noc_clock

    def _noc_sender(self, ep: EdgePlan, route: list, queue: simpy.Store, j: int,
                    arrivals: list, pending: list, w_u: int, p_u: int):
        """Moves one source tile's share of completed rows over its route, link by link."""
        env = self.env
        links = []
        for link in route:
            if link not in self.links:
                self.links[link] = simpy.Resource(env, capacity=1)
                self.link_busy[link] = 0.0
            links.append((link, self.links[link]))
        remote = ep.row_counts[:, j] > 0
        while True:
            img, r0, r1, nbytes = yield queue.get()
            for link, res in links:
                with res.request() as req:
                    yield req
                    t0 = env.now
                    yield env.timeout(self._link_ns(link, nbytes))
                    self.link_busy[link] += env.now - t0
                    if self.trace:
                        self.trace.link(link, ep.producer, t0, env.now)
            pend = pending[img]
            for r in range(r0, r1):
                if remote[r]:
                    pend[r] -= 1
                    if pend[r] == 0:
                        arrivals[img].complete(r * w_u, min(p_u, (r + 1) * w_u) - r * w_u)

    # -- processes ----------------------------------------------------------------------
    def _wait_inputs(self, plan: NodePlan, image: int, out_row: int):
        for prod in plan.producers:
            prog = self.arrival[(prod, plan.name)][image]
            thr = int(plan.thresholds[prod][out_row])
            if not prog.ready(thr):
                yield prog.wait(thr)

    def _wait_buffers(self, plan: NodePlan, image: int, out_row: int):
        """Stall until every consumer's buffer has room for output row *out_row*."""
        for counter, cap, h in self.out_buffers[plan.name]:
            need = image * h + out_row - cap + 1
            if counter.value < need:
                yield counter.wait(need)

    def _position_done(self, plan: NodePlan, image: int, pos: int) -> None:
        done = self.lanes_done[plan.name][image]
        done[pos] += 1
        if done[pos] == plan.row_blocks:
            now = self.env.now
            self.ledger.record(now, now, plan.kind_output, 0, 1)
            self.progress[plan.name][image].complete(pos)

    def _lane_group(self, plan: NodePlan, lane: Lane):
        """One event per row-block MVM.

        Without shared ADCs, consecutive groups of a lane overlap exactly as the plane
        pipeline does: the first read of a group starts as soon as its inputs are ready
        and the S+H is free (the previous group's last plane entered conversion), so
        back-to-back groups cost b·max(r, c) each and plane/group latencies agree. With a
        shared ADC pool a group takes its ADCs when it starts and holds them for T(b).
        """
        env, ledger = self.env, self.ledger
        pools = [(self.adc_pools[p.ima], p.adcs) for p in lane.parts] if self.adc_shared else []
        trace = self.trace
        ow = plan.out_w
        busy = 0.0
        select_ns = self.select_ns
        kind = lane.kind_mvm
        r_ns, c_ns = self.read_ns, lane.conv_ns
        step = max(r_ns, c_ns)
        conv_free = -1e30  # end of the previous group's last conversion
        prev_end = 0.0
        producers = [(prod, plan.thresholds[prod]) for prod in plan.producers]
        out_bufs = self.out_buffers[plan.name]
        for img in range(self.images):
            planes = self.planes[plan.name][img, lane.row_block]
            progs = [(self.arrival[(prod, plan.name)][img], thr) for prod, thr in producers]
            pos_list = lane.positions.tolist()
            b_list = planes[lane.positions].tolist()
            durations = plane_duration(planes[lane.positions], r_ns, c_ns)
            for pos, b, dur in zip(pos_list, b_list, durations.tolist(), strict=True):
                row = pos // ow
                ready = 0.0
                for prog, thr in progs:
                    need = thr[row]
                    if prog.prefix < need:
                        yield prog.wait(need)
                        ready = env.now
                    else:
                        ready = max(ready, prog.reached_at[need - 1])
                for counter, cap, h in out_bufs:
                    need = img * h + row - cap + 1
                    if counter.value < need:
                        yield counter.wait(need)
                        ready = env.now
                    elif need > 0:
                        ready = max(ready, counter.reached_at(need))
                if b == 0:
                    ledger.record(env.now, env.now, kind, 0, 1)
                    self._position_done(plan, img, pos)
                    continue
                if pools:
                    for pool, n in pools:
                        yield pool.get(n)
                    x = env.now
                    if trace:
                        self._trace_adc(lane, +1)
                    yield env.timeout(dur + select_ns)
                    for pool, n in pools:
                        yield pool.put(n)
                    if trace:
                        self._trace_adc(lane, -1)
                    end = env.now
                else:
                    x = max(ready, conv_free - c_ns)
                    first_conv = max(x + select_ns + r_ns, conv_free)
                    end = first_conv + c_ns + (b - 1) * step
                    conv_free = end
                    if trace:
                        self._trace_adc_at(lane, x + select_ns + r_ns, end)
                    yield env.timeout(end - env.now)
                if trace:
                    trace.mvm(lane, x, end, b)
                busy += end - max(x, prev_end)
                prev_end = end
                ledger.record(x, end, kind, b, 1)
                self._position_done(plan, img, pos)
        self.lane_busy[(lane.layer, lane.replica, lane.row_block)] = busy

    def _trace_adc_at(self, lane: Lane, t0: float, t1: float) -> None:
        """ADC counter changes of one unshared-pool group converting over [t0, t1]."""
        for p in lane.parts:
            self.trace.adc_level(p.tile, p.ima, t0, p.adcs)
            self.trace.adc_level(p.tile, p.ima, t1, 0)

    def _trace_adc(self, lane: Lane, delta: int) -> None:
        """Counter track of the ADCs in use per IMA (held by lanes while they convert)."""
        for p in lane.parts:
            n = self._adc_in_use.get(p.ima, 0) + delta * p.adcs
            self._adc_in_use[p.ima] = n
            self.trace.adc_level(p.tile, p.ima, self.env.now, n)

    def _lane_plane_reader(self, plan: NodePlan, lane: Lane, sample_hold: simpy.Store):
        env, ledger = self.env, self.ledger
        xbar = simpy.Resource(env, capacity=1)
        ow = plan.out_w
        for img in range(self.images):
            planes = self.planes[plan.name][img, lane.row_block]
            for pos in lane.positions.tolist():
                yield from self._wait_inputs(plan, img, pos // ow)
                yield from self._wait_buffers(plan, img, pos // ow)
                b = int(planes[pos])
                if b == 0:
                    ledger.record(env.now, env.now, lane.kind_read_first, 0, 1)
                    self._position_done(plan, img, pos)
                    continue
                self._group_start[(id(lane), img, pos)] = env.now
                if self.select_ns:
                    yield env.timeout(self.select_ns)
                for i in range(b):
                    with xbar.request() as req:
                        yield req
                        t0 = env.now
                        yield env.timeout(self.read_ns)
                        ledger.record(t0, env.now,
                                      lane.kind_read_first if i == 0 else lane.kind_read, 1, 1)
                        if self.trace:
                            self.trace.mvm(lane, t0, env.now, 1)
                    yield sample_hold.put((img, pos, i == b - 1))

    def _lane_plane_converter(self, plan: NodePlan, lane: Lane, sample_hold: simpy.Store):
        env, ledger = self.env, self.ledger
        pools = [(self.adc_pools[p.ima], p.adcs) for p in lane.parts]
        busy = 0.0
        prev_end = 0.0
        while True:
            img, pos, last = yield sample_hold.get()
            for pool, n in pools:
                yield pool.get(n)
            t0 = env.now
            yield env.timeout(lane.conv_ns)
            for pool, n in pools:
                yield pool.put(n)
            ledger.record(t0, env.now, lane.kind_convert, 1, 1)
            if last:
                # lane occupancy: from the group's first read (or selection) to its last
                # conversion, the same quantity group fidelity books as T(b)
                start = self._group_start.pop((id(lane), img, pos))
                busy += env.now - max(start, prev_end)
                prev_end = env.now
                self.lane_busy[(lane.layer, lane.replica, lane.row_block)] = busy
                self._position_done(plan, img, pos)

    def _digital(self, plan: NodePlan):
        env, ledger = self.env, self.ledger
        for img in range(self.images):
            for row in range(plan.out_h):
                yield from self._wait_inputs(plan, img, row)
                yield from self._wait_buffers(plan, img, row)
                t0 = env.now
                if plan.row_ns:
                    yield env.timeout(plan.row_ns)
                    if self.trace:
                        self.trace.digital(plan.name, plan.tile, t0, env.now)
                ledger.record(t0, env.now, plan.kind_output, 0, 1)
                self.progress[plan.name][img].complete(row * plan.out_w, plan.out_w)

    # -- run ----------------------------------------------------------------------------
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

        With *progress_total_ns* (the analytic estimate of the end time), a tqdm bar
        follows the simulated time.
        """
        env = self.env
        if progress_total_ns:
            env.process(self._progress_bar(progress_total_ns, label))
        for name, plan in self.plans.items():
            if plan.kind == "input":
                for img in range(self.images):
                    self.progress[name][img].complete(0, plan.positions)
            elif plan.kind in WEIGHT_KINDS:
                for lane in plan.lanes:
                    if self.fidelity == "group":
                        env.process(self._lane_group(plan, lane))
                    else:
                        sh = simpy.Store(env, capacity=1)
                        env.process(self._lane_plane_reader(plan, lane, sh))
                        env.process(self._lane_plane_converter(plan, lane, sh))
            else:
                env.process(self._digital(plan))
        env.run()
        done = []
        for img in range(self.images):
            times = [self.progress[n][img].finished_at for n in self.output_nodes]
            if any(t is None for t in times):
                raise SimulationError(self._deadlock_report(img))
            done.append(max(times))
        # the end of the run is the last image's completion (a progress-bar process may
        # have advanced env.now a little further)
        return EngineResult(done, max(done), self.lane_busy, dict(self.link_busy))

    def _deadlock_report(self, img: int) -> str:
        stuck = [f"{n} ({self.progress[n][img].prefix}/{p.positions} positions)"
                 for n, p in sorted(self.plans.items(), key=lambda kv: kv[1].order)
                 if self.progress[n][img].prefix < p.positions][:4]
        return (f"simulation stalled at {self.env.now:.0f} ns: image {img} never completed; "
                f"first unfinished nodes: {', '.join(stuck)}. Producers wait for consumer "
                "buffers that never drain (e.g. a residual branch longer than the buffers "
                "hold): raise tile.edram_bytes in the hardware file")
