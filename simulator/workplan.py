"""Work plan: what each hardware lane and each digital node does, with its per-event costs.

Built once per pipeline from the mapped graph, the hardware spec and the precision
result, and shared by the event-driven engine and the analytic mode so both book the
same activity kinds into the ledger.

A *lane* is one row block of one replica of a weight layer: the crossbars of all its
column blocks, which receive the same activation group (broadcast) and work in lockstep.
One lane MVM with b bit planes costs, per plane, one read of each of its crossbars, one
DAC drive and one input-register bit per row per crossbar, and one S+H sample, ADC
conversion, IMA shift-and-add and IMA output-register write per active column; and per
group, the eDRAM read and bus transfer of the group (rows × B/8 bytes) plus, for dynamic
policies, one precision selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from simulator.dataflow import rows_needed
from simulator.ledger import ActivityKind, EnergyLedger, event_vector

WEIGHT_KINDS = ("conv", "linear")


@dataclass
class ImaPart:
    """The crossbars of one lane that sit in one IMA."""

    ima: int
    tile: int
    crossbars: int
    cols: int
    adcs: int  # ADCs of the pool this part holds while converting


@dataclass
class Lane:
    """One row block of one replica of a weight layer."""

    layer: str
    replica: int
    row_block: int
    rows: int
    crossbars: int
    cols: int
    parts: list[ImaPart]
    positions: np.ndarray  # output positions handled by this replica (row-major indices)
    conv_ns: float  # time to convert one plane of all columns with the held ADCs
    kind_mvm: int = -1
    kind_read_first: int = -1
    kind_read: int = -1
    kind_convert: int = -1


@dataclass
class EdgePlan:
    """A producer → consumer tensor edge: NoC route and the consumer's input buffer."""

    producer: str
    consumer: str
    row_bytes: float  # bytes of one producer output row
    cap_rows: int | None  # rows the consumer's buffer holds (None: unbounded)
    release: str  # how the consumer frees rows: "window" | "row" | "image"
    kernel: int = 1
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    # transfers: producer rows leave from the tiles that computed them
    src_tiles: list[int] = field(default_factory=list)  # tiles that send over the NoC
    src_routes: list[list[tuple[int, int]]] = field(default_factory=list)  # global router ids
    row_counts: np.ndarray | None = None  # (producer rows, src tiles): positions per row
    flit_hops_per_image: float = 0.0
    offchip_bytes_per_image: float = 0.0


@dataclass
class NodePlan:
    """A graph node as the engine executes it."""

    name: str
    kind: str
    order: int
    out_h: int
    out_w: int
    producers: list[str]
    # thresholds[producer][out_row] = leading producer positions needed for that out row
    thresholds: dict[str, np.ndarray] = field(default_factory=dict)
    lanes: list[Lane] = field(default_factory=list)
    row_blocks: int = 0
    replicas: int = 1
    kind_output: int = -1  # per output position (weight) or per output row (digital) costs
    row_ns: float = 0.0  # digital nodes: time per output row
    tile: int = 0  # first tile of the node (digital nodes run on their producer's tiles)
    out_edges: list[EdgePlan] = field(default_factory=list)

    @property
    def positions(self) -> int:
        """Output positions per image."""
        return self.out_h * self.out_w


def _hw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of a map shape or (F, 1, 1) of a vector."""
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    return int(shape[0]), 1, 1


def plane_duration(b: int | np.ndarray, read_ns: float, conv_ns: float) -> np.ndarray | float:
    """Two-stage pipeline (read → S+H → convert) of b planes: r + c + (b-1)·max(r, c)."""
    b = np.asarray(b, dtype=float)
    d = read_ns + conv_ns + (b - 1) * max(read_ns, conv_ns)
    return np.where(b > 0, d, 0.0)


#: tile digital unit that executes each non-weight node kind
DIGITAL_UNIT = {"maxpool": "maxpool", "avgpool": "tile_shift_add", "add": "tile_shift_add"}


def _digital_rate(hw, graph: nx.DiGraph, name: str, kind: str) -> float:
    """Values per ns a digital node processes: one per cycle per unit, on every tile of it."""
    unit = DIGITAL_UNIT.get(kind)
    if unit is None:
        return 0.0
    tiles = max(len(graph.nodes[name].get("tiles") or []), 1)
    return getattr(hw.components.tile, unit).count * tiles * float(hw.clock_ghz)


def build_plan(graph: nx.DiGraph, mapping, hw, ledger: EnergyLedger, dynamic: bool,
               ) -> dict[str, NodePlan]:
    """Build the node plans of one pipeline and register their activity kinds in *ledger*."""
    B = int(hw.activations.bits)
    group_bytes_per_row = B / 8.0
    adcs_per_ima = int(hw.ima.adcs)
    rate = float(hw.ima.adc_rate_gsps)
    read_ns = float(hw.crossbar.read_ns)
    plans: dict[str, NodePlan] = {}
    order = sorted(graph.nodes, key=lambda n: graph.nodes[n]["order"])
    alloc = _edram_alloc(graph, hw)
    edges = {u: [_edge_plan(graph, hw, mapping, u, v, alloc) for v in graph.successors(u)]
             for u in order}
    for name in order:
        a = graph.nodes[name]
        kind = a["kind"]
        _, oh, ow = _hw(tuple(a["out_shape"]))
        producers = sorted(graph.predecessors(name), key=lambda n: graph.nodes[n]["order"])
        plan = NodePlan(name=name, kind=kind, order=a["order"], out_h=oh, out_w=ow,
                        producers=producers, tile=int((a.get("tiles") or [0])[0]))
        for prod in producers:
            _, ph, pw = _hw(tuple(graph.nodes[prod]["out_shape"]))
            plan.thresholds[prod] = _thresholds(a, kind, oh, ph, pw)
        # output-side costs (eDRAM write, NoC transfers to consumers), per image
        out_c, _, _ = _hw(tuple(a["out_shape"]))
        plan.out_edges = edges[name]
        flit_hops = sum(e.flit_hops_per_image for e in plan.out_edges)
        offchip = sum(e.offchip_bytes_per_image for e in plan.out_edges)
        if kind in WEIGHT_KINDS:
            lm = mapping.layers[name]
            plan.replicas = lm.replicas
            plan.row_blocks = len(lm.row_blocks)
            merges = _merges_per_position(lm)
            out_events = {
                "tile_shift_add": merges,
                "activation": out_c if a.get("act") else 0,
                "tile_output_register": out_c,
                "edram_byte": out_c * B / 8.0,
                "router_flit_hop": flit_hops / (oh * ow),
                "offchip_byte": offchip / (oh * ow),
            }
            plan.kind_output = ledger.register(ActivityKind(
                f"{name}/output", name, event_vector({}), event_vector(out_events)))
            P = oh * ow
            for r in range(lm.replicas):
                slots = lm.placement[r]
                idx = 0
                positions = np.arange(r, P, lm.replicas)
                for rb_i, rb in enumerate(lm.row_blocks):
                    n_x = len(rb.crossbar_cols)
                    my_slots = slots[idx: idx + n_x]
                    my_cols = rb.crossbar_cols
                    idx += n_x
                    parts: dict[int, list[int]] = {}
                    tile_of: dict[int, int] = {}
                    for s, c in zip(my_slots, my_cols, strict=True):
                        parts.setdefault(s.ima, []).append(c)
                        tile_of[s.ima] = s.tile
                    ima_parts = [ImaPart(ima, tile_of[ima], len(cs), sum(cs),
                                         min(len(cs), adcs_per_ima))
                                 for ima, cs in sorted(parts.items())]
                    conv_ns = max(p.cols / (p.adcs * rate) for p in ima_parts)
                    n_rows = rb.rows[1] - rb.rows[0]
                    cols = sum(my_cols)
                    lane = Lane(name, r, rb_i, n_rows, n_x, cols, ima_parts, positions, conv_ns)
                    read_ev = {"crossbar_read": n_x, "dac_drive": n_rows * n_x,
                               "input_register_bit": n_rows * n_x}
                    conv_ev = {"sh_sample": cols, "adc_conversion": cols,
                               "ima_shift_add": cols, "ima_output_register": cols}
                    group_ev = {"edram_byte": n_rows * group_bytes_per_row,
                                "bus_byte": n_rows * group_bytes_per_row,
                                "precision_select": 1 if dynamic else 0}
                    adcs_held = sum(p.adcs for p in ima_parts)
                    tag = f"{name}/r{r}/rb{rb_i}"
                    # busy instance-time per plane: every crossbar reads for read_ns, the
                    # held ADCs convert for conv_ns
                    xbar_busy = {"crossbar": n_x * read_ns}
                    adc_busy = {"adc": adcs_held * conv_ns}
                    lane.kind_mvm = ledger.register(ActivityKind(
                        tag, name, event_vector({**read_ev, **conv_ev}), event_vector(group_ev),
                        busy_per_unit={**xbar_busy, **adc_busy}))
                    lane.kind_read_first = ledger.register(ActivityKind(
                        tag + "/read0", name, event_vector(read_ev), event_vector(group_ev),
                        busy_per_unit=xbar_busy))
                    lane.kind_read = ledger.register(ActivityKind(
                        tag + "/read", name, event_vector(read_ev), event_vector({}),
                        busy_per_unit=xbar_busy))
                    lane.kind_convert = ledger.register(ActivityKind(
                        tag + "/convert", name, event_vector(conv_ev), event_vector({}),
                        busy_per_unit=adc_busy))
                    plan.lanes.append(lane)
        else:
            ev, values = _digital_row_events(a, kind, graph, name, B)
            ev["router_flit_hop"] = flit_hops / oh
            ev["offchip_byte"] = offchip / oh
            plan.kind_output = ledger.register(ActivityKind(
                f"{name}/row", name, event_vector({}), event_vector(ev),
                {"digital": 1.0} if values else {}))
            d_rate = _digital_rate(hw, graph, name, kind)
            plan.row_ns = values / d_rate if values and d_rate else 0.0
        plans[name] = plan
    return plans


#: node kinds that hold an input buffer in their tiles' eDRAM
BUFFERED = ("conv", "linear", "maxpool", "avgpool", "add", "concat", "flatten")
JOINS = ("add", "concat")


def _release_rule(graph: nx.DiGraph, u: str, v: str) -> str:
    """How consumer v frees rows of u: sliding window, row by row, or whole image."""
    a = graph.nodes[v]
    kind = a["kind"]
    if (kind in ("conv", "maxpool", "avgpool") and len(tuple(graph.nodes[u]["out_shape"])) == 3
            and not _is_global(a)):
        return "window"
    if kind in ("add", "concat"):
        return "row"
    return "image"


def _min_rows(graph: nx.DiGraph, u: str, v: str) -> int:
    """Rows of u that v must hold at once to make progress."""
    _, h_u, _ = _hw(tuple(graph.nodes[u]["out_shape"]))
    rule = _release_rule(graph, u, v)
    if rule == "window":
        a = graph.nodes[v]
        kh, dh = (a.get("kernel") or (1, 1))[0], (a.get("dilation") or (1, 1))[0]
        return min((kh - 1) * dh + 1, h_u)  # rows one dilated window spans
    return 1 if rule == "row" else h_u


def _row_bytes(graph: nx.DiGraph, u: str, bits: int) -> float:
    c, _, w = _hw(tuple(graph.nodes[u]["out_shape"]))
    return c * w * bits / 8.0


def _buffered_edges(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """Edges whose consumer buffer is bounded.

    Joins (residual add, concat) are left unbounded: how far one input runs ahead of the
    other depends on the whole branch between them, and a bounded join buffer can
    deadlock the branch that feeds it. Every other consumer's buffer is bounded.
    """
    return [(u, v) for u, v in graph.edges
            if graph.nodes[v]["kind"] in BUFFERED and graph.nodes[v]["kind"] not in JOINS
            and graph.nodes[u]["kind"] != "input"]


def _edram_alloc(graph: nx.DiGraph, hw) -> dict[tuple[str, str], float]:
    """eDRAM bytes given to each buffered edge's rows.

    Each tile's eDRAM is divided among the input buffers of the nodes running on it in
    proportion to their minimum need (rows the consumer must hold at once × row bytes).
    A node spread over several tiles splits each buffered row among them (each tile keeps
    the slice its replicas read), so its allocation is the sum of its shares.
    """
    bits = int(hw.activations.bits)
    need = {(u, v): _min_rows(graph, u, v) * _row_bytes(graph, u, bits)
            for u, v in _buffered_edges(graph)}
    per_tile: dict[int, float] = {}
    for (_u, v), nb in need.items():
        for t in graph.nodes[v].get("tiles") or [0]:
            per_tile[t] = per_tile.get(t, 0.0) + nb
    alloc = {}
    for (u, v), nb in need.items():
        alloc[(u, v)] = sum(hw.tile.edram_bytes * nb / per_tile[t]
                            for t in (graph.nodes[v].get("tiles") or [0]))
    return alloc


def _edge_plan(graph: nx.DiGraph, hw, mapping, u: str, v: str,
               alloc: dict[tuple[str, str], float]) -> EdgePlan:
    """Route, transfers and buffer of edge u → v (see docs/model.md, 'Buffers and NoC').

    Each producer output row travels from the tiles that computed its positions (the
    tile of each position's replica; a digital node's own tile) to the consumer's first
    tile, one packet per (row, source tile), along the XY route between them.
    """
    from mapping.place import route_between

    bits = int(hw.activations.bits)
    flit_bits = int(hw.noc.flit_bits)
    row_bytes = _row_bytes(graph, u, bits)
    ua, a = graph.nodes[u], graph.nodes[v]
    c_u, h_u, w_u = _hw(tuple(ua["out_shape"]))
    cap = int(alloc[(u, v)] // row_bytes) if (u, v) in alloc and row_bytes else None
    kh = (a.get("kernel") or (1, 1))[0]
    sh = (a.get("stride") or (1, 1))[0]
    ph = (a.get("padding") or (0, 0))[0]
    dh = (a.get("dilation") or (1, 1))[0]
    ep = EdgePlan(u, v, row_bytes, cap, _release_rule(graph, u, v), kh, sh, ph, dh)
    if ua["kind"] == "input" or a["kind"] == "output":
        return ep
    if v not in mapping.layers and list(a.get("tiles") or []) == list(ua.get("tiles") or []):
        return ep  # a digital node on its producer's tiles works on the local eDRAM
    dst = int((a.get("tiles") or [0])[0])
    positions = h_u * w_u
    if u in mapping.layers:
        lm = mapping.layers[u]
        rep_tiles = np.array([rep[0].tile for rep in lm.placement])
        pos_tile = rep_tiles[np.arange(positions) % lm.replicas]
    else:  # a digital node's rows are spread over its tiles, row r on tile r mod n
        u_tiles = np.array(list(ua.get("tiles") or [0]))
        pos_tile = u_tiles[(np.arange(positions) // w_u) % len(u_tiles)]
    tiles = sorted(set(pos_tile.tolist()) - {dst})
    if not tiles:
        return ep
    col = {t: j for j, t in enumerate(tiles)}
    counts = np.zeros((h_u, len(tiles)), dtype=np.int64)
    rows = np.arange(positions) // w_u
    sel = pos_tile != dst
    np.add.at(counts, (rows[sel], np.array([col[t] for t in pos_tile[sel]], dtype=np.int64)), 1)
    ep.src_tiles = tiles
    pos_bytes = c_u * bits / 8.0
    for j, t in enumerate(tiles):
        hops, links, off = route_between(t, dst, hw)
        ep.src_routes.append(list(links))
        nbytes = counts[:, j] * pos_bytes
        flits = np.ceil(nbytes * 8 / flit_bits)
        ep.flit_hops_per_image += float((flits * (hops + 1)).sum())
        if off:
            ep.offchip_bytes_per_image += float(nbytes.sum())
    ep.row_counts = counts
    return ep


def _is_global(a: dict) -> bool:
    """A pool or conv whose output is a single position (needs the whole input)."""
    return len(tuple(a["out_shape"])) == 3 and a["out_shape"][1] == 1 and a["out_shape"][2] == 1


def _merges_per_position(lm) -> int:
    """Partial sums merged in the tile per output position: Σ_channels (row blocks − 1)."""
    per_ch: dict[int, int] = {}
    for rb in lm.row_blocks:
        for c in range(rb.out_channels[0], rb.out_channels[1]):
            per_ch[c] = per_ch.get(c, 0) + 1
    return sum(v - 1 for v in per_ch.values())


def _thresholds(a: dict, kind: str, oh: int, ph: int, pw: int) -> np.ndarray:
    """Leading producer positions needed before each output row can be computed."""
    if kind in ("linear", "flatten", "output") or (oh == 1 and ph > 1 and kind != "conv"):
        return np.full(oh, ph * pw, dtype=np.int64)
    if kind in ("conv", "maxpool", "avgpool"):
        kh = (a.get("kernel") or (1, 1))[0]
        sh = (a.get("stride") or (1, 1))[0]
        pd = (a.get("padding") or (0, 0))[0]
        dl = (a.get("dilation") or (1, 1))[0]
        return np.array([rows_needed(r, kh, sh, pd, dl, ph) * pw for r in range(oh)],
                        dtype=np.int64)
    # add / concat: same spatial grid
    return np.array([min(ph, r + 1) * pw for r in range(oh)], dtype=np.int64)


def _digital_row_events(a: dict, kind: str, graph: nx.DiGraph, name: str, B: int,
                        ) -> tuple[dict[str, float], int]:
    """Events and digital-unit values of one output row of a non-weight node."""
    oc, oh, ow = _hw(tuple(a["out_shape"]))
    out_vals = oc * ow
    byte = B / 8.0
    if kind == "maxpool":
        kh, kw = a.get("kernel") or (1, 1)
        cmp = out_vals * kh * kw
        return {"maxpool": cmp, "edram_byte": (cmp + out_vals) * byte}, cmp
    if kind == "avgpool":
        ic, ih, iw = _hw(tuple(a["in_shape"]))
        in_vals = ic * ih * iw / max(oh, 1)
        return {"tile_shift_add": in_vals, "edram_byte": (in_vals + out_vals) * byte}, int(in_vals)
    if kind == "add":
        n_in = graph.in_degree(name)
        adds = out_vals * max(n_in - 1, 1)
        ev = {"tile_shift_add": adds, "edram_byte": (out_vals * n_in + out_vals) * byte}
        if a.get("act"):
            ev["activation"] = out_vals
        return ev, adds
    return {}, 0  # input, output, concat, flatten: address bookkeeping only
