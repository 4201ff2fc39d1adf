"""Live sources: parsing of replies written from the public API docs; clean unavailability.

No network here: ``urllib.request.urlopen`` is patched with recorded replies, and one test
points at a closed local port to see a real connection failure turn into a clean error.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from nas.carbon import (
    CarbonSourceUnavailableError,
    ElectricityMapsIntensity,
    IntensitySource,
    UKCarbonIntensity,
    WattTimeIntensity,
)
from nas.carbon._live_sources import (
    parse_electricitymaps,
    parse_uk_carbon_intensity,
    parse_watttime,
)
from nas.errors import BadInputError

T = datetime(2024, 5, 1, 10, tzinfo=UTC)

EM_PAST_RANGE = {
    "zone": "DE",
    "data": [
        {
            "zone": "DE",
            "carbonIntensity": 300,
            "datetime": "2024-05-01T10:00:00.000Z",
            "updatedAt": "2024-05-02T08:11:02.000Z",
            "createdAt": "2024-04-28T10:45:13.000Z",
            "emissionFactorType": "lifecycle",
            "isEstimated": False,
            "estimationMethod": None,
        },
        {"zone": "DE", "carbonIntensity": 200, "datetime": "2024-05-01T11:00:00.000Z"},
        {"zone": "DE", "carbonIntensity": 100, "datetime": "2024-05-01T12:00:00.000Z"},
    ],
}
WATTTIME_HISTORICAL = {
    "data": [
        {"point_time": "2024-05-01T10:00:00+00:00", "value": 1000.0, "version": "3.2"},
        {"point_time": "2024-05-01T10:05:00+00:00", "value": 500.0, "version": "3.2"},
    ],
    "meta": {
        "data_point_period_seconds": 300,
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "units": "lbs_co2_per_mwh",
        "warnings": [],
    },
}
UK_INTENSITY = {
    "data": [
        {
            "from": "2024-05-01T10:00Z",
            "to": "2024-05-01T10:30Z",
            "intensity": {"forecast": 150, "actual": 140, "index": "low"},
        },
        {
            "from": "2024-05-01T10:30Z",
            "to": "2024-05-01T11:00Z",
            "intensity": {"forecast": 120, "actual": None, "index": "low"},
        },
    ]
}


class _Reply:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def read(self) -> bytes:
        return self._body

    def __enter__(self) -> _Reply:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def fake_http(monkeypatch):
    """Patch urlopen: routes {url substring: payload or Exception}; records the requests."""
    calls: list[urllib.request.Request] = []
    routes: dict[str, object] = {}

    def urlopen(req, timeout=None):
        calls.append(req)
        for needle, reply in routes.items():
            if needle in req.full_url:
                if isinstance(reply, Exception):
                    raise reply
                body = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                return _Reply(body)
        raise urllib.error.URLError("no route in test")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return routes, calls


def test_parsers_read_the_documented_replies() -> None:
    pts = parse_electricitymaps(EM_PAST_RANGE, key="data", where="em")
    assert pts.values == [300.0, 200.0, 100.0] and pts.step_s == 3600
    assert pts.times_s[0] == T.timestamp() and not any(pts.forecast)
    pts = parse_watttime(WATTTIME_HISTORICAL, where="wt")
    assert pts.values == pytest.approx([453.59237, 226.796185]) and pts.step_s == 300
    t, v, used_forecast = parse_uk_carbon_intensity(UK_INTENSITY, where="uk")
    assert v == [140.0, 120.0] and used_forecast and t[1] - t[0] == 1800
    with pytest.raises(CarbonSourceUnavailableError, match="no 'history' list"):
        parse_electricitymaps({"error": "zone unknown"}, key="history", where="em")
    with pytest.raises(CarbonSourceUnavailableError, match="not an emission rate"):
        parse_watttime({"data": [], "meta": {"units": "percentile"}}, where="wt")


def test_electricity_maps_past_range(fake_http, monkeypatch) -> None:
    routes, calls = fake_http
    routes["/carbon-intensity/past-range"] = EM_PAST_RANGE
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", "secret-token")
    src = ElectricityMapsIntensity(zone="DE", backoff_s=0.0)
    assert isinstance(src, IntensitySource) and src.name == "electricitymaps:DE:lifecycle"
    got = src.intensity_over(T + timedelta(minutes=30), T + timedelta(hours=2))
    assert got.intensity_g_per_kwh == pytest.approx((0.5 * 300 + 200) / 1.5)
    assert got.source == "electricitymaps:DE:lifecycle (actual)" and got.region == "DE"
    assert got.forecast_share == 0.0
    req = calls[0]
    assert "zone=DE" in req.full_url and "start=2024-05-01T09%3A30%3A00Z" in req.full_url
    assert req.get_header("Auth-token") == "secret-token"
    # data lags behind: the last point is held to the end of the interval
    late = src.intensity_over(T + timedelta(hours=2), T + timedelta(hours=5))
    assert late.intensity_g_per_kwh == pytest.approx(100.0)
    assert "last value held 120 min" in late.source  # no forecast route here


def test_electricity_maps_recent_uses_history(fake_http) -> None:
    routes, calls = fake_http
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    items = [
        {"carbonIntensity": 250 + k, "datetime": (now - timedelta(hours=3 - k)).isoformat()}
        for k in range(4)
    ]
    routes["/carbon-intensity/history"] = {"zone": "FR", "history": items}
    src = ElectricityMapsIntensity(zone="FR", token="t", emission_factor="direct")
    got = src.intensity_over(now - timedelta(hours=2), now - timedelta(hours=1))
    assert got.intensity_g_per_kwh == pytest.approx(251.0)
    assert "emissionFactorType=direct" in calls[0].full_url
    trace = src.fetch_trace(now - timedelta(hours=3), now)
    assert len(trace) == 4


def test_watttime_logs_in_and_converts_units(fake_http) -> None:
    routes, calls = fake_http
    routes["/login"] = {"token": "bearer-abc"}
    routes["/v3/historical"] = WATTTIME_HISTORICAL
    src = WattTimeIntensity(region="CAISO_NORTH", username="ann", password="pw")
    got = src.intensity_over(T, T + timedelta(minutes=10))
    assert got.intensity_g_per_kwh == pytest.approx((1000 + 500) / 2 * 0.45359237)
    assert got.source == "watttime:CAISO_NORTH:co2_moer (actual)"
    login, hist = calls
    assert login.get_header("Authorization") == "Basic " + base64.b64encode(b"ann:pw").decode()
    assert hist.get_header("Authorization") == "Bearer bearer-abc"
    assert "signal_type=co2_moer" in hist.full_url and "region=CAISO_NORTH" in hist.full_url


def test_uk_api_marks_forecast_values_and_splits_long_ranges(fake_http) -> None:
    routes, calls = fake_http
    routes["/intensity/"] = UK_INTENSITY
    src = UKCarbonIntensity()
    got = src.intensity_over(T, T + timedelta(hours=1))
    assert got.intensity_g_per_kwh == pytest.approx(130.0)
    assert got.source == "carbonintensity.org.uk:GB (50% forecast)" and got.region == "GB"
    assert got.forecast_share == pytest.approx(0.5)
    assert calls[0].full_url.endswith("/intensity/2024-05-01T09:30Z/2024-05-01T11:00Z")
    calls.clear()
    src.fetch_trace(T, T + timedelta(days=30))
    assert len(calls) == 3  # at most 13 days per request


def test_unavailable_without_credentials(monkeypatch) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_TOKEN", raising=False)
    for var in ("WATTTIME_USER", "WATTTIME_USERNAME", "WATTTIME_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    assert issubclass(CarbonSourceUnavailableError, BadInputError)
    with pytest.raises(CarbonSourceUnavailableError, match="ELECTRICITYMAPS_TOKEN"):
        ElectricityMapsIntensity(zone="DE")
    with pytest.raises(CarbonSourceUnavailableError, match="WATTTIME_USER"):
        WattTimeIntensity(region="CAISO_NORTH")


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (urllib.error.HTTPError("u", 401, "Unauthorized", {}, None), "HTTP 401 Unauthorized"),
        (urllib.error.URLError("Name or service not known"), "Name or service not known"),
        (TimeoutError("timed out"), "timed out"),
        (b"<html>maintenance</html>", "not JSON"),
        ({"zone": "DE", "data": []}, "no data for"),
    ],
)
def test_failures_become_one_clean_error(fake_http, reply, needle: str) -> None:
    routes, _ = fake_http
    routes["/carbon-intensity/"] = reply
    src = ElectricityMapsIntensity(zone="DE", token="t", backoff_s=0.0)
    with pytest.raises(CarbonSourceUnavailableError) as err:
        src.intensity_over(T, T + timedelta(hours=1))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_unreachable_server_is_cleanly_unavailable() -> None:
    src = UKCarbonIntensity(base_url="http://127.0.0.1:9", timeout_s=0.5, retries=0)
    with pytest.raises(CarbonSourceUnavailableError, match="unavailable .*127.0.0.1:9"):
        src.intensity_over(T, T + timedelta(hours=1))
