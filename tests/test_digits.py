"""Tests for workloads.trained.digits: the small trained CNN on sklearn's digits."""

from __future__ import annotations

import shutil

import pytest
import torch

import workloads.trained.digits as digits
from workloads.graph import trace_model
from workloads.models import build_model
from workloads.trained.digits import (
    CACHE_VERSION,
    DigitsCNN,
    cache_path,
    digits_indices,
    digits_split,
    evaluate,
    load_digits_model,
    train_digits_cnn,
)


@pytest.fixture(scope="module")
def trained() -> DigitsCNN:
    """The cached model (trained once, in well under a minute, when the cache is empty)."""
    return load_digits_model()


def test_split() -> None:
    (x_tr, y_tr), (x_ca, y_ca), (x_te, y_te) = digits_split()
    assert x_tr.shape == (987, 1, 8, 8) and x_ca.shape == (360, 1, 8, 8)
    assert x_te.shape == (450, 1, 8, 8)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert float(x_tr.min()) == 0.0 and float(x_tr.max()) == 1.0
    # stratified: ~10% of each part per class (1797 images, 174..183 per class)
    assert set(torch.bincount(y_te).tolist()) <= {43, 44, 45, 46}
    assert set(torch.bincount(y_ca).tolist()) <= {34, 35, 36, 37, 38}
    again = digits_split()
    assert torch.equal(again.test[0], x_te) and torch.equal(again.test[1], y_te)


def test_split_parts_are_disjoint_and_complete() -> None:
    tr, ca, te = digits_indices()
    assert len(set(tr) | set(ca) | set(te)) == 1797 == len(tr) + len(ca) + len(te)


def test_trained_accuracy(trained: DigitsCNN) -> None:
    x_te, y_te = digits_split().test
    assert evaluate(trained, x_te, y_te) >= 97.0


def test_traced_digits_matches_float(trained: DigitsCNN) -> None:
    x_te, y_te = digits_split().test
    tw = trace_model(trained, (1, 8, 8), "digits")
    with torch.no_grad():
        torch.testing.assert_close(tw.module(x_te), trained(x_te), rtol=1e-4, atol=1e-4)
    assert evaluate(tw.module, x_te, y_te) == evaluate(trained, x_te, y_te)


def test_build_model_digits(trained: DigitsCNN) -> None:
    model, shape = build_model("digits", 8, seed=3)
    assert shape == (1, 8, 8)
    torch.testing.assert_close(model.state_dict(), trained.state_dict())


def test_training_is_deterministic() -> None:
    a = train_digits_cnn(seed=1, epochs=1)
    b = train_digits_cnn(seed=1, epochs=1)
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)


def test_cache_location(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REDYSIM_CACHE", str(tmp_path))
    p = cache_path()
    assert p.parent == tmp_path and CACHE_VERSION in p.name and "seed0" in p.name
    monkeypatch.delenv("REDYSIM_CACHE")
    assert ".cache/redysim" in cache_path().as_posix()


def test_cache_load_and_train_when_missing(monkeypatch, tmp_path, trained: DigitsCNN) -> None:
    # a present cache file is loaded without training
    shutil.copy(cache_path(), tmp_path / cache_path().name)
    monkeypatch.setattr(digits, "train_digits_cnn", lambda seed=0: pytest.fail("retrained"))
    loaded = load_digits_model(tmp_path)
    torch.testing.assert_close(loaded.state_dict(), trained.state_dict())
    # a missing one is trained and saved
    calls = []

    def fake_train(seed: int = 0) -> DigitsCNN:
        calls.append(seed)
        torch.manual_seed(seed)
        return DigitsCNN().eval()

    monkeypatch.setattr(digits, "train_digits_cnn", fake_train)
    empty = tmp_path / "empty"
    model = load_digits_model(empty)
    assert calls == [0] and cache_path(empty).is_file()
    torch.testing.assert_close(load_digits_model(empty).state_dict(), model.state_dict())
    assert calls == [0]
