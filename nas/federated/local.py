"""A client's local training and the server's learning-rate schedule over rounds.

FedAvg clients run plain local steps at the round's learning rate with a fresh optimizer
(McMahan et al. 2017); the rate itself follows, round by round, the same one-cycle shape the
centralised loop (:func:`nas.train.train_model`) follows step by step, so a federated run and
a centralised one of the same compute anneal alike. The local steps are the centralised loop's
own (``train_model(lr_schedule="constant")``): mixed precision, the divergence check and the
out-of-memory mapping included.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.train import LossFn, TrainResult, train_model


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
    """Train ``model`` in place at a constant ``lr`` for ``epochs`` over ``data``: the
    centralised loop with a fresh optimizer and no schedule."""
    return train_model(
        model,
        data,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        device=device,
        seed=seed,
        weight_decay=weight_decay,
        optimizer=optimizer,
        loss_fn=loss_fn,
        autocast_dtype=(lambda _epoch: dtype) if dtype is not None else None,
        lr_schedule="constant",
    )
