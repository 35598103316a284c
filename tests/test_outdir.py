"""Results folders: staged, swapped in whole, or left exactly as they were."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
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


# ------------------------------------------------------------------ modes follow the umask
@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _read_as(uid: int, paths: list[Path]) -> int:
    """In a forked child running as *uid* (and its group), list every folder and read
    every file of *paths*; the child's exit status (0: all readable)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            for p in paths:
                (os.listdir if p.is_dir() else (lambda q: Path(q).read_bytes()))(p)
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_results_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    """Issue 19 item 3: results/quickstart/ was mode 0700 under umask 0022 (mkdtemp)."""
    out = tmp_path / "res"
    with staged_results(out) as tmp:
        _write_some(tmp)
        (tmp / "sub").mkdir()
    assert (out.stat().st_mode & 0o777) == 0o755
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {
        "summary.json": 0o644, "layers.csv": 0o644, "sub": 0o755}
    pol = tmp_path / "new" / "pol.yaml"
    write_file_atomic(pol, "k: 1\n")
    assert (pol.stat().st_mode & 0o777) == 0o644
    os.chmod(pol, 0o600)  # a file that is replaced keeps its mode
    write_file_atomic(pol, "k: 2\n")
    assert (pol.stat().st_mode & 0o777) == 0o600


def test_private_umask_stays_private(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        with staged_results(tmp_path / "res") as tmp:
            _write_some(tmp)
    finally:
        os.umask(old)
    assert (tmp_path / "res").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "res" / "summary.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_another_user_reads_the_results(umask_022: None) -> None:
    """What the shared-filesystem recipe needs: another uid lists and reads the results
    (pytest's own temporary folders are private, so this one is made in the system's)."""
    base = Path(tempfile.mkdtemp(prefix="redysim-umask-"))
    try:
        os.chmod(base, 0o755)
        out = base / "res"
        with staged_results(out) as tmp:
            _write_some(tmp)
        nobody = 65534
        assert _read_as(nobody, [out, out / "summary.json", out / "layers.csv"]) == 0
        os.chmod(out / "layers.csv", 0o600)  # the check can fail: a private file is refused
        assert _read_as(nobody, [out / "layers.csv"]) == 1
    finally:
        shutil.rmtree(base)


def test_results_on_a_kernel_file_system_are_named(tmp_path: Path) -> None:
    """Issue 19 item 12: '-o /proc/x' said '/proc: No such file or directory'."""
    if not Path("/proc/self/mounts").is_file():
        pytest.skip("no /proc")
    with pytest.raises(ConfigError) as exc:
        check_output_dir(Path("/proc/x"), force=False)
    msg = str(exc.value)
    assert msg.startswith("/proc/x: cannot write results there: /proc is on a proc file "
                          "system") and "choose a folder on a disk" in msg and "\n" not in msg
