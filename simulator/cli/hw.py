"""``redysim hw HARDWARE.yaml``: area, power and peak figures of a hardware file."""

from __future__ import annotations

import argparse
import json


def add_hw_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``hw`` sub-command on *sub* (the subparsers of redysim's parser)."""
    h = sub.add_parser("hw", help="area, power and peak throughput of a hardware YAML")
    h.add_argument("hardware")
    h.add_argument("--json", action="store_true")
    h.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="change one key (dotted path, YAML value), e.g. "
                        "--set ima.crossbars_per_adc=4; repeatable")
    h.set_defaults(func=cmd_hw)
    return h


def cmd_hw(args: argparse.Namespace) -> int:
    """Area, power and peak figures of a hardware file."""
    from simulator.hardware.report import format_hw_report, hardware_report
    from simulator.hardware.spec import load_hardware

    hw = load_hardware(args.hardware)
    if getattr(args, "set", None):
        from simulator.hardware.include import parse_assignments

        hw = hw.with_changes(parse_assignments(args.set, "--set"), source=f"{args.hardware} --set")
    rep = hardware_report(hw)
    print(json.dumps(rep, indent=2) if args.json else format_hw_report(rep))
    return 0
