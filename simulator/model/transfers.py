"""Which rows of a feature map travel where: the fan-out plan of every tensor edge.

A producer's output position is computed on one tile (``NodePlan.pos_tile``: a weight
layer's position on the merge tile of the replica that computed it; a digital node's
position where ``mapping.place`` put it; the network input's at the input port,
``noc_routes.PORT``). Of each producer row, a tile keeps in its
eDRAM the columns that the windows of the consumer positions computed with its data read
(a weight consumer: the positions of the replicas with a lane on the tile, and only the
channels those lanes' row blocks read; a digital consumer: its positions on the tile,
every channel). A part of a row that was computed on another tile
travels over the NoC: one packet per (producer row, source tile, destination tile), or
with ``noc.multicast`` one packet per (row, source tile) for all its destinations,
carrying the union of their columns and channels. The engine, the analytic estimate and the bound
all take their packets from :func:`row_packets`, so all book the same traffic.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from mapping.buffers import is_global, map_dims, release_rule, row_bytes
from simulator.model.plan import WEIGHT_KINDS, EdgePlan, NodePlan


def plan_edge(graph: nx.DiGraph, hw, plans: dict[str, NodePlan], u: str, v: str,
              alloc: dict[tuple[str, str], float]) -> EdgePlan:
    """Buffer and transfers of edge u → v (see the module docstring)."""
    bits = int(hw.activations.bits)
    rbytes = row_bytes(graph, u, bits)
    ua, a = graph.nodes[u], graph.nodes[v]
    c_u, h_u, w_u = map_dims(tuple(ua["out_shape"]))
    cap = int(alloc[(u, v)] // rbytes) if (u, v) in alloc and rbytes else None
    kh = (a.get("kernel") or (1, 1))[0]
    sh = (a.get("stride") or (1, 1))[0]
    ph = (a.get("padding") or (0, 0))[0]
    dh = (a.get("dilation") or (1, 1))[0]
    ep = EdgePlan(u, v, rbytes, cap, release_rule(graph, u, v), kh, sh, ph, dh,
                  channels=c_u)
    pu, pv = plans[u], plans[v]
    if pv.kind == "output":
        return ep  # outputs leave the chip (docs/model.md, "what is still left out")
    # sources: the tile that computed each producer position
    positions = h_u * w_u
    idx = np.arange(positions)
    pos_tile = np.asarray(pu.pos_tile)
    src = sorted(set(pos_tile.tolist()))
    col = {t: j for j, t in enumerate(src)}
    counts = np.zeros((h_u, len(src)), dtype=np.int64)
    np.add.at(counts, (idx // w_u, np.array([col[t] for t in pos_tile.tolist()])), 1)
    # destinations and what each needs: need[k, j, x] = tile j needs column x of row k
    if pv.kind in WEIGHT_KINDS:
        dst = sorted({lane.tile for lane in pv.lanes})
        dcol = {t: j for j, t in enumerate(dst)}
        masks = np.zeros((len(dst), c_u), dtype=bool)
        rep_tiles = np.zeros((pv.replicas, len(dst)), dtype=bool)
        for lane in pv.lanes:
            c0, c1 = lane.in_channels
            masks[dcol[lane.tile], c0:min(c1, c_u)] = True
            rep_tiles[lane.replica, dcol[lane.tile]] = True
        on = rep_tiles[pv.pos_replica]  # (positions of v, dst): computed with lanes there
    else:
        dst = list(dict.fromkeys(np.asarray(pv.pos_tile).tolist()))
        masks = np.ones((len(dst), c_u), dtype=bool)
        on = np.asarray(pv.pos_tile)[:, None] == np.array(dst)[None, :]
    need = _window_need(pv, a, on, h_u, w_u)
    src_of = np.array([col[t] for t in pos_tile.tolist()]).reshape(h_u, w_u)
    src_arr, dst_arr = np.array(src), np.array(dst)
    local = src_arr[:, None] == dst_arr[None, :]  # (src, dst) on the same tile
    cols = np.stack([(need & (src_of == s)[:, None, :]).sum(axis=2)
                     for s in range(len(src))], axis=1)  # (rows, src, dst) columns to send
    cols[:, local] = 0
    ep.src_tiles, ep.row_counts = src, counts
    ep.dst_tiles, ep.need, ep.dst_masks = dst, need, masks
    ep.src_of, ep.send_cols = src_of, cols
    ep.remote = bool(cols.any())
    return ep


def _window_need(pv: NodePlan, a: dict, on: np.ndarray, h_u: int, w_u: int) -> np.ndarray:
    """need[k, j, x]: some output position of *pv* computed with data on destination tile
    j (``on[p, j]``) reads input (k, x) of its producer.

    A conv, a pool or a join reads the window of each position (kernel, stride, padding,
    dilation; a join the same position); a linear layer, a global pool or a flatten
    reads the whole map.
    """
    need = np.zeros((h_u, on.shape[1], w_u), dtype=bool)
    kind = pv.kind
    if kind in ("add", "concat"):
        kh = kw = sh = sw = dh = dw = 1
        ph = pw = 0
    elif (kind == "conv" and not (h_u == 1 and w_u == 1)) or (
            kind in ("maxpool", "avgpool") and not is_global(a)):
        kh, kw = a.get("kernel") or (1, 1)
        sh, sw = a.get("stride") or (1, 1)
        ph, pw = a.get("padding") or (0, 0)
        dh, dw = a.get("dilation") or (1, 1)
    else:
        need[:, on.any(axis=0), :] = True  # reads its whole input vector / map
        return need
    p = np.arange(pv.positions)
    oy, ox = p // pv.out_w, p % pv.out_w
    for j in range(on.shape[1]):
        sel = on[:, j]
        y0, x0 = oy[sel] * sh - ph, ox[sel] * sw - pw
        for i in range(kh):
            iy = y0 + i * dh
            for jj in range(kw):
                ix = x0 + jj * dw
                ok = (iy >= 0) & (iy < h_u) & (ix >= 0) & (ix < w_u)
                need[iy[ok], j, ix[ok]] = True
    return need


def row_packets(ep: EdgePlan, row: int, multicast: bool, act_bits: int,
                ) -> list[tuple[int, tuple[int, ...], float]]:
    """Packets that carry producer row *row* of edge *ep*: (source tile, destination
    indices into ``ep.dst_tiles``, payload bits). Cached per row.

    A unicast carries the columns of the row computed on its source tile that the
    destination needs, with the channels the destination's lanes read; a multicast the
    union of its destinations' columns and channels.
    """
    key = (row, multicast)
    got = ep.packets.get(key)
    if got is not None:
        return got
    out: list[tuple[int, tuple[int, ...], float]] = []
    if ep.remote:
        cols = ep.send_cols[row]  # (src, dst)
        ch = ep.dst_channels
        for s, src in enumerate(ep.src_tiles):
            dsts = tuple(int(j) for j in np.flatnonzero(cols[s]))
            if not dsts:
                continue
            if multicast:
                mine = ep.src_of[row] == s
                union_cols = int((ep.need[row][list(dsts)].any(axis=0) & mine).sum())
                union_ch = int(np.logical_or.reduce(ep.dst_masks[list(dsts)], axis=0).sum())
                out.append((src, dsts, float(union_cols * union_ch * act_bits)))
            else:
                out.extend((src, (j,), float(int(cols[s, j]) * int(ch[j]) * act_bits))
                           for j in dsts)
    ep.packets[key] = out
    return out
