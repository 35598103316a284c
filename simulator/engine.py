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

from dataclasses import dataclass

import numpy as np
import simpy

from simulator.dataflow import FeatureMapProgress
from simulator.ledger import EnergyLedger
from simulator.workplan import WEIGHT_KINDS, Lane, NodePlan, plane_duration


@dataclass
class EngineResult:
    """Timing outcome of one simulated pipeline."""

    image_done_ns: list[float]
    end_ns: float
    lane_busy_ns: dict[tuple[str, int, int], float]  # (layer, replica, row block) → busy


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
        self.output_nodes = [n for n, p in plans.items() if p.kind == "output"]

    # -- processes ----------------------------------------------------------------------
    def _wait_inputs(self, plan: NodePlan, image: int, out_row: int):
        for prod in plan.producers:
            prog = self.progress[prod][image]
            thr = int(plan.thresholds[prod][out_row])
            if not prog.ready(thr):
                yield prog.wait(thr)

    def _position_done(self, plan: NodePlan, image: int, pos: int) -> None:
        done = self.lanes_done[plan.name][image]
        done[pos] += 1
        if done[pos] == plan.row_blocks:
            now = self.env.now
            self.ledger.record(now, now, plan.kind_output, 0, 1)
            self.progress[plan.name][image].complete(pos)

    def _lane_group(self, plan: NodePlan, lane: Lane):
        env, ledger = self.env, self.ledger
        pools = [(self.adc_pools[p.ima], p.adcs) for p in lane.parts] if self.adc_shared else []
        trace = self.trace
        ow = plan.out_w
        busy = 0.0
        select_ns = self.select_ns
        kind = lane.kind_mvm
        producers = [(prod, plan.thresholds[prod]) for prod in plan.producers]
        for img in range(self.images):
            planes = self.planes[plan.name][img, lane.row_block]
            progs = [(self.progress[prod][img], thr) for prod, thr in producers]
            pos_list = lane.positions.tolist()
            b_list = planes[lane.positions].tolist()
            durations = plane_duration(planes[lane.positions], self.read_ns, lane.conv_ns)
            for pos, b, dur in zip(pos_list, b_list, durations.tolist(), strict=True):
                row = pos // ow
                for prog, thr in progs:
                    need = thr[row]
                    if prog.prefix < need:
                        yield prog.wait(need)
                t0 = env.now
                if b > 0:
                    for pool, n in pools:
                        yield pool.get(n)
                    t0 = env.now
                    if trace:
                        self._trace_adc(lane)
                    yield env.timeout(dur + select_ns)
                    for pool, n in pools:
                        yield pool.put(n)
                    if trace:
                        self._trace_adc(lane)
                        trace.mvm(lane, t0, env.now, b)
                    busy += env.now - t0
                ledger.record(t0, env.now, kind, b, 1)
                self._position_done(plan, img, pos)
        self.lane_busy[(lane.layer, lane.replica, lane.row_block)] = busy

    def _trace_adc(self, lane: Lane) -> None:
        for p in lane.parts:
            pool = self.adc_pools[p.ima]
            self.trace.adc_level(p.tile, p.ima, self.env.now, self.adc_count - pool.level)

    def _lane_plane_reader(self, plan: NodePlan, lane: Lane, sample_hold: simpy.Store):
        env, ledger = self.env, self.ledger
        xbar = simpy.Resource(env, capacity=1)
        ow = plan.out_w
        for img in range(self.images):
            planes = self.planes[plan.name][img, lane.row_block]
            for pos in lane.positions.tolist():
                yield from self._wait_inputs(plan, img, pos // ow)
                b = int(planes[pos])
                if b == 0:
                    ledger.record(env.now, env.now, lane.kind_read_first, 0, 1)
                    self._position_done(plan, img, pos)
                    continue
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
        while True:
            img, pos, last = yield sample_hold.get()
            for pool, n in pools:
                yield pool.get(n)
            t0 = env.now
            yield env.timeout(lane.conv_ns)
            for pool, n in pools:
                yield pool.put(n)
            busy += env.now - t0
            ledger.record(t0, env.now, lane.kind_convert, 1, 1)
            self.lane_busy[(lane.layer, lane.replica, lane.row_block)] = busy
            if last:
                self._position_done(plan, img, pos)

    def _digital(self, plan: NodePlan):
        env, ledger = self.env, self.ledger
        for img in range(self.images):
            for row in range(plan.out_h):
                yield from self._wait_inputs(plan, img, row)
                t0 = env.now
                if plan.row_ns:
                    yield env.timeout(plan.row_ns)
                    if self.trace:
                        self.trace.digital(plan.name, plan.tile, t0, env.now)
                ledger.record(t0, env.now, plan.kind_output, 0, 1)
                self.progress[plan.name][img].complete(row * plan.out_w, plan.out_w)

    # -- run ----------------------------------------------------------------------------
    def run(self) -> EngineResult:
        """Run every process to completion and return the timing."""
        env = self.env
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
                raise RuntimeError(f"simulation deadlocked: image {img} never completed")
            done.append(max(times))
        return EngineResult(done, env.now, self.lane_busy)
