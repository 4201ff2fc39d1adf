"""Quantize the deployed model: FP16/BF16 casts, dynamic INT8 (linear layers), static INT8 (CNNs).

Every function returns a new module and leaves its input untouched. INT8 models run on the
CPU (``torch.ao`` kernels: x86/fbgemm or qnnpack). Static INT8 uses FX graph-mode
quantization calibrated on a few training images; it quantizes convolutions too, so it is
the one that speeds CNNs up. FP16/BF16 models are wrapped so they take float32 inputs like
the others (the cast is part of what is measured) and return float32 logits.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from nas.errors import BadInputError, EconasError

INT8 = ("int8_dynamic", "int8_static")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class CastInput(nn.Module):
    """Runs ``model`` (cast to ``dtype``) on inputs cast to ``dtype``; returns float32 logits."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model.to(dtype)
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.to(self.dtype)).float()  # (B, num_classes)


def is_int8(model: nn.Module) -> bool:
    """Whether ``model`` holds INT8 (``torch.ao`` quantized) modules, which run on the CPU."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def deploy_device(quantization: str, train_device: torch.device) -> torch.device:
    """Where the deployed model runs: INT8 on the CPU, the rest where it was trained."""
    return torch.device("cpu") if quantization in INT8 else train_device


def _engine() -> str:
    engines = torch.backends.quantized.supported_engines
    for name in ("x86", "fbgemm", "qnnpack"):
        if name in engines:
            return name
    raise EconasError(f"no INT8 quantization engine in this torch build ({engines})")


def quantize(
    model: nn.Module,
    *,
    quantization: str,
    device: torch.device,
    calibration: Iterable[Tensor] = (),
) -> nn.Module:
    """A deployable copy of ``model`` at ``quantization``, on :func:`deploy_device`.

    ``calibration`` yields float input batches (static INT8 only; a random batch stands in
    when empty, e.g. to rebuild a skeleton whose statistics come from a state_dict).
    """
    target = deploy_device(quantization, device)
    copied = copy.deepcopy(model).eval().to(target)
    if quantization == "fp32":
        return copied
    if quantization in _DTYPES:
        return CastInput(copied, _DTYPES[quantization]).eval()
    if quantization == "int8_dynamic":
        return dynamic_int8(copied)
    if quantization == "int8_static":
        return _static_int8(copied, calibration)
    raise BadInputError(f"quantization {quantization!r} is unknown")


def dynamic_int8(model: nn.Module) -> nn.Module:
    """``model`` (on the CPU, in place) with every ``nn.Linear`` quantized to int8 weights
    (activations quantized on the fly, ``torch.ao`` ``quantize_dynamic``); convs stay fp32."""
    with warnings.catch_warnings():  # torch.ao is deprecated in favour of torchao (not a dep)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor", category=UserWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model.to("cpu").eval(), {nn.Linear}, dtype=torch.qint8)


def _static_int8(model: nn.Module, calibration: Iterable[Tensor]) -> nn.Module:
    with warnings.catch_warnings():  # torch.ao is deprecated in favour of torchao (not a dep)
        warnings.simplefilter("ignore")
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        engine = _engine()
        torch.backends.quantized.engine = engine
        batches = list(calibration)
        example = batches[0][:2] if batches else None
        if example is None:
            raise EconasError("static INT8 quantization needs calibration batches")
        try:
            prepared = prepare_fx(model, get_default_qconfig_mapping(engine), (example,))
            with torch.inference_mode():
                for x in batches:
                    prepared(x.cpu())
            return convert_fx(prepared).eval()
        except Exception as exc:  # FX cannot trace it: say so, never fall back silently
            raise EconasError(f"static INT8 quantization failed: {exc}") from exc


def skeleton(model: nn.Module, *, quantization: str, input_shape: tuple[int, ...]) -> nn.Module:
    """The module layout a trial's saved deployed state_dict loads into (weights from it)."""
    calib = [torch.randn(4, *input_shape)] if quantization == "int8_static" else []
    return quantize(model, quantization=quantization, device=torch.device("cpu"), calibration=calib)
