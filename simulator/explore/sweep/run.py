"""Running a sweep: every point a task on ``dask.distributed``, resumable, one table.

``run_sweep(plan, out_dir)`` submits one task per point that is not finished yet to a
Dask ``LocalCluster`` (``workers`` processes, one thread each) or to an existing
scheduler (``scheduler`` address). A task (:func:`run_point`) builds the point's
scenario and hardware, runs :func:`simulator.runner.flow.run` with the on-disk artifact cache
(:mod:`simulator.runner.cache`: the traced workload, scales and bit planes are computed once and
read by every worker), and writes the point's results folder atomically under
``out_dir/points/<id>/`` with a ``point.json`` (changes, hash, status, wall time, hardware
figures). A failed point writes its error there and the others go on. A point whose
``point.json`` says ``ok`` with the same hash is not rerun. Ctrl-C cancels the pending
tasks and closes the cluster; finished points stay.

Then :func:`write_table` gathers ``sweep.csv`` and ``sweep.parquet`` (one row per point
and pipeline: the axes and every summary figure) and :mod:`simulator.explore.sweep.plots` draws
energy against latency with the Pareto front, and the saving against each axis.

Workers on other machines must see the same files at the same paths (the sweep file,
the scenario and hardware files, the output folder): a shared file system.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.core.config_io import ConfigError
from simulator.core.interrupts import Interrupted
from simulator.explore.sweep.spec import POINT_JSON, POINTS_DIR, SWEEP_JSON, SweepPlan, build_point


def require_dask() -> None:
    """Raise a one-line :class:`ConfigError` when ``dask.distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"redysim sweep runs on Dask, which is not installed ({exc.name} is missing): "
            "pip install 'redysim[dist]'") from None


# --------------------------------------------------------------------------- one point


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Run one sweep point and write its folder; never raises for a point's own failure.

    *task*: ``id``, ``scenario`` (base scenario path), ``scenario_changes``,
    ``hardware_changes``, ``hash``, ``out`` (the point's folder), ``cache`` (artifact
    cache folder or None for the worker's default), ``axes``, ``changes``, ``plots``
    (draw the point's plots and report.html; default no: ``redysim plot`` draws them).
    Returns the content of ``point.json``.
    """
    from simulator.hardware.report import hardware_report
    from simulator.results.write import json_default, write_results
    from simulator.runner.cache import ArtifactCache
    from simulator.runner.flow import run

    out = Path(task["out"])
    info: dict[str, Any] = {k: task[k] for k in ("id", "axes", "changes", "hash")}
    info["host"] = os.uname().nodename if hasattr(os, "uname") else ""
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        sc, hw = build_point(Path(task["scenario"]), task["scenario_changes"],
                             task["hardware_changes"])
        sc.simulation.workers = 1  # the sweep runs points in parallel, not pipelines
        cache = ArtifactCache(task["cache"]) if task.get("cache") else ArtifactCache()
        rr = run(sc, hardware=hw, cache=cache)
        summary = write_results(rr, tmp, plots=bool(task.get("plots")))
        rep = hardware_report(hw)
        info["hardware"] = {
            "name": hw.name, "warnings": hw.warnings(),
            "adc_bits_needed": hw.adc_bits_needed, "adcs_per_ima": hw.ima.adcs,
            "chip_area_mm2": rep["chip"]["area_mm2"], "chip_power_w": rep["chip"]["power_w"],
            "peak_tops": rep["chip"]["peak_tops"], "peak_bound": rep["chip"]["peak_bound"]}
        info["cache"] = {"hits": cache.hits, "misses": cache.misses}
        info["wall_s"] = rr.wall_s
        info["status"] = "ok"
        summary["wall_s"] = rr.wall_s
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default))
    except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
        shutil.rmtree(tmp, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        info["status"] = "failed"
        info["error"] = f"{type(exc).__name__}: {exc}"
        (tmp / "error.txt").write_text(traceback.format_exc())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    info["point_s"] = time.perf_counter() - t0
    (tmp / POINT_JSON).write_text(json.dumps(info, indent=2, default=json_default))
    _replace_dir(tmp, out)
    return info


def _replace_dir(tmp: Path, out: Path) -> None:
    """Put the finished folder *tmp* at *out* (an older *out* is removed after the swap)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def point_status(folder: Path, point_hash: str) -> str | None:
    """``ok`` when *folder* holds finished results of a point with *point_hash*, else the
    recorded status (``failed``) or None."""
    pj = folder / POINT_JSON
    if not pj.is_file():
        return None
    try:
        info = json.loads(pj.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if info.get("hash") != point_hash:
        return None
    if info.get("status") == "ok" and not (folder / "summary.json").is_file():
        return None
    return info.get("status")


# --------------------------------------------------------------------------- the sweep


@dataclass
class SweepReport:
    """What a sweep did: counts by status, files written, wall time."""

    out_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False


def check_out_dir(out: Path, force: bool) -> None:
    """A sweep writes into a new or empty folder, or resumes one it wrote before."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if any(out.iterdir()) and not (out / SWEEP_JSON).is_file():
        raise ConfigError(
            f"{out}: folder is not empty and holds no {SWEEP_JSON}, so it is not a redysim "
            "sweep folder; choose another -o" + ("" if not force else
                                                  " (--force only reruns a sweep folder)"))


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A ``distributed.Client``: to *scheduler*, or to a new LocalCluster of *workers*
    processes with one thread each (closed on exit, also on Ctrl-C)."""
    require_dask()
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    n = workers or max(1, os.cpu_count() or 1)
    with _workers_ignore_sigint():
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        yield client


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Start worker processes with SIGINT ignored (inherited across exec): Ctrl-C in a
    terminal reaches the whole process group, and the client, not each worker, should
    stop the sweep (it cancels the tasks and closes the cluster)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def run_sweep(plan: SweepPlan, out_dir: str | Path, *, scheduler: str | None = None,
              workers: int | None = None, force: bool = False, cache_dir: str | None = None,
              point_plots: bool = False, progress: bool = True,
              on_point: Callable[[dict[str, Any]], None] | None = None) -> SweepReport:
    """Run every unfinished point of *plan* on Dask, then write the table and the plots.

    *force* reruns finished points too. *cache_dir* is the artifact cache folder the
    workers use (default: their own ``$REDYSIM_CACHE`` or platform cache folder).
    *point_plots* draws every point's plots and report.html (seconds per point).
    *on_point* is called with each finished point's ``point.json`` content.
    """
    out = Path(out_dir)
    check_out_dir(out, force)
    require_dask()
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    (out / POINTS_DIR).mkdir(exist_ok=True)
    for stale in (out / POINTS_DIR).glob(".*"):  # a point killed while it was writing
        shutil.rmtree(stale, ignore_errors=True)
    _write_sweep_json(plan, out)
    report = SweepReport(out)
    todo = []
    for p in plan.points:
        folder = out / POINTS_DIR / p.id
        if not force and point_status(folder, p.hash) == "ok":
            report.skipped.append(p.id)
            continue
        todo.append({"id": p.id, "scenario": str(plan.scenario_path.resolve()),
                     "scenario_changes": p.scenario_changes,
                     "hardware_changes": p.hardware_changes, "hash": p.hash,
                     "out": str(folder.resolve()), "cache": cache_dir, "axes": p.axes,
                     "changes": p.changes, "plots": point_plots})
    stop: BaseException | None = None
    try:
        if todo:
            _run_tasks(todo, scheduler, workers, progress, len(plan.points), report, on_point)
    except (KeyboardInterrupt, Interrupted) as exc:  # Ctrl-C / kill: keep what finished
        report.interrupted = True
        stop = exc
    from simulator.explore.sweep.table import write_table

    report.files = write_table(plan, out)  # also after Ctrl-C: the finished points
    report.wall_s = time.perf_counter() - t0
    if stop is not None:
        raise stop
    return report


def _run_tasks(todo: list[dict[str, Any]], scheduler: str | None, workers: int | None,
               progress: bool, total: int, report: SweepReport,
               on_point: Callable[[dict[str, Any]], None] | None) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    with dask_client(scheduler, workers) as client:
        futures = {client.submit(run_point, t, key=f"redysim-point-{t['id']}-{t['hash'][:12]}",
                                 pure=False): t for t in todo}
        bar = tqdm(total=total, initial=total - len(todo), unit="point", desc="sweep",
                   disable=not progress)
        try:
            for fut in as_completed(list(futures)):
                try:
                    info = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. the worker process died
                    info = _record_lost_point(futures[fut], exc)
                if info.get("status") == "ok":
                    report.ran.append(info["id"])
                else:
                    report.failed[info["id"]] = info.get("error", "?")
                bar.update(1)
                if on_point is not None:
                    on_point(info)
        except BaseException:
            client.cancel(list(futures))
            raise
        finally:
            bar.close()


def _record_lost_point(task: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """Write ``point.json`` (failed) for a point whose task died without writing one."""
    out = Path(task["out"])
    info = {k: task[k] for k in ("id", "axes", "changes", "hash")}
    info.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    (tmp / POINT_JSON).write_text(json.dumps(info, indent=2, default=str))
    _replace_dir(tmp, out)
    return info


def _write_sweep_json(plan: SweepPlan, out: Path) -> None:
    data = {"name": plan.spec.name, "sweep_file": str(plan.source.resolve()),
            "scenario": str(plan.scenario_path.resolve()),
            "spec": plan.spec.model_dump(mode="json"),
            "points": [{"id": p.id, "axes": p.axes, "changes": p.changes, "hash": p.hash}
                       for p in plan.points]}
    fd, tmp = tempfile.mkstemp(prefix=f".{SWEEP_JSON}.", dir=out)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, default=str)
    os.replace(tmp, out / SWEEP_JSON)
