"""Routes between tiles: the stages (ports, links, off-chip links) a packet crosses and the
routers it traverses, on the concentrated mesh of each chip with XY routes
(``mapping.place.route_between``). Shared by the engine's NoC, the analytic estimate and
the throughput bound, so that all of them route a packet the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from mapping.place import route_between


@dataclass(frozen=True)
class NocPath:
    """Stages of a packet from one tile to another, and the routers it traverses."""

    stages: tuple[tuple, ...]  # ("inj", tile) | ("link", a, b) | ("offchip", a, b) | ("ej", tile)
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
        """The stages from tile *src* to tile *dst* (cached)."""
        key = (src, dst)
        p = self._paths.get(key)
        if p is None:
            _, links, off = route_between(src, dst, self.hw)
            stages: list[tuple] = [("inj", src)]
            routers = {self.router(src)}
            rpc = self.routers_per_chip
            for a, b in links:
                stages.append(("offchip" if a // rpc != b // rpc else "link", a, b))
                routers.update((a, b))
            stages.append(("ej", dst))
            p = NocPath(tuple(stages), frozenset(routers), bool(off))
            self._paths[key] = p
        return p
