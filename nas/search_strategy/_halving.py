"""Asynchronous successive halving over epochs, promoting by non-dominated rank.

Optuna's pruners cannot serve here: ``trial.report``/``should_prune`` raise in multi-objective
studies. The policy is our own and independent of how training happens:

- A new candidate trains to the first rung (``rungs[0]`` epochs) and reports
  ``(accuracy, energy so far)`` there (:meth:`SuccessiveHalving.report`). It goes on to the
  next rung at once when it is in the top ``1/eta`` of every result at that rung, ordered by
  non-dominated rank of (accuracy up, energy down), then by accuracy; else it is paused
  (:meth:`pause`), keeping its checkpoint.
- Later results can lift a paused candidate into the top ``1/eta`` (the quota grows with the
  rung's count): :meth:`next_promotion` hands it back to continue from its checkpoint, so a
  promotion pays only the epochs between the rungs.
- When nothing new is left to try (a finite space exhausted), :meth:`drain` hands back the
  best-ranked paused candidate regardless of the quota, so nothing is lost for good.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.hypervolume import nondominated_ranks_2d


@dataclass
class Paused:
    """A candidate stopped at ``rung`` (an index into the rungs) with what resuming needs."""

    key: Hashable
    rung: int
    params: dict[str, Any]
    state: Any = None


@dataclass
class _Rung:
    results: dict[Hashable, tuple[float, float]] = field(default_factory=dict)
    promoted: set[Hashable] = field(default_factory=set)


class SuccessiveHalving:
    """``rungs``: ascending epochs, the last one the full training; ``eta`` >= 2."""

    def __init__(self, *, rungs: Sequence[int], eta: float = 3.0) -> None:
        steps = list(rungs)
        if not steps or steps != sorted(set(steps)) or steps[0] <= 0:
            raise ValueError("rungs must be ascending positive epochs, at least one")
        if eta < 2:
            raise ValueError("eta must be >= 2")
        self.rungs = tuple(steps)
        self.eta = eta
        self._rungs = [_Rung() for _ in steps]
        self._paused: dict[Hashable, Paused] = {}

    @property
    def paused(self) -> tuple[Paused, ...]:
        return tuple(self._paused.values())

    def _order(self, rung: int) -> list[Hashable]:
        results = self._rungs[rung].results
        keys = list(results)
        ranks = nondominated_ranks_2d([results[k] for k in keys])
        order = sorted(range(len(keys)), key=lambda i: (ranks[i], -results[keys[i]][0], i))
        return [keys[i] for i in order]

    def _in_quota(self, rung: int, key: Hashable) -> bool:
        order = self._order(rung)
        quota = math.floor(len(order) / self.eta)
        return key in order[:quota]

    def report(self, key: Hashable, rung: int, *, accuracy: float, energy: float) -> bool:
        """Record ``key``'s result at ``rung``; True when it should go on to the next rung now
        (always False at the last rung: it is done)."""
        self._rungs[rung].results[key] = (accuracy, energy)
        if rung == len(self.rungs) - 1:
            return False
        if self._in_quota(rung, key):
            self._rungs[rung].promoted.add(key)
            return True
        return False

    def pause(self, key: Hashable, rung: int, params: dict[str, Any], state: Any = None) -> None:
        self._paused[key] = Paused(key=key, rung=rung, params=dict(params), state=state)

    def next_promotion(self) -> Paused | None:
        """A paused candidate now in the top ``1/eta`` of its rung (highest rung first)."""
        for rung in reversed(range(len(self.rungs) - 1)):
            promoted = self._rungs[rung].promoted
            order = self._order(rung)
            for key in order[: math.floor(len(order) / self.eta)]:
                if key not in promoted and key in self._paused:
                    return self._take(key, rung)
        return None

    def drain(self) -> Paused | None:
        """The best-ranked paused candidate (highest rung first), quota or not."""
        for rung in reversed(range(len(self.rungs) - 1)):
            for key in self._order(rung):
                if key in self._paused and key not in self._rungs[rung].promoted:
                    return self._take(key, rung)
        return None

    def _take(self, key: Hashable, rung: int) -> Paused:
        self._rungs[rung].promoted.add(key)
        return self._paused.pop(key)
