"""Study configuration: a TOML file parsed into typed, validated dataclasses.

Every section is a dataclass; unknown keys, wrong types and impossible values raise
:class:`~nas.errors.ConfigError` with one line naming the key. The built-in sections are
here; the optional feature sections (``[compression]``, ``[efficiency]``, ``[schedule]``,
``[lifecycle]``, ``[federated]``, ``[ablate]``, ``[final]``, ``[tracking]``) live in :mod:`nas.sections`. Each is a typed
field of :class:`Config` and is listed in ``SECTIONS``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError
from nas.sections import (
    LIFECYCLE_OBJECTIVE,
    AblateSection,
    CompressionSection,
    EfficiencySection,
    FederatedSection,
    FinalSection,
    LifecycleSection,
    ScheduleSection,
    TrackingSection,
)

if TYPE_CHECKING:  # pragma: no cover
    from nas.carbon import IntensitySource

OBJECTIVES: dict[str, str] = {
    "accuracy": "maximize",
    "kgco2e": "minimize",
    "energy_kwh": "minimize",
    "latency_ms": "minimize",
    "params": "minimize",
    LIFECYCLE_OBJECTIVE: "minimize",  # needs a [lifecycle] section
}
SAMPLERS = ("tpe", "nsga2", "random", "eco")
MAX_BATCH_SIZE = 65536  # larger batches are typos (10**12), not settings
MAX_CONFIG_BYTES = 1024 * 1024  # a study config is a few KB; /dev/zero is not one
MAX_NAME_BYTES = 200  # a study name names runs/<name>/: one path component (NAME_MAX is 255)


def check_study_name(name: str, where: str) -> None:
    """A study name is one path component (it names ``runs/<name>``) of printable characters."""
    if not name or name.strip() != name or name in (".", "..") or any(c in name for c in "/\\"):
        raise ConfigError(
            f"{where} {name!r} must be a non-empty name without '/' or '\\', "
            "surrounding spaces, and not '.' or '..'"
        )
    if not name.isprintable():
        raise ConfigError(f"{where} {name!r} must not contain control characters or newlines")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ConfigError(
            f"{where} is {len(name.encode('utf-8'))} bytes long; at most {MAX_NAME_BYTES}"
        )


DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class StudySection:
    name: str = "econas"
    storage: str | None = None  # default: sqlite:///runs/<name>/study.db
    artifacts: str | None = None  # default: runs/<name>/artifacts
    sampler: str = "eco"  # econas's own (nas.search_strategy.ArchSampler)
    trials: int = 12  # target number of finished trials; re-running resumes up to it
    timeout_s: float | None = None
    seed: int = 0
    objectives: tuple[str, ...] = ("accuracy", "kgco2e")
    startup_trials: int = 6  # completed trials before eco or TPE models the space

    def check(self) -> None:
        check_study_name(self.name, "study.name")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"study.seed must be in [0, 2**32), got {self.seed}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(
                f"study.sampler {self.sampler!r} is unknown; use one of {list(SAMPLERS)}"
            )
        if self.trials < 1:
            raise ConfigError("study.trials must be >= 1")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError("study.timeout_s must be > 0")
        if not self.objectives:
            raise ConfigError("study.objectives must name at least one objective")
        known = all_objectives()
        for obj in self.objectives:
            if obj not in known:
                raise ConfigError(f"study.objectives: unknown objective {obj!r}; use {list(known)}")
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError("study.objectives lists an objective twice")


BENCHMARK_PREFIX = "table:"


@dataclass(frozen=True)
class SearchSection:
    spaces: tuple[str, ...] = ("cnn", "vit")
    # Reference designs (search_spaces.baselines.BASELINES) enqueued as the first trials of a
    # new study, those whose family is searched and that fit the space; () turns it off.
    baselines: tuple[str, ...] = ("textbook", "resnet8", "mobilenetv2_tiny", "vit_tiny")
    # Train a trial predicted to cost more than 10x the study's median trial (refused otherwise).
    allow_costly: bool = False
    # Optimiser steps of the trial's model metered before it trains (after one warm-up step,
    # on a copy) to predict its training energy; 0: static features only (nas.efficiency.cost_probe).
    cost_probe_steps: int = 2
    # A tabular benchmark instead of the spaces: "table:DIR" or "table:NAME" (bundled,
    # nas.tabular.bundled_tables); training is a lookup (nas.table_study).
    benchmark: str | None = None
    # Per-space constructor options, from tables like [search.cnn]; filled by the parser.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self) -> None:
        b = self.benchmark
        if b is not None and not (b.startswith(BENCHMARK_PREFIX) and b[len(BENCHMARK_PREFIX) :]):
            raise ConfigError(
                f"search.benchmark {b!r} must be 'table:DIR' (a table folder) or 'table:NAME' "
                "(a bundled table, e.g. table:ecnas-4v)"
            )
        if not self.spaces:
            raise ConfigError("search.spaces must name at least one search space")
        if not 0 <= self.cost_probe_steps <= 64:
            raise ConfigError(
                f"search.cost_probe_steps must be in [0, 64], got {self.cost_probe_steps}"
            )
        from nas.space_options import check_option_values
        from search_spaces import list_search_spaces

        known = list_search_spaces()
        for name in (*self.spaces, *self.options):
            if name not in known:
                raise ConfigError(f"search: unknown search space {name!r}; known: {known}")
        for name, table in self.options.items():
            check_option_values(name, table)
        from search_spaces.baselines import BASELINES

        for name in self.baselines:
            if name not in BASELINES:
                raise ConfigError(
                    f"search.baselines: unknown baseline {name!r}; known: {list(BASELINES)}"
                )
        if len(set(self.baselines)) != len(self.baselines):
            raise ConfigError("search.baselines lists a baseline twice")


@dataclass(frozen=True)
class DataSection:
    dataset: str = "fashion-mnist"
    train_size: int | None = 2000
    val_size: int = 500
    test_size: int | None = 1000
    resolution: int | None = None
    batch_size: int = 64

    def check(self) -> None:
        from search_spaces.spec import MAX_IMAGE_SIZE

        for key in ("train_size", "test_size", "resolution"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"data.{key} must be >= 1")
        if self.resolution is not None and self.resolution > MAX_IMAGE_SIZE:
            raise ConfigError(
                f"data.resolution {self.resolution} is larger than the maximum {MAX_IMAGE_SIZE}"
            )
        if self.val_size < 1 or self.batch_size < 1:
            raise ConfigError("data.val_size and data.batch_size must be >= 1")


@dataclass(frozen=True)
class TrainSection:
    epochs: int = 1
    lr: float = 2e-3
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    label_smoothing: float = 0.0

    def check(self) -> None:
        if self.epochs < 1:
            raise ConfigError("train.epochs must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("train.lr must be a positive number")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"train.optimizer {self.optimizer!r} is unknown; use adamw or sgd")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError("train.label_smoothing must be in [0, 1)")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ConfigError(f"train.weight_decay must be a number >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class HardwareSection:
    device: str = "auto"
    meter: str = "auto"
    # GiB that econas's data and training may use (nas.memory); unset: 80% of the memory
    # available when data loads or a trial starts. Not part of the study's fingerprint.
    memory_budget_gb: float | None = None
    # CPU threads a search's trials train and infer with (0: torch's default, which honours
    # OMP_NUM_THREADS). 1 by default: on a shared 2-core machine, 2 threads drew 1.10-1.38x
    # the estimated energy of 1 for the baselines and a small CNN, for 0.73-0.94x the time
    # (benchmarks/threads.py; medians of 6 paired rounds). Not part of the fingerprint: each
    # trial records its threads.
    threads: int = 1

    def check(self) -> None:
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ConfigError(f"hardware.threads must be an integer >= 0, got {self.threads!r}")
        gb = self.memory_budget_gb
        if gb is not None and not (gb > 0 and math.isfinite(gb)):
            raise ConfigError(f"hardware.memory_budget_gb must be a positive number, got {gb}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ConfigError(f"hardware.device {self.device!r} is unknown; use {list(DEVICES)}")
        from nas.energy import METER_NAMES

        if self.meter not in METER_NAMES:
            raise ConfigError(f"hardware.meter {self.meter!r} is unknown; use {list(METER_NAMES)}")


@dataclass(frozen=True)
class CarbonSection:
    """Where a trial's carbon intensity comes from: one of ``region`` (yearly average, or
    ``trace:...``), ``intensity_g_per_kwh`` (fixed) or ``source`` (``live:PROVIDER[:REGION]``
    or ``trace:...``, see :func:`nas.carbon.parse_source`). ``base_url`` points a live source
    at a proxy or test server; ``timeout_s`` and ``retries`` are per request; ``regions``
    (``--regions``) lets a worker run each trial in the region whose forecast is greenest."""

    region: str | None = None
    intensity_g_per_kwh: float | None = None
    source: str | None = None
    base_url: str | None = None
    timeout_s: float = 10.0
    retries: int = 3
    regions: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return self.source is not None and self.source.strip().startswith("live:")

    def check(self) -> None:
        keys = ("region", "intensity_g_per_kwh", "source")
        given = [k for k in keys if getattr(self, k) is not None]
        if len(given) > 1:
            raise ConfigError(
                f"carbon: give only one of region, intensity_g_per_kwh, source, not both "
                f"({' and '.join(given)} given)"
            )
        if self.source is not None:
            from nas.carbon import parse_source

            try:
                parse_source(self.source)
            except Exception as exc:  # noqa: BLE001 - BadInputError, restated as one line
                raise ConfigError(f"carbon.source: {exc}") from None
        if self.base_url is not None and not self.live:
            raise ConfigError("carbon.base_url needs carbon.source = 'live:...'")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("carbon.base_url must be an http:// or https:// URL")
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)) or self.retries < 0:
            raise ConfigError("carbon.timeout_s must be > 0 and carbon.retries >= 0")
        if self.regions:
            if not self.live:
                raise ConfigError("carbon.regions (--regions) needs carbon.source = 'live:...'")
            from nas.carbon import region_specs

            try:
                region_specs(self.source or "", self.regions)
            except Exception as exc:  # noqa: BLE001 - restated as one config line
                raise ConfigError(f"carbon.regions: {exc}") from None


@dataclass(frozen=True)
class EvalSection:
    measure_inference: bool = True  # measure per-sample inference energy and latency
    inference_batch_size: int = 1
    inference_min_duration_s: float = 0.3

    def check(self) -> None:
        if not 1 <= self.inference_batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(
                f"eval.inference_batch_size must be in [1, {MAX_BATCH_SIZE}], "
                f"got {self.inference_batch_size}"
            )
        if not (0 < self.inference_min_duration_s <= 3600):
            raise ConfigError(
                "eval.inference_min_duration_s must be in (0, 3600] seconds, "
                f"got {self.inference_min_duration_s}"
            )


def all_objectives() -> dict[str, str]:
    """Objective names and their directions."""
    return dict(OBJECTIVES)


def all_sections() -> dict[str, type]:
    """Section names and their dataclasses (the fields of :class:`Config`)."""
    return dict(SECTIONS)


SECTIONS: dict[str, type] = {
    "study": StudySection,
    "search": SearchSection,
    "data": DataSection,
    "train": TrainSection,
    "hardware": HardwareSection,
    "carbon": CarbonSection,
    "eval": EvalSection,
    "compression": CompressionSection,
    "ablate": AblateSection,
    "efficiency": EfficiencySection,
    "schedule": ScheduleSection,
    "lifecycle": LifecycleSection,
    "federated": FederatedSection,
    "final": FinalSection,
    "tracking": TrackingSection,
}


@dataclass(frozen=True)
class Config:
    study: StudySection = field(default_factory=StudySection)
    search: SearchSection = field(default_factory=SearchSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    hardware: HardwareSection = field(default_factory=HardwareSection)
    carbon: CarbonSection = field(default_factory=CarbonSection)
    eval: EvalSection = field(default_factory=EvalSection)
    compression: CompressionSection = field(default_factory=CompressionSection)
    ablate: AblateSection = field(default_factory=AblateSection)
    efficiency: EfficiencySection = field(default_factory=EfficiencySection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    lifecycle: LifecycleSection = field(default_factory=LifecycleSection)
    federated: FederatedSection = field(default_factory=FederatedSection)
    final: FinalSection = field(default_factory=FinalSection)
    tracking: TrackingSection = field(default_factory=TrackingSection)
    path: str | None = None

    def check(self) -> None:
        """Rules that span sections."""
        if self.schedule.trace == "live" and not self.carbon.live:
            raise ConfigError("schedule.trace = 'live' needs carbon.source = 'live:...'")
        if self.carbon.regions and self.schedule.active:
            raise ConfigError(
                "--regions (spatial) with [schedule] green windows is not supported: spatial "
                "picks the greenest region and runs the trial there now"
            )
        if LIFECYCLE_OBJECTIVE in self.study.objectives and not self.lifecycle.active:
            raise ConfigError(
                f"objective {LIFECYCLE_OBJECTIVE!r} needs a [lifecycle] section with requests_per_day"
            )
        if self.search.benchmark is not None:
            self._check_benchmark()

    def _check_benchmark(self) -> None:
        """A tabular benchmark has no model: the features that need one are refused."""
        needs_model = {
            "[compression]": self.compression.enabled,
            "[federated]": self.federated.enabled,
            "[lifecycle]": self.lifecycle.active,
            "efficiency.screen": self.efficiency.screen != "none",
            "objective latency_ms": "latency_ms" in self.study.objectives,
        }
        on = [name for name, enabled in needs_model.items() if enabled]
        if on:
            raise ConfigError(
                f"search.benchmark {self.search.benchmark!r}: a table's architectures are looked "
                f"up, not built; {', '.join(on)} need(s) a model (turn it off)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {name: _section_dict(getattr(self, name)) for name in SECTIONS}

    def fingerprint(self) -> str:
        """Hash of everything that changes what a trial means (not trials/timeout/storage)."""
        blob = json.dumps(fingerprint_dict(self.to_dict()), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with ``changes`` applied to ``section`` (validated again)."""
        new = dataclasses.replace(getattr(self, section), **changes)
        new.check()
        config = dataclasses.replace(self, **{section: new})
        config.check()
        return config

    @property
    def storage_url(self) -> str:
        if self.study.storage:
            return self.study.storage
        return f"sqlite:///{self.run_dir / 'study.db'}"

    @property
    def run_dir(self) -> Path:
        return Path("runs") / self.study.name

    @property
    def artifact_dir(self) -> Path:
        return Path(self.study.artifacts) if self.study.artifacts else self.run_dir / "artifacts"


def config_intensity(config: Config) -> IntensitySource:
    """The intensity source of ``config``'s ``[carbon]`` section
    (:func:`nas.carbon.resolve_carbon_source`); a live source caches replies under the study's
    run directory (``runs/<name>/carbon-cache``)."""
    from nas.carbon import resolve_carbon_source

    c = config.carbon
    return resolve_carbon_source(
        source=c.source,
        region=c.region,
        intensity_g_per_kwh=c.intensity_g_per_kwh,
        base_url=c.base_url,
        timeout_s=c.timeout_s,
        retries=c.retries,
        cache_dir=Path(config.run_dir) / "carbon-cache",
    )


def fingerprint_dict(d: dict[str, Any]) -> dict[str, Any]:
    """The part of a :meth:`Config.to_dict` that decides what a trial means.

    Left out: how long to run and where to store (trials, timeout, storage, artifacts), the
    carbon budget and countdown, the memory budget, the baselines a new study starts with and
    ``search.allow_costly``, ``[final]`` (how a chosen trial is trained later) and
    ``[carbon]``: where the grid's intensity comes from changes what a trial is charged, not
    what it does, and each trial records its own intensity and source; workers in several
    regions (spatial shifting) share one study. Kept: everything else, the device and meter
    included: energy measured on other hardware or by another meter is not comparable within
    one study's front."""
    d = json.loads(json.dumps(d, default=str))  # a deep copy
    for key in ("trials", "timeout_s", "storage", "artifacts"):
        d.get("study", {}).pop(key, None)
    d.pop("final", None)
    d.pop("tracking", None)  # where results are also sent, not what they are
    d.pop("carbon", None)
    d.get("hardware", {}).pop("threads", None)  # recorded per trial (provenance)
    d.get("hardware", {}).pop("memory_budget_gb", None)  # which trials run out, not what
    # they mean
    for key in ("max_kgco2e", "countdown_s"):
        d.get("schedule", {}).pop(key, None)
    # which trials a new study starts with and whether costly ones may train: not what a
    # trial means (each baseline is an ordinary trial of the space)
    for key in ("baselines", "allow_costly"):
        d.get("search", {}).pop(key, None)
    return d


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys (``train.lr``) whose values differ between a stored config ``old`` and
    ``new`` (both :meth:`Config.to_dict`). A key ``old`` lacks (added by a later version with
    its old behaviour as the default) is not a difference."""
    a, b = fingerprint_dict(old), fingerprint_dict(new)
    out = []
    for section in sorted(a):
        sa, sb = a[section], b.get(section, {})
        if not isinstance(sa, dict) or not isinstance(sb, dict):
            if sa != sb:
                out.append(section)
            continue
        out += [f"{section}.{k}" for k in sorted(sa) if sa[k] != sb.get(k)]
    return out


def _section_dict(section: Any) -> dict[str, Any]:
    out = dataclasses.asdict(section)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _check_type(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint; return it converted (lists -> tuples)."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {type(value).__name__}")
        return tuple(_check_type(v, item, f"{where}[]") for v in value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"{where} must be a number, got nan")
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{where} is out of range: {value}") from None
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise ConfigError(f"{where} must be a {hint.__name__}, got {value!r}")
        if hint is str and not value.isprintable():
            raise ConfigError(f"{where} must not contain control characters, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table")
        return value
    raise ConfigError(f"{where}: unsupported type {hint}")  # pragma: no cover


def _build_section(name: str, cls: type, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    if cls is SearchSection:  # sub-tables are per-space options
        from search_spaces import list_search_spaces

        options = {k: v for k, v in table.items() if isinstance(v, dict)}
        for key in set(table) & set(list_search_spaces()) - set(options):
            raise ConfigError(
                f"search.{key} must be a table of options ([search.{key}]), got {table[key]!r}"
            )
        table = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if "options" in table:
            raise ConfigError("search.options is not a key; use [search.<space>] tables")
        kwargs["options"] = options
    for key, value in table.items():
        if key not in fields or key == "options":
            raise ConfigError(
                f"unknown key '{name}.{key}'; known keys: {sorted(fields - {'options'})}"
            )
        kwargs[key] = _check_type(value, hints[key], f"{name}.{key}")
    section = cls(**kwargs)
    section.check()
    return section


def config_from_dict(data: dict[str, Any], *, path: str | None = None) -> Config:
    """Build a validated :class:`Config` from a parsed TOML document."""
    from nas.credentials import remember_strings

    remember_strings(_strings(data))  # a storage, tracking or carbon URL's credentials
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown section [{name}]; known sections: {sorted(SECTIONS)}")
        sections[name] = _build_section(name, SECTIONS[name], table)
    for name, cls in SECTIONS.items():
        if name not in sections:
            section = cls()
            section.check()
            sections[name] = section
    config = Config(**sections, path=path)
    config.check()
    return config


def _strings(value: Any) -> list[str]:
    """Every string inside a parsed TOML document (tables and arrays walked)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def load_config(path: str | Path) -> Config:
    """Read and validate a study config: a TOML file, or the name of a bundled study
    (``quickstart``; see :mod:`nas.bundled`) when no such file exists.

    Relative paths inside a bundled config resolve from the bundled folder.
    """
    from nas.bundled import resolve_config_path
    from nas.files import read_text

    p, bundled = resolve_config_path(path)
    text = read_text(p, "config file", max_bytes=MAX_CONFIG_BYTES, error=ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    if bundled:
        data = resolve_relative_paths(data, p.parent)
    return config_from_dict(data, path=str(p))


# Keys whose value may be a file or folder: (section, key, prefix the path follows).
PATH_KEYS: tuple[tuple[str, str, str], ...] = (
    ("data", "dataset", "npz:"),
    ("search", "benchmark", BENCHMARK_PREFIX),
    ("data", "dataset", ""),  # a bare .npz path
    ("carbon", "region", "trace:"),
    ("schedule", "trace", ""),
    ("compression", "teacher", ""),
)


def resolve_relative_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` with every relative path that exists under ``base`` made absolute (the
    paths of :data:`PATH_KEYS`); names such as ``fashion-mnist`` or ``gb_2020`` are kept."""
    out = {name: dict(table) if isinstance(table, dict) else table for name, table in data.items()}
    for section, key, prefix in PATH_KEYS:
        table = out.get(section)
        value = table.get(key) if isinstance(table, dict) else None
        if not isinstance(value, str) or not value.startswith(prefix):
            continue
        rest = value[len(prefix) :].strip()
        if not rest or Path(rest).expanduser().is_absolute():
            continue
        candidate = base / rest
        if candidate.exists():
            table[key] = prefix + str(candidate.resolve())
    return out
