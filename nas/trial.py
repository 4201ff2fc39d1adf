"""What a trial's steps see and hand back: the trial's state, its deployed model, the step hooks.

:mod:`nas.pipeline` runs a trial as a fixed sequence of hook points; a feature (compression,
federated training, reuse and screening, green windows, lifecycle carbon, or your own) is a
:class:`Step` that implements some hooks. A hook reads the :class:`RunningTrial` and returns
what it produces (settings, a :class:`~nas.train.TrainingPlan`, a :class:`Deployed` model,
metrics); it never changes the objective or another step's settings. Attrs go to the trial
record through ``t.record`` (names from :mod:`nas.record`), energy through phases
(``t.phase(name)``). What the whole run shares (config, data, device, meter, carbon source,
artifact store, seed, and the workload that builds, trains and evaluates models) is the run
context, ``t.context`` (:class:`nas.context.RunContext`); a step's factory gets it too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas.record import PhaseLog

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    import torch

    from nas.carbon import CarbonIntensity, IntensitySource
    from nas.config import Config
    from nas.context import RunContext
    from nas.data import DataSplits
    from nas.energy import Measurement, Meter
    from nas.train import TrainingPlan, TrainResult
    from search_spaces import ArchSpec, SearchSpace


@dataclass(kw_only=True)
class Deployed:
    """A deployed model: what is evaluated, measured and saved, and where it runs. The one
    result of the deploy recipe (:mod:`nas.compression.recipe`) for a search trial, ``econas
    train`` and a row of ``econas ablate``.

    ``float_model`` is the model before quantization (the model itself when not quantized):
    params and FLOPs are counted on it. ``params``/``flops``: counted when deploying (a
    pruned trial's), else None. ``train``: the measured windows that produced it, where the
    runner keeps them with the model (``econas ablate``'s rows); ``details``: what it did.
    """

    model: torch.nn.Module
    device: torch.device
    float_model: torch.nn.Module | None = None
    params: int | None = None
    flops: int | None = None
    train: list[Measurement] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.float_model is None:
            self.float_model = self.model


@dataclass
class RunningTrial:
    """One trial while it runs. Steps read it; only :mod:`nas.pipeline` assigns its fields."""

    trial: optuna.Trial
    context: RunContext
    log: PhaseLog
    intensity: IntensitySource
    space: SearchSpace | None = None
    spec: ArchSpec | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # step name -> what it sampled
    model: torch.nn.Module | None = None  # what is trained
    plan: TrainingPlan | None = None  # how it was trained (fine-tuning reuses it)
    deployed: Deployed | None = None
    train_result: TrainResult | None = None
    reused: bool = False  # the result is another trial's (nas.efficiency)
    carbon: CarbonIntensity | None = None  # the intensity over the interval the trial ran
    metrics: dict[str, float] = field(default_factory=dict)  # candidate objective values
    epoch_energy_kwh: list[float] = field(default_factory=list)  # each finished epoch's training
    epoch_duration_s: list[float] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Config:
        return self.context.config

    @property
    def data(self) -> DataSplits:
        return self.context.data

    @property
    def device(self) -> torch.device:
        return self.context.device

    @property
    def meter(self) -> Meter:
        meter = self.context.meter
        assert meter is not None  # a search's context is always metered (nas.search)
        return meter

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.context.input_shape

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def seed(self) -> int:
        return self.context.seed + self.trial.number

    def record(self, attrs: Mapping[str, Any]) -> None:
        """Add attrs to the trial record (stored when the trial ends, failed or not)."""
        self.attrs.update(attrs)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Run a block inside the trial's phase ``name`` (see :data:`nas.record.PHASES`)."""
        with self.log.phase(name):
            yield


class Step:
    """A feature's part of every trial. Every hook is optional; :mod:`nas.pipeline` calls them
    in the order of ``assemble_steps`` at these points:

    ``admit``     before sampling: raise to refuse the trial (e.g. a spent carbon budget)
    ``sample``    after the architecture: sample this step's choices, return its settings
    ``reuse``     return objective values to finish the trial with another trial's result
    ``wait``      before any work: wait for a slot, return the trial's intensity source
    ``screen``    on the built model: raise ``optuna.TrialPruned`` to drop the candidate
    ``plan``      return the training plan, changed (precision, loss, callbacks)
    ``train``     train ``t.model`` instead of the central loop; None leaves it to others
    ``after_train``  after the train phase (e.g. add an estimated phase)
    ``deploy``    return the deployed model (pruned, quantized), opening its own phases
    ``evaluated`` after evaluation and inference: return extra metrics (objectives)
    ``complete``  the trial finished with these values
    """

    name: str = "step"

    def uses(self, hook: str) -> bool:
        """Whether this step takes part at ``hook`` (default: it overrides it). The pipeline
        opens the phase of an optional hook (``screen``) only when some step uses it."""
        return getattr(type(self), hook) is not getattr(Step, hook)

    def admit(self, t: RunningTrial) -> None:
        return None

    def sample(self, t: RunningTrial) -> Any:
        return None

    def reuse(self, t: RunningTrial) -> list[float] | None:
        return None

    def wait(self, t: RunningTrial) -> IntensitySource | None:
        return None

    def screen(self, t: RunningTrial) -> None:
        return None

    def plan(self, t: RunningTrial, plan: TrainingPlan) -> TrainingPlan:
        return plan

    def train(self, t: RunningTrial, plan: TrainingPlan) -> TrainResult | None:
        return None

    def after_train(self, t: RunningTrial) -> None:
        return None

    def deploy(self, t: RunningTrial, model: torch.nn.Module) -> Deployed | None:
        return None

    def evaluated(self, t: RunningTrial, metrics: Mapping[str, float]) -> Mapping[str, float]:
        return {}

    def complete(self, t: RunningTrial, values: list[float]) -> None:
        return None


def __getattr__(name: str) -> Any:
    """``nas.trial.TrainingPlan``: the training recipe lives in :mod:`nas.train` (loaded on
    first use, so that importing the step interface loads no torch)."""
    if name == "TrainingPlan":
        from nas.train import TrainingPlan

        return TrainingPlan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
