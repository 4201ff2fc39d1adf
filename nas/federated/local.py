"""A client's local training and the server's learning-rate schedule over rounds.

FedAvg clients run plain local steps at the round's learning rate with a fresh optimizer
(McMahan et al. 2017); the rate itself follows, round by round, the same one-cycle shape the
centralised loop (:func:`nas.train.train_model`) follows step by step, so a federated run and
a centralised one of the same compute anneal alike. Mixed precision (``autocast_dtype``), the
divergence check and the out-of-memory mapping are those of the centralised loop.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.errors import TrialFailure
from nas.train import LossFn, TrainResult, iterate_batches, make_optimizer

_CHECK_EVERY = 25


def round_learning_rates(lr: float, rounds: int) -> list[float]:
    """One-cycle learning rates (15% warm-up, cosine anneal) sampled once per round."""
    if rounds == 1:
        return [lr]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=rounds, pct_start=0.15)
    out = []
    for _ in range(rounds):
        out.append(float(opt.param_groups[0]["lr"]))
        opt.step()
        sched.step()
    return out


def local_train(
    model: nn.Module,
    data: TensorDataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    device: torch.device,
    seed: int = 0,
    weight_decay: float = 0.0,
    optimizer: str = "adamw",
    loss_fn: LossFn,
    dtype: torch.dtype | None = None,
) -> TrainResult:
    """Train ``model`` in place at a constant ``lr`` for ``epochs`` over ``data``."""
    model.to(device).train()
    opt = make_optimizer(model, name=optimizer, lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    use_scaler = dtype == torch.float16 and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    result = TrainResult(epochs=0, steps=0, samples=0, final_loss=float("nan"))
    try:
        for epoch in range(epochs):
            total = torch.zeros((), device=device)
            count = 0
            for x, y in iterate_batches(data, batch_size, device=device, generator=gen):
                with torch.autocast(
                    device.type, dtype=dtype or torch.float32, enabled=dtype is not None
                ):
                    loss = loss_fn(model, x, y)
                opt.zero_grad(set_to_none=True)
                if use_scaler:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                total += loss.detach().float() * len(x)
                count += len(x)
                result.steps += 1
                if result.steps % _CHECK_EVERY == 0:
                    _check_finite(total, result.steps)
            _check_finite(total, result.steps)
            mean = float(total) / max(count, 1)
            result.epochs, result.samples = epoch + 1, result.samples + count
            result.final_loss = mean
            result.epoch_losses.append(mean)
    except RuntimeError as exc:
        if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
            raise TrialFailure("out_of_memory", f"out of memory in local training: {exc}") from exc
        raise
    return result


def _check_finite(total: torch.Tensor, step: int) -> None:
    if not math.isfinite(float(total)):
        raise TrialFailure("nan_loss", f"local training diverged: loss not finite at step {step}")
