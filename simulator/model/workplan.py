"""Work plan: what each hardware lane, replica and digital node does, with its costs.

Built once per pipeline from the mapped graph, the hardware spec and the precision
result, and shared by the event engine (``group`` and ``plane``), the ``analytic``
estimate and the throughput bound, so all of them book the same activity kinds into the
ledger and send the same packets.

A *lane* is one row block of one replica of a weight layer: the crossbars of all its
column blocks, which receive the same activation group (broadcast) and work in lockstep.
One lane MVM with b bit planes costs, per plane, one read of each of its crossbars, one
DAC drive and one input-register bit per row per crossbar, and one S+H sample, ADC
conversion, IMA shift-and-add and IMA output-register write per active column; and per
group, the eDRAM read and bus transfer of the group (rows × B/8 bytes) plus, for dynamic
policies, one inspection by the on-line unit the policy needs (ReDy's statistics unit, or the
lossless policies' detect unit).

A *replica* merges the partial sums of its lanes per output position: each tile holding
some of its row blocks adds its own partial sums, the tiles other than the replica's
*merge tile* (the tile of its first crossbar) send theirs over the NoC, and the merge
tile adds them, applies the activation, writes the output register and the eDRAM.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from mapping.buffers import edram_alloc, map_dims
from simulator.model.dataflow import rows_needed
from simulator.model.ledger import ActivityKind, EnergyLedger, event_vector
from simulator.model.noc_routes import PORT
from simulator.model.plan import (
    NODE_KINDS,
    WEIGHT_KINDS,
    ImaPart,
    KindIds,
    Lane,
    NodePlan,
    ReplicaPlan,
)
from simulator.model.timing import psum_bits
from simulator.model.transfers import plan_edge

__all__ = ["build_plan", "conversion_ns", "kind_ids_in", "plan_structure", "register_kinds"]

#: tile digital unit that executes each non-weight node kind
DIGITAL_UNIT = {"maxpool": "maxpool", "avgpool": "tile_shift_add", "add": "tile_shift_add"}


def build_plan(graph: nx.DiGraph, mapping, hw, ledger: EnergyLedger, unit: str | None,
               ) -> tuple[dict[str, NodePlan], KindIds]:
    """Build the node plans of one pipeline and register their activity kinds in *ledger*
    (*unit*: the on-line unit of its policy, see :func:`register_kinds`)."""
    plans = plan_structure(graph, mapping, hw)
    return plans, register_kinds(plans, ledger, unit)


def plan_structure(graph: nx.DiGraph, mapping, hw) -> dict[str, NodePlan]:
    """The node plans without ledger ids: the same for every pipeline of a run.

    :func:`register_kinds` registers their activity kinds in one pipeline's ledger and
    returns that pipeline's ids (:class:`~simulator.model.plan.KindIds`); the plans
    themselves never hold an id, so one structure serves several pipelines.
    """
    B = int(hw.activations.bits)
    plans: dict[str, NodePlan] = {}
    order = sorted(graph.nodes, key=lambda n: graph.nodes[n]["order"])
    for name in order:
        a = graph.nodes[name]
        kind = a["kind"]
        out_c, oh, ow = map_dims(tuple(a["out_shape"]))
        producers = sorted(graph.predecessors(name), key=lambda n: graph.nodes[n]["order"])
        plan = NodePlan(name=name, kind=kind, order=a["order"], out_h=oh, out_w=ow,
                        out_c=out_c, producers=producers,
                        tiles=[int(t) for t in (a.get("tiles") or [0])],
                        act=bool(a.get("act")))
        for prod in producers:
            _, ph, pw = map_dims(tuple(graph.nodes[prod]["out_shape"]))
            plan.thresholds[prod] = _thresholds(a, kind, oh, ph, pw)
        pt = getattr(mapping, "position_tiles", {}).get(name)
        if kind == "input":  # the network input comes in at the input port
            pt = np.full(oh * ow, PORT)
        if pt is None:  # rows round robin over the node's tiles
            pt = np.repeat(np.array(plan.tiles)[np.arange(oh) % len(plan.tiles)], ow)
        plan.pos_tile = np.asarray(pt, dtype=np.int64)
        if kind in WEIGHT_KINDS:
            _weight_plan(plan, a, mapping.layers[name], hw)
        else:
            ev, values = _digital_row_events(a, kind, graph, name, B)
            plan.unit = DIGITAL_UNIT.get(kind)
            plan.row_values = float(values)
            plan.row_act = float(ev.get("activation", 0.0))
            plan.row_in_bytes = float(ev.pop("_in_bytes", 0.0))
            plan.row_out_bytes = float(ev.pop("_out_bytes", 0.0))
            plan.kinds["output"] = ActivityKind(
                f"{name}/row", name, event_vector({}), event_vector(ev))
        plan.kinds["noc"] = ActivityKind(
            f"{name}/noc", name, event_vector({"router_flit_hop": 1}), event_vector({}))
        plan.kinds["recv"] = ActivityKind(
            f"{name}/noc-recv", name, event_vector({"edram_byte": 1}), event_vector({}))
        plan.kinds["send"] = ActivityKind(
            f"{name}/noc-send", name, event_vector({"edram_byte": 1}), event_vector({}))
        plan.kinds["port"] = ActivityKind(
            f"{name}/input", name, event_vector({"input_byte": 1}), event_vector({}))
        plan.kinds["offchip"] = ActivityKind(
            f"{name}/offchip", name, event_vector({"offchip_byte": 1}), event_vector({}))
        plans[name] = plan
    alloc = edram_alloc(graph, hw)
    for u in order:
        for v in sorted(graph.successors(u), key=lambda n: graph.nodes[n]["order"]):
            ep = plan_edge(graph, hw, plans, u, v, alloc)
            plans[u].out_edges.append(ep)
            plans[v].in_edges[u] = ep
    return plans


def register_kinds(plans: dict[str, NodePlan], ledger: EnergyLedger, unit: str | None,
                   ) -> KindIds:
    """Register every plan's activity kinds in *ledger*; returns the pipeline's ids.

    *unit*: the on-line unit the pipeline's policy needs (``precision_select``,
    ``precision_detect``; None or False for ``static``): every group is inspected by it once
    (its event booked per group).
    """
    select = event_vector({unit: 1}) if unit else None
    node: dict[str, dict[str, int]] = {role: {} for role in NODE_KINDS}
    mvm: dict[tuple[str, int, int], int] = {}
    for plan in sorted(plans.values(), key=lambda p: p.order):
        for role, kind in plan.kinds.items():
            node[role][plan.name] = ledger.register(kind)
        for lane in plan.lanes:
            kind = lane.kind
            if select is not None:
                kind = ActivityKind(kind.name, kind.layer, kind.per_unit,
                                    kind.per_occurrence + select, kind.busy,
                                    kind.busy_per_unit)
            mvm[lane.key] = ledger.register(kind)
    return KindIds(node, mvm)


def kind_ids_in(plans: dict[str, NodePlan], ledger: EnergyLedger) -> KindIds:
    """The ids under which :func:`register_kinds` registered *plans* in *ledger* (found by
    the kinds' names, which are unique within a pipeline)."""
    index = {k.name: i for i, k in enumerate(ledger.kinds)}
    node = {role: {p.name: index[p.kinds[role].name] for p in plans.values()
                   if role in p.kinds} for role in NODE_KINDS}
    mvm = {lane.key: index[lane.kind.name] for p in plans.values() for lane in p.lanes}
    return KindIds(node, mvm)


def _weight_plan(plan: NodePlan, a: dict, lm, hw) -> None:
    """Lanes, replicas and per-position output costs of a conv / linear layer."""
    name = plan.name
    B = int(hw.activations.bits)
    adcs_per_ima = int(hw.ima.adcs)
    rate = float(hw.ima.adc_rate_gsps)
    read_ns = float(hw.crossbar.read_ns)
    k2 = 1
    if plan.kind == "conv":
        kh, kw = a.get("kernel") or (1, 1)
        k2 = int(kh) * int(kw)
    plan.replicas = lm.replicas
    plan.row_blocks = len(lm.row_blocks)
    plan.merges = _merges_per_position(lm)
    pbits = psum_bits(hw)
    # every row block's partial sums (its output channels) cross its tile's bus from the
    # IMA output registers to the tile's adders
    psum_bytes = sum(rb.out_channels[1] - rb.out_channels[0] for rb in lm.row_blocks) \
        * pbits / 8.0
    out_events = {
        "tile_shift_add": plan.merges,
        "activation": plan.out_c if plan.act else 0,
        "tile_output_register": plan.out_c,
        "edram_byte": plan.out_c * B / 8.0,
        "bus_byte": psum_bytes,
    }
    plan.kinds["output"] = ActivityKind(
        f"{name}/output", name, event_vector({}), event_vector(out_events))
    P = plan.positions
    plan.pos_replica = np.zeros(P, dtype=np.int64)
    plan.pos_index = np.zeros(P, dtype=np.int64)
    for r in range(lm.replicas):
        slots = lm.placement[r]
        idx = 0
        positions = np.asarray(lm.replica_positions[r], dtype=np.int64)
        plan.pos_replica[positions] = r
        plan.pos_index[positions] = np.arange(len(positions))
        lanes: list[Lane] = []
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
                                 min(len(cs), adcs_per_ima), tuple(cs))
                         for ima, cs in sorted(parts.items())]
            conv_ns = max(conversion_ns(p.xbar_cols, adcs_per_ima, rate) for p in ima_parts)
            n_rows = rb.rows[1] - rb.rows[0]
            cols = sum(my_cols)
            lane = Lane(name, r, rb_i, n_rows, n_x, cols, ima_parts, positions, conv_ns,
                        tile=int(my_slots[0].tile),
                        outputs=rb.out_channels[1] - rb.out_channels[0],
                        in_channels=(rb.rows[0] // k2, -(-rb.rows[1] // k2)))
            read_ev = {"crossbar_read": n_x, "dac_drive": n_rows * n_x,
                       "input_register_bit": n_rows * n_x}
            conv_ev = {"sh_sample": cols, "adc_conversion": cols,
                       "ima_shift_add": cols, "ima_output_register": cols}
            group_ev = {"edram_byte": n_rows * B / 8.0, "bus_byte": n_rows * B / 8.0}
            # busy instance-time per plane: every crossbar reads for read_ns, an ADC
            # converts each active column in 1 / rate
            lane.kind = ActivityKind(
                f"{name}/r{r}/rb{rb_i}", name, event_vector({**read_ev, **conv_ev}),
                event_vector(group_ev),
                busy_per_unit={"crossbar": n_x * read_ns, "adc": cols / rate})
            lanes.append(lane)
            plan.lanes.append(lane)
        plan.replica_plans.append(_replica_plan(r, lanes, lm, int(slots[0].tile), pbits))


def conversion_ns(xbar_cols: tuple[int, ...], adcs: int, rate: float) -> float:
    """Time to convert one plane of crossbars with *xbar_cols* active columns on an
    idle pool of *adcs* ADCs: each crossbar's columns are one job for one ADC
    (cols / rate), jobs longest first on the free ADCs (docs/model.md, "ADC pools")."""
    free = [0.0] * min(adcs, len(xbar_cols))
    for cols in sorted(xbar_cols, reverse=True):
        i = free.index(min(free))
        free[i] += cols / rate
    return max(free)


def _replica_plan(r: int, lanes: list[Lane], lm, merge_tile: int, pbits: int) -> ReplicaPlan:
    """Where replica *r* adds its partial sums: first on each tile, then on the merge tile."""
    tiles = [merge_tile] + sorted({la.tile for la in lanes} - {merge_tile})
    index = {t: i for i, t in enumerate(tiles)}
    lane_tile = [index[la.tile] for la in lanes]
    n_ch = max(rb.out_channels[1] for rb in lm.row_blocks)
    cover = np.zeros((len(tiles), n_ch), dtype=np.int64)  # row blocks per tile per channel
    for la, ti in zip(lanes, lane_tile, strict=True):
        c0, c1 = lm.row_blocks[la.row_block].out_channels
        cover[ti, c0:c1] += 1
    present = cover > 0
    local = (cover - present).sum(axis=1)  # adds of the row blocks on each tile
    cross = int((present.sum(axis=0) - 1).clip(min=0).sum())  # adds of the tiles' sums
    merges = [int(x) for x in local]
    merges[0] += cross
    psum = [0] + [int(present[i].sum()) * pbits for i in range(1, len(tiles))]
    bus = [0.0] * len(tiles)
    for la, ti in zip(lanes, lane_tile, strict=True):
        bus[ti] += la.outputs * pbits / 8.0
    return ReplicaPlan(r, lanes, merge_tile, tiles, lane_tile, merges, psum, bus)


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
    """Events and digital-unit values of one output row of a non-weight node.

    The eDRAM bytes read (``_in_bytes``) and written (``_out_bytes``) are returned apart
    for the timing; their sum is the row's ``edram_byte`` count.
    """
    oc, oh, ow = map_dims(tuple(a["out_shape"]))
    out_vals = oc * ow
    byte = B / 8.0
    if kind == "maxpool":
        kh, kw = a.get("kernel") or (1, 1)
        cmp = out_vals * kh * kw
        return {"maxpool": cmp, "edram_byte": (cmp + out_vals) * byte,
                "_in_bytes": cmp * byte, "_out_bytes": out_vals * byte}, cmp
    if kind == "avgpool":
        ic, ih, iw = map_dims(tuple(a["in_shape"]))
        in_vals = ic * ih * iw / max(oh, 1)
        return {"tile_shift_add": in_vals, "edram_byte": (in_vals + out_vals) * byte,
                "_in_bytes": in_vals * byte, "_out_bytes": out_vals * byte}, int(in_vals)
    if kind == "add":
        n_in = graph.in_degree(name)
        adds = out_vals * max(n_in - 1, 1)
        ev = {"tile_shift_add": adds, "edram_byte": (out_vals * n_in + out_vals) * byte,
              "_in_bytes": out_vals * n_in * byte, "_out_bytes": out_vals * byte}
        if a.get("act"):
            ev["activation"] = out_vals
        return ev, adds
    return {}, 0  # input, output, concat, flatten: address bookkeeping only
