"""Units people read on a plot: kgCO2e and kWh scaled so the numbers on an axis are >= 1.

A log axis in kgCO2e labels ticks ``2 3 4 ... 10µ`` (only the last tick carries the SI
prefix, so ``2`` reads as 2 kg). The figures scale their data instead: the unit goes in the
axis title, the ticks are plain numbers.

    unit = carbon_unit([2e-6, 8e-6])   # Unit("mgCO2e", 1e6)
    xs = unit.scale([2e-6, 8e-6])      # [2.0, 8.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    """A display unit: ``name`` (``mgCO2e``) and ``factor`` (display value = stored x factor)."""

    name: str
    factor: float

    def scale(self, values: Iterable[float]) -> list[float]:
        return [v * self.factor for v in values]

    def __call__(self, value: float) -> float:
        return value * self.factor


CARBON_UNITS: tuple[Unit, ...] = (
    Unit("kgCO2e", 1.0),
    Unit("gCO2e", 1e3),
    Unit("mgCO2e", 1e6),
    Unit("µgCO2e", 1e9),
)
ENERGY_UNITS: tuple[Unit, ...] = (
    Unit("kWh", 1.0),
    Unit("Wh", 1e3),
    Unit("mWh", 1e6),
    Unit("µWh", 1e9),
)


def _pick(values: Iterable[float], units: Sequence[Unit]) -> Unit:
    """The largest unit in which the smallest positive value is at least 1 (the smallest
    unit when even that is not enough; the largest when nothing is positive)."""
    positive = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    if not positive:
        return units[0]
    low = min(positive)
    for unit in units:
        if low * unit.factor >= 1:
            return unit
    return units[-1]


def carbon_unit(values_kgco2e: Iterable[float]) -> Unit:
    """kgCO2e, gCO2e, mgCO2e or µgCO2e for these kgCO2e values (see :func:`_pick`)."""
    return _pick(values_kgco2e, CARBON_UNITS)


def energy_unit(values_kwh: Iterable[float]) -> Unit:
    """kWh, Wh, mWh or µWh for these kWh values."""
    return _pick(values_kwh, ENERGY_UNITS)


def kind_note(kinds: Iterable[object]) -> str:
    """``" (energy estimated)"`` when every figure is estimated, ``" (energy partly
    estimated)"`` when some are, else ``""``: what a plot's title says about its energy."""
    seen = {str(k) for k in kinds if k}
    if "estimated" not in seen:
        return ""
    return " (energy estimated)" if seen == {"estimated"} else " (energy partly estimated)"
