"""Carbon-intensity forecasters: decide with what is known at decision time, never more.

Forecasters work on a regular slot grid (a resampled :class:`~nas.scheduling.Trace`). The
only way the scheduler calls them is :func:`forecast_at`, which hands a forecaster a *copy* of
the slots that ended at or before the decision time, at most ``history_slots`` of them, so a
forecaster cannot read the future even by accident. The single exception is
:class:`OracleForecaster` (``perfect_foresight = True``), which receives the actual future: it is
an upper bound for evaluating policies, never something a real run can use.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from nas.errors import BadInputError

__all__ = [
    "FORECASTERS",
    "Forecaster",
    "OracleForecaster",
    "PersistenceForecaster",
    "SeasonalForecaster",
    "create_forecaster",
    "forecast_at",
    "forecast_matrix",
]

DAY_S = 86_400


def _slots_per_day(slot_s: int) -> int:
    if slot_s <= 0 or DAY_S % slot_s:
        raise BadInputError(f"forecasts need slots that divide a day; got {slot_s} s")
    return DAY_S // slot_s


def _tile_day(day: np.ndarray, start_phase: int, horizon_slots: int) -> np.ndarray:
    """Repeat a one-day profile (indexed by phase) from ``start_phase`` for the horizon."""
    phases = (start_phase + np.arange(horizon_slots)) % day.size
    return day[phases]


class Forecaster(abc.ABC):
    """Predicts the intensity of the next ``horizon_slots`` slots from past slots only.

    Contract: :meth:`predict` receives ``past_g_per_kwh``, the values of the slots that ended
    at or before the decision time (oldest first; possibly empty at the start of a trace),
    and returns ``horizon_slots`` finite predictions, the first for the slot starting at the
    decision time. Only forecasters with ``perfect_foresight = True`` are given
    ``future_g_per_kwh``; for all others it is ``None``. Predictions are used to *rank*
    slots and regions, so a forecaster that knows nothing should return a constant.
    """

    perfect_foresight: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """CLI name: ``persistence``, ``seasonal``, ``oracle``."""

    @abc.abstractmethod
    def history_slots(self, slot_s: int) -> int:
        """How many past slots :meth:`predict` reads at most (the caller passes no more)."""

    @abc.abstractmethod
    def predict(
        self,
        past_g_per_kwh: np.ndarray,
        *,
        slot_s: int,
        horizon_slots: int,
        future_g_per_kwh: np.ndarray | None = None,
    ) -> np.ndarray:
        """Forecast (gCO2e/kWh) for the ``horizon_slots`` slots from the decision time on."""


class PersistenceForecaster(Forecaster):
    """Tomorrow looks like today: the last 24 h repeated (the last value while < 24 h known)."""

    @property
    def name(self) -> str:
        return "persistence"

    def history_slots(self, slot_s: int) -> int:
        return _slots_per_day(slot_s)

    def predict(
        self,
        past_g_per_kwh: np.ndarray,
        *,
        slot_s: int,
        horizon_slots: int,
        future_g_per_kwh: np.ndarray | None = None,
    ) -> np.ndarray:
        spd = _slots_per_day(slot_s)
        if past_g_per_kwh.size >= spd:
            return _tile_day(past_g_per_kwh[-spd:], 0, horizon_slots)
        level = float(past_g_per_kwh[-1]) if past_g_per_kwh.size else 0.0
        return np.full(horizon_slots, level)


class SeasonalForecaster(Forecaster):
    """Daily profile of the last ``days`` days, plus the current deviation decaying away.

    1. Profile: for each time of day, the mean of that time of day over the last ``days``
       whole days, blended as ``persistence_weight`` x the last day's value +
       (1 - ``persistence_weight``) x that mean.
    2. Current level: the last known slot's deviation from the profile is added to the
       forecast, decaying with half-life ``halflife_hours`` into the horizon (an unusually
       windy hour stays unusual for a while, then the grid reverts to its usual pattern).

    Defaults (14 days, weight 0, half-life 24 h) were chosen on the shipped 2020 traces with
    ``benchmarks/scheduling.py``; the alternatives tried there are listed in its docstring.
    With less than one day of history it predicts the last known value (0 with none).
    """

    def __init__(
        self,
        *,
        days: int = 14,
        persistence_weight: float = 0.0,
        halflife_hours: float = 24.0,
    ) -> None:
        if days < 1:
            raise BadInputError(f"seasonal forecaster: days must be >= 1, got {days}")
        if not 0.0 <= persistence_weight <= 1.0:
            raise BadInputError("seasonal forecaster: persistence_weight must be in [0, 1]")
        if halflife_hours < 0:
            raise BadInputError("seasonal forecaster: halflife_hours must be >= 0")
        self.days = days
        self.persistence_weight = persistence_weight
        self.halflife_hours = halflife_hours

    @property
    def name(self) -> str:
        return "seasonal"

    def history_slots(self, slot_s: int) -> int:
        return self.days * _slots_per_day(slot_s)

    def predict(
        self,
        past_g_per_kwh: np.ndarray,
        *,
        slot_s: int,
        horizon_slots: int,
        future_g_per_kwh: np.ndarray | None = None,
    ) -> np.ndarray:
        spd = _slots_per_day(slot_s)
        past = past_g_per_kwh
        if past.size < spd:
            return np.full(horizon_slots, float(past[-1]) if past.size else 0.0)
        whole = min(self.days, past.size // spd)
        days = past[past.size - whole * spd :].reshape(whole, spd)  # (days, slots per day)
        w = self.persistence_weight
        profile = w * days[-1] + (1.0 - w) * days.mean(axis=0)  # phase 0 = slot after the past
        forecast = _tile_day(profile, 0, horizon_slots)
        if self.halflife_hours > 0:
            deviation = past[-1] - profile[-1]
            steps = np.arange(1, horizon_slots + 1) * (slot_s / 3600.0)
            forecast = forecast + deviation * np.power(0.5, steps / self.halflife_hours)
        return np.maximum(forecast, 0.0)


class OracleForecaster(Forecaster):
    """Perfect foresight: returns the actual future. An UPPER BOUND for evaluation only."""

    perfect_foresight: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return "oracle"

    def history_slots(self, slot_s: int) -> int:
        return 0

    def predict(
        self,
        past_g_per_kwh: np.ndarray,
        *,
        slot_s: int,
        horizon_slots: int,
        future_g_per_kwh: np.ndarray | None = None,
    ) -> np.ndarray:
        if future_g_per_kwh is None or future_g_per_kwh.size < horizon_slots:
            raise BadInputError("oracle forecast: the actual future is not available here")
        return np.asarray(future_g_per_kwh[:horizon_slots], dtype=np.float64)


FORECASTERS = ("persistence", "seasonal", "oracle")


def create_forecaster(name: str | Forecaster) -> Forecaster:
    """A forecaster by CLI name (``persistence``, ``seasonal``, ``oracle``), default settings."""
    if isinstance(name, Forecaster):
        return name
    table: dict[str, type[Forecaster]] = {
        "persistence": PersistenceForecaster,
        "seasonal": SeasonalForecaster,
        "oracle": OracleForecaster,
    }
    if name not in table:
        raise BadInputError(f"unknown forecast {name!r}; choose from {', '.join(FORECASTERS)}")
    return table[name]()


def forecast_at(
    forecaster: Forecaster,
    values_g_per_kwh: np.ndarray,
    index: int,
    *,
    slot_s: int,
    horizon_slots: int,
) -> np.ndarray:
    """Forecast the slots ``index .. index + horizon_slots - 1`` deciding at slot ``index``.

    The forecaster gets a copy of at most ``history_slots`` values before ``index``; only a
    perfect-foresight (oracle) forecaster also gets the actual values of the horizon.
    """
    lookback = forecaster.history_slots(slot_s)
    past = values_g_per_kwh[max(0, index - lookback) : index].copy()
    future = None
    if forecaster.perfect_foresight:
        future = values_g_per_kwh[index : index + horizon_slots].copy()
    out = np.asarray(
        forecaster.predict(
            past, slot_s=slot_s, horizon_slots=horizon_slots, future_g_per_kwh=future
        ),
        dtype=np.float64,
    )
    if out.shape != (horizon_slots,) or not np.all(np.isfinite(out)):
        raise ValueError(f"forecaster {forecaster.name} returned a bad forecast {out.shape}")
    return out


def forecast_matrix(
    forecaster: Forecaster,
    values_g_per_kwh: np.ndarray,
    indices: np.ndarray,
    *,
    slot_s: int,
    horizon_slots: int,
) -> np.ndarray:
    """Forecasts for many decision slots, shape (len(indices), horizon_slots)."""
    out = np.empty((len(indices), horizon_slots), dtype=np.float64)
    for row, index in enumerate(np.asarray(indices).tolist()):
        out[row] = forecast_at(
            forecaster, values_g_per_kwh, index, slot_s=slot_s, horizon_slots=horizon_slots
        )
    return out
