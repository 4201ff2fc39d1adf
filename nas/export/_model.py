"""Export a trained model (ONNX, ``torch.export`` .pt2, state_dict) and verify the export.

Which precision can go to which format (checked on torch 2.14, onnxruntime 1.32, CPU):

============  ====  ====  ==========  ==================================================
precision     onnx  pt2   state_dict  note
============  ====  ====  ==========  ==================================================
fp32          yes   yes   yes
fp16          yes   yes   yes         onnxruntime's CPU provider runs the fp16 graph
bf16          no    yes   yes         onnxruntime's CPU provider has no bf16 Conv/MatMul
int8_dynamic  no    no    yes         ``quantize_dynamic`` packs Linear weights in a
                                      TorchScript class that ``torch.export`` cannot trace
============  ====  ====  ==========  ==================================================

A quantized state_dict loads with ``torch.load(weights_only=True)`` into a model that was
quantized the same way (``quantize_model(build_model(spec), precision="int8_dynamic")``).
TorchScript (``torch.jit``) is deprecated in torch 2.14 and is not used.
"""

from __future__ import annotations

import copy
import importlib
import logging
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from nas.errors import BadInputError, EconasError

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "pt2", "state_dict")
PRECISIONS = ("fp32", "fp16", "bf16", "int8_dynamic")
SUPPORTED_FORMATS: dict[str, tuple[str, ...]] = {
    "fp32": ("onnx", "pt2", "state_dict"),
    "fp16": ("onnx", "pt2", "state_dict"),
    "bf16": ("pt2", "state_dict"),
    "int8_dynamic": ("state_dict",),
}
ONNX_OPSET = 18  # the opset torch's ONNX function library is written in; ORT >= 1.14 runs it
_SUFFIX = {"onnx": ".onnx", "pt2": ".pt2", "state_dict": ".pt"}
_ONNX_INLINE_LIMIT_BYTES = 1_500_000_000  # protobuf's 2 GB cap, with margin: beyond, external data


class ExportCheckError(EconasError):
    """An exported model's outputs differ from PyTorch's by more than the tolerance."""


def model_precision(model: nn.Module) -> str:
    """The precision of ``model``: one of :data:`PRECISIONS`, from its modules and parameters."""
    from nas.compression.quantize import is_int8

    if is_int8(model):
        return "int8_dynamic"
    dtype = _float_dtype(model)
    return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, "fp32")


def quantize_model(model: nn.Module, *, precision: str) -> nn.Module:
    """A CPU copy of ``model`` at ``precision`` (``fp32``, ``fp16``, ``bf16``, ``int8_dynamic``).

    ``int8_dynamic`` quantizes the weights of every ``nn.Linear`` to int8 with
    ``torch.ao.quantization.quantize_dynamic`` (activations are quantized on the fly); convs
    stay in fp32. The input model is left untouched.
    """
    if precision not in PRECISIONS:
        raise BadInputError(f"precision {precision!r} is unknown; use one of {list(PRECISIONS)}")
    copied = copy.deepcopy(model).to("cpu").eval()
    if precision == "fp16":
        return copied.to(torch.float16)
    if precision == "bf16":
        return copied.to(torch.bfloat16)
    if precision == "int8_dynamic":
        from nas.compression.quantize import dynamic_int8

        return dynamic_int8(copied)
    return copied


def export_model(
    model: nn.Module,
    *,
    example_input: torch.Tensor,
    fmt: str,
    out_dir: str | Path,
    basename: str = "model",
) -> Path:
    """Write ``model`` to ``out_dir/basename.{onnx,pt2,pt}`` and return the path.

    The model is put in eval mode on the CPU (in place, like ``nn.Module.to``). ONNX and pt2
    keep the batch dimension (dim 0) dynamic, whatever the example's batch size.
    """
    if fmt not in EXPORT_FORMATS:
        raise BadInputError(f"export format {fmt!r} is unknown; use one of {list(EXPORT_FORMATS)}")
    precision = model_precision(model)
    if fmt not in SUPPORTED_FORMATS[precision]:
        raise BadInputError(
            f"a {precision} model cannot be exported as {fmt}; "
            f"use one of {list(SUPPORTED_FORMATS[precision])}"
        )
    model.eval().to("cpu")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{basename}{_SUFFIX[fmt]}"
    if fmt == "state_dict":
        # the OrderedDict itself, not a copy: its _metadata carries the module versions that
        # quantized modules need to load it back
        torch.save(model.state_dict(), path)
    else:
        example = _trace_input(model, example_input)
        batch = torch.export.Dim("batch", min=1)
        dynamic_shapes = ({0: batch},)
        if fmt == "pt2":
            program = torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)
            torch.export.save(program, path)
        else:
            _require("onnxscript", "onnx")
            inline = _param_bytes(model) < _ONNX_INLINE_LIMIT_BYTES
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
                input_names=["input"],
                output_names=["output"],
                opset_version=ONNX_OPSET,
                external_data=not inline,
                verbose=False,
            )
    logger.info("exported %s model to %s", fmt, path)
    return path


def check_onnx(
    path: str | Path, model: nn.Module, example_input: torch.Tensor, *, atol: float = 1e-4
) -> float:
    """Run the ONNX file in onnxruntime (CPU) and return the max abs difference from PyTorch.

    Raises :class:`ExportCheckError` when the difference exceeds ``atol``.
    """
    ort = _require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _match_dtype(model, example_input).detach().cpu()
    feed = {session.get_inputs()[0].name: x.numpy()}
    got = torch.from_numpy(session.run(None, feed)[0])
    return _compare(got, _reference(model, x), atol=atol, what=f"ONNX file {path}")


def check_pt2(
    path: str | Path, model: nn.Module, example_input: torch.Tensor, *, atol: float = 1e-4
) -> float:
    """Load the .pt2 program with ``torch.export.load``, run it and return the max abs difference."""
    program = torch.export.load(str(path))
    x = _match_dtype(model, example_input).detach().cpu()
    with torch.inference_mode():
        got = program.module()(x)
    return _compare(got, _reference(model, x), atol=atol, what=f"pt2 program {path}")


def _reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval().to("cpu")
    with torch.inference_mode():
        return model(x)


def _compare(got: torch.Tensor, want: torch.Tensor, *, atol: float, what: str) -> float:
    if got.shape != want.shape:
        raise ExportCheckError(
            f"{what}: output shape {tuple(got.shape)} != PyTorch's {tuple(want.shape)}"
        )
    diff = float((got.float() - want.float()).abs().max()) if want.numel() else 0.0
    if not diff <= atol:  # also catches NaN
        raise ExportCheckError(
            f"{what}: max abs difference {diff:.3e} from PyTorch exceeds {atol:.1e}"
        )
    return diff


def _trace_input(model: nn.Module, example_input: torch.Tensor) -> torch.Tensor:
    """The example to trace with: model's dtype, on CPU, batch >= 2.

    ``torch.export`` specialises a size-1 dimension to the constant 1, which would make the
    batch dimension static; tracing with two samples keeps it symbolic.
    """
    if example_input.dim() < 1:
        raise BadInputError("example_input must have a batch dimension")
    x = _match_dtype(model, example_input).detach().cpu()
    if x.shape[0] < 2:
        x = x[:1].expand(2, *x.shape[1:]).contiguous()
    return x


def _match_dtype(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    dtype = _float_dtype(model)
    return x.to(dtype) if x.is_floating_point() and dtype is not None else x


def _float_dtype(model: nn.Module) -> torch.dtype | None:
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return None


def _param_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def _require(*names: str) -> ModuleType:
    """Import optional dependencies lazily; the first one is returned."""
    mods = []
    for name in names:
        try:
            mods.append(importlib.import_module(name))
        except ImportError as exc:
            raise ImportError(
                f"{name} is needed for ONNX export/checks: pip install {name}"
            ) from exc
    return mods[0]
