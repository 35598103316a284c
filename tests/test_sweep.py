"""Sweeps: a 2x2 digits sweep on a Dask LocalCluster of two workers against single runs,
resume, a failing point, Ctrl-C, validation before any work, and ``crossbar.rows`` as
one key through a whole run (counts against closed forms)."""

from __future__ import annotations

import csv
import json
import math
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


def _files(folder: Path, axes: list[dict[str, Any]], name: str = "tiny") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scen.yaml").write_text(yaml.safe_dump({
        "name": "digits-small", "hardware": str(ISAAC8),
        "workload": {"model": "digits", "calibration_images": 16, "accuracy_images": 32},
        "pipelines": {"static": {"policy": "static"}, "redy": {"policy": "redy", "k": 3.0}},
        "simulation": {"images": 1}}))
    sweep = folder / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"name": name, "scenario": "scen.yaml", "axes": axes}))
    return sweep


def _children() -> list[Any]:
    """Live child processes, without multiprocessing's resource tracker (one per Python
    process that ever spawned a child; it exits with its parent)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE or "resource_tracker" in " ".join(p.cmdline()):
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
    from simulator.explore.sweep.run import run_sweep

    folder = tmp_path_factory.mktemp("sweep")
    sweep = _files(folder, [{"key": "hardware.ima.crossbars_per_adc", "values": [1, 2]},
                            {"key": "hardware.crossbar.rows", "values": [128, 64]}])
    plan = plan_sweep(sweep)
    before = {p.pid for p in _children()}
    report = run_sweep(plan, folder / "out", workers=2, cache_dir=str(cache_dir),
                       progress=False)
    return {"plan": plan, "report": report, "out": folder / "out", "before": before}


def test_sweep_table_matches_single_runs(swept: dict[str, Any], tmp_path: Path) -> None:
    from simulator.explore.sweep.spec import build_point
    from simulator.runner.cache import ArtifactCache
    from simulator.runner.flow import run

    plan, report, out = swept["plan"], swept["report"], swept["out"]
    assert sorted(report.ran) == sorted(p.id for p in plan.points) and not report.failed
    with (out / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 2  # points x pipelines
    import pyarrow.parquet as pq

    table = pq.read_table(out / "sweep.parquet").to_pylist()
    assert [r["point"] for r in table] == [r["point"] for r in rows]
    singles = ArtifactCache(tmp_path / "own-cache")  # the single runs compute their own
    for p in plan.points:
        sc, hw = build_point(plan.scenario_path, p.scenario_changes, p.hardware_changes)
        sc.simulation.workers = 1
        rr = run(sc, hardware=hw, cache=singles)
        for pname, pr in rr.pipelines.items():
            (row,) = [r for r in table if r["point"] == p.id and r["pipeline"] == pname]
            assert row["status"] == "ok"
            assert row["crossbars_per_adc"] == p.axes["crossbars_per_adc"]
            assert row["rows"] == p.axes["rows"]
            assert row["latency_ns"] == pytest.approx(pr.latency_ns, rel=1e-12)
            assert row["energy_pj.total"] == pytest.approx(pr.ledger.total_energy(), rel=1e-12)
            for k, v in pr.counts().items():
                assert row[f"counts.{k}"] == v
            assert row["mean_bits_per_group"] == pytest.approx(pr.mean_bits_per_group())
            assert row["accuracy"] == pytest.approx(rr.precision[pname].accuracy)
            assert row["hw.adcs_per_ima"] == hw.ima.adcs
    for f in ("pareto.png", "saving.png", "sweep.json"):
        assert (out / f).is_file()


def test_workers_shared_the_cache(swept: dict[str, Any]) -> None:
    infos = [json.loads((swept["out"] / "points" / p.id / "point.json").read_text())
             for p in swept["plan"].points]
    # two group layouts (128 and 64 rows) x two policies: 4 forward passes in all, one trace
    assert sum(i["cache"]["misses"].get("precision", 0) for i in infos) == 4
    assert sum(i["cache"]["misses"].get("workload", 0) for i in infos) == 1


def test_no_process_left_behind(swept: dict[str, Any]) -> None:
    assert {p.pid for p in _children()} <= swept["before"]


def test_resume_skips_finished_points(swept: dict[str, Any]) -> None:
    from simulator.explore.sweep.run import run_sweep

    mtimes = {p.id: (swept["out"] / "points" / p.id / "summary.json").stat().st_mtime_ns
              for p in swept["plan"].points}
    again = run_sweep(swept["plan"], swept["out"], workers=2, progress=False)
    assert again.ran == [] and sorted(again.skipped) == sorted(mtimes)
    for pid, t in mtimes.items():
        assert (swept["out"] / "points" / pid / "summary.json").stat().st_mtime_ns == t


def test_bad_point_is_reported_and_ctrl_c_keeps_finished_points(
        tmp_path: Path, cache_dir: Path) -> None:
    from simulator.explore.sweep.run import run_sweep

    sweep = _files(tmp_path, [{"key": "mapping.replicas",
                               "values": [{}, {"no_such_layer": 2}, {"conv1": 2}]}], "bad")
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
    assert seen == [good, bad]  # one worker: the points run in order
    points = tmp_path / "out" / "points"
    assert json.loads((points / good / "point.json").read_text())["status"] == "ok"
    failed = json.loads((points / bad / "point.json").read_text())
    assert failed["status"] == "failed" and "no_such_layer" in failed["error"]
    with (tmp_path / "out" / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["point"] for r in rows} >= {good, bad}
    # resume, on an existing scheduler (--scheduler): the finished point is kept, the failed
    # one is tried again, the rest runs
    import logging

    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        rep = run_sweep(plan, tmp_path / "out", scheduler=cluster.scheduler_address,
                        cache_dir=str(cache_dir), progress=False)
    # (the third point may have finished before the cancel reached the worker)
    assert good in rep.skipped and set(rep.skipped + rep.ran) == {good, third}
    assert list(rep.failed) == [bad] and "no_such_layer" in rep.failed[bad]
    assert not any(p.name.startswith(".") for p in points.iterdir())


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
    import sys

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


def test_a_point_whose_worker_died_is_recorded(tmp_path: Path) -> None:
    from simulator.explore.sweep.run import _record_lost_point, point_status

    task = {"id": "p", "axes": {"a": 1}, "changes": {"x.a": 1}, "hash": "h",
            "out": str(tmp_path / "points" / "p")}
    info = _record_lost_point(task, RuntimeError("worker died"))
    assert info["status"] == "failed" and "worker died" in info["error"]
    assert point_status(tmp_path / "points" / "p", "h") == "failed"
    assert point_status(tmp_path / "points" / "p", "other") is None
