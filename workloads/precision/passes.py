"""The forward passes of a run's pipelines: which pipelines share a pass
(:func:`capture_groups`), one pass with every grouped layer replaced by its
:class:`~workloads.precision.capture.LayerRunner` (:func:`run_pipeline`), and all of them,
in forked workers when asked (:func:`compute_precision`); the calibration of the exact
crossbar mode's ADC ranges (:func:`calibrate_adc`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from simulator.core.workers import run_parallel
from workloads.errors import WorkloadError
from workloads.precision.capture import LayerRunner
from workloads.precision.crossbar import CrossbarModel, lsb_from_hist
from workloads.precision.metrics import top1, topk
from workloads.precision.options import capture_groups  # noqa: F401 - re-exported
from workloads.precision.policies import PolicySpec
from workloads.precision.quantize import QuantConfig
from workloads.precision.records import LayerSpec, PipelinePrecision


def _check_overrides(layers: Mapping[str, LayerSpec], pname: str, pspec: PolicySpec) -> None:
    known = set(layers) | {s.module for s in layers.values()}
    unknown = sorted(set(pspec.layers) - known)
    if unknown:
        raise WorkloadError(
            f"pipeline {pname}: layers: unknown layer(s) {', '.join(unknown)}; known: "
            f"{', '.join(layers)}")


def _on_device(model: nn.Module, device: torch.device | str | None) -> nn.Module:
    """*model* itself on the CPU, else a copy moved to *device* (the caller's stays put)."""
    if device is None or torch.device(device).type == "cpu":
        return model
    return copy.deepcopy(model).to(device)


@torch.no_grad()
def _run_pass(model: nn.Module, layers: Mapping[str, LayerSpec], inputs: torch.Tensor,
              scales: Mapping[str, float], qcfg: QuantConfig,
              pipes: Sequence[tuple[str, PolicySpec]], labels: torch.Tensor | None,
              batch_size: int, keep_images: int | None,
              weight_bits: int | None, crossbar: CrossbarModel | None = None,
              device: torch.device | str | None = None,
              collect: bool = False) -> dict[str, PipelinePrecision]:
    """One forward pass serving *pipes* (one lossy pipeline, or lossless ones sharing it).

    *crossbar*: the exact crossbar mode (one pipeline per pass); *collect*: record each
    layer's column sums for the ADC calibration instead (``runners`` are then returned
    under the key ``"_runners"`` of the result). *device*: where the pass runs."""
    for pname, pspec in pipes:
        _check_overrides(layers, pname, pspec)
    model = _on_device(model, device)
    model.eval()
    runners: dict[str, LayerRunner] = {}
    patched: list[nn.Module] = []
    try:
        for lname, spec in layers.items():
            try:
                mod = model.get_submodule(spec.module)
            except AttributeError:
                raise WorkloadError(f"layer {lname}: no submodule named {spec.module!r}") from None
            if lname not in scales:
                raise WorkloadError(f"layer {lname}: no calibrated scale")
            if "forward" in mod.__dict__:
                raise WorkloadError(f"layer {lname}: module {spec.module!r} is listed twice")
            r = LayerRunner(lname, spec, mod, scales[lname], qcfg, list(pipes), keep_images,
                            weight_bits, crossbar, collect)
            runners[lname] = r
            # the instance attribute shadows the class's forward: hooks still run, the
            # original computation does not
            mod.forward = r  # type: ignore[method-assign]
            patched.append(mod)
        outs = []
        for i in range(0, len(inputs), batch_size):
            before = {n: r.calls for n, r in runners.items()}
            x = inputs[i:i + batch_size]
            outs.append(model(x if device is None else x.to(device)).cpu())
            twice = [n for n, r in runners.items() if r.calls - before[n] > 1]
            if twice:
                raise WorkloadError(f"layer(s) {', '.join(twice)} called more than once per "
                                    "forward pass (shared modules are not supported)")
    finally:
        for mod in patched:
            del mod.forward
    if collect:
        return {"_runners": runners}  # type: ignore[dict-item]
    logits = torch.cat(outs) if outs else None
    acc = top1(logits, labels) if labels is not None and logits is not None else None
    acc5 = topk(logits, labels, 5) if labels is not None and logits is not None else None
    res = {}
    for ci, (pname, pspec) in enumerate(pipes):
        res[pname] = PipelinePrecision(
            policy=pspec, layers={n: r.result(r.consumers[ci]) for n, r in runners.items()},
            accuracy=acc, logits=logits, top5=acc5, images=len(inputs))
    return res


def run_pipeline(model: nn.Module, layers: Mapping[str, LayerSpec], inputs: torch.Tensor,
                 scales: Mapping[str, float], qcfg: QuantConfig, pspec: PolicySpec,
                 labels: torch.Tensor | None = None, name: str = "pipeline",
                 batch_size: int = 64, keep_images: int | None = None,
                 weight_bits: int | None = None, crossbar: CrossbarModel | None = None,
                 device: torch.device | str | None = None) -> PipelinePrecision:
    """One pipeline: forward pass with every listed layer windowed by *pspec*.

    *keep_images*: keep the bit-plane arrays of only the first N images (statistics still
    cover all); *weight_bits*: quantize the layers' weights as the chip does (None: float);
    *crossbar*: the exact crossbar mode (:mod:`workloads.precision.crossbar`).
    """
    return _run_pass(model, layers, inputs, scales, qcfg, [(name, pspec)], labels,
                     batch_size, keep_images, weight_bits, crossbar, device)[name]


def calibrate_adc(model: nn.Module, layers: Mapping[str, LayerSpec],
                  calib_inputs: torch.Tensor, scales: Mapping[str, float], qcfg: QuantConfig,
                  crossbar: CrossbarModel, batch_size: int = 64,
                  device: torch.device | str | None = None) -> dict[str, float]:
    """Level size of each layer's calibrated ADC (column-sum units), set on the
    *calib_inputs*: a static pass (every plane) records every column sum of every row
    block, plane, slice and unit column of the layer (the fast path's activations, no ADC
    error propagating); the range's top is their ``range_percentile`` (nearest rank),
    spread over ``2^N − 1`` levels and never finer than one unit
    (:func:`~workloads.precision.crossbar.lsb_from_hist`)."""
    static = [("calibration", PolicySpec(policy="static"))]
    got = _run_pass(model, layers, calib_inputs, scales, qcfg, static, None, batch_size, 0,
                    crossbar.weight_bits, crossbar, device, collect=True)
    runners: dict[str, LayerRunner] = got["_runners"]  # type: ignore[assignment]
    out = {}
    for name, r in runners.items():
        assert r.xlayer is not None and r.xlayer.hist is not None
        out[name] = lsb_from_hist(r.xlayer.hist.cpu(), crossbar.adc_bits,
                                  crossbar.range_percentile)
    return out


_SHARED: tuple | None = None


def _pass_job(pipes: list[tuple[str, PolicySpec]]) -> dict[str, PipelinePrecision]:
    """One pass in a forked worker (the model and inputs are inherited, not pickled).

    One torch thread: a child of a process whose intra-op pool already ran several threads
    hangs in its first parallel region (the OpenMP pool does not survive fork).
    """
    torch.set_num_threads(1)
    assert _SHARED is not None
    model, layers, inputs, scales, qcfg, labels, batch_size, keep, wbits, xbar = _SHARED
    return _run_pass(model, layers, inputs, scales, qcfg, pipes, labels, batch_size, keep,
                     wbits, xbar)


def compute_precision(model: nn.Module, layers: Mapping[str, LayerSpec], inputs: torch.Tensor,
                      scales: Mapping[str, float], qcfg: QuantConfig,
                      pipelines: Mapping[str, PolicySpec], labels: torch.Tensor | None = None,
                      batch_size: int = 64, keep_images: int | None = None,
                      weight_bits: int | None = None,
                      workers: int = 1, crossbar: CrossbarModel | None = None,
                      device: torch.device | str | None = None,
                      ) -> dict[str, PipelinePrecision]:
    """Per pipeline: windows of every activation group of every listed layer (errors
    propagate), accuracy when *labels* are given. The lossless built-in pipelines share one
    forward pass (not in the exact crossbar mode, *crossbar*); every other pipeline gets its
    own. With *workers* > 1 the passes run in that many forked processes (CPU only; on
    another *device* one after the other). Results keep *pipelines*' order."""
    global _SHARED
    jobs = capture_groups(pipelines, exact=crossbar is not None)
    for pipes in jobs:  # fail early, in this process, on unknown per-layer overrides
        for pname, pspec in pipes:
            _check_overrides(layers, pname, pspec)
    res: dict[str, PipelinePrecision] = {}
    procs = min(workers, len(jobs))
    if device is not None and torch.device(device).type != "cpu":
        procs = 1  # a forked child cannot use its parent's CUDA context
    if procs > 1:
        # forked children that an interrupt or a dead child stops cleanly
        _SHARED = (model, layers, inputs, scales, qcfg, labels, batch_size, keep_images,
                   weight_bits, crossbar)
        try:
            labels = ["capture of " + ", ".join(f"'{n}'" for n, _ in pipes) for pipes in jobs]
            for part in run_parallel(_pass_job, jobs, procs, labels=labels):
                res.update(part)
        finally:
            _SHARED = None
    else:
        for pipes in jobs:
            res.update(_run_pass(model, layers, inputs, scales, qcfg, pipes, labels,
                                 batch_size, keep_images, weight_bits, crossbar, device))
    return {n: res[n] for n in pipelines}
