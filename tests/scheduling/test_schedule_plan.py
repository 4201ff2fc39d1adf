"""`econas schedule plan` against the loopback UK server: the forecast's greenest window."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import nas
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
    assert "\ndata: " in out and "forecast slots of 30 min from carbonintensity.org.uk" in out
    for bad, needle in (
        (["--source", "live:nowhere"], "unknown carbon provider"),
        (["--source", "live:uk-carbon-intensity", "--at", "2020-06-10T00:00Z"], "--at is for"),
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


def _plan(capsys, *argv: str) -> tuple[int, dict | str, str]:  # noqa: ANN001
    rc = main(["schedule", "plan", *argv])
    cap = capsys.readouterr()
    try:
        return rc, json.loads(cap.out), cap.err
    except ValueError:
        return rc, cap.out, cap.err


def test_plan_on_a_trace_as_of_a_stated_time(capsys, tmp_path) -> None:  # noqa: ANN001
    """`schedule plan` refused a trace ("needs a live source"): any simulate source plans."""
    from datetime import timedelta

    from nas.scheduling import TracePlanner, load_trace

    at = "2020-06-10T06:00:00Z"
    argv = ["--job-hours", "2", "--window-hours", "12", "--at", at, "--json"]
    rc, out, err = _plan(capsys, "--source", "gb_2020", *argv)
    assert rc == 0, err
    assert out["as_of"] == at and out["source"] == "gb_2020.csv" and out["fallback"] is None
    assert out["forecast"] == f"seasonal (causal, from gb_2020.csv before {at})"
    # which data: the 14 days of history the seasonal forecast reads, up to --at's slot
    assert out["data"] == (
        "672 history slots of 30 min of gb_2020.csv, 2020-05-27T06:00:00Z .. " + at
    )
    csv = Path(nas.__file__).parent / "traces" / "gb_2020.csv"  # the CSV simulate reads
    for same in ("trace:gb_2020", str(csv), f"trace:{csv}"):
        assert _plan(capsys, "--source", same, *argv)[1] == out
    # the start is the forecast's greenest feasible one; expected = its mean there
    trace = load_trace("gb_2020")
    when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    fc = TracePlanner(trace=trace).forecast(when, deadline=when + timedelta(hours=12))
    starts = [when.timestamp() + k * 1800 for k in range(21)]  # 2 h job in a 12 h window
    means = [float(fc.trace.mean_over(s, s + 7200)) for s in starts]
    best = starts[means.index(min(means))]
    start = datetime.fromisoformat(out["start"].replace("Z", "+00:00")).timestamp()
    assert start == best and out["expected_g_per_kwh"] == pytest.approx(min(means))
    assert out["now_g_per_kwh"] == pytest.approx(means[0])
    # what really happened, from the trace itself
    assert out["actual_g_per_kwh"] == pytest.approx(float(trace.mean_over(start, start + 7200)))
    assert out["actual_now_g_per_kwh"] == pytest.approx(
        float(trace.mean_over(when.timestamp(), when.timestamp() + 7200))
    )


def test_trace_plan_is_causal(capsys, tmp_path) -> None:  # noqa: ANN001
    """A plan as of --at uses only the trace's values before it: changing the future changes
    the actual figures, never the plan."""
    from nas.scheduling import load_trace

    trace = load_trace("fr_2020")
    at = datetime(2020, 6, 10, 6, tzinfo=UTC).timestamp()
    rows = ["Time,Carbon Intensity"]
    for t, v in zip(trace.times_s.tolist(), trace.values_g_per_kwh.tolist(), strict=True):
        v = v * 3 if t >= at else v  # the future, tripled
        rows.append(f"{datetime.fromtimestamp(t, UTC).isoformat()},{v}")
    changed = tmp_path / "fr_changed.csv"
    changed.write_text("\n".join(rows) + "\n")
    argv = ["--job-hours", "3", "--window-hours", "24", "--at", "2020-06-10T06:00Z", "--json"]
    _, a, _ = _plan(capsys, "--source", "fr_2020", *argv)
    _, b, _ = _plan(capsys, "--source", str(changed), *argv)
    for key in ("start", "end", "expected_g_per_kwh", "now_g_per_kwh", "saving_pct"):
        assert a[key] == pytest.approx(b[key]), key
    assert b["actual_now_g_per_kwh"] == pytest.approx(3 * a["actual_now_g_per_kwh"], rel=1e-6)


def test_trace_plan_bad_input_is_one_line(capsys) -> None:  # noqa: ANN001
    base = ["--job-hours", "2", "--window-hours", "12"]
    for extra, needle in (
        (["--source", "gb_2020"], "covers 2019-12-20T00:00:00Z .. 2021-01-10T00:00:00Z, not now"),
        (["--source", "gb_2020", "--at", "2019-01-01T00:00Z"], "is outside the trace gb_2020"),
        (["--source", "gb_2020", "--at", "yesterday"], "--at: cannot parse time"),
        (["--source", "nope"], "neither a live source (live:PROVIDER[:REGION]) nor a readable"),
        (["--source", "gb_2020", "--carbon-base-url", "http://x"], "is for a live source"),
    ):
        rc, _, err = _plan(capsys, *base, *extra)
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and needle in lines[0], (extra, err)


def test_no_data_is_exit_2_unless_fallback_now(loopback, capsys, caplog) -> None:  # noqa: ANN001
    """An unreachable source exited 0 with "saving_pct": 0.0 next to an unknown expectation."""
    argv = ["--source", "live:uk-carbon-intensity", "--job-hours", "1", "--window-hours", "6",
            "--carbon-base-url", loopback.url]  # fmt: skip
    loopback.fail("/", *([400] * 20))  # every request refused: no forecast, no history
    rc, _, err = _plan(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert not caplog.records  # no "planning on a causal forecast instead" before the error
    assert lines[0].startswith("econas: error: no carbon data from carbonintensity.org.uk")
    assert "forecast: " in lines[0] and "; history: " in lines[0]  # why, both
    assert "--fallback now" in lines[0]
    loopback.fail("/", *([400] * 20))
    rc, out, err = _plan(capsys, *argv, "--fallback", "now", "--json")
    assert rc == 0
    assert out["expected_g_per_kwh"] is None and out["now_g_per_kwh"] is None
    assert out["saving_pct"] is None  # not 0.0: nothing is known
    assert out["fallback"].startswith("now: ") and out["data"] == "none"
    assert out["start"] == out["as_of"]
    loopback.fail("/", *([400] * 20))
    rc, text, _ = _plan(capsys, *argv, "--fallback", "now")
    assert rc == 0 and "no forecast: now: " in text and "expected" not in text
