"""Forecasters: never read past the decision time; the oracle is the only one that sees ahead."""

from __future__ import annotations

import numpy as np
import pytest

from nas.errors import BadInputError
from nas.scheduling import FORECASTERS, Forecaster, create_forecaster, create_policy
from nas.scheduling._forecast import (
    OracleForecaster,
    PersistenceForecaster,
    SeasonalForecaster,
    forecast_at,
    forecast_matrix,
)

SLOT_S = 1800
SPD = 48  # slots per day


def periodic(days: int) -> np.ndarray:
    phase = np.arange(days * SPD) % SPD
    return 200 + 80 * np.sin(2 * np.pi * phase / SPD) + 15 * np.cos(6 * np.pi * phase / SPD)


def noisy(days: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return periodic(days) + rng.normal(0, 30, days * SPD).clip(-150, 150)


def test_names_and_unknown() -> None:
    assert FORECASTERS == ("persistence", "seasonal", "oracle")
    for name in FORECASTERS:
        assert create_forecaster(name).name == name
    assert create_forecaster("oracle").perfect_foresight
    assert not create_forecaster("seasonal").perfect_foresight
    with pytest.raises(BadInputError, match="unknown forecast 'magic'"):
        create_forecaster("magic")


@pytest.mark.parametrize("name", ["persistence", "seasonal"])
def test_periodic_signal_is_predicted_exactly(name: str) -> None:
    values = periodic(20)
    i = 15 * SPD + 7
    got = forecast_at(create_forecaster(name), values, i, slot_s=SLOT_S, horizon_slots=96)
    assert got == pytest.approx(values[i : i + 96], abs=1e-9)


class _Spy(Forecaster):
    """Records what it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple[np.ndarray, object]] = []

    @property
    def name(self) -> str:
        return "spy"

    def history_slots(self, slot_s: int) -> int:
        return 10**9

    def predict(self, past_g_per_kwh, *, slot_s, horizon_slots, future_g_per_kwh=None):
        self.seen.append((past_g_per_kwh, future_g_per_kwh))
        return np.zeros(horizon_slots)


def test_driver_hands_only_a_copy_of_the_past() -> None:
    values = noisy(5)
    spy = _Spy()
    forecast_at(spy, values, 100, slot_s=SLOT_S, horizon_slots=24)
    past, future = spy.seen[0]
    assert future is None and past.size == 100
    assert np.array_equal(past, values[:100])
    past[:] = -1  # a copy: the trace is untouched
    assert values[0] != -1


@pytest.mark.parametrize(
    "forecaster",
    [PersistenceForecaster(), SeasonalForecaster(), SeasonalForecaster(persistence_weight=0.5)],
    ids=["persistence", "seasonal", "seasonal-blend"],
)
@pytest.mark.parametrize("policy", ["flexible-start", "pause-resume"])
def test_changing_the_future_changes_no_forecast_or_decision(forecaster, policy: str) -> None:
    values = noisy(30, seed=1)
    changed = values.copy()
    cut = 20 * SPD
    changed[cut:] = np.random.default_rng(9).uniform(0, 500, changed.size - cut)
    idx = np.arange(0, cut + 1, 5)  # decisions made at or before the cut
    a = forecast_matrix(forecaster, values, idx, slot_s=SLOT_S, horizon_slots=48)
    b = forecast_matrix(forecaster, changed, idx, slot_s=SLOT_S, horizon_slots=48)
    assert np.array_equal(a, b)
    pol = create_policy(policy)
    assert np.array_equal(
        pol.choose(a[:, None, :], job_slots=4), pol.choose(b[:, None, :], job_slots=4)
    )


def test_the_oracle_does_see_the_future() -> None:
    """Sanity check of the test above: a forecaster that peeks is caught by it."""
    values = noisy(30, seed=1)
    changed = values.copy()
    changed[20 * SPD :] += np.random.default_rng(9).uniform(0, 500, 10 * SPD)
    idx = np.array([20 * SPD - 10])
    a = forecast_matrix(OracleForecaster(), values, idx, slot_s=SLOT_S, horizon_slots=48)
    b = forecast_matrix(OracleForecaster(), changed, idx, slot_s=SLOT_S, horizon_slots=48)
    assert not np.array_equal(a, b)
    assert np.array_equal(a[0], values[idx[0] : idx[0] + 48])


def test_short_history_falls_back_to_flat() -> None:
    for fc in (PersistenceForecaster(), SeasonalForecaster()):
        empty = forecast_at(fc, periodic(2), 0, slot_s=SLOT_S, horizon_slots=10)
        assert np.all(empty == 0.0)
        few = forecast_at(fc, periodic(2), 5, slot_s=SLOT_S, horizon_slots=10)
        assert np.all(few == periodic(2)[4])


def test_seasonal_profile_and_decaying_deviation() -> None:
    values = periodic(14)
    values[-1] += 100.0  # the last known slot is unusually high
    fc = SeasonalForecaster(days=14, halflife_hours=1.0)
    got = fc.predict(values, slot_s=SLOT_S, horizon_slots=4)
    expected_profile = periodic(15)[14 * SPD : 14 * SPD + 4]
    profile_at_last = (periodic(14)[-SPD:] * 13 + values[-SPD:]) / 14  # day means incl. spike
    deviation = values[-1] - profile_at_last[-1]
    decay = 0.5 ** (np.arange(1, 5) * 0.5)
    assert got == pytest.approx(expected_profile + deviation * decay)


def test_bad_settings_and_slots() -> None:
    with pytest.raises(BadInputError):
        SeasonalForecaster(days=0)
    with pytest.raises(BadInputError):
        SeasonalForecaster(persistence_weight=1.5)
    with pytest.raises(BadInputError, match="divide a day"):
        SeasonalForecaster().history_slots(7 * 60)
    with pytest.raises(BadInputError, match="not available"):
        OracleForecaster().predict(np.ones(3), slot_s=SLOT_S, horizon_slots=2)
