"""``redysim cache``: what the artifact cache holds, trimming it least recently used first,
and clearing it only when asked (simulator/runner/cache_usage.py, simulator/cli/cache.py)."""

from __future__ import annotations

import fcntl
import os
import pickle

import pytest

from simulator.cli.main import main
from simulator.core.config_io import ConfigError
from simulator.runner.cache import ArtifactCache, clear_memory
from simulator.runner.cache_usage import entries, parse_size, trim, usage


def _entry(root, kind, key, size, mtime):
    d = root / kind
    d.mkdir(parents=True, exist_ok=True)
    f = d / f"{key}.pkl"
    f.write_bytes(b"x" * size)
    os.utime(f, (mtime, mtime))
    return f


@pytest.mark.parametrize("text,expected", [("2GB", 2_000_000_000), ("500 MB", 500_000_000),
                                           ("1.5GiB", 1_610_612_736), ("0", 0),
                                           ("64kb", 64_000), ("10", 10)])
def test_sizes_parse(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["2 XB", "lots", "-1GB", ""])
def test_bad_sizes_name_the_option(text):
    with pytest.raises(ConfigError, match="--max-size: expected a size"):
        parse_size(text)


def test_usage_counts_entries_not_locks_or_temporaries(tmp_path):
    _entry(tmp_path, "precision", "a", 100, 1_000)
    _entry(tmp_path, "precision", "b", 50, 3_000)
    _entry(tmp_path, "workload", "c", 7, 2_000)
    (tmp_path / "precision" / "a.lock").touch()
    (tmp_path / "precision" / ".a.pkl.tmp123").write_bytes(b"y" * 999)
    u = usage(tmp_path)
    assert u["precision"] == {"entries": 2, "bytes": 150, "oldest": 1_000, "newest": 3_000}
    assert u["workload"]["entries"] == 1 and u["workload"]["bytes"] == 7
    assert [e.path.stem for e in entries(tmp_path)] == ["a", "c", "b"]  # by last use


def test_trim_removes_least_recently_used_first(tmp_path):
    old = _entry(tmp_path, "workload", "old", 100, 1_000)
    mid = _entry(tmp_path, "precision", "mid", 200, 2_000)
    new = _entry(tmp_path, "scales", "new", 300, 3_000)
    # 600 bytes; to fit 350: without 'old' 500 > 350, without 'mid' too 300 <= 350
    rep = trim(tmp_path, 350)
    assert (rep.removed, rep.removed_bytes, rep.kept, rep.kept_bytes) == (2, 300, 1, 300)
    assert not old.exists() and not mid.exists() and new.exists()
    assert trim(tmp_path, 300).removed == 0  # fits already
    assert trim(tmp_path, 0).removed == 1 and not new.exists()


def test_trim_skips_an_entry_another_process_holds(tmp_path):
    held = _entry(tmp_path, "precision", "held", 100, 1_000)
    free = _entry(tmp_path, "precision", "free", 100, 2_000)
    with open(held.with_suffix(".lock"), "a") as f:  # as ArtifactCache computing it
        fcntl.flock(f, fcntl.LOCK_EX)
        rep = trim(tmp_path, 0)
    assert (rep.removed, rep.busy) == (1, 1)
    assert held.exists() and not free.exists()


def test_reading_an_entry_marks_its_last_use(tmp_path):
    cache = ArtifactCache(tmp_path)
    cache.get_or_compute("scales", "k", lambda: {"a": 1})
    path = cache.path("scales", "k")
    os.utime(path, (1_000, 1_000))
    clear_memory()  # a new process: from disk
    assert ArtifactCache(tmp_path).get_or_compute("scales", "k", lambda: None) == {"a": 1}
    assert path.stat().st_mtime > 1_000
    assert pickle.loads(path.read_bytes()) == {"a": 1}


def test_cli_info_trim_and_clear(tmp_path, capsys, monkeypatch):
    _entry(tmp_path, "workload", "w", 2_000_000, 1_000)
    _entry(tmp_path, "precision", "p", 1_000_000, 2_000)
    assert main(["cache", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "workload" in out and "2.0 MB" in out and "3.0 MB" in out  # total
    assert main(["cache", "trim", "--cache", str(tmp_path)]) == 2  # no size: refused
    assert "--max-size is required" in capsys.readouterr().err
    assert main(["cache", "info", "--max-size", "1GB", "--cache", str(tmp_path)]) == 2
    assert main(["cache", "trim", "--max-size", "1.5MB", "--cache", str(tmp_path)]) == 0
    assert [e.kind for e in entries(tmp_path)] == ["precision"]  # the older one went
    # clearing asks; without a terminal it refuses unless --yes
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    assert main(["cache", "clear", "--cache", str(tmp_path)]) == 2
    assert len(entries(tmp_path)) == 1
    assert main(["cache", "clear", "--yes", "--cache", str(tmp_path)]) == 0
    assert entries(tmp_path) == []
