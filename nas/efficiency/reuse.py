"""Trial fingerprints and reuse of a stored result for a duplicate configuration.

The fingerprint hashes what decides a trained proxy's result: the architecture
(``ArchSpec`` JSON), what the steps sampled (compression, federated settings...), the
training budget (epochs, lr, weight decay, optimizer, label smoothing, batch size), the data
set and data budget (sizes, resolution, the seed that draws the subsets) and the eval
settings. The objectives are not part of it: a result is reused whatever the study optimises.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

from nas.record import Efficiency, Schedule, TrialAttrs, TrialRecord, fields

if TYPE_CHECKING:  # pragma: no cover
    from nas.trial import RunningTrial

# What describes the run of a trial rather than its configuration's result: never copied.
_NOT_COPIED = frozenset(
    {
        Efficiency.fingerprint,
        Efficiency.reused,
        Efficiency.reused_from_trial,
        Efficiency.reused_from_study,
        TrialAttrs.started_at,
        TrialAttrs.finished_at,
        TrialAttrs.phases,
        TrialAttrs.wall_s,
        TrialAttrs.duration_s,
        TrialAttrs.metered_fraction,
        TrialAttrs.search_energy_kwh,
        TrialAttrs.search_kgco2e,
        *fields(Schedule),  # when this trial ran is its own, not the source's
    }
)
_COMPLETE = (optuna.trial.TrialState.COMPLETE,)
log = logging.getLogger(__name__)


def trial_fingerprint(t: RunningTrial) -> str:
    """16 hex digits identifying the trial's configuration (not its objectives)."""
    cfg = t.config
    blob = {
        "arch": json.loads(t.spec.to_json()),
        "settings": {k: v for k, v in t.settings.items() if v is not None},
        "train": {
            "epochs": cfg.train.epochs,
            "lr": cfg.train.lr,
            "weight_decay": cfg.train.weight_decay,
            "optimizer": cfg.train.optimizer,
            "batch_size": cfg.data.batch_size,
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


def _is_source(trial: optuna.trial.FrozenTrial, fingerprint: str) -> bool:
    rec = TrialRecord.of(trial)
    return rec.get(Efficiency.fingerprint) == fingerprint and not rec.reused


def find_match(
    study: optuna.Study, fingerprint: str, *, across_studies: bool = False
) -> Match | None:
    """The first COMPLETE trial with ``fingerprint`` in ``study`` (then, optionally, in the
    other studies of the same storage)."""
    for t in study.get_trials(deepcopy=False, states=_COMPLETE):
        if _is_source(t, fingerprint):
            return Match(study.study_name, t, True)
    if not across_studies:
        return None
    storage = study._storage
    for other in storage.get_all_studies():
        if other.study_name == study.study_name:
            continue
        for t in storage.get_all_trials(other._study_id, deepcopy=False, states=_COMPLETE):
            if _is_source(t, fingerprint):
                return Match(other.study_name, t, False)
    return None


def wait_for_running_twin(
    study: optuna.Study, fingerprint: str, number: int, *, poll_s: float = 0.5
) -> int | None:
    """Wait while an earlier trial with ``fingerprint`` is RUNNING (another process trains
    the same configuration); return its number, or None when there was none.

    Only earlier-numbered trials are waited for, so two twins never wait for each other. A
    twin whose process died is failed by its missed heartbeats, which ends the wait."""
    from nas.study import fail_stale

    waited_for: int | None = None
    while True:
        twins = [
            t
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            if t.number < number and t.user_attrs.get(Efficiency.fingerprint) == fingerprint
        ]
        if not twins:
            return waited_for
        if waited_for is None:
            waited_for = twins[0].number
            log.info("trial %d waits for running trial %d (same configuration)", number, waited_for)
        time.sleep(poll_s)
        fail_stale(study)


def reused_values(match: Match, objectives: tuple[str, ...] | list[str]) -> list[float] | None:
    """This study's objective values from the matched trial; None if one is unknown."""
    rec = TrialRecord.of(match.trial)
    metrics = rec.json(Efficiency.reuse_metrics)
    metrics = metrics if isinstance(metrics, dict) else {}
    out: list[float] = []
    for name in objectives:
        value = metrics.get(name, rec.get(name))
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        out.append(float(value))
    return out


def reuse_attrs(match: Match) -> dict[str, Any]:
    """Attrs for the reusing trial: the source's results (``energy_kwh``/``kgco2e`` stay the
    cost of training this configuration, which is what the objective means) and where they
    come from. What this trial itself cost is its own phases (``search_energy_kwh``). Within a
    study the source's saved weights (same artifact store) are shared, so export works;
    across studies export follows ``reused_from_study`` to the source."""
    attrs = {k: v for k, v in match.trial.user_attrs.items() if k not in _NOT_COPIED}
    if not match.same_study:  # another study's artifact store: export follows the source
        attrs.pop(TrialAttrs.weights_artifact_id, None)
    attrs.update(
        {
            Efficiency.reused: True,
            Efficiency.reused_from_trial: match.trial.number,
            Efficiency.reused_from_study: match.study_name,
        }
    )
    return attrs
