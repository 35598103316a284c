"""Dask worker preload (``dask worker --preload simulator.explore.sweep.preload``): import
the run's steps and set one thread per native pool while the worker starts rather than in
its first task. Torch is not imported here: a sweep whose artifacts are all cached never
needs it, and a task that does sets its threads first (:func:`~simulator.explore.sweep.
tasks.torch_setup`). Optional on a cluster of your own; the local cluster uses it."""

from __future__ import annotations

import simulator.runner.flow  # noqa: F401 - the import is the point
from simulator.explore.sweep.tasks import worker_setup

worker_setup()
