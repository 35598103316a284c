"""The committed weights of the models redysim trains itself, and how they are written.

Training gives other weights on another CPU (torch dispatches other vector kernels), so
the weights the project's figures come from are committed in ``weights/`` beside this
module, each with its SHA-256 in ``weights/SHA256SUMS`` (the format ``sha256sum -c``
reads) and the command that produced it in ``weights/README.md``. Loading checks the
hash and stops with a one-line :class:`~workloads.errors.WorkloadError` naming the file
on a mismatch. :mod:`workloads.trained.train` retrains them (``python -m
workloads.trained.train digits -o FILE``).

A state dict is written through an in-memory buffer, so its bytes depend only on the
tensors (not on the file's name), and moved into place with ``os.replace``: a concurrent
reader or an interrupted run never sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

from workloads.errors import WorkloadError

__all__ = ["WEIGHTS_DIR", "deterministic", "expected_sha256", "load_committed",
           "save_state_atomic", "sha256_file", "state_bytes"]

#: the committed weights and their SHA256SUMS
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SUMS_NAME = "SHA256SUMS"


@contextlib.contextmanager
def deterministic(threads: int = 1) -> Iterator[None]:
    """Reproducible CPU training for the duration of the block (settings restored after).

    One thread by default: the order of floating-point reductions then does not depend on
    the machine's core count, and a busy 2-core machine does not slow down the spin-waits
    of several torch threads. (Another CPU's vector kernels still give other weights:
    hence the committed files.)
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


def state_bytes(model: nn.Module) -> bytes:
    """``torch.save(model.state_dict())`` as bytes (independent of any file name)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def save_state_atomic(model: nn.Module, path: Path) -> str:
    """Write *model*'s state dict to *path* (temporary file + ``os.replace``); returns the
    file's SHA-256."""
    data = state_bytes(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expected_sha256(name: str, weights_dir: Path = WEIGHTS_DIR) -> str:
    """The SHA-256 that ``SHA256SUMS`` in *weights_dir* lists for the file *name*."""
    sums = weights_dir / SUMS_NAME
    try:
        lines = sums.read_text().splitlines()
    except OSError as exc:
        raise WorkloadError(f"{sums}: cannot read the weights' checksums "
                            f"({exc.strerror or exc})") from None
    for line in lines:
        digest, _, fname = line.strip().partition("  ")
        if fname.lstrip("*") == name:
            return digest.lower()
    raise WorkloadError(f"{sums}: no SHA-256 listed for {name}")


def load_committed(name: str, build: Callable[[], nn.Module],
                   weights_dir: Path | None = None) -> nn.Module:
    """``build()`` with the committed state dict *name* loaded, after checking its SHA-256
    against ``SHA256SUMS``. Returns the model in eval mode."""
    wdir = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    path = wdir / name
    if not path.is_file():
        raise WorkloadError(f"{path}: committed weights not found (restore them with "
                            f"`git checkout -- {path.name}`)")
    want, got = expected_sha256(name, wdir), sha256_file(path)
    if got != want:
        raise WorkloadError(f"{path}: SHA-256 {got} does not match {want} listed in "
                            f"{wdir / SUMS_NAME} (a changed or damaged file: restore it "
                            "from git, or retrain and update the sum as "
                            f"{wdir / 'README.md'} says)")
    model = build()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
