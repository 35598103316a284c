"""Plots of a sweep: energy against latency with the Pareto front; savings against each axis.

- ``pareto.png``/``.svg``: energy per image against latency, one marker per point and
  pipeline; the Pareto front (no other row is at least as fast and as frugal) is joined
  and labelled with the point ids.
- ``saving.png``/``.svg``: one column per axis (other than an axis over ``pipelines``):
  the energy saving ``1 - E / E_baseline`` (%), the latency saving ``1 - L / L_baseline``
  (%) and the throughput ratio against the baseline pipeline (``baseline`` of the sweep
  file, default ``static``) of the same point or, when the pipelines are an axis, of the
  point that differs only in that axis; one line per combination of the other axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.explore.sweep.spec import SweepPlan

FORMATS = ("png", "svg")


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated in (x, y), both minimised, sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best = float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def _pipeline_axes(plan: SweepPlan) -> set[str]:
    return {a.label for a in plan.spec.axes
            if any(k == "pipelines" or k.startswith("pipelines.") for k in a.keys)}


def savings(rows: list[dict[str, Any]], plan: SweepPlan) -> list[dict[str, Any]]:
    """Per non-baseline row: its axes, pipeline, energy and latency savings and throughput
    ratio against the baseline row of the same configuration."""
    base_name = plan.spec.baseline
    pipe_axes = _pipeline_axes(plan)
    labels = [a.label for a in plan.spec.axes if a.label not in pipe_axes]
    ok = [r for r in rows if r.get("status") == "ok"]
    base = {tuple(str(r.get(lab)) for lab in labels): r for r in ok
            if r.get("pipeline") == base_name}
    out = []
    for r in ok:
        if r.get("pipeline") == base_name:
            continue
        b = base.get(tuple(str(r.get(lab)) for lab in labels))
        if b is None:
            continue
        e, eb = r["energy_pj.per_image"], b["energy_pj.per_image"]
        out.append({**{lab: r.get(lab) for lab in labels}, "pipeline": r["pipeline"],
                    "energy_saving": 1.0 - e / eb if eb else float("nan"),
                    "throughput_ratio": (r["throughput_ips"] / b["throughput_ips"]
                                         if b["throughput_ips"] else float("nan")),
                    "latency_saving": (1.0 - r["latency_ns"] / b["latency_ns"]
                                       if b["latency_ns"] else float("nan"))})
    return out


def _save(fig: Any, out: Path, stem: str) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        p = out / f"{stem}.{fmt}"
        fig.savefig(p, dpi=130, bbox_inches="tight")
        paths.append(p)
    return paths


def draw_sweep_plots(rows: list[dict[str, Any]], plan: SweepPlan, out: Path) -> list[Path]:
    """Draw pareto and saving plots into *out*; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: list[Path] = []
    ok = [r for r in rows if r.get("status") == "ok"]
    pts = [(r["latency_ns"] / 1e3, r["energy_pj.per_image"] / 1e6) for r in ok]
    fig, ax = plt.subplots(figsize=(7, 5))
    pipes = list(dict.fromkeys(r["pipeline"] for r in ok))
    for i, pname in enumerate(pipes):
        xs = [p for p, r in zip(pts, ok, strict=True) if r["pipeline"] == pname]
        ax.scatter([x for x, _ in xs], [y for _, y in xs], label=pname, color=f"C{i}", s=28)
    front = pareto_front(pts)
    ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1,
            label="Pareto front")
    for i in front:
        ax.annotate(f"{ok[i]['point']} [{ok[i]['pipeline']}]", pts[i], fontsize=6,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("latency per image (µs)")
    ax.set_ylabel("energy per image (µJ)")
    ax.set_title(f"{plan.spec.name}: energy vs latency")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    files += _save(fig, out, "pareto")
    plt.close(fig)

    sav = savings(rows, plan)
    pipe_axes = _pipeline_axes(plan)
    axes = [a for a in plan.spec.axes if a.label not in pipe_axes]
    if not sav or not axes:
        return files
    rows_of = (("energy_saving", 100.0, f"energy saving vs {plan.spec.baseline} (%)"),
               ("latency_saving", 100.0, f"latency saving vs {plan.spec.baseline} (%)"),
               ("throughput_ratio", 1.0, f"throughput / {plan.spec.baseline}"))
    fig, grid = plt.subplots(len(rows_of), len(axes), figsize=(4.5 * len(axes), 9.0),
                             squeeze=False)
    for j, axis in enumerate(axes):
        from simulator.explore.sweep.spec import axis_value

        xs_all = list(dict.fromkeys(axis_value(axis, s) for s in axis.settings()))
        others = [a.label for a in axes if a is not axis]
        series: dict[tuple, list[dict[str, Any]]] = {}
        for s in sav:
            series.setdefault((*[s.get(o) for o in others], s["pipeline"]), []).append(s)
        for k, (key, items) in enumerate(series.items()):
            items.sort(key=lambda s: xs_all.index(s[axis.label]))
            xi = [xs_all.index(s[axis.label]) for s in items]
            name = ", ".join(f"{o}={v}" for o, v in zip(others, key[:-1], strict=True))
            lab = f"{key[-1]}" + (f" ({name})" if name else "")
            # earlier series drawn larger, so that coinciding lines stay visible
            size = max(3.0, 9.0 - 2.0 * k)
            for r, (field, scale, _) in enumerate(rows_of):
                grid[r][j].plot(xi, [scale * s[field] for s in items], "o-", color=f"C{k}",
                                label=lab, markersize=size, lw=max(1.0, 2.5 - 0.5 * k))
        for r, (_, _, ylabel) in enumerate(rows_of):
            grid[r][j].set_xticks(range(len(xs_all)), [str(x) for x in xs_all])
            grid[r][j].grid(alpha=0.3)
            grid[r][j].set_ylabel(ylabel)
        grid[-1][j].set_xlabel(axis.label)
        grid[0][j].legend(fontsize=7)
    fig.suptitle(f"{plan.spec.name}: saving against each axis")
    fig.tight_layout()
    files += _save(fig, out, "saving")
    plt.close(fig)
    return files
