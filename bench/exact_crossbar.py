"""Speed of the exact crossbar mode of the accuracy path (docs/precision.md §6).

Usage::

    .venv/bin/python bench/exact_crossbar.py                       # CPU, 2 images, 1 thread
    .venv/bin/python bench/exact_crossbar.py --images 4 --threads 2
    .venv/bin/python bench/exact_crossbar.py --device cuda --images 64 --batch 32   # a GPU

ResNet-18 at 224x224 (configs/scenarios/quickstart.yaml: seeded random weights, BatchNorm
calibrated, the mapper's row blocks) on isaac8 with an 8-bit ideal ADC and no flip
encoding (a full column sum needs 9 bits, so clipping is possible), one ReDy pipeline
(k = 3, ε = 0). Times, best of ``--repeat``, per image:

- ``fast``: the float path (what ``accuracy.crossbar: fast`` runs);
- ``exact``: the exact mode, which computes only the planes that can clip;
- ``exact, every plane`` (``--every-plane``): the same mode forced to compute every
  streamed plane of every group (what a plain einsum over all planes, slices and blocks
  does; slow on a CPU).

Each line gives wall seconds per image, the process CPU seconds per image
(``time.process_time``) and the load average; the wall time is what the target (≤ 3 s per
image per pipeline on 2 CPU cores) is about, the CPU time is what to compare on a busy
machine. On a GPU the CUDA kernels are synchronised before each time is taken.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64, help="images per forward batch")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--adc-bits", type=int, default=8)
    ap.add_argument("--flip", action="store_true", help="ISAAC's flip encoding")
    ap.add_argument("--every-plane", action="store_true",
                    help="also time the mode forced to compute every plane")
    args = ap.parse_args()
    import torch

    from simulator.runner.flow import crossbar_model, layer_specs, prepare
    from simulator.runner.scenario import load_scenario
    from workloads.device import resolve_device
    from workloads.inputs import sample_images
    from workloads.precision.passes import compute_precision
    from workloads.precision.policies import PolicySpec
    from workloads.precision.quantize import calibrate_scales

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sc = load_scenario(ROOT / "configs" / "scenarios" / "quickstart.yaml")
    sc.workload.eval_images = 1
    hw, wl, mapping = prepare(sc)
    hw = hw.with_changes({"ima.adc_bits": args.adc_bits, "weights.flip_encoding": args.flip})
    specs = layer_specs(wl.traced, mapping)  # the row blocks do not depend on the ADC
    mod = wl.traced.module
    scales = calibrate_scales(mod, specs, wl.calib_inputs, sc.quantization)
    x = sample_images(args.images, 224, 1)
    xbar = crossbar_model(hw)
    pipes = {"redy": PolicySpec(policy="redy", k=3.0, epsilon=0.0, min_bits=1)}

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(crossbar) -> tuple[float, float, object]:
        best = (float("inf"), float("inf"), None)
        for _ in range(args.repeat):
            sync()
            t, c = time.perf_counter(), time.process_time()
            res = compute_precision(mod, specs, x, scales, sc.quantization, pipes,
                                    weight_bits=int(hw.weights.bits), keep_images=0,
                                    batch_size=args.batch, crossbar=crossbar, device=device)
            sync()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            if wall < best[0]:
                best = (wall, cpu, res)
        return best

    print(f"ResNet-18 224x224, {args.images} image(s), batch {args.batch}, device {device}, "
          f"{args.threads} torch thread(s), {args.adc_bits}-bit ideal ADC, flip encoding "
          f"{'on' if args.flip else 'off'} (never clips at {xbar.never_clip_bits} bits), "
          f"ReDy k=3 eps=0; best of {args.repeat}")
    cases = [("fast", None), ("exact", xbar)]
    if args.every_plane:
        cases.append(("exact, every plane", dataclasses.replace(xbar, force=True)))
    for name, cb in cases:
        wall, cpu, res = timed(cb)
        n = args.images
        ips = f"  {n / wall:8.1f} images/s" if device.type == "cuda" else ""
        print(f"{name:<20} {wall / n:7.3f} s/image wall  {cpu / n:7.3f} s/image CPU{ips}   "
              f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
