"""The exact crossbar mode's parameters, without torch (DESIGN §10, docs/precision.md §6):
the crossbar geometry and cells, the weights' bits and encoding, the ADC's resolution,
transfer function and read noise (:class:`CrossbarModel`), its cache key and the figures
the run's progress line reports.

Keying the artifact cache and describing the mode read only this module, so a rerun or a
sweep point in the exact mode whose artifacts are all cached never imports torch
(docs/benchmarks.md, "Fixed costs"). The mode itself (torch code) is in
:mod:`workloads.precision.crossbar`, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from simulator.core.column_sum import adc_bits_never_clip

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["ADC_MODELS", "CrossbarModel"]

#: transfer functions of the ADC (``ima.adc_model`` in the hardware YAML)
ADC_MODELS = ("ideal", "calibrated")


@dataclass(frozen=True)
class CrossbarModel:
    """The crossbar and ADC parameters the exact mode needs (built from the hardware spec
    by the runner; workloads/ does not import the hardware package).

    ``lsb``: the calibrated ADC's level size per layer, in units of column sum (set on the
    calibration images by :func:`workloads.precision.passes.calibrate_adc`); ``force``
    computes every streamed plane exactly, skipping nothing (tests of the skipping rule).
    """

    rows: int
    cols: int
    cell_bits: int
    weight_bits: int
    unit_column: bool
    flip_encoding: bool
    adc_bits: int
    adc_model: str = "ideal"
    range_percentile: float = 100.0
    noise_lsb: float = 0.0
    noise_seed: int = 0
    lsb: Mapping[str, float] | None = None
    force: bool = False

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "cell_bits", "weight_bits", "adc_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"crossbar model: {name} must be a positive integer (got {v!r})")
        if self.adc_model not in ADC_MODELS:
            raise ValueError(f"crossbar model: adc_model must be one of {', '.join(ADC_MODELS)} "
                             f"(got {self.adc_model!r})")
        if not 0 < self.range_percentile <= 100:
            raise ValueError("crossbar model: range_percentile must be in (0, 100] "
                             f"(got {self.range_percentile})")
        if not self.noise_lsb >= 0:
            raise ValueError(f"crossbar model: noise_lsb must be >= 0 (got {self.noise_lsb})")
        if self.cell_bits > self.weight_bits:
            raise ValueError(f"crossbar model: cell_bits ({self.cell_bits}) must be <= "
                             f"weight_bits ({self.weight_bits})")
        if self.per_crossbar < 1:
            raise ValueError(f"crossbar model: a {self.weight_bits}-bit weight does not fit in "
                             f"{self.cols} columns")

    @property
    def slices(self) -> int:
        """Cells (adjacent columns) per weight: ⌈weight_bits / cell_bits⌉."""
        return -(-self.weight_bits // self.cell_bits)

    @property
    def per_crossbar(self) -> int:
        """Whole weights one crossbar holds (the unit column excluded)."""
        return (self.cols - (1 if self.unit_column else 0)) // self.slices

    @property
    def top_code(self) -> int:
        """The ADC's largest output code, 2^N − 1."""
        return (1 << self.adc_bits) - 1

    @property
    def never_clip_bits(self) -> int:
        """ADC bits at which no column sum of a ``rows``-row crossbar can clip
        (:func:`simulator.core.column_sum.adc_bits_never_clip`)."""
        return adc_bits_never_clip(self.rows, self.cell_bits, self.flip_encoding,
                                   unit_column=self.unit_column)

    @property
    def calibrated(self) -> bool:
        """The ADC's range is set on the calibration images."""
        return self.adc_model == "calibrated"

    def layer_lsb(self, layer: str) -> float:
        """Level size of *layer*'s ADC in units of column sum (1 unless calibrated)."""
        if not self.calibrated:
            return 1.0
        if self.lsb is None or layer not in self.lsb:
            raise ValueError(f"layer {layer}: the calibrated ADC has no range (run "
                             "calibrate_adc on the calibration images first)")
        return float(self.lsb[layer])

    def with_lsb(self, lsb: Mapping[str, float]) -> CrossbarModel:
        """This model with the calibrated level sizes *lsb* (layer → column-sum units)."""
        return replace(self, lsb=dict(lsb))

    def key(self) -> dict[str, Any]:
        """Everything that changes the mode's result (for caches)."""
        return {"rows": self.rows, "cols": self.cols, "cell_bits": self.cell_bits,
                "weight_bits": self.weight_bits, "unit_column": self.unit_column,
                "flip_encoding": self.flip_encoding, "adc_bits": self.adc_bits,
                "adc_model": self.adc_model, "range_percentile": self.range_percentile,
                "noise_lsb": self.noise_lsb, "noise_seed": self.noise_seed,
                "lsb": dict(sorted(self.lsb.items())) if self.lsb else None,
                "force": self.force}

    def convert(self, s: torch.Tensor, lsb: float = 1.0,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """The ADC's transfer function on column sums *s*: the reading ``s`` (plus
        ``noise_lsb · lsb · noise`` when *noise*, standard normal, is given) rounded half up
        to a multiple of *lsb*, clipped to ``[0, (2^N − 1) · lsb]``. (Tensor methods only:
        this module does not import torch.)"""
        x = s if noise is None else s + noise * (self.noise_lsb * lsb)
        code = (x / lsb + 0.5).floor() if lsb != 1.0 else (x + 0.5).floor()
        code = code.clamp_(0, self.top_code)
        return code if lsb == 1.0 else code * lsb
