"""Shapes and buffer rules of the graph's tensor edges: a node's (C, H, W), the bytes of a
producer row, how a consumer frees the rows it read, and how each tile's eDRAM is shared
among the input buffers of the nodes on it.

It sits in the mapping layer because placement checks that every buffer fits
(``place.annotate_graph``); the model of work (``simulator/model/``) builds the buffers
from the same rules."""

from __future__ import annotations

import networkx as nx


def map_dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of a map shape or (F, 1, 1) of a vector."""
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    return int(shape[0]), 1, 1


#: node kinds that hold an input buffer in their tiles' eDRAM
BUFFERED = ("conv", "linear", "maxpool", "avgpool", "add", "concat", "flatten")
JOINS = ("add", "concat")


def release_rule(graph: nx.DiGraph, u: str, v: str) -> str:
    """How consumer v frees rows of u: sliding window, row by row, or whole image."""
    a = graph.nodes[v]
    kind = a["kind"]
    if (kind in ("conv", "maxpool", "avgpool") and len(tuple(graph.nodes[u]["out_shape"])) == 3
            and not is_global(a)):
        return "window"
    if kind in ("add", "concat"):
        return "row"
    return "image"


def min_rows(graph: nx.DiGraph, u: str, v: str) -> int:
    """Rows of u that v must hold at once to make progress."""
    _, h_u, _ = map_dims(tuple(graph.nodes[u]["out_shape"]))
    rule = release_rule(graph, u, v)
    if rule == "window":
        a = graph.nodes[v]
        kh, dh = (a.get("kernel") or (1, 1))[0], (a.get("dilation") or (1, 1))[0]
        return min((kh - 1) * dh + 1, h_u)  # rows one dilated window spans
    return 1 if rule == "row" else h_u


def row_bytes(graph: nx.DiGraph, u: str, bits: int) -> float:
    c, _, w = map_dims(tuple(graph.nodes[u]["out_shape"]))
    return c * w * bits / 8.0


def buffered_edges(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """Edges whose consumer buffer is bounded.

    Joins (residual add, concat) are left unbounded: how far one input runs ahead of the
    other depends on the whole branch between them, and a bounded join buffer can
    deadlock the branch that feeds it. Every other consumer's buffer is bounded, the
    network input's too (the input port waits for room).
    """
    return [(u, v) for u, v in graph.edges
            if graph.nodes[v]["kind"] in BUFFERED and graph.nodes[v]["kind"] not in JOINS]


def edram_alloc(graph: nx.DiGraph, hw) -> dict[tuple[str, str], float]:
    """eDRAM bytes given to each buffered edge's rows.

    Each tile's eDRAM is divided among the input buffers of the nodes running on it in
    proportion to their minimum need (rows the consumer must hold at once × row bytes).
    A node spread over several tiles splits each buffered row among them (each tile keeps
    the slice its replicas read), so its allocation is the sum of its shares.
    """
    bits = int(hw.activations.bits)
    need = {(u, v): min_rows(graph, u, v) * row_bytes(graph, u, bits)
            for u, v in buffered_edges(graph)}
    per_tile: dict[int, float] = {}
    for (_u, v), nb in need.items():
        for t in graph.nodes[v].get("tiles") or [0]:
            per_tile[t] = per_tile.get(t, 0.0) + nb
    alloc = {}
    for (u, v), nb in need.items():
        alloc[(u, v)] = sum(hw.tile.edram_bytes * nb / per_tile[t]
                            for t in (graph.nodes[v].get("tiles") or [0]))
    return alloc


def is_global(a: dict) -> bool:
    """A pool or conv whose output is a single position (needs the whole input)."""
    return len(tuple(a["out_shape"])) == 3 and a["out_shape"][1] == 1 and a["out_shape"][2] == 1
