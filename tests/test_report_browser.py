"""Render report.html in headless Chromium: the page draws, and every <img> is in the DOM."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from simulator.results.html import write_report
from simulator.results.plots import draw_all

try:  # tests/ is on sys.path under pytest's default (prepend) import mode
    from test_plots import PLOTS, make_results
except ImportError:  # pragma: no cover - tests run as a package
    from tests.test_plots import PLOTS, make_results

CHROMIUM = Path("/usr/bin/chromium")


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (/usr/bin/chromium)")
    d = make_results(tmp_path / "res")
    draw_all(d, formats=("png",), per_layer_hist=True)
    return write_report(d)


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    res = _chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,3000",
                    report.as_uri())
    assert shot.is_file(), f"no screenshot; chromium said:\n{res.stderr[-2000:]}"
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    colours = np.unique(img[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, tables and plots, not a blank page
    keep = Path("/tmp/redysim_report_shot.png")  # for a human look after a manual run
    shutil.copyfile(shot, keep)


def test_dom_has_every_image(report: Path, tmp_path: Path) -> None:
    res = _chromium(tmp_path / "profile", "--dump-dom", report.as_uri())
    dom = res.stdout
    assert "<table" in dom, res.stderr[-2000:]
    imgs = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)"', dom)
    assert sorted(imgs) == sorted([*PLOTS, "bits_histogram_layers"])
