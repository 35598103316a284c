"""``redysim plot RESULTS_DIR [--per-layer] [--format FMT ...]``: redraw plots and report.html.

PNG by default, as ``redysim run`` writes them; ``--format svg`` (or pdf) adds vectors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simulator.core.config_io import ConfigError

FORMATS = ("png", "svg", "pdf")


def add_plot_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``plot`` sub-command on *sub* (the subparsers of redysim's parser)."""
    p = sub.add_parser("plot", help="redraw the plots and report.html of a results folder")
    p.add_argument("results_dir", help="results folder written by 'redysim run'")
    p.add_argument("--per-layer", dest="per_layer", action="store_true",
                   help="also draw bits_histogram_layers (one panel per layer)")
    p.add_argument("--format", nargs="+", default=["png"], metavar="FMT",
                   help="image formats to write (png, svg, pdf; default: png, as 'redysim "
                        "run' writes them; PNGs are always written, the report embeds them)")
    p.set_defaults(func=cmd_plot)
    return p


def cmd_plot(args: argparse.Namespace) -> int:
    """Draw every plot of args.results_dir and write its report.html; print the files."""
    from simulator.results.html import write_report
    from simulator.results.plots import draw_all

    d = Path(args.results_dir)
    if not d.is_dir():
        raise ConfigError(f"{d}: results folder {d} does not exist (run 'redysim run' first)")
    summary = d / "summary.json"
    if not summary.is_file():
        raise ConfigError(f"{d}: no summary.json in this folder; is it a results folder "
                          "written by 'redysim run'?")
    try:
        json.loads(summary.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{summary}: not valid JSON ({exc})") from exc
    formats = list(dict.fromkeys(getattr(args, "format", None) or ["png"]))
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ConfigError(f"--format: unknown format(s) {', '.join(bad)}; "
                          f"choose from {', '.join(FORMATS)}")
    if "png" not in formats:  # the report embeds the PNGs
        formats.insert(0, "png")
    paths = draw_all(d, formats=tuple(formats), per_layer_hist=bool(args.per_layer))
    paths.append(write_report(d))
    for p in paths:
        print(p)
    return 0
