"""ArchSampler: EcoSampler's strategy for define-by-run architecture spaces (econas's ``eco``).

A real search space is conditional (a CNN's stage parameters exist only for the stages it
has, a ViT's only when the family is ``vit``), so an Optuna relative search space cannot hold
it. This sampler proposes whole architectures instead: on a trial's first ``suggest_*`` (so
inside the trial's metered ``sample`` phase) it draws ``pool`` new complete candidates from
the space itself (``draw``), describes each before training (``describe``: an identity,
features and its training work; about 10 ms a CNN on one CPU thread), adds them to those drawn
for earlier trials (up to ``max_reservoir``), chooses among the unseen ones, and answers every
later ``suggest_*`` of the trial from the chosen candidate. The choice follows :class:`~nas.search_strategy.EcoSampler`:

1. **never re-propose** a candidate whose identity (e.g. the architecture's encoding) is
   already in the study, in any state;
2. **predicted cost**: ``predictor(study)`` maps a candidate's training work to predicted kWh
   (e.g. :class:`nas.efficiency.cost_model.TrainingCostModel` fitted to the study), calibrated
   to the study's energy objective (``log e = a + b log kWh`` over its completed trials); a
   candidate predicted above ``max_cost_ratio`` times the median completed trial is dropped
   (the cost guard would refuse it: a wasted trial);
3. **a Gaussian process of accuracy** over the candidates' features (numerical ones scaled
   to [0, 1] over the pool and the observations, categorical ones compared by equality);
4. **expected hypervolume improvement** per unit of predicted cost (``cost_aware``);
5. **skip the dominated**: a candidate whose optimistic accuracy (``mu + 2 sigma``) adds
   nothing at its predicted cost is dropped while any other is left.

The first proposals, until ``n_startup_trials`` trials are complete (enqueued reference
designs count), are uniform over unseen candidates. Trials with fixed parameters
(``study.enqueue_trial``) are answered by Optuna, not here. Each trial's pool is drawn from
``seed + trial number``: one process alone is reproducible, processes sharing a study draw
different pools. With another objective shape than (accuracy up, energy down) the proposals
stay uniform over unseen candidates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.search_strategy._acquisition import choose
from nas.search_strategy._surrogate import GaussianProcess

Params = dict[str, Any]


@dataclass(frozen=True)
class Described:
    """What is known of a candidate before it trains."""

    key: Hashable  # identity: equal keys are one architecture
    numeric: tuple[float, ...]  # features the surrogate scales to [0, 1]
    categorical: tuple[Hashable, ...]  # features compared by equality
    work: Any  # what ``predictor`` prices (e.g. a TrainingWork)


Draw = Callable[[np.random.Generator], "Params | None"]
Describe = Callable[[Mapping[str, Any]], "Described | None"]
Predictor = Callable[[optuna.Study], Callable[[Any], float]]


class ArchSampler(BaseSampler):
    """See the module docstring. :meth:`bind` gives it the space before the first trial;
    unbound, it samples like :class:`optuna.samplers.RandomSampler`."""

    def __init__(
        self,
        *,
        seed: int = 0,
        n_startup_trials: int = 4,
        pool: int = 8,
        max_reservoir: int = 256,
        cost_aware: bool = True,
        skip_dominated: bool = True,
        surrogate: str = "gp",
        max_cost_ratio: float | None = 10.0,
    ) -> None:
        self.seed = seed
        self.n_startup_trials = n_startup_trials
        self.pool = pool
        self.max_reservoir = max_reservoir
        self.cost_aware = cost_aware
        self.skip_dominated = skip_dominated
        self.surrogate = surrogate
        self.max_cost_ratio = max_cost_ratio
        self._random = RandomSampler(seed=seed)
        self._draw: Draw | None = None
        self._describe: Describe | None = None
        self._predictor: Predictor | None = None
        self._described: dict[tuple[tuple[str, str], ...], Described | None] = {}
        self._chosen: dict[int, Params] = {}
        self._reservoir: dict[Hashable, tuple[Params, Described]] = {}
        self.last_choice: dict[str, Any] = {}  # how the latest proposal was made (for tests)

    def bind(self, *, draw: Draw, describe: Describe, predictor: Predictor) -> None:
        self._draw, self._describe, self._predictor = draw, describe, predictor

    @property
    def bound(self) -> bool:
        return self._draw is not None

    # -- the BaseSampler contract ---------------------------------------------------------
    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if self.bound and trial.number not in self._chosen:
            self._chosen[trial.number] = self.propose(study, exclude=trial.number) or {}
        value = self._chosen.get(trial.number, {}).get(param_name, _MISSING)
        if value is not _MISSING:
            try:
                if param_distribution._contains(param_distribution.to_internal_repr(value)):
                    return value
            except (ValueError, TypeError):
                pass
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._chosen.pop(trial.number, None)

    # -- proposals ------------------------------------------------------------------------
    def describe(self, params: Mapping[str, Any]) -> Described | None:
        """The candidate ``params`` name (cached), None when they name none."""
        assert self._describe is not None
        cache_key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if cache_key not in self._described:
            try:
                self._described[cache_key] = self._describe(params)
            except Exception:  # noqa: BLE001 - a candidate that cannot be built is no candidate
                self._described[cache_key] = None
        return self._described[cache_key]

    def propose(self, study: optuna.Study, *, exclude: int | None = None) -> Params | None:
        """The parameters of the next candidate, None when no unseen one could be drawn."""
        assert self._draw is not None and self._predictor is not None
        number = exclude if exclude is not None else len(study.get_trials(deepcopy=False))
        rng = np.random.default_rng((self.seed + number) % 2**32)
        trials = [t for t in study.get_trials(deepcopy=False) if t.number != exclude]
        known = set()
        for t in trials:
            d = self.describe(t.params) if t.params else None
            if d is not None:
                known.add(d.key)
        drawn = 0
        for _ in range(3 * self.pool):  # new candidates join those drawn for earlier trials
            if drawn >= self.pool:
                break
            params = self._draw(rng)
            d = self.describe(params) if params is not None else None
            if d is None or d.key in known or d.key in self._reservoir:
                continue
            self._reservoir[d.key] = (params, d)
            drawn += 1
        while len(self._reservoir) > self.max_reservoir:  # the oldest go first
            self._reservoir.pop(next(iter(self._reservoir)))
        pool = [(p, d) for key, (p, d) in self._reservoir.items() if key not in known]
        if not pool:
            self.last_choice = {"how": "none unseen"}
            return None
        obs = observations_of(study, trials)
        if self.surrogate == "random" or obs is None or len(obs[0]) < self.n_startup_trials:
            self.last_choice = {"how": "uniform", "pool": len(pool)}
            return pool[int(rng.integers(len(pool)))][0]
        done, acc, energy = obs
        described = [self.describe(t.params) for t in done]
        ok = [i for i, d in enumerate(described) if d is not None]
        if len(ok) < max(2, self.n_startup_trials // 2):
            self.last_choice = {"how": "uniform", "pool": len(pool)}
            return pool[int(rng.integers(len(pool)))][0]
        obs_d = [described[i] for i in ok]
        assert all(d is not None for d in obs_d)
        acc, energy = acc[ok], energy[ok]
        price = self._predictor(study)
        kwh_pool = np.array([price(d.work) for _, d in pool], dtype=float)
        kwh_obs = np.array([price(d.work) for d in obs_d], dtype=float)  # type: ignore[union-attr]
        pred = _calibrate(kwh_obs, energy)(kwh_pool)
        keep = np.isfinite(pred) & (pred > 0)
        if self.max_cost_ratio is not None and len(energy):
            keep &= pred <= self.max_cost_ratio * float(np.median(energy))
        if not keep.any():
            keep = np.isfinite(pred) & (pred > 0)
        if not keep.any():
            self.last_choice = {"how": "uniform", "pool": len(pool)}
            return pool[int(rng.integers(len(pool)))][0]
        idx = np.flatnonzero(keep)
        pool = [pool[i] for i in idx]
        pred = pred[idx]
        if self.surrogate == "gp":
            x, cat = _features([d for _, d in pool] + obs_d)  # type: ignore[list-item]
            gp = GaussianProcess.fit(x[len(pool) :], acc, cat)
            mu, sigma = gp.predict(x[: len(pool)])
        else:
            mu = np.full(len(pool), acc.mean())
            sigma = np.full(len(pool), acc.std() or 1e-3)
        pick, alive = choose(
            acc, energy, mu, sigma, pred, rng,
            cost_aware=self.cost_aware, skip_dominated=self.skip_dominated,
        )  # fmt: skip
        self.last_choice = {
            "how": "ehvi per predicted cost" if self.cost_aware else "ehvi",
            "pool": len(pool),
            "alive": alive,
            "mu": float(mu[pick]),
            "sigma": float(sigma[pick]),
            "predicted": float(pred[pick]),
        }
        return pool[pick][0]


_MISSING = object()


def _calibrate(raw: np.ndarray, energy: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Map predicted kWh to the energy objective: ``log e = a + b log raw`` over the study."""
    ok = np.isfinite(raw) & (raw > 0) & (energy > 0)
    if ok.sum() == 0:
        level = float(np.median(energy)) if len(energy) else 1.0
        return lambda r: np.full_like(r, level)
    lx, ly = np.log(raw[ok]), np.log(energy[ok])
    if ok.sum() >= 3 and np.ptp(lx) > 0:
        b, a = np.polyfit(lx, ly, 1)
        b = float(min(max(b, 0.25), 2.0))  # a few noisy trials must not invert the ranking
        a = float(np.median(ly - b * lx))
    else:
        b, a = 1.0, float(np.median(ly - lx))
    return lambda r: np.exp(a + b * np.log(np.maximum(r, 1e-300)))


def _features(items: Sequence[Described]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of numerical features scaled to [0, 1] over ``items``, then categorical codes."""
    n_num = max((len(d.numeric) for d in items), default=0)
    n_cat = max((len(d.categorical) for d in items), default=0)
    num = np.zeros((len(items), n_num))
    for i, d in enumerate(items):
        num[i, : len(d.numeric)] = d.numeric
    lo, hi = num.min(0), num.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    num = (num - lo) / span
    codes: list[dict[Hashable, int]] = [{} for _ in range(n_cat)]
    cat = np.zeros((len(items), n_cat))
    for i, d in enumerate(items):
        for j in range(n_cat):
            v = d.categorical[j] if j < len(d.categorical) else None
            cat[i, j] = codes[j].setdefault(v, len(codes[j]))
    x = np.concatenate([num, cat], axis=1)
    mask = np.array([False] * n_num + [True] * n_cat)
    return x, mask


def observations_of(
    study: optuna.Study, trials: Sequence[FrozenTrial]
) -> tuple[list[FrozenTrial], np.ndarray, np.ndarray] | None:
    dirs = list(study.directions)
    if len(dirs) != 2 or set(dirs) != {StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE}:
        return None
    ia = dirs.index(StudyDirection.MAXIMIZE)
    done = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.values is not None
        and all(math.isfinite(v) for v in t.values)
    ]
    acc = np.array([t.values[ia] for t in done], dtype=float)
    energy = np.array([t.values[1 - ia] for t in done], dtype=float)
    return done, acc, energy
