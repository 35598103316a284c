"""The timing outcome of one pipeline, whichever fidelity produced it (the event engine
or the analytic estimate)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EngineResult:
    """Timing outcome of one simulated pipeline."""

    image_done_ns: list[float]
    end_ns: float
    lane_busy_ns: dict[tuple[str, int, int], float]  # (layer, replica, row block) → busy
    link_busy_ns: dict[tuple, float] = field(default_factory=dict)  # NoC port/link → busy
    unit_busy_ns: dict[tuple[str, str], float] = field(default_factory=dict)  # (unit, where)
    noc_traffic: dict[str, dict[str, float]] = field(default_factory=dict)
    #: when each image started to enter the chip (its first input byte on the input link)
    image_in_ns: list[float] = field(default_factory=list)
    #: per graph node, when it finished each image (its last output row)
    node_done_ns: dict[str, list[float]] = field(default_factory=dict)
    #: per image, the end of the last group of the lane the engine was asked to watch
    watched_ns: list[float] = field(default_factory=list)
    #: per image, how long the watched NoC port or link was reserved for that image's
    #: packets (empty for a watched lane: a lane serves its images in order)
    watched_busy_ns: list[float] = field(default_factory=list)
