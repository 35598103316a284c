"""Placement, routing, chip count and reports of the mapper (mapping/place.py, mapper.py,
report.py).  Expected slots, hops and counts are worked out by hand in the comments."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from pydantic import ValidationError

from mapping.errors import MappingError
from mapping.mapper import MappingOptions, NetworkMapping, map_network
from mapping.place import CrossbarSlot, router_order, tile_order, xy_route
from mapping.report import format_mapping_table, mapping_to_json, plot_placement, write_graphml
from mapping.traffic import link_loads
from simulator.hardware.spec import HardwareSpec, load_hardware

ISAAC8 = Path(__file__).resolve().parents[1] / "configs" / "hardware" / "isaac8.yaml"


@cache
def isaac8() -> HardwareSpec:
    return load_hardware(ISAAC8)


@cache
def small_hw() -> HardwareSpec:
    """128x128 2-bit crossbars; 2 crossbars/IMA, 2 IMAs/tile (4 crossbars per tile),
    8 tiles/chip (32 crossbars per chip), 2 tiles per router -> 4 routers in a 2x2 mesh."""
    return isaac8().with_changes({
        "ima.crossbars": 2, "ima.adcs": 2,
        "components.ima.crossbar.count": 2, "components.ima.adc.count": 2,
        "components.ima.dac.count": 2 * 128, "components.ima.sample_hold.count": 2 * 128,
        "tile.imas": 2,
        "chip.tiles": 8, "chip.tiles_per_router": 2, "chip.mesh_cols": 2,
    })


def _node(kind: str, order: int, in_shape: tuple, out_shape: tuple, **kw: Any) -> dict:
    d = {"kind": kind, "order": order, "module": None, "in_shape": in_shape,
         "out_shape": out_shape, "act": None, "macs": 0, "weights": 0, "signed_input": False}
    d.update(kw)
    return d


def _w(cin: int, cout: int, k: int, groups: int = 1) -> dict:
    return {"in_channels": cin, "out_channels": cout, "kernel": (k, k), "stride": (1, 1),
            "padding": (k // 2, k // 2), "dilation": (1, 1), "groups": groups}


def small_net(fc_out: int = 10) -> nx.DiGraph:
    """input -> conv1 (3x3 3->16, 8x8) -> pool (4x4) -> conv2 (3x3 16->24, 4x4) -> flatten
    -> fc (384 -> fc_out) -> output.

    Crossbars on 128x128 2-bit (31 weights per crossbar):
      conv1: L = 27 rows, 16 cols -> 1 row block x 1 col block = 1
      conv2: L = 144 = 126 (14 ch) + 18 rows, 24 cols -> 2 row blocks x 1 = 2
      fc:    384 rows -> 3 row blocks x ceil(fc_out / 31) col blocks (10 -> 3 crossbars)
    """
    g = nx.DiGraph(name="small", input_shape=(3, 8, 8))
    nodes = [
        ("x", _node("input", 0, (3, 8, 8), (3, 8, 8))),
        ("conv1", _node("conv", 1, (3, 8, 8), (16, 8, 8), module="conv1", **_w(3, 16, 3))),
        ("pool", _node("maxpool", 2, (16, 8, 8), (16, 4, 4), kernel=(2, 2), stride=(2, 2),
                       padding=(0, 0), dilation=(1, 1))),
        ("conv2", _node("conv", 3, (16, 4, 4), (24, 4, 4), module="conv2", **_w(16, 24, 3))),
        ("flatten", _node("flatten", 4, (24, 4, 4), (384,))),
        ("fc", _node("linear", 5, (384,), (fc_out,), module="fc", **_w(384, fc_out, 1))),
        ("out", _node("output", 6, (fc_out,), (fc_out,))),
    ]
    for n, d in nodes:
        g.add_node(n, **d)
    for (u, du), (v, _) in zip(nodes, nodes[1:], strict=False):
        shape = du["out_shape"]
        numel = 1
        for s in shape:
            numel *= s
        g.add_edge(u, v, shape=shape, numel=numel, bytes=numel)
    return g


def check_invariants(m: NetworkMapping, hw: HardwareSpec) -> None:
    """Every crossbar of every replica placed exactly once, ids consistent, within budget."""
    seen: set[tuple[int, int]] = set()
    for lm in m.layers.values():
        assert len(lm.placement) == lm.replicas
        for rep in lm.placement:
            assert len(rep) == lm.crossbars
            for s in rep:
                key = (s.ima, s.index)
                assert key not in seen
                seen.add(key)
                assert 0 <= s.index < hw.ima.crossbars
                assert s.tile == s.ima // hw.tile.imas
                assert s.chip == s.tile // hw.chip.tiles
                assert 0 <= s.chip < m.chips
        assert lm.tiles == sorted({s.tile for rep in lm.placement for s in rep})
    assert len(seen) == m.crossbars_used <= m.crossbars_available
    assert m.crossbars_available == m.chips * hw.chip.tiles * hw.tile.imas * hw.ima.crossbars
    for n, d in m.graph.nodes(data=True):
        assert d["tiles"] and isinstance(d["chip"], int), n
        assert "replicas" in d and "crossbars" in d
    for u, v, e in m.graph.edges(data=True):
        assert e["hops"] == len([lk for lk in e["route"]]) - (1 if e["offchip"] else 0), (u, v)


# ------------------------------------------------------------------ XY routing
def test_xy_route_isaac_mesh() -> None:
    # 6 x 7 mesh (mesh_cols 7): router 0 at (x0,y0), router 41 at (x6,y5):
    # X first 6 links along row 0, then 5 links down column 6 -> 11 hops.
    r = xy_route(0, 41, 7)
    assert len(r) == 6 + 5
    assert r[:6] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]
    assert r[6:] == [(6, 13), (13, 20), (20, 27), (27, 34), (34, 41)]
    # back: X first (row 5, from x6 to x0), then up column 0
    back = xy_route(41, 0, 7)
    assert back[:6] == [(41, 40), (40, 39), (39, 38), (38, 37), (37, 36), (36, 35)]
    assert back[6:] == [(35, 28), (28, 21), (21, 14), (14, 7), (7, 0)]
    assert xy_route(8, 15, 7) == [(8, 15)]      # (1,1) -> (1,2): one Y hop
    assert xy_route(9, 9, 7) == []
    # (2,0) -> (0,3): |dx| + |dy| = 2 + 3 = 5
    assert len(xy_route(2, 21, 7)) == 5


# ------------------------------------------------------------------ placement
def test_place_pinned_hand_worked() -> None:
    # replicate off, conv1 x9, conv2 x2, fc x1: 9*1 + 2*2 + 3 = 16 crossbars, dense order.
    # 4 crossbars per tile, 2 per IMA: slot s -> tile s//4, IMA s//2, index s%2.
    # conv1 slots 0..8 -> tiles 0,1,2; conv2 rep0 = slots 9,10, rep1 = 11,12;
    # fc slots 13..15 -> tile 3.
    # (interleaved positions: the placement rule for nodes without weights checked here is
    # that one; test_bands_hand_worked below checks the default)
    hw = small_hw()
    g = small_net()
    m = map_network(g, hw, MappingOptions(replicate=False, replicas={"conv1": 9, "conv2": 2},
                                          placement="interleaved"))
    check_invariants(m, hw)
    c1, c2, fc = m.layers["conv1"], m.layers["conv2"], m.layers["fc"]
    assert (c1.crossbars, c2.crossbars, fc.crossbars) == (1, 2, 3)
    assert (c1.replicas, c2.replicas, fc.replicas) == (9, 2, 1)
    assert c1.placement[8] == [CrossbarSlot(chip=0, tile=2, ima=4, index=0)]
    assert c2.placement == [
        [CrossbarSlot(0, 2, 4, 1), CrossbarSlot(0, 2, 5, 0)],
        [CrossbarSlot(0, 2, 5, 1), CrossbarSlot(0, 3, 6, 0)],
    ]
    assert fc.placement == [[CrossbarSlot(0, 3, 6, 1), CrossbarSlot(0, 3, 7, 0),
                             CrossbarSlot(0, 3, 7, 1)]]
    assert (c1.tiles, c2.tiles, fc.tiles) == ([0, 1, 2], [2, 3], [3])
    assert (m.crossbars_used, m.tiles_used, m.crossbars_available, m.chips) == (16, 4, 32, 1)
    # non-weight nodes run on their producer's tile; the input on its consumer's
    assert g.nodes["x"]["tiles"] == [0, 1, 2]
    assert g.nodes["pool"]["tiles"] == [0, 1, 2]
    assert g.nodes["flatten"]["tiles"] == [2, 3]
    assert g.nodes["out"]["tiles"] == [3]
    assert g.nodes["conv1"]["replicas"] == 9 and g.nodes["conv2"]["crossbars"] == 2
    # routers: tile // 2.  pool (tile 0, router 0) -> conv2 (tile 2, router 1): 1 hop east
    assert g.edges["pool", "conv2"]["hops"] == 1
    assert g.edges["pool", "conv2"]["route"] == [(0, 1)]
    # flatten (tile 2, router 1) -> fc (tile 3, router 1): same router, 0 hops
    assert g.edges["flatten", "fc"]["hops"] == 0
    assert g.edges["flatten", "fc"]["route"] == []
    assert not any(e["offchip"] for _, _, e in g.edges(data=True))


def test_bands_hand_worked() -> None:
    # The mapping of test_place_pinned_hand_worked with the default placement (bands).
    # conv1 (8 x 8 = 64 positions, 9 replicas): 64 // 9 = 7 positions each, replica 0 one
    # more (64 mod 9 = 1). Merge tiles: replicas 0-3 on tile 0, 4-7 on tile 1, 8 on tile 2,
    # so the groups take 8 + 7 + 7 + 7 = 29, 28 and 7 positions, column by column:
    #   tile 0: columns 0-2 (24) and rows 0-4 of column 3
    #   tile 1: rows 5-7 of column 3, columns 4-6, row 0 of column 7 (3 + 21 + ... = 28)
    #   tile 2: rows 1-7 of column 7
    # and tile 0's 4 replicas share its 29 positions in row-major order, 4 per row in
    # rows 0-4 (columns 0-3) and 3 in rows 5-7: 0 1 2 3 | 8 9 10 11 | ... | 32 33 34 35 |
    # 40 41 42 | 48 49 50 | 56 57 58; replica 0 takes every 4th of that list (indices 0,
    # 4, ..., 28): 0, 8, 16, 24, 32, 40, 49, 58.
    # (tiles filled in id order: stripe 0)
    hw = small_hw()
    g = small_net()
    m = map_network(g, hw, MappingOptions(replicate=False, replicas={"conv1": 9, "conv2": 2},
                                          stripe=0))
    check_invariants(m, hw)
    c1 = m.layers["conv1"]
    tiles = m.position_tiles["conv1"].reshape(8, 8)
    assert (tiles[:, :3] == 0).all() and (tiles[:5, 3] == 0).all()
    assert (tiles[5:, 3] == 1).all() and (tiles[:, 4:7] == 1).all() and tiles[0, 7] == 1
    assert (tiles[1:, 7] == 2).all()
    assert c1.replica_positions[0].tolist() == [0, 8, 16, 24, 32, 40, 49, 58]
    assert sorted(p for pos in c1.replica_positions for p in pos.tolist()) == list(range(64))
    # pool (2x2, stride 2) position (r, c) is computed where conv1's (2r, 2c) was:
    # columns 0, 2 on tile 0, columns 4, 6 on tile 1
    assert m.position_tiles["pool"].reshape(4, 4).tolist() == [[0, 0, 1, 1]] * 4
    assert g.nodes["pool"]["tiles"] == [0, 1]
    # conv2's two replicas both merge on tile 2 (slots 9 and 11): every conv2 position is
    # on tile 2, so is flatten's one position (the centre of conv2's map)
    assert g.nodes["flatten"]["tiles"] == [2]
    assert g.nodes["out"]["tiles"] == [3]
    # the old placement is still selectable: replica r of 9 takes r, r + 9, ...
    old = map_network(small_net(), hw, MappingOptions(
        replicate=False, replicas={"conv1": 9, "conv2": 2}, placement="interleaved"))
    assert old.layers["conv1"].replica_positions[0].tolist() == list(range(0, 64, 9))


def test_router_order_stripes() -> None:
    # ISAAC's 6 x 7 mesh (mesh_cols 7, router r at column r % 7, row r // 7). Stripe 3:
    # rows 0-2 column by column left to right, each column top to bottom then bottom to
    # top (0, 7, 14 | 15, 8, 1 | 2, 9, 16 | ...), then rows 3-5 right to left starting
    # under the last column (27, 34, 41 | 40, 33, 26 | ...): neighbours follow neighbours.
    hw = isaac8()
    order = router_order(hw, 3)
    assert order[:9] == [0, 7, 14, 15, 8, 1, 2, 9, 16]
    assert order[18:27] == [6, 13, 20, 27, 34, 41, 40, 33, 26]
    assert sorted(order) == list(range(42))
    cols = hw.chip.mesh_cols
    for a, b in zip(order[:-1], order[1:], strict=True):  # consecutive routers: a link
        assert abs(a % cols - b % cols) + abs(a // cols - b // cols) == 1, (a, b)
    # stripe 1: a boustrophedon over the rows; 0: ids in order
    assert router_order(hw, 1)[:9] == [0, 1, 2, 3, 4, 5, 6, 13, 12]
    assert router_order(hw, 0) == list(range(42))
    # the tiles of a router are consecutive
    assert tile_order(hw, 3)[:8] == [0, 1, 2, 3, 28, 29, 30, 31]


def test_link_loads_hand_worked() -> None:
    # x (1 x 1 x 8) -> a (1x1 conv 1 -> 1, 8 replicas of 1 crossbar) -> b (1x1 conv, 1
    # replica) -> out, on small_hw (4 crossbars per tile, 2 tiles per router, tiles in id
    # order): a's replicas fill tiles 0 and 1 (merge tiles), so a's bands are columns 0-3
    # on tile 0 and 4-7 on tile 1; b sits on tile 2 (router 1). Each of b's 8 positions
    # pulls 1 byte (a's map: 8 B over b's 8 positions) from the tile that computed its
    # centre (the same position): 4 B from tile 0, 4 B from tile 1, over link (0, 1)
    # (router 0 -> router 1): inj 0 and inj 1 carry 4 B each, the link and ej 2 8 B.
    def conv(order: int, cin: int) -> dict:
        return _node("conv", order, (cin, 1, 8), (1, 1, 8), module=f"c{order}",
                     in_channels=cin, out_channels=1, kernel=(1, 1), stride=(1, 1),
                     padding=(0, 0), dilation=(1, 1), groups=1)
    g = nx.DiGraph(name="chain", input_shape=(1, 1, 8))
    nodes = [("x", _node("input", 0, (1, 1, 8), (1, 1, 8))), ("a", conv(1, 1)),
             ("b", conv(2, 1)), ("out", _node("output", 3, (1, 1, 8), (1, 1, 8)))]
    for n, d in nodes:
        g.add_node(n, **d)
    for (u, _), (v, _) in zip(nodes, nodes[1:], strict=False):
        g.add_edge(u, v, shape=(1, 1, 8), numel=8, bytes=8)
    hw = small_hw()
    m = map_network(g, hw, MappingOptions(replicate=False, replicas={"a": 8}, stripe=0))
    assert m.position_tiles["a"].tolist() == [0] * 4 + [1] * 4
    assert m.layers["b"].tiles == [2]
    load = link_loads(g, m.layers, m.position_tiles, hw)
    assert load == pytest.approx({("inj", 0): 4.0, ("inj", 1): 4.0, ("link", 0, 1): 8.0,
                                  ("ej", 2): 8.0})
    # auto picks the stripe with the lowest worst load (small_hw: 2 x 2 routers, stripes
    # 1 and 2), and says which
    auto = map_network(g.copy(), hw, MappingOptions(replicate=False, replicas={"a": 8}))
    assert auto.stripe in (1, 2)
    best = max(link_loads(auto.graph, auto.layers, auto.position_tiles, hw).values())
    for stripe in (1, 2):
        other = map_network(g.copy(), hw, MappingOptions(replicate=False, replicas={"a": 8},
                                                         stripe=stripe))
        assert best <= max(link_loads(other.graph, other.layers, other.position_tiles,
                                      hw).values())


def test_replication_fills_budget_hand_worked() -> None:
    # one replica each: 1 + 2 + 3 = 6 of 32 crossbars -> 26 left.  Times 64/r1, 16/r2, 1.
    # conv1 grows to 4 (23 left; 64/4 = 16 ties conv2 16 -> later conv2 = 2, 21 left);
    # conv1 to 8 (17 left), tie 8 = 8 -> conv2 = 3 (15 left); conv1 to 12 (11 left), tie
    # 5.33 -> conv2 = 4 (9 left); conv1 to 16 (5 left), tie 4 -> conv2 = 5 (3 left; 3.2);
    # conv1 to 17, 18, 19 (0 left; 3.37 > 3.2); conv1 cannot grow -> stop.
    # 19 + 5*2 + 3 = 32.
    hw = small_hw()
    m = map_network(small_net(), hw, MappingOptions())
    check_invariants(m, hw)
    assert {n: lm.replicas for n, lm in m.layers.items()} == {"conv1": 19, "conv2": 5, "fc": 1}
    assert m.crossbars_used == 32
    assert m.tiles_used == 8


def test_offchip_edge_route() -> None:
    # 2 chips of 32 crossbars, replicate off, conv1 x30, conv2 x2: conv1 slots 0..29 (chip 0);
    # conv2 rep0 = slots 30,31 (tile 7, chip 0), rep1 = 32,33 (tile 8 = chip 1 tile 0);
    # fc slots 34..36 -> tiles 8, 9 on chip 1.  flatten runs on conv2's first tile 7 (chip 0,
    # local router 7 // 2 = 3 at (x1, y1)).  Off-chip route: XY to router 0 of chip 0
    # (3 -> 2 -> 0: 2 hops), the link to chip 1's router 0 (global id 4), and router 0 ->
    # fc's router 0 of chip 1 (0 hops).
    # (flatten on conv2's first tile: the interleaved placement's rule)
    hw = small_hw()
    g = small_net()
    m = map_network(g, hw, MappingOptions(chips=2, replicate=False,
                                          replicas={"conv1": 30, "conv2": 2},
                                          placement="interleaved"))
    check_invariants(m, hw)
    assert m.layers["conv2"].tiles == [7, 8] and m.layers["conv2"].chip == 0
    assert m.layers["fc"].tiles == [8, 9] and m.layers["fc"].chip == 1
    e = g.edges["flatten", "fc"]
    assert e["offchip"] is True
    assert e["hops"] == 2
    assert e["route"] == [(3, 2), (2, 0), (0, 4)]
    assert g.edges["pool", "conv2"]["offchip"] is False
    # bands (tiles filled in id order, stripe 0): conv2's replicas merge on tiles 7 (chip
    # 0) and 8 (chip 1), one band of two columns each; flatten sits where the centre of
    # conv2's map, (2, 2), was computed: tile 8 on chip 1. The edge that leaves chip 0 is
    # then conv2 -> flatten (from conv2's first tile 7), over the same route; flatten ->
    # fc stays on chip 1.
    g = small_net()
    map_network(g, hw, MappingOptions(chips=2, replicate=False, stripe=0,
                                      replicas={"conv1": 30, "conv2": 2}))
    assert g.nodes["flatten"]["tiles"] == [8]
    e = g.edges["conv2", "flatten"]
    assert e["offchip"] is True and e["route"] == [(3, 2), (2, 0), (0, 4)]
    assert g.edges["flatten", "fc"]["offchip"] is False


# ------------------------------------------------------------------ chip count
def test_fixed_chip_count_too_small() -> None:
    # fc 384 -> 1000: 3 row blocks x ceil(1000/31) = 33 col blocks = 99 crossbars;
    # total 1 + 2 + 99 = 102 > 32 crossbars of one small chip.
    with pytest.raises(MappingError) as exc:
        map_network(small_net(1000), small_hw(), MappingOptions(chips=1))
    msg = str(exc.value)
    assert "network needs 102 crossbars (one replica per layer)" in msg
    assert "have 32" in msg and "8 tiles" in msg and "2 IMAs" in msg and "2 crossbars" in msg


def test_auto_picks_more_chips() -> None:
    # 102 crossbars / 32 per chip -> ceil = 4 chips (3 * 32 = 96 < 102)
    hw = small_hw()
    m = map_network(small_net(1000), hw, MappingOptions(chips="auto"))
    check_invariants(m, hw)
    assert m.chips == 4
    assert m.crossbars_available == 128
    assert m.crossbars_used <= 128
    with pytest.raises(MappingError, match="max_chips=3"):
        map_network(small_net(1000), hw, MappingOptions(chips="auto", max_chips=3))


def test_big_fc_on_isaac8_needs_two_chips() -> None:
    # linear 8192 -> 8192: 8192/128 = 64 row blocks x ceil(8192/31) = 265 col blocks
    # = 16960 crossbars > 168 * 12 * 8 = 16128 -> error with 1 chip, 2 chips with auto.
    g = nx.DiGraph(name="fc")
    g.add_node("x", **_node("input", 0, (8192,), (8192,)))
    g.add_node("fc", **_node("linear", 1, (8192,), (8192,), **_w(8192, 8192, 1)))
    g.add_edge("x", "fc", shape=(8192,), numel=8192, bytes=8192)
    with pytest.raises(MappingError, match="needs 16960 crossbars.*have 16128"):
        map_network(g, isaac8(), MappingOptions())
    m = map_network(g, isaac8(), MappingOptions(chips="auto"))
    assert m.chips == 2 and m.crossbars_used == 16960
    check_invariants(m, isaac8())


def test_pinned_unknown_layer() -> None:
    with pytest.raises(MappingError) as exc:
        map_network(small_net(), small_hw(), MappingOptions(replicas={"conv9": 2}))
    assert "conv9" in str(exc.value) and "conv1, conv2, fc" in str(exc.value)


def test_pinned_over_budget() -> None:
    # conv2 x16 (its 4x4 = 16 positions) = 32 crossbars, + 1 + 3 = 36 > 32
    with pytest.raises(MappingError, match="pinned"):
        map_network(small_net(), small_hw(), MappingOptions(replicas={"conv2": 16}))


def test_pinned_more_than_positions() -> None:
    # fc has 1 output position per image: 2 replicas could never both work
    with pytest.raises(MappingError, match="fc: 2 > 1"):
        map_network(small_net(), small_hw(), MappingOptions(replicas={"fc": 2}))


def test_options_validation() -> None:
    for bad in ({"chips": 0}, {"chips": "many"}, {"replicas": {"a": 0}}, {"bogus": 1}):
        with pytest.raises(ValidationError):
            MappingOptions.model_validate(bad)
    assert MappingOptions.model_validate({"chips": "auto"}).chips == "auto"


# ------------------------------------------------------------------ reports
def test_reports(tmp_path: Path) -> None:
    hw = small_hw()
    m = map_network(small_net(), hw, MappingOptions(replicate=False, replicas={"conv1": 9}))
    j = mapping_to_json(m)
    json.dumps(j)
    assert set(j) == {"layers", "totals"}
    assert set(j["totals"]) == {"crossbars_used", "crossbars_available", "tiles_used", "chips",
                                "utilization"}
    fc = j["layers"][2]
    assert set(fc) == {"name", "kind", "rows", "cols", "row_blocks", "col_blocks", "crossbars",
                       "replicas", "tiles", "chip", "utilization"}
    # fc 384 -> 10: 3 row blocks x 1 col block; weight cells 384 * 10 * 4 slices = 15360 of
    # 3 * 128 * 128 = 49152 -> 0.3125
    assert (fc["row_blocks"], fc["col_blocks"], fc["crossbars"]) == (3, 1, 3)
    assert fc["utilization"] == pytest.approx(15360 / 49152)
    # totals: conv1 27*16*4 = 1728 cells x 9, conv2 144*24*4 = 13824, fc 15360
    # over (9 + 2 + 3) = 14 crossbars of 16384 cells
    assert j["totals"]["utilization"] == pytest.approx((9 * 1728 + 13824 + 15360) / (14 * 16384))
    table = format_mapping_table(m)
    assert "conv2" in table and "crossbars: 14 used of 32" in table
    write_graphml(m, tmp_path / "m.graphml")
    back = nx.read_graphml(tmp_path / "m.graphml")
    assert back.nodes["conv1"]["kind"] == "conv"
    plot_placement(m, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


# ------------------------------------------------------------------ real networks
@pytest.fixture(scope="module")
def traced():
    pytest.importorskip("torchvision")
    from workloads.graph import trace_model
    from workloads.models import build_model

    def make(name: str, size: int = 224):
        model, shape = build_model(name, size)
        return trace_model(model, shape, name)

    return make


def test_resnet18_isaac8(traced) -> None:
    # one replica per layer (128x128 2-bit, 31 weights per crossbar, 14 channels per 3x3
    # row block): conv1 7x7 3->64: 2 x 3 = 6; layer1: 4 x (5 x 3) = 60;
    # layer2: 25 + 50 + 5 (1x1) + 2 x 50 = 180; layer3: 90 + 171 + 9 + 2 x 171 = 612;
    # layer4: 323 + 629 + 34 + 2 x 629 = 2244; fc 4 x 33 = 132 -> total 3234.
    tw = traced("resnet18")
    hw = isaac8()
    m = map_network(tw.graph, hw, MappingOptions())
    check_invariants(m, hw)
    assert sum(lm.crossbars for lm in m.layers.values()) == 3234
    assert m.layers["conv1"].crossbars == 6 and m.layers["fc"].crossbars == 132
    assert m.chips == 1 and m.crossbars_used <= 16128
    # replication lowers the bottleneck from 112*112 = 12544 positions per replica
    assert max(lm.positions / lm.replicas for lm in m.layers.values()) < 12544


def test_vgg16_needs_three_chips(traced) -> None:
    # convs: 3 + 15 + 25 + 50 + 90 + 2*171 + 323 + 2*629 + 3*629 = 3993; fc1 25088 -> 4096:
    # 196 x 133 = 26068; fc2 32 x 133 = 4256; fc3 32 x 33 = 1056 -> 35373 crossbars
    # > 16128 per chip -> ceil(35373 / 16128) = 3 chips.
    tw = traced("vgg16")
    hw = isaac8()
    with pytest.raises(MappingError, match="needs 35373 crossbars"):
        map_network(tw.graph, hw, MappingOptions(chips=1))
    m = map_network(tw.graph, hw, MappingOptions(chips="auto"))
    check_invariants(m, hw)
    assert m.chips == 3
    assert any(e["offchip"] for _, _, e in m.graph.edges(data=True))


def test_tile_aligned_placement_gives_every_layer_its_own_tiles() -> None:
    """mapping.tile_aligned: each layer starts on a fresh tile, so no tile is shared."""
    from mapping.mapper import MappingOptions, map_network
    from simulator.hardware.spec import load_hardware
    from workloads.graph import trace_model
    from workloads.models import build_model

    hw = load_hardware(Path(__file__).resolve().parents[1] / "configs/hardware/isaac8.yaml")
    model, shape = build_model("resnet18", 64, 0)
    g = trace_model(model, shape, "resnet18").graph
    m = map_network(g, hw, MappingOptions(tile_aligned=True))
    per_tile = hw.tile.imas * hw.ima.crossbars  # 96
    owners: dict[int, str] = {}
    for name, lm in m.layers.items():
        first = lm.placement[0][0]
        assert (first.ima * hw.ima.crossbars + first.index) % per_tile == 0, name
        for t in lm.tiles:
            assert owners.setdefault(t, name) == name, (t, name, owners[t])
    # the aligned footprint (whole tiles per layer) fits in the chip
    tiles = sum(-(-lm.crossbars * lm.replicas // per_tile) for lm in m.layers.values())
    assert tiles <= hw.chip.tiles


@pytest.mark.parametrize(("model", "edram"), [("resnet18", 65536), ("resnet18", 32768),
                                               ("resnet50", 65536)])
def test_bands_every_buffer_fits(model: str, edram: int) -> None:
    """With bands, every bounded input buffer holds the rows its consumer needs at once
    (a global pool: the whole map): where a band cannot, the node is spread over its
    producer's tiles. ResNet-18's global pool needs its 7 rows of 512 x 7 bytes (25,088
    bytes) at once, ResNet-50's 7 rows of 2048 x 7 (100,352 bytes: more than one 64 KB
    tile); at 64 KB ResNet-18 keeps its pool on the one tile of its band."""
    from mapping.buffers import min_rows, row_bytes
    from simulator.model.workplan import plan_structure
    from workloads.graph import trace_model
    from workloads.models import build_model

    hw = load_hardware(ISAAC8).with_changes({"tile.edram_bytes": edram})
    module, shape = build_model(model, input_size=224)
    m = map_network(trace_model(module, shape, model).graph, hw, MappingOptions())
    g = m.graph
    need = min_rows(g, "add_15" if model == "resnet50" else "add_7", "avgpool")
    assert need == 7
    assert need * row_bytes(g, "add_15" if model == "resnet50" else "add_7", 8) == (
        7 * 2048 * 7 if model == "resnet50" else 7 * 512 * 7)
    for v, plan in plan_structure(g, m, hw).items():
        for u, ep in plan.in_edges.items():
            if ep.cap_rows is not None:
                assert ep.cap_rows >= min_rows(g, u, v), (u, v, ep.cap_rows)
    spread = len(g.nodes["avgpool"]["tiles"]) > 1
    assert spread == (model == "resnet50" or edram < 65536)
