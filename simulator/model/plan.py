"""The work plan's data: what each lane, replica, tensor edge and graph node of one
pipeline does (built by :mod:`simulator.model.workplan` and :mod:`simulator.model.transfers`,
read by the engine, the analytic estimate and the bound)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.model.ledger import ActivityKind

WEIGHT_KINDS = ("conv", "linear")
#: roles of a node's activity kinds: per output position (weight) or row (digital), router
#: flit-hops of its packets, eDRAM bytes written at their destinations, off-chip bytes,
#: eDRAM bytes read at their source (the rows it sends), bytes of the network input over
#: the input link (the input node)
NODE_KINDS = ("output", "noc", "recv", "offchip", "send", "port")


@dataclass
class ImaPart:
    """The crossbars of one lane that sit in one IMA."""

    ima: int
    tile: int
    crossbars: int
    cols: int
    adcs: int  # ADCs it converts on at once when the pool is free: min(crossbars, pool)
    xbar_cols: tuple[int, ...] = ()  # active columns of each of its crossbars


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
    conv_ns: float  # time to convert one plane of all its crossbars on a free ADC pool
    tile: int = 0  # the tile its groups are loaded from (its first crossbar's)
    outputs: int = 0  # partial sums it produces per group (its row block's out channels)
    in_channels: tuple[int, int] = (0, 0)  # input channels (features) its rows read
    kind: ActivityKind | None = None  # what one MVM costs (static policy)

    @property
    def key(self) -> tuple[str, int, int]:
        """(layer, replica, row block)."""
        return (self.layer, self.replica, self.row_block)


@dataclass
class ReplicaPlan:
    """How one replica merges its lanes' partial sums (per output position)."""

    index: int
    lanes: list[Lane]
    merge_tile: int
    tiles: list[int]  # tiles holding its lanes, the merge tile first
    lane_tile: list[int]  # per lane: index into ``tiles``
    merges: list[int]  # adds done on each tile (the merge tile: its own + the remote sums)
    psum_bits: list[int]  # per tile: bits of partial sums sent to the merge tile (0: none)
    #: per tile: bytes of its lanes' partial sums crossing its bus from the IMA output
    #: registers, per position
    bus_bytes: list[float] = field(default_factory=list)


@dataclass
class EdgePlan:
    """A producer → consumer tensor edge: the consumer's input buffer and the transfers.

    Output row k of the producer has ``row_counts[k, s]`` of its positions computed on
    ``src_tiles[s]``; destination tile ``dst_tiles[j]`` needs column x of row k when
    ``need[k, j, x]``, and of every position the ``dst_channels[j]`` channels its lanes
    read (``simulator.model.transfers``).
    """

    producer: str
    consumer: str
    row_bytes: float  # bytes of one producer output row
    cap_rows: int | None  # rows the consumer's buffer holds (None: unbounded)
    release: str  # how the consumer frees rows: "window" | "row" | "image"
    kernel: int = 1
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    channels: int = 0  # producer output channels
    src_tiles: list[int] = field(default_factory=list)
    row_counts: np.ndarray | None = None  # (producer rows, src tiles)
    dst_tiles: list[int] = field(default_factory=list)
    need: np.ndarray | None = None  # (producer rows, dst tiles, columns) bool
    dst_masks: np.ndarray | None = None  # (dst tiles, channels) bool
    src_of: np.ndarray | None = None  # (producer rows, columns): index into src_tiles
    send_cols: np.ndarray | None = None  # (rows, src, dst): columns sent (0 if local)
    remote: bool = False  # some row part must travel over the NoC
    packets: dict = field(default_factory=dict)  # row → [(src tile, dst idx list, bits)]

    @property
    def dst_channels(self) -> np.ndarray:
        """Channels each destination tile needs."""
        return self.dst_masks.sum(axis=1)


@dataclass
class NodePlan:
    """A graph node as the engine executes it."""

    name: str
    kind: str
    order: int
    out_h: int
    out_w: int
    out_c: int
    producers: list[str]
    # thresholds[producer][out_row] = leading producer positions needed for that out row
    thresholds: dict[str, np.ndarray] = field(default_factory=dict)
    tiles: list[int] = field(default_factory=list)  # the tiles it runs on
    #: tile on which each output position is computed and written (a weight layer: its
    #: replica's merge tile; mapping.place)
    pos_tile: np.ndarray | None = None
    #: weight layers: the replica that computes each position, and the position's index
    #: in that replica's ascending list
    pos_replica: np.ndarray | None = None
    pos_index: np.ndarray | None = None
    lanes: list[Lane] = field(default_factory=list)
    replica_plans: list[ReplicaPlan] = field(default_factory=list)
    row_blocks: int = 0
    replicas: int = 1
    act: bool = False
    merges: int = 0  # weight layers: partial-sum adds per output position (all tiles)
    # digital nodes, per output row: unit values, activations, eDRAM bytes read / written
    unit: str | None = None
    row_values: float = 0.0
    row_act: float = 0.0
    row_in_bytes: float = 0.0
    row_out_bytes: float = 0.0
    out_edges: list[EdgePlan] = field(default_factory=list)
    in_edges: dict[str, EdgePlan] = field(default_factory=dict)
    #: what the node's activities cost, by role (:data:`NODE_KINDS`); their ledger ids are
    #: per pipeline (:class:`KindIds`), never stored here: the plans are shared
    kinds: dict[str, ActivityKind] = field(default_factory=dict)
    _parts: dict[int, list[tuple[int, int]]] | None = field(default=None, repr=False)

    @property
    def positions(self) -> int:
        """Output positions per image."""
        return self.out_h * self.out_w

    @property
    def tile(self) -> int:
        """First tile of the node."""
        return self.tiles[0] if self.tiles else 0

    def row_parts(self, row: int) -> list[tuple[int, int]]:
        """(tile, positions) of output row *row* on each tile that computes some of it."""
        parts = self._parts.get(row) if self._parts is not None else None
        if parts is None:
            if self._parts is None:
                self._parts = {}
            w = self.out_w
            tiles, counts = np.unique(self.pos_tile[row * w:(row + 1) * w],
                                      return_counts=True)
            # in the order the row's positions first appear (left to right)
            first = {int(t): i for i, t in reversed(list(enumerate(
                self.pos_tile[row * w:(row + 1) * w].tolist())))}
            parts = sorted(((int(t), int(c)) for t, c in zip(tiles, counts, strict=True)),
                           key=lambda tc: first[tc[0]])
            self._parts[row] = parts
        return parts


@dataclass(frozen=True)
class KindIds:
    """The ledger ids of one pipeline's activity kinds.

    The node plans are shared by every pipeline of a run; each pipeline registers their
    kinds in its own ledger (``workplan.register_kinds``) and hands this object to whoever
    books: ``node[role][name]`` for a node's roles (:data:`NODE_KINDS`), ``mvm[lane.key]``
    for a lane's MVM.
    """

    node: dict[str, dict[str, int]]
    mvm: dict[tuple[str, int, int], int]

    def of(self, role: str, name: str) -> int:
        """Id of node *name*'s kind for *role*."""
        return self.node[role][name]
