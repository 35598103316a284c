"""Statistics a component reports about itself, merged up the hierarchy (lane → IMA →
tile → chip; the NoC beside the tiles): busy time per lane, per unit instance and per NoC
port or link."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.engine.components.server import Server


@dataclass
class Stats:
    """Busy time of components: lanes by (layer, replica, row block), units by
    (label, where) per instance, NoC ports and links by their stage key."""

    lanes: dict[tuple[str, int, int], float] = field(default_factory=dict)
    units: dict[tuple[str, str], float] = field(default_factory=dict)
    links: dict[tuple, float] = field(default_factory=dict)

    def merge(self, other: Stats) -> Stats:
        """Add *other*'s entries (disjoint components) to these; returns self."""
        self.lanes.update(other.lanes)
        self.units.update(other.units)
        self.links.update(other.links)
        return self


def server_stats(server: Server) -> Stats:
    """A server's busy time per instance, keyed (label, where)."""
    return Stats(units={(server.label, server.where): server.busy_ns / server.count})
