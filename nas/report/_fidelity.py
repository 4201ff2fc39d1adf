"""Do proxy rankings hold at full budget, and when does a cheaper model pay its carbon back?

For the trials trained at full budget (``econas train``): proxy against final accuracy, the
Kendall tau between the proxy ranking (validation accuracy) and the final ranking (test
accuracy at full budget), and the carbon payback of each: (search + its final training
kgCO2e) / the kgCO2e per day its inference saves against the study's most accurate trial at
the ``[lifecycle]`` volume, in days. Each figure says why when it cannot be computed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import optuna

from nas.record import Final, Inference, Lifecycle, StudyAttrs, TrialAttrs, TrialRecord, records
from nas.stats import kendall_tau

_COMPLETE = (optuna.trial.TrialState.COMPLETE,)


@dataclass
class Fidelity:
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per trained trial
    projected: list[dict[str, Any]] = field(default_factory=list)  # projected, not trained
    kendall_tau: float | None = None
    tau_note: str = ""
    payback_note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "trained": self.rows,
            "projected": self.projected,
            "kendall_tau": self.kendall_tau,
            "tau_note": self.tau_note,
            "payback_note": self.payback_note,
        }

    def lines(self) -> list[str]:
        waiting = [
            f"trial {r['trial']}: not trained yet, projected {_projection(r)}"
            for r in self.projected
        ]
        if not self.rows:
            return [self.tau_note, *waiting]
        out = [
            f"trial {r['trial']}: proxy accuracy {r['proxy_accuracy']:.4f} (test "
            f"{_f(r['proxy_test_accuracy'])}) -> full budget test {_f(r['final_test_accuracy'])}, "
            f"{_e(r['final_kgco2e'])} kgCO2e ({r['final_energy_kind']}), projected "
            f"{_projection(r)}, error {_pct(r['projection_error_pct'])}; payback {r['payback']}"
            for r in self.rows
        ]
        out += waiting
        tau = "-" if self.kendall_tau is None else f"{self.kendall_tau:+.2f}"
        return [*out, f"Kendall tau, proxy vs full-budget ranking: {tau} ({self.tau_note})"]


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}"


def _e(v: Any) -> str:
    return "-" if v is None else f"{v:.3e}"


def _projection(r: dict[str, Any]) -> str:
    """``1.2e-05 kWh (likely 1.1e-05 to 1.4e-05 kWh, from N runs of ...)``."""
    lo, hi = r.get("projected_energy_kwh_low"), r.get("projected_energy_kwh_high")
    basis = r.get("projection_range_basis") or "not benchmarked"
    where = (
        f"likely {lo:.3e} to {hi:.3e} kWh, {basis}"
        if lo is not None and hi is not None
        else (f"range unknown: {basis}")
    )
    return f"{_e(r.get('projected_energy_kwh'))} kWh ({where})"


def _projected(r: TrialRecord) -> dict[str, Any]:
    return {
        "projected_energy_kwh": r.final_num(Final.projected_energy_kwh),
        "projected_energy_kwh_low": r.final_num(Final.projected_energy_kwh_low),
        "projected_energy_kwh_high": r.final_num(Final.projected_energy_kwh_high),
        "projection_range_basis": r.final.get(Final.projection_range_basis),
    }


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v:+.1f}%"


def fidelity(study: optuna.Study, search_kgco2e: float) -> Fidelity:
    recs = records(study.get_trials(deepcopy=False, states=_COMPLETE), study=study)
    trained = [r for r in recs if r.has_final]
    out = Fidelity()
    out.projected = [
        {"trial": r.number, **_projected(r)}
        for r in recs
        if not r.has_final and r.final_num(Final.projected_energy_kwh) is not None
    ]
    if not trained:
        out.tau_note = "no trial trained at full budget yet (econas train --trial N or --top K)"
        return out
    volume = _requests_per_day(study)
    best = max(recs, key=lambda r: (r.accuracy or -1.0, -r.number))
    for r in trained:
        out.rows.append(
            {
                "trial": r.number,
                "proxy_accuracy": r.accuracy,
                "proxy_test_accuracy": r.num(TrialAttrs.test_accuracy),
                "final_test_accuracy": r.final_num(Final.test_accuracy),
                "final_kgco2e": r.final_num(Final.kgco2e),
                "final_energy_kind": r.final.get(Final.energy_kind),
                "projection_error_pct": r.final_num(Final.projection_error_pct),
                **_projected(r),
                "payback": _payback(r, best, volume, search_kgco2e),
            }
        )
    proxy = [r.accuracy or math.nan for r in trained]
    final = [r.final_num(Final.test_accuracy) or math.nan for r in trained]
    tau = kendall_tau(proxy, final)
    if len(trained) < 2 or not math.isfinite(tau):
        out.tau_note = (
            f"needs two or more trained trials with distinct accuracies ({len(trained)} trained)"
        )
    else:
        out.kendall_tau = tau
        out.tau_note = f"over {len(trained)} trained trials" + (
            "; with fewer than 5 a single swap moves it a lot" if len(trained) < 5 else ""
        )
    if volume is None:
        out.payback_note = "no [lifecycle] requests_per_day in the study: payback unknown"
    return out


def _requests_per_day(study: optuna.Study) -> float | None:
    try:
        cfg = json.loads(study.user_attrs.get(StudyAttrs.config) or "{}")
        value = cfg.get("lifecycle", {}).get("requests_per_day")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _per_sample_kwh(r: TrialRecord) -> float | None:
    kwh = r.num(Lifecycle.per_sample_kwh)
    if kwh is None and r.num(Inference.energy_j_per_sample) is not None:
        kwh = r.num(Inference.energy_j_per_sample) / 3.6e6
    return kwh


def _payback(r: TrialRecord, best: TrialRecord, volume: float | None, search_kg: float) -> str:
    if volume is None:
        return "unknown (no [lifecycle] requests_per_day)"
    if r.number == best.number:
        return f"none needed: trial {r.number} is the most accurate"
    mine, theirs = _per_sample_kwh(r), _per_sample_kwh(best)
    g = r.num(Lifecycle.intensity_g_per_kwh) or r.num(TrialAttrs.intensity_g_per_kwh)
    if mine is None or theirs is None or g is None:
        return "unknown (no inference energy measured)"
    saved_kg_per_day = (theirs - mine) * volume * g / 1000.0
    if saved_kg_per_day <= 0:
        return f"never: its inference costs no less than trial {best.number}'s"
    cost = search_kg + (r.final_num(Final.kgco2e) or 0.0)
    days = cost / saved_kg_per_day
    return (
        f"{days:.3g} days (search + final training {cost:.3e} kgCO2e / {saved_kg_per_day:.3e} "
        f"kgCO2e a day saved against trial {best.number} at {volume:g} requests a day)"
    )
