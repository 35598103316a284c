"""``redysim study``: run a study's sweeps and checks, gather the figures, write its page.

:func:`run_study` runs every sweep of the study (:mod:`simulator.explore.sweep.run`: Dask,
resumable, artifact cache) into ``results/<sweep name>/``, then :func:`collect` reads each point's
``summary.json`` and ``point.json`` into plain rows, adds the ISAAC checks
(:mod:`simulator.hardware.report` against the published Table I / IV, and the engine's
full-activity run, :mod:`simulator.explore.study.calib`), the peers check (other tools'
figures against our pipeline, :mod:`simulator.explore.study.peers`) and the environment
(package versions, load average, wall times), writes ``study.json`` beside the sweeps and
renders the page (:mod:`simulator.explore.study.page`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.core.config_io import ConfigError
from simulator.explore.study.rows import point_row
from simulator.explore.study.spec import Study
from simulator.runner.estimate import loadavg

Say = Callable[[str], None]

def environment(root: Path, outputs: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Package versions, machine, and the git commit of *root* (dirty if anything but
    *outputs*, the files the study itself writes, differs from it)."""
    from importlib import metadata

    versions = {}
    for pkg in ("redysim", "torch", "torchvision", "simpy", "numpy", "networkx", "pydantic",
                "dask", "distributed", "scikit-learn", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        exclude = [f":(exclude){p}" for p in outputs]
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", ".",
                                *exclude], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "?", ""
    return {"python": platform.python_version(), "packages": versions,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "commit": commit + (" (with uncommitted changes)" if dirty else "")}


# --------------------------------------------------------------------------- running


def plan_study(study: Study) -> list[tuple[str, str, Any]]:
    """(role, sweep file, validated SweepPlan) of every sweep of *study*; nothing runs.
    Errors name the study file and the sweep."""
    from simulator.explore.sweep.spec import plan_sweep

    spec = study.spec
    sweeps: list[tuple[str, str]] = [("networks", s) for s in spec.networks]
    sweeps += [("sensitivity", s.sweep) for s in spec.sensitivity]
    sweeps += [("fidelity", s) for s in spec.fidelity]
    plans = []
    for role, rel in sweeps:
        try:
            plans.append((role, rel, plan_sweep(study.path(rel))))
        except ConfigError as exc:
            raise ConfigError(f"{study.source}: {role} sweep {rel}: {exc}") from None
    return plans


def run_study(study: Study, *, force: bool = False, workers: int | None = None,
              say: Say | None = None, progress: bool = False,
              render_only: bool = False) -> dict[str, Any]:
    """Run every sweep of *study*, gather the figures, write study.json and the page.

    *force* reruns finished sweep points; *workers* overrides the study's worker count.
    *render_only* runs nothing: it gathers the finished points again and keeps the run
    record (wall times, loads, versions) of the last ``study.json`` (a page redrawn after
    a change of the page's code). Returns the gathered data (the content of study.json).
    """
    say = say or (lambda _m: None)
    spec = study.spec
    plans = plan_study(study)
    record_keys = ("started", "load_start", "env", "timings", "sweeps_wall_s", "load_end")
    if render_only:
        old = study.results / "study.json"
        if not old.is_file():
            raise ConfigError(f"{old}: not found; run the study first (without --render)")
        prev = json.loads(old.read_text())
        record = {k: prev.get(k) for k in record_keys}
        record["rendered_again"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    else:
        study.results.mkdir(parents=True, exist_ok=True)
        t_start = time.perf_counter()
        record = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_start": loadavg(),
                  "env": environment(study.source.parent, (study.doc, study.figures))}
        record["timings"] = _run_sweeps(study, plans, force, workers or spec.workers, say)
        record["sweeps_wall_s"] = time.perf_counter() - t_start
    data = collect(study, plans)
    if spec.isaac is not None:
        t = time.perf_counter()
        data["isaac"] = isaac_check(study)
        data["isaac"]["wall_s"] = time.perf_counter() - t
    if spec.peers is not None:
        from simulator.explore.study.peers import load_peers, peers_check

        t = time.perf_counter()
        say("peers check: our pipeline on the peers' network")
        data["peers"] = peers_check(load_peers(study.path(spec.peers)))
        data["peers"]["wall_s"] = time.perf_counter() - t
    if not render_only:
        record["load_end"] = loadavg()
    data.update(record)
    from simulator.explore.study.page import write_page

    write_page(data, study)  # adds data["headline"]
    (study.results / "study.json").write_text(json.dumps(data, indent=1, default=str))
    say(f"wrote {study.doc} and {study.figures}/")
    return data


def _run_sweeps(study: Study, plans: list[tuple[str, str, Any]], force: bool, workers: int,
                say: Say) -> list[dict[str, Any]]:
    """Run the sweeps concurrently on one local Dask cluster (each sweep a client of its
    scheduler), so that the workers stay busy across sweeps of a few points each."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    from simulator.explore.sweep.run import dask_client, run_sweep

    def one(role: str, rel: str, plan: Any, address: str) -> dict[str, Any]:
        load0, t0 = loadavg(), time.perf_counter()
        out = study.results / plan.spec.name
        rep = run_sweep(plan, out, scheduler=address, force=force, progress=False)
        say(f"{role}: {rel} done: {len(rep.ran)} ran, {len(rep.skipped)} skipped, "
            f"{len(rep.failed)} failed, {rep.wall_s:.0f} s  [load {loadavg()}]")
        for pid, err in rep.failed.items():
            say(f"  point {pid} FAILED: {err}")
        return {"sweep": rel, "name": plan.spec.name, "role": role,
                "points": len(plan.points), "ran": len(rep.ran), "skipped": len(rep.skipped),
                "failed": dict(rep.failed), "wall_s": time.perf_counter() - t0,
                "load_before": load0, "load_after": loadavg()}

    total = sum(len(p.points) for _r, _s, p in plans)
    say(f"{len(plans)} sweeps, {total} points, on a local cluster of {workers} workers "
        f"[load {loadavg()}]")
    with dask_client(None, workers) as client:
        address = client.scheduler.address
        ex = ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="study-sweep")
        try:
            futs = [ex.submit(one, role, rel, plan, address) for role, rel, plan in plans]
            done, _ = wait(futs, return_when=FIRST_EXCEPTION)
            for f in done:
                f.result()  # re-raise the first error
            wait(futs)
            return [f.result() for f in futs]
        finally:
            ex.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- gathering


def _points(out: Path) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(point.json, summary.json or None) of every point of a sweep folder, in plan order."""
    sweep = json.loads((out / "sweep.json").read_text())
    rows = []
    for p in sweep["points"]:
        folder = out / "points" / p["id"]
        info = json.loads((folder / "point.json").read_text()) if (
            folder / "point.json").is_file() else {**p, "status": "missing"}
        summ = folder / "summary.json"
        ok = info.get("status") == "ok" and summ.is_file()
        rows.append((info, json.loads(summ.read_text()) if ok else None))
    return rows


def collect(study: Study, plans: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """Rows of every sweep of the study, grouped by role, plus the scenario files."""
    data: dict[str, Any] = {"study": study.spec.model_dump(mode="json"),
                            "study_file": str(study.source), "networks": [],
                            "sensitivity": [], "fidelity": [], "scenarios": {}}
    titles = {s.sweep: s.title for s in study.spec.sensitivity}
    for role, rel, plan in plans:
        rows = [point_row(i, s) for i, s in _points(study.results / plan.spec.name)]
        data["scenarios"][rel] = {"scenario": str(plan.scenario_path),
                                  "set": plan.spec.set,
                                  "points_s": sum(r.get("point_s") or 0.0 for r in rows)}
        if role == "networks":
            for r in rows:
                r["sweep"] = rel
            data["networks"] += rows
        elif role == "sensitivity":
            data["sensitivity"].append({"title": titles.get(rel, plan.spec.name),
                                        "sweep": rel, "axes": [a.label for a in plan.spec.axes],
                                        "rows": rows})
        else:
            data["fidelity"].append({"sweep": rel, "rows": rows})
    return data


def isaac_check(study: Study) -> dict[str, Any]:
    """`redysim hw` figures of the ISAAC file and the study's chip, the published Table I /
    IV, and (when asked) the engine's full-activity run."""
    from simulator.hardware.report import hardware_report
    from simulator.hardware.spec import load_hardware

    spec = study.spec.isaac
    assert spec is not None
    rep = hardware_report(load_hardware(study.path(spec.hardware)))
    chip8 = hardware_report(load_hardware(study.path(spec.redy_hardware)))
    from simulator.explore.study.spec import load_published

    out = {"hardware": spec.hardware, "report": rep, "redy_chip": chip8,
           "published": load_published(study.path(spec.published)).model_dump(mode="json"),
           "engine": None}
    if spec.engine_check:
        from simulator.explore.study.calib import full_activity_check

        out["engine"] = full_activity_check(study.path(spec.hardware))
    return out
