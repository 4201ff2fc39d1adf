"""Reference designs: built for the data's shape, with the stated sizes, inside the spaces."""

from __future__ import annotations

import optuna
import pytest
import torch

from search_spaces import build_model, create_search_space
from search_spaces.baselines import BASELINES, baseline_specs
from search_spaces.cnn import CNNConfig

# parameters at (in_channels, image_size) with 10 classes (the module docstring's figures)
PARAMS = {
    (1, 28): {"textbook": 9122, "resnet8": 77754, "mobilenetv2_tiny": 71178, "vit_tiny": 139018},
    (3, 32): {"textbook": 11666, "resnet8": 78042, "mobilenetv2_tiny": 71466, "vit_tiny": 142026},
}
CODES_28 = {
    "textbook": "cnn|conv_d1_k3_s1_c8_mp|conv_d1_k3_s1_c16_mp|flat|relu",
    "resnet8": "cnn|stem16s1|res_d1_k3_s1_c16|res_d1_k3_s2_c32|res_d1_k3_s2_c64|relu",
    "mobilenetv2_tiny": "cnn|stem16s1|ir_d1_k3_s2_e4_c24|ir_d2_k3_s2_e4_c32|ir_d2_k3_s2_e4_c64|relu",
    "vit_tiny": "vit|p4_d64_L4_h4_m2|cls",
}


@pytest.mark.parametrize(("in_ch", "size"), list(PARAMS))
def test_baselines_build_with_the_stated_parameter_counts(in_ch: int, size: int) -> None:
    specs = baseline_specs(in_ch, 10, size)
    assert tuple(specs) == BASELINES
    for name, spec in specs.items():
        model = build_model(spec).eval()
        assert sum(p.numel() for p in model.parameters()) == PARAMS[(in_ch, size)][name], name
        with torch.no_grad():
            assert model(torch.randn(2, in_ch, size, size)).shape == (2, 10)


def test_baselines_at_28_px_are_the_named_designs() -> None:
    assert {n: s.encode() for n, s in baseline_specs(1, 10, 28).items()} == CODES_28


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64, 224])
def test_every_baseline_is_an_ordinary_sample_of_the_default_spaces(size: int) -> None:
    for name, spec in baseline_specs(3, 10, size).items():
        space = create_search_space(spec.family)
        params = space.params_for(spec, prefix=f"{spec.family}.")
        sampled = space.sample(
            optuna.trial.FixedTrial(params),
            in_channels=3,
            num_classes=10,
            image_size=size,
            prefix=f"{spec.family}.",
        )
        assert sampled == spec, name
        if spec.family == "cnn":
            assert CNNConfig.from_spec(spec).final_resolution() >= min(4, size), name
