"""Sweep benchmark: the 12-point ResNet-18 sweep with 1 and 2 Dask workers against a lone
``redysim run`` (issue 11 target: after the first point, a point costs at most its
simulation plus 1 s).

::

    .venv/bin/python bench/sweep_bench.py [--workers 1 2] [--out /tmp/redysim-sweep-bench.json]

For each worker count the sweep runs as ``redysim sweep bench/sweep_resnet18.yaml`` in a
fresh subprocess with a fresh (cold) artifact cache and output folder, so the first point
pays the trace and every group layout pays one forward pass per policy; the wall time is
the process's, start to exit (imports, validation, cluster start, points, table and
plots). Per point, ``point.json`` gives the point's own time (``point_s``: build the
scenario, load the cached artifacts or compute them, simulate, write the folder) and its
simulation time; *overhead* = point time - simulation time.

The lone run is ``redysim run configs/scenarios/quickstart.yaml --quiet`` (both pipelines,
two forked processes), also a fresh subprocess. The load average (``/proc/loadavg``) is
printed before and after every measurement: the machine may be shared, so ratios are
more telling than seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.runner.estimate import loadavg

ROOT = Path(__file__).resolve().parents[1]
REDYSIM = str(Path(sys.executable).with_name("redysim"))
SWEEP = ROOT / "bench" / "sweep_resnet18.yaml"
SCENARIO = ROOT / "configs" / "scenarios" / "quickstart.yaml"


def timed(cmd: list[str]) -> tuple[float, str, str]:
    """Wall time of *cmd* (a fresh process), and the load average before / after."""
    before = loadavg()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, before, loadavg()


def lone_run(tmp: Path) -> dict:
    out = tmp / "lone"
    wall, before, after = timed([REDYSIM, "run", str(SCENARIO), "-o", str(out), "--force",
                                 "--quiet"])
    summary = json.loads((out / "summary.json").read_text())
    sim = {k: v for k, v in summary["wall_s"].items() if k.startswith("simulate:")}
    return {"command": f"redysim run {SCENARIO.relative_to(ROOT)} --quiet", "wall_s": wall,
            "phases": summary["wall_s"], "simulate_s": sim, "load_before": before,
            "load_after": after}


def sweep(tmp: Path, workers: int) -> dict:
    out, cache = tmp / f"sweep-{workers}", tmp / f"cache-{workers}"
    cmd = [REDYSIM, "sweep", str(SWEEP), "-o", str(out), "--workers", str(workers),
           "--cache", str(cache), "--quiet"]
    wall, before, after = timed(cmd)
    points = []
    for folder in sorted((out / "points").iterdir()):
        info = json.loads((folder / "point.json").read_text())
        sim = sum(v for k, v in info["wall_s"].items() if k.startswith("simulate:"))
        computed = sorted({t["kind"] for t in info.get("tasks", []) if t.get("computed")})
        points.append({"id": info["id"], "status": info["status"], "point_s": info["point_s"],
                       "simulate_s": sim, "overhead_s": info["point_s"] - sim,
                       "misses": computed, "phases": info["wall_s"]})
    # points whose tasks computed nothing (every artifact from the cache); point_s counts
    # the tasks a point shares in full (docs/sweeps.md)
    warm = [p for p in points if not p["misses"]]
    return {"command": " ".join(["redysim", *cmd[1:]]), "workers": workers, "wall_s": wall,
            "load_before": before, "load_after": after, "points": points,
            "warm_points": len(warm),
            "warm_overhead_s": {"median": statistics.median(p["overhead_s"] for p in warm),
                                "max": max(p["overhead_s"] for p in warm)} if warm else None,
            "sum_point_s": sum(p["point_s"] for p in points),
            "sum_simulate_s": sum(p["simulate_s"] for p in points)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default="/tmp/redysim-sweep-bench.json")
    args = ap.parse_args()
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="redysim-sweep-bench-") as t:
        tmp = Path(t)
        res["lone"] = lone = lone_run(tmp)
        print(f"lone run: {lone['wall_s']:.1f} s (simulation {lone['simulate_s']}), "
              f"load {lone['load_before']} -> {lone['load_after']}")
        for w in args.workers:
            s = sweep(tmp, w)
            res[f"sweep_{w}"] = s
            n = len(s["points"])
            print(f"\n{s['command']}")
            print(f"  wall {s['wall_s']:.1f} s for {n} points = {s['wall_s'] / n:.2f} s per "
                  f"point; {s['wall_s'] / lone['wall_s']:.2f} x a lone run; "
                  f"load {s['load_before']} -> {s['load_after']}")
            print(f"  {'point':<48}{'point s':>9}{'sim s':>8}{'over s':>8}  computed")
            for p in s["points"]:
                print(f"  {p['id']:<48}{p['point_s']:9.2f}{p['simulate_s']:8.2f}"
                      f"{p['overhead_s']:8.2f}  {p['misses'] or '-'}")
            if s["warm_overhead_s"]:
                print(f"  {s['warm_points']} points fully from the cache: overhead median "
                      f"{s['warm_overhead_s']['median']:.2f} s, max "
                      f"{s['warm_overhead_s']['max']:.2f} s (target <= 1 s)")
        if len(args.workers) == 2:
            a, b = (res[f"sweep_{w}"]["wall_s"] for w in args.workers)
            print(f"\nspeed-up {args.workers[0]} -> {args.workers[1]} workers: {a / b:.2f} x")
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(f"figures: {args.out}")


if __name__ == "__main__":
    main()
