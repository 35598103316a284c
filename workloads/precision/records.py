"""What the capture hands on: the grouped layers (:class:`LayerSpec`), every group's bit
window and its statistics per layer (:class:`LayerPrecision`) and per pipeline
(:class:`PipelinePrecision`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from simulator.core.loaded_modules import loaded
from workloads.precision.options import PolicySpec


@dataclass
class LayerSpec:
    """A layer whose input is grouped: module name, kind, row blocks, input signedness."""

    module: str
    kind: Literal["conv", "linear"]
    row_ranges: list[tuple[int, int]]
    signed_input: bool = False


@dataclass
class LayerPrecision:
    """Bit windows of one layer's activation groups and their statistics.

    ``planes``/``low``: uint8 ``(kept images, n_row_blocks, positions)`` in the order of the
    LayerSpec's ``row_ranges`` (the first ``keep_images`` measured images; the simulation
    streams them). Statistics over *all* measured images: ``hist[b]`` = groups streaming b
    planes; ``mean_bits`` = mean planes per group; ``saturated_fraction`` = nonzero im2col
    values clipped by the window's top; ``zero_group_fraction`` = all-zero groups;
    ``rel_rms_error`` = ‖windowed − static codes‖ / ‖static codes‖ over im2col values.
    Per image and row block (int64 ``(measured images, n_row_blocks)``): ``image_planes``
    = planes streamed, ``image_zero_groups`` = all-zero groups, ``image_msb_planes`` =
    planes msb-trim would stream for the activations this pipeline saw; ``positions`` =
    groups per image and row block.
    """

    planes: np.ndarray
    low: np.ndarray
    hist: np.ndarray
    mean_bits: float
    saturated_fraction: float
    zero_group_fraction: float
    rel_rms_error: float
    image_planes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    image_zero_groups: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    image_msb_planes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    positions: int = 0


@dataclass
class PipelinePrecision:
    """One pipeline's policy, per-layer windows and (optionally) accuracy and logits.

    ``logits``: a torch tensor (measured images, outputs). Pickled as a numpy array, so
    that reading a record (the artifact cache, a forked worker's result) never imports
    torch: read back in a process that has imported torch they are a tensor again, in one
    that has not (a rerun from the cache) a numpy array.
    """

    policy: PolicySpec
    layers: dict[str, LayerPrecision]
    accuracy: float | None = None
    logits: Any = None
    top5: float | None = None
    images: int = 0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        lg = state.get("logits")
        if lg is not None and not isinstance(lg, np.ndarray):  # a torch tensor
            state["logits"] = lg.detach().cpu().numpy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        lg = state.get("logits")
        torch = loaded("torch")  # (not a torch another thread is still importing)
        if isinstance(lg, np.ndarray) and torch is not None:
            state = {**state, "logits": torch.from_numpy(lg)}
        self.__dict__.update(state)

    def image_mean_bits(self) -> np.ndarray:
        """Mean planes per group of each measured image (over all layers)."""
        if not self.layers:
            return np.zeros(0)
        planes = sum(lp.image_planes.sum(axis=1) for lp in self.layers.values())
        groups = sum(lp.positions * lp.image_planes.shape[1] for lp in self.layers.values())
        return np.asarray(planes, dtype=float) / max(groups, 1)
