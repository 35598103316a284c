"""The study page's facts (simulator/explore/study/facts.py) on hand-made data.

Every expected figure is worked out by hand in the comments from the rows built here;
nothing is copied from a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.explore.study import facts as F
from simulator.explore.study.spec import PaperFigures, Study, StudySpec


def _study(**kw: Any) -> Study:
    spec = StudySpec(name="t", doc="d.md", figures="f", results="r", networks=["x.yaml"], **kw)
    return Study(spec, Path("s.yaml"), Path("d.md"), Path("f"), Path("r"))


def _pipe(energy: float, adc: float, *, dynamic: float | None = None, acc: float | None = None,
          latency: float = 1000.0, measured: float | None = None, bound: float = 1e6,
          bits: float = 8.0, conv: float = 1000.0, static_power: float = 0.0,
          warmup: int = 1, fidelity: str = "group") -> dict[str, Any]:
    comps = {"ADC": adc, "DAC": energy - adc - static_power, "precision unit": 0.0,
             "static power": static_power}
    return {"energy_pj": energy, "dynamic_pj": energy if dynamic is None else dynamic,
            "components_pj": comps, "counts": {"adc_conversions": conv},
            "mean_bits": bits, "latency_ns": latency, "throughput_measured_ips": measured,
            "throughput_bound_ips": bound, "accuracy": acc, "top5": acc,
            "measured_images": 450 if acc is not None else None, "images": 4,
            "warmup": warmup, "fidelity": fidelity,
            "bounding_unit": {"unit": "crossbar lane", "where": "c1"}}


def _net(name: str, pipes: dict[str, dict[str, Any]], weights: str = "trained-here",
         decomposition: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"id": f"network={name}", "network": name, "status": "ok",
            "workload_info": {"weights": weights, "labelled": True},
            "mapping": {"chips": 1}, "pipelines": pipes, "decomposition": decomposition}


def _data(nets: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"networks": nets, "sensitivity": [], "fidelity": [], **kw}


def test_network_facts_by_hand() -> None:
    # static 200 pJ (ADC 120), redy 150 (ADC 90): saving 50/200 = 0.25, ADC 30/50 = 0.6;
    # dynamic 180 -> 144: 1 - 144/180 = 0.2; top-1 99.0 -> 98.5: delta -0.5
    row = _net("a", {"static": _pipe(200.0, 120.0, dynamic=180.0, acc=99.0),
                     "redy": _pipe(150.0, 90.0, dynamic=144.0, acc=98.5)})
    f = F.network_facts(row, "static", "redy")
    assert f is not None
    assert f.saving == pytest.approx(0.25) and f.dyn_saving == pytest.approx(0.2)
    assert f.adc_share == pytest.approx(0.6)
    assert f.component_saving == pytest.approx({"ADC": 30.0, "DAC": 20.0,
                                                "precision unit": 0.0, "static power": 0.0})
    assert f.ratios == pytest.approx({"static": 1.0, "redy": 0.75})
    assert f.acc_delta == pytest.approx({"static": 0.0, "redy": -0.5}) and f.trained
    assert F.network_facts({"pipelines": None}, "static", "redy") is None


def test_headline_of_two_networks() -> None:
    # a: 100 -> 90 (10 %, ADC 6 of 10), trained; b: 200 -> 160 (20 %, ADC 32 of 40), random.
    # mean 15 %, ADC shares 0.6 and 0.8; one failed point
    a = _net("a", {"static": _pipe(100.0, 60.0), "redy": _pipe(90.0, 54.0)})
    b = _net("b", {"static": _pipe(200.0, 120.0), "redy": _pipe(160.0, 88.0)}, "random")
    h = F.headline(_data([a, b, {"id": "network=c", "pipelines": None}]), _study())
    assert (h.n, h.failed) == (2, ["network=c"])
    assert h.mean == pytest.approx(0.15) and (h.min, h.max) == pytest.approx((0.10, 0.20))
    assert h.trained_mean == pytest.approx(0.10) and h.random_mean == pytest.approx(0.20)
    assert h.adc_share_min == pytest.approx(0.6) and h.adc_share_mean == pytest.approx(0.7)
    assert h.static_gap == []
    js = h.to_json()
    assert js["mean"] == pytest.approx(0.15) and js["failed"] == ["network=c"]


def test_static_gap_names_the_network_whose_static_power_dominates() -> None:
    # total 1000 -> 950 (5 %); dynamic 100 -> 80 (20 %): a gap of 15 points > 1
    a = _net("v", {"static": _pipe(1000.0, 60.0, dynamic=100.0),
                   "redy": _pipe(950.0, 40.0, dynamic=80.0)})
    h = F.headline(_data([a]), _study())
    assert [f.network for f in h.static_gap] == ["v"]


def test_energy_table_and_components() -> None:
    # static 200 (ADC 120), msb-trim 180, redy 150 (ADC 90): savings 10 %, 25 %;
    # saving 50 pJ = 5e-5 µJ, of which ADC 30 (60 %) and DAC 20 (40 %); as % of static
    # energy: ADC 15 %, DAC 10 %
    a = _net("a", {"static": _pipe(200.0, 120.0), "msb-trim": _pipe(180.0, 100.0),
                   "redy": _pipe(150.0, 90.0)})
    data, st = _data([a]), _study()
    et = F.energy_table(data, st)
    assert et.pipelines == ["static", "msb-trim", "redy"]
    r = et.rows[0]
    assert r.energy_uj == pytest.approx({"static": 2e-4, "msb-trim": 1.8e-4, "redy": 1.5e-4})
    assert r.saving == pytest.approx({"msb-trim": 0.10, "redy": 0.25})
    assert et.plot_ratios == {"static": [1.0], "msb-trim": [pytest.approx(0.9)],
                              "redy": [pytest.approx(0.75)]}
    c = F.components(data, st, F.headline(data, st))
    assert c.rows[0].saving_uj == pytest.approx(5e-5)
    assert c.rows[0].share["ADC"] == pytest.approx(0.6)
    assert c.rows[0].share["DAC"] == pytest.approx(0.4)
    assert c.plot_parts_pct == {"ADC": [pytest.approx(15.0)], "DAC": [pytest.approx(10.0)]}
    assert c.static_power == []


def test_decomposition_steps() -> None:
    # ratios to static: zero-skip 0.99, msb-trim 0.90, redy 0.85: steps 1 %, 9 %, 5 %
    dec = [{"step": "static", "ratio_to_static": 1.0, "mean_bits": 8.0, "images": 450},
           {"step": "zero-group skipping", "ratio_to_static": 0.99, "mean_bits": 7.8},
           {"step": "msb-trim (lossless)", "ratio_to_static": 0.90, "mean_bits": 7.0},
           {"step": "redy (lossy)", "ratio_to_static": 0.85, "mean_bits": 6.5}]
    a = _net("a", {"static": _pipe(200.0, 120.0), "redy": _pipe(150.0, 90.0)},
             decomposition=dec)
    d = F.decomposition(_data([a]), _study())
    r = d.rows[0]
    assert (r.zero, r.msb, r.lossy, r.total) == pytest.approx((0.01, 0.09, 0.05, 0.15))
    assert (r.images, r.bits_redy) == (450, 6.5)
    assert d.plot_parts_pct["msb-trim (lossless)"] == [pytest.approx(9.0)]


def test_throughput_above_bound_and_in_flight() -> None:
    # measured 1.05e6 against a bound of 1e6: 5 % above; latency 10 µs x 1e6/s = 10 images
    # in flight; warm-up 20 covers them (steady), warm-up 1 does not (fill)
    assert F.Throughput(1.05e6, 1e6).above and not F.Throughput(1.005e6, 1e6).above
    assert not F.Throughput(None, 1e6).above
    s = _pipe(200.0, 120.0, latency=10_000.0, measured=1.05e6, warmup=20)
    d = _pipe(150.0, 90.0, latency=10_000.0, measured=1.05e6, warmup=1)
    ab = F.above_bound(_data([_net("a", {"static": s, "redy": d})]))
    assert [(a.pipeline, a.steady) for a in ab] == [("static", True), ("redy", False)]
    assert ab[0].excess == pytest.approx(0.05) and ab[0].in_flight == pytest.approx(10.0)


def test_overhead_and_accuracy_rows() -> None:
    # unit 4 pJ of redy's 160 (2.5 %) and of static's 200 (2 %)
    s, d = _pipe(200.0, 120.0, acc=99.0), _pipe(160.0, 90.0, acc=98.0)
    d["components_pj"]["precision unit"] = 4.0
    data = _data([_net("a", {"static": s, "redy": d})])
    st = _study(paper=PaperFigures(average_saving=0.13, accuracy_budget_points=0.5))
    o = F.overhead(data, st)
    assert o.area is None
    assert (o.rows[0].of_redy, o.rows[0].of_static) == pytest.approx((0.025, 0.02))
    acc = {r.pipeline: r for r in F.accuracy(data, st)}
    assert acc["redy"].delta == pytest.approx(-1.0) and not acc["redy"].within_budget
    assert acc["static"].within_budget
    c = F.closing(data, st, F.headline(data, st))
    assert c.over_budget == ["a"]


def test_closing_slower_and_msb_part() -> None:
    # redy 1.2x static's latency; msb-trim saves 10 % of the 25 % redy saves: 0.4
    a = _net("a", {"static": _pipe(200.0, 120.0, latency=1000.0),
                   "msb-trim": _pipe(180.0, 100.0), "redy": _pipe(150.0, 90.0, latency=1200.0)})
    data, st = _data([a]), _study()
    c = F.closing(data, st, F.headline(data, st))
    assert c.msb_part == pytest.approx(0.4)
    assert [(s.network, s.ratio) for s in c.slower] == [("a", pytest.approx(1.2))]
    assert c.bound_by == {"crossbar lane": ["a"]}


def test_isaac_deviations() -> None:
    # ours 2.5 mW on 12 IMAs = 30 mW per tile against the paper's 2.4: +4.1667 %
    pub = {"table_i": {"ima": {"crossbar": [2.4, 0.0002]}, "tile": {}, "totals": {}},
           "table_iv": {"peak_tops": 40.0, "peak_gops_per_w": 600.0}}
    rep = {"ima": {"count_per_tile": 12}, "components": {"crossbar": {
        "power_mw": 30.0, "area_mm2": 0.0024}},
        "chip": {"peak_tops": 42.0, "peak_gops_per_w": 600.0}}
    fx = F.isaac({"isaac": {"hardware": "h.yaml", "report": rep, "published": pub}})
    assert fx is not None
    assert fx.rows[0].power == pytest.approx(2.5)
    assert fx.rows[0].power_dev == pytest.approx(2.5 / 2.4 - 1)
    assert fx.rows[0].area_dev == pytest.approx(0.0)
    assert [r.dev for r in fx.table_iv] == [pytest.approx(0.05), pytest.approx(0.0)]
    assert F.deviation(1.0, 0.0) is None


def test_fidelity_rows_against_plane() -> None:
    # group: latency 1030 vs plane 1000 (+3 %); analytic 800 (-20 %) with twice the
    # throughput; counts equal; energy equal
    def row(fid: str, lat: float, tput: float) -> dict[str, Any]:
        p = _pipe(200.0, 120.0, latency=lat, measured=tput, fidelity=fid)
        return {"id": f"fidelity={fid}", "network": "a", "pipelines": {"static": p},
                "wall_s": {"simulate:static": 0.5}}

    data = {"fidelity": [{"sweep": "f.yaml", "rows": [row("plane", 1000.0, 1e6),
                                                      row("group", 1030.0, 1e6),
                                                      row("analytic", 800.0, 2e6)]}]}
    fx = F.fidelity(data, _study())
    assert fx is not None and fx.all_counts_equal and fx.max_energy_dev == 0.0
    assert fx.group_target == 0.05 and [s.images for s in fx.streams] == [4]
    assert fx.worst_group is not None and fx.worst_group.latency_dev == pytest.approx(0.03)
    assert not fx.group_missed and fx.analytic_is_far
    assert fx.analytic_tput_ratio == pytest.approx((2.0, 2.0)) and fx.analytic_tput_off
    assert fx.analytic_latency_ratio == pytest.approx((0.8, 0.8))
    assert F.fidelity({"fidelity": []}, _study()) is None


def test_sensitivity_two_axis_series() -> None:
    # two points of a k x epsilon sweep: one line per epsilon, labelled by k
    def row(k: float, eps: float, redy: float) -> dict[str, Any]:
        return {"id": f"k={k}", "axes": {"k": k, "epsilon": eps},
                "pipelines": {"static": _pipe(200.0, 120.0), "redy": _pipe(redy, 90.0)}}

    data = _data([], sensitivity=[{"title": "k", "sweep": "s.yaml", "axes": ["k", "epsilon"],
                                   "rows": [row(1, 0.0, 150.0), row(2, 0.0, 180.0),
                                            {"id": "bad", "axes": {"k": 3, "epsilon": 0.0},
                                             "error": "boom"}]}])
    (sw,) = F.sensitivity(data, _study())
    assert sw.plot_labels == ["1", "2"]
    assert sw.plot_saving_pct == {"epsilon=0.0": [pytest.approx(25.0), pytest.approx(10.0)]}
    assert sw.rows[2].error == "boom" and sw.rows[0].saving == pytest.approx(0.25)
    assert sw.rows[0].adc_share_static == pytest.approx(0.6)


def test_policy_params_per_network() -> None:
    """The parameters each point ran ReDy with: once when all networks share them."""
    spec = {"policy": "redy", "k": 3.0, "epsilon": 0.0, "min_bits": 1}
    a = _net("a", {"static": _pipe(1.0, 0.5), "redy": {**_pipe(1.0, 0.5), "params": spec},
                   "tuned": {**_pipe(1.0, 0.5), "params": {**spec, "k": 2.5}}})
    b = _net("b", {"static": _pipe(1.0, 0.5), "redy": {**_pipe(1.0, 0.5), "params": spec},
                   "tuned": {**_pipe(1.0, 0.5), "params": {**spec, "k": 4.0}}})
    got = {p.pipeline: p for p in F.policy_params([a, b])}
    assert set(got) == {"redy", "tuned"}  # static's policy is not redy
    assert got["redy"].common == {"k": 3.0, "epsilon": 0.0, "min_bits": 1}
    assert got["tuned"].common is None and got["tuned"].by_network["b"]["k"] == 4.0


def _peers_data() -> dict[str, Any]:
    # ours: 1,000 conversions, ADC 1,500 pJ (1.5 pJ each), DAC 500 pJ; tool T: 800
    # conversions (= our linear packing), ADC 0.0024 uJ (3 pJ each), DAC 0.001 uJ and a
    # component X of ours none; tool U: 1,010 conversions (none of our packings)
    ours = {"network": "n", "input_shape": [3, 8, 8], "weights": "random", "hardware": "h",
            "pipeline": "static", "energy_pj": 2000.0,
            "components_pj": {"ADC": 1500.0, "DAC": 500.0, "NoC": 0.0},
            "counts": {"adc_conversions": 1000.0}, "crossbars": 10,
            "packings": {"as mapped": {"adc_conversions": 1000, "crossbars": 10},
                         "linear rows": {"adc_conversions": 800, "crossbars": 8},
                         "whole-crossbar columns": {"adc_conversions": 1024, "crossbars": 10}}}
    run = {"tool": "T", "version": "1", "run": "t", "configuration": "c", "note": "n",
           "adc_conversions": 800, "crossbars": None, "energy_per_image_mJ": 0.000004,
           "energy_by_component_uJ": {"A": 0.0024, "D": 0.001, "X": 0.0006}}
    run2 = {**run, "tool": "U", "run": "u", "adc_conversions": 1010,
            "energy_by_component_uJ": {"A2": 0.00303}}
    return {"peers": {"baselines": "b.csv", "runs": [run, run2], "hardware_changes": {},
                      "components": {"ADC": {"T": ["A"], "U": ["A2"]}, "DAC": {"T": ["D"]}},
                      "ours": ours}}


def test_peers_facts_by_hand() -> None:
    pe = F.peers(_peers_data())
    assert pe is not None
    t, u = pe.tools
    # T: 800 / 1000 - 1 = -20 %, exactly our linear packing; ADC 0.0024 uJ / 800 = 3 pJ,
    # twice our 1.5 pJ; total 4 nJ = 0.004 uJ against our 0.002 uJ
    assert t.conversions_vs_ours == pytest.approx(-0.2) and t.packing == "linear rows"
    assert t.adc_pj_per_conversion == pytest.approx(3.0)
    assert t.adc_per_conversion_ratio == pytest.approx(2.0)
    assert t.energy_ratio == pytest.approx(2.0) and t.unmatched_uj == {"X": 0.0006}
    # U: 1010 conversions: no packing of ours; the nearest is 1,000 (as mapped), +10
    assert u.packing is None and (u.nearest, u.packing_gap) == ("as mapped", 10)
    rows = {c.component: c for c in pe.components}
    # ADC: ours 0.0015 uJ; T 0.0024 (x1.6), per conversion (0.0024/800) / (0.0015/1000) = 2
    assert rows["ADC"].ratio["T"] == pytest.approx(1.6)
    assert rows["ADC"].per_conversion_ratio["T"] == pytest.approx(2.0)
    assert rows["DAC"].theirs_uj == {"T": pytest.approx(0.001), "U": None}
    assert pe.packing_vs_ours["linear rows"] == pytest.approx(-0.2)
    assert pe.ours_only == []  # NoC has no energy here
    assert F.peers({}) is None
