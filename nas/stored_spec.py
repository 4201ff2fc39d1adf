"""An ``ArchSpec`` read back from storage or a file, bounded before anything is allocated.

A study in a shared database is untrusted input: a stored ``arch_spec`` with a width of 10^9
or ``num_classes`` 10^12 would make ``export`` allocate terabytes, and 5,000 stages take a
minute and a gigabyte to build. :func:`stored_spec` refuses (one line, exit 2) a spec whose
text is too long, whose classes or channels are absurd, or whose model, counted on PyTorch's
``meta`` device (shapes only, no memory), holds more than :data:`MAX_PARAMS` parameters.
:func:`check_pruned_shapes` refuses a recorded pruned structure that would grow a tensor.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nas.errors import BadInputError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from search_spaces import ArchSpec

MAX_SPEC_CHARS = 32 * 1024  # a 64-stage CNN's spec is ~6 KB
MAX_CLASSES = 100_000
MAX_IN_CHANNELS = 64
MAX_PARAMS = 1_000_000_000  # 4 GB of fp32 weights: far beyond any proxy or full-budget model


def stored_spec(raw: Any, where: str) -> ArchSpec:
    """The ``ArchSpec`` of a stored JSON text, bounded; BadInputError naming ``where``."""
    from search_spaces import ArchSpec

    if not isinstance(raw, str):
        raise BadInputError(f"{where}: stored arch_spec is not a JSON text")
    if len(raw) > MAX_SPEC_CHARS:
        raise BadInputError(
            f"{where}: stored arch_spec is {len(raw)} characters long (at most {MAX_SPEC_CHARS})"
        )
    try:
        spec = ArchSpec.from_json(raw)
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a stored attr is untrusted input
        raise BadInputError(f"{where}: stored arch_spec is unusable ({exc})") from None
    if not 1 <= spec.num_classes <= MAX_CLASSES:
        raise BadInputError(
            f"{where}: stored arch_spec has {spec.num_classes} classes (1..{MAX_CLASSES})"
        )
    if not 1 <= spec.in_channels <= MAX_IN_CHANNELS:
        raise BadInputError(
            f"{where}: stored arch_spec has {spec.in_channels} input channels "
            f"(1..{MAX_IN_CHANNELS})"
        )
    check_model_size(spec, where)
    return spec


def count_params(spec: ArchSpec) -> int:
    """Parameters and buffers of ``spec``'s model, built on the meta device (no memory)."""
    import torch

    from search_spaces import build_model

    with torch.device("meta"):
        model = build_model(spec)
    return sum(t.numel() for t in (*model.parameters(), *model.buffers()))


def check_model_size(spec: ArchSpec, where: str) -> int:
    """``spec``'s parameter count; BadInputError when the spec cannot be built or is too large."""
    from nas.errors import InvalidArchError

    try:
        n = count_params(spec)
    except (InvalidArchError, BadInputError) as exc:
        raise BadInputError(
            f"{where}: stored arch_spec is not a valid architecture ({exc})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - hostile values trip the builders in many ways
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise BadInputError(f"{where}: stored arch_spec cannot be built ({reason})") from None
    if n > MAX_PARAMS:
        raise BadInputError(
            f"{where}: stored arch_spec describes a model of {n:.3g} parameters "
            f"(~{4 * n / 1e9:.3g} GB); at most {MAX_PARAMS:.0e}: not allocating it"
        )
    return n


def check_pruned_shapes(model: nn.Module, structure: Any, where: str) -> None:
    """A pruned structure only shrinks tensors: every recorded shape must have the rank of
    the tensor it replaces and no larger side (else it is hostile or foreign)."""
    shapes = structure.get("shapes") if isinstance(structure, dict) else None
    if not isinstance(shapes, dict):
        return  # apply_structure names a malformed record
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    for name, shape in shapes.items():
        old = tensors.get(name)
        if old is None:
            continue  # apply_structure names it
        ok = isinstance(shape, list) and len(shape) == old.dim()
        ok = ok and all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= o
            for n, o in zip(shape, old.shape, strict=False)
        )
        if not ok:
            raise BadInputError(
                f"{where}: pruned structure gives {name!r} the shape {str(shape)[:60]}, larger "
                f"than the architecture's {list(old.shape)} (pruning only removes)"
            )
    return None


def finite_non_negative(value: Any, what: str, *, limit: float = math.inf) -> float:
    """``value`` as a float in [0, limit]; BadInputError otherwise (NaN, negative, huge)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInputError(f"{what} must be a number, got {str(value)[:40]!r}")
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= limit):
        raise BadInputError(f"{what} must be a finite number in [0, {limit:g}], got {number!r}")
    return number
