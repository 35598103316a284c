"""Command line: ``redysim run | map | hw | tune | plot | sweep | study``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from simulator.core import faults
from simulator.core.config_io import ConfigError
from simulator.core.errors import RunFailure
from simulator.core.interrupts import Interrupted, handle_signals


def _user_errors() -> tuple[type[BaseException], ...]:
    from mapping.errors import MappingError
    from simulator.core.errors import SimulationError
    from workloads.errors import WorkloadError

    return (ConfigError, MappingError, WorkloadError, SimulationError)


def cmd_run(args: argparse.Namespace) -> int:
    """Run a scenario and write the results folder."""
    from simulator.core.outdir import check_output_dir, staged_results

    if args.output:  # before anything else, even before importing torch
        check_output_dir(Path(args.output), args.force)
    from simulator.runner.flow import run
    from simulator.results.write import format_table, json_default, write_results
    from simulator.runner.scenario import load_scenario

    sc = load_scenario(args.scenario)
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
    rr = run(sc, progress=say, bars=bars, allow_large=args.yes)
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


def cmd_map(args: argparse.Namespace) -> int:
    """Map a scenario's network and print the placement."""
    from mapping.report import format_mapping_table, mapping_to_json, plot_placement, write_graphml
    from simulator.runner.flow import prepare
    from simulator.core.outdir import check_writable_parent
    from simulator.runner.scenario import load_scenario

    sc = load_scenario(args.scenario)
    for target in (args.graphml, args.plot):
        if target:
            check_writable_parent(Path(target))  # before any work
    t0 = time.perf_counter()
    _, _, m = prepare(sc, allow_large=args.yes)
    dt = time.perf_counter() - t0
    if args.graphml:
        write_graphml(m, Path(args.graphml))
    if args.plot:
        plot_placement(m, Path(args.plot))
    if args.json:
        print(json.dumps(mapping_to_json(m), indent=2))
    else:
        print(format_mapping_table(m))
        print(f"(trace + map: {dt:.2f} s)")
    return 0


def cmd_hw(args: argparse.Namespace) -> int:
    """Area, power and peak figures of a hardware file."""
    from simulator.hardware.spec import load_hardware
    from simulator.hardware.report import format_hw_report, hardware_report

    hw = load_hardware(args.hardware)
    if getattr(args, "set", None):
        from simulator.hardware.include import parse_assignments

        hw = hw.with_changes(parse_assignments(args.set, "--set"), source=f"{args.hardware} --set")
    rep = hardware_report(hw)
    print(json.dumps(rep, indent=2) if args.json else format_hw_report(rep))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``redysim``."""
    p = argparse.ArgumentParser(prog="redysim", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="simulate a scenario (static vs ReDy) and write results")
    r.add_argument("scenario")
    r.add_argument("-o", "--output", help="results folder (default results/<scenario name>)")
    r.add_argument("--force", action="store_true", help="overwrite an existing results folder")
    r.add_argument("--images", type=int, help="override simulation.images")
    r.add_argument("--fidelity", choices=["plane", "group", "analytic"],
                   help="override simulation.fidelity")
    r.add_argument("--trace", action="store_true",
                   help="write trace.json (Chrome trace events; open in Perfetto)")
    r.add_argument("--trace-sample", type=int, metavar="N",
                   help="keep one lane MVM in N in the trace (default 1: all)")
    r.add_argument("--json", action="store_true", help="print summary.json to stdout")
    r.add_argument("--quiet", action="store_true", help="no progress messages")
    r.add_argument("--yes", action="store_true",
                   help="run even when the run-size estimate exceeds the memory available")
    r.set_defaults(func=cmd_run)
    m = sub.add_parser("map", help="map a scenario's network onto the chip and print it")
    m.add_argument("scenario")
    m.add_argument("--json", action="store_true")
    m.add_argument("--graphml", help="write the mapped dataflow graph (GraphML)")
    m.add_argument("--plot", help="write a picture of the placement (PNG)")
    m.add_argument("--yes", action="store_true",
                   help="build the workload even when its inputs exceed the memory estimate")
    m.set_defaults(func=cmd_map)
    h = sub.add_parser("hw", help="area, power and peak throughput of a hardware YAML")
    h.add_argument("hardware")
    h.add_argument("--json", action="store_true")
    h.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="change one key (dotted path, YAML value), e.g. "
                        "--set ima.crossbars_per_adc=4; repeatable")
    h.set_defaults(func=cmd_hw)
    from simulator.cli.plot import add_plot_parser

    add_plot_parser(sub)
    from simulator.cli.tune import add_tune_parser

    add_tune_parser(sub)
    from simulator.cli.sweep import add_sweep_parser

    add_sweep_parser(sub)
    from simulator.cli.study import add_study_parser

    add_study_parser(sub)
    return p


#: exit statuses (docs/robustness.md): 0 done, 1 the run failed (a worker died, the disk
#: filled up), 2 bad input or a refused run, 128 + N stopped by signal N (130 SIGINT,
#: 143 SIGTERM, 129 SIGHUP)
EXIT_FAILURE, EXIT_BAD_INPUT = 1, 2


def _quick_exit(code: int, argv: list[str] | None) -> int:
    """After an interrupt or an error, leave at once when run as the console script.

    Every ``finally`` block has run by now (workers reaped, staging folders removed);
    what is left is the interpreter's teardown of torch and friends, which takes 1-3 s
    on a loaded machine. ``main(argv)`` called from Python returns the code instead.
    """
    if argv is not None:
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``redysim`` console script.

    Every command runs under :func:`simulator.core.interrupts.handle_signals`: a signal stops
    it with one line on stderr and exit status 128 + N, after the ``finally`` blocks
    have killed the worker processes and removed the staging folders.
    """
    with handle_signals():
        try:
            args = build_parser().parse_args(argv)
            for opt in ("images", "trace_sample"):
                if getattr(args, opt, None) is not None and getattr(args, opt) < 1:
                    print(f"redysim: --{opt.replace('_', '-')}: must be >= 1", file=sys.stderr)
                    return EXIT_BAD_INPUT
            return int(args.func(args) or 0)
        except Interrupted as exc:
            print(f"redysim: {exc}; stopped, nothing written", file=sys.stderr)
            return _quick_exit(exc.exit_code, argv)
        except KeyboardInterrupt:  # Ctrl-C before the handlers were in place
            print("redysim: interrupted by SIGINT; stopped, nothing written",
                  file=sys.stderr)
            return _quick_exit(130, argv)
        except RunFailure as exc:
            print(f"redysim: error: {exc}", file=sys.stderr)
            return _quick_exit(EXIT_FAILURE, argv)
        except OSError as exc:  # the environment, not a bug: a disk, a permission
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            print(f"redysim: error: {exc.strerror or exc}{where}", file=sys.stderr)
            return _quick_exit(EXIT_FAILURE, argv)
        except _user_errors() as exc:
            print(f"redysim: error: {exc}", file=sys.stderr)
            return _quick_exit(EXIT_BAD_INPUT, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
