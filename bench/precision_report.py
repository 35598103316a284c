"""Accuracy, mean bits and energy of every precision pipeline, and trained vs random bits.

Usage::

    .venv/bin/python bench/precision_report.py [--scenarios digits resnet-digits ...]
                                              [--random] [--json OUT.json]

For each scenario (``configs/scenarios/<name>.yaml``) it runs ``simulator.run`` exactly as
``redysim run`` does (same workload, data parts, weight quantization, policies), adding a
``redy-tuned`` pipeline from ``configs/policies/<name>-redy.yaml`` when that file exists
(written by ``redysim tune``), with the chip at analytic fidelity (counts and dynamic energy
are those of every fidelity). It prints, per pipeline, top-1 and top-5 over the measured
(test) images, the mean bit planes per group and the dynamic energy per image relative to
static (both over the measured images, simulator.runner.image_energy), and the float model's
accuracy. ``--random`` runs the same scenario with ``workload.weights: random`` (seeded
random weights, BatchNorm re-estimated on the calibration images) and prints both
histograms of planes per group side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _run(name: str, weights: str | None = None):
    from simulator.runner.flow import run
    from simulator.runner.scenario import load_scenario
    from workloads.precision.policies import PolicySpec

    sc = load_scenario(ROOT / "configs" / "scenarios" / f"{name}.yaml")
    tuned = ROOT / "configs" / "policies" / f"{name}-redy.yaml"
    if tuned.is_file() and "redy-tuned" not in sc.pipelines:
        sc.pipelines["redy-tuned"] = PolicySpec.model_validate(yaml.safe_load(tuned.read_text()))
    if weights is not None:
        sc.workload.weights = weights
    sc.simulation.fidelity = "analytic"
    sc.simulation.images = 1
    t = time.perf_counter()
    rr = run(sc)
    return rr, time.perf_counter() - t


def _hist(pp) -> np.ndarray:
    h = sum(lp.hist for lp in pp.layers.values())
    return np.asarray(h, dtype=float) / max(float(np.sum(h)), 1.0)


def report(name: str, with_random: bool) -> dict:
    rr, wall = _run(name)
    dec = {d["pipeline"] or d["step"]: d for d in rr.images["decomposition"]}
    e0 = dec["static"]["dynamic_energy_pj_per_image"]
    print(f"\n== {name}: {rr.workload.note}")
    print(f"float top-1 {rr.float_accuracy}  top-5 {rr.float_top5}  "
          f"(wall {wall:.1f} s, load {os.getloadavg()[0]:.2f})")
    print(f"{'pipeline':<12} {'top-1 %':>8} {'top-5 %':>8} {'mean bits':>9} "
          f"{'energy/static':>13}  parameters")
    rows = {}
    for pname, pp in rr.precision.items():
        sp = rr.images["spread"][pname]
        ratio = sp["dynamic_energy_pj"]["mean"] / e0
        params = pp.policy.model_dump(exclude_defaults=True)
        rows[pname] = {"top1": pp.accuracy, "top5": pp.top5,
                       "mean_bits": sp["mean_bits"]["mean"], "energy_ratio": ratio,
                       "params": params, "hist": _hist(pp).tolist()}
        acc = "-" if pp.accuracy is None else f"{pp.accuracy:.2f}"
        acc5 = "-" if pp.top5 is None else f"{pp.top5:.2f}"
        print(f"{pname:<12} {acc:>8} {acc5:>8} {sp['mean_bits']['mean']:9.3f} "
              f"{ratio:13.3f}  {params}")
    out = {"note": rr.workload.note, "float_top1": rr.float_accuracy,
           "float_top5": rr.float_top5, "images": rr.precision["static"].images,
           "pipelines": rows, "decomposition": rr.images["decomposition"]}
    if with_random:
        rnd, _ = _run(name, "random")
        print(f"-- {name} with random weights: {rnd.workload.note}")
        print("fraction of groups streaming b planes (trained | random):")
        print(f"{'b':>3} " + " ".join(f"{p:>17}" for p in ("msb-trim", "redy")))
        ht = {p: _hist(rr.precision[p]) for p in ("msb-trim", "redy")}
        hr = {p: _hist(rnd.precision[p]) for p in ("msb-trim", "redy")}
        for b in range(len(ht["redy"])):
            print(f"{b:>3} " + " ".join(f"{ht[p][b]:8.4f}|{hr[p][b]:8.4f}"
                                        for p in ("msb-trim", "redy")))
        mb = {p: rnd.images["spread"][p]["mean_bits"]["mean"] for p in ("msb-trim", "redy")}
        zt = {p: float(np.mean([lp.zero_group_fraction
                                for lp in rr.precision[p].layers.values()])) for p in ht}
        zr = {p: float(np.mean([lp.zero_group_fraction
                                for lp in rnd.precision[p].layers.values()])) for p in ht}
        print("mean bits trained | random: " + ", ".join(
            f"{p} {rows[p]['mean_bits']:.3f} | {mb[p]:.3f}" for p in mb))
        print("mean zero-group fraction over layers, trained | random: " + ", ".join(
            f"{p} {zt[p]:.4f} | {zr[p]:.4f}" for p in zt))
        e0r = rnd.images["decomposition"][0]["dynamic_energy_pj_per_image"]
        print("energy/static trained | random: " + ", ".join(
            f"{p} {rows[p]['energy_ratio']:.3f} | "
            f"{rnd.images['spread'][p]['dynamic_energy_pj']['mean'] / e0r:.3f}" for p in mb))
        out["random"] = {p: {"hist": hr[p].tolist(), "mean_bits": mb[p]} for p in mb}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="+", default=["digits", "resnet-digits"])
    ap.add_argument("--random", action="store_true",
                    help="also run with random weights and compare the bit histograms")
    ap.add_argument("--json", help="write every figure to this JSON file")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    res = {n: report(n, args.random) for n in args.scenarios}
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
