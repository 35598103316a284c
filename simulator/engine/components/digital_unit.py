"""Tile digital units and the non-weight nodes they execute.

Every tile has a shift-and-add unit (partial-sum merges, residual adds, average pools),
activation units, a max-pool unit and an output register; each kind is one
:class:`~simulator.engine.components.server.Server` whose rate is count × values per cycle ×
clock (``components.tile.<unit>``; one value per clock per instance in ISAAC).

- :class:`TileUnits`: the units of one tile.
- :class:`DigitalNode`: a max-pool, average pool, residual add, concat or flatten node.
  Each of its output positions is computed on one tile (``NodePlan.pos_tile``,
  ``mapping.place``); a row waits for its inputs in the eDRAM of every tile that computes
  some of it and for room in its consumers' buffers, then each of those tiles runs its
  share of the row (its positions / the row's) eDRAM read → unit → (activation) → eDRAM
  write, pipelined one value per clock (``cut_through``), all tiles at once; the row is
  done when the last share is. Concat, flatten and the output node are address
  bookkeeping and take no time.
"""

from __future__ import annotations

import simpy

from simulator.engine.components.edram_buffer import ready_for_row
from simulator.engine.components.server import Server, cut_through
from simulator.engine.components.stats import Stats, server_stats
from simulator.model.timing import TILE_UNITS, UNIT_LABELS, TimingRules


class TileUnits:
    """The digital units of one tile, one server per unit kind."""

    def __init__(self, tile: int, rules: TimingRules, clock=None) -> None:
        self.rules = rules
        self.servers = {u: Server(UNIT_LABELS[u], f"tile {tile}", 1, "digital", clock)
                        for u in TILE_UNITS}

    def stage(self, unit: str, values: float, lat: float) -> tuple[Server, float, float]:
        """*values* through *unit* as a ``cut_through`` stage."""
        return (self.servers[unit], self.rules.unit_ns(unit, values), lat)

    def server_list(self) -> list[Server]:
        """Its reservation servers, one per unit kind."""
        return list(self.servers.values())

    def stats(self) -> Stats:
        """Busy time of each unit kind."""
        out = Stats()
        for s in self.servers.values():
            out.merge(server_stats(s))
        return out


class DigitalNode:
    """SimPy process of one non-weight node (see the module docstring)."""

    def __init__(self, env: simpy.Environment, plan, rules: TimingRules, images: int, inputs,
                 room, memory, units, output, ledger, kind: int, trace=None) -> None:
        self.env = env
        self.plan = plan
        self.rules = rules
        self.images = images
        self.inputs = inputs  # inputs(tile) -> [(progress per image, thresholds)]
        self.room = room  # [(released counter, capacity rows, rows per image)]
        self.memory = memory  # memory(tile) -> TileMemory
        self.units = units  # units(tile) -> TileUnits
        self.output = output  # NodeOutput
        self.ledger = ledger
        self.kind = kind  # the ledger id of a row's activity
        self.trace = trace

    def run(self):
        """Process the node's output rows, image by image."""
        env, plan = self.env, self.plan
        cyc = self.rules.cycle_ns
        timed = bool(plan.unit or plan.row_in_bytes or plan.row_out_bytes)
        waits = {t: self.inputs(t) for t in dict.fromkeys(plan.pos_tile.tolist())}
        w = plan.out_w
        for img in range(self.images):
            for row in range(plan.out_h):
                parts = plan.row_parts(row)
                for tile, _ in parts:
                    yield from ready_for_row(waits[tile], (), img, row)
                yield from ready_for_row((), self.room, img, row)
                now = env.now
                end = now
                if timed:
                    for tile, n in parts:  # each tile computes its positions of the row
                        f = n / w
                        mem, units = self.memory(tile), self.units(tile)
                        stages = [mem.read_stage(plan.row_in_bytes * f)]
                        if plan.unit:
                            stages.append(units.stage(plan.unit, plan.row_values * f, cyc))
                        if plan.row_act:
                            stages.append(units.stage("activation", plan.row_act * f, cyc))
                        stages.append(mem.write_stage(plan.row_out_bytes * f, cyc))
                        _, e = cut_through(stages, now)
                        if e > end:
                            end = e
                        if self.trace:
                            self.trace.digital(plan.name, tile, now, e)
                self.ledger.record(now, end, self.kind, 0, 1)
                self.output.row_done(img, row, end)
