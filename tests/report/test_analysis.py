"""nas.report: fronts, hypervolume, knee and cap pick on hand-made points and a real study."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from nas.errors import BadInputError
from nas.report import (
    Point,
    best_under_cap,
    build_report,
    hypervolume,
    hypervolume_history,
    knee_point,
    pareto_front,
    points,
    search_cost,
)


def _p(n: int, acc: float, kg: float) -> Point:
    return Point(trial=n, accuracy=acc, kgco2e=kg, attrs={"arch": f"a{n}"})


PTS = [_p(0, 0.5, 1e-6), _p(1, 0.7, 1e-5), _p(2, 0.6, 2e-5), _p(3, 0.9, 1e-3), _p(4, 0.85, 1e-4)]


def test_front_is_the_non_dominated_points_cheapest_first() -> None:
    assert [p.trial for p in pareto_front(PTS)] == [0, 1, 4, 3]


def test_hypervolume_matches_the_rectangles() -> None:
    pts = [_p(0, 0.5, 1.0), _p(1, 0.8, 2.0)]
    # union of [0,0.5]x[1,3] and [0,0.8]x[2,3]: 0.5*2 + 0.3*1
    assert hypervolume(pts, ref_accuracy=0.0, ref_kgco2e=3.0) == pytest.approx(1.3)
    assert hypervolume([_p(0, 0.5, 4.0)], ref_accuracy=0.0, ref_kgco2e=3.0) == 0.0


def test_knee_is_the_point_farthest_from_the_chord() -> None:
    front = pareto_front([_p(0, 0.1, 1e-6), _p(1, 0.85, 1e-5), _p(2, 0.9, 1e-2)])
    assert knee_point(front).trial == 1
    assert knee_point([]) is None


def test_best_under_cap() -> None:
    assert best_under_cap(PTS, 2e-5).trial == 1
    assert best_under_cap(PTS, 1e-4).trial == 4
    assert best_under_cap(PTS, 1e-9) is None
    with pytest.raises(BadInputError):
        build_report(optuna.create_study(), cap_kgco2e=-1.0)


def test_hypervolume_history_on_the_study(study: optuna.Study) -> None:
    h = hypervolume_history(study.trials)
    assert len(h.hypervolume) == len(h.trial) == len(study.trials)
    assert all(b >= a for a, b in zip(h.hypervolume, h.hypervolume[1:], strict=False))
    assert np.all(np.diff(h.cumulative_search_kgco2e) >= 0)
    total = sum(t.user_attrs.get("search_kgco2e", 0.0) for t in study.trials)
    assert h.cumulative_search_kgco2e[-1] == pytest.approx(total)
    final = hypervolume(points(study.trials), ref_accuracy=0.0, ref_kgco2e=h.ref_kgco2e)
    assert h.hypervolume[-1] == pytest.approx(final) and final > 0


def test_search_cost_sums_every_trial_with_provenance(study: optuna.Study) -> None:
    cost = search_cost(study.trials)
    assert cost.kgco2e == pytest.approx(
        sum(t.user_attrs.get("search_kgco2e", 0.0) for t in study.trials)
    )
    assert cost.kgco2e > 0 and math.isfinite(cost.energy_kwh)
    assert any("estimate (estimated)" in m for m in cost.meters)
    assert any("codecarbon" in i for i in cost.intensities)
    assert sum(cost.trials_by_state.values()) == len(study.trials)
