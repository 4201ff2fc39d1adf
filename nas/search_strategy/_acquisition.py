"""Expected hypervolume improvement of a candidate whose energy is predicted and whose accuracy
is Gaussian: exact in two objectives, because a point at known energy ``c`` with accuracy ``a``
adds ``sum_j w_j * max(0, a - l_j)`` (:func:`nas.hypervolume.improvement_segments`), and
``E[max(0, a - l)] = (mu - l) * Phi(z) + sigma * phi(z)`` with ``z = (mu - l) / sigma``."""

from __future__ import annotations

import math
from collections.abc import Sequence

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
