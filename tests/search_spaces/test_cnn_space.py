from __future__ import annotations

from typing import Any

import optuna
import pytest
import torch
from torch import nn

from nas.errors import ConfigError, InvalidArchError
from search_spaces import ArchSpec, build_model, create_search_space
from search_spaces.cnn import InvertedResidual, SqueezeExcite


def _stage(**kw: Any) -> dict[str, Any]:
    stage = {"block": "conv", "depth": 1, "width": 16, "kernel": 3, "stride": 1, "se": False}
    stage.update(kw)
    return stage


def _spec(stages: list[dict[str, Any]], *, image_size: int = 28, **cfg: Any) -> ArchSpec:
    config = {"stem_width": 8, "stem_stride": 1, "activation": "relu", "stages": stages, **cfg}
    return ArchSpec(
        family="cnn", in_channels=1, num_classes=10, image_size=image_size, config=config
    )


def test_fixed_trial_sample_and_encode() -> None:
    params = {
        "cnn.n_stages": 2,
        "cnn.stem_width": 16,
        "cnn.stem_stride": 1,
        "cnn.activation": "hardswish",
        "cnn.s0.block": "ir",
        "cnn.s0.depth": 2,
        "cnn.s0.width": 32,
        "cnn.s0.kernel": 3,
        "cnn.s0.stride": 2,
        "cnn.s0.expand": 4,
        "cnn.s0.se": True,
        "cnn.s1.block": "conv",
        "cnn.s1.depth": 1,
        "cnn.s1.width": 64,
        "cnn.s1.kernel": 5,
        "cnn.s1.stride": 1,
        "cnn.s1.se": False,
    }
    spec = create_search_space("cnn").sample(
        optuna.trial.FixedTrial(params), in_channels=1, num_classes=10, image_size=28, prefix="cnn."
    )
    assert spec.encode() == "cnn|stem16s1|ir_d2_k3_s2_e4_c32_se|conv_d1_k5_s1_c64|hardswish"
    model = build_model(spec)
    assert sum(isinstance(m, InvertedResidual) for m in model.modules()) == 2
    assert sum(isinstance(m, SqueezeExcite) for m in model.modules()) == 2
    assert sum(isinstance(m, nn.Hardswish) for m in model.modules()) > 0
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())


def test_parameter_count_matches_hand_computation() -> None:
    # stem conv 1->8 k3 (72) + BN (16); conv 8->16 k3 (1152) + BN (32); head 16*10+10 (170)
    model = build_model(_spec([_stage()]))
    assert sum(p.numel() for p in model.parameters()) == 72 + 16 + 1152 + 32 + 170


def test_inverted_residual_structure_follows_expand_and_stride() -> None:
    block = InvertedResidual(8, 8, 3, 1, 1, act_layer=nn.SiLU)
    assert isinstance(block.expand, nn.Identity) and block.use_residual
    block = InvertedResidual(8, 16, 5, 2, 4, act_layer=nn.SiLU, se_layer=SqueezeExcite)
    assert (
        not block.use_residual
        and block.dw.conv.groups == 32
        and block.dw.conv.kernel_size == (5, 5)
    )
    assert block(torch.randn(2, 8, 9, 9)).shape == (2, 16, 5, 5)


def test_feature_map_entering_the_pool_has_the_expected_size() -> None:
    spec = _spec([_stage(stride=2), _stage(stride=2, block="ir", expand=2)], stem_stride=2)
    model = build_model(spec).eval()
    seen: list[tuple[int, ...]] = []
    model.pool.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    model(torch.randn(1, 1, 28, 28))
    assert seen == [(1, 16, 4, 4)]  # 28 -> 14 -> 7 -> 4


def test_sampled_options_stay_within_bounds() -> None:
    space = create_search_space("cnn", max_stages=2, width_choices=[8], block_choices=["ir"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        spec = space.sample(study.ask(), in_channels=1, num_classes=10, image_size=28)
        stages = spec.config["stages"]
        assert 1 <= len(stages) <= 2
        assert all(s["width"] == 8 and s["block"] == "ir" and "expand" in s for s in stages)


def test_sample_does_not_fix_too_many_stride_2_stages() -> None:
    params = {"n_stages": 4, "stem_width": 8, "stem_stride": 2, "activation": "relu"}
    for i in range(4):
        params.update({f"s{i}.block": "conv", f"s{i}.depth": 1, f"s{i}.width": 8})
        params.update({f"s{i}.kernel": 3, f"s{i}.stride": 2, f"s{i}.se": False})
    space = create_search_space("cnn")
    spec = space.sample(
        optuna.trial.FixedTrial(params), in_channels=1, num_classes=10, image_size=28
    )
    assert [s["stride"] for s in spec.config["stages"]] == [2, 2, 2, 2]
    with pytest.raises(InvalidArchError, match=r"5 stride-2 downsamplings shrink 28x28 to 1x1"):
        space.validate(spec)
    assert spec.encode().startswith("cnn|stem8s2|conv_d1_k3_s2_c8|")  # still encodable
    space.validate(_spec([_stage(stride=2)] * 4))  # stem stride 1: 28 -> 2, valid


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (_spec([]), "at least one stage"),
        (_spec([_stage(kernel=4)]), "kernel 4 must be odd"),
        (_spec([_stage(stride=3)]), "stride 3"),
        (_spec([_stage(block="dense")]), "block 'dense'"),
        (_spec([_stage(expand=2)]), "unknown keys \\['expand'\\]"),
        (_spec([_stage(block="ir")]), "missing 'expand'"),
        (_spec([_stage(width=0)]), ">= 1"),
        (_spec([_stage(depth=1.5)]), "depth must be int"),
        (_spec([_stage(se="yes")]), "se must be bool"),
        (_spec([_stage()], activation="tanh"), "activation 'tanh'"),
        (_spec([_stage()], stem_stride=4), "stem_stride"),
        (_spec([_stage()], extra=1), "unknown config keys"),
    ],
)
def test_validate_rejects_impossible_specs(spec: ArchSpec, match: str) -> None:
    with pytest.raises(InvalidArchError, match=match):
        create_search_space("cnn").validate(spec)
    with pytest.raises(InvalidArchError):
        build_model(spec)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"block_choices": ["dense"]}, "block_choices: 'dense' is not one of"),
        ({"stride_choices": [3]}, "stride_choices: 3"),
        ({"width_choices": [8.5]}, "width_choices: 8.5 must be a positive int"),
        ({"width_choices": "8"}, "must be a list"),
        ({"se_choices": [1]}, "se_choices"),
        ({"min_stages": 3, "max_stages": 2}, "min_stages 3 > max_stages 2"),
        ({"max_stages": 0}, "max_stages"),
    ],
)
def test_bad_constructor_options_raise_config_error(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_search_space("cnn", **options)
