"""Plotly figures of a study: the eco-performance curve, hypervolume, energy by phase.

Axes are in units whose numbers read plainly (mgCO2e, Wh: :mod:`nas.report._units`), named
in the axis title; a title says "estimated" when the energy behind it is."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from nas.record import PHASE_NAMES, Compression, TrialAttrs, finite, records
from nas.report._analysis import HypervolumeHistory
from nas.report._data import Point
from nas.report._units import Unit, carbon_unit, energy_unit, kind_note
from nas.text import one_line

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

# The teacher's forward passes run inside the train phase: shown apart, taken out of "train".
TEACHER = "distillation teacher (within training)"


def _text(value: object) -> str:
    """A value from storage as plotly text: plotly renders tags such as ``<a href>`` in trace
    names and hover text, and shows entities literally, so escape."""
    return html.escape(one_line(value))


def _hover(p: Point, unit: Unit) -> str:
    a = p.attrs
    chance = " (at or below chance)" if p.at_or_below_chance else ""
    return (
        f"{_text(p.label)}<br>validation accuracy {p.accuracy:.4f}{chance}"
        f"<br>{unit(p.kgco2e):.3g} {unit.name} ({p.kgco2e:.3e} kgCO2e)"
        f"<br>{finite(a.get(TrialAttrs.energy_kwh)) or 0:.3e} kWh ({_text(a.get(TrialAttrs.energy_kind, '?'))})"
        f"<br>params {_text(a.get(TrialAttrs.params, '?'))}, flops {_text(a.get(TrialAttrs.flops, '?'))}"
    )


def eco_curve(
    pts: Sequence[Point],
    front: Sequence[Point],
    *,
    knee: Point | None = None,
    capped: Point | None = None,
    cap_kgco2e: float | None = None,
    cost_label: str = "model's CO2e: proxy training + validation",
) -> go.Figure:
    """Validation accuracy versus CO2e (log x, in the unit that makes its numbers >= 1, named
    in the axis title): the front highlighted, dominated trials faded, the baselines (hand
    designs) marked and named, chance marked. The
    title says "estimated" when the energy behind the points is."""
    import plotly.graph_objects as go

    unit = carbon_unit([p.kgco2e for p in pts] + ([cap_kgco2e] if cap_kgco2e else []))
    on_front = {p.trial for p in front}
    dominated = [p for p in pts if p.trial not in on_front]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=unit.scale(p.kgco2e for p in dominated),
            y=[p.accuracy for p in dominated],
            mode="markers",
            name="dominated trials",
            marker=dict(color="grey", size=8),
            opacity=0.35,
            hovertext=[_hover(p, unit) for p in dominated],
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=unit.scale(p.kgco2e for p in front),
            y=[p.accuracy for p in front],
            mode="lines+markers",
            name="Pareto front",
            line=dict(color="seagreen", shape="hv"),
            marker=dict(color="seagreen", size=11),
            hovertext=[_hover(p, unit) for p in front],
            hoverinfo="text",
        )
    )
    baselines = [p for p in pts if p.attrs.get(TrialAttrs.baseline)]
    if baselines:  # the reference designs (search.baselines), named beside their marker
        fig.add_trace(
            go.Scatter(
                x=unit.scale(p.kgco2e for p in baselines),
                y=[p.accuracy for p in baselines],
                mode="markers+text",
                name="baselines (hand designs)",
                text=[_text(p.attrs[TrialAttrs.baseline]) for p in baselines],
                textposition="top center",
                marker=dict(
                    symbol="square-open", size=15, color="black", line=dict(width=2, color="black")
                ),
                hovertext=[
                    f"baseline {_text(p.attrs[TrialAttrs.baseline])}<br>{_hover(p, unit)}"
                    for p in baselines
                ],
                hoverinfo="text",
            )
        )
    for p, name, symbol, color in (
        (knee, "knee", "star", "darkorange"),
        (capped, "best under cap", "diamond", "royalblue"),
    ):
        if p is not None:
            fig.add_trace(
                go.Scatter(
                    x=[unit(p.kgco2e)],
                    y=[p.accuracy],
                    mode="markers",
                    name=f"{name} (trial {p.trial})",
                    marker=dict(
                        symbol=symbol, size=18, color=color, line=dict(width=1, color="black")
                    ),
                    hovertext=[_hover(p, unit)],
                    hoverinfo="text",
                )
            )
    xs = unit.scale(p.kgco2e for p in pts)
    if cap_kgco2e is not None and pts:  # a trace, not add_vline: its label misplaces on log axes
        accs = [p.accuracy for p in pts]
        fig.add_trace(
            go.Scatter(
                x=[unit(cap_kgco2e)] * 2,
                y=[min(accs), max(accs)],
                mode="lines",
                name=f"carbon cap ({unit(cap_kgco2e):.3g} {unit.name})",
                line=dict(color="royalblue", dash="dash"),
                hoverinfo="name",
            )
        )
    chances = {p.chance_accuracy for p in pts if p.chance_accuracy is not None}
    if len(chances) == 1 and xs:  # one data set: guessing's accuracy as a floor line
        (chance,) = chances
        fig.add_trace(
            go.Scatter(
                x=[min(xs), max(xs)],
                y=[chance, chance],
                mode="lines",
                name=f"chance (1/{round(1 / chance)} = {chance:.3g})",
                line=dict(color="firebrick", dash="dot"),
                hoverinfo="name",
            )
        )
    note = kind_note(p.attrs.get(TrialAttrs.energy_kind) for p in pts)
    fig.update_layout(
        title=f"Eco-performance curve{note}",
        xaxis=dict(title=f"{cost_label} ({unit.name})", type="log", exponentformat="none"),
        yaxis=dict(title="validation accuracy (fraction)"),
        template="plotly_white",
        height=480,
    )
    return fig


def hypervolume_figure(h: HypervolumeHistory, *, kinds: Iterable[object] = ()) -> go.Figure:
    """Hypervolume after each trial, by trial number and by cumulative search CO2e (in the
    unit of :func:`carbon_unit`, also used for the hypervolume itself)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    unit = carbon_unit([*h.cumulative_search_kgco2e, h.ref_kgco2e])
    cumulative = f"cumulative search {unit.name} (all trials)"
    hv = unit.scale(h.hypervolume)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("by trial", f"by {cumulative}"))
    fig.add_trace(go.Scatter(x=h.trial, y=hv, mode="lines+markers", name="by trial"), row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=unit.scale(h.cumulative_search_kgco2e),
            y=hv,
            mode="lines+markers",
            name=f"by search {unit.name}",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="trial number", row=1, col=1)
    fig.update_xaxes(title_text=cumulative, exponentformat="none", row=1, col=2)
    fig.update_yaxes(title_text=f"hypervolume (accuracy x {unit.name})", exponentformat="none")
    fig.update_layout(
        title=(
            f"Hypervolume{kind_note(kinds)} (reference point: accuracy {h.ref_accuracy:g}, "
            f"{unit(h.ref_kgco2e):.3g} {unit.name})"
        ),
        showlegend=False,
        template="plotly_white",
        height=400,
    )
    return fig


def phase_order(names: Iterable[str]) -> list[str]:
    """Phase names in the order a trial runs them (:data:`nas.record.PHASE_NAMES`); names
    econas does not know keep their order, after the known ones."""
    seen = list(dict.fromkeys(names))
    rank = {name: i for i, name in enumerate(PHASE_NAMES)}
    return sorted(seen, key=lambda n: (rank.get(n, len(rank)), seen.index(n)))


def phase_energy_figure(trials: Sequence[optuna.trial.FrozenTrial]) -> go.Figure:
    """Stacked energy per phase of every trial that measured some, failed ones too, in
    pipeline order from the bottom up (in the unit of :func:`energy_unit`)."""
    import plotly.graph_objects as go

    rows = records(trials)
    phases = phase_order(p.name for rec in rows for p in rec.phases)
    x = [f"{r.number} ({r.state.name.lower()})" for r in rows]
    teacher = [r.num(Compression.teacher_energy_kwh) or 0.0 for r in rows]
    unit = energy_unit(sum(p.energy_kwh for p in r.phases) for r in rows)
    bars: list[tuple[str, list[float]]] = []
    for name in phases:
        y = [next((p.energy_kwh for p in r.phases if p.name == name), 0.0) for r in rows]
        if name == "train":  # the teacher's passes are shown apart, just above training
            bars.append((name, [v - k for v, k in zip(y, teacher, strict=True)]))
            bars.append((TEACHER, teacher))
        else:
            bars.append((name, y))
    fig = go.Figure()
    for name, y in bars:
        if any(y):
            fig.add_trace(go.Bar(x=x, y=unit.scale(y), name=_text(name)))
    note = kind_note(p.kind for r in rows for p in r.phases)
    fig.update_layout(
        barmode="stack",
        title=f"Energy by phase{note}",
        xaxis=dict(title="trial (state)", type="category"),
        yaxis=dict(title=f"energy ({unit.name})", exponentformat="none"),
        legend=dict(traceorder="normal", title="phase (pipeline order)"),
        template="plotly_white",
        height=420,
    )
    return fig
