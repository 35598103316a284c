"""Work per image of every timed resource, and the throughput bound it implies.

Every resource (a lane's crossbars, an IMA's ADC pool, a tile's eDRAM
banks, bus and digital units, a NoC port or link) serves its share of every image. Its
*demand* is the time it must be busy per image, from the same rules and the same packets
as the engine (``simulator.model.timing``, ``simulator.model.transfers``). No pipeline can finish
images faster than its busiest resource serves them, so 1 / max demand is an upper bound
on the throughput; the resource with the largest demand is the one that bounds it. The
simulated (measured) throughput is at most this bound: dependencies, buffer stalls and
contention only make it lower.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from simulator.model.noc_routes import PORT, STAGE_LABELS, NocTopology, stage_where
from simulator.model.plan import WEIGHT_KINDS, NodePlan
from simulator.model.timing import UNIT_LABELS, TimingRules
from simulator.model.transfers import row_packets

#: resource class of every demand label, for the reports ("which unit bounds throughput")
LANE = "crossbar lane"


@dataclass
class NocLoad:
    """NoC work of one image: busy time per port / link, traffic and energy units."""

    stage_ns: dict[tuple, float]
    traffic: dict[str, dict[str, float]]
    #: per node, the units of its activity kinds per image (``plan.NODE_KINDS`` roles):
    #: "noc" flit-hops, "recv" bytes written at destinations, "offchip" bytes, "send" bytes
    #: read at the source, "port" bytes of the network input over the input link
    layer_units: dict[str, dict[str, float]]
    #: per port / link, its busy time per image by the node whose packets it carries
    stage_layers: dict[tuple, dict[str, float]] = field(default_factory=dict)


def packet_stages(topo: NocTopology, src: int, dsts: list[int]) -> tuple[list, set, bool]:
    """Ports and links a packet from *src* to *dsts* holds (each once), its routers and
    whether it leaves the chip."""
    keys: dict[tuple, None] = {}
    routers: set[int] = set()
    off = False
    for d in dsts:
        p = topo.path(src, d)
        keys.update(dict.fromkeys(p.stages))
        routers |= p.routers
        off = off or p.offchip
    return list(keys), routers, off


def activation_packets(plan: NodePlan, rules: TimingRules):
    """The activation packets node *plan* sends per image: (edge, source tile, destination
    indices into ``edge.dst_tiles``, payload bits), row by row."""
    for ep in plan.out_edges:
        if not ep.remote:
            continue
        for k in range(plan.out_h):
            for src, dsts, bits in row_packets(ep, k, rules.multicast, rules.act_bits):
                yield ep, src, dsts, bits


def noc_load(plans: dict[str, NodePlan], topo: NocTopology, rules: TimingRules) -> NocLoad:
    """The packets of one image (activations fan-out and partial sums), in closed form."""
    stage_ns: dict[tuple, float] = defaultdict(float)
    traffic = {k: {"packets": 0, "bytes": 0.0, "flits": 0, "flit_hops": 0}
               for k in ("activations", "psum")}
    units: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    stage_layers: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add(plan: NodePlan, kind: str, src: int, dsts: list[int], bits: float, times: int,
            recv: bool) -> None:
        flits = rules.flits(bits)
        keys, routers, off = packet_stages(topo, src, dsts)
        nbytes = bits / 8.0
        for k in keys:
            ns = times * (rules.offchip_ns(nbytes) if k[0] == "offchip"
                          else rules.serial_ns(flits))
            stage_ns[k] += ns
            stage_layers[k][plan.name] += ns
        tr = traffic[kind]
        tr["packets"] += times
        tr["bytes"] += times * nbytes
        tr["flits"] += times * flits
        tr["flit_hops"] += times * flits * len(routers)
        u = units[plan.name]
        u["noc"] += times * flits * len(routers)
        if recv:  # activations: read at the source (not at the input port), written at
            # every destination
            u["recv"] += times * nbytes * len(dsts)
            if src != PORT:
                u["send"] += times * nbytes
        if off:
            u["offchip"] += times * nbytes

    for plan in plans.values():
        if plan.kind == "input":
            units[plan.name]["port"] += plan.out_h * input_row_bytes(plan, rules)
        for ep, src, dsts, bits in activation_packets(plan, rules):
            add(plan, "activations", src, [ep.dst_tiles[j] for j in dsts], bits, 1, True)
        for rp in plan.replica_plans:
            n = len(rp.lanes[0].positions)
            for i in range(1, len(rp.tiles)):
                add(plan, "psum", rp.tiles[i], [rp.merge_tile], rp.psum_bits[i], n, False)
    return NocLoad(dict(stage_ns), traffic, {k: dict(v) for k, v in units.items()},
                   {k: dict(v) for k, v in stage_layers.items()})


def input_row_bytes(plan: NodePlan, rules: TimingRules) -> float:
    """Bytes of one row of the network input (node *plan*)."""
    return plan.out_c * plan.out_w * rules.act_bytes


def demands(plans: dict[str, NodePlan], planes: dict[str, np.ndarray], hw, images: int,
            rules: TimingRules, noc: NocLoad) -> dict[tuple[str, str], float]:
    """Busy time per image (ns) of every resource, keyed (resource label, where).

    The on-line units (precision select, detect) are not among them: they take each group
    at bus rate as it crosses the bus, so their work is the bus's.
    """
    return {k: sum(v.values()) for k, v in demand_layers(plans, planes, hw, images, rules,
                                                          noc).items()}


def demand_layers(plans: dict[str, NodePlan], planes: dict[str, np.ndarray], hw,
                  images: int, rules: TimingRules, noc: NocLoad,
                  ) -> dict[tuple[str, str], dict[str, float]]:
    """:func:`demands` split by the graph node whose work it is."""
    out: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    rate = float(hw.ima.adc_rate_gsps)
    adcs = int(hw.ima.adcs)
    r = rules.read_ns
    cyc_bytes = rules.bank_bytes_per_ns * rules.banks
    bank: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for plan in plans.values():
        name = plan.name
        if plan.kind in WEIGHT_KINDS:
            arr = planes[name]
            for lane in plan.lanes:
                b = arr[:, lane.row_block, lane.positions]
                planes_img = float(b.sum()) / images
                groups_img = float(b.size) / images
                out[(LANE, f"{lane.layer} r{lane.replica} rb{lane.row_block}")][name] += \
                    planes_img * max(r, lane.conv_ns)
                for p in lane.parts:
                    out[("ADC pool", f"IMA {p.ima}")][name] += \
                        planes_img * p.cols / rate / adcs
                nbytes = groups_img * lane.rows * rules.act_bytes
                if rules.load_timing:
                    bank[lane.tile][name] += nbytes
                    out[("eDRAM-to-IMA bus", f"tile {lane.tile}")][name] += \
                        nbytes / rules.bus_bytes_per_ns
            for rp in plan.replica_plans:
                n = len(rp.lanes[0].positions)
                m = rp.merge_tile
                for i, t in enumerate(rp.tiles):
                    out[(UNIT_LABELS["tile_shift_add"], f"tile {t}")][name] += \
                        n * rules.unit_ns("tile_shift_add", rp.merges[i])
                    # partial sums from the IMA output registers over the tile's bus
                    out[("eDRAM-to-IMA bus", f"tile {t}")][name] += \
                        n * rp.bus_bytes[i] / rules.bus_bytes_per_ns
                if plan.act:
                    out[(UNIT_LABELS["activation"], f"tile {m}")][name] += \
                        n * rules.unit_ns("activation", plan.out_c)
                out[(UNIT_LABELS["tile_output_register"], f"tile {m}")][name] += \
                    n * rules.unit_ns("tile_output_register", plan.out_c)
                bank[m][name] += n * plan.out_c * rules.act_bytes
        elif plan.kind not in ("input", "output"):
            for row in range(plan.out_h):
                for t, n in plan.row_parts(row):
                    f = n / plan.out_w
                    if plan.unit:
                        out[(UNIT_LABELS[plan.unit], f"tile {t}")][name] += \
                            rules.unit_ns(plan.unit, plan.row_values * f)
                    if plan.row_act:
                        out[(UNIT_LABELS["activation"], f"tile {t}")][name] += \
                            rules.unit_ns("activation", plan.row_act * f)
                    bank[t][name] += (plan.row_in_bytes + plan.row_out_bytes) * f
    for plan in plans.values():
        if plan.kind == "input":
            out[("input link", "chip 0")][plan.name] += rules.input_ns(
                plan.out_h * input_row_bytes(plan, rules))
        for ep, src, dsts, bits in activation_packets(plan, rules):
            for j in dsts:
                bank[ep.dst_tiles[j]][ep.consumer] += bits / 8.0
            if src != PORT:  # the source reads what it sends
                bank[src][plan.name] += bits / 8.0
    for t, by in bank.items():
        for name, nbytes in by.items():
            out[("eDRAM bank", f"tile {t}")][name] += nbytes / cyc_bytes
    for key, by in noc.stage_layers.items():
        for name, ns in by.items():
            out[(STAGE_LABELS[key[0]], stage_where(key))][name] += ns
    return {k: dict(v) for k, v in out.items()}


def throughput_bound(dem: dict[tuple[str, str], float]) -> tuple[float, tuple[str, str], float]:
    """(images/s bound, busiest resource, its busy ns per image)."""
    if not dem:
        return float("inf"), ("none", ""), 0.0
    key = max(dem, key=dem.__getitem__)
    ns = dem[key]
    return (1e9 / ns if ns > 0 else float("inf")), key, ns


def busiest_by_class(dem: dict[tuple[str, str], float], k: int = 8) -> list[dict]:
    """The busiest instance of each resource class, busiest first (at most *k*)."""
    best: dict[str, tuple[str, float]] = {}
    for (label, where), ns in dem.items():
        if label not in best or ns > best[label][1]:
            best[label] = (where, ns)
    rows = sorted(best.items(), key=lambda kv: -kv[1][1])[:k]
    return [{"unit": label, "where": where, "busy_ns_per_image": ns}
            for label, (where, ns) in rows]
