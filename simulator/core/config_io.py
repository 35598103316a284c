"""Loading YAML files into validated pydantic objects, with errors that name file and key.

Every configuration file of the project goes through :func:`load_model`; components never
read files themselves. Errors are raised as :class:`ConfigError`, whose message names the
file, the key path inside it and what was expected, so the CLI can print one clear line
instead of a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)

#: The configuration of every scenario-side model: unknown keys are errors and values are
#: not coerced between types (``"224"`` is not an integer, ``1.0`` is not an integer,
#: ``1`` is not a boolean; an integer is accepted where a float is expected, and YAML
#: lists are accepted for fixed-length tuples). The hardware models (simulator/hardware/spec.py)
#: follow the same rules with their own frozen base.
STRICT_CONFIG = ConfigDict(extra="forbid", strict=True)


class StrictModel(BaseModel):
    """Base of the scenario-side configuration models (see :data:`STRICT_CONFIG`)."""

    model_config = STRICT_CONFIG


class ConfigError(Exception):
    """A user-facing configuration problem (bad file, key or value)."""


def path_is_file(p: Path, what: str) -> bool:
    """Whether *p* is an existing file; a path that cannot even be checked (too long, a
    NUL byte, a permission) is a ConfigError naming it, a folder is "not a file"."""
    try:
        if p.is_dir():
            raise ConfigError(f"{_short(p)}: {what} is a folder, not a file")
        return p.is_file()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{_short(p)}: cannot use this path as {what} ({reason})") from None


def _short(p: Path, limit: int = 200) -> str:
    s = str(p)
    return s if len(s) <= limit else s[: limit // 2] + " ... " + s[-limit // 2:]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from *path*, raising ConfigError for missing or malformed files."""
    p = Path(path)
    if not path_is_file(p, "file"):
        raise ConfigError(f"{p}: file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a text (UTF-8) file: byte {exc.start} cannot be "
                          "decoded; a YAML file was expected") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{p}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


#: the names pydantic gives the branches of a union in an error location
_UNION_TAG = re.compile(r"^(constrained-\w+|literal\[.*\]|function-\w+\[.*\]|[a-z]+\[.*\]|"
                        r"int|float|str|bool|none|bytes)$")
_NUMBER_TEXT = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _hint(err: dict[str, Any]) -> str:
    """A short suggestion for the common type mistakes of hand-written YAML."""
    got, kind = err.get("input"), err["type"]
    if kind in ("int_type", "float_type", "int_parsing", "float_parsing") and isinstance(
            got, str) and _NUMBER_TEXT.match(got):
        if "e" in got.lower() and "." not in got:
            return (f"; YAML reads {got} as text: write the number in full "
                    f"({float(got):.0f}) or with a decimal point (1.0e9) where a float is "
                    "expected")
        return f"; numbers are not read from quoted text: write {got.strip()} without quotes"
    if kind == "int_type" and isinstance(got, float) and got.is_integer():
        return f"; write it as an integer: {int(got)}"
    if kind == "bool_type" and not isinstance(got, bool):
        return "; write true or false"
    return ""


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic ValidationError into lines 'file: key.path: problem (got value)'.

    The branches of a union (``chips: 3 | auto``) that failed on the same value are
    merged into one line.
    """
    merged: dict[str, list] = {}
    for err in exc.errors():
        parts = [str(x) for x in err["loc"]]
        if len(parts) > 1 and _UNION_TAG.match(parts[-1]):
            parts = parts[:-1]
        loc = ".".join(parts) or "<top level>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check spelling; see docs/config.md for the allowed keys)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        entry = merged.setdefault(loc, [[], err, ""])
        if msg not in entry[0]:
            entry[0].append(msg)
        entry[2] = entry[2] or _hint(err)
    lines = []
    for loc, (msgs, err, hint) in merged.items():
        msg = msgs[0] + "".join(", or " + m.removeprefix("Input should be ") for m in msgs[1:])
        got = err.get("input")
        got_s = ""
        if err["type"] not in ("missing", "extra_forbidden") and not isinstance(got, dict):
            got_s = f" (got {got!r})"
        lines.append(f"{source}: {loc}: {msg}{got_s}{hint}")
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
