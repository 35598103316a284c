"""Where the seconds of the README quick start go (``redysim run quickstart.yaml``).

Usage::

    .venv/bin/python bench/quickstart_time.py [--runs 3] [--pythonpath DIR] [--label L]
                                              [--images N] [--scenario SCENARIO]
                                              [--fidelity F] [--warm]

Runs ``python -m simulator.cli.main run SCENARIO -o TMP --force --quiet`` *runs* times, each
in a fresh process (``--pythonpath`` puts another checkout's code first, e.g. the code
before a change, for a before/after comparison on the same machine and load). Per run it
records the process wall time, its CPU time (user + sys of the process and the workers
it waited for, from ``os.wait4``), the load average before and after, and the phases of
summary.json ``wall_s``: startup = process wall − the CLI's own wall clock (imports and
scenario load), trace (build and trace the model), map, plan (work plan, routes and
packets, once per run), precision (capture and policies), simulate:<pipeline> (in worker
processes, overlapping the capture and each other) and write (CSVs, plots, report).
Prints a table and the medians.

Every run has an artifact cache of its own (``$REDYSIM_CACHE``, a temporary folder): by
default an empty one, so each run traces and captures (a first run, and what code older
than the cache in ``redysim run`` always did); with ``--warm`` one unmeasured run fills a
cache that the measured runs then read (a rerun). ``--fidelity analytic`` leaves little
but the fixed costs (imports, trace, map, capture, writing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.runner.estimate import loadavg

ROOT = Path(__file__).resolve().parents[1]


def one_run(scenario: Path, pythonpath: str | None, images: int | None = None,
            fidelity: str | None = None, cache: Path | None = None) -> dict:
    """One CLI run in a fresh process; its figures. *cache*: the artifact cache folder
    (default a new, empty one)."""
    tmp = Path(tempfile.mkdtemp(prefix="redysim-qs-"))
    out = tmp / "out"
    env = dict(os.environ)
    env["REDYSIM_CACHE"] = str(cache if cache is not None else tmp / "cache")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, "-m", "simulator.cli.main", "run", str(scenario), "-o", str(out),
           "--force", "--quiet"] + (["--images", str(images)] if images else []) + (
               ["--fidelity", fidelity] if fidelity else [])
    la0 = loadavg()
    try:
        with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
            t0 = time.perf_counter()
            # `python -m` puts the working directory first on sys.path: run from the
            # checkout whose code is measured
            p = subprocess.Popen(cmd, stdout=so, stderr=se, cwd=pythonpath or ROOT, env=env)
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            so.seek(0)
            se.seek(0)
            text, err = so.read().decode(), se.read().decode()
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err}")
        summary = json.loads((out / "summary.json").read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cli_wall = next(float(line.rsplit("wall time", 1)[1].split()[0]) for line in
                    text.splitlines() if "(wall time" in line)
    ws = summary["wall_s"]
    pipes = summary["pipelines"]
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "startup_s": wall - cli_wall,
            "phases": ws, "load_before": la0, "load_after": loadavg(),
            "latency_us": {n: p["latency_ns"] / 1e3 for n, p in pipes.items()},
            "throughput_ips": {n: p["throughput_ips"] for n, p in pipes.items()},
            "measured_ips": {n: p.get("throughput_measured_ips") for n, p in pipes.items()},
            "bound_ips": {n: p.get("throughput_bound_ips") for n, p in pipes.items()},
            "images": {n: p["images"] for n, p in pipes.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pythonpath", default=None, help="code to run instead of this checkout")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--images", type=int, default=None, help="override simulation.images")
    ap.add_argument("--scenario", default=str(ROOT / "configs" / "scenarios" /
                                              "quickstart.yaml"))
    ap.add_argument("--fidelity", choices=["plane", "group", "analytic"],
                    help="override simulation.fidelity")
    ap.add_argument("--warm", action="store_true",
                    help="measure reruns: one unmeasured run fills the artifact cache first")
    ap.add_argument("--out", default="/tmp/redysim-quickstart-time.json")
    args = ap.parse_args(argv)
    rows = []
    cache = None
    if args.warm:
        cache = Path(tempfile.mkdtemp(prefix="redysim-qs-cache-"))
        one_run(Path(args.scenario), args.pythonpath, args.images, args.fidelity, cache)
    for i in range(args.runs):
        r = one_run(Path(args.scenario), args.pythonpath, args.images, args.fidelity, cache)
        rows.append(r)
        ph = r["phases"]
        sims = {k.split(":", 1)[1]: round(v, 2) for k, v in ph.items() if k.startswith("sim")}
        print(f"[{args.label}] run {i + 1}: wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s, "
              f"startup {r['startup_s']:.1f}, trace {ph.get('trace', 0):.2f}, map "
              f"{ph.get('map', 0):.2f}, plan {ph.get('plan', 0):.2f}, precision "
              f"{ph.get('precision', 0):.2f}, simulate {sims}, write {ph.get('write', 0):.2f};"
              f" load {r['load_before']} -> {r['load_after']}", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in ("wall_s", "cpu_s", "startup_s")}
    phases = sorted({k for r in rows for k in r["phases"]})
    med_ph = {k: statistics.median(r["phases"].get(k, 0.0) for r in rows) for k in phases}
    print(f"[{args.label}] median of {len(rows)}: wall {med['wall_s']:.1f} s, cpu "
          f"{med['cpu_s']:.1f} s, startup {med['startup_s']:.1f} s, "
          + ", ".join(f"{k} {v:.2f}" for k, v in med_ph.items()))
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    Path(args.out).write_text(json.dumps({"label": args.label, "runs": rows,
                                          "median": {**med, "phases": med_ph}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
