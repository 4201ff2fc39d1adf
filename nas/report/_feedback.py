"""What would cut the most carbon next, for a chosen point, from the study's own data.

Each suggestion carries the kgCO2e it would save on the chosen trial's training (or the
search) where the study's data allow an estimate, and says what the estimate rests on.
Suggestions are ordered by that saving, largest first; those without one come last.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from nas.record import (
    Compression,
    Inference,
    Schedule,
    StudyAttrs,
    TrialAttrs,
    finite,
    is_proxy_key,
    records,
)
from nas.report._analysis import choose_point
from nas.report._data import Point, points
from nas.stats import spearman

log = logging.getLogger(__name__)

GREEN_QUANTILE = 0.25  # the greenest quarter of the hours of a trace
MIN_REGION_G_PER_KWH = 1.0  # below this codecarbon's table has no fossil data, not a clean grid
_SHIPPED_TRACE_FOR_REGION = {"FRA": "fr_2020", "GBR": "gb_2020"}


@dataclass(frozen=True)
class Suggestion:
    kind: str  # quantization | region | window | proxy
    text: str
    saving_kgco2e: float | None = None  # on the chosen trial, or the search (see text)

    def line(self) -> str:
        return f"- {self.text}"


def _quantized(p: Point) -> bool:
    return str(p.attrs.get(Compression.quantization, "fp32")) not in ("fp32", "", "none")


def _family(p: Point) -> Any:
    return p.attrs.get(TrialAttrs.family)


def _quantization(point: Point, pts: Sequence[Point]) -> Suggestion | None:
    if _quantized(point):
        return None
    tried = [p for p in pts if _quantized(p)]
    if not tried:
        return Suggestion(
            "quantization",
            "quantization not tried: no trial of this study has a quantization other than "
            "fp32; enable [compression] with quantization choices (int8_dynamic, int8_static) "
            "to measure what it saves",
        )
    same = [p for p in tried if _family(p) == _family(point)] or tried
    base = [p for p in pts if not _quantized(p) and _family(p) == _family(point)]
    key = Inference.energy_kwh_per_1k
    q_inf = [v for p in same if (v := finite(p.attrs.get(key))) is not None]
    b_inf = [v for p in base if (v := finite(p.attrs.get(key))) is not None]
    q_kg = statistics.median(p.kgco2e for p in same)
    b_kg = statistics.median(p.kgco2e for p in base) if base else point.kgco2e
    ratio_kg = q_kg / b_kg if b_kg > 0 else 1.0
    saving = max(0.0, point.kgco2e * (1.0 - ratio_kg))
    text = (
        f"quantize trial {point.trial}: {len(same)} quantized trial(s) of the study "
        f"({_family(point) or '?'}) cost {ratio_kg:.0%} of the fp32 trials' median kgCO2e"
    )
    if q_inf and b_inf and statistics.median(b_inf) > 0:
        ratio_inf = statistics.median(q_inf) / statistics.median(b_inf)
        text += f" and used {ratio_inf:.0%} of their inference energy per 1k predictions"
    return Suggestion("quantization", text + f" (saving ~{saving:.2e} kgCO2e)", saving)


def _region(point: Point) -> Suggestion | None:
    from nas.carbon import RegionIntensity, list_regions

    g = finite(point.attrs.get(TrialAttrs.intensity_g_per_kwh))
    if g is None or g <= 0:
        return None
    best: tuple[float, str] | None = None
    for code in list_regions():
        try:
            v = RegionIntensity(region=code).intensity_g_per_kwh
        except Exception:  # noqa: BLE001 - one unreadable row must not stop the feedback
            continue
        if v >= MIN_REGION_G_PER_KWH and (best is None or v < best[0]):
            best = (v, code)
    if best is None or best[0] >= g:
        return None
    saving = point.kgco2e * (1.0 - best[0] / g)
    here = point.attrs.get(TrialAttrs.intensity_source) or point.attrs.get(TrialAttrs.carbon_region)
    return Suggestion(
        "region",
        f"run in a greener region: {best[1]} averages {best[0]:.1f} gCO2e/kWh; trial "
        f"{point.trial} was charged {g:.1f} from {here} and "
        f"would emit {1 - best[0] / g:.0%} less there (saving ~{saving:.2e} kgCO2e; "
        "codecarbon's yearly averages)",
        saving,
    )


def _trace_name(study: optuna.Study, point: Point) -> str | None:
    raw = study.user_attrs.get(StudyAttrs.config)
    try:
        trace = (json.loads(raw) if raw else {}).get("schedule", {}).get("trace")
    except (TypeError, ValueError, AttributeError):
        trace = None
    return trace or _SHIPPED_TRACE_FOR_REGION.get(
        str(point.attrs.get(TrialAttrs.carbon_region, ""))
    )


def _window(study: optuna.Study, point: Point) -> Suggestion | None:
    if point.attrs.get(Schedule.slot_start):
        return None  # already run in a green window
    name = _trace_name(study, point)
    if name is None:
        return None
    try:
        from nas.scheduling import load_trace

        values = load_trace(name).values_g_per_kwh
    except Exception:  # noqa: BLE001 - a missing trace only drops this suggestion
        log.debug("trace %s unreadable for feedback", name, exc_info=True)
        return None
    mean = float(values.mean())
    green = float(values[values <= np.quantile(values, GREEN_QUANTILE)].mean())
    if not mean > green:
        return None
    saving = point.kgco2e * (1.0 - green / mean)
    g = finite(point.attrs.get(TrialAttrs.intensity_g_per_kwh))
    charged = (
        f"trial {point.trial} was charged {g:.1f} from {point.attrs.get(TrialAttrs.intensity_source)}; "
        if g is not None
        else ""
    )
    return Suggestion(
        "window",
        f"run in green windows: on the {name} trace (hourly) the greenest {GREEN_QUANTILE:.0%} "
        f"of hours average {green:.1f} gCO2e/kWh, {1 - green / mean:.0%} less than the "
        f"trace's mean of {mean:.1f} ({charged}"
        f'saving ~{saving:.2e} kgCO2e on trial {point.trial}; [schedule] trace = "{name}")',
        saving,
    )


def _proxy(trials: Sequence[optuna.trial.FrozenTrial], pts: Sequence[Point]) -> Suggestion | None:
    if len(pts) < 5:
        return None
    names = {TrialAttrs.params, TrialAttrs.flops} | {
        k for p in pts for k in p.attrs if is_proxy_key(k)
    }
    best: tuple[float, str] | None = None
    for name in sorted(names):
        vals = [finite(p.attrs.get(name)) for p in pts]
        if any(v is None for v in vals):
            continue
        rho = spearman(vals, [p.accuracy for p in pts])  # type: ignore[arg-type]
        if not math.isfinite(rho):  # constant, or fewer than three trials
            continue
        if best is None or abs(rho) > abs(best[0]):
            best = (rho, name)
    if best is None or abs(best[0]) < 0.7:
        return None
    train_kg = 0.0
    for rec in records(trials):
        kwh = next((p.energy_kwh for p in rec.phases if p.name == "train"), None)
        skwh, skg = rec.search_energy_kwh, rec.search_kgco2e
        if kwh and skwh and skg:
            train_kg += skg * kwh / skwh
    saving = train_kg / 2
    return Suggestion(
        "proxy",
        f"screen with a cheaper proxy: {best[1]} ranks the {len(pts)} completed trials like "
        f"accuracy (Spearman {best[0]:+.2f}); skipping training for the half it ranks worst "
        f"would save ~{saving:.2e} kgCO2e of the search's training (estimate)",
        saving,
    )


def feedback(study: optuna.Study, trial_number: int | None = None) -> list[Suggestion]:
    """Suggestions for ``trial_number`` (default: the knee of the front), largest saving first."""
    trials = study.get_trials(deepcopy=False)
    point = choose_point(trials, trial_number)
    if point is None:
        return []
    pts = points(trials)
    looked_up = _family(point) == "table"  # a tabular benchmark: no model to quantize, screen
    found = [
        None if looked_up else _quantization(point, pts),
        _region(point),
        _window(study, point),
        None if looked_up else _proxy(trials, pts),
    ]
    out = [s for s in found if s is not None]
    return sorted(out, key=lambda s: -(s.saving_kgco2e if s.saving_kgco2e is not None else -1.0))


def feedback_lines(study: optuna.Study, trial_number: int | None = None) -> list[str]:
    """Text lines for ``econas pareto``/``report``; empty when the study has no front yet."""
    suggestions = feedback(study, trial_number)
    if not suggestions:
        return []
    point = choose_point(study.get_trials(deepcopy=False), trial_number)
    which = "the knee" if trial_number is None else "trial"
    head = (
        f"what would cut the most carbon next, for {which} (trial {point.trial if point else '?'}):"
    )
    return [head, *(s.line() for s in suggestions)]
