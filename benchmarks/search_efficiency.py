"""Search efficiency: hypervolume of the accuracy-kgCO2e front versus cumulative search kWh.

Methods, per seed, all on the same task (the quickstart's data and spaces, cut down):

- ``nsga2``: Optuna's NSGA-II, population ``--population`` (8) over ``--generations`` (5):
  exactly population x generations trials. What it spent is the budget every other method
  gets.
- ``tpe``: Optuna's default multi-objective TPE (``TPESampler(seed=...)``).
- ``random``: random search.
- ``econas``: econas's default search, ``[study] sampler = "eco"``
  (:class:`nas.search_strategy.ArchSampler`: whole architectures drawn from the space, never
  one already seen, the expected hypervolume improvement per predicted kWh under a Gaussian
  process of accuracy, candidates dominated at their predicted cost skipped), reuse on. Its
  proposal work (drawing and describing candidates) runs in each trial's metered ``sample``
  phase, so it is in the trial's ``search_energy_kwh``.

**Load.** The methods of one seed run interleaved, trial by trial, their order rotating each
round, so machine load hits all alike; seeds run in ``--jobs`` processes (one thread each).
**Accounting.** A trial costs its whole ``search_energy_kwh``: every phase (screening, reuse
scan, the training of pruned and early-stopped trials, failed trials). **Reference point**,
fixed before the runs: accuracy 0 and 2x the largest kgCO2e of a calibration sample of
architectures (drawn apart from every method, not counted in any).

``energy_ratio_vs_nsga2`` is the median over seeds of: search kWh econas needed to first
reach NSGA-II's final hypervolume, divided by NSGA-II's total. A seed that never reaches it
counts as econas's total spend / NSGA-II's (and says so). Targets: median <= 0.5 and worst
seed <= 0.7. ``energy_ratio_vs_tpe`` is the same against TPE's final hypervolume.

``target_vs_best_peer``: the peer (NSGA-II, TPE or random search) with the highest median final
hypervolume is the best peer; per seed, the kWh econas needed to first reach that peer's final
hypervolume over the peer's total; target: median <= 0.7 with its distribution-free 95%
interval (``nas.stats.median_ci``: at least 6 seeds for 95% coverage, else ``unresolved``).
The same ratio against each peer is listed (TPE, Optuna's default, among them).

    .venv/bin/python benchmarks/search_efficiency.py [--seeds 0 1 2 3 4] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _harness  # noqa: E402  (pins the thread environment before torch loads)
import numpy as np  # noqa: E402
import optuna  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "search_efficiency.json"
METHODS = ("nsga2", "tpe", "random", "econas")
SMALL_SPACES: dict[str, Any] = {
    "cnn": {
        "max_stages": 3,
        "stem_width_choices": [8, 16],
        "width_choices": [8, 16, 32],
        "depth_choices": [1, 2],
        "kernel_choices": [3, 5],
        "expand_choices": [1, 2],
    },
    "vit": {
        "patch_choices": [4, 7],
        "dim_choices": [16, 32, 64],
        "heads_choices": [1, 2, 4],
        "depth_choices": [1, 2, 3],
        "mlp_ratio_choices": [1, 2],
    },
}
TARGET_MEDIAN, TARGET_WORST = 0.5, 0.7
PEERS, TARGET_VS_PEER = ("nsga2", "tpe", "random"), 0.7


def make_config(method: str, seed: int, storage: str, args: argparse.Namespace) -> Any:
    """The quickstart task with a smaller per-trial cost (see the JSON's ``task``)."""
    import tomllib

    from nas.config import config_from_dict

    with open(ROOT / "studies" / "quickstart.toml", "rb") as f:
        raw = tomllib.load(f)
    raw["study"].update(
        name=f"{method}-s{seed}",
        storage=storage,
        artifacts=str(Path(storage.removeprefix("sqlite:///")).parent / "artifacts"),
        seed=seed,
        trials=10_000,
        sampler={"nsga2": "nsga2", "random": "random", "econas": "eco"}.get(method, "tpe"),
    )
    raw["data"].update(train_size=args.train_size, val_size=args.val_size, test_size=200)
    raw["train"]["epochs"] = args.epochs
    raw["search"].update(SMALL_SPACES)
    raw["eval"] = {"measure_inference": False}
    raw["hardware"] = {"device": "cpu", "meter": "estimate"}
    raw["efficiency"] = {"reuse": False}
    if method == "econas":
        raw["efficiency"] = {"reuse": True}
    return config_from_dict(raw)


def make_sampler(method: str, cfg: Any, args: argparse.Namespace) -> optuna.samplers.BaseSampler:
    from nas.study import TrialSeededSampler, make_sampler

    seed = cfg.study.seed
    if method == "nsga2":
        inner = optuna.samplers.NSGAIISampler(population_size=args.population, seed=seed)
        return TrialSeededSampler(inner, seed)
    if method == "tpe":  # Optuna's default multi-objective TPE, as a user would get it
        return TrialSeededSampler(optuna.samplers.TPESampler(seed=seed), seed)
    return make_sampler(cfg)  # random; econas's eco sampler


def spent(study: optuna.Study) -> float:
    return sum(float(t.user_attrs.get("search_energy_kwh", 0.0)) for t in study.trials)


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every method of one seed, interleaved trial by trial; the studies' trials as JSON."""
    from nas.proposals import bind_sampler
    from nas.search import _quiet_expected_failures, build_objective
    from nas.study import open_study

    _harness.pin_threads()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _quiet_expected_failures()
    tmp = Path(tempfile.mkdtemp(prefix=f"econas-bench-s{seed}-"))
    storage = f"sqlite:///{tmp / 'bench.db'}"
    studies: dict[str, optuna.Study] = {}
    objectives = {}
    for method in METHODS:
        cfg = make_config(method, seed, storage, args)
        study = open_study(cfg)
        study.sampler = make_sampler(method, cfg, args)
        studies[method] = study
        objectives[method] = build_objective(cfg, study=study)
        bind_sampler(study, objectives[method])  # eco: the spaces it draws from
    n_nsga2 = args.population * args.generations
    budget: float | None = None
    t0 = time.perf_counter()
    rnd = 0
    while True:
        active = [
            m
            for m in METHODS
            if (m == "nsga2" and len(studies[m].trials) < n_nsga2)
            or (m != "nsga2" and (budget is None or spent(studies[m]) < budget))
        ]
        if not active:
            break
        shift = rnd % len(active)
        for method in active[shift:] + active[:shift]:
            studies[method].optimize(
                objectives[method], n_trials=1, catch=(Exception,), gc_after_trial=False
            )
        if budget is None and len(studies["nsga2"].trials) >= n_nsga2:
            budget = spent(studies["nsga2"])
        rnd += 1
        if rnd > 50 * n_nsga2:  # a method whose trials cost nothing would never stop
            raise RuntimeError(f"seed {seed}: no end after {rnd} rounds")
    print(
        f"seed {seed}: {rnd} rounds in {time.perf_counter() - t0:.0f} s, budget {budget:.3e} kWh; "
        + ", ".join(f"{m} {len(s.trials)} trials" for m, s in studies.items()),
        file=sys.stderr,
        flush=True,
    )
    return {m: [_trial_json(t) for t in s.trials] for m, s in studies.items()}


def _trial_json(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    a = t.user_attrs
    keep = ("accuracy", "kgco2e", "search_energy_kwh", "family", "arch_spec", "reused")
    keep += ("sample_energy_kwh", "train_energy_kwh")  # the proposal's cost, the training's
    out = {k: a[k] for k in keep if k in a}
    out |= {k: v for k, v in a.items() if k.startswith("proxy_") or k.startswith("screen_")}
    out["stop_reason"] = a.get("stop_reason")
    out["state"] = t.state.name
    out["number"] = t.number
    return out


def calibrate_reference(args: argparse.Namespace) -> dict[str, Any]:
    """The hypervolume reference point, fixed before the runs: 2x the largest kgCO2e of
    ``--calibration`` random architectures (their energy counts in no method)."""
    from nas.search import build_objective
    from nas.study import open_study

    _harness.pin_threads()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="econas-bench-cal-"))
    cfg = make_config("random", 10_000, f"sqlite:///{tmp / 'cal.db'}", args)
    study = open_study(cfg)
    study.optimize(build_objective(cfg, study=study), n_trials=args.calibration, catch=(Exception,))
    kgs = [float(t.user_attrs["kgco2e"]) for t in study.trials if "kgco2e" in t.user_attrs]
    return {
        "accuracy": 0.0,
        "kgco2e": 2.0 * max(kgs),
        "rule": f"2 x the largest kgCO2e of {len(kgs)} random calibration architectures "
        "(seed 10000), fixed before the runs",
    }


def curve(trials: list[dict[str, Any]], kg_ref: float) -> list[tuple[float, float]]:
    """(cumulative search kWh, hypervolume so far) after each trial, in trial order."""
    from optuna._hypervolume import compute_hypervolume

    out, total, points = [], 0.0, []
    for t in sorted(trials, key=lambda t: t["number"]):
        total += float(t.get("search_energy_kwh", 0.0))
        if t["state"] == "COMPLETE" and "kgco2e" in t and t["kgco2e"] < kg_ref:
            points.append((-float(t["accuracy"]), float(t["kgco2e"])))
        hv = (
            float(compute_hypervolume(np.array(points), np.array([0.0, kg_ref]))) if points else 0.0
        )
        out.append((total, hv))
    return out


def reach(points: list[tuple[float, float]], target: float) -> float | None:
    return next((kwh for kwh, hv in points if hv >= target - 1e-15), None)


def energy_ratio(method_curve: list, reference_curve: list) -> tuple[float, bool]:
    """kWh ``method`` needed to reach the reference's final hypervolume / the reference's
    total kWh; when never reached, ``method``'s total / the reference's (and False)."""
    ref_kwh, ref_hv = reference_curve[-1]
    got = reach(method_curve, ref_hv)
    if got is None:
        return method_curve[-1][0] / ref_kwh, False
    return got / ref_kwh, True


def summary(trials: list[dict[str, Any]]) -> dict[str, Any]:
    states = [t["state"] for t in trials]
    reasons = [str(t.get("stop_reason") or "") for t in trials]
    return {
        "trials": len(trials),
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "screened": sum(r.startswith("screened") for r in reasons),
        "early_stopped": sum(r.startswith("early-stopped") for r in reasons),
        "reused": sum(bool(t.get("reused")) for t in trials),
        "search_kwh": sum(float(t.get("search_energy_kwh", 0.0)) for t in trials),
        "sample_kwh": sum(float(t.get("sample_energy_kwh") or 0.0) for t in trials),
        "train_kwh": sum(float(t.get("train_energy_kwh") or 0.0) for t in trials),
        "architectures": len({t.get("arch_spec") for t in trials if t.get("arch_spec")}),
        "screen_choices": sorted({t["screen_choice"] for t in trials if "screen_choice" in t}),
    }


def proxy_correlations(runs: list[list[dict[str, Any]]], args: argparse.Namespace) -> dict:
    """Spearman rho of each proxy (and log #params) with trained validation accuracy, per
    family, over the completed trials of the random and TPE runs (models rebuilt from their
    ArchSpec and scored on one training batch)."""
    import torch

    from nas.data import DataBudget, load_data
    from nas.efficiency import PROXIES, compute_proxy
    from nas.stats import spearman
    from search_spaces import ArchSpec, build_model

    data = load_data(
        "fashion-mnist",
        budget=DataBudget(train_size=args.train_size, val_size=args.val_size, test_size=200),
        seed=0,
    )
    x, y = (t[:64] for t in data.train.tensors)
    rows = []
    for trials in runs:
        for t in trials:
            if t["state"] != "COMPLETE" or t.get("reused") or "arch_spec" not in t:
                continue
            spec = ArchSpec.from_json(t["arch_spec"])
            torch.manual_seed(t["number"])
            model = build_model(spec)
            rows.append(
                (spec.family, t["accuracy"], {n: compute_proxy(n, model, x, y) for n in PROXIES})
            )
    out: dict[str, Any] = {"n_models": len(rows)}
    for group in ("all", "cnn", "vit"):
        sel = [r for r in rows if group == "all" or r[0] == group]
        out[group] = {
            name: _round(spearman([r[2][name] for r in sel], [r[1] for r in sel]))
            for name in PROXIES
        } | {"n": len(sel)}
    return out


def _round(x: float | None, n: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, n)


def best_peer_target(
    per_seed: dict[str, Any], vs_peer: dict[str, list[float]], seeds: list[int]
) -> dict[str, Any]:
    """econas's kWh to reach the best peer's final hypervolume over that peer's, per seed."""
    from nas.stats import median, median_ci, verdict

    final = {p: median([per_seed[str(s)]["final_hypervolume"][p] for s in seeds]) for p in PEERS}
    best = max(PEERS, key=lambda p: final[p])

    def interval(values: list[float]) -> dict[str, Any]:
        lo, hi, cov = median_ci(values)
        return {
            "median": _round(median(values)),
            "ci95": [_round(lo), _round(hi)],
            "ci_coverage": round(cov, 4),
            "per_seed": [_round(v) for v in values],
        }

    out = interval(vs_peer[best])
    decided = verdict((out["ci95"][0], out["ci95"][1]), TARGET_VS_PEER, higher_is_better=False)
    return {
        "best_peer": best,
        "rule": "the peer with the highest median final hypervolume; per seed econas's kWh to "
        "first reach its final hypervolume / its total kWh (a seed that never reaches it counts "
        "econas's total)",
        "peer_final_hypervolume_median": final,
        **out,
        "target": TARGET_VS_PEER,
        "verdict": decided if out["ci_coverage"] >= 0.95 else "unresolved",
        "per_peer": {p: interval(vs_peer[p]) for p in PEERS},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--jobs", type=int, default=2, help="seeds run in this many processes")
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--train-size", type=int, default=400)
    p.add_argument("--val-size", type=int, default=200)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--screen-warmup", type=int, default=4)
    p.add_argument("--early-stop-min-trials", type=int, default=3)
    p.add_argument("--calibration", type=int, default=6)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    before = _harness.provenance()
    t0 = time.perf_counter()
    reference = calibrate_reference(args)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(
            zip(args.seeds, pool.map(run_seed, args.seeds, [args] * len(args.seeds)), strict=True)
        )
    kg_ref = reference["kgco2e"]
    per_seed: dict[str, Any] = {}
    vs_nsga2: list[float] = []
    vs_tpe: list[float] = []
    vs_peer: dict[str, list[float]] = {p: [] for p in PEERS}
    for seed, runs in results.items():
        curves = {m: curve(runs[m], kg_ref) for m in METHODS}
        ratios = {m: energy_ratio(curves[m], curves["nsga2"]) for m in METHODS if m != "nsga2"}
        tpe_ratio, _ = energy_ratio(curves["econas"], curves["tpe"])
        vs_nsga2.append(ratios["econas"][0])
        vs_tpe.append(tpe_ratio)
        for peer in PEERS:
            vs_peer[peer].append(energy_ratio(curves["econas"], curves[peer])[0])
        per_seed[str(seed)] = {
            "budget_kwh": curves["nsga2"][-1][0],
            "nsga2_final_hypervolume": curves["nsga2"][-1][1],
            "energy_ratio_vs_nsga2": {m: _round(r) for m, (r, _) in ratios.items()},
            "reached_nsga2_hypervolume": {m: ok for m, (_, ok) in ratios.items()},
            "energy_ratio_vs_tpe": _round(tpe_ratio),
            "final_hypervolume": {m: curves[m][-1][1] for m in METHODS},
            "search_kwh": {m: curves[m][-1][0] for m in METHODS},
            "methods": {m: summary(runs[m]) for m in METHODS},
            "curves_kwh_hypervolume": curves,
        }
    from nas.stats import median

    worst = max(vs_nsga2)
    result = {
        "benchmark": "search_efficiency",
        "energy_ratio_vs_nsga2": _round(median(vs_nsga2)),
        "energy_ratio_vs_nsga2_per_seed": [_round(r) for r in vs_nsga2],
        "energy_ratio_vs_nsga2_worst": _round(worst),
        "energy_ratio_vs_tpe": _round(median(vs_tpe)),
        "energy_ratio_vs_tpe_per_seed": [_round(r) for r in vs_tpe],
        "energy_ratio_vs_nsga2_by_method": {
            m: _round(
                median([float(per_seed[str(s)]["energy_ratio_vs_nsga2"][m]) for s in args.seeds])
            )
            for m in METHODS
            if m != "nsga2"
        },
        "seeds_that_never_reached_nsga2": [
            s for s in args.seeds if not per_seed[str(s)]["reached_nsga2_hypervolume"]["econas"]
        ],
        "targets": {"median": TARGET_MEDIAN, "worst_seed": TARGET_WORST},
        "verdict": (
            "met" if median(vs_nsga2) <= TARGET_MEDIAN and worst <= TARGET_WORST else "not met"
        ),
        "verdict_note": "on the medians and worst seed named by the targets; per-seed values "
        "are listed so the spread is visible",
        "target_vs_best_peer": best_peer_target(per_seed, vs_peer, args.seeds),
        "reference_point": reference,
        "proxy_spearman_vs_accuracy": proxy_correlations(
            [results[s][m] for m in ("random", "tpe") for s in args.seeds], args
        ),
        "task": {
            "base": "studies/quickstart.toml",
            "train_size": args.train_size,
            "val_size": args.val_size,
            "epochs": args.epochs,
            "measure_inference": False,
            "nsga2": f"population {args.population} x {args.generations} generations",
            "search_spaces": SMALL_SPACES,
            "screen_warmup": args.screen_warmup,
            "early_stop_min_trials": args.early_stop_min_trials,
            "energy": "estimate (process CPU time x per-core power): no RAPL/GPU here",
        },
        "seeds": per_seed,
        "wall_s": round(time.perf_counter() - t0, 1),
        "provenance": {"before": before, "after": _harness.provenance()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("seeds",)}, indent=2))


if __name__ == "__main__":
    main()
