"""Workload models: torchvision CNNs with seeded random weights, the digits CNN, user factories."""

from __future__ import annotations

import importlib
import os
import re
import warnings
from collections.abc import Iterable
from typing import Any

import torch
import torchvision.models as tvm
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from workloads.errors import WorkloadError

__all__ = [
    "MODEL_NAMES",
    "TORCHVISION_MODELS",
    "build_model",
    "calibrate_batchnorm",
    "load_weights",
]

#: torchvision constructors (always built with ``weights=None``) and extra keyword arguments.
TORCHVISION_MODELS: dict[str, tuple[Any, dict[str, Any]]] = {
    "alexnet": (tvm.alexnet, {}),
    "vgg11": (tvm.vgg11, {}),
    "vgg16": (tvm.vgg16, {}),
    "resnet18": (tvm.resnet18, {}),
    "resnet34": (tvm.resnet34, {}),
    "resnet50": (tvm.resnet50, {}),
    "mobilenet_v2": (tvm.mobilenet_v2, {}),
    "squeezenet1_1": (tvm.squeezenet1_1, {}),
    "googlenet": (
        tvm.googlenet,
        {"transform_input": False, "aux_logits": False, "init_weights": True},
    ),
    "densenet121": (tvm.densenet121, {}),
}

#: Every accepted built-in name (plus ``package.module:factory``).
MODEL_NAMES: tuple[str, ...] = (*TORCHVISION_MODELS, "digits")


def _valid_names() -> str:
    return ", ".join(MODEL_NAMES) + ", or 'package.module:factory'"


def build_model(
    name: str,
    input_size: int = 224,
    seed: int = 0,
    weights_path: str | os.PathLike[str] | None = None,
    num_classes: int = 1000,
    input_shape: Iterable[int] | None = None,
) -> tuple[nn.Module, tuple[int, ...]]:
    """Build a workload model in eval mode and its input shape (C, H, W).

    - torchvision names: random weights seeded with ``seed`` (no download), input
      ``(3, input_size, input_size)``;
    - ``digits``: the small trained digits CNN (cached, see workloads.digits), input (1, 8, 8);
      ``seed`` does not retrain it;
    - ``package.module:factory``: ``factory()`` returns a module (or ``(module, shape)``);
      the shape is ``input_shape`` if given, else ``(3, input_size, input_size)``.

    ``weights_path`` loads a state dict over the constructed model.
    """
    if name in TORCHVISION_MODELS:
        ctor, extra = TORCHVISION_MODELS[name]
        torch.manual_seed(seed)
        model = ctor(weights=None, num_classes=num_classes, **extra)
        shape: tuple[int, ...] = (3, input_size, input_size)
    elif name == "digits":
        from workloads.digits import DigitsCNN, load_digits_model

        if weights_path is None:
            model = load_digits_model()
        else:
            torch.manual_seed(seed)
            model = DigitsCNN()
        shape = (1, 8, 8)
    elif ":" in name:
        model, shape = _from_factory(name, seed)
        if input_shape is not None:
            shape = tuple(int(s) for s in input_shape)
        elif not shape:
            shape = (3, input_size, input_size)
    else:
        raise WorkloadError(f"unknown model '{name}'; valid names: {_valid_names()}")
    if weights_path is not None:
        load_weights(model, weights_path)
    model.eval()
    return model, tuple(shape)


def _from_factory(spec: str, seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    mod_name, _, fn_name = spec.partition(":")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as e:
        raise WorkloadError(f"model '{spec}': cannot import module '{mod_name}' ({e})") from e
    factory = getattr(module, fn_name, None)
    if not callable(factory):
        raise WorkloadError(f"model '{spec}': '{mod_name}' has no callable '{fn_name}'")
    torch.manual_seed(seed)
    out = factory()
    shape: tuple[int, ...] = ()
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], nn.Module):
        out, shape = out[0], tuple(int(s) for s in out[1])
    if not isinstance(out, nn.Module):
        raise WorkloadError(
            f"model '{spec}': the factory returned {type(out).__name__}, not a torch.nn.Module"
        )
    return out, shape


#: what a weights file must hold, said in every error about one
EXPECTED_WEIGHTS = ("expected a state_dict saved with torch.save(model.state_dict(), path) "
                    "(tensors by parameter name)")


def _read_state(path: str) -> Any:
    """``torch.load(weights_only=True)`` of *path*, with errors that say what was expected."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise WorkloadError(f"weights file '{path}' cannot be read ({e.strerror})") from None
    if size == 0:
        raise WorkloadError(f"weights file '{path}' is empty; {EXPECTED_WEIGHTS}")
    try:
        with warnings.catch_warnings():  # torch's notes on foreign pickles: the error says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises anything on a foreign file
        text = str(e)
        glob = re.search(r"GLOBAL ([\w.]+)", text)
        if glob:
            raise WorkloadError(
                f"weights file '{path}' holds a pickled Python object ({glob.group(1)}, a "
                "whole model?), not only tensors; redysim loads weights without running code "
                f"from the file (torch.load(weights_only=True)); {EXPECTED_WEIGHTS}") from None
        if isinstance(e, PermissionError):
            raise WorkloadError(f"weights file '{path}' cannot be read ({e.strerror})") from None
        raise WorkloadError(
            f"weights file '{path}' is not a PyTorch weights file torch.load can read "
            f"(corrupt, truncated or another format); {EXPECTED_WEIGHTS}") from None


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a state dict file (``torch.load(weights_only=True)``) into ``model``, strictly.

    Every failure is a :class:`WorkloadError` naming the file and what was expected.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise WorkloadError(f"weights file '{path}' does not exist")
    if not os.path.isfile(path):
        raise WorkloadError(f"weights file '{path}' is not a file; {EXPECTED_WEIGHTS}")
    state = _read_state(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WorkloadError(f"weights file '{path}' holds a {type(state).__name__}, not a "
                            f"state dict; {EXPECTED_WEIGHTS}")
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise WorkloadError(f"weights file '{path}' holds non-tensor values (keys "
                            f"{not_tensors[:5]}{' ...' if len(not_tensors) > 5 else ''}); "
                            f"{EXPECTED_WEIGHTS}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            more = " ..." if len(unexpected) > 5 else ""
            parts.append(f"unexpected keys {unexpected[:5]}{more}")
        if shapes:
            parts.append(f"shape mismatches {shapes[:5]}{' ...' if len(shapes) > 5 else ''}")
        raise WorkloadError(f"weights file '{path}' does not match the model: " + "; ".join(parts))
    model.load_state_dict(state)
    return model


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 32) -> nn.Module:
    """Re-estimate every BatchNorm's running mean/var on ``images`` (cumulative average).

    Only BN layers are put in train mode (Dropout etc. stay in eval); the model is left in
    eval mode with the BN momentum restored. Gives random-weight networks realistic
    activation statistics.
    """
    model.eval()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for i in range(0, images.shape[0], batch_size):
            model(images[i : i + batch_size])
    finally:
        for m, mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        model.eval()
    return model
