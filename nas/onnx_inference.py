"""Per-inference latency and energy of an exported ``.onnx`` model on the CPU (ONNX Runtime).

ONNX Runtime on a CPU is econas's stand-in for an edge target. The figures come from
:func:`nas.inference.measure_inference` (``runtime="onnxruntime"``): warm-up batches outside
the meter window, then batches back to back inside one window of at least
``min_duration_s``, so energy per inference = window energy / predictions. The meter is one
of :mod:`nas.energy`'s (``auto``: RAPL where readable, else the labelled CPU-time estimate),
and its provenance is stored with the figures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import BadInputError

if TYPE_CHECKING:
    from nas.energy import Meter
    from nas.inference import InferenceCost

log = logging.getLogger(__name__)

PREFIX = "onnxruntime_cpu_"


def measure_onnx_inference(
    path: str | Path,
    *,
    input_shape: tuple[int, ...],
    meter: Meter | None = None,
    meter_name: str = "auto",
    batch_size: int = 1,
    min_duration_s: float = 1.0,
) -> InferenceCost:
    """Latency and energy of ``path`` on the CPU with ONNX Runtime (one sample: ``input_shape``)."""
    from nas.energy import create_meter
    from nas.inference import measure_inference

    p = Path(path)
    if p.suffix != ".onnx" or not p.is_file():
        raise BadInputError(f"{p} is not an .onnx file")
    if meter is None:
        meter = create_meter(meter_name, device="cpu")
    return measure_inference(
        str(p),
        input_shape=tuple(input_shape),
        batch_size=batch_size,
        device="cpu",
        meter=meter,
        runtime="onnxruntime",
        min_duration_s=min_duration_s,
    )


def onnx_inference_figures(
    cost: InferenceCost,
    *,
    intensity_g_per_kwh: float | None = None,
    intensity_source: str | None = None,
) -> dict[str, Any]:
    """Flat figures (``onnxruntime_cpu_*``) with kgCO2e per 1k inferences where an intensity
    is given, and the ONNX Runtime version."""
    import onnxruntime

    out = cost.to_attrs(prefix=PREFIX)
    out[f"{PREFIX}version"] = onnxruntime.__version__
    if intensity_g_per_kwh is not None:
        out[f"{PREFIX}kgco2e_per_1k"] = cost.energy_kwh_per_1k * intensity_g_per_kwh / 1000.0
        out[f"{PREFIX}intensity_g_per_kwh"] = intensity_g_per_kwh
        out[f"{PREFIX}intensity_source"] = intensity_source
    return out
