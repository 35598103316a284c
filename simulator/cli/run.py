"""``redysim run SCENARIO``: simulate every pipeline of a scenario and write the results folder."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from simulator.cli.cache_options import add_cache_options, artifact_cache
from simulator.core import faults


def add_run_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``run`` sub-command on *sub* (the subparsers of redysim's parser)."""
    r = sub.add_parser("run", help="simulate a scenario (static vs ReDy) and write results")
    r.add_argument("scenario")
    r.add_argument("-o", "--output", help="results folder (default results/<scenario name>)")
    r.add_argument("--force", action="store_true", help="overwrite an existing results folder")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="change a key of the scenario before validation, e.g. --set "
                   "accuracy.crossbar=exact; hardware.<key> changes the hardware file's key "
                   "(--set hardware.ima.adc_bits=5); repeatable")
    r.add_argument("--images", type=int, help="override simulation.images")
    r.add_argument("--fidelity", choices=["plane", "group", "analytic"],
                   help="override simulation.fidelity")
    r.add_argument("--trace", action="store_true",
                   help="write trace.json (Chrome trace events; open in Perfetto)")
    r.add_argument("--trace-sample", type=int, metavar="N",
                   help="keep one lane MVM in N in the trace (default 1: all)")
    r.add_argument("--json", action="store_true", help="print summary.json to stdout")
    r.add_argument("--quiet", action="store_true", help="no progress messages")
    add_cache_options(r)
    r.add_argument("--yes", action="store_true",
                   help="run even when the run-size estimate exceeds the memory available")
    r.set_defaults(func=cmd_run)
    return r


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing"


def _import_plots() -> None:
    """Import the plots' modules (matplotlib: ~0.5 s) while the simulations run in their
    worker processes, instead of after them when the results are written."""
    import simulator.results.html  # noqa: F401
    import simulator.results.plots  # noqa: F401


def cmd_run(args: argparse.Namespace) -> int:
    """Run a scenario and write the results folder."""
    from simulator.core.outdir import check_output_dir, staged_results

    if args.output:  # before anything else, even before importing torch
        check_output_dir(Path(args.output), args.force)
    from simulator.results.write import format_table, json_default, write_results
    from simulator.runner.flow import run
    from simulator.runner.scenario import load_scenario

    hw_changes: dict = {}
    sc_changes: dict = {}
    if args.set:
        from simulator.hardware.include import parse_assignments

        for key, value in parse_assignments(args.set, "--set").items():
            if key.startswith("hardware."):
                hw_changes[key.removeprefix("hardware.")] = value
            else:
                sc_changes[key] = value
    sc = load_scenario(args.scenario, sc_changes or None)
    hardware = None
    if hw_changes:
        from simulator.hardware.spec import load_hardware

        hw_path = sc.resolve(sc.hardware)
        hardware = load_hardware(hw_path).with_changes(hw_changes,
                                                       source=f"{hw_path} (--set)")
    if args.images is not None:
        sc.simulation.images = args.images
    if args.fidelity is not None:
        sc.simulation.fidelity = args.fidelity
    if args.trace:
        sc.simulation.trace = True
    if args.trace_sample is not None:
        sc.simulation.trace_sample = args.trace_sample
    out = Path(args.output) if args.output else Path("results") / sc.name
    check_output_dir(out, args.force)  # before any work
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if not args.quiet and not args.json:
            print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr)

    bars = not args.quiet and not args.json and sys.stderr.isatty()
    cache = artifact_cache(args)  # a rerun reads its trace and bit planes
    rr = run(sc, progress=say, bars=bars, hardware=hardware, allow_large=args.yes,
             cache=cache, while_simulating=_import_plots)
    if cache is not None:
        say(f"artifact cache {cache.root}: read {_kinds(cache.hits)}; computed "
            f"{_kinds(cache.misses)}")
    say(f"writing results to {out}")
    # written into a staging folder that replaces *out* only once complete; an interrupt
    # or a write error removes it and leaves *out* as it was
    with staged_results(out) as tmp:
        faults.checkpoint("write", tmp)
        t_write = time.perf_counter()
        rr.wall_s["write"] = 0.0
        summary = write_results(rr, tmp)
        rr.wall_s["write"] = time.perf_counter() - t_write
        summary["wall_s"] = rr.wall_s
        if rr.estimate is not None:
            summary["estimate"] = rr.estimate.to_json()
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default))
    wall = time.perf_counter() - t0
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"{sc.name}: {sc.workload.model} on {rr.hardware.name} "
              f"({sc.simulation.fidelity} fidelity, {sc.simulation.images} image(s))")
        print(rr.workload.note)
        if rr.estimate is not None:
            print(f"run-size {rr.estimate.describe()}")
        print()
        print(format_table(summary))
        print()
        print(f"results in {out}/  (wall time {wall:.1f} s)")
    return 0
