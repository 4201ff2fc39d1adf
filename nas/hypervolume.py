"""Two-objective Pareto fronts and hypervolume: accuracy up, energy down.

Pure Python (no numpy, optuna or torch), shared by the tabular benchmarks (the exact front of a
table) and by the search strategy (the front a study has found, and the hypervolume a candidate
could add). A point is ``(accuracy, energy)``; the reference point ``(accuracy_ref,
energy_ref)`` bounds the dominated region from below in accuracy and from above in energy.
Points that do not strictly improve on it in both objectives add nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]


def front_indices_2d(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points (higher accuracy, lower energy), sorted by energy.

    Of exact duplicates only the first is kept: a front lists each trade-off once."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0], i))
    out: list[int] = []
    best_acc = float("-inf")
    for i in order:
        if points[i][0] > best_acc:
            out.append(i)
            best_acc = points[i][0]
    return out


def staircase(points: Sequence[Point], reference: Point) -> list[Point]:
    """The front's steps inside the reference box, ascending in energy (and in accuracy)."""
    acc_ref, energy_ref = reference
    inside = [p for p in points if p[0] > acc_ref and p[1] < energy_ref]
    return [inside[i] for i in front_indices_2d(inside)]


def hypervolume_2d(points: Sequence[Point], reference: Point) -> float:
    """Area dominated by ``points`` and bounded by ``reference`` (exact)."""
    steps = staircase(points, reference)
    acc_ref, energy_ref = reference
    total = 0.0
    for k, (acc, energy) in enumerate(steps):
        right = steps[k + 1][1] if k + 1 < len(steps) else energy_ref
        total += (acc - acc_ref) * (right - energy)
    return total


def improvement_segments(
    points: Sequence[Point], reference: Point, energy: float
) -> list[tuple[float, float]]:
    """What a new point at ``energy`` could add, as ``(width, level)`` segments.

    A new point ``(a, energy)`` adds ``sum(width * max(0, a - level))`` to the hypervolume of
    ``points``: over each energy interval to the right of ``energy``, ``level`` is the accuracy
    the front already reaches there (the reference accuracy where it reaches nothing). Empty
    when ``energy`` is at or beyond the reference energy."""
    return segments_on(staircase(points, reference), reference, energy)


def segments_on(
    steps: Sequence[Point], reference: Point, energy: float
) -> list[tuple[float, float]]:  # noqa: E501
    """:func:`improvement_segments` on a precomputed :func:`staircase` (many candidates, one
    front)."""
    acc_ref, energy_ref = reference
    if energy >= energy_ref:
        return []
    out: list[tuple[float, float]] = []
    cursor = energy
    level = acc_ref
    for acc, e in steps:  # ascending energy: the level to the left of `energy` is the last one
        if e <= energy:
            level = acc
            continue
        out.append((e - cursor, level))
        cursor, level = e, acc
    out.append((energy_ref - cursor, level))
    return [(w, lv) for w, lv in out if w > 0]


def improvement(points: Sequence[Point], reference: Point, candidate: Point) -> float:
    """Hypervolume ``candidate`` adds to ``points`` (0 when it is dominated)."""
    acc, energy = candidate
    return sum(w * max(0.0, acc - lv) for w, lv in improvement_segments(points, reference, energy))


def nondominated_ranks_2d(points: Sequence[Point]) -> list[int]:
    """Front index of each point (0: non-dominated), peeling fronts in turn; exact duplicates
    share a front."""
    ranks = [-1] * len(points)
    remaining = list(range(len(points)))
    level = 0
    while remaining:
        order = sorted(remaining, key=lambda i: (points[i][1], -points[i][0]))
        best_acc = float("-inf")
        last: Point | None = None
        current = []
        for i in order:
            if points[i][0] > best_acc or points[i] == last:
                current.append(i)
                best_acc = max(best_acc, points[i][0])
                last = points[i]
        for i in current:
            ranks[i] = level
        taken = set(current)
        remaining = [i for i in remaining if i not in taken]
        level += 1
    return ranks
