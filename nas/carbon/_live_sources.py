"""Live carbon-intensity sources: Electricity Maps, WattTime, UK Carbon Intensity API.

See ``_live.py`` for the shared behaviour (requests, retries, cache, splicing actuals with the
forecast, :class:`CarbonSourceUnavailableError`). The ``parse_*`` functions turn one API reply
into points; the tests replay replies written from each provider's public documentation.

Endpoints used (paths relative to ``base_url``):

============================  =========================================  ====================
provider                      latest / history                           forecast
============================  =========================================  ====================
Electricity Maps v3           ``/carbon-intensity/latest``,              ``/carbon-intensity/
(``auth-token`` header)       ``/carbon-intensity/history`` (last 24 h)  forecast``
                              or ``/past-range``
WattTime v3 (``/login`` with  ``/v3/historical``                         ``/v3/forecast``
HTTP basic, then a bearer)
UK Carbon Intensity (no key)  ``/intensity``, ``/intensity/{from}/{to}``  ``/intensity/{from}/
                              regional: ``/regional/regionid/{id}``,      fw48h``; regional:
                              ``/regional/intensity/{from}/{to}/          ``/regional/intensity
                              regionid/{id}`` (or ``postcode/{outward}``) /{from}/fw48h/...``
============================  =========================================  ====================

The UK API publishes regional values as forecasts only (no regional actuals): a regional
source's intensity is labelled 100% forecast, as it is.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from nas.carbon._live import (
    CarbonSourceUnavailableError,
    LiveIntensitySource,
    Points,
    iso_utc,
    median_step_s,
    parse_intensity,
    parse_time,
    recent,
)
from nas.errors import BadInputError

__all__ = [
    "ElectricityMapsIntensity",
    "UKCarbonIntensity",
    "WattTimeIntensity",
    "parse_electricitymaps",
    "parse_uk_carbon_intensity",
    "parse_watttime",
]

_G_PER_KWH = {"lbs_co2_per_mwh": 0.45359237, "kg_co2_per_mwh": 1.0, "g_co2_per_kwh": 1.0}
_FORECAST_MAX_AGE_S = 300.0  # a forecast reply is reused for 5 min
_FINAL_AFTER = timedelta(hours=3)  # history older than this is final: cached for good


def _history_age(end: datetime) -> float | None:
    return None if end < datetime.now(UTC) - _FINAL_AFTER else 60.0


class ElectricityMapsIntensity(LiveIntensitySource):
    """Electricity Maps API v3: latest, history (last 24 h) or past range, forecast."""

    def __init__(
        self,
        *,
        zone: str,
        token: str | None = None,
        emission_factor: str = "lifecycle",
        base_url: str = "https://api.electricitymap.org/v3",
        timeout_s: float = 10.0,
        **http: Any,
    ) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, **http)
        if emission_factor not in ("lifecycle", "direct"):
            raise BadInputError("electricitymaps: emission_factor must be 'lifecycle' or 'direct'")
        self.zone, self.emission_factor = zone, emission_factor
        self._token = token or os.environ.get("ELECTRICITYMAPS_TOKEN")
        if not self._token:
            raise CarbonSourceUnavailableError(
                "electricitymaps: unavailable (set ELECTRICITYMAPS_TOKEN to an API token)"
            )

    def _secrets(self) -> list[str]:
        return [*super()._secrets(), str(self._token)]

    @property
    def name(self) -> str:
        return f"electricitymaps:{self.zone}:{self.emission_factor}"

    @property
    def region(self) -> str:
        return self.zone

    def _get(self, path: str, extra: dict[str, str], max_age_s: float | None) -> Any:
        params = {"zone": self.zone, "emissionFactorType": self.emission_factor, **extra}
        return self._get_json(path, params, {"auth-token": str(self._token)}, max_age_s=max_age_s)

    def _history(self, start: datetime, end: datetime) -> Points:
        if recent(start, 23):
            payload = self._get("/carbon-intensity/history", {}, 60.0)
            return parse_electricitymaps(payload, key="history", where=self.name)
        extra = {"start": iso_utc(start - timedelta(hours=1)), "end": iso_utc(end)}
        payload = self._get("/carbon-intensity/past-range", extra, _history_age(end))
        return parse_electricitymaps(payload, key="data", where=self.name)

    def _latest(self) -> Points:
        payload = self._get("/carbon-intensity/latest", {}, 60.0)
        return parse_electricitymaps({"data": [payload]}, key="data", where=self.name)

    def _forecast(self, now: datetime) -> Points:
        payload = self._get("/carbon-intensity/forecast", {}, _FORECAST_MAX_AGE_S)
        pts = parse_electricitymaps(payload, key="forecast", where=self.name, forecast=True)
        if isinstance(payload, dict) and payload.get("updatedAt"):
            pts.issued_at = datetime.fromtimestamp(parse_time(payload["updatedAt"], self.name), UTC)
        return pts


def parse_electricitymaps(payload: Any, *, key: str, where: str, forecast: bool = False) -> Points:
    """Points of an Electricity Maps reply (``{"history" | "data" | "forecast": [...]}``)."""
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise CarbonSourceUnavailableError(f"{where}: reply has no '{key}' list")
    pts = Points()
    for item in items:
        try:
            t, v = item["datetime"], item["carbonIntensity"]
        except (KeyError, TypeError):
            raise CarbonSourceUnavailableError(
                f"{where}: point without datetime/carbonIntensity"
            ) from None
        if v is None:
            continue
        pts.add(parse_time(t, where), parse_intensity(v, where), forecast=forecast)
    pts.step_s = median_step_s(pts.times_s, 3600)
    return pts


class WattTimeIntensity(LiveIntensitySource):
    """WattTime API v3 ``/v3/historical`` and ``/v3/forecast`` (login with
    ``WATTTIME_USER``/``WATTTIME_PASSWORD``).

    ``co2_moer`` is the marginal operating emissions rate, not an average intensity: the
    source label (``watttime:<region>:co2_moer``) keeps that visible in results.
    """

    def __init__(
        self,
        *,
        region: str,
        username: str | None = None,
        password: str | None = None,
        signal_type: str = "co2_moer",
        base_url: str = "https://api.watttime.org",
        timeout_s: float = 10.0,
        **http: Any,
    ) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, **http)
        self._region, self.signal_type = region, signal_type
        self._user = (
            username or os.environ.get("WATTTIME_USER") or os.environ.get("WATTTIME_USERNAME")
        )
        self._password = password or os.environ.get("WATTTIME_PASSWORD")
        if not (self._user and self._password):
            raise CarbonSourceUnavailableError(
                "watttime: unavailable (set WATTTIME_USER and WATTTIME_PASSWORD)"
            )
        self._token: str | None = None

    def _secrets(self) -> list[str]:
        return [s for s in (*super()._secrets(), self._password, self._token) if s]

    @property
    def name(self) -> str:
        return f"watttime:{self._region}:{self.signal_type}"

    @property
    def region(self) -> str:
        return self._region

    def _login(self) -> str:
        if self._token is None:
            basic = base64.b64encode(f"{self._user}:{self._password}".encode()).decode("ascii")
            reply = self._get_json("/login", {}, {"Authorization": f"Basic {basic}"}, store=False)
            token = reply.get("token") if isinstance(reply, dict) else None
            if not isinstance(token, str) or not token:
                raise CarbonSourceUnavailableError(f"{self.name}: login reply has no token")
            self._token = token
        return self._token

    def _get(self, path: str, params: dict[str, str], max_age_s: float | None) -> Any:
        params = {"region": self._region, "signal_type": self.signal_type, **params}
        try:
            headers = {"Authorization": f"Bearer {self._login()}"}
            return self._get_json(path, params, headers, max_age_s=max_age_s)
        except CarbonSourceUnavailableError as exc:
            if "HTTP 401" not in str(exc) or self._token is None:
                raise
            self._token = None  # the token expired (30 min): log in again, once
            headers = {"Authorization": f"Bearer {self._login()}"}
            return self._get_json(path, params, headers, max_age_s=max_age_s)

    def _history(self, start: datetime, end: datetime) -> Points:
        params = {"start": iso_utc(start - timedelta(minutes=5)), "end": iso_utc(end)}
        return parse_watttime(self._get("/v3/historical", params, _history_age(end)), self.name)

    def _latest(self) -> Points:
        now = datetime.now(UTC)
        params = {"start": iso_utc(now - timedelta(hours=1)), "end": iso_utc(now)}
        return parse_watttime(self._get("/v3/historical", params, 60.0), self.name)

    def _forecast(self, now: datetime) -> Points:
        payload = self._get("/v3/forecast", {}, _FORECAST_MAX_AGE_S)
        pts = parse_watttime(payload, self.name, forecast=True)
        meta = payload.get("meta") if isinstance(payload, dict) else None
        if isinstance(meta, dict) and meta.get("generated_at"):
            pts.issued_at = datetime.fromtimestamp(parse_time(meta["generated_at"], self.name), UTC)
        return pts


def parse_watttime(payload: Any, where: str, *, forecast: bool = False) -> Points:
    """Points of a WattTime v3 reply ``{"data": [{"point_time", "value"}], "meta": {"units"}}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise CarbonSourceUnavailableError(f"{where}: reply has no 'data' list")
    meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
    units = str(meta.get("units", "lbs_co2_per_mwh"))
    if units not in _G_PER_KWH:
        raise CarbonSourceUnavailableError(f"{where}: units {units!r} are not an emission rate")
    factor = _G_PER_KWH[units]
    pts = Points()
    for item in payload["data"]:
        if not isinstance(item, dict) or "point_time" not in item or "value" not in item:
            raise CarbonSourceUnavailableError(f"{where}: point without point_time/value")
        value = parse_intensity(item["value"], where) * factor
        pts.add(parse_time(item["point_time"], where), value, forecast=forecast)
    period = meta.get("data_point_period_seconds")
    default = int(period) if isinstance(period, int) and period > 0 else 300
    pts.step_s = median_step_s(pts.times_s, default)
    return pts


class UKCarbonIntensity(LiveIntensitySource):
    """National Grid ESO Carbon Intensity API (Great Britain, half-hourly, no token).

    ``region=None`` is national; a region id ``"1"`` .. ``"17"`` or an outward postcode
    (``"RG10"``) uses the regional endpoints (forecast values only, as the API publishes).
    """

    _MAX_SPAN = timedelta(days=13)  # the API answers at most 14 days per request

    def __init__(
        self,
        *,
        region: str | None = None,
        base_url: str = "https://api.carbonintensity.org.uk",
        timeout_s: float = 10.0,
        **http: Any,
    ) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s, **http)
        self._where = ""
        if region is not None:
            region = region.strip().upper()
            kind = "regionid" if region.isdigit() else "postcode"
            self._where = f"/{kind}/{region}"
        self._region_code = region

    @property
    def name(self) -> str:
        return "carbonintensity.org.uk:" + (self._region_code or "GB")

    @property
    def region(self) -> str:
        return "GB" if self._region_code is None else f"GB:{self._region_code}"

    def _history(self, start: datetime, end: datetime) -> Points:
        out = Points(step_s=1800)
        lo = start - timedelta(minutes=30)
        while lo < end:
            hi = min(end, lo + self._MAX_SPAN)
            span = f"{lo:%Y-%m-%dT%H:%MZ}/{hi:%Y-%m-%dT%H:%MZ}"
            path = (
                f"/regional/intensity/{span}{self._where}" if self._where else f"/intensity/{span}"
            )
            pts = parse_uk_points(self._get_json(path, {}, {}, max_age_s=_history_age(hi)), self)
            for t, v, f in zip(pts.times_s, pts.values, pts.forecast, strict=True):
                out.add(t, v, forecast=f)
            lo = hi
        return out

    def _latest(self) -> Points:
        path = f"/regional{self._where}" if self._where else "/intensity"
        return parse_uk_points(self._get_json(path, {}, {}, max_age_s=60.0), self)

    def _forecast(self, now: datetime) -> Points:
        start = f"{now.astimezone(UTC):%Y-%m-%dT%H:%MZ}"
        if self._where:
            path = f"/regional/intensity/{start}/fw48h{self._where}"
        else:
            path = f"/intensity/{start}/fw48h"
        pts = parse_uk_points(self._get_json(path, {}, {}, max_age_s=_FORECAST_MAX_AGE_S), self)
        pts.forecast = [True] * len(pts)  # planning: every value of fw48h is a forecast
        return pts


def parse_uk_points(payload: Any, source: UKCarbonIntensity) -> Points:
    """National replies ``{"data": [...]}``; regional ``{"data": {"data": [...]}}`` or
    ``{"data": [{"regionid", "data": [...]}]}``. Regional values are forecasts only."""
    where = source.name
    data = payload.get("data") if isinstance(payload, dict) else None
    regional = False
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data, regional = data["data"], True
    elif (
        isinstance(data, list)
        and len(data) == 1
        and isinstance(data[0], dict)
        and isinstance(data[0].get("data"), list)
    ):
        data, regional = data[0]["data"], True
    times, values, flags = parse_uk_carbon_intensity({"data": data}, where=where, flags=True)
    pts = Points(step_s=1800)
    for t, v, f in zip(times, values, flags, strict=True):
        pts.add(t, v, forecast=f or regional)
    return pts


def parse_uk_carbon_intensity(
    payload: Any, *, where: str, flags: bool = False
) -> tuple[list[float], list[float], Any]:
    """Points of ``{"data": [{"from", "to", "intensity": {"forecast", "actual"}}]}``.

    Returns the times, the values (``actual``, else ``forecast``) and whether any forecast
    stood in for a missing actual (with ``flags``: that flag per point).
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise CarbonSourceUnavailableError(f"{where}: reply has no 'data' list")
    times: list[float] = []
    values: list[float] = []
    marks: list[bool] = []
    for item in payload["data"]:
        intensity = item.get("intensity") if isinstance(item, dict) else None
        if not isinstance(intensity, dict) or "from" not in item:
            raise CarbonSourceUnavailableError(f"{where}: point without from/intensity")
        value = intensity.get("actual")
        is_forecast = value is None
        if value is None:
            value = intensity.get("forecast")
            if value is None:
                continue
        times.append(parse_time(item["from"], where))
        values.append(parse_intensity(value, where))
        marks.append(is_forecast)
    return times, values, (marks if flags else any(marks))
