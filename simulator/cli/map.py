"""``redysim map SCENARIO``: map a scenario's network onto the chip and print the placement."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simulator.cli.cache_options import add_cache_options, artifact_cache


def add_map_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``map`` sub-command on *sub* (the subparsers of redysim's parser)."""
    m = sub.add_parser("map", help="map a scenario's network onto the chip and print it")
    m.add_argument("scenario")
    m.add_argument("--json", action="store_true")
    m.add_argument("--graphml", help="write the mapped dataflow graph (GraphML)")
    m.add_argument("--plot", help="write a picture of the placement (PNG)")
    m.add_argument("--yes", action="store_true",
                   help="build the workload even when its inputs exceed the memory estimate")
    add_cache_options(m)
    m.set_defaults(func=cmd_map)
    return m


def cmd_map(args: argparse.Namespace) -> int:
    """Map a scenario's network and print the placement."""
    from mapping.report import format_mapping_table, mapping_to_json, plot_placement, write_graphml
    from simulator.core.outdir import check_writable_parent
    from simulator.runner.flow import prepare, timing_plan_step
    from simulator.runner.scenario import load_scenario

    sc = load_scenario(args.scenario)
    for target in (args.graphml, args.plot):
        if target:
            check_writable_parent(Path(target))  # before any work
    t0 = time.perf_counter()
    # the traced network, its mapping and timing plan from the artifact cache, as
    # 'redysim run' reads them (no torch)
    cache = artifact_cache(args)
    hw, wl, m = prepare(sc, allow_large=args.yes, cache=cache)
    noc = noc_summary(m, timing_plan_step(sc, wl, m, hw, cache).noc)
    dt = time.perf_counter() - t0
    if args.graphml:
        write_graphml(m, Path(args.graphml))
    if args.plot:
        plot_placement(m, Path(args.plot))
    if args.json:
        print(json.dumps({**mapping_to_json(m), "noc": noc}, indent=2))
    else:
        print(format_mapping_table(m))
        print(format_noc(noc))
        print(f"(trace + map + NoC traffic: {dt:.2f} s)")
    return 0


def noc_summary(mapping, noc) -> dict:
    """NoC traffic of one image and the worst-loaded port or link (*noc*: the packets the
    simulator sends, the timing plan's simulator.model.bound.NocLoad)."""
    from simulator.model.noc_routes import STAGE_LABELS, stage_where

    worst = max(noc.stage_ns, key=noc.stage_ns.__getitem__, default=None)
    out = {"placement": mapping.placement, "stripe": mapping.stripe,
           "bytes_per_image": {k: v["bytes"] for k, v in noc.traffic.items()},
           "packets_per_image": {k: v["packets"] for k, v in noc.traffic.items()}}
    if worst is not None:
        ns = noc.stage_ns[worst]
        out["worst_link"] = {"unit": STAGE_LABELS[worst[0]], "where": stage_where(worst),
                             "busy_ns_per_image": ns,
                             "bound_ips": 1e9 / ns if ns > 0 else None}
    return out


def format_noc(noc: dict) -> str:
    """Lines of :func:`noc_summary` for the text report."""
    b = noc["bytes_per_image"]
    lines = [f"NoC per image ({noc['placement']} placement, stripe {noc['stripe']}): "
             f"activations {b.get('activations', 0) / 1e6:.3f} MB, partial sums "
             f"{b.get('psum', 0) / 1e6:.3f} MB"]
    w = noc.get("worst_link")
    if w:
        lines.append(f"worst-loaded: {w['unit']} {w['where']}, {w['busy_ns_per_image'] / 1e3:.1f}"
                     f" µs per image (alone it would allow {w['bound_ips']:,.0f} img/s)")
    return "\n".join(lines)
