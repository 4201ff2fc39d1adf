"""Carbon intensity (gCO2e/kWh) sources and the energy-to-kgCO2e conversion."""

from __future__ import annotations

from nas.carbon._base import CarbonIntensity, IntensitySource, kgco2e
from nas.carbon._static import (
    FixedIntensity,
    RegionIntensity,
    WorldAverageIntensity,
    list_regions,
    resolve_intensity_source,
)

__all__ = [
    "CarbonIntensity",
    "FixedIntensity",
    "IntensitySource",
    "RegionIntensity",
    "WorldAverageIntensity",
    "kgco2e",
    "list_regions",
    "resolve_intensity_source",
]
