"""The discrete-event model of the chip (SimPy): composes the hardware components.

Components (``simulator/components/``, one module each): crossbar lanes (row-block MVMs
at group or plane fidelity), IMA ADC pools, bounded eDRAM input buffers, the on-chip
network and off-chip links, and the tile digital units. Feature-map progress objects
(``simulator.dataflow``) carry the sliding-window dependencies between layers; several
images stream through. See docs/model.md for the timing rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from simulator.components.adc_pool import AdcPools
from simulator.components.crossbar_lane import (
    group_lane,
    plane_converter,
    plane_loader,
    plane_reader,
)
from simulator.components.digital_unit import digital_node
from simulator.components.edram_buffer import InputBuffers
from simulator.components.edram_port import ResourcePort, TileLoadTimes, TimelinePort
from simulator.components.noc import NocNetwork
from simulator.dataflow import FeatureMapProgress
from simulator.errors import SimulationError
from simulator.ledger import EVENTS, ActivityKind, EnergyLedger
from simulator.workplan import WEIGHT_KINDS, NodePlan


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
                 select_ns: float = 0.0, trace=None, load_timing: bool = True) -> None:
        if fidelity not in ("group", "plane"):
            raise ValueError(f"event engine runs 'group' or 'plane' fidelity, not {fidelity!r}")
        self.env = simpy.Environment()
        self.plans = plans
        self.planes = planes  # layer → uint8 (images, row_blocks, positions)
        self.ledger = ledger
        self.images = images
        self.fidelity = fidelity
        self.read_ns = float(hw.crossbar.read_ns)
        self.select_ns = select_ns
        self.trace = trace
        self.progress: dict[str, list[FeatureMapProgress]] = {
            n: [FeatureMapProgress(self.env, p.positions) for _ in range(images)]
            for n, p in plans.items()}
        lanes = [lane for p in plans.values() for lane in p.lanes]
        self.adc = AdcPools(self.env, hw, lanes, fidelity)
        self.noc = NocNetwork(self.env, hw, images, trace)
        self.buffers = InputBuffers(self.env, images)
        self.load_times = TileLoadTimes(hw, load_timing)
        self.act_bytes = hw.activations.bits / 8.0
        self.ports: dict[int, TimelinePort | ResourcePort] = {}
        # busy-only activity kinds (their energy is booked per group / per position)
        self.kind_bus = ledger.register(ActivityKind(
            "eDRAM-to-IMA bus", "", np.zeros(len(EVENTS)), np.zeros(len(EVENTS)),
            {"edram": 1.0}))
        self.kind_link = ledger.register(ActivityKind(
            "NoC link", "", np.zeros(len(EVENTS)), np.zeros(len(EVENTS)), {"noc": 1.0}))
        self.noc.book(ledger, self.kind_link)
        self.lanes_done: dict[str, list[np.ndarray]] = {
            n: [np.zeros(p.positions, dtype=np.int32) for _ in range(images)]
            for n, p in plans.items() if p.kind in WEIGHT_KINDS}
        self.lane_busy: dict[tuple[str, int, int], float] = {}
        self.group_start: dict[tuple[int, int, int], float] = {}
        self.output_nodes = [n for n, p in plans.items() if p.kind == "output"]
        # arrival[(u, v)][img]: producer rows present in the consumer's eDRAM
        self.arrival: dict[tuple[str, str], list[FeatureMapProgress]] = {}
        for plan in plans.values():
            for ep in plan.out_edges:
                u, v = ep.producer, ep.consumer
                self.arrival[(u, v)] = (self.noc.connect(plan, ep, self.progress[u])
                                        if ep.src_tiles else self.progress[u])
                if ep.cap_rows is not None:
                    self.buffers.bound(plan, plans[v], ep, self.progress[v])

    # -- shared by the components -------------------------------------------------------
    def port(self, tile: int) -> TimelinePort | ResourcePort:
        """The eDRAM/bus load port of *tile*."""
        if tile not in self.ports:
            self.ports[tile] = (
                TimelinePort(self.load_times, self.ledger, self.kind_bus)
                if self.fidelity == "group"
                else ResourcePort(self.env, self.load_times, self.ledger, self.kind_bus))
        return self.ports[tile]

    def wait_inputs(self, plan: NodePlan, image: int, out_row: int):
        """Wait until every producer's rows needed by output row *out_row* have arrived."""
        for prod in plan.producers:
            prog = self.arrival[(prod, plan.name)][image]
            thr = int(plan.thresholds[prod][out_row])
            if not prog.ready(thr):
                yield prog.wait(thr)

    def position_done(self, plan: NodePlan, image: int, pos: int) -> None:
        """A lane finished its group of output position *pos*; the last one completes it."""
        done = self.lanes_done[plan.name][image]
        done[pos] += 1
        if done[pos] == plan.row_blocks:
            now = self.env.now
            self.ledger.record(now, now, plan.kind_output, 0, 1)
            self.progress[plan.name][image].complete(pos)

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
                        env.process(group_lane(self, plan, lane))
                    else:
                        slots = simpy.Container(env, self.load_times.input_slots,
                                                init=self.load_times.input_slots)
                        loaded = simpy.Store(env)
                        sample_hold = simpy.Store(env, capacity=1)
                        env.process(plane_loader(self, plan, lane, loaded, slots))
                        env.process(plane_reader(self, plan, lane, loaded, slots,
                                                 sample_hold))
                        env.process(plane_converter(self, plan, lane, sample_hold, slots))
            else:
                env.process(digital_node(self, plan))
        env.run()
        if self.trace:
            self.trace.finalize()
        done = []
        for img in range(self.images):
            times = [self.progress[n][img].finished_at for n in self.output_nodes]
            if any(t is None for t in times):
                raise SimulationError(self._deadlock_report(img))
            done.append(max(times))
        # the end of the run is the last image's completion (a progress-bar process may
        # have advanced env.now a little further)
        return EngineResult(done, max(done), self.lane_busy, dict(self.noc.busy))

    def _deadlock_report(self, img: int) -> str:
        stuck = [f"{n} ({self.progress[n][img].prefix}/{p.positions} positions)"
                 for n, p in sorted(self.plans.items(), key=lambda kv: kv[1].order)
                 if self.progress[n][img].prefix < p.positions][:4]
        return (f"simulation stalled at {self.env.now:.0f} ns: image {img} never completed; "
                f"first unfinished nodes: {', '.join(stuck)}. Producers wait for consumer "
                "buffers that never drain (e.g. a residual branch longer than the buffers "
                "hold): raise tile.edram_bytes in the hardware file")
