"""Peak memory of one ``redysim run`` (issue 20 item 5: VGG-16 on 3 chips ≤ 2 GB).

Usage::

    .venv/bin/python bench/peak_memory.py [SCENARIO] [--fidelity F] [--warm] [--timeline]
                                          [--pythonpath CHECKOUT] [-- extra args]

Runs ``python -m simulator.cli.main run SCENARIO -o TMP --force --quiet`` in a fresh
process with an artifact cache of its own (empty; ``--warm``: filled by one unmeasured run
first) and reports:

- ``max_rss_mb``: the largest peak RSS of any one process of the run (``ru_maxrss`` of the
  waited children, what ``/usr/bin/time -v`` calls "Maximum resident set size");
- ``tree_rss_mb`` and ``tree_pss_mb``: the largest sum over the run's process tree (the
  parent and its forked workers), sampled every 50 ms from /proc. RSS counts the pages a
  forked worker shares with its parent once per process, so its sum overstates the memory
  used; PSS (proportional set size) splits shared pages between the processes that map
  them, so its sum is the memory the run actually holds.

``--timeline`` also prints, for each phase of the run (from one progress line of
``redysim run`` to the next), the largest tree PSS, the parent's largest PSS and the most
processes the tree had: where the peak is.

The default scenario is configs/scenarios/vgg16.yaml at its own fidelity (group).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def _mem_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of *pid* in kB (0, 0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            vals = {line.split(":")[0]: int(line.split()[1]) for line in f
                    if line.startswith(("Rss:", "Pss:"))}
        return vals.get("Rss", 0), vals.get("Pss", 0)
    except (OSError, ValueError, IndexError):
        return 0, 0


def measure(scenario: Path, fidelity: str | None, cache: Path, extra: list[str],
            code: Path = ROOT, timeline: bool = False) -> dict:
    out = Path(tempfile.mkdtemp(prefix="redysim-mem-"))
    env = {**os.environ, "REDYSIM_CACHE": str(cache), "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "simulator.cli.main", "run", str(scenario), "-o",
           str(out / "out"), "--force", *([] if timeline else ["--quiet"]),
           *(["--fidelity", fidelity] if fidelity else []), *extra]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=code, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    lines: list[tuple[float, str]] = []  # (time, progress line) with --timeline
    err: list[bytes] = []

    def read_stderr() -> None:
        assert p.stderr is not None
        for raw in p.stderr:
            err.append(raw)
            lines.append((time.perf_counter() - t0, raw.decode(errors="replace").strip()))

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    tree_rss = tree_pss = 0
    phases: list[dict] = []
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)  # ru: the run's, workers included
        if pid:
            break
        pids = [p.pid, *_children(p.pid)]
        mem = [_mem_kb(q) for q in pids]
        tree_rss = max(tree_rss, sum(m[0] for m in mem))
        tree_pss = max(tree_pss, sum(m[1] for m in mem))
        if timeline:
            if len(phases) <= len(lines):
                phases += [{"phase": "start" if not k else lines[k - 1][1][:90],
                            "from_s": 0.0 if not k else round(lines[k - 1][0], 1),
                            "tree_pss_mb": 0, "parent_pss_mb": 0, "processes": 0}
                           for k in range(len(phases), len(lines) + 1)]
            ph = phases[len(lines)]
            ph["tree_pss_mb"] = max(ph["tree_pss_mb"], round(sum(m[1] for m in mem) / 1024))
            ph["parent_pss_mb"] = max(ph["parent_pss_mb"], round(mem[0][1] / 1024))
            ph["processes"] = max(ph["processes"], len(pids))
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    reader.join(5)
    shutil.rmtree(out, ignore_errors=True)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{b''.join(err).decode()}")
    res = {"wall_s": round(wall, 1), "max_rss_mb": round(ru.ru_maxrss / 1024),
           "tree_rss_mb": round(tree_rss / 1024), "tree_pss_mb": round(tree_pss / 1024),
           "load": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
    if timeline:
        res["timeline"] = phases
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "configs" / "scenarios" /
                                                       "vgg16.yaml"))
    ap.add_argument("--fidelity", choices=["plane", "group", "analytic"])
    ap.add_argument("--warm", action="store_true", help="measure a rerun (cache filled)")
    ap.add_argument("--timeline", action="store_true",
                    help="also the peak memory of each phase of the run")
    ap.add_argument("--pythonpath", default=str(ROOT),
                    help="the checkout whose code runs (before/after comparisons)")
    ap.add_argument("extra", nargs="*", help="more arguments of redysim run (after --)")
    args = ap.parse_args(argv)
    code = Path(args.pythonpath).resolve()
    cache = Path(tempfile.mkdtemp(prefix="redysim-mem-cache-"))
    try:
        scenario = Path(args.scenario).resolve()
        if args.warm:
            measure(scenario, args.fidelity, cache, args.extra, code)
        res = measure(scenario, args.fidelity, cache, args.extra, code, args.timeline)
        phases = res.pop("timeline", [])
        print(json.dumps({"scenario": str(scenario), "code": str(code), "warm": args.warm,
                          **res}))
        for ph in phases:
            print(f"{ph['from_s']:7.1f} s  tree PSS {ph['tree_pss_mb']:5d} MB, parent "
                  f"{ph['parent_pss_mb']:5d} MB, {ph['processes']} process(es)  "
                  f"{ph['phase']}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
