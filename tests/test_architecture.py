"""docs/architecture.md matches the code: every module its layer diagram names exists, every
module of the packages is in the diagram, every path and dotted name it cites exists, and
the diagram's layers are those of the import-linter contract in pyproject.toml."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("simulator", "workloads", "mapping")


def _diagram() -> list[tuple[int, str, list[str]]]:
    """(layer, package path, module paths) of each line of the layer diagram."""
    text = DOC.read_text()
    block = text.split("## The layers", 1)[1].split("```", 2)[1]
    rows: list[tuple[int, str, list[str]]] = []
    sub = None  # the subpackage whose "( ... )" group is open, across continuation lines
    for line in block.splitlines()[1:]:
        if not line.strip() or line.startswith("layer"):
            continue
        m = re.match(r"\s*(\d+)\s+(\S+/)\s+(.*)$", line)
        if m:
            rows.append((int(m.group(1)), m.group(2), []))
            rest = m.group(3)
        else:
            rest = line
        layer, pkg, mods = rows[-1]
        opened = sub is not None
        for tok in re.findall(r"\(|\)|[\w/]+", rest):
            if tok == "(":
                opened = True
                continue
            if tok == ")":
                sub, opened = None, False
                continue
            if tok.endswith("/"):
                mods.append(pkg + tok)
                sub, opened = pkg + tok, False
            else:
                mods.append((sub if opened else pkg) + tok)
        if not opened:
            sub = None
    return rows


def _exists(path: str) -> bool:
    p = ROOT / path
    if path.endswith("/"):
        return (p / "__init__.py").is_file()
    return p.with_suffix(".py").is_file()


def test_every_module_in_the_diagram_exists():
    missing = [m for _, _, mods in _diagram() for m in mods if not _exists(m)]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_module_is_in_the_diagram():
    named = {m.rstrip("/") for _, _, mods in _diagram() for m in mods}
    named |= {pkg.rstrip("/") for _, pkg, _ in _diagram()}
    actual = set()
    for top in PACKAGES:
        for f in (ROOT / top).rglob("*.py"):
            rel = f.relative_to(ROOT).with_suffix("").as_posix()
            actual.add(rel[: -len("/__init__")] if rel.endswith("/__init__") else rel)
    actual -= set(PACKAGES)  # the packages' own __init__
    assert not sorted(actual - named), (
        f"modules missing from docs/architecture.md's diagram: {sorted(actual - named)}")


def test_cited_paths_and_names_exist():
    text = DOC.read_text()
    bad = []
    for tok in re.findall(r"`([^`\s]+)`", text):
        tok = tok.rstrip(",.")
        if re.match(r"^(simulator|workloads|mapping|tests|configs|docs|bench|\.ci)/", tok):
            if not (ROOT / tok).exists():
                bad.append(tok)
        elif re.match(r"^(simulator|workloads|mapping)(\.\w+)+$", tok):
            parts = tok.split(".")
            for i in range(len(parts), 0, -1):  # longest importable prefix, then attributes
                try:
                    obj = importlib.import_module(".".join(parts[:i]))
                except ImportError:
                    continue
                try:
                    for a in parts[i:]:
                        obj = getattr(obj, a)
                except AttributeError:
                    bad.append(tok)
                break
            else:
                bad.append(tok)
    assert not bad, f"docs/architecture.md cites what does not exist: {bad}"


def test_diagram_layers_are_the_contract():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in cfg["contracts"] if c["type"] == "layers"
                  and "simulator.core" in c["layers"])["layers"]
    contract = [sorted(x.strip() for x in layer.split("|")) for layer in layers]
    by_layer: dict[int, list[str]] = {}
    for layer, pkg, _ in _diagram():
        by_layer.setdefault(layer, []).append(pkg.rstrip("/").replace("/", "."))
    drawn = [sorted(by_layer[k]) for k in sorted(by_layer, reverse=True)]
    assert drawn == contract


@pytest.mark.parametrize("contract", ["exploration", "engine", "commands", "no cycles"])
def test_contract_table_lists_each_contract(contract):
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert len(cfg["contracts"]) == 5
    assert f"| {contract} |" in DOC.read_text()
