"""Trial fingerprints and reuse of a stored result for a duplicate configuration.

The fingerprint hashes what decides a trained proxy's result: the architecture
(``ArchSpec`` JSON), what plugins sampled (compression, federated settings...), the training
budget (epochs, lr, weight decay, optimizer, label smoothing, batch size), the data set and
data budget (sizes, resolution, the seed that draws the subsets) and the eval settings. The
objectives are not part of it: a result is reused whatever the study optimises.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:  # pragma: no cover
    from nas.plugins import TrialContext

FINGERPRINT_ATTR = "fingerprint"
METRICS_ATTR = "reuse_metrics"
# Attrs that describe the run of a trial rather than its configuration's result.
_NOT_COPIED = frozenset(
    {"fingerprint", "started_at", "finished_at", "reused", "reused_from_trial", "reused_from_study"}
)
_NOT_COPIED_PREFIXES = ("schedule_",)  # when this trial ran is its own, not the source's
_COMPLETE = (optuna.trial.TrialState.COMPLETE,)


def trial_fingerprint(ctx: TrialContext) -> str:
    """16 hex digits identifying the trial's configuration (not its objectives)."""
    cfg = ctx.config
    kw = ctx.train_kwargs
    blob = {
        "arch": json.loads(ctx.spec.to_json()),
        "settings": ctx.settings,
        "train": {
            "epochs": kw.get("epochs"),
            "lr": kw.get("lr"),
            "weight_decay": kw.get("weight_decay"),
            "optimizer": kw.get("optimizer"),
            "batch_size": kw.get("batch_size"),
            "label_smoothing": cfg.train.label_smoothing,
        },
        "data": {
            "dataset": cfg.data.dataset,
            "train_size": cfg.data.train_size,
            "val_size": cfg.data.val_size,
            "test_size": cfg.data.test_size,
            "resolution": cfg.data.resolution,
            "seed": cfg.study.seed,
        },
        "eval": {
            "measure_inference": cfg.eval.measure_inference,
            "inference_batch_size": cfg.eval.inference_batch_size,
        },
    }
    text = json.dumps(blob, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Match:
    """A completed trial with the same fingerprint."""

    study_name: str
    trial: optuna.trial.FrozenTrial
    same_study: bool


def find_match(
    study: optuna.Study, fingerprint: str, *, across_studies: bool = False
) -> Match | None:
    """The first COMPLETE trial with ``fingerprint`` in ``study`` (then, optionally, in the
    other studies of the same storage)."""
    for t in study.get_trials(deepcopy=False, states=_COMPLETE):
        if t.user_attrs.get(FINGERPRINT_ATTR) == fingerprint and not t.user_attrs.get("reused"):
            return Match(study.study_name, t, True)
    if not across_studies:
        return None
    storage = study._storage
    for other in storage.get_all_studies():
        if other.study_name == study.study_name:
            continue
        for t in storage.get_all_trials(other._study_id, deepcopy=False, states=_COMPLETE):
            if t.user_attrs.get(FINGERPRINT_ATTR) == fingerprint and not t.user_attrs.get("reused"):
                return Match(other.study_name, t, False)
    return None


def reused_values(match: Match, objectives: tuple[str, ...] | list[str]) -> list[float] | None:
    """This study's objective values from the matched trial; None if one is unknown."""
    attrs = match.trial.user_attrs
    metrics: dict[str, Any] = {}
    raw = attrs.get(METRICS_ATTR)
    if isinstance(raw, str):
        try:
            metrics = json.loads(raw)
        except ValueError:
            metrics = {}
    out: list[float] = []
    for name in objectives:
        value = metrics.get(name, attrs.get(name))
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        out.append(float(value))
    return out


def reuse_attrs(match: Match) -> dict[str, Any]:
    """Attrs for the reusing trial: the source's results, and what this trial cost (nothing
    new: ``search_energy_kwh`` and ``search_kgco2e`` are 0; ``energy_kwh``/``kgco2e`` stay
    the cost of training this configuration, which is what the objective means). Within a
    study the source's saved weights (same artifact store) are shared, so export works."""
    attrs = {
        k: v
        for k, v in match.trial.user_attrs.items()
        if k not in _NOT_COPIED and not k.startswith(_NOT_COPIED_PREFIXES)
    }
    if not match.same_study:  # another study's artifact store: its weights aren't reachable
        attrs.pop("weights_artifact_id", None)
    attrs.update(
        reused=True,
        reused_from_trial=match.trial.number,
        reused_from_study=match.study_name,
        search_energy_kwh=0.0,
        search_kgco2e=0.0,
    )
    return attrs
