"""A carbon-intensity time series: piecewise constant, integrated exactly over any interval.

Semantics: value ``i`` holds from ``times_s[i]`` until ``times_s[i + 1]`` (the last one until
``end_s``). A gap in the data is therefore filled by holding the previous value; how long the
longest such hold is beyond the trace's usual step is :attr:`Trace.max_gap_s`, which callers
compare with the job length (a gap longer than the job is refused, see ``check_gaps``).

The integral of a piecewise-constant function is piecewise linear, so the cumulative integral
at the knots plus ``np.interp`` gives the exact integral over any interval, vectorised.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from nas.errors import BadInputError

__all__ = ["Trace", "to_epoch_s", "to_datetime"]


def to_epoch_s(when: datetime | int | float) -> float:
    """UTC epoch seconds of a timezone-aware datetime (numbers pass through as float)."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise BadInputError(
                f"time {when.isoformat()} has no timezone; give a UTC-aware datetime"
            )
        return when.timestamp()
    return float(when)


def to_datetime(epoch_s: int | float | np.integer | np.floating) -> datetime:
    """Timezone-aware UTC datetime of epoch seconds."""
    return datetime.fromtimestamp(float(epoch_s), tz=UTC)


def _fmt(epoch_s: int | float | np.integer) -> str:
    return to_datetime(epoch_s).strftime("%Y-%m-%d %H:%M")


class Trace:
    """Carbon intensity (gCO2e/kWh) over time, piecewise constant between timestamps.

    ``times_s`` are strictly increasing UTC epoch seconds (int64), ``values_g_per_kwh`` the
    intensity from each timestamp on (float64, finite, >= 0). ``end_s`` is where the last value
    stops; by default the last timestamp plus the trace's usual step (the median spacing).
    """

    __slots__ = ("_times_s", "_values", "_end_s", "_name", "_cum", "_step_s")

    def __init__(
        self,
        *,
        times_s: np.ndarray,
        values_g_per_kwh: np.ndarray,
        end_s: int | None = None,
        name: str = "trace",
    ) -> None:
        times = np.asarray(times_s, dtype=np.int64).copy()
        values = np.asarray(values_g_per_kwh, dtype=np.float64).copy()
        if times.ndim != 1 or times.shape != values.shape or times.size == 0:
            raise BadInputError(
                f"trace {name}: times and values must be equal, non-empty 1-D arrays"
            )
        if times.size > 1 and np.any(np.diff(times) <= 0):
            raise BadInputError(f"trace {name}: times must be strictly increasing")
        if not np.all(np.isfinite(values)):
            raise BadInputError(f"trace {name}: intensity has NaN or infinite values")
        if np.any(values < 0):
            raise BadInputError(f"trace {name}: negative intensity {values.min():g} gCO2e/kWh")
        if times.size > 1:
            step = int(np.median(np.diff(times)))
        elif end_s is not None:
            step = int(end_s) - int(times[0])
        else:
            raise BadInputError(f"trace {name}: needs at least two rows (or an explicit end)")
        end = int(times[-1]) + step if end_s is None else int(end_s)
        if end <= times[-1]:
            raise BadInputError(f"trace {name}: end must come after the last timestamp")
        times.flags.writeable = False
        values.flags.writeable = False
        knots = np.append(times, end)
        cum = np.zeros(knots.size, dtype=np.float64)
        np.cumsum(values * np.diff(knots), out=cum[1:])
        self._times_s, self._values, self._end_s = times, values, end
        self._name, self._cum, self._step_s = name, cum, step

    # -- description ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Label used in provenance, e.g. ``gb_2020.csv``."""
        return self._name

    @property
    def region(self) -> str:
        """Region label derived from the name: ``gb_2020.csv`` -> ``gb_2020``."""
        return Path(self._name).stem

    @property
    def times_s(self) -> np.ndarray:
        """Read-only int64 UTC epoch seconds where each value starts."""
        return self._times_s

    @property
    def values_g_per_kwh(self) -> np.ndarray:
        """Read-only float64 intensities (gCO2e/kWh)."""
        return self._values

    @property
    def start_s(self) -> int:
        return int(self._times_s[0])

    @property
    def end_s(self) -> int:
        return self._end_s

    @property
    def step_s(self) -> int:
        """The usual spacing between timestamps (median), in seconds."""
        return self._step_s

    @property
    def is_regular(self) -> bool:
        knots = np.append(self._times_s, self._end_s)
        return bool(np.all(np.diff(knots) == self._step_s))

    @property
    def max_gap_s(self) -> int:
        """Longest stretch of missing data: the largest spacing minus the usual step (>= 0)."""
        if self._times_s.size < 2:
            return 0
        return max(0, int(np.diff(self._times_s).max()) - self._step_s)

    def check_gaps(self, *, job_s: float) -> None:
        """Raise BadInputError when missing data spans longer than a job of ``job_s``."""
        if self.max_gap_s > job_s:
            diffs = np.diff(self._times_s)
            i = int(np.argmax(diffs))
            raise BadInputError(
                f"trace {self._name}: {self.max_gap_s / 3600:g} h of missing data after "
                f"{_fmt(self._times_s[i])} UTC, longer than the job ({job_s / 3600:g} h)"
            )

    def __len__(self) -> int:
        return int(self._times_s.size)

    def __iter__(self) -> Iterator[tuple[datetime, float]]:
        for t, v in zip(self._times_s.tolist(), self._values.tolist(), strict=True):
            yield to_datetime(t), v

    def __repr__(self) -> str:
        return (
            f"Trace(name={self._name!r}, rows={len(self)}, "
            f"{_fmt(self.start_s)} .. {_fmt(self._end_s)}, step={self._step_s}s)"
        )

    # -- integration --------------------------------------------------------------------------
    def _check_inside(self, start_s: np.ndarray, end_s: np.ndarray) -> None:
        if np.any(end_s < start_s):
            raise BadInputError(f"trace {self._name}: interval ends before it starts")
        if np.any(start_s < self.start_s) or np.any(end_s > self._end_s):
            lo, hi = int(np.min(start_s)), int(np.max(end_s))
            raise BadInputError(
                f"trace {self._name}: interval {_fmt(lo)} .. {_fmt(hi)} UTC is outside the "
                f"trace ({_fmt(self.start_s)} .. {_fmt(self._end_s)})"
            )

    def integral_over(self, start_s: np.ndarray | int, end_s: np.ndarray | int) -> np.ndarray:
        """Exact integral of intensity over [start_s, end_s) in gCO2e/kWh x seconds."""
        a = np.asarray(start_s, dtype=np.float64)
        b = np.asarray(end_s, dtype=np.float64)
        self._check_inside(a, b)
        knots = np.append(self._times_s, self._end_s).astype(np.float64)
        return np.interp(b, knots, self._cum) - np.interp(a, knots, self._cum)

    def value_at(self, t_s: np.ndarray | int) -> np.ndarray:
        """Intensity in force at ``t_s`` (the value of the slot containing it)."""
        t = np.asarray(t_s, dtype=np.float64)
        self._check_inside(t, t)
        idx = np.searchsorted(self._times_s, t, side="right") - 1
        return self._values[np.minimum(idx, self._values.size - 1)]

    def mean_over(self, start_s: np.ndarray | int, end_s: np.ndarray | int) -> np.ndarray:
        """Mean intensity (gCO2e/kWh) of constant-power work over [start_s, end_s).

        An empty interval gives the value in force at ``start_s``.
        """
        a = np.asarray(start_s, dtype=np.float64)
        b = np.asarray(end_s, dtype=np.float64)
        span = b - a
        total = self.integral_over(a, b)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(span > 0, total / np.where(span > 0, span, 1.0), 0.0)
        if np.any(span == 0):
            mean = np.where(span == 0, self.value_at(a), mean)
        return mean

    # -- derived traces -----------------------------------------------------------------------
    def resample(self, minutes: float) -> Trace:
        """Regular trace of ``minutes``-long slots, each the exact mean over its slot.

        Slots are aligned to multiples of the slot length since the Unix epoch (so hourly or
        half-hourly slots start on the hour); only slots fully inside the trace are kept.
        """
        step = int(round(float(minutes) * 60))
        if step <= 0:
            raise BadInputError(f"resample: slot must be positive, got {minutes} min")
        first = -(-self.start_s // step) * step
        last = (self._end_s // step) * step
        if last - first < step:
            raise BadInputError(f"trace {self._name}: shorter than one {minutes:g}-min slot")
        starts = np.arange(first, last, step, dtype=np.int64)
        means = self.integral_over(starts, starts + step) / step
        return Trace(times_s=starts, values_g_per_kwh=means, end_s=int(last), name=self._name)

    def slice(self, start: datetime | int, end: datetime | int) -> Trace:
        """The part of the trace over [start, end), cut exactly at both ends."""
        a, b = int(round(to_epoch_s(start))), int(round(to_epoch_s(end)))
        if b <= a:
            raise BadInputError(f"trace {self._name}: slice end must come after its start")
        self._check_inside(np.asarray(a), np.asarray(b))
        lo = int(np.searchsorted(self._times_s, a, side="right")) - 1
        hi = int(np.searchsorted(self._times_s, b, side="left"))
        times = self._times_s[lo:hi].copy()
        times[0] = a
        return Trace(times_s=times, values_g_per_kwh=self._values[lo:hi], end_s=b, name=self._name)
