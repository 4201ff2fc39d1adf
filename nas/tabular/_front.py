"""A table's exact Pareto front, the hypervolume a search reached, and the oracle.

Definitions (the benchmark's and the tests'):

- **An architecture's point** is ``(accuracy, energy_kwh)`` at ``max_epochs``, each the mean over
  its repeats (:meth:`Table.mean_point`), accuracy being the table's ``objective`` column.
- **The exact front** is the non-dominated set of all architectures' points (accuracy up,
  energy down).
- **The reference point** is the table's nadir: the lowest accuracy and the highest energy of
  any architecture's point. Every architecture lies in the box; the worst add nothing.
- **A search's hypervolume** is that of the points of the architectures it trained to
  ``max_epochs`` (whatever repeat it drew), so luck in a repeat cannot inflate it.
- **The oracle** for a fraction ``f`` is the cheapest set of architectures (cost: the sum of
  their mean energy to ``max_epochs``) whose hypervolume reaches ``f`` of the front's: the
  least a search that knew the table could spend. Only front members can be in it (a
  dominated point costs at least as much as a front point that dominates it, and adds less).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nas.hypervolume import Point, front_indices_2d, hypervolume_2d
from nas.tabular._table import Table


@dataclass(frozen=True, kw_only=True)
class Front:
    """The exact front: its architectures and points ascending in energy."""

    archs: tuple[str, ...]
    points: tuple[Point, ...]
    reference: Point
    hypervolume: float


@dataclass(frozen=True, kw_only=True)
class Oracle:
    fraction: float
    archs: tuple[str, ...]
    energy_kwh: float
    hypervolume_fraction: float


def reference_point(table: Table) -> Point:
    """The table's nadir: (lowest mean accuracy, highest mean energy) over its architectures."""
    pts = [table.mean_point(a) for a in table.archs]
    return min(p[0] for p in pts), max(p[1] for p in pts)


def exact_front(table: Table) -> Front:
    pts = [table.mean_point(a) for a in table.archs]
    ref = reference_point(table)
    idx = front_indices_2d(pts)
    return Front(
        archs=tuple(table.archs[i] for i in idx),
        points=tuple(pts[i] for i in idx),
        reference=ref,
        hypervolume=hypervolume_2d(pts, ref),
    )


def hypervolume_fraction(table: Table, archs: Iterable[str], front: Front | None = None) -> float:
    """Hypervolume of the architectures' mean points, as a fraction of the exact front's."""
    front = front or exact_front(table)
    pts = [table.mean_point(a) for a in set(archs)]
    return hypervolume_2d(pts, front.reference) / front.hypervolume if front.hypervolume else 0.0


def oracle(table: Table, fraction: float, front: Front | None = None) -> Oracle:
    """The cheapest set of architectures whose hypervolume reaches ``fraction`` of the front's.

    Exact: a label-setting search over the front's members in energy order. A chosen subset's
    hypervolume is a sum over consecutive chosen members, so each label is (cost, area so far)
    for subsets ending at one member, and dominated labels are dropped."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    front = front or exact_front(table)
    pts, (acc_ref, e_ref) = front.points, front.reference
    need = fraction * front.hypervolume * (1.0 - 1e-12)
    costs = [p[1] for p in pts]

    def closing(i: int) -> float:  # the area of member i's step to the reference energy
        return (pts[i][0] - acc_ref) * (e_ref - pts[i][1])

    # labels[j]: non-dominated (cost, area up to member j, members) of subsets ending at j
    labels: list[list[tuple[float, float, tuple[int, ...]]]] = []
    best: tuple[float, tuple[int, ...]] | None = None
    for j in range(len(pts)):
        cands = [(costs[j], 0.0, (j,))]
        for i in range(j):
            step = (pts[i][0] - acc_ref) * (pts[j][1] - pts[i][1])
            cands += [(c + costs[j], a + step, m + (j,)) for c, a, m in labels[i]]
        cands.sort(key=lambda t: (t[0], -t[1]))
        kept: list[tuple[float, float, tuple[int, ...]]] = []
        for c, a, m in cands:
            if not kept or a > kept[-1][1]:
                kept.append((c, a, m))
        labels.append(kept)
        for c, a, m in kept:
            if a + closing(j) >= need and (best is None or c < best[0]):
                best = (c, m)
    assert best is not None  # the whole front reaches 100%
    chosen = tuple(front.archs[i] for i in best[1])
    return Oracle(
        fraction=fraction,
        archs=chosen,
        energy_kwh=best[0],
        hypervolume_fraction=hypervolume_fraction(table, chosen, front),
    )
