"""Command line: ``redysim run | map | hw | tune | plot | sweep``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from simulator.config_io import ConfigError


def _user_errors() -> tuple[type[BaseException], ...]:
    from mapping.errors import MappingError
    from simulator.errors import SimulationError
    from workloads.errors import WorkloadError

    return (ConfigError, MappingError, WorkloadError, SimulationError)


def _check_out_dir(out: Path, force: bool) -> None:
    """Refuse to touch an existing folder unless --force and it is a results folder."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{out}: results path exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not force:
        raise ConfigError(
            f"{out}: results folder exists and is not empty; "
            "pass --force to overwrite it or choose another -o")
    if not (out / "summary.json").is_file():
        raise ConfigError(
            f"{out}: folder is not empty and holds no summary.json, so it does not look like "
            "a redysim results folder; --force only replaces results folders")


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace *out* by the freshly written *tmp* folder (after a successful run)."""
    if out.exists():
        old = out.with_name(out.name + ".old-redysim")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def cmd_run(args: argparse.Namespace) -> int:
    """Run a scenario and write the results folder."""
    from simulator.flow import run
    from simulator.results import format_table, json_default, write_results
    from simulator.scenario import load_scenario

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
    _check_out_dir(out, args.force)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if not args.quiet and not args.json:
            print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr)

    bars = not args.quiet and not args.json and sys.stderr.isatty()
    rr = run(sc, progress=say, bars=bars)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        t_write = time.perf_counter()
        rr.wall_s["write"] = 0.0
        summary = write_results(rr, tmp)
        rr.wall_s["write"] = time.perf_counter() - t_write
        summary["wall_s"] = rr.wall_s
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _swap_in(tmp, out)
    wall = time.perf_counter() - t0
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"{sc.name}: {sc.workload.model} on {rr.hardware.name} "
              f"({sc.simulation.fidelity} fidelity, {sc.simulation.images} image(s))")
        print(rr.workload.note)
        print()
        print(format_table(summary))
        print()
        print(f"results in {out}/  (wall time {wall:.1f} s)")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    """Map a scenario's network and print the placement."""
    from mapping.report import format_mapping_table, mapping_to_json, plot_placement, write_graphml
    from simulator.flow import prepare
    from simulator.scenario import load_scenario

    sc = load_scenario(args.scenario)
    t0 = time.perf_counter()
    _, _, m = prepare(sc)
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
    from simulator.hardware import load_hardware
    from simulator.hwreport import format_hw_report, hardware_report

    hw = load_hardware(args.hardware)
    if getattr(args, "set", None):
        from simulator.hwinclude import parse_assignments

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
    r.set_defaults(func=cmd_run)
    m = sub.add_parser("map", help="map a scenario's network onto the chip and print it")
    m.add_argument("scenario")
    m.add_argument("--json", action="store_true")
    m.add_argument("--graphml", help="write the mapped dataflow graph (GraphML)")
    m.add_argument("--plot", help="write a picture of the placement (PNG)")
    m.set_defaults(func=cmd_map)
    h = sub.add_parser("hw", help="area, power and peak throughput of a hardware YAML")
    h.add_argument("hardware")
    h.add_argument("--json", action="store_true")
    h.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="change one key (dotted path, YAML value), e.g. "
                        "--set ima.crossbars_per_adc=4; repeatable")
    h.set_defaults(func=cmd_hw)
    from simulator.plot_cli import add_plot_parser

    add_plot_parser(sub)
    from workloads.tune_cli import add_tune_parser

    add_tune_parser(sub)
    from simulator.sweep_cli import add_sweep_parser

    add_sweep_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``redysim`` console script."""
    args = build_parser().parse_args(argv)
    for opt in ("images", "trace_sample"):
        if getattr(args, opt, None) is not None and getattr(args, opt) < 1:
            print(f"redysim: --{opt.replace('_', '-')}: must be >= 1", file=sys.stderr)
            return 2
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"redysim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
