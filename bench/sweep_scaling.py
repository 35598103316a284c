"""Parallel efficiency of a sweep (issue 20): the same sweep on 1 worker and on N workers.

::

    .venv/bin/python bench/sweep_scaling.py                        # 24 points, 1 and 2 workers
    .venv/bin/python bench/sweep_scaling.py --workers 1 16 --points 96 --images 128
    .venv/bin/python bench/sweep_scaling.py --json /tmp/scaling.json
    .venv/bin/python bench/sweep_scaling.py --warm --workers 2 --images 8   # a rerun

The sweep: the digits CNN (``configs/scenarios/digits.yaml``: static, msb-trim and ReDy),
``--fidelity`` group and ``--images`` streamed images, over hardware that the mapper does
not read, so its graph is 1 trace, 1 mapping, 1 scales, 2 captures, 1 float accuracy,
then per point 1 plan, 3 simulations and 1 point task (``--points`` points, at least 24:
crossbars per ADC 1/2/4/8 x ADC rate 0.64/1.28 GS/s x router latency 1..K cycles).

For each worker count, in this process: a local cluster of that many workers
(:mod:`simulator.explore.sweep.cluster`, one thread each), started and ready (the
preload's imports done; torch is imported by the first task that needs it) before the
clock starts; a fresh artifact cache and output folder (``--warm``: filled first); then
``run_sweep`` on it, recording Dask's task stream. Figures:

- *wall*: from the first task's start to the last task's end (the tasks' own clocks, as
  ``point.json`` records them: the graph; the cluster's start-up and the client's table
  and plots are left out and printed apart as *command wall*);
- *task time*: the sum of the tasks' compute times; per kind, with their count;
- *speed-up* = wall(1) / wall(N); *efficiency* = task time(1) / (N x wall(N)) — the
  single-worker work over the N-worker capacity used (issue 20's definition);
- the CPU seconds of the cluster's processes (user + sys, /proc), the share of the
  workers' capacity they got (CPU s / (N x wall)) and the load average before and after:
  on a shared machine the efficiency is only as good as the cores that were free.

``--warm``: a rerun. Each worker count first runs the sweep once, untimed, on a cluster
of its own to fill its artifact cache, then the measured sweep runs on a fresh cluster
with that cache and a fresh output folder, so every trace, scales, capture and float task
reads its artifact (the points are hardware-only: no forward pass). Printed beside the
figures above: the cluster's start (process start to every worker ready: the preload's
imports), the wall time per point, and per worker whether torch was imported and its
resident memory (``VmRSS``, and the peak ``VmHWM``) after the sweep.

Targets (issue 20): >= 85 % with 2 workers on 2 cores, >= 75 % with 16 workers on 16
cores. On 16 workers give the sweep enough work per worker (the serial start — trace,
capture — is a few seconds): e.g. ``--points 96 --images 128``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.explore.sweep.graph import KINDS, key_kind  # noqa: E402
from simulator.runner.estimate import loadavg  # noqa: E402


def sweep_file(folder: Path, points: int, images: int, fidelity: str) -> Path:
    """The benchmark's sweep file (see the module docstring), in *folder*."""
    scen = yaml.safe_load((ROOT / "configs" / "scenarios" / "digits.yaml").read_text())
    scen["hardware"] = str(ROOT / "configs" / "hardware" / "isaac8.yaml")
    scen["simulation"] = {"fidelity": fidelity, "images": images, "warmup_images": 1}
    (folder / "scen.yaml").write_text(yaml.safe_dump(scen))
    k = max(3, math.ceil(points / 8))
    (folder / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "scaling", "scenario": "scen.yaml",
        "axes": [{"key": "hardware.ima.crossbars_per_adc", "values": [1, 2, 4, 8]},
                 {"key": "hardware.ima.adc_rate_gsps", "values": [0.64, 1.28]},
                 {"key": "hardware.noc.router_latency_cycles",
                  "values": list(range(1, k + 1))}]}))
    return folder / "sweep.yaml"


def cpu_seconds(pids: list[int]) -> float:
    """User + system seconds of *pids* so far (/proc/PID/stat)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def worker_state() -> dict[str, Any]:
    """In a worker: whether torch is imported, and its resident memory (MB)."""
    out: dict[str, Any] = {"torch": "torch" in sys.modules}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def measure(plan: Any, workers: int, tmp: Path, warm: bool = False) -> dict[str, Any]:
    """One sweep on a ready local cluster of *workers* workers (see the docstring); *warm*:
    its artifact cache filled first by the same sweep on a cluster of its own."""
    from distributed import get_task_stream

    from simulator.explore.sweep.cluster import dask_client
    from simulator.explore.sweep.run import run_sweep

    cache = tmp / f"cache-{workers}"
    if warm:
        fill = run_sweep(plan, tmp / f"fill-{workers}", workers=workers,
                         cache_dir=str(cache), progress=False)
        assert not fill.failed, fill.failed
    t_start = time.perf_counter()
    with dask_client(None, workers) as client:
        client.wait_for_workers(workers, timeout=600)
        started = time.perf_counter() - t_start
        pids = client.redysim_cluster.pids  # the scheduler first, then the workers
        cpu0, load0 = cpu_seconds(pids), loadavg()
        sched0, own0 = cpu_seconds(pids[:1]), time.process_time()
        t0 = time.perf_counter()
        with get_task_stream(client) as ts:
            rep = run_sweep(plan, tmp / f"out-{workers}", scheduler=client.scheduler.address,
                            cache_dir=str(cache), progress=False)
        command = time.perf_counter() - t0
        cpu, load1 = cpu_seconds(pids) - cpu0, loadavg()
        sched, own = cpu_seconds(pids[:1]) - sched0, time.process_time() - own0
        state = client.run(worker_state)
    assert not rep.failed, rep.failed
    assert not warm or not rep.computed, rep.computed  # a rerun reads every artifact
    kinds: dict[str, dict[str, float]] = {}
    for rec in ts.data:
        kind = key_kind(rec["key"])
        k = kinds.setdefault(kind, {"count": 0, "compute_s": 0.0, "transfer_s": 0.0})
        k["count"] += 1
        for ss in rec["startstops"]:  # (durations: Dask shifts both ends by a clock offset)
            if ss["action"] == "compute":
                k["compute_s"] += ss["stop"] - ss["start"]
            elif ss["action"] == "transfer":
                k["transfer_s"] += ss["stop"] - ss["start"]
    # the span on one clock: every task's start and length as point.json records them
    first, last = math.inf, -math.inf
    for folder in (tmp / f"out-{workers}" / "points").iterdir():
        for t in json.loads((folder / "point.json").read_text())["tasks"]:
            first, last = min(first, t["start"]), max(last, t["start"] + t["seconds"])
    return {"workers": workers, "points": len(plan.points), "wall_s": last - first,
            "command_wall_s": command, "cluster_start_s": started,
            "task_s": sum(k["compute_s"] for k in kinds.values()),
            "transfer_s": sum(k["transfer_s"] for k in kinds.values()),
            "cluster_cpu_s": cpu, "scheduler_cpu_s": sched, "client_cpu_s": own,
            "load_before": load0, "load_after": load1, "warm": warm,
            "workers_state": list(state.values()), "client_torch": "torch" in sys.modules,
            "kinds": dict(sorted(kinds.items(), key=lambda kv: KINDS.index(kv[0])
                                 if kv[0] in KINDS else 99)),
            "tasks": rep.tasks}


def report(results: list[dict[str, Any]]) -> None:
    """Print the scaling table and the time per task kind."""
    one = next((r for r in results if r["workers"] == 1), None)
    print(f"\n{'workers':>7} {'wall s':>8} {'task s':>8} {'speed-up':>9} {'efficiency':>11} "
          f"{'cluster CPU s':>14} {'CPU got':>8} {'command s':>10}  load before -> after")
    for r in results:
        n = r["workers"]
        sp = one["wall_s"] / r["wall_s"] if one else float("nan")
        eff = one["task_s"] / (n * r["wall_s"]) if one else float("nan")
        got = r["cluster_cpu_s"] / (n * r["wall_s"])
        r["speed_up"], r["efficiency"], r["cpu_got"] = sp, eff, got
        print(f"{n:>7} {r['wall_s']:8.1f} {r['task_s']:8.1f} {sp:9.2f} {100 * eff:10.1f}% "
              f"{r['cluster_cpu_s']:14.1f} {100 * got:7.0f}% {r['command_wall_s']:10.1f}  "
              f"{r['load_before']} -> {r['load_after']}")
    print("(CPU got: the cluster's CPU seconds / (workers x wall): well below 100 %, the "
          "workers waited for cores that other processes held)")
    for r in results:
        ratio = (f"; CPU s of 1 worker / CPU s here = "
                 f"{one['cluster_cpu_s'] / r['cluster_cpu_s']:.2f}" if one else "")
        r["cpu_ratio"] = one["cluster_cpu_s"] / r["cluster_cpu_s"] if one else None
        print(f"{r['workers']} worker(s): of the cluster's {r['cluster_cpu_s']:.1f} CPU s the "
              f"scheduler took {r['scheduler_cpu_s']:.1f}; the client (this process, table "
              f"and plots included) {r['client_cpu_s']:.1f}{ratio}")
    print("\ntime per task kind (compute s; transfers between workers apart)")
    kinds = list(dict.fromkeys(k for r in results for k in r["kinds"]))
    head = "".join(f"{str(r['workers']) + ' w s':>10}{'share':>7}" for r in results)
    print(f"{'kind':<10}{'tasks':>6}{head}")
    for k in kinds:
        row = f"{k:<10}{results[0]['kinds'].get(k, {}).get('count', 0):>6}"
        for r in results:
            s = r["kinds"].get(k, {}).get("compute_s", 0.0)
            row += f"{s:10.2f}{100 * s / r['task_s']:6.1f}%"
        print(row)
    row = f"{'transfer':<10}{'':>6}"
    for r in results:
        row += f"{r['transfer_s']:10.2f}{'':>7}"
    print(row)
    print()
    for r in results:
        ws = r["workers_state"]
        print(f"{r['workers']} worker(s){' (warm cache)' if r['warm'] else ''}: cluster start "
              f"{r['cluster_start_s']:.1f} s; wall per point {r['wall_s'] / r['points']:.3f} s; "
              f"torch imported in {sum(w['torch'] for w in ws)} of {len(ws)} workers "
              f"(client: {'yes' if r['client_torch'] else 'no'}); worker RSS "
              + ", ".join(f"{w['VmRSS']:.0f}" for w in ws) + " MB (peak "
              + ", ".join(f"{w['VmHWM']:.0f}" for w in ws) + " MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="worker counts (1 is needed for the efficiency)")
    ap.add_argument("--points", type=int, default=24, help="at least this many points")
    ap.add_argument("--images", type=int, default=64, help="images streamed per point")
    ap.add_argument("--fidelity", default="group", choices=["group", "plane", "analytic"])
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--warm", action="store_true",
                    help="measure a rerun: the artifact cache filled first (see the docstring)")
    args = ap.parse_args()
    from simulator.explore.sweep.spec import plan_sweep

    results = []
    with tempfile.TemporaryDirectory(prefix="redysim-scaling-") as t:
        tmp = Path(t)
        plan = plan_sweep(sweep_file(tmp, max(24, args.points), args.images, args.fidelity))
        print(f"sweep: {len(plan.points)} points of the digits CNN, {args.fidelity} fidelity, "
              f"{args.images} images, 3 pipelines{', warm cache' if args.warm else ''}; "
              f"load {loadavg()}")
        for n in args.workers:
            r = measure(plan, n, tmp, args.warm)
            results.append(r)
            print(f"{n} worker(s): wall {r['wall_s']:.1f} s, task time {r['task_s']:.1f} s, "
                  f"tasks {r['tasks']} (cluster start {r['cluster_start_s']:.1f} s)",
                  flush=True)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"\nfigures: {args.json}")


if __name__ == "__main__":
    main()
