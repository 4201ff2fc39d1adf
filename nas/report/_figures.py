"""Plotly figures of a study: the eco-performance curve, hypervolume, energy by phase."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nas.record import Compression, Trial, finite, records
from nas.report._analysis import HypervolumeHistory
from nas.report._data import Point
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


def _hover(p: Point) -> str:
    a = p.attrs
    return (
        f"{_text(p.label)}<br>accuracy {p.accuracy:.4f}<br>{p.kgco2e:.3e} kgCO2e"
        f"<br>{finite(a.get(Trial.energy_kwh)) or 0:.3e} kWh ({_text(a.get(Trial.energy_kind, '?'))})"
        f"<br>params {_text(a.get(Trial.params, '?'))}, flops {_text(a.get(Trial.flops, '?'))}"
    )


def eco_curve(
    pts: Sequence[Point],
    front: Sequence[Point],
    *,
    knee: Point | None = None,
    capped: Point | None = None,
    cap_kgco2e: float | None = None,
    cost_label: str = "kgCO2e (training + evaluation of the proxy)",
) -> go.Figure:
    """Accuracy versus kgCO2e (log x): the front highlighted, dominated trials faded."""
    import plotly.graph_objects as go

    on_front = {p.trial for p in front}
    dominated = [p for p in pts if p.trial not in on_front]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[p.kgco2e for p in dominated],
            y=[p.accuracy for p in dominated],
            mode="markers",
            name="dominated trials",
            marker=dict(color="grey", size=8),
            opacity=0.35,
            hovertext=[_hover(p) for p in dominated],
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[p.kgco2e for p in front],
            y=[p.accuracy for p in front],
            mode="lines+markers",
            name="Pareto front",
            line=dict(color="seagreen", shape="hv"),
            marker=dict(color="seagreen", size=11),
            hovertext=[_hover(p) for p in front],
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
                    x=[p.kgco2e],
                    y=[p.accuracy],
                    mode="markers",
                    name=f"{name} (trial {p.trial})",
                    marker=dict(
                        symbol=symbol, size=18, color=color, line=dict(width=1, color="black")
                    ),
                    hovertext=[_hover(p)],
                    hoverinfo="text",
                )
            )
    if cap_kgco2e is not None and pts:  # a trace, not add_vline: its label misplaces on log axes
        accs = [p.accuracy for p in pts]
        fig.add_trace(
            go.Scatter(
                x=[cap_kgco2e, cap_kgco2e],
                y=[min(accs), max(accs)],
                mode="lines",
                name=f"carbon cap ({cap_kgco2e:.2e} kgCO2e)",
                line=dict(color="royalblue", dash="dash"),
                hoverinfo="name",
            )
        )
    fig.update_layout(
        title="Eco-performance curve",
        xaxis=dict(title=cost_label, type="log"),
        yaxis=dict(title="validation accuracy"),
        template="plotly_white",
        height=480,
    )
    return fig


def hypervolume_figure(h: HypervolumeHistory) -> go.Figure:
    """Hypervolume after each trial, by trial number and by cumulative search kgCO2e."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("by trial", "by cumulative search kgCO2e"))
    fig.add_trace(
        go.Scatter(x=h.trial, y=h.hypervolume, mode="lines+markers", name="by trial"), row=1, col=1
    )
    fig.add_trace(
        go.Scatter(
            x=h.cumulative_search_kgco2e,
            y=h.hypervolume,
            mode="lines+markers",
            name="by search kgCO2e",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="trial number", row=1, col=1)
    fig.update_xaxes(title_text="cumulative search kgCO2e (all trials)", row=1, col=2)
    fig.update_yaxes(title_text="hypervolume (accuracy x kgCO2e)", row=1, col=1)
    fig.update_layout(
        title=(
            f"Hypervolume (reference point: accuracy {h.ref_accuracy:g}, {h.ref_kgco2e:.3e} kgCO2e)"
        ),
        showlegend=False,
        template="plotly_white",
        height=400,
    )
    return fig


def phase_energy_figure(trials: Sequence[optuna.trial.FrozenTrial]) -> go.Figure:
    """Stacked energy (kWh) per phase of every trial that measured some, failed ones too."""
    import plotly.graph_objects as go

    rows = records(trials)
    phases: list[str] = []
    for rec in rows:
        for p in rec.phases:
            if p.name not in phases:
                phases.append(p.name)
    fig = go.Figure()
    x = [f"{r.number} ({r.state.name.lower()})" for r in rows]
    teacher = [r.num(Compression.teacher_energy_kwh) or 0.0 for r in rows]
    for name in [*phases, TEACHER]:
        if name == TEACHER:
            y = teacher
        else:
            y = [next((p.energy_kwh for p in r.phases if p.name == name), 0.0) for r in rows]
            if name == "train":  # the teacher's passes are shown apart
                y = [v - k for v, k in zip(y, teacher, strict=True)]
        if any(y):
            fig.add_trace(go.Bar(x=x, y=y, name=_text(name)))
    fig.update_layout(
        barmode="stack",
        title="Energy by phase (kWh)",
        xaxis=dict(title="trial (state)", type="category"),
        yaxis=dict(title="energy_kwh"),
        template="plotly_white",
        height=420,
    )
    return fig
