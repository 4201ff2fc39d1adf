"""Numbers read off a front: hypervolume over the search, the knee, the pick under a cap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna

from nas.record import TrialRecord
from nas.report._data import Point, pareto_front, points

_ENDED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


@dataclass(frozen=True)
class HypervolumeHistory:
    """Hypervolume of (accuracy max, kgCO2e min) after each ended trial.

    Computed with Optuna's own routine (``optuna._hypervolume.compute_hypervolume``, the one
    ``optuna.visualization.plot_hypervolume_history`` uses) on losses ``(-accuracy, kgco2e)``
    against the fixed reference point ``(accuracy=ref_accuracy, kgco2e=ref_kgco2e)``.
    """

    trial: list[int]
    cumulative_search_kgco2e: list[float]
    hypervolume: list[float]
    ref_accuracy: float
    ref_kgco2e: float


def hypervolume(pts: Sequence[Point], *, ref_accuracy: float, ref_kgco2e: float) -> float:
    from optuna._hypervolume import compute_hypervolume

    inside = [p for p in pts if p.accuracy > ref_accuracy and p.kgco2e < ref_kgco2e]
    if not inside:
        return 0.0
    losses = np.array([[-p.accuracy, p.kgco2e] for p in inside], dtype=float)
    return float(compute_hypervolume(losses, np.array([-ref_accuracy, ref_kgco2e])))


def hypervolume_history(trials: Sequence[optuna.trial.FrozenTrial]) -> HypervolumeHistory:
    """Hypervolume after each ended trial; reference: accuracy 0, 1.1 x the largest kgCO2e."""
    ended = sorted((t for t in trials if t.state in _ENDED), key=lambda t: t.number)
    all_pts = points(ended)
    ref_kg = 1.1 * max((p.kgco2e for p in all_pts), default=1.0)
    history = HypervolumeHistory([], [], [], ref_accuracy=0.0, ref_kgco2e=ref_kg)
    spent = 0.0
    seen: list[Point] = []
    by_number = {p.trial: p for p in all_pts}
    for t in ended:
        spent += TrialRecord.of(t).search_kgco2e
        if t.number in by_number:
            seen.append(by_number[t.number])
        history.trial.append(t.number)
        history.cumulative_search_kgco2e.append(spent)
        history.hypervolume.append(hypervolume(seen, ref_accuracy=0.0, ref_kgco2e=ref_kg))
    return history


def knee_point(front: Sequence[Point]) -> Point | None:
    """The front's knee on (accuracy, log10 kgCO2e), both scaled to [0, 1].

    With three or more points: the point farthest from the chord joining the front's two
    ends (Satopaa et al.'s "Kneedle" idea); with fewer: the point nearest the ideal corner.
    """
    if not front:
        return None
    if len(front) == 1:
        return front[0]
    acc = np.array([p.accuracy for p in front])
    logkg = np.log10(np.array([max(p.kgco2e, 1e-30) for p in front]))
    a = (acc - acc.min()) / (np.ptp(acc) or 1.0)
    c = (logkg - logkg.min()) / (np.ptp(logkg) or 1.0)
    if len(front) < 3:
        dist = np.hypot(1.0 - a, c)
        return front[int(np.argmin(dist))]
    order = np.argsort(c)
    (x0, y0), (x1, y1) = (c[order[0]], a[order[0]]), (c[order[-1]], a[order[-1]])
    dx, dy = x1 - x0, y1 - y0
    norm = math.hypot(dx, dy) or 1.0
    dist = np.abs(dy * (c - x0) - dx * (a - y0)) / norm
    return front[int(np.argmax(dist))]


def best_under_cap(pts: Sequence[Point], cap_kgco2e: float) -> Point | None:
    """The most accurate point whose kgCO2e is at most ``cap_kgco2e`` (cheaper on ties)."""
    ok = [p for p in pts if p.kgco2e <= cap_kgco2e]
    if not ok:
        return None
    return max(ok, key=lambda p: (p.accuracy, -p.kgco2e, -p.trial))


def choose_point(
    trials: Sequence[optuna.trial.FrozenTrial], trial_number: int | None = None
) -> Point | None:
    """A given completed trial, or by default the knee of the accuracy/kgCO2e front."""
    pts = points(trials)
    if trial_number is None:
        return knee_point(pareto_front(pts))
    return next((p for p in pts if p.trial == trial_number), None)
