"""Fault-injection checkpoints for the robustness tests (inactive unless asked for).

``REDYSIM_TEST_FAULT="point:action[,point:action...]"`` makes :func:`checkpoint` act when
the run passes *point*. Without the variable a checkpoint costs one dictionary lookup.
The tests (``tests/test_faults.py``) use it to stop a run at a chosen moment and signal
it, or to make a write fail, deterministically; users never need it.

Points (where the code calls :func:`checkpoint`):

- ``capture``: in the parent, before each pipeline's forward pass (activation capture);
- ``worker``: in a forked worker, before it runs its job (a pipeline's simulation);
- ``worker-send``: in a forked worker, after its result is pickled, when half of it has
  been written to the parent (the parent is then reading a partial message);
- ``write``: in the parent, when the results' staging folder has been created and
  before anything is written into it (``path`` = the staging folder);
- ``sweep-start``: in a sweep or study, once the local Dask cluster's processes are
  started and before they are ready;
- ``sweep-simulate-NAME``: in a Dask worker, before it simulates pipeline NAME of a point;
- ``sweep-table``: when ``sweep.csv``'s temporary file is written and before it is
  renamed (``path`` = the temporary file).

``REDYSIM_TEST_FAULT_FILE``, when set, also receives the ``redysim-fault:`` lines (a Dask
worker's stderr goes to the cluster's log, so a test watches this file instead).

Actions:

- ``pause``: print ``redysim-fault: paused at POINT (pid N)`` on stderr and sleep until
  a signal ends the process;
- ``enospc`` / ``erofs`` / ``eio``: raise the corresponding ``OSError``;
- ``sigkill``: the process kills itself with SIGKILL (a crashed or OOM-killed worker);
- ``mark``: print ``redysim-fault: at POINT (pid N)`` and go on.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time

ENV = "REDYSIM_TEST_FAULT"
FILE_ENV = "REDYSIM_TEST_FAULT_FILE"
_ERRORS = {"enospc": errno.ENOSPC, "erofs": errno.EROFS, "eio": errno.EIO}


def _actions() -> dict[str, str]:
    spec = os.environ.get(ENV, "")
    out: dict[str, str] = {}
    for item in spec.split(","):
        point, _, action = item.strip().partition(":")
        if point and action:
            out[point] = action
    return out


def action_at(point: str) -> str | None:
    """The action configured for *point*, or None."""
    if ENV not in os.environ:
        return None
    return _actions().get(point)


def checkpoint(point: str, path: str | os.PathLike[str] | None = None) -> None:
    """Act as ``REDYSIM_TEST_FAULT`` says at *point* (nothing when it says nothing)."""
    action = action_at(point)
    if action is None:
        return
    if action in ("pause", "mark"):
        verb = "paused at" if action == "pause" else "at"
        line = f"redysim-fault: {verb} {point} (pid {os.getpid()})\n"
        sys.stderr.write(line)
        sys.stderr.flush()
        if os.environ.get(FILE_ENV):
            with open(os.environ[FILE_ENV], "a") as f:
                f.write(line)
        while action == "pause":
            # short sleeps: a signal that the kernel hands to another thread (torch's
            # pool) sets Python's flag but does not wake the main thread's sleep; the
            # handler runs when the sleep returns
            time.sleep(0.05)
    elif action in _ERRORS:
        code = _ERRORS[action]
        raise OSError(code, os.strerror(code), os.fspath(path) if path is not None else None)
    elif action == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
