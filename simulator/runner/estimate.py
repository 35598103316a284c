"""Run-size estimate: events, memory and time of a run, before the simulation starts.

The estimate is computed from the mapping (the work plan's sizes: lane MVMs, graph nodes,
output positions and rows per image) and the scenario's simulation options, right after
mapping and before the activations are captured, so a run that cannot fit is refused in
seconds instead of filling the machine's memory. The constants below were measured on
the engine by ``bench/estimate_calibration.py``; their derivation is in
``docs/robustness.md`` ("Run-size estimate"). Re-run that script and update them when the
engine changes.

Model, per pipeline, ``N`` images; per image ``G`` lane MVMs (Σ row blocks × output
positions of the weight layers), ``V`` graph nodes, ``P`` output positions and ``H``
output rows (Σ over all nodes):

- SimPy events: ``group`` ``EVENTS_PER_NODE·V + (EVENTS_PER_POSITION·P +
  EVENTS_PER_ROW·H)·N`` (the engine batches an output position's MVMs into a few events
  since the timing model of issue 10; rows add the input port's and the fan-outs' events
  since issue 18);
  ``plane`` ``EVENTS_PER_PLANE·B·G·N`` (B = activation bits, an upper bound: the captured
  planes are not known yet);
  ``analytic`` none;
- memory the simulating process adds: per-network plans ``PLAN_BYTES_PER_MVM·G``, the
  structures the engine allocates for every image up front
  ``N·(NODE_BYTES·V + POSITION_BYTES·P + MVM_BYTES·G)`` (analytic: ``ROW_BYTES·H``
  instead of the engine's), and the event-time buffers (ledger records, SimPy queue),
  ``min(RECORD_BYTES_PER_MVM·G·N, DYNAMIC_CAP[fidelity])`` (``plane``: per bit plane,
  ``B·G·N``); with a trace,
  ``BYTES_PER_TRACE_EVENT`` per kept trace event, in the worker (twice while it is
  pickled) and in the parent;
- time on an idle machine: the analytic sizing pass ``ROW_SECONDS·H·N +
  ANALYTIC_MVM_SECONDS·G·N`` (every fidelity runs it) plus ``GROUP_MVM_SECONDS·G·N``
  (group) or ``PLANE_SECONDS·B·G·N`` (plane), times ``TRACE_TIME_FACTOR`` with a trace;
  shown scaled by ``load / CPUs`` when the machine is busier than one task per CPU.

Pipelines run ``min(workers, pipelines)`` at a time, each in its own forked process.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from simulator.core.config_io import ConfigError

# ---- constants measured by bench/estimate_calibration.py (docs/robustness.md) ----------
#: SimPy events at ``group`` fidelity, per graph node once (set-up; measured 31 digits,
#: 20 ResNet-18) ...
EVENTS_PER_NODE = 25.0
#: ... per output position and image, and per output row and image (the input port, the
#: fan-outs' arrivals): fitted to digits (1,957 events at N = 4) and ResNet-18 (290,001)
#: since a position is merged at its own simulated time (a timeout per weight-layer
#: position; 2026-12-04), with EVENTS_PER_NODE as set-up: 231 b + 37 c = 433 and
#: 91,879 b + 1,075 c = 72,287.75 -> b = 0.70, c = 7.3 (before: 1,324 and 168,236 events,
#: b = 0.40, c = 4.9)
EVENTS_PER_POSITION = 0.70
EVENTS_PER_ROW = 7.3
#: SimPy events per bit plane at ``plane`` fidelity, per B planes of every lane MVM
#: (measured with ReDy's planes 4.28 digits, 4.37 ResNet-18; static streams all B planes,
#: so the bound carries a margin)
EVENTS_PER_PLANE = 6.0
#: plans and ledger activity kinds, bytes per lane MVM of one image (ResNet-18: 12.8 MB)
PLAN_BYTES_PER_MVM = 100.0
#: engine structures allocated per image: per graph node (progress objects, lists) ...
NODE_BYTES = 1200.0
#: ... per output position (completion flags 1 B, arrival times 8 B, lane counters 4 B)
POSITION_BYTES = 14.0
#: ... per lane MVM (the image's bit planes, cycled: 1 B, plus the copy while cycling)
MVM_BYTES = 2.0
#: analytic fidelity: per output row and image (row end times, 8 B, and array headers)
ROW_BYTES = 16.0
#: ledger records and SimPy events buffered while the engine runs, per lane MVM (plane
#: fidelity: per bit plane) ...
RECORD_BYTES_PER_MVM = 1600.0
#: ... up to the ledger's flush threshold (65536 records) and the bounded event queue
DYNAMIC_CAP = {"group": 48 * 2**20, "plane": 64 * 2**20, "analytic": 8 * 2**20}
#: one kept trace event in memory (a dict): measured 518 B on ResNet-18
BYTES_PER_TRACE_EVENT = 520.0
#: trace events per lane MVM without sampling (the MVM + two ADC counter changes)
TRACE_EVENTS_PER_MVM = 3
#: idle-machine seconds: analytic pass per output row and image, and per lane MVM ...
ROW_SECONDS = 1.0e-4
ANALYTIC_MVM_SECONDS = 2.3e-6
#: ... event loop per lane MVM (group) and per bit plane (plane)
GROUP_MVM_SECONDS = 3.0e-5
PLANE_SECONDS = 4.6e-5
#: recording a trace slows the event loop (ResNet-18, group: 48.8 s against 17.0 s)
TRACE_TIME_FACTOR = 2.9


@dataclass(frozen=True)
class WorkCounts:
    """Per-image work of a mapped network (the work plan's sizes)."""

    lane_mvms: int
    """Σ over weight layers of row blocks × output positions (one MVM per activation group)."""
    nodes: int
    """Graph nodes (layers, pools, adds, ...)."""
    positions: int
    """Σ over every graph node of its output positions (H·W, or 1 for a vector)."""
    rows: int
    """Σ over every graph node of its output rows."""


def work_counts(graph: nx.DiGraph, mapping) -> WorkCounts:
    """Lane MVMs, nodes, output positions and output rows of one image."""
    mvms = sum(len(lm.row_blocks) * lm.positions for lm in mapping.layers.values())
    positions = rows = 0
    for _, d in graph.nodes(data=True):
        shape = d.get("out_shape") or (1,)
        if len(shape) == 3:
            positions += int(shape[1]) * int(shape[2])
            rows += int(shape[1])
        else:
            positions += 1
            rows += 1
    return WorkCounts(int(mvms), graph.number_of_nodes(), int(positions), int(rows))


@dataclass(frozen=True)
class RunEstimate:
    """What a run will cost, estimated before it starts."""

    pipelines: int
    concurrent: int
    images: int
    fidelity: str
    work: WorkCounts
    events: float
    """SimPy events of all pipelines (0 at analytic fidelity)."""
    bytes_per_pipeline: float
    """Peak memory one pipeline's simulation adds (without its trace)."""
    trace_bytes: float
    """Trace events kept in memory, all pipelines (held by the parent at the end)."""
    peak_bytes: float
    """Memory the run adds at its peak, beyond what the process holds already."""
    seconds: float
    """Wall time of the simulation phase on an idle machine."""
    load_factor: float
    """``load average / CPUs`` when above 1 (the time shown is multiplied by it)."""
    available_bytes: float | None
    """Memory available on the machine when estimated (None where unknown)."""
    activation_bits: int = 8

    def describe(self) -> str:
        """One line for the run header."""
        avail = (f" of {_fmt_bytes(self.available_bytes)} available"
                 if self.available_bytes is not None else "")
        ev = f"{_fmt_count(self.events)} events, " if self.events else ""
        busy = (f" (machine load ×{self.load_factor:.1f})" if self.load_factor > 1.05
                else "")
        secs = _fmt_seconds(self.seconds * self.load_factor)
        return (f"estimate: {self.pipelines} pipeline(s) × {self.images:,} image(s) × "
                f"{_fmt_count(self.work.lane_mvms)} lane MVMs: {ev}"
                f"~{_fmt_bytes(self.peak_bytes)} memory{avail}, "
                f"{secs if secs.startswith('<') else '~' + secs} to simulate{busy}")

    def to_json(self) -> dict:
        """The estimate as summary.json's ``estimate`` block."""
        return {"pipelines": self.pipelines, "concurrent": self.concurrent,
                "images": self.images, "fidelity": self.fidelity,
                "lane_mvms_per_image": self.work.lane_mvms, "nodes": self.work.nodes,
                "positions_per_image": self.work.positions,
                "rows_per_image": self.work.rows, "events": self.events,
                "bytes_per_pipeline": self.bytes_per_pipeline,
                "trace_bytes": self.trace_bytes, "peak_bytes": self.peak_bytes,
                "seconds_idle": self.seconds, "load_factor": self.load_factor,
                "available_bytes": self.available_bytes}

    def fits(self) -> bool:
        """Whether the estimated peak fits the memory available (True when unknown)."""
        return self.available_bytes is None or self.peak_bytes <= self.available_bytes


def pipeline_bytes(work: WorkCounts, fidelity: str, images: int,
                   activation_bits: int = 8) -> tuple[float, float]:
    """(fixed bytes, bytes per image) one pipeline's simulation adds, without a trace.

    The event-time buffers are counted in the fixed part, up to their cap (they stop
    growing there); at ``plane`` fidelity they grow per bit plane (B per MVM at most).
    """
    fid = fidelity if fidelity in DYNAMIC_CAP else "group"
    fixed = PLAN_BYTES_PER_MVM * work.lane_mvms
    if fid == "analytic":
        per_image = ROW_BYTES * work.rows + MVM_BYTES * work.lane_mvms
    else:
        per_image = (NODE_BYTES * work.nodes + POSITION_BYTES * work.positions
                     + MVM_BYTES * work.lane_mvms)
    units = work.lane_mvms * images * (activation_bits if fid == "plane" else 1)
    dynamic = min(RECORD_BYTES_PER_MVM * units, DYNAMIC_CAP[fid])
    return fixed + dynamic, per_image


def estimate_run(sim, pipelines: int, graph: nx.DiGraph, mapping, activation_bits: int,
                 available_bytes: float | None = None,
                 load_factor: float | None = None) -> RunEstimate:
    """Estimate a run of *pipelines* pipelines with simulation options *sim*.

    *sim* is the scenario's :class:`~simulator.runner.scenario.SimulationOptions`;
    *available_bytes* defaults to :func:`available_memory`, *load_factor* to
    :func:`machine_load_factor`.
    """
    work = work_counts(graph, mapping)
    n = int(sim.images)
    fid = str(sim.fidelity)
    mvms = float(work.lane_mvms) * n
    planes = mvms * activation_bits  # upper bound: every group streams all B planes
    seconds = ROW_SECONDS * work.rows * n + ANALYTIC_MVM_SECONDS * mvms
    events = 0.0
    if fid == "group":
        events = EVENTS_PER_NODE * work.nodes + (EVENTS_PER_POSITION * work.positions
                                                 + EVENTS_PER_ROW * work.rows) * n
        seconds += GROUP_MVM_SECONDS * mvms
    elif fid == "plane":
        events = EVENTS_PER_PLANE * planes
        seconds += PLANE_SECONDS * planes
    if sim.trace and fid != "analytic":
        seconds *= TRACE_TIME_FACTOR
    fixed, per_image = pipeline_bytes(work, fid, n, activation_bits)
    per = fixed + per_image * n
    trace_events = 0.0
    if sim.trace and fid != "analytic":
        # the recorder samples lane MVMs so that a pipeline keeps <= trace_max_events
        trace_events = min(TRACE_EVENTS_PER_MVM * mvms / max(int(sim.trace_sample), 1),
                           float(sim.trace_max_events))
    trace_one = BYTES_PER_TRACE_EVENT * trace_events
    concurrent = max(1, min(int(sim.workers), pipelines))
    if concurrent == 1:  # in-process: one simulation at a time, the traces accumulate
        peak = per + pipelines * trace_one
    else:
        # each running worker: its simulation and its trace (pickled once more to be
        # sent); the parent: every finished pipeline's trace until the results are written
        peak = concurrent * (per + 2 * trace_one) + pipelines * trace_one
    rounds = math.ceil(pipelines / concurrent)
    if available_bytes is None:
        available_bytes = available_memory()
    if load_factor is None:
        load_factor = machine_load_factor()
    return RunEstimate(pipelines, concurrent, n, fid, work, events * pipelines, per,
                       trace_one * pipelines, peak, seconds * rounds, load_factor,
                       available_bytes, int(activation_bits))


def check_fits(est: RunEstimate, source: str) -> None:
    """Raise :class:`RunTooLarge`, saying what to change, when *est* does not fit."""
    if est.fits():
        return
    assert est.available_bytes is not None
    fixed, per_image = pipeline_bytes(est.work, est.fidelity, est.images, est.activation_bits)
    trace_per_pipeline = est.trace_bytes / max(est.pipelines, 1)
    room = est.available_bytes - est.concurrent * (fixed + 3 * trace_per_pipeline)
    fit_images = int(room // (est.concurrent * per_image)) if per_image > 0 else 0
    hints = [f"lower simulation.images or --images (about {fit_images:,} would fit)"
             if fit_images >= 1 else "use a smaller network or chip"]
    if est.concurrent > 1:
        hints.append("set simulation.workers: 1 to simulate the pipelines one at a time")
    if est.trace_bytes:
        hints.append("drop --trace or lower simulation.trace_max_events")
    raise RunTooLarge(
        f"{source}: run too large: it needs an estimated {_fmt_bytes(est.peak_bytes)} of "
        f"memory ({est.pipelines} pipeline(s), {est.concurrent} at a time, × "
        f"{est.images:,} image(s) × {est.work.lane_mvms:,} lane MVMs), more than the "
        f"{_fmt_bytes(est.available_bytes)} available; " + "; ".join(hints)
        + "; or pass --yes to run anyway")


# ----------------------------------------------------------------- workload inputs
#: capture memory per byte of input image (forward passes in batches, per-group planes
#: and statistics kept for every image): measured 35 on ResNet-18 and 77 on VGG-16 at
#: 224x224 (bench/estimate_calibration.py --workload); 64 is in between, so the check
#: refuses absurd inputs (a huge input_size or image count) without refusing real ones
CAPTURE_BYTES_PER_INPUT_BYTE = 64.0


def workload_bytes(workload) -> tuple[float, int, int]:
    """(bytes, images, input elements per image) the workload's set-up needs.

    *workload* is the scenario's :class:`~workloads.spec.WorkloadSpec`. The digits
    models take their images from the fixed 1797-image set, so only its size counts. The
    model's own weights are not counted (unknown before it is built): the check is
    there to refuse absurd inputs, not to budget a network.
    """
    if workload.model == "digits":
        elems, images = 64, 1797
    elif workload.model == "resnet-digits":  # digits upsampled to 16 x 16
        elems, images = 256, 1797
    else:
        shape = workload.input_shape or (3, workload.input_size, workload.input_size)
        elems = int(math.prod(int(x) for x in shape))
        # a labelled folder also holds its accuracy images in memory (the whole test part
        # when accuracy_images is 0: capped by workloads.loader.MAX_INPUT_GIB when listed)
        measured = int(workload.eval_images)
        if getattr(workload, "dataset", None) is not None:
            measured = max(measured, int(getattr(workload, "accuracy_images", 0)))
        images = int(workload.calibration_images) + measured
    need = 4.0 * elems * images * CAPTURE_BYTES_PER_INPUT_BYTE
    return need, images, elems


def check_workload_fits(workload, source: str, available_bytes: float | None = None) -> None:
    """Refuse, before anything is built, a workload whose inputs cannot fit in memory."""
    need, images, elems = workload_bytes(workload)
    avail = available_memory() if available_bytes is None else available_bytes
    if avail is None or need <= avail:
        return
    raise RunTooLarge(
        f"{source}: workload too large: {images:,} input image(s) of {elems:,} values "
        f"(workload.input_size / input_shape, calibration_images + eval_images or "
        f"accuracy_images) need an "
        f"estimated {_fmt_bytes(need)} to build, calibrate and capture, more than the "
        f"{_fmt_bytes(avail)} available; lower them, or pass --yes to try anyway")


class RunTooLarge(ConfigError):
    """The run's estimated memory exceeds what the machine has available."""


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages (``/proc/loadavg``), or '?' (for reports
    and benchmarks: every timing is printed next to it)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine_load_factor() -> float:
    """1-minute load average per CPU, at least 1 (1 where unknown)."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except (OSError, AttributeError):
        return 1.0


# ----------------------------------------------------------------- memory available
def available_memory() -> float | None:
    """Bytes available for new work: MemAvailable, capped by a cgroup memory limit."""
    avail = _meminfo_available()
    limit = _cgroup_room()
    vals = [v for v in (avail, limit) if v is not None]
    return float(min(vals)) if vals else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # other POSIX systems: free physical pages
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    """Limit minus usage of this process's cgroup (v2, then v1), None without a limit."""
    for limit_f, usage_f in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                             ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                              "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            raw = Path(limit_f).read_text().strip()
            if raw == "max":
                return None
            limit, usage = int(raw), int(Path(usage_f).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit >= 1 << 60:  # v1 "no limit"
            return None
        return max(limit - usage, 0)
    return None


# ----------------------------------------------------------------- formatting
def _fmt_bytes(b: float | None) -> str:
    if b is None:
        return "?"
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if b >= size:
            return f"{b / size:,.1f} {unit}"
    return f"{b / 2**10:,.0f} KB"


def _fmt_count(x: float) -> str:
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= size:
            return f"{x / size:,.1f} {unit}"
    return f"{x:,.0f}"


def _fmt_seconds(s: float) -> str:
    if s < 1:
        return "<1 s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:,.0f} days"
