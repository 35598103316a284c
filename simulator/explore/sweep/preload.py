"""Dask worker preload (``dask worker --preload simulator.explore.sweep.preload``): import
torch and the run's steps, and set one thread per pool, while the worker starts rather
than in its first task. Optional on a cluster of your own; the local cluster uses it."""

from __future__ import annotations

import simulator.runner.flow  # noqa: F401 - the import is the point
from simulator.explore.sweep.tasks import worker_setup

worker_setup()
