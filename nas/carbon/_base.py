"""Carbon-intensity contract: every source answers "what intensity did work over [start, end) incur"."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CarbonIntensity:
    """A carbon intensity with its provenance.

    ``source`` says where the number came from, e.g. ``"codecarbon:global_energy_mix:FRA"``,
    ``"fixed"`` or ``"trace:gb_2020.csv"``; ``region`` is the code it was looked up with.
    ``forecast_share`` (live sources): the fraction of the interval charged from a forecast
    because no final actual existed yet (None: not a live source). ``fallback_reason``: why a
    live source could not answer and a yearly average was charged instead.
    """

    intensity_g_per_kwh: float
    source: str
    region: str | None = None
    forecast_share: float | None = None
    fallback_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields; the live-source ones only where set."""
        out = asdict(self)
        for key in ("forecast_share", "fallback_reason"):
            if out[key] is None:
                del out[key]
        return out


class IntensitySource(abc.ABC):
    """A source of grid carbon intensity (gCO2e/kWh).

    Static sources (a country's yearly average, a fixed value) ignore the times; time-varying
    sources (traces, live APIs) return the energy-weighted mean over the interval the work
    actually ran, assuming constant power over it. Times are timezone-aware UTC datetimes.
    """

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Short provenance label stored with results."""

    @abc.abstractmethod
    def intensity_over(self, start: datetime, end: datetime) -> CarbonIntensity:
        """Mean intensity incurred by constant-power work running from ``start`` to ``end``."""


def kgco2e(energy_kwh: float, intensity_g_per_kwh: float) -> float:
    """kgCO2e emitted by ``energy_kwh`` drawn at ``intensity_g_per_kwh``: kWh x g/kWh / 1000."""
    return energy_kwh * intensity_g_per_kwh / 1000.0
