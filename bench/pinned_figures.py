"""Do two versions of the code give the same figures? Runs the pinned scenarios with each
and compares their summary.json.

Usage::

    .venv/bin/python bench/pinned_figures.py run OUT_DIR [--pythonpath CODE]
    .venv/bin/python bench/pinned_figures.py compare A_DIR B_DIR [--tolerance 1e-3]

``run`` runs ``redysim run`` on digits and resnet-digits, each with 1, 2 and 4 crossbars
per ADC (``--set hardware.ima.adcs=8/s``), and on the quick start, with the code in CODE
(default: this checkout), into OUT_DIR/<scenario>-s<s>/ (about 2 minutes on 2 quiet
cores). ``compare`` walks two such folders' summary.json files and prints, per run, every
value that differs (wall times, the estimate and provenance keys left out) with its
relative difference; those beyond the tolerance are listed. A speed-up must give 0
differences (counts and energy identical, times within 0.1 %: issue 20). Exit status 1
when a value differs beyond the tolerance or a run is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = [("digits", 1), ("digits", 2), ("digits", 4), ("resnet-digits", 1),
        ("resnet-digits", 2), ("resnet-digits", 4), ("quickstart", 1)]
IGNORED = {"wall_s", "estimate", "created", "git", "versions", "hardware_spec", "code",
           "host", "started", "cache"}


def run_all(out: Path, code: Path) -> int:
    """Run every pinned scenario with the code in *code* into *out*."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(code))
    failed = 0
    for scenario, sharing in RUNS:
        name = f"{scenario}-s{sharing}"
        cmd = [sys.executable, "-m", "simulator.cli.main", "run",
               str(code / "configs" / "scenarios" / f"{scenario}.yaml"),
               "-o", str(out / name), "--force", "--quiet"]
        if sharing > 1:
            adcs = 8 // sharing
            cmd += ["--set", f"hardware.ima.adcs={adcs}",
                    "--set", f"hardware.components.ima.adc.count={adcs}"]
        p = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True)
        (out / f"{name}.log").write_text(p.stdout + p.stderr)
        print(f"{name}: {'ok' if p.returncode == 0 else 'FAILED'}", flush=True)
        failed += p.returncode != 0
    return 1 if failed else 0


def differences(a, b, path: str = "") -> list[tuple[str, str, float | None]]:
    """(key path, what differs, relative difference or None) of two JSON values."""
    out: list[tuple[str, str, float | None]] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in IGNORED:
                continue
            if k not in a or k not in b:
                out.append((f"{path}/{k}", "only in one", None))
            else:
                out += differences(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append((path, f"length {len(a)} vs {len(b)}", None))
        for i, (x, y) in enumerate(zip(a, b, strict=False)):  # length reported above
            out += differences(x, y, f"{path}[{i}]")
    elif a != b:
        rel = None
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a:
            rel = b / a - 1
        out.append((path, f"{a!r} vs {b!r}", rel))
    return out


def compare(a_dir: Path, b_dir: Path, tolerance: float) -> int:
    """Print the differences of every run; 1 when one exceeds *tolerance*."""
    bad = 0
    for scenario, sharing in RUNS:
        name = f"{scenario}-s{sharing}"
        fa, fb = a_dir / name / "summary.json", b_dir / name / "summary.json"
        if not fa.exists() or not fb.exists():
            print(f"{name}: missing in {'A' if not fa.exists() else 'B'}")
            bad += 1
            continue
        diffs = differences(json.loads(fa.read_text()), json.loads(fb.read_text()))
        beyond = [d for d in diffs if d[2] is None or abs(d[2]) > tolerance]
        worst = max((abs(d[2]) for d in diffs if d[2] is not None), default=0.0)
        print(f"{name}: {len(diffs)} differences, largest relative {worst:.2e}, "
              f"{len(beyond)} beyond {tolerance:g}")
        for key, what, rel in beyond[:10]:
            print(f"    {key}: {what}" + ("" if rel is None else f" ({rel:+.3%})"))
        bad += bool(beyond)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--pythonpath", type=Path, default=ROOT, help="the code to run")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--tolerance", type=float, default=1e-3)
    args = ap.parse_args(argv)
    if args.cmd == "run":
        return run_all(args.out, args.pythonpath.resolve())
    return compare(args.a, args.b, args.tolerance)


if __name__ == "__main__":
    raise SystemExit(main())
