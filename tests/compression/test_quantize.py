from __future__ import annotations

import io

import pytest
import torch

from nas.compression import CastInput, quantize, skeleton
from search_spaces import ArchSpec, build_model


@pytest.mark.parametrize("q", ["fp32", "fp16", "bf16", "int8_dynamic", "int8_static"])
def test_deployed_model_round_trips_through_weights_only_state_dict(
    q: str, spec: ArchSpec, x: torch.Tensor
) -> None:
    if q == "int8_static" and spec.family == "vit":
        pytest.skip("static INT8 is for CNNs")
    model = build_model(spec).eval()
    deployed = quantize(model, quantization=q, device=torch.device("cpu"), calibration=[x])
    with torch.no_grad():
        out = deployed(x)
        ref = model(x)
    assert out.dtype == torch.float32 and out.shape == (8, 10)
    tol = {"fp32": 1e-6, "fp16": 5e-2, "bf16": 2e-1}.get(q, 5e-1)
    assert (out - ref).abs().max() < tol  # close to the float model, not identical
    buf = io.BytesIO()
    torch.save(deployed.state_dict(), buf)
    buf.seek(0)
    rebuilt = skeleton(build_model(spec), quantization=q, input_shape=(1, 28, 28))
    rebuilt.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), out)


def test_int8_static_really_quantizes_convs(x: torch.Tensor) -> None:
    from tests.compression.conftest import CNN

    q = quantize(
        build_model(CNN).eval(),
        quantization="int8_static",
        device=torch.device("cpu"),
        calibration=[x],
    )
    kinds = {type(m).__module__ for m in q.modules()}
    assert any(k.startswith("torch.ao.nn.quantized") for k in kinds)
    assert not any(
        isinstance(m, torch.nn.Conv2d) and type(m) is torch.nn.Conv2d for m in q.modules()
    )


def test_cast_input_keeps_float32_interface(x: torch.Tensor) -> None:
    from tests.compression.conftest import CNN

    wrapped = CastInput(build_model(CNN).eval(), torch.bfloat16)
    assert next(wrapped.parameters()).dtype == torch.bfloat16
    assert wrapped(x).dtype == torch.float32
