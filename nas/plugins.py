"""Extension points of a study: config sections, per-trial hooks, study callbacks, CLI flags.

Each feature that changes what a trial does (compression, federated training, reuse and
early stopping, carbon-aware scheduling, lifecycle carbon) lives in its own module listed in
``PLUGIN_MODULES``. A plugin module may define any of:

``SECTIONS: dict[str, type]``
    extra config sections (frozen dataclasses with a ``check()`` method), e.g.
    ``{"compression": CompressionSection}``; they are parsed as strictly as the built-ins
    and reachable as ``config.<name>``.
``make_trial_plugins(objective) -> list[TrialPlugin]``
    hooks run inside every trial, in ``PLUGIN_MODULES`` order.
``study_callbacks(config, study) -> list[Callable[[Study, FrozenTrial], None]]``
    Optuna callbacks for the study (e.g. stop at a carbon budget).
``add_run_args(parser)`` / ``apply_run_args(config, args) -> config``
    flags of ``search`` and ``worker``.
``OBJECTIVES: dict[str, str]``
    extra objective names and their directions, e.g. ``{"lifecycle_kgco2e": "minimize"}``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    import torch

    from nas.carbon import IntensitySource
    from nas.config import Config
    from nas.data import DataSplits
    from nas.energy import Measurement, Meter
    from nas.train import TrainResult
    from search_spaces import ArchSpec, SearchSpace

PLUGIN_MODULES: tuple[str, ...] = (
    "nas.compression.plugin",  # pruning, quantization, distillation, mixed precision
    "nas.federated.plugin",  # federated training strategy
    "nas.efficiency.plugin",  # reuse, zero-cost screening, multi-objective early stopping
    "nas.scheduling.plugin",  # green windows and the carbon budget
    "nas.lifecycle",  # lifecycle carbon objective
)


@dataclass
class TrialContext:
    """Everything one trial knows; hooks read and change it in place.

    ``model`` is what gets trained; ``eval_model`` (default: ``model``) is what gets
    evaluated, measured for inference and saved (e.g. the pruned, quantized model) and
    ``eval_device`` where it runs. ``train_kwargs`` are passed to ``nas.train.train_model``
    (plugins may change ``loss_fn``, ``autocast_dtype``, ``epochs``...), ``epoch_callbacks``
    are called as ``cb(epoch, mean_loss)`` after each epoch and may raise
    ``optuna.TrialPruned``. ``metrics`` are the candidate objective values. ``settings``
    holds what plugins sampled (e.g. ``settings["compression"]``), shared between plugins.
    Every measurement ``record``-ed is a phase of the trial's energy: its attrs are stored
    under ``<phase>_`` and its energy counts in the trial's ``energy_kwh``/``kgco2e``.
    """

    trial: optuna.Trial
    config: Config
    space: SearchSpace
    spec: ArchSpec
    model: torch.nn.Module
    device: torch.device
    data: DataSplits
    meter: Meter
    intensity: IntensitySource
    input_shape: tuple[int, int, int]
    started: datetime
    objective: Any = None  # the nas.objective.Objective running this trial
    attrs: dict[str, Any] = field(default_factory=dict)
    phases: list[Measurement] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    epoch_callbacks: list[Callable[[int, float], None]] = field(default_factory=list)
    eval_model: torch.nn.Module | None = None
    eval_device: torch.device | None = None
    train_result: TrainResult | None = None

    def record(self, m: Measurement) -> None:
        """Add a measured phase (its energy counts in the trial's total)."""
        self.phases.append(m)
        self.attrs.update(m.to_attrs(prefix=f"{m.name}_"))
        self.attrs["phases"] = ",".join(p.name for p in self.phases)

    @property
    def energy_kwh(self) -> float:
        return float(sum(m.energy_kwh for m in self.phases))


class TrialPlugin:
    """Per-trial hooks; every method is optional. Order is ``PLUGIN_MODULES`` order."""

    name: str = "plugin"

    def sample(self, ctx: TrialContext) -> None:
        """Sample this plugin's part of the trial (after the architecture)."""

    def before_train(self, ctx: TrialContext) -> list[float] | None:
        """Run before training; return objective values to finish the trial without training
        (reuse), raise ``optuna.TrialPruned`` to stop it (screening), or wait (scheduling)."""
        return None

    def train(self, ctx: TrialContext) -> TrainResult | None:
        """Train ``ctx.model`` in place instead of the default loop; None leaves it to others."""
        return None

    def after_train(self, ctx: TrialContext) -> None:
        """After training, before evaluation (e.g. prune + fine-tune, quantize)."""

    def after_eval(self, ctx: TrialContext) -> None:
        """After evaluation and inference measurement; may add ``ctx.metrics``/``ctx.attrs``."""

    def on_complete(self, ctx: TrialContext, values: list[float]) -> None:
        """The trial finished with ``values``."""


@cache
def plugin_modules() -> tuple[ModuleType, ...]:
    return tuple(importlib.import_module(name) for name in PLUGIN_MODULES)


def plugin_sections() -> dict[str, type]:
    out: dict[str, type] = {}
    for mod in plugin_modules():
        out.update(getattr(mod, "SECTIONS", {}))
    return out


def plugin_objectives() -> dict[str, str]:
    out: dict[str, str] = {}
    for mod in plugin_modules():
        out.update(getattr(mod, "OBJECTIVES", {}))
    return out


def make_trial_plugins(objective: Any) -> list[TrialPlugin]:
    plugins: list[TrialPlugin] = []
    for mod in plugin_modules():
        factory = getattr(mod, "make_trial_plugins", None)
        if factory is not None:
            plugins.extend(factory(objective))
    return plugins


def study_callbacks(config: Config, study: optuna.Study) -> list[Callable[..., None]]:
    out: list[Callable[..., None]] = []
    for mod in plugin_modules():
        factory = getattr(mod, "study_callbacks", None)
        if factory is not None:
            out.extend(factory(config, study))
    return out


def add_run_args(parser: Any) -> None:
    for mod in plugin_modules():
        fn = getattr(mod, "add_run_args", None)
        if fn is not None:
            fn(parser)


def apply_run_args(config: Config, args: Any) -> Config:
    for mod in plugin_modules():
        fn = getattr(mod, "apply_run_args", None)
        if fn is not None:
            config = fn(config, args)
    return config
