"""nas.onnx_inference: ONNX Runtime CPU latency and energy per inference, inside a meter window."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from nas.energy import EstimateMeter
from nas.errors import BadInputError
from nas.export import export_model
from nas.onnx_inference import PREFIX, measure_onnx_inference, onnx_inference_figures

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 28 * 28, 10)
    )
    out = tmp_path_factory.mktemp("onnx")
    return export_model(model, example_input=torch.randn(1, 1, 28, 28), fmt="onnx", out_dir=out)


def test_measures_per_inference_energy_in_one_window(onnx_path: Path) -> None:
    cost = measure_onnx_inference(
        onnx_path, input_shape=(1, 28, 28), meter=EstimateMeter(), batch_size=2, min_duration_s=0.05
    )  # 0.05 s: the AMD EPYC ran its 10,000-batch cap in 0.15 s, short of 0.2
    m = cost.measurement
    assert cost.runtime == "onnxruntime" and cost.device == "cpu" and cost.batch_size == 2
    assert m.duration_s >= 0.05 and cost.samples % 2 == 0 and cost.samples >= 2
    assert cost.energy_j_per_sample == pytest.approx(m.total_energy_j / cost.samples)
    assert cost.energy_kwh_per_1k == pytest.approx(cost.energy_j_per_sample * 1000 / 3.6e6)
    assert cost.energy_j_per_sample > 0 and cost.latency_ms > 0 and m.kind == "estimated"


def test_figures_carry_carbon_and_provenance(onnx_path: Path) -> None:
    cost = measure_onnx_inference(
        onnx_path, input_shape=(1, 28, 28), meter=EstimateMeter(), min_duration_s=0.1
    )
    figs = onnx_inference_figures(cost, intensity_g_per_kwh=50.0, intensity_source="fixed")
    assert figs[f"{PREFIX}kgco2e_per_1k"] == pytest.approx(cost.energy_kwh_per_1k * 0.05)
    assert (
        figs[f"{PREFIX}energy_source"] == "estimate" and figs[f"{PREFIX}energy_kind"] == "estimated"
    )
    assert figs[f"{PREFIX}version"]


def test_rejects_what_is_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"x")
    with pytest.raises(BadInputError, match="not an .onnx file"):
        measure_onnx_inference(bad, input_shape=(1, 28, 28), meter=EstimateMeter())
    with pytest.raises(BadInputError):
        measure_onnx_inference(
            tmp_path / "missing.onnx", input_shape=(1, 28, 28), meter=EstimateMeter()
        )
