"""The artifact-cache options the commands that trace a network share (``run``, ``map``,
``tune``): ``--cache DIR`` and ``--no-cache``."""

from __future__ import annotations

import argparse
from typing import Any


def add_cache_options(p: argparse.ArgumentParser) -> None:
    """Add ``--cache DIR`` and ``--no-cache`` to the command parser *p*."""
    p.add_argument("--cache", metavar="DIR",
                   help="artifact cache folder: traced network, mapping, timing plan, scales and "
                        "bit planes are read "
                        "from it when there and stored when not (default: $REDYSIM_CACHE/"
                        "artifacts or the platform cache folder's)")
    p.add_argument("--no-cache", dest="no_cache", action="store_true",
                   help="compute everything afresh and store nothing in the artifact cache")


def artifact_cache(args: argparse.Namespace) -> Any:
    """The :class:`~simulator.runner.cache.ArtifactCache` the options ask for, or None
    (``--no-cache``)."""
    if getattr(args, "no_cache", False):
        return None
    from simulator.runner.cache import ArtifactCache

    return ArtifactCache(args.cache) if getattr(args, "cache", None) else ArtifactCache()
