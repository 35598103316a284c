"""Output paths: checked before any work, written through a staging folder, swapped in.

- :func:`check_output_dir` runs before the run starts: the results path must be a folder
  (or not exist yet), its first existing ancestor must be a folder we can create entries
  in (probed for real: permissions, read-only file systems), and an existing non-empty
  folder is only replaced with ``--force`` when it holds a ``summary.json``.
- :func:`staged_results` gives a hidden staging folder beside the target
  (``.NAME.partial-XXXX``); when the block ends normally the staging folder replaces the
  target in two renames, with signals held back (:func:`simulator.core.interrupts.deferred`)
  so that a Ctrl-C cannot leave the target half swapped. When the block raises — an
  interrupt, a full disk — the staging folder (and any parent folder it created) is
  removed and the target is left exactly as it was. An ``OSError`` while writing becomes
  :class:`OutputError` (one line, exit status 1).
- :func:`check_output_file` / :func:`write_file_atomic`: the same for a single file
  (``redysim tune``): temporary file in the same folder, then ``os.replace``.
- Modes: ``mkdtemp`` and ``mkstemp`` create private entries (0700 / 0600) whatever the
  umask; :func:`follow_umask` gives the staging folder and the temporary file the mode a
  plain ``mkdir`` / ``open`` would (0777 / 0666 less the umask; a file that is replaced
  keeps its mode), so results are shared exactly as the user's other files are.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from simulator.core.config_io import ConfigError
from simulator.core.errors import RunFailure
from simulator.core.interrupts import deferred

PARTIAL = ".partial-"


class OutputError(RunFailure):
    """The results could not be written (disk full, read-only, permission denied)."""


def _exists(p: Path) -> bool:
    try:
        return p.exists() or p.is_symlink()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot check this path ({exc.strerror})") from None


def _first_existing(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not _exists(p):
        p = p.parent
    return p


def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status`` on Linux);
    elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike[str] | int, folder: bool) -> None:
    """Give *path* (or an open file descriptor) the mode a plain ``mkdir`` / ``open`` would
    have given it: 0777 (folder) or 0666 (file) less the umask. ``tempfile.mkdtemp`` and
    ``mkstemp`` create private entries (0700 / 0600) whatever the umask."""
    mode = (0o777 if folder else 0o666) & ~current_umask()
    if isinstance(path, int):
        os.fchmod(path, mode)
    else:
        os.chmod(path, mode)


#: file systems that hold no user files (kernel interfaces and the like)
_VIRTUAL_FS = {"proc", "sysfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
               "securityfs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs",
               "binfmt_misc", "autofs", "efivarfs", "selinuxfs", "rpc_pipefs", "nsfs"}


def file_system_of(folder: Path) -> tuple[str, str] | None:
    """(mount point, file system type) of *folder* from ``/proc/self/mounts`` (None when
    unknown: not Linux, or the table cannot be read)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) >= 3]
    except OSError:
        return None
    path = os.path.realpath(folder)
    best: tuple[str, str] | None = None
    for point, kind in mounts:
        point = point.replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, kind)
    return best


def _probe_writable(folder: Path, target: Path) -> None:
    """Create and remove a hidden folder in *folder*: the real test of writability."""
    try:
        probe = tempfile.mkdtemp(prefix=".redysim-probe-", dir=folder)
        os.rmdir(probe)
    except OSError as exc:
        why = exc.strerror or str(exc)
        fs = file_system_of(folder)
        if fs is not None and fs[1] in _VIRTUAL_FS:
            raise ConfigError(
                f"{target}: cannot write results there: {folder} is on a {fs[1]} file "
                f"system (mounted at {fs[0]}), a kernel interface that holds no files "
                f"(creating a folder in it failed: {why}); choose a folder on a disk"
            ) from None
        if exc.errno == errno.ENOENT:  # the folder exists, yet refuses a new entry
            kind = f" ({fs[1]} file system)" if fs is not None else ""
            raise ConfigError(
                f"{target}: cannot write results there: {folder}{kind} exists but does "
                f"not accept new folders (creating one failed: {why}); choose a folder "
                "on a disk") from None
        raise ConfigError(f"{target}: cannot write results there: {folder}: {why}") from None


def check_writable_parent(target: Path) -> None:
    """*target*'s folder exists or can be created, and entries can be made in it."""
    anc = _first_existing(Path(target).parent)
    if not anc.is_dir():
        raise ConfigError(f"{target}: cannot create it: {anc} is a file, not a folder")
    _probe_writable(anc, target)


def check_output_dir(out: Path, force: bool) -> None:
    """Refuse a results path that cannot be (over)written, before any work is done."""
    out = Path(out)
    if _exists(out):
        if not out.is_dir():
            raise ConfigError(f"{out}: results path exists and is not a folder")
        try:
            non_empty = any(out.iterdir())
        except OSError as exc:
            raise ConfigError(f"{out}: cannot read this folder ({exc.strerror})") from None
        if non_empty and not force:
            raise ConfigError(
                f"{out}: results folder exists and is not empty; "
                "pass --force to overwrite it or choose another -o")
        if non_empty and not (out / "summary.json").is_file():
            raise ConfigError(
                f"{out}: folder is not empty and holds no summary.json, so it does not look "
                "like a redysim results folder; --force only replaces results folders")
    check_writable_parent(out)


@contextlib.contextmanager
def staged_results(out: Path) -> Iterator[Path]:
    """A staging folder that replaces *out* when the block succeeds (see module doc)."""
    out = Path(out)
    created: list[Path] = []
    try:
        missing = []
        p = out.parent
        while not _exists(p):
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            d.mkdir()
            created.append(d)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL}", dir=out.parent))
        follow_umask(tmp, folder=True)
    except OSError as exc:
        _remove_created(created)
        raise OutputError(f"{out}: cannot create the results folder: "
                          f"{exc.strerror or exc}") from None
    try:
        yield tmp
        _swap_in(tmp, out)
    except OSError as exc:
        _discard(tmp, created)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        kept = ("the existing folder was left as it was" if _exists(out)
                else "nothing was written")
        raise OutputError(f"{out}: cannot write the results: {exc.strerror or exc}{where}; "
                          f"{kept}") from None
    except BaseException:
        _discard(tmp, created)
        raise


def _discard(tmp: Path, created: list[Path]) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    _remove_created(created)


def _remove_created(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace *out* by *tmp*: two renames, signals held back until both are done."""
    with deferred():
        if not _exists(out):
            tmp.rename(out)
            return
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if _exists(old):
            shutil.rmtree(old)
        out.rename(old)
        try:
            tmp.rename(out)
        except OSError:
            old.rename(out)
            raise
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------- single files
def check_output_file(path: Path, force: bool) -> None:
    """Refuse an output file that exists (without *force*) or cannot be created."""
    path = Path(path)
    if _exists(path):
        if not path.is_file():
            raise ConfigError(f"{path}: exists and is not a file")
        if not force:
            raise ConfigError(f"{path}: file exists; pass --force to overwrite it or choose "
                              "another -o")
    check_writable_parent(path)


def write_file_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* through a temporary file in the same folder + os.replace.

    The file gets the mode of the file it replaces, or 0666 less the umask when new."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write it: {exc.strerror or exc}") from None
    try:
        try:  # the mode of the file it replaces, else what open() would give
            os.fchmod(fd, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            follow_umask(fd, folder=False)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write it: {exc.strerror or exc}; "
                              "nothing was changed") from None
        raise
