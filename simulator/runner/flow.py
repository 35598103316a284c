"""The whole flow, scenario in → results out (the Python API behind ``redysim run``).

scenario → hardware spec → workload (model, inputs) → torch.fx graph → mapping →
static scales → per-pipeline bit planes (policy applied inside the forward pass) →
SimPy simulation per pipeline → :class:`RunResult`.

:func:`run` is a sequence of steps that a sweep (:mod:`simulator.explore.sweep.graph`) also
calls one by one, as separate tasks shared between points:

- :func:`trace_step`: the traced workload (network, inputs), through the artifact cache;
- :func:`map_step`: the mapping of the traced network on a chip (on a copy of its graph;
  :func:`prepare` maps through the artifact cache with :func:`map_workload`, and
  :func:`run` reads the timing plan through it with :func:`timing_plan_step`);
- :func:`scales_step`, :func:`exact_step`, :func:`capture_step`, :func:`float_accuracy_step`:
  the static scales, the exact crossbar mode's ADC (calibrated when asked for), one forward
  pass's bit planes per pipeline, the float accuracy;
- :func:`estimate_step`: the run-size estimate, refused when it cannot fit;
- :func:`simulate_step`: one pipeline's simulation;
- :func:`assemble_step`: the per-image analysis and the :class:`RunResult`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mapping.mapper import NetworkMapping, map_network
from simulator.core import faults
from simulator.core.config_io import ConfigError
from simulator.hardware.spec import HardwareSpec, load_hardware
from simulator.runner.estimate import RunEstimate, check_fits, check_workload_fits, estimate_run
from simulator.runner.scenario import Scenario, check_scenario, check_warmup, load_scenario
from simulator.runner.simulate import PipelineResult, TimingPlan, simulate_pipeline
from workloads.errors import WorkloadError
from workloads.loader import Workload
from workloads.precision.crossbar_model import CrossbarModel
from workloads.precision.options import capture_groups
from workloads.precision.records import LayerSpec, PipelinePrecision

# torch, and the workloads modules built on it, are imported where a network is built or
# an activation pass runs: a rerun that reads every artifact from the cache never needs
# them (tests/test_fixed_costs.py)
if TYPE_CHECKING:  # pragma: no cover
    import torch

    from simulator.runner.cache import ArtifactCache
    from workloads.graph import TracedWorkload

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
    estimate: RunEstimate | None = None  # run-size estimate made before the simulation
    float_top5: float | None = None
    # spread over the measured images and the saving decomposition (simulator.runner.image_energy)
    images: dict = field(default_factory=dict)


def load_workload(sc: Scenario) -> Workload:
    """Build the model named in the scenario, its inputs, and trace it
    (:func:`workloads.loader.load_workload`)."""
    from workloads.loader import load_workload as build

    _torch_threads()
    return build(sc.workload, sc.base_dir)


#: torch's intra-op threads in a run (set by :func:`run`; None: torch's own default)
_THREADS: int | None = None


def _torch_threads() -> None:
    """Apply :func:`run`'s thread count to torch, before a network is built or a pass runs
    (torch is imported only then)."""
    if _THREADS is not None:
        import torch

        if torch.get_num_threads() != _THREADS:
            torch.set_num_threads(_THREADS)


def layer_specs(traced: TracedWorkload, mapping) -> dict[str, LayerSpec]:
    """Row-block ranges of every mapped layer, for grouping activations."""
    g = traced.graph
    return {name: LayerSpec(module=g.nodes[name]["module"], kind=lm.kind,
                            row_ranges=[tuple(rb.rows) for rb in lm.row_blocks],
                            signed_input=bool(g.nodes[name]["signed_input"]))
            for name, lm in mapping.layers.items()}


def scale_specs(traced: TracedWorkload) -> dict[str, LayerSpec]:
    """The layers whose inputs get a static scale, from the traced graph alone: every
    conv and linear node (the layers a mapping maps), with their module and input
    signedness (what :func:`~workloads.precision.quantize.calibrate_scales` reads; the
    row blocks are left empty). A sweep calibrates once for all its chips with these."""
    from mapping.mapper import WEIGHT_KINDS

    g = traced.graph
    order = sorted(g.nodes, key=lambda n: g.nodes[n].get("order", 0))
    return {n: LayerSpec(module=g.nodes[n]["module"], kind=g.nodes[n]["kind"], row_ranges=[],
                         signed_input=bool(g.nodes[n]["signed_input"]))
            for n in order if g.nodes[n]["kind"] in WEIGHT_KINDS}


def load_scenario_hardware(sc: Scenario, hardware: HardwareSpec | None = None) -> HardwareSpec:
    """The scenario's hardware file (or *hardware*), checked against its quantization."""
    hw = hardware if hardware is not None else load_hardware(sc.resolve(sc.hardware))
    if sc.quantization.bits != hw.activations.bits:
        raise ConfigError(
            f"{sc.source}: quantization.bits: must equal the hardware's activations.bits "
            f"({hw.activations.bits}) (got {sc.quantization.bits})")
    return hw


def crossbar_model(hw: HardwareSpec) -> CrossbarModel:
    """The exact crossbar mode's parameters (``accuracy.crossbar: exact``), from the
    hardware: crossbar geometry and cells, weight bits and encoding, the ADC's resolution,
    transfer function (``ima.adc_model``, ``ima.adc_range_percentile``) and read noise."""
    return CrossbarModel(
        rows=hw.crossbar.rows, cols=hw.crossbar.cols, cell_bits=hw.crossbar.cell_bits,
        weight_bits=hw.weights.bits, unit_column=hw.weights.unit_column,
        flip_encoding=hw.weights.flip_encoding, adc_bits=hw.ima.adc_bits,
        adc_model=hw.ima.adc_model, range_percentile=hw.ima.adc_range_percentile,
        noise_lsb=hw.ima.adc_noise_lsb, noise_seed=hw.ima.adc_noise_seed)


def crossbar_key(sc: Scenario, hw: HardwareSpec) -> dict[str, Any] | None:
    """What the exact crossbar mode's captures depend on (None in the default mode)."""
    return crossbar_model(hw).key() if sc.accuracy.crossbar == "exact" else None


def describe_crossbar(xb: CrossbarModel) -> str:
    """One line on the exact mode's ADC for the run's progress output."""
    noise = f", read noise {xb.noise_lsb:g} LSB (seed {xb.noise_seed})" if xb.noise_lsb else ""
    model = (f"range at the {xb.range_percentile:g}th percentile of the calibration images' "
             "column sums" if xb.calibrated else "ideal, clipping at "
             f"{xb.top_code}")
    if xb.calibrated:
        clip = f"a full column sum needs {xb.never_clip_bits} bits"
    else:
        clip = (f"{xb.never_clip_bits} bits never clip, so at {xb.adc_bits} bits "
                + ("nothing clips" if xb.adc_bits >= xb.never_clip_bits
                   else f"column sums above {xb.top_code} clip"))
    return f"accuracy: exact crossbar mode: {xb.adc_bits}-bit ADC ({model}{noise}); {clip}"


def capture_device(sc: Scenario) -> torch.device:
    """The scenario's ``workload.device``, resolved (a ConfigError naming the file when
    cuda is asked for and absent)."""
    from workloads.device import resolve_device

    try:
        return resolve_device(sc.workload.device)
    except WorkloadError as exc:
        raise ConfigError(f"{sc.source}: {exc}") from None


def prepare(sc: Scenario, wall: dict[str, float] | None = None,
            say: Progress | None = None, hardware: HardwareSpec | None = None,
            cache: ArtifactCache | None = None, allow_large: bool = False,
            ) -> tuple[HardwareSpec, Workload, NetworkMapping]:
    """Hardware, traced workload and mapping of a scenario (shared by run, map, tune).

    Phase wall times go into *wall* ("trace", "map") when given. *hardware* replaces the
    scenario's hardware file (a variant built with ``with_changes``); with *cache* the
    traced workload and its mapping are read from / written to the artifact cache
    (:func:`map_workload`). Inputs too large for
    the memory available are refused before anything is built, unless *allow_large*
    (:func:`simulator.runner.estimate.check_workload_fits`).
    """
    say = say or (lambda _msg: None)
    if not allow_large:
        check_workload_fits(sc.workload, sc.source)
    wall = wall if wall is not None else {}
    t = time.perf_counter()
    hw = load_scenario_hardware(sc, hardware)
    say(f"hardware {hw.name}: ADC {hw.ima.adc_bits} b at {hw.ima.adc_rate_gsps:g} GS/s "
        f"(a full column sum needs {hw.adc_bits_needed} b; busy crossbars need "
        f"{hw.adc_rate_needed_gsps:g} GS/s), {hw.ima.crossbars_per_adc:g} crossbar(s) per ADC")
    for msg in hw.warnings():
        say(f"warning: {msg}")
    say(f"building and tracing {sc.workload.model}")
    wl = trace_step(sc, cache, allow_large=True, lazy=True)
    wall["trace"] = time.perf_counter() - t
    t = time.perf_counter()
    mapping = map_workload(sc, wl, hw, cache)
    wall["map"] = time.perf_counter() - t
    say(f"mapped: {mapping.crossbars_used} crossbars on {mapping.tiles_used} tiles, "
        f"{mapping.chips} chip(s)")
    return hw, wl, mapping


def trace_step(sc: Scenario, cache: ArtifactCache | None = None,
               allow_large: bool = False, lazy: bool = False) -> Workload:
    """The scenario's traced workload: built and traced, or read from *cache* (then its
    graph is a private copy: mapping annotates the graph in place). Inputs too large for
    the memory available are refused first, unless *allow_large*. *lazy*: a
    :class:`simulator.runner.cache.LazyWorkload`, whose fx module and inputs are read
    from *cache* only when first used, and which a run may take and release
    (:meth:`~simulator.runner.cache.LazyWorkload.own`; without a cache it is built now,
    and built again when used after its release). A sweep's trace task hands on the same
    light part (:mod:`simulator.explore.sweep.tasks`), never the network."""
    if not allow_large:
        check_workload_fits(sc.workload, sc.source)
    if cache is not None:
        from simulator.runner.cache import cached_workload

        return cached_workload(cache, sc, load_workload, lazy=lazy)
    if lazy:
        from simulator.runner.cache import lazy_workload

        return lazy_workload(load_workload(sc), lambda: load_workload(sc))
    return load_workload(sc)


def map_workload(sc: Scenario, wl: Workload, hw: HardwareSpec,
                 cache: ArtifactCache | None = None) -> NetworkMapping:
    """The mapping of *wl* (from :func:`trace_step`, its graph this caller's own) on *hw*
    with the scenario's mapping options; *wl*'s graph is annotated as
    :func:`~mapping.mapper.map_network` annotates it in place. With *cache* and a workload
    read through it (a :class:`~simulator.runner.cache.LazyWorkload` with its key), the
    mapping is read from the cache's ``mapping`` artifact, or computed and stored there:
    a mapping read holds the graph as :func:`~mapping.mapper.map_network` left it, which
    then replaces *wl*'s graph (``mapping.graph is wl.traced.graph`` either way)."""
    key = getattr(wl, "key", None)
    if cache is None or key is None:
        return map_network(wl.traced.graph, hw, sc.mapping)
    from simulator.runner.cache import get_with_refs, mapping_key

    mapping = get_with_refs(cache, "mapping", mapping_key(key, sc.mapping, hw),
                            lambda: map_network(wl.traced.graph, hw, sc.mapping), {"hw": hw})
    wl.traced.graph = mapping.graph
    return mapping


def timing_plan_step(sc: Scenario, wl: Workload, mapping: NetworkMapping, hw: HardwareSpec,
                     cache: ArtifactCache | None = None) -> TimingPlan:
    """The work plan, routes and packets of one image that every pipeline of the run
    shares (:func:`~simulator.runner.simulate.prepare_timing`) of the mapping
    :func:`prepare` made; with *cache* (and a workload read through it), read from the
    cache's ``timing_plan`` artifact or computed and stored there. A plan read refers to
    *hw*, *mapping*, its graph and its position arrays as a computed one does."""
    from simulator.runner import simulate

    key = getattr(wl, "key", None)
    if cache is None or key is None:
        return simulate.prepare_timing(wl.traced.graph, mapping, hw)
    from simulator.runner.cache import get_with_refs, mapping_key, timing_plan_key

    refs: dict[Any, Any] = {"hw": hw, "mapping": mapping, "graph": mapping.graph}
    for name, lm in mapping.layers.items():  # the plan's lanes hold these arrays
        for r, positions in enumerate(lm.replica_positions):
            refs[("replica_positions", name, r)] = positions
    for name, tiles in mapping.position_tiles.items():  # and its nodes these
        refs[("position_tiles", name)] = tiles
    pkey = timing_plan_key(mapping_key(key, sc.mapping, hw), hw)
    return get_with_refs(cache, "timing_plan", pkey,
                         lambda: simulate.prepare_timing(wl.traced.graph, mapping, hw), refs)


def map_step(wl: Workload, hw: HardwareSpec, sc: Scenario) -> tuple[Workload, NetworkMapping]:
    """Map *wl* on *hw* with the scenario's mapping options, on a copy of its graph (*wl*
    itself is left as it was: a sweep maps one traced workload for several chips).
    Returns the workload with the annotated graph, and the mapping."""
    own = dataclasses.replace(wl, traced=dataclasses.replace(wl.traced,
                                                             graph=wl.traced.graph.copy()))
    return own, map_network(own.traced.graph, hw, sc.mapping)


def run(scenario: Scenario | str | Path, progress: Progress | None = None,
        bars: bool = False, hardware: HardwareSpec | None = None,
        cache: ArtifactCache | None = None, allow_large: bool = False,
        while_simulating: Callable[[], None] | None = None) -> RunResult:
    """Run a scenario end to end and return the result object (nothing is written).

    *progress* receives one line per phase; *bars* shows tqdm progress bars for the
    simulation (in simulated time). *hardware* replaces the scenario's hardware file (e.g.
    ``load_hardware(...).with_changes({...})``); *cache* (:class:`simulator.runner.cache.
    ArtifactCache`) reuses the traced workload, its mapping and timing plan, scales and
    per-policy bit planes. Right
    after mapping, the run's events, memory and time are estimated
    (:mod:`simulator.runner.estimate`, reported through *progress*); a run whose memory estimate
    exceeds the memory available raises :class:`~simulator.runner.estimate.RunTooLarge` unless
    *allow_large*. *while_simulating* is called once the pipelines' simulations all run in
    worker processes, before waiting for them (with ``simulation.workers`` > 1 only):
    ``redysim run`` imports matplotlib there, while the parent would otherwise wait.
    """
    say = progress or (lambda _msg: None)
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    check_scenario(sc)  # again: a Scenario built in Python or changed after loading
    check_warmup(sc)
    # torch's intra-op threads spin while waiting: on a busy 2-core machine two threads
    # made the activation pass 5-30x slower, one thread costs ~0.3 s when idle (applied
    # when torch is first needed: a rerun from the cache never imports it)
    global _THREADS
    _THREADS = int(os.environ.get("REDYSIM_TORCH_THREADS", "1"))
    if "torch" in sys.modules:
        _torch_threads()
    wall: dict[str, float] = {}
    hw, wl, mapping = prepare(sc, wall, say, hardware, cache, allow_large)
    est = estimate_step(sc, wl.traced.graph, mapping, hw, allow_large, say)
    t = time.perf_counter()
    # the work plan, routes and packets are the same for every pipeline: once, here
    timing_plan = timing_plan_step(sc, wl, mapping, hw, cache)
    args = (wl.traced.graph, mapping, hw, sc.simulation, timing_plan)
    wall["plan"] = time.perf_counter() - t
    workers = min(sc.simulation.workers, len(sc.pipelines))
    t = time.perf_counter()
    specs = layer_specs(wl.traced, mapping)
    weight_bits = int(hw.weights.bits)
    if sc.workload.device != "cpu":
        capture_device(sc)  # a device asked for and absent fails here, before any pass
    scales = scales_step(sc, wl, specs, cache)
    xbar = exact_step(sc, wl, specs, hw, scales, cache, say)
    groups = capture_groups(sc.pipelines, exact=xbar is not None)
    side = pass_workers(sc, wl.traced.graph, specs, len(groups), workers)
    # passes one after the other in this process (a network whose weight copies are too
    # big to run passes side by side: VGG-16): the network is this run's own. Its weights
    # are quantized in place, once for all passes, instead of a copy per pass, and it is
    # let go before the simulations are forked, which would otherwise hold its pages
    # (docs/benchmarks.md, "Peak memory"). The exact crossbar mode keeps the float weights
    # (its passes quantize their own codes).
    own = side == 1 and xbar is None and hasattr(wl, "release")
    say(f"capturing activations of {wl.eval_count} image(s) and applying "
        f"{len(sc.pipelines)} precision policies ({len(groups)} forward pass(es)"
        + (f", side by side in {side} processes)" if side > 1 else ")")
        + ((f"; then simulating the pipelines ({workers} processes)" if own else
            f"; simulating each pipeline as soon as it is captured ({workers} processes)")
           if workers > 1 else ""))
    if side > 1:  # one capture step: the passes run in forked processes, all at once
        groups = [[p for pipes in groups for p in pipes]]
    from tqdm import tqdm

    from simulator.core.workers import WorkerGroup, trim_memory

    index = {name: i for i, name in enumerate(sc.pipelines)}
    prec: dict[str, PipelinePrecision] = {}
    results: dict[str, PipelineResult] = {}
    if own:  # the float weights, before the passes change them
        float_acc, float_top5 = float_accuracy_step(sc, wl, cache)
    global _SHARED
    _SHARED = args  # inherited by the forked workers, not pickled
    # forked workers that an interrupt or a dead worker stops cleanly (simulator/core/workers.py,
    # docs/robustness.md); a pipeline's simulation is forked as soon as its pass is done,
    # so it runs while the next pass captures (once every pass is done when *own*)
    try:
        with WorkerGroup(workers) as group:
            def simulate(name: str) -> None:
                group.submit(_simulate_job, (_job(sc, index[name], name, prec[name]), False),
                             f"pipeline '{name}'")

            for pipes in tqdm(groups, desc="capture + policies", unit="pass",
                              disable=not bars, leave=False):
                got = capture_step(sc, wl, specs, scales, dict(pipes), weight_bits, cache,
                                   xbar, workers=side, in_place=own)
                for name, _ in pipes:
                    prec[name] = got[name]
                    if workers > 1 and not own:
                        simulate(name)
            if own:
                if wl.release():  # type: ignore[attr-defined]
                    trim_memory()  # give back its pages before forking
                if workers > 1:
                    for name in prec:  # in the order of the passes
                        simulate(name)
            prec = {name: prec[name] for name in sc.pipelines}
            if not own:  # while the simulations run
                float_acc, float_top5 = float_accuracy_step(sc, wl, cache)
            wall["precision"] = time.perf_counter() - t
            say(f"simulating {len(prec)} pipeline(s) ({sc.simulation.fidelity}, "
                f"{sc.simulation.images} image(s)"
                + (f", {workers} processes)" if workers > 1 else ")"))
            if workers > 1:
                if while_simulating is not None:
                    while_simulating()  # the parent would only wait: e.g. import the plots'
                done = group.collect()
            else:
                done = [_simulate_job((_job(sc, i, name, pp), bars), args)
                        for i, (name, pp) in enumerate(prec.items())]
    finally:
        _SHARED = None
    for name, res, dt in sorted(done, key=lambda d: index[d[0]]):
        results[name] = res
        wall[f"simulate:{name}"] = dt
    return assemble_step(sc, hw, wl, mapping, prec, results, (float_acc, float_top5), wall,
                         est, timing_plan)


# --------------------------------------------------------------------------- the steps


def estimate_step(sc: Scenario, graph: Any, mapping: NetworkMapping, hw: HardwareSpec,
                  allow_large: bool = False, say: Progress | None = None) -> RunEstimate:
    """The run's events, memory and time (:mod:`simulator.runner.estimate`), said through
    *say*; raises :class:`~simulator.runner.estimate.RunTooLarge` when its memory estimate
    exceeds the memory available, unless *allow_large*."""
    est = estimate_run(sc.simulation, len(sc.pipelines), graph, mapping,
                       int(hw.activations.bits))
    if say is not None:
        say(est.describe())
    if not allow_large:
        check_fits(est, sc.source)
    return est


def scales_step(sc: Scenario, wl: Workload, specs: dict[str, LayerSpec],
                cache: ArtifactCache | None = None) -> dict[str, float]:
    """The static activation scale of every grouped layer (through *cache* when given)."""
    fetch, _ = _fetcher(cache, sc, specs, None)

    def compute() -> dict[str, float]:
        from workloads.precision.quantize import calibrate_scales

        _torch_threads()
        return calibrate_scales(wl.traced.module, specs, wl.calib_inputs, sc.quantization)

    return fetch("scales", compute)


if TYPE_CHECKING:  # pragma: no cover
    ExactCrossbar = tuple[CrossbarModel, dict[str, Any]]  # the model, and its cache key


def exact_step(sc: Scenario, wl: Workload, specs: dict[str, LayerSpec], hw: HardwareSpec,
               scales: dict[str, float], cache: ArtifactCache | None = None,
               say: Progress | None = None) -> ExactCrossbar | None:
    """The exact crossbar mode's model (``accuracy.crossbar: exact``) and its cache key, the
    calibrated ADC's range measured on the calibration images (through *cache*); None in
    the default mode."""
    if sc.accuracy.crossbar != "exact":
        return None
    xbar = crossbar_model(hw)
    key = xbar.key()
    if say is not None:
        say(describe_crossbar(xbar))
    if xbar.calibrated:
        fetch, _ = _fetcher(cache, sc, specs, int(hw.weights.bits), key)
        cal = xbar

        def compute() -> dict[str, float]:
            from workloads.precision.passes import calibrate_adc

            _torch_threads()
            return calibrate_adc(wl.traced.module, specs, wl.calib_inputs, scales,
                                 sc.quantization, cal, device=capture_device(sc))

        lsb = fetch("adc_range", compute)
        xbar = xbar.with_lsb(lsb)
    return xbar, key


def capture_step(sc: Scenario, wl: Workload, specs: dict[str, LayerSpec],
                 scales: dict[str, float], pipes: dict[str, Any], weight_bits: int,
                 cache: ArtifactCache | None = None, exact: ExactCrossbar | None = None,
                 workers: int = 1, in_place: bool = False) -> dict[str, PipelinePrecision]:
    """The bit planes of the pipelines *pipes* (name -> policy spec) that share one forward
    pass (:func:`workloads.precision.passes.capture_groups`), through *cache* when given;
    *exact*: the exact crossbar mode's model (:func:`exact_step`). The weights are quantized
    to the chip's *weight_bits*, so the accuracy is the chip's. *pipes* may need several
    passes: with *workers* > 1 those to compute run side by side in forked processes
    (:func:`pass_workers` says when that is worth it).

    *in_place* (a :class:`~simulator.runner.cache.LazyWorkload` *wl*, the default crossbar
    mode, on the CPU): the network becomes *wl*'s own (:meth:`~simulator.runner.cache.
    LazyWorkload.own`) and its weights are quantized in place, once for every later pass
    (:func:`~workloads.precision.quantize.quantize_weights_in_place`, the same values as
    each pass's copy), instead of one copy per pass; the caller then releases *wl*."""
    faults.checkpoint("capture")
    xbar, key = exact if exact is not None else (None, None)
    _, fetch_precision = _fetcher(cache, sc, specs, weight_bits, key)

    def compute(todo: dict[str, Any]) -> dict[str, PipelinePrecision]:
        from workloads.precision.passes import compute_precision
        from workloads.precision.quantize import quantize_weights_in_place

        _torch_threads()
        device = capture_device(sc)
        model, bits = wl.traced.module, weight_bits
        if in_place and xbar is None and device.type == "cpu":
            model = wl.own().traced.module  # type: ignore[attr-defined]
            if quantize_weights_in_place(model, specs, weight_bits):
                bits = None  # the passes use the weights as they are
        return compute_precision(
            model, specs, wl.eval_inputs, scales, sc.quantization, todo,
            labels=wl.eval_labels, keep_images=wl.keep_images, weight_bits=bits,
            crossbar=xbar, device=device, workers=workers)

    return fetch_precision(pipes, compute)


#: most bytes of weight copies that forward passes running side by side may add: each
#: pass holds the network's weights quantized to the chip's bits (float32) next to the
#: shared float model, so VGG-16 (553 MB of weights) runs its passes one after the other,
#: on the network's own weights quantized in place (:func:`run`), and stays under 2 GB
#: (docs/benchmarks.md, "Peak memory")
PARALLEL_PASSES_MAX_BYTES = 256 << 20


def pass_workers(sc: Scenario, graph: Any, specs: dict[str, LayerSpec], passes: int,
                 workers: int) -> int:
    """Processes in which a first run's *passes* forward passes run side by side (1: one
    after the other, in this process, each pipeline's simulation forked as soon as its
    pass is done). Side by side when the run has simulation *workers* > 1 and the machine
    more than one core, on the CPU (``workload.device: cpu``), and when the passes' weight
    copies stay under :data:`PARALLEL_PASSES_MAX_BYTES`: on two idle cores the ResNet-18
    quick start's passes (~1.4 s lossless, ~2.7 s ReDy) take the time of the longer one;
    on cores other work keeps busy they gain nothing (docs/benchmarks.md). The exact
    crossbar mode's passes stay one after the other: each holds the crossbars' stored
    cells and column sums too, which this rule does not size."""
    procs = min(workers, passes, os.cpu_count() or 1)
    if procs <= 1 or sc.workload.device != "cpu" or sc.accuracy.crossbar == "exact":
        return 1
    weights = sum(int(graph.nodes[n].get("weights") or 0) for n in specs if n in graph)
    return procs if 4 * weights * procs <= PARALLEL_PASSES_MAX_BYTES else 1


def float_accuracy_step(sc: Scenario, wl: Workload, cache: ArtifactCache | None = None,
                        ) -> tuple[float | None, float | None]:
    """Top-1 and top-5 accuracy (%) of the unquantized model, or (None, None) without
    labels (through *cache* when given)."""
    if not wl.has_labels:
        return None, None
    fetch, _ = _fetcher(cache, sc, {}, None)
    return fetch("float_accuracy", lambda: _float_accuracy(wl))


def simulate_step(sc: Scenario, index: int, name: str, pp: PipelinePrecision,
                  shared: tuple, bars: bool = False) -> tuple[str, PipelineResult, float]:
    """Simulate pipeline *name* (the *index*-th of the scenario) from its bit planes;
    *shared* is (graph, mapping, hardware, simulation options, timing plan). Returns
    (name, result, seconds)."""
    return _simulate_job((_job(sc, index, name, pp), bars), shared)


def assemble_step(sc: Scenario, hw: HardwareSpec, wl: Workload, mapping: NetworkMapping,
                  prec: dict[str, PipelinePrecision], results: dict[str, PipelineResult],
                  float_acc: tuple[float | None, float | None], wall: dict[str, float],
                  est: RunEstimate | None, timing_plan: Any) -> RunResult:
    """The per-image analysis of the simulated pipelines, and the :class:`RunResult`
    (*wall* gets its ``images`` phase)."""
    from simulator.runner.image_energy import image_analysis

    t = time.perf_counter()
    images = image_analysis(prec, results, wl.traced.graph, mapping, hw,
                            timing_plan.noc.layer_units)
    wall["images"] = time.perf_counter() - t
    return RunResult(sc, hw, wl, mapping, prec, results, float_acc[0], wall, est,
                     float_acc[1], images)


def _float_accuracy(wl: Workload) -> tuple[float, float]:
    """Top-1 and top-5 accuracy (%) of the unquantized model on the measured images."""
    from workloads.precision.metrics import float_logits, top1, topk

    _torch_threads()
    logits = float_logits(wl.traced.module, wl.eval_inputs)
    return top1(logits, wl.eval_labels), topk(logits, wl.eval_labels, 5)


def _fetcher(cache: ArtifactCache | None, sc: Scenario, specs: dict[str, LayerSpec],
             weight_bits: int | None, crossbar: dict[str, Any] | None = None,
             ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``fetch(kind, compute)`` and ``fetch_precision(pipes, compute)``: through the
    artifact cache, or just computed."""
    if cache is None:
        return (lambda _kind, compute: compute()), (lambda pipes, compute: compute(pipes))
    from simulator.runner.cache import CaptureCache

    cc = CaptureCache(cache, sc, specs, weight_bits, crossbar)
    return cc.fetch, cc.fetch_precision


def _job(sc: Scenario, index: int, name: str, pp: PipelinePrecision) -> tuple:
    """(name, policy, bit planes, trace recorder) of one pipeline's simulation."""
    from simulator.engine.trace import TraceRecorder

    planes = {layer: lp.planes for layer, lp in pp.layers.items()}
    trace = None
    if sc.simulation.trace and sc.simulation.fidelity != "analytic":
        trace = TraceRecorder(name, _trace_every(sc, planes), pid_offset=index * 1_000_000)
    return (name, pp.policy.policy, planes, trace)


_SHARED: tuple | None = None


def _simulate_job(job_and_bars: tuple, shared: tuple | None = None) -> tuple:
    """Simulate one pipeline (in a forked worker, *shared* comes from the parent)."""
    (name, policy, planes, trace), bars = job_and_bars
    graph, mapping, hw, sim, prepared = shared if shared is not None else _SHARED
    t = time.perf_counter()
    res = simulate_pipeline(graph, mapping, hw, planes, policy, name, sim.fidelity,
                            sim.images, power_gating=sim.power_gating, trace=trace,
                            progress=bars, load_timing=sim.load_timing,
                            warmup=sim.warmup_images, prepared=prepared)
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
