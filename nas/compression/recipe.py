"""The deploy recipe: from what a trial chose (or its record) to one :class:`~nas.trial.Deployed`
model. The three runners use it, each through the stages it needs:

* a search trial (:mod:`nas.compression.step`): :func:`training_plan` (precision, teacher),
  then :func:`deploy`: prune and fine-tune in phase ``finetune``, quantize and calibrate in
  phase ``quantize``;
* ``econas train`` (:mod:`nas.final`): :func:`pruned_network` (the pruned structure, trained
  from scratch), :func:`training_plan`, then :func:`deploy` with
  ``pruned_before_training=True``: nothing is pruned again, only quantized;
* ``econas ablate`` (:mod:`nas.compression.techniques`, :mod:`nas.compression.combined`): one
  technique per row, :func:`prune_and_finetune` or :func:`quantize_and_calibrate`, each in a
  meter window of the row.

Where the runners differ it is a parameter, not a copy: the fine-tune's plan (a trial's own at
:data:`FINETUNE_LR_FACTOR` of its rate; the ablation's with a seed of its own), the images
static INT8 is calibrated on (``[compression] calibration_samples`` in a search,
:data:`CALIBRATION_SAMPLES` otherwise; always in chunks of :data:`CALIBRATION_CHUNK`), whether
params and FLOPs are counted while quantizing (a trial's record), and ``phase``: how each
stage is metered (a trial's or a final run's phase log, or the ablation's windows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nas.compression.distill import distillation_loss
from nas.compression.precision import autocast_schedule
from nas.compression.prune import apply_structure, prune_model
from nas.compression.quantize import deploy_device, is_int8, quantize
from nas.record import Compression
from nas.train import TrainingPlan, train_model
from nas.trial import Deployed

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import TensorDataset

    from nas.energy import Measurement, Meter, WindowAccumulator
    from nas.record import TrialRecord
    from search_spaces import ArchSpec

CALIBRATION_SAMPLES = 256  # training images static INT8 is calibrated on
CALIBRATION_CHUNK = 64  # images per calibration batch
FINETUNE_LR_FACTOR = 0.3  # fine-tuning after pruning restarts the one-cycle schedule lower

Phase = Callable[[str], AbstractContextManager[Any]]  # ``with phase("quantize"): ...``


class MeterWindows:
    """A :data:`Phase` for a runner without a phase log (``econas ablate``'s rows): each stage
    in a meter window of its name, its measurement kept in :attr:`measurements`, in order."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.measurements: list[Measurement] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        with self.meter.window(name) as w:
            yield
        assert w.measurement is not None  # set when the block exits
        self.measurements.append(w.measurement)


@dataclass(frozen=True)
class CompressionChoice:
    """How one model is compressed: what a trial sampled, or read back from its record."""

    prune_ratio: float = 0.0
    prune_criterion: str = ""
    quantization: str = "fp32"
    precision: str = "fp32"
    precision_switch_epoch: int = 0  # 0: not a dynamic precision
    distill: bool = False
    kd_temperature: float = 0.0
    kd_alpha: float = 0.0

    @property
    def compresses(self) -> bool:
        """Whether deploying changes the trained model (pruned or quantized)."""
        return self.prune_ratio > 0 or self.quantization != "fp32"

    def attrs(self) -> dict[str, Any]:
        return {
            Compression.prune_ratio: self.prune_ratio,
            Compression.prune_criterion: self.prune_criterion,
            Compression.quantization: self.quantization,
            Compression.precision: self.precision,
            Compression.precision_switch_epoch: self.precision_switch_epoch,
            Compression.distill: self.distill,
            Compression.kd_temperature: self.kd_temperature,
            Compression.kd_alpha: self.kd_alpha,
        }

    @classmethod
    def of_record(cls, rec: TrialRecord | Mapping[str, Any]) -> CompressionChoice:
        """What a stored trial chose (a trial without ``[compression]``: nothing)."""
        return cls(
            prune_ratio=float(rec.get(Compression.prune_ratio) or 0.0),
            prune_criterion=str(rec.get(Compression.prune_criterion) or ""),
            quantization=str(rec.get(Compression.quantization, "fp32")),
            precision=str(rec.get(Compression.precision, "fp32")),
            precision_switch_epoch=int(rec.get(Compression.precision_switch_epoch) or 0),
            distill=bool(rec.get(Compression.distill)),
            kd_temperature=float(rec.get(Compression.kd_temperature) or 0.0),
            kd_alpha=float(rec.get(Compression.kd_alpha) or 0.0),
        )


# -- training ----------------------------------------------------------------------------------
def place_teacher(teacher: nn.Module, device: torch.device) -> tuple[nn.Module, torch.device]:
    """``teacher`` where it runs and that device: INT8 stays on the CPU, the rest on ``device``."""
    if is_int8(teacher):
        return teacher, torch.device("cpu")
    return teacher.to(device), device


def training_plan(
    plan: TrainingPlan,
    choice: CompressionChoice,
    *,
    teacher: nn.Module | None = None,
    passes: WindowAccumulator | None = None,
) -> TrainingPlan:
    """``plan`` trained as ``choice`` says: its precision's autocast schedule and, when it
    distils and there is a ``teacher``, the KD loss (teacher passes in ``passes``' windows)."""
    schedule = autocast_schedule(choice.precision, switch_epoch=choice.precision_switch_epoch or 1)
    if schedule is not None:
        plan = plan.replace(autocast_dtype=schedule)
    if not choice.distill or teacher is None:
        return plan
    teacher, where = place_teacher(teacher, plan.device)
    loss = distillation_loss(
        teacher,
        temperature=choice.kd_temperature,
        alpha=choice.kd_alpha,
        passes=passes,
        teacher_device=where,
    )
    return plan.replace(loss_fn=loss)


def finetune_plan(plan: TrainingPlan, epochs: int) -> TrainingPlan:
    """The fine-tune after pruning: ``plan`` for ``epochs`` at :data:`FINETUNE_LR_FACTOR` of
    its rate, without the training's callbacks."""
    return plan.replace(
        epochs=epochs, lr=plan.lr * FINETUNE_LR_FACTOR, on_start=(), epoch_callbacks=()
    )


def pruned_network(spec: ArchSpec, structure: dict[str, Any] | None) -> nn.Module:
    """``spec``'s network with a pruned ``structure`` applied and every layer initialised
    afresh: the pruned architecture, to train from scratch (``econas train``)."""
    from search_spaces import build_model

    model = build_model(spec)
    if structure:
        apply_structure(model, structure)
        for module in model.modules():  # placeholders of the pruned shapes: initialise
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    return model


# -- deploying -----------------------------------------------------------------------------
def calibration_batches(x: Tensor, samples: int = CALIBRATION_SAMPLES) -> list[Tensor]:
    """The first ``samples`` images of ``x`` in chunks of :data:`CALIBRATION_CHUNK`."""
    x = x[:samples]
    return [x[i : i + CALIBRATION_CHUNK] for i in range(0, len(x), CALIBRATION_CHUNK)]


def prune_and_finetune(
    model: nn.Module,
    *,
    ratio: float,
    criterion: str,
    data: TensorDataset,
    device: torch.device,
    seed: int,
    finetune: TrainingPlan | None,
    phase: Phase,
    on_pruned: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Prune ``model`` in place (structured, ``ratio`` of its widths by ``criterion``), then
    fine-tune it by ``finetune`` (None or 0 epochs: not), both in phase ``finetune``; the
    pruned structure (also to ``on_pruned`` as soon as it is known)."""
    model.to(device)
    with phase("finetune"):
        structure = prune_model(
            model,
            ratio=ratio,
            criterion=criterion,
            example_input=data.tensors[0][:2].to(device),
            seed=seed,
        )
        if on_pruned is not None:
            on_pruned(structure)
        if finetune is not None and finetune.epochs > 0:
            train_model(model, data, finetune)
    return structure


def quantize_and_calibrate(
    model: nn.Module,
    quantization: str,
    *,
    data: TensorDataset,
    device: torch.device,
    phase: Phase,
    calibration_samples: int = CALIBRATION_SAMPLES,
    cost_input_shape: tuple[int, ...] | None = None,
) -> Deployed:
    """A deployed copy of ``model`` at ``quantization`` (static INT8 calibrated on the first
    ``calibration_samples`` images of ``data``), on :func:`deploy_device`, in phase
    ``quantize``; with ``cost_input_shape``, params and FLOPs are counted on ``model`` first
    (fvcore cannot count INT8 kernels; quantization keeps the multiply-adds)."""
    from nas.cost import analyze_cost

    with phase("quantize"):
        cost = analyze_cost(model, cost_input_shape) if cost_input_shape is not None else None
        deployed = quantize(
            model,
            quantization=quantization,
            device=device,
            calibration=calibration_batches(data.tensors[0], calibration_samples),
        )
    return Deployed(
        model=deployed,
        device=deploy_device(quantization, device),
        float_model=model,
        params=None if cost is None else cost.params,
        flops=None if cost is None else cost.flops,
    )


def deploy(
    model: nn.Module,
    choice: CompressionChoice,
    *,
    data: TensorDataset,
    device: torch.device,
    seed: int,
    phase: Phase,
    finetune: TrainingPlan | None = None,
    pruned_before_training: bool = False,
    calibration_samples: int = CALIBRATION_SAMPLES,
    cost_input_shape: tuple[int, ...] | None = None,
    on_pruned: Callable[[dict[str, Any]], None] | None = None,
) -> Deployed:
    """The trained ``model`` deployed as ``choice`` says: pruned and fine-tuned
    (:func:`prune_and_finetune`; not when ``pruned_before_training``: ``econas train`` trained
    the pruned structure from scratch), then quantized (:func:`quantize_and_calibrate`)."""
    if choice.prune_ratio > 0 and not pruned_before_training:
        prune_and_finetune(
            model,
            ratio=choice.prune_ratio,
            criterion=choice.prune_criterion,
            data=data,
            device=device,
            seed=seed,
            finetune=finetune,
            phase=phase,
            on_pruned=on_pruned,
        )
    return quantize_and_calibrate(
        model,
        choice.quantization,
        data=data,
        device=device,
        phase=phase,
        calibration_samples=calibration_samples,
        cost_input_shape=cost_input_shape,
    )
