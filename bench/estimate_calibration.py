"""Calibration of the run-size estimate (``simulator/estimate.py``) against the engine.

Usage::

    .venv/bin/python bench/estimate_calibration.py [--models digits resnet18]
                                                   [--images 1 4] [--out FILE.json]

For every (model, fidelity, images[, trace]) case a fresh child process prepares the
scenario (trace, map, capture, one pipeline: ``redy``), then runs
``simulator.simulate.simulate_pipeline`` once and measures:

- ``events``: SimPy events scheduled by the event loop (``next(env._eid)`` after
  ``ChipSimulation.run``; ``env.run()`` drains the queue, so scheduled = processed);
- ``sim_s``: wall time of ``simulate_pipeline`` (analytic sizing pass + event loop);
- ``grow_mb``: peak memory growth of that call: ``VmHWM`` after it minus ``VmRSS``
  before it, with the high-water mark reset just before (``/proc/self/clear_refs`` = 5);
- ``groups``: lane MVMs per image of the mapping (Σ row blocks × output positions),
  ``positions``: Σ output positions of every graph node per image, and ``rows``:
  Σ output rows of every node per image — the work-plan quantities the estimate uses.

It then prints, per fidelity, the least-squares constants of the estimate's model
(events per lane MVM, bytes per lane MVM-image and per position-image, seconds per event)
and the estimate's error on every case. The figures go into ``docs/robustness.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {"digits": ROOT / "configs" / "scenarios" / "digits.yaml",
             "resnet18": ROOT / "configs" / "scenarios" / "quickstart.yaml",
             "vgg16": ROOT / "configs" / "scenarios" / "vgg16.yaml"}


def loadavg() -> str:
    """The first three fields of /proc/loadavg."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(model: str, fidelity: str, images: int, trace: bool) -> None:
    """One case in a fresh process; prints one JSON line."""
    import numpy as np

    from simulator import engine
    from simulator.estimate import work_counts
    from simulator.flow import _trace_every, layer_specs, prepare
    from simulator.scenario import load_scenario
    from simulator.simulate import simulate_pipeline
    from simulator.trace import TraceRecorder
    from workloads.precision import compute_precision
    from workloads.quantize import calibrate_scales

    sc = load_scenario(SCENARIOS[model])
    sc.simulation.fidelity = fidelity
    sc.simulation.images = images
    sc.simulation.trace = trace
    hw, wl, mapping = prepare(sc)
    specs = layer_specs(wl.traced, mapping)
    scales = calibrate_scales(wl.traced.module, specs, wl.calib_inputs, sc.quantization)
    name = "redy"
    pp = compute_precision(wl.traced.module, specs, wl.eval_inputs[:4], scales,
                           sc.quantization, {name: sc.pipelines[name]})[name]
    planes = {layer: lp.planes for layer, lp in pp.layers.items()}
    rec = TraceRecorder(name, _trace_every(sc, planes)) if trace else None
    stats: dict[str, float] = {}
    orig = engine.ChipSimulation.run

    def counted(self, *a, **kw):
        res = orig(self, *a, **kw)
        stats["events"] = next(self.env._eid)
        return res

    engine.ChipSimulation.run = counted
    import gc

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    rss0 = _status_kb("VmRSS")
    t = time.perf_counter()
    res = simulate_pipeline(wl.traced.graph, mapping, hw, planes, "redy", name, fidelity,
                            images, sc.simulation.time_bins, sc.simulation.power_gating,
                            trace=rec, load_timing=sc.simulation.load_timing)
    sim_s = time.perf_counter() - t
    hwm = _status_kb("VmHWM")
    counts = work_counts(wl.traced.graph, mapping)
    print(json.dumps({
        "model": model, "fidelity": fidelity, "images": images, "trace": trace,
        "events": int(stats.get("events", 0)), "sim_s": sim_s,
        "grow_mb": (hwm - rss0) / 1024, "rss0_mb": rss0 / 1024,
        "groups": counts.lane_mvms, "positions": counts.positions, "rows": counts.rows,
        "bit_planes": res.counts()["bit_planes"],
        "trace_events": len(rec.events) if rec else 0,
        "mean_bits": float(np.mean([lp.mean_bits for lp in pp.layers.values()])),
    }))


def run_case(model: str, fidelity: str, images: int, trace: bool) -> dict:
    la0 = loadavg()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", model, fidelity,
           str(images), "1" if trace else "0"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        raise RuntimeError(f"child failed: {' '.join(cmd)}\n{p.stderr}")
    row = json.loads(p.stdout.strip().splitlines()[-1])
    row.update(load_before=la0, load_after=loadavg())
    print(f"{model:9s} {fidelity:8s} images={images:<3d} trace={int(trace)} "
          f"events={row['events']:>10,} sim={row['sim_s']:7.2f}s grow={row['grow_mb']:7.1f} MB "
          f"groups/img={row['groups']:,} trace_ev={row['trace_events']:,} "
          f"load {row['load_after']}", flush=True)
    return row


def fit(rows: list[dict]) -> dict:
    """Least-squares constants of the estimate's model, per fidelity."""
    import numpy as np

    out: dict[str, dict[str, float]] = {}
    for fid in ("group", "plane", "analytic"):
        rs = [r for r in rows if r["fidelity"] == fid and not r["trace"]]
        if not rs:
            continue
        work = np.array([r["groups"] * r["images"] for r in rs], dtype=float)
        planes = np.array([r["bit_planes"] for r in rs], dtype=float)
        ev = np.array([r["events"] for r in rs], dtype=float)
        secs = np.array([r["sim_s"] for r in rs])
        grow = np.array([r["grow_mb"] * 2**20 for r in rs])
        pos = np.array([r["positions"] * r["images"] for r in rs], dtype=float)
        d: dict[str, float] = {}
        if fid == "group":
            d["events_per_mvm"] = float(ev @ work / (work @ work))
        if fid == "plane":
            d["events_per_plane"] = float(ev @ planes / (planes @ planes))
        if ev.any():
            d["s_per_event"] = float(np.median(secs / ev))
        d["s_per_mvm"] = float(np.median(secs / work))
        a = np.stack([work, pos], axis=1)
        coef, *_ = np.linalg.lstsq(a, grow, rcond=None)
        d["bytes_per_mvm_image"] = float(coef[0])
        d["bytes_per_position_image"] = float(coef[1])
        d["max_bytes_per_mvm_image"] = float(np.max(grow / work))
        out[fid] = d
    tr = [r for r in rows if r["trace"] and r["trace_events"]]
    if tr:
        base = {(r["model"], r["fidelity"], r["images"]): r for r in rows if not r["trace"]}
        per = []
        for r in tr:
            b = base.get((r["model"], r["fidelity"], r["images"]))
            if b:
                per.append((r["grow_mb"] - b["grow_mb"]) * 2**20 / r["trace_events"])
        if per:
            out["trace"] = {"bytes_per_trace_event": float(max(per))}
    return out


def main() -> None:
    """Run the cases and print the fitted constants."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=["digits", "resnet18"])
    ap.add_argument("--images", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--plane-models", nargs="*", default=["digits"])
    ap.add_argument("--plane-images-max", type=int, default=64,
                    help="plane fidelity only up to this many images (it is slow)")
    ap.add_argument("--trace-models", nargs="*", default=["resnet18"])
    ap.add_argument("--out", default="/tmp/redysim-estimate-calibration.json")
    a = ap.parse_args()
    if a.child:
        m, f, n, t = a.child
        child(m, f, int(n), t == "1")
        return
    rows = []
    for model in a.models:
        for images in a.images:
            rows.append(run_case(model, "group", images, False))
            rows.append(run_case(model, "analytic", images, False))
            if model in a.plane_models and images <= a.plane_images_max:
                rows.append(run_case(model, "plane", images, False))
        if model in a.trace_models:
            rows.append(run_case(model, "group", 1, True))
    consts = fit(rows)
    print(json.dumps(consts, indent=2))
    Path(a.out).write_text(json.dumps({"rows": rows, "fit": consts}, indent=2))
    print(f"wrote {a.out}")
    os.sys.stdout.flush()


if __name__ == "__main__":
    main()
