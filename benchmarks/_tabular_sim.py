"""The simulation behind ``search_tabular.py``: one search (an arm, a seed) on one table, its
training a lookup, its accounting kept by :class:`Ledger`."""

from __future__ import annotations

import math
import zlib
from typing import Any

import optuna

from nas.search_strategy import EcoSampler, SuccessiveHalving
from nas.tabular import Table, exact_front, hypervolume_fraction

PEERS = ("random", "nsga2", "tpe", "gp")
FRACTIONS = {"95": 0.95, "98": 0.98, "99": 0.99}
BUDGET_EVALS = 30.0

# arm -> (description, EcoSampler keyword arguments, halving eta or None, predictor on)
ECONAS: dict[str, tuple[str, dict[str, Any], float | None, bool]] = {
    "econas": ("econas's default: EcoSampler defaults", {}, None, True),
    "econas-halving": ("default + successive halving over epochs (eta 3)", {}, 3.0, True),
    "econas-uniform-start": (
        "default, but 4 startup proposals uniform over all candidates (the old default)",
        {"startup": "uniform", "n_startup_trials": 4},
        None,
        True,
    ),  # noqa: E501
    "econas-no-dedupe": ("default, re-proposals allowed", {"dedupe": False}, None, True),
    "econas-no-cost": (
        "default, EHVI not divided by predicted kWh",
        {"cost_aware": False},
        None,
        True,
    ),  # noqa: E501
    "econas-no-skip": (
        "default, dominated candidates not skipped",
        {"skip_dominated": False},
        None,
        True,
    ),  # noqa: E501
    "econas-prior": (
        "default, no accuracy model (every candidate at the observed mean)",
        {"surrogate": "prior"},
        None,
        True,
    ),  # noqa: E501
    "econas-random": (
        "dedupe and feasibility only: uniform over unseen candidates",
        {"surrogate": "random", "startup": "uniform"},
        None,
        True,
    ),  # noqa: E501
    "econas-no-predictor": (
        "default without a cost predictor (energy unknown before training)",
        {},
        None,
        False,
    ),  # noqa: E501
}
ARMS: dict[str, str] = {
    "random": "Optuna RandomSampler(seed)",
    "nsga2": "Optuna NSGAIISampler(seed) (population 50)",
    "tpe": "Optuna TPESampler(seed): Optuna 5's default multi-objective sampler",
    "gp": "Optuna GPSampler(seed) (handles the categorical space; ~1 s a proposal)",
} | {k: v[0] for k, v in ECONAS.items()}


class Ledger:
    """Search energy and full-epoch evaluations, paid (every trial) and cached (exact
    duplicates free), and the hypervolume of the architectures trained to max_epochs."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.front = exact_front(table)
        self.full: set[str] = set()
        self.hv = 0.0
        self.trials = 0
        self.acc = {
            name: {"kwh": 0.0, "evals": 0.0, "kwh_to": {}, "evals_to": {}, "hv_budget": None}
            for name in ("paid", "cached")
        }  # noqa: E501

    def spend(self, kwh: float, epochs: float, *, duplicate: bool) -> None:
        for name, a in self.acc.items():
            if name == "cached" and duplicate:
                continue
            evals = epochs / self.table.max_epochs
            if a["hv_budget"] is None and a["evals"] + evals > BUDGET_EVALS + 1e-9:
                a["hv_budget"] = self.hv  # the budget ran out during this training
            a["kwh"] += kwh
            a["evals"] += evals

    def trained_full(self, arch: str) -> None:
        if arch in self.full:
            return
        self.full.add(arch)
        self.hv = hypervolume_fraction(self.table, self.full, self.front)
        for a in self.acc.values():
            for key, f in FRACTIONS.items():
                if key not in a["kwh_to"] and self.hv >= f - 1e-12:
                    a["kwh_to"][key] = a["kwh"]
                    a["evals_to"][key] = a["evals"]

    def done(self, max_evals: float) -> bool:
        c = self.acc["cached"]
        return ("99" in c["kwh_to"] and c["evals"] >= BUDGET_EVALS) or c["evals"] >= max_evals

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"trials": self.trials, "distinct_full": len(self.full)}
        for name, a in self.acc.items():
            out[name] = {
                "kwh": float(f"{a['kwh']:.6g}"),  # significant digits: kWh may be 1e-6
                "evals": round(a["evals"], 4),
                "kwh_to": {k: a["kwh_to"].get(k, math.inf) for k in FRACTIONS},
                "evals_to": {k: a["evals_to"].get(k, math.inf) for k in FRACTIONS},
                "hv_after_budget": a["hv_budget"] if a["hv_budget"] is not None else self.hv,
                "final_hv": self.hv,
            }
        p = out["paid"]
        out["summary_line"] = (
            f"{self.trials} trials, {len(self.full)} archs, {p['kwh']:.3g} kWh paid, "
            f"98% at {p['kwh_to']['98']:.3g} kWh / {p['evals_to']['98']:.1f} evals"
        )
        return out


def _repeat(table: Table, arch: str, seed: int, key: tuple[Any, ...]) -> int:
    """The repeat one encoding draws in one search: its training seed is fixed, so a
    re-proposal gets the same result (and, paid, the same bill) again."""
    return table.repeat_for(arch, zlib.crc32(f"{seed}:{key}".encode()))


def _suggest(table: Table, trial: optuna.Trial) -> tuple[dict[str, Any], tuple[Any, ...]]:
    params = {n: trial.suggest_categorical(n, list(table.choices[n])) for n in table.param_names}
    return params, tuple(params[n] for n in table.param_names)


def _peer_sampler(arm: str, seed: int) -> optuna.samplers.BaseSampler:
    if arm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if arm == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if arm == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if arm == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(arm)


def run_arm(
    table: Table, arm: str, seed: int, *, max_evals: float, max_trials: int
) -> dict[str, Any]:  # noqa: E501
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    ledger = Ledger(table)
    top = table.max_epochs
    if arm in PEERS:
        seen: set[tuple[Any, ...]] = set()

        def objective(trial: optuna.Trial) -> tuple[float, float]:
            ledger.trials += 1
            params, key = _suggest(table, trial)
            arch = table.arch_of(params)
            if arch is None:
                raise optuna.TrialPruned()  # not a valid architecture: costs nothing
            hit = table.lookup(arch, epochs=top, repeat=_repeat(table, arch, seed, key))
            ledger.spend(hit.energy_kwh, hit.epochs, duplicate=key in seen)
            seen.add(key)
            ledger.trained_full(arch)
            return table.objective_value(hit), hit.energy_kwh

        study = optuna.create_study(
            directions=["maximize", "minimize"], sampler=_peer_sampler(arm, seed)
        )  # noqa: E501
        study.optimize(
            objective,
            n_trials=max_trials,
            callbacks=[lambda s, t: s.stop() if ledger.done(max_evals) else None],
        )
        return ledger.result()
    return _run_econas(table, arm, seed, ledger, max_evals=max_evals, max_trials=max_trials)


def _run_econas(
    table: Table, arm: str, seed: int, ledger: Ledger, *, max_evals: float, max_trials: int
) -> dict[str, Any]:  # noqa: E501
    _, kwargs, eta, predictor = ECONAS[arm]
    top = table.max_epochs
    space = {
        n: optuna.distributions.CategoricalDistribution(list(table.choices[n]))
        for n in table.param_names
    }  # noqa: E501

    def predict(params: dict[str, Any]) -> float | None:
        arch = table.arch_of(params)
        return float(table.params(arch)) if arch is not None else None  # known before training

    def feasible_only(params: dict[str, Any]) -> float | None:
        return 1.0 if table.arch_of(params) is not None else None  # buildable, cost unknown

    sampler = EcoSampler(
        search_space=space,
        fingerprint=table.arch_of,
        predict_cost=predict if predictor else feasible_only,
        seed=seed,
        **kwargs,
    )  # noqa: E501
    common = set.intersection(
        *(set(table.epochs(a, r)) for a in table.archs for r in table.repeats(a))
    )  # noqa: E501
    rungs = sorted(e for e in common if e > 0)
    halving = SuccessiveHalving(rungs=rungs, eta=eta) if eta and len(rungs) > 1 else None
    seen: set[tuple[Any, ...]] = set()

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        ledger.trials += 1
        params, key = _suggest(table, trial)
        arch = table.arch_of(params)
        if arch is None:
            raise optuna.TrialPruned()
        repeat = _repeat(table, arch, seed, key)
        start = int(trial.user_attrs.get("resume_epochs", 0))  # a promotion: from its checkpoint
        duplicate = key in seen and start == 0
        seen.add(key)
        done = table.lookup(arch, epochs=start, repeat=repeat).energy_kwh if start else 0.0
        targets = [r for r in rungs if r > start] if halving else [top]
        for r in targets:
            hit = table.lookup(arch, epochs=r, repeat=repeat)
            ledger.spend(hit.energy_kwh - done, hit.epochs - start, duplicate=duplicate)
            done, start = hit.energy_kwh, hit.epochs
            if hit.epochs >= top:
                ledger.trained_full(arch)
                return table.objective_value(hit), hit.energy_kwh
            assert halving is not None
            rung = rungs.index(r)
            if not halving.report(
                arch, rung, accuracy=table.objective_value(hit), energy=hit.energy_kwh
            ):  # noqa: E501
                halving.pause(arch, rung, params, state=hit.epochs)
                raise optuna.TrialPruned()
        raise AssertionError("the last rung is max_epochs")

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    while ledger.trials < max_trials and not ledger.done(max_evals):
        promo = halving.next_promotion() if halving else None
        if promo is None and not sampler.unseen(study, space):
            promo = halving.drain() if halving else None
            if promo is None:
                break  # every architecture tried: nothing is left to learn
        if promo is not None:
            study.enqueue_trial(promo.params, user_attrs={"resume_epochs": promo.state})
        study.optimize(objective, n_trials=1)
    return ledger.result()
