"""Policies: oracle results equal brute force over a small hand-made trace; schedules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from nas.errors import BadInputError
from nas.scheduling import POLICIES, ScheduledInterval, Trace, create_policy, simulate

T0 = datetime(2020, 6, 1, tzinfo=UTC)
T0_S = int(T0.timestamp())
HOME = [310, 120, 95, 400, 80, 82, 250, 60, 300, 75, 90, 500, 45, 47, 300, 110, 130, 70, 220, 65]
AWAY = [200, 210, 190, 60, 220, 230, 40, 240, 250, 260, 55, 270, 280, 30, 290, 300, 35, 310, 90, 95]


def hourly(values: list[float], name: str) -> Trace:
    times = T0_S + 3600 * np.arange(len(values))
    return Trace(times_s=times, values_g_per_kwh=np.asarray(values, float), name=name)


def brute_flexible(v: list[float], arrival: int, job: int, window: int) -> float:
    return min(np.mean(v[s : s + job]) for s in range(arrival, arrival + window - job + 1))


def brute_pause(v: list[float], arrival: int, job: int, window: int) -> float:
    slots = range(arrival, arrival + window)
    return min(np.mean([v[i] for i in combo]) for combo in itertools.combinations(slots, job))


def brute_spatial(regions: list[list[float]], arrival: int, job: int, window: int) -> float:
    return min(brute_flexible(v, arrival, job, window) for v in regions)


@pytest.mark.parametrize(("job", "window"), [(1, 1), (1, 5), (2, 5), (3, 6), (4, 4), (2, 8)])
def test_oracle_equals_brute_force(job: int, window: int) -> None:
    home = hourly(HOME, "home.csv")
    away = hourly(AWAY, "away.csv")
    arrivals = range(0, len(HOME) - window + 1)
    expect = {
        "run-now": [np.mean(HOME[a : a + job]) for a in arrivals],
        "flexible-start": [brute_flexible(HOME, a, job, window) for a in arrivals],
        "pause-resume": [brute_pause(HOME, a, job, window) for a in arrivals],
        "spatial": [brute_spatial([HOME, AWAY], a, job, window) for a in arrivals],
    }
    for policy, per_job in expect.items():
        traces = [home, away] if policy == "spatial" else [home]
        res = simulate(
            traces=traces, policy=policy, forecast="oracle", job_hours=job, window_hours=window
        )
        assert res.jobs == len(per_job)
        assert res.policy_per_job_g_per_kwh == pytest.approx(per_job, rel=1e-12), policy
        assert res.policy_g_per_kwh == pytest.approx(np.mean(per_job), rel=1e-12)
        assert res.baseline_g_per_kwh == pytest.approx(np.mean(expect["run-now"]), rel=1e-12)


def test_oracle_orders_policies() -> None:
    home, away = hourly(HOME, "home.csv"), hourly(AWAY, "away.csv")
    kw = dict(forecast="oracle", job_hours=2, window_hours=8)
    now = simulate(traces=[home], policy="run-now", **kw).policy_g_per_kwh
    flex = simulate(traces=[home], policy="flexible-start", **kw).policy_g_per_kwh
    pause = simulate(traces=[home], policy="pause-resume", **kw).policy_g_per_kwh
    spatial = simulate(traces=[home, away], policy="spatial", **kw).policy_g_per_kwh
    assert pause <= flex < now and spatial <= flex


def test_choose_masks_and_tie_breaks() -> None:
    fc = np.array([[[5.0, 1.0, 1.0, 1.0, 9.0]], [[3.0, 3.0, 3.0, 3.0, 3.0]]])
    flex = create_policy("flexible-start").choose(fc, job_slots=2)
    assert flex[:, 0].astype(int).tolist() == [[0, 1, 1, 0, 0], [1, 1, 0, 0, 0]]
    pause = create_policy("pause-resume").choose(fc, job_slots=2)
    assert pause[:, 0].astype(int).tolist() == [[0, 1, 1, 0, 0], [1, 1, 0, 0, 0]]
    now = create_policy("run-now").choose(fc, job_slots=3)
    assert now[:, 0].astype(int).tolist() == [[1, 1, 1, 0, 0]] * 2
    two = np.array([[[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]], [[4.0, 4.0, 4.0], [1.0, 4.0, 0.5]]])
    sp = create_policy("spatial").choose(two, job_slots=1)
    assert np.argwhere(sp[0]).tolist() == [[0, 0]]  # ties: home region, earliest
    assert np.argwhere(sp[1]).tolist() == [[1, 2]]
    with pytest.raises(BadInputError, match="shorter than the job"):
        create_policy("flexible-start").choose(fc, job_slots=6)


def test_plan_returns_region_start_end_intervals() -> None:
    fc = np.array([9, 1, 8, 2, 7, 3, 9, 9], dtype=float)
    kw = dict(arrival=T0, job_duration_s=3 * 1800, window_s=8 * 1800, slot_s=1800)
    (only,) = create_policy("flexible-start").plan(forecast=fc, **kw)
    assert only == ScheduledInterval(
        "home", T0 + timedelta(minutes=30), T0 + timedelta(minutes=120)
    )
    assert only.duration_s == 5400
    pieces = create_policy("pause-resume").plan(forecast=fc, **kw)
    assert [(p.start - T0, p.end - T0) for p in pieces] == [
        (timedelta(minutes=30), timedelta(minutes=60)),
        (timedelta(minutes=90), timedelta(minutes=120)),
        (timedelta(minutes=150), timedelta(minutes=180)),
    ]
    regions = np.stack([fc, fc - 5])
    (where,) = create_policy("spatial").plan(forecast=regions, regions=("gb", "fr"), **kw)
    assert where.region == "fr"


def test_unknown_policy_and_region_rules() -> None:
    assert POLICIES == ("run-now", "flexible-start", "pause-resume", "spatial")
    with pytest.raises(BadInputError, match="unknown policy 'later'"):
        create_policy("later")
    home = hourly(HOME, "home.csv")
    with pytest.raises(BadInputError, match="needs at least two traces"):
        simulate(traces=[home], policy="spatial", job_hours=1, window_hours=4)
    with pytest.raises(BadInputError, match="several only with spatial"):
        simulate(traces=[home, home], policy="flexible-start", job_hours=1, window_hours=4)
