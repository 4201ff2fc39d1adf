"""The intensity source over a trace: :class:`TraceIntensity` charges work the trace's exact
mean over the interval it ran (a shipped trace's name or a CSV path is read with
:func:`~nas.carbon.load_trace`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from nas.carbon._base import CarbonIntensity, IntensitySource
from nas.carbon._trace import Trace, to_epoch_s
from nas.carbon._trace_io import load_trace

__all__ = ["TraceIntensity"]


class TraceIntensity(IntensitySource):
    """:class:`IntensitySource` over a trace: the exact mean over the interval the work ran.

    ``source`` is ``"trace:<file name>"``; ``region`` defaults to the trace's region label.
    """

    def __init__(self, *, trace: Trace | str | Path, region: str | None = None) -> None:
        if not isinstance(trace, Trace):
            trace = load_trace(trace)
        self._trace = trace
        self._region = region if region is not None else trace.region

    @property
    def name(self) -> str:
        return f"trace:{self._trace.name}"

    @property
    def trace(self) -> Trace:
        return self._trace

    def intensity_over(self, start: datetime, end: datetime) -> CarbonIntensity:
        a, b = to_epoch_s(start), to_epoch_s(end)
        mean = float(self._trace.mean_over(np.asarray(a), np.asarray(b)))
        return CarbonIntensity(intensity_g_per_kwh=mean, source=self.name, region=self._region)
