"""A quick, route-aware estimate of the NoC load a placement causes (to choose among
placements); the simulator's own per-packet model is ``simulator.model.bound.noc_load``.

Every consumer output position pulls an equal share of its producer's map (the map's
bytes / the consumer's positions) from the tile that computed the centre of its input
window, and a replica whose crossbars sit on several tiles sends its partial sums
(output channels × ``psum`` bits per position) from each of the other tiles to its merge
tile. Each (source tile, destination tile) flow is routed XY (``place.route_between``);
the load of a link, an injection port (its source tile) or an ejection port (its
destination tile) is the bytes crossing it per image.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import networkx as nx
import numpy as np

from mapping.place import centre_positions, dims, route_between

__all__ = ["link_loads"]


def link_loads(graph: nx.DiGraph, layers: dict[str, Any], pos_tiles: dict[str, np.ndarray],
               hw: Any) -> dict[tuple, float]:
    """Estimated bytes per image over every NoC link and port (module docstring)."""
    act_bytes = int(hw.activations.bits) / 8.0
    psum_bytes = (int(hw.activations.bits) + int(hw.weights.bits)
                  + math.ceil(math.log2(int(hw.crossbar.rows)))) / 8.0
    flows: dict[tuple[int, int], float] = defaultdict(float)
    for u, v in graph.edges:
        if u not in pos_tiles or v not in pos_tiles:
            continue
        c_u, h_u, w_u = dims(graph.nodes[u]["out_shape"])
        dst = np.asarray(pos_tiles[v])
        src = np.asarray(pos_tiles[u])[centre_positions(graph.nodes[v], (c_u, h_u, w_u),
                                                        len(dst))]
        share = c_u * h_u * w_u * act_bytes / len(dst)
        moved = src != dst
        pairs, counts = np.unique(np.stack([src[moved], dst[moved]]), axis=1,
                                  return_counts=True)
        for (s, d), n in zip(pairs.T.tolist(), counts.tolist(), strict=True):
            flows[(s, d)] += n * share
    for lm in layers.values():
        out_c = int(lm.cols) * int(lm.groups)
        for rep, pos in zip(lm.placement, lm.replica_positions, strict=True):
            merge = rep[0].tile
            for t in {s.tile for s in rep} - {merge}:
                flows[(t, merge)] += len(pos) * out_c * psum_bytes
    load: dict[tuple, float] = defaultdict(float)
    for (s, d), nbytes in flows.items():
        load[("inj", s)] += nbytes
        load[("ej", d)] += nbytes
        for link in route_between(s, d, hw)[1]:
            load[("link", *link)] += nbytes
    return dict(load)
