"""Replay over traces: savings on the shipped data, the month breakdown, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from nas.errors import BadInputError
from nas.scheduling import Trace, load_trace, simulate

T0_S = int(datetime(2020, 6, 1, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def gb() -> Trace:
    return load_trace("gb_2020")


@pytest.mark.parametrize("policy", ["flexible-start", "pause-resume"])
def test_gb_small_job_saves_with_a_real_forecast(gb: Trace, policy: str) -> None:
    res = simulate(traces=[gb], policy=policy, forecast="seasonal", job_hours=2, window_hours=12)
    oracle = simulate(traces=[gb], policy=policy, forecast="oracle", job_hours=2, window_hours=12)
    assert res.jobs > 8000  # hourly over ~13 months
    assert 0 < res.saving_pct < oracle.saving_pct
    assert res.policy_g_per_kwh < res.baseline_g_per_kwh
    assert res.baseline_g_per_kwh == oracle.baseline_g_per_kwh


def test_spatial_gb_to_fr_and_run_now(gb: Trace) -> None:
    fr = load_trace("fr_2020")
    sp = simulate(
        traces=[gb, fr], policy="spatial", forecast="seasonal", job_hours=1, window_hours=1
    )
    assert sp.saving_pct > 50  # France's grid is far cleaner than Britain's in 2020
    assert sp.regions == ("gb_2020", "fr_2020")
    now = simulate(traces=[gb], policy="run-now", job_hours=3, window_hours=6)
    assert now.saving_pct == 0.0 and now.policy_g_per_kwh == now.baseline_g_per_kwh
    assert now.forecast == "none"


def test_months_add_up_and_dict_keys(gb: Trace) -> None:
    res = simulate(traces=[gb], policy="flexible-start", job_hours=1, window_hours=6, job_kw=2.5)
    jobs = np.array([m.jobs for m in res.by_month])
    assert jobs.sum() == res.jobs and len(res.by_month) == 14  # 2019-12 .. 2021-01
    weighted = sum(m.jobs * m.policy_g_per_kwh for m in res.by_month) / res.jobs
    assert weighted == pytest.approx(res.policy_g_per_kwh)
    assert res.by_month[1].month == "2020-01" and res.by_month[1].jobs == 31 * 24
    assert res.policy_g_per_job == pytest.approx(res.policy_g_per_kwh * 2.5 * 1)
    d = res.to_dict()
    for key in (
        "policy",
        "forecast",
        "jobs",
        "baseline_g_per_kwh",
        "policy_g_per_kwh",
        "saving_pct",
        "by_month",
        "forecast_is_upper_bound",
    ):
        assert key in d
    assert d["by_month"][0]["month"] == "2019-12" and d["forecast_is_upper_bound"] is False


def test_arrival_spacing_and_end_of_trace() -> None:
    values = np.arange(1.0, 25.0)  # 24 hourly slots
    tr = Trace(times_s=T0_S + 3600 * np.arange(24), values_g_per_kwh=values, name="ramp.csv")
    res = simulate(
        traces=[tr], policy="run-now", job_hours=2, window_hours=5, arrival_every_hours=3
    )
    # arrivals at 0, 3, ..., 18 (18 + 5 <= 24); 21 would run past the end
    assert res.jobs == 7
    assert res.baseline_per_job_g_per_kwh.tolist() == [1.5 + 3 * k for k in range(7)]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        (dict(job_hours=6, window_hours=4), "window (4 h) is shorter than the job (6 h)"),
        (dict(job_hours=1.25, window_hours=4), "not a whole number of 60-min slots"),
        (dict(job_hours=0, window_hours=4), "positive"),
        (dict(job_hours=1, window_hours=30), "shorter than one 30-h window"),
        (dict(job_hours=1, window_hours=4, job_kw=0), "job power"),
        (dict(job_hours=1, window_hours=4, slot_minutes=0), "slot must be positive"),
    ],
)
def test_bad_arguments(kwargs: dict, needle: str) -> None:
    tr = Trace(times_s=T0_S + 3600 * np.arange(24), values_g_per_kwh=np.ones(24), name="flat.csv")
    with pytest.raises(BadInputError) as err:
        simulate(traces=[tr], policy="flexible-start", **kwargs)
    assert needle in str(err.value)


def test_gap_longer_than_the_job_is_refused_shorter_is_held() -> None:
    hours = np.r_[0:10, 13:30]  # 10:00, 11:00, 12:00 missing
    tr = Trace(times_s=T0_S + 3600 * hours, values_g_per_kwh=np.ones(hours.size), name="gap.csv")
    with pytest.raises(BadInputError, match="3 h of missing data.*longer than the job"):
        simulate(traces=[tr], policy="flexible-start", job_hours=2, window_hours=4)
    res = simulate(traces=[tr], policy="flexible-start", job_hours=3, window_hours=4)
    assert res.jobs == 30 - 4 + 1


@pytest.mark.parametrize("policy", ["flexible-start", "pause-resume"])
def test_replan_oracle_is_the_one_shot_optimum_and_forecasts_decide_slot_by_slot(
    policy: str,
) -> None:
    from nas.scheduling._forecast import create_forecaster, forecast_at

    rng = np.random.default_rng(5)
    hours = 24 * 6
    values = 200 + 80 * np.sin(np.arange(hours) * 2 * np.pi / 24) + rng.normal(0, 30, hours)
    tr = Trace(times_s=T0_S + 3600 * np.arange(hours), values_g_per_kwh=values, name="r.csv")
    common = dict(traces=[tr], policy=policy, job_hours=3, window_hours=10)
    once = simulate(forecast="oracle", **common)
    again = simulate(forecast="oracle", replan=True, **common)
    assert again.replan and again.to_dict()["replan"] is True
    assert np.allclose(again.policy_per_job_g_per_kwh, once.policy_per_job_g_per_kwh)
    # a forecast-based job re-decides at each hour with the forecast made at that hour only
    res = simulate(forecast="seasonal", replan=True, **common)
    fc = create_forecaster("seasonal")
    for j in (30, 77, 120):  # arrivals are hourly from the first slot
        left, ran = 3, []
        for s in range(10):
            f = forecast_at(fc, values, j + s, slot_s=3600, horizon_slots=10 - s)
            if policy == "pause-resume":
                go = left > 0 and ((f[1:] < f[0]).sum() < left or left >= 10 - s)
            else:
                sums = np.convolve(f, np.ones(3), "valid")
                go = not ran and s <= 7 and (sums[0] <= sums.min() or s == 7)
            if go or (policy == "flexible-start" and 0 < len(ran) < 3):
                ran.append(j + s)
                left -= 1
        assert res.policy_per_job_g_per_kwh[j] == pytest.approx(values[ran].mean())
    with pytest.raises(BadInputError, match="replan applies to"):
        simulate(traces=[tr], policy="run-now", job_hours=3, window_hours=10, replan=True)
