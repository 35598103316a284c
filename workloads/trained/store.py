"""Cache of the models redysim trains itself (outside the repository, written atomically).

The folder is ``$REDYSIM_CACHE`` or ``~/.cache/redysim``. A file is written to a temporary
name in the same folder and moved into place with ``os.replace``, so a concurrent reader
or an interrupted run never sees half a file. Training is deterministic (seeded, one
thread, deterministic algorithms), so two processes that race produce the same weights.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

__all__ = ["cache_dir", "deterministic", "load_or_train", "save_state_atomic"]


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: *override*, else ``$REDYSIM_CACHE``, else ``~/.cache/redysim``."""
    if override is not None:
        return Path(override)
    env = os.environ.get("REDYSIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "redysim"


@contextlib.contextmanager
def deterministic(threads: int = 1) -> Iterator[None]:
    """Reproducible CPU training for the duration of the block (settings restored after).

    One thread by default: the order of floating-point reductions then does not depend on
    the machine's core count, and a busy 2-core machine does not slow down the spin-waits
    of several torch threads.
    """
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def save_state_atomic(model: nn.Module, path: Path) -> None:
    """Write ``model.state_dict()`` to *path* via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(model.state_dict(), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_or_train(path: Path, build: Callable[[], nn.Module],
                  train: Callable[[], nn.Module]) -> nn.Module:
    """The cached model at *path* (``build()`` + its state dict), or ``train()`` and cache it.

    A cache file that cannot be loaded into ``build()`` (corrupt, or stale after an
    architecture change) is replaced by a fresh training. Returns the model in eval mode.
    """
    if path.is_file():
        model = build()
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        except Exception:  # noqa: BLE001 - corrupt or stale cache: retrain below
            pass
    model = train()
    save_state_atomic(model, path)
    return model.eval()
