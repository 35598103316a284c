"""Reports of a mapping: JSON dict, text table, GraphML and a floor-plan plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx

from mapping.mapper import LayerMapping, NetworkMapping

__all__ = ["format_mapping_table", "mapping_to_json", "plot_placement", "write_graphml"]


def _col_blocks(lm: LayerMapping) -> int:
    return max((rb.n_crossbars for rb in lm.row_blocks), default=0)


def _cells_per_crossbar(m: NetworkMapping) -> int:
    return int(m.hw.crossbar.rows * m.hw.crossbar.cols) if m.hw is not None else 0


def _total_utilization(m: NetworkMapping) -> float:
    cells = sum(lm.weight_cells * lm.replicas for lm in m.layers.values())
    cap = m.crossbars_used * _cells_per_crossbar(m)
    if cap:
        return cells / cap
    xb = sum(lm.crossbars * lm.replicas for lm in m.layers.values())
    w = sum(lm.utilization * lm.crossbars * lm.replicas for lm in m.layers.values())
    return w / xb if xb else 0.0


def mapping_to_json(m: NetworkMapping) -> dict[str, Any]:
    """JSON-ready summary: one entry per layer plus totals."""
    layers = [
        {
            "name": lm.name,
            "kind": lm.kind,
            "rows": lm.rows,
            "cols": lm.cols,
            "row_blocks": len(lm.row_blocks),
            "col_blocks": _col_blocks(lm),
            "crossbars": lm.crossbars,
            "replicas": lm.replicas,
            "tiles": [int(t) for t in lm.tiles],
            "chip": int(lm.chip),
            "utilization": float(lm.utilization),
        }
        for lm in m.layers.values()
    ]
    totals = {
        "crossbars_used": int(m.crossbars_used),
        "crossbars_available": int(m.crossbars_available),
        "tiles_used": int(m.tiles_used),
        "chips": int(m.chips),
        "utilization": float(_total_utilization(m)),
    }
    return {"layers": layers, "totals": totals}


def _ranges(ids: list[int]) -> str:
    """``[0,1,2,5]`` -> ``'0-2,5'``."""
    out: list[str] = []
    ids = sorted(ids)
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out)


def format_mapping_table(m: NetworkMapping) -> str:
    """Aligned text table (one row per layer) followed by totals lines."""
    head = ["layer", "kind", "rows", "cols", "rblk", "cblk", "xbars", "reps", "xbars*reps",
            "tiles", "chip", "util"]
    rows = [
        [lm.name, lm.kind, str(lm.rows), str(lm.cols), str(len(lm.row_blocks)),
         str(_col_blocks(lm)), str(lm.crossbars), str(lm.replicas),
         str(lm.crossbars * lm.replicas), _ranges(lm.tiles), str(lm.chip),
         f"{100 * lm.utilization:.1f}%"]
        for lm in m.layers.values()
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    left = {0, 1, 9}

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    lines = [fmt(head), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    avail = m.crossbars_available
    pct = 100 * m.crossbars_used / avail if avail else 0.0
    lines += [
        "",
        f"crossbars: {m.crossbars_used} used of {avail} ({pct:.1f}%)",
        f"tiles: {m.tiles_used} used, chips: {m.chips}",
        f"weight-cell utilization of used crossbars: {100 * _total_utilization(m):.1f}%",
    ]
    return "\n".join(lines)


def _graphml_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool | str):
        return v
    if isinstance(v, int | float):
        return v
    if hasattr(v, "item") and callable(v.item):  # numpy / torch scalars
        try:
            return v.item()
        except (TypeError, ValueError):
            pass
    return str(list(v) if isinstance(v, tuple) else v)


def write_graphml(m: NetworkMapping, path: str | Path) -> None:
    """Write the annotated graph as GraphML (tuple/list/None attributes stringified)."""
    g = nx.DiGraph()
    g.graph.update({k: _graphml_value(v) for k, v in m.graph.graph.items()})
    for n, d in m.graph.nodes(data=True):
        g.add_node(str(n), **{k: _graphml_value(v) for k, v in d.items()})
    for u, v, d in m.graph.edges(data=True):
        g.add_edge(str(u), str(v), **{k: _graphml_value(x) for k, x in d.items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nx.write_graphml(g, str(path))


def plot_placement(m: NetworkMapping, path: str | Path) -> None:
    """Draw each used chip's tiles on its router-mesh floor plan, coloured by layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    hw = m.hw
    tiles_per_chip = hw.chip.tiles
    c = hw.chip.tiles_per_router
    mesh_cols = hw.chip.mesh_cols
    routers = math.ceil(tiles_per_chip / c)
    mesh_rows = math.ceil(routers / mesh_cols)
    sub_cols = math.ceil(math.sqrt(c))
    sub_rows = math.ceil(c / sub_cols)
    # crossbars per (tile, layer)
    use: dict[int, dict[str, int]] = {}
    for lm in m.layers.values():
        for rep in lm.placement:
            for s in rep:
                use.setdefault(s.tile, {}).setdefault(lm.name, 0)
                use[s.tile][lm.name] += 1
    palette = [plt.get_cmap(c)(i) for c in ("tab20", "tab20b", "tab20c") for i in range(20)]
    colors = {name: palette[i % len(palette)] for i, name in enumerate(m.layers)}
    per_tile = hw.tile.imas * hw.ima.crossbars
    chips = max(int(m.chips), 1)
    w = mesh_cols * sub_cols
    h = mesh_rows * sub_rows
    fig, axes = plt.subplots(1, chips, figsize=(max(4.0, 0.5 * w) * chips + 3, max(3.0, 0.5 * h)),
                             squeeze=False)
    for chip in range(chips):
        ax = axes[0][chip]
        for lt in range(tiles_per_chip):
            r, k = divmod(lt, c)
            x = (r % mesh_cols) * sub_cols + k % sub_cols
            y = (r // mesh_cols) * sub_rows + k // sub_cols
            gt = chip * tiles_per_chip + lt
            ax.add_patch(Rectangle((x, y), 0.92, 0.92, facecolor="0.93", edgecolor="0.6", lw=0.4))
            x0 = x
            for name, n in use.get(gt, {}).items():
                width = 0.92 * n / per_tile
                ax.add_patch(Rectangle((x0, y), width, 0.92, facecolor=colors[name], lw=0))
                x0 += width
        for rr in range(routers):  # router outlines
            x = (rr % mesh_cols) * sub_cols - 0.04
            y = (rr // mesh_cols) * sub_rows - 0.04
            ax.add_patch(Rectangle((x, y), sub_cols, sub_rows, fill=False, edgecolor="0.3",
                                   lw=0.8))
        ax.set_xlim(-0.2, w + 0.1)
        ax.set_ylim(h + 0.1, -0.2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"chip {chip}")
    handles = [Patch(facecolor=colors[n], label=n) for n in m.layers]
    if handles:
        fig.legend(handles=handles, loc="center right", fontsize=6,
                   ncol=max(1, math.ceil(len(handles) / 40)))
    name = m.graph.graph.get("name", "network")
    fig.suptitle(f"{name}: {m.crossbars_used} crossbars on {m.tiles_used} tiles "
                 "(stripe width = share of the tile's crossbars)")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path), dpi=130, bbox_inches="tight")
    plt.close(fig)
