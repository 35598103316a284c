"""One sweep point's summary.json as the study's plain rows (per image, component groups).

:func:`point_row` reads a point (its ``point.json`` and ``summary.json``) and
:func:`pipeline_row` one pipeline of it: energy per image, the energy of each component
group of the study's tables (:data:`COMPONENT_GROUPS`), counts per image, bits, latency,
throughput, accuracy and the policy as run.
"""

from __future__ import annotations

from typing import Any

# component groups of the study's tables: label -> summary.json by_component keys
COMPONENT_GROUPS: dict[str, tuple[str, ...]] = {
    "ADC": ("adc",),
    "DAC": ("dac",),
    "crossbar": ("crossbar",),
    "S+H": ("sample_hold",),
    "shift-and-add": ("ima_shift_add", "tile_shift_add"),
    "registers": ("input_register", "ima_output_register", "tile_output_register"),
    "eDRAM": ("edram",),
    "bus": ("bus",),
    "NoC": ("router", "offchip"),
    "digital (act., pool)": ("activation", "maxpool"),
    "precision unit": ("precision_select", "precision_detect"),  # statistics / detect
}


def pipeline_row(p: dict[str, Any]) -> dict[str, Any]:
    """The figures of one pipeline of summary.json, per image where they are totals."""
    n = max(1, int(p.get("images") or 1))
    e = p["energy_pj"]
    comps = e.get("by_component", {})
    groups = {lab: sum(float(comps.get(k, 0.0)) for k in keys) / n
              for lab, keys in COMPONENT_GROUPS.items()}
    groups["static power"] = float(e.get("static", 0.0)) / n
    counts = {k: float(v) / n for k, v in p.get("counts", {}).items()}
    return {"policy": p.get("policy"), "params": p.get("policy_spec"),
            "fidelity": p.get("fidelity"), "images": n,
            "energy_pj": float(e["per_image"]), "dynamic_pj": float(e["dynamic"]) / n,
            "components_pj": groups, "counts": counts,
            "mean_bits": p.get("mean_bits_per_group"), "latency_ns": p.get("latency_ns"),
            "throughput_measured_ips": p.get("throughput_measured_ips"),
            "throughput_bound_ips": p.get("throughput_bound_ips"),
            "bounding_unit": p.get("bounding_unit"), "warmup": p.get("warmup_images"),
            "simulated_ns": p.get("simulated_ns"),
            "accuracy": p.get("accuracy"),
            "top5": p.get("top5"), "measured_images": p.get("measured_images")}


def point_row(info: dict[str, Any], summ: dict[str, Any] | None) -> dict[str, Any]:
    """One sweep point: axes, status, hardware figures, wall times, every pipeline."""
    row: dict[str, Any] = {"id": info.get("id"), "axes": info.get("axes", {}),
                           "status": info.get("status"), "error": info.get("error"),
                           "hardware": info.get("hardware", {}),
                           "wall_s": info.get("wall_s", {}), "point_s": info.get("point_s")}
    if summ is None:
        return row
    row.update({
        "network": summ.get("workload"), "scenario": summ.get("scenario"),
        "workload_info": summ.get("workload_info", {}), "mapping": summ.get("mapping", {}),
        "float_accuracy": summ.get("float_accuracy"),
        "hardware_warnings": summ.get("hardware_warnings", []),
        "decomposition": summ.get("decomposition"),
        "pipelines": {name: pipeline_row(p) for name, p in summ["pipelines"].items()}})
    return row
