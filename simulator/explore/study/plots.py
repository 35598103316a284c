"""Plots of the study page (docs/validation.md): PNG files drawn with matplotlib (Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.explore.study.facts import FidelityRow

DPI = 90


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)
    return path.name


def energy_ratios(names: list[str], ratios: dict[str, list[float]], path: Path,
                  paper_saving: float | None = None) -> str:
    """Grouped bars: energy per image of each pipeline relative to static, per network
    (and the paper's average saving as a line, when given)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names) + 2), 3.6))
    x = np.arange(len(names))
    w = 0.8 / max(1, len(ratios))
    for i, (pipe, vals) in enumerate(ratios.items()):
        ax.bar(x + (i - (len(ratios) - 1) / 2) * w, vals, w, label=pipe)
    if paper_saving is not None:
        ax.axhline(1 - paper_saving, color="k", ls="--", lw=1,
                   label=f"paper: {100 * paper_saving:.0f} % saving")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("energy / image, relative to static")
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=8, ncols=2)
    return _save(fig, path)


def stacked(names: list[str], parts: dict[str, list[float]], ylabel: str, path: Path) -> str:
    """Stacked bars (positive parts up, negative down), one bar per network."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names) + 2), 3.6))
    x = np.arange(len(names))
    pos, neg = np.zeros(len(names)), np.zeros(len(names))
    for label, vals in parts.items():
        v = np.asarray(vals, dtype=float)
        bottom = np.where(v >= 0, pos, neg)
        ax.bar(x, v, 0.6, bottom=bottom, label=label)
        pos += np.where(v >= 0, v, 0)
        neg += np.where(v < 0, v, 0)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncols=2)
    return _save(fig, path)


def sensitivity(labels: list[str], series: dict[str, list[float | None]],
                accuracy: dict[str, list[float | None]] | None, xlabel: str,
                path: Path) -> str:
    """Saving (%) against one axis (one line per series); accuracy on a second axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    x = np.arange(len(labels))
    for name, vals in series.items():
        ax.plot(x, [np.nan if v is None else v for v in vals], "o-", label=name)
    ax.set_xticks(x, labels, rotation=20)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ReDy energy saving vs static (%)")
    if accuracy:
        ax2 = ax.twinx()
        for name, vals in accuracy.items():
            ax2.plot(x, [np.nan if v is None else v for v in vals], "s:", alpha=0.6,
                     label=f"top-1 {name}")
        ax2.set_ylabel("top-1 (%)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7)
    else:
        ax.legend(fontsize=7)
    return _save(fig, path)


def fidelity_latency(rows: list[FidelityRow], path: Path) -> str:
    """Latency of each pipeline at each fidelity, relative to plane, per network."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    labels, vals, colors = [], [], []
    cmap = {"plane": "C0", "group": "C1", "analytic": "C2"}
    for r in rows:
        labels.append(f"{r.network}\n{r.pipeline}\n{r.fidelity}")
        vals.append(r.latency_vs_plane)
        colors.append(cmap.get(r.fidelity, "C3"))
    ax.bar(np.arange(len(vals)), vals, color=colors)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(vals)), labels, fontsize=5)
    ax.set_ylabel("latency / plane latency")
    return _save(fig, path)
