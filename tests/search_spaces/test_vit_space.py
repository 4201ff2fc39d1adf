from __future__ import annotations

from typing import Any

import optuna
import pytest
import torch
from torch import nn

from nas.errors import ConfigError, InvalidArchError
from search_spaces import ArchSpec, build_model, create_search_space
from search_spaces.vit import Attention, ViTSpace, patch_range


def _spec(*, image_size: int = 28, **kw: Any) -> ArchSpec:
    cfg = {"patch": 7, "dim": 8, "depth": 1, "heads": 2, "mlp_ratio": 2, "pool": "cls", **kw}
    return ArchSpec(family="vit", in_channels=1, num_classes=3, image_size=image_size, config=cfg)


def test_fixed_trial_sample_and_encode() -> None:
    params = {
        "v.patch": 4,
        "v.dim": 64,
        "v.depth": 4,
        "v.heads": 4,
        "v.mlp_ratio": 2,
        "v.pool": "mean",
    }
    spec = create_search_space("vit").sample(
        optuna.trial.FixedTrial(params), in_channels=3, num_classes=10, image_size=32, prefix="v."
    )
    assert spec.config == {
        "patch": 4,
        "dim": 64,
        "depth": 4,
        "heads": 4,
        "mlp_ratio": 2,
        "pool": "mean",
    }
    assert spec.encode() == "vit|p4_d64_L4_h4_m2|mean"
    assert build_model(spec)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_parameter_count_matches_hand_computation() -> None:
    # patch conv 1*8*49+8=400, cls 8, pos (4+1)*8=40, block: 2 norms 32, qkv 8*24+24=216,
    # proj 72, fc1 8*16+16=144, fc2 16*8+8=136; final norm 16; head 8*3+3=27
    model = build_model(_spec(image_size=14))
    assert sum(p.numel() for p in model.parameters()) == 400 + 8 + 40 + 600 + 16 + 27
    mean_model = build_model(_spec(image_size=14, pool="mean"))
    assert sum(p.numel() for p in mean_model.parameters()) == 1091 - 8 - 8  # no cls, 4 positions


def test_depth_and_mlp_ratio_shape_the_model() -> None:
    model = build_model(_spec(depth=3, mlp_ratio=4))
    assert len(model.blocks) == 3
    assert model.blocks[0].mlp.fc1.out_features == 32


def test_attention_matches_torch_multihead_attention() -> None:
    torch.manual_seed(0)
    attn = Attention(dim=12, heads=3)
    ref = nn.MultiheadAttention(12, 3, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(attn.qkv.weight)
        ref.in_proj_bias.copy_(attn.qkv.bias)
        ref.out_proj.weight.copy_(attn.proj.weight)
        ref.out_proj.bias.copy_(attn.proj.bias)
    x = torch.randn(2, 5, 12)
    expected, _ = ref(x, x, x, need_weights=False)
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)


def test_sample_does_not_fix_dim_not_divisible_by_heads() -> None:
    params = {"patch": 4, "dim": 32, "depth": 2, "heads": 3, "mlp_ratio": 2, "pool": "cls"}
    space = create_search_space("vit", heads_choices=[2, 3])
    spec = space.sample(
        optuna.trial.FixedTrial(params), in_channels=1, num_classes=10, image_size=28
    )
    assert spec.config["heads"] == 3 and spec.encode() == "vit|p4_d32_L2_h3_m2|cls"
    with pytest.raises(InvalidArchError, match="embed dim 32 is not divisible by 3 heads"):
        space.validate(spec)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (_spec(dim=32, heads=3), "not divisible by 3 heads"),
        (_spec(patch=7, image_size=32), "patch size 7 does not divide the image size 32"),
        (_spec(mlp_ratio=0.01), "no MLP hidden units"),
        (_spec(mlp_ratio=0), "mlp_ratio must be a number > 0"),
        (_spec(pool="max"), "pool 'max'"),
        (_spec(depth=0), "depth must be an int >= 1"),
        (_spec(dim=True), "dim must be an int"),
        (
            ArchSpec(family="vit", in_channels=1, num_classes=3, image_size=28, config={"dim": 8}),
            "missing",
        ),
    ],
)
def test_validate_rejects_impossible_specs(spec: ArchSpec, match: str) -> None:
    with pytest.raises(InvalidArchError, match=match):
        create_search_space("vit").validate(spec)
    with pytest.raises(InvalidArchError):
        build_model(spec)


@pytest.mark.parametrize(
    ("size", "patches"), [(16, (2, 4)), (28, (4, 7)), (32, (4, 8)), (64, (8, 16)), (27, (3,))]
)
def test_patch_range_keeps_the_sequence_at_16_to_64_tokens(size: int, patches: tuple) -> None:
    assert patch_range(size) == patches  # 27: no divisor fits, 3 (81 tokens) is the nearest


@pytest.mark.parametrize("size", [16, 28, 32])
def test_default_samples_are_valid_and_their_sequence_bounded(size: int) -> None:
    space = create_search_space("vit")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        spec = space.sample(study.ask(), in_channels=3, num_classes=10, image_size=size)
        space.validate(spec)  # the default heads divide every default width
        assert 16 <= (size // spec.config["patch"]) ** 2 <= 64


def test_options_bound_the_space() -> None:
    small = create_search_space("vit", dim_choices=[48], heads_choices=[2, 3], patch_choices=[2])
    small_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        spec = small.sample(small_study.ask(), in_channels=3, num_classes=10, image_size=32)
        small.validate(spec)
        assert spec.config["dim"] == 48 and spec.config["patch"] == 2  # explicit: as given
    with pytest.raises(ConfigError, match="min_tokens 80 > max_tokens 64"):
        create_search_space("vit", min_tokens=80)


def test_decode_and_params_for_round_trip() -> None:
    space = create_search_space("vit")
    spec = ViTSpace.decode("vit|p7_d64_L2_h4_m2|mean", in_channels=1, num_classes=10, image_size=28)
    assert spec.encode() == "vit|p7_d64_L2_h4_m2|mean"
    params = space.params_for(spec, prefix="vit.")
    assert params["vit.patch"] == 7
    again = space.sample(
        optuna.trial.FixedTrial(params), in_channels=1, num_classes=10, image_size=28, prefix="vit."
    )
    assert again == spec
    long = ViTSpace.decode("vit|p2_d96_L4_h8_m1|cls", in_channels=1, num_classes=10, image_size=28)
    build_model(long)  # a stored patch-2 trial still builds
    with pytest.raises(InvalidArchError, match="patch = 2 is not one of the space's"):
        space.params_for(long)  # ... but the space no longer samples 196 tokens


def test_fractional_mlp_ratio_is_a_valid_choice() -> None:
    space = create_search_space("vit", mlp_ratio_choices=[1.5], dim_choices=[32], heads_choices=[2])
    spec = space.sample(
        optuna.create_study().ask(), in_channels=1, num_classes=10, image_size=28, prefix="v."
    )
    assert spec.encode().endswith("_m1.5|" + spec.config["pool"])
    assert build_model(spec).blocks[0].mlp.fc1.out_features == 48
