"""nas.export: ONNX / pt2 / state_dict exports load elsewhere and match PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import BadInputError
from nas.export import (
    SUPPORTED_FORMATS,
    ExportCheckError,
    check_onnx,
    check_pt2,
    export_model,
    model_precision,
    quantize_model,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning", "ignore:TypedStorage is deprecated"
)


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))  # (B, 8, H, W)
        return self.head(x.mean(dim=(2, 3)))  # (B, 10)


class TinyAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)  # (B, T, C)
        b, t, c = x.shape
        q, k, v = (
            y.view(b, t, self.heads, c // self.heads).transpose(1, 2)
            for y in self.qkv(x).split(c, dim=2)
        )
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, c)  # (B, T, C)
        return self.head(y.mean(dim=1))


def _trained_like(cls: type[nn.Module]) -> nn.Module:
    torch.manual_seed(0)
    model = cls()
    for buf_name, buf in model.named_buffers():  # non-trivial BatchNorm statistics
        if buf_name.endswith("running_mean"):
            buf.copy_(torch.randn_like(buf) * 0.1)
        elif buf_name.endswith("running_var"):
            buf.copy_(torch.rand_like(buf) + 0.5)
    return model.eval()


MODELS = [TinyCNN, TinyAttention]
EXAMPLE = (1, 3, 16, 16)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_onnx_matches_pytorch_with_dynamic_batch(cls: type[nn.Module], tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = _trained_like(cls)
    path = export_model(model, example_input=torch.randn(EXAMPLE), fmt="onnx", out_dir=tmp_path)
    assert path == tmp_path / "model.onnx" and path.is_file()
    assert list(tmp_path.iterdir()) == [path]  # self-contained: no external-data side file
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert not isinstance(session.get_inputs()[0].shape[0], int)  # symbolic batch dim
    for batch in (1, 5):
        x = torch.randn(batch, *EXAMPLE[1:])
        diff = check_onnx(path, model, x, atol=1e-4)
        assert 0.0 <= diff <= 1e-4
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert got.shape == (batch, 10)


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_pt2_loads_and_matches(cls: type[nn.Module], tmp_path: Path) -> None:
    model = _trained_like(cls)
    path = export_model(
        model, example_input=torch.randn(EXAMPLE), fmt="pt2", out_dir=tmp_path, basename="net"
    )
    assert path == tmp_path / "net.pt2"
    program = torch.export.load(str(path))
    x = torch.randn(3, *EXAMPLE[1:])
    torch.testing.assert_close(program.module()(x), model(x), atol=1e-5, rtol=0)
    assert check_pt2(path, model, x, atol=1e-4) <= 1e-4


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_state_dict_loads_weights_only_into_fresh_model(
    cls: type[nn.Module], tmp_path: Path
) -> None:
    model = _trained_like(cls)
    path = export_model(
        model, example_input=torch.randn(EXAMPLE), fmt="state_dict", out_dir=tmp_path
    )
    assert path.suffix == ".pt"
    torch.manual_seed(123)
    fresh = cls().eval()
    x = torch.randn(2, *EXAMPLE[1:])
    assert not torch.allclose(fresh(x), model(x))
    fresh.load_state_dict(torch.load(path, weights_only=True))
    torch.testing.assert_close(fresh(x), model(x), atol=0, rtol=0)


def test_export_puts_model_in_eval_on_cpu(tmp_path: Path) -> None:
    model = _trained_like(TinyCNN).train()
    export_model(model, example_input=torch.randn(EXAMPLE), fmt="state_dict", out_dir=tmp_path)
    assert not model.training
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_unknown_format_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="'tflite'"):
        export_model(TinyCNN(), example_input=torch.randn(EXAMPLE), fmt="tflite", out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_check_raises_when_outputs_differ(tmp_path: Path) -> None:
    model = _trained_like(TinyCNN)
    path = export_model(model, example_input=torch.randn(EXAMPLE), fmt="pt2", out_dir=tmp_path)
    with torch.no_grad():
        model.head.bias.add_(1.0)  # the reference drifts away from the exported program
    with pytest.raises(ExportCheckError, match="exceeds"):
        check_pt2(path, model, torch.randn(EXAMPLE), atol=1e-4)


def test_int8_dynamic_quantization_exports_state_dict_only(tmp_path: Path) -> None:
    model = _trained_like(TinyAttention)
    q = quantize_model(model, precision="int8_dynamic")
    assert model_precision(q) == "int8_dynamic" and model_precision(model) == "fp32"
    assert isinstance(model.qkv, nn.Linear)  # the original is left untouched
    x = torch.randn(2, *EXAMPLE[1:])
    assert (q(x) - model(x)).abs().max() < 0.05  # int8 weights: close, not equal
    path = export_model(q, example_input=x, fmt="state_dict", out_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh = quantize_model(TinyAttention(), precision="int8_dynamic")
    fresh.load_state_dict(torch.load(path, weights_only=True))
    torch.testing.assert_close(fresh(x), q(x), atol=0, rtol=0)
    for fmt in ("onnx", "pt2"):
        with pytest.raises(BadInputError, match="int8_dynamic"):
            export_model(q, example_input=x, fmt=fmt, out_dir=tmp_path)


def test_half_precision_exports(tmp_path: Path) -> None:
    model = _trained_like(TinyCNN)
    fp16 = quantize_model(model, precision="fp16")
    bf16 = quantize_model(model, precision="bf16")
    assert model_precision(fp16) == "fp16" and model_precision(bf16) == "bf16"
    assert SUPPORTED_FORMATS["bf16"] == ("pt2", "state_dict")
    x = torch.randn(EXAMPLE)  # float32: the export casts it to the model's dtype
    path = export_model(bf16, example_input=x, fmt="pt2", out_dir=tmp_path, basename="bf16")
    assert check_pt2(path, bf16, x, atol=1e-2) <= 1e-2
    with pytest.raises(BadInputError, match="bf16"):
        export_model(bf16, example_input=x, fmt="onnx", out_dir=tmp_path)
    pytest.importorskip("onnxruntime")
    path = export_model(fp16, example_input=x, fmt="onnx", out_dir=tmp_path, basename="fp16")
    assert check_onnx(path, fp16, torch.randn(3, *EXAMPLE[1:]), atol=5e-3) <= 5e-3


def test_unknown_precision_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="int4"):
        quantize_model(TinyCNN(), precision="int4")
