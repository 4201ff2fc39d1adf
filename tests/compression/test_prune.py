from __future__ import annotations

import io
import json

import pytest
import torch

from nas.compression import PrunedAttention, apply_structure, prune_model
from nas.cost import analyze_cost
from nas.errors import BadInputError
from search_spaces import ArchSpec, build_model


def test_pruning_removes_params_and_flops_and_keeps_output_shape(
    spec: ArchSpec, x: torch.Tensor
) -> None:
    model = build_model(spec).eval()
    before = analyze_cost(model, (1, 1, 28, 28))
    prune_model(model, ratio=0.5, criterion="l1", example_input=x[:2])
    after = analyze_cost(model, (1, 1, 28, 28))
    assert after.params < 0.6 * before.params
    assert after.flops < 0.6 * before.flops
    assert model(x).shape == (8, 10)
    assert torch.isfinite(model(x)).all()


def test_vit_heads_and_mlp_units_are_removed(x: torch.Tensor) -> None:
    from tests.compression.conftest import VIT

    model = build_model(VIT).eval()
    structure = prune_model(model, ratio=0.5, criterion="l2", example_input=x[:2])
    attn = [m for m in model.modules() if isinstance(m, PrunedAttention)]
    assert len(attn) == 2 and all(a.heads == 2 and a.head_dim == 8 for a in attn)
    assert all(b.mlp.fc1.out_features == 32 for b in model.blocks)  # 64 hidden -> 32
    assert structure["attention"] == {"blocks.0.attn": [2, 8], "blocks.1.attn": [2, 8]}


def test_zero_ratio_changes_nothing(x: torch.Tensor) -> None:
    from tests.compression.conftest import CNN

    model = build_model(CNN)
    n = sum(p.numel() for p in model.parameters())
    assert prune_model(model, ratio=0.0, criterion="l1", example_input=x[:2])["shapes"] == {}
    assert sum(p.numel() for p in model.parameters()) == n


@pytest.mark.parametrize("criterion", ["lamp", "random"])
def test_other_criteria_prune(criterion: str, x: torch.Tensor) -> None:
    from tests.compression.conftest import CNN

    model = build_model(CNN).eval()
    n = sum(p.numel() for p in model.parameters())
    prune_model(model, ratio=0.3, criterion=criterion, example_input=x[:2])
    assert sum(p.numel() for p in model.parameters()) < n


def test_structure_rebuilds_the_pruned_model_exactly(spec: ArchSpec, x: torch.Tensor) -> None:
    model = build_model(spec).eval()
    structure = json.loads(
        json.dumps(prune_model(model, ratio=0.4, criterion="l1", example_input=x[:2]))
    )
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    rebuilt = apply_structure(build_model(spec), structure).eval()
    rebuilt.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x))


def test_bad_ratio_and_structure_rejected(x: torch.Tensor) -> None:
    from tests.compression.conftest import CNN

    with pytest.raises(BadInputError, match="ratio"):
        prune_model(build_model(CNN), ratio=1.2, criterion="l1", example_input=x[:2])
    with pytest.raises(BadInputError, match="lacks"):
        apply_structure(build_model(CNN), {"shapes": {"nope.weight": [1]}})
