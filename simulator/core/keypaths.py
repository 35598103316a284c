"""Dotted key paths into nested YAML data (``simulation.images``, ``pipelines.redy.k``)."""

from __future__ import annotations

import copy
from typing import Any

from simulator.core.config_io import ConfigError


def set_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set ``data[a][b][c] = value`` for *key* ``"a.b.c"``, in place (the value replaces
    whatever was there; missing mappings on the way are created).

    Raises :class:`ConfigError` naming *source* and the key when a step of the path is not
    a mapping.
    """
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{source}: {key}: not a key path (empty part)")
    cur: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = cur.get(part)
        if nxt is None:
            nxt = cur[part] = {}
        elif not isinstance(nxt, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"{source}: {key}: {where} is a {type(nxt).__name__}, not a "
                              "mapping of keys")
        cur = nxt
    cur[parts[-1]] = copy.deepcopy(value)
