"""Placement of crossbars onto chips -> tiles -> IMAs, and NoC routes between layers.

Crossbars are packed densely in layer (graph) order, each layer's replicas contiguous
(replica major, then the replica's crossbar index: row block major, then column block).
A layer may share an IMA or a tile with its neighbours and may straddle a chip boundary;
its ``chip`` is the chip of its first crossbar.  Ids are global: tile id =
``chip * chip.tiles + local tile``, IMA id = ``tile * tile.imas + local IMA``, router id =
``chip * routers_per_chip + local tile // tiles_per_router``.

NoC: routers form a 2D mesh of ``chip.mesh_cols`` columns (router r at column
``r % mesh_cols``, row ``r // mesh_cols``), XY dimension-ordered routing.  An edge between
two chips is routed from the producer's router to router 0 of its chip (the off-chip
port), over the off-chip link, then from router 0 of the consumer's chip to its router;
``hops`` counts only on-chip router-to-router links.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from mapping.errors import MappingError

__all__ = ["CrossbarSlot", "annotate_graph", "place_layers", "router_of_tile", "xy_route"]


@dataclass(frozen=True)
class CrossbarSlot:
    """Physical position of one crossbar: chip, global tile id, global IMA id, index in IMA."""

    chip: int
    tile: int
    ima: int
    index: int


def xy_route(src_router: int, dst_router: int, mesh_cols: int) -> list[tuple[int, int]]:
    """Links ``(router_a, router_b)`` of the XY route (X first, then Y) in one mesh."""
    x, y = src_router % mesh_cols, src_router // mesh_cols
    dx, dy = dst_router % mesh_cols, dst_router // mesh_cols
    links: list[tuple[int, int]] = []
    while x != dx:
        nx_ = x + (1 if dx > x else -1)
        links.append((y * mesh_cols + x, y * mesh_cols + nx_))
        x = nx_
    while y != dy:
        ny = y + (1 if dy > y else -1)
        links.append((y * mesh_cols + x, ny * mesh_cols + x))
        y = ny
    return links


def routers_per_chip(hw: Any) -> int:
    """Routers of one chip (the last may be partly populated)."""
    return -(-hw.chip.tiles // hw.chip.tiles_per_router)


def router_of_tile(tile: int, hw: Any) -> tuple[int, int]:
    """``(chip, local router)`` of a global tile id."""
    chip, local = divmod(tile, hw.chip.tiles)
    return chip, local // hw.chip.tiles_per_router


def place_layers(layers: Iterable[Any], hw: Any, chips: int, align: int = 1) -> int:
    """Fill ``placement``, ``tiles`` and ``chip`` of each layer; return crossbars used.

    *layers* (graph order) need ``name``, ``crossbars`` and ``replicas``. Each layer
    starts at a multiple of *align* crossbars (the crossbars of a tile, for tile-aligned
    placement). Raises :class:`MappingError` if they do not fit in *chips* chips.
    """
    per_ima = hw.ima.crossbars
    per_tile = per_ima * hw.tile.imas
    per_chip = per_tile * hw.chip.tiles
    capacity = per_chip * chips
    nxt = 0
    for lm in layers:
        nxt = -(-nxt // align) * align
        need = lm.crossbars * lm.replicas
        if nxt + need > capacity:
            raise MappingError(
                f"layer {lm.name} does not fit: {nxt + need} crossbars needed so far, "
                f"{chips} chip(s) have {capacity}"
            )
        placement: list[list[CrossbarSlot]] = []
        for _ in range(lm.replicas):
            rep: list[CrossbarSlot] = []
            for _ in range(lm.crossbars):
                gima, index = divmod(nxt, per_ima)
                rep.append(CrossbarSlot(chip=nxt // per_chip, tile=nxt // per_tile, ima=gima,
                                        index=index))
                nxt += 1
            placement.append(rep)
        lm.placement = placement
        lm.tiles = sorted({s.tile for rep in placement for s in rep})
        lm.chip = placement[0][0].chip if placement and placement[0] else 0
    return nxt


def _route(t_src: int, t_dst: int, hw: Any) -> tuple[int, list[tuple[int, int]], bool]:
    """``(hops, links with global router ids, offchip)`` from tile *t_src* to *t_dst*."""
    mc, rpc = hw.chip.mesh_cols, routers_per_chip(hw)
    (c1, r1), (c2, r2) = router_of_tile(t_src, hw), router_of_tile(t_dst, hw)
    if c1 == c2:
        links = [(a + c1 * rpc, b + c1 * rpc) for a, b in xy_route(r1, r2, mc)]
        return len(links), links, False
    out = [(a + c1 * rpc, b + c1 * rpc) for a, b in xy_route(r1, 0, mc)]
    inn = [(a + c2 * rpc, b + c2 * rpc) for a, b in xy_route(0, r2, mc)]
    return len(out) + len(inn), out + [(c1 * rpc, c2 * rpc)] + inn, True


def route_between(t_src: int, t_dst: int, hw: Any) -> tuple[int, list[tuple[int, int]], bool]:
    """``(hops, links with global router ids, offchip)`` from tile *t_src* to *t_dst*."""
    return _route(t_src, t_dst, hw)


def annotate_graph(graph: nx.DiGraph, layers: dict[str, Any], hw: Any) -> None:
    """Annotate nodes (``tiles chip replicas crossbars``) and edges (``hops route offchip``).

    Weight layers take their placement; other nodes run on the tiles of their last
    producer (by ``order``, the input computed last); nodes without producers (the input)
    take their first consumer's tile.
    """
    order = sorted(graph.nodes, key=lambda n: graph.nodes[n].get("order", 0))
    where: dict[str, tuple[list[int], int]] = {}
    for n in order:
        if n in layers:
            where[n] = (list(layers[n].tiles), int(layers[n].chip))
            continue
        # run where the last-computed input is produced (for a residual add: the main
        # branch's conv, whose outputs arrive last), so only the other inputs travel
        preds = sorted(graph.predecessors(n), key=lambda p: graph.nodes[p].get("order", 0))
        preds = [p for p in preds if p in where]
        if preds:
            where[n] = where[preds[-1]]
    for n in reversed(order):
        if n not in where:
            succ = sorted(graph.successors(n), key=lambda s: graph.nodes[s].get("order", 0))
            succ = [s for s in succ if s in where]
            where[n] = where[succ[0]] if succ else ([0], 0)
    for n in order:
        tiles, chip = where[n]
        d = graph.nodes[n]
        d["tiles"], d["chip"] = list(tiles), chip
        d["replicas"] = int(layers[n].replicas) if n in layers else 1
        d["crossbars"] = int(layers[n].crossbars) if n in layers else 0
    for u, v, e in graph.edges(data=True):
        tu, tv = graph.nodes[u]["tiles"], graph.nodes[v]["tiles"]
        hops, route, off = _route(tu[0], tv[0], hw)
        e["hops"], e["route"] = hops, route
        e["offchip"] = off
