"""The ReDy study (``redysim study``): the reduced study on the two trained networks, its
qualitative results, its page, and the study file's validation.

The reduced study (``configs/studies/redy-quick.yaml``: the digits CNN and the residual
CNN at group fidelity, plus the ISAAC checks) runs once per module through the CLI, into a
temporary folder. The assertions are the qualitative results the study exists to show
(docs/validation.md): ReDy below static in energy on every network, msb-trim lossless,
the saving dominated by the ADC, accuracy within the budget on the trained networks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from accuracy_bounds import HELD_OUT_BOUND

from simulator.core.config_io import ConfigError

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "configs" / "studies" / "redy-quick.yaml"
FULL = ROOT / "configs" / "studies" / "redy.yaml"
ADC_PJ = 2.0 * 100 / 128  # DESIGN.md §3: 2 mW x 100 ns / 128 columns per 8-bit conversion


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from simulator.cli.main import main

    out = tmp_path_factory.mktemp("study")
    rc = main(["study", str(QUICK), "--doc", str(out / "validation.md"), "--figures",
               str(out / "fig"), "--results", str(out / "res"), "--quiet"])
    assert rc == 0
    return out, json.loads((out / "res" / "study.json").read_text())


def _nets(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["network"]: r for r in data["networks"]}


def test_both_networks_ran(quick) -> None:
    _, data = quick
    nets = _nets(data)
    assert set(nets) == {"digits", "resnet-digits"}
    for r in nets.values():
        assert r["status"] == "ok"
        assert set(r["pipelines"]) >= {"static", "msb-trim", "redy", "redy-tuned"}
        assert r["workload_info"]["weights"] == "trained-here"


def test_redy_below_static_on_every_network(quick) -> None:
    for name, r in _nets(quick[1]).items():
        p = r["pipelines"]
        s = p["static"]["energy_pj"]
        assert p["redy"]["energy_pj"] < s, name
        assert p["redy-tuned"]["energy_pj"] < p["redy"]["energy_pj"], name
        # fewer bit planes: fewer conversions
        assert p["redy"]["counts"]["adc_conversions"] < p["static"]["counts"][
            "adc_conversions"], name
        assert p["static"]["mean_bits"] == pytest.approx(8.0)


def test_msb_trim_is_lossless(quick) -> None:
    """Same accuracy as static, and no layer's activations change at all (zero error)."""
    out, data = quick
    for name, r in _nets(data).items():
        p = r["pipelines"]
        assert p["msb-trim"]["accuracy"] == p["static"]["accuracy"], name
        assert p["msb-trim"]["top5"] == p["static"]["top5"], name
        assert p["msb-trim"]["mean_bits"] < 8.0
        summ = json.loads((out / "res" / r["sweep"].split("/")[-1].removesuffix(".yaml")
                           / "points" / r["id"] / "summary.json").read_text())
        for layer, lp in summ["pipelines"]["msb-trim"]["precision"].items():
            assert lp["rel_rms_error"] == 0.0, (name, layer)
            assert lp["saturated_fraction"] == 0.0, (name, layer)


def test_saving_is_dominated_by_the_adc(quick) -> None:
    """The ADC's part of the saving is more than half of it, and it is the conversions
    saved times the 8-bit conversion energy derived from Table I (1.5625 pJ)."""
    for name, r in _nets(quick[1]).items():
        s, d = r["pipelines"]["static"], r["pipelines"]["redy"]
        saving = s["energy_pj"] - d["energy_pj"]
        adc = s["components_pj"]["ADC"] - d["components_pj"]["ADC"]
        conv = s["counts"]["adc_conversions"] - d["counts"]["adc_conversions"]
        assert adc == pytest.approx(conv * ADC_PJ, rel=1e-9), name
        assert adc > 0.5 * saving, name
        assert adc == max(s["components_pj"][c] - d["components_pj"][c]
                          for c in s["components_pj"]), name


def test_accuracy_on_held_out_images(quick) -> None:
    """On the 450 test images the dynamic pipelines stay within HELD_OUT_BOUND of static:
    tuning guarantees BUDGET only on the images it tunes on (tests/accuracy_bounds.py says
    why the held-out bound is looser, and tests/test_tune_cli.py asserts the guarantee)."""
    for name, r in _nets(quick[1]).items():
        p = r["pipelines"]
        assert p["static"]["measured_images"] == 450
        for pipe in ("redy", "redy-tuned"):
            loss = p["static"]["accuracy"] - p[pipe]["accuracy"]
            assert loss <= HELD_OUT_BOUND + 1e-9, (name, pipe, loss)


def test_isaac_checks(quick) -> None:
    """Table I totals and Table IV within 2 % (closed form), and the engine's full-activity
    IMA power equal to Table I's row sum 24.08 mW (2.4 + 4 + 0.01 + 16 + 0.2 + 1.24 +
    0.23)."""
    isaac = quick[1]["isaac"]
    chip = isaac["report"]["chip"]
    assert chip["power_w"] == pytest.approx(65.8, rel=0.02)
    assert chip["area_mm2"] == pytest.approx(85.4, rel=0.02)
    assert chip["peak_tops"] == pytest.approx(41.0, rel=0.02)
    assert chip["peak_gops_per_w"] == pytest.approx(627.5, rel=0.02)
    eng = isaac["engine"]
    assert eng["ima_total_mw"] == pytest.approx(24.08, rel=1e-6)
    assert eng["ima_mw"]["adc"] == pytest.approx(16.0, rel=1e-6)
    assert eng["period_ns"] == pytest.approx(1600.0)


def test_page_and_plots(quick) -> None:
    out, data = quick
    page = (out / "validation.md").read_text()
    assert "Generated by `redysim study" in page
    h = data["headline"]
    assert f"{100 * h['mean']:.1f} %" in page and "the paper reports 13 %" in page
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page):
        assert (out / link).is_file(), link
    assert "## ISAAC check" in page and "| peak GOPS/W | 627.5 |" in page
    assert "## Sensitivity" not in page  # the reduced study has none


def test_render_keeps_the_run_record(quick) -> None:
    """--render redraws the page from the finished points without running them and keeps
    the wall times, loads and versions of the run that produced them."""
    from simulator.cli.main import main

    out, data = quick
    (out / "validation.md").write_text("*Generated by `redysim study` (stale)*\n")
    rc = main(["study", str(QUICK), "--doc", str(out / "validation.md"), "--figures",
               str(out / "fig"), "--results", str(out / "res"), "--quiet", "--render"])
    assert rc == 0
    again = json.loads((out / "res" / "study.json").read_text())
    assert again["timings"] == data["timings"] and again["env"] == data["env"]
    assert again["rendered_again"]
    for a, b in zip(again["networks"], data["networks"], strict=True):
        assert a["pipelines"] == b["pipelines"]
    assert "redrawn from the finished points" in (out / "validation.md").read_text()


def test_a_failed_network_point_is_listed_not_fatal(quick, tmp_path: Path) -> None:
    """A network point that failed (say, an eDRAM buffer too small) is named in the
    headline; the page is still written from the others."""
    import copy

    from simulator.explore.study.page import write_page
    from simulator.explore.study.spec import load_study

    data = copy.deepcopy(quick[1])
    data["networks"].append({"id": "network=broken", "axes": {"network": "broken"},
                             "status": "failed", "error": "SimulationError: boom",
                             "sweep": "x.yaml"})
    study = load_study(QUICK, doc=tmp_path / "v.md", figures=tmp_path / "f",
                       results=tmp_path / "r")
    page = write_page(data, study).read_text()
    assert "**Failed points**" in page and "network=broken" in page
    assert f"{100 * quick[1]['headline']['mean']:.1f} %" in page


def test_headline_is_the_mean_of_the_savings() -> None:
    """headline() on two hand-made networks: savings 10 % and 20 % -> mean 15 %; ADC
    shares 0.6 and 0.8."""
    from simulator.explore.study.facts import headline
    from simulator.explore.study.spec import Study, StudySpec

    def net(name: str, static: float, redy: float, adc_s: float, adc_r: float) -> dict:
        comp = {"ADC": 0.0, "DAC": 0.0}
        return {"id": name, "network": name, "workload_info": {"weights": "random"},
                "pipelines": {
                    "static": {"energy_pj": static, "dynamic_pj": static,
                               "components_pj": {**comp, "ADC": adc_s, "DAC": static - adc_s}},
                    "redy": {"energy_pj": redy, "dynamic_pj": redy,
                             "components_pj": {**comp, "ADC": adc_r, "DAC": redy - adc_r}}}}

    spec = StudySpec(name="t", doc="d.md", figures="f", results="r", networks=["x.yaml"])
    study = Study(spec, Path("s.yaml"), Path("d.md"), Path("f"), Path("r"))
    # 100 -> 90: saving 10, ADC 60 -> 54 (6 of 10); 200 -> 160: saving 40, ADC 120 -> 88
    h = headline({"networks": [net("a", 100.0, 90.0, 60.0, 54.0),
                               net("b", 200.0, 160.0, 120.0, 88.0)]}, study)
    assert h.mean == pytest.approx(0.15) and h.dyn_mean == pytest.approx(0.15)
    assert (h.min, h.max) == (pytest.approx(0.10), pytest.approx(0.20))
    assert h.adc_share_min == pytest.approx(0.6)
    assert h.adc_share_mean == pytest.approx(0.7)
    assert h.trained_mean is None and h.random_mean == pytest.approx(0.15)


def test_the_full_study_file_is_valid() -> None:
    """configs/studies/redy.yaml and every sweep it names validate (no run)."""
    from simulator.explore.study.spec import load_study
    from simulator.explore.sweep.spec import plan_sweep

    study = load_study(FULL)
    names = [*study.spec.networks, *(s.sweep for s in study.spec.sensitivity),
             *study.spec.fidelity]
    points = {n: len(plan_sweep(study.path(n)).points) for n in names if n}
    assert points["redy/torchvision.yaml"] + points["redy/torchvision-densenet121.yaml"] == 8
    assert points["redy/sens-k-epsilon.yaml"] == 15
    assert points["redy/fidelity.yaml"] == 6
    assert points["redy/fidelity-resnet18.yaml"] == 3
    assert study.doc == ROOT / "docs" / "validation.md"


def test_bad_study_files(tmp_path: Path) -> None:
    from simulator.explore.study.spec import load_study

    good = yaml.safe_load(QUICK.read_text())
    bad = tmp_path / "s.yaml"
    bad.write_text(yaml.safe_dump({**good, "workerz": 2}))
    with pytest.raises(ConfigError, match=r"s\.yaml.*workerz"):
        load_study(bad)
    bad.write_text(yaml.safe_dump({**good, "networks": ["nope.yaml"]}))
    with pytest.raises(ConfigError, match=r"networks\[0\]: file not found"):
        load_study(bad)


def test_a_page_not_written_by_a_study_is_not_overwritten(tmp_path: Path, capsys) -> None:
    from simulator.cli.main import main

    doc = tmp_path / "mine.md"
    doc.write_text("# my notes\n")
    rc = main(["study", str(QUICK), "--doc", str(doc), "--results", str(tmp_path / "r")])
    assert rc == 2
    assert "was not written by redysim study" in capsys.readouterr().err
    assert doc.read_text() == "# my notes\n"
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------- the page states what it computed


def _rich(data: dict[str, Any]) -> dict[str, Any]:
    """The quick study's data with every section of the page filled: sensitivity and fidelity
    sweeps built from its network rows, a failed point, and pipelines measured above their
    bound both during the fill and after a long warm-up."""
    import copy

    d = copy.deepcopy(data)
    d.pop("headline", None)
    nets = [r for r in d["networks"] if r.get("pipelines")]
    rows = []
    for j, r in enumerate(nets * 2):
        r = copy.deepcopy(r)
        r["axes"] = {"k": j + 1, "epsilon": j / 2}
        for p in r["pipelines"].values():
            p["energy_pj"] *= 1 + j / 10
            p["throughput_measured_ips"] = p["throughput_bound_ips"] * (1.05 if j % 2 else 0.9)
            p["warmup"] = 3 + 40 * (j % 2)
            if j % 2 == 0:  # ~100 images in flight: a window of the fill in every page
                p["latency_ns"] = 100e9 / p["throughput_bound_ips"]
        rows.append(r)
    rows.append({"id": "k=bad", "axes": {"k": "bad"}, "status": "failed", "error": "boom"})
    d["sensitivity"] = [{"title": "k and epsilon", "sweep": "redy/sens-k-epsilon.yaml",
                         "axes": ["k", "epsilon"], "rows": rows}]
    d["fidelity"] = []
    for r in nets:
        fr = []
        for f, k in (("plane", 1.0), ("group", 1.03), ("analytic", 0.8)):
            rr = copy.deepcopy(r)
            rr["id"] = f"fidelity={f}"
            for p in rr["pipelines"].values():
                p.update(fidelity=f, latency_ns=p["latency_ns"] * k)
                if f == "analytic":
                    p.update(throughput_measured_ips=None,
                             throughput_bound_ips=2 * p["throughput_bound_ips"])
            rr["wall_s"] = {f"simulate:{n}": k for n in rr["pipelines"]}
            fr.append(rr)
        d["fidelity"].append({"sweep": "redy/fidelity.yaml", "rows": fr})
    d["networks"].append({"id": "network=broken", "axes": {"network": "broken"},
                          "status": "failed", "error": "SimulationError: boom", "sweep": "x"})
    for r in nets:
        r["pipelines"]["redy"]["latency_ns"] *= 1.2
        r["pipelines"]["redy"]["throughput_measured_ips"] = \
            1.1 * r["pipelines"]["redy"]["throughput_bound_ips"]
    d["rendered_again"] = "2026-01-01 00:00:00 UTC"
    return d


def _perturb(x: Any, i: list[int], m: int = 7) -> Any:
    """Every number of *x* changed: floats scaled by a factor in [1.2, 2.2) that differs from
    value to value and from one *m* to another, integers scaled by m and raised, digits in
    strings permuted (d -> m d + 3 mod 10, m odd and not 5); keys, booleans and the tools'
    names (keys elsewhere) kept. *i* counts the values seen."""
    i[0] += 1
    h = (i[0] * 2654435761 + m * 40503) % 1000003 / 1000003
    if isinstance(x, dict):
        return {k: v if k == "tool" else _perturb(v, i, m) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_perturb(v, i, m) for v in x]
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, int):
        return x * m + m + i[0] % 5
    if isinstance(x, float):
        return x * (1.2 + h) + 0.001 * (1 + i[0] % 7)
    if isinstance(x, str):
        return re.sub(r"\d", lambda d: str((m * int(d.group()) + 3) % 10), x)
    return x


#: text the page may carry with digits in it: the two papers it cites, a tool's name
CITED = ("ISCA 2016", "González 2023", "MNSIM 2.0")


def _numbers(text: str) -> set[str]:
    """The numbers of a page's prose (tables are data by construction, one cell a figure):
    decimals of two digits or more, integers of three digits or more, and percentages,
    outside names that contain digits (top-1, isaac8.yaml, sensitivity-0.png). Two-digit
    integers that are not percentages (counts of images, dates) meet by chance too often
    to be compared."""
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("|"))
    for c in CITED:
        text = text.replace(c, " ")
    text = re.sub(r"[A-Za-z_][\w.\-/]*\d[\w.\-/]*", " ", text)
    out = set()
    for m in re.finditer(r"(\d[\d,]*(?:\.\d+)?(?:e-?\d+)?)( %)?", text):
        tok = m.group(1).rstrip(",.")
        digits = sum(ch.isdigit() for ch in tok)
        if m.group(2) or ("." in tok and digits >= 2) or digits >= 3:
            out.add(tok + (m.group(2) or ""))
    return out


def test_the_page_carries_no_number_it_did_not_compute(quick, tmp_path: Path) -> None:
    """The page's prose rendered from the study's data and from three copies of it with
    every number changed (and study files with other targets) shares no number with all of
    them: no number is typed in. (Several copies, since a computed figure of one page may
    meet another one's by chance, two-digit integers especially.)"""
    from simulator.explore.study.page import write_page
    from simulator.explore.study.spec import load_study

    data = _rich(quick[1])
    sens = load_study(FULL).spec.sensitivity
    st = load_study(QUICK, doc=tmp_path / "a.md", figures=tmp_path / "fa",
                    results=tmp_path / "ra")
    st.spec.sensitivity = sens
    old = write_page(data, st).read_text()
    for issue_17 in ("120,320", "2,506.7", "79 %", "48 images, 20", "issue 10"):
        assert issue_17 not in old
    pages = []
    for n, (start, m) in enumerate(((0, 7), (2, 13), (4, 9))):
        st2 = load_study(QUICK, doc=tmp_path / f"b{n}.md", figures=tmp_path / f"fb{n}",
                         results=tmp_path / f"rb{n}")
        st2.spec = st2.spec.model_copy(update={
            "workers": 7 + n, "paper": st2.spec.paper.model_copy(
                update={"average_saving": 0.17 + n / 100,
                        "accuracy_budget_points": 0.7 + n / 10}),
            "targets": st2.spec.targets.model_copy(
                update={"group_latency": 0.06 + n / 100, "analytic_far": 0.12 + n / 100}),
            "sensitivity": [s.model_copy(update={"note": _perturb(s.note, [start], m)})
                            for s in sens]})
        pages.append(write_page(_perturb(data, [start], m), st2).read_text())
    for section in ("## Headline", "## Per network", "## Against the paper", "## Sensitivity",
                    "## ISAAC check", "## Peers", "## Fidelity check", "## Closing note",
                    "during the fill", "after a long warm-up"):
        assert section in old and all(section in p for p in pages), section
    assert len(_numbers(old)) > 60
    common = _numbers(old).intersection(*(_numbers(p) for p in pages))
    assert not common, sorted(common)
