"""Pareto fronts read from a study's storage, as rows and as a text table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import optuna

ROW_KEYS = (
    "accuracy",
    "test_accuracy",
    "kgco2e",
    "energy_kwh",
    "params",
    "flops",
    "latency_ms",
    "inference_energy_kwh_per_1k",
    "family",
    "arch",
    "energy_source",
    "energy_kind",
    "hardware",
    "intensity_g_per_kwh",
    "intensity_source",
    "duration_s",
)
_ATTR_ALIASES = {"latency_ms": "inference_latency_ms"}


def trial_row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A flat dict of a trial's figures (from its user attrs), keyed with units."""
    a = trial.user_attrs
    row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name}
    for key in ROW_KEYS:
        row[key] = a.get(key, a.get(_ATTR_ALIASES.get(key, ""), None))
    return row


def completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE,)
    return study.get_trials(deepcopy=False, states=states)


def pareto_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's non-dominated completed trials, cheapest first."""
    if not completed_trials(study):
        return []
    front = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    return sorted(front, key=lambda t: (t.user_attrs.get("kgco2e", math.inf), t.number))


def pareto_rows(study: optuna.Study) -> list[dict[str, Any]]:
    return [trial_row(t) for t in pareto_trials(study)]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3e}"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [list(columns)] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


TABLE_COLUMNS = (
    "trial",
    "family",
    "arch",
    "accuracy",
    "kgco2e",
    "energy_kwh",
    "params",
    "flops",
    "latency_ms",
    "energy_kind",
)


def pareto_table(study: optuna.Study) -> str:
    rows = pareto_rows(study)
    foot = _study_stop_lines(study)
    if not rows:
        return "\n".join(["no completed trials yet", *foot])
    provenance = {(r["energy_source"], r["energy_kind"], r["hardware"]) for r in rows}
    lines = [f"energy: {src} ({kind}) on {hw}" for src, kind, hw in sorted(provenance, key=str)]
    by_source: dict[str, list[float]] = {}
    for r in rows:
        values = by_source.setdefault(str(r["intensity_source"]), [])
        if r["intensity_g_per_kwh"] is not None:
            values.append(r["intensity_g_per_kwh"])
    for source, values in sorted(by_source.items()):
        lo, hi = (min(values), max(values)) if values else (None, None)
        span = _fmt(lo) if lo == hi else f"{_fmt(lo)}-{_fmt(hi)}"  # time-varying (trace) sources
        lines.append(f"carbon intensity: {span} gCO2e/kWh from {source}")
    head = f"Pareto front of study '{study.study_name}' ({len(rows)} of {len(completed_trials(study))} completed trials)"
    return "\n".join([head, format_table(rows, TABLE_COLUMNS), *lines, *foot])


def _study_stop_lines(study: optuna.Study) -> list[str]:
    """The carbon budget (nas.scheduling) and why the study stopped, when recorded."""
    a = study.user_attrs
    out = []
    if a.get("carbon_budget_kgco2e") is not None:
        used, cap = a.get("carbon_budget_used_kgco2e", 0.0), a["carbon_budget_kgco2e"]
        out.append(f"carbon budget: {_fmt(used)} of {_fmt(cap)} kgCO2e used by the search")
    out += [
        f"study stopped: {a[k]}" for k in ("carbon_budget_stop_reason", "stop_reason") if a.get(k)
    ]
    return out
