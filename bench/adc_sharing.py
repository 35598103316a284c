"""group vs plane fidelity with shared ADCs (several crossbars per ADC).

Usage::

    .venv/bin/python bench/adc_sharing.py [--models resnet18 digits resnet-digits]
                                          [--sharing 2 4] [--images 1]
                                          [--pipelines static redy] [--out FILE.json]

For every model and sharing factor s (crossbars per ADC: ``ima.adcs = 8 / s`` on
configs/hardware/isaac8.yaml, the ADC count of ``components.ima.adc`` following it), the
scenario's pipelines (static and redy) are simulated at ``group`` and at ``plane``
fidelity through ``simulator.runner.flow.run`` (each in a fresh process). It prints the latency
of every pipeline at both fidelities, the deviation group / plane - 1, the simulation wall
time of each fidelity and the load average. ``s = 1`` is the stock file (no sharing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.runner.estimate import loadavg

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {"resnet18": ROOT / "configs" / "scenarios" / "quickstart.yaml",
             "digits": ROOT / "configs" / "scenarios" / "digits.yaml",
             "resnet-digits": ROOT / "configs" / "scenarios" / "resnet-digits.yaml"}
ISAAC8 = ROOT / "configs" / "hardware" / "isaac8.yaml"


def child(model: str, sharing: int, fidelity: str, images: int,
          pipelines: list[str] | None = None) -> None:
    """Runs in a fresh process: prints one JSON line with the latencies."""
    from simulator.hardware.spec import load_hardware
    from simulator.runner.flow import run
    from simulator.runner.scenario import load_scenario

    sc = load_scenario(SCENARIOS[model])
    hw = load_hardware(sc.resolve(sc.hardware))
    adcs = hw.ima.crossbars // sharing
    if sharing > 1:
        import yaml

        data = hw.with_changes({"ima.adcs": adcs, "components.ima.adc.count": adcs}).model_dump()
        data["energy"].pop("adc_conversion", None)
        tmp = Path(tempfile.mkdtemp(prefix="redysim-adc-")) / f"isaac8-adc{adcs}.yaml"
        tmp.write_text(yaml.safe_dump(data))
        sc.hardware = str(tmp)
    sc.simulation.fidelity = fidelity
    sc.simulation.images = images
    if pipelines:
        sc.pipelines = {k: v for k, v in sc.pipelines.items() if k in pipelines}
    t = time.perf_counter()
    rr = run(sc)
    wall = time.perf_counter() - t
    print(json.dumps({
        "model": model, "sharing": sharing, "adcs": adcs, "fidelity": fidelity,
        "images": images, "wall_s": wall,
        "simulate_s": {k.split(":", 1)[1]: v for k, v in rr.wall_s.items()
                       if k.startswith("simulate:")},
        "latency_ns": {n: p.latency_ns for n, p in rr.pipelines.items()},
        "done_ns": {n: list(p.timing.image_done_ns) for n, p in rr.pipelines.items()},
        "throughput_ips": {n: p.throughput_ips for n, p in rr.pipelines.items()},
    }))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1], int(argv[2]), argv[3], int(argv[4]), argv[5:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["digits", "resnet18"])
    ap.add_argument("--sharing", nargs="+", type=int, default=[2, 4])
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--fidelities", nargs="+", default=["group", "plane"])
    ap.add_argument("--pipelines", nargs="*", default=[],
                    help="only these pipelines of the scenario (default: all)")
    ap.add_argument("--out", default="/tmp/redysim-adc.json")
    args = ap.parse_args(argv)
    rows = []
    for model in args.models:
        for s in args.sharing:
            row: dict = {"model": model, "sharing": s, "load_before": loadavg()}
            for fid in args.fidelities:
                p = subprocess.run([sys.executable, __file__, "--child", model, str(s), fid,
                                    str(args.images), *args.pipelines], capture_output=True,
                                   text=True, cwd=ROOT)
                if p.returncode:
                    raise RuntimeError(f"{model} s={s} {fid} failed:\n{p.stderr}")
                row[fid] = json.loads(p.stdout.strip().splitlines()[-1])
            row["load_after"] = loadavg()
            rows.append(row)
            print(_line(row), flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"results written to {args.out}")
    return 0


def _line(row: dict) -> str:
    parts = [f"{row['model']} {row['sharing']} crossbars/ADC:"]
    g, p = row.get("group"), row.get("plane")
    for name in (g or p)["latency_ns"]:
        lg = g["latency_ns"][name] if g else float("nan")
        lp = p["latency_ns"][name] if p else float("nan")
        parts.append(f"{name} group {lg / 1e3:.2f} µs plane {lp / 1e3:.2f} µs "
                     f"({(lg / lp - 1) * 100:+.2f} %)")
    for fid in ("group", "plane"):
        if row.get(fid):
            parts.append(f"{fid} sim s {row[fid]['simulate_s']}")
    parts.append(f"load {row['load_after']}")
    return "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
