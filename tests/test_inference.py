"""nas.inference: latency and energy per prediction measured inside one meter window."""

from __future__ import annotations

import json
import math
from dataclasses import FrozenInstanceError, dataclass, field
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import BadInputError
from nas.inference import InferenceCost, measure_inference

SHAPE = (3, 16, 16)


class CountingCNN(nn.Module):
    """A small CNN that counts its forward calls and whether they ran in inference mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)
        self.calls = 0
        self.inference_mode_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.inference_mode_calls += int(torch.is_inference_mode_enabled())
        return self.head(F.relu(self.conv(x)).mean(dim=(2, 3)))  # (B, 10)


@dataclass
class FakeMeasurement:
    duration_s: float
    total_energy_j: float
    source: str = "fake"
    kind: str = "estimated"
    hardware: str = "test cpu"

    @property
    def energy_kwh(self) -> float:
        return self.total_energy_j / 3.6e6


@dataclass
class FakeMeter:
    """Reports a fixed energy per window and records what ran when."""

    energy_j: float
    model: CountingCNN | None = None
    events: list[tuple[str, str, int]] = field(default_factory=list)

    def _calls(self) -> int:
        return self.model.calls if self.model is not None else -1

    def begin_window(self, name: str) -> None:
        self.events.append(("begin", name, self._calls()))

    def end_window(self, name: str) -> FakeMeasurement:
        self.events.append(("end", name, self._calls()))
        return FakeMeasurement(duration_s=0.25, total_energy_j=self.energy_j)


def test_energy_per_sample_is_window_energy_over_samples() -> None:
    model = CountingCNN()
    meter = FakeMeter(energy_j=3.0, model=model)
    cost = measure_inference(
        model, input_shape=SHAPE, batch_size=4, meter=meter, min_duration_s=0.2, warmup=3
    )
    (begin, name, at_begin), (end, end_name, at_end) = meter.events
    assert (begin, end, name, end_name) == ("begin", "end", "inference", "inference")
    assert at_begin == 3  # warm-up batches ran before the window opened
    batches = at_end - at_begin
    assert batches >= 1 and cost.samples == batches * 4
    assert model.calls == model.inference_mode_calls  # everything under torch.inference_mode()
    assert cost.energy_j_per_sample == pytest.approx(3.0 / cost.samples)
    assert cost.energy_kwh_per_1k == pytest.approx(cost.energy_j_per_sample * 1000 / 3.6e6)
    assert 0 < cost.latency_ms <= cost.latency_p90_ms
    # the loop only stops once min_duration_s has passed: samples/throughput is the window
    assert cost.samples / cost.throughput_per_s >= 0.2
    assert (cost.runtime, cost.device, cost.batch_size) == ("torch", "cpu", 4)
    with pytest.raises(FrozenInstanceError):
        cost.samples = 1  # type: ignore[misc]


def test_max_batches_caps_the_window_and_warns() -> None:
    model = CountingCNN()
    with pytest.warns(RuntimeWarning, match="max_batches=2"):
        cost = measure_inference(
            model,
            input_shape=SHAPE,
            batch_size=2,
            meter=FakeMeter(energy_j=1.0),
            min_duration_s=30.0,
            max_batches=2,
            warmup=0,
        )
    assert cost.samples == 4 and model.calls == 2


def test_zero_energy_is_not_silent() -> None:
    with pytest.warns(RuntimeWarning, match="0.0 J"):
        measure_inference(
            CountingCNN(), input_shape=SHAPE, meter=FakeMeter(energy_j=0.0), min_duration_s=0.05
        )


def test_real_meter_on_this_machine_is_labelled_estimated() -> None:
    from nas.energy import create_meter

    meter = create_meter("auto", device="cpu")
    cost = measure_inference(
        CountingCNN(), input_shape=SHAPE, batch_size=8, meter=meter, min_duration_s=0.2
    )
    assert isinstance(cost, InferenceCost)
    assert cost.latency_ms > 0 and cost.energy_j_per_sample > 0 and cost.throughput_per_s > 0
    assert math.isclose(cost.energy_kwh_per_1k, cost.energy_j_per_sample * 1000 / 3.6e6)
    assert cost.samples % 8 == 0
    assert cost.measurement.kind == "estimated"  # no GPU, no RAPL here
    assert cost.energy_j_per_sample == pytest.approx(cost.measurement.total_energy_j / cost.samples)
    attrs = cost.to_attrs()
    assert attrs["inference_energy_kind"] == "estimated"
    assert attrs["inference_energy_source"] == cost.measurement.source
    assert attrs["inference_latency_ms"] == cost.latency_ms
    assert attrs["inference_energy_kwh_per_1k"] == cost.energy_kwh_per_1k
    json.dumps(attrs)  # storable as Optuna user attrs


def test_to_attrs_is_flat_with_units_and_prefix() -> None:
    cost = measure_inference(
        CountingCNN(), input_shape=SHAPE, meter=FakeMeter(energy_j=2.0), min_duration_s=0.05
    )
    attrs = cost.to_attrs(prefix="inf_")
    assert all(k.startswith("inf_") for k in attrs)
    assert attrs["inf_energy_source"] == "fake" and attrs["inf_energy_kind"] == "estimated"
    assert attrs["inf_window_energy_j"] == 2.0 and attrs["inf_samples"] == cost.samples
    assert {
        "inf_latency_ms",
        "inf_latency_p90_ms",
        "inf_throughput_per_s",
        "inf_energy_j_per_sample",
    } <= set(attrs)
    assert all(isinstance(v, str | int | float) for v in attrs.values())


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_onnxruntime_path(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from nas.export import export_model

    model = CountingCNN().eval()
    path = export_model(model, example_input=torch.randn(1, *SHAPE), fmt="onnx", out_dir=tmp_path)
    calls_before = model.calls
    cost = measure_inference(
        path,
        input_shape=SHAPE,
        batch_size=4,
        runtime="onnxruntime",
        meter=FakeMeter(energy_j=1.5),
        min_duration_s=0.2,
    )
    assert model.calls == calls_before  # onnxruntime ran the file, not the module
    assert cost.runtime == "onnxruntime" and cost.samples % 4 == 0 and cost.samples >= 4
    assert cost.latency_ms > 0 and cost.energy_j_per_sample == pytest.approx(1.5 / cost.samples)
    with pytest.raises(BadInputError, match="shape"):
        measure_inference(
            path, input_shape=(3, 8, 8), runtime="onnxruntime", meter=FakeMeter(energy_j=1.0)
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"runtime": "tensorrt"}, "tensorrt"),
        ({"batch_size": 0}, "batch_size"),
        ({"min_duration_s": 0.0}, "min_duration_s"),
        ({"input_shape": (3, 0, 16)}, "input_shape"),
        ({"runtime": "onnxruntime"}, ".onnx file"),
    ],
)
def test_bad_input(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"input_shape": SHAPE, "meter": FakeMeter(energy_j=1.0)} | kwargs
    with pytest.raises(BadInputError, match=match):
        measure_inference(CountingCNN(), **args)  # type: ignore[arg-type]


def test_torch_runtime_needs_a_module_and_an_available_device(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="nn.Module"):
        measure_inference(tmp_path / "model.onnx", input_shape=SHAPE, meter=FakeMeter(energy_j=1.0))
    if not torch.cuda.is_available():
        with pytest.raises(BadInputError, match="no CUDA GPU"):
            measure_inference(
                CountingCNN(), input_shape=SHAPE, device="cuda", meter=FakeMeter(energy_j=1.0)
            )


class StallingCNN(CountingCNN):
    """Its first timed batch stalls, as a batch preempted on a busy CPU does."""

    def __init__(self, stall_s: float) -> None:
        super().__init__()
        self.stall_s = stall_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calls == 1:  # after the one warm-up batch
            import time

            time.sleep(self.stall_s)  # a stall to be outvoted, not a timing
        return super().forward(x)


def test_a_single_stalled_batch_is_not_the_median() -> None:
    """min_duration_s shorter than one stalled batch measured 1 batch: its time was "median"."""
    from nas.inference import MIN_BATCHES

    model = StallingCNN(stall_s=0.3)
    cost = measure_inference(
        model, input_shape=SHAPE, meter=FakeMeter(energy_j=1.0), min_duration_s=0.01, warmup=1
    )
    assert cost.samples >= MIN_BATCHES  # enough batches for a median
    assert cost.latency_ms < 300.0 / 2  # the stall is one of >= 10: not the median
