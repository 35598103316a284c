"""Every figure of the study page, computed from the data the study gathered.

:func:`study_facts` turns the content of ``study.json`` (what
:func:`simulator.explore.study.run.run_study` gathers) into typed, immutable facts, one
dataclass per section of the page; :mod:`simulator.explore.study.page` only formats
them. Each function here is a plain function of the data (and of the study file's
settings), unit-tested in ``tests/test_study_facts.py``.

Units: savings, shares and deviations are fractions (the page prints them as %),
energies shown in µJ are in µJ (``*_uj``), latencies shown in µs in µs (``*_us``),
throughputs in images per second; plot series are in the plot's units (``*_pct``: %).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from simulator.explore.study.spec import Study

#: a pipeline "measures above its bound" beyond this relative excess (1 %)
ABOVE_BOUND = 0.01
#: a network's total and dynamic savings "differ" beyond this gap (one point)
STATIC_GAP = 0.01
#: ReDy "slower than static" beyond this latency ratio
SLOWER = 1.005
#: a static-power share of the static pipeline's energy worth a sentence
STATIC_SHARE = 0.01
#: a component's saving (% of static energy) drawn in the component plot
PLOT_COMPONENT_PCT = 0.05
#: a component whose saving stays within this share of static's energy "does not change"
UNCHANGED = 1e-6


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _trained(row: dict[str, Any]) -> bool:
    return (row.get("workload_info") or {}).get("weights") == "trained-here"


def ok_networks(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The network rows whose point ran (they have pipelines)."""
    return [r for r in data["networks"] if r.get("pipelines")]


def _unique(xs: list[Any]) -> Any:
    """The one value of *xs* when they are all equal (None when they differ or are none)."""
    vals = [x for x in xs if x is not None]
    return vals[0] if vals and all(v == vals[0] for v in vals) else None


@dataclass(frozen=True)
class Stream:
    """How a network point was simulated: fidelity, images streamed, warm-up images, and
    the images its accuracy was measured on."""

    network: str
    fidelity: Any
    images: Any
    warmup: Any
    measured_images: Any


def stream(row: dict[str, Any], base: str) -> Stream:
    """The stream of one point (its baseline pipeline's)."""
    p = (row.get("pipelines") or {}).get(base) or next(
        iter((row.get("pipelines") or {}).values()), {})
    return Stream(row.get("network") or row.get("id", "?"), p.get("fidelity"),
                  p.get("images"), p.get("warmup"), p.get("measured_images"))


@dataclass(frozen=True)
class PolicyParams:
    """ReDy's parameters of one pipeline on every network (None: not recorded)."""

    pipeline: str
    by_network: dict[str, dict[str, Any] | None]

    @property
    def common(self) -> dict[str, Any] | None:
        """The parameters when they are the same (and known) on every network."""
        vals = list(self.by_network.values())
        return vals[0] if vals and None not in vals and all(v == vals[0] for v in vals) \
            else None


REDY_KEYS = ("k", "epsilon", "min_bits")


def policy_params(rows: list[dict[str, Any]]) -> list[PolicyParams]:
    """k, ε, min_bits of every ReDy pipeline of *rows*, per network (from summary.json's
    ``policy_spec``; a pipeline whose spec was not recorded is listed with None)."""
    out: dict[str, dict[str, dict[str, Any] | None]] = {}
    for r in rows:
        for name, p in (r.get("pipelines") or {}).items():
            spec = p.get("params")
            if spec is None and p.get("policy") != "redy":
                continue
            if spec is not None and spec.get("policy") != "redy":
                continue
            out.setdefault(name, {})[r["network"]] = (
                {k: spec.get(k) for k in REDY_KEYS} if spec is not None else None)
    return [PolicyParams(n, v) for n, v in out.items()]


# --------------------------------------------------------------------------- headline


@dataclass(frozen=True)
class NetworkFacts:
    """Savings, ADC share and accuracy delta of one network point."""

    network: str
    saving: float
    """1 − redy / static energy per image."""
    dyn_saving: float
    """The same on the dynamic energy."""
    adc_share: float | None
    """The ADC's part of the saving (None when nothing is saved)."""
    component_saving: dict[str, float]
    """Static − redy energy per image (pJ) per component group."""
    trained: bool
    weights: str | None
    labelled: bool
    ratios: dict[str, float]
    """Energy per image of each pipeline / static's."""
    static_pj: float
    acc_static: float | None = None
    acc_delta: dict[str, float] = field(default_factory=dict)
    """Top-1 of each pipeline − static's (points), for labelled networks."""


def network_facts(row: dict[str, Any], base: str, redy: str) -> NetworkFacts | None:
    """Savings, ADC share and accuracy delta of one network point (None if it failed)."""
    p = row.get("pipelines")
    if not p or base not in p or redy not in p:
        return None
    s, r = p[base], p[redy]
    d_e = s["energy_pj"] - r["energy_pj"]
    d_c = {k: s["components_pj"][k] - r["components_pj"].get(k, 0.0)
           for k in s["components_pj"]}
    wi = row.get("workload_info", {})
    acc_static = s.get("accuracy")
    acc_delta = ({n: pp["accuracy"] - s["accuracy"] for n, pp in p.items()
                  if pp.get("accuracy") is not None} if acc_static is not None else {})
    return NetworkFacts(
        network=row["network"], saving=d_e / s["energy_pj"],
        dyn_saving=1 - r["dynamic_pj"] / s["dynamic_pj"],
        adc_share=d_c["ADC"] / d_e if d_e else None, component_saving=d_c,
        trained=wi.get("weights") == "trained-here", weights=wi.get("weights"),
        labelled=bool(wi.get("labelled")),
        ratios={name: pp["energy_pj"] / s["energy_pj"] for name, pp in p.items()},
        static_pj=s["energy_pj"], acc_static=acc_static, acc_delta=acc_delta)


@dataclass(frozen=True)
class Headline:
    """Average saving, its spread, ADC share and the trained networks' accuracy delta."""

    facts: list[NetworkFacts]
    n: int
    failed: list[str]
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    dyn_mean: float | None = None
    trained_mean: float | None = None
    random_mean: float | None = None
    adc_share_min: float | None = None
    adc_share_mean: float | None = None
    acc: list[tuple[str, float, dict[str, float]]] = field(default_factory=list)
    """(network, static top-1, top-1 deltas by pipeline) of the labelled networks."""
    static_gap: list[NetworkFacts] = field(default_factory=list)
    """Networks whose dynamic saving exceeds the total saving by more than a point."""
    static_bits: float | None = None
    """Bit planes per group of the baseline (the same on every network, else None)."""
    test_images: Any = None
    """Images the accuracy was measured on (the same on every labelled network, else
    None)."""
    params: list[PolicyParams] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """study.json's ``headline`` block."""
        out: dict[str, Any] = {"n": self.n, "failed": self.failed}
        if self.mean is not None:
            out.update(mean=self.mean, min=self.min, max=self.max, dyn_mean=self.dyn_mean,
                       trained_mean=self.trained_mean, random_mean=self.random_mean,
                       adc_share_min=self.adc_share_min, adc_share_mean=self.adc_share_mean)
        out["acc"] = self.acc
        return out


def headline(data: dict[str, Any], study: Study) -> Headline:
    """Average saving, its spread, ADC share and the trained networks' accuracy delta."""
    spec = study.spec
    facts = [f for f in (network_facts(r, spec.baseline, spec.redy)
                         for r in data["networks"]) if f]
    failed = [r["id"] for r in data["networks"] if not r.get("pipelines")]
    acc = [(f.network, f.acc_static, f.acc_delta) for f in facts if f.acc_delta]
    gap = [f for f in facts if f.dyn_saving - f.saving > STATIC_GAP]
    ok = ok_networks(data)
    extra = dict(
        acc=acc, static_gap=gap, params=policy_params(ok),
        static_bits=_unique([(r["pipelines"].get(spec.baseline) or {}).get("mean_bits")
                             for r in ok]),
        test_images=_unique([(r["pipelines"].get(spec.baseline) or {}).get("measured_images")
                             for r in ok if (r["pipelines"].get(spec.baseline) or {})
                             .get("accuracy") is not None]))
    sav = [f.saving for f in facts]
    if not sav:
        return Headline(facts, len(facts), failed, **extra)
    shares = [f.adc_share for f in facts if f.adc_share is not None]
    return Headline(
        facts, len(facts), failed, mean=statistics.fmean(sav), min=min(sav), max=max(sav),
        dyn_mean=statistics.fmean(f.dyn_saving for f in facts),
        trained_mean=_mean([f.saving for f in facts if f.trained]),
        random_mean=_mean([f.saving for f in facts if not f.trained]),
        adc_share_min=min(shares), adc_share_mean=_mean(shares), **extra)


# --------------------------------------------------------------------------- what ran


@dataclass(frozen=True)
class SweepTiming:
    """One sweep of the run: its points and wall time."""

    sweep: str
    role: str
    points: int
    ran: int
    skipped: int
    failed: int
    wall_s: float
    points_s: float
    load_before: str
    load_after: str


@dataclass(frozen=True)
class NetworkRun:
    """What one network point ran: weights, data, fidelity, chips, wall time."""

    network: str
    input_shape: list[int]
    weights_detail: str
    batchnorm: str | None
    calibration_data: str
    test_data: str
    fidelity: Any
    images: Any
    chips: Any
    point_s: float | None


@dataclass(frozen=True)
class ScenarioUse:
    """The base scenario of a sweep and what the sweep sets on every point."""

    sweep: str
    scenario: str
    set: dict[str, Any]


@dataclass(frozen=True)
class WhatRan:
    """The run record: sweeps, wall times, loads, versions, scenarios, networks."""

    sweeps: list[SweepTiming]
    sweeps_wall_s: float
    isaac_wall_s: float
    peers_wall_s: float | None
    load_end: Any
    started: Any
    machine: str
    rendered_again: str | None
    commit: str
    python: str
    packages: dict[str, str]
    scenarios: list[ScenarioUse]
    networks: list[NetworkRun]
    random_weights: list[str]


def what_ran(data: dict[str, Any]) -> WhatRan:
    """The run record of the study (section "What was run")."""
    env = data.get("env", {})
    scen = data.get("scenarios", {})
    sweeps = [SweepTiming(t["sweep"], t["role"], t["points"], t["ran"], t["skipped"],
                          len(t["failed"]), t["wall_s"],
                          scen.get(t["sweep"], {}).get("points_s", 0), t["load_before"],
                          t["load_after"]) for t in data.get("timings", [])]
    nets = []
    for r in data["networks"]:
        wi = r.get("workload_info") or {}
        p0 = next(iter((r.get("pipelines") or {}).values()), {})
        nets.append(NetworkRun(
            r.get("network") or r["id"], list(wi.get("input_shape", [])),
            wi.get("weights_detail", "?"), wi.get("batchnorm_statistics"),
            wi.get("calibration_data", "?"), wi.get("test_data", "?"),
            p0.get("fidelity", "?"), p0.get("images", "?"),
            (r.get("mapping") or {}).get("chips", "?"), r.get("point_s")))
    rnd = [r.get("network") for r in data["networks"]
           if (r.get("workload_info") or {}).get("weights") == "random"]
    return WhatRan(
        sweeps=sweeps, sweeps_wall_s=data.get("sweeps_wall_s", 0),
        isaac_wall_s=(data.get("isaac") or {}).get("wall_s", 0),
        peers_wall_s=(data.get("peers") or {}).get("wall_s"),
        load_end=data.get("load_end"), started=data.get("started"),
        machine=env.get("machine", "?"), rendered_again=data.get("rendered_again"),
        commit=env.get("commit", "?"), python=env.get("python", "?"),
        packages=dict(env.get("packages", {})),
        scenarios=[ScenarioUse(rel, sc["scenario"], sc["set"])
                   for rel, sc in data.get("scenarios", {}).items()],
        networks=nets, random_weights=rnd)


# --------------------------------------------------------------------------- per network


@dataclass(frozen=True)
class EnergyRow:
    """Energy per image of every pipeline of one network and its savings."""

    network: str
    trained: bool
    energy_uj: dict[str, float | None]
    """Pipeline -> µJ per image (None where the network lacks the pipeline)."""
    saving: dict[str, float | None]
    """Non-baseline pipeline -> 1 − its energy / static's."""
    dyn_saving: float


@dataclass(frozen=True)
class EnergyTable:
    """The energy table and the data of its plot."""

    pipelines: list[str]
    rows: list[EnergyRow]
    plot_names: list[str]
    plot_ratios: dict[str, list[float]]
    """Pipeline -> energy / static per network (0 where missing)."""
    any_static_power: bool = False
    """Whether any network's baseline spends energy on static power."""
    streams: list[Stream] = field(default_factory=list)


def energy_table(data: dict[str, Any], study: Study) -> EnergyTable:
    """Energy per image of every pipeline, per network, relative to static."""
    spec = study.spec
    ok = ok_networks(data)
    pnames: list[str] = []
    for r in ok:
        for n in r["pipelines"]:
            if n not in pnames:
                pnames.append(n)
    rows = []
    for r in ok:
        p = r["pipelines"]
        s = p[spec.baseline]["energy_pj"]
        rows.append(EnergyRow(
            r["network"], _trained(r),
            {n: p[n]["energy_pj"] / 1e6 if n in p else None for n in pnames},
            {n: 1 - p[n]["energy_pj"] / s if n in p else None
             for n in pnames if n != spec.baseline},
            1 - p[spec.redy]["dynamic_pj"] / p[spec.baseline]["dynamic_pj"]))
    ratios = {n: [r["pipelines"][n]["energy_pj"] / r["pipelines"][spec.baseline]["energy_pj"]
                  if n in r["pipelines"] else 0.0 for r in ok] for n in pnames}
    return EnergyTable(pnames, rows, [r["network"] for r in ok], ratios,
                       any(r["pipelines"][spec.baseline]["components_pj"].get("static power")
                           for r in ok), [stream(r, spec.baseline) for r in ok])


@dataclass(frozen=True)
class DecompositionRow:
    """Static → zero-group skipping → msb-trim → ReDy on one network (decomposition)."""

    network: str
    images: Any
    bits_static: float
    bits_zero: float
    bits_msb: float
    bits_redy: float | None
    zero: float
    """Saving of zero-group skipping, fraction of static energy."""
    msb: float
    """Further saving of msb-trim."""
    lossy: float | None
    """Further saving of ReDy's lossy part."""
    total: float | None
    """ReDy's total saving."""


@dataclass(frozen=True)
class Decomposition:
    """The decomposition table and its stacked plot (% of static energy)."""

    rows: list[DecompositionRow]
    plot_names: list[str]
    plot_parts_pct: dict[str, list[float]]


def decomposition(data: dict[str, Any], study: Study) -> Decomposition:
    """Where the saving comes from, from each network's ``decomposition``."""
    spec = study.spec
    rows, names = [], []
    parts: dict[str, list[float]] = {"zero-group skipping": [], "msb-trim (lossless)": [],
                                     "ReDy lossy part": []}
    for r in ok_networks(data):
        by = {d["step"]: d for d in r.get("decomposition") or []}
        z, m = by.get("zero-group skipping"), by.get("msb-trim (lossless)")
        lossy = by.get(f"{spec.redy} (lossy)")
        if not (z and m):
            continue
        names.append(r["network"])
        zs = 1 - z["ratio_to_static"]
        ms = z["ratio_to_static"] - m["ratio_to_static"]
        ls = (m["ratio_to_static"] - lossy["ratio_to_static"]) if lossy else None
        parts["zero-group skipping"].append(100 * zs)
        parts["msb-trim (lossless)"].append(100 * ms)
        parts["ReDy lossy part"].append(100 * (ls or 0.0))
        rows.append(DecompositionRow(
            r["network"], by["static"]["images"], by["static"]["mean_bits"], z["mean_bits"],
            m["mean_bits"], lossy["mean_bits"] if lossy else None, zs, ms, ls,
            1 - lossy["ratio_to_static"] if lossy else None))
    return Decomposition(rows, names, parts)


@dataclass(frozen=True)
class ComponentRow:
    """Static − redy energy per image of one network, by component."""

    network: str
    saving_uj: float
    share: dict[str, float | None]
    """Component -> its part of the saving (None when nothing is saved)."""


@dataclass(frozen=True)
class StaticPowerShare:
    """A network whose static pipeline spends a noticeable share on static power."""

    network: str
    share: float
    chips: Any


@dataclass(frozen=True)
class Components:
    """The by-component table, the static-power note and the component plot."""

    labels: list[str]
    rows: list[ComponentRow]
    static_power: list[StaticPowerShare]
    plot_names: list[str]
    plot_parts_pct: dict[str, list[float]]
    """Component -> saving as % of static energy per network (only components above
    :data:`PLOT_COMPONENT_PCT` somewhere)."""
    unchanged: list[str] = field(default_factory=list)
    """Components whose energy does not change (within :data:`UNCHANGED` of static's
    energy) on any network."""
    costlier: dict[str, int] = field(default_factory=dict)
    """Component -> the networks on which redy spends more on it than static."""


def components(data: dict[str, Any], study: Study, h: Headline) -> Components:
    """Static − redy energy per image by component, as shares of the saving."""
    spec = study.spec
    ok = ok_networks(data)
    labels = list(h.facts[0].component_saving) if h.facts else []
    rows, parts = [], {c: [] for c in labels}
    for fct in h.facts:
        tot = sum(fct.component_saving.values())
        rows.append(ComponentRow(fct.network, tot / 1e6,
                                 {c: v / tot if tot else None
                                  for c, v in fct.component_saving.items()}))
        s_tot = next(r for r in ok if r["network"] == fct.network)["pipelines"][
            spec.baseline]["energy_pj"]
        for c, v in fct.component_saving.items():
            parts[c].append(100 * v / s_tot)
    stat = [StaticPowerShare(r["network"],
                             r["pipelines"][spec.baseline]["components_pj"]["static power"]
                             / r["pipelines"][spec.baseline]["energy_pj"],
                             r["mapping"].get("chips")) for r in ok]
    keep = {c: v for c, v in parts.items() if any(abs(x) > PLOT_COMPONENT_PCT for x in v)}
    unchanged = [c for c in labels if c != "static power"
                 and all(abs(f.component_saving[c]) <= UNCHANGED * f.static_pj for f in h.facts)]
    costlier = {c: sum(f.component_saving[c] < -UNCHANGED * f.static_pj for f in h.facts)
                for c in labels}
    return Components(labels, rows, [x for x in stat if x.share > STATIC_SHARE],
                      [f.network for f in h.facts], keep, unchanged,
                      {c: n for c, n in costlier.items() if n})


@dataclass(frozen=True)
class Throughput:
    """A measured throughput (None where one image was simulated) and its bound."""

    measured: float | None
    bound: float | None

    @property
    def above(self) -> bool:
        """Measured above the bound by more than :data:`ABOVE_BOUND`."""
        m, b = self.measured, self.bound
        return bool(m and b and m > (1 + ABOVE_BOUND) * b)


def throughput(p: dict[str, Any]) -> Throughput:
    """Measured and bound throughput of one pipeline row."""
    return Throughput(p.get("throughput_measured_ips"), p.get("throughput_bound_ips"))


@dataclass(frozen=True)
class ConversionRow:
    """ADC conversions, bits, latency and throughput of static and redy on one network."""

    network: str
    fidelity: Any
    adc_static_m: float
    adc_redy_m: float
    bits_static: float
    bits_msb: float | None
    bits_redy: float
    latency_static_us: float
    latency_redy_us: float
    tput_static: Throughput
    tput_redy: Throughput
    bound_unit: str
    bound_where: str


def conversions(data: dict[str, Any], study: Study) -> list[ConversionRow]:
    """Per network: ADC conversions (millions per image), bits, latency, throughput."""
    spec = study.spec
    rows = []
    for r in ok_networks(data):
        p = r["pipelines"]
        s, d = p[spec.baseline], p[spec.redy]
        bu = d.get("bounding_unit") or {}
        rows.append(ConversionRow(
            r["network"], s["fidelity"], s["counts"].get("adc_conversions", 0) / 1e6,
            d["counts"].get("adc_conversions", 0) / 1e6, s["mean_bits"],
            p.get("msb-trim", {}).get("mean_bits"), d["mean_bits"], s["latency_ns"] / 1e3,
            d["latency_ns"] / 1e3, throughput(s), throughput(d), bu.get("unit", "?"),
            bu.get("where", "")))
    return rows


# --------------------------------------------------------------------------- overhead


@dataclass(frozen=True)
class UnitArea:
    """The precision unit's area and power against the chip's (from `redysim hw`)."""

    tile_share: float
    added_mm2: float
    chip_mm2: float
    area_share: float
    power_share: float
    energy_pj_per_group: float | None
    mm2_per_tile: float  # the unit is one per tile, at its bus


@dataclass(frozen=True)
class UnitEnergyRow:
    """The precision unit's energy per image on one network."""

    network: str
    energy_uj: float
    of_redy: float
    of_static: float


@dataclass(frozen=True)
class Overhead:
    """The precision unit's overhead: area (None without the ISAAC check) and energy."""

    area: UnitArea | None
    rows: list[UnitEnergyRow]


def overhead(data: dict[str, Any], study: Study) -> Overhead:
    """The precision-selection unit's area and its share of each network's energy."""
    spec = study.spec
    isaac = data.get("isaac")
    area = None
    if isaac:
        chip = isaac["redy_chip"]["chip"]
        comp = isaac["redy_chip"]["components"].get("precision_select", {})
        added = chip["area_mm2_redy"] - chip["area_mm2"]
        area = UnitArea(
            tile_share=comp.get("area_mm2", 0) / isaac["redy_chip"]["tile"]["area_mm2"],
            added_mm2=added, chip_mm2=chip["area_mm2"], area_share=added / chip["area_mm2"],
            power_share=chip["power_w_redy"] / chip["power_w"] - 1,
            energy_pj_per_group=comp.get("energy_pj_per_event"),
            mm2_per_tile=comp.get("area_mm2", 0))
    rows = []
    for r in data["networks"]:
        p = r.get("pipelines") or {}
        if spec.redy not in p:
            continue
        d = p[spec.redy]
        ps = d["components_pj"].get("precision unit", 0.0)
        s = p[spec.baseline]["energy_pj"]
        rows.append(UnitEnergyRow(r["network"], ps / 1e6, ps / d["energy_pj"], ps / s))
    return Overhead(area, rows)


# --------------------------------------------------------------------------- accuracy


@dataclass(frozen=True)
class AccuracyRow:
    """Top-1 / top-5 of one pipeline on one labelled network."""

    network: str
    pipeline: str
    top1: float
    top5: float | None
    delta: float
    """Top-1 − static's (points)."""
    within_budget: bool
    images: Any
    float_top1: float | None


@dataclass(frozen=True)
class AccuracyTable:
    """The accuracy rows and the images they were measured on."""

    rows: list[AccuracyRow]
    images: Any
    """Test images (the same on every row, else None)."""

    @property
    def points_per_image(self) -> float | None:
        """Top-1 points one image is worth."""
        return 100 / self.images if isinstance(self.images, int) and self.images else None


def accuracy_table(data: dict[str, Any], study: Study) -> AccuracyTable:
    """Every pipeline's accuracy and the images it was measured on."""
    rows = accuracy(data, study)
    return AccuracyTable(rows, _unique([r.images for r in rows]))


def accuracy(data: dict[str, Any], study: Study) -> list[AccuracyRow]:
    """Every pipeline's accuracy on the networks whose static pipeline has one."""
    spec = study.spec
    rows = []
    for r in data["networks"]:
        p = r.get("pipelines") or {}
        if not p or p.get(spec.baseline, {}).get("accuracy") is None:
            continue
        s = p[spec.baseline]
        for n, pp in p.items():
            d = pp["accuracy"] - s["accuracy"]
            rows.append(AccuracyRow(r["network"], n, pp["accuracy"], pp.get("top5"), d,
                                    -d <= spec.paper.accuracy_budget_points,
                                    pp.get("measured_images"), r.get("float_accuracy")))
    return rows


# --------------------------------------------------------------------------- the paper


@dataclass(frozen=True)
class AgainstPaper:
    """Our savings set against the paper's average."""

    trained_n: int
    random_n: int
    msb_mean: float | None
    msb_n: int
    tuned_saving: float | None
    tuned_n: int
    below: bool
    trained_inputs: list[list[int]] = field(default_factory=list)
    """Input shapes of the trained networks (distinct, in order)."""
    msb_part: float | None = None
    """msb-trim's saving / redy's, averaged over the networks where redy saves."""
    adc_energy_share: float | None = None
    """The ADC's share of the baseline's energy, averaged over the networks."""
    unit_pj_per_group: float | None = None
    """The precision unit's energy per group (from the ISAAC check's chip)."""
    multi_chip: list[str] = field(default_factory=list)
    """Networks whose baseline spends a noticeable share on static (off-chip) power."""


def msb_part(h: Headline) -> float | None:
    """msb-trim's saving / redy's, averaged over the networks where redy saves."""
    return _mean([(1 - f.ratios["msb-trim"]) / f.saving for f in h.facts
                  if "msb-trim" in f.ratios and f.saving > 0])


def against_paper(data: dict[str, Any], study: Study, h: Headline,
                  comps: Components, ov: Overhead) -> AgainstPaper:
    """The "Against the paper" figures (call only when some network ran)."""
    assert h.mean is not None
    spec = study.spec
    tuned = [f.ratios["redy-tuned"] for f in h.facts if "redy-tuned" in f.ratios]
    msb = [1 - f.ratios["msb-trim"] for f in h.facts if "msb-trim" in f.ratios]
    t = _mean(tuned)
    shapes: list[list[int]] = []
    for r in ok_networks(data):
        shape = list((r.get("workload_info") or {}).get("input_shape") or [])
        if _trained(r) and shape and shape not in shapes:
            shapes.append(shape)
    adc = [r["pipelines"][spec.baseline]["components_pj"]["ADC"]
           / r["pipelines"][spec.baseline]["energy_pj"] for r in ok_networks(data)
           if spec.baseline in r["pipelines"]]
    return AgainstPaper(
        trained_n=sum(f.trained for f in h.facts),
        random_n=sum(not f.trained for f in h.facts), msb_mean=_mean(msb), msb_n=len(msb),
        tuned_saving=1 - t if t is not None else None, tuned_n=len(tuned),
        below=h.mean < spec.paper.average_saving, trained_inputs=shapes,
        msb_part=msb_part(h), adc_energy_share=_mean(adc),
        unit_pj_per_group=ov.area.energy_pj_per_group if ov.area else None,
        multi_chip=[x.network for x in comps.static_power])


# --------------------------------------------------------------------------- sensitivity


@dataclass(frozen=True)
class SensitivityRow:
    """One point of a sensitivity sweep (``error`` set when it failed)."""

    label: str
    error: str | None = None
    static_uj: float | None = None
    redy_uj: float | None = None
    saving: float | None = None
    adc_share_static: float | None = None
    bits_redy: float | None = None
    latency_static_us: float | None = None
    latency_redy_us: float | None = None
    tput_static: Throughput | None = None
    tput_redy: Throughput | None = None
    top1_static: float | None = None
    top1_redy: float | None = None
    chip_mm2: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SensitivitySweepFacts:
    """One sensitivity sweep: its rows and the data of its plot."""

    title: str
    sweep: str
    note: str
    rows: list[SensitivityRow]
    plot_labels: list[str]
    plot_saving_pct: dict[str, list[float | None]]
    plot_accuracy: dict[str, list[float | None]]
    xlabel: str
    stream: Stream | None = None
    """How its points ran (its first finished point)."""


def sensitivity(data: dict[str, Any], study: Study) -> list[SensitivitySweepFacts]:
    """Every sensitivity sweep's table and plot data."""
    spec = study.spec
    notes = {s.sweep: s.note for s in spec.sensitivity}
    out = []
    for sw in data["sensitivity"]:
        rows, labels = [], []
        series: dict[str, dict[str, float]] = {}
        acc: dict[str, dict[str, float]] = {}
        for r in sw["rows"]:
            lab = ", ".join(f"{k}={v}" for k, v in r["axes"].items())
            p = r.get("pipelines")
            if not p:
                rows.append(SensitivityRow(lab, error=str(r.get("error"))))
                continue
            s, d = p[spec.baseline], p.get(spec.redy)
            hw = r.get("hardware") or {}
            rows.append(SensitivityRow(
                lab, static_uj=s["energy_pj"] / 1e6, redy_uj=d["energy_pj"] / 1e6,
                saving=1 - d["energy_pj"] / s["energy_pj"],
                adc_share_static=s["components_pj"]["ADC"] / s["energy_pj"],
                bits_redy=d["mean_bits"], latency_static_us=s["latency_ns"] / 1e3,
                latency_redy_us=d["latency_ns"] / 1e3, tput_static=throughput(s),
                tput_redy=throughput(d), top1_static=s.get("accuracy"),
                top1_redy=d.get("accuracy"), chip_mm2=hw.get("chip_area_mm2"),
                warnings=list(r.get("hardware_warnings") or [])))
            if len(r["axes"]) == 2:  # a 2-D sweep: one line per value of the second axis
                (_k1, v1), (k2, v2) = r["axes"].items()
                labels_key, series_key = f"{v1}", f"{k2}={v2}"
            else:
                labels_key, series_key = lab.split("=", 1)[-1], "ReDy"
            if labels_key not in labels:
                labels.append(labels_key)
            series.setdefault(series_key, {})[labels_key] = 100 * (
                1 - d["energy_pj"] / s["energy_pj"])
            if d.get("accuracy") is not None:
                acc.setdefault(series_key, {})[labels_key] = d["accuracy"]
        first = next((r for r in sw["rows"] if r.get("pipelines")), None)
        out.append(SensitivitySweepFacts(
            sw["title"], sw["sweep"], notes.get(sw["sweep"], ""), rows, labels,
            {k: [v.get(x) for x in labels] for k, v in series.items()},
            {k: [v.get(x) for x in labels] for k, v in acc.items()},
            " / ".join(sw["axes"][:1]),
            stream(first, spec.baseline) if first else None))
    return out


# --------------------------------------------------------------------------- ISAAC


def deviation(ours: float, paper: float) -> float | None:
    """ours / paper − 1 (None when the paper's figure is 0)."""
    return ours / paper - 1 if paper else None


@dataclass(frozen=True)
class IsaacRow:
    """One component or total against ISAAC's Table I: power and area, ours and paper's."""

    level: str
    component: str
    paper_power: float
    power: float
    power_dev: float | None
    paper_area: float
    area: float
    area_dev: float | None


@dataclass(frozen=True)
class PaperRow:
    """A figure of ours against the paper's (Table IV, the engine's check)."""

    label: str
    paper: float
    ours: float
    dev: float | None


@dataclass(frozen=True)
class EngineCheck:
    """The full-activity run through the event engine against Table I."""

    rows: list[PaperRow]
    ima_total: PaperRow
    """The engine's IMA power against the sum of Table I's IMA rows."""
    ima_total_tile_mw: float
    """Table I's IMA sum × the IMAs of a tile."""
    lanes: Any
    planes: Any
    kernel: list[int] | None
    tile_rows: list[PaperRow]
    peak_tops: float
    peak_tops_steady: float
    peak_tops_paper: float
    peak_tops_dev: float | None
    h: list[int]
    period_ns: float


@dataclass(frozen=True)
class IsaacFacts:
    """`redysim hw` and the engine against ISAAC's Table I and Table IV."""

    hardware: str
    imas_per_tile: int
    rows: list[IsaacRow]
    table_iv: list[PaperRow]
    engine: EngineCheck | None
    tiles_per_router: float | None = None
    max_component_dev: float | None = None
    """The largest |deviation| of the component rows (power and area)."""


def _ours_total(rep: dict[str, Any], key: str) -> tuple[float, float]:
    """(power, area) of one of Table I's totals in `redysim hw`'s report: the IMAs of a
    tile and the tile in mW / mm², the rest in W / mm²."""
    chip = rep["chip"]
    if key == "ima":
        return rep["ima"]["power_mw_per_tile"], rep["ima"]["area_mm2_per_tile"]
    if key == "tile":
        return rep["tile"]["power_mw"], rep["tile"]["area_mm2"]
    prefix = {"tiles_168": "tiles_", "offchip": "offchip_", "chip": ""}[key]
    return chip[f"{prefix}power_w"], chip[f"{prefix}area_mm2"]


def isaac(data: dict[str, Any]) -> IsaacFacts | None:
    """The ISAAC check's figures (None when the study has none)."""
    isaac = data.get("isaac")
    if not isaac:
        return None
    rep, pub = isaac["report"], isaac["published"]["table_i"]
    imas = rep["ima"]["count_per_tile"]
    rows = []
    for level, comps in (("IMA", pub["ima"]), ("tile", pub["tile"])):
        div = imas if level == "IMA" else 1
        for c, (pw, ar) in comps.items():
            ours = rep["components"][c]
            op, oa = ours["power_mw"] / div, ours["area_mm2"] / div
            rows.append(IsaacRow(level, c, pw, op, deviation(op, pw), ar, oa,
                                 deviation(oa, ar)))
    chip = rep["chip"]
    for k, (pw, ar) in pub["totals"].items():
        op, oa = _ours_total(rep, k)
        rows.append(IsaacRow("total", k, pw, op, deviation(op, pw), ar, oa, deviation(oa, ar)))
    t4 = isaac["published"]["table_iv"]
    bits = (rep.get("precision") or {}).get("activation_bits")
    table_iv = [PaperRow(f"peak TOPS ({bits}-bit)" if bits else "peak TOPS", t4["peak_tops"],
                         chip["peak_tops"],
                         deviation(chip["peak_tops"], t4["peak_tops"])),
                PaperRow("peak GOPS/W", t4["peak_gops_per_w"], chip["peak_gops_per_w"],
                         deviation(chip["peak_gops_per_w"], t4["peak_gops_per_w"]))]
    eng = isaac.get("engine")
    engine = None
    if eng:
        ima_sum = sum(pw for pw, _ar in pub["ima"].values())
        engine = EngineCheck(
            rows=[PaperRow(c, pub["ima"][c][0], v, deviation(v, pub["ima"][c][0]))
                  for c, v in eng["ima_mw"].items()],
            ima_total=PaperRow("IMA total", ima_sum, eng["ima_total_mw"],
                               deviation(eng["ima_total_mw"], ima_sum)),
            ima_total_tile_mw=ima_sum * imas, lanes=eng.get("lanes"),
            planes=eng.get("planes"), kernel=eng.get("kernel"),
            tile_rows=[PaperRow(f"tile {c}", pub["tile"][c][0], v,
                                deviation(v, pub["tile"][c][0]))
                       for c, v in eng["tile_mw"].items()],
            peak_tops=eng["peak_tops"], peak_tops_steady=eng["peak_tops_steady"],
            peak_tops_paper=t4["peak_tops"],
            peak_tops_dev=deviation(eng["peak_tops_steady"], t4["peak_tops"]),
            h=list(eng["h"]), period_ns=eng["period_ns"])
    devs = [abs(d) for r in rows if r.level != "total" for d in (r.power_dev, r.area_dev)
            if d is not None]
    routers = chip.get("routers")
    return IsaacFacts(isaac["hardware"], imas, rows, table_iv, engine,
                      tiles_per_router=chip["tiles"] / routers if routers and
                      chip.get("tiles") else None,
                      max_component_dev=max(devs) if devs else None)


# --------------------------------------------------------------------------- fidelity


@dataclass(frozen=True)
class FidelityRow:
    """One network, pipeline and fidelity with its deviations from ``plane``."""

    network: str
    pipeline: str
    fidelity: str
    adc: float | None
    reads: float | None
    energy: float
    latency: float
    tput: float | None
    counts_equal: bool
    energy_dev: float
    """Energy / plane's − 1."""
    latency_vs_plane: float
    wall: float | None

    @property
    def energy_uj(self) -> float:
        """Energy per image in µJ."""
        return self.energy / 1e6

    @property
    def latency_us(self) -> float:
        """Latency of the first image in µs."""
        return self.latency / 1e3

    @property
    def latency_dev(self) -> float:
        """Latency / plane's − 1."""
        return self.latency_vs_plane - 1


def fidelity_rows(data: dict[str, Any]) -> list[FidelityRow]:
    """One row per network, pipeline and fidelity with deviations from plane."""
    by: dict[tuple[str, str], dict[str, Any]] = {}
    for r in (r for fid in data.get("fidelity") or [] for r in fid["rows"]):
        for pname, p in (r.get("pipelines") or {}).items():
            by.setdefault((r["network"], pname), {})[p["fidelity"]] = (p, r)
    out = []
    for (net, pname), fids in by.items():
        ref = fids.get("plane", next(iter(fids.values())))[0]
        for fname in ("plane", "group", "analytic"):
            if fname not in fids:
                continue
            p, r = fids[fname]
            out.append(FidelityRow(
                network=net, pipeline=pname, fidelity=fname,
                adc=p["counts"].get("adc_conversions"), reads=p["counts"].get("crossbar_reads"),
                energy=p["energy_pj"], latency=p["latency_ns"],
                tput=p.get("throughput_measured_ips") or p.get("throughput_bound_ips"),
                counts_equal=p["counts"] == ref["counts"],
                energy_dev=p["energy_pj"] / ref["energy_pj"] - 1,
                latency_vs_plane=p["latency_ns"] / ref["latency_ns"],
                wall=(r.get("wall_s") or {}).get(f"simulate:{pname}")))
    return out


@dataclass(frozen=True)
class FidelityFacts:
    """The fidelity check: rows and what they show."""

    sweeps: list[str]
    rows: list[FidelityRow]
    all_counts_equal: bool
    max_energy_dev: float
    worst_group: FidelityRow | None
    worst_analytic: FidelityRow | None
    networks: int
    group_max_dev: float | None
    analytic_tput_ratio: tuple[float, float] | None
    """(min, max) analytic / plane throughput, where both have one."""
    analytic_latency_ratio: tuple[float, float] | None
    group_target: float
    analytic_far: float
    streams: list[Stream] = field(default_factory=list)
    """How each network ran (its plane point)."""

    @property
    def group_missed(self) -> bool:
        """The worst `group` latency is further than the target from plane's."""
        return (self.worst_group is not None
                and abs(self.worst_group.latency_dev) > self.group_target)

    @property
    def analytic_is_far(self) -> bool:
        """The worst `analytic` latency is further than ``analytic_far`` from plane's."""
        return (self.worst_analytic is not None
                and abs(self.worst_analytic.latency_dev) > self.analytic_far)

    @property
    def analytic_tput_off(self) -> bool:
        """Analytic / plane throughput outside ±``analytic_far`` somewhere."""
        return _outside(self.analytic_tput_ratio, self.analytic_far)

    @property
    def analytic_latency_off(self) -> bool:
        """Analytic / plane latency outside ±``analytic_far`` somewhere."""
        return _outside(self.analytic_latency_ratio, self.analytic_far)


def _outside(rng: tuple[float, float] | None, tol: float) -> bool:
    return rng is not None and (rng[0] < 1 - tol or rng[1] > 1 + tol)


def fidelity(data: dict[str, Any], study: Study) -> FidelityFacts | None:
    """The fidelity check's figures (None without fidelity sweeps)."""
    rows = fidelity_rows(data)
    if not rows:
        return None
    targets = study.spec.targets
    streams: dict[str, Stream] = {}
    for r in (r for fid in data["fidelity"] for r in fid["rows"]):
        st = stream(r, study.spec.baseline)
        if r.get("pipelines") and (st.network not in streams or st.fidelity == "plane"):
            streams[st.network] = st
    grp = [r for r in rows if r.fidelity == "group"]
    ana = [r for r in rows if r.fidelity == "analytic"]
    tr = [r.tput / p.tput for r in ana for p in rows
          if p.fidelity == "plane" and (p.network, p.pipeline) == (r.network, r.pipeline)
          and r.tput and p.tput]
    return FidelityFacts(
        sweeps=[f["sweep"] for f in data["fidelity"]], rows=rows,
        all_counts_equal=all(r.counts_equal for r in rows),
        max_energy_dev=max(abs(r.energy_dev) for r in rows),
        worst_group=max(grp, key=lambda r: abs(r.latency_vs_plane - 1)) if grp else None,
        worst_analytic=max(ana, key=lambda r: abs(r.latency_vs_plane - 1)) if ana else None,
        networks=len({r.network for r in rows}),
        group_max_dev=max(abs(r.latency_vs_plane - 1) for r in grp) if grp else None,
        analytic_tput_ratio=(min(tr), max(tr)) if tr else None,
        analytic_latency_ratio=((min(r.latency_vs_plane for r in ana),
                                 max(r.latency_vs_plane for r in ana)) if ana else None),
        group_target=targets.group_latency, analytic_far=targets.analytic_far,
        streams=list(streams.values()))


# --------------------------------------------------------------------------- closing


@dataclass(frozen=True)
class AboveBound:
    """A pipeline whose measured throughput exceeds its bound by more than 1 %."""

    network: Any
    point: str
    pipeline: str
    measured: float
    bound: float
    excess: float
    """measured / bound − 1."""
    images: Any
    warmup: int
    in_flight: float
    """Images in flight: latency × bound."""
    unit: str | None = None
    """The busiest unit (the bound's)."""
    busy_share: float | None = None
    """The busiest unit's busy time over the run: its work per image × images / the
    simulated time."""

    @property
    def steady(self) -> bool:
        """Whether the warm-up covered the images in flight."""
        return self.warmup >= self.in_flight


def above_bound(data: dict[str, Any]) -> list[AboveBound]:
    """Every pipeline whose measured throughput exceeds its bound by more than 1 %, and
    whether its warm-up covered the images in flight (latency × bound)."""
    rows = list(data["networks"])
    rows += [r for sw in data["sensitivity"] for r in sw["rows"]]
    rows += [r for f in data.get("fidelity") or [] for r in f["rows"]]
    out = []
    for r in rows:
        for name, p in (r.get("pipelines") or {}).items():
            m, b = p.get("throughput_measured_ips"), p.get("throughput_bound_ips")
            if m and b and m > (1 + ABOVE_BOUND) * b:
                bu = p.get("bounding_unit") or {}
                busy, sim = bu.get("busy_ns_per_image"), p.get("simulated_ns")
                unit = f"{bu['unit']} {bu.get('where', '')}".strip() if bu.get("unit") else None
                out.append(AboveBound(r.get("network"), r["id"], name, m, b, m / b - 1,
                                      p["images"], p.get("warmup") or 0,
                                      p["latency_ns"] * 1e-9 * b, unit,
                                      busy * p["images"] / sim if busy and sim else None))
    return out


@dataclass(frozen=True)
class Slower:
    """A network on which redy's latency exceeds static's."""

    network: str
    ratio: float
    fidelity: str


@dataclass(frozen=True)
class Closing:
    """The closing note's figures."""

    msb_part: float | None
    """msb-trim's saving / redy's, averaged over the networks where redy saves."""
    trained: list[str]
    random_n: int
    slower: list[Slower]
    over_budget: list[str]
    bound_by: dict[str, list[str]]
    """Busiest unit under redy -> networks, most networks first."""
    above: list[AboveBound]


def closing(data: dict[str, Any], study: Study, h: Headline) -> Closing:
    """What the closing note says, computed."""
    spec = study.spec
    slower = []
    for r in data["networks"]:
        p = r.get("pipelines") or {}
        if spec.redy in p and spec.baseline in p:
            lr = p[spec.redy]["latency_ns"] / p[spec.baseline]["latency_ns"]
            if lr > SLOWER:
                slower.append(Slower(r["network"], lr, p[spec.redy]["fidelity"]))
    accs = [(f.network, f.acc_delta.get(spec.redy)) for f in h.facts if f.acc_delta]
    bad = [n for n, d in accs if d is not None and -d > spec.paper.accuracy_budget_points]
    bound_by: dict[str, list[str]] = {}
    for r in data["networks"]:
        bu = ((r.get("pipelines") or {}).get(spec.redy) or {}).get("bounding_unit")
        if bu:
            bound_by.setdefault(bu.get("unit", "?"), []).append(r["network"])
    bound_by = dict(sorted(bound_by.items(), key=lambda kv: -len(kv[1])))
    return Closing(msb_part(h), [f.network for f in h.facts if f.trained],
                   sum(not f.trained for f in h.facts), slower, bad, bound_by,
                   above_bound(data))


# --------------------------------------------------------------------------- peers


@dataclass(frozen=True)
class PeerTool:
    """One other tool's run, set against our pipeline."""

    tool: str
    version: str
    run: str
    configuration: str
    note: str
    adc_conversions: int
    crossbars: int | None
    energy_uj: float
    conversions_vs_ours: float
    """Their ADC conversions / ours − 1."""
    packing: str | None
    """Which of our packings gives their count exactly (None: none does)."""
    packing_gap: int | None
    """Their conversions − that packing's (0 when it matches; else − the nearest one's)."""
    nearest: str
    """Our packing nearest to their count."""
    adc_pj_per_conversion: float | None
    """Their ADC energy / their conversions (pJ)."""
    adc_per_conversion_ratio: float | None
    """That / ours."""
    energy_ratio: float
    """Their energy per image / ours."""
    unmatched_uj: dict[str, float]
    """Their components that none of ours corresponds to (µJ)."""
    breakdowns: dict[str, list[str]]
    """A component of theirs -> the components it is the sum of (not compared again)."""


@dataclass(frozen=True)
class PeerComponent:
    """One of our component groups and what each tool reports for it."""

    component: str
    ours_uj: float
    theirs_uj: dict[str, float | None]
    """Tool -> the sum of its corresponding components (None: it reports none)."""
    ratio: dict[str, float | None]
    """Tool -> theirs / ours."""
    per_conversion_ratio: dict[str, float | None]
    """Tool -> (theirs / their conversions) / (ours / our conversions): the ratio with the
    count of conversions taken out (what is left is the per-event model)."""
    causes: dict[str, str]
    """Tool -> what the difference comes from (the peers file's words)."""


@dataclass(frozen=True)
class PeersFacts:
    """The peers section's figures."""

    network: str
    input_shape: list[int]
    hardware: str
    hardware_changes: dict[str, Any]
    pipeline: str
    weights: str | None
    baselines: str
    conversions: float
    crossbars: int
    """Crossbars of one copy of the weights (as mapped)."""
    crossbars_used: int | None
    """Crossbars the chip holds with the mapping's replicas."""
    energy_uj: float
    adc_pj_per_conversion: float | None
    packings: dict[str, dict[str, int]]
    packing_vs_ours: dict[str, float]
    """Packing -> its conversions / ours − 1."""
    tools: list[PeerTool]
    components: list[PeerComponent]
    ours_only: list[str]
    """Our components (with energy) that no tool reports."""


def peers(data: dict[str, Any]) -> PeersFacts | None:
    """Our pipeline against the other tools' runs (None when the study has no peers)."""
    pe = data.get("peers")
    if not pe:
        return None
    ours = pe["ours"]
    conv = ours["counts"]["adc_conversions"]
    comps = ours["components_pj"]
    mapping: dict[str, dict[str, list[str]]] = pe["components"]
    packs = ours["packings"]
    ours_adc = comps["ADC"] / conv if conv else None
    tools = []
    for r in pe["runs"]:
        n = r["adc_conversions"]
        match = next((name for name, pk in packs.items() if pk["adc_conversions"] == n), None)
        nearest = min(packs, key=lambda k: abs(packs[k]["adc_conversions"] - n))
        parts = (pe.get("breakdowns") or {}).get(r["tool"], {})
        mine = {c for theirs in mapping.values() for c in theirs.get(r["tool"], [])}
        mine |= {c for names in parts.values() for c in names}
        adc = mapping.get("ADC", {}).get(r["tool"])
        adc_uj = sum(r["energy_by_component_uJ"][c] for c in adc) if adc else None
        adc_pj = adc_uj * 1e6 / n if adc_uj is not None and n else None
        tools.append(PeerTool(
            tool=r["tool"], version=r["version"], run=r["run"],
            configuration=r["configuration"], note=r["note"], adc_conversions=n,
            crossbars=r["crossbars"], energy_uj=r["energy_per_image_mJ"] * 1000,
            conversions_vs_ours=n / conv - 1, packing=match,
            packing_gap=n - packs[nearest]["adc_conversions"], nearest=nearest,
            adc_pj_per_conversion=adc_pj,
            adc_per_conversion_ratio=adc_pj / ours_adc if adc_pj is not None and ours_adc
            else None,
            energy_ratio=r["energy_per_image_mJ"] * 1000 / (ours["energy_pj"] / 1e6),
            unmatched_uj={c: v for c, v in r["energy_by_component_uJ"].items()
                          if c not in mine}, breakdowns=dict(parts)))
    by_tool = {r["tool"]: r for r in pe["runs"]}
    rows = []
    for comp, theirs in mapping.items():
        ours_uj = comps.get(comp, 0.0) / 1e6
        t_uj = {t: (sum(by_tool[t]["energy_by_component_uJ"][c] for c in theirs[t])
                    if t in theirs else None) for t in by_tool}
        rows.append(PeerComponent(
            comp, ours_uj, t_uj,
            {t: v / ours_uj if v is not None and ours_uj else None for t, v in t_uj.items()},
            {t: (v / by_tool[t]["adc_conversions"]) / (ours_uj / conv)
             if v is not None and ours_uj and conv else None for t, v in t_uj.items()},
            dict((pe.get("causes") or {}).get(comp, {}))))
    return PeersFacts(
        network=ours["network"], input_shape=list(ours.get("input_shape") or []),
        hardware=ours["hardware"], hardware_changes=dict(pe.get("hardware_changes") or {}),
        pipeline=ours["pipeline"], weights=ours.get("weights"), baselines=pe["baselines"],
        conversions=conv, crossbars=packs["as mapped"]["crossbars"],
        crossbars_used=ours.get("crossbars_used"), energy_uj=ours["energy_pj"] / 1e6,
        adc_pj_per_conversion=ours_adc, packings=packs,
        packing_vs_ours={k: v["adc_conversions"] / conv - 1 for k, v in packs.items()},
        tools=tools, components=rows,
        ours_only=[c for c, v in comps.items() if v and c not in mapping])


# --------------------------------------------------------------------------- all of it


@dataclass(frozen=True)
class StudyFacts:
    """Every section's facts."""

    headline: Headline
    what_ran: WhatRan
    energy: EnergyTable
    decomposition: Decomposition
    components: Components
    conversions: list[ConversionRow]
    overhead: Overhead
    accuracy: AccuracyTable
    paper: AgainstPaper | None
    sensitivity: list[SensitivitySweepFacts]
    isaac: IsaacFacts | None
    fidelity: FidelityFacts | None
    closing: Closing | None
    peers: PeersFacts | None = None


def study_facts(data: dict[str, Any], study: Study) -> StudyFacts:
    """Every figure of the page, from the gathered data."""
    h = headline(data, study)
    comps, ov = components(data, study, h), overhead(data, study)
    return StudyFacts(
        headline=h, what_ran=what_ran(data), energy=energy_table(data, study),
        decomposition=decomposition(data, study), components=comps,
        conversions=conversions(data, study), overhead=ov,
        accuracy=accuracy_table(data, study),
        paper=against_paper(data, study, h, comps, ov) if h.n else None,
        sensitivity=sensitivity(data, study), isaac=isaac(data),
        fidelity=fidelity(data, study), closing=closing(data, study, h) if h.n else None,
        peers=peers(data))
