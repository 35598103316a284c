"""Fault injection: signals, killed workers, full and read-only disks, bad output paths.

The signal tests run the real CLI (``python -m simulator.cli.main run``) in a subprocess of its
own session on a small copy of the digits scenario, stop it at a chosen moment — with
the ``REDYSIM_TEST_FAULT`` pause hook (``simulator/core/faults.py``) or by watching stderr and
the results' staging folder — and send SIGINT to the whole process group (what Ctrl-C
does) or SIGTERM to the main process (what ``kill`` does). Each asserts: exit within
2 s with 130 (SIGINT) or 143 (SIGTERM), exactly one line on stderr after the signal and
no traceback, no staging folder left, an existing results folder byte-identical, and no
process of the run's session alive.

All subprocess cases are started in the background when the module's first test asks
for them, at most two using CPU at a time (a paused run uses none), each with a
trigger thread that signals it at its moment (:class:`faultkit.Fleet`); the tests then
collect and check the outcomes.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from faultkit import ROOT, CliRun, Fleet, fake_results, snapshot, staging_left

from simulator.cli.main import main

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="signals, /proc and fork semantics of Linux")]

EXIT_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits scenario, hardware by absolute path, a short accuracy pass."""
    data = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    data["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    data["workload"]["accuracy_images"] = 32
    p = tmp_path_factory.mktemp("faults") / "digits-small.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


# ------------------------------------------------------------------ the runs and their cues
def on_line(pattern: str, sig: int, group: bool = False, count: int = 1,
            delay: float = 0.0, before: Callable[[CliRun], None] | None = None):
    """Trigger: *count* stderr lines match *pattern* → (wait *delay*) → send *sig*."""
    def trigger(run: CliRun) -> None:
        run.wait_for(pattern, count)
        if before is not None:
            before(run)
        time.sleep(delay)
        if run.proc.poll() is None:
            run.send(sig, group)
    return trigger


def on_staged_file(parent: Path, name: str, sig: int, group: bool = False):
    """Trigger: the first file appears in the results' staging folder → send *sig*."""
    def trigger(run: CliRun) -> None:
        while not any(p.is_file() for d in parent.glob(f".{name}.partial-*")
                      for p in d.iterdir()):
            if run.proc.poll() is not None:
                return
            time.sleep(0.005)
        run.send(sig, group)
    return trigger


def kill_a_worker(run: CliRun) -> None:
    """Trigger: both workers paused → SIGKILL the first (as the OOM killer would)."""
    lines = run.wait_for("paused at worker", count=2)
    victim = int(lines[0].rsplit("pid ", 1)[1].rstrip(")"))
    run.notes["victim"] = victim
    run.mark()
    os.kill(victim, signal.SIGKILL)


#: seeded "random moment" of the natural simulation test
_RNG = random.Random(12)
RANDOM_DELAY, RANDOM_SIGNAL = _RNG.uniform(0.0, 1.0), _RNG.choice(["SIGINT", "SIGTERM"])


def _unshare_tmpfs_works(tmp: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = tmp / "probe"
    probe.mkdir()
    r = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs tmpfs "$0"', str(probe)],
                       capture_output=True)
    return r.returncode == 0


#: runs "$@" with MNT a private tmpfs of SIZE holding a copy of SRC as MNT/res (mode
#: "ro": remounted read-only first), then records the entries of MNT and the checksums of
#: MNT/res in REPORT (the tmpfs vanishes with the namespace); exits with the run's status
_IN_TMPFS = r"""
mnt=$1 size=$2 src=$3 mode=$4 report=$5; shift 5
mount -t tmpfs -o size=$size tmpfs "$mnt" || exit 99
cp -r "$src" "$mnt/res" || exit 98
if [ "$mode" = ro ]; then mount -o remount,ro "$mnt" || exit 97; fi
"$@"; rc=$?
{ ls -A "$mnt"; echo ---; cd "$mnt/res" && for f in *; do cksum "$f"; done; } > "$report"
exit $rc
"""


def _cksums(folder: Path) -> str:
    return subprocess.run(["sh", "-c", 'cd "$0" && for f in *; do cksum "$f"; done',
                           str(folder)], capture_output=True, text=True).stdout


def _tmpfs_prefix(base: Path, tag: str, size: str, mode: str) -> list[str]:
    src = base / f"{tag}-src"
    fake_results(src)
    (base / f"{tag}-mnt").mkdir()
    return ["unshare", "-rm", "sh", "-c", _IN_TMPFS, "sh", str(base / f"{tag}-mnt"), size,
            str(src), mode, str(base / f"{tag}-report.txt")]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Results parent folder with existing results folders old1..old3."""
    base = tmp_path_factory.mktemp("out")
    for n in ("old1", "old2", "old3"):
        fake_results(base / n)
    return base


@pytest.fixture(scope="module")
def before(dirs: Path) -> dict[str, dict[str, bytes]]:
    """The existing results folders, byte for byte, before any run."""
    return {n: snapshot(dirs / n) for n in ("old1", "old2", "old3")}


@pytest.fixture(scope="module")
def fleet(scenario: Path, dirs: Path, before, tmp_path_factory: pytest.TempPathFactory):
    """Every subprocess case, started in the background (see :class:`Fleet`)."""
    sc, q = str(scenario), "--quiet"
    out = {n: str(dirs / n) for n in ("capture", "simulation", "killed", "random",
                                      "old1", "old2", "old3")}
    sig_int, sig_term = signal.SIGINT, signal.SIGTERM

    def note_processes(run: CliRun) -> None:
        run.notes["alive"] = len(run.leftovers())

    def note_staging(run: CliRun) -> None:
        run.notes["staged"] = [p.name for p in dirs.glob(".old2.partial-*")]

    specs: dict[str, dict] = {
        "writing": dict(args=["run", sc, "-o", out["old2"], "--force", q],
                        fault="write:pause",
                        trigger=on_line("paused at write", sig_term, before=note_staging)),
        "midwrite": dict(args=["run", sc, "-o", out["old3"], "--force", "--trace", q],
                         trigger=on_staged_file(dirs, "old3", sig_int, group=True)),
        "random": dict(args=["run", sc, "-o", out["random"], "--images", "64"],
                       trigger=on_line(r"simulating \d+ pipeline", getattr(signal, RANDOM_SIGNAL),
                                       group=RANDOM_SIGNAL == "SIGINT", delay=RANDOM_DELAY)),
        "capture": dict(args=["run", sc, "-o", out["capture"], q], fault="capture:pause",
                        trigger=on_line("paused at capture", sig_int, group=True)),
        "simulation": dict(args=["run", sc, "-o", out["simulation"], q], fault="worker:pause",
                           trigger=on_line("paused at worker", sig_term, count=2,
                                           before=note_processes)),
        "transfer": dict(args=["run", sc, "-o", out["old1"], "--force", "--trace", q],
                         fault="worker-send:pause",
                         trigger=on_line("paused at worker-send", sig_int, group=True, count=2)),
        "sigkill": dict(args=["run", sc, "-o", out["killed"], q], fault="worker:pause",
                        trigger=kill_a_worker),
    }
    tmpfs = tmp_path_factory.mktemp("tmpfs")
    if _unshare_tmpfs_works(tmpfs):
        for tag, size, mode in (("full", "600k", "rw"), ("ro", "4m", "ro")):
            specs[tag] = dict(args=["run", sc, "-o", str(tmpfs / f"{tag}-mnt" / "res"),
                                    "--force", q],
                              prefix=_tmpfs_prefix(tmpfs, tag, size, mode))
    fl = Fleet(specs, busy=2)
    fl.tmpfs = tmpfs  # type: ignore[attr-defined]
    yield fl
    fl.close()


def assert_clean_stop(run: CliRun, code: int, elapsed: float, signame: str) -> None:
    """The checks every signalled run must pass."""
    after = run.after_signal()
    assert code == 128 + getattr(signal, signame), (code, run.stderr())
    assert elapsed < EXIT_WITHIN_S, f"exit took {elapsed:.2f} s"
    assert len(after) == 1, after
    assert after[0].startswith(f"redysim: interrupted by {signame}"), after
    assert "Traceback" not in run.stderr()
    assert run.leftovers() == [], "processes of the run are still alive"


def test_sigint_during_capture(fleet: Fleet, dirs: Path) -> None:
    run = fleet["capture"]
    code, elapsed = run.finish()
    assert_clean_stop(run, code, elapsed, "SIGINT")
    assert not (dirs / "capture").exists() and staging_left(dirs, "capture") == []


def test_sigterm_to_main_process_during_simulation(fleet: Fleet, dirs: Path) -> None:
    """SIGTERM to the parent alone: it must kill both paused workers itself."""
    run = fleet["simulation"]
    code, elapsed = run.finish()
    assert run.notes["alive"] == 3  # the parent and its two workers, before the signal
    assert_clean_stop(run, code, elapsed, "SIGTERM")
    assert not (dirs / "simulation").exists() and staging_left(dirs, "simulation") == []


def test_sigint_while_workers_send_traces(fleet: Fleet, dirs: Path, before) -> None:
    """With --trace, both workers blocked half-way through sending their results (the
    moment the old multiprocessing pool hung for minutes): Ctrl-C stops at once and the
    existing results folder is untouched."""
    run = fleet["transfer"]
    code, elapsed = run.finish()
    assert_clean_stop(run, code, elapsed, "SIGINT")
    assert snapshot(dirs / "old1") == before["old1"] and staging_left(dirs, "old1") == []


def test_sigterm_while_writing_keeps_existing_results(fleet: Fleet, dirs: Path,
                                                      before) -> None:
    """Stopped when the results' staging folder exists (--force over an existing one)."""
    run = fleet["writing"]
    code, elapsed = run.finish()
    assert len(run.notes["staged"]) == 1
    assert_clean_stop(run, code, elapsed, "SIGTERM")
    assert snapshot(dirs / "old2") == before["old2"] and staging_left(dirs, "old2") == []


def test_sigint_mid_write_with_trace(fleet: Fleet, dirs: Path, before) -> None:
    """No hook: Ctrl-C as soon as the first result file appears in the staging folder."""
    run = fleet["midwrite"]
    code, elapsed = run.finish()
    assert run.signalled_at is not None, f"finished before writing:\n{run.stderr()}"
    assert_clean_stop(run, code, elapsed, "SIGINT")
    assert snapshot(dirs / "old3") == before["old3"] and staging_left(dirs, "old3") == []


def test_signal_at_a_random_moment_of_the_simulation(fleet: Fleet, dirs: Path) -> None:
    """No hook: SIGINT or SIGTERM at a seeded-random delay after the simulation starts
    (64 images, so the workers are busy)."""
    run = fleet["random"]
    code, elapsed = run.finish()
    if run.signalled_at is None:
        pytest.skip("the simulation finished before the signal")
    assert_clean_stop(run, code, elapsed, RANDOM_SIGNAL)
    assert not (dirs / "random").exists() and staging_left(dirs, "random") == []


def test_worker_killed_with_sigkill(fleet: Fleet, dirs: Path) -> None:
    """A worker SIGKILLed (as by the OOM killer): the parent names its pipeline and pid,
    stops the other worker and exits 1 without hanging. The first workers of a first run
    are its capture passes, side by side (simulator.runner.flow.pass_workers): the error
    then names the pipelines of the killed pass."""
    run = fleet["sigkill"]
    code, elapsed = run.finish()
    after = run.after_signal()
    assert code == 1, run.stderr()
    assert elapsed < EXIT_WITHIN_S, f"exit took {elapsed:.2f} s"
    assert len(after) == 1 and after[0].startswith(("redysim: error: pipeline '",
                                                    "redysim: error: capture of '")), after
    assert f"(pid {run.notes['victim']}) was killed by SIGKILL" in after[0]
    assert "Traceback" not in run.stderr()
    assert run.leftovers() == []
    assert not (dirs / "killed").exists() and staging_left(dirs, "killed") == []


def test_nothing_left_behind_by_any_run(fleet: Fleet, dirs: Path) -> None:
    """Once every run has ended: only the three existing results folders remain."""
    for name in fleet.specs:
        fleet[name].finish()
    assert sorted(p.name for p in dirs.iterdir()) == ["old1", "old2", "old3"]


# ------------------------------------------------------------------ full and read-only disks
def _tmpfs_outcome(fleet: Fleet, tag: str) -> tuple[int, list[str], list[str], str, str]:
    if tag not in fleet.specs:
        pytest.skip("cannot mount a private tmpfs here (unshare -rm); "
                    "test_disk_full_injected and tests/test_outdir.py cover the same paths")
    run = fleet[tag]
    code, _ = run.finish(timeout=300)
    tmp = fleet.tmpfs  # type: ignore[attr-defined]
    entries, files = (tmp / f"{tag}-report.txt").read_text().split("---\n")
    return code, run.stderr().strip().splitlines(), entries.split(), files, _cksums(
        tmp / f"{tag}-src")


def test_disk_full_real_tmpfs(fleet: Fleet) -> None:
    """A 600 KB tmpfs holding an existing results folder: the new results do not fit."""
    code, lines, entries, files, expected = _tmpfs_outcome(fleet, "full")
    assert code == 1, lines
    assert len(lines) == 1 and "No space left on device" in lines[0], lines
    assert "existing folder was left as it was" in lines[0]
    assert entries == ["res"]  # no staging folder left
    assert files == expected  # the existing results, byte for byte


def test_read_only_results_folder_real(fleet: Fleet) -> None:
    """A read-only file system: refused before any work, in one line."""
    code, lines, entries, files, expected = _tmpfs_outcome(fleet, "ro")
    assert code == 2, lines
    assert len(lines) == 1 and "Read-only file system" in lines[0], lines
    assert entries == ["res"] and files == expected


def _no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any start of the real work fail the test."""
    import simulator.runner.flow as flow

    def forbidden(*a, **k):
        raise AssertionError("the run started")

    monkeypatch.setattr(flow, "run", forbidden)
    monkeypatch.setattr(flow, "prepare", forbidden)


def test_read_only_folder_chmod(scenario: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions (the tmpfs test covers read-only)")
    fake_results(tmp_path / "res")
    tmp_path.chmod(0o555)
    try:
        _no_run(monkeypatch)
        rc = main(["run", str(scenario), "-o", str(tmp_path / "res"), "--force"])
    finally:
        tmp_path.chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 2 and "Permission denied" in err and len(err.strip().splitlines()) == 1


def test_disk_full_injected(scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    """ENOSPC injected when writing starts: one line, exit 1, the existing folder
    untouched and the staging folder gone (test_outdir covers failures mid-folder)."""
    out = tmp_path / "res"
    fake_results(out)
    before = snapshot(out)
    monkeypatch.setenv("REDYSIM_TEST_FAULT", "write:enospc")
    rc = main(["run", str(scenario), "-o", str(out), "--force", "--quiet", "--images", "1"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.startswith(f"redysim: error: {out}: cannot write the results: No space left")
    assert len(err.strip().splitlines()) == 1
    assert snapshot(out) == before and staging_left(tmp_path) == []


# ------------------------------------------------------------------ output paths, before work
def test_output_below_a_file_is_refused_before_work(scenario: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile.txt").write_text("x")
    _no_run(monkeypatch)
    rc = main(["run", str(scenario), "-o", str(tmp_path / "afile.txt" / "sub")])
    err = capsys.readouterr().err
    assert rc == 2 and "afile.txt is a file, not a folder" in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "afile.txt").read_text() == "x"


def test_output_that_is_a_file_is_refused(scenario: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile.txt").write_text("x")
    _no_run(monkeypatch)
    rc = main(["run", str(scenario), "-o", str(tmp_path / "afile.txt"), "--force"])
    assert rc == 2 and "is not a folder" in capsys.readouterr().err


# ------------------------------------------------------------------ sweeps and studies
#: a sweep of two points of one pipeline each (static, ReDy) on the digits CNN, analytic
#: fidelity, one worker; and a study of that sweep
_SWEEP_PIPES = [{"static": {"policy": "static"}}, {"redy": {"policy": "redy", "k": 3.0}}]


@pytest.fixture(scope="module")
def sweep_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifact cache of the signalled sweeps (the lone run fills in the trace)."""
    return tmp_path_factory.mktemp("sweep-cache")


@pytest.fixture(scope="module")
def sweep_files(scenario: Path, sweep_cache: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sweeps")
    data = yaml.safe_load(scenario.read_text())
    data["simulation"] = {"fidelity": "analytic", "images": 1}
    (base / "scen.yaml").write_text(yaml.safe_dump(data))
    (base / "two.yaml").write_text(yaml.safe_dump({
        "name": "two", "scenario": "scen.yaml",
        "axes": [{"name": "policy", "key": "pipelines", "values": _SWEEP_PIPES}]}))
    (base / "one.yaml").write_text(yaml.safe_dump({
        "name": "one", "scenario": "scen.yaml",
        "axes": [{"name": "policy", "key": "pipelines", "values": _SWEEP_PIPES[:1]}]}))
    (base / "study.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "doc": "page.md", "figures": "fig", "results": "res", "workers": 1,
        "networks": ["two.yaml"]}))
    _finished_static_point(base / "two.yaml", base / "o-task", sweep_cache)
    return base


def _finished_static_point(sweep: Path, out: Path, cache: Path) -> None:
    """A sweep folder of *sweep* whose static point is done (as a sweep writes it, from a
    lone run): rerunning the sweep there runs the ReDy point alone."""
    from simulator.explore.sweep.run import _prepare_folder
    from simulator.explore.sweep.spec import POINTS_DIR, build_point, plan_sweep
    from simulator.explore.sweep.tasks import write_point
    from simulator.runner.cache import ArtifactCache
    from simulator.runner.flow import run

    plan = plan_sweep(sweep)
    _prepare_folder(plan, out)
    p = plan.points[0]
    sc, hw = build_point(plan.scenario_path, p.scenario_changes, p.hardware_changes)
    sc.simulation.workers = 1
    task = {"id": p.id, "axes": p.axes, "changes": p.changes, "hash": p.hash,
            "out": str(out / POINTS_DIR / p.id), "plots": False}
    rr = run(sc, hardware=hw, cache=ArtifactCache(cache / "artifacts"))
    write_point(rr, task, {}, time.perf_counter())
    _KEPT["static"] = snapshot(out / POINTS_DIR / p.id)


_KEPT: dict[str, dict[str, bytes]] = {}


def on_fault_file(path: Path, pattern: str, sig: int, group: bool = False,
                  line: str | None = None):
    """Trigger: a Dask worker's fault hook wrote *pattern* to *path* (and stderr has a
    line matching *line*) → send *sig*."""
    from faultkit import wait_for_file_line

    def trigger(run: CliRun) -> None:
        wait_for_file_line(path, pattern, run)
        if line is not None:
            run.wait_for(line)
        run.send(sig, group)
    return trigger


@pytest.fixture(scope="module")
def sweep_fleet(sweep_files: Path, sweep_cache: Path):
    """The signalled sweeps and studies, in the background (two busy at a time)."""
    b = sweep_files
    cache = str(sweep_cache)

    def env(case: str) -> dict[str, str]:
        return {"REDYSIM_TEST_FAULT_FILE": str(b / f"faults-{case}.txt"),
                "REDYSIM_CACHE": cache}
    common = ["--workers", "1"]
    study = ["study", str(b / "study.yaml"), "--doc", str(b / "page.md"), "--figures",
             str(b / "fig")]
    specs: dict[str, dict] = {
        # the cluster's processes are started, not ready yet: Ctrl-C
        "startup": dict(args=["sweep", str(b / "two.yaml"), "-o", str(b / "o-startup"),
                              *common], fault="sweep-start:pause", env=env("startup"),
                        trigger=on_line("paused at sweep-start", signal.SIGINT, group=True)),
        # the static point done (by an earlier run), the ReDy point's simulation paused in
        # the worker: SIGTERM
        "task": dict(args=["sweep", str(b / "two.yaml"), "-o", str(b / "o-task"), *common],
                     fault="sweep-simulate-redy:pause", env=env("task"),
                     trigger=on_fault_file(b / "faults-task.txt",
                                           "paused at sweep-simulate-redy", signal.SIGTERM)),
        # the table's temporary file written, not renamed yet: Ctrl-C
        "table": dict(args=["sweep", str(b / "one.yaml"), "-o", str(b / "o-table"),
                            *common], fault="sweep-table:pause", env=env("table"),
                      trigger=on_line("paused at sweep-table", signal.SIGINT, group=True)),
        "study-startup": dict(args=[*study, "--results", str(b / "r-startup")],
                              fault="sweep-start:pause", env=env("study-startup"),
                              trigger=on_line("paused at sweep-start", signal.SIGINT,
                                              group=True)),
        "study-task": dict(args=[*study, "--results", str(b / "r-task")],
                           fault="sweep-simulate-redy:pause", env=env("study-task"),
                           trigger=on_fault_file(b / "faults-study-task.txt",
                                                 "paused at sweep-simulate-redy",
                                                 signal.SIGINT, group=True)),
    }
    fl = Fleet(specs, busy=2)
    yield fl
    fl.close()


def assert_clean_sweep_stop(run: CliRun, code: int, elapsed: float, signame: str,
                            what: str = "sweep") -> None:
    """One line, 128 + N, within 2 s, no traceback or multiprocessing warning, nothing
    of the run alive (its Dask scheduler and workers included)."""
    after = run.after_signal()
    assert code == 128 + getattr(signal, signame), (code, run.stderr_timed())
    assert elapsed < EXIT_WITHIN_S, f"exit took {elapsed:.2f} s:\n{run.stderr_timed()}"
    assert len(after) == 1, after
    assert after[0].startswith(f"redysim: {what} interrupted by {signame}; "), after
    err = run.stderr()
    assert "Traceback" not in err and "resource_tracker" not in err and "8787" not in err
    assert run.leftovers() == [], "processes of the run are still alive"


def test_sweep_sigint_while_its_cluster_starts(sweep_fleet: Fleet, sweep_files: Path) -> None:
    """Issue 19: this Ctrl-C was lost (the sweep ran to the end and exited 0)."""
    run = sweep_fleet["startup"]
    code, elapsed = run.finish()
    assert_clean_sweep_stop(run, code, elapsed, "SIGINT")
    assert run.after_signal()[0].endswith("nothing written")
    assert not (sweep_files / "o-startup").exists()


def test_sweep_sigterm_during_a_task_keeps_finished_points(sweep_fleet: Fleet,
                                                           sweep_files: Path) -> None:
    """The static point finished earlier; the ReDy point's task is stopped mid-way."""
    points = sweep_files / "o-task" / "points"
    kept = _KEPT["static"]
    run = sweep_fleet["task"]
    code, elapsed = run.finish()
    assert_clean_sweep_stop(run, code, elapsed, "SIGTERM")
    assert snapshot(points / "policy=static") == kept
    assert sorted(p.name for p in points.iterdir()) == ["policy=static"]  # nothing half-done
    with (sweep_files / "o-task" / "sweep.csv").open() as f:
        assert [r["point"] for r in csv.DictReader(f)] == ["policy=static"]


def test_sweep_sigint_while_writing_its_table(sweep_fleet: Fleet, sweep_files: Path) -> None:
    run = sweep_fleet["table"]
    code, elapsed = run.finish()
    assert_clean_sweep_stop(run, code, elapsed, "SIGINT")
    out = sweep_files / "o-table"
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary table
    assert not (out / "sweep.csv").exists()
    assert json.loads((out / "points" / "policy=static" / "point.json").read_text())[
        "status"] == "ok"


def test_study_sigint_while_its_cluster_starts(sweep_fleet: Fleet) -> None:
    """Issue 19: this Ctrl-C was lost (the study ran to the end and exited 0)."""
    run = sweep_fleet["study-startup"]
    code, elapsed = run.finish()
    assert_clean_sweep_stop(run, code, elapsed, "SIGINT", what="study")


def test_study_sigint_during_a_task(sweep_fleet: Fleet, sweep_files: Path) -> None:
    run = sweep_fleet["study-task"]
    code, elapsed = run.finish()
    assert_clean_sweep_stop(run, code, elapsed, "SIGINT", what="study")
    assert not (sweep_files / "page.md").exists()
