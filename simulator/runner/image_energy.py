"""Dynamic energy of each measured image, and where the saving of a precision policy comes from.

The dynamic energy the ledger books is linear in the bit planes: a lane MVM with b planes
costs b × (its per-plane events) + its per-group events (eDRAM read and bus transfer of the
group, and its inspection by the on-line unit of a dynamic pipeline), and every image adds the
output-side events of every node (shift-and-add merges, activations, output registers,
eDRAM writes, digital units) and the NoC's packets of one image (flit-hops, received bytes,
off-chip bytes: :class:`simulator.model.bound.NocLoad`, in closed form). :class:`ImageEnergyModel`
takes those per-plane, per-group and per-image energies from the work plan (the same
activity kinds the engine and the analytic mode book), so the energy of any image follows
from its per-row-block plane sums (``LayerPrecision.image_planes``) without simulating it:
the same figure as the analytic and event-driven ledgers (the counts of all fidelities
agree exactly).

That gives, for every image the precision pass measured (not only the few the simulation
streams), the spread of mean bits and energy, and the decomposition of the saving:
static → zero-group skipping → msb-trim (lossless) → each lossy pipeline (docs/outputs.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from simulator.model.ledger import EVENTS, EnergyLedger
from simulator.model.plan import WEIGHT_KINDS, KindIds, NodePlan
from simulator.model.workplan import kind_ids_in, register_kinds
from workloads.precision.options import online_unit

__all__ = ["ImageEnergyModel", "decomposition", "spread"]


@dataclass
class ImageEnergyModel:
    """Per-plane and per-group energy (pJ) of every row block of every weight layer, plus
    the fixed output-side energy per image."""

    per_plane: dict[str, np.ndarray]  # layer → (row blocks,) pJ per streamed plane
    per_group: dict[str, np.ndarray]  # layer → (row blocks,) pJ per group
    positions: dict[str, int]  # layer → groups per row block per image
    per_image: float  # pJ per image independent of the planes
    unit: str | None  # the on-line unit the pipeline's policy uses (None: static)
    unit_pj: float = 0.0  # pJ of that unit per image (its event on every group)

    @classmethod
    def from_plans(cls, plans: Mapping[str, NodePlan], ledger: EnergyLedger, unit: str | None,
                   noc_units: Mapping[str, Mapping[str, float]],
                   ids: KindIds | None = None) -> ImageEnergyModel:
        """From a pipeline's work plan, the ledger its kinds are registered in (under
        *ids*, by default found by name; *unit*: the on-line unit they were registered
        with) and the NoC units of one image per layer (``NocLoad.layer_units``: flit-hops,
        received bytes, off-chip bytes, bytes read at the source, input bytes)."""
        ids = ids if ids is not None else kind_ids_in(dict(plans), ledger)
        e = ledger.energy
        unit = unit if isinstance(unit, str) else None
        unit_e = float(ledger.energy[EVENTS.index(unit)]) if unit else 0.0
        groups = 0
        per_plane: dict[str, np.ndarray] = {}
        per_group: dict[str, np.ndarray] = {}
        positions: dict[str, int] = {}
        fixed = 0.0
        for name, plan in plans.items():
            if plan.kind == "input":
                continue
            out = ledger.kinds[ids.of("output", name)].per_occurrence @ e
            if plan.kind not in WEIGHT_KINDS:
                fixed += float(out) * plan.out_h
                continue
            pos = plan.positions
            fixed += float(out) * pos
            plane_e = np.zeros(plan.row_blocks)
            occ = np.zeros(plan.row_blocks)
            for lane in plan.lanes:  # replicas share a row block's groups by position
                k = ledger.kinds[ids.mvm[lane.key]]
                w = len(lane.positions) / pos
                plane_e[lane.row_block] += float(k.per_unit @ e) * w
                occ[lane.row_block] += float(k.per_occurrence @ e) * w
            per_plane[name], per_group[name], positions[name] = plane_e, occ, pos
            groups += plan.row_blocks * pos
        for name, units in noc_units.items():
            for role, n in units.items():
                if n:
                    fixed += float(ledger.kinds[ids.of(role, name)].per_unit @ e) * n
        return cls(per_plane, per_group, positions, fixed, unit, unit_e * groups)

    @classmethod
    def build(cls, graph: nx.DiGraph, mapping, hw, unit: str | None) -> ImageEnergyModel:
        """Build the work plan of a pipeline whose policy uses on-line unit *unit* and take
        its energies."""
        from simulator.runner.simulate import BUSY_CLASSES, event_energies, prepare_timing

        ledger = EnergyLedger(event_energies(hw, mapping), float(hw.crossbar.read_ns),
                              BUSY_CLASSES)
        timing = prepare_timing(graph, mapping, hw)  # the plans and one image's packets
        ids = register_kinds(timing.plans, ledger, unit)
        return cls.from_plans(timing.plans, ledger, unit, timing.noc.layer_units, ids)

    def energy(self, image_planes: Mapping[str, np.ndarray]) -> np.ndarray:
        """Dynamic energy (pJ) of each image from its plane sums ``{layer: (N, row
        blocks)}`` (the row blocks in the mapping's order)."""
        n = len(next(iter(image_planes.values()))) if image_planes else 0
        tot = np.full(n, self.per_image)
        for name, plane_e in self.per_plane.items():
            s = np.asarray(image_planes[name], dtype=float)
            tot += s @ plane_e + float(self.per_group[name].sum()) * self.positions[name]
        return tot


def spread(values: np.ndarray) -> dict[str, float]:
    """min / median / mean / max of per-image values."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {}
    return {"min": float(v.min()), "median": float(np.median(v)), "mean": float(v.mean()),
            "max": float(v.max())}


def _mean_bits(planes: Mapping[str, np.ndarray], positions: Mapping[str, int]) -> float:
    tot = sum(float(np.asarray(p).sum()) for p in planes.values())
    groups = sum(np.asarray(p).size * positions[n] for n, p in planes.items())
    return tot / groups if groups else 0.0


#: how the decomposition names the on-line units
UNIT_NAMES = {"precision_detect": "detect unit", "precision_select": "statistics unit"}


def decomposition(precision: Mapping[str, Any],
                  models: Mapping[str | None, ImageEnergyModel],
                  bits: int) -> list[dict[str, Any]] | None:
    """Static → zero-group skipping → msb-trim → every lossy pipeline, per measured image.

    ``saving_vs_previous``: of a lossless step against the step before it, of each lossy
    pipeline against msb-trim (the lossy pipelines are alternatives, not a chain).

    Uses the activations of the scenario's ``static`` pipeline (lossless pipelines all see
    them) for the lossless steps and each lossy pipeline's own planes. Each step is charged
    only the on-line unit its policy needs (*models*: an :class:`ImageEnergyModel` per unit,
    None for static): zero-group skipping and msb-trim the detect unit, ReDy (and a custom
    policy) the statistics unit; ``unit_energy_pj_per_image`` is that unit's share, and
    ``unit_exceeds_saving`` says when it costs more than the step's fewer planes save.
    Returns None without a static pipeline.
    """
    static = next((pp for pp in precision.values() if pp.policy.policy == "static"), None)
    if static is None or not static.layers:
        return None
    pos = {n: lp.positions for n, lp in static.layers.items()}
    full = {n: lp.image_planes for n, lp in static.layers.items()}
    zero_skip = {n: bits * (lp.positions - lp.image_zero_groups)
                 for n, lp in static.layers.items()}
    msb = {n: lp.image_msb_planes for n, lp in static.layers.items()}
    steps: list[tuple[str, str | None, dict[str, np.ndarray], str | None, Any]] = [
        ("static", _name(precision, static), full, None, static),
        ("zero-group skipping", None, zero_skip, online_unit("zero-skip"), static),
        ("msb-trim (lossless)", None, msb, online_unit("msb-trim"), static),
    ]
    for pname, pp in precision.items():
        if pp.policy.policy not in ("static", "zero-skip", "msb-trim"):
            planes = {n: lp.image_planes for n, lp in pp.layers.items()}
            steps.append((f"{pname} (lossy)", pname, planes, online_unit(pp.policy.policy),
                          pp))
    out: list[dict[str, Any]] = []
    base = prev = prev_unit = None
    for label, pname, planes, unit, pp in steps:
        model = models[unit]
        e = float(model.energy(planes).mean())
        base = e if base is None else base
        # the unit's cost beyond the previous step's (a step that adds a unit pays it)
        added = model.unit_pj - (models[prev_unit].unit_pj if prev is not None else 0.0)
        out.append({
            "step": label, "pipeline": pname, "lossless": pp is static,
            "dynamic_energy_pj_per_image": e,
            "ratio_to_static": e / base if base else float("nan"),
            "saving_vs_previous": (1 - e / prev) if prev else 0.0,
            "unit": unit, "unit_energy_pj_per_image": model.unit_pj,
            "unit_exceeds_saving": bool(prev is not None and added > 0
                                        and e >= prev),
            "planes_saving_pj_per_image": (prev - e + added) if prev is not None else 0.0,
            "mean_bits": _mean_bits(planes, pos),
            "accuracy": pp.accuracy, "top5": pp.top5, "images": pp.images})
        if pp is static:  # lossy pipelines are alternatives: each is compared to msb-trim
            prev, prev_unit = e, unit
    return out


def _name(precision: Mapping[str, Any], pp: Any) -> str | None:
    return next((n for n, p in precision.items() if p is pp), None)


def image_analysis(precision: Mapping[str, Any], results: Mapping[str, Any], graph: nx.DiGraph,
                   mapping, hw, noc_units: Mapping[str, Mapping[str, float]],
                   ) -> dict[str, Any]:
    """Per pipeline the spread over the measured images of mean bits per group and dynamic
    energy per image, and the saving decomposition (summary.json ``images``); *noc_units*
    are the NoC units of one image per layer (``NocLoad.layer_units``)."""
    models: dict[str | None, ImageEnergyModel] = {}
    out: dict[str, Any] = {"spread": {}, "decomposition": None}
    for pname, pp in precision.items():
        pr = results.get(pname)
        if pr is None or not pp.layers:
            continue
        model = ImageEnergyModel.from_plans(pr.plans, pr.ledger, pr.unit, noc_units, pr.ids)
        models.setdefault(model.unit, model)
        e = model.energy({n: lp.image_planes for n, lp in pp.layers.items()})
        out["spread"][pname] = {"images": int(pp.images),
                                "mean_bits": spread(pp.image_mean_bits()),
                                "dynamic_energy_pj": spread(e)}
    if None in models:
        needed = {online_unit(p) for p in ("zero-skip", "msb-trim")}
        needed |= {online_unit(pp.policy.policy) for pp in precision.values()}
        for unit in needed - set(models):
            models[unit] = ImageEnergyModel.build(graph, mapping, hw, unit)
        out["decomposition"] = decomposition(precision, models, int(hw.activations.bits))
    return out
