"""ISAAC-style replication: balance the inter-layer pipeline within a crossbar budget."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

from mapping.errors import MappingError

__all__ = ["replicate"]


def _items(layers: Iterable[Any] | Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """``(name, crossbars per replica, positions)`` of each layer, in graph order."""
    objs = layers.values() if isinstance(layers, Mapping) else layers
    return [(o.name, int(o.crossbars), max(int(o.positions), 1)) for o in objs]


def replicate(
    layers: Iterable[Any] | Mapping[str, Any],
    crossbar_budget: int,
    pinned: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Replica count per layer (greedy ISAAC balancing).

    *layers* are objects with ``name``, ``crossbars`` (per replica) and ``positions``
    (output positions per image) in graph order (a list or a name-keyed dict).  The time
    of a layer per image is taken ∝ ``positions / replicas``.  Starting from one replica
    (or the pinned count), while crossbars remain one more replica goes to the current
    bottleneck layer (ties go to the later layer: work back from the last layer); the
    loop stops when the bottleneck cannot get another replica (pinned, already one
    replica per position, or not enough crossbars left).  Never exceeds the budget.
    """
    pinned = dict(pinned or {})
    items = _items(layers)
    reps = {name: int(pinned.get(name, 1)) for name, _, _ in items}
    used = sum(x * reps[n] for n, x, _ in items)
    if used > crossbar_budget:
        raise MappingError(
            f"the layers need {used} crossbars at their minimum replica counts, "
            f"the budget is {crossbar_budget}"
        )
    left = crossbar_budget - used
    # max-heap on time per image; ties -> later layer (larger index first)
    heap = [(-p / reps[n], -i) for i, (n, _, p) in enumerate(items)]
    heapq.heapify(heap)
    while heap:
        _, neg_i = heapq.heappop(heap)
        name, xbars, pos = items[-neg_i]
        if name in pinned or reps[name] >= pos or xbars > left:
            break
        reps[name] += 1
        left -= xbars
        heapq.heappush(heap, (-pos / reps[name], neg_i))
    return reps
