"""Plots of a results folder, drawn only from its files (summary.json and the CSVs).

``draw_all(results_dir)`` writes, for every pipeline side by side or overlaid:
utilization.*, power.*, energy_breakdown.*, energy_per_layer.*, bits_histogram.*
(and bits_histogram_layers.* on request) and tile_heatmap.*. A plot whose inputs are
missing (no timeline.csv, no tiles.csv, no precision statistics...) is skipped silently.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.layout_engine import ConstrainedLayoutEngine  # noqa: E402

#: Fixed colours of the two standard pipelines; other pipelines take EXTRA_COLOURS in turn.
PIPELINE_COLOURS = {"static": "#4C72B0", "redy": "#DD8452"}
EXTRA_COLOURS = ("#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
                 "#CCB974", "#64B5CD")

#: File stems written by draw_all, in the order the HTML report shows them.
PLOT_NAMES = ("utilization", "power", "energy_breakdown", "energy_per_layer",
              "bits_histogram", "bits_histogram_layers", "tile_heatmap")

_DPI = 120
_POWER_TOP = 7  # components drawn separately in power.*; the rest is "other"


# ----------------------------------------------------------------------------- reading

def load_summary(results_dir: Path) -> dict[str, Any]:
    """summary.json of *results_dir* as a dict."""
    return json.loads((Path(results_dir) / "summary.json").read_text())


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts ([] when the file is missing or empty)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _float(x: str | None, default: float = float("nan")) -> float:
    try:
        return float(x) if x not in (None, "") else default
    except ValueError:
        return default


def load_timeline(results_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """timeline.csv as {pipeline: {column: array}} (numeric columns only)."""
    rows = read_csv_rows(Path(results_dir) / "timeline.csv")
    out: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        cols = out.setdefault(r["pipeline"], {})
        for k, v in r.items():
            if k != "pipeline" and k is not None:
                cols.setdefault(k, []).append(_float(v, 0.0))
    return {p: {k: np.asarray(v, dtype=float) for k, v in cols.items()} for p, cols in out.items()}


def pipeline_colours(names: Iterable[str]) -> dict[str, str]:
    """Consistent colour per pipeline: static blue, redy orange, others from EXTRA_COLOURS."""
    out: dict[str, str] = {}
    extra = iter(EXTRA_COLOURS * 4)
    for n in names:
        out[n] = PIPELINE_COLOURS.get(n) or next(extra)
    return out


def energy_unit(max_pj: float) -> tuple[str, float]:
    """(unit, divisor) so that *max_pj* / divisor is in [1, 1000) when possible."""
    for unit, div in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if max_pj >= div:
            return unit, div
    return "pJ", 1.0


def _title_prefix(summary: dict[str, Any]) -> str:
    return (f"{summary.get('scenario', '?')}: {summary.get('workload', '?')} "
            f"on {summary.get('hardware', '?')}")


def _save(fig: Figure, results_dir: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        # the layout is done (``tight_layout`` leaves a placeholder engine behind, which makes
        # ``savefig`` lay out every text once more before drawing): same pixels, ~15% less CPU
        fig.set_layout_engine(None)
    paths = []
    for fmt in formats:
        p = Path(results_dir) / f"{stem}.{fmt}"
        fig.savefig(p, dpi=_DPI, format=fmt)
        paths.append(p)
    plt.close(fig)
    return paths


def _bar_offsets(n: int, width: float = 0.8) -> tuple[np.ndarray, float]:
    w = width / max(n, 1)
    return (np.arange(n) - (n - 1) / 2) * w, w


# ----------------------------------------------------------------------------- plots

def plot_utilization(summary: dict[str, Any], tl: dict[str, dict[str, np.ndarray]],
                     results_dir: Path, formats: Sequence[str]) -> list[Path]:
    """utilization.*: one subplot per util:* column, one step line per pipeline."""
    cols: list[str] = []
    for d in tl.values():
        cols += [k for k in d if k.startswith("util:") and k not in cols]
    if not cols:
        return []
    colours = pipeline_colours(tl)
    fig, axes = plt.subplots(len(cols), 1, figsize=(10, 1.9 * len(cols) + 1.2), sharex=True,
                             squeeze=False)
    for ax, col in zip(axes[:, 0], cols, strict=True):
        for pname, d in tl.items():
            if col not in d or not len(d["t_ns"]):
                continue
            t_us = np.append(d["t_ns"], d["t_ns"][-1] + d["bin_ns"][-1]) / 1e3
            u = np.append(d[col], d[col][-1])
            ax.step(t_us, u, where="post", color=colours[pname], lw=1.3,
                    label=f"{pname} (mean {np.mean(d[col]):.2f})")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"{col[5:]}\nbusy fraction")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("simulated time (µs)")
    fig.suptitle(f"Utilization over time — {_title_prefix(summary)}")
    fig.tight_layout()
    return _save(fig, results_dir, "utilization", formats)


def plot_power(summary: dict[str, Any], tl: dict[str, dict[str, np.ndarray]],
               results_dir: Path, formats: Sequence[str]) -> list[Path]:
    """power.*: stacked dynamic power of the top components per pipeline, shared axes."""
    comps: list[str] = []
    for d in tl.values():
        comps += [k for k in d if k.startswith("power_mw:") and k not in comps]
    if not comps or not tl:
        return []
    # rank components by total energy over all pipelines
    totals = {c: sum(float(np.sum(d.get(c, 0) * d["bin_ns"])) for d in tl.values())
              for c in comps}
    ranked = [c for c in sorted(comps, key=lambda c: -totals[c]) if totals[c] > 0]
    top, rest = ranked[:_POWER_TOP], ranked[_POWER_TOP:]
    cmap = plt.get_cmap("tab10")
    comp_colour = {c: cmap(i % 10) for i, c in enumerate(top)}
    names = list(tl)
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names) + 2.2, 4.4), sharey=True,
                             sharex=True, squeeze=False)
    handles = None
    for ax, pname in zip(axes[0], names, strict=True):
        d = tl[pname]
        t_us = (d["t_ns"] + d["bin_ns"] / 2) / 1e3
        layers = [d.get(c, np.zeros_like(t_us)) for c in top]
        labels = [c.split(":", 1)[1] for c in top]
        colors = [comp_colour[c] for c in top]
        if rest:
            layers.append(sum((d.get(c, np.zeros_like(t_us)) for c in rest),
                              np.zeros_like(t_us)))
            labels.append(f"other ({len(rest)})")
            colors.append("#BBBBBB")
        total = np.sum(layers, axis=0) if layers else np.zeros_like(t_us)
        if len(t_us):
            polys = ax.stackplot(t_us, *layers, labels=labels, colors=colors, alpha=0.9)
            ax.plot(t_us, total, color="black", lw=0.8, label="total dynamic")
            handles = (polys, labels)
        span = float(np.sum(d["bin_ns"])) or 1.0
        mean_mw = float(np.sum(total * d["bin_ns"])) / span
        ax.set_title(f"{pname}: mean {mean_mw:.1f} mW dynamic", fontsize=10)
        ax.set_xlabel("simulated time (µs)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("dynamic power (mW)")
    axes[0, 0].set_ylim(bottom=0)
    if handles is not None:
        h, lab = axes[0, -1].get_legend_handles_labels()
        fig.legend(h, lab, loc="center right", fontsize=8, title="component")
    fig.suptitle(f"Dynamic power over time — {_title_prefix(summary)}")
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / fig.get_figwidth(), 1))
    return _save(fig, results_dir, "power", formats)


def plot_energy_breakdown(summary: dict[str, Any], results_dir: Path,
                          formats: Sequence[str]) -> list[Path]:
    """energy_breakdown.*: energy per image by component, grouped bars per pipeline."""
    pipes = summary.get("pipelines") or {}
    if not pipes:
        return []
    per_img: dict[str, dict[str, float]] = {}
    for n, p in pipes.items():
        imgs = p.get("images") or 1
        per_img[n] = {c: float(v) / imgs
                      for c, v in (p.get("energy_pj", {}).get("by_component") or {}).items()}
    comps = sorted({c for d in per_img.values() for c, v in d.items() if v > 0},
                   key=lambda c: -max(d.get(c, 0.0) for d in per_img.values()))
    if not comps:
        return []
    unit, div = energy_unit(max(max(d.values(), default=0.0) for d in per_img.values()))
    names = list(pipes)
    colours = pipeline_colours(names)
    off, w = _bar_offsets(len(names))
    x = np.arange(len(comps))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.42 * len(comps) * max(len(names), 2) / 2 + 3),
                                    4.8))
    for i, n in enumerate(names):
        ax.bar(x + off[i], [per_img[n].get(c, 0.0) / div for c in comps], w,
               color=colours[n], label=n)
    ax.set_xticks(x, comps, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"energy per image ({unit})")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    tot = {n: sum(per_img[n].values()) for n in names}
    tunit, tdiv = energy_unit(max(tot.values()))
    sims = sorted({p.get("images") or 1 for p in pipes.values()})
    title = (f"Energy per image by component, mean over the {'/'.join(map(str, sims))} "
             "simulated image(s)\ntotal " + ", ".join(
                 f"{n} {tot[n] / tdiv:.3g} {tunit}" for n in names))
    if "static" in tot and "redy" in tot and tot["static"]:
        title += f"; redy/static = {tot['redy'] / tot['static']:.3f}"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, results_dir, "energy_breakdown", formats)


def layer_order(summary: dict[str, Any], results_dir: Path) -> list[str]:
    """Layers in layers.csv order, then any further layers found in summary.json by_layer."""
    order: list[str] = []
    for r in read_csv_rows(Path(results_dir) / "layers.csv"):
        if r.get("layer") and r["layer"] not in order:
            order.append(r["layer"])
    for p in (summary.get("pipelines") or {}).values():
        for ly in (p.get("energy_pj", {}).get("by_layer") or {}):
            if ly not in order:
                order.append(ly)
    return order


def plot_energy_per_layer(summary: dict[str, Any], results_dir: Path,
                          formats: Sequence[str]) -> list[Path]:
    """energy_per_layer.*: energy per image of each layer, grouped bars per pipeline."""
    pipes = summary.get("pipelines") or {}
    layers = layer_order(summary, results_dir)
    if not pipes or not layers:
        return []
    names = list(pipes)
    vals = {n: np.array([float((p.get("energy_pj", {}).get("by_layer") or {}).get(ly, 0.0))
                         / (p.get("images") or 1) for ly in layers]) for n, p in pipes.items()}
    unit, div = energy_unit(max(float(v.max(initial=0.0)) for v in vals.values()))
    colours = pipeline_colours(names)
    off, w = _bar_offsets(len(names))
    x = np.arange(len(layers))
    n_l = len(layers)
    fig, ax = plt.subplots(figsize=(min(max(8.0, 0.22 * n_l * max(len(names), 2) / 2 + 2), 16),
                                    5.0))
    for i, n in enumerate(names):
        ax.bar(x + off[i], vals[n] / div, w, color=colours[n], label=n)
    fs = 8 if n_l <= 20 else (7 if n_l <= 40 else 6)
    ax.set_xticks(x, layers, rotation=60 if n_l <= 20 else 90,
                  ha="right" if n_l <= 20 else "center", fontsize=fs)
    ax.set_xlim(-0.6, n_l - 0.4)
    ax.set_xlabel("layer (network order)")
    ax.set_ylabel(f"energy per image ({unit})")
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylim(0, 1.15 * max(float(v.max(initial=0.0)) for v in vals.values()) / div or 1.0)
    ax.legend(ncol=len(names), loc="upper right", fontsize=8)
    ax.set_title(f"Energy per image by layer — {_title_prefix(summary)}", fontsize=10)
    fig.tight_layout()
    return _save(fig, results_dir, "energy_per_layer", formats)


def _hists(summary: dict[str, Any], layers: Sequence[str] | None = None
           ) -> dict[str, dict[str, np.ndarray]]:
    """{pipeline: {layer: hist}} for pipelines that carry precision statistics."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for n, p in (summary.get("pipelines") or {}).items():
        prec = p.get("precision") or {}
        h = {ly: np.asarray(v.get("hist") or [], dtype=float) for ly, v in prec.items()
             if isinstance(v, dict) and v.get("hist")}
        if h:
            if layers:
                h = dict(sorted(h.items(), key=lambda kv: (
                    layers.index(kv[0]) if kv[0] in layers else len(layers))))
            out[n] = h
    return out


def _padded_sum(arrs: Iterable[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros(length)
    for a in arrs:
        out[: len(a)] += a
    return out


def plot_bits_histogram(summary: dict[str, Any], results_dir: Path, formats: Sequence[str],
                        per_layer: bool = False) -> list[Path]:
    """bits_histogram.* (all layers summed) and optionally bits_histogram_layers.*."""
    hists = _hists(summary, layer_order(summary, results_dir))
    if not hists:
        return []
    names = list(hists)
    colours = pipeline_colours(names)
    nb = max(len(h) for d in hists.values() for h in d.values())
    bits = np.arange(nb)
    off, w = _bar_offsets(len(names))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.6 * nb + 3), 4.4))
    for i, n in enumerate(names):
        tot = _padded_sum(hists[n].values(), nb)
        s = tot.sum() or 1.0
        mean = float((bits * tot).sum() / s)
        ax.bar(bits + off[i], tot / s, w, color=colours[n],
               label=f"{n} (mean {mean:.2f} bits, {int(tot.sum()):,} groups)")
    ax.set_xticks(bits)
    ax.set_xlabel("bit planes streamed per activation group")
    ax.set_ylabel("fraction of groups")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"Bits per group, all layers — {_title_prefix(summary)}", fontsize=10)
    fig.tight_layout()
    paths = _save(fig, results_dir, "bits_histogram", formats)
    if per_layer:
        paths += _plot_bits_layers(summary, hists, nb, results_dir, formats)
    return paths


def _plot_bits_layers(summary: dict[str, Any], hists: dict[str, dict[str, np.ndarray]], nb: int,
                      results_dir: Path, formats: Sequence[str]) -> list[Path]:
    names = list(hists)
    colours = pipeline_colours(names)
    layers: list[str] = []
    for d in hists.values():
        layers += [ly for ly in d if ly not in layers]
    ncol = min(6, math.ceil(math.sqrt(len(layers))))
    nrow = math.ceil(len(layers) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.4 * ncol + 0.5, 1.9 * nrow + 0.9),
                             sharex=True, sharey=True, squeeze=False)
    bits = np.arange(nb)
    off, w = _bar_offsets(len(names))
    for k, ly in enumerate(layers):
        ax = axes[k // ncol, k % ncol]
        for i, n in enumerate(names):
            h = _padded_sum([hists[n].get(ly, np.zeros(0))], nb)
            ax.bar(bits + off[i], h / (h.sum() or 1.0), w, color=colours[n], label=n)
        ax.set_title(ly, fontsize=7)
        ax.tick_params(labelsize=6)
    for k in range(len(layers), nrow * ncol):
        axes[k // ncol, k % ncol].set_visible(False)
    for c in range(ncol):  # x labels on the lowest visible panel of each column
        last = max(k for k in range(len(layers)) if k % ncol == c) // ncol
        axes[last, c].xaxis.set_tick_params(labelbottom=True)
        axes[last, c].set_xlabel("bits", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction", fontsize=7)
    h, lab = axes[0, 0].get_legend_handles_labels()
    top = 1 - 0.75 / fig.get_figheight()
    fig.legend(h, lab, loc="upper center", ncol=len(names), fontsize=8,
               bbox_to_anchor=(0.5, top + 0.35 / fig.get_figheight()))
    fig.suptitle(f"Bits per group by layer — {_title_prefix(summary)}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, top))
    return _save(fig, results_dir, "bits_histogram_layers", formats)


def tile_slots(rows: list[dict[str, str]], tiles_per_router: int = 4
               ) -> dict[int, int]:
    """Index of each tile within its router (0..tiles_per_router-1).

    Tiles are numbered consecutively per router, so the slot is ``tile % tiles_per_router``
    when that is consistent with the router column of tiles.csv; otherwise tiles are ranked
    by number within their (chip, router).
    """
    tiles = {int(r["tile"]): (int(r["chip"]), int(r["router"])) for r in rows}
    offsets: dict[int, set[int]] = {}
    for t, (chip, router) in tiles.items():
        offsets.setdefault(chip, set()).add(t // tiles_per_router - router)
    if all(len(s) == 1 for s in offsets.values()):
        return {t: t % tiles_per_router for t in tiles}
    by_router: dict[tuple[int, int], list[int]] = {}
    for t, key in tiles.items():
        by_router.setdefault(key, []).append(t)
    return {t: i % tiles_per_router for ts in by_router.values() for i, t in enumerate(sorted(ts))}


def plot_tile_heatmap(summary: dict[str, Any], results_dir: Path,
                      formats: Sequence[str]) -> list[Path]:
    """tile_heatmap.*: crossbar utilization per tile on the mesh floor plan, per pipeline."""
    rows = read_csv_rows(Path(results_dir) / "tiles.csv")
    if not rows:
        return []
    tpr = int(summary.get("tiles_per_router") or 4)
    side = max(1, math.ceil(math.sqrt(tpr)))  # tiles per router drawn as side x side block
    slots = tile_slots(rows, tpr)
    n_rows = max(int(r["router_row"]) for r in rows) + 1
    n_cols = max(int(r["router_col"]) for r in rows) + 1
    chips = sorted({int(r["chip"]) for r in rows})
    chip_pos = {c: i for i, c in enumerate(chips)}
    gap = 1  # blank cells between chips
    width = len(chips) * n_cols * side + (len(chips) - 1) * gap
    height = n_rows * side
    names = list(dict.fromkeys(r["pipeline"] for r in rows))
    grids = {n: np.full((height, width), np.nan) for n in names}
    for r in rows:
        t = int(r["tile"])
        s = slots[t]
        y = int(r["router_row"]) * side + s // side
        x = (chip_pos[int(r["chip"])] * (n_cols * side + gap) + int(r["router_col"]) * side
             + s % side)
        grids[r["pipeline"]][y, x] = _float(r.get("utilization"))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#D9D9D9")
    aspect = height / max(width, 1)
    pw = min(10.0, max(3.0, 0.32 * width))  # panel width (inches)
    ph = max(1.6, pw * aspect) + 0.9
    stack = aspect < 0.6 and len(names) > 1  # wide floor plans: panels one under another
    nr, nc = (len(names), 1) if stack else (1, len(names))
    fig, axes = plt.subplots(nr, nc, figsize=(max(6.5, pw * nc + 1.6), ph * nr + 0.7),
                             squeeze=False, layout="constrained")
    axes = axes.reshape(1, -1)
    for ax, n in zip(axes[0], names, strict=True):
        g = grids[n]
        im = ax.imshow(np.ma.masked_invalid(g), cmap=cmap, vmin=0.0, vmax=1.0,
                       interpolation="nearest", origin="upper")
        ax.set_facecolor("#D9D9D9")
        # router boundaries (white lines)
        for yy in range(n_rows + 1):
            ax.axhline(yy * side - 0.5, color="white", lw=1.2)
        for ci in range(len(chips)):
            x0 = ci * (n_cols * side + gap)
            if ci:  # the gap between chips is not floor plan: white
                ax.axvspan(x0 - gap - 0.5, x0 - 0.5, color="white", zorder=2)
            for c in range(n_cols + 1):
                ax.axvline(x0 + c * side - 0.5, color="white", lw=1.2)
        used = int(np.isfinite(g).sum())
        mean = float(np.nanmean(g)) if used else 0.0
        ax.set_title(f"{n}: {used} tiles, mean {mean:.2f}", fontsize=10)
        xt = [ci * (n_cols * side + gap) + c * side + side / 2 - 0.5
              for ci in range(len(chips)) for c in range(n_cols)]
        ax.set_xticks(xt, [str(c) for _ in chips for c in range(n_cols)], fontsize=6)
        ax.set_yticks(np.arange(side / 2 - 0.5, height, side), [str(i) for i in range(n_rows)],
                      fontsize=6)
        ax.set_xlabel("router column" + (f" (chips {chips[0]}..{chips[-1]} left to right)"
                                         if len(chips) > 1 else ""))
        ax.set_ylabel("router row")
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)
    if im is not None:
        cb = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.5 if stack else 0.85)
        cb.set_label("crossbar utilization (busy / time)")
    fig.suptitle(f"Tile utilization on the floor plan — {_title_prefix(summary)}\n"
                 f"({tpr} tiles per router as a block; grey = unused tile)", fontsize=10)
    return _save(fig, results_dir, "tile_heatmap", formats)


# ----------------------------------------------------------------------------- entry

def draw_all(results_dir: Path, formats: Sequence[str] = ("png", "svg"),
             per_layer_hist: bool = False, processes: int = 1) -> list[Path]:
    """Draw every plot the files of *results_dir* allow; return the written paths.

    With *processes* > 1 the plots are drawn in that many forked processes (matplotlib
    spends most of its time laying out text, one plot at a time).
    """
    results_dir = Path(results_dir)
    summary = load_summary(results_dir)
    formats = tuple(dict.fromkeys(formats))
    tl = load_timeline(results_dir)
    tasks: list[tuple] = []
    if tl:
        tasks += [(plot_utilization, (summary, tl, results_dir, formats)),
                  (plot_power, (summary, tl, results_dir, formats))]
    tasks += [(plot_energy_breakdown, (summary, results_dir, formats)),
              (plot_energy_per_layer, (summary, results_dir, formats)),
              (plot_bits_histogram, (summary, results_dir, formats, per_layer_hist)),
              (plot_tile_heatmap, (summary, results_dir, formats))]
    if processes > 1 and len(tasks) > 1:
        # forked children that an interrupt stops cleanly and that die silently when the
        # run ends (simulator/core/workers.py; a multiprocessing.Pool's workers printed an
        # "Interrupted by SIGTERM" traceback when the pool terminated them); one child per
        # batch of plots, the batches balanced by each plot's usual cost (a fork and a
        # first figure per child, and no child waiting on a slow plot drawn last)
        from simulator.core.workers import run_parallel

        batches = _batches([fn.__name__ for fn, _ in tasks], min(processes, len(tasks)))
        global _TASKS
        _TASKS = tasks  # inherited by the forked workers
        try:
            done = run_parallel(_draw_batch, batches, len(batches),
                                labels=["plots " + ", ".join(tasks[i][0].__name__ for i in b)
                                        for b in batches])
        finally:
            _TASKS = []
        by_task = {i: paths for b, got in zip(batches, done, strict=True)
                   for i, paths in zip(b, got, strict=True)}
        return [p for i in range(len(tasks)) for p in by_task[i]]
    return [p for fn, args in tasks for p in fn(*args)]


#: relative cost of drawing each plot (CPU seconds of the quick start's, x10), to balance
#: the batches of :func:`draw_all`'s children
_COST = {"plot_utilization": 4.0, "plot_tile_heatmap": 3.5, "plot_power": 3.3,
         "plot_energy_per_layer": 3.0, "plot_energy_breakdown": 2.0,
         "plot_bits_histogram": 1.5}


def _batches(names: Sequence[str], n: int) -> list[list[int]]:
    """Indices of *names* in *n* batches of about equal cost (longest first, each to the
    cheapest batch so far)."""
    loads = [0.0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(names)), key=lambda i: -_COST.get(names[i], 2.0)):
        k = loads.index(min(loads))
        out[k].append(i)
        loads[k] += _COST.get(names[i], 2.0)
    return [b for b in out if b]


_TASKS: list[tuple] = []


def _draw_batch(batch: list[int]) -> list[list[Path]]:
    out = []
    for i in batch:
        fn, args = _TASKS[i]
        out.append(fn(*args))
    return out


__all__ = ["PIPELINE_COLOURS", "PLOT_NAMES", "draw_all", "energy_unit",
           "layer_order", "load_summary", "load_timeline", "pipeline_colours", "tile_slots"]
