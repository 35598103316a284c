"""``redysim tune SCENARIO [-o OUT.yaml] [--budget 0.5] [--per-layer] ...``: tune ReDy.

Builds the scenario's workload and mapping exactly as ``redysim run`` does (traced model,
row blocks of the mapping, static scales from the calibration inputs, weights quantized to
the chip's bits), then searches ReDy's ``k``, ``ε`` and ``min_bits``
(:func:`workloads.precision.tune.tune_redy`) for the least dynamic energy per image on the chip
(analytic counts × per-event energies, simulator.runner.image_energy) within an accuracy budget,
starting from the scenario's redy pipeline, and prints the accuracy–energy trade-off it
explored. The chosen parameters are written with :func:`workloads.precision.tune.policy_to_yaml` to
a file a scenario can use as ``pipelines: {redy: {include: OUT.yaml}}``.

Tuning inputs come from the calibration/tuning part of the data only (workloads.loader):
the digits calibration part for the digits models (never their train or test part), the
calibration/tuning part of a labelled dataset, or, without labels, inputs distinct from
the calibration and measured ones, with the top-1 agreement with the static pipeline as
the metric.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.cli.cache_options import add_cache_options, artifact_cache
from simulator.core.config_io import ConfigError
from workloads.spec import DEFAULT_TUNE_IMAGES_DATASET, DEFAULT_TUNE_IMAGES_OTHER

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _number_list(cast: type, minimum: float, what: str):
    """argparse type: comma-separated values of *cast*, each >= *minimum*."""
    def parse(text: str) -> list:
        try:
            vals = [cast(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {what}, got {text!r}") from None
        if not vals or any(v < minimum for v in vals):
            raise argparse.ArgumentTypeError(f"expected {what} >= {minimum:g}, got {text!r}")
        return vals

    return parse


_floats = _number_list(float, 0, "numbers")
_ints = _number_list(int, 1, "integers")


def add_tune_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``tune`` sub-command on *sub* (the subparsers of redysim's parser)."""
    from workloads.spec import EPS_GRID, K_GRID, MIN_BITS_GRID

    def fmt(grid: tuple[Any, ...]) -> str:
        return ",".join(f"{v:g}" for v in grid)

    p = sub.add_parser(
        "tune", help="search ReDy's k, epsilon, min_bits for the fewest bits within an "
                     "accuracy budget and write them as an includable pipeline YAML")
    p.add_argument("scenario")
    p.add_argument("-o", "--output",
                   help="policy YAML to write (default: beside the scenario file, "
                        "<scenario file stem>-<pipeline>.yaml); use it in a scenario as "
                        "pipelines: {redy: {include: FILE}}")
    p.add_argument("--budget", type=float, default=0.5,
                   help="allowed accuracy drop vs the static pipeline, in points (default 0.5)")
    p.add_argument("--per-layer", dest="per_layer", action="store_true",
                   help="after the network-wide grid, refine k and epsilon layer by layer")
    p.add_argument("--pipeline", default="redy",
                   help="the scenario's redy pipeline to start from (default: redy)")
    p.add_argument("--images", type=int,
                   help="tuning inputs from the calibration/tuning part (digits models: "
                        "default the whole part, 360; labelled datasets: default "
                        f"{DEFAULT_TUNE_IMAGES_DATASET}; unlabelled: {DEFAULT_TUNE_IMAGES_OTHER})")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--k-grid", dest="k_grid", type=_floats, default=list(K_GRID),
                   metavar="K1,K2,...", help=f"k values (default {fmt(K_GRID)})")
    p.add_argument("--eps-grid", dest="eps_grid", type=_floats, default=list(EPS_GRID),
                   metavar="E1,E2,...", help=f"epsilon values (default {fmt(EPS_GRID)})")
    p.add_argument("--min-bits-grid", dest="min_bits_grid", type=_ints,
                   default=list(MIN_BITS_GRID), metavar="B1,B2,...",
                   help=f"min_bits values (default {fmt(MIN_BITS_GRID)})")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.add_argument("--yes", action="store_true",
                   help="build the workload even when its inputs exceed the memory estimate")
    add_cache_options(p)
    p.set_defaults(func=cmd_tune)
    return p


def default_output(scenario_path: str | Path, pipeline: str) -> Path:
    """Where ``tune`` writes without ``-o``: beside the scenario, ``<stem>-<pipeline>.yaml``."""
    p = Path(scenario_path)
    return p.with_name(f"{p.stem}-{pipeline}.yaml")


def _include_path(out: Path, scenario_path: str | Path) -> str:
    """*out* as a scenario at *scenario_path* would write it in ``include:``."""
    import os

    try:
        return os.path.relpath(out.resolve(), Path(scenario_path).resolve().parent)
    except ValueError:  # another drive (Windows)
        return str(out.resolve())


def tuning_inputs(sc: Any, wl: Any, images: int | None
                  ) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """(inputs, labels or None, description) for tuning the scenario's workload.

    Always the calibration/tuning part of the data, never a test image nor (digits
    models) a training image: the digits calibration part, the calibration/tuning part of
    a labelled dataset, or (no labels) inputs after the calibration and measured ones of
    the same seeded stream (workloads.loader).
    """
    assert wl.tuning is not None
    return wl.tuning(images)


def _energy_fn(graph: Any, mapping: Any, hw: Any) -> Any:
    """Mean dynamic energy per image (pJ) of a pipeline's measured images on the chip."""
    from simulator.runner.image_energy import ImageEnergyModel
    from workloads.precision.options import online_unit

    models: dict[str | None, Any] = {}  # per on-line unit the policy needs

    def energy(pp: Any) -> float:
        unit = online_unit(pp.policy.policy)
        if unit not in models:
            models[unit] = ImageEnergyModel.build(graph, mapping, hw, unit)
        model = models[unit]
        return float(model.energy({n: lp.image_planes for n, lp in pp.layers.items()}).mean())

    return energy


def _format_tradeoff(points: list[dict[str, Any]], e0: float, static_acc: float) -> str:
    """The accuracy–energy trade-off explored: the points no other point beats on both."""
    from workloads.precision.tune import pareto

    front = pareto(points, "energy_pj_per_image")
    lines = [f"accuracy–energy trade-off explored (the {len(front)} of {len(points)} points "
             "that no other point beats in both accuracy and energy):",
             f"  {'k':>5} {'eps':>5} {'min_bits':>8} {'mean bits':>9} {'energy':>7} "
             f"{'accuracy':>8} {'vs static':>9}  step"]
    for p in front:
        lines.append(f"  {p['k']:>5g} {p['epsilon']:>5g} {p['min_bits']:>8} "
                     f"{p['mean_bits']:9.3f} {p['energy_pj_per_image'] / e0:7.3f} "
                     f"{p['accuracy']:8.2f} {p['accuracy'] - static_acc:+9.2f}  {p['step']}")
    return "\n".join(lines)


def _fmt_spec(spec: Any) -> tuple[str, str, str]:
    return f"{spec.k:g}", f"{spec.epsilon:g}", str(spec.min_bits)


def cmd_tune(args: argparse.Namespace) -> int:
    """Tune the scenario's redy pipeline and write the chosen parameters as YAML."""
    from simulator.core.outdir import check_output_file, write_file_atomic
    from simulator.runner.flow import layer_specs, prepare
    from simulator.runner.scenario import load_scenario
    from workloads.precision.metrics import top1
    from workloads.precision.passes import run_pipeline
    from workloads.precision.policies import PolicySpec
    from workloads.precision.quantize import calibrate_scales
    from workloads.precision.tune import (
        EPS_GRID,
        K_GRID,
        MIN_BITS_GRID,
        mean_bits,
        policy_to_yaml,
        tune_redy,
    )

    t0 = time.perf_counter()
    quiet = bool(getattr(args, "quiet", False))

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr)

    sc = load_scenario(args.scenario)
    if args.budget < 0:
        raise ConfigError(f"--budget: must be >= 0 (got {args.budget})")
    if args.images is not None and args.images < 1:
        raise ConfigError(f"--images: must be >= 1 (got {args.images})")
    out = Path(args.output) if args.output else default_output(args.scenario, args.pipeline)
    check_output_file(out, args.force)  # before any work
    base = sc.pipelines.get(args.pipeline)
    if base is None:
        raise ConfigError(f"{sc.source}: pipelines: no pipeline {args.pipeline!r} to tune "
                          f"(pipelines: {', '.join(sc.pipelines)}); choose one with --pipeline")
    if base.policy != "redy":
        raise ConfigError(f"{sc.source}: pipelines.{args.pipeline}: policy is "
                          f"{base.policy!r}; only a 'redy' pipeline can be tuned")
    high = [v for v in args.min_bits_grid if v > sc.quantization.bits]
    if high and list(args.min_bits_grid) == list(MIN_BITS_GRID):  # the default: clip it
        args.min_bits_grid = [v for v in args.min_bits_grid if v <= sc.quantization.bits]
    elif high:
        raise ConfigError(f"--min-bits-grid: values must be at most quantization.bits "
                          f"({sc.quantization.bits}) (got {', '.join(map(str, high))})")
    # the traced network from the artifact cache when there (stored when not)
    hw, wl, mapping = prepare(sc, say=say, allow_large=bool(getattr(args, "yes", False)),
                              cache=artifact_cache(args))
    specs = layer_specs(wl.traced, mapping)
    module = wl.traced.module
    scales = calibrate_scales(module, specs, wl.calib_inputs, sc.quantization)
    x, y, desc = tuning_inputs(sc, wl, args.images)
    say(f"tuning inputs: {desc}")
    energy = _energy_fn(wl.traced.graph, mapping, hw)
    wbits = int(hw.weights.bits)

    # the scenario's current redy parameters, for comparison
    qc = sc.quantization
    kw = {"keep_images": 0, "weight_bits": wbits}
    static_pp = run_pipeline(module, specs, x, scales, qc, PolicySpec(policy="static"),
                             name="static", **kw)
    assert static_pp.logits is not None
    ref = y if y is not None else static_pp.logits.argmax(dim=-1)
    base_pp = run_pipeline(module, specs, x, scales, qc, base, name=args.pipeline, **kw)
    assert base_pp.logits is not None
    base_acc, base_bits, base_e = top1(base_pp.logits, ref), mean_bits(base_pp), energy(base_pp)

    n_pts = len(args.k_grid) * len(args.eps_grid) * len(args.min_bits_grid)
    say(f"grid search over up to {n_pts} points (budget {args.budget:g} points"
        f"{', then per-layer refinement' if args.per_layer else ''})")
    spec, report = tune_redy(module, specs, x, y, scales, qc, budget_points=args.budget,
                             base=base, per_layer=args.per_layer, k_grid=args.k_grid,
                             eps_grid=args.eps_grid, min_bits_grid=args.min_bits_grid,
                             energy=energy, weight_bits=wbits)
    wall = time.perf_counter() - t0

    metric = report["accuracy_metric"]
    static_acc = report["static_accuracy"]
    e0 = report["static_energy_pj_per_image"]
    rows = [("static", "-", "-", "-", report["static_mean_bits"], e0, static_acc),
            (f"{args.pipeline} (scenario)", *_fmt_spec(base), base_bits, base_e, base_acc),
            (f"{args.pipeline} (tuned)", *_fmt_spec(spec), report["mean_bits"],
             report["energy_pj_per_image"], report["accuracy"])]
    print(f"{sc.name}: {sc.workload.model}; {desc}")
    if y is None:
        print("note: no labels for this model, so the budget applies to the agreement (%) "
              "with the static pipeline's top-1 predictions, not to a real accuracy")
    head = f"{'pipeline':<22} {'k':>5} {'eps':>5} {'min_bits':>8} {'mean bits':>9} " \
           f"{'µJ/image':>10} {'vs static':>9} {'accuracy':>8} {'vs static':>9}"
    print(head)
    print("-" * len(head))
    for name, k, eps, mb, bits, e, acc in rows:
        print(f"{name:<22} {k:>5} {eps:>5} {mb:>8} {bits:9.3f} {e / 1e6:10.4g} "
              f"{e / e0:9.3f} {acc:8.2f} {acc - static_acc:+9.2f}")
    print(f"objective: least dynamic energy per image (analytic counts × per-event energies) "
          f"with {metric} >= {report['target_accuracy']:.2f} (static - {args.budget:g} "
          f"points); feasible: {report['feasible']}; {len(report['evaluated'])} points "
          "evaluated")
    print(_format_tradeoff(report["evaluated"], e0, static_acc))
    if spec.layers:
        print("per-layer overrides: " + ", ".join(
            f"{n}: " + ", ".join(f"{k}={v:g}" for k, v in o.model_dump(exclude_none=True).items())
            for n, o in spec.layers.items()))
    if not report["feasible"]:
        print("warning: no grid point met the budget; writing the most accurate one")

    opts = [f"--budget {args.budget:g}"]
    if args.per_layer:
        opts.append("--per-layer")
    if args.pipeline != "redy":
        opts.append(f"--pipeline {args.pipeline}")
    if args.images is not None:
        opts.append(f"--images {args.images}")
    for flag, grid, default in (("--k-grid", args.k_grid, K_GRID),
                                ("--eps-grid", args.eps_grid, EPS_GRID),
                                ("--min-bits-grid", args.min_bits_grid, MIN_BITS_GRID)):
        if [float(v) for v in grid] != [float(v) for v in default]:
            opts.append(f"{flag} {','.join(f'{v:g}' for v in grid)}")
    header = "\n".join([
        f"ReDy parameters tuned by: redysim tune {args.scenario} {' '.join(opts)}",
        f"scenario {sc.name} ({sc.workload.model}), starting from pipeline {args.pipeline!r}",
        f"tuning inputs: {desc}",
        f"static {static_acc:.2f} %, tuned {report['accuracy']:.2f} % ({metric}); "
        f"mean bits/group {report['static_mean_bits']:.3f} -> {report['mean_bits']:.3f}; "
        f"dynamic energy/image x{report['energy_ratio']:.3f} of static; "
        f"feasible: {report['feasible']}",
        "use in a scenario: pipelines: {redy: {include: <path relative to the scenario>}}",
    ])
    check_output_file(out, args.force)  # again: the search may have taken a while
    write_file_atomic(out, policy_to_yaml(spec, header=header))
    print(f"wrote {out.resolve()}  (wall time {wall:.1f} s); use it in {args.scenario} as "
          f"pipelines: {{{args.pipeline}: {{include: {_include_path(out, args.scenario)}}}}}")
    return 0
