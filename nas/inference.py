"""Measured inference cost: latency per batch and energy per prediction, inside a meter window.

Warm-up batches run first (outside the window); then batches run back to back inside one
meter window until ``min_duration_s`` has passed, so the energy per sample is the window's
energy divided by the samples predicted in it, over a window long enough to measure.
Per-batch latency comes from ``time.perf_counter`` (CUDA synchronised after each batch).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nas.errors import BadInputError

if TYPE_CHECKING:
    from nas.energy import Measurement, Meter

RUNTIMES = ("torch", "onnxruntime")
# At least this many timed batches, however long min_duration_s: with one or two, a single
# preempted batch (a shared CPU) becomes the "median" (a 6k-parameter CNN at 223 ms).
MIN_BATCHES = 10
J_PER_KWH = 3.6e6
WINDOW_NAME = "inference"


@dataclass(frozen=True)
class InferenceCost:
    """Inference figures of one model at one batch size, with the energy's provenance."""

    runtime: str
    device: str
    batch_size: int
    threads: int  # the runtime's intra-op CPU threads (torch's; ONNX Runtime's set to the same)
    samples: int
    latency_ms: float  # median per batch
    latency_p90_ms: float
    throughput_per_s: float
    energy_j_per_sample: float
    energy_kwh_per_1k: float  # energy of 1,000 predictions
    measurement: Measurement

    def to_attrs(self, prefix: str = "inference_") -> dict[str, Any]:
        """Flat, JSON-friendly figures with units in the names (e.g. for Optuna user attrs)."""
        m = self.measurement
        return {
            f"{prefix}runtime": self.runtime,
            f"{prefix}device": self.device,
            f"{prefix}batch_size": self.batch_size,
            f"{prefix}threads": self.threads,
            f"{prefix}samples": self.samples,
            f"{prefix}latency_ms": self.latency_ms,
            f"{prefix}latency_p90_ms": self.latency_p90_ms,
            f"{prefix}throughput_per_s": self.throughput_per_s,
            f"{prefix}energy_j_per_sample": self.energy_j_per_sample,
            f"{prefix}energy_kwh_per_1k": self.energy_kwh_per_1k,
            f"{prefix}window_duration_s": float(m.duration_s),
            f"{prefix}window_energy_j": float(m.total_energy_j),
            f"{prefix}energy_source": m.source,
            f"{prefix}energy_kind": m.kind,
            f"{prefix}energy_hardware": str(m.hardware),
        }


def measure_inference(
    model: nn.Module | str | Path,
    *,
    input_shape: tuple[int, ...],
    batch_size: int = 1,
    device: str = "cpu",
    meter: Meter,
    runtime: str = "torch",
    min_duration_s: float = 1.0,
    warmup: int = 3,
    max_batches: int = 10_000,
    min_batches: int = MIN_BATCHES,
) -> InferenceCost:
    """Measure latency and energy of predicting random inputs of ``input_shape`` (one sample).

    ``runtime="torch"`` takes an ``nn.Module`` (put in eval mode and moved to ``device``);
    ``runtime="onnxruntime"`` takes the path of an ``.onnx`` file. The window runs at least
    ``min_duration_s`` and at least ``min_batches`` batches (so the median latency is a
    median), and stops at ``max_batches`` batches in any case. Both runtimes run with
    torch's intra-op thread count (``torch.get_num_threads()``), recorded as ``threads``.
    """
    _validate(input_shape, batch_size, min_duration_s, warmup, max_batches)
    threads = torch.get_num_threads()
    if runtime == "torch":
        run_batch, device = _torch_runner(model, input_shape, batch_size, device)
    elif runtime == "onnxruntime":
        run_batch, device = _ort_runner(model, input_shape, batch_size, device, threads)
    else:
        raise BadInputError(
            f"inference runtime {runtime!r} is unknown; use one of {list(RUNTIMES)}"
        )

    with torch.inference_mode():
        for _ in range(warmup):
            run_batch()
        latencies_s: list[float] = []
        meter.begin_window(WINDOW_NAME)
        try:
            start = time.perf_counter()
            elapsed_s = 0.0
            floor = min(min_batches, max_batches)
            while (elapsed_s < min_duration_s or len(latencies_s) < floor) and len(
                latencies_s
            ) < max_batches:
                t0 = time.perf_counter()
                run_batch()
                t1 = time.perf_counter()
                latencies_s.append(t1 - t0)
                elapsed_s = t1 - start
        finally:
            measurement = meter.end_window(WINDOW_NAME)

    if elapsed_s < min_duration_s:
        warnings.warn(
            f"inference window stopped at max_batches={max_batches} after {elapsed_s:.3f} s, "
            f"shorter than min_duration_s={min_duration_s}; the energy figure is less precise",
            RuntimeWarning,
            stacklevel=2,
        )
    energy_j = float(measurement.total_energy_j)
    if not energy_j > 0:
        warnings.warn(
            f"the {measurement.source} meter reported {energy_j} J for the inference window",
            RuntimeWarning,
            stacklevel=2,
        )
    samples = len(latencies_s) * batch_size
    lat_ms = np.asarray(latencies_s) * 1e3
    energy_j_per_sample = energy_j / samples
    return InferenceCost(
        runtime=runtime,
        device=device,
        batch_size=batch_size,
        threads=threads,
        samples=samples,
        latency_ms=float(np.median(lat_ms)),
        latency_p90_ms=float(np.percentile(lat_ms, 90)),
        throughput_per_s=samples / elapsed_s,
        energy_j_per_sample=energy_j_per_sample,
        energy_kwh_per_1k=energy_j_per_sample * 1000 / J_PER_KWH,
        measurement=measurement,
    )


def _validate(
    input_shape: tuple[int, ...],
    batch_size: int,
    min_duration_s: float,
    warmup: int,
    max_batches: int,
) -> None:
    if not input_shape or any(not isinstance(d, int) or d < 1 for d in input_shape):
        raise BadInputError(
            f"input_shape must be positive ints (one sample, e.g. C,H,W), got {input_shape!r}"
        )
    if batch_size < 1:
        raise BadInputError(f"inference batch_size must be >= 1, got {batch_size}")
    if not min_duration_s > 0:
        raise BadInputError(f"inference min_duration_s must be > 0, got {min_duration_s}")
    if warmup < 0 or max_batches < 1:
        raise BadInputError(
            f"inference needs warmup >= 0 and max_batches >= 1, got {warmup}, {max_batches}"
        )


def _torch_runner(
    model: nn.Module | str | Path, input_shape: tuple[int, ...], batch_size: int, device: str
) -> tuple[Callable[[], object], str]:
    if not isinstance(model, nn.Module):
        raise BadInputError(
            "runtime 'torch' needs an nn.Module; pass runtime='onnxruntime' for a file"
        )
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise BadInputError(f"device {device!r} is not a torch device") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"device {device!r} was asked for but no CUDA GPU is available")
    model.eval().to(dev)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = torch.randn(batch_size, *input_shape, dtype=dtype, device=dev)
    if dev.type == "cuda":

        def run_batch() -> object:
            out = model(x)
            torch.cuda.synchronize(dev)
            return out

        return run_batch, str(dev)
    return lambda: model(x), str(dev)


def _ort_runner(
    model: nn.Module | str | Path,
    input_shape: tuple[int, ...],
    batch_size: int,
    device: str,
    threads: int,
) -> tuple[Callable[[], object], str]:
    if isinstance(model, nn.Module) or not Path(model).is_file():
        raise BadInputError(f"runtime 'onnxruntime' needs the path of an .onnx file, got {model!r}")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImportError(
            "onnxruntime is needed for runtime='onnxruntime': pip install onnxruntime"
        ) from exc
    kind = device.split(":")[0]
    providers = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
    if kind not in providers:
        raise BadInputError(
            f"device {device!r} is not supported by runtime 'onnxruntime'; use cpu or cuda"
        )
    if providers[kind] not in ort.get_available_providers():
        raise BadInputError(
            f"device {device!r} was asked for but onnxruntime has no {providers[kind]}"
        )
    options: list[Any] = [providers[kind]]
    if kind == "cuda" and ":" in device:
        index = device.split(":", 1)[1]
        if not index.isdigit():
            raise BadInputError(f"device {device!r} is not a cuda device index")
        options = [(providers[kind], {"device_id": int(index)})]
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads  # as torch's: the two runtimes' figures compare
    try:
        session = ort.InferenceSession(str(model), sess_options=so, providers=options)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise BadInputError(f"onnxruntime cannot load {model}: {str(exc).splitlines()[0]}") from exc
    inp = session.get_inputs()[0]
    want = (batch_size, *input_shape)
    if len(inp.shape) != len(want) or any(
        isinstance(d, int) and d != w for d, w in zip(inp.shape, want, strict=True)
    ):
        raise BadInputError(f"{model} takes input of shape {inp.shape}, not {list(want)}")
    np_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    x = np.random.default_rng(0).standard_normal(want).astype(np_dtype)
    feed = {inp.name: x}
    return lambda: session.run(None, feed), device
