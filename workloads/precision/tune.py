"""Search ReDy's parameters (k, ε, min_bits) for the least energy within an accuracy budget.

Objective: minimize the energy per image (given as a function of a pipeline's per-image
plane sums: ``redysim tune`` passes the chip's dynamic energy from the analytic counts,
simulator.runner.image_energy) — or, without an energy function, the mean number of planes per
activation group — subject to ``accuracy ≥ static-8-bit accuracy − budget_points`` on the
calibration/tuning images. Without labels, "accuracy" is the top-1 agreement (%) with the
static pipeline's predictions (the static pipeline scores 100).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import yaml
from torch import nn

from workloads.precision.metrics import top1
from workloads.precision.passes import run_pipeline
from workloads.precision.policies import LayerOverride, PolicySpec
from workloads.precision.quantize import QuantConfig
from workloads.precision.records import LayerSpec, PipelinePrecision
from workloads.spec import EPS_GRID, K_GRID, MIN_BITS_GRID


def mean_bits(pp: PipelinePrecision) -> float:
    """Mean planes per group over all groups of all layers and all measured images."""
    tot = sum(float(lp.image_planes.sum(dtype="int64")) for lp in pp.layers.values())
    n = sum(lp.image_planes.size * lp.positions for lp in pp.layers.values())
    return tot / n if n else 0.0


EnergyFn = Callable[[PipelinePrecision], float]


class _Evaluator:
    def __init__(self, model: nn.Module, layers: Mapping[str, LayerSpec], inputs: torch.Tensor,
                 labels: torch.Tensor | None, scales: Mapping[str, float], qcfg: QuantConfig,
                 batch_size: int, energy: EnergyFn | None, weight_bits: int | None) -> None:
        self.args = (model, layers, inputs, scales, qcfg)
        self.kw = {"batch_size": batch_size, "keep_images": 0, "weight_bits": weight_bits}
        self.energy = energy
        static = run_pipeline(*self.args, PolicySpec(policy="static"), name="static", **self.kw)
        assert static.logits is not None
        self.labels = labels if labels is not None else static.logits.argmax(dim=-1)
        self.static_acc = top1(static.logits, self.labels)
        self.static_bits = mean_bits(static)
        self.static_cost = self._cost(static)
        self.points: list[dict[str, Any]] = []

    def _cost(self, pp: PipelinePrecision) -> float:
        return self.energy(pp) if self.energy is not None else mean_bits(pp)

    def __call__(self, spec: PolicySpec, note: str = "") -> tuple[float, float]:
        """(accuracy, cost) of a parameter point; cost = energy per image, or mean bits."""
        pp = run_pipeline(*self.args, spec, name="tune", **self.kw)
        assert pp.logits is not None
        acc, bits, cost = top1(pp.logits, self.labels), mean_bits(pp), self._cost(pp)
        point = {"k": spec.k, "epsilon": spec.epsilon, "min_bits": spec.min_bits,
                 "layers": {n: o.model_dump(exclude_none=True) for n, o in spec.layers.items()},
                 "accuracy": acc, "mean_bits": bits, "step": note}
        if self.energy is not None:
            point["energy_pj_per_image"] = cost
            point["energy_ratio"] = cost / self.static_cost if self.static_cost else float("nan")
        self.points.append(point)
        return acc, cost


def tune_redy(model: nn.Module, layers: Mapping[str, LayerSpec], calib_inputs: torch.Tensor,
              labels: torch.Tensor | None, scales: Mapping[str, float], qcfg: QuantConfig,
              budget_points: float = 0.5, base: PolicySpec | None = None,
              per_layer: bool = False, k_grid: Sequence[float] = K_GRID,
              eps_grid: Sequence[float] = EPS_GRID,
              min_bits_grid: Sequence[int] = MIN_BITS_GRID,
              batch_size: int = 64, energy: EnergyFn | None = None,
              weight_bits: int | None = None) -> tuple[PolicySpec, dict[str, Any]]:
    """Grid search (then optional greedy per-layer refinement) of ReDy's parameters.

    The cost of a point is ``energy(pipeline precision)`` (energy per image) when given,
    else its mean bits per group. For every (ε, min_bits) the k grid is scanned upwards and
    stops at the first k that meets the budget (larger k only adds bits, hence energy).
    The feasible point with the lowest cost wins (ties: higher accuracy). If none is
    feasible, the most accurate point is returned and ``report["feasible"]`` is False. With
    *per_layer*, each layer then tries smaller k and larger ε from the grids, keeping a
    change only if the budget still holds and the cost drops. *weight_bits* quantizes the
    weights as the chip does. Returns (spec, report); ``report["evaluated"]`` lists every
    point (accuracy, mean bits, energy) — the accuracy–energy trade-off explored.
    """
    base = base or PolicySpec(policy="redy")
    ev = _Evaluator(model, layers, calib_inputs, labels, scales, qcfg, batch_size, energy,
                    weight_bits)
    target = ev.static_acc - budget_points
    ks = sorted(k_grid)
    best: tuple[float, float, PolicySpec] | None = None  # (bits, -acc, spec)
    most_acc: tuple[float, float, PolicySpec] | None = None
    for mb in sorted(min_bits_grid):
        for eps in sorted(eps_grid):
            for k in ks:
                spec = base.model_copy(update={"policy": "redy", "k": float(k),
                                               "epsilon": float(eps), "min_bits": int(mb),
                                               "layers": {}})
                acc, bits = ev(spec, "grid")
                if most_acc is None or (acc, -bits) > (most_acc[1], -most_acc[0]):
                    most_acc = (bits, acc, spec)
                if acc >= target:
                    if best is None or (bits, -acc) < (best[0], -best[1]):
                        best = (bits, -acc, spec)
                    break
    feasible = best is not None
    if best is not None:
        bits, acc, chosen = best[0], -best[1], best[2]
    else:
        assert most_acc is not None
        bits, acc, chosen = most_acc
    if per_layer and feasible:
        chosen, acc, bits = _refine(ev, chosen, layers, target, acc, bits, ks, eps_grid)
    chosen_point = next((p for p in reversed(ev.points)
                         if (p["k"], p["epsilon"], p["min_bits"]) ==
                         (chosen.k, chosen.epsilon, chosen.min_bits)
                         and p["layers"] == {n: o.model_dump(exclude_none=True)
                                             for n, o in chosen.layers.items()}), {})
    report = {"static_accuracy": ev.static_acc, "static_mean_bits": ev.static_bits,
              "budget_points": budget_points, "target_accuracy": target,
              "accuracy_metric": "top-1" if labels is not None else "agreement with static",
              "objective": "energy per image" if energy is not None else "mean bits per group",
              "feasible": feasible, "accuracy": acc,
              "mean_bits": chosen_point.get("mean_bits", bits),
              "chosen": chosen.model_dump(exclude_defaults=True), "evaluated": ev.points}
    if energy is not None:
        report["static_energy_pj_per_image"] = ev.static_cost
        report["energy_pj_per_image"] = chosen_point.get("energy_pj_per_image", bits)
        report["energy_ratio"] = chosen_point.get("energy_ratio", float("nan"))
    return chosen, report


def pareto(points: Sequence[dict[str, Any]], cost: str) -> list[dict[str, Any]]:
    """Points not beaten by another in both accuracy (higher) and *cost* (lower), by cost."""
    front: list[dict[str, Any]] = []
    for p in sorted(points, key=lambda q: (q[cost], -q["accuracy"])):
        if not front or p["accuracy"] > front[-1]["accuracy"]:
            front.append(p)
    return front


def _refine(ev: _Evaluator, spec: PolicySpec, layers: Mapping[str, LayerSpec], target: float,
            acc: float, bits: float, ks: Sequence[float],
            eps_grid: Sequence[float]) -> tuple[PolicySpec, float, float]:
    """Greedy per-layer moves: lower k, then raise ε, while the budget holds."""
    order = list(layers)  # forward order; the search is cheap enough not to rank
    for lname in order:
        for field_name, grid in (("k", sorted(ks, reverse=True)),
                                 ("epsilon", sorted(eps_grid))):
            ov_cur = spec.layers.get(lname)
            cur = getattr(ov_cur, field_name, None) if ov_cur is not None else None
            cur = getattr(spec, field_name) if cur is None else cur
            cands = [v for v in grid if (v < cur if field_name == "k" else v > cur)]
            for v in cands:
                ov = (spec.layers.get(lname) or LayerOverride()).model_copy(
                    update={field_name: float(v)})
                trial = spec.model_copy(update={"layers": {**spec.layers, lname: ov}})
                a, b = ev(trial, f"layer {lname}")
                if a >= target and b < bits:
                    spec, acc, bits = trial, a, b
                else:
                    break
    return spec, acc, bits


def policy_to_yaml(spec: PolicySpec, header: str | None = None) -> str:
    """YAML of a policy spec, loadable as a scenario pipeline (``include: file.yaml``)."""
    data: dict[str, Any] = {"policy": spec.policy, "k": spec.k, "epsilon": spec.epsilon,
                            "min_bits": spec.min_bits,
                            "skip_zero_groups": spec.skip_zero_groups}
    if spec.layers:
        data["layers"] = {n: o.model_dump(exclude_none=True) for n, o in spec.layers.items()}
    if spec.params:
        data["params"] = dict(spec.params)
    text = yaml.safe_dump(data, sort_keys=False)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    return text
