"""The tasks of a sweep's Dask graph: the steps of a run (:mod:`simulator.runner.flow`), one
task each, run on the workers.

=========  ===============================================  ==============================
task       computes                                         one per
=========  ===============================================  ==============================
trace      the traced workload (network, inputs)            workload
map        the mapping on a chip (a copy of the graph)      workload × mapping-relevant
                                                            hardware × mapping options
scales     the static activation scales                     workload × quantization
capture    one forward pass's bit planes, per pipeline      mapping × scales × policies
float      the unquantized model's accuracy                 workload (with labels)
plan       the work plan, NoC routes and packets            mapping × hardware
simulate   one pipeline's simulation                        point × pipeline
point      the per-image analysis, the point's folder      point
=========  ===============================================  ==============================

Every task returns a :class:`Done`: its value, its kind, the seconds it took, and
whether the artifact was computed or read from the artifact cache
(:mod:`simulator.runner.cache`), which the trace, scales, capture and float tasks go
through, so a rerun or another sweep reads them back. The point task writes the point's
folder (:func:`write_point`) and returns the content of its ``point.json``.

Torch only where a network is built or a pass runs, as in a ``redysim run`` rerun: the
trace task's value (:class:`Traced`) holds the workload's torch-free part (the dataflow
graph, the note, the counts: the artifact cache's ``workload_graph``), and the torch tasks
read the fx module and the inputs (the ``workload`` artifact) only when an artifact of
theirs is missing (:func:`task_workload`). So a sweep whose artifacts are all cached (a
rerun, a hardware-only point of a known network) imports torch in no worker, nor in the
client.

Inside a worker process: one thread for BLAS and OpenMP (:func:`worker_setup`), and for
torch (intra- and inter-op) as soon as a task needs it, before it builds or reads a
network (:func:`torch_setup`); tasks that run torch take a process-wide lock, so a worker
started with several threads still runs one forward pass at a time. The network lives
only in the process's artifact cache, never in a task's value: Dask never pickles it for
another worker while a pass patches its layers. No task starts processes of its own: the
parallelism is the cluster's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.core import faults
from simulator.core.fsmode import mkdtemp
from simulator.explore.sweep.spec import POINT_JSON

_SETUP_DONE = False
_TORCH_DONE = False
_SETUP_LOCK = threading.Lock()
_TORCH_LOCK = threading.Lock()


@dataclass
class Done:
    """What a task returns: its *value* and how it was obtained."""

    value: Any
    kind: str
    seconds: float
    computed: bool | None = None
    """True: computed by this task; False: read from the artifact cache; None: not cached."""
    worker: str = ""
    start: float = 0.0
    """When the task started (``time.time()`` of its worker)."""


def _one_thread_pools() -> None:
    """One thread in every BLAS and OpenMP pool loaded so far (``threadpoolctl``)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def worker_setup() -> None:
    """Once per worker process: one thread for the BLAS and OpenMP pools (``threadpoolctl``),
    whatever the process was started with. Imports no torch (:func:`torch_setup` does,
    when a task first needs it)."""
    global _SETUP_DONE
    with _SETUP_LOCK:
        if _SETUP_DONE:
            return
        _one_thread_pools()
        _SETUP_DONE = True


def torch_setup() -> None:
    """Once per process, before its first network is built or read: import torch, one
    thread for torch (intra- and inter-op) and for the pools torch brought (its OpenMP)."""
    global _TORCH_DONE
    if _TORCH_DONE:
        return
    with _SETUP_LOCK:
        if _TORCH_DONE:
            return
        import torch

        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or parallel work has started: leave it
            pass
        _one_thread_pools()
        _TORCH_DONE = True


def thread_counts() -> dict[str, int]:
    """Threads torch (when imported) and the native thread pools use in this process (for
    tests); ``torch_imported``: 1 when torch is in ``sys.modules``, else 0."""
    out = {"torch_imported": int("torch" in sys.modules)}
    if out["torch_imported"]:
        import torch

        out.update(torch=torch.get_num_threads(),
                   torch_interop=torch.get_num_interop_threads())
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            out[f"{pool['user_api']}:{pool['internal_api']}"] = pool["num_threads"]
    except ImportError:  # pragma: no cover
        pass
    return out


def _cache(root: str | None) -> Any:
    from simulator.runner.cache import ArtifactCache

    return ArtifactCache(root) if root else ArtifactCache()


def _done(kind: str, t0: float, value: Any, cache: Any = None, *kinds: str) -> Done:
    computed = None
    if cache is not None:
        computed = any(cache.misses.get(k, 0) for k in (kinds or (kind,)))
    seconds = time.perf_counter() - t0
    return Done(value, kind, seconds, computed, _worker_name(), time.time() - seconds)


def _current_key() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().get_current_task())
    except (ImportError, ValueError):
        return ""


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


@dataclass
class Traced:
    """The trace task's value: the workload's artifact-cache key, and its light part.

    *light*: the workload without its fx module and inputs (a
    :class:`simulator.runner.cache.LazyWorkload` whose module and inputs are not at hand:
    the graph, note, info and counts), which is what mapping, simulating and writing read;
    it pickles without torch. The torch tasks read the rest from the artifact cache when
    they need it (:func:`task_workload`)."""

    token: str
    light: Any


def _no_network() -> Any:
    raise RuntimeError("the trace task's value holds no network: the torch tasks read it "
                       "with task_workload()")


def _build(sc: Any) -> Any:
    """Build and trace the scenario's workload, torch set up first."""
    from simulator.runner.flow import load_workload

    torch_setup()
    return load_workload(sc)


def task_workload(trace: Done, sc: Any, cache: Any) -> Any:
    """The traced workload for a torch task (call with the torch lock held): the trace's
    light part, whose fx module and inputs are read from the artifact cache *cache* (or
    built, where this process's cache lacks them: a cluster whose hosts keep caches of
    their own) on first use, torch set up first. A task whose artifacts are all cached
    never uses them, so never imports torch. The module is this process's, shared by its
    torch tasks (one at a time) and never part of a task's value."""
    t: Traced = trace.value
    got: list[Any] = []

    def full() -> Any:
        if not got:
            torch_setup()
            got.append(cache.get_or_compute("workload", t.token, lambda: _build(sc)))
        return got[0]

    light = t.light
    return dataclasses.replace(light, full=full,
                               traced=dataclasses.replace(light.traced, full=full))


def _with_graph(wl: Any, mapped: Done) -> Any:
    """*wl* with the graph the mapping annotated."""
    return dataclasses.replace(wl, traced=dataclasses.replace(wl.traced,
                                                              graph=mapped.value.graph))


# --------------------------------------------------------------------------- the tasks


def trace_task(sc: Any, cache_root: str | None) -> Done:
    """The scenario's traced workload (through the artifact cache): its light part, read
    from the ``workload_graph`` artifact; built and traced (torch) only when missing."""
    from simulator.runner.cache import cached_workload, workload_key
    from simulator.runner.estimate import check_workload_fits

    worker_setup()
    t0 = time.perf_counter()
    cache = _cache(cache_root)
    check_workload_fits(sc.workload, sc.source)
    with _TORCH_LOCK:
        wl = cached_workload(cache, sc, _build, lazy=True)
    light = dataclasses.replace(wl, full=_no_network,
                                traced=dataclasses.replace(wl.traced, full=_no_network))
    return _done("trace", t0, Traced(workload_key(sc), light), cache, "workload")


def map_task(trace: Done, hw: Any, sc: Any) -> Done:
    """The mapping of the traced network on *hw* (its ``graph``: an annotated copy)."""
    from simulator.runner.flow import map_step

    t0 = time.perf_counter()
    _, mapping = map_step(trace.value.light, hw, sc)
    return _done("map", t0, mapping)


def scales_task(trace: Done, sc: Any, cache_root: str | None) -> Done:
    """The static activation scales of the grouped layers (no mapping needed: the same
    for every chip)."""
    from simulator.runner.flow import scale_specs, scales_step

    worker_setup()
    t0 = time.perf_counter()
    cache = _cache(cache_root)
    with _TORCH_LOCK:
        wl = task_workload(trace, sc, cache)
        scales = scales_step(sc, wl, scale_specs(wl.traced), cache)
    return _done("scales", t0, scales, cache)


def capture_task(trace: Done, mapped: Done, scales: Done, sc: Any, names: list[str],
                 hw: Any, cache_root: str | None) -> Done:
    """The bit planes of the pipelines *names* of *sc* on the chip *hw* (one forward pass;
    in the exact crossbar mode through *hw*'s ADC)."""
    from simulator.runner.flow import capture_step, exact_step, layer_specs

    worker_setup()
    t0 = time.perf_counter()
    cache = _cache(cache_root)
    pipes = {n: sc.pipelines[n] for n in names}
    with _TORCH_LOCK:
        wl = _with_graph(task_workload(trace, sc, cache), mapped)
        specs = layer_specs(wl.traced, mapped.value)
        exact = exact_step(sc, wl, specs, hw, scales.value, cache)
        got = capture_step(sc, wl, specs, scales.value, pipes, int(hw.weights.bits), cache,
                           exact)
    return _done("capture", t0, got, cache, "precision")


def float_task(trace: Done, sc: Any, cache_root: str | None) -> Done:
    """Top-1 and top-5 accuracy of the unquantized model (None, None without labels)."""
    from simulator.runner.flow import float_accuracy_step

    worker_setup()
    t0 = time.perf_counter()
    cache = _cache(cache_root)
    with _TORCH_LOCK:
        acc = float_accuracy_step(sc, task_workload(trace, sc, cache), cache)
    return _done("float", t0, acc, cache, "float_accuracy")


def plan_task(mapped: Done, hw: Any) -> Done:
    """The work plan, NoC routes and packets of the mapped network on *hw*."""
    from simulator.runner.simulate import prepare_timing

    t0 = time.perf_counter()
    mapping = dataclasses.replace(mapped.value, hw=hw)
    return _done("plan", t0, prepare_timing(mapping.graph, mapping, hw))


def simulate_task(mapped: Done, plan: Done, capture: Done, sc: Any, hw: Any, index: int,
                  name: str) -> Done:
    """Pipeline *name* of the point (*sc*, *hw*) simulated; the run-size estimate is
    checked first, as a lone run does."""
    from simulator.runner.flow import estimate_step, simulate_step

    worker_setup()
    faults.checkpoint(f"sweep-simulate-{name}")
    t0 = time.perf_counter()
    mapping = dataclasses.replace(mapped.value, hw=hw)
    estimate_step(sc, mapping.graph, mapping, hw)
    shared = (mapping.graph, mapping, hw, sc.simulation, plan.value)
    _, result, _ = simulate_step(sc, index, name, capture.value[name], shared)
    return _done("simulate", t0, result)


def point_task(deps: dict[str, Done], roles: dict[str, Any], sc: Any, hw: Any,
               task: dict[str, Any]) -> dict[str, Any]:
    """Assemble the point's run, write its folder (:func:`write_point`) and return the
    content of its ``point.json``.

    *deps*: task key -> :class:`Done` of every task the point needs; *roles*: the key of
    its ``trace``, ``map``, ``plan`` and ``float`` tasks, and per pipeline the key of its
    ``capture`` and ``simulate`` tasks. *task*: ``id``, ``axes``, ``changes``, ``hash``,
    ``out`` (the point's folder), ``plots`` (draw the point's plots and report.html).
    """
    from simulator.runner.flow import assemble_step, estimate_step

    t0 = time.perf_counter()
    trace, mapped, plan, floats = (deps[roles[k]] for k in ("trace", "map", "plan", "float"))
    mapping = dataclasses.replace(mapped.value, hw=hw)
    wl = _with_graph(trace.value.light, mapped)
    prec = {n: deps[roles["capture"][n]].value[n] for n in sc.pipelines}
    results = {n: deps[roles["simulate"][n]].value for n in sc.pipelines}
    wall = {"trace": trace.seconds, "map": mapped.seconds, "plan": plan.seconds,
            "precision": sum(deps[k].seconds for k in set(roles["capture"].values()))
            + floats.seconds}
    for n in sc.pipelines:
        wall[f"simulate:{n}"] = deps[roles["simulate"][n]].seconds
    est = estimate_step(sc, mapping.graph, mapping, hw, allow_large=True)
    rr = assemble_step(sc, hw, wl, mapping, prec, results, floats.value, wall, est,
                       plan.value)
    return write_point(rr, task, deps, t0)


def write_point(rr: Any, task: dict[str, Any], deps: dict[str, Done],
                t0: float) -> dict[str, Any]:
    """Write the point's results folder (summary.json, layers.csv, timeline.csv,
    tiles.csv, point.json; the plots and report.html when ``task["plots"]``) into a
    temporary folder beside it, then swap it into place: a point killed while it writes
    leaves no half-written folder. ``point.json`` lists every task the point used (*deps*)
    with its seconds, worker and whether it computed its artifact or read it."""
    from simulator.hardware.report import hardware_report
    from simulator.results.write import json_default, write_results

    out = Path(task["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        t_write = time.perf_counter()
        summary = write_results(rr, tmp, plots=False)
        if task.get("plots"):
            from simulator.results.html import write_report
            from simulator.results.plots import draw_all

            draw_all(tmp, formats=("png",), processes=1)  # no process pool inside a task
            write_report(tmp)
        rr.wall_s["write"] = time.perf_counter() - t_write
        hw = rr.hardware
        rep = hardware_report(hw)
        tasks = [{"kind": d.kind, "key": key, "seconds": d.seconds, "computed": d.computed,
                  "worker": d.worker, "start": d.start} for key, d in deps.items()]
        own = time.perf_counter() - t0
        tasks.append({"kind": "point", "key": _current_key(), "seconds": own,
                      "computed": None, "worker": _worker_name(), "start": time.time() - own})
        info: dict[str, Any] = {k: task[k] for k in ("id", "axes", "changes", "hash")}
        info.update(
            host=os.uname().nodename if hasattr(os, "uname") else "",
            status="ok",
            hardware={"name": hw.name, "warnings": hw.warnings(),
                      "adc_bits_needed": hw.adc_bits_needed, "adcs_per_ima": hw.ima.adcs,
                      "chip_area_mm2": rep["chip"]["area_mm2"],
                      "chip_power_w": rep["chip"]["power_w"],
                      "peak_tops": rep["chip"]["peak_tops"],
                      "peak_bound": rep["chip"]["peak_bound"]},
            wall_s=rr.wall_s, tasks=tasks)
        # the work this point needs, shared tasks in full, and its own assembly and write
        info["point_s"] = sum(t["seconds"] for t in tasks)
        summary["wall_s"] = rr.wall_s
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default))
        (tmp / POINT_JSON).write_text(json.dumps(info, indent=2, default=json_default))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def replace_dir(tmp: Path, out: Path) -> None:
    """Put the finished folder *tmp* at *out* (an older *out* is removed after the swap)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
