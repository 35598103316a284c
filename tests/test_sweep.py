"""Sweeps: a 2x2 digits sweep as a Dask graph on the local cluster against lone runs (every
column of sweep.csv), the tasks it shares, the README's cluster recipe end to end (a
scheduler and two workers started as processes, then ``--scheduler``), resume, a failing
point, Ctrl-C, file modes under a umask, validation before any work, and
``crossbar.rows`` as one key through a whole run (counts against closed forms)."""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.core.config_io import ConfigError
from simulator.explore.sweep.spec import plan_sweep

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[1]
ISAAC8 = ROOT / "configs" / "hardware" / "isaac8.yaml"
RECIPE_PIDS: set[int] = set()  # the cluster recipe's processes (not the sweep's own)


def _files(folder: Path, axes: list[dict[str, Any]], name: str = "tiny",
           simulation: dict[str, Any] | None = None, **scenario: Any) -> Path:
    """A sweep file over *axes* and its digits scenario (*scenario*: more of its keys)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scen.yaml").write_text(yaml.safe_dump({
        "name": "digits-small", "hardware": str(ISAAC8),
        "workload": {"model": "digits", "calibration_images": 16, "accuracy_images": 32},
        "pipelines": {"static": {"policy": "static"}, "redy": {"policy": "redy", "k": 3.0}},
        "simulation": simulation or {"images": 1}, **scenario}))
    sweep = folder / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"name": name, "scenario": "scen.yaml", "axes": axes}))
    return sweep


def _children() -> list[Any]:
    """Live child processes, without the cluster recipe's and multiprocessing's resource
    tracker (one per Python process that ever spawned a child; it exits with its parent)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if (p.status() == psutil.STATUS_ZOMBIE or p.pid in RECIPE_PIDS
                    or "resource_tracker" in " ".join(p.cmdline())):
                continue
        except psutil.NoSuchProcess:
            continue
        out.append(p)
    return out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, Any]:
    """The 2x2 sweep on a local cluster of two workers, under umask 0022."""
    from simulator.explore.sweep.run import run_sweep

    folder = tmp_path_factory.mktemp("sweep")
    sweep = _files(folder, [{"key": "hardware.ima.crossbars_per_adc", "values": [1, 2]},
                            {"key": "hardware.crossbar.rows", "values": [128, 64]}])
    plan = plan_sweep(sweep)
    before = {p.pid for p in _children()}
    said: list[str] = []
    old = os.umask(0o022)
    try:
        report = run_sweep(plan, folder / "out", workers=2, cache_dir=str(cache_dir),
                           say=said.append)
    finally:
        os.umask(old)
    return {"plan": plan, "report": report, "out": folder / "out", "before": before,
            "said": said}


def _lone_table(plan: Any, folder: Path) -> Path:
    """The sweep's table built from lone ``simulator.run`` calls, one per point (no Dask;
    a cache of their own, so the trace is built once), written by the same point writer
    and table code."""
    from simulator.explore.sweep.spec import POINTS_DIR, build_point
    from simulator.explore.sweep.table import write_table
    from simulator.explore.sweep.tasks import write_point
    from simulator.runner.cache import ArtifactCache
    from simulator.runner.flow import run

    own = ArtifactCache(folder / "own-cache")
    for p in plan.points:
        sc, hw = build_point(plan.scenario_path, p.scenario_changes, p.hardware_changes)
        sc.simulation.workers = 1
        rr = run(sc, hardware=hw, cache=own)
        task = {"id": p.id, "axes": p.axes, "changes": p.changes, "hash": p.hash,
                "out": str(folder / POINTS_DIR / p.id), "plots": False}
        write_point(rr, task, {}, time.perf_counter())
    write_table(plan, folder, plots=False)
    return folder / "sweep.csv"


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _run_fresh(code: str, cwd: Path) -> dict[str, Any]:
    """Run *code* in a fresh interpreter (this checkout on its path); the JSON object of
    its last line of output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _same_figures(first_csv: Path, again_csv: Path, rows: int) -> None:
    """Both sweep tables have *rows* rows, equal column by column but for wall times."""
    first, again = _csv(first_csv), _csv(again_csv)
    assert len(first) == len(again) == rows
    for a, b in zip(first, again, strict=True):
        assert {k: v for k, v in a.items() if not k.startswith("wall_s")} == \
            {k: v for k, v in b.items() if not k.startswith("wall_s")}


def test_sweep_csv_equals_lone_runs(swept: dict[str, Any], tmp_path: Path) -> None:
    """Every column of every row of sweep.csv, wall times aside, as the points run alone."""
    plan, report, out = swept["plan"], swept["report"], swept["out"]
    assert sorted(report.ran) == sorted(p.id for p in plan.points) and not report.failed
    got = _csv(out / "sweep.csv")
    want = _csv(_lone_table(plan, tmp_path / "lone"))
    assert len(got) == len(want) == 4 * 2  # points x pipelines
    timing = [c for c in got[0] if c.startswith("wall_s")]
    assert "wall_s.simulate:redy" in timing
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        for col in g:
            if col not in timing:
                assert g[col] == w[col], (g["point"], g["pipeline"], col)
    import pyarrow.parquet as pq

    table = pq.read_table(out / "sweep.parquet").to_pylist()
    assert [r["point"] for r in table] == [r["point"] for r in got]
    for f in ("pareto.png", "saving.png", "sweep.json"):
        assert (out / f).is_file()


def test_tasks_are_shared(swept: dict[str, Any]) -> None:
    """By hand: one network (1 trace, 1 scales, 1 float); two crossbar heights map and
    group differently (2 maps) while the ADC sharing is not read by the mapper; each
    layout captures twice (static alone in the lossless pass, ReDy in its own): 4
    captures; each of the 4 hardware points plans once and simulates 2 pipelines."""
    report = swept["report"]
    assert report.tasks == {"trace": 1, "map": 2, "scales": 1, "capture": 4, "float": 1,
                            "plan": 4, "simulate": 8, "point": 4}
    # a fresh cache: every cached artifact computed once, by one task
    assert report.computed == {"trace": 1, "scales": 1, "capture": 4, "float": 1}
    infos = [json.loads((swept["out"] / "points" / p.id / "point.json").read_text())
             for p in swept["plan"].points]
    traces = {t["key"] for i in infos for t in i["tasks"] if t["kind"] == "trace"}
    assert len(traces) == 1


def test_progress_lines(swept: dict[str, Any]) -> None:
    said = swept["said"]
    assert said[0].startswith("4 point(s) to run (0 already done) on a local cluster of 2 "
                              "workers: 1 trace, 2 map")
    done = [s for s in said if " points done, " in s]
    assert [s.split(" ")[0] for s in done][-4:] == ["1/4", "2/4", "3/4", "4/4"]
    assert all(", 0 failed" in s for s in done)


def test_modes_follow_the_umask(swept: dict[str, Any]) -> None:
    """Under umask 0022 another user can read every result (as with a plain mkdir/open)."""
    out = swept["out"]
    for f in ("sweep.csv", "sweep.json", "sweep.parquet"):
        assert stat.S_IMODE((out / f).stat().st_mode) == 0o644, f
    for p in (out / "points").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o755, p
        for f in p.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_no_process_left_behind(swept: dict[str, Any]) -> None:
    assert {p.pid for p in _children()} <= swept["before"]


def test_rerun_imports_no_torch(swept: dict[str, Any], tmp_path: Path,
                                cache_dir: Path) -> None:
    """The 2x2 sweep again, in a fresh interpreter on a local cluster of two worker
    processes, with the artifact cache the first sweep filled: every artifact is read, the
    figures are the first sweep's, and torch is imported neither in the client nor in a
    worker (the trace's value travels between them without it)."""
    out = tmp_path / "again"
    code = f"""
import json, sys
from simulator.explore.sweep.cluster import dask_client
from simulator.explore.sweep.run import run_sweep
from simulator.explore.sweep.spec import build_point, plan_sweep
from simulator.explore.sweep.tasks import map_task, thread_counts, trace_task
plan = plan_sweep({str(swept["plan"].source)!r})
cache = {str(cache_dir)!r}
with dask_client(None, 2) as client:
    client.wait_for_workers(2, timeout=120)
    a, b = sorted(client.scheduler_info()["workers"])
    p = plan.points[0]
    sc, hw = build_point(plan.scenario_path, p.scenario_changes, p.hardware_changes)
    # the trace on one worker, read by a task of the other (the sweep's tasks are quick
    # on a warm cache: Dask may well run them all on one worker)
    trace = client.submit(trace_task, sc, cache, workers=[a], pure=False)
    client.submit(map_task, trace, hw, sc, workers=[b], pure=False).result()
    rep = run_sweep(plan, {str(out)!r}, scheduler=client.scheduler.address,
                    cache_dir=cache, progress=False)
    workers = client.run(thread_counts)
print(json.dumps({{"ran": len(rep.ran), "computed": rep.computed,
                  "client": "torch" in sys.modules, "workers": list(workers.values())}}))
"""
    got = _run_fresh(code, tmp_path)
    assert got["ran"] == 4 and got["computed"] == {}
    assert got["client"] is False
    assert len(got["workers"]) == 2 and all(w["torch_imported"] == 0 for w in got["workers"])
    _same_figures(swept["out"] / "sweep.csv", out / "sweep.csv", rows=8)


def test_exact_mode_rerun_imports_no_torch(tmp_path: Path) -> None:
    """The exact crossbar mode (``accuracy.crossbar: exact``), an ideal and a calibrated
    ADC: a cold sweep computes the captures and the ADC's range; the same sweep again, in a
    fresh interpreter on a local cluster, reads them all and imports torch neither in the
    client (the capture keys hold the mode's parameters: ``CrossbarModel.key`` of the
    torch-free ``workloads.precision.crossbar_model``) nor in the worker."""
    from simulator.explore.sweep.run import run_sweep

    cache = tmp_path / "cache"
    sweep = _files(tmp_path / "exact", [{"key": "hardware.ima.adc_model",
                                         "values": ["ideal", "calibrated"]}],
                   name="exact", simulation={"images": 1, "fidelity": "analytic"},
                   accuracy={"crossbar": "exact"})
    plan = plan_sweep(sweep)
    cold = run_sweep(plan, tmp_path / "cold", workers=1, cache_dir=str(cache),
                     progress=False)
    assert not cold.failed and len(cold.ran) == 2
    assert cold.computed == {"trace": 1, "scales": 1, "capture": 4, "float": 1}
    code = f"""
import json, sys
from simulator.explore.sweep.cluster import dask_client
from simulator.explore.sweep.run import run_sweep
from simulator.explore.sweep.spec import plan_sweep
from simulator.explore.sweep.tasks import thread_counts
plan = plan_sweep({str(sweep)!r})
with dask_client(None, 1) as client:
    rep = run_sweep(plan, {str(tmp_path / "warm")!r}, scheduler=client.scheduler.address,
                    cache_dir={str(cache)!r}, progress=False)
    workers = client.run(thread_counts)
print(json.dumps({{"ran": len(rep.ran), "computed": rep.computed,
                  "client": "torch" in sys.modules, "workers": list(workers.values())}}))
"""
    got = _run_fresh(code, tmp_path)
    assert got["ran"] == 2 and got["computed"] == {}
    assert got["client"] is False
    assert len(got["workers"]) == 1 and got["workers"][0]["torch_imported"] == 0
    _same_figures(tmp_path / "cold" / "sweep.csv", tmp_path / "warm" / "sweep.csv",
                  rows=2 * 2)


def test_resume_skips_finished_points(swept: dict[str, Any]) -> None:
    from simulator.explore.sweep.run import run_sweep

    mtimes = {p.id: (swept["out"] / "points" / p.id / "summary.json").stat().st_mtime_ns
              for p in swept["plan"].points}
    again = run_sweep(swept["plan"], swept["out"], workers=2, progress=False)
    assert again.ran == [] and sorted(again.skipped) == sorted(mtimes)
    for pid, t in mtimes.items():
        assert (swept["out"] / "points" / pid / "summary.json").stat().st_mtime_ns == t


def test_mapping_reads_only_its_hardware_keys() -> None:
    """map_network reads no hardware key outside HARDWARE_KEYS (the sweep shares a mapping
    between chips that agree on them): mapped with a spec that records every read."""
    from mapping.mapper import HARDWARE_KEYS, map_network
    from simulator.hardware.spec import load_hardware
    from simulator.runner.flow import load_workload
    from simulator.runner.scenario import load_scenario

    read: set[str] = set()

    class Recorder:
        def __init__(self, obj: Any, path: str = "") -> None:
            self._obj, self._path = obj, path

        def __getattr__(self, name: str) -> Any:
            value = getattr(self._obj, name)
            path = f"{self._path}.{name}" if self._path else name
            if hasattr(type(value), "model_fields"):
                return Recorder(value, path)
            read.add(path)
            return value

    hw = load_hardware(ISAAC8)
    for scen in ("digits.yaml", "resnet-digits.yaml"):
        sc = load_scenario(ROOT / "configs" / "scenarios" / scen)
        wl = load_workload(sc)
        map_network(wl.traced.graph, Recorder(hw), sc.mapping)
    assert read and read <= set(HARDWARE_KEYS), read - set(HARDWARE_KEYS)


def test_tasks_share_no_mutable_network(tmp_path: Path, cache_dir: Path) -> None:
    """The trace task's value holds no network: its light part (graph, note, counts) and the
    workload's cache key, pickled without torch. A forward pass patches the layers it
    captures, and Dask may pickle a result for another worker while a task runs (a study
    once sent a half-patched network); the torch tasks read the network from their
    process's artifact cache, left unpatched after a capture."""
    import pickle

    from simulator.explore.sweep import tasks as T
    from simulator.explore.sweep.spec import build_point
    from simulator.runner.cache import ArtifactCache, workload_key

    plan = plan_sweep(_files(tmp_path, [{"key": "hardware.ima.crossbars_per_adc",
                                         "values": [1]}]))
    p = plan.points[0]
    sc, hw = build_point(plan.scenario_path, p.scenario_changes, p.hardware_changes)
    trace = T.trace_task(sc, str(cache_dir))
    light = trace.value.light
    assert trace.value.token == workload_key(sc)
    assert light.note and light.traced.graph.number_of_nodes() > 0
    with pytest.raises(RuntimeError, match="holds no network"):
        light.traced.module  # noqa: B018 - the access is the test
    with pytest.raises(RuntimeError, match="holds no network"):
        light.eval_inputs  # noqa: B018
    blob = pickle.dumps(trace.value)  # what another worker gets: no torch object in it
    assert b"torch" not in blob and len(blob) < 100_000, len(blob)
    mapped = T.map_task(trace, hw, sc)
    scales = T.scales_task(trace, sc, str(cache_dir))
    fresh = tmp_path / "fresh-cache"  # the capture computes: it needs the network
    T.capture_task(trace, mapped, scales, sc, ["redy"], hw, str(fresh))
    own = T.task_workload(trace, sc, ArtifactCache(fresh)).traced.module
    assert own is T.task_workload(trace, sc, ArtifactCache(fresh)).traced.module  # one per process
    assert not [n for n, m in own.named_modules() if "forward" in m.__dict__]


# ----------------------------------------------------------------------------- the recipe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory):
    """The README's cluster recipe on this machine: ``python -m dask scheduler`` and two
    ``python -m dask worker ... --nthreads 1`` processes; killed at the end, also when a
    test fails."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("recipe") / "cluster.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    cmds = [[sys.executable, "-m", "dask", "scheduler", "--port", str(port),
             "--dashboard-address", "127.0.0.1:0"]]
    cmds += [[sys.executable, "-m", "dask", "worker", address, "--nthreads", "1"]] * 2
    procs = []
    try:
        with log.open("ab") as f:
            for cmd in cmds:
                procs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                              env=env, cwd=ROOT, start_new_session=True))
                RECIPE_PIDS.add(procs[-1].pid)
        deadline = time.monotonic() + 120
        while True:  # the scheduler listens once it has started
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
            for p in psutil.Process().children(recursive=True):
                RECIPE_PIDS.add(p.pid)  # the nannies' worker processes
        yield address
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait(30)


def test_workers_run_one_thread(recipe: str, tmp_path: Path) -> None:
    """Inside a worker of the recipe (started with --nthreads 1, no thread variables in its
    environment): a sweep task's setup imports no torch; a torch task (the trace task on a
    fresh cache builds the network) leaves torch and the native pools at one thread."""
    from distributed import Client

    from simulator.explore.sweep.spec import build_point
    from simulator.explore.sweep.tasks import thread_counts, trace_task, worker_setup

    plan = plan_sweep(_files(tmp_path, [{"key": "hardware.ima.crossbars_per_adc",
                                         "values": [1]}]))
    p = plan.points[0]
    sc, _ = build_point(plan.scenario_path, p.scenario_changes, p.hardware_changes)

    def counts(sc: Any, cache: str) -> tuple[dict[str, int], dict[str, int]]:
        worker_setup()
        setup = thread_counts()
        trace_task(sc, cache)
        return setup, thread_counts()

    with Client(recipe, timeout="30s") as client:
        setup, got = client.submit(counts, sc, str(tmp_path / "cache"),
                                   pure=False).result(timeout=120)
    assert setup["torch_imported"] == 0, setup
    assert got["torch_imported"] == 1 and got["torch"] == 1 and got["torch_interop"] == 1
    pools = {k: v for k, v in got.items() if not k.startswith("torch")}
    assert pools and all(v == 1 for v in pools.values()), got


def test_bad_point_is_reported_and_ctrl_c_keeps_finished_points(
        tmp_path: Path, cache_dir: Path, recipe: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli.main import main
    from simulator.explore.sweep.run import run_sweep

    sweep = _files(tmp_path, [{"key": "mapping.replicas",
                               "values": [{}, {"no_such_layer": 2}, {"conv1": 2}]}], "bad",
                   simulation={"images": 1, "fidelity": "analytic"})
    plan = plan_sweep(sweep)  # valid: the layer name is only known once the model is mapped
    good, bad, third = (p.id for p in plan.points)
    seen: list[str] = []

    def interrupt_after_two(info: dict[str, Any]) -> None:
        seen.append(info["id"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    before = {p.pid for p in _children()}
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, tmp_path / "out", workers=1, cache_dir=str(cache_dir),
                  progress=False, on_point=interrupt_after_two)
    assert {p.pid for p in _children()} <= before
    assert set(seen) <= {good, bad, third} and len(seen) == 2
    points = tmp_path / "out" / "points"
    statuses = {pid: json.loads((points / pid / "point.json").read_text())["status"]
                for pid in seen}
    assert statuses == {pid: "failed" if pid == bad else "ok" for pid in seen}
    with (tmp_path / "out" / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["point"] for r in rows} >= set(seen)
    # resume with the README's recipe (--scheduler): the finished points are kept, the
    # failed one is tried again, the rest runs
    rc = main(["sweep", str(sweep), "-o", str(tmp_path / "out"), "--scheduler", recipe,
               "--cache", str(cache_dir)])
    out, err = capsys.readouterr()
    assert rc == 1, err  # the bad point fails again
    assert f"failed {bad}: MappingError: mapping.replicas: unknown layer(s) no_such_layer" in out
    assert f"on {recipe}:" in err and "Traceback" not in err
    import re

    ran, skipped = map(int, re.search(r"(\d) point\(s\) run, (\d) already done, 1 failed",
                                      out).groups())
    # (a point may have finished while the interrupt was stopping the workers)
    assert ran + skipped == 2 and skipped >= len([pid for pid in seen if pid != bad])
    info = json.loads((points / bad / "point.json").read_text())
    assert info["status"] == "failed" and "no_such_layer" in info["error"]
    assert "MappingError" in (points / bad / "error.txt").read_text()
    for pid in (good, third):
        assert json.loads((points / pid / "point.json").read_text())["status"] == "ok"
    assert not any(p.name.startswith(".") for p in points.iterdir())


def test_unreachable_scheduler_fails_fast(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli.main import main

    sweep = _files(tmp_path, [{"key": "hardware.ima.crossbars_per_adc", "values": [1, 2]}])
    t0 = time.monotonic()
    rc = main(["sweep", str(sweep), "-o", str(tmp_path / "out"), "--scheduler",
               f"tcp://127.0.0.1:{_free_port()}"])
    took = time.monotonic() - t0
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and took < 10, took
    assert err[-1].startswith("redysim: error: --scheduler tcp://127.0.0.1:")
    assert "cannot connect" in err[-1] and len([e for e in err if "error" in e]) == 1
    assert not (tmp_path / "out").exists()


def test_local_cluster_opens_no_fixed_port() -> None:
    """The local scheduler's HTTP server (the dashboard) takes a random port of 127.0.0.1,
    so two sweeps on one machine do not both want 8787 (issue 19)."""
    from simulator.explore.sweep.cluster import dask_client

    held = socket.socket()
    try:
        held.bind(("127.0.0.1", 8787))  # as another sweep or a notebook would
    except OSError:
        pass  # in use already: the same situation
    try:
        with dask_client(None, 1) as client:
            port = client.scheduler_info()["services"].get("dashboard")
            log = client.redysim_cluster.log_path.read_text()
    finally:
        held.close()
    assert port not in (None, 8787)
    assert "already in use" not in log


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("axis", "expect"), [
    ({"key": "hardware.ima.crossbars_per_adk", "values": [1]},
     r"axes\[0\] \(hardware.ima.crossbars_per_adk=1\): .*ima.crossbars_per_adk: unknown key"),
    ({"key": "simulation.imagez", "values": [2]},
     r"axes\[0\] \(simulation.imagez=2\): .*simulation.imagez: unknown key"),
    ({"key": "hardware.ima.crossbars_per_adc", "values": [1, 3]},
     r"axes\[0\] \(hardware.ima.crossbars_per_adc=3\): .*must divide ima.crossbars"),
    ({"zip": {"hardware.crossbar.rows": [128, 256], "hardware.crossbar.cols": [128]}},
     r"axes.0: .*equally long"),
    ({"key": "workload.model.x", "values": [1]},
     r"workload.model.x: workload.model is a str, not a mapping"),
    ({"key": "hardware.ima.crossbars_per_adc", "values": [2, 2]},
     r"axes.0: .*values: 2 is given twice \(positions 0 and 1\)"),
    ({"zip": {"hardware.crossbar.rows": [128, 128], "hardware.crossbar.cols": [64, 64]}},
     r"axes.0: .*zip: hardware.crossbar.cols=64, hardware.crossbar.rows=128 is given twice"),
    ({"key": "pipelines.redy.k", "values": [3, 3.0]},
     r"points \(pipelines.redy.k=3\) and \(pipelines.redy.k=3.0\) are the same point"),
])
def test_bad_axis_fails_before_any_work(tmp_path: Path, axis: dict[str, Any],
                                        expect: str) -> None:
    sweep = _files(tmp_path, [axis])
    with pytest.raises(ConfigError, match=expect):
        plan_sweep(sweep)


def test_cli_bad_axis_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli.main import main

    sweep = _files(tmp_path, [{"key": "hardware.ima.adc_bitz", "values": [6]}])
    assert main(["sweep", str(sweep), "-o", str(tmp_path / "out")]) == 2
    assert "hardware.ima.adc_bitz=6" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_refuses_a_folder_that_is_not_a_sweep(tmp_path: Path) -> None:
    from simulator.explore.sweep.run import check_out_dir

    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="not a redysim sweep folder"):
        check_out_dir(tmp_path, force=True)


def test_missing_dask_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.explore.sweep.run import require_dask

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'redysim\[dist\]'"):
        require_dask()


# ----------------------------------------------------------------------------- pure parts


def test_pareto_front() -> None:
    from simulator.explore.sweep.plots import pareto_front

    pts = [(1.0, 5.0), (2.0, 3.0), (2.5, 4.0), (3.0, 1.0), (1.0, 6.0)]
    assert pareto_front(pts) == [0, 1, 3]


# ----------------------------------------------------------------------------- one key, a run


def test_rows_256_runs_and_counts_match_closed_forms(tmp_path: Path, cache_dir: Path) -> None:
    from simulator.hardware.spec import load_hardware
    from simulator.runner.cache import ArtifactCache
    from simulator.runner.flow import run
    from simulator.runner.scenario import load_scenario

    _files(tmp_path, [])
    sc = load_scenario(tmp_path / "scen.yaml")
    sc.simulation.workers = 1
    hw = load_hardware(ISAAC8).with_changes({"crossbar.rows": 256})
    said: list[str] = []
    rr = run(sc, hardware=hw, cache=ArtifactCache(cache_dir), progress=said.append)
    assert any(s.startswith("warning: ima.adc_bits: 8-bit ADCs are too coarse") for s in said)
    g = rr.workload.traced.graph
    reads = drives = 0
    weights_per_crossbar = (128 - 1) // 4  # 128 columns: unit column, 4 cells per weight
    for name in rr.mapping.layers:
        n = g.nodes[name]
        kk = n["kernel"][0] * n["kernel"][1]
        rows = n["in_channels"] // n["groups"] * kk
        per_block = 256 // kk * kk  # whole kernel windows in 256 rows (fc: 256)
        blocks = [min(per_block, rows - s) for s in range(0, rows, per_block)]
        col_blocks = math.ceil(n["out_channels"] / weights_per_crossbar)
        positions = math.prod(n["out_shape"][1:]) if len(n["out_shape"]) == 3 else 1
        # static: every group streams 8 planes; one group per row block and position
        reads += 8 * positions * len(blocks) * col_blocks
        drives += 8 * positions * sum(blocks) * col_blocks
        assert len(rr.mapping.layers[name].row_blocks) == len(blocks), name
    st = rr.pipelines["static"]
    assert st.counts()["crossbar_reads"] == reads
    assert st.counts()["dac_drives"] == drives
    comp = st.ledger.energy_by_component()
    assert comp["crossbar"] == pytest.approx(reads * 30.0 * 2, rel=1e-9)  # 256x128: 2 x 30 pJ
    assert comp["dac"] == pytest.approx(drives * 4.0 / 1024 * 100, rel=1e-9)


def test_a_point_whose_tasks_failed_is_recorded(tmp_path: Path) -> None:
    from simulator.explore.sweep.run import point_status, record_failed_point

    task = {"id": "p", "axes": {"a": 1}, "changes": {"x.a": 1}, "hash": "h",
            "out": str(tmp_path / "points" / "p")}
    info = record_failed_point(task, RuntimeError("worker died"), "Traceback: ...")
    assert info["status"] == "failed" and info["error"] == "RuntimeError: worker died"
    assert point_status(tmp_path / "points" / "p", "h") == "failed"
    assert point_status(tmp_path / "points" / "p", "other") is None
    assert (tmp_path / "points" / "p" / "error.txt").read_text() == "Traceback: ..."


def test_exact_mode_captures_are_per_adc(tmp_path: Path) -> None:
    """Points that change only the ADC share their bit planes in the fast mode (the ADC
    does not enter the capture) and not in the exact crossbar mode (it does), where every
    pipeline also gets its own forward pass."""
    from simulator.explore.sweep.graph import PointJob, point_keys
    from simulator.explore.sweep.spec import build_point

    _files(tmp_path, [])
    keys = {}
    for mode in ("fast", "exact"):
        for bits in (6, 8):
            sc, hw = build_point(tmp_path / "scen.yaml", {"accuracy.crossbar": mode},
                                 {"ima.adc_bits": bits})
            job = PointJob(f"{mode}-{bits}", sc, hw, "h", tmp_path, {}, {})
            keys[mode, bits] = point_keys(job).capture
    assert keys["fast", 6] == keys["fast", 8]
    assert keys["exact", 6]["redy"] != keys["exact", 8]["redy"]
    assert keys["exact", 6]["static"] != keys["exact", 8]["static"]
    assert keys["exact", 6]["static"] != keys["exact", 6]["redy"]


def test_point_hash_follows_the_simulator_source(tmp_path: Path, monkeypatch) -> None:
    """A point finished by other code is not resumed: its hash covers the source of the
    simulator and the mapper, not only what builds and captures the workload."""
    import simulator.runner.cache as cache
    from simulator.explore.sweep.spec import build_point, point_hash

    _files(tmp_path, [])
    sc, hw = build_point(tmp_path / "scen.yaml", {}, {})
    before = point_hash(sc, hw)
    assert point_hash(sc, hw) == before
    monkeypatch.setattr(cache, "_SOURCE_VERSION", None)
    monkeypatch.setattr(cache, "_ROOT", tmp_path)  # a tree with other sources
    (tmp_path / "mapping").mkdir()
    (tmp_path / "mapping" / "place.py").write_text("# another placement\n")
    monkeypatch.setattr(cache, "_CODE_VERSION", cache.code_version())
    assert point_hash(sc, hw) != before
