"""``redysim map SCENARIO``: map a scenario's network onto the chip and print the placement."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_map_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``map`` sub-command on *sub* (the subparsers of redysim's parser)."""
    m = sub.add_parser("map", help="map a scenario's network onto the chip and print it")
    m.add_argument("scenario")
    m.add_argument("--json", action="store_true")
    m.add_argument("--graphml", help="write the mapped dataflow graph (GraphML)")
    m.add_argument("--plot", help="write a picture of the placement (PNG)")
    m.add_argument("--yes", action="store_true",
                   help="build the workload even when its inputs exceed the memory estimate")
    m.set_defaults(func=cmd_map)
    return m


def cmd_map(args: argparse.Namespace) -> int:
    """Map a scenario's network and print the placement."""
    from mapping.report import format_mapping_table, mapping_to_json, plot_placement, write_graphml
    from simulator.core.outdir import check_writable_parent
    from simulator.runner.flow import prepare
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
