"""Scenario file: which hardware, which network, which precision pipelines, how to simulate.

A scenario YAML is loaded once into a validated :class:`Scenario`; relative paths inside
it (hardware file, weights file, included policy files) are resolved against the
scenario file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from mapping.mapper import MappingOptions
from simulator.core.config_io import ConfigError, StrictModel, load_yaml, path_is_file, validate
from workloads.precision.options import AccuracyOptions, PolicySpec, QuantConfig
from workloads.spec import WorkloadSpec


class SimulationOptions(StrictModel):
    """How the chip is simulated."""

    fidelity: Literal["plane", "group", "analytic"] = "group"
    images: int = Field(1, ge=1, description="images streamed through the pipeline")
    warmup_images: int = Field(
        1, ge=0, description="the steady-state throughput window starts no earlier than "
        "this image's completion (image 0 always fills the pipeline; docs/model.md); it "
        "needs images >= warmup_images + 2; a value written in the file is checked against "
        "images, the default is lowered to images - 2 with fewer images")
    time_bins: int = Field(400, ge=10, le=100000, description="bins of the timeline outputs")
    power_gating: bool = Field(True, description="tiles holding no layer leak nothing")
    workers: int = Field(
        2, ge=1, le=64, description="pipelines simulated in parallel processes (fork)")
    load_timing: bool = Field(
        True, description="time the eDRAM bank and bus transfer of every group (false: "
        "loads are free, an ablation)")
    trace: bool = Field(False, description="write trace.json (Chrome trace-event format)")
    trace_sample: int = Field(
        1, ge=1, description="keep at least one lane MVM in N in the trace")
    trace_max_events: int = Field(
        700_000, ge=1000, description="per pipeline: sample lane MVMs (and drop the ADC "
        "counter tracks) when the trace would hold more events than this; ~100 bytes each, "
        "so VGG-16's two pipelines stay near 150 MB")


class Scenario(StrictModel):
    """A whole experiment: hardware × workload × precision pipelines."""

    name: str
    hardware: str = Field(description="hardware YAML, relative to the scenario file")
    workload: WorkloadSpec
    quantization: QuantConfig = QuantConfig()
    accuracy: AccuracyOptions = AccuracyOptions()
    pipelines: dict[str, PolicySpec] = Field(
        default_factory=lambda: {"static": PolicySpec(policy="static"),
                                 "redy": PolicySpec(policy="redy")})
    mapping: MappingOptions = MappingOptions()
    simulation: SimulationOptions = SimulationOptions()
    # filled in by load_scenario, not by users
    source: str = Field("<memory>", exclude=True)

    @field_validator("pipelines")
    @classmethod
    def _some_pipelines(cls, v: dict[str, PolicySpec]) -> dict[str, PolicySpec]:
        if not v:
            raise ValueError("at least one pipeline is required (e.g. static and redy)")
        return v

    @property
    def base_dir(self) -> Path:
        """Folder of the scenario file (for relative paths)."""
        return Path(self.source).parent if self.source != "<memory>" else Path.cwd()

    def resolve(self, rel: str) -> Path:
        """Path *rel* as written in the scenario, resolved against the scenario's folder."""
        p = Path(rel)
        return p if p.is_absolute() else (self.base_dir / p)


def scenario_problems(sc: Scenario) -> list[str]:
    """Values that are valid one by one but impossible together, as 'key: problem' lines:
    a ReDy ``min_bits`` above the bits a group has (``quantization.bits``, which must
    equal the hardware's ``activations.bits``)."""
    bits = sc.quantization.bits
    out: list[str] = []

    def check(key: str, value: int | None) -> None:
        if value is not None and value > bits:
            out.append(f"{key}: must be at most quantization.bits ({bits}): a group has "
                       f"{bits} bit planes to stream (got {value})")

    for name, spec in sc.pipelines.items():
        check(f"pipelines.{name}.min_bits", spec.min_bits)
        for layer, ov in spec.layers.items():
            check(f"pipelines.{name}.layers.{layer}.min_bits", ov.min_bits)
    return out


def check_scenario(sc: Scenario) -> None:
    """Raise one ConfigError naming the file for every problem of :func:`scenario_problems`."""
    problems = scenario_problems(sc)
    if problems:
        raise ConfigError("\n".join(f"{sc.source}: {p}" for p in problems))


def check_warmup(sc: Scenario) -> None:
    """A ``simulation.warmup_images`` written in the scenario must leave two completions to
    time: images >= warmup_images + 2 (else the warm-up would silently shrink). The
    default (1) is lowered to images - 2 when fewer images are streamed; a single image
    measures no throughput at all, so nothing is checked then."""
    sim = sc.simulation
    if "warmup_images" not in sim.model_fields_set or sim.images < 2:
        return
    if sim.images < sim.warmup_images + 2:
        raise ConfigError(
            f"{sc.source}: simulation.warmup_images: {sim.warmup_images} warm-up image(s) "
            f"leave no interval to measure with {sim.images} image(s) streamed: the "
            f"measured throughput needs images >= warmup_images + 2 = "
            f"{sim.warmup_images + 2}; raise simulation.images (or --images) or lower "
            "warmup_images")


def _merge_includes(data: dict[str, Any], base: Path, source: str) -> dict[str, Any]:
    """Pipelines may say `include: file.yaml` to take their parameters from a tune output."""
    pipes = data.get("pipelines")
    if not isinstance(pipes, dict):
        return data
    for name, spec in pipes.items():
        if isinstance(spec, dict) and "include" in spec:
            inc = base / str(spec["include"])
            try:
                extra = load_yaml(inc)
            except ConfigError as exc:
                raise ConfigError(f"{source}: pipelines.{name}.include: {exc}") from None
            merged = {**extra, **{k: v for k, v in spec.items() if k != "include"}}
            pipes[name] = merged
    return data


def _is_file(p: Path, where: str) -> bool:
    """``p.is_file()``, with a path that cannot be checked reported as a ConfigError."""
    try:
        return path_is_file(p, "a file")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_scenario(path: str | Path, changes: dict[str, Any] | None = None) -> Scenario:
    """Load and validate a scenario YAML file.

    *changes* (dotted key path -> value, e.g. ``{"simulation.images": 2}``) replace values
    of the file before validation, as a sweep point does; relative paths still resolve
    against the file's folder.
    """
    data = load_yaml(path)
    if changes:
        from simulator.core.keypaths import set_dotted

        for key, value in changes.items():
            set_dotted(data, key, value, str(path))
    data = _merge_includes(data, Path(path).parent, str(path))
    sc = validate(Scenario, data, str(path))
    sc.source = str(path)
    check_scenario(sc)
    hw = sc.resolve(sc.hardware)
    if not _is_file(hw, f"{path}: hardware"):
        raise ConfigError(f"{path}: hardware: file not found: {hw}")
    from workloads.loader import missing_files

    try:
        missing = missing_files(sc.workload, sc.base_dir)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for key, where in missing:
        raise ConfigError(f"{path}: workload.{key}: not found: {where}")
    return sc
