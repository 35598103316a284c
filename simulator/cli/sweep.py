"""``redysim sweep SWEEP.yaml -o DIR [--scheduler ADDRESS] [--workers N]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.core.config_io import ConfigError
from simulator.core.interrupts import Interrupted


def add_sweep_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``sweep`` sub-command on *sub* (the subparsers of redysim's parser)."""
    p = sub.add_parser("sweep", help="run a design-space sweep on Dask (local cluster or a "
                                     "scheduler) and write its table and plots")
    p.add_argument("sweep", help="sweep YAML (base scenario + axes), see docs/sweeps.md")
    p.add_argument("-o", "--output", required=True,
                   help="sweep folder (a folder written by an earlier run is resumed)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes of the local cluster (default: one per core)")
    p.add_argument("--force", action="store_true",
                   help="rerun the points that already have results")
    p.add_argument("--cache", metavar="DIR",
                   help="artifact cache folder of the workers (default: $REDYSIM_CACHE or "
                        "the platform cache folder)")
    p.add_argument("--point-plots", dest="point_plots", action="store_true",
                   help="also draw every point's plots and report.html (or later: redysim "
                        "plot DIR/points/ID)")
    p.add_argument("--dashboard", metavar="ADDRESS",
                   help="open the local cluster's Dask dashboard at ADDRESS, e.g. :8787 "
                        "(needs bokeh; default: not opened)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_sweep)
    return p


def cmd_sweep(args: argparse.Namespace) -> int:
    """Validate every point, run the unfinished ones, write sweep.csv/.parquet and plots."""
    from simulator.explore.sweep.cluster import check_dashboard
    from simulator.explore.sweep.run import check_out_dir, require_dask, run_sweep
    from simulator.explore.sweep.spec import plan_sweep

    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers: must be >= 1")
    if args.workers is not None and args.scheduler:
        raise ConfigError("--workers: the scheduler's own workers run the points; give "
                          "either --scheduler or --workers")
    if args.dashboard and args.scheduler:
        raise ConfigError("--dashboard: the scheduler you give has its own dashboard; "
                          "--dashboard is for the local cluster")
    require_dask()
    check_dashboard(args.dashboard)
    out = Path(args.output)
    check_out_dir(out, args.force)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    plan = plan_sweep(args.sweep)
    say(f"{plan.spec.name}: {len(plan.points)} point(s) validated")
    try:
        rep = run_sweep(plan, out, scheduler=args.scheduler, workers=args.workers,
                        force=args.force, cache_dir=args.cache, point_plots=args.point_plots,
                        say=say, dashboard=args.dashboard)
    except (KeyboardInterrupt, Interrupted) as exc:
        how = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        kept = (f"finished points are kept in {out}/points; rerun the same command to resume"
                if out.is_dir() else "nothing written")
        print(f"redysim: sweep interrupted by {how}; {kept}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, Interrupted) else 130
    print(f"{len(rep.ran)} point(s) run, {len(rep.skipped)} already done, "
          f"{len(rep.failed)} failed, in {rep.wall_s:.1f} s")
    for pid, err in rep.failed.items():
        print(f"  failed {pid}: {err}")
    for f in rep.files:
        print(f)
    return 1 if rep.failed else 0
