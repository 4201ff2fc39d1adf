"""Live sources against a loopback server replaying the providers' documented replies.

Latest, history and forecast of each provider; WattTime's login; the failure cases (401, 429,
500, a timeout, malformed JSON, an empty forecast) each end in a retry or in the fallback with
its reason recorded in one line, and a value is always returned: no trial is lost.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from nas.carbon import (
    CarbonSourceUnavailableError,
    FallbackIntensity,
    RegionIntensity,
    create_live_source,
    parse_source,
    public_url,
    resolve_carbon_source,
)
from nas.errors import BadInputError
from tests.scheduling.loopback import (
    TOKEN,
    WT_BEARER,
    WT_PASSWORD,
    WT_USER,
    actual_at,
    expected_uk_mean,
    forecast_at,
)

NOW = datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
SECRETS = (TOKEN, WT_PASSWORD, WT_BEARER)


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", TOKEN)
    monkeypatch.setenv("WATTTIME_USER", WT_USER)
    monkeypatch.setenv("WATTTIME_PASSWORD", WT_PASSWORD)


def live(loopback, text: str, **kw):  # noqa: ANN001, ANN201
    spec = parse_source(text)
    return create_live_source(spec, base_url=loopback.url, timeout_s=0.3, backoff_s=0.0, **kw)


def test_uk_national_history_mixes_actuals_and_forecast(loopback) -> None:
    loopback.now = NOW
    src = live(loopback, "live:uk-carbon-intensity")
    a, b = NOW - timedelta(minutes=40), NOW  # 11:30-12:00 final, 12:00-12:10 not yet
    got = src.intensity_over(a, b)
    assert got.intensity_g_per_kwh == pytest.approx(
        expected_uk_mean(a.timestamp(), b.timestamp(), NOW.timestamp())
    )
    assert got.forecast_share == pytest.approx(10 / 40)
    assert got.source == "carbonintensity.org.uk:GB (25% forecast)"
    latest = src.latest()
    assert latest.intensity_g_per_kwh == pytest.approx(forecast_at(NOW.timestamp()))
    fc = src.forecast(NOW)
    assert len(fc) >= 96 and all(fc.forecast)
    assert fc.values[0] == pytest.approx(forecast_at(NOW.timestamp()))


def test_uk_regional_by_id_and_postcode(loopback) -> None:
    loopback.now = NOW
    for text, kind in (
        ("live:uk-carbon-intensity:13", "regionid/13"),
        ("live:uk-carbon-intensity:rg10", "postcode/RG10"),
    ):
        src = live(loopback, text)
        got = src.intensity_over(NOW - timedelta(hours=1), NOW)
        assert got.forecast_share == 1.0  # the API publishes regional forecasts only
        a, b = (NOW - timedelta(hours=1)).timestamp(), NOW.timestamp()
        assert got.intensity_g_per_kwh == pytest.approx(expected_uk_mean(a, b, asked_at=0.0))
        assert src.latest().intensity_g_per_kwh == pytest.approx(forecast_at(NOW.timestamp()))
        assert len(src.forecast(NOW)) >= 96
        assert all(kind in p for p in loopback.paths("/regional"))
        loopback.requests.clear()


def test_electricitymaps_latest_history_forecast(loopback) -> None:
    src = live(loopback, "live:electricitymaps:DE")
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    got = src.intensity_over(hour - timedelta(hours=3), hour - timedelta(hours=2))
    assert got.intensity_g_per_kwh == pytest.approx(
        actual_at((hour - timedelta(hours=3)).timestamp())
    )
    assert got.forecast_share == 0.0
    # the last hour's history point ends at the hour; the rest of the interval is forecast
    run = src.intensity_over(hour - timedelta(minutes=30), hour + timedelta(minutes=30))
    want = (actual_at(hour.timestamp() - 3600) + forecast_at(hour.timestamp())) / 2
    assert run.intensity_g_per_kwh == pytest.approx(want)
    assert run.forecast_share == pytest.approx(0.5) and "50% forecast" in run.source
    fc = src.forecast(now)
    assert fc.issued_at == hour and len(fc) == 24
    assert src.latest().intensity_g_per_kwh == pytest.approx(actual_at(hour.timestamp() - 3600))
    assert all(h.get("Auth-Token") == TOKEN for _, h in loopback.requests)
    past = src.intensity_over(NOW - timedelta(hours=2), NOW - timedelta(hours=1))  # past-range
    ten = NOW.timestamp() - 7800  # 10:00: hourly points of 10:00 and 11:00 cover 10:10-11:10
    want = (50 * actual_at(ten) + 10 * actual_at(ten + 3600)) / 60
    assert past.intensity_g_per_kwh == pytest.approx(want)


def test_watttime_login_history_forecast(loopback) -> None:
    src = live(loopback, "live:watttime:CAISO_NORTH")
    five = datetime.fromtimestamp((datetime.now(UTC).timestamp() // 300) * 300, UTC)
    a = five - timedelta(minutes=30)
    got = src.intensity_over(a, five)
    slots = [a.timestamp() + k * 300 for k in range(6)]
    assert got.intensity_g_per_kwh == pytest.approx(sum(actual_at(t) for t in slots) / 6)
    assert got.source.startswith("watttime:CAISO_NORTH:co2_moer")
    fc = src.forecast(five)
    assert fc.issued_at == five and fc.values[0] == pytest.approx(forecast_at(five.timestamp()))
    logins = loopback.paths("/login")
    assert len(logins) == 1  # one login, then the bearer token
    # the token expires: one 401, a new login, the request again
    loopback.fail("/v3/forecast", 401)
    src.forecast(five)
    assert len(loopback.paths("/login")) == 2


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (401, "HTTP 401"),
        (500, "HTTP 500"),
        ("hang", "timed out"),
        (b"{not json", "not JSON"),
    ],
)
def test_failures_fall_back_with_one_line(loopback, caplog, failure, reason: str) -> None:
    loopback.now = NOW
    loopback.hang_s = 0.6
    loopback.fail("/intensity", *([failure] * 4))  # every try of the one request fails
    src = FallbackIntensity(
        live=live(loopback, "live:uk-carbon-intensity", retries=1), country="GBR"
    )
    caplog.set_level(logging.WARNING)
    got = src.intensity_over(NOW - timedelta(hours=1), NOW)
    yearly = RegionIntensity(region="GBR").intensity_g_per_kwh
    assert got.intensity_g_per_kwh == yearly  # nothing lost: the yearly average is charged
    assert reason in got.fallback_reason and reason in got.source
    assert got.source.startswith("codecarbon:global_energy_mix:GBR") and "fallback" in got.source
    lines = [
        r.getMessage()
        for r in caplog.records
        if "fallback" in r.getMessage() or "instead" in r.getMessage()
    ]
    assert len(lines) == 1 and "\n" not in lines[0] and reason in lines[0]
    tries = 1 if failure in (401, b"{not json") else 2  # 401 and a bad body are not retried
    assert len(loopback.paths("/intensity")) == tries


def test_429_is_retried_then_answered(loopback) -> None:
    loopback.now = NOW
    loopback.fail("/intensity", 429, 503)
    src = FallbackIntensity(
        live=live(loopback, "live:uk-carbon-intensity", retries=3), country="GBR"
    )
    got = src.intensity_over(NOW - timedelta(minutes=40), NOW - timedelta(minutes=10))
    assert got.fallback_reason is None and got.forecast_share == 0.0
    assert got.intensity_g_per_kwh == pytest.approx(actual_at(NOW.timestamp() - 2400))
    assert len(loopback.paths("/intensity")) == 3


def test_empty_forecast_holds_the_last_actual_and_says_so(loopback) -> None:
    src = live(loopback, "live:electricitymaps:DE")
    loopback.fail("/v3/carbon-intensity/forecast", {"zone": "DE", "forecast": []})
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    got = src.intensity_over(hour, hour + timedelta(minutes=20))
    assert got.intensity_g_per_kwh == pytest.approx(actual_at(hour.timestamp() - 3600))
    assert "last value held" in got.source and "empty forecast" in got.source
    with pytest.raises(CarbonSourceUnavailableError, match="empty forecast"):
        loopback.fail("/v3/carbon-intensity/forecast", {"zone": "DE", "forecast": []})
        src.forecast(hour)


def test_cache_under_the_run_directory(loopback, tmp_path) -> None:
    loopback.now = NOW
    src = live(loopback, "live:uk-carbon-intensity", cache_dir=tmp_path / "carbon-cache")
    src.forecast(NOW)
    src.forecast(NOW)  # the second from the cache (forecasts: 5 min)
    assert len(loopback.paths("fw48h")) == 1
    old = NOW - timedelta(days=30)
    src.intensity_over(old, old + timedelta(hours=1))
    src.intensity_over(old, old + timedelta(hours=1))  # final history: kept for good
    assert len(loopback.paths("/intensity/2024-04-01")) == 1
    files = list((tmp_path / "carbon-cache").glob("*.json"))
    assert len(files) == 2 and not any(s in f.read_text() for f in files for s in SECRETS)


def test_secrets_never_appear(loopback, caplog, tmp_path) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://user:{WT_PASSWORD}@{loopback.url.removeprefix('http://')}"
    texts: list[str] = []
    for text in ("live:electricitymaps:DE", "live:watttime:CAISO_NORTH"):
        src = resolve_carbon_source(source=text, base_url=url, retries=0, cache_dir=tmp_path)
        texts.append(repr(src))
        for failure in (401, 500, b"oops"):
            loopback.fail("/v3", failure)
            texts.append(src.intensity_over(NOW - timedelta(hours=1), NOW).source)
    src.live._token = None
    loopback.fail("/login", 403)
    with pytest.raises(CarbonSourceUnavailableError) as err:
        src.live.forecast(NOW)
    texts.append(str(err.value))
    texts += [r.getMessage() for r in caplog.records]
    assert any("fallback" in t for t in texts) and any("HTTP 403" in t for t in texts)
    blob = "\n".join(texts)
    for secret in SECRETS:
        assert secret not in blob
    assert public_url(url) == loopback.url


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("live:nope", "unknown carbon provider 'nope'"),
        ("live:electricitymaps:XX-NOPE", "unknown Electricity Maps zone"),
        ("live:electricitymaps", "needs a ZONE"),
        ("live:uk-carbon-intensity:99", "unknown UK region"),
        ("live:watttime:caiso north", "unknown WattTime region"),
        ("sunny", "is unknown"),
    ],
)
def test_bad_source_strings(text: str, needle: str) -> None:
    with pytest.raises(BadInputError, match=needle):
        parse_source(text)


def test_missing_token_is_bad_input(monkeypatch) -> None:
    monkeypatch.delenv("ELECTRICITYMAPS_TOKEN")
    with pytest.raises(BadInputError, match="ELECTRICITYMAPS_TOKEN"):
        resolve_carbon_source(source="live:electricitymaps:DE")
