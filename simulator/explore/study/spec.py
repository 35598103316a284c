"""Study files: which sweeps and checks make up a study, and where its page goes.

A study (``redysim study STUDY.yaml``, docs/validation.md) is a list of sweep files
(docs/sweeps.md) whose points are networks, a list of sensitivity sweeps, fidelity
sweeps, and the ISAAC hardware check. Paths are relative to the study file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field

from simulator.core.config_io import ConfigError, StrictModel, load_yaml, path_is_file, validate


class PaperFigures(StrictModel):
    """The published figures the study is set against."""

    average_saving: float = Field(0.13, ge=0, le=1,
                                  description="ReDy's average energy saving (fraction)")
    accuracy_budget_points: float = Field(0.5, ge=0, description="top-1 loss allowed (points)")


class Targets(StrictModel):
    """Thresholds the page holds figures against (fractions)."""

    group_latency: float = Field(
        0.05, ge=0, description="`group` latency within this of `plane`'s (else: missed)")
    analytic_far: float = Field(
        0.10, ge=0, description="an `analytic` latency or throughput further than this "
                                "from `plane`'s is reported as a disagreement")


class SensitivitySweep(StrictModel):
    """One sensitivity sweep: a title and the sweep file."""

    title: str
    sweep: str
    note: str = Field("", description="what the sweep changes and on which network")


class IsaacCheck(StrictModel):
    """`redysim hw` against ISAAC's Table I and Table IV."""

    hardware: str = Field(description="hardware file with Table I as published")
    redy_hardware: str = Field(description="the study's chip (precision-unit area share)")
    published: str = Field(description="YAML of the paper's Table I / IV figures")
    engine_check: bool = Field(True, description="also the full-activity run of the engine")


PowerArea = Annotated[list[float], Field(min_length=2, max_length=2)]


class TableI(StrictModel):
    """ISAAC's Table I: component -> [power, area] per IMA / per tile, and the totals."""

    ima: dict[str, PowerArea]
    tile: dict[str, PowerArea]
    totals: dict[str, PowerArea]


class TableIV(StrictModel):
    """ISAAC-CE's peak figures (Table IV)."""

    peak_tops: float
    peak_gops_per_w: float


class PublishedIsaac(StrictModel):
    """The published ISAAC figures the study compares `redysim hw` with."""

    table_i: TableI
    table_iv: TableIV


TOTAL_KEYS = ("ima", "tile", "tiles_168", "offchip", "chip")


def load_published(path: str | Path) -> PublishedIsaac:
    """Validate the published-figures file (components must be ones redysim knows)."""
    from simulator.model.ledger import EVENT_COMPONENT

    pub = validate(PublishedIsaac, load_yaml(path), str(path))
    known = set(EVENT_COMPONENT.values())
    for level in ("ima", "tile"):
        for comp in getattr(pub.table_i, level):
            if comp not in known:
                raise ConfigError(f"{path}: table_i.{level}.{comp}: unknown component "
                                  f"(expected one of {', '.join(sorted(known))})")
    bad = sorted(set(pub.table_i.totals) - set(TOTAL_KEYS))
    if bad:
        raise ConfigError(f"{path}: table_i.totals.{bad[0]}: unknown total "
                          f"(expected {', '.join(TOTAL_KEYS)})")
    return pub


class StudySpec(StrictModel):
    """A study file (see the module docstring)."""

    name: str
    doc: str = Field(description="markdown page the study writes")
    figures: str = Field(description="folder of the page's plots")
    results: str = Field(description="folder of the sweeps' results and study.json")
    workers: int = Field(2, ge=1, description="Dask worker processes")
    baseline: str = "static"
    redy: str = Field("redy", description="pipeline whose saving is the headline")
    paper: PaperFigures = Field(default_factory=PaperFigures)
    targets: Targets = Field(default_factory=Targets)
    networks: list[str] = Field(min_length=1, description="sweeps whose points are networks")
    sensitivity: list[SensitivitySweep] = Field(default_factory=list)
    fidelity: list[str] = Field(default_factory=list,
                                description="sweeps of one scenario at several fidelities")
    isaac: IsaacCheck | None = None
    peers: str | None = Field(None, description="peers file (simulator/explore/study/peers.py):"
                                                " other tools' figures to compare with")


@dataclass
class Study:
    """A validated study with every path resolved."""

    spec: StudySpec
    source: Path
    doc: Path
    figures: Path
    results: Path

    def path(self, rel: str) -> Path:
        """A path of the study file, resolved against the file's folder."""
        p = Path(rel)
        return p if p.is_absolute() else (self.source.parent / p).resolve()


def load_study(path: str | Path, doc: str | Path | None = None,
               figures: str | Path | None = None,
               results: str | Path | None = None) -> Study:
    """Validate a study file and check that every file it names exists; *doc*,
    *figures* and *results* override the file's (command-line options, tests)."""
    src = Path(path)
    spec = validate(StudySpec, load_yaml(src), str(src))
    study = Study(spec, src.resolve(), Path(), Path(), Path())
    study.doc = Path(doc).resolve() if doc else study.path(spec.doc)
    study.figures = Path(figures).resolve() if figures else study.path(spec.figures)
    study.results = Path(results).resolve() if results else study.path(spec.results)
    named = [(f"networks[{i}]", s) for i, s in enumerate(spec.networks)]
    named += [(f"sensitivity[{i}].sweep", s.sweep) for i, s in enumerate(spec.sensitivity)]
    named += [(f"fidelity[{i}]", s) for i, s in enumerate(spec.fidelity)]
    if spec.peers:
        named.append(("peers", spec.peers))
    if spec.isaac:
        named += [("isaac.hardware", spec.isaac.hardware),
                  ("isaac.redy_hardware", spec.isaac.redy_hardware),
                  ("isaac.published", spec.isaac.published)]
    for key, rel in named:
        if not path_is_file(study.path(rel), key):
            raise ConfigError(f"{src}: {key}: file not found: {study.path(rel)}")
    if spec.isaac:
        load_published(study.path(spec.isaac.published))
    if spec.peers:
        from simulator.explore.study.peers import load_peers

        try:
            load_peers(study.path(spec.peers))
        except ConfigError as exc:
            raise ConfigError(f"{src}: peers: {exc}") from None
    return study
