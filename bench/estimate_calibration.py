"""Calibration of the run-size estimate (``simulator/runner/estimate.py``) against the engine.

Usage::

    .venv/bin/python bench/estimate_calibration.py [--models digits resnet18]
                                                   [--images 1 4] [--out FILE.json]

For every (model, fidelity, images[, trace]) case a fresh child process prepares the
scenario (trace, map, capture, one pipeline: ``redy``), then runs
``simulator.runner.simulate.simulate_pipeline`` once and measures:

- ``events``: SimPy events scheduled by the event loop (``next(env._eid)`` after
  ``ChipSimulation.run``; ``env.run()`` drains the queue, so scheduled = processed);
- ``sim_s``: wall time of ``simulate_pipeline`` (analytic sizing pass + event loop);
- ``grow_mb``: peak memory growth of that call: ``VmHWM`` after it minus ``VmRSS``
  before it, with the high-water mark reset just before (``/proc/self/clear_refs`` = 5);
- ``groups``: lane MVMs per image of the mapping (Σ row blocks × output positions),
  ``positions``: Σ output positions of every graph node per image, and ``rows``:
  Σ output rows of every node per image — the work-plan quantities the estimate uses.

It then prints the measured constants (events per lane MVM and per bit plane, bytes per
kept trace event) and every case against the estimate of ``simulator/runner/estimate.py``.
``--workload`` measures instead the memory of building and capturing a workload per byte
of input image (``CAPTURE_BYTES_PER_INPUT_BYTE``). The figures are in
``docs/robustness.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from simulator.runner.estimate import loadavg

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {"digits": ROOT / "configs" / "scenarios" / "digits.yaml",
             "resnet18": ROOT / "configs" / "scenarios" / "quickstart.yaml",
             "vgg16": ROOT / "configs" / "scenarios" / "vgg16.yaml"}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(model: str, fidelity: str, images: int, trace: bool) -> None:
    """One case in a fresh process; prints one JSON line."""
    import numpy as np

    from simulator.engine import chip as engine
    from simulator.engine.trace import TraceRecorder
    from simulator.runner.estimate import work_counts
    from simulator.runner.flow import _trace_every, layer_specs, prepare
    from simulator.runner.scenario import load_scenario
    from simulator.runner.simulate import simulate_pipeline
    from workloads.precision.passes import compute_precision
    from workloads.precision.quantize import calibrate_scales

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
                            images, power_gating=sc.simulation.power_gating,
                            trace=rec, load_timing=sc.simulation.load_timing,
                            warmup=sc.simulation.warmup_images)
    sim_s = time.perf_counter() - t
    hwm = _status_kb("VmHWM")
    counts = work_counts(wl.traced.graph, mapping)
    print(json.dumps({
        "model": model, "fidelity": fidelity, "images": images, "trace": trace,
        "events": int(stats.get("events", 0)), "sim_s": sim_s,
        "grow_mb": (hwm - rss0) / 1024, "rss0_mb": rss0 / 1024,
        "groups": counts.lane_mvms, "nodes": counts.nodes, "positions": counts.positions,
        "rows": counts.rows,
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
    """Measured constants: events per MVM / plane, bytes per trace event."""
    import numpy as np

    out: dict[str, float] = {}
    g = [r for r in rows if r["fidelity"] == "group" and not r["trace"] and r["images"] > 1]
    if g:
        out["events_per_mvm"] = float(np.median([r["events"] / (r["groups"] * r["images"])
                                                 for r in g]))
    p = [r for r in rows if r["fidelity"] == "plane" and r["images"] > 1]
    if p:
        out["events_per_plane"] = float(np.median([r["events"] / r["bit_planes"] for r in p]))
    base = {(r["model"], r["fidelity"], r["images"]): r for r in rows if not r["trace"]}
    per = [(r["grow_mb"] - base[k]["grow_mb"]) * 2**20 / r["trace_events"]
           for r in rows if r["trace"] and r["trace_events"]
           and (k := (r["model"], r["fidelity"], r["images"])) in base]
    if per:
        out["bytes_per_trace_event"] = float(max(per))
    return out


def compare(rows: list[dict]) -> None:
    """Print every case against the estimate of simulator/runner/estimate.py (one pipeline)."""
    from simulator.runner import estimate as E

    print("| model | fidelity | images | trace | SimPy events | estimate | growth MB | "
          "estimate MB | sim s | estimate s (idle) | load after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        w = E.WorkCounts(r["groups"], r["nodes"], r["positions"], r["rows"])
        n, fid = r["images"], r["fidelity"]
        fixed, per = E.pipeline_bytes(w, fid, n)
        est_b = fixed + per * n + 2 * E.BYTES_PER_TRACE_EVENT * r["trace_events"]
        mv = w.lane_mvms * n
        ev = (E.EVENTS_PER_NODE * w.nodes + E.EVENTS_PER_POSITION * w.positions * n
              if fid == "group"
              else E.EVENTS_PER_PLANE * 8 * mv if fid == "plane" else 0)
        s = E.ROW_SECONDS * w.rows * n + E.ANALYTIC_MVM_SECONDS * mv
        s += (E.GROUP_MVM_SECONDS * mv if fid == "group"
              else E.PLANE_SECONDS * 8 * mv if fid == "plane" else 0)
        s *= E.TRACE_TIME_FACTOR if r["trace"] else 1
        print(f"| {r['model']} | {fid} | {n} | {'yes' if r['trace'] else 'no'} | "
              f"{r['events']:,} | {ev:,.0f} | {r['grow_mb']:.1f} | {est_b / 2**20:.1f} | "
              f"{r['sim_s']:.2f} | {s:.2f} | {r['load_after']} |")


def workload_child(model: str, n: int) -> None:
    """Peak memory of building + capturing *n* images, per byte of input (one JSON line)."""
    import gc

    import torch

    from simulator.runner.flow import layer_specs, prepare
    from simulator.runner.scenario import load_scenario
    from workloads.precision.passes import compute_precision
    from workloads.precision.quantize import calibrate_scales

    torch.set_num_threads(1)
    sc = load_scenario(SCENARIOS[model])
    sc.workload.eval_images = n
    sc.workload.calibration_images = n
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    r0 = _status_kb("VmRSS")
    hw, wl, m = prepare(sc, allow_large=True)
    specs = layer_specs(wl.traced, m)
    scales = calibrate_scales(wl.traced.module, specs, wl.calib_inputs, sc.quantization)
    compute_precision(wl.traced.module, specs, wl.eval_inputs, scales, sc.quantization,
                      {"redy": sc.pipelines["redy"]})
    peak = _status_kb("VmHWM") - r0
    in_bytes = 4 * int(wl.eval_inputs[0].numel())
    print(json.dumps({"model": model, "images": n, "peak_mb": peak / 1024,
                      "input_bytes": in_bytes}))


def workload_cases(models: list[str]) -> None:
    """Capture memory per input byte: the growth from 1 to 4 calibration + 4 evaluation
    images (6 more input images), per input image."""
    res = {}
    for model in models:
        for n in (1, 4):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--workload-child", model,
                   str(n)]
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if p.returncode:
                raise RuntimeError(p.stderr)
            res[(model, n)] = json.loads(p.stdout.strip().splitlines()[-1])
        a, b = res[(model, 1)], res[(model, 4)]
        per_image = (b["peak_mb"] - a["peak_mb"]) * 2**20 / 6
        print(f"{model}: build + capture peak {a['peak_mb']:.0f} MB (1 + 1 images), "
              f"{b['peak_mb']:.0f} MB (4 + 4): {per_image / 2**20:.1f} MB per input image = "
              f"{per_image / a['input_bytes']:.0f} x the input's bytes; load {loadavg()}",
              flush=True)


def main() -> None:
    """Run the cases and print the fitted constants."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--workload-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--workload", nargs="*", metavar="MODEL",
                    help="measure capture memory per input byte instead (default models "
                         "resnet18 vgg16)")
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
    if a.workload_child:
        workload_child(a.workload_child[0], int(a.workload_child[1]))
        return
    if a.workload is not None:
        workload_cases(a.workload or ["resnet18", "vgg16"])
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
    compare(rows)
    Path(a.out).write_text(json.dumps({"rows": rows, "fit": consts}, indent=2))
    print(f"wrote {a.out}")
    os.sys.stdout.flush()


if __name__ == "__main__":
    main()
