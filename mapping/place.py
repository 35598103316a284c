"""Placement of crossbars onto chips -> tiles -> IMAs, of output positions onto replicas
and tiles, and NoC routes between layers.

Crossbars are packed densely in layer (graph) order, each layer's replicas contiguous
(replica major, then the replica's crossbar index: row block major, then column block).
A layer may share an IMA or a tile with its neighbours and may straddle a chip boundary;
its ``chip`` is the chip of its first crossbar.  Ids are global: tile id =
``chip * chip.tiles + local tile``, IMA id = ``tile * tile.imas + local IMA``, router id =
``chip * routers_per_chip + local tile // tiles_per_router``.

Output positions (``mapping.placement``, docs/mapping.md):

- ``bands`` (default): the replicas of a layer are grouped by their *merge tile* (the
  tile of their first crossbar, where their outputs are written); each group computes a
  contiguous band of whole columns of the output map (positions taken column by column,
  as many per group as it has replicas), and its replicas share the band's positions
  row by row (round robin in row-major order), so every group advances through the
  rows at the same pace. A node without weights (pool, add, ...) computes each output
  position on the tile that computed the centre of its input window, so its bands sit
  where its input was produced. Rows then travel between tiles only at band edges.
- ``interleaved`` (the placement before issue 18, kept for comparison): replica r of R
  computes positions r, r + R, r + 2R, ... and a node without weights computes its output
  row r on tile r mod n of its last producer's n tiles: every row is spread over all the
  tiles of a layer, so a consumer gathers each row from all of them (ISAAC's replicas
  working on neighbouring positions of the same row, with no regard for where the data
  sits).

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
import numpy as np

from mapping.buffers import edram_alloc, min_rows, row_bytes
from mapping.errors import MappingError

__all__ = ["PLACEMENTS", "CrossbarSlot", "annotate_graph", "assign_positions", "place_layers",
           "router_of_tile", "xy_route"]

#: position placements (``mapping.placement``)
PLACEMENTS = ("bands", "interleaved")


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


def router_order(hw: Any, stripe: int) -> list[int]:
    """Local router ids of one chip in the order placement fills them: stripes of
    *stripe* mesh rows, each stripe column by column (left to right, then right to left
    in the next stripe), each column of a stripe top to bottom, then bottom to top
    (a boustrophedon), so that consecutive routers are neighbours and a run of routers
    is a block *stripe* routers high. ``stripe = 0``: row-major ids (no reordering)."""
    n = routers_per_chip(hw)
    cols = int(hw.chip.mesh_cols)
    rows = -(-n // cols)
    if stripe <= 0:
        return list(range(n))
    out: list[int] = []
    for k, top in enumerate(range(0, rows, stripe)):
        band = list(range(top, min(rows, top + stripe)))
        xs = range(cols) if k % 2 == 0 else range(cols - 1, -1, -1)
        for i, x in enumerate(xs):
            ys = band if i % 2 == 0 else band[::-1]
            out += [y * cols + x for y in ys if y * cols + x < n]
    return out


def tile_order(hw: Any, stripe: int) -> list[int]:
    """Local tile ids of one chip in the order placement fills them (``router_order``,
    the tiles of a router consecutive)."""
    per = int(hw.chip.tiles_per_router)
    return [r * per + i for r in router_order(hw, stripe) for i in range(per)
            if r * per + i < hw.chip.tiles]


def place_layers(layers: Iterable[Any], hw: Any, chips: int, align: int = 1,
                 stripe: int = 0) -> int:
    """Fill ``placement``, ``tiles`` and ``chip`` of each layer; return crossbars used.

    *layers* (graph order) need ``name``, ``crossbars`` and ``replicas``. Each layer
    starts at a multiple of *align* crossbars (the crossbars of a tile, for tile-aligned
    placement). Tiles are filled in the order of :func:`tile_order` (*stripe*; 0: tile
    ids in order). Raises :class:`MappingError` if they do not fit in *chips* chips.
    """
    per_ima = hw.ima.crossbars
    per_tile = per_ima * hw.tile.imas
    per_chip = per_tile * hw.chip.tiles
    capacity = per_chip * chips
    order = tile_order(hw, stripe)
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
                chip, k = divmod(nxt, per_chip)
                tile = chip * hw.chip.tiles + order[k // per_tile]
                ima = tile * hw.tile.imas + (k % per_tile) // per_ima
                rep.append(CrossbarSlot(chip=chip, tile=tile, ima=ima, index=k % per_ima))
                nxt += 1
            placement.append(rep)
        lm.placement = placement
        lm.tiles = sorted({s.tile for rep in placement for s in rep})
        lm.chip = placement[0][0].chip if placement and placement[0] else 0
    return nxt


def assign_positions(lm: Any, mode: str) -> None:
    """Fill ``lm.replica_positions``: the output positions (row-major indices, ascending)
    each replica of a placed weight layer computes (module docstring)."""
    n, reps = max(int(lm.positions), 1), int(lm.replicas)
    if mode == "interleaved" or reps == 1:
        lm.replica_positions = [np.arange(r, n, reps) for r in range(reps)]
        return
    h, w = (int(lm.out_hw[0]), int(lm.out_hw[1])) if n > 1 else (1, 1)
    groups: dict[int, list[int]] = {}  # merge tile -> its replicas, in order
    for r, rep in enumerate(lm.placement):
        groups.setdefault(rep[0].tile, []).append(r)
    # positions column by column (x major, then y), cut into one contiguous chunk per
    # group: n // R positions per replica, the first n mod R replicas one more
    col_major = (np.arange(n) % h) * w + np.arange(n) // h
    share = [n // reps + (1 if r < n % reps else 0) for r in range(reps)]
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * reps
    start = 0
    for members in groups.values():
        end = start + sum(share[r] for r in members)
        chunk = np.sort(col_major[start:end])  # row-major within the band
        for i, r in enumerate(members):
            out[r] = chunk[i::len(members)]
        start = end
    lm.replica_positions = out


def _position_tiles(lm: Any) -> np.ndarray:
    """Tile on which each output position of a weight layer is written (its replica's
    merge tile)."""
    tiles = np.zeros(max(int(lm.positions), 1), dtype=np.int64)
    for rep, pos in zip(lm.placement, lm.replica_positions, strict=True):
        tiles[pos] = rep[0].tile
    return tiles


def centre_positions(d: dict, src: tuple[int, int, int], n_out: int) -> np.ndarray:
    """Index, in the producer's map of dims *src* (C, H, W), of the centre of the input
    window of each of the *n_out* output positions of node *d* (a conv or pool: its
    kernel, stride, padding and dilation; a map of the producer's size: the same
    position; anything else, e.g. a global pool or a linear layer: the map's centre)."""
    _, oh, ow = dims(d["out_shape"])
    if oh * ow != n_out:
        oh, ow = 1, n_out
    oy, ox = np.divmod(np.arange(oh * ow), ow)
    if d["kind"] in ("conv", "maxpool", "avgpool") and (oh, ow) != (1, 1):
        kh, kw = d.get("kernel") or (1, 1)
        sh, sw = d.get("stride") or (1, 1)
        ph, pw = d.get("padding") or (0, 0)
        dh, dw = d.get("dilation") or (1, 1)
        cy = oy * sh - ph + ((kh - 1) * dh) // 2
        cx = ox * sw - pw + ((kw - 1) * dw) // 2
    elif (oh, ow) == (src[1], src[2]):
        cy, cx = oy, ox
    else:
        cy = np.full_like(oy, src[1] // 2)
        cx = np.full_like(ox, src[2] // 2)
    return np.clip(cy, 0, src[1] - 1) * src[2] + np.clip(cx, 0, src[2] - 1)


def dims(shape: Any) -> tuple[int, int, int]:
    """(C, H, W) of a map shape, (F, 1, 1) of a vector."""
    s = tuple(shape)
    return (int(s[0]), int(s[1]), int(s[2])) if len(s) == 3 else (int(s[0]), 1, 1)


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


def annotate_graph(graph: nx.DiGraph, layers: dict[str, Any], hw: Any,
                   mode: str = "bands") -> dict[str, np.ndarray]:
    """Annotate the graph (:func:`_annotate`) and return the tile of every output
    position of every node that has one.

    With ``bands``, a node without weights whose input buffer its tiles' eDRAM cannot
    hold (a global pool gathers the whole map on the tile of its one position) is spread
    as with ``interleaved`` instead, over its last producer's tiles; if that is still too
    small and the producer has no weights either, the producer is spread too, and so on
    until every buffer fits or nothing is left to spread (the event engine then names the
    buffer that is too small). docs/mapping.md says what this models."""
    spread: set[str] = set()
    bits = int(hw.activations.bits)
    while True:
        pos_tiles = _annotate(graph, layers, hw, mode, spread)
        if mode != "bands":
            return pos_tiles
        more = set()
        for (u, v), nb in edram_alloc(graph, hw).items():
            if nb // max(row_bytes(graph, u, bits), 1e-9) >= min_rows(graph, u, v):
                continue
            if v not in layers and v not in spread:
                more.add(v)
            elif v in spread and u not in layers and u not in spread:
                more.add(u)
        if not more:
            return pos_tiles
        spread |= more


def _annotate(graph: nx.DiGraph, layers: dict[str, Any], hw: Any, mode: str,
              spread: set[str]) -> dict[str, np.ndarray]:
    """Annotate nodes (``tiles chip replicas crossbars``) and edges (``hops route offchip``);
    returns the tile of every output position of every node that has a tile (weight
    layers: their replicas' merge tiles; see the module docstring for the others).

    Weight layers take their placement; other nodes run on the tiles of their last
    producer (by ``order``, the input computed last): with ``bands``, each position on the
    tile that computed the centre of its window, with ``interleaved`` row r on tile r mod
    n of the producer's n tiles; nodes without producers (the input) take their first
    consumer's tile.
    """
    order = sorted(graph.nodes, key=lambda n: graph.nodes[n].get("order", 0))
    where: dict[str, tuple[list[int], int]] = {}
    pos_tiles: dict[str, np.ndarray] = {}
    for n in order:
        if n in layers:
            where[n] = (list(layers[n].tiles), int(layers[n].chip))
            pos_tiles[n] = _position_tiles(layers[n])
            continue
        # run where the last-computed input is produced (for a residual add: the main
        # branch's conv, whose outputs arrive last), so only the other inputs travel
        preds = sorted(graph.predecessors(n), key=lambda p: graph.nodes[p].get("order", 0))
        preds = [p for p in preds if p in where]
        if preds:
            last = preds[-1]
            tiles, chip = where[last]
            _, oh, ow = dims(graph.nodes[n]["out_shape"])
            if mode == "bands" and last in pos_tiles and n not in spread:
                # each position where the centre of its window was computed
                pt = pos_tiles[last][centre_positions(
                    graph.nodes[n], dims(graph.nodes[last]["out_shape"]), oh * ow)]
                tiles = sorted(set(pt.tolist()))
            else:
                pt = np.repeat(np.array(tiles)[np.arange(oh) % len(tiles)], ow)
            pos_tiles[n] = pt
            where[n] = (list(tiles), chip)
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
    return pos_tiles
