"""Expected hypervolume improvement of a candidate whose energy is predicted and whose accuracy
is Gaussian: exact in two objectives, because a point at known energy ``c`` with accuracy ``a``
adds ``sum_j w_j * max(0, a - l_j)`` (:func:`nas.hypervolume.improvement_segments`), and
``E[max(0, a - l)] = (mu - l) * Phi(z) + sigma * phi(z)`` with ``z = (mu - l) / sigma``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nas.hypervolume import Point, improvement_segments, segments_on, staircase

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


def expected_improvement_above(mu: float, sigma: float, level: float) -> float:
    """``E[max(0, a - level)]`` for ``a ~ N(mu, sigma^2)``."""
    if sigma <= 0:
        return max(0.0, mu - level)
    z = (mu - level) / sigma
    cdf = 0.5 * (1.0 + math.erf(z / _SQRT2))
    pdf = math.exp(-0.5 * z * z) / _SQRT2PI
    return (mu - level) * cdf + sigma * pdf


def ehvi(
    front: Sequence[Point], reference: Point, *, mu: float, sigma: float, energy: float
) -> float:
    """Expected hypervolume ``(mu +- sigma, energy)`` adds to ``front``."""
    return sum(
        w * expected_improvement_above(mu, sigma, lv)
        for w, lv in improvement_segments(front, reference, energy)
    )


def can_improve(
    front: Sequence[Point], reference: Point, *, accuracy: float, energy: float
) -> bool:
    """Whether a point with this (optimistic) accuracy at this energy would add anything."""
    return any(accuracy > lv for _, lv in improvement_segments(front, reference, energy))


def score_candidates(
    front: Sequence[Point],
    reference: Point,
    mu: Sequence[float],
    sigma: Sequence[float],
    energy: Sequence[float],
    *,
    optimism: float = 2.0,
) -> tuple[list[float], list[bool]]:
    """EHVI of every candidate, and whether its optimistic accuracy (``mu + optimism *
    sigma``) could add anything: the front's staircase computed once."""
    steps = staircase(front, reference)
    scores, alive = [], []
    for m, s, e in zip(mu, sigma, energy, strict=True):
        segs = segments_on(steps, reference, float(e))
        scores.append(sum(w * expected_improvement_above(float(m), float(s), lv) for w, lv in segs))
        alive.append(any(float(m) + optimism * float(s) > lv for _, lv in segs))
    return scores, alive


def choose(
    acc: Sequence[float],
    energy: Sequence[float],
    mu: Sequence[float],
    sigma: Sequence[float],
    pred: Sequence[float],
    rng: Any,
    *,
    cost_aware: bool,
    skip_dominated: bool,
) -> tuple[int, int]:
    """The candidate to propose, and how many could improve the front: the largest EHVI of
    ``(mu +- sigma, pred)`` over the front of the observed ``(acc, energy)`` (per unit of
    ``pred`` when ``cost_aware``; the dominated dropped while any other is left when
    ``skip_dominated``), ties broken by ``rng``. Reference: the lowest observed accuracy and
    1.05x the largest energy seen or predicted."""
    import numpy as np

    predicted = np.asarray(pred, dtype=float)
    front = list(zip([float(a) for a in acc], [float(e) for e in energy], strict=True))
    reference = (min(a for a, _ in front), 1.05 * float(max(max(energy), predicted.max())))
    scores, alive_list = score_candidates(front, reference, mu, sigma, predicted)
    score = np.array(scores)
    if cost_aware:
        score = score / np.maximum(predicted, 1e-300)
    alive = np.array(alive_list)
    if skip_dominated and alive.any():
        score = np.where(alive, score, -np.inf)
    best = np.flatnonzero(score == score.max())
    return int(rng.choice(best)), int(alive.sum())
