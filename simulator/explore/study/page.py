"""The study's page: markdown tables, plots and the notes that follow from the numbers.

:func:`write_page` renders the data gathered by :func:`simulator.explore.study.run.run_study`
(the content of ``study.json``) into ``docs/validation.md`` (or the study's ``doc``) and
its plots into the study's ``figures`` folder. Every figure is computed by
:mod:`simulator.explore.study.facts`; the templates here only format those facts, so
rerunning the study rewrites the page consistently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from simulator.explore.study import plots
from simulator.explore.study.facts import (
    AboveBound,
    FidelityFacts,
    Headline,
    IsaacFacts,
    PaperRow,
    PolicyParams,
    Stream,
    StudyFacts,
    Throughput,
    study_facts,
)
from simulator.explore.study.spec import Study

TV = "random weights + calibrated BatchNorm"


# --------------------------------------------------------------------------- formatting


def _f(x: Any, fmt: str = ".3f", none: str = "—") -> str:
    if x is None:
        return none
    try:
        return format(float(x), fmt)
    except (TypeError, ValueError):
        return str(x)


def _pct(x: Any, fmt: str = ".1f") -> str:
    return "—" if x is None else f"{100 * float(x):{fmt}} %"


def _dev(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.2f} %"


def _tput(t: Throughput) -> str:
    """Measured / bound throughput, flagged when the measurement exceeds the bound."""
    flag = " **above the bound**" if t.above else ""
    return f"{_f(t.measured, ',.0f')} / {_f(t.bound, ',.0f')}{flag}"


def _tput_or_bound(t: Throughput) -> str:
    return _tput(t) if t.measured else f"{_f(t.bound, ',.0f')} bound"


def _above(a: AboveBound) -> str:
    busy = (f"; {a.unit} busy {_pct(a.busy_share, '.0f')} of the run"
            if a.unit and a.busy_share is not None else "")
    return (f"{a.network} {a.point} {a.pipeline}: {a.measured:,.0f} > {a.bound:,.0f} "
            f"(+{_pct(a.excess)}; {a.images} images, {a.warmup} warm-up, "
            f"~{a.in_flight:.0f} in flight{busy})")


def _num(x: Any) -> str:
    """A parameter as written (3.0 -> 3, 0.5 -> 0.5)."""
    return _f(x, "g", "?")


def _kv(d: dict[str, Any]) -> str:
    return f"k {_num(d['k'])}, ε {_num(d['epsilon'])}, min_bits {_num(d['min_bits'])}"


def _params(pp: PolicyParams) -> str:
    """One pipeline's ReDy parameters: once when every network has the same, else each."""
    if pp.common is not None:
        return f"`{pp.pipeline}`: {_kv(pp.common)} on every network"
    return f"`{pp.pipeline}`: " + "; ".join(
        f"{n} {_kv(v) if v is not None else 'parameters not recorded'}"
        for n, v in pp.by_network.items())


def _redy_kv(h: Headline, name: str) -> str | None:
    """The pipeline's ReDy parameters when every network ran the same ones."""
    for pp in h.params:
        if pp.pipeline == name and pp.common is not None:
            return _kv(pp.common)
    return None


def _redy(h: Headline, name: str) -> str:
    """`` (k …, ε …, min_bits …)`` after the pipeline's name when it has one setting."""
    kv = _redy_kv(h, name)
    return f" ({kv})" if kv else ""


def _shape(shape: list[int]) -> str:
    return "×".join(map(str, shape))


def _stream(st: Stream, measured: bool = False) -> str:
    text = f"{st.network}: {st.fidelity}, {st.images} image(s) streamed"
    if st.images and st.images > 1:
        text += f", {st.warmup} warm-up"
    if measured and st.measured_images:
        text += f", accuracy on {st.measured_images} test images"
    return text


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _figrel(study: Study) -> str:
    """The figures folder relative to the page (for image links)."""
    return os.path.relpath(study.figures, study.doc.parent)


# --------------------------------------------------------------------------- sections


def _static_note(h: Headline) -> str:
    """Networks whose total and dynamic savings differ by more than a point."""
    if not h.static_gap:
        return ""
    return (" The two differ because of " + ", ".join(
        f"{f.network} ({_pct(f.saving)} of the total, {_pct(f.dyn_saving)} of "
        "the dynamic energy)" for f in h.static_gap)
        + ": its energy is mostly the off-chip links' static power (§ By component).")


def _intro(fx: StudyFacts, study: Study, root: Path) -> list[str]:
    spec, h = study.spec, fx.headline
    rel = os.path.relpath(study.source, root)
    acc = "; ".join(
        f"{n}: static {a:.2f} %, " + ", ".join(f"{p} {d:+.2f}" for p, d in deltas.items()
                                               if p != spec.baseline) + " points"
        for n, a, deltas in h.acc)
    lines = [
        "# Validation: the ReDy study, reproduced and explained",
        "",
        f"*Generated by `redysim study {rel}` — do not edit by hand; rerun the command. "
        "Every number below comes from that run or from a file it names (the study file, "
        "the published figures, the peers' measurements); "
        f"`{os.path.relpath(study.results, root)}/study.json` holds them all, each sweep "
        "point's results folder the details.*",
        "",
        "## Headline",
        "",
    ]
    if h.n:
        lines += [
            f"- **Average energy saving of ReDy (`{spec.redy}`) over static "
            f"{_f(h.static_bits, '.0f', '?')}-bit: "
            f"{_pct(h.mean)}** of the energy per image over {h.n} networks (range "
            f"{_pct(h.min)} – {_pct(h.max)}), **{_pct(h.dyn_mean)} of the dynamic "
            f"energy**; the paper reports {_pct(spec.paper.average_saving, '.0f')}. "
            f"Trained networks {_pct(h.trained_mean)}, random-weight networks "
            f"{_pct(h.random_mean)}." + _static_note(h),
            "- **Accuracy (top-1 on "
            + (f"the {h.test_images}" if h.test_images else "each network's")
            + f" held-out test images)**: {acc}.",
            f"- The ADC carries {_pct(h.adc_share_mean)} of the saving on average "
            f"(at least {_pct(h.adc_share_min)} on every network).",
        ]
    if h.failed:
        lines.append(f"- **Failed points** (see their `error.txt`): {', '.join(h.failed)}.")
    return lines + [""]


def _what_ran(fx: StudyFacts, study: Study, root: Path) -> list[str]:
    w = fx.what_ran
    rows = [[f"`{t.sweep}`", t.role, t.points, t.ran, t.skipped, t.failed, f"{t.wall_s:.0f}",
             f"{t.points_s:.0f}", t.load_before, t.load_after] for t in w.sweeps]
    lines = ["## What was run", "",
             f"Study file `{os.path.relpath(study.source, root)}`; every sweep runs with "
             f"`redysim sweep`'s machinery (Dask local cluster, {study.spec.workers} worker "
             "processes of one thread; resumable; the artifact cache holds traced networks, "
             "scales and bit planes). Wall times are of this run on a shared machine, with "
             "the load average (the three of `/proc/loadavg`) before and after each sweep; "
             "a sweep whose points were all finished earlier shows its points as skipped "
             "and a short wall time. The sweeps share the workers and run at the same time, "
             "so their wall times overlap; *points s* is the sum of their points' own wall "
             "times (the work, on one worker each).",
             "",
             _table(["sweep", "role", "points", "ran", "skipped", "failed", "wall s",
                     "points s", "load before", "load after"], rows), ""]
    lines += [f"Sweeps in all: {w.sweeps_wall_s:.0f} s; ISAAC checks "
              f"{w.isaac_wall_s:.1f} s; "
              + (f"peers check {w.peers_wall_s:.1f} s; " if w.peers_wall_s is not None else "")
              + f"load at the end {w.load_end}; "
              f"started {w.started}, {w.machine}"
              + (f"; page redrawn from the finished points on {w.rendered_again} "
                 "(`--render`)" if w.rendered_again else "") + ".", "",
              f"Code: commit {w.commit}; Python {w.python}; "
              + ", ".join(f"{k} {v}" for k, v in w.packages.items()) + ".", ""]
    lines += ["Scenarios (base scenario of each sweep, and what the sweep sets on every "
              "point):", ""]
    for sc in w.scenarios:
        st = f"; set {sc.set}" if sc.set else ""
        lines.append(f"- `{sc.sweep}`: `{os.path.relpath(sc.scenario, root)}`{st}")
    lines += ["", "Networks, weights and data (from each point's `summary.json`):", ""]
    rows = [[n.network, "×".join(map(str, n.input_shape)),
             n.weights_detail + (f"; BatchNorm {n.batchnorm}" if n.batchnorm else ""),
             n.calibration_data, n.test_data, f"{n.fidelity}, {n.images}", n.chips,
             _f(n.point_s, ".0f")] for n in w.networks]
    lines += [_table(["network", "input", "weights", "calibration data",
                      "measured data", "fidelity, images simulated", "chips",
                      "point wall s"], rows), ""]
    rnd = w.random_weights
    lines += ["Seeds: torchvision weights and photograph crops use the scenario's "
              "`workload.seed`; the digits split and the trained models use fixed seeds of "
              "their own, and the trained models' weights are committed with their SHA-256 "
              "(docs/accuracy.md); the simulation has no randomness."
              + (f" {', '.join(rnd)} run with **{TV}** (no pretrained weights are cached "
                 "on the machine that ran this; `workload.weights: DEFAULT` takes them where "
                 "they are): energy only, no accuracy." if rnd else ""), ""]
    return lines


def _networks(fx: StudyFacts, study: Study) -> list[str]:
    spec = study.spec
    figs, rel = study.figures, _figrel(study)
    et = fx.energy
    params = "; ".join(_params(pp) for pp in fx.headline.params)
    lines = ["## Per network", "",
             "### Energy per inference", "",
             "Energy per image (µJ) of the simulated images (steady state included, "
             "static power included where the chip has any"
             + ("" if et.any_static_power else
                ": none of these chips has any, since ISAAC's Table I has no leakage figure")
             + "). Saving = 1 − pipeline / static. `msb-trim` is lossless; `redy` is our "
             "reconstruction of the paper's heuristic (docs/precision.md); `redy-tuned` "
             "holds the parameters `redysim tune` found on the calibration images (trained "
             "networks only; the policy file's header gives the command and the budget)."
             + (f" ReDy's parameters, as each point ran them: {params}." if params else ""),
             ""]
    others = [n for n in et.pipelines if n != spec.baseline]
    rows = [[r.network, "trained" if r.trained else "random"]
            + [_f(r.energy_uj[n], ".4g") if r.energy_uj[n] is not None else "—"
               for n in et.pipelines]
            + [_pct(r.saving[n]) for n in others] + [_pct(r.dyn_saving)] for r in et.rows]
    lines += [_table(["network", "weights"] + [f"{n} µJ" for n in et.pipelines]
                     + [f"saving {n}" for n in others]
                     + [f"dynamic-energy saving {spec.redy}"], rows), ""]
    f = plots.energy_ratios(et.plot_names, et.plot_ratios, figs / "energy.png",
                            spec.paper.average_saving)
    lines += [f"![energy relative to static]({rel}/{f})", ""]
    # decomposition
    dec = fx.decomposition
    lines += ["### Where the saving comes from: zero groups, lossless trimming, lossy "
              "clipping", "",
              "From `summary.json` `decomposition`: dynamic energy per image over *all* "
              "measured images (analytic counts, the same per-event energies), static → "
              "zero-group skipping → msb-trim → ReDy. Each step's saving is against the "
              "step before it (ReDy against msb-trim). Each step is charged the on-line unit "
              "it needs: zero-group skipping and msb-trim the detect unit (an OR tree), ReDy "
              "its statistics unit, so the first step is the zero saving net of the detect "
              "unit's energy and is negative only where that unit costs more than it "
              "saves.", ""]
    rows = [[d.network, d.images, _f(d.bits_static), _f(d.bits_zero), _f(d.bits_msb),
             _f(d.bits_redy) if d.bits_redy is not None else "—", _pct(d.zero, ".2f"),
             _pct(d.msb, ".2f"), _pct(d.lossy, ".2f"), _pct(d.total, ".2f")]
            for d in dec.rows]
    lines += [_table(["network", "images", "bits static", "bits zero-skip", "bits msb-trim",
                      "bits ReDy", "zero-skip (of static)", "msb-trim (of static)",
                      "ReDy lossy (of static)", "ReDy total"], rows), ""]
    f = plots.stacked(dec.plot_names, dec.plot_parts_pct, "saving, % of static energy",
                      figs / "decomposition.png")
    lines += [f"![decomposition of the saving]({rel}/{f})", ""]
    # components
    comp = fx.components
    lines += ["### By component", "",
              f"Static − `{spec.redy}` energy per image, per component, as a share of the "
              "total saving (negative: ReDy spends more there, e.g. the precision unit). "
              "S+H = sample-and-hold; registers = IMA input/output and tile output "
              "registers; NoC = routers and off-chip links.", ""]
    rows = [[c.network, _f(c.saving_uj, ".4g")] + [_pct(v) for v in c.share.values()]
            for c in comp.rows]
    lines += [_table(["network", "saving µJ"] + comp.labels, rows), ""]
    if comp.static_power:
        lines += ["Static power: " + "; ".join(
            f"{s.network} ({s.chips} chips) spends {_pct(s.share)} of its static-pipeline "
            "energy on it" for s in comp.static_power) + ". That is the off-chip links' "
            "static power (`offchip.static_w` per chip, ISAAC's HyperTransport figure, "
            "counted when more than one chip is used), integrated over the simulated time "
            "of one image, so a shorter run saves some of it: the \"static power\" "
            "column of the saving.", ""]
    f = plots.stacked(comp.plot_names, comp.plot_parts_pct, "saving, % of static energy",
                      figs / "components.png")
    lines += [f"![saving by component]({rel}/{f})", ""]
    # conversions, bits, latency, throughput
    lines += ["### ADC conversions, bits, latency and throughput", "",
              "ADC conversions per image (millions) and mean bit planes per activation "
              "group of the simulated images; latency of one image (first in to last out) "
              "and throughput: *measured* in steady state (event engine; the fill and the "
              "drain left out) with the busiest unit's bound beside it, or only the *bound* "
              "where one image was simulated, marked “bound”. Points: "
              + "; ".join(_stream(st) for st in et.streams) + ".", ""]
    rows = [[c.network, c.fidelity, _f(c.adc_static_m, ".4g"), _f(c.adc_redy_m, ".4g"),
             _f(c.bits_static), _f(c.bits_msb), _f(c.bits_redy),
             _f(c.latency_static_us, ".2f"), _f(c.latency_redy_us, ".2f"),
             _tput_or_bound(c.tput_static), _tput_or_bound(c.tput_redy),
             f"{c.bound_unit} ({c.bound_where})"] for c in fx.conversions]
    lines += [_table(["network", "fidelity", "ADC conv. static (M)", f"ADC conv. {spec.redy} (M)",
                      "bits static", "bits msb-trim", f"bits {spec.redy}", "latency static µs",
                      f"latency {spec.redy} µs", "img/s static (measured / bound)",
                      f"img/s {spec.redy} (measured / bound)",
                      f"{spec.redy} bound by"], rows), ""]
    return lines


def _overhead(fx: StudyFacts, study: Study, root: Path) -> list[str]:
    lines = ["### The precision unit's overhead", ""]
    a = fx.overhead.area
    if a:
        lines += [f"Area: the precision-selection unit (one per tile at its bus, "
                  f"{_pct(a.tile_share, '.2f')}"
                  f" of a tile) adds {a.added_mm2:.2f} mm² to the {a.chip_mm2:.2f} mm² chip: "
                  f"**{_pct(a.area_share, '.2f')}** "
                  f"(and {_pct(a.power_share, '.2f')} of the "
                  "full-activity power). The paper calls the overhead negligible; the "
                  f"unit's figures ({_f(a.energy_pj_per_group, 'g')} pJ per group, "
                  f"{a.mm2_per_tile:.4f} mm² per tile) are our estimates, not published numbers"
                  + (f" (`{os.path.relpath(study.path(study.spec.isaac.hardware), root)}` "
                     "gives their derivation)" if study.spec.isaac else "") + ".", ""]
    rows = [[r.network, _f(r.energy_uj, ".4g"), _pct(r.of_redy, ".2f"), _pct(r.of_static, ".2f")]
            for r in fx.overhead.rows]
    lines += ["Energy: the unit's share of ReDy's energy per image (it is charged once per "
              "activation group).", "",
              _table(["network", "precision unit µJ/image", "of ReDy energy",
                      "of static energy"], rows), ""]
    return lines


def _accuracy(fx: StudyFacts, study: Study) -> list[str]:
    spec, at = study.spec, fx.accuracy
    rows = [[r.network, r.pipeline, _f(r.top1, ".2f"), _f(r.top5, ".2f"), f"{r.delta:+.2f}",
             "yes" if r.within_budget else "**no**", r.images, _f(r.float_top1, ".2f")]
            for r in at.rows]
    images = (f"{at.images} images" if at.images else "the images of the table")
    one = (f" One image is {at.points_per_image:.2f} points."
           if at.points_per_image is not None else "")
    return ["### Accuracy (trained networks)", "",
            f"Top-1 / top-5 on the test part ({images} that took no part in "
            "training, calibration or tuning), with every policy applied inside the forward "
            "pass and the chip's weight bits; Δ against static; budget "
            f"{spec.paper.accuracy_budget_points} points.{one}", "",
            _table(["network", "pipeline", "top-1 %", "top-5 %", "Δ top-1 (points)",
                    "within budget", "images", "float top-1 %"], rows), ""]


def _paper(fx: StudyFacts, study: Study) -> list[str]:
    spec, h, pp = study.spec, fx.headline, fx.paper
    if pp is None:
        return []
    paper = _pct(spec.paper.average_saving, ".0f")
    tuned = _pct(pp.tuned_saving) if pp.tuned_saving is not None else "—"
    redy = _redy(h, spec.redy)
    inputs = " and ".join(_shape(s) for s in pp.trained_inputs)
    reasons = []
    if pp.random_n:
        reasons.append(
            "**Untrained weights.** The torchvision networks run with seeded random weights "
            "and BatchNorm re-estimated on a few photograph crops. Their activation "
            "distributions are not those of trained ImageNet networks; docs/accuracy.md "
            "compares trained and random weights on the digits networks (random weights "
            "understate the saving there: fewer skipped and short groups)."
            + (f" The trained networks here are small ({inputs} inputs), not ImageNet CNNs."
               if inputs else ""))
    elif inputs:
        reasons.append(f"**Small trained networks.** The networks here are small ({inputs} "
                       "inputs), not the paper's trained ImageNet CNNs.")
    msb = (f"msb-trim's lossless part is {_pct(pp.msb_part)} of its saving on average "
           "(table above)" if pp.msb_part is not None else "")
    tuned_text = ""
    if pp.tuned_saving is not None:
        tuned_text = (f"; the tuned parameters on the trained networks spend the accuracy "
                      f"budget and save {tuned}, "
                      + ("above" if pp.tuned_saving > spec.paper.average_saving else "below")
                      + f" the paper's {paper}: the saving depends on the parameters"
                      + (" (sensitivity below)" if fx.sensitivity else ""))
    reasons.append(
        "**Our reconstruction of the heuristic.** The paper's exact selection rule was not "
        "available; `redy` clips at min(max, μ + kσ) and may drop low planes with step ≤ "
        f"εσ (docs/precision.md). With {_redy_kv(h, spec.redy) or 'its parameters'}, "
        + (msb or "it saves as listed") + tuned_text + ".")
    reasons.append(
        "**The energy table.** Per-event energies come from ISAAC's Table I at full "
        "activity (docs/hardware.md). The ADC carries "
        + (f"{_pct(pp.adc_energy_share)} of the static energy and " if pp.adc_energy_share
           is not None else "")
        + f"{_pct(h.adc_share_mean)} of the saving here; the parts ReDy cannot reduce "
        "(eDRAM, bus, NoC, tile digital units, registers per group) and the precision unit"
        + (f"'s {_num(pp.unit_pj_per_group)} pJ per group (our estimate)"
           if pp.unit_pj_per_group is not None else " (our estimate)")
        + " set how much of a bit-plane cut reaches the total. The paper's own energy model "
        "and its ISAAC-like baseline may weigh them differently.")
    reasons.append(
        "**Static power of a multi-chip network.** A network that needs several chips pays "
        "ISAAC's off-chip link power for as long as it runs; on a NoC-bound mapping that can "
        "dwarf the dynamic energy"
        + (f" ({', '.join(pp.multi_chip)} here)" if pp.multi_chip else
           " (no network here spends a noticeable share on it)")
        + ", and ReDy, which does not shorten the run much, saves little of it.")
    reasons.append(
        "**Weights, encoding and calibration.** The baseline streams all "
        f"{_f(h.static_bits, '.0f', '?')} activation planes of every group; how many of them "
        "are empty to begin with depends on the static scales' calibration (a percentile or "
        "the maximum, docs/precision.md) and on the weights' cells per weight.")
    lines = ["## Against the paper", "",
             _table(["", "average saving", "networks"],
                    [["paper (Sabri, Riera, González 2023)", paper, "ImageNet CNNs, trained"],
                     [f"redysim, `{spec.redy}`{redy}", _pct(h.mean), h.n],
                     [f"redysim, `{spec.redy}`, dynamic energy only", _pct(h.dyn_mean), h.n],
                     ["— trained networks only", _pct(h.trained_mean), pp.trained_n],
                     ["— random-weight torchvision networks", _pct(h.random_mean),
                      pp.random_n],
                     ["redysim, msb-trim (lossless)", _pct(pp.msb_mean), pp.msb_n],
                     ["redysim, `redy-tuned` (trained, within budget)", tuned,
                      pp.tuned_n]]), "",
             f"Our average ({_pct(h.mean)}; {_pct(h.dyn_mean)} of the dynamic "
             "energy) is " + ("below" if pp.below else "at or above")
             + f" the paper's {paper}. Reasons, in the order we think they matter:", ""]
    lines += [f"{i}. {r}" for i, r in enumerate(reasons, start=1)]
    return lines + [""]


def _sensitivity(fx: StudyFacts, study: Study) -> list[str]:
    if not fx.sensitivity:
        return []
    lines = ["## Sensitivity", "",
             "Each sweep changes one thing against the static pipeline and ReDy (its "
             "parameters as in § Per network unless the sweep moves them) with "
             "`redysim sweep`; hardware keys change the chip through "
             "`HardwareSpec.with_changes`, so derived counts, energies and areas follow "
             "(docs/hardware.md). Throughput: measured in steady state (— where the streamed "
             "images do not reach it) / the busiest unit's bound.", ""]
    for i, sw in enumerate(fx.sensitivity):
        how = f" Points run as {_stream(sw.stream, measured=True)}." if sw.stream else ""
        lines += [f"### {sw.title}", "", f"`{sw.sweep}`: {sw.note}{how}", ""]
        rows = []
        for r in sw.rows:
            if r.error is not None:
                rows.append([r.label, "failed: " + r.error] + [""] * 11)
                continue
            assert r.tput_static is not None and r.tput_redy is not None
            rows.append([r.label, _f(r.static_uj, ".4g"), _f(r.redy_uj, ".4g"),
                         _pct(r.saving, ".2f"), _pct(r.adc_share_static),
                         _f(r.bits_redy), _f(r.latency_static_us, ".2f"),
                         _f(r.latency_redy_us, ".2f"), _tput(r.tput_static),
                         _tput(r.tput_redy),
                         f"{_f(r.top1_static, '.2f')} / {_f(r.top1_redy, '.2f')}",
                         _f(r.chip_mm2, ".1f"), "; ".join(r.warnings) or "—"])
        lines += [_table(["point", "static µJ", "ReDy µJ", "saving", "ADC share of static",
                          "ReDy bits", "latency static µs", "latency ReDy µs",
                          "img/s static (meas. / bound)", "img/s ReDy (meas. / bound)",
                          "top-1 static / ReDy", "chip mm²",
                          "hardware warnings"], rows), ""]
        f = plots.sensitivity(sw.plot_labels, sw.plot_saving_pct, sw.plot_accuracy,
                              sw.xlabel, study.figures / f"sensitivity-{i}.png")
        lines += [f"![{sw.title}]({_figrel(study)}/{f})", ""]
    return lines


def _isaac(isaac: IsaacFacts | None, study: Study, root: Path) -> list[str]:
    if isaac is None or study.spec.isaac is None:
        return []
    hw_rel = os.path.relpath(study.path(isaac.hardware), root)
    pub_rel = os.path.relpath(study.path(study.spec.isaac.published), root)
    router = (f"router: its share, one router per {_num(isaac.tiles_per_router)} tiles"
              if isaac.tiles_per_router else "router: its share")
    rows = [[r.level, r.component, r.paper_power, _f(r.power, ".4g"), _dev(r.power_dev),
             r.paper_area, _f(r.area, ".4g"), _dev(r.area_dev)] for r in isaac.rows]
    tops, gpw = isaac.table_iv
    lines = ["## ISAAC check", "",
             f"`redysim hw {hw_rel} --json` against ISAAC-CE as published "
             "(Shafiee et al., ISCA 2016; the paper's figures are typed in "
             f"`{pub_rel}`). Component rows: per IMA for IMA "
             f"components, per tile for tile components ({router}). Totals: "
             f"IMA = the {isaac.imas_per_tile} IMAs of a tile and tile in mW / mm², the rest "
             "in W / mm².", "",
             "**What this checks, and what holds by construction.** The per-event energies "
             f"of `{hw_rel}` are Table I's powers divided by the full-activity event rates "
             "(docs/hardware.md), so at full activity `redysim hw` returns Table I's powers "
             "by construction: the component rows"
             + (f" (largest deviation {_pct(isaac.max_component_dev, '.2g')})"
                if isaac.max_component_dev is not None else "")
             + " confirm that the event rates and counts are the ones the energies were "
             "derived from, not the energies themselves. The totals add the components "
             "with the derived counts (tiles, routers, off-chip links), and Table IV's peak "
             "TOPS and GOPS/W follow from the crossbar count, the read time and the chip's "
             "power: checks of those derivations. The engine's full-activity run below "
             "confirms that the event engine books events at the rates the closed form "
             "assumes. None of this checks the energy model against anything independent: "
             "that is § Peers, other tools' figures for the same configuration.", "",
             _table(["level", "component", "paper power", "ours", "dev.", "paper area",
                     "ours", "dev."], rows), "",
             _table(["Table IV", "paper", "ours", "dev."],
                    [[tops.label, tops.paper, _f(tops.ours, ".2f"), _dev(tops.dev)],
                     [gpw.label, gpw.paper, _f(gpw.ours, ".1f"), _dev(gpw.dev)]]), ""]
    eng = isaac.engine
    if eng:
        def row(r: PaperRow) -> list[Any]:
            return [r.label, r.paper, _f(r.ours, ".4f"), _dev(r.dev)]

        total = eng.ima_total
        rows = [row(r) for r in eng.rows]
        rows.append([total.label, _f(total.paper, ".4g"), _f(total.ours, ".4f"),
                     _dev(total.dev)])
        rows += [row(r) for r in eng.tile_rows]
        rows.append(["peak TOPS (whole run / steady state)", eng.peak_tops_paper,
                     f"{eng.peak_tops:.2f} / {eng.peak_tops_steady:.2f}",
                     _dev(eng.peak_tops_dev)])
        lines += ["**Through the event engine** (`simulator/explore/study/calib.py`, the "
                  "workload of `tests/test_calibration.py`): a "
                  + (f"{_shape(eng.kernel)} " if eng.kernel else "")
                  + f"convolution pinned to the {_num(eng.lanes)} crossbars of one tile, "
                  f"every group streaming all {_num(eng.planes)} planes, at group fidelity; "
                  f"power = energy difference / time difference of two runs (H = "
                  f"{eng.h[0]} and {eng.h[1]} groups per lane: steady-state period "
                  f"{eng.period_ns:.1f} ns per group). Table I's IMA sum is "
                  f"{_f(eng.ima_total.paper, '.4g')} mW (× {isaac.imas_per_tile} = "
                  f"{_f(eng.ima_total_tile_mw, '.4g')} mW).", "",
                  _table(["component (mW, per IMA unless tile)", "Table I", "engine", "dev."],
                         rows), ""]
    return lines


def _fidelity(fid: FidelityFacts | None, study: Study) -> list[str]:
    if fid is None:
        return []
    sweeps = ", ".join(f"`{s}`" for s in fid.sweeps)
    table = [[r.network, r.pipeline, r.fidelity, _f(r.adc, ",.0f"),
              _f(r.reads, ",.0f"), "yes" if r.counts_equal else "**no**",
              _f(r.energy_uj, ".5g"), _pct(r.energy_dev, "+.3f"),
              _f(r.latency_us, ".2f"), _pct(r.latency_dev, "+.1f"),
              _f(r.tput, ",.0f"), _f(r.wall, ".2f")] for r in fid.rows]
    streams = "; ".join(_stream(st) for st in fid.streams)
    lines = ["## Fidelity check", "",
             f"{sweeps}: the same scenario at `plane`, `group` and `analytic` "
             f"fidelity ({streams}; where one image streams, the throughput is the bound). "
             "Counts per image (ADC conversions, crossbar "
             "reads), energy per image, latency of the first image, throughput (measured; "
             "analytic: bound) and the simulation's wall time per pipeline "
             "(`wall_s.simulate:*`, on the shared machine).", "",
             _table(["network", "pipeline", "fidelity", "ADC conv./image",
                     "crossbar reads/image", "counts = plane", "energy µJ", "energy vs plane",
                     "latency µs", "latency vs plane", "img/s", "sim. wall s"], table), ""]
    f = plots.fidelity_latency(fid.rows, study.figures / "fidelity.png")
    lines += [f"![latency by fidelity]({_figrel(study)}/{f})", ""]
    notes = [f"- Counts {'agree exactly' if fid.all_counts_equal else '**differ**'} across the "
             f"fidelities; energy per image differs by at most {_pct(fid.max_energy_dev, '.3g')} "
             "(DESIGN.md's targets: the three agree on counts and energy exactly)."]
    wg, wa = fid.worst_group, fid.worst_analytic
    if wg:
        notes.append(f"- `group` latency is within {_pct(abs(wg.latency_dev))} of `plane` "
                     f"(worst: {wg.network} {wg.pipeline}, {_pct(wg.latency_dev, '+.1f')}); "
                     f"the target is {_pct(fid.group_target, '.0f')}"
                     + (" — **missed**." if fid.group_missed else "."))
    if wa:
        notes.append(f"- `analytic` latency differs from `plane` by up to "
                     f"{_pct(wa.latency_dev, '+.1f')} "
                     f"({wa.network} {wa.pipeline}). The analytic latency is "
                     "an estimate, not a bound (docs/model.md)"
                     + (": here it is far from the event-driven latency, a disagreement "
                        "reported as a bug (the study therefore runs the torchvision "
                        "networks at group fidelity)." if fid.analytic_is_far else "."))
    return lines + notes + [""]


def _closing(fx: StudyFacts, study: Study) -> list[str]:
    spec, h, c = study.spec, fx.headline, fx.closing
    if c is None:
        return []
    comps = fx.components
    nets = []
    if c.random_n:
        nets.append(f"{c.random_n} random-weight torchvision architecture(s)")
    if c.trained:
        nets.append(f"{len(c.trained)} small trained network(s) ({', '.join(c.trained)})")
    unchanged = (f"; {', '.join(comps.unchanged)} do not change" if comps.unchanged else "")
    unit = comps.costlier.get("precision unit")
    unit_text = (f"; the precision unit takes back part of the saving on {unit} of "
                 f"{h.n} network(s)" if unit else "")
    lines = ["## Closing note: where we differ from the paper, and why", "",
             f"- **Saving.** ReDy{_redy(h, spec.redy)} saves {_pct(h.mean)} of the energy "
             f"({_pct(h.dyn_mean)} of the dynamic energy) on average here against the "
             f"paper's {_pct(spec.paper.average_saving, '.0f')}"
             + (f"; lossless msb-trim alone gives {_pct(c.msb_part, '.0f')} of that on average"
                if c.msb_part is not None else "")
             + ". The paper's networks are trained ImageNet CNNs; ours are "
             + " and ".join(nets) + ", so the activation "
             "distributions differ, and our heuristic is a reconstruction from the abstract "
             "(§ Against the paper).",
             f"- **Where it comes from.** As in the paper, the ADC: {_pct(h.adc_share_mean)}"
             f" of the saving on average, at least {_pct(h.adc_share_min)} on every "
             "network. DAC drives and crossbar reads follow the bit planes too"
             + unchanged + unit_text + ".",
             "- **Accuracy.** " + (
                 "On the trained networks the default ReDy stays within the "
                 f"{spec.paper.accuracy_budget_points}-point budget"
                 if not c.over_budget
                 else f"**Outside the budget: {', '.join(c.over_budget)}**")
             + " (§ Accuracy). ImageNet accuracy, the paper's, cannot be measured here "
             "without pretrained weights and ImageNet images (docs/accuracy.md gives the "
             "one-command experiment for a machine that has them).",
             "- **Hardware.** § ISAAC check reproduces Table I and Table IV, the energies by "
             "construction; the precision unit's energy and area are our estimates."
             + ((" Against other tools on the same configuration (§ Peers), per image: "
                 + "; ".join(f"{t.tool} {_ratio(t.energy_ratio)} our energy, "
                             f"{_pct(t.conversions_vs_ours, '+.1f')} ADC conversions"
                             for t in fx.peers.tools) + ".") if fx.peers else "")]
    if c.slower:
        lines.append(
            "- **Latency: ReDy is slower than static** where one would expect it no slower "
            "(fewer bit planes): "
            + "; ".join(f"{s.network} ×{s.ratio:.3f} ({s.fidelity})" for s in c.slower)
            + ". ReDy's statistics unit works at bus rate and decides a few clock cycles "
            "after a group's last byte (`components.tile.precision_select.depth_cycles` of "
            "the hardware file); that is exposed only when a lane is short of work, so a "
            "slower ReDy comes from elsewhere (the summary names the resource, "
            "`slower_than_static`, and docs/model.md the paths).")
    if c.bound_by:
        lines.append(
            "- **Throughput.** ReDy cuts conversions, not the traffic between tiles: the "
            "busiest unit under ReDy is "
            + "; ".join(f"a {u} on {len(n)} network(s) ({', '.join(n)})"
                        for u, n in c.bound_by.items())
            + ". Where the NoC bounds the chip, fewer bit planes do not raise the "
            "throughput; the paper reports energy, not throughput.")
    steady = [_above(a) for a in c.above if a.steady]
    transient = [_above(a) for a in c.above if not a.steady]
    if steady:
        lines.append(
            "- **Measured throughput above its bound after a long warm-up: a defect.** "
            f"{len(steady)} pipeline(s) measure above the bound although they streamed "
            "more warm-up images than they hold in flight: " + "; ".join(steady[:6])
            + (f"; and {len(steady) - 6} more (study.json)" if len(steady) > 6 else "")
            + ". The measurement is taken in steady state (the fill and the drain left "
            "out, docs/outputs.md) and the bound is the busiest unit's work per image, so a "
            "measurement above it is a bug in the measurement window, to report "
            "(tests/test_throughput_bound.py checks the shipped scenarios); use the bound.")
    if transient:
        lines.append(
            "- **Measured throughput above its bound, during the fill.** "
            f"{len(transient)} pipeline(s) streamed fewer warm-up images than they hold in "
            "flight, so their measurement window is still part of the fill: "
            + "; ".join(transient[:4])
            + (f"; and {len(transient) - 4} more" if len(transient) > 4 else "")
            + ". These are transients, not steady-state figures, and summary.json should "
            "have reported the bound instead (`throughput_is`): a defect to report.")
    fid = fx.fidelity
    if fid:
        agree = "agree exactly" if fid.all_counts_equal else "**disagree**"
        text = (f"- **Fidelities.** Counts {agree} across plane, group and analytic on "
                f"{fid.networks} networks")
        if fid.group_max_dev is not None:
            text += f"; group latency is within {_pct(fid.group_max_dev)} of plane"
        if fid.analytic_latency_ratio is not None:
            tr = fid.analytic_tput_ratio
            if tr and fid.analytic_tput_off:
                text += (f"; the analytic throughput is ×{tr[0]:.2f}–×{tr[1]:.2f} of "
                         "plane's (its busiest-unit estimate misses what the event engine "
                         "finds)")
            lo, hi = fid.analytic_latency_ratio
            text += (f"; the analytic latency is ×{lo:.2f}–×{hi:.2f} of plane's"
                     + (" — a disagreement to fix in the analytic estimate (its counts and "
                        "energy are right)" if fid.analytic_latency_off else ""))
        lines.append(text + ".")
    return lines + [""]


def _peers(fx: StudyFacts, study: Study, root: Path) -> list[str]:
    pe = fx.peers
    if pe is None or study.spec.peers is None:
        return []
    rel = os.path.relpath(study.path(study.spec.peers), root)
    changes = ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in pe.hardware_changes.items())
    tools = ", ".join(f"{t.tool} {t.version}" for t in pe.tools)
    lines = ["## Peers: other simulators on the same configuration", "",
             f"The independent check. Other tools' figures for the common ISAAC-like "
             f"configuration, measured by running them ({tools}; `{rel}` names the runs, "
             f"`{pe.baselines}` beside it holds them with their sources), set against our "
             f"`{pe.pipeline}` pipeline on the same network: {pe.network} "
             f"({_shape(pe.input_shape)}, {pe.weights} weights: a static pipeline's counts "
             f"and energy do not depend on them) on {pe.hardware}"
             + (f" with {changes} (the tools model no offset-encoding column)" if changes
                else "") + ", one image at analytic fidelity (counts and energy are every "
             "fidelity's). Unlike § ISAAC check, nothing here holds by construction: the "
             "tools count and price the events with their own models.", ""]
    copies = (f" (one copy of the weights; with its replicas the chip uses "
              f"{pe.crossbars_used:,})" if pe.crossbars_used else "")
    rows = [[f"redysim, rows and columns as mapped{copies}", f"{pe.conversions:,.0f}",
             f"{pe.crossbars:,}", "—", "—"]]
    for name, pk in pe.packings.items():
        if name == "as mapped":
            continue
        rows.append([f"redysim's mapping with {name} (closed form)",
                     f"{pk['adc_conversions']:,}", f"{pk['crossbars']:,}",
                     _pct(pe.packing_vs_ours[name], "+.3f"), "—"])
    for t in pe.tools:
        rows.append([f"{t.tool} ({t.run})", f"{t.adc_conversions:,}",
                     f"{t.crossbars:,}" if t.crossbars else "—",
                     _pct(t.conversions_vs_ours, "+.3f"),
                     f"= {t.packing}" if t.packing else
                     f"{t.packing_gap:+,} from {t.nearest}"])
    lines += [_table(["", "ADC conversions / image", "crossbars", "vs ours",
                      "our packing that gives it"], rows), ""]
    for t in pe.tools:
        if t.packing:
            lines.append(f"- **{t.tool}'s count** is our network with {t.packing} exactly: "
                         f"its {_pct(t.conversions_vs_ours, '+.3f')} against ours is the "
                         "packing, not the model. Its note: " + t.note + ".")
        else:
            lines.append(f"- **{t.tool}'s count** is none of our packings; the nearest, "
                         f"{t.nearest}, differs by {t.packing_gap:+,}. Its note: "
                         + t.note + ".")
    lines.append("")
    heads = ["component", "redysim µJ"]
    for t in pe.tools:
        heads += [f"{t.tool} µJ", f"{t.tool} / ours", f"{t.tool} / ours per conversion"]
    rows = []
    for c in pe.components:
        row = [c.component, _uj(c.ours_uj)]
        for t in pe.tools:
            row += [_uj(c.theirs_uj.get(t.tool)), _ratio(c.ratio.get(t.tool)),
                    _ratio(c.per_conversion_ratio.get(t.tool))]
        rows.append(row)
    total = ["total per image", _uj(pe.energy_uj)]
    for t in pe.tools:
        total += [_uj(t.energy_uj), _ratio(t.energy_ratio), "—"]
    rows.append(total)
    lines += [f"Energy per image by component (µJ; the tools' components summed into ours as "
              f"`{rel}` maps them). *Per conversion* divides each side by its own ADC "
              "conversions, which takes the count's part (the packing) out of the ratio: "
              "what is left is the tool's price of the same work.", "",
              _table(heads, rows), ""]
    adc = [f"{t.tool} {_f(t.adc_pj_per_conversion, '.4g')} pJ "
           f"({_ratio(t.adc_per_conversion_ratio)} ours)"
           for t in pe.tools if t.adc_pj_per_conversion is not None]
    lines.append(f"- **ADC, per conversion**: ours {_f(pe.adc_pj_per_conversion, '.4g')} pJ "
                 "(Table I's ADC power over its sampling rate, docs/hardware.md); "
                 + "; ".join(adc) + ".")
    unexplained = []
    for c in pe.components:
        compared = [t.tool for t in pe.tools if c.theirs_uj.get(t.tool) is not None]
        said = [f"{t}: {c.causes[t]}" for t in compared if t in c.causes]
        if said:
            lines.append(f"- **{c.component}**: " + "; ".join(said) + " (the tools' notes).")
        unexplained += [f"{c.component} ({t})" for t in compared if t not in c.causes]
    if unexplained:
        lines.append("- **Not explained here**: " + ", ".join(unexplained) + ". Per ADC "
                     "conversion (which takes the packing out), what is left is each tool's "
                     "energy per event, its count of those events or its accounting of time; "
                     "the tools' rows give neither their event counts nor their per-event "
                     "energies for these components, so these differences are reported, not "
                     "explained.")
    for t in pe.tools:
        mine = [c.component for c in pe.components if c.theirs_uj.get(t.tool) is None
                and c.ours_uj]
        parts = "; ".join(f"{w} is {' + '.join(ps)}" for w, ps in t.breakdowns.items())
        extra = [f"{n} {_uj(v)} µJ" for n, v in t.unmatched_uj.items()]
        if mine or extra or parts:
            lines.append(
                f"- **{t.tool} reports** "
                + (f"no {', '.join(mine)}" if mine else "every compared component")
                + (f"; components of its own: {', '.join(extra)}" if extra else "")
                + (f" ({parts})" if parts else "") + ".")
    if pe.ours_only:
        lines.append("- **Only in redysim**: " + ", ".join(pe.ours_only)
                     + " (no tool reports them).")
    return lines + [""]


def _uj(x: float | None) -> str:
    """Four significant digits, without an exponent above a thousand."""
    return "—" if x is None else f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"×{x:.3g}"


def render(fx: StudyFacts, study: Study, root: Path) -> str:
    """The page's markdown (and its plots, written into the study's figures folder)."""
    lines = _intro(fx, study, root)
    lines += _what_ran(fx, study, root)
    lines += _networks(fx, study)
    lines += _overhead(fx, study, root)
    lines += _accuracy(fx, study)
    lines += _paper(fx, study)
    lines += _sensitivity(fx, study)
    lines += _isaac(fx.isaac, study, root)
    lines += _peers(fx, study, root)
    lines += _fidelity(fx.fidelity, study)
    lines += _closing(fx, study)
    return "\n".join(lines).rstrip() + "\n"


def write_page(data: dict[str, Any], study: Study) -> Path:
    """Render the study page and its plots; returns the page's path. Adds the headline's
    figures to *data* (``data["headline"]``, kept in study.json)."""
    root = _repo_root(study.doc)
    study.figures.mkdir(parents=True, exist_ok=True)
    fx = study_facts(data, study)
    data["headline"] = fx.headline.to_json()
    text = render(fx, study, root)
    study.doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = study.doc.with_name(f".{study.doc.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, study.doc)
    return study.doc


def _repo_root(p: Path) -> Path:
    for d in [p.parent, *p.parents]:
        if (d / ".git").exists() or (d / "pyproject.toml").is_file():
            return d
    return p.parent
