"""Carbon intensity (gCO2e/kWh) sources and the energy-to-kgCO2e conversion.

Sources: a region's yearly average (codecarbon's data), a fixed value, or a time series
(:class:`Trace`, read by :func:`load_trace` from CSV or a shipped 2020 trace) whose exact mean
over the interval work ran is what :class:`TraceIntensity` charges.
"""

from __future__ import annotations

from nas.carbon._base import CarbonIntensity, IntensitySource, kgco2e
from nas.carbon._static import (
    FixedIntensity,
    RegionIntensity,
    WorldAverageIntensity,
    list_regions,
    resolve_intensity_source,
)
from nas.carbon._trace import Trace, TraceIntensity, to_datetime, to_epoch_s
from nas.carbon._trace_io import SHIPPED_TRACES, load_trace, parse_time

__all__ = [
    "SHIPPED_TRACES",
    "Trace",
    "TraceIntensity",
    "load_trace",
    "parse_time",
    "to_datetime",
    "to_epoch_s",
    "CarbonIntensity",
    "FixedIntensity",
    "IntensitySource",
    "RegionIntensity",
    "WorldAverageIntensity",
    "kgco2e",
    "list_regions",
    "resolve_intensity_source",
]
