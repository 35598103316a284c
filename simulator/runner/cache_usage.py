"""What the artifact cache holds on disk, and trimming it (``redysim cache``).

The cache (:mod:`simulator.runner.cache`) is never trimmed by a run: an entry's key names
the code version, so an upgrade or a change to ``workloads/`` leaves the old entries
behind, and every network, quantization and policy adds its own. This module lists the
entries per kind with their sizes and last use, and removes the least recently used ones
until the cache fits a size.

Last use is the entry file's modification time: the cache sets it when it writes an entry
and when it reads one from disk (``ArtifactCache.get_or_compute``).

Safe while runs use the cache: an entry is removed under its own lock, taken without
waiting (an entry being computed or written is skipped), and a process that is reading an
entry while it is removed keeps reading it (POSIX keeps an open file until it is closed);
one that looks for it afterwards computes it again. The lock files (empty) stay: removing
one that another process holds would let two processes compute the same entry.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from simulator.core.config_io import ConfigError
from simulator.runner.cache import entry_lock

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
          "t": 1e12, "tb": 1e12, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


@dataclass(frozen=True)
class Entry:
    """One artifact file: its kind (sub-folder), path, size in bytes and last use."""

    kind: str
    path: Path
    size: int
    used: float
    """Last use (modification time, seconds since the epoch)."""


def entries(root: Path) -> list[Entry]:
    """Every artifact under *root* (``<root>/<kind>/<key>.pkl``), least recently used first.

    Temporary files of a writer (``.<key>.pkl.*``) and lock files are not entries.
    """
    out: list[Entry] = []
    if not root.is_dir():
        return out
    for kind_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in kind_dir.glob("*.pkl"):
            if f.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                st = f.stat()
                out.append(Entry(kind_dir.name, f, st.st_size, st.st_mtime))
    out.sort(key=lambda e: (e.used, str(e.path)))
    return out


def usage(root: Path) -> dict[str, dict[str, float]]:
    """Per kind: ``entries``, ``bytes``, ``oldest`` and ``newest`` last use."""
    out: dict[str, dict[str, float]] = {}
    for e in entries(root):
        k = out.setdefault(e.kind, {"entries": 0, "bytes": 0, "oldest": e.used,
                                    "newest": e.used})
        k["entries"] += 1
        k["bytes"] += e.size
        k["oldest"] = min(k["oldest"], e.used)
        k["newest"] = max(k["newest"], e.used)
    return out


def parse_size(text: str, key: str = "--max-size") -> int:
    """Bytes of a size written ``2GB``, ``500 MB``, ``1.5GiB`` or ``0`` (decimal units:
    1 GB = 10^9 bytes; GiB, MiB, KiB binary)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ConfigError(f"{key}: expected a size such as 2GB, 500MB or 0, got {text!r}")
    return int(float(m.group(1)) * _UNITS[unit])


@dataclass
class TrimReport:
    """What :func:`trim` did: entries and bytes removed, kept, and skipped (in use)."""

    removed: int = 0
    removed_bytes: int = 0
    kept: int = 0
    kept_bytes: int = 0
    busy: int = 0


def trim(root: Path, max_bytes: int) -> TrimReport:
    """Remove the least recently used entries under *root* until the rest is at most
    *max_bytes* (0: all of them). An entry another process holds locked is skipped."""
    found = entries(root)
    total = sum(e.size for e in found)
    rep = TrimReport()
    for e in found:
        if total <= max_bytes:
            break
        if _remove_unlocked(e.path):
            rep.removed += 1
            rep.removed_bytes += e.size
            total -= e.size
        else:
            rep.busy += 1
    rest = entries(root)
    rep.kept, rep.kept_bytes = len(rest), sum(e.size for e in rest)
    return rep


def _remove_unlocked(path: Path) -> bool:
    """Remove *path* under its entry lock, if no other process holds that lock."""
    with entry_lock(path, wait=False) as held:
        if held:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return held
