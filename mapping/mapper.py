"""Map a workload graph onto the accelerator: partition, replicate, place, route."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import networkx as nx
import numpy as np
from pydantic import Field

from mapping.errors import MappingError
from mapping.partition import RowBlock, partition_layer, weight_slices
from mapping.place import (
    CrossbarSlot,
    annotate_graph,
    assign_positions,
    place_layers,
    routers_per_chip,
)
from mapping.replicate import replicate
from mapping.traffic import link_loads
from simulator.core.config_io import StrictModel

__all__ = [
    "CrossbarSlot",
    "LayerMapping",
    "MappingOptions",
    "NetworkMapping",
    "RowBlock",
    "HARDWARE_KEYS",
    "WEIGHT_KINDS",
    "hardware_view",
    "map_network",
]

WEIGHT_KINDS = ("conv", "linear")

#: Every hardware key (dotted path of the hardware spec) that :func:`map_network` reads:
#: two chips that agree on these map a network identically, so a sweep maps a network
#: once per distinct view (simulator/explore/sweep/graph.py). tests/test_sweep.py maps
#: with a hardware spec that records what is read and checks it against this list.
HARDWARE_KEYS = (
    "crossbar.rows", "crossbar.cols", "crossbar.cell_bits",
    "weights.bits", "weights.unit_column", "activations.bits",
    "ima.crossbars", "tile.imas",
    "chip.tiles", "chip.mesh_cols", "chip.tiles_per_router", "tile.edram_bytes",
)


def hardware_view(hw: Any) -> dict[str, Any]:
    """The values of :data:`HARDWARE_KEYS` in *hw* (what the mapping depends on)."""
    out: dict[str, Any] = {}
    for key in HARDWARE_KEYS:
        value = hw
        for part in key.split("."):
            value = getattr(value, part)
        out[key] = value
    return out


class MappingOptions(StrictModel):
    """Scenario options of the mapper (strict: see simulator.core.config_io.STRICT_CONFIG)."""

    chips: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    """Chips to use, or ``auto``: the fewest (<= max_chips) that hold one replica per layer."""
    max_chips: Annotated[int, Field(ge=1)] = 64
    replicate: bool = True
    """Replicate layers to balance the pipeline (ISAAC); else one replica (or pinned)."""
    replicas: dict[str, Annotated[int, Field(ge=1)]] = {}
    """Pinned replica counts per layer name (kept as is by the balancer)."""
    tile_aligned: bool = False
    """Start every layer on a fresh tile (no two layers share a tile's eDRAM), at the
    cost of the crossbars left empty in each layer's last tile."""
    stripe: Annotated[int, Field(ge=0)] | Literal["auto"] = "auto"
    """Order in which crossbars fill the tiles (mapping.place.router_order): routers in a
    boustrophedon over stripes of this many mesh rows (0: tile ids in order, the fill
    before issue 18); ``auto``: with ``placement: bands`` the stripe height whose
    estimated worst NoC link or port load is lowest (mapping/traffic.py), with
    ``interleaved`` 0."""
    placement: Literal["bands", "interleaved"] = "bands"
    """Which output positions each replica and tile computes (docs/mapping.md): ``bands``
    keeps each tile's outputs in contiguous bands of columns next to the data they read;
    ``interleaved`` spreads every row over all of a layer's tiles (replica r of R: positions
    r, r + R, ...; rows of pools and adds round robin over their tiles), the placement
    before issue 18, kept for comparison."""


@dataclass
class LayerMapping:
    """Partition, replication and placement of one conv/linear layer."""

    name: str
    kind: str
    rows: int
    """Weight-matrix rows per conv group (L = kh*kw*C_in/g)."""
    cols: int
    """Logical output columns per group (C_out/g)."""
    groups: int
    row_blocks: list[RowBlock]
    crossbars: int
    """Crossbars per replica (sum of the row blocks' crossbars)."""
    replicas: int
    positions: int
    """Output positions per image (H_out*W_out; 1 for a linear layer)."""
    out_hw: tuple[int, int]
    placement: list[list[CrossbarSlot]] = field(default_factory=list)
    """``[replica][crossbar index]`` (row block major, then column block)."""
    replica_positions: list[np.ndarray] = field(default_factory=list)
    """``[replica]``: the output positions (row-major indices, ascending) it computes."""
    tiles: list[int] = field(default_factory=list)
    chip: int = 0
    utilization: float = 0.0
    """Weight cells / cells of the layer's crossbars."""
    weight_cells: int = 0
    """Cells holding weight bit-slices, per replica (unit columns excluded)."""


@dataclass
class NetworkMapping:
    """The whole network's mapping (``layers`` in graph order, conv/linear only)."""

    layers: dict[str, LayerMapping]
    graph: nx.DiGraph
    chips: int
    crossbars_used: int
    crossbars_available: int
    hw: Any = None
    position_tiles: dict[str, np.ndarray] = field(default_factory=dict)
    """Tile of every output position of every node with a tile (``place.annotate_graph``)."""
    placement: str = "bands"
    stripe: int = 0  # the tile fill order used (mapping.place.router_order)

    def used_tiles(self) -> set[int]:
        """Global ids of the tiles holding at least one crossbar of the mapping."""
        return {t for lm in self.layers.values() for t in lm.tiles}

    @property
    def tiles_used(self) -> int:
        """Number of tiles holding at least one crossbar."""
        return len(self.used_tiles())


def _layer(name: str, d: dict[str, Any], hw: Any) -> LayerMapping:
    rows, cols, blocks = partition_layer(d, hw)
    out = tuple(d.get("out_shape") or ())
    out_hw = (int(out[1]), int(out[2])) if d["kind"] == "conv" and len(out) == 3 else (1, 1)
    g = int(d.get("groups", 1) or 1)
    crossbars = sum(rb.n_crossbars for rb in blocks)
    cells = rows * cols * g * weight_slices(hw)
    cap = crossbars * hw.crossbar.rows * hw.crossbar.cols
    return LayerMapping(
        name=name, kind=d["kind"], rows=rows, cols=cols, groups=g, row_blocks=blocks,
        crossbars=crossbars, replicas=1, positions=out_hw[0] * out_hw[1], out_hw=out_hw,
        utilization=cells / cap if cap else 0.0, weight_cells=cells,
    )


def _capacity_text(hw: Any, chips: int) -> str:
    return (f"{chips} chip(s) × {hw.chip.tiles} tiles × {hw.tile.imas} IMAs × "
            f"{hw.ima.crossbars} crossbars")


def map_network(
    graph: nx.DiGraph, hw: Any, options: MappingOptions | None = None
) -> NetworkMapping:
    """Partition every conv/linear node, choose chips and replicas, place and route.

    Annotates *graph* in place (node ``tiles``, ``chip``, ``replicas``, ``crossbars``; edge
    ``hops``, ``route``, ``offchip``) and returns it inside the :class:`NetworkMapping`.
    Raises :class:`MappingError` when the network does not fit or options are wrong.
    """
    options = options or MappingOptions()
    order = sorted(graph.nodes, key=lambda n: graph.nodes[n].get("order", 0))
    layers = {n: _layer(n, graph.nodes[n], hw) for n in order
              if graph.nodes[n]["kind"] in WEIGHT_KINDS}

    unknown = sorted(set(options.replicas) - set(layers))
    if unknown:
        raise MappingError(
            f"mapping.replicas: unknown layer(s) {', '.join(unknown)}; "
            f"the layers are: {', '.join(layers)}"
        )
    too_many = [f"{n}: {r} > {layers[n].positions}" for n, r in options.replicas.items()
                if r > max(layers[n].positions, 1)]
    if too_many:
        raise MappingError(
            "mapping.replicas: more replicas than output positions per image "
            f"({'; '.join(too_many)})"
        )
    per_chip = hw.chip.tiles * hw.tile.imas * hw.ima.crossbars
    per_tile = hw.tile.imas * hw.ima.crossbars

    def footprint(n: str, reps: int) -> int:
        """Crossbars a layer occupies, counting the empty rest of its last tile if aligned."""
        c = layers[n].crossbars * reps
        return -(-c // per_tile) * per_tile if options.tile_aligned else c

    need1 = sum(footprint(n, 1) for n in layers)
    need_min = sum(footprint(n, options.replicas.get(n, 1)) for n in layers)

    if options.chips == "auto":
        chips = max(1, -(-need_min // per_chip))
        if chips > options.max_chips:
            what = "with pinned replicas" if need_min > need1 else "one replica per layer"
            raise MappingError(
                f"network needs {need_min} crossbars ({what}), "
                f"max_chips={options.max_chips} chips have {options.max_chips * per_chip} "
                f"({_capacity_text(hw, options.max_chips)})"
            )
    else:
        chips = int(options.chips)
        avail = chips * per_chip
        if need1 > avail:
            raise MappingError(
                f"network needs {need1} crossbars (one replica per layer), the chip(s) have "
                f"{avail} ({_capacity_text(hw, chips)}); use more chips or chips: auto"
            )
        if need_min > avail:
            raise MappingError(
                f"the pinned replicas (mapping.replicas) need {need_min} crossbars, the chip(s) "
                f"have {avail} ({_capacity_text(hw, chips)})"
            )
    budget = chips * per_chip
    if options.replicate:
        # with tile alignment the empty ends of tiles eat into the budget: shrink the
        # replication budget until the aligned footprint fits
        target = budget
        for _ in range(64):
            reps = replicate(list(layers.values()), target, options.replicas)
            over = sum(footprint(n, r) for n, r in reps.items()) - budget
            if over <= 0:
                break
            target -= over
    else:
        reps = {n: options.replicas.get(n, 1) for n in layers}
    for n, lm in layers.items():
        lm.replicas = reps[n]

    align = per_tile if options.tile_aligned else 1

    def place(stripe: int) -> tuple[int, dict[str, np.ndarray]]:
        used = place_layers(layers.values(), hw, chips, align=align, stripe=stripe)
        for lm in layers.values():
            assign_positions(lm, options.placement)
        return used, annotate_graph(graph, layers, hw, options.placement)

    stripe = options.stripe
    if stripe == "auto":
        stripe = 0
        if options.placement == "bands":
            rows = -(-routers_per_chip(hw) // hw.chip.mesh_cols)
            scores = {}
            for cand in range(1, rows + 1):
                load = link_loads(graph, layers, place(cand)[1], hw)
                scores[cand] = (max(load.values(), default=0.0), sum(load.values()))
            stripe = min(scores, key=scores.__getitem__)
    used, pos_tiles = place(int(stripe))
    return NetworkMapping(layers=layers, graph=graph, chips=chips, crossbars_used=used,
                          crossbars_available=budget, hw=hw, position_tiles=pos_tiles,
                          placement=options.placement, stripe=int(stripe))
