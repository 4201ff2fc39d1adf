from __future__ import annotations

from typing import Any

import optuna
import pytest
import torch
from torch import nn

from nas.errors import ConfigError, InvalidArchError
from search_spaces import ArchSpec, build_model, create_search_space
from search_spaces.cnn import (
    MIN_SAMPLED_FINAL,
    BasicBlock,
    CNNConfig,
    CNNSpace,
    InvertedResidual,
    SqueezeExcite,
    downsampling_range,
)


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
        "cnn.n_down": 3,
        "cnn.n_stages": 2,
        "cnn.stem_width": 16,
        "cnn.activation": "hardswish",
        "cnn.head": "flatten",
        "cnn.s0.block": "ir",
        "cnn.s0.depth": 2,
        "cnn.s0.width": 64,  # widths are assigned in ascending order
        "cnn.s0.kernel": 3,
        "cnn.s0.expand": 4,
        "cnn.s0.se": True,
        "cnn.s0.down": "stride",
        "cnn.s1.block": "res",
        "cnn.s1.depth": 1,
        "cnn.s1.width": 32,
        "cnn.s1.kernel": 5,
        "cnn.s1.se": False,
        "cnn.s1.down": "pool",
    }
    spec = create_search_space("cnn").sample(
        optuna.trial.FixedTrial(params), in_channels=1, num_classes=10, image_size=28, prefix="cnn."
    )
    # three halvings, the last three places: stem (stride 2), stage 0 (stride), stage 1 (pool)
    assert spec.encode() == "cnn|stem16s2|ir_d2_k3_s2_e4_c32_se|res_d1_k5_s1_c64_mp|flat|hardswish"
    model = build_model(spec)
    assert sum(isinstance(m, InvertedResidual) for m in model.modules()) == 2
    assert sum(isinstance(m, SqueezeExcite) for m in model.modules()) == 2
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 1
    assert sum(isinstance(m, nn.Hardswish) for m in model.modules()) > 0
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert model.head.in_features == 64 * 4 * 4  # flatten head over the 4x4 map
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_stored_specs_of_the_first_cnn_space_build_as_they_did() -> None:
    # specs stored by studies before head/pool/res existed: same parameters, same weights
    v1 = [
        (
            {"stem_width": 16, "stem_stride": 1, "activation": "hardswish", "stages": [
                {"block": "ir", "depth": 2, "width": 32, "kernel": 3, "stride": 2,
                 "expand": 4, "se": True},
                {"block": "conv", "depth": 1, "width": 64, "kernel": 5, "stride": 1, "se": False},
            ]},
            "cnn|stem16s1|ir_d2_k3_s2_e4_c32_se|conv_d1_k5_s1_c64|hardswish", 76522, 58,
        ),
        (
            {"stem_width": 8, "stem_stride": 2, "activation": "relu", "stages": [
                {"block": "conv", "depth": 1, "width": 16, "kernel": 3, "stride": 2, "se": True},
                {"block": "ir", "depth": 1, "width": 24, "kernel": 7, "stride": 2,
                 "expand": 1, "se": False},
            ]},
            "cnn|stem8s2|conv_d1_k3_s2_c16_se|ir_d1_k7_s2_e1_c24|relu", 2918, 30,
        ),
    ]  # fmt: skip
    for config, code, params, tensors in v1:
        spec = ArchSpec.from_json(
            ArchSpec(
                family="cnn", in_channels=1, num_classes=10, image_size=28, config=config
            ).to_json()
        )
        model = build_model(spec)
        assert spec.encode() == code
        assert sum(p.numel() for p in model.parameters()) == params
        assert len(model.state_dict()) == tensors
        assert isinstance(model.pool, nn.AdaptiveAvgPool2d)  # no head key: global pooling


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
        assert 1 <= len(stages) <= 2  # min_stages defaults to 1
        assert all(s["width"] == 8 and s["block"] == "ir" and "expand" in s for s in stages)


def test_sampled_widths_never_shrink_with_depth() -> None:
    space = create_search_space("cnn")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        spec = space.sample(study.ask(), in_channels=1, num_classes=10, image_size=28)
        widths = [s["width"] for s in spec.config["stages"]]
        assert widths == sorted(widths)


@pytest.mark.parametrize(
    ("size", "expected"), [(8, (0, 1)), (16, (1, 2)), (28, (2, 3)), (32, (2, 3)), (64, (3, 4))]
)
def test_downsampling_range_keeps_the_final_map_between_4_and_8_px(
    size: int, expected: tuple[int, int]
) -> None:
    assert downsampling_range(size) == expected


def _final_map(model: nn.Module, size: int) -> int:
    seen: list[int] = []
    model.pool.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[-1]))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, size, size))
    return seen[0]


@pytest.mark.parametrize("size", [12, 16, 28, 32, 48, 64])
def test_no_sampled_network_collapses_the_feature_map(size: int) -> None:
    """Many samples (random and TPE-guided, several seeds) at each resolution: the map that
    reaches the head is never below MIN_SAMPLED_FINAL px (4), nor wider than the image allows
    the space to reduce it to (8 px when there are places enough to halve)."""
    space = create_search_space("cnn")
    fewest, most = downsampling_range(size)
    samplers = [optuna.samplers.RandomSampler(seed=s) for s in range(4)]
    samplers.append(optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    checked = 0
    for sampler in samplers:
        study = optuna.create_study(sampler=sampler)
        for _ in range(40):
            trial = study.ask()
            spec = space.sample(trial, in_channels=1, num_classes=10, image_size=size)
            cfg = CNNConfig.from_spec(spec)
            final = cfg.final_resolution()
            assert final >= min(MIN_SAMPLED_FINAL, size), spec.encode()
            places = len(cfg.stages) + (cfg.stem_width > 0)
            assert fewest <= cfg.downsamplings <= most or cfg.downsamplings == places
            if checked < 8:  # the built model really has that map
                assert _final_map(build_model(spec), size) == final
                checked += 1
            study.tell(trial, float(final))  # TPE learns to shrink the map: it still may not


def test_validate_rejects_a_spec_that_halves_the_map_below_2_px() -> None:
    space = create_search_space("cnn")
    spec = _spec([_stage(stride=2)] * 4, stem_stride=2)
    with pytest.raises(
        InvalidArchError, match=r"5 downsamplings \(stride 2 or max-pool\) shrink 28x28 to 1x1"
    ):
        space.validate(spec)
    assert spec.encode().startswith("cnn|stem8s2|conv_d1_k3_s2_c16|")  # still encodable
    space.validate(_spec([_stage(stride=2)] * 4))  # stem stride 1: 28 -> 2, valid
    with pytest.raises(InvalidArchError, match="shrink 28x28 to 1x1"):
        space.validate(
            _spec([_stage(stride=2, pool=True)] * 2 + [_stage(pool=True)], stem_stride=1)
        )


def test_params_for_maps_a_spec_back_to_the_trial_that_samples_it() -> None:
    space = create_search_space("cnn")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    for _ in range(20):
        trial = study.ask()
        spec = space.sample(trial, in_channels=3, num_classes=10, image_size=32, prefix="c.")
        params = space.params_for(spec, prefix="c.")
        assert set(params) == set(trial.params)  # the same questions (widths come sorted)
        replayed = space.sample(
            optuna.trial.FixedTrial(params),
            in_channels=3,
            num_classes=10,
            image_size=32,
            prefix="c.",
        )
        assert replayed == spec


def test_params_for_refuses_a_spec_outside_the_space() -> None:
    textbook = CNNSpace.decode(
        "cnn|conv_d1_k3_s1_c8_mp|conv_d1_k3_s1_c16_mp|flat|relu",
        in_channels=1,
        num_classes=10,
        image_size=28,
    )
    assert create_search_space("cnn").params_for(textbook)["s0.down"] == "pool"
    with pytest.raises(InvalidArchError, match=r"s0.width = 8 is not one of"):
        create_search_space("cnn", width_choices=[16, 32]).params_for(textbook)
    with pytest.raises(InvalidArchError, match="head = 'flatten' is not one of"):
        create_search_space("cnn", head_choices=["gap"]).params_for(textbook)
    widest = CNNSpace.decode(  # 28 px, one halving: 14 px, more than the space leaves
        "cnn|conv_d1_k3_s1_c8|conv_d1_k3_s1_c16_mp|flat|relu",
        in_channels=1,
        num_classes=10,
        image_size=28,
    )
    with pytest.raises(InvalidArchError, match="not in this cnn space"):
        create_search_space("cnn").params_for(widest)


def test_decode_is_the_inverse_of_encode() -> None:
    for code in (
        "cnn|conv_d1_k3_s1_c8_mp|conv_d1_k3_s1_c16_mp|flat|relu",
        "cnn|stem16s2|ir_d2_k5_s2_e4_c32_se|res_d1_k3_s1_c64_se_mp|silu",
    ):
        spec = CNNSpace.decode(code, in_channels=3, num_classes=7, image_size=32)
        assert spec.encode() == code
        build_model(spec)
    with pytest.raises(InvalidArchError, match="not understood"):
        CNNSpace.decode("cnn|conv_x1|relu", in_channels=1, num_classes=2, image_size=8)


def test_textbook_spec_matches_the_hand_written_model() -> None:
    # conv 1->8 (72) + BN (16), conv 8->16 (1152) + BN (32), linear 16*7*7->10 (7850):
    # the 9,146 less the 24 conv biases BatchNorm makes redundant
    spec = CNNSpace.decode(
        "cnn|conv_d1_k3_s1_c8_mp|conv_d1_k3_s1_c16_mp|flat|relu",
        in_channels=1,
        num_classes=10,
        image_size=28,
    )
    model = build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == 72 + 16 + 1152 + 32 + 7850 == 9146 - 24
    assert _final_map(model, 28) == 7
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2


def test_basic_block_shortcut_follows_shape() -> None:
    same = BasicBlock(8, 8, 3, 1)
    assert isinstance(same.shortcut, nn.Identity)
    down = BasicBlock(8, 16, 3, 2)
    assert not isinstance(down.shortcut, nn.Identity)
    assert down(torch.randn(2, 8, 9, 9)).shape == (2, 16, 5, 5)


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
        (_spec([_stage()], head="max"), "head 'max'"),
        (_spec([_stage(pool=1)]), "pool must be bool"),
        (_spec([_stage()], stem_width=-1), "stem_width must be >= 0"),
        (_spec([_stage()], stem_width=0, stem_stride=2), "no stem"),
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
        ({"stem_width_choices": [-8]}, "stem_width_choices: -8"),
        ({"head_choices": ["max"]}, "head_choices"),
    ],
)
def test_bad_constructor_options_raise_config_error(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_search_space("cnn", **options)
