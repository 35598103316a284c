"""Fuzz the shipped YAML files: mutated keys and values never give a traceback.

Every YAML file under ``configs/`` is found at collection time (new files are covered
without editing this test). Each is mutated ``MUTANTS_PER_FILE`` times with a fixed seed —
keys deleted, renamed or added, values replaced by other types, strings of numbers,
zero, negative, huge or non-finite numbers, the whole file truncated or replaced by
bytes that are not text — inside a copy of the ``configs/`` tree (so relative paths still
resolve), and the file's command runs in-process:

- ``configs/hardware/*``: ``redysim hw FILE``;
- ``configs/scenarios/*``: ``redysim map FILE`` (trace + map);
- ``configs/policies/*``: ``redysim map`` of a scenario that includes the policy;
- ``configs/sweeps/*``: the sweep planner (``simulator.explore.sweep.spec.plan_sweep``: every axis
  value and point validated, nothing run);
- ``configs/studies/**``: by what the file is — a study (``load_study`` + ``plan_study``:
  every sweep validated, nothing run), the published ISAAC figures (``load_published``), a
  sweep (``plan_sweep``) or a base scenario (``redysim map``).

The command must return 0 or 2 (a refused input), print a one-line ``redysim: error:``
first, and never raise: any exception escaping ``main`` is a traceback for the user.

Tracing a network is the slow part, so the traced workloads are memoized on their
``workload`` settings (a mutant that changes them is traced anew). Set
``REDYSIM_FUZZ_MUTANTS`` to run more mutants locally.
"""

from __future__ import annotations

import copy
import io
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.faults
CONFIGS = ROOT / "configs"
SEED = 20261130
MUTANTS_PER_FILE = int(os.environ.get("REDYSIM_FUZZ_MUTANTS", "10"))

#: values a careless or hostile user may write anywhere
BAD_VALUES: list[Any] = [
    "224", "3.5", "1e9", "", "abc", "auto", -1, 0, 1, 2, 7, 10**12, 2**70, 1e9, 3.5, -0.5,
    float("nan"), float("inf"), True, False, None, [], {}, [1, 2, 3], {"x": 1},
    "../no/such/file.yaml", "no_such_pkg.mod:fn", "a\x00b",
]


def shipped_files() -> list[Path]:
    """Every YAML file under configs/ (sorted, so the parametrization is stable)."""
    return sorted(p for p in CONFIGS.rglob("*.y*ml") if p.is_file())


# ------------------------------------------------------------------------------ mutation
def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Key paths of every node below *node* (dict keys and list indices)."""
    out: list[tuple] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _parent(root: Any, path: tuple) -> Any:
    node = root
    for k in path[:-1]:
        node = node[k]
    return node


def _perturb(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return rng.choice([0, -1, value * -1, value * 1000, value + 1, value * 10**6,
                           str(value), float(value) + 0.5])
    if isinstance(value, str):
        return rng.choice(["", value + "x", value[:-1], value.upper(), value * 50])
    return rng.choice(BAD_VALUES)


def mutate(data: Any, rng: random.Random) -> tuple[Any, str]:
    """One structural or value mutation of a loaded YAML tree, and what it did."""
    data = copy.deepcopy(data)
    paths = _paths(data)
    op = rng.choice(["delete", "rename", "replace", "replace", "perturb", "perturb", "add"])
    if not paths:
        op = "add"
    if op == "add":
        containers = [()] + [p for p in paths if isinstance(_get(data, p), dict)]
        where = rng.choice(containers)
        target = _get(data, where) if where else data
        if not isinstance(target, dict):
            return data, "no-op"
        key = rng.choice(["unknown_key", "imgaes", "workers", "include", "k"])
        target[key] = rng.choice(BAD_VALUES)
        return data, f"add {'.'.join(map(str, (*where, key)))} = {_short(target[key])}"
    path = rng.choice(paths)
    parent = _parent(data, path)
    key = path[-1]
    name = ".".join(map(str, path))
    if op == "delete":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
        return data, f"delete {name}"
    if op == "rename" and isinstance(parent, dict):
        new = rng.choice([f"{key}_", f"{key}"[:-1] or "x", f"{key}".upper()])
        parent[new] = parent.pop(key)
        return data, f"rename {name} -> {new}"
    if op == "perturb":
        parent[key] = _perturb(parent[key], rng)
        return data, f"perturb {name} = {_short(parent[key])}"
    parent[key] = rng.choice(BAD_VALUES)
    return data, f"replace {name} = {_short(parent[key])}"


def _short(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 120 else s[:60] + " ... " + s[-40:]


def _get(root: Any, path: tuple) -> Any:
    node = root
    for k in path:
        node = node[k]
    return node


def mutant_text(original: str, rng: random.Random) -> tuple[bytes, str]:
    """The bytes of one mutant of a YAML file, and a description."""
    roll = rng.random()
    if roll < 0.06:
        cut = rng.randrange(len(original) + 1)
        return original[:cut].encode(), f"truncate at {cut}"
    if roll < 0.09:
        return bytes(rng.randrange(256) for _ in range(64)), "binary garbage"
    if roll < 0.11:
        return b"- just\n- a list\n", "top-level list"
    data = yaml.safe_load(original)
    descs = []
    for _ in range(1 if rng.random() < 0.8 else 2):
        data, d = mutate(data, rng)
        descs.append(d)
    return yaml.safe_dump(data, allow_unicode=True).encode(), "; ".join(descs)


# ------------------------------------------------------------------------------ runners
Runner = Callable[[Path, Path, pytest.CaptureFixture[str]], tuple[int, str]]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.err + cap.out


def run_hardware(f: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``redysim hw FILE``."""
    return _cli(["hw", str(f)], capsys)


def run_scenario(f: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``redysim map FILE``."""
    return _cli(["map", str(f)], capsys)


def run_policy(f: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``redysim map`` of the digits scenario with a pipeline that includes *f*."""
    sc = yaml.safe_load((tree / "scenarios" / "digits.yaml").read_text())
    sc["pipelines"]["fuzzed"] = {"include": os.path.relpath(f, tree / "scenarios")}
    p = tree / "scenarios" / "_fuzz_policy_user.yaml"
    p.write_text(yaml.safe_dump(sc))
    return _cli(["map", str(p)], capsys)


def run_sweep(f: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Plan the sweep (validate every axis value and point; nothing runs)."""
    from simulator.cli.main import _user_errors

    try:
        from simulator.explore.sweep.spec import plan_sweep
    except ImportError:  # pragma: no cover - sweeps need a validating entry point
        pytest.fail("configs/sweeps exists but simulator.explore.sweep.spec.plan_sweep does not: "
                    "give test_fuzz_configs.RUNNERS['sweeps'] the sweep's validation step")
    try:
        plan_sweep(f)
    except _user_errors() as exc:
        return 2, f"redysim: error: {exc}"
    return 0, ""


def run_study_file(f: Path, tree: Path,
                   capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """A file of configs/studies/, checked by the step that reads it (decided by what the
    shipped original is: a study, the published figures, a sweep or a scenario)."""
    from simulator.cli.main import _user_errors
    from simulator.explore.study.run import plan_study
    from simulator.explore.study.spec import load_published, load_study

    original = yaml.safe_load((CONFIGS / f.relative_to(tree)).read_text())
    if "axes" in original:
        return run_sweep(f, tree, capsys)
    if "workload" in original:
        return run_scenario(f, tree, capsys)
    try:
        if "table_i" in original:
            load_published(f)
        else:
            plan_study(load_study(f))
    except _user_errors() as exc:
        return 2, f"redysim: error: {exc}"
    return 0, ""


#: runner per folder of configs/; a folder without a runner fails the test (add one)
RUNNERS: dict[str, Runner] = {"hardware": run_hardware, "scenarios": run_scenario,
                              "policies": run_policy, "sweeps": run_sweep,
                              "studies": run_study_file}


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of configs/ that the mutants are written into."""
    dst = tmp_path_factory.mktemp("fuzz") / "configs"
    shutil.copytree(CONFIGS, dst)
    return dst


_TRACED: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def memo_workloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trace each distinct workload once (mapping runs on a copy of its graph)."""
    from simulator.runner import flow

    real = flow.load_workload

    def cached(sc):
        key = sc.workload.model_dump_json() + "|" + str(sc.base_dir)
        if key not in _TRACED:
            _TRACED[key] = real(sc)
        wl = _TRACED[key]
        traced = copy.copy(wl.traced)
        traced.graph = wl.traced.graph.copy()
        return flow.Workload(traced, wl.calib_inputs, wl.eval_inputs, wl.eval_labels,
                             wl.note)

    monkeypatch.setattr(flow, "load_workload", cached)


# ------------------------------------------------------------------------------ the test
@pytest.mark.parametrize("rel", [str(p.relative_to(CONFIGS)) for p in shipped_files()])
def test_mutants_never_traceback(rel: str, tree: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = rel.split("/")[0]
    assert folder in RUNNERS, (f"configs/{folder}/ has no fuzz runner: add one to "
                               "tests/test_fuzz_configs.RUNNERS")
    runner = RUNNERS[folder]
    target = tree / rel
    original = (CONFIGS / rel).read_text()
    rng = random.Random(f"{SEED}:{rel}")
    failures = []
    try:
        for i in range(MUTANTS_PER_FILE):
            text, desc = mutant_text(original, rng)
            target.write_bytes(text)
            try:
                rc, out = runner(target, tree, capsys)
            except BaseException as exc:  # noqa: BLE001 - the point of the test
                import traceback

                buf = io.StringIO()
                traceback.print_exception(exc, file=buf)
                failures.append(f"mutant {i} ({desc}): raised {type(exc).__name__}: {exc}\n"
                                f"{buf.getvalue()[-1500:]}")
                continue
            if "Traceback" in out or rc not in (0, 2):
                failures.append(f"mutant {i} ({desc}): exit {rc}, output:\n{out[-800:]}")
            elif rc == 2 and not out.lstrip().startswith("redysim: error:"):
                failures.append(f"mutant {i} ({desc}): refused without a one-line error:\n"
                                f"{out[:400]}")
    finally:
        target.write_text(original)
    assert not failures, f"{rel}: " + "\n\n".join(failures)
