"""Speed and memory benchmarks of redysim, every case in a fresh process.

Usage::

    .venv/bin/python bench/run_benchmarks.py [--quick] [--cases engine,e2e,analytic,trace]
                                             [--out /tmp/redysim-bench.json]

Cases (each run is its own subprocess, so peak RSS is per run):

- ``engine``: ResNet-18 (quickstart.yaml), one pipeline at a time, ``group`` and ``plane``
  fidelity, through the Python API in a child process. SimPy events = ``next(env._eid)``
  after ``ChipSimulation.run`` (simpy numbers every scheduled event from an
  ``itertools.count`` and ``env.run()`` without ``until`` drains the queue, so scheduled =
  processed); the time is that of ``ChipSimulation.run`` alone (the event loop, without
  the plan building and the analytic sizing pass). Lane MVMs = the pipeline's ``groups``.
- ``e2e``: ``redysim run SCENARIO --quiet -o TMP --force [--images N]`` for ResNet-18 and
  VGG-16, both pipelines, ``group`` fidelity, 1 and 4 images: process wall time (start to
  exit: imports, tracing, precision, simulation, writing results and plots), the phases
  of summary.json ``wall_s``, and peak RSS of the process (``ru_maxrss`` from
  ``os.wait4``, the same figure as ``getrusage(RUSAGE_SELF)`` at the child's end).
- ``analytic``: the same CLI with ``--fidelity analytic`` (1 image); group / analytic ratio
  of the simulation phase (``wall_s['simulate:*']``), group taken from ``e2e`` when it ran.
- ``trace``: the CLI with ``--trace`` (1 image): trace.json bytes, events, sampling and
  write time from summary.json ``trace``.

``--quick`` keeps ResNet-18 with 1 image only. The load average (/proc/loadavg) is
recorded before and after each run; the JSON goes to ``--out`` (not into the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.runner.estimate import loadavg

ROOT = Path(__file__).resolve().parents[1]
PY = Path(sys.executable)
REDYSIM = PY.parent / "redysim"
SCENARIOS = {"resnet18": ROOT / "configs" / "scenarios" / "quickstart.yaml",
             "vgg16": ROOT / "configs" / "scenarios" / "vgg16.yaml"}
CASES = ("engine", "e2e", "analytic", "trace")
TARGETS = {"resnet18": 15.0, "vgg16": 60.0}  # end to end, both pipelines, seconds
RSS_TARGET_MB = 3 * 1024
TRACE_TARGET_MB = 200


def _wait_run(cmd: list[str]) -> tuple[float, float, str, str, int]:
    """Run *cmd*; return (wall s, peak RSS MB, stdout, stderr, exit code)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (wall, usage.ru_maxrss / 1024, out.read().decode(), err.read().decode(),
                p.returncode)


# ---------------------------------------------------------------- child: engine rate
def engine_child(model: str, fidelity: str, pipeline: str) -> None:
    """Runs in a fresh process: one pipeline, prints one JSON line."""
    from simulator.engine import chip as engine
    from simulator.runner.flow import run
    from simulator.runner.scenario import load_scenario

    stats: dict[str, float] = {}
    orig = engine.ChipSimulation.run

    def timed_run(self, *a, **kw):
        t = time.perf_counter()
        res = orig(self, *a, **kw)
        stats["loop_s"] = time.perf_counter() - t
        stats["events"] = next(self.env._eid)  # events scheduled (= processed, queue drained)
        return res

    engine.ChipSimulation.run = timed_run
    sc = load_scenario(SCENARIOS[model])
    sc.simulation.fidelity = fidelity
    sc.simulation.images = 1
    sc.pipelines = {pipeline: sc.pipelines[pipeline]}
    rr = run(sc)
    pr = rr.pipelines[pipeline]
    groups = pr.counts()["groups"]
    print(json.dumps({
        "model": model, "fidelity": fidelity, "pipeline": pipeline,
        "events": int(stats["events"]), "loop_s": stats["loop_s"],
        "simulate_s": rr.wall_s[f"simulate:{pipeline}"], "groups": groups,
        "bit_planes": pr.counts()["bit_planes"], "latency_ns": pr.latency_ns,
        "events_per_s": stats["events"] / stats["loop_s"],
        "mvms_per_s": groups / stats["loop_s"],
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def case_engine(models: list[str]) -> list[dict]:
    rows = []
    for model in models:
        for fidelity in ("group", "plane"):
            for pipeline in ("static", "redy"):
                la0 = loadavg()
                wall, rss, out, err, rc = _wait_run(
                    [str(PY), str(Path(__file__).resolve()), "--child-engine",
                     model, fidelity, pipeline])
                if rc:
                    raise RuntimeError(f"engine child failed ({rc}):\n{err}")
                row = json.loads(out.strip().splitlines()[-1])
                row.update(process_s=wall, peak_rss_mb=rss, load_before=la0,
                           load_after=loadavg())
                rows.append(row)
                _progress(f"engine {model} {fidelity} {pipeline}: "
                          f"{row['events_per_s']:,.0f} events/s ({row['events']:,} events, "
                          f"{row['loop_s']:.2f} s) load {row['load_after']}")
    return rows


# ---------------------------------------------------------------- CLI cases
def cli_run(model: str, images: int = 1, fidelity: str | None = None,
            trace: bool = False) -> dict:
    """One ``redysim run`` in a fresh process; figures from its summary.json."""
    tmp = Path(tempfile.mkdtemp(prefix="redysim-bench-"))
    out_dir = tmp / "out"
    cmd = [str(REDYSIM), "run", str(SCENARIOS[model]), "--quiet", "-o", str(out_dir),
           "--force", "--images", str(images)]
    if fidelity:
        cmd += ["--fidelity", fidelity]
    if trace:
        cmd.append("--trace")
    la0 = loadavg()
    try:
        wall, rss, out, err, rc = _wait_run(cmd)
        if rc:
            raise RuntimeError(f"{' '.join(cmd)} failed ({rc}):\n{err}")
        summary = json.loads((out_dir / "summary.json").read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ws = summary["wall_s"]
    row = {"model": model, "images": images, "fidelity": fidelity or "group",
           "trace": trace, "process_s": wall, "peak_rss_mb": rss, "wall_s": ws,
           "phases_s": sum(ws.values()), "load_before": la0, "load_after": loadavg()}
    # startup (imports, scenario) + writing results/plots = process time - phases
    row["other_s"] = wall - row["phases_s"]
    for line in out.splitlines():  # "results in DIR/  (wall time X s)": after imports
        if "(wall time" in line:
            row["cli_wall_s"] = float(line.rsplit("wall time", 1)[1].split()[0])
            # summary.json times the writing itself (pipelines may run in parallel, so
            # the phases need not add up to the wall time)
            row["write_s"] = ws.get("write", row["cli_wall_s"] - row["phases_s"])
            row["startup_s"] = wall - row["cli_wall_s"]
    if "trace" in summary:
        row["trace_info"] = summary["trace"]
    row["latency_ns"] = {n: p.get("latency_ns") for n, p in summary["pipelines"].items()}
    return row


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def case_e2e(models: list[str], images: list[int]) -> list[dict]:
    rows = []
    for model in models:
        for n in images:
            row = cli_run(model, n)
            rows.append(row)
            _progress(f"e2e {model} images={n}: {row['process_s']:.1f} s, "
                      f"{row['peak_rss_mb']:.0f} MB, load {row['load_after']}")
    return rows


def case_analytic(models: list[str], e2e: list[dict]) -> list[dict]:
    rows = []
    for model in models:
        group = next((r for r in e2e if r["model"] == model and r["images"] == 1), None)
        if group is None:
            group = cli_run(model, 1)
        ana = cli_run(model, 1, fidelity="analytic")
        rows.append({"model": model, "group": group, "analytic": ana})
        _progress(f"analytic {model}: {ana['process_s']:.1f} s, load {ana['load_after']}")
    return rows


def case_trace(models: list[str]) -> list[dict]:
    rows = []
    for model in models:
        row = cli_run(model, 1, trace=True)
        rows.append(row)
        _progress(f"trace {model}: {row['trace_info']['bytes'] / 1e6:.1f} MB, "
                  f"load {row['load_after']}")
    return rows


# ---------------------------------------------------------------- tables
def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _ok(value: float, limit: float) -> str:
    return "ok" if value < limit else "MISSED"


def format_report(res: dict) -> str:
    parts = []
    if res.get("engine"):
        rows = []
        for r in res["engine"]:
            rows.append([r["model"], r["fidelity"], r["pipeline"], f"{r['events']:,}",
                         f"{r['loop_s']:.2f}", f"{r['events_per_s']:,.0f}",
                         f"{r['groups']:,}", f"{r['mvms_per_s']:,.0f}",
                         f"{r['events'] / r['groups']:.2f}" if r["groups"] else "-",
                         f"{r['peak_rss_mb']:.0f}", r["load_after"]])
        parts.append("### Engine rate (one pipeline, 1 image, event loop only)\n\n" + _table(
            ["model", "fidelity", "pipeline", "SimPy events", "loop s", "events/s",
             "lane MVMs", "MVMs/s", "events/MVM", "peak RSS MB", "load after"], rows))
    if res.get("e2e"):
        rows = []
        by = {(r["model"], r["images"]): r for r in res["e2e"]}
        for r in res["e2e"]:
            ws = r["wall_s"]
            st, rd = ws.get("simulate:static", 0.0), ws.get("simulate:redy", 0.0)
            one = by.get((r["model"], 1))
            rows.append([
                r["model"], str(r["images"]), f"{r['process_s']:.1f}",
                f"{r.get('startup_s', float('nan')):.1f}", f"{ws.get('trace', 0):.2f}",
                f"{ws.get('map', 0):.2f}", f"{ws.get('precision', 0):.2f}", f"{st:.2f}",
                f"{rd:.2f}", f"{rd / st:.2f}" if st else "-",
                f"{r.get('write_s', float('nan')):.2f}",
                f"{r['process_s'] / one['process_s']:.2f}" if one else "-",
                f"{r['peak_rss_mb']:.0f}",
                f"{_ok(r['process_s'], TARGETS[r['model']])} (<{TARGETS[r['model']]:.0f} s)",
                _ok(r["peak_rss_mb"], RSS_TARGET_MB), r["load_after"]])
        parts.append("### End to end (`redysim run`, static + redy, group fidelity)\n\n" + _table(
            ["model", "images", "process s", "startup s", "trace s", "map s", "precision s",
             "sim static s", "sim redy s", "redy/static", "write s", "vs 1 image",
             "peak RSS MB", "time target", "RSS < 3 GB", "load after"], rows))
    if res.get("analytic"):
        rows = []
        for r in res["analytic"]:
            g, a = r["group"]["wall_s"], r["analytic"]["wall_s"]
            for p in ("static", "redy"):
                k = f"simulate:{p}"
                rows.append([r["model"], p, f"{g[k]:.3f}", f"{a[k]:.3f}",
                             f"{g[k] / a[k]:.1f}", f"{r['analytic']['process_s']:.1f}",
                             r["analytic"]["load_after"]])
        parts.append("### group vs analytic (simulation phase, 1 image)\n\n" + _table(
            ["model", "pipeline", "group s", "analytic s", "group/analytic",
             "analytic process s", "load after"], rows))
    if res.get("trace"):
        rows = []
        for r in res["trace"]:
            t = r["trace_info"]
            mb = t["bytes"] / 1e6
            rows.append([r["model"], f"{mb:.1f}", f"{t['events']:,}", str(t["sample_every"]),
                         f"{t['write_s']:.2f}", f"{r['process_s']:.1f}",
                         f"{r['peak_rss_mb']:.0f}",
                         _ok(mb, TRACE_TARGET_MB) if r["model"] == "vgg16" else "-",
                         r["load_after"]])
        parts.append("### Trace (`--trace`, 1 image, both pipelines)\n\n" + _table(
            ["model", "trace.json MB", "events", "sample every", "write s", "process s",
             "peak RSS MB", "< 200 MB", "load after"], rows))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child-engine":
        engine_child(*argv[1:4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="ResNet-18 only, 1 image")
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated subset of {','.join(CASES)}")
    ap.add_argument("--out", default="/tmp/redysim-bench.json", help="JSON results file")
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = sorted(set(cases) - set(CASES))
    if bad:
        ap.error(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}")
    models = ["resnet18"] if args.quick else ["resnet18", "vgg16"]
    images = [1] if args.quick else [1, 4]
    res: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_start": loadavg(),
                 "cpus": os.cpu_count(), "python": sys.version.split()[0],
                 "quick": args.quick}
    if "engine" in cases:
        res["engine"] = case_engine(["resnet18"])
    if "e2e" in cases:
        res["e2e"] = case_e2e(models, images)
    if "analytic" in cases:
        res["analytic"] = case_analytic(models, res.get("e2e", []))
    if "trace" in cases:
        res["trace"] = case_trace(models)
    res["load_end"] = loadavg()
    print(format_report(res))
    print(f"\nload average at start {res['load_start']}, at end {res['load_end']}; "
          f"{res['cpus']} CPUs; Python {res['python']}")
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
