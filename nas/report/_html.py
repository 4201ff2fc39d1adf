"""One self-contained HTML page (plotly.js embedded, works offline) describing a study."""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna

from nas.errors import BadInputError
from nas.record import METERED_FRACTION_FLAG, TrialAttrs
from nas.report._analysis import best_under_cap, hypervolume_history, knee_point
from nas.report._data import Point, carbon_budget, check_cap, pareto_front, points, search_cost
from nas.report._feedback import feedback_lines
from nas.report._fidelity import Fidelity, fidelity
from nas.report._figures import eco_curve, hypervolume_figure, phase_energy_figure, phase_order
from nas.text import for_terminal, plural


@dataclass(frozen=True)
class Report:
    """What ``econas report`` computed; ``html`` is the page."""

    html: str
    figures: dict[str, Any]  # name -> plotly Figure
    front: list[Point]
    knee: Point | None
    capped: Point | None
    search_kgco2e: float
    feedback: list[str]
    fidelity: Fidelity | None = None
    search_kinds: frozenset[str] = frozenset()  # measured / estimated, over every trial


def _e(value: Any) -> str:
    return html.escape(for_terminal(value))  # control characters dropped, markup escaped


def _num(value: Any, spec: str) -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return "-"


def _kg(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3e} kgCO2e"


def _baseline_mark(p: Point) -> str:
    name = p.attrs.get(TrialAttrs.baseline)
    return f" (baseline {_e(name)})" if name else ""


def _point_line(title: str, p: Point | None, missing: str) -> str:
    if p is None:
        return f"<li><b>{_e(title)}</b>: {_e(missing)}</li>"
    chance = " (at or below chance)" if p.at_or_below_chance else ""
    return (
        f"<li><b>{_e(title)}</b>: trial {p.trial} — validation accuracy {p.accuracy:.4f}"
        f"{chance}, {_kg(p.kgco2e)} — <code>{_e(p.label)}</code></li>"
    )


def _table(d: dict[str, float], order: list[str] | None = None) -> str:
    keys = order if order is not None else sorted(d)
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_kg(d[k])}</td></tr>" for k in keys)
    return f"<table>{rows}</table>" if rows else "<p>-</p>"


def states_text(by_state: dict[str, int]) -> str:
    """``complete 4, failed 1``: trial counts by state, most first."""
    items = sorted(by_state.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{state} {n}" for state, n in items) or "none"


def _chance_warning(points: list[Point]) -> str:
    if not points:
        return ""
    listed = ", ".join(f"{p.trial} ({p.accuracy:.4f})" for p in points)
    chance = points[0].chance_accuracy or 0.0
    return (
        f"<p class=warn>At or below chance (1/{round(1 / chance) if chance else '?'} = "
        f"{chance:.3g}) on the front: trial(s) {_e(listed)}. They are cheap because they "
        "learnt nothing; don't pick them.</p>"
    )


def _baselines_section(study: optuna.Study, trials: list[optuna.trial.FrozenTrial]) -> str:
    """Whether the front dominates each hand design; how well training energy was predicted."""
    from nas.pareto import baseline_verdicts
    from nas.prediction import prediction_errors, prediction_lines

    verdicts = baseline_verdicts(study)
    errors = prediction_errors(trials)
    items = "".join(
        f"<li{'' if v.dominated else ' class=warn'}>{_e(v.line())}</li>" for v in verdicts
    )
    body = (
        f"<ul>{items}</ul>"
        if verdicts
        else "<p>no baseline trained in this study ([search] baselines)</p>"
    )
    worst = sorted(errors.errors, key=lambda e: -abs(e[1]))[:3]
    detail = (
        " (largest: " + ", ".join(f"trial {n} {e:+.0%}" for n, e in worst) + ")" if worst else ""
    )
    return (
        "<h3>Against hand design</h3>"
        "<p>Baselines are reference designs enqueued as the study's first trials, trained and "
        "metered like any trial; the front dominates one when a front trial is at least as "
        "accurate at no more kgCO2e, better in one.</p>"
        f"{body}<p>{_e(errors.line() + detail)}</p>"
        + "".join(f"<p>{_e(line)}</p>" for line in prediction_lines(trials)[1:])
    )


def build_report(study: optuna.Study, *, cap_kgco2e: float | None = None) -> Report:
    """Compute every figure and number of the report from the study's storage."""
    check_cap(cap_kgco2e)
    trials = study.get_trials(deepcopy=False)
    pts = points(trials)
    front = pareto_front(pts)
    knee = knee_point(front)
    capped = best_under_cap(pts, cap_kgco2e) if cap_kgco2e is not None else None
    cost = search_cost(trials, study_attrs=study.user_attrs)
    figs: dict[str, Any] = {
        "eco_curve": eco_curve(pts, front, knee=knee, capped=capped, cap_kgco2e=cap_kgco2e),
        "hypervolume": hypervolume_figure(
            hypervolume_history(trials), kinds=(p.attrs.get(TrialAttrs.energy_kind) for p in pts)
        ),
        "energy_by_phase": phase_energy_figure(trials),
    }
    lines = feedback_lines(study)
    budget = carbon_budget(study)
    fid = fidelity(study, cost.kgco2e)
    bd = cost.breakdown
    by_phase = bd.get("by_phase", {})
    chance = [p for p in front if p.at_or_below_chance]
    parts = [
        f"<h1>econas report: study <code>{_e(study.study_name)}</code></h1>",
        f"<p class=meta>generated {datetime.now(UTC).isoformat(timespec='seconds')} from the "
        f"study's storage; {plural(len(pts), 'completed trial')}, {len(front)} on the front; "
        f"trials by state: {_e(states_text(cost.trials_by_state))}</p>",
        "<h2>Search cost (the whole study)</h2>",
        f"<p class=total>The search emitted <b>{_kg(cost.kgco2e)}</b> "
        f"({cost.energy_kwh:.3e} kWh) over all {plural(sum(cost.trials_by_state.values()), 'trial')}, "
        "failed and pruned ones included.</p>",
        "<ul>"
        + "".join(f"<li>energy meter: {_e(m)}</li>" for m in cost.meters)
        + "".join(f"<li>carbon intensity: {_e(i)}</li>" for i in cost.intensities)
        + "".join(f"<li>CPU instruction sets: {_e(i)}</li>" for i in cost.cpu_isa)
        + "</ul>",
    ]
    if cost.metered_fraction is not None:
        lo, hi = cost.metered_fraction
        parts.append(
            f"<p>Metered: {lo:.1%} to {hi:.1%} of each trial's time ran inside its phase "
            "windows.</p>"
        )
    if cost.under_metered:
        parts.append(
            f"<p class=warn>Trials {_e(', '.join(map(str, cost.under_metered)))} ran less than "
            f"{METERED_FRACTION_FLAG:.0%} of their time inside phase windows: their search "
            "energy is understated.</p>"
        )
    if "estimated" in cost.kinds:
        parts.append(
            "<p class=warn>Some or all energy figures are <b>estimated</b> (no readable energy "
            "counter), not measured.</p>"
        )
    parts += [
        "<h3>Where it went</h3><div class=cols>",
        f"<div><h4>by trial state</h4>{_table(bd.get('by_state', {}))}</div>",
        f"<div><h4>by family</h4>{_table(bd.get('by_family', {}))}</div>",
        f"<div><h4>by phase</h4>{_table(by_phase, phase_order(by_phase))}</div></div>",
    ]
    if budget is not None:
        parts.append(
            f"<h3>Carbon budget</h3><p>{_kg(budget.used_kgco2e)} of {_kg(budget.limit_kgco2e)} "
            f"used; {'stopped: ' + _e(budget.stop_reason) if budget.stop_reason else 'not stopped'}"
            "</p>"
        )
    parts += [
        "<h2>Eco-performance curve</h2>",
        "<ul>",
        _point_line("knee point", knee, "no completed trial"),
        _point_line(
            f"most accurate under the cap of {_kg(cap_kgco2e)}" if cap_kgco2e else "carbon cap",
            capped,
            "no trial under the cap" if cap_kgco2e else "none given (--carbon-cap KGCO2E)",
        ),
        "</ul>",
        _chance_warning(chance),
        figs["eco_curve"].to_html(full_html=False, include_plotlyjs=True, div_id="eco-curve"),
        _baselines_section(study, trials),
        "<h2>What would cut the most carbon next</h2>",
        "<ul>" + "".join(f"<li>{_e(x.removeprefix('- '))}</li>" for x in lines[1:]) + "</ul>"
        if lines
        else "<p>no suggestion: the study has no completed trial yet</p>",
        "<h2>Proxy fidelity and carbon payback</h2>",
        "<ul>" + "".join(f"<li>{_e(x)}</li>" for x in fid.lines()) + "</ul>",
        f"<p>{_e(fid.payback_note)}</p>" if fid.payback_note else "",
        "<h2>Hypervolume</h2>",
        figs["hypervolume"].to_html(full_html=False, include_plotlyjs=False, div_id="hypervolume"),
        "<h2>Energy by phase</h2>",
        figs["energy_by_phase"].to_html(full_html=False, include_plotlyjs=False, div_id="phases"),
        "<h2>Front</h2>",
        "<table><tr><th>trial</th><th>arch / compression</th><th>validation accuracy</th>"
        "<th>test accuracy</th><th>kgCO2e</th><th>energy (kWh)</th><th>kind</th></tr>"
        + "".join(
            f"<tr><td>{p.trial}{_baseline_mark(p)}</td><td><code>{_e(p.label.split(' | ', 1)[-1])}</code></td>"
            f"<td>{p.accuracy:.4f}{' (at or below chance)' if p.at_or_below_chance else ''}</td>"
            f"<td>{_num(p.attrs.get(TrialAttrs.test_accuracy), '.4f')}</td>"
            f"<td>{p.kgco2e:.3e}</td><td>{_num(p.attrs.get(TrialAttrs.energy_kwh), '.3e')}</td>"
            f"<td>{_e(p.attrs.get(TrialAttrs.energy_kind, '?'))}</td></tr>"
            for p in front
        )
        + "</table>",
    ]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>{GENERATOR}"
        f"<title>econas report: {_e(study.study_name)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )
    return Report(
        html=page,
        figures=figs,
        front=front,
        knee=knee,
        capped=capped,
        search_kgco2e=cost.kgco2e,
        feedback=lines,
        fidelity=fid,
        search_kinds=frozenset(cost.kinds),
    )


GENERATOR = "<meta name='generator' content='econas report'>"


def _is_own_report(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return GENERATOR.encode() in fh.read(4096)
    except OSError:
        return False


def check_report_path(path: str | Path, *, force: bool = False) -> Path:
    """``path`` must name a file to write (checked before any work): not a directory, not a
    dangling or other symlink, not a device; an existing file is replaced only when it is an
    earlier econas report, or with ``force``."""
    out = Path(path)
    shown = str(path)[:120]
    try:
        is_dir, is_link, exists = out.is_dir(), out.is_symlink(), out.exists()
    except OSError as exc:  # a name too long
        raise BadInputError(f"--out {shown!r} is not a usable path ({exc.strerror})") from None
    if is_dir or str(path).endswith(("/", "\\")):
        raise BadInputError(f"--out {shown!r} is a directory; name the HTML file to write")
    if is_link:
        raise BadInputError(f"--out {shown!r} is a symbolic link; name a plain file to write")
    if exists and not out.is_file():
        raise BadInputError(f"--out {shown!r} is not a regular file")
    if exists and not force and not _is_own_report(out):
        raise BadInputError(
            f"--out {shown!r} exists and is not an econas report; not overwritten "
            "(choose another path, or --force)"
        )
    return out


def write_report(report: Report, path: str | Path, *, force: bool = False) -> Path:
    """Write the page atomically: a failed write never leaves half a report."""
    out = check_report_path(path, force=force)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(report.html, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:  # /proc, a read-only folder, a full disk
        raise BadInputError(f"cannot write --out {str(out)[:120]!r}: {exc.strerror}") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return out


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
    "font-size:13px}.cols{display:flex;gap:2em}.warn{color:#a40}.meta{color:#666}"
)
