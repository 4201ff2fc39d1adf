"""Proxy training and evaluation loops.

Kept deliberately lean (tensor slicing instead of a DataLoader: the proxies' data sets live in
memory) so that bookkeeping costs little next to the work it measures; see
``benchmarks/overhead.py``. A diverging loss (NaN/Inf) or running out of memory raises
:class:`~nas.errors.TrialFailure` with a reason, which fails that trial only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from nas.errors import TrialFailure

if TYPE_CHECKING:  # pragma: no cover
    from nas.config import Config

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
LR_SCHEDULES = ("one_cycle", "constant")
_CHECK_EVERY = 25  # steps between divergence checks (a host sync on GPU)


@dataclass
class TrainResult:
    epochs: int
    steps: int
    samples: int
    final_loss: float
    epoch_losses: list[float] = field(default_factory=list)


def onednn_backward_hazard(model: nn.Module) -> bool:
    """Whether ``model`` holds a strided 1x1 convolution with fewer than 8 input channels per
    group: torch 2.14.1's oneDNN ``jit_1x1:avx2`` backward-weights kernel corrupts the heap on
    it (a channels-last input; seen on an AVX2-only EPYC, ``tests/test_train_recipe.py``
    reproduces it in a child process). Such a model's backward passes on CPU run with oneDNN
    off (:func:`onednn_guard`: torch's native kernels, same result, slower)."""
    return any(
        isinstance(m, nn.Conv2d)
        and m.kernel_size == (1, 1)
        and max(m.stride) > 1
        and m.in_channels // m.groups < 8
        for m in model.modules()
    )


@contextlib.contextmanager
def onednn_guard(model: nn.Module, device: torch.device) -> Iterator[None]:
    """oneDNN off for the block when ``model`` on CPU has an :func:`onednn_backward_hazard`;
    every backward pass over a model (training, zero-cost proxies, calibration) runs in it."""
    if device.type == "cpu" and onednn_backward_hazard(model):
        with torch.backends.mkldnn.flags(enabled=False):
            yield
    else:
        yield


def iterate_batches(
    data: TensorDataset,
    batch_size: int,
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) batches on ``device``; shuffled when a generator is given."""
    x, y = data.tensors[0], data.tensors[1]
    n = len(x)
    order = torch.randperm(n, generator=generator) if generator is not None else None
    for start in range(0, n, batch_size):
        idx = (
            order[start : start + batch_size]
            if order is not None
            else slice(start, start + batch_size)
        )
        yield x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)


def cross_entropy_loss(label_smoothing: float = 0.0) -> LossFn:
    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)

    return loss


@dataclass(frozen=True, kw_only=True)
class TrainingPlan:
    """The training recipe as one value: everything :func:`train_model`, :class:`Trainer` and
    federated local training (:func:`nas.federated.local_train`) need, passed whole.

    Built from the config by :meth:`from_config` (the one constructor a run uses; ``econas
    train`` overrides epochs, lr, schedule and batch size). Steps and runners change a copy
    (``plan.replace(...)``): precision (``autocast_dtype(epoch)``: a dtype or None for FP32),
    distillation (``loss_fn``), early stopping (``epoch_callbacks``, which may raise
    ``optuna.TrialPruned``). ``lr_schedule``: one-cycle over ``epochs``, or ``"constant"``
    (plain steps at ``lr``, as a federated client does within a round). ``on_start`` runs when
    a trial's training starts (:mod:`nas.pipeline` calls :meth:`started`).
    """

    epochs: int
    batch_size: int
    lr: float
    device: torch.device
    seed: int = 0
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    loss_fn: LossFn = field(default_factory=cross_entropy_loss)
    autocast_dtype: Callable[[int], torch.dtype | None] | None = None
    lr_schedule: str = "one_cycle"
    on_start: tuple[Callable[[], None], ...] = ()
    epoch_callbacks: tuple[Callable[[int, float], None], ...] = ()

    @classmethod
    def from_config(
        cls, config: Config, *, device: torch.device, seed: int, **overrides: Any
    ) -> TrainingPlan:
        """The config's recipe (``[train]`` and ``data.batch_size``) on ``device``; ``overrides``
        replace fields (e.g. ``econas train``'s epochs, lr, lr_schedule, batch_size)."""
        t = config.train
        plan = cls(
            epochs=t.epochs,
            batch_size=config.data.batch_size,
            lr=t.lr,
            weight_decay=t.weight_decay,
            optimizer=t.optimizer,
            loss_fn=cross_entropy_loss(t.label_smoothing),
            device=device,
            seed=seed,
        )
        return plan.replace(**overrides) if overrides else plan

    def replace(self, **changes: Any) -> TrainingPlan:
        return dataclasses.replace(self, **changes)

    def on_epoch_end(self, epoch: int, loss: float) -> None:
        for cb in self.epoch_callbacks:
            cb(epoch, loss)

    def started(self) -> None:
        for cb in self.on_start:
            cb()


def make_optimizer(
    model: nn.Module, *, name: str, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True
        )
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Trainer:
    """One training run of ``plan``, an epoch at a time, whose whole state can be saved and
    restored.

    Optimizer, learning-rate schedule (``plan.lr_schedule``), the shuffling generator, the grad scaler and torch's RNG are part of
    :meth:`state_dict`, so a run restored from it continues exactly where it was saved at an
    epoch boundary (``nas.final`` checkpoints; everything in it loads with
    ``torch.load(weights_only=True)``).
    """

    def __init__(self, model: nn.Module, data: TensorDataset, plan: TrainingPlan) -> None:
        self.model, self.data, self.plan, self.epochs = model, data, plan, plan.epochs
        self.batch_size, self.device = plan.batch_size, plan.device
        self.loss_fn = plan.loss_fn
        self.autocast_dtype = plan.autocast_dtype
        model.to(plan.device).train()
        self.opt = make_optimizer(
            model, name=plan.optimizer, lr=plan.lr, weight_decay=plan.weight_decay
        )
        steps_per_epoch = max(1, math.ceil(len(data) / plan.batch_size))
        self.sched: torch.optim.lr_scheduler.LRScheduler | None = None
        if plan.lr_schedule == "one_cycle":
            self.sched = torch.optim.lr_scheduler.OneCycleLR(
                self.opt, max_lr=plan.lr, total_steps=plan.epochs * steps_per_epoch, pct_start=0.15
            )
        elif plan.lr_schedule != "constant":
            raise ValueError(f"lr_schedule {plan.lr_schedule!r}: use one of {list(LR_SCHEDULES)}")
        self.gen = torch.Generator().manual_seed(plan.seed)
        self.scaler = torch.amp.GradScaler(plan.device.type, enabled=False)
        self.result = TrainResult(epochs=0, steps=0, samples=0, final_loss=float("nan"))

    @property
    def epoch(self) -> int:
        """Epochs completed so far (the next one to run)."""
        return self.result.epochs

    def run_epoch(self, on_batch: Callable[[int], None] | None = None) -> float:
        """Train epoch :attr:`epoch`; return its mean loss. ``on_batch(samples_so_far)`` runs
        after every step. Diverging loss and out-of-memory raise :class:`TrialFailure`."""
        try:
            return self._epoch(on_batch)
        except RuntimeError as exc:
            if _is_oom(exc):
                raise TrialFailure(
                    "out_of_memory", f"out of memory during training: {exc}"
                ) from exc
            raise

    def _epoch(self, on_batch: Callable[[int], None] | None) -> float:
        with onednn_guard(self.model, self.device):
            return self._epoch_steps(on_batch)

    def _epoch_steps(self, on_batch: Callable[[int], None] | None) -> float:
        model, device, result = self.model, self.device, self.result
        model.train()
        dtype = self.autocast_dtype(result.epochs) if self.autocast_dtype else None
        use_scaler = dtype == torch.float16 and device.type == "cuda"
        if use_scaler and not self.scaler.is_enabled():
            self.scaler = torch.amp.GradScaler(device.type, enabled=True)
        total = torch.zeros((), device=device)
        count = 0
        for x, y in iterate_batches(self.data, self.batch_size, device=device, generator=self.gen):
            with torch.autocast(
                device.type, dtype=dtype or torch.float32, enabled=dtype is not None
            ):
                loss = self.loss_fn(model, x, y)
            self.opt.zero_grad(set_to_none=True)
            if use_scaler:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                self.opt.step()
            if self.sched is not None:
                self.sched.step()
            total += loss.detach().float() * len(x)
            count += len(x)
            result.steps += 1
            if result.steps % _CHECK_EVERY == 0:
                _check_finite(total, result.steps)
            if on_batch is not None:
                on_batch(count)
        _check_finite(total, result.steps)
        mean_loss = float(total) / max(count, 1)
        result.epochs += 1
        result.samples += count
        result.final_loss = mean_loss
        result.epoch_losses.append(mean_loss)
        return mean_loss

    def state_dict(self) -> dict[str, Any]:
        """Everything the run needs to continue: tensors, numbers and strings only."""
        r = self.result
        return {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "result": {
                "epochs": r.epochs,
                "steps": r.steps,
                "samples": r.samples,
                "final_loss": r.final_loss,
                "epoch_losses": list(r.epoch_losses),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and state.get("scheduler") is not None:
            self.sched.load_state_dict(state["scheduler"])
        if state.get("scaler") is not None:
            self.scaler = torch.amp.GradScaler(self.device.type, enabled=True)
            self.scaler.load_state_dict(state["scaler"])
        self.gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        r = state["result"]
        self.result = TrainResult(
            epochs=int(r["epochs"]),
            steps=int(r["steps"]),
            samples=int(r["samples"]),
            final_loss=float(r["final_loss"]),
            epoch_losses=[float(v) for v in r["epoch_losses"]],
        )


def train_model(model: nn.Module, data: TensorDataset, plan: TrainingPlan) -> TrainResult:
    """Train ``model`` in place by ``plan`` (its schedule, precision and loss); after each
    epoch ``plan.on_epoch_end(epoch, mean_loss)``, whose callbacks may raise (e.g.
    ``optuna.TrialPruned``) to stop early."""
    trainer = Trainer(model, data, plan)
    for epoch in range(plan.epochs):
        loss = trainer.run_epoch()
        plan.on_epoch_end(epoch, loss)
    return trainer.result


def _check_finite(total: torch.Tensor, step: int) -> None:
    if not torch.isfinite(total):
        raise TrialFailure("nan_loss", f"training diverged: loss is not finite at step {step}")


@torch.inference_mode()
def evaluate(
    model: nn.Module, data: TensorDataset, *, device: torch.device, batch_size: int = 512
) -> float:
    """Top-1 accuracy of ``model`` on ``data`` (fraction in [0, 1])."""
    model.to(device).eval()
    correct = 0
    for x, y in iterate_batches(data, batch_size, device=device):
        correct += int((model(x).argmax(dim=1) == y).sum())
    return correct / max(len(data), 1)
