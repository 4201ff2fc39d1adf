"""A client's local training and the server's learning-rate schedule over rounds.

FedAvg clients run plain local steps at the round's learning rate with a fresh optimizer
(McMahan et al. 2017); the rate itself follows, round by round, the same one-cycle shape the
centralised loop (:func:`nas.train.train_model`) follows step by step, so a federated run and
a centralised one of the same compute anneal alike. The local steps are the centralised loop's
own (``train_model`` with ``lr_schedule="constant"``): mixed precision, the divergence check and the
out-of-memory mapping included.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.train import TrainingPlan, TrainResult, train_model


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


def local_train(model: nn.Module, data: TensorDataset, plan: TrainingPlan) -> TrainResult:
    """Train ``model`` in place by ``plan`` at its constant ``lr`` over ``data``: the
    centralised loop with a fresh optimizer, no schedule and no epoch callbacks."""
    local = plan.replace(lr_schedule="constant", on_start=(), epoch_callbacks=())
    return train_model(model, data, local)
