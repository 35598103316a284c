"""A layer replica: its lanes and the merge of their partial sums (the tile output path).

When the last row block of an output position is converted, each tile that holds some of
the replica's row blocks adds their partial sums on its shift-and-add unit, and the
tiles other than the merge tile (the tile of the replica's first crossbar) send their
sums over the NoC (``psum_bits`` per channel). The merge tile adds what arrives, then the
position's values flow through its activation units (layers with a fused activation),
its output register and an eDRAM bank write, pipelined one value per clock
(``cut_through``). The position is complete when the write ends.

A position's values wait in the tile output register (``tile.output_register_bytes``)
from the merge until their eDRAM write; the register is shared by the replicas that
merge on the tile, so a replica holds at most D = max(2, its share / position bytes)
positions there: its lanes start streaming position k only after position k − D left the
output path (a slow output path throttles the crossbars instead of queueing without
bound).

- :class:`ReplicaMerge` (both fidelities): the output path of every replica of a layer.
  In ``plane`` fidelity a merge runs at the simulated time the position's last lane
  finished; in ``group`` fidelity as soon as the replica has computed the position (an
  advance reservation of the units and links, see ``server``).
- :class:`GroupReplica` (``group`` fidelity): one SimPy process per replica runs its
  lanes' groups position by position
  (:class:`~simulator.engine.components.crossbar_lane.LaneState`), loading the groups of its
  lanes on one tile together (``TileMemory.load_batch``); it waits only for input rows
  and buffer room (per output row).
- :class:`PlaneMerge` (``plane`` fidelity): collects the lanes' conversions of a position
  and merges it when the last lane is done.
"""

from __future__ import annotations

from collections import deque

import simpy

from simulator.engine.components.edram_buffer import ready_for_row
from simulator.engine.components.server import cut_through

_NEG = -1e30


class ReplicaMerge:
    """The output path of the replicas of one weight layer."""

    def __init__(self, env: simpy.Environment, plan, rules, noc, units, memory, output,
                 ledger, kind: int, publish: bool = False) -> None:
        self.env = env
        self.kind = kind  # the ledger id of a position's output activity
        self.publish = publish  # plane fidelity: merges are SimPy events the lanes wait on
        self.plan = plan
        self.noc = noc
        self.output = output  # NodeOutput of the layer
        self.ledger = ledger
        # per replica and position sequence (image × its positions + k): merged event,
        # whose value is the end of the position's output path
        self.events: dict[tuple[int, int], simpy.Event] = {}
        cyc = rules.cycle_ns
        out_c = plan.out_c
        self.tail: dict[int, list] = {}  # merge tile -> stages after the merge adds
        self.adds: dict[int, tuple] = {}  # replica -> S+A stage at its merge tile
        self.remote: dict[int, list] = {}  # replica -> [(tile index, S+A stage, bits)]
        on_tile: dict[int, int] = {}
        for rp in plan.replica_plans:
            on_tile[rp.merge_tile] = on_tile.get(rp.merge_tile, 0) + 1
        pos_bytes = max(out_c * rules.act_bytes, 1.0)
        #: positions a replica may have between its lanes and the end of its output path
        self.depth = {rp.index: max(2, int(rules.tile_register_bytes / on_tile[rp.merge_tile]
                                           // pos_bytes))
                      for rp in plan.replica_plans}
        for rp in plan.replica_plans:
            m = rp.merge_tile
            if m not in self.tail:
                u, mem = units(m), memory(m)
                stages = []
                if plan.act:
                    stages.append(u.stage("activation", out_c, cyc))
                stages.append(u.stage("tile_output_register", out_c, cyc))
                stages.append(mem.write_stage(out_c * rules.act_bytes, cyc))
                self.tail[m] = stages
            if rp.merges[0]:
                self.adds[rp.index] = units(m).stage("tile_shift_add", rp.merges[0], cyc)
            self.remote[rp.index] = [
                (i, units(t).stage("tile_shift_add", rp.merges[i], 0.0) if rp.merges[i]
                 else None, rp.psum_bits[i])
                for i, t in enumerate(rp.tiles) if i]

    def merge(self, rp, img: int, pos: int, seq: int, t: float) -> float:
        """The last lane of position *pos* of replica *rp* converted at *t*: merge it.

        Returns when the position's output path ends (its eDRAM write).
        """
        for i, adds, bits in self.remote[rp.index]:
            ti = t if adds is None else adds[0].reserve(t, adds[1])[1]
            a = self.noc.send(ti, rp.tiles[i], [rp.merge_tile], bits, "psum", self.plan)[0]
            if a > t:
                t = a
        adds = self.adds.get(rp.index)
        stages = self.tail[rp.merge_tile]
        if adds is not None:
            stages = [adds, *stages]
        start = t
        _, end = cut_through(stages, t)
        self.ledger.record(start, end, self.kind, 0, 1)
        self.output.position_done(img, pos, end)
        if self.publish:
            self.merged(rp.index, seq).succeed(end)
        return end

    def merged(self, replica: int, seq: int) -> simpy.Event:
        """Event of the merge of the replica's *seq*-th position (value: output-path end)."""
        key = (replica, seq)
        ev = self.events.get(key)
        if ev is None:
            ev = self.events[key] = self.env.event()
        return ev


class GroupReplica:
    """SimPy process of one replica at ``group`` fidelity (see the module docstring)."""

    def __init__(self, env: simpy.Environment, plan, rp, states, waits, room, planes,
                 images: int, merge: ReplicaMerge, arbiter=None) -> None:
        self.env = env
        self.plan = plan
        self.rp = rp
        self.states = states  # LaneState per lane of the replica
        self.waits = waits  # [(arrival progress per image, thresholds)] at its tiles
        self.room = room  # [(released counter, capacity rows, rows per image)]
        self.planes = planes  # ReplicaPlanes of the layer
        self.images = images
        self.merge = merge
        self.arbiter = arbiter  # SharedAdcArbiter when the lanes share ADC pools

    def run(self):
        """Run the replica's groups, position by position, image by image."""
        env, rp, states, merge = self.env, self.rp, self.states, self.merge
        positions = rp.lanes[0].positions
        n = len(positions)
        pos_list = positions.tolist()
        rows = (positions // self.plan.out_w).tolist()
        # the lanes' loads, batched per tile: (memory, [lane index], [bytes])
        batches = []
        for tile in dict.fromkeys(la.tile for la in rp.lanes):
            idx = [i for i, la in enumerate(rp.lanes) if la.tile == tile]
            batches.append((states[idx[0]].memory, idx, [states[i].nbytes for i in idx]))
        loaded = [0.0] * len(states)
        shared = self.arbiter is not None and any(st.pools is not None for st in states)
        behind = deque([_NEG] * merge.depth[rp.index])  # output-path ends, oldest first
        for img in range(self.images):
            per_lane = self.planes.of(img, rp.index)  # [position][lane]
            cur = -1
            for k, pos in enumerate(pos_list):
                row = rows[k]
                if row != cur:
                    cur = row
                    yield from ready_for_row(self.waits, self.room, img, row)
                now = env.now
                for mem, idx, sizes in batches:
                    t = now
                    for i in idx:
                        f = states[i].slots[0]
                        if f > t:
                            t = f
                    for i, e in zip(idx, mem.load_batch(t, sizes), strict=True):
                        loaded[i] = e
                hold = behind.popleft()
                if shared:
                    last = yield self.arbiter.request(states, loaded, per_lane[k], hold)
                    last = max(now, last)
                else:
                    last = now
                    for i, b in enumerate(per_lane[k]):
                        e = states[i].group(loaded[i], b, hold)
                        if e > last:
                            last = e
                behind.append(merge.merge(rp, img, pos, img * n + k, last))


class ReplicaPlanes:
    """A layer's bit planes as [position k][lane] lists per replica, one image at a time.

    Replica r computes positions r, r + R, r + 2R, ...; its lanes are its row blocks in
    order, so its lists are a strided view of the (row blocks, positions) array of an
    image. They are converted for all replicas of an image at once (and kept for the
    one image the replicas are working on at most a few images apart).
    """

    def __init__(self, planes, replicas: int) -> None:
        self.planes = planes  # uint8 (images, row blocks, positions)
        self.replicas = replicas
        self.cache: dict[int, list] = {}

    def of(self, img: int, replica: int) -> list[list[int]]:
        """Bit planes of replica *replica*'s positions in image *img*: [k][row block]."""
        got = self.cache.get(img)
        if got is None:
            import numpy as np

            arr = self.planes[img]
            rb, p = arr.shape
            n = -(-p // self.replicas)
            pad = np.zeros((rb, n * self.replicas), dtype=arr.dtype)
            pad[:, :p] = arr
            got = pad.reshape(rb, n, self.replicas).transpose(2, 1, 0).tolist()
            self.cache = {k: v for k, v in self.cache.items() if k >= img - 2}
            self.cache[img] = got
        return got[replica]


class PlaneMerge:
    """Collects a position's lane conversions (``plane`` fidelity)."""

    def __init__(self, merge: ReplicaMerge) -> None:
        self.merge = merge
        self.pending: dict[tuple[int, int], int] = {}

    def callback(self, rp, n_positions: int):
        """The ``done(img, pos)`` callable of the lanes of replica *rp*."""
        lanes = len(rp.lanes)
        reps = self.merge.plan.replicas

        def done(img: int, pos: int) -> None:
            key = (img, pos)
            left = self.pending.get(key, lanes) - 1
            if left:
                self.pending[key] = left
                return
            self.pending.pop(key, None)
            self.merge.merge(rp, img, pos, img * n_positions + pos // reps,
                             self.merge.env.now)
        return done
