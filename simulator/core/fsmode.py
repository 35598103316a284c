"""Temporary files and folders that end up as results get the modes the umask allows.

``tempfile.mkstemp`` and ``tempfile.mkdtemp`` create private entries (0600 and 0700,
whatever the umask), which is right for scratch files but wrong for a file or folder that
is renamed into place as a result: another user (a colleague, the workers of a shared
cluster recipe) would get "Permission denied". :func:`mkstemp` and :func:`mkdtemp` create
them the same way (unique names, no race) and then give them the modes a plain
``open``/``mkdir`` would have given: 0666 and 0777 less the umask.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """This process's umask, read without changing it (``/proc/self/status`` on Linux;
    elsewhere set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - not Linux
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def mkstemp(prefix: str, dir: str | os.PathLike[str], suffix: str = "") -> tuple[int, str]:
    """``tempfile.mkstemp`` whose file has mode 0666 less the umask (open fd, path)."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=dir)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    return fd, path


def mkdtemp(prefix: str, dir: str | os.PathLike[str]) -> str:
    """``tempfile.mkdtemp`` whose folder has mode 0777 less the umask."""
    path = tempfile.mkdtemp(prefix=prefix, dir=dir)
    try:
        os.chmod(path, 0o777 & ~current_umask())
    except BaseException:
        os.rmdir(path)
        raise
    return path
