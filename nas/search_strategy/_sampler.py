"""EcoSampler: an Optuna sampler for (accuracy up, energy down) studies that spends little.

Each proposal scores the unseen candidates of the search space (every parameter set of a small
finite space, else a random pool) and returns the best:

1. **Never re-propose** (``dedupe``): a candidate whose fingerprint (``fingerprint(params)``,
   e.g. an isomorphism-invariant architecture hash; default: the parameters themselves) is
   already in the study, in any state, is not a candidate.
2. **Predicted cost** (``predict_cost(params) -> float | None``, e.g. kWh from FLOPs/params,
   or any quantity the energy grows with; ``None`` or an exception: the candidate cannot be
   built and is skipped). The prediction is calibrated on the study's completed trials
   (``log energy = a + b log prediction``), so it may be in any unit.
3. **A surrogate of accuracy** (``surrogate="gp"``: a Gaussian process over the parameters;
   ``"prior"``: every candidate at the observed mean and spread; ``"random"``: no scoring).
4. **Expected hypervolume improvement** of ``(accuracy ~ N(mu, sigma), predicted energy)``
   over the study's current front, exact in two objectives; per unit of predicted cost when
   ``cost_aware``.
5. **Skip the dominated** (``skip_dominated``): a candidate whose optimistic accuracy
   (``mu + 2 sigma``) adds nothing at its predicted energy is dropped while any other is left.

The first ``n_startup_trials`` proposals (2) are uniform over the unseen candidates whose
predicted cost is at most the median (``startup="cheap"``, the default; ``"uniform"``: over
all): on ``benchmarks/search_tabular.py`` this halved the median kWh to 98% of the exact front
on ``quickstart-4e`` (2.5e-5 -> 7.8e-6, 20 seeds) and cut it on ``ecnas-4v`` (0.281 -> 0.266). The study must
have two objectives, one maximised (accuracy) and one minimised (energy); with another shape
the sampler proposes uniformly among unseen candidates. Trials with fixed parameters
(``study.enqueue_trial``, e.g. a promotion by :class:`SuccessiveHalving`) are left alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.search_strategy._acquisition import choose
from nas.search_strategy._candidates import candidates, categorical_mask, features, space_size
from nas.search_strategy._surrogate import GaussianProcess

SURROGATES = ("gp", "prior", "random")
STARTUPS = ("uniform", "cheap")


class EcoSampler(BaseSampler):
    """See the module docstring; every argument is keyword-only."""

    def __init__(
        self,
        *,
        search_space: Mapping[str, BaseDistribution] | None = None,
        fingerprint: Callable[[Mapping[str, Any]], Hashable] | None = None,
        predict_cost: Callable[[Mapping[str, Any]], float | None] | None = None,
        seed: int | None = None,
        n_startup_trials: int = 2,
        dedupe: bool = True,
        cost_aware: bool = True,
        skip_dominated: bool = True,
        surrogate: str = "gp",
        candidate_pool: int = 1024,
        startup: str = "cheap",
    ) -> None:
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}")
        self._space = dict(search_space) if search_space is not None else None
        self._fingerprint = fingerprint
        self._predict_cost = predict_cost
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        self._intersection = IntersectionSearchSpace(include_pruned=True)
        self.n_startup_trials = n_startup_trials
        if startup not in STARTUPS:
            raise ValueError(f"startup must be one of {', '.join(STARTUPS)}")
        self.startup = startup
        self.dedupe = dedupe
        self.cost_aware = cost_aware
        self.skip_dominated = skip_dominated
        self.surrogate = surrogate
        self.candidate_pool = candidate_pool
        self._raw_cost: dict[tuple[Any, ...], float | None] = {}

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    # -- the BaseSampler contract ---------------------------------------------------------
    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self._space is not None:
            return dict(self._space)
        return self._intersection.calculate(study)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space or trial.system_attrs.get("fixed_params"):
            return {}
        pick = self.propose(study, search_space, exclude=trial.number)
        return pick if pick is not None else {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # -- proposals ------------------------------------------------------------------------
    def fingerprint(self, params: Mapping[str, Any]) -> Hashable:
        if self._fingerprint is not None:
            fp = self._fingerprint(params)
            if fp is not None:
                return fp
        return tuple(sorted((k, repr(v)) for k, v in params.items()))

    def unseen(
        self,
        study: optuna.Study,
        search_space: Mapping[str, BaseDistribution] | None = None,
        *,
        exclude: int | None = None,
    ) -> list[dict[str, Any]]:
        """The candidates a proposal chooses from: buildable and (with ``dedupe``) unseen. For
        a finite space it is exact: empty once the space is exhausted."""
        space = dict(search_space if search_space is not None else self._space or {})
        if not space:
            return []
        known = set()
        if self.dedupe:
            for t in study.get_trials(deepcopy=False):
                if t.number != exclude and set(space) <= set(t.params):
                    known.add(self.fingerprint({k: t.params[k] for k in space}))
        out, seen = [], set()
        for c in candidates(space, self._rng, pool=self.candidate_pool):
            fp = self.fingerprint(c)
            if fp in known or self._cost(c) is None:
                continue
            if space_size(space) == math.inf and fp in seen:
                continue
            seen.add(fp)
            out.append(c)
        return out

    def propose(
        self,
        study: optuna.Study,
        search_space: Mapping[str, BaseDistribution],
        *,
        exclude: int | None = None,
    ) -> dict[str, Any] | None:
        pool = self.unseen(study, search_space, exclude=exclude)
        if not pool:
            return None
        obs = _observations(study, exclude)
        if self.surrogate == "random" or obs is None or len(obs[0]) < self.n_startup_trials:
            return self._startup_pick(pool)
        params, acc, energy = obs
        raw = np.array([self._cost(c) for c in pool], dtype=float)
        pred = self._calibrate(params, energy)(raw)
        if self.surrogate == "gp":
            cat = categorical_mask(search_space)
            gp = GaussianProcess.fit(features(search_space, params), acc, cat)
            mu, sigma = gp.predict(features(search_space, pool))
        else:
            mu = np.full(len(pool), acc.mean())
            sigma = np.full(len(pool), acc.std() or 1e-3)
        pick, _ = choose(
            acc, energy, mu, sigma, pred, self._rng,
            cost_aware=self.cost_aware, skip_dominated=self.skip_dominated,
        )  # fmt: skip
        return pool[pick]

    def _startup_pick(self, pool: list[dict[str, Any]]) -> dict[str, Any]:
        """Uniform over ``pool``; with ``startup="cheap"`` over its cheaper half by predicted
        cost (a cheap candidate that turns out accurate dominates at little cost)."""
        if self.startup == "cheap" and self._predict_cost is not None and len(pool) > 1:
            raw = np.array([self._cost(c) or np.inf for c in pool], dtype=float)
            cheap = np.flatnonzero(raw <= np.median(raw))
            if len(cheap):
                return pool[int(cheap[int(self._rng.integers(len(cheap)))])]
        return pool[int(self._rng.integers(len(pool)))]

    # -- the cost model's calibration -----------------------------------------------------
    def _cost(self, params: Mapping[str, Any]) -> float | None:
        """The raw prediction (cached); 1.0 for every candidate without a predictor."""
        if self._predict_cost is None:
            return 1.0
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in self._raw_cost:
            try:
                value = self._predict_cost(params)
            except Exception:  # a candidate the cost model cannot build is not a candidate
                value = None
            ok = value is not None and math.isfinite(value) and value > 0
            self._raw_cost[key] = float(value) if ok else None  # type: ignore[arg-type]
        return self._raw_cost[key]

    def _calibrate(
        self, params: list[dict[str, Any]], energy: np.ndarray
    ) -> Callable[[np.ndarray], np.ndarray]:
        """Map raw predictions to the energy objective: ``log e = a + b log raw``."""
        raw = np.array([self._cost(p) or np.nan for p in params], dtype=float)
        ok = np.isfinite(raw) & (energy > 0)
        if ok.sum() == 0:
            return lambda r: np.full_like(r, float(np.median(energy)) if len(energy) else 1.0)
        lx, ly = np.log(raw[ok]), np.log(energy[ok])
        if ok.sum() >= 3 and np.ptp(lx) > 0:
            b, a = np.polyfit(lx, ly, 1)
        else:
            b, a = 1.0, float(np.median(ly - lx))
        return lambda r: np.exp(a + b * np.log(r))


def _observations(
    study: optuna.Study, exclude: int | None
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray] | None:
    """Completed trials as (params, accuracy, energy); None unless the study is (max, min)."""
    dirs = list(study.directions)
    if len(dirs) != 2 or set(dirs) != {StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE}:
        return None
    ia = dirs.index(StudyDirection.MAXIMIZE)
    ie = 1 - ia
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.number != exclude and t.values is not None
    ]
    if not done:
        return [], np.zeros(0), np.zeros(0)
    params = [dict(t.params) for t in done]
    acc = np.array([t.values[ia] for t in done], dtype=float)
    energy = np.array([t.values[ie] for t in done], dtype=float)
    return params, acc, energy
