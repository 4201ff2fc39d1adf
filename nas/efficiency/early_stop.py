"""Multi-objective early stopping: successive halving on the non-dominated rank at a rung.

Optuna cannot prune multi-objective studies (``trial.report`` raises), so econas keeps its own
partial learning curves: at each rung (the end of every epoch but the last) a trial records
``rung_<k>_accuracy`` (on a small validation subset) and ``rung_<k>_energy_kwh`` (energy of
its training so far). A trial is stopped when, among the trials that reached the same rung,
its non-dominated rank of (accuracy up, energy down) is outside the best ``keep`` fraction.
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna

from nas.pareto import nondominated_ranks as _ranks
from nas.record import TrialRecord, rung_key
from nas.text import plural

_REACHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
)


def nondominated_ranks(points: Sequence[tuple[float, float]]) -> list[int]:
    """Front index of each ``(accuracy, energy)`` point: 0 = not dominated by any point;
    accuracy is maximised and energy minimised."""
    return _ranks(points, (True, False))


def rung_history(study: optuna.Study, rung: int, *, exclude: int) -> list[tuple[float, float]]:
    """(accuracy, energy) at ``rung`` of every finished trial that reached it."""
    acc_key, kwh_key = rung_key(rung, "accuracy"), rung_key(rung, "energy_kwh")
    out = []
    for t in study.get_trials(deepcopy=False, states=_REACHED):
        rec = TrialRecord.of(t)
        acc, kwh = rec.num(acc_key), rec.num(kwh_key)
        if t.number != exclude and acc is not None and kwh is not None:
            out.append((acc, kwh))
    return out


def should_stop(
    point: tuple[float, float],
    history: Sequence[tuple[float, float]],
    *,
    keep: float,
    min_trials: int,
) -> tuple[bool, str]:
    """Keep ``point`` only if fewer than ``keep`` (a fraction) of all points at the rung are in
    strictly better fronts; decide only once ``min_trials`` reached the rung.
    Returns (stop, reason)."""
    if len(history) < min_trials:
        return False, ""
    ranks = nondominated_ranks([*history, point])
    mine = ranks[-1]
    better = sum(1 for r in ranks[:-1] if r < mine)
    share = better / (len(history) + 1)
    if share >= keep:
        return True, (
            f"early-stopped: front {mine} at the rung, {better} of {plural(len(history), 'trial')} "
            f"in better fronts (keep {keep:.2f})"
        )
    return False, ""
