"""Mean bit planes per activation group (and digits accuracy) under each precision policy.

Usage: ``.venv/bin/python bench/precision_report.py [--models digits resnet18 ...]``

For digits (trained CNN, full test split) and torchvision resnet18, vgg16, mobilenet_v2
(224x224, seeded random weights, BatchNorm calibrated on photo crops as in
``simulator.flow.load_workload``, ONE evaluation image) it prints, per pipeline, the mean
planes per group (all groups of all mapped layers, skipped groups count 0), the top-1
accuracy (digits only) and the wall time of the windowed forward pass. Pipelines: static,
msb-trim, redy (k=3, ε=0, min_bits=1) and redy with the tuned digits parameters of
``configs/policies/digits-redy.yaml`` (written by ``redysim tune``).

Only workloads + the mapper's row blocks are used (``mapping.partition.partition_layer``
on the ISAAC-8 hardware file); the SimPy engine is not involved. Quantization settings come
from the repository's scenarios: digits.yaml for digits, quickstart.yaml for the others.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from mapping.partition import partition_layer
from simulator.hardware import load_hardware
from workloads.graph import trace_model
from workloads.policies import PolicySpec
from workloads.precision import LayerSpec, float_accuracy, run_pipeline
from workloads.quantize import QuantConfig, calibrate_scales
from workloads.tune import mean_bits

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = ROOT / "configs" / "hardware" / "isaac8.yaml"
TUNED = ROOT / "configs" / "policies" / "digits-redy.yaml"
MODELS = ("digits", "resnet18", "vgg16", "mobilenet_v2")


def scenario_settings(name: str) -> tuple[QuantConfig, int, int]:
    """(quantization, calibration images, seed) of the repository scenario for *name*."""
    sc = yaml.safe_load((ROOT / "configs" / "scenarios" /
                         ("digits.yaml" if name == "digits" else "quickstart.yaml")).read_text())
    w = sc["workload"]
    return (QuantConfig.model_validate(sc.get("quantization", {})),
            int(w.get("calibration_images", 4)), int(w.get("seed", 0)))


def build(name: str, calib_n: int, seed: int):
    """(traced module, graph, calib inputs, eval inputs, eval labels or None)."""
    torch.manual_seed(seed)
    if name == "digits":
        from workloads.digits import digits_split, load_digits_model

        model, shape = load_digits_model(), (1, 8, 8)
        x_tr, _, x_te, y_te = digits_split(seed=seed)
        calib, ev, labels = x_tr[:calib_n], x_te, y_te
    else:
        from workloads.inputs import sample_images
        from workloads.models import build_model, calibrate_batchnorm

        model, shape = build_model(name, 224, seed)
        imgs = sample_images(calib_n + 1, shape[1], seed)
        calib, ev, labels = imgs[:calib_n], imgs[calib_n:], None
        calibrate_batchnorm(model, calib)
    model.eval()
    traced = trace_model(model, tuple(shape), name)
    return traced.module, traced.graph, calib, ev, labels


def specs_of(graph, hw) -> dict[str, LayerSpec]:
    """Row blocks of every conv/linear layer (as simulator.flow.layer_specs, no placement)."""
    order = sorted(graph.nodes, key=lambda n: graph.nodes[n].get("order", 0))
    out = {}
    for n in order:
        node = graph.nodes[n]
        if node["kind"] not in ("conv", "linear"):
            continue
        _, _, blocks = partition_layer(node, hw)
        out[n] = LayerSpec(module=node["module"], kind=node["kind"],
                           row_ranges=[tuple(rb.rows) for rb in blocks],
                           signed_input=bool(node["signed_input"]))
    return out


def pipelines() -> dict[str, PolicySpec]:
    pipes = {"static": PolicySpec(policy="static"),
             "msb-trim": PolicySpec(policy="msb-trim"),
             "redy k=3 e=0 mb=1": PolicySpec(policy="redy", k=3.0, epsilon=0.0, min_bits=1)}
    if TUNED.is_file():
        t = PolicySpec.model_validate(yaml.safe_load(TUNED.read_text()))
        pipes[f"redy tuned k={t.k:g} e={t.epsilon:g} mb={t.min_bits}"] = t
    return pipes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hw = load_hardware(HARDWARE)
    pipes = pipelines()
    print(f"hardware {hw.name} ({HARDWARE.relative_to(ROOT)}); tuned policy: "
          f"{TUNED.relative_to(ROOT) if TUNED.is_file() else 'not found'}")
    head = f"{'model':<13} {'pipeline':<26} {'mean bits':>9} {'vs 8b':>6} {'top-1 %':>8} " \
           f"{'wall s':>7}"
    print(head)
    print("-" * len(head))
    for name in args.models:
        t = time.perf_counter()
        qc, calib_n, seed = scenario_settings(name)
        module, graph, calib, ev, labels = build(name, calib_n, seed)
        specs = specs_of(graph, hw)
        scales = calibrate_scales(module, specs, calib, qc)
        setup = time.perf_counter() - t
        what = (f"{len(ev)} test images, {len(specs)} layers" if labels is not None
                else f"{len(ev)} image, {len(specs)} layers, random weights")
        print(f"{name:<13} ({what}; quantization {qc.calibration}"
              f"{f' {qc.percentile:g}' if qc.calibration == 'percentile' else ''}, "
              f"{calib_n} calibration images; setup {setup:.1f} s)")
        if labels is not None:
            t = time.perf_counter()
            acc = float_accuracy(module, ev, labels)
            print(f"{'':<13} {'float':<26} {'-':>9} {'-':>6} {acc:8.2f} "
                  f"{time.perf_counter() - t:7.2f}")
        for pname, spec in pipes.items():
            t = time.perf_counter()
            pp = run_pipeline(module, specs, ev, scales, qc, spec, labels=labels, name=pname)
            dt = time.perf_counter() - t
            bits = mean_bits(pp)
            acc_s = f"{pp.accuracy:8.2f}" if pp.accuracy is not None else f"{'-':>8}"
            print(f"{'':<13} {pname:<26} {bits:9.3f} {bits / qc.bits:6.1%} {acc_s} {dt:7.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
