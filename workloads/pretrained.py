"""Pretrained torchvision weights by name, through torchvision's own weights API and cache.

``workload.weights: DEFAULT`` (or ``IMAGENET1K_V1``, ``ResNet18_Weights.IMAGENET1K_V1``, …)
resolves with :func:`torchvision.models.get_model_weights`. The state dict lives where
torchvision keeps it: ``<torch hub dir>/checkpoints/<file name of weights.url>``, the hub
dir being ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``). A file already there is
loaded without any network access; a missing one is downloaded by the weights API
(``weights.get_state_dict``) when the machine is online. Offline (or with
``REDYSIM_OFFLINE=1``, which skips the attempt), the error is one line naming the file and
the folder where it belongs. The weights' preprocessing preset (``weights.transforms()``)
and category list come with them.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from workloads.errors import WorkloadError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "OFFLINE_ENV",
    "cache_file",
    "is_weights_name",
    "load_pretrained_state",
    "resolve_weights",
    "weights_names",
]

#: set to 1 to never try a download (the error then names the file to place)
OFFLINE_ENV = "REDYSIM_OFFLINE"

_NAME = re.compile(r"^(?:[A-Za-z0-9_]+_Weights\.)?[A-Z][A-Z0-9_]*$")


def is_weights_name(value: str) -> bool:
    """True for a torchvision weights name (``DEFAULT``, ``IMAGENET1K_V1``,
    ``ResNet18_Weights.IMAGENET1K_V2``); anything else in ``weights:`` is a file path."""
    return bool(_NAME.match(value))


def weights_names(model: str) -> list[str]:
    """The weights names torchvision knows for *model* (empty if none)."""
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(model)
    except (ValueError, KeyError):
        return []
    return list(enum.__members__)


def resolve_weights(model: str, name: str) -> Any:
    """The torchvision ``WeightsEnum`` member for ``model`` named *name*.

    Raises WorkloadError naming the valid names when there is no such member.
    """
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(model)
    except (ValueError, KeyError):
        raise WorkloadError(f"workload.weights: '{name}' names pretrained torchvision weights, "
                            f"but model '{model}' has none; give a state_dict file, 'random', "
                            "or leave weights unset") from None
    prefix, _, member = name.rpartition(".")
    if prefix and prefix != enum.__name__:
        raise WorkloadError(f"workload.weights: '{name}' are weights of another model "
                            f"({prefix}); {model} takes {enum.__name__}")
    if member not in enum.__members__:
        raise WorkloadError(f"workload.weights: '{name}' is not a weights name of {model}; "
                            f"valid: {', '.join(enum.__members__)}")
    return enum[member]


def cache_file(weights: Any) -> Path:
    """Where torchvision caches these weights: ``<hub dir>/checkpoints/<file of the URL>``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _missing(weights: Any, why: str) -> WorkloadError:
    path = cache_file(weights)
    return WorkloadError(
        f"pretrained weights {weights} are not in torchvision's cache and {why}: put "
        f"{path.name} (from {weights.url}) in {path.parent}/ (or point TORCH_HOME at the "
        "folder that holds hub/checkpoints/)")


def load_pretrained_state(weights: Any) -> dict[str, torch.Tensor]:
    """The state dict of *weights*: from torchvision's cache, or downloaded by the weights
    API when missing and online (``$REDYSIM_OFFLINE=1`` forbids the download)."""
    path = cache_file(weights)
    if not path.is_file():
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            raise _missing(weights, f"{OFFLINE_ENV} is set")
    # torch.hub announces a download on stdout ('Downloading: "URL" to PATH') before it
    # tries: held back here and printed only once the file has arrived, so an offline
    # attempt prints the one error line below and nothing else
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            state = weights.get_state_dict(progress=False, check_hash=True)
        if said.getvalue():
            sys.stdout.write(said.getvalue())
    except Exception as e:  # noqa: BLE001 - network, hash or file errors: one line
        if not path.is_file():
            raise _missing(weights, f"could not be downloaded ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0] if str(e) else ''})") from None
        raise WorkloadError(f"pretrained weights file {path} cannot be loaded "
                            f"({type(e).__name__}: {e}); delete it to download it again") from None
    if not isinstance(state, dict):
        raise WorkloadError(f"pretrained weights file {path} does not hold a state dict")
    return state
