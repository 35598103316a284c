"""Which rows of a feature map travel where: the fan-out plan of every tensor edge.

A producer's output position is computed on one tile (a weight layer's position on the
merge tile of the replica that computed it; a digital node's row on the tile of that
row). Every tile that holds a lane of a weight consumer keeps in its eDRAM the input
channels its lanes read (their row blocks' channels) of every producer row; a digital
consumer's tile keeps the producer rows its own output rows need (its rows are spread
over its tiles, row r on tile r mod n). Of a weight consumer, a tile needs the columns
of each producer row that the windows of its replicas' output positions read, and the
channels its lanes' row blocks read. A part of a row that was computed on another tile
travels over the NoC: one packet per (producer row, source tile, destination tile), or
with ``noc.multicast`` one packet per (row, source tile) for all its destinations,
carrying the union of their columns and channels. The engine, the analytic estimate and the bound
all take their packets from :func:`row_packets`, so all book the same traffic.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from simulator.model.edges import is_global, map_dims, release_rule, row_bytes
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
    if pu.kind == "input" or pv.kind == "output":
        return ep  # the network input is in every tile's eDRAM; outputs leave the chip
    # sources: the tile that computed each producer position
    positions = h_u * w_u
    idx = np.arange(positions)
    if pu.kind in WEIGHT_KINDS:
        rep_tiles = np.array([rp.merge_tile for rp in pu.replica_plans])
        pos_tile = rep_tiles[idx % pu.replicas]
    else:
        pos_tile = np.array(pu.tiles)[(idx // w_u) % len(pu.tiles)]
    src = sorted(set(pos_tile.tolist()))
    col = {t: j for j, t in enumerate(src)}
    counts = np.zeros((h_u, len(src)), dtype=np.int64)
    np.add.at(counts, (idx // w_u, np.array([col[t] for t in pos_tile.tolist()])), 1)
    # destinations and what each needs: need[k, j, x] = tile j needs column x of row k
    if pv.kind in WEIGHT_KINDS:
        dst = sorted({lane.tile for lane in pv.lanes})
        dcol = {t: j for j, t in enumerate(dst)}
        masks = np.zeros((len(dst), c_u), dtype=bool)
        for lane in pv.lanes:
            c0, c1 = lane.in_channels
            masks[dcol[lane.tile], c0:min(c1, c_u)] = True
        need = _window_need(pv, a, ep, h_u, w_u, dcol)
    else:
        dst = list(dict.fromkeys(pv.tiles))
        masks = np.ones((len(dst), c_u), dtype=bool)
        need = np.zeros((h_u, len(dst), w_u), dtype=bool)
        thr = pv.thresholds[u]
        for r in range(pv.out_h):
            hi = int(-(-int(thr[r]) // w_u))
            need[_first_row(a, pv.kind, r, ep, h_u):hi, dst.index(pv.row_tile(r)), :] = True
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


def _window_need(pv: NodePlan, a: dict, ep: EdgePlan, h_u: int, w_u: int,
                 dcol: dict[int, int]) -> np.ndarray:
    """need[k, j, x]: a lane of the weight consumer on tile j reads input (k, x).

    Every output position is computed by one replica (position p by replica p mod R),
    whose lanes read its window (kernel, stride, padding, dilation) from their tiles.
    """
    need = np.zeros((h_u, len(dcol), w_u), dtype=bool)
    if pv.kind != "conv" or (h_u == 1 and w_u == 1):
        need[:] = True  # a linear layer reads its whole input vector
        return need
    kh, kw = a.get("kernel") or (1, 1)
    sh, sw = a.get("stride") or (1, 1)
    ph, pw = a.get("padding") or (0, 0)
    dh, dw = a.get("dilation") or (1, 1)
    rep_tiles = np.zeros((pv.replicas, len(dcol)), dtype=bool)
    for lane in pv.lanes:
        rep_tiles[lane.replica, dcol[lane.tile]] = True
    p = np.arange(pv.positions)
    oy, ox = p // pv.out_w, p % pv.out_w
    rep = p % pv.replicas
    for j in range(len(dcol)):
        sel = rep_tiles[rep, j]
        y0, x0 = oy[sel] * sh - ph, ox[sel] * sw - pw
        for i in range(kh):
            iy = y0 + i * dh
            for jj in range(kw):
                ix = x0 + jj * dw
                ok = (iy >= 0) & (iy < h_u) & (ix >= 0) & (ix < w_u)
                need[iy[ok], j, ix[ok]] = True
    return need


def _first_row(a: dict, kind: str, r: int, ep: EdgePlan, h_u: int) -> int:
    """First producer row that output row *r* of a digital consumer reads."""
    if kind in ("maxpool", "avgpool") and not is_global(a):
        return max(0, min(h_u - 1, r * ep.stride - ep.pad))
    if kind in ("add", "concat"):
        return min(r, h_u - 1)
    return 0


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
