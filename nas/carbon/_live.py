"""Live carbon-intensity sources: the shared HTTP/JSON plumbing and the "unavailable" error.

The sources themselves are in ``_live_sources.py``:

- :class:`ElectricityMapsIntensity`: Electricity Maps API v3 (token in ``ELECTRICITYMAPS_TOKEN``
  or ``token=``), average intensity per zone, life-cycle (default) or direct factors.
- :class:`WattTimeIntensity`: WattTime API v3 (``WATTTIME_USER`` / ``WATTTIME_PASSWORD``);
  its ``co2_moer`` is a *marginal* rate (the generators answering a change in load), which the
  source label says; lbs/MWh are converted to gCO2e/kWh.
- :class:`UKCarbonIntensity`: National Grid ESO's free API for Great Britain, no token,
  national or one region (region id 1-17 or an outward postcode).

Every source answers three questions with the provider's documented endpoints: the latest
value (:meth:`LiveIntensitySource.latest`), the history over an interval (:meth:`fetch_trace`)
and the provider's forecast from now on (:meth:`LiveIntensitySource.forecast`, ``None`` where a
provider publishes none). :meth:`intensity_over` charges work what the grid emitted while it
ran: the provider's actuals, and its forecast for the part not final yet; the source label
says how much was forecast (``... (25% forecast)``) and :attr:`CarbonIntensity.forecast_share`
holds the fraction.

Requests: :mod:`urllib`, ``timeout_s`` each; 429, 5xx replies, timeouts and connection errors
are retried ``retries`` times with exponential backoff (``backoff_s`` x 2^k, or the reply's
``Retry-After`` up to 30 s); other error replies are not retried. With ``cache_dir`` each reply
is kept on disk (the newest 256), keyed by its URL (never by a header: tokens travel in headers
only), and reused while younger than the request's ``max_age_s`` (history that is final: for
good). When a source cannot answer it raises :class:`CarbonSourceUnavailableError` (a
``BadInputError``: one line, exit 2); studies wrap sources in a fallback that charges the
country's yearly average instead (:class:`FallbackIntensity`, ``_resolve.py``). Messages
never hold a token or password: they name the host only (credentials and query stripped from
``base_url``).
"""

from __future__ import annotations

import abc
import hashlib
import http.client
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib import error as _error
from urllib import parse as _parse
from urllib import request as _request

import numpy as np

from nas.carbon._base import CarbonIntensity, IntensitySource
from nas.carbon._trace import Trace, to_epoch_s
from nas.carbon._trace_io import parse_time as parse_trace_time
from nas.errors import BadInputError

__all__ = ["CarbonSourceUnavailableError", "LiveIntensitySource", "Points", "public_url"]

log = logging.getLogger(__name__)

_CACHE_FILES = 256
_RETRY_AFTER_CAP_S = 30.0


class CarbonSourceUnavailableError(BadInputError):
    """A live carbon-intensity source cannot answer (no token, no network, error reply)."""


def iso_utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public_url(url: str) -> str:
    """``https://user:pw@host:8080/v3?token=x`` -> ``https://host:8080``: safe to print."""
    parts = _parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}" if parts.scheme else host


@dataclass
class Points:
    """Intensity points of one reply: value ``i`` holds from ``times_s[i]`` for ``step_s``.

    ``forecast[i]`` is True where the value is the provider's forecast, not a final actual.
    ``issued_at`` is when a forecast was made (where the provider says).
    """

    times_s: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    step_s: int = 3600
    forecast: list[bool] = field(default_factory=list)
    issued_at: datetime | None = None

    def add(self, t: float, value: float, *, forecast: bool) -> None:
        self.times_s.append(t)
        self.values.append(value)
        self.forecast.append(forecast)

    def __len__(self) -> int:
        return len(self.times_s)

    def sorted(self) -> Points:
        """Time-ordered, duplicate times keeping their first point."""
        order = np.argsort(self.times_s, kind="stable")
        out = Points(step_s=self.step_s, issued_at=self.issued_at)
        seen: set[int] = set()
        for i in order.tolist():
            t = int(round(self.times_s[i]))
            if t not in seen:
                seen.add(t)
                out.add(float(t), self.values[i], forecast=self.forecast[i])
        return out

    def end_s(self) -> float:
        return self.times_s[-1] + self.step_s if self.times_s else float("-inf")

    def trace(self, name: str) -> Trace:
        """The points as a :class:`Trace` ending where the last point's step ends."""
        return _trace(self, name, hold_to=None)


class LiveIntensitySource(IntensitySource):
    """A web API answering with intensity points; subclasses implement the ``_`` methods."""

    def __init__(
        self,
        *,
        base_url: str,
        timeout_s: float,
        retries: int = 3,
        backoff_s: float = 1.0,
        cache_dir: str | Path | None = None,
    ) -> None:
        if not timeout_s > 0 or retries < 0 or backoff_s < 0:
            raise BadInputError("live source: timeout_s > 0, retries >= 0, backoff_s >= 0")
        parts = _parse.urlsplit(base_url.rstrip("/"))
        self._proxy_auth: str | None = None
        if parts.username is not None:  # user:password@host: sent as basic auth, never shown
            import base64

            pair = f"{_parse.unquote(parts.username)}:{_parse.unquote(parts.password or '')}"
            self._proxy_auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
            host = parts.hostname or ""
            netloc = f"{host}:{parts.port}" if parts.port else host
            parts = parts._replace(netloc=netloc)
        self.base_url = _parse.urlunsplit(parts)
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.sleep = time.sleep  # tests replace it

    def __repr__(self) -> str:  # never the token
        return f"{type(self).__name__}({self.name!r}, {public_url(self.base_url)})"

    # -- HTTP ---------------------------------------------------------------------------------
    def _get_json(
        self,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        *,
        max_age_s: float | None = 0.0,
        store: bool = True,
    ) -> Any:
        """GET ``base_url + path``; ``max_age_s``: how old a cached reply may be (None: any);
        ``store=False`` for replies that must never reach the disk (a login's token)."""
        query = f"?{_parse.urlencode(params)}" if params else ""
        url = f"{self.base_url}{path}{query}"
        cached = self._cache_read(url, max_age_s)
        if cached is not None:
            body = cached
        else:
            body = self._fetch(url, headers)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise CarbonSourceUnavailableError(f"{self.name}: reply is not JSON") from None
        if cached is None and store:
            self._cache_write(url, body)
        return payload

    def _secrets(self) -> list[str]:
        """Strings never to show (subclasses add their token, password)."""
        return [s for s in (self._proxy_auth,) if s]

    def scrub(self, text: str) -> str:
        for secret in self._secrets():
            if len(secret) >= 6:  # shorter strings are test stand-ins, not credentials
                text = text.replace(secret, "***")
        return text

    def _fetch(self, url: str, headers: dict[str, str]) -> bytes:
        try:
            return self._fetch_once(url, headers)
        except CarbonSourceUnavailableError as exc:
            raise CarbonSourceUnavailableError(self.scrub(str(exc))) from None

    def _fetch_once(self, url: str, headers: dict[str, str]) -> bytes:
        where = public_url(self.base_url)
        if self._proxy_auth and "Authorization" not in headers:
            headers = {**headers, "Authorization": self._proxy_auth}
        req = _request.Request(url, headers={"Accept": "application/json", **headers})
        problem = ""
        for attempt in range(self.retries + 1):
            wait = self.backoff_s * (2**attempt)
            try:
                with _request.urlopen(req, timeout=self.timeout_s) as resp:
                    return resp.read()
            except _error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason} from {where}"
                if exc.code != 429 and exc.code < 500:
                    raise CarbonSourceUnavailableError(
                        f"{self.name}: unavailable ({problem})"
                    ) from None
                wait = _retry_after(exc, wait)
            except (
                _error.URLError,
                TimeoutError,
                OSError,
                ValueError,
                http.client.HTTPException,
            ) as exc:
                reason = getattr(exc, "reason", None) or exc or type(exc).__name__
                problem = self.scrub(f"{reason} reaching {where}")
            if attempt < self.retries:
                log.info("%s: %s; retry %d in %.1f s", self.name, problem, attempt + 1, wait)
                self.sleep(wait)
        tries = f" after {self.retries} retries" if self.retries else ""
        raise CarbonSourceUnavailableError(f"{self.name}: unavailable ({problem}{tries})")

    def _cache_path(self, url: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")

    def _cache_read(self, url: str, max_age_s: float | None) -> bytes | None:
        path = self._cache_path(url)
        if path is None or max_age_s == 0 or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            age = time.time() - float(entry["fetched_at"])
            body = str(entry["body"]).encode()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return body if max_age_s is None or age <= max_age_s else None

    def _cache_write(self, url: str, body: bytes) -> None:
        path = self._cache_path(url)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            entry = {"fetched_at": time.time(), "body": body.decode("utf-8")}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entry), encoding="utf-8")
            tmp.replace(path)
            files = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for old in files[:-_CACHE_FILES]:
                old.unlink(missing_ok=True)
        except (OSError, UnicodeDecodeError):
            log.debug("carbon cache: cannot write %s", path, exc_info=True)

    # -- what a provider implements -----------------------------------------------------------
    @abc.abstractmethod
    def _history(self, start: datetime, end: datetime) -> Points:
        """Points covering [start, end) (actuals; forecasts flagged where a provider mixes)."""

    @abc.abstractmethod
    def _latest(self) -> Points:
        """The most recent point."""

    def _forecast(self, now: datetime) -> Points | None:
        """The provider's forecast from ``now`` on, or None where it publishes none."""
        return None

    @property
    @abc.abstractmethod
    def region(self) -> str: ...

    @property
    def has_forecast(self) -> bool:
        return type(self)._forecast is not LiveIntensitySource._forecast

    # -- public -------------------------------------------------------------------------------
    def latest(self) -> CarbonIntensity:
        pts = self._latest()
        if not len(pts):
            raise CarbonSourceUnavailableError(f"{self.name}: no latest value in reply")
        pts = pts.sorted()
        share = 1.0 if pts.forecast[-1] else 0.0
        return CarbonIntensity(pts.values[-1], self.name, self.region, forecast_share=share)

    def forecast(self, now: datetime) -> Points:
        """The provider's forecast from ``now`` (sorted); raises when there is none."""
        pts = self._forecast(now)
        if pts is None:
            raise CarbonSourceUnavailableError(f"{self.name}: the provider publishes no forecast")
        pts = pts.sorted()
        t = to_epoch_s(now)
        if not len(pts) or pts.end_s() <= t:
            raise CarbonSourceUnavailableError(f"{self.name}: empty forecast")
        return pts

    def fetch_trace(self, start: datetime, end: datetime) -> Trace:
        """The source's data over [start, end) as a Trace (e.g. recent history to forecast)."""
        _aware(start, end, self.name)
        pts = self._history(start, end).sorted()
        if not len(pts):
            raise CarbonSourceUnavailableError(
                f"{self.name}: no data for {iso_utc(start)} .. {iso_utc(end)}"
            )
        return _trace(pts, self.name, hold_to=None)

    def intensity_over(self, start: datetime, end: datetime) -> CarbonIntensity:
        """Mean over [start, end): actuals, then the provider's forecast where none are final
        yet, then the last value held (each share said in the label)."""
        _aware(start, end, self.name)
        a, b = to_epoch_s(start), to_epoch_s(end)
        if b < a:
            raise BadInputError(f"{self.name}: interval ends before it starts")
        pts = self._history(start, end).sorted()
        note = ""
        if pts.end_s() < b and self.has_forecast:  # the part not final yet
            from_s = pts.end_s() if len(pts) else a
            try:
                pts = splice(pts, self.forecast(datetime.fromtimestamp(from_s, UTC)))
            except CarbonSourceUnavailableError as exc:
                note = str(exc)
        if not len(pts):
            raise CarbonSourceUnavailableError(
                f"{self.name}: no data for {iso_utc(start)} .. {iso_utc(end)}"
            )
        if a < pts.times_s[0]:
            raise CarbonSourceUnavailableError(
                f"{self.name}: no data at {iso_utc(start)} (first point "
                f"{iso_utc(datetime.fromtimestamp(pts.times_s[0], UTC))})"
            )
        trace = _trace(pts, self.name, hold_to=b)
        mean = float(trace.mean_over(np.asarray(a), np.asarray(b)))
        share, held = _shares(pts, a, b)
        parts = []
        if share > 0:
            parts.append(f"{100 * share:.0f}% forecast")
        if held > 0:
            parts.append(f"last value held {held / 60:.0f} min")
        if note and held > 0:
            parts.append(note.removeprefix(f"{self.name}: "))
        label = f"{self.name} ({', '.join(parts) if parts else 'actual'})"
        return CarbonIntensity(mean, label, self.region, forecast_share=share)


def splice(actual: Points, forecast: Points) -> Points:
    """Actual points, then the forecast's from where the actuals end."""
    out = Points(step_s=actual.step_s if len(actual) else forecast.step_s)
    out.issued_at = forecast.issued_at
    for t, v, f in zip(actual.times_s, actual.values, actual.forecast, strict=True):
        out.add(t, v, forecast=f)
    cut = actual.end_s()
    for i, (t, v) in enumerate(zip(forecast.times_s, forecast.values, strict=True)):
        nxt = forecast.times_s[i + 1] if i + 1 < len(forecast) else t + forecast.step_s
        if nxt <= cut:
            continue
        out.add(max(t, cut), v, forecast=True)
    return out.sorted()


def _aware(start: datetime, end: datetime, name: str) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise BadInputError(f"{name}: times must be timezone-aware (UTC)")


def _trace(pts: Points, name: str, *, hold_to: float | None) -> Trace:
    t = np.asarray(pts.times_s, dtype=np.int64)
    v = np.asarray(pts.values, dtype=np.float64)
    natural_end = int(pts.end_s())
    end_s = max(natural_end, int(np.ceil(hold_to))) if hold_to is not None else natural_end
    return Trace(times_s=t, values_g_per_kwh=v, end_s=end_s, name=name)


def _shares(pts: Points, a: float, b: float) -> tuple[float, float]:
    """(forecast share of [a, b), seconds of it past the data, the last value held)."""
    if b <= a:
        return (1.0 if pts.forecast[-1] else 0.0), 0.0
    knots = [*pts.times_s, max(pts.end_s(), b)]
    fc = 0.0
    for i, flag in enumerate(pts.forecast):
        overlap = max(0.0, min(b, knots[i + 1]) - max(a, knots[i]))
        fc += overlap if flag else 0.0
    held = max(0.0, b - max(a, pts.end_s()))
    return fc / (b - a), held


def _retry_after(exc: _error.HTTPError, default: float) -> float:
    raw = exc.headers.get("Retry-After") if exc.headers is not None else None
    try:
        return min(max(float(raw), 0.0), _RETRY_AFTER_CAP_S) if raw is not None else default
    except ValueError:
        return default


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


def recent(start: datetime, hours: float) -> bool:
    return start >= datetime.now(UTC) - timedelta(hours=hours)
