"""Pareto fronts: the one non-dominated-sorting routine, and fronts read from a study's storage.

Each baseline (a reference design, ``[search] baselines``) is judged against the front
(:func:`baseline_verdicts`): dominated when a front trial has accuracy >= and kgCO2e <= the
baseline's, strictly better in one.

A trial that reused another trial's result of the same study (``[efficiency] reuse``) is the
same finding as its source, not a second one: it is left off the front and listed with its
source (``reused_by``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from nas.record import (
    METERED_FRACTION_FLAG,
    Final,
    Inference,
    StudyAttrs,
    TrialAttrs,
    TrialRecord,
    records,
)
from nas.text import for_terminal, plural


# -- the routine ----------------------------------------------------------------------------
def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for x, y, up in zip(a, b, maximize, strict=True):
        if (x < y) if up else (x > y):
            return False
        if x != y:
            better = True
    return better


def nondominated_ranks(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Front index of each point: 0 for the non-dominated ones, 1 for those only the first
    front dominates, and so on."""
    ranks = [-1] * len(points)
    remaining = set(range(len(points)))
    front = 0
    while remaining:
        current = {
            i
            for i in remaining
            if not any(dominates(points[j], points[i], maximize) for j in remaining)
        }
        for i in current:
            ranks[i] = front
        remaining -= current
        front += 1
    return ranks


def front_indices(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points."""
    return [i for i, r in enumerate(nondominated_ranks(points, maximize)) if r == 0]


# -- fronts of a study ----------------------------------------------------------------------
ROW_FIELDS = (
    TrialAttrs.accuracy,
    TrialAttrs.test_accuracy,
    TrialAttrs.kgco2e,
    TrialAttrs.energy_kwh,
    TrialAttrs.params,
    TrialAttrs.flops,
    Inference.latency_ms,  # row key "latency_ms", the objective's name
    Inference.batch_size,
    Inference.runtime,
    Inference.device,
    Inference.threads,
    Inference.energy_kwh_per_1k,
    TrialAttrs.family,
    TrialAttrs.arch,
    TrialAttrs.energy_source,
    TrialAttrs.energy_kind,
    TrialAttrs.hardware,
    TrialAttrs.intensity_g_per_kwh,
    TrialAttrs.intensity_source,
    TrialAttrs.duration_s,
    TrialAttrs.metered_fraction,
    TrialAttrs.search_energy_kwh,
)
_KEY = {Inference.latency_ms: Inference.latency_ms.removeprefix("inference_")}
ROW_KEYS = tuple(_KEY.get(f, str(f)) for f in ROW_FIELDS)
_COMPLETE = (optuna.trial.TrialState.COMPLETE,)
FINAL_ROW = (
    Final.status,
    Final.epochs,
    Final.train_size,
    Final.test_accuracy,
    Final.energy_kwh,
    Final.kgco2e,
    Final.energy_kind,
    Final.energy_source,
    Final.projected_energy_kwh,
    Final.projected_kgco2e,
    Final.projection_error_pct,
    Final.lost_energy_kwh,
    Final.weights_artifact_id,
)


def trial_row(trial: optuna.trial.FrozenTrial | TrialRecord) -> dict[str, Any]:
    """A flat dict of a trial's figures (from its record), keyed with units."""
    rec = trial if isinstance(trial, TrialRecord) else TrialRecord.of(trial)
    row: dict[str, Any] = {"trial": rec.number, "state": rec.state.name}
    for key, field in zip(ROW_KEYS, ROW_FIELDS, strict=True):
        row[key] = rec.get(field)
    if rec.get(TrialAttrs.baseline):  # a reference design (search.baselines)
        row["baseline"] = rec.get(TrialAttrs.baseline)
    row["chance_accuracy"] = rec.chance_accuracy
    row["at_or_below_chance"] = rec.at_or_below_chance
    if rec.reused_from is not None:
        row["reused_from"] = {"study": rec.reused_from[0], "trial": rec.reused_from[1]}
    if rec.final:  # trained at full budget (econas train), or projected (--dry-run)
        row["final"] = {
            f.removeprefix("final_"): rec.final.get(f) for f in FINAL_ROW if f in rec.final
        }
    return row


def completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=_COMPLETE)


def findings(study: optuna.Study) -> tuple[list[TrialRecord], dict[int, list[int]]]:
    """The completed trials that are findings of their own, and for each source trial the
    trials of this study that reused its result."""
    out, reused_by = [], {}
    for rec in records(completed_trials(study), study=study):
        src = rec.reused_from
        if src is not None and src[0] in (None, study.study_name):
            reused_by.setdefault(src[1], []).append(rec.number)
        else:
            out.append(rec)
    return out, reused_by


def pareto_trials(study: optuna.Study) -> list[TrialRecord]:
    """The study's non-dominated findings over its objectives, cheapest first."""
    recs, _ = findings(study)
    recs = [r for r in recs if r.values is not None]
    maximize = [d == optuna.study.StudyDirection.MAXIMIZE for d in study.directions]
    front = [recs[i] for i in front_indices([r.values for r in recs], maximize)]
    return sorted(front, key=lambda r: (r.kgco2e if r.kgco2e is not None else math.inf, r.number))


def pareto_rows(study: optuna.Study) -> list[dict[str, Any]]:
    _, reused_by = findings(study)
    rows = []
    for rec in pareto_trials(study):
        row = trial_row(rec)
        if rec.number in reused_by:
            row["reused_by"] = reused_by[rec.number]
        rows.append(row)
    return rows


MAX_CELL = 200  # a stored attr may be megabytes long: the terminal shows its start
MAX_LINE = 1000


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}... (+{len(text) - limit + 20} chars)"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3e}"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return clip(str(value), MAX_CELL)


def format_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    headers: dict[str, str] | None = None,
    cell: Any = None,
) -> str:
    """A plain aligned text table; ``headers`` renames columns, ``cell(row, column)`` may
    give a cell's text (None: the default format)."""
    names = [(headers or {}).get(c, c) for c in columns]

    def text(r: dict[str, Any], c: str) -> str:
        got = cell(r, c) if cell is not None else None
        return got if got is not None else _fmt(r.get(c))

    cells = [names] + [[text(r, c) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


TABLE_COLUMNS = (
    "trial",
    "family",
    "accuracy",
    "kgco2e",
    "energy_kwh",
    "params",
    "flops",
    "latency_ms",
    "energy_kind",
    "arch",  # last: a CNN's string is long, and would push every column after it
)
TABLE_HEADERS = {"accuracy": "val_accuracy"}  # the objective is validation accuracy


def _cell(row: dict[str, Any], column: str) -> str | None:
    if column == "trial" and row.get("baseline"):
        return f"{row['trial']} ({clip(str(row['baseline']), 40)})"
    if column == "accuracy" and row.get("at_or_below_chance"):
        return f"{_fmt(row.get('accuracy'))} (chance)"
    return None


def _legend_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What the table's figures measure, and the trials that learnt nothing."""
    lines = [
        "val_accuracy: validation accuracy, the objective (test accuracy: test_accuracy in --json)",
        "kgco2e, energy_kwh: producing the model (proxy training, fine-tune, quantization, "
        "validation), not the trial's whole search cost (search_energy_kwh in --json)",
    ]
    how = sorted(
        {
            (
                r.get("inference_batch_size"),
                r.get("inference_runtime"),
                r.get("inference_device"),
                r.get("inference_threads"),
            )
            for r in rows
            if r.get("latency_ms") is not None
        },
        key=str,
    )
    for batch, runtime, device, threads in how:
        on = f"{device or '?'}" + (f", {plural(threads, 'thread')}" if threads else "")
        lines.append(
            f"latency_ms: median time per batch of {batch if batch is not None else '?'} "
            f"({runtime or '?'} on {on}, this machine, after warm-up)"
        )
    for r in rows:
        if r.get("at_or_below_chance"):
            chance = r.get("chance_accuracy") or 0.0
            lines.append(
                f"trial {r['trial']}: validation accuracy {_fmt(r.get('accuracy'))} is at or "
                f"below chance (1/{round(1 / chance)} = {chance:.3g}): cheap because it learnt "
                "nothing; not a model to pick"
            )
    return lines


def pareto_table(study: optuna.Study) -> str:
    rows = pareto_rows(study)
    foot = _study_stop_lines(study)
    if not rows:
        return for_terminal("\n".join(["no completed trials yet", *foot]))
    provenance = {(r["energy_source"], r["energy_kind"], r["hardware"]) for r in rows}
    lines = _legend_lines(rows)
    lines += [f"energy: {src} ({kind}) on {hw}" for src, kind, hw in sorted(provenance, key=str)]
    by_source: dict[str, list[float]] = {}
    for r in rows:
        values = by_source.setdefault(str(r["intensity_source"]), [])
        if r["intensity_g_per_kwh"] is not None:
            values.append(r["intensity_g_per_kwh"])
    for source, values in sorted(by_source.items()):
        lo, hi = (min(values), max(values)) if values else (None, None)
        span = _fmt(lo) if lo == hi else f"{_fmt(lo)}-{_fmt(hi)}"  # time-varying (trace) sources
        lines.append(f"carbon intensity: {span} gCO2e/kWh from {source}")
    lines += _reuse_lines(rows) + _metered_lines(study) + baseline_lines(study)
    found, _ = findings(study)
    head = (
        f"Pareto front of study '{study.study_name}' ({len(rows)} of {len(found)} completed trials)"
    )
    table = format_table(rows, TABLE_COLUMNS, TABLE_HEADERS, _cell)
    text = "\n".join([clip(head, MAX_LINE), table, *(clip(x, MAX_LINE) for x in lines + foot)])
    return for_terminal(text)  # attr values from a shared study may hold escape sequences


# -- baselines against the front ------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """Whether the study's front dominates a trained baseline."""

    name: str
    trial: int
    accuracy: float
    kgco2e: float
    params: int | None
    dominated_by: tuple[int, ...]  # front trials that dominate it, cheapest first
    on_front: bool

    @property
    def dominated(self) -> bool:
        return bool(self.dominated_by)

    def line(self) -> str:
        head = (
            f"baseline {self.name} (trial {self.trial}): val acc {self.accuracy:.4f}, "
            f"{self.kgco2e:.3e} kgCO2e"
        )
        if self.params is not None:
            head += f", {self.params:,} params"
        if self.dominated:
            who = ", ".join(map(str, self.dominated_by))
            return f"{head}: dominated by the front (trial {who}: accuracy >=, kgCO2e <=)"
        where = "on the front" if self.on_front else "no front trial is as accurate at its cost"
        return f"{head}: NOT dominated ({where})"


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """``a`` (accuracy, kgCO2e) is at least as accurate at no more kgCO2e, better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def baseline_verdicts(study: optuna.Study) -> list[Verdict]:
    """For each completed baseline trial of ``study`` (in trial order), which trials of the
    front dominate it on accuracy and kgCO2e."""
    front = [r for r in pareto_trials(study) if _finite(r.accuracy) and _finite(r.kgco2e)]
    out = []
    states = (optuna.trial.TrialState.COMPLETE,)
    for rec in records(study.get_trials(deepcopy=False, states=states)):
        name = rec.get(TrialAttrs.baseline)
        if not name or not (_finite(rec.accuracy) and _finite(rec.kgco2e)):
            continue
        point = (float(rec.accuracy), float(rec.kgco2e))  # type: ignore[arg-type]
        by = tuple(
            f.number
            for f in front
            if f.number != rec.number and _dominates((f.accuracy, f.kgco2e), point)  # type: ignore[arg-type]
        )
        params = rec.num(TrialAttrs.params)
        out.append(
            Verdict(
                name=str(name),
                trial=rec.number,
                accuracy=point[0],
                kgco2e=point[1],
                params=None if params is None else int(params),
                dominated_by=by,
                on_front=any(f.number == rec.number for f in front),
            )
        )
    return sorted(out, key=lambda v: v.trial)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def baseline_lines(study: optuna.Study) -> list[str]:
    """Whether the front dominates each trained baseline; how well training energy was
    predicted before training."""
    from nas.prediction import prediction_lines

    lines = [v.line() for v in baseline_verdicts(study)]
    return lines + prediction_lines(study.get_trials(deepcopy=False))


def _reuse_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [
        f"trial {r['trial']}: its result was reused by trial(s) "
        f"{', '.join(map(str, r['reused_by']))} (same configuration, not trained again)"
        for r in rows
        if r.get("reused_by")
    ]


def _metered_lines(study: optuna.Study) -> list[str]:
    """The spread of metered fractions, and the trials whose phases cover too little time."""
    recs = [r for r in records(study.get_trials(deepcopy=False)) if r.metered_fraction is not None]
    if not recs:
        return []
    fractions = [r.metered_fraction for r in recs]
    line = (
        f"metered: {min(fractions):.1%}-{max(fractions):.1%} of each trial's time ran inside "
        "its phase windows"
    )
    low = [r.number for r in recs if r.under_metered]
    if low:
        line += (
            f"; below {METERED_FRACTION_FLAG:.0%} (search energy understated): trials "
            f"{', '.join(map(str, low))}"
        )
    return [line]


def _study_stop_lines(study: optuna.Study) -> list[str]:
    """The carbon budget (nas.scheduling) and why the study stopped, when recorded."""
    a = study.user_attrs
    out = []
    if a.get(StudyAttrs.budget_kgco2e) is not None:
        used, cap = a.get(StudyAttrs.budget_used_kgco2e, 0.0), a[StudyAttrs.budget_kgco2e]
        out.append(f"carbon budget: {_fmt(used)} of {_fmt(cap)} kgCO2e used by the search")
    out += [
        f"study stopped: {a[k]}"
        for k in (StudyAttrs.budget_stop_reason, StudyAttrs.stop_reason)
        if a.get(k)
    ]
    return out


__all__ = [
    "ROW_KEYS",
    "Verdict",
    "baseline_lines",
    "baseline_verdicts",
    "TABLE_COLUMNS",
    "TABLE_HEADERS",
    "completed_trials",
    "dominates",
    "findings",
    "format_table",
    "front_indices",
    "nondominated_ranks",
    "pareto_rows",
    "pareto_table",
    "pareto_trials",
    "trial_row",
]
