"""Running a sweep: its points as a Dask graph, resumable, one table.

``run_sweep(plan, out_dir)`` validates nothing more (:func:`~simulator.explore.sweep.spec.
plan_sweep` did), leaves out the points whose ``point.json`` says ``ok`` with the same
hash, and submits the steps of the others as tasks (:mod:`simulator.explore.sweep.graph`:
a step shared by several points is one task) to a local cluster of this machine or to a
scheduler (:mod:`simulator.explore.sweep.cluster`). Each point's last task writes its
results folder atomically under ``out_dir/points/<id>/`` with a ``point.json`` (changes,
hash, status, the tasks it used and their times, hardware figures). A point whose tasks
fail gets a ``point.json`` with the error (and ``error.txt``) and the others go on.

While it runs it says, one line per finished point, how many points are done, running
and failed, with the elapsed time. Ctrl-C, SIGTERM or SIGHUP (or the *stop* event of a
study) stops the workers at once (the local cluster's processes are killed, a
scheduler's tasks cancelled); the finished points stay, and the table is written for
them.

Then :func:`~simulator.explore.sweep.table.write_table` gathers ``sweep.csv`` and
``sweep.parquet`` (one row per point and pipeline) and draws the plots.

Workers on other machines must see the same files at the same paths (the sweep file,
the scenario and hardware files, the output folder): a shared file system.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.core.config_io import ConfigError
from simulator.core.fsmode import mkdtemp, mkstemp
from simulator.core.interrupts import Interrupted
from simulator.explore.sweep.cluster import dask_client, require_dask
from simulator.explore.sweep.spec import POINT_JSON, POINTS_DIR, SWEEP_JSON, SweepPlan, build_point
from simulator.explore.sweep.tasks import replace_dir

__all__ = ["SweepReport", "SweepStopped", "check_out_dir", "dask_client", "point_status",
           "record_failed_point", "require_dask", "run_sweep"]

Say = Callable[[str], None]


class SweepStopped(Exception):
    """The sweep was stopped from outside (a study's *stop* event, a cancelled task)."""


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
    """What a sweep did: counts by status, tasks, files written, wall time."""

    out_dir: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False
    tasks: dict[str, int] = field(default_factory=dict)
    """Distinct tasks submitted, per kind (trace, map, ..., point)."""
    computed: dict[str, int] = field(default_factory=dict)
    """Tasks of the finished points that computed their artifact (rather than reading it
    from the artifact cache), per kind."""


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


def _stderr_say(t0: float) -> Say:
    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)
    return say


def run_sweep(plan: SweepPlan, out_dir: str | Path, *, scheduler: str | None = None,
              workers: int | None = None, force: bool = False, cache_dir: str | None = None,
              point_plots: bool = False, progress: bool = True,
              on_point: Callable[[dict[str, Any]], None] | None = None,
              say: Say | None = None, stop: threading.Event | None = None,
              dashboard: str | None = None) -> SweepReport:
    """Run every unfinished point of *plan* on Dask, then write the table and the plots.

    *force* reruns finished points too. *cache_dir* is the artifact cache folder the
    workers use (default: their own ``$REDYSIM_CACHE`` or platform cache folder).
    *point_plots* draws every point's plots and report.html (seconds per point).
    *on_point* is called with each finished point's ``point.json`` content. Progress
    lines go to *say* (default: stderr with the elapsed time, when *progress*). Setting
    *stop* (from another thread) stops the sweep as an interrupt does, raising
    :class:`SweepStopped`. *dashboard* (e.g. ``:8787``) opens the local cluster's Dask
    dashboard there (by default it is not opened).

    The cluster is started (or the scheduler reached) before the folder is created: a
    scheduler that cannot be reached leaves nothing behind.
    """
    out = Path(out_dir)
    check_out_dir(out, force)
    require_dask()
    t0 = time.perf_counter()
    if say is None:
        say = _stderr_say(t0) if progress else (lambda _m: None)
    report = SweepReport(out)
    jobs = _jobs(plan, out, force, report)
    stopped: BaseException | None = None
    local = scheduler is None
    try:
        if not jobs:
            _prepare_folder(plan, out)
        else:
            with dask_client(scheduler, workers, dashboard) as client:
                _import_table_writer()
                _prepare_folder(plan, out)
                _run_jobs(client, jobs, cache_dir, point_plots, report, say, on_point, stop,
                          len(plan.points), scheduler or f"a local cluster of "
                          f"{len(client.redysim_cluster.pids) - 1} workers")
    except (KeyboardInterrupt, Interrupted, SweepStopped) as exc:  # keep what finished
        report.interrupted = True
        stopped = exc
    if stopped is not None and not out.is_dir():
        raise stopped
    if stopped is not None and local:
        _remove_stale(out)  # our workers are dead: their temporary folders are garbage
    from simulator.explore.sweep.table import write_table

    # also after an interrupt: the table of the finished points (the plots wait for the
    # next run, which redraws them)
    report.files = write_table(plan, out, plots=stopped is None)
    report.wall_s = time.perf_counter() - t0
    if stopped is not None:
        raise stopped
    return report


def _import_table_writer() -> None:
    """Import what writes the table now, while the cluster starts, so that an interrupt
    writes the finished points' table within the 2 s it has: pyarrow, and pandas, which
    pyarrow imports on its first array when it is installed (1.3 s on a loaded machine)."""
    import simulator.explore.sweep.table  # noqa: F401

    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401

        pa.array([0])
    except ImportError:  # pragma: no cover - pyarrow comes with the dist extra
        pass


def _jobs(plan: SweepPlan, out: Path, force: bool, report: SweepReport) -> list[Any]:
    """The points to run (the others go to ``report.skipped``), with their validated
    scenario and hardware."""
    from simulator.explore.sweep.graph import PointJob

    jobs = []
    for p in plan.points:
        folder = out / POINTS_DIR / p.id
        if not force and point_status(folder, p.hash) == "ok":
            report.skipped.append(p.id)
            continue
        sc, hw = build_point(plan.scenario_path.resolve(), p.scenario_changes,
                             p.hardware_changes)
        sc.simulation.workers = 1  # the sweep's tasks are the parallelism, not processes
        jobs.append(PointJob(p.id, sc, hw, p.hash, (folder).resolve(), p.axes, p.changes))
    return jobs


def _prepare_folder(plan: SweepPlan, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / POINTS_DIR).mkdir(exist_ok=True)
    _remove_stale(out)
    _write_sweep_json(plan, out)


def _remove_stale(out: Path) -> None:
    """Temporary folders of points killed while they were writing."""
    points = out / POINTS_DIR
    if points.is_dir():
        for stale in points.glob(".*"):
            shutil.rmtree(stale, ignore_errors=True)


def _run_jobs(client: Any, jobs: list[Any], cache_dir: str | None, plots: bool,
              report: SweepReport, say: Say, on_point: Callable[[dict[str, Any]], None] | None,
              stop: threading.Event | None, total: int, where: str) -> None:
    """Submit the graph of *jobs* and follow it until every point is done."""
    from simulator.explore.sweep.graph import KINDS, key_kind, submit_points

    futures = submit_points(client, jobs, cache_dir, plots)
    keys = set().union(*(j.keys for j in jobs))
    counts = {k: sum(1 for key in keys if key_kind(key) == k) for k in KINDS}
    report.tasks = {k: n for k, n in counts.items() if n}
    say(f"{len(jobs)} point(s) to run ({len(report.skipped)} already done) on {where}: "
        + ", ".join(f"{n} {k}" for k, n in report.tasks.items()) + " task(s)")
    own = {}  # key of a point's own tasks -> point id (for the running count)
    for j in jobs:
        for key in j.keys:
            if key_kind(key) in ("simulate", "point"):
                own.setdefault(key, set()).add(j.id)
    monitor = _Monitor(client, own, total, len(report.skipped), say)
    pending = dict(futures)
    seen_tasks: dict[str, dict[str, Any]] = {}
    try:
        while pending:
            if stop is not None and stop.is_set():
                raise SweepStopped("stopped")
            finished = [f for f in pending if f.done()]
            for fut in finished:
                job = pending.pop(fut)
                info = _outcome(fut, job, stop)
                if info.get("status") == "ok":
                    report.ran.append(job.id)
                    for t in info.get("tasks", []):
                        seen_tasks[t["key"]] = t
                else:
                    report.failed[job.id] = info.get("error", "?")
                monitor.point_done(job.id, info)
                if on_point is not None:
                    on_point(info)
            if not finished:
                cluster = getattr(client, "redysim_cluster", None)
                if cluster is not None:
                    cluster.check()
                monitor.heartbeat()
                time.sleep(0.05)
    except BaseException:
        if getattr(client, "redysim_cluster", None) is None and pending:
            # a scheduler's workers: free them (a local cluster is killed right after)
            try:
                client.cancel(list(pending), force=True)
            except Exception:  # noqa: BLE001 - the scheduler may be gone already
                pass
        raise
    for t in seen_tasks.values():
        if t.get("computed"):
            report.computed[t["kind"]] = report.computed.get(t["kind"], 0) + 1


class _Monitor:
    """Progress lines: one per finished point, and one every 15 s while none finishes."""

    EVERY_S = 15.0
    POLL_S = 2.0

    def __init__(self, client: Any, own: dict[str, set[str]], total: int, done: int,
                 say: Say) -> None:
        self.client, self.own, self.total, self.say = client, own, total, say
        self.done, self.failed = done, 0
        self.finished: set[str] = set()
        self.running: set[str] = set()
        self.kinds: dict[str, int] = {}
        self.last_line = time.monotonic()
        self.last_poll = 0.0

    def _poll(self) -> None:
        now = time.monotonic()
        if now - self.last_poll < self.POLL_S:
            return
        self.last_poll = now
        from simulator.explore.sweep.graph import key_kind

        try:
            processing = self.client.processing()
        except Exception:  # noqa: BLE001 - progress is best effort
            return
        keys = [k for ks in processing.values() for k in ks]
        self.running = {p for k in keys for p in self.own.get(k, ())} - self.finished
        self.kinds = {}
        for k in keys:
            self.kinds[key_kind(k)] = self.kinds.get(key_kind(k), 0) + 1

    def _line(self, tail: str = "") -> None:
        self._poll()
        now_tasks = ", ".join(f"{n} {k}" for k, n in self.kinds.items())
        self.say(f"{self.done}/{self.total} points done, {len(self.running)} running, "
                 f"{self.failed} failed" + (f" (tasks running: {now_tasks})" if now_tasks
                                            else "") + tail)
        self.last_line = time.monotonic()

    def point_done(self, pid: str, info: dict[str, Any]) -> None:
        """A point finished (ok or failed)."""
        self.finished.add(pid)
        self.running.discard(pid)
        if info.get("status") == "ok":
            self.done += 1
            self._line(f"; {pid}")
        else:
            self.failed += 1
            self._line(f"; {pid} FAILED: {info.get('error', '?')}")

    def heartbeat(self) -> None:
        """A line when none was said for a while."""
        if time.monotonic() - self.last_line >= self.EVERY_S:
            self.last_poll = 0.0
            self._line()


def _outcome(fut: Any, job: Any, stop: threading.Event | None) -> dict[str, Any]:
    """``point.json`` of a finished point future (written by the point task, or here for
    a point whose tasks failed). A future cancelled, or failed once the sweep was asked to
    stop (its cluster going away), stops the sweep rather than failing the point."""
    if fut.status == "finished":
        return fut.result()
    if fut.status != "error" or (stop is not None and stop.is_set()):
        raise SweepStopped(f"the tasks of point {job.id} were {fut.status}")
    exc = fut.exception()
    tb = fut.traceback()
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return record_failed_point(job.task(False), exc, text)


def record_failed_point(task: dict[str, Any], exc: BaseException,
                        tb_text: str = "") -> dict[str, Any]:
    """Write ``point.json`` (failed) and ``error.txt`` for a point whose tasks failed."""
    out = Path(task["out"])
    info = {k: task[k] for k in ("id", "axes", "changes", "hash")}
    info.update(status="failed", error=_error_line(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    (tmp / POINT_JSON).write_text(json.dumps(info, indent=2, default=str))
    if tb_text:
        (tmp / "error.txt").write_text(tb_text)
    replace_dir(tmp, out)
    return info


def _error_line(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return (f"{name}: its task's worker process died each time it ran it (killed, or "
                f"out of memory) ({exc})")
    return f"{name}: {exc}"


def _write_sweep_json(plan: SweepPlan, out: Path) -> None:
    data = {"name": plan.spec.name, "sweep_file": str(plan.source.resolve()),
            "scenario": str(plan.scenario_path.resolve()),
            "spec": plan.spec.model_dump(mode="json"),
            "points": [{"id": p.id, "axes": p.axes, "changes": p.changes, "hash": p.hash}
                       for p in plan.points]}
    fd, tmp = mkstemp(prefix=f".{SWEEP_JSON}.", dir=out)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=str)
        os.replace(tmp, out / SWEEP_JSON)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
