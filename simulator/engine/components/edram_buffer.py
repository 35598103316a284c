"""Bounded input buffers in the tiles' eDRAM: the producer stalls when one is full.

:func:`ready_for_row` is the one wait every producer process makes before an output row:
for its inputs, then for room in its consumers' buffers and send windows.

A consumer's buffer for a producer holds ``cap_rows`` producer rows (see
``edges.edram_alloc``). The consumer frees rows as its own output rows complete:
rows below its next window (sliding-window ops), the rows it has consumed (joins never
bound), or the whole map when it finishes (flatten / linear). Freed rows are counted
across images, so the buffer is circular over the image stream.
"""

from __future__ import annotations

import simpy

from simulator.core.errors import SimulationError
from simulator.model.dataflow import FeatureMapProgress, RowCounter
from simulator.model.plan import EdgePlan, NodePlan


class InputBuffers:
    """Released-row counters of every bounded edge, grouped by producer."""

    def __init__(self, env: simpy.Environment, images: int) -> None:
        self.env = env
        self.images = images
        self.by_producer: dict[str, list[tuple[RowCounter, int, int]]] = {}

    def bound(self, producer: NodePlan, consumer: NodePlan, ep: EdgePlan,
              consumed: list[FeatureMapProgress]) -> None:
        """Bound edge *ep*: check it can hold one window and track the rows freed."""
        u, v, h_u = ep.producer, ep.consumer, producer.out_h
        window = (ep.kernel - 1) * ep.dilation + 1
        need = {"window": min(window, h_u), "row": 1, "image": h_u}[ep.release]
        if ep.cap_rows < need:
            raise SimulationError(
                f"eDRAM buffer too small: {v} needs {need} row(s) of {u} "
                f"({need * ep.row_bytes:.0f} bytes) in its tiles' eDRAM, but its share holds "
                f"{ep.cap_rows} row(s); raise tile.edram_bytes in the hardware file or set "
                "mapping.tile_aligned: true (no two layers share a tile's eDRAM)")
        counter = RowCounter(self.env)
        self.by_producer.setdefault(u, []).append((counter, ep.cap_rows, h_u))
        w_v, p_v = consumer.out_w, consumer.positions
        for img in range(self.images):
            def on_consumed(old: int, new: int, img: int = img) -> None:
                if new >= p_v:
                    freed = h_u
                else:
                    rows_v = new // w_v
                    if ep.release == "window":
                        freed = rows_v * ep.stride - ep.pad
                    elif ep.release == "row":
                        freed = rows_v
                    else:
                        freed = 0
                counter.advance(img * h_u + max(0, min(h_u, freed)))

            consumed[img].listeners.append(on_consumed)

    def of(self, producer: str) -> list[tuple[RowCounter, int, int]]:
        """(released counter, capacity rows, producer rows per image) of its bounded edges."""
        return self.by_producer.get(producer, [])



def row_ready(waits, room, img: int, row: int) -> bool:
    """Whether :func:`ready_for_row` would not wait at all (levels only rise, so the
    group engine calls that generator only when this is False: most rows are ready)."""
    for progs, thr in waits:
        if progs[img].level < thr[row]:
            return False
    for counter, cap, h in room:
        if counter.level < img * h + row - cap + 1:
            return False
    return True


def ready_for_row(waits, room, img: int, row: int):
    """Wait until output row *row* of image *img* may start (use with ``yield from``).

    First for its inputs: every ``(arrival progress per image, thresholds)`` of *waits*
    (the producers' rows in the tile's eDRAM, ``thresholds[row]`` leading positions), then
    for room: every ``(released counter, capacity rows, producer rows per image)`` of
    *room* (the consumers' buffers and the send windows) must have released the row that
    the new one would overwrite, ``img * rows + row - capacity``.
    """
    for progs, thr in waits:
        need = thr[row]
        prog = progs[img]
        if prog.level < need:
            yield prog.wait(need)
    for counter, cap, h in room:
        need = img * h + row - cap + 1
        if counter.level < need:
            yield counter.wait(need)
