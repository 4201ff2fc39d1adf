"""Live carbon-intensity sources: the shared HTTP/JSON plumbing and the "unavailable" error.

The sources themselves are in ``_live_sources.py``:

- :class:`ElectricityMapsIntensity`: Electricity Maps API v3 (token in ``ELECTRICITYMAPS_TOKEN``
  or ``token=``), average intensity per zone, life-cycle (default) or direct factors.
- :class:`WattTimeIntensity`: WattTime API v3 (``WATTTIME_USER`` / ``WATTTIME_PASSWORD``);
  its ``co2_moer`` is a *marginal* rate (the generators answering a change in load), which the
  source label says; lbs/MWh are converted to gCO2e/kWh.
- :class:`UKCarbonIntensity`: National Grid ESO's free API for Great Britain, no token; uses
  the ``actual`` value and the ``forecast`` where no actual exists yet (the label says so).

Each fetches the points covering an interval with :mod:`urllib` and integrates them as a
piecewise-constant :class:`~nas.scheduling.Trace`; the latest point is held up to the end
of the interval when data lags behind. Without a token, without network, or on an error
reply they raise :class:`CarbonSourceUnavailableError` (a ``BadInputError``: exit 2, one line).
"""

from __future__ import annotations

import abc
import http.client
import json
from datetime import UTC, datetime
from typing import Any
from urllib import error as _error
from urllib import parse as _parse
from urllib import request as _request

import numpy as np

from nas.carbon import Trace, to_epoch_s
from nas.carbon import parse_time as parse_trace_time
from nas.carbon._base import CarbonIntensity, IntensitySource
from nas.errors import BadInputError

__all__ = ["CarbonSourceUnavailableError", "LiveIntensitySource"]


class CarbonSourceUnavailableError(BadInputError):
    """A live carbon-intensity source cannot answer (no token, no network, error reply)."""


def iso_utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LiveIntensitySource(IntensitySource):
    """A web API answering with intensity points; subclasses implement :meth:`_points`."""

    def __init__(self, *, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = float(timeout_s)

    def _get_json(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        query = f"?{_parse.urlencode(params)}" if params else ""
        url = f"{self.base_url}{path}{query}"
        req = _request.Request(url, headers={"Accept": "application/json", **headers})
        try:
            with _request.urlopen(req, timeout=self.timeout_s) as resp:
                body = resp.read()
        except _error.HTTPError as exc:
            raise CarbonSourceUnavailableError(
                f"{self.name}: unavailable (HTTP {exc.code} {exc.reason} from {self.base_url})"
            ) from None
        except (_error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise CarbonSourceUnavailableError(
                f"{self.name}: unavailable ({reason} reaching {self.base_url})"
            ) from None
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise CarbonSourceUnavailableError(f"{self.name}: reply is not JSON") from None

    @abc.abstractmethod
    def _points(self, start: datetime, end: datetime) -> tuple[list[float], list[float], int]:
        """(times_s, values_g_per_kwh, step_s) of the points covering [start, end)."""

    def fetch_trace(self, start: datetime, end: datetime) -> Trace:
        """The source's data over [start, end) as a Trace (e.g. recent history to forecast)."""
        return self._trace(start, end, hold_to=None)

    def _trace(self, start: datetime, end: datetime, *, hold_to: float | None) -> Trace:
        if start.tzinfo is None or end.tzinfo is None:
            raise BadInputError(f"{self.name}: times must be timezone-aware (UTC)")
        times, values, step = self._points(start, end)
        if not times:
            raise CarbonSourceUnavailableError(
                f"{self.name}: no data for {iso_utc(start)} .. {iso_utc(end)}"
            )
        order = np.argsort(times, kind="stable")
        t = np.round(np.asarray(times, dtype=np.float64)[order]).astype(np.int64)
        v = np.asarray(values, dtype=np.float64)[order]
        keep = np.append(True, np.diff(t) != 0)
        t, v = t[keep], v[keep]
        natural_end = int(t[-1]) + step
        end_s = max(natural_end, int(np.ceil(hold_to))) if hold_to is not None else natural_end
        return Trace(times_s=t, values_g_per_kwh=v, end_s=end_s, name=self.name)

    def intensity_over(self, start: datetime, end: datetime) -> CarbonIntensity:
        """Mean over [start, end); the last point is held to ``end`` when data lags behind."""
        a, b = to_epoch_s(start), to_epoch_s(end)
        if b < a:
            raise BadInputError(f"{self.name}: interval ends before it starts")
        trace = self._trace(start, end, hold_to=b)
        if a < trace.start_s:
            raise CarbonSourceUnavailableError(
                f"{self.name}: no data at {iso_utc(start)} (first point "
                f"{iso_utc(datetime.fromtimestamp(trace.start_s, UTC))})"
            )
        mean = float(trace.mean_over(np.asarray(a), np.asarray(b)))
        return CarbonIntensity(intensity_g_per_kwh=mean, source=self.name, region=self.region)

    @property
    @abc.abstractmethod
    def region(self) -> str: ...


def median_step_s(times: list[float], default_s: int) -> int:
    if len(times) < 2:
        return default_s
    return int(np.median(np.diff(np.sort(np.asarray(times)))))


def parse_time(value: Any, where: str) -> float:
    try:
        return parse_trace_time(str(value))
    except ValueError:
        raise CarbonSourceUnavailableError(f"{where}: unparsable time {value!r} in reply") from None


def parse_intensity(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        raise CarbonSourceUnavailableError(f"{where}: bad intensity value {value!r}")
    return float(value)
