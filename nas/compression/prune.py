"""Structured pruning with torch-pruning: channels, attention heads and MLP units really go.

:func:`prune_model` removes the least important ``ratio`` of every prunable group (conv
channels, the ViT embedding width, whole attention heads, MLP hidden units) in place, so
parameters and FLOPs drop on dense hardware. The final classifier keeps its outputs.
:func:`pruned_structure` returns a small JSON-able record of what changed and
:func:`apply_structure` reshapes a freshly built model to it, so the pruned weights load
with ``torch.load(weights_only=True)``; nothing is ever unpickled.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.errors import BadInputError

log = logging.getLogger(__name__)


class PrunedAttention(nn.Module):
    """Multi-head self-attention whose head count and head width are explicit.

    The ``vit`` family's ``Attention`` derives the head width from the embedding width, which
    no longer holds once whole heads are removed; this keeps ``qkv``/``proj`` as they are.
    """

    def __init__(self, qkv: nn.Linear, proj: nn.Linear, *, heads: int) -> None:
        super().__init__()
        self.qkv, self.proj, self.heads = qkv, proj, heads
        self.head_dim = qkv.out_features // (3 * heads)

    def forward(self, x: Tensor) -> Tensor:
        B, L, _ = x.shape
        qkv = self.qkv(x).reshape(B, L, 3, self.heads, self.head_dim)  # (B, L, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, Dh)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, H, L, Dh)
        return self.proj(x.transpose(1, 2).reshape(B, L, self.heads * self.head_dim))


def _attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: m
        for name, m in model.named_modules()
        if hasattr(m, "qkv") and hasattr(m, "proj") and hasattr(m, "heads")
    }


def _importance(criterion: str) -> Any:
    import torch_pruning as tp

    if criterion == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if criterion == "l2":
        return tp.importance.MagnitudeImportance(p=2)
    if criterion == "lamp":
        return tp.importance.LAMPImportance(p=2)
    if criterion == "random":
        return tp.importance.RandomImportance()
    raise BadInputError(f"pruning criterion {criterion!r} is unknown; use l1, l2, lamp or random")


def _shapes(model: nn.Module) -> dict[str, list[int]]:
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {k: list(v.shape) for k, v in tensors.items()}


def prune_model(
    model: nn.Module,
    *,
    ratio: float,
    criterion: str,
    example_input: Tensor,
    seed: int = 0,
) -> dict[str, Any]:
    """Remove ``ratio`` of each prunable group of ``model`` in place; return its structure.

    Whole attention heads go at the same ratio (head widths are kept); the classifier
    (``model.head``) keeps its outputs. Returns :func:`pruned_structure`'s record.
    """
    if not 0.0 <= ratio < 1.0:
        raise BadInputError(f"pruning ratio {ratio!r} must be in [0, 1)")
    import torch_pruning as tp

    before = _shapes(model)
    if ratio == 0.0:
        return pruned_structure(model, before)
    torch.manual_seed(seed)
    head = getattr(model, "head", None)
    ignored = [head] if isinstance(head, nn.Module) else []
    attn = _attention_modules(model)
    kwargs: dict[str, Any] = {}
    if attn:
        kwargs = dict(
            num_heads={m.qkv: m.heads for m in attn.values()},
            prune_num_heads=True,
            prune_head_dims=False,
            head_pruning_ratio=ratio,
        )
    was_training = model.training
    model.eval()
    with warnings.catch_warnings():  # cls_token/pos_embed: pruned along their last dim, as meant
        warnings.simplefilter("ignore", UserWarning)
        pruner = tp.pruner.MetaPruner(
            model,
            example_input,
            importance=_importance(criterion),
            pruning_ratio=ratio,
            ignored_layers=ignored,
            round_to=None,
            **kwargs,
        )
        pruner.step()
    for name, m in attn.items():
        heads = int(pruner.num_heads[m.qkv])
        _set_module(model, name, PrunedAttention(m.qkv, m.proj, heads=heads))
    model.train(was_training)
    return pruned_structure(model, before)


def pruned_structure(model: nn.Module, original: dict[str, list[int]]) -> dict[str, Any]:
    """What differs from the freshly built model: tensor shapes, conv groups, attention heads."""
    shapes = {k: s for k, s in _shapes(model).items() if original.get(k) != s}
    groups = {
        n: m.groups for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1
    }
    heads = {
        n: [m.heads, m.head_dim] for n, m in model.named_modules() if isinstance(m, PrunedAttention)
    }
    return {"shapes": shapes, "conv_groups": groups, "attention": heads}


def apply_structure(model: nn.Module, structure: dict[str, Any]) -> nn.Module:
    """Reshape a freshly built ``model`` (in place) to a recorded pruned ``structure``.

    Tensors get the recorded shapes (placeholders: load the trial's weights next), layer
    attributes follow, and recorded attention modules become :class:`PrunedAttention`.
    """
    try:
        shapes = structure["shapes"]
        groups = structure.get("conv_groups", {})
        heads = structure.get("attention", {})
    except (KeyError, TypeError) as exc:
        raise BadInputError(f"pruned structure record is malformed: {exc}") from None
    from nas.stored_spec import check_pruned_shapes

    check_pruned_shapes(model, structure, "trial")  # never grows a tensor (hostile record)
    for name, shape in shapes.items():
        module_name, _, attr = name.rpartition(".")
        try:
            owner = model.get_submodule(module_name) if module_name else model
        except AttributeError:
            owner = None
        old = getattr(owner, attr, None)
        if not isinstance(old, Tensor):
            raise BadInputError(f"pruned structure names {name!r}, which the model lacks")
        # finite placeholders (the trial's weights load next); a quantization skeleton
        # calibrates its observers on them, so no NaN from uninitialised memory
        if isinstance(old, nn.Parameter):
            new = torch.randn(shape, dtype=old.dtype) * 0.02
            setattr(owner, attr, nn.Parameter(new, requires_grad=old.requires_grad))
        else:
            fill = torch.ones if "var" in attr else torch.zeros
            owner._buffers[attr] = fill(shape, dtype=old.dtype)
    for m_name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            m.groups = int(groups.get(m_name, 1))
            m.out_channels = m.weight.shape[0]
            m.in_channels = m.weight.shape[1] * m.groups
        elif isinstance(m, nn.Linear):
            m.out_features, m.in_features = m.weight.shape
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.num_features = m.running_mean.shape[0]
        elif isinstance(m, nn.LayerNorm):
            m.normalized_shape = (m.weight.shape[0],)
    for name, (n_heads, _head_dim) in heads.items():
        old = model.get_submodule(name)
        _set_module(model, name, PrunedAttention(old.qkv, old.proj, heads=int(n_heads)))
    return model


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
