"""Map every built-in network on the ISAAC-8 chip with ``chips: auto`` and print the figures.

Usage: ``.venv/bin/python bench/map_all.py [--models alexnet vgg16 ...] [--json FILE]``

For each of the ten torchvision CNNs (224x224, seeded random weights, no BatchNorm
calibration: mapping only needs shapes) and the digits CNN it traces the model with
torch.fx (``workloads.graph.trace_model``), maps it with ``mapping.mapper.map_network``
on ``configs/hardware/isaac8.yaml`` with ``MappingOptions(chips="auto")`` and prints:
crossbars for one replica of every layer, crossbars used / available (after the replica
balancer filled the chips), replicas of the first three weight layers, min / max replicas,
tiles, chips, mean weight-cell utilization of the used crossbars
(``mapping.report.mapping_to_json`` totals), and the wall time of tracing and mapping.
Everything runs in one process, one network after the other.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mapping.mapper import MappingOptions, map_network
from mapping.report import mapping_to_json
from simulator.hardware.spec import load_hardware
from simulator.runner.estimate import loadavg
from workloads.graph import trace_model
from workloads.models import build_model

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = ROOT / "configs" / "hardware" / "isaac8.yaml"
MODELS = ("alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "resnet50", "mobilenet_v2",
          "squeezenet1_1", "googlenet", "densenet121", "digits")


def map_one(name: str, hw) -> dict:
    """Trace and map *name*; return its row of figures."""
    torch.manual_seed(0)
    t = time.perf_counter()
    model, shape = build_model(name, 224, 0)
    traced = trace_model(model, shape, name)
    trace_s = time.perf_counter() - t
    t = time.perf_counter()
    m = map_network(traced.graph, hw, MappingOptions(chips="auto"))
    map_s = time.perf_counter() - t
    js = mapping_to_json(m)
    reps = [lm.replicas for lm in m.layers.values()]
    return {
        "model": name,
        "weight_layers": len(m.layers),
        "crossbars_one_replica": sum(lm.crossbars for lm in m.layers.values()),
        "crossbars_used": js["totals"]["crossbars_used"],
        "crossbars_available": js["totals"]["crossbars_available"],
        "replicas_first3": reps[:3],
        "replicas_min": min(reps),
        "replicas_max": max(reps),
        "tiles": js["totals"]["tiles_used"],
        "chips": js["totals"]["chips"],
        "utilization": js["totals"]["utilization"],
        "trace_s": trace_s,
        "map_s": map_s,
        "loadavg": loadavg(),
    }


def format_rows(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    head = ["network", "layers", "xbars 1 replica", "xbars used / avail", "used %",
            "replicas first 3", "min/max replicas", "tiles", "chips", "mean util",
            "trace s", "map s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], str(r["weight_layers"]), str(r["crossbars_one_replica"]),
                 f"{r['crossbars_used']} / {r['crossbars_available']}",
                 f"{100 * r['crossbars_used'] / r['crossbars_available']:.1f}",
                 ", ".join(map(str, r["replicas_first3"])),
                 f"{r['replicas_min']} / {r['replicas_max']}", str(r["tiles"]),
                 str(r["chips"]), f"{100 * r['utilization']:.1f}%", f"{r['trace_s']:.2f}",
                 f"{r['map_s']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    args = ap.parse_args(argv)
    hw = load_hardware(HARDWARE)
    before = loadavg()
    rows = [map_one(name, hw) for name in args.models]
    print(format_rows(rows))
    print(f"\nhardware {HARDWARE.name}, chips: auto; load average before {before}, "
          f"after {loadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
