from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import nn

from nas.cost import SDPA_OP, CostReport, analyze_cost, count_flops, count_params
from search_spaces import ArchSpec, build_model


def _tiny_vit(pool: str = "cls") -> nn.Module:
    # 14x14 image, patch 7 -> N = 4 patches (+1 cls token: L = 5), dim 8, 2 heads of 4, 1 block
    cfg = {"patch": 7, "dim": 8, "depth": 1, "heads": 2, "mlp_ratio": 2, "pool": pool}
    return build_model(
        ArchSpec(family="vit", in_channels=1, num_classes=3, image_size=14, config=cfg)
    )


def _tiny_cnn() -> nn.Module:
    stage = {"block": "conv", "depth": 1, "width": 16, "kernel": 3, "stride": 2, "se": False}
    cfg = {"stem_width": 8, "stem_stride": 1, "activation": "relu", "stages": [stage]}
    return build_model(
        ArchSpec(family="cnn", in_channels=1, num_classes=10, image_size=8, config=cfg)
    )


def test_params_count_parameters_frozen_included_buffers_excluded() -> None:
    model = _tiny_cnn()
    assert count_params(model) == sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    assert buffers > 0 and count_params(model) == 72 + 16 + 1152 + 32 + 170
    model.stem.requires_grad_(False)
    assert count_params(model) == 72 + 16 + 1152 + 32 + 170
    assert analyze_cost(model, (1, 1, 8, 8)).params == count_params(model)


def test_vit_flops_match_hand_computation() -> None:
    report = analyze_cost(_tiny_vit(), (1, 1, 14, 14))
    assert isinstance(report, CostReport) and report.input_shape == (1, 1, 14, 14)
    by_op = report.flops_by_operator
    # one multiply-add = one flop (fvcore): QK^T and AV each B*H*L*L*Dh = 1*2*5*5*4
    assert by_op["scaled_dot_product_attention"] == 2 * 1 * 2 * 5 * 5 * 4
    assert by_op["conv"] == 4 * 8 * 1 * 7 * 7  # positions * out ch * in ch * kernel
    assert by_op["linear"] == 5 * (8 * 24 + 8 * 8 + 8 * 16 + 16 * 8) + 8 * 3  # blocks + head
    assert by_op["layer_norm"] == 3 * 5 * 8 * 5  # fvcore: 5 flops per element, 3 norms
    assert report.flops == sum(by_op.values()) == 400 + 1568 + 2584 + 600
    assert SDPA_OP not in report.uncounted_ops
    assert count_flops(_tiny_vit(), (1, 1, 14, 14)) == report.flops


def test_attention_handle_adds_flops_fvcore_misses() -> None:
    model = _tiny_vit(pool="mean")
    with_attn = analyze_cost(model, (3, 1, 14, 14))
    without = analyze_cost(model, (3, 1, 14, 14), count_attention=False)
    assert with_attn.flops > without.flops
    assert with_attn.flops - without.flops == 2 * 3 * 2 * 4 * 4 * 4  # B=3, no cls token: L=4
    assert without.uncounted_ops.get(SDPA_OP) == 1
    assert "scaled_dot_product_attention" not in without.flops_by_operator


def test_flops_scale_with_batch_and_cnn_matches_hand_computation() -> None:
    one = analyze_cost(_tiny_cnn(), (1, 1, 8, 8))
    # stem conv 8x8 positions * 8 out * 1 in * 9; conv 4x4 * 16 * 8 * 9; head 16 * 10
    assert one.flops_by_operator["conv"] == 64 * 8 * 9 + 16 * 16 * 8 * 9
    assert one.flops_by_operator["linear"] == 160
    assert analyze_cost(_tiny_cnn(), (4, 1, 8, 8)).flops == 4 * one.flops


def test_analysis_leaves_the_model_untouched_and_quiet(caplog: pytest.LogCaptureFixture) -> None:
    model = _tiny_cnn().train()
    model.head.eval()  # mixed modes are restored per module
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings():
        warnings.simplefilter("error")
        report = analyze_cost(model, (2, 1, 8, 8))
    assert model.training and model.stem.training and not model.head.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # BatchNorm statistics not updated
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert report.flops > 0


def test_uncounted_ops_are_listed_and_logged_at_debug_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Hardswish(), nn.Hardswish())
    with caplog.at_level(logging.DEBUG):
        report = analyze_cost(model, (2, 4))
    assert report.uncounted_ops == {"aten::hardswish": 2}
    assert report.flops == report.flops_by_operator["linear"] == 2 * 4 * 4
    assert [r.levelno for r in caplog.records if "hardswish" in r.getMessage()] == [logging.DEBUG]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_bad_input_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="input_shape"):
        analyze_cost(_tiny_cnn(), (0, 1, 8, 8))
