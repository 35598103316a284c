"""Loading YAML files into validated pydantic objects, with errors that name file and key.

Every configuration file of the project goes through :func:`load_model`; components never
read files themselves. Errors are raised as :class:`ConfigError`, whose message names the
file, the key path inside it and what was expected, so the CLI can print one clear line
instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A user-facing configuration problem (bad file, key or value)."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from *path*, raising ConfigError for missing or malformed files."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: file not found")
    if not p.is_file():
        raise ConfigError(f"{p}: not a file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:  # pragma: no cover - message formatting only
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{p}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic ValidationError into lines 'file: key.path: problem (got value)'."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "<top level>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check spelling; see docs/config.md for the allowed keys)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        got = err.get("input")
        got_s = ""
        if err["type"] not in ("missing", "extra_forbidden") and not isinstance(got, dict):
            got_s = f" (got {got!r})"
        lines.append(f"{source}: {loc}: {msg}{got_s}")
    return "\n".join(lines)


def validate(model: type[M], data: dict[str, Any], source: str) -> M:
    """Validate *data* against *model*; *source* (usually the file path) prefixes errors."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_model(model: type[M], path: str | Path) -> M:
    """Load YAML at *path* and validate it as *model*."""
    return validate(model, load_yaml(path), str(path))
