"""Speed of the activation capture: each precision pass against a float forward pass.

Usage: ``.venv/bin/python bench/capture_speed.py [--images 16] [--repeat 3]``

ResNet-18 at 224x224 (configs/scenarios/quickstart.yaml: seeded random weights, BatchNorm
calibrated, the mapper's row blocks), one torch thread, ``--images`` photo crops. Prints the
best of ``--repeat`` wall times of: a float forward pass; the shared pass of the lossless
pipelines (static + msb-trim); a ReDy pass (k = 3, ε = 0); and a ReDy pass through the
im2col (custom-policy) path, which is how every pipeline was computed before the statistics
path; then the quick start's whole capture (static, msb-trim and ReDy: two passes) one pass
after the other and side by side in two forked processes, as a first ``redysim run`` does.
Ratios to the float pass are what to compare across machines; the load average is
printed beside them.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import torch

    from simulator.runner.flow import layer_specs, prepare
    from simulator.runner.scenario import load_scenario
    from workloads.inputs import sample_images
    from workloads.precision.passes import compute_precision
    from workloads.precision.policies import PolicySpec
    from workloads.precision.quantize import calibrate_scales

    torch.set_num_threads(1)
    sc = load_scenario(ROOT / "configs" / "scenarios" / "quickstart.yaml")
    sc.workload.eval_images = 1
    hw, wl, mapping = prepare(sc)
    specs = layer_specs(wl.traced, mapping)
    mod = wl.traced.module
    scales = calibrate_scales(mod, specs, wl.calib_inputs, sc.quantization)
    x = sample_images(args.images, 224, 1)
    bits = int(hw.weights.bits)

    def best(fn) -> float:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    def passes(pipes: dict, workers: int = 1) -> None:
        compute_precision(mod, specs, x, scales, sc.quantization, pipes, weight_bits=bits,
                          keep_images=1, workers=workers)

    with torch.no_grad():
        t_float = best(lambda: mod(x))
    cases = {
        "static + msb-trim (shared pass)": {"static": PolicySpec(policy="static"),
                                            "msb-trim": PolicySpec(policy="msb-trim")},
        "redy k=3 (statistics path)": {"redy": PolicySpec(policy="redy")},
        "redy k=3 (im2col path)": {"redy": PolicySpec(policy="workloads.precision.policies:redy")},
    }
    three = {"static": PolicySpec(policy="static"), "msb-trim": PolicySpec(policy="msb-trim"),
             "redy": PolicySpec(policy="redy")}
    print(f"ResNet-18, {args.images} images, 1 thread, best of {args.repeat}; "
          f"load {os.getloadavg()}")
    print(f"{'float forward':<34} {t_float:7.2f} s   1.00x")
    for name, pipes in cases.items():
        t = best(lambda p=pipes: passes(p))
        print(f"{name:<34} {t:7.2f} s  {t / t_float:5.2f}x   load {os.getloadavg()[0]:.2f}")
    # the quick start's capture on a first run: its two passes, one after the other, and
    # side by side in two forked processes (what `redysim run` does since issue 20)
    for name, workers in (("3 policies, 2 passes in turn", 1),
                          ("3 policies, 2 passes side by side", 2)):
        t = best(lambda w=workers: passes(three, w))
        print(f"{name:<34} {t:7.2f} s  {t / t_float:5.2f}x   load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
