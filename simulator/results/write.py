"""Turning a RunResult into summary.json, layers.csv, timeline.csv and the printed table."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from simulator.model.ledger import COMPONENTS, EVENTS
from simulator.runner.latency import slower_text, slower_than
from simulator.runner.simulate import PipelineResult


def pipeline_summary(pr: PipelineResult, precision=None) -> dict[str, Any]:
    """The per-pipeline block of summary.json."""
    led = pr.ledger
    by_comp = {k: v for k, v in led.energy_by_component().items()}
    out: dict[str, Any] = {
        "policy": pr.policy,
        "fidelity": pr.fidelity,
        "images": pr.images,
        "latency_ns": pr.latency_ns,
        "throughput_ips": pr.throughput_ips,   # never a transient: measured or the bound
        "throughput_is": pr.throughput_is,     # "measured" (steady state) | "bound"
        "throughput_basis": pr.throughput_basis,
        "throughput_measured_ips": pr.throughput_measured_ips,
        "throughput_bound_ips": pr.throughput_bound_ips,
        "bounding_unit": pr.bounding_unit,
        "busiest_units": pr.busiest_units,
        "warmup_images": pr.warmup_images,
        "image_done_ns": list(pr.timing.image_done_ns),
        "noc_traffic": pr.noc_traffic,
        "simulated_ns": pr.timing.end_ns,
        "energy_pj": {
            "total": led.total_energy(),
            "dynamic": led.dynamic_energy(),
            "static": sum(led.static_pj.values()),
            "per_image": led.total_energy() / pr.images,
            # steady state: dynamic energy per image + static power over one pipeline period
            "per_image_steady_state": led.dynamic_energy() / pr.images
            + sum(pr.static_mw.values()) * (1e9 / pr.throughput_ips if pr.throughput_ips
                                            else 0.0),
            "by_component": by_comp,
            "by_layer": led.energy_by_layer(),
        },
        "counts": pr.counts(),
        "counts_per_image": {k: v / pr.images for k, v in pr.counts().items()},
        "events": {k: v for k, v in led.event_counts().items()},
        "mean_bits_per_group": pr.mean_bits_per_group(),
        "static_power_mw": pr.static_mw,
    }
    if precision is not None:
        out["accuracy"] = precision.accuracy
        out["top5"] = precision.top5
        out["measured_images"] = precision.images
        out["precision"] = {
            name: {"mean_bits": lp.mean_bits, "hist": [int(x) for x in lp.hist],
                   "saturated_fraction": lp.saturated_fraction,
                   "zero_group_fraction": lp.zero_group_fraction,
                   "rel_rms_error": lp.rel_rms_error}
            for name, lp in precision.layers.items()}
    return out


def figure_basis(images: int, measured: int | None) -> dict[str, str]:
    """What each figure of the pipelines' blocks covers (summary.json ``basis``, keyed
    ``pipelines.*.KEY``): totals over the simulated images, per image, or over the
    measured images. Every pipeline of a run streams the same images."""
    total = f"total over the {images} simulated image(s)"
    out = {
        "latency_ns": "the first image: from the start of the stream to its completion",
        "counts": total,
        "events": total,
        "noc_traffic": total,
        "energy_pj": f"{total}; per_image and per_image_steady_state: per image",
        "counts_per_image": f"per image: counts / {images}",
        "mean_bits_per_group": f"mean over the groups of the {images} simulated image(s)",
    }
    if measured is not None:
        over = f"over the {measured} measured image(s) of the precision pass"
        out.update({"accuracy": over, "top5": over, "precision": over, "spread": over})
    return {f"pipelines.*.{k}": v for k, v in out.items()}


def headline(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The one redy / static energy figure a run leads with (summary.json ``headline``).

    With a saving decomposition and no leakage in either pipeline: the mean dynamic energy
    per image over the measured images (the decomposition's redy step; it is also the
    total energy, static power being zero). Otherwise the steady-state energy per image
    over the simulated images (dynamic + static power over one pipeline period). None
    without a static and a redy pipeline.
    """
    pipes = summary.get("pipelines") or {}
    if "static" not in pipes or "redy" not in pipes:
        return None
    leak = any(pipes[n]["energy_pj"]["static"] for n in ("static", "redy"))
    step = next((st for st in summary.get("decomposition") or []
                 if st.get("pipeline") == "redy" and not st.get("lossless", True)), None)
    if step is not None and not leak:
        n = step["images"]
        return {"metric": "energy per image, redy / static", "ratio": step["ratio_to_static"],
                "images": n, "source": "decomposition",
                "basis": f"mean over the {n} measured images (dynamic energy; this chip has "
                         "no static power)"}
    comp = summary.get("comparison") or {}
    n = pipes["redy"]["images"]
    return {"metric": "energy per image, redy / static",
            "ratio": comp.get("steady_state_energy_ratio"), "images": n,
            "source": "comparison.steady_state_energy_ratio",
            "basis": f"steady state over the {n} simulated image(s) (dynamic energy per "
                     "image + static power over one pipeline period)"}


def build_summary(rr) -> dict[str, Any]:
    """summary.json content (keys are stable: later versions add, never rename)."""
    sc, hw = rr.scenario, rr.hardware
    pipes = {name: pipeline_summary(pr, rr.precision.get(name))
             for name, pr in rr.pipelines.items()}
    m = rr.mapping
    summary: dict[str, Any] = {
        "scenario": sc.name,
        "hardware": hw.name,
        # the hardware as simulated: file, what was changed from it, hash, every value
        "hardware_spec": hw.provenance(),
        "workload": sc.workload.model,
        "workload_note": rr.workload.note,
        "workload_info": {**rr.workload.info, "weight_bits_in_accuracy_path": hw.weights.bits,
                          "accuracy_crossbar": sc.accuracy.crossbar},
        "float_accuracy": rr.float_accuracy,
        "float_top5": rr.float_top5,
        "tiles_per_router": hw.chip.tiles_per_router,
        "hardware_warnings": hw.warnings(),
        "mapping": {"crossbars_used": m.crossbars_used,
                    "crossbars_available": m.crossbars_available,
                    "tiles_used": m.tiles_used, "chips": m.chips},
        "pipelines": pipes,
        "basis": figure_basis(sc.simulation.images,
                              next((pp.images for pp in rr.precision.values()), None)),
        "wall_s": rr.wall_s,
    }
    for name, sp in (rr.images.get("spread") or {}).items():
        if name in pipes:
            pipes[name]["spread"] = sp
    for name, pipe in pipes.items():  # the pipeline as run: policy and its parameters
        if name in sc.pipelines:
            pipe["policy_spec"] = sc.pipelines[name].model_dump(mode="json")
    if rr.images.get("decomposition") is not None:
        summary["decomposition"] = rr.images["decomposition"]
    if "static" in pipes and "redy" in pipes:
        summary["comparison"] = compare(pipes["static"], pipes["redy"])
        summary["headline"] = headline(summary)
    base = next((pr for pr in rr.pipelines.values() if pr.policy == "static"), None)
    for name, pr in rr.pipelines.items():
        slow = slower_than(pr, base) if base is not None and pr is not base else None
        if slow is not None:  # a dynamic pipeline slower than static: where, and why
            pipes[name]["slower_than_static"] = slow
    return summary


def compare(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Ratios other / base of the headline figures."""
    def ratio(a: float, b: float) -> float:
        return float(a / b) if b else float("nan")

    return {
        "energy_ratio": ratio(other["energy_pj"]["total"], base["energy_pj"]["total"]),
        "dynamic_energy_ratio": ratio(other["energy_pj"]["dynamic"],
                                      base["energy_pj"]["dynamic"]),
        "steady_state_energy_ratio": ratio(other["energy_pj"]["per_image_steady_state"],
                                           base["energy_pj"]["per_image_steady_state"]),
        "latency_ratio": ratio(other["latency_ns"], base["latency_ns"]),
        # like with like: both measured in steady state, else both bounds
        "throughput_ratio": (ratio(other["throughput_ips"], base["throughput_ips"])
                             if other.get("throughput_is") == base.get("throughput_is")
                             else ratio(other["throughput_bound_ips"],
                                        base["throughput_bound_ips"])),
        "throughput_ratio_of": (base.get("throughput_is", "measured")
                                if other.get("throughput_is") == base.get("throughput_is")
                                else "bound"),
        "adc_conversion_ratio": ratio(other["counts"]["adc_conversions"],
                                      base["counts"]["adc_conversions"]),
        "crossbar_read_ratio": ratio(other["counts"]["crossbar_reads"],
                                     base["counts"]["crossbar_reads"]),
        "mean_bits_ratio": ratio(other["mean_bits_per_group"], base["mean_bits_per_group"]),
    }


#: layers.csv columns after the per-component energies: precision statistics of the layer
#: over the measured images (``hist``: groups streaming 0..B planes, joined by "|")
LAYER_STAT_COLUMNS = ("zero_group_fraction", "saturated_fraction", "rel_rms_error", "hist")


def write_layers_csv(rr, path: Path) -> None:
    """Per layer and pipeline: mapping, groups, bits, conversions, energy by component."""
    comps = list(COMPONENTS)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pipeline", "layer", "kind", "crossbars", "replicas", "groups",
                    "mean_bits", "adc_conversions", "crossbar_reads", "busy_ns", "energy_pj",
                    *[f"energy_pj:{c}" for c in comps], *LAYER_STAT_COLUMNS])
        for pname, pr in rr.pipelines.items():
            by_layer = pr.ledger.counts_by_layer()
            busy_of: dict[str, float] = {}
            for (layer, _, _), v in pr.timing.lane_busy_ns.items():
                busy_of[layer] = busy_of.get(layer, 0.0) + v
            precision = rr.precision.get(pname)
            for name, plan in pr.plans.items():
                c = by_layer.get(name)
                if c is None:
                    continue
                e_comp = pr.ledger.component_energy(c)
                groups, planes = pr.lanes_groups_and_planes(plan.lanes)
                lm = rr.mapping.layers.get(name)
                lp = precision.layers.get(name) if precision is not None else None
                stats = ([f"{lp.zero_group_fraction:.6f}", f"{lp.saturated_fraction:.6f}",
                          f"{lp.rel_rms_error:.6f}", "|".join(str(int(x)) for x in lp.hist)]
                         if lp is not None else ["", "", "", ""])
                w.writerow([pname, name, plan.kind, lm.crossbars if lm else 0,
                            lm.replicas if lm else 0, groups,
                            f"{planes / groups:.4f}" if groups else "",
                            int(c[EVENTS.index("adc_conversion")]),
                            int(c[EVENTS.index("crossbar_read")]),
                            f"{busy_of.get(name, 0.0):.1f}",
                            f"{float(c @ pr.ledger.energy):.3f}",
                            *[f"{e_comp[cc]:.3f}" for cc in comps], *stats])


def time_axis(pipelines, bins: int) -> tuple[float, int]:
    """One time axis for every pipeline of a run: (bin width ns, number of bins).

    The width is a whole multiple of every pipeline's ledger bin (they are all
    ``crossbar.read_ns`` × a power of two) and gives at most *bins* bins over the longest
    pipeline; shorter pipelines are padded with idle bins, so rows line up.
    """
    prs = list(pipelines)
    base = max(pr.ledger.bin_ns for pr in prs)
    end = max(max(pr.ledger.end_ns, pr.timing.end_ns) for pr in prs)
    width = base * max(1, int(np.ceil(end / base / bins)))
    return width, max(1, int(np.ceil(end / width)))


def timeline(pr: PipelineResult, bins: int, axis: tuple[float, int] | None = None,
             ) -> dict[str, np.ndarray]:
    """Utilization per busy class and power (mW) per component on a time axis.

    *axis* (width, count) from :func:`time_axis` (default: this pipeline alone).
    """
    width, m = axis if axis is not None else time_axis([pr], bins)
    t, busy = pr.ledger.busy_bins()
    _, energy = pr.ledger.energy_bins()
    group = int(round(width / pr.ledger.bin_ns))

    def rebin(a: np.ndarray) -> np.ndarray:
        pad = np.zeros(max(m * group, len(a)))
        pad[: len(a)] = a
        return pad[: m * group].reshape(m, group).sum(axis=1)

    out = {"t_ns": np.arange(m) * width, "bin_ns": np.full(m, width)}
    for cls, arr in busy.items():
        cap = pr.capacity.get(cls, 1.0) or 1.0
        out[f"util:{cls}"] = np.clip(rebin(arr) / (width * cap), 0.0, 1.0)
    for comp, arr in energy.items():
        out[f"power_mw:{comp}"] = rebin(arr) / width  # pJ / ns = mW
    return out


def write_timeline_csv(rr, path: Path, bins: int) -> None:
    """timeline.csv: per time bin and pipeline, utilization and power by component.

    Every pipeline uses the same time axis (:func:`time_axis`).
    """
    axis = time_axis(rr.pipelines.values(), bins)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        header_written = False
        for pname, pr in rr.pipelines.items():
            tl = timeline(pr, bins, axis)
            keys = list(tl)
            if not header_written:
                w.writerow(["pipeline", *keys])
                header_written = True
            cols = [tl[k] for k in keys]
            w.writerows([pname, *(f"{c[i]:.6g}" for c in cols)] for i in range(len(cols[0])))


def write_tiles_csv(rr, path: Path) -> None:
    """tiles.csv: busy time and utilization of every powered tile's crossbars."""
    hw = rr.hardware
    tpr, cols = hw.chip.tiles_per_router, hw.chip.mesh_cols
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pipeline", "tile", "chip", "router", "router_row", "router_col",
                    "crossbars", "busy_ns", "utilization"])
        for pname, pr in rr.pipelines.items():
            busy: dict[int, float] = {}
            xbars: dict[int, int] = {}
            for plan in pr.plans.values():
                for lane in plan.lanes:
                    b = pr.timing.lane_busy_ns.get((lane.layer, lane.replica, lane.row_block),
                                                   0.0)
                    for part in lane.parts:
                        busy[part.tile] = busy.get(part.tile, 0.0) + b * part.crossbars
                        xbars[part.tile] = xbars.get(part.tile, 0) + part.crossbars
            span = pr.timing.end_ns or 1.0
            for tile in sorted(xbars):
                local = tile % hw.chip.tiles
                router = local // tpr
                w.writerow([pname, tile, tile // hw.chip.tiles, router, router // cols,
                            router % cols, xbars[tile], f"{busy[tile]:.1f}",
                            f"{busy[tile] / (xbars[tile] * span):.6f}"])


def _measured(p: dict[str, Any]) -> str:
    """Measured throughput, marked when it exceeds the bound (a transient)."""
    m = p.get("throughput_measured_ips")
    if m is None:
        return "-"
    bound = p.get("throughput_bound_ips")
    return f"{m:.1f}" + (" (transient)" if bound is not None and m > bound * (1 + 1e-9)
                         else "")


def _unit_label(unit: dict | None) -> str:
    """Short name of the bounding unit: its class and instance."""
    if not unit:
        return "-"
    return f"{unit.get('unit', '?')} ({unit.get('where', '')})"


def format_table(summary: dict[str, Any]) -> str:
    """The comparison table printed by ``redysim run``."""
    pipes = summary["pipelines"]
    names = list(pipes)
    rows: list[tuple[str, list[str]]] = []

    def add(label: str, fn, fmt: str) -> None:
        rows.append((label, [format(fn(pipes[n]), fmt) for n in names]))

    add("latency (µs)", lambda p: p["latency_ns"] / 1e3, ".2f")
    rows.append(("throughput, measured (img/s)", [_measured(pipes[n]) for n in names]))
    add("throughput bound (img/s)", lambda p: p.get("throughput_bound_ips", float("nan")),
        ".1f")
    rows.append(("  bound by", [_unit_label(pipes[n].get("bounding_unit")) for n in names]))
    add("energy / image (µJ)", lambda p: p["energy_pj"]["per_image"] / 1e6, ".3f")
    add("  dynamic (µJ)", lambda p: p["energy_pj"]["dynamic"] / 1e6 / p["images"], ".3f")
    add("  static (µJ)", lambda p: p["energy_pj"]["static"] / 1e6 / p["images"], ".3f")
    add("  ADC (µJ)", lambda p: p["energy_pj"]["by_component"].get("adc", 0) / 1e6 / p["images"],
        ".3f")
    add("  crossbar (µJ)",
        lambda p: p["energy_pj"]["by_component"].get("crossbar", 0) / 1e6 / p["images"], ".3f")
    add("  DAC (µJ)", lambda p: p["energy_pj"]["by_component"].get("dac", 0) / 1e6 / p["images"],
        ".3f")
    add("ADC conversions / image (M)",
        lambda p: p["counts"]["adc_conversions"] / p["images"] / 1e6, ".3f")
    add("crossbar reads / image (M)",
        lambda p: p["counts"]["crossbar_reads"] / p["images"] / 1e6, ".3f")
    add("mean bits / group", lambda p: p["mean_bits_per_group"], ".3f")
    rows.extend(_measured_rows(pipes, names))
    w0 = max(len(r[0]) for r in rows) + 2
    ws = [max(12, len(n) + 2, *(len(r[1][i]) + 2 for r in rows)) for i, n in enumerate(names)]
    sim = sorted({pipes[n]["images"] for n in names})
    lines = [f"simulated: {'/'.join(map(str, sim))} image(s) streamed through the chip; "
             "'/ image' rows are means over them",
             "".ljust(w0) + "".join(n.rjust(w) for n, w in zip(names, ws, strict=True))]
    for label, vals in rows:
        lines.append(label.ljust(w0) + "".join(v.rjust(w) for v, w in zip(vals, ws, strict=True)))
    comp = summary.get("comparison")
    if comp:
        lines.append("")
        head = summary.get("headline")
        headed = bool(head and head.get("ratio") is not None)
        if headed:
            lines.append(f"headline: redy / static energy per image ×{head['ratio']:.3f}, "
                         f"{head['basis']}")
        # the energy ratio is said once: here only for a summary written without a headline
        ratios = ("" if headed else "energy {energy_ratio:.3f}, ") + (
            "latency {latency_ratio:.3f}, ADC conversions {adc_conversion_ratio:.3f}, "
            "mean bits {mean_bits_ratio:.3f}")
        lines.append(f"redy / static over the {pipes['redy']['images']} simulated image(s): "
                     + ratios.format(**comp))
    for name, p in pipes.items():
        if p.get("slower_than_static"):
            lines.append(slower_text(name, "static", p["slower_than_static"]))
    if summary.get("float_accuracy") is not None:
        top5 = summary.get("float_top5")
        lines.append(f"float top-1 accuracy: {summary['float_accuracy']:.2f}%"
                     + (f", top-5 {top5:.2f}%" if top5 is not None else ""))
    lines.append("throughput: measured in steady state (the fill and the drain left out; "
                 "'-' where the streamed images do not reach it, and summary.json's "
                 "throughput_ips is then the bound); bound = 1 / the busiest unit's work per "
                 "image, an upper bound (summary.json: throughput_basis)")
    lines.extend(format_decomposition(summary.get("decomposition")))
    return "\n".join(lines)


def _measured_rows(pipes: dict[str, Any], names: list[str]) -> list[tuple[str, list[str]]]:
    """Table rows measured over all images of the precision pass (accuracy, spreads)."""
    rows: list[tuple[str, list[str]]] = []

    def opt(key: str, fmt: str) -> list[str]:
        return ["-" if pipes[n].get(key) is None else format(pipes[n][key], fmt) for n in names]

    if any(pipes[n].get("accuracy") is not None for n in names):
        rows.append(("top-1 accuracy (%)", opt("accuracy", ".2f")))
        rows.append(("top-5 accuracy (%)", opt("top5", ".2f")))
    spreads = [pipes[n].get("spread") for n in names]
    if all(sp and sp.get("mean_bits") for sp in spreads):
        n_img = spreads[0]["images"]

        def mmm(sp: dict[str, float], scale: float, fmt: str) -> str:
            return "/".join(format(sp[k] * scale, fmt) for k in ("min", "median", "max"))

        rows.append((f"over {n_img} measured images:", ["" for _ in names]))
        rows.append(("  mean bits min/med/max",
                     [mmm(sp["mean_bits"], 1.0, ".2f") for sp in spreads]))
        rows.append(("  dyn. µJ/img min/med/max",
                     [mmm(sp["dynamic_energy_pj"], 1e-6, ".4g") for sp in spreads]))
    return rows


def format_decomposition(dec: list[dict[str, Any]] | None) -> list[str]:
    """Lines of the saving decomposition (static → zero skipping → msb-trim → lossy)."""
    if not dec:
        return []
    lines = ["", f"where the saving comes from (dynamic energy per image, mean over "
                 f"{dec[0]['images']} measured images, analytic counts):"]
    for i, st in enumerate(dec):
        acc = st.get("accuracy")
        ref = "vs msb-trim" if not st.get("lossless", True) else "vs previous"
        step = f"{-100 * st['saving_vs_previous']:+6.2f}% {ref:<11}" if i else " " * 19
        unit = st.get("unit")
        lines.append(f"  {st['step']:<24} {st['dynamic_energy_pj_per_image'] / 1e6:10.4g} µJ  "
                     f"×{st['ratio_to_static']:.3f} of static  {step}  "
                     f"{st['mean_bits']:.3f} bits"
                     + (f"  top-1 {acc:.2f}%" if acc is not None else "")
                     + (f"  [{_UNITS.get(unit, unit)} "
                        f"{st['unit_energy_pj_per_image'] / 1e6:.3g} µJ]" if unit else ""))
        if st.get("unit_exceeds_saving"):
            lines.append(f"    {'':<22} the {_UNITS.get(unit, unit)} costs "
                         f"{st['unit_energy_pj_per_image'] / 1e6:.3g} µJ, more than the "
                         f"{st['planes_saving_pj_per_image'] / 1e6:.3g} µJ its fewer planes "
                         "save")
    return lines


#: the on-line units as the decomposition names them
_UNITS = {"precision_detect": "detect unit", "precision_select": "statistics unit"}


def write_results(rr, out_dir: str | Path, plots: bool = True) -> dict[str, Any]:
    """Write summary.json, layers.csv, timeline.csv, tiles.csv, the plots and report.html
    into *out_dir* (*plots* False: no plots and no report; ``redysim plot`` draws them)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = build_summary(rr)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default))
    write_layers_csv(rr, out_dir / "layers.csv")
    bins = rr.scenario.simulation.time_bins
    write_timeline_csv(rr, out_dir / "timeline.csv", bins)
    write_tiles_csv(rr, out_dir / "tiles.csv")
    recorders = [pr.trace for pr in rr.pipelines.values() if pr.trace is not None]
    if recorders:
        import time

        from simulator.engine.trace import write_trace

        t0 = time.perf_counter()
        size = write_trace(recorders, out_dir / "trace.json")
        summary["trace"] = {"bytes": size, "events": sum(len(r.events) for r in recorders),
                            "sample_every": recorders[0].sample_every,
                            "write_s": time.perf_counter() - t0}
        (out_dir / "summary.json").write_text(
            json.dumps(summary, indent=2, default=json_default))
    if plots:
        import os

        from simulator.results.html import write_report
        from simulator.results.plots import draw_all

        # PNG only here (the report embeds them); `redysim plot DIR --format svg` adds vectors
        draw_all(out_dir, formats=("png",), processes=min(os.cpu_count() or 1, 4))
        write_report(out_dir)
    return summary


def json_default(o: Any) -> Any:
    """JSON encoder fallback for numpy scalars and arrays."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
