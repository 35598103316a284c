"""Routes between tiles: the stages (ports, links, off-chip links) a packet crosses and the
routers it traverses, on the concentrated mesh of each chip with XY routes
(``mapping.place.route_between``). Shared by the engine's NoC, the analytic estimate and
the throughput bound, so that all of them route a packet the same way.

The network's input enters at the chip's input port (:data:`PORT`, the input links of
chip 0 at its router 0): a packet from the port holds the port's injection into router 0
(``("io", 0)``), then the links from router 0 to its destination as any packet.
"""

from __future__ import annotations

from dataclasses import dataclass

from mapping.place import route_between

#: the pseudo tile id of the input port (packets of the network's input start there)
PORT = -1


@dataclass(frozen=True)
class NocPath:
    """Stages of a packet from one tile to another, and the routers it traverses."""

    # ("inj", tile) | ("io", 0) | ("link", a, b) | ("offchip", a, b) | ("ej", tile)
    stages: tuple[tuple, ...]
    routers: frozenset[int]
    offchip: bool


class NocTopology:
    """Routes between tiles (shared by the engine, the analytic estimate and the bound)."""

    def __init__(self, hw) -> None:
        self.hw = hw
        self.tiles_per_router = int(hw.chip.tiles_per_router)
        self.tiles_per_chip = int(hw.chip.tiles)
        self.routers_per_chip = -(-self.tiles_per_chip // self.tiles_per_router)
        self._paths: dict[tuple[int, int], NocPath] = {}

    def router(self, tile: int) -> int:
        """Global router id of *tile*."""
        chip, local = divmod(tile, self.tiles_per_chip)
        return chip * self.routers_per_chip + local // self.tiles_per_router

    def path(self, src: int, dst: int) -> NocPath:
        """The stages from tile *src* (or the input :data:`PORT`) to tile *dst* (cached)."""
        key = (src, dst)
        p = self._paths.get(key)
        if p is None:
            port = src == PORT
            if port:  # router 0 of chip 0, where tile 0 attaches
                src = 0
            _, links, off = route_between(src, dst, self.hw)
            stages: list[tuple] = [("io", 0) if port else ("inj", src)]
            routers = {self.router(src)}
            rpc = self.routers_per_chip
            for a, b in links:
                stages.append(("offchip" if a // rpc != b // rpc else "link", a, b))
                routers.update((a, b))
            stages.append(("ej", dst))
            p = NocPath(tuple(stages), frozenset(routers), bool(off))
            self._paths[key] = p
        return p


#: how reports name each kind of stage
STAGE_LABELS = {"inj": "NoC injection port", "ej": "NoC ejection port", "link": "NoC link",
                "offchip": "off-chip link", "io": "NoC input port"}


def stage_where(key: tuple) -> str:
    """Where a stage is, for reports: its tile, its chip (the input port) or its link."""
    if key[0] == "io":
        return f"chip {key[1]}"
    return f"tile {key[1]}" if len(key) == 2 else f"{key[1]}->{key[2]}"
