"""A tile and its IMAs as the engine composes them.

Every component owns its state and reports its own busy time
(:class:`~simulator.engine.components.stats.Stats`); a
:class:`Tile` merges the figures of its eDRAM and bus (``edram_port``), its digital units
(``digital_unit``) and its :class:`Ima` s, and an IMA merges those of its fluid ADC pool
(``group`` fidelity with shared ADCs) and its lanes (``crossbar_lane``); the chip merges
its tiles' and the NoC's (RAMwich-style: stats merged up the hierarchy). The tile's
on-line unit (precision select or detect) works at bus rate and never queues, so it is a
latency (``TimingRules.online_ns``), not a component with a state.
"""

from __future__ import annotations

from simulator.engine.components.adc_pool import FluidAdcPool
from simulator.engine.components.digital_unit import TileUnits
from simulator.engine.components.edram_port import TileMemory
from simulator.engine.components.server import Server
from simulator.engine.components.stats import Stats
from simulator.model.timing import TimingRules


class Ima:
    """The shared units of one IMA (its fluid ADC pool in ``group`` fidelity with shared
    ADCs) and the lanes whose first crossbar is in it."""

    def __init__(self, ima: int, clock) -> None:
        self.ima = ima
        self.clock = clock
        self.pool: FluidAdcPool | None = None
        self.lanes: list = []  # LaneState / PlaneLane whose first crossbar is here

    def fluid_pool(self, size: int) -> FluidAdcPool:
        """The IMA's fluid ADC pool (group fidelity with shared ADCs), made on first use."""
        if self.pool is None:
            self.pool = FluidAdcPool(size, self.clock)
        return self.pool

    def stats(self) -> Stats:
        """Busy time of its lanes and its ADC pool (per ADC)."""
        out = Stats(lanes={st.lane.key: st.busy for st in self.lanes})
        if self.pool is not None:
            out.units[("ADC pool", f"IMA {self.ima}")] = self.pool.busy_ns / self.pool.size
        return out


class Tile:
    """A tile's eDRAM and bus, digital units and IMAs."""

    def __init__(self, tile: int, rules: TimingRules, clock) -> None:
        self.tile = tile
        self.rules = rules
        self.clock = clock
        self.memory = TileMemory(tile, rules, clock)
        self.units = TileUnits(tile, rules, clock)
        self.imas: dict[int, Ima] = {}

    def ima(self, ima: int) -> Ima:
        """IMA *ima* (a global id) of this tile, made on first use."""
        got = self.imas.get(ima)
        if got is None:
            got = self.imas[ima] = Ima(ima, self.clock)
        return got

    def stats(self) -> Stats:
        """Its memory's, units' and IMAs' statistics merged."""
        out = self.memory.stats().merge(self.units.stats())
        for ima in self.imas.values():
            out.merge(ima.stats())
        return out

    def servers(self) -> list[Server]:
        """Every reservation server of the tile (memory and digital units)."""
        return self.memory.servers() + self.units.server_list()
