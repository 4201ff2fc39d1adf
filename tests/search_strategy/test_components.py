"""econas's search strategy: the sampler's switches, the acquisition, the surrogate, halving."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from nas.hypervolume import nondominated_ranks_2d
from nas.search_strategy import EcoSampler, SuccessiveHalving, ehvi, expected_improvement_above
from nas.search_strategy._candidates import candidates, features
from nas.search_strategy._surrogate import GaussianProcess

optuna.logging.set_verbosity(optuna.logging.ERROR)
SPACE = {
    "a": CategoricalDistribution([0, 1, 2, 3]),
    "b": CategoricalDistribution(["x", "y", "z"]),
}


def _fingerprint(p: dict[str, Any]) -> Any:
    return ("iso", p["a"] % 2, p["b"])  # a and a+2 are isomorphic: 6 distinct architectures


def _study(sampler: optuna.samplers.BaseSampler, objective, n: int) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=n)
    return study


def _toy(p: dict[str, Any]) -> tuple[float, float]:
    acc = 0.5 + 0.1 * (p["a"] % 2) + {"x": 0.0, "y": 0.2, "z": 0.1}[p["b"]]
    return acc, 1.0 + (p["a"] % 2) + {"x": 0.0, "y": 2.0, "z": 1.0}[p["b"]]


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    p = {k: trial.suggest_categorical(k, d.choices) for k, d in SPACE.items()}
    return _toy(p)


@pytest.mark.parametrize("surrogate", ["gp", "prior", "random"])
def test_never_reproposes_a_known_or_isomorphic_candidate(surrogate: str) -> None:
    sampler = EcoSampler(
        search_space=SPACE,
        fingerprint=_fingerprint,
        seed=1,
        surrogate=surrogate,
        n_startup_trials=2,
        predict_cost=lambda p: _toy(p)[1],
    )
    study = _study(sampler, _objective, 6)
    fps = [_fingerprint(t.params) for t in study.trials]
    assert len(set(fps)) == 6
    assert sampler.unseen(study) == []


def test_without_dedupe_it_may_repropose() -> None:
    sampler = EcoSampler(search_space=SPACE, seed=0, dedupe=False, surrogate="random")
    study = _study(sampler, _objective, 40)
    assert len({tuple(t.params.items()) for t in study.trials}) < 40


def test_a_candidate_the_cost_model_cannot_build_is_never_proposed() -> None:
    def predict(p: dict[str, Any]) -> float | None:
        if p["b"] == "z":
            return None
        if p["a"] == 3:
            raise ValueError("cannot build")
        return 1.0

    sampler = EcoSampler(search_space=SPACE, seed=0, predict_cost=predict, surrogate="random")
    study = _study(sampler, _objective, 6)  # 3 a-values x 2 b-values are buildable
    assert all(t.params["b"] != "z" and t.params["a"] != 3 for t in study.trials)
    assert sampler.unseen(study) == []


def test_cost_aware_picks_the_cheaper_of_equally_promising_candidates() -> None:
    space = {"w": IntDistribution(1, 8)}

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        w = trial.suggest_int("w", 1, 8)
        return 0.5, float(w)  # accuracy says nothing; energy grows with w

    sampler = EcoSampler(
        search_space=space, seed=3, n_startup_trials=2, predict_cost=lambda p: float(p["w"])
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.enqueue_trial({"w": 8})
    study.enqueue_trial({"w": 7})
    study.optimize(objective, n_trials=3)
    assert study.trials[2].params["w"] == 1  # cheapest unseen, its cost predicted exactly


def test_enqueued_parameters_are_left_alone() -> None:
    sampler = EcoSampler(search_space=SPACE, fingerprint=_fingerprint, seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=3)
    again = dict(study.trials[0].params)
    study.enqueue_trial(again)  # a promotion re-runs known parameters on purpose
    study.optimize(_objective, n_trials=1)
    assert study.trials[-1].params == again


def test_expected_improvement_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    draws = rng.normal(0.6, 0.1, 200_000)
    front, ref = [(0.5, 1.0), (0.7, 2.0)], (0.2, 5.0)
    # a candidate at energy 1.5: it can add over [1.5, 2) above 0.5 and over [2, 5) above 0.7
    mc = (0.5 * np.maximum(0, draws - 0.5) + 3.0 * np.maximum(0, draws - 0.7)).mean()
    assert ehvi(front, ref, mu=0.6, sigma=0.1, energy=1.5) == pytest.approx(mc, rel=0.01)
    assert expected_improvement_above(0.3, 0.0, 0.5) == 0.0
    assert expected_improvement_above(0.7, 0.0, 0.5) == pytest.approx(0.2)


def test_gaussian_process_interpolates_and_is_unsure_far_away() -> None:
    pts = candidates(SPACE, np.random.default_rng(0), pool=0)
    seen = pts[:6]
    y = np.array([_toy(p)[0] for p in seen])
    cat = np.array([True, True])
    gp = GaussianProcess.fit(features(SPACE, seen), y, cat)
    mu, sd = gp.predict(features(SPACE, seen))
    assert np.abs(mu - y).max() < 0.05
    _, sd_new = gp.predict(features(SPACE, pts[6:]))
    assert sd_new.min() >= sd.max() - 1e-9


def test_nondominated_ranks_2d_peels_fronts() -> None:
    pts = [(0.9, 3.0), (0.5, 1.0), (0.6, 2.0), (0.4, 2.0), (0.5, 1.0), (0.3, 5.0)]
    assert nondominated_ranks_2d(pts) == [0, 0, 0, 1, 0, 2]


class TestSuccessiveHalving:
    def test_quota_pause_promotion_and_drain(self) -> None:
        sh = SuccessiveHalving(rungs=[1, 4], eta=2)
        assert sh.report("a", 0, accuracy=0.3, energy=1.0) is False  # 1 result: quota 0
        sh.pause("a", 0, {"p": "a"}, state=1)
        assert sh.next_promotion() is None
        # b dominates a: with two results the quota is one, and it is b's
        assert sh.report("b", 0, accuracy=0.5, energy=0.5) is True
        assert sh.report("c", 0, accuracy=0.1, energy=2.0) is False
        sh.pause("c", 0, {"p": "c"}, state=1)
        assert sh.next_promotion() is None  # quota 1 of 3: b, already promoted
        # a non-dominated newcomer: 4 results, quota 2 -> (b, d) on the first front
        assert sh.report("d", 0, accuracy=0.9, energy=3.0) is True
        assert sh.report("e", 0, accuracy=0.35, energy=0.9) is False  # b dominates e: rank 1
        sh.pause("e", 0, {"p": "e"}, state=1)
        assert sh.report("f", 0, accuracy=0.2, energy=1.5) is False
        sh.pause("f", 0, {"p": "f"}, state=1)
        got = sh.next_promotion()  # 6 results, quota 3: b, d, then e, which was paused
        assert got is not None and got.key == "e" and got.params == {"p": "e"}
        assert sh.next_promotion() is None
        drained = sh.drain()  # nothing new left: the best paused, quota or not
        assert drained is not None and drained.key == "a" and drained.state == 1
        assert [p.key for p in sh.paused] == ["c", "f"]
        assert sh.report("b", 1, accuracy=0.6, energy=2.0) is False  # the last rung: done

    def test_a_paused_candidate_is_promoted_when_later_results_make_room(self) -> None:
        sh = SuccessiveHalving(rungs=[1, 2, 4], eta=3)
        assert not sh.report("best", 0, accuracy=0.9, energy=1.0)  # alone: quota 0
        sh.pause("best", 0, {"x": 1}, state=1)
        for i in range(2):
            assert not sh.report(f"w{i}", 0, accuracy=0.1, energy=5.0 + i)
        promo = sh.next_promotion()
        assert promo is not None and promo.key == "best" and promo.params == {"x": 1}
        assert sh.next_promotion() is None  # promoted once

    def test_bad_rungs(self) -> None:
        with pytest.raises(ValueError):
            SuccessiveHalving(rungs=[4, 1])
        with pytest.raises(ValueError):
            SuccessiveHalving(rungs=[0, 4])
        with pytest.raises(ValueError):
            SuccessiveHalving(rungs=[1, 4], eta=1)


def test_cheap_startup_proposes_from_the_cheaper_half_by_predicted_cost() -> None:
    space = {"w": IntDistribution(1, 40)}
    for startup, cheap_only in (("cheap", True), ("uniform", False)):
        picks = []
        for seed in range(12):
            sampler = EcoSampler(
                search_space=space,
                seed=seed,
                startup=startup,
                n_startup_trials=5,
                predict_cost=lambda p: float(p["w"]),
            )
            study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
            study.optimize(lambda t: (t.suggest_int("w", 1, 40) / 40, 1.0), n_trials=3)
            picks += [t.params["w"] for t in study.trials]
        assert all(w <= 21 for w in picks) == cheap_only, picks  # median of 1..40 is 20.5
    with pytest.raises(ValueError, match="startup"):
        EcoSampler(search_space=space, startup="cheapest")
