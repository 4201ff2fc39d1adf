"""Search efficiency: hypervolume of the accuracy-kgCO2e front versus cumulative search kWh.

For each seed, NSGA-II runs ``--nsga2-trials`` trials; the search kWh it spent is the budget
every other method gets (random, multi-objective TPE, and econas = TPE + zero-cost screening
+ multi-objective early stopping + reuse). Every trial's ``search_energy_kwh`` is what the
search paid for it (train/eval/screen windows; pruned and failed trials included; a reused
trial costs 0). Hypervolume uses Optuna's own routine (``optuna._hypervolume``) on
(-accuracy, kgco2e) with one reference point for all runs: accuracy 0 and 1.1x the largest
kgCO2e any completed trial of any run reached.

``energy_ratio_vs_nsga2`` (per seed, then the mean): search kWh econas needed to first reach
NSGA-II's final hypervolume, divided by NSGA-II's total search kWh (None if never reached).
The same script measures the Spearman correlation of each zero-cost proxy with the trained
validation accuracy of the random and TPE runs' completed trials (models rebuilt from their
ArchSpec, same initialisation seed). Writes benchmarks/results/search_efficiency.json.

    .venv/bin/python benchmarks/search_efficiency.py --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.config import config_from_dict  # noqa: E402
from nas.efficiency import PROXIES, compute_proxy, spearman  # noqa: E402
from nas.search import _quiet_expected_failures, build_objective  # noqa: E402
from nas.study import open_study  # noqa: E402
from search_spaces import ArchSpec, create_search_space  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "search_efficiency.json"
METHODS = ("nsga2", "random", "tpe", "econas")
# The quickstart's CNN and ViT spaces with their largest options cut, so that ~130 trials fit
# in ~15 minutes on 2 shared CPU cores.
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


def make_config(method: str, seed: int, storage: str, args: argparse.Namespace) -> Any:
    """The quickstart task with a smaller per-trial cost (see the JSON's ``task``)."""
    with open(ROOT / "studies" / "quickstart.toml", "rb") as f:
        import tomllib

        raw = tomllib.load(f)
    raw["study"].update(
        name=f"{method}-s{seed}",
        storage=storage,
        seed=seed,
        trials=args.nsga2_trials,
        sampler="tpe" if method == "econas" else method,
    )
    raw["data"].update(train_size=args.train_size, val_size=args.val_size, test_size=200)
    raw["search"].update(SMALL_SPACES)
    raw["eval"] = {"measure_inference": False}
    raw["hardware"] = {"device": "cpu", "meter": "estimate"}
    raw["efficiency"] = {"reuse": False}
    if method == "econas":
        raw["efficiency"] = {
            "reuse": True,
            "screen": args.screen,
            "screen_quantile": 0.5,
            "screen_warmup": 4,
            "early_stop": True,
            "early_stop_keep": 0.5,
            "early_stop_min_trials": 4,
            "early_stop_val_size": 200,
        }
    return config_from_dict(raw)


def run_method(cfg: Any, *, max_trials: int | None, budget_kwh: float | None) -> optuna.Study:
    study = open_study(cfg)
    objective = build_objective(cfg, study=study)
    spent = [0.0]

    def budget(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        spent[0] += float(trial.user_attrs.get("search_energy_kwh", 0.0))
        if budget_kwh is not None and spent[0] >= budget_kwh:
            study.stop()

    study.optimize(
        objective,
        n_trials=max_trials or 10_000,
        catch=(Exception,),
        callbacks=[budget],
        gc_after_trial=False,
    )
    return study


def curve(study: optuna.Study, kg_ref: float) -> list[tuple[float, float]]:
    """(cumulative search kWh, hypervolume so far) after each trial, in trial order."""
    from optuna._hypervolume import compute_hypervolume

    out, spent, points = [], 0.0, []
    for t in sorted(study.trials, key=lambda t: t.number):
        spent += float(t.user_attrs.get("search_energy_kwh", 0.0))
        if t.state == optuna.trial.TrialState.COMPLETE:
            acc, kg = float(t.user_attrs["accuracy"]), float(t.user_attrs["kgco2e"])
            if kg < kg_ref:
                points.append((-acc, kg))
        hv = (
            float(compute_hypervolume(np.array(points), np.array([0.0, kg_ref]))) if points else 0.0
        )
        out.append((spent, hv))
    return out


def summary(study: optuna.Study) -> dict[str, Any]:
    states = [t.state.name for t in study.trials]
    attrs = [t.user_attrs for t in study.trials]
    stopped = [a for a in attrs if str(a.get("stop_reason", "")).startswith("early-stopped")]
    screened = [a for a in attrs if str(a.get("stop_reason", "")).startswith("screened")]
    full = [a for a in attrs if "accuracy" in a and not a.get("reused")]
    return {
        "trials": len(states),
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "screened": len(screened),
        "early_stopped": len(stopped),
        "reused": sum(1 for a in attrs if a.get("reused")),
        "screen_energy_kwh": sum(float(a.get("screen_energy_kwh", 0.0)) for a in attrs),
        "early_stopped_energy_kwh": sum(float(a.get("search_energy_kwh", 0)) for a in stopped),
        "mean_full_trial_search_kwh": (
            sum(float(a["search_energy_kwh"]) for a in full) / len(full) if full else None
        ),
    }


def proxy_correlations(studies: list[optuna.Study], cfg: Any, n_batch: int = 64) -> dict:
    """Spearman rho of each proxy with trained validation accuracy (completed trials)."""
    from nas.search import build_objective as _bo

    data = _bo(cfg).data
    x, y = (t[:n_batch] for t in data.train.tensors)
    rows: list[tuple[str, float, dict[str, float]]] = []
    for study in studies:
        for t in study.trials:
            a = t.user_attrs
            if t.state != optuna.trial.TrialState.COMPLETE or a.get("reused"):
                continue
            spec = ArchSpec.from_json(a["arch_spec"])
            torch.manual_seed(study_seed(study) + t.number)
            model = create_search_space(spec.family).build(spec)
            scores = {name: compute_proxy(name, model, x, y) for name in PROXIES}
            rows.append((spec.family, float(a["accuracy"]), scores))
    out: dict[str, Any] = {"n_models": len(rows)}
    for group in ("all", "cnn", "vit"):
        sel = [r for r in rows if group == "all" or r[0] == group]
        out[group] = {
            name: _round(spearman([r[2][name] for r in sel], [r[1] for r in sel]))
            for name in PROXIES
        } | {"n": len(sel)}
    return out


def study_seed(study: optuna.Study) -> int:
    return int(json.loads(study.user_attrs["econas_config"])["study"]["seed"])


def reach_kwh(points: list[tuple[float, float]], target: float) -> float | None:
    for kwh, hv in points:
        if hv >= target - 1e-12:
            return kwh
    return None


def _round(x: float | None, n: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--nsga2-trials", type=int, default=16)
    p.add_argument("--train-size", type=int, default=600)
    p.add_argument("--val-size", type=int, default=200)
    p.add_argument("--screen", default="naswot", choices=sorted(PROXIES))
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _quiet_expected_failures()
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="econas-bench-"))
    storage = f"sqlite:///{tmp / 'bench.db'}"
    studies: dict[tuple[str, int], optuna.Study] = {}
    budgets: dict[int, float] = {}
    for seed in args.seeds:
        for method in METHODS:
            cfg = make_config(method, seed, storage, args)
            ts = time.perf_counter()
            if method == "nsga2":
                study = run_method(cfg, max_trials=args.nsga2_trials, budget_kwh=None)
                budgets[seed] = sum(
                    float(t.user_attrs.get("search_energy_kwh", 0.0)) for t in study.trials
                )
            else:
                study = run_method(cfg, max_trials=None, budget_kwh=budgets[seed])
            studies[(method, seed)] = study
            print(
                f"seed {seed} {method}: {len(study.trials)} trials "
                f"{time.perf_counter() - ts:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    kgs = [
        float(t.user_attrs["kgco2e"])
        for s in studies.values()
        for t in s.trials
        if t.state == optuna.trial.TrialState.COMPLETE
    ]
    kg_ref = 1.1 * max(kgs)
    per_seed: dict[str, Any] = {}
    ratios: list[float | None] = []
    for seed in args.seeds:
        curves = {m: curve(studies[(m, seed)], kg_ref) for m in METHODS}
        target = curves["nsga2"][-1][1]
        reached = reach_kwh(curves["econas"], target)
        ratio = None if reached is None else reached / budgets[seed]
        ratios.append(ratio)
        per_seed[str(seed)] = {
            "budget_kwh": budgets[seed],
            "nsga2_final_hypervolume": target,
            "econas_kwh_to_reach_nsga2_hypervolume": reached,
            "energy_ratio_vs_nsga2": _round(ratio),
            "final_hypervolume": {m: curves[m][-1][1] for m in METHODS},
            "search_kwh": {m: curves[m][-1][0] for m in METHODS},
            "curves_kwh_hypervolume": {m: curves[m] for m in METHODS},
            "methods": {m: summary(studies[(m, seed)]) for m in METHODS},
        }
    got = [r for r in ratios if r is not None]
    corr_cfg = make_config("random", args.seeds[0], storage, args)
    result = {
        "benchmark": "search_efficiency",
        "energy_ratio_vs_nsga2": _round(sum(got) / len(got)) if len(got) == len(ratios) else None,
        "energy_ratio_vs_nsga2_per_seed": [_round(r) for r in ratios],
        "target": 0.5,
        "reference_point": {"accuracy": 0.0, "kgco2e": kg_ref},
        "task": {
            "base": "studies/quickstart.toml",
            "train_size": args.train_size,
            "val_size": args.val_size,
            "epochs": 2,
            "measure_inference": False,
            "nsga2_trials": args.nsga2_trials,
            "search_spaces": SMALL_SPACES,
            "screen": args.screen,
            "energy": "estimate (process CPU time x per-core power): no RAPL/GPU here",
        },
        "seeds": per_seed,
        "proxy_spearman_vs_accuracy": proxy_correlations(
            [studies[(m, s)] for m in ("random", "tpe") for s in args.seeds], corr_cfg
        ),
        "published_spearman_nasbench201_cifar10": "about 0.6-0.74 (synflow, naswot, grad_norm)",
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "seeds"}, indent=2))


if __name__ == "__main__":
    main()
