"""CPU time of one pipeline's simulation (ResNet-18 of the quick start, static 8-bit).

Usage::

    .venv/bin/python bench/engine_cpu.py [--fidelity group|plane] [--images N]

Traces and maps the quick start's network, then times
``simulator.runner.simulate.simulate_pipeline`` (plan, event loop, bound, booking) with every
group streaming all 8 bit planes: process CPU time and wall time, the completion times
and the throughput figure. It uses only the API both before and after issue 10 share, so
``PYTHONPATH=OLD python bench/engine_cpu.py`` (run from OLD) times the older code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fidelity", default="group", choices=["group", "plane", "analytic"])
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--scenario", default=str(ROOT / "configs" / "scenarios" /
                                              "quickstart.yaml"))
    args = ap.parse_args(argv)
    from simulator.runner.flow import prepare
    from simulator.runner.scenario import load_scenario
    from simulator.runner.simulate import simulate_pipeline

    sc = load_scenario(args.scenario)
    hw, _wl, m = prepare(sc)
    planes = {n: np.full((1, len(lm.row_blocks), lm.positions), 8, np.uint8)
              for n, lm in m.layers.items()}
    la0 = Path("/proc/loadavg").read_text().split()[:3]
    t, c = time.perf_counter(), time.process_time()
    res = simulate_pipeline(m.graph, m, hw, planes, "static", "static", args.fidelity,
                            args.images)
    cpu, wall = time.process_time() - c, time.perf_counter() - t
    la1 = Path("/proc/loadavg").read_text().split()[:3]
    print(f"{args.fidelity}, {args.images} image(s): CPU {cpu:.2f} s, wall {wall:.2f} s; "
          f"done (µs) {[round(x / 1e3, 1) for x in res.timing.image_done_ns]}; throughput "
          f"{res.throughput_ips:.0f} img/s; load {' '.join(la0)} -> {' '.join(la1)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
