"""Live carbon-intensity sources: Electricity Maps, WattTime, UK Carbon Intensity API.

See ``_live.py`` for the shared behaviour (``urllib`` requests, piecewise-constant integration,
:class:`CarbonSourceUnavailableError` when a token, the network or a good reply is missing).
The ``parse_*`` functions turn one API reply into points; the tests feed them recorded replies.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from nas.errors import BadInputError
from nas.scheduling._live import (
    CarbonSourceUnavailableError,
    LiveIntensitySource,
    iso_utc,
    median_step_s,
    parse_intensity,
    parse_time,
)

__all__ = [
    "ElectricityMapsIntensity",
    "UKCarbonIntensity",
    "WattTimeIntensity",
    "parse_electricitymaps",
    "parse_uk_carbon_intensity",
    "parse_watttime",
]

_G_PER_KWH = {"lbs_co2_per_mwh": 0.45359237, "kg_co2_per_mwh": 1.0, "g_co2_per_kwh": 1.0}


class ElectricityMapsIntensity(LiveIntensitySource):
    """Electricity Maps API v3: ``/carbon-intensity/history`` (last 24 h) or ``/past-range``."""

    def __init__(
        self,
        *,
        zone: str,
        token: str | None = None,
        emission_factor: str = "lifecycle",
        base_url: str = "https://api.electricitymap.org/v3",
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s)
        if emission_factor not in ("lifecycle", "direct"):
            raise BadInputError("electricitymaps: emission_factor must be 'lifecycle' or 'direct'")
        self.zone, self.emission_factor = zone, emission_factor
        self._token = token or os.environ.get("ELECTRICITYMAPS_TOKEN")
        if not self._token:
            raise CarbonSourceUnavailableError(
                "electricitymaps: unavailable (set ELECTRICITYMAPS_TOKEN to an API token)"
            )

    @property
    def name(self) -> str:
        return f"electricitymaps:{self.zone}:{self.emission_factor}"

    @property
    def region(self) -> str:
        return self.zone

    def _points(self, start: datetime, end: datetime) -> tuple[list[float], list[float], int]:
        params = {"zone": self.zone, "emissionFactorType": self.emission_factor}
        recent = start >= datetime.now(UTC) - timedelta(hours=23)
        if recent:
            payload = self._get_json(
                "/carbon-intensity/history", params, {"auth-token": self._token}
            )
            key = "history"
        else:
            begin = start - timedelta(hours=1)
            params |= {"start": iso_utc(begin), "end": iso_utc(end)}
            payload = self._get_json(
                "/carbon-intensity/past-range", params, {"auth-token": self._token}
            )
            key = "data"
        return parse_electricitymaps(payload, key=key, where=self.name)


def parse_electricitymaps(
    payload: Any, *, key: str, where: str
) -> tuple[list[float], list[float], int]:
    """Points of an Electricity Maps reply (``{"history": [...]}`` or ``{"data": [...]}``)."""
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise CarbonSourceUnavailableError(f"{where}: reply has no '{key}' list")
    times, values = [], []
    for item in items:
        try:
            t, v = item["datetime"], item["carbonIntensity"]
        except (KeyError, TypeError):
            raise CarbonSourceUnavailableError(
                f"{where}: point without datetime/carbonIntensity"
            ) from None
        if v is None:
            continue
        times.append(parse_time(t, where))
        values.append(parse_intensity(v, where))
    return times, values, median_step_s(times, 3600)


class WattTimeIntensity(LiveIntensitySource):
    """WattTime API v3 ``/v3/historical`` (login with ``WATTTIME_USER``/``WATTTIME_PASSWORD``).

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
    ) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s)
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

    @property
    def name(self) -> str:
        return f"watttime:{self._region}:{self.signal_type}"

    @property
    def region(self) -> str:
        return self._region

    def _login(self) -> str:
        if self._token is None:
            basic = base64.b64encode(f"{self._user}:{self._password}".encode()).decode("ascii")
            reply = self._get_json("/login", {}, {"Authorization": f"Basic {basic}"})
            token = reply.get("token") if isinstance(reply, dict) else None
            if not isinstance(token, str) or not token:
                raise CarbonSourceUnavailableError(f"{self.name}: login reply has no token")
            self._token = token
        return self._token

    def _points(self, start: datetime, end: datetime) -> tuple[list[float], list[float], int]:
        params = {
            "region": self._region,
            "signal_type": self.signal_type,
            "start": iso_utc(start - timedelta(minutes=5)),
            "end": iso_utc(end),
        }
        headers = {"Authorization": f"Bearer {self._login()}"}
        return parse_watttime(self._get_json("/v3/historical", params, headers), where=self.name)


def parse_watttime(payload: Any, *, where: str) -> tuple[list[float], list[float], int]:
    """Points of a WattTime v3 reply ``{"data": [{"point_time", "value"}], "meta": {"units"}}``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise CarbonSourceUnavailableError(f"{where}: reply has no 'data' list")
    meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
    units = str(meta.get("units", "lbs_co2_per_mwh"))
    if units not in _G_PER_KWH:
        raise CarbonSourceUnavailableError(f"{where}: units {units!r} are not an emission rate")
    factor = _G_PER_KWH[units]
    times, values = [], []
    for item in payload["data"]:
        if not isinstance(item, dict) or "point_time" not in item or "value" not in item:
            raise CarbonSourceUnavailableError(f"{where}: point without point_time/value")
        times.append(parse_time(item["point_time"], where))
        values.append(parse_intensity(item["value"], where) * factor)
    return times, values, median_step_s(times, 300)


class UKCarbonIntensity(LiveIntensitySource):
    """National Grid ESO Carbon Intensity API (Great Britain, half-hourly, no token)."""

    _MAX_SPAN = timedelta(days=13)  # the API answers at most 14 days per request

    def __init__(
        self, *, base_url: str = "https://api.carbonintensity.org.uk", timeout_s: float = 10.0
    ) -> None:
        super().__init__(base_url=base_url, timeout_s=timeout_s)
        self.used_forecast = False

    @property
    def name(self) -> str:
        return "carbonintensity.org.uk:GB" + (" (partly forecast)" if self.used_forecast else "")

    @property
    def region(self) -> str:
        return "GB"

    def _points(self, start: datetime, end: datetime) -> tuple[list[float], list[float], int]:
        times: list[float] = []
        values: list[float] = []
        self.used_forecast = False
        lo = start - timedelta(minutes=30)
        while lo < end:
            hi = min(end, lo + self._MAX_SPAN)
            path = f"/intensity/{lo:%Y-%m-%dT%H:%MZ}/{hi:%Y-%m-%dT%H:%MZ}"
            t, v, forecast = parse_uk_carbon_intensity(
                self._get_json(path, {}, {}), where=self.name
            )
            times += t
            values += v
            self.used_forecast |= forecast
            lo = hi
        return times, values, 1800


def parse_uk_carbon_intensity(payload: Any, *, where: str) -> tuple[list[float], list[float], bool]:
    """Points of ``{"data": [{"from", "to", "intensity": {"forecast", "actual"}}]}``.

    Returns the times, the values (``actual``, else ``forecast``) and whether any forecast
    stood in for a missing actual.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise CarbonSourceUnavailableError(f"{where}: reply has no 'data' list")
    times, values, used_forecast = [], [], False
    for item in payload["data"]:
        intensity = item.get("intensity") if isinstance(item, dict) else None
        if not isinstance(intensity, dict) or "from" not in item:
            raise CarbonSourceUnavailableError(f"{where}: point without from/intensity")
        value = intensity.get("actual")
        if value is None:
            value = intensity.get("forecast")
            if value is None:
                continue
            used_forecast = True
        times.append(parse_time(item["from"], where))
        values.append(parse_intensity(value, where))
    return times, values, used_forecast
