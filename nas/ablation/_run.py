"""Run the table: every registered row, ``repeats`` times, at one budget, on one grid."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import torch

from nas.ablation._budget import ablation_context
from nas.ablation._calibration import (
    FLAGS,
    ablation_calibration,
    calibration_measurement,
    deployment_target,
    row_flags,
)
from nas.ablation._grid import Grid
from nas.ablation._measure import add_scopes, break_even_predictions, measure_inference, measure_row
from nas.ablation._reference import PAPER, PAPER_SETUP, REFERENCE, TARGET, compare_with_reference
from nas.ablation._registry import techniques
from nas.compression.selection import describe
from nas.compression.techniques import AblationContext, baseline_spec
from nas.config import Config
from nas.hardware import hardware_provenance
from nas.stats import t_interval

COLUMNS = (
    "technique",
    "accuracy",
    "accuracy_delta",
    "train_energy_kwh",
    "train_energy_change_pct",
    "train_kgco2e",
    "train_carbon_change_pct",
    "inference_energy_kwh_per_1k",
    "inference_energy_change_pct",
    "inference_kgco2e",
    "inference_carbon_change_pct",
    "energy_kwh",
    "energy_change_pct",
    "kgco2e",
    "carbon_change_pct",
    "params",
    "flops",
    "latency_ms",
)
PROVENANCE = ("energy_source", "energy_kind", "hardware", "intensity_g_per_kwh", "intensity_source")
SCOPE_PROVENANCE = (
    "train_intensity_g_per_kwh",
    "train_intensity_source",
    "inference_intensity_g_per_kwh",
    "inference_intensity_source",
)
INTERVALS = (
    "accuracy_delta",
    "energy_change_pct",
    "train_energy_change_pct",
    "train_carbon_change_pct",
    "carbon_change_pct",
)


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def _intervals(per_run: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """95% t-intervals over repeats of the accuracy change and the energy and carbon changes
    (None with one repeat: nothing is resolved by one run)."""
    out: dict[str, Any] = {}
    for col in INTERVALS:
        values = [float(r[col]) for r in per_run]
        ok = repeats > 1 and all(v == v for v in values)
        out[f"{col}_ci95"] = list(t_interval(values)) if ok else None
    return out


def run_ablation(
    config: Config,
    *,
    repeats: int | None = None,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every registered technique ``repeats`` times at ``[ablate] budget``; return the
    table with its spread (see :mod:`nas.ablation`)."""
    s = config.ablate
    repeats = repeats or s.repeats
    seed = config.study.seed if seed is None else seed
    grid = Grid.of(config)  # the trace and the window, checked before any work
    threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(s.threads)
    run, budget = ablation_context(config, seed=seed)  # the data are drawn with the first seed
    device, meter, data = run.device, run.meter, run.data
    assert meter is not None  # the ablation's context meters
    spec = baseline_spec(config, data)
    started = datetime.now(UTC)
    runs: list[list[dict[str, Any]]] = []
    details: dict[str, list[dict[str, Any]]] = {}
    rows_fns = techniques()
    try:
        target = deployment_target(config, device)
        cal = ablation_calibration(run, target, spec.config) if s.calibrate else None
        for r in range(repeats):
            ctx = AblationContext(
                run=run.replace(seed=seed + r),
                spec=spec,
                calibration=cal,
                target=target,
                budget=budget,
            )
            rows: list[dict[str, Any]] = []
            deployed = []
            for name, fn in rows_fns.items():
                if progress:
                    progress(f"repeat {r + 1}/{repeats}: {name} ({budget.name} budget)")
                torch.manual_seed(seed + r)
                dep = fn(ctx)
                if name == "baseline":
                    ctx.baseline = dep
                if name == "combined" and cal is not None and not cal.reused:
                    # the calibration decided the selection's choices: its cost is the row's
                    dep.train.append(calibration_measurement(meter, cal))
                    dep.details["calibration_energy_kwh"] = cal.energy_kwh
                rows.append(measure_row(ctx, name, dep, rows))
                rows[-1].update(row_flags(ctx, name, dep, grid))
                deployed.append(dep)
                details.setdefault(name, []).append(dep.details)
            if progress:
                progress(
                    f"repeat {r + 1}/{repeats}: inference, {s.inference_rounds} interleaved rounds"
                )
            measure_inference(ctx, rows, deployed)
            add_scopes(rows, grid, s.inference_predictions)
            runs.append(rows)
    finally:
        meter.close()
        torch.set_num_threads(threads)
    ran_at = run.intensity.intensity_over(started, datetime.now(UTC))
    table, spread = _summarise(runs, repeats)
    return {
        "rows": table,
        "spread": spread,
        "runs": runs,
        "details": details,
        "repeats": repeats,
        "seeds": [seed + r for r in range(repeats)],
        "budget": _budget_info(config, budget.name, run),
        "baseline_arch": spec.encode(),
        "baseline_spec": spec.to_dict(),
        "data": {
            "dataset": data.name,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test),
        },
        "lifecycle": {
            "trainings": 1,
            "inference_predictions": s.inference_predictions,
            "inference_batch_size": s.inference_batch_size,
            "inference_rounds": s.inference_rounds,
            "inference_min_duration_s": s.inference_min_duration_s,
            "accuracy_split": "test",
            "schedulable_inference_share": config.lifecycle.schedulable_inference_share,
        },
        "grid": grid.to_dict(),
        "ran_at": {  # where the work physically ran (the table charges the grid above)
            "intensity_g_per_kwh": ran_at.intensity_g_per_kwh,
            "intensity_source": ran_at.source,
        },
        "meter": {"source": meter.source, "kind": meter.kind, "hardware": meter.hardware},
        "device": str(device),
        "torch_threads": s.threads or threads,
        "accuracy_split": "test (the combined row's selection used the validation split)",
        "combined_selection": _selection_summary(details.get("combined", []), runs),
        "paper": {"name": PAPER, "setup": PAPER_SETUP, "scope": "the training job"},
        "reference": REFERENCE,
        "target": TARGET,
        "comparison": compare_with_reference(table, repeats=repeats),
        "calibration": cal.to_dict() if cal is not None else None,
        "deployment_target": str(target),
        "hardware_provenance": hardware_provenance(str(device), threads=s.threads or threads),
    }


def _summarise(
    runs: list[list[dict[str, Any]]], repeats: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The rows averaged over repeats, with each column's spread and the intervals."""
    table: list[dict[str, Any]] = []
    spread: dict[str, dict[str, Any]] = {}
    for i, first in enumerate(runs[0]):
        name = first["technique"]
        per_run = [rows[i] for rows in runs]
        row: dict[str, Any] = {"technique": name}
        spread[name] = {}
        for col in (*COLUMNS[1:], "train_duration_s", *SCOPE_PROVENANCE[::2]):
            values = [float(x[col]) for x in per_run]
            spread[name][col] = _spread(values)
            row[col] = spread[name][col]["mean"]
        row["params"], row["flops"] = int(row["params"]), int(row["flops"])
        e = row["energy_kwh"]
        row["intensity_g_per_kwh"] = row["kgco2e"] * 1000.0 / e if e > 0 else float("nan")
        for col in (*PROVENANCE[:3], "intensity_source", *SCOPE_PROVENANCE[1::2]):
            row[col] = per_run[0][col]
        for col in ("inference_device", "scheduled", "scheduling", *FLAGS):
            row[col] = per_run[0].get(col)
        row["break_even_predictions"] = break_even_predictions(row, table[0] if table else row)
        row.update(_intervals(per_run, repeats))
        table.append(row)
    return table, spread


def _budget_info(config: Config, name: str, run: Any) -> dict[str, Any]:
    d = run.data
    if name == "final":
        from nas.final import FinalOptions

        o = FinalOptions.of(config)
        return {
            "name": "final",
            "rows": "trained as econas train trains a trial ([final] recipe; pruned from scratch)",
            "epochs": o.epochs,
            "train_images": len(d.train),
            "val_images": len(d.val),
            "test_images": len(d.test),
            "batch_size": o.batch_size,
            "lr": o.lr,
            "schedule": o.schedule,
        }
    return {
        "name": "proxy",
        "rows": "trained by the [train] recipe on [data]'s subsets (as a search trial)",
        "epochs": config.train.epochs,
        "train_images": len(d.train),
        "val_images": len(d.val),
        "test_images": len(d.test),
        "batch_size": config.data.batch_size,
        "lr": config.train.lr,
        "schedule": "one_cycle",
    }


def _selection_summary(
    combined: list[dict[str, Any]], runs: list[list[dict[str, Any]]]
) -> dict[str, Any] | None:
    """The combined row's choice over repeats: what was chosen how often, the chosen
    setting's validation loss at the selection budget and its test change (the spread)."""
    if not combined:
        return None
    chosen: dict[str, int] = {}
    losses, deltas = [], []
    for d, rows in zip(combined, runs, strict=True):
        words = describe(d["combination"])
        chosen[words] = chosen.get(words, 0) + 1
        cands = d.get("selection_candidates") or []
        match = [c for c in cands if all(c.get(k) == v for k, v in d["combination"].items())]
        if match:
            losses.append(float(match[0]["accuracy_loss_pts"]))
        deltas.extend(r["accuracy_delta"] for r in rows if r["technique"] == "combined")
    budget = combined[0].get("selection_budget") or {}
    return {
        "chosen": chosen,
        "val_images": budget.get("val_images"),
        "train_images": budget.get("train_images"),
        "epochs": budget.get("epochs"),
        "chosen_val_accuracy_loss_pts": _spread(losses) if losses else None,
        "chosen_test_accuracy_delta_pts": _spread(deltas) if deltas else None,
    }
