"""The whole flow, scenario in → results out (the Python API behind ``redysim run``).

scenario → hardware spec → workload (model, inputs) → torch.fx graph → mapping →
static scales → per-pipeline bit planes (policy applied inside the forward pass) →
SimPy simulation per pipeline → :class:`RunResult`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mapping.mapper import NetworkMapping, map_network
from simulator.config_io import ConfigError
from simulator.hardware import HardwareSpec, load_hardware
from simulator.scenario import Scenario, load_scenario
from simulator.simulate import PipelineResult, simulate_pipeline
from workloads.graph import TracedWorkload
from workloads.loader import Workload
from workloads.loader import load_workload as _load_workload
from workloads.precision import LayerSpec, PipelinePrecision, compute_precision
from workloads.quantize import calibrate_scales

Progress = Callable[[str], None]


@dataclass
class RunResult:
    """Everything one scenario run produced."""

    scenario: Scenario
    hardware: HardwareSpec
    workload: Workload
    mapping: NetworkMapping
    precision: dict[str, PipelinePrecision]
    pipelines: dict[str, PipelineResult]
    float_accuracy: float | None  # top-1 % of the unquantized model, when there are labels
    wall_s: dict[str, float] = field(default_factory=dict)
    float_top5: float | None = None
    # spread over the measured images and the saving decomposition (simulator.image_energy)
    images: dict = field(default_factory=dict)


def load_workload(sc: Scenario) -> Workload:
    """Build the model named in the scenario, its inputs, and trace it
    (:func:`workloads.loader.load_workload`)."""
    return _load_workload(sc.workload, sc.base_dir)


def layer_specs(traced: TracedWorkload, mapping) -> dict[str, LayerSpec]:
    """Row-block ranges of every mapped layer, for grouping activations."""
    g = traced.graph
    return {name: LayerSpec(module=g.nodes[name]["module"], kind=lm.kind,
                            row_ranges=[tuple(rb.rows) for rb in lm.row_blocks],
                            signed_input=bool(g.nodes[name]["signed_input"]))
            for name, lm in mapping.layers.items()}


def load_scenario_hardware(sc: Scenario) -> HardwareSpec:
    """The scenario's hardware file, checked against the scenario's quantization."""
    hw = load_hardware(sc.resolve(sc.hardware))
    if sc.quantization.bits != hw.activations.bits:
        raise ConfigError(
            f"{sc.source}: quantization.bits: must equal the hardware's activations.bits "
            f"({hw.activations.bits}) (got {sc.quantization.bits})")
    return hw


def prepare(sc: Scenario, wall: dict[str, float] | None = None,
            say: Progress | None = None) -> tuple[HardwareSpec, Workload, NetworkMapping]:
    """Hardware, traced workload and mapping of a scenario (shared by run, map, tune).

    Phase wall times go into *wall* ("trace", "map") when given.
    """
    say = say or (lambda _msg: None)
    wall = wall if wall is not None else {}
    t = time.perf_counter()
    hw = load_scenario_hardware(sc)
    say(f"hardware {hw.name}")
    say(f"building and tracing {sc.workload.model}")
    wl = load_workload(sc)
    wall["trace"] = time.perf_counter() - t
    t = time.perf_counter()
    mapping = map_network(wl.traced.graph, hw, sc.mapping)
    wall["map"] = time.perf_counter() - t
    say(f"mapped: {mapping.crossbars_used} crossbars on {mapping.tiles_used} tiles, "
        f"{mapping.chips} chip(s)")
    return hw, wl, mapping


def run(scenario: Scenario | str | Path, progress: Progress | None = None,
        bars: bool = False) -> RunResult:
    """Run a scenario end to end and return the result object (nothing is written).

    *progress* receives one line per phase; *bars* shows tqdm progress bars for the
    simulation (in simulated time).
    """
    from simulator.trace import TraceRecorder

    say = progress or (lambda _msg: None)
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    # torch's intra-op threads spin while waiting: on a busy 2-core machine two threads
    # made the activation pass 5-30x slower, one thread costs ~0.3 s when idle
    torch.set_num_threads(int(os.environ.get("REDYSIM_TORCH_THREADS", "1")))
    wall: dict[str, float] = {}
    hw, wl, mapping = prepare(sc, wall, say)
    t = time.perf_counter()
    specs = layer_specs(wl.traced, mapping)
    module = wl.traced.module
    scales = calibrate_scales(module, specs, wl.calib_inputs, sc.quantization)
    say(f"capturing activations of {len(wl.eval_inputs)} image(s) and applying "
        f"{len(sc.pipelines)} precision policies")
    # lossless pipelines share one forward pass, every other pipeline gets its own; the
    # weights are quantized to the chip's weight bits, so the accuracy is the chip's
    prec = compute_precision(module, specs, wl.eval_inputs, scales, sc.quantization,
                             sc.pipelines, labels=wl.eval_labels, keep_images=wl.keep_images,
                             weight_bits=int(hw.weights.bits), workers=sc.simulation.workers)
    float_acc = float_top5 = None
    if wl.eval_labels is not None:
        from workloads.precision import float_logits, top1, topk

        logits = float_logits(module, wl.eval_inputs)
        float_acc, float_top5 = top1(logits, wl.eval_labels), topk(logits, wl.eval_labels, 5)
    wall["precision"] = time.perf_counter() - t
    jobs = []
    for i, (name, pp) in enumerate(prec.items()):
        planes = {layer: lp.planes for layer, lp in pp.layers.items()}
        trace = None
        if sc.simulation.trace and sc.simulation.fidelity != "analytic":
            trace = TraceRecorder(name, _trace_every(sc, planes), pid_offset=i * 1_000_000)
        jobs.append((name, pp.policy.policy, planes, trace))
    workers = min(sc.simulation.workers, len(jobs))
    say(f"simulating {len(jobs)} pipeline(s) ({sc.simulation.fidelity}, "
        f"{sc.simulation.images} image(s)" + (f", {workers} processes)" if workers > 1 else ")"))
    args = (wl.traced.graph, mapping, hw, sc.simulation)
    results: dict[str, PipelineResult] = {}
    if workers > 1:
        import multiprocessing as mp

        global _SHARED
        _SHARED = args  # inherited by the forked workers, not pickled
        with mp.get_context("fork").Pool(workers) as pool:
            for name, res, dt in pool.imap(_simulate_job, [(j, False) for j in jobs]):
                results[name] = res
                wall[f"simulate:{name}"] = dt
        _SHARED = None
    else:
        for job in jobs:
            name, res, dt = _simulate_job((job, bars), args)
            results[name] = res
            wall[f"simulate:{name}"] = dt
    from simulator.image_energy import image_analysis

    t = time.perf_counter()
    images = image_analysis(prec, results, wl.traced.graph, mapping, hw)
    wall["images"] = time.perf_counter() - t
    return RunResult(sc, hw, wl, mapping, prec, results, float_acc, wall, float_top5, images)


_SHARED: tuple | None = None


def _simulate_job(job_and_bars: tuple, shared: tuple | None = None) -> tuple:
    """Simulate one pipeline (in a forked worker, *shared* comes from the parent)."""
    (name, policy, planes, trace), bars = job_and_bars
    graph, mapping, hw, sim = shared if shared is not None else _SHARED
    t = time.perf_counter()
    res = simulate_pipeline(graph, mapping, hw, planes, policy, name, sim.fidelity,
                            sim.images, sim.time_bins, sim.power_gating, trace=trace,
                            progress=bars, load_timing=sim.load_timing)
    return name, res, time.perf_counter() - t


def _trace_every(sc: Scenario, planes: dict[str, np.ndarray]) -> int:
    """Sampling of lane MVMs that keeps one pipeline's trace under trace_max_events.

    Unsampled, a group writes its MVM and two ADC-counter changes; sampled traces drop
    the counters (a counter track with gaps would be wrong).
    """
    groups = sum(int(np.prod(p.shape[1:])) for p in planes.values()) * sc.simulation.images
    limit = sc.simulation.trace_max_events
    every = sc.simulation.trace_sample
    if every == 1 and 3 * groups > limit:
        return max(2, -(-groups // limit))
    return max(every, -(-groups // limit)) if every > 1 else every
