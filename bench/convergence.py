"""How many streamed images the measured throughput needs (ResNet-18, group fidelity).

Usage::

    .venv/bin/python bench/convergence.py [--images 2 3 4 6 8] [--pipeline static]
                                          [--scenario configs/scenarios/quickstart.yaml]

Simulates one pipeline of the scenario with N images for each N (each in a fresh
process) and prints the completion times, the interval of the last two images, the
measured throughput (warm-up 1) and the bound, and the load average.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from simulator.runner.estimate import loadavg

ROOT = Path(__file__).resolve().parents[1]


def child(scenario: str, pipeline: str, images: int) -> None:
    from simulator.runner.flow import run
    from simulator.runner.scenario import load_scenario

    sc = load_scenario(scenario)
    sc.pipelines = {pipeline: sc.pipelines[pipeline]}
    sc.simulation.images = images
    sc.simulation.workers = 1
    t, c = time.perf_counter(), time.process_time()
    rr = run(sc)
    pr = rr.pipelines[pipeline]
    print(json.dumps({"images": images, "done_ns": pr.timing.image_done_ns,
                      "measured_ips": pr.throughput_measured_ips,
                      "bound_ips": pr.throughput_bound_ips, "unit": pr.bounding_unit,
                      "simulate_s": rr.wall_s[f"simulate:{pipeline}"],
                      "process_cpu_s": time.process_time() - c,
                      "wall_s": time.perf_counter() - t}))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1], argv[2], int(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", nargs="+", type=int, default=[2, 3, 4, 6, 8])
    ap.add_argument("--pipeline", default="static")
    ap.add_argument("--scenario", default=str(ROOT / "configs" / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--out", default="/tmp/redysim-convergence.json")
    args = ap.parse_args(argv)
    rows = []
    for n in args.images:
        la0 = loadavg()
        p = subprocess.run([sys.executable, __file__, "--child", args.scenario,
                            args.pipeline, str(n)], capture_output=True, text=True, cwd=ROOT)
        if p.returncode:
            raise RuntimeError(p.stderr)
        row = json.loads(p.stdout.strip().splitlines()[-1])
        row.update(load_before=la0, load_after=loadavg())
        rows.append(row)
        d = row["done_ns"]
        last = (d[-1] - d[-2]) / 1e3 if len(d) > 1 else float("nan")
        print(f"N={n}: done (µs) {[round(x / 1e3, 1) for x in d]}; last interval "
              f"{last:.1f} µs; measured {row['measured_ips'] or float('nan'):.0f} img/s, "
              f"bound {row['bound_ips']:.0f} img/s ({row['unit']['unit']}, "
              f"{row['unit']['where']}); simulate {row['simulate_s']:.1f} s; load "
              f"{row['load_after']}", flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
