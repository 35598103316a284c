"""Engine CPU before/after, interleaved: ``engine_cpu.py`` of two checkouts, taking turns.

Usage::

    .venv/bin/python bench/engine_ab.py BEFORE [--after DIR] [--pairs 4] [--images 3]

On a shared machine the CPU time of one run moves by ±10 % with the load, so a change of a
few percent is only visible in pairs run one right after the other. Each pair runs
``bench/engine_cpu.py`` of BEFORE (its own copy, with ``PYTHONPATH=BEFORE``), then of AFTER
(this checkout unless ``--after``), in fresh processes; the order alternates between pairs
so that neither side always runs first. Prints every run with the 1-minute load, the
medians, their ratio, and whether both sides printed the same completion times (an engine
change that keeps the figures keeps them exactly).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LINE = re.compile(r"CPU ([0-9.]+) s.*done \(µs\) (\[[^\]]*\])")


def run_once(code: Path, images: int, fidelity: str) -> tuple[float, str, str]:
    """(CPU s, completion times as printed, 1-minute load after) of one engine_cpu run."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, str(code / "bench" / "engine_cpu.py"),
                          "--images", str(images), "--fidelity", fidelity],
                         cwd=code, env=env, capture_output=True, text=True, check=False)
    m = _LINE.search(out.stdout)
    if out.returncode or m is None:
        raise SystemExit(f"engine_cpu.py of {code} failed:\n{out.stdout}{out.stderr}")
    load = Path("/proc/loadavg").read_text().split()[0]
    return float(m.group(1)), m.group(2), load


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before", type=Path, help="checkout of the code before")
    ap.add_argument("--after", type=Path, default=ROOT, help="checkout after (default: this)")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--fidelity", default="group", choices=["group", "plane"])
    args = ap.parse_args(argv)
    sides = {"before": args.before.resolve(), "after": args.after.resolve()}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    done: dict[str, set[str]] = {"before": set(), "after": set()}
    for i in range(args.pairs):
        order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
        for side in order:
            c, times, load = run_once(sides[side], args.images, args.fidelity)
            cpu[side].append(c)
            done[side].add(times)
            print(f"pair {i + 1} {side:6s} CPU {c:.2f} s  done (µs) {times}  load {load}",
                  flush=True)
    b, a = statistics.median(cpu["before"]), statistics.median(cpu["after"])
    print(f"median CPU: before {b:.2f} s, after {a:.2f} s, after / before {a / b:.3f} "
          f"({b / a:.2f}x); {args.pairs} pairs, {args.images} image(s), {args.fidelity}")
    same = done["before"] == done["after"] and len(done["after"]) == 1
    print("completion times: " + ("identical" if same else
                                  f"DIFFER: before {sorted(done['before'])}, "
                                  f"after {sorted(done['after'])}"))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
