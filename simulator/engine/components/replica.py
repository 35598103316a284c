"""A layer replica: its lanes and the merge of their partial sums (the tile output path).

When the last row block of an output position is converted, each tile that holds some of
the replica's row blocks adds their partial sums on its shift-and-add unit, and the
tiles other than the merge tile (the tile of the replica's first crossbar) send their
sums over the NoC (``psum_bits`` per channel). The merge tile adds what arrives, then the
position's values flow through its activation units (layers with a fused activation),
its output register and an eDRAM bank write, pipelined one value per clock
(``cut_through``). The position is complete when the write ends.

Partial sums reach the tile's adders over its eDRAM-to-IMA bus from the IMA output
registers (``ima.output_register_bytes`` each): a lane's results wait in its IMA's register
until the bus takes them, and the IMA's adders (shift-and-add), which accumulated them,
hold what the register cannot. ``or_delay`` is how long after its own end a lane's adders
were held: the bus transfer's queueing (its start − the merge) plus, when the IMA's results
of the position exceed its register, the time the bus takes for the excess. A lane's next
group converts its first plane (r + c after its first read) no earlier than its previous
end + ``or_delay``: that binds only when ``or_delay`` > r, i.e. under a congested bus.

A position's values wait in the tile output register (``tile.output_register_bytes``)
from the merge until their eDRAM write; the register is shared by the replicas that
merge on the tile, so a replica holds at most D = max(2, its share / position bytes)
positions there: its lanes start streaming position k only after position k − D left the
output path (a slow output path throttles the crossbars instead of queueing without
bound).

- :class:`ReplicaMerge` (both fidelities): the output path of every replica of a layer.
  In both fidelities a merge runs at the simulated time the position's last lane
  finished (``group`` fidelity: a timeout the replica's process schedules when it has
  computed the position), so the tile bus, adders, NoC and output path are asked in time
  order with the other replicas' merges, as FIFO resources would serve them.
- :class:`GroupReplica` (``group`` fidelity): one SimPy process per replica runs its
  lanes' groups position by position
  (:class:`~simulator.engine.components.crossbar_lane.LaneState`), loading the groups of its
  lanes on one tile together (``TileMemory.load_batch``); it waits for input rows and
  buffer room (per output row) and for the output path of position k − D.
- :class:`PlaneMerge` (``plane`` fidelity): collects the lanes' conversions of a position
  and merges it when the last lane is done.
"""

from __future__ import annotations

import simpy

from simulator.engine.components.edram_buffer import ready_for_row, row_ready
from simulator.model.event_loop import call_later

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
        bus_rate = rules.bus_bytes_per_ns
        #: per replica: the bus stage of its lanes' partial sums at each of its tiles, and
        #: the time the bus takes for what the fullest IMA there cannot hold in its output
        #: register (``or_delay``)
        self.bus: dict[int, list] = {}
        self.spill: dict[int, list[float]] = {}
        for rp in plan.replica_plans:
            self.bus[rp.index] = [(memory(t).bus, rp.bus_bytes[i] / bus_rate, 0.0)
                                  for i, t in enumerate(rp.tiles)]
            per_ima: dict[tuple[int, int], float] = {}  # (tile index, IMA) -> bytes
            for la, ti in zip(rp.lanes, rp.lane_tile, strict=True):
                key = (ti, la.parts[0].ima)
                per_ima[key] = per_ima.get(key, 0.0) + la.outputs * rules.psum_bytes
            self.spill[rp.index] = [
                max([0.0] + [b - rules.ima_register_bytes for (ti, _), b in per_ima.items()
                             if ti == i]) / bus_rate for i in range(len(rp.tiles))]
        self.cyc = cyc
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
                (i, units(t).stage("tile_shift_add", rp.merges[i], cyc) if rp.merges[i]
                 else None, rp.psum_bits[i])
                for i, t in enumerate(rp.tiles) if i]
        self.or_delay = 0.0  # after the last merge: see the module docstring
        self._paths: dict[int, tuple] = {}  # replica -> its stages, flattened (``merge``)

    def merge(self, rp, img: int, pos: int, seq: int, t: float) -> float:
        """The last lane of position *pos* of replica *rp* converted at *t*: merge it.

        Each tile's partial sums cross its bus from the IMA output registers, a remote
        tile adds its own and sends them to the merge tile, which adds them all and runs
        the output path. Returns when the position's output path ends (its eDRAM write);
        ``or_delay`` is left at how long the lanes' adders were held after their ends.
        """
        t0 = t
        paths = self._paths.get(rp.index)
        if paths is None:
            paths = self._paths[rp.index] = self._path_of(rp)
        remote, bus0, bus_ns0, spill0, adds, tail, merge_tile = paths
        delay = 0.0
        for bus, bus_ns, spill, srv, dur, lat, src, bits in remote:
            bs, be = bus.reserve(t0, bus_ns)
            if bs - t0 + spill > delay:
                delay = bs - t0 + spill
            ti = be if srv is None else srv.reserve(bs + lat, dur, be + lat)[1]
            a = self.noc.send_one(ti, src, merge_tile, bits, "psum", self.plan, img=img)
            if a > t:
                t = a
        s_prev, e_prev = bus0.reserve(t0, bus_ns0)
        if s_prev - t0 + spill0 > delay:
            delay = s_prev - t0 + spill0
        if t > t0:  # the remote sums arrive later: the adds wait for them
            cyc = self.cyc
            if t - cyc > s_prev:
                s_prev = t - cyc
            if t - cyc > e_prev:
                e_prev = t - cyc
        if adds is not None:
            s_prev, e_prev = adds[0].reserve(s_prev + adds[2], adds[1], e_prev + adds[2])
        for server, dur, lat in tail:
            s_prev, e_prev = server.reserve(s_prev + lat, dur, e_prev + lat)
        end = e_prev
        self.or_delay = delay
        self.ledger.record(t0, end, self.kind, 0, 1)
        self.output.position_done(img, pos, end)
        if self.publish:
            self.merged(rp.index, seq).succeed((end, delay))
        return end

    def _path_of(self, rp) -> tuple:
        """The stages ``merge`` runs for replica *rp*, flattened: ([(bus, bus ns, spill,
        S+A server or None, its ns, its lat, source tile, bits)] of the remote tiles, the
        merge tile's bus, bus ns and spill, its S+A stage, the tail, the merge tile)."""
        bus, spill = self.bus[rp.index], self.spill[rp.index]
        remote = []
        for i, adds, bits in self.remote[rp.index]:
            srv, dur, lat = adds if adds is not None else (None, 0.0, 0.0)
            remote.append((bus[i][0], bus[i][1], spill[i], srv, dur, lat, rp.tiles[i], bits))
        return (remote, bus[0][0], bus[0][1], spill[0], self.adds.get(rp.index),
                self.tail[rp.merge_tile], rp.merge_tile)

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
        # tile -> [(arrival progress per image, thresholds)]: the inputs at each of its
        # lanes' tiles
        self.waits = waits
        self.all_waits = [w for ws in waits.values() for w in ws]
        self.room = room  # [(released counter, capacity rows, rows per image)]
        self.planes = planes  # ReplicaPlanes of the layer
        self.images = images
        self.merge = merge
        self.arbiter = arbiter  # SharedAdcArbiter when the lanes share ADC pools

    def run(self):
        """Run the replica's groups, position by position, image by image."""
        # the group engine's inner loop: the loads and the fast lanes' group rule
        # (``LaneState.group``) are written out here, with the same arithmetic (issue 20)
        env, rp, states, merge = self.env, self.rp, self.states, self.merge
        positions = rp.lanes[0].positions
        n = len(positions)
        pos_list = positions.tolist()
        rows = (positions // self.plan.out_w).tolist()
        # the lanes' loads, batched per tile: (memory, [lane index], load plan, inputs there)
        batches = []
        for tile in dict.fromkeys(la.tile for la in rp.lanes):
            idx = [i for i, la in enumerate(rp.lanes) if la.tile == tile]
            mem = states[idx[0]].memory
            batches.append((mem, idx, mem.batch_plan([states[i].nbytes for i in idx]),
                            self.waits[tile]))
        arrived = [0.0] * len(batches)  # when the current row's inputs reached each tile
        loaded = [0.0] * len(states)
        shared = self.arbiter is not None and any(st.pools is not None for st in states)
        depth = merge.depth[rp.index]
        ends: dict[int, float] = {}  # position sequence -> its output-path end, once merged
        waiting: dict[int, simpy.Event] = {}  # sequences the process waits to see merged
        last_delay = [-1, 0.0]  # the latest merge: its sequence and ``or_delay``
        r = states[0].r
        all_waits, room = self.all_waits, self.room
        do_merge = merge.merge

        def merged(seq: int, img: int, pos: int, t: float) -> None:
            """Merge a position at *t*, the simulated time its last lane converted."""
            ends[seq] = do_merge(rp, img, pos, seq, t)
            last_delay[0], last_delay[1] = seq, merge.or_delay
            ev = waiting.pop(seq, None)
            if ev is not None:
                ev.succeed()

        def merged_at(entry) -> None:
            """The merge of a position whose last lane converts later (``call_later``)."""
            merged(*entry.arg)

        # per lane: (state, its group is the closed form (an ADC per crossbar, c <= r, no
        # trace), its register slots, the on-line unit's latency, c, its records' append,
        # its ledger kind)
        lanes = [(st, st.fast and not st.trace, st.slots, st.unit_ns, st.c, st.rec, st.kind)
                 for st in states]
        queues = [st.slots for st in states]
        one_tile = len(batches) == 1
        load0, plan0 = batches[0][0].load_planned, batches[0][2]
        for img in range(self.images):
            per_lane = self.planes.of(img, rp.index)  # [position][lane]
            cur = -1
            for k, pos in enumerate(pos_list):
                row = rows[k]
                seq = img * n + k
                if row != cur:
                    cur = row
                    if not row_ready(all_waits, room, img, row):
                        yield from ready_for_row(all_waits, room, img, row)
                    # a tile's lanes load as soon as the row is there (and there is room),
                    # as plane fidelity's loaders do, not when the last tile has it
                    room_at = 0.0
                    for counter, cap, h in room:
                        need = img * h + row - cap + 1
                        if need > 0:
                            a = counter.reached_at(need)
                            if a > room_at:
                                room_at = a
                    for j, batch in enumerate(batches):
                        t = room_at
                        for progs, thr in batch[3]:
                            need = thr[row]
                            if need:
                                a = progs[img].reached_at[need - 1]
                                if a > t:
                                    t = a
                        arrived[j] = t
                now = env._now
                if one_tile:  # the replica's lanes all on one tile
                    t = arrived[0]
                    for q in queues:
                        if q[0] > t:
                            t = q[0]
                    loaded = load0(t, plan0)
                else:
                    for j, (mem, idx, plan, _) in enumerate(batches):
                        t = arrived[j]
                        for i in idx:
                            f = queues[i][0]
                            if f > t:
                                t = f
                        for i, e in zip(idx, mem.load_planned(t, plan), strict=True):
                            loaded[i] = e
                # the lanes start position k once position k - depth left the output path
                if seq >= depth:
                    if seq - depth not in ends:
                        ev = waiting[seq - depth] = env.event()
                        yield ev
                    hold = ends.pop(seq - depth)
                else:
                    hold = _NEG
                if last_delay[0] == seq - 1 and last_delay[1] > r:
                    # rare: a congested bus held the adders after the previous position (its
                    # next first read waits until its end + delay − (r + c))
                    for st in states:
                        h = st.prev_end + last_delay[1] - st.r - st.c
                        if h > hold:
                            hold = h
                if shared:
                    last = yield self.arbiter.request(states, loaded, per_lane[k], hold)
                    last = max(now, last)
                else:
                    last = now
                    i = 0
                    for b in per_lane[k]:
                        st, fast, slots, unit, c, rec, kind = lanes[i]
                        if b and fast:  # ``LaneState.group``, fast case
                            slots.popleft()
                            x = loaded[i] + unit
                            if st.reader_free > x:
                                x = st.reader_free
                            if hold > x:
                                x = hold
                            first = x + r
                            if first < st.conv_free:
                                first = st.conv_free
                            e = first + c + (b - 1) * r
                            st.conv_free = e
                            st.take = st.reader_free = e - c
                            slots.append(e)
                            pe = st.prev_end
                            st.busy += e - (x if x > pe else pe)
                            st.prev_end = e
                            rec((x, e, kind, b))
                        else:
                            e = st.group(loaded[i], b, hold)
                        if e > last:
                            last = e
                        i += 1
                # merged at the simulated time its last lane converted, as in plane
                # fidelity, so the bus, adders, NoC and output path are asked in time
                # order with the other replicas' merges
                t_now = env._now
                if last > t_now:
                    call_later(env, last - t_now, merged_at, (seq, img, pos, last))
                else:
                    merged(seq, img, pos, last)
            for st in states:
                if st.image_end is not None:  # a watched lane: its image is done
                    st.image_end.append(st.prev_end)


class ReplicaPlanes:
    """A layer's bit planes as [position k][lane] lists per replica, one image at a time.

    Replica r computes the positions of its lanes' ``positions`` (``mapping.place``); its
    lanes are its row blocks in order. The lists are made for all replicas of an image at
    once (and kept for the one image the replicas are working on at most a few images
    apart).
    """

    def __init__(self, planes, replica_positions) -> None:
        self.planes = planes  # uint8 (images, row blocks, positions)
        self.positions = replica_positions  # [replica] -> its positions
        self.cache: dict[int, list] = {}

    def of(self, img: int, replica: int) -> list[list[int]]:
        """Bit planes of replica *replica*'s positions in image *img*: [k][row block]."""
        got = self.cache.get(img)
        if got is None:
            arr = self.planes[img]
            got = [arr[:, pos].T.tolist() for pos in self.positions]
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
        index = self.merge.plan.pos_index  # a position's index in its replica's list

        def done(img: int, pos: int) -> None:
            key = (img, pos)
            left = self.pending.get(key, lanes) - 1
            if left:
                self.pending[key] = left
                return
            self.pending.pop(key, None)
            self.merge.merge(rp, img, pos, img * n_positions + int(index[pos]),
                             self.merge.env.now)
        return done
