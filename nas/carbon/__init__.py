"""Carbon intensity (gCO2e/kWh) sources, their resolution, and the energy-to-kgCO2e conversion.

Sources (each an :class:`IntensitySource` answering ``intensity_over(start, end)`` with a
:class:`CarbonIntensity` that names its source):

- Static: a region's yearly average (:class:`RegionIntensity`, codecarbon's data; see
  :func:`list_regions`), a fixed value (:class:`FixedIntensity`), the world average.
- Traces: a time series (:class:`Trace`, read by :func:`load_trace` from CSV, an Electricity
  Maps export or a shipped 2020 trace such as ``"gb_2020"``) whose exact mean over the
  interval work ran is what :class:`TraceIntensity` charges.
- Live providers: :class:`ElectricityMapsIntensity`, :class:`WattTimeIntensity`,
  :class:`UKCarbonIntensity` (latest, history, the provider's forecast; retries, an on-disk
  reply cache, no credential ever shown); :class:`CarbonSourceUnavailableError` when they
  cannot answer, and :class:`FallbackIntensity`, which charges the country's yearly average
  instead so that no trial is lost.

Resolution: :func:`resolve_intensity_source` (``region`` or ``intensity_g_per_kwh``) and
:func:`resolve_carbon_source` (also ``source = "live:PROVIDER[:REGION]"`` or ``"trace:..."``,
checked by :func:`parse_source`; :func:`create_live_source` builds a provider's client,
:func:`region_specs` the regions of ``--regions``). :func:`kgco2e` converts energy.

A leaf package: it imports nothing of econas but :mod:`nas.errors` (no Optuna, no config);
:func:`nas.config.config_intensity` reads a study's ``[carbon]`` section into these calls.
"""

from __future__ import annotations

from nas.carbon._base import CarbonIntensity, IntensitySource, kgco2e
from nas.carbon._live import CarbonSourceUnavailableError, LiveIntensitySource, Points, public_url
from nas.carbon._live_sources import ElectricityMapsIntensity, UKCarbonIntensity, WattTimeIntensity
from nas.carbon._resolve import (
    PROVIDERS,
    FallbackIntensity,
    LiveSpec,
    create_live_source,
    parse_source,
    region_specs,
    resolve_carbon_source,
)
from nas.carbon._static import (
    FixedIntensity,
    RegionIntensity,
    WorldAverageIntensity,
    list_regions,
    resolve_intensity_source,
)
from nas.carbon._trace import Trace, to_datetime, to_epoch_s
from nas.carbon._trace_io import SHIPPED_TRACES, load_trace, parse_time
from nas.carbon._trace_source import TraceIntensity

__all__ = [
    "PROVIDERS",
    "SHIPPED_TRACES",
    "CarbonIntensity",
    "CarbonSourceUnavailableError",
    "ElectricityMapsIntensity",
    "FallbackIntensity",
    "FixedIntensity",
    "IntensitySource",
    "LiveIntensitySource",
    "LiveSpec",
    "Points",
    "RegionIntensity",
    "Trace",
    "TraceIntensity",
    "UKCarbonIntensity",
    "WattTimeIntensity",
    "WorldAverageIntensity",
    "create_live_source",
    "kgco2e",
    "list_regions",
    "load_trace",
    "parse_source",
    "parse_time",
    "public_url",
    "region_specs",
    "resolve_carbon_source",
    "resolve_intensity_source",
    "to_datetime",
    "to_epoch_s",
]
