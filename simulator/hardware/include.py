"""Hardware files that include a base file and override what differs.

A hardware YAML may start with ``include: base.yaml`` (a path relative to the including
file). The base is loaded first (it may include another file in turn), then the
including file's keys are merged over it: mappings merge key by key, any other value
(number, string, list) replaces the base's. So ``isaac8.yaml`` is ``include: isaac.yaml``
plus the handful of keys that differ.

The same merge serves :meth:`HardwareSpec.with_changes` and sweep axes, with one rule for
a knob that has two spellings (the ADC sharing ``ima.adcs`` / ``ima.crossbars_per_adc``;
the input register ``ima.input_register_bytes`` / ``ima.input_register_bits_per_row``): an
override that sets one of them and not the other drops the other from the base, so the
new value is not checked against the old one.

Errors (all :class:`~simulator.core.config_io.ConfigError`): a missing included file (named
with the file and key that include it), an include cycle (the chain of files), an
``include`` that is not a string. Unknown keys are found by the schema when the merged
data is validated; :func:`origin_of` names the file that wrote the offending key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from simulator.core.config_io import ConfigError, load_yaml

#: Knobs with two spellings, by section: setting one drops the other (the ADC sharing;
#: the input register's size, in bytes or in bits per crossbar row).
ALTERNATIVES: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {
    ("ima",): (("adcs", "crossbars_per_adc"),
               ("input_register_bytes", "input_register_bits_per_row")),
}


def merge_override(base: dict[str, Any], override: dict[str, Any],
                   _path: tuple[str, ...] | None = ()) -> dict[str, Any]:
    """A new dict: *override* merged over *base* (mappings recursively, other values replaced).

    With ``_path=None`` the rule of :data:`ALTERNATIVES` is not applied (plain merge).
    """
    out = copy.deepcopy(base)
    pairs = ALTERNATIVES.get(_path, ()) if _path is not None else ()
    for a, b in pairs:
        if a in override and b not in override:
            out.pop(b, None)
        elif b in override and a not in override:
            out.pop(a, None)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            sub = None if _path is None else (*_path, str(key))
            out[key] = merge_override(out[key], value, sub)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dotted_to_nested(changes: dict[str, Any]) -> dict[str, Any]:
    """``{"ima.adc_bits": 6, "crossbar": {"rows": 256}}`` -> one nested mapping."""
    nested: dict[str, Any] = {}
    for key, value in changes.items():
        parts = str(key).split(".")
        patch: dict[str, Any] = {}
        cur = patch
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = value
        nested = merge_override(nested, patch, None)
    return nested


class HardwareSource:
    """The files a hardware spec was read from: the top file first, then its includes."""

    def __init__(self, chain: list[tuple[Path, dict[str, Any]]]) -> None:
        self.chain = chain

    @property
    def top(self) -> str:
        """The file the user named."""
        return str(self.chain[0][0])

    def origin_of(self, loc: tuple[str | int, ...]) -> str:
        """The first file of the chain that writes key path *loc* (the top file if none)."""
        for path, raw in self.chain:
            cur: Any = raw
            found = True
            for part in loc:
                if isinstance(cur, dict) and (part in cur or str(part) in cur):
                    cur = cur[part] if part in cur else cur[str(part)]
                else:
                    found = False
                    break
            if found and loc:
                return str(path)
        return self.top


def load_hardware_data(path: str | Path,
                       _stack: tuple[Path, ...] = ()) -> tuple[dict[str, Any], HardwareSource]:
    """Raw hardware data of *path* with its includes resolved, and where each part came from."""
    p = Path(path)
    key = p.resolve()
    if key in _stack:
        chain = " -> ".join(str(s) for s in (*_stack, key))
        raise ConfigError(f"{p}: include cycle: {chain}")
    raw = load_yaml(p)
    inc = raw.get("include")
    own = {k: v for k, v in raw.items() if k != "include"}
    if inc is None:
        return own, HardwareSource([(p, own)])
    if not isinstance(inc, str) or not inc.strip():
        raise ConfigError(f"{p}: include: must be the path of a hardware YAML file "
                          f"(got {inc!r})")
    base_path = Path(inc) if Path(inc).is_absolute() else p.parent / inc
    if not base_path.is_file():
        raise ConfigError(f"{p}: include: file not found: {base_path}")
    base, source = load_hardware_data(base_path, (*_stack, key))
    return merge_override(base, own), HardwareSource([(p, own), *source.chain])


def parse_assignments(items: list[str], what: str) -> dict[str, Any]:
    """``["ima.adc_bits=6", "crossbar.rows=256"]`` -> ``{"ima.adc_bits": 6, ...}``.

    Values are read as YAML scalars (``6`` is an int, ``true`` a bool, ``1.5`` a float).
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what}: expected KEY=VALUE (got {item!r})")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{what}: {key.strip()}: value is not valid YAML "
                              f"(got {value!r})") from None
    return out
