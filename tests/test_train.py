from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.errors import TrialFailure
from nas.train import TrainingPlan, evaluate, train_model


def _toy(n: int = 256) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 4, 4, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    return TensorDataset(x, y)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def test_training_learns_a_separable_task() -> None:
    data = _toy()
    model = _model()
    before = evaluate(model, data, device=torch.device("cpu"))
    plan = TrainingPlan(epochs=5, batch_size=32, lr=1e-2, device=torch.device("cpu"))
    result = train_model(model, data, plan)
    after = evaluate(model, data, device=torch.device("cpu"))
    assert result.epochs == 5 and result.samples == 5 * 256
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    assert after > max(before, 0.85)


def test_nan_loss_fails_the_trial_with_reason() -> None:
    data = _toy()
    x, y = data.tensors
    x = x.clone()
    x[3] = float("nan")
    with pytest.raises(TrialFailure) as info:
        train_model(
            _model(),
            TensorDataset(x, y),
            TrainingPlan(epochs=1, batch_size=32, lr=1e-2, device=torch.device("cpu")),
        )
    assert info.value.reason == "nan_loss"


def test_on_epoch_end_can_stop_training() -> None:
    seen: list[int] = []

    def stop(epoch: int, loss: float) -> None:
        seen.append(epoch)
        if epoch == 1:
            raise StopIteration

    with pytest.raises(StopIteration):
        plan = TrainingPlan(
            epochs=5, batch_size=64, lr=1e-2, device=torch.device("cpu"), epoch_callbacks=(stop,)
        )
        train_model(_model(), _toy(), plan)
    assert seen == [0, 1]


def test_autocast_bf16_runs_on_cpu() -> None:
    model = _model()
    plan = TrainingPlan(
        epochs=2,
        batch_size=32,
        lr=1e-2,
        device=torch.device("cpu"),
        autocast_dtype=lambda epoch: torch.bfloat16 if epoch >= 1 else None,
    )
    result = train_model(model, _toy(), plan)
    assert result.epochs == 2
