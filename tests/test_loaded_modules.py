"""simulator/core/loaded_modules.py: a module another thread is still importing is not
taken for an imported one (a record unpickled meanwhile keeps its numpy logits)."""

from __future__ import annotations

import pickle
import sys
import types
from importlib.machinery import ModuleSpec

import numpy as np
import pytest

from simulator.core.loaded_modules import loaded
from workloads.precision.options import PolicySpec
from workloads.precision.records import PipelinePrecision


def _fake_torch(initializing: bool) -> types.ModuleType:
    """A module named torch as importlib leaves it while (or after) running its code; its
    ``from_numpy`` tags the array so the test sees it was called."""
    mod = types.ModuleType("torch")
    mod.__spec__ = ModuleSpec("torch", None)
    mod.__spec__._initializing = initializing
    mod.from_numpy = lambda a: ("tensor", a)
    return mod


def test_loaded_is_none_for_a_module_being_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(initializing=True))
    assert loaded("torch") is None
    done = _fake_torch(initializing=False)
    monkeypatch.setitem(sys.modules, "torch", done)
    assert loaded("torch") is done
    monkeypatch.delitem(sys.modules, "torch")
    assert loaded("torch") is None


def test_a_record_read_while_torch_is_being_imported_keeps_numpy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    logits = np.arange(6, dtype=np.float32).reshape(2, 3)
    blob = pickle.dumps(PipelinePrecision(PolicySpec(), {}, accuracy=0.5, logits=logits))
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(initializing=True))
    got = pickle.loads(blob).logits  # (a real half-built torch has no from_numpy yet)
    assert isinstance(got, np.ndarray) and np.array_equal(got, logits)
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(initializing=False))
    tag, arr = pickle.loads(blob).logits  # imported: a tensor again (here the fake's tag)
    assert tag == "tensor" and np.array_equal(arr, logits)
