"""Workload models: torchvision CNNs (seeded random or pretrained weights), the models trained
here on digits, user factories; weights files; the dry forward pass that checks the input."""

from __future__ import annotations

import importlib
import os
import re
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from workloads.errors import WorkloadError

__all__ = [
    "MODEL_NAMES",
    "TORCHVISION_MODELS",
    "build_model",
    "build_torchvision",
    "calibrate_batchnorm",
    "check_input",
    "import_factory",
    "load_weights",
]

#: torchvision constructors (names in ``torchvision.models``, always built with
#: ``weights=None``) and extra keyword arguments; torchvision is imported only to build one.
TORCHVISION_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "alexnet": ("alexnet", {}),
    "vgg11": ("vgg11", {}),
    "vgg16": ("vgg16", {}),
    "resnet18": ("resnet18", {}),
    "resnet34": ("resnet34", {}),
    "resnet50": ("resnet50", {}),
    "mobilenet_v2": ("mobilenet_v2", {}),
    "squeezenet1_1": ("squeezenet1_1", {}),
    "googlenet": (
        "googlenet",
        {"transform_input": False, "aux_logits": False, "init_weights": True},
    ),
    "densenet121": ("densenet121", {}),
}

#: Every accepted built-in name (plus ``package.module:factory``).
MODEL_NAMES: tuple[str, ...] = (*TORCHVISION_MODELS, "digits", "resnet-digits")


def _torchvision_ctor(name: str) -> tuple[Any, dict[str, Any]]:
    """The torchvision constructor of *name* and its extra keyword arguments."""
    import torchvision.models as tvm

    ctor, extra = TORCHVISION_MODELS[name]
    return getattr(tvm, ctor), extra


def _valid_names() -> str:
    return ", ".join(MODEL_NAMES) + ", 'package.module:factory', or a path to an .onnx file"


def build_torchvision(name: str, seed: int = 0, num_classes: int = 1000,
                      state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A torchvision CNN in eval mode: seeded random weights, or *state* (e.g. pretrained).

    GoogLeNet is built without its input transform and auxiliary heads (they are not part
    of the inference dataflow); with pretrained weights their auxiliary-head entries are
    dropped, and the input transform is folded into the preprocessing by the caller
    (mean = std = 0.5, which is what ``transform_input=True`` computes).
    """
    ctor, extra = _torchvision_ctor(name)
    torch.manual_seed(seed)
    model = ctor(weights=None, num_classes=num_classes, **extra)
    if state is not None:
        if name == "googlenet":
            state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
        _load_state(model, state, f"pretrained {name} weights")
    return model.eval()


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
    - ``digits``: the small trained digits CNN (cached, see workloads.trained.digits),
      input (1, 8, 8);
      ``resnet-digits``: the trained residual CNN (workloads.trained.resnet_digits), input
      (1, 16, 16); ``seed`` does not retrain them (it seeds the random init when a weights
      file is loaded over them);
    - ``package.module:factory``: ``factory()`` returns a module (or ``(module, shape)``);
      the shape is ``input_shape`` if given, else ``(3, input_size, input_size)``.

    ``weights_path`` loads a state dict over the constructed model.
    """
    if name in TORCHVISION_MODELS:
        ctor, extra = _torchvision_ctor(name)
        torch.manual_seed(seed)
        model = ctor(weights=None, num_classes=num_classes, **extra)
        shape: tuple[int, ...] = (3, input_size, input_size)
    elif name == "digits":
        from workloads.trained.digits import DigitsCNN, load_digits_model

        if weights_path is None:
            model = load_digits_model()
        else:
            torch.manual_seed(seed)
            model = DigitsCNN()
        shape = (1, 8, 8)
    elif name == "resnet-digits":
        from workloads.trained.resnet_digits import INPUT_SHAPE, ResNetDigits, load_resnet_digits

        if weights_path is None:
            model = load_resnet_digits()
        else:
            torch.manual_seed(seed)
            model = ResNetDigits()
        shape = INPUT_SHAPE
    elif ":" in name:
        model, shape = import_factory(name, seed)
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


def module_origin(mod_name: str, search: Sequence[str | os.PathLike[str]] = ()) -> str | None:
    """The source file ``import mod_name`` would load with *search* in front of the import
    path (ignoring modules already imported), or None if it cannot be found."""
    from importlib.machinery import PathFinder

    path = [str(Path(p).resolve()) for p in search] + sys.path
    found = None
    parts = mod_name.split(".")
    for i in range(len(parts)):
        found = PathFinder.find_spec(".".join(parts[: i + 1]), path)
        if found is None:
            return None
        path = list(found.submodule_search_locations or [])
    return found.origin if found is not None else None


def import_factory(spec: str, seed: int, search: Sequence[str | os.PathLike[str]] = (),
                   ) -> tuple[nn.Module, tuple[int, ...]]:
    """Call ``package.module:factory`` (seeded); returns (module, shape or ()).

    The folders in *search* (the scenario's folder) are put in front of Python's import
    path while importing; the error names every folder that was searched.
    """
    mod_name, _, fn_name = spec.partition(":")
    extra = [str(Path(p).resolve()) for p in search]
    added = [p for p in extra if p not in sys.path]
    origin = module_origin(mod_name, extra)
    cached = sys.modules.get(mod_name)
    if cached is not None and origin is not None and getattr(cached, "__file__", None) != origin:
        del sys.modules[mod_name]  # a module of that name from another folder: not this one
    sys.path[:0] = added
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        where = [*extra, *[p for p in sys.path if p not in extra]]
        shown = ", ".join(p or "." for p in where[:6]) + (" ..." if len(where) > 6 else "")
        raise WorkloadError(
            f"model '{spec}': cannot import module '{mod_name}' ({e}); searched the "
            f"scenario's folder and Python's import path: {shown}; put the module next to "
            "the scenario or add its folder to PYTHONPATH") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing
        raise WorkloadError(f"model '{spec}': importing module '{mod_name}' raised "
                            f"{_user_exception(e)}") from None
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)
    factory = getattr(module, fn_name, None)
    if not callable(factory):
        raise WorkloadError(f"model '{spec}': '{mod_name}' has no callable '{fn_name}'")
    torch.manual_seed(seed)
    try:
        out = factory()
    except Exception as e:  # noqa: BLE001 - the user's code: one line, not its traceback
        raise WorkloadError(f"model '{spec}': the factory {mod_name}.{fn_name}() raised "
                            f"{_user_exception(e)}") from None
    shape: tuple[int, ...] = ()
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], nn.Module):
        out, shape = out[0], tuple(int(s) for s in out[1])
    if not isinstance(out, nn.Module):
        raise WorkloadError(
            f"model '{spec}': the factory returned {type(out).__name__}, not a torch.nn.Module"
        )
    return out, shape


def _user_exception(e: BaseException) -> str:
    """``Type: message (file:line)`` of an exception raised by the user's code: its first
    line and the innermost frame of the traceback (where it was raised)."""
    import traceback

    text = str(e).strip().splitlines()
    where = ""
    frames = traceback.extract_tb(e.__traceback__)
    if frames:
        last = frames[-1]
        where = f" at {last.filename}:{last.lineno}"
    return f"{type(e).__name__}{': ' + text[0] if text else ''}{where}"


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
    return _load_state(model, state, f"weights file '{path}'")


def _load_state(model: nn.Module, state: dict[str, Any], what: str) -> nn.Module:
    """Load *state* strictly, with one error listing missing/unexpected/mis-shaped keys."""
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
        raise WorkloadError(f"{what} does not match the model: " + "; ".join(parts))
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


@torch.no_grad()
def check_input(model: nn.Module, shape: Sequence[int], name: str) -> int:
    """Dry forward pass of one zero input of *shape* (C, H, W); returns the output count.

    A failure becomes one line naming the layer that rejected the input and the mismatch
    (channels of a conv, features of a linear layer), instead of a torch traceback.
    """
    shape = tuple(int(s) for s in shape)
    stack: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    handles = []

    def pre(mname: str):
        def hook(m: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            stack.append((mname, m, tuple(x.shape) if x is not None else ()))
        return hook

    def post(_m: nn.Module, _a: Any, _o: Any) -> None:
        if stack:
            stack.pop()

    for mname, m in model.named_modules():
        if mname and not list(m.children()):
            handles.append(m.register_forward_pre_hook(pre(mname)))
            handles.append(m.register_forward_hook(post))
    was_training = model.training
    model.eval()
    try:
        out = model(torch.zeros(1, *shape))
    except Exception as e:  # noqa: BLE001 - any failure becomes one line
        raise WorkloadError(_mismatch(name, shape, stack, e)) from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise WorkloadError(f"model '{name}': the network must return one (N, outputs) tensor "
                            f"(got {got} for input shape {shape})")
    return int(out.shape[1])


def _mismatch(name: str, shape: tuple[int, ...], stack: list, e: Exception) -> str:
    hint = "set workload.input_shape (C, H, W) to the network's input"
    if stack:
        lname, m, xs = stack[-1]
        if isinstance(m, nn.Conv2d) and len(xs) == 4 and xs[1] != m.in_channels:
            return (f"model '{name}': input shape {shape} does not fit the network: layer "
                    f"'{lname}' (Conv2d) expects {m.in_channels} input channels, gets {xs[1]}; "
                    f"{hint}")
        if isinstance(m, nn.Linear) and xs and xs[-1] != m.in_features:
            return (f"model '{name}': input shape {shape} does not fit the network: layer "
                    f"'{lname}' (Linear) expects {m.in_features} input features, gets "
                    f"{xs[-1]}; {hint}")
        where = f" in layer '{lname}' ({type(m).__name__}, input {xs[1:]})"
    else:
        where = ""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return (f"model '{name}': forward pass failed for input shape {shape}{where}: "
            f"{type(e).__name__}: {msg}; {hint}")
