"""The precision settings of a scenario, without torch: the pipelines' policy specs
(``pipelines:``), static quantization (``quantization:``), the accuracy path
(``accuracy:``), what each built-in policy needs and which pipelines share a forward pass.

Loading a scenario, keying the artifact cache and simulating a pipeline from cached bit
planes read only this module, so a rerun whose artifacts are all cached never imports torch
(docs/benchmarks.md, "Fixed costs"). The policies themselves (torch code) are in
:mod:`workloads.precision.policies`, which re-exports these names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from simulator.core.config_io import StrictModel

#: the built-in policies (:data:`workloads.precision.policies.BUILTIN` implements them)
BUILTIN_NAMES: tuple[str, ...] = ("static", "zero-skip", "msb-trim", "redy")
#: built-in policies whose window never changes a code (their pipelines share one pass)
LOSSLESS: frozenset[str] = frozenset({"static", "zero-skip", "msb-trim"})
#: the chip's on-line unit each built-in policy needs (docs/precision.md): the lossless ones
#: only the detect unit (an OR tree over the group: its highest set bit, and a zero flag),
#: ReDy its statistics unit (Σx, Σx², max)
ONLINE_UNIT: dict[str, str | None] = {"static": None, "zero-skip": "precision_detect",
                                      "msb-trim": "precision_detect",
                                      "redy": "precision_select"}


def online_unit(policy: str) -> str | None:
    """The on-line unit (``precision_select``, ``precision_detect`` or None) a policy needs;
    a custom policy may use any statistic of the group, so it gets the statistics unit."""
    return ONLINE_UNIT.get(policy, "precision_select")


def import_policy(path: str) -> Callable[..., Any]:
    """The function a custom policy's dotted path ``package.module:function`` names
    (ValueError saying what is wrong otherwise)."""
    mod_name, _, fn_name = path.partition(":")
    if not mod_name or not fn_name:
        raise ValueError(f"policy {path!r}: a custom policy is 'package.module:function'")
    try:
        mod = importlib.import_module(mod_name)
    except Exception as exc:  # noqa: BLE001 - report any import failure to the user
        raise ValueError(f"policy {path!r}: cannot import module {mod_name!r} "
                         f"({type(exc).__name__}: {exc})") from None
    fn = getattr(mod, fn_name, None)
    if fn is None or not callable(fn):
        raise ValueError(f"policy {path!r}: module {mod_name!r} has no function {fn_name!r}")
    return fn


class LayerOverride(StrictModel):
    """Per-layer ReDy parameters (unset fields take the pipeline's value)."""

    k: float | None = Field(None, ge=0)
    epsilon: float | None = Field(None, ge=0)
    min_bits: int | None = Field(None, ge=1, le=16)


class PolicySpec(StrictModel):
    """One precision pipeline: the policy and its parameters (network-wide and per layer)."""

    policy: str = Field(
        "static", description="static | zero-skip | msb-trim | redy | package.module:fn")
    k: float = Field(3.0, ge=0, description="redy: clip level μ + k·σ")
    epsilon: float = Field(0.0, ge=0, description="redy: drop low planes of weight ≤ ε·σ")
    min_bits: int = Field(1, ge=1, le=16, description="redy: fewest (magnitude) planes")
    skip_zero_groups: bool = Field(True, description="all-zero groups stream nothing")
    layers: dict[str, LayerOverride] = Field(
        default_factory=dict, description="per-layer overrides of k, epsilon, min_bits")
    params: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for a custom policy")

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, v: str) -> str:
        if v in BUILTIN_NAMES:
            return v
        if ":" not in v:
            raise ValueError(f"unknown policy {v!r}; valid: {', '.join(BUILTIN_NAMES)} or a "
                             "dotted path 'package.module:function'")
        import_policy(v)
        return v

    def params_for(self, layer: str, module: str | None = None) -> dict[str, Any]:
        """Keyword parameters of the policy for *layer* (override looked up by layer name,
        then by module name)."""
        p: dict[str, Any] = {"k": self.k, "epsilon": self.epsilon, "min_bits": self.min_bits,
                             "skip_zero_groups": self.skip_zero_groups}
        ov = self.layers.get(layer) or (self.layers.get(module) if module else None)
        if ov is not None:
            p.update({key: val for key, val in ov.model_dump().items() if val is not None})
        p.update(self.params)
        return p


def capture_groups(pipelines: Mapping[str, PolicySpec],
                   exact: bool = False) -> list[list[tuple[str, PolicySpec]]]:
    """The forward passes that capture *pipelines*: the lossless built-in pipelines share
    one (their planes are exact functions of the same activations), every other pipeline
    gets its own (its errors propagate through the rest of the network). In the *exact*
    crossbar mode every pipeline gets its own: which planes stream changes what the ADC
    does (a signed group's sign-extension planes, read noise on every plane)."""
    if exact:
        return [[(n, p)] for n, p in pipelines.items()]
    lossless = [(n, p) for n, p in pipelines.items() if p.policy in LOSSLESS]
    return ([lossless] if lossless else []) + [[(n, p)] for n, p in pipelines.items()
                                               if p.policy not in LOSSLESS]


class QuantConfig(StrictModel):
    """Static activation quantization: bit width and scale calibration."""

    bits: int = Field(8, ge=2, le=16, description="static activation precision B")
    calibration: Literal["max", "percentile"] = Field(
        "max", description="scale from max|x| or from a percentile of |x|")
    percentile: float = Field(99.99, gt=0, le=100, description="percentile of |x| (0, 100]")


class AccuracyOptions(StrictModel):
    """How the accuracy path computes each mapped layer (scenario section ``accuracy``)."""

    crossbar: Literal["fast", "exact"] = Field(
        "fast", description="fast: float product of the windowed codes (exact while no column "
        "sum exceeds the ADC's range); exact: bit planes x weight slices x row blocks "
        "through the hardware's ADC (ima.adc_bits, ima.adc_model, ima.adc_noise_lsb)")


__all__ = ["BUILTIN_NAMES", "LOSSLESS", "ONLINE_UNIT", "AccuracyOptions", "LayerOverride",
           "PolicySpec", "QuantConfig", "capture_groups", "import_policy", "online_unit"]
