"""`econas schedule plan` against the loopback UK server: the forecast's greenest window."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from nas.cli import main
from tests.scheduling.loopback import SLOT


def _greenest_start(fc, now_s: float, job_s: int, window_s: int) -> float:  # noqa: ANN001
    slot0 = now_s // SLOT * SLOT
    best, best_start = float("inf"), now_s
    for k in range(int((now_s + window_s - job_s - slot0) // SLOT) + 1):
        start = max(now_s, slot0 + k * SLOT)
        if start + job_s > now_s + window_s:
            break
        n = 200
        mean = sum(fc(start + (i + 0.5) * job_s / n) for i in range(n)) / n
        if mean < best - 1e-9:
            best, best_start = mean, start
    return best_start


def test_plan_picks_the_forecasts_greenest_window(loopback, capsys) -> None:
    now_s = datetime.now(UTC).timestamp()
    slot0 = now_s // SLOT * SLOT
    green = (slot0 + 9 * SLOT, slot0 + 13 * SLOT)  # 4.5-6.5 h ahead, 2 h long

    def fc(t: float) -> float:
        return 60.0 if green[0] <= t < green[1] else 250.0 + (t - slot0) / 3600.0

    loopback.forecast_fn = fc
    argv = ["schedule", "plan", "--source", "live:uk-carbon-intensity", "--job-hours", "2",
            "--window-hours", "12", "--carbon-base-url", loopback.url, "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"start", "end", "expected_g_per_kwh", "now_g_per_kwh", "saving_pct",
                        "source", "forecast_issued_at"}  # fmt: skip
    want = _greenest_start(fc, now_s, 7200, 12 * 3600)
    assert want == green[0]
    start = datetime.fromisoformat(out["start"].replace("Z", "+00:00")).timestamp()
    assert start == pytest.approx(want)
    assert out["expected_g_per_kwh"] == pytest.approx(60.0)
    assert out["now_g_per_kwh"] > 250.0 and out["saving_pct"] > 70.0
    assert out["source"] == "carbonintensity.org.uk:GB"
    assert any("fw48h" in p for p in loopback.paths())


def test_plan_human_output_and_bad_input(loopback, capsys) -> None:
    argv = ["schedule", "plan", "--source", "live:uk-carbon-intensity:13", "--job-hours", "1",
            "--window-hours", "6", "--carbon-base-url", loopback.url]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("start ") and "% less (forecast, not measured)" in out
    for bad, needle in (
        (["--source", "live:nowhere"], "unknown carbon provider"),
        (["--source", "trace:gb_2020"], "needs a live source"),
        (["--source", "live:uk-carbon-intensity", "--window-hours", "0.5"], "shorter than"),
    ):
        args = ["schedule", "plan", "--job-hours", "1", "--window-hours", "6", *bad]
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0]


def test_planner_falls_back_to_a_causal_forecast(loopback, monkeypatch) -> None:
    from nas.carbon import create_live_source, parse_source
    from nas.scheduling import LivePlanner
    from tests.scheduling.loopback import TOKEN

    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", TOKEN)
    src = create_live_source(
        parse_source("live:electricitymaps:DE"), base_url=loopback.url, retries=0
    )
    loopback.fail("/v3/carbon-intensity/forecast", 503)
    now = datetime.now(UTC)
    from datetime import timedelta

    plan = LivePlanner(source=src).plan(now, duration_s=3600, deadline=now + timedelta(hours=6))
    assert plan.forecast.startswith("seasonal (causal, from electricitymaps:DE:lifecycle history")
    assert "HTTP 503" in plan.forecast and plan.forecast_issued_at is None
    assert now <= plan.start <= now + timedelta(hours=5)
    # with neither forecast nor history: start now, and say why
    loopback.fail("/v3/carbon-intensity/", 503, 503)
    plan = LivePlanner(source=src).plan(now, duration_s=3600, deadline=now + timedelta(hours=6))
    assert plan.start == now and plan.saving_pct == 0.0 and plan.forecast.startswith("none:")
