"""Results folders: staged, swapped in whole, or left exactly as they were."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from faultkit import fake_results, snapshot, staging_left

from simulator.core.config_io import ConfigError
from simulator.core.interrupts import Interrupted
from simulator.core.outdir import (
    OutputError,
    check_output_dir,
    check_output_file,
    staged_results,
    write_file_atomic,
)

pytestmark = pytest.mark.faults


def _write_some(tmp: Path) -> None:
    (tmp / "summary.json").write_text('{"scenario": "new"}')
    (tmp / "layers.csv").write_text("new\n")


def test_success_replaces_existing_folder(tmp_path: Path) -> None:
    out = tmp_path / "res"
    fake_results(out)
    with staged_results(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".res.partial-")
        _write_some(tmp)
    assert snapshot(out) == {"summary.json": b'{"scenario": "new"}', "layers.csv": b"new\n"}
    assert staging_left(tmp_path) == []


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT])
def test_write_error_mid_folder_leaves_existing_untouched(tmp_path: Path, err: int) -> None:
    out = tmp_path / "res"
    fake_results(out)
    before = snapshot(out)
    with pytest.raises(OutputError) as exc:
        with staged_results(out) as tmp:
            _write_some(tmp)
            raise OSError(err, os.strerror(err), str(tmp / "power.svg"))
    msg = str(exc.value)
    assert os.strerror(err) in msg and "power.svg" in msg and "\n" not in msg
    assert "left as it was" in msg
    assert snapshot(out) == before and staging_left(tmp_path) == []


def test_interrupt_removes_staging_and_created_parents(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "res"
    with pytest.raises(Interrupted):
        with staged_results(out) as tmp:
            _write_some(tmp)
            raise Interrupted(2)
    assert list(tmp_path.iterdir()) == []


def test_created_parents_stay_after_success(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "res"
    with staged_results(out) as tmp:
        _write_some(tmp)
    assert (out / "summary.json").is_file() and staging_left(out.parent) == []


def test_check_refuses_paths_that_cannot_be_results(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ConfigError, match="f.txt is a file, not a folder"):
        check_output_dir(tmp_path / "f.txt" / "a" / "b", force=False)
    with pytest.raises(ConfigError, match="is not a folder"):
        check_output_dir(tmp_path / "f.txt", force=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.md").write_text("mine")
    with pytest.raises(ConfigError, match="--force"):
        check_output_dir(tmp_path / "mine", force=False)
    with pytest.raises(ConfigError, match="no summary.json"):
        check_output_dir(tmp_path / "mine", force=True)
    check_output_dir(tmp_path / "new" / "deeper", force=False)  # creatable: fine
    assert not (tmp_path / "new").exists()  # the check creates nothing


def test_atomic_file_write(tmp_path: Path) -> None:
    p = tmp_path / "pol.yaml"
    p.write_text("old")
    with pytest.raises(ConfigError, match="--force"):
        check_output_file(p, force=False)
    check_output_file(p, force=True)
    write_file_atomic(p, "new")
    assert p.read_text() == "new" and [x.name for x in tmp_path.iterdir()] == ["pol.yaml"]
