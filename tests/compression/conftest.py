from __future__ import annotations

import pytest
import torch

from search_spaces import ArchSpec

CNN = ArchSpec(
    family="cnn",
    in_channels=1,
    num_classes=10,
    image_size=28,
    config={
        "stem_width": 16,
        "stem_stride": 1,
        "activation": "relu",
        "stages": [
            {
                "block": "ir",
                "depth": 2,
                "width": 24,
                "kernel": 3,
                "stride": 2,
                "expand": 2,
                "se": True,
            },
            {"block": "conv", "depth": 1, "width": 32, "kernel": 3, "stride": 2, "se": True},
        ],
    },
)
VIT = ArchSpec(
    family="vit",
    in_channels=1,
    num_classes=10,
    image_size=28,
    config={"patch": 7, "dim": 32, "depth": 2, "heads": 4, "mlp_ratio": 2, "pool": "cls"},
)


@pytest.fixture(params=["cnn", "vit"])
def spec(request: pytest.FixtureRequest) -> ArchSpec:
    return CNN if request.param == "cnn" else VIT


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
