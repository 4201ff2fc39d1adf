"""What a trial's steps see and hand back: the trial's state, its training plan, the step hooks.

:mod:`nas.pipeline` runs a trial as a fixed sequence of hook points; a feature (compression,
federated training, reuse and screening, green windows, lifecycle carbon, or your own) is a
:class:`Step` that implements some hooks. A hook reads the :class:`TrialState` and returns
what it produces (settings, a training plan, a deployed model, metrics); it never changes the
objective or another step's settings. Attrs go to the trial record through ``t.record``
(names from :mod:`nas.record`), energy through phases (``t.phase(name)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas.record import PhaseLog

if TYPE_CHECKING:  # pragma: no cover
    import optuna
    import torch

    from nas.carbon import CarbonIntensity, IntensitySource
    from nas.config import Config
    from nas.data import DataSplits
    from nas.energy import Meter
    from nas.train import LossFn, TrainResult
    from search_spaces import ArchSpec, SearchSpace


@dataclass(frozen=True)
class TrialEnv:
    """What every trial of a run shares: config, data, device, meter, carbon source, store."""

    config: Config
    data: DataSplits
    device: torch.device
    meter: Meter
    intensity: IntensitySource
    artifact_store: Any = None  # optuna.artifacts.FileSystemArtifactStore | None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.data.in_channels, self.data.image_size, self.data.image_size)


@dataclass(frozen=True)
class TrainingPlan:
    """How the trial trains. Steps return a changed copy (``plan.replace(...)``)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    optimizer: str
    loss_fn: LossFn
    device: torch.device
    seed: int
    autocast_dtype: Callable[[int], Any] | None = None  # epoch -> dtype | None
    on_start: tuple[Callable[[], None], ...] = ()  # when the first epoch starts
    epoch_callbacks: tuple[Callable[[int, float], None], ...] = ()  # may raise TrialPruned

    def replace(self, **changes: Any) -> TrainingPlan:
        return dataclasses.replace(self, **changes)

    def train_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`nas.train.train_model` (callbacks not included)."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "optimizer": self.optimizer,
            "loss_fn": self.loss_fn,
            "device": self.device,
            "seed": self.seed,
            "autocast_dtype": self.autocast_dtype,
        }

    def on_epoch_end(self, epoch: int, loss: float) -> None:
        for cb in self.epoch_callbacks:
            cb(epoch, loss)

    def started(self) -> None:
        for cb in self.on_start:
            cb()


@dataclass(frozen=True)
class Deployed:
    """The model a trial evaluates, measures and saves, and where it runs."""

    model: torch.nn.Module
    device: torch.device
    params: int | None = None  # of the deployed model, when it differs from the trained one
    flops: int | None = None


@dataclass
class TrialState:
    """One trial while it runs. Steps read it; only :mod:`nas.pipeline` assigns its fields."""

    trial: optuna.Trial
    env: TrialEnv
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
        return self.env.config

    @property
    def data(self) -> DataSplits:
        return self.env.data

    @property
    def device(self) -> torch.device:
        return self.env.device

    @property
    def meter(self) -> Meter:
        return self.env.meter

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.env.input_shape

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def seed(self) -> int:
        return self.config.study.seed + self.trial.number

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

    def admit(self, t: TrialState) -> None:
        return None

    def sample(self, t: TrialState) -> Any:
        return None

    def reuse(self, t: TrialState) -> list[float] | None:
        return None

    def wait(self, t: TrialState) -> IntensitySource | None:
        return None

    def screen(self, t: TrialState) -> None:
        return None

    def plan(self, t: TrialState, plan: TrainingPlan) -> TrainingPlan:
        return plan

    def train(self, t: TrialState, plan: TrainingPlan) -> TrainResult | None:
        return None

    def after_train(self, t: TrialState) -> None:
        return None

    def deploy(self, t: TrialState, model: torch.nn.Module) -> Deployed | None:
        return None

    def evaluated(self, t: TrialState, metrics: Mapping[str, float]) -> Mapping[str, float]:
        return {}

    def complete(self, t: TrialState, values: list[float]) -> None:
        return None
