"""Tiny synthetic data and models for the federated unit tests (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.train import TrainingPlan, cross_entropy_loss


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 4),
    )


@pytest.fixture
def blobs() -> TensorDataset:
    """240 8x8 images of 4 classes whose mean brightness pattern depends on the label."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(240) % 4
    x = torch.randn(240, 1, 8, 8, generator=g) * 0.5
    x[:, 0, :4, :4] += (y == 0).float()[:, None, None]
    x[:, 0, 4:, 4:] += (y == 1).float()[:, None, None]
    x[:, 0, :4, 4:] += (y == 2).float()[:, None, None]
    x[:, 0, 4:, :4] += (y == 3).float()[:, None, None]
    return TensorDataset(x, y)


def plan(epochs: int = 1, **over: object) -> TrainingPlan:
    """The recipe the federated unit tests train with (fields in ``over`` replaced)."""
    base = TrainingPlan(
        epochs=epochs,
        batch_size=16,
        lr=0.01,
        weight_decay=0.0,
        optimizer="sgd",
        loss_fn=cross_entropy_loss(),
        device=torch.device("cpu"),
        seed=0,
    )
    return base.replace(**over)
