"""Shared test set-up: tests never use the user's artifact cache, nor one another's.

``redysim run`` reads and writes the artifact cache (``$REDYSIM_CACHE``) by default. A
test must not fill the user's cache folder, nor see another test's artifacts (a capture it
monkeypatches would be skipped): the session gets a cache folder of its own (for module-
and session-scoped fixtures), and each test one more (set while the test runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _session_artifact_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("redysim-cache-session")
    old = os.environ.get("REDYSIM_CACHE")
    os.environ["REDYSIM_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("REDYSIM_CACHE", None)
    else:
        os.environ["REDYSIM_CACHE"] = old


@pytest.fixture(autouse=True)
def _own_artifact_cache(tmp_path_factory: pytest.TempPathFactory,
                        monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("redysim-cache")
    monkeypatch.setenv("REDYSIM_CACHE", str(root))
    return root
