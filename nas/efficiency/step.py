"""Reuse, zero-cost screening and early stopping as a step of every trial (``[efficiency]``).

* ``reuse`` (phase ``reuse``): the fingerprint (always stored) and, with ``reuse = true``, a
  COMPLETE trial with the same fingerprint whose result this trial takes instead of
  training; its own cost is the fingerprint and the search (``search_energy_kwh``).
* ``screen`` (phase ``screen``): a zero-cost proxy score; PRUNED when below the quantile of
  the finished candidates of the same family.
* ``plan``: multi-objective early stopping at every epoch but the last (a rung): accuracy
  on a validation subset and the training energy so far (the pipeline's epoch windows inside
  the ``train`` phase); PRUNED when the trial's non-dominated rank is outside the kept share.
"""

from __future__ import annotations

import json
import logging
import math

import optuna
from torch.utils.data import TensorDataset

from nas.efficiency.early_stop import rung_history, should_stop
from nas.efficiency.proxies import PROXIES, choose_proxy, compute_proxy
from nas.efficiency.reuse import (
    find_match,
    reuse_attrs,
    reused_values,
    trial_fingerprint,
    wait_for_running_twin,
)
from nas.record import Efficiency, TrialRecord, proxy_key, rung_key
from nas.sections.efficiency import EfficiencySection
from nas.stats import quantile
from nas.text import plural
from nas.trial import RunningTrial, Step, TrainingPlan

log = logging.getLogger(__name__)

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class EfficiencyStep(Step):
    name = "efficiency"

    def __init__(self, section: EfficiencySection) -> None:
        self.section = section

    def uses(self, hook: str) -> bool:
        if hook == "screen":
            return self.section.screen != "none"
        return super().uses(hook)

    def reuse(self, t: RunningTrial) -> list[float] | None:
        sec = self.section
        fingerprint = trial_fingerprint(t)
        t.record({Efficiency.fingerprint: fingerprint})
        t.trial.set_user_attr(Efficiency.fingerprint, fingerprint)  # visible to other workers
        if not sec.reuse:
            return None
        # A twin another process is training now (concurrent searches): wait, then reuse it.
        wait_for_running_twin(t.trial.study, fingerprint, t.number)
        match = find_match(t.trial.study, fingerprint, across_studies=sec.reuse_across_studies)
        values = reused_values(match, t.config.study.objectives) if match else None
        if match is None or values is None:
            return None
        t.record(reuse_attrs(match))
        log.info(
            "trial %d reuses trial %d of study %s (same fingerprint %s)",
            t.number,
            match.trial.number,
            match.study_name,
            fingerprint,
        )
        return values

    def screen(self, t: RunningTrial) -> None:
        sec = self.section
        x, y = (v[: sec.screen_batch_size].to(t.device) for v in t.data.train.tensors)
        model = t.model.to(t.device)
        names = list(PROXIES) if sec.screen == "auto" else [sec.screen]
        scores = {name: compute_proxy(name, model, x, y) for name in names}
        t.record({proxy_key(name): score for name, score in scores.items()})
        family = t.spec.family
        finished = t.trial.study.get_trials(deepcopy=False, states=_FINISHED)
        peers = [
            rec
            for rec in map(TrialRecord.of, finished)
            if rec.number != t.number and rec.family == family
        ]
        name = sec.screen
        if sec.screen == "auto":
            name = self._choose(t, peers)
            if name is None:
                return
        key = proxy_key(name)
        history = [value for rec in peers if (value := rec.num(key)) is not None]
        if len(history) < sec.screen_warmup:
            return
        score = scores[name]
        threshold = quantile(history, sec.screen_quantile)
        if not math.isfinite(score) or score < threshold:
            raise optuna.TrialPruned(
                f"screened: {name} {score:.4g} below the {sec.screen_quantile:.2f} quantile "
                f"{threshold:.4g} of {plural(len(history), family + ' candidate')}"
            )

    def _choose(self, t: RunningTrial, peers: list[TrialRecord]) -> str | None:
        """``screen = "auto"``: the proxy that ranks this family's trained trials best."""
        done = [
            rec
            for rec in peers
            if rec.state == optuna.trial.TrialState.COMPLETE and rec.accuracy is not None
        ]
        done = [r for r in done if all(r.num(proxy_key(n)) is not None for n in PROXIES)]
        scores = {n: [float(r.num(proxy_key(n))) for r in done] for n in PROXIES}
        name, rhos = choose_proxy(
            scores, [float(r.accuracy) for r in done], min_trials=self.section.screen_warmup
        )
        t.record(
            {
                Efficiency.screen_choice: name or "none",
                Efficiency.screen_rhos: json.dumps({k: round(v, 4) for k, v in rhos.items()}),
            }
        )
        return name

    def plan(self, t: RunningTrial, plan: TrainingPlan) -> TrainingPlan:
        sec = self.section
        if not sec.early_stop:
            return plan
        if plan.epochs < 2:
            log.debug("early stopping needs >= 2 epochs (a rung before the last); off")
            return plan
        epochs = plan.epochs
        xs, ys = (v[: sec.early_stop_val_size] for v in t.data.val.tensors)
        val = TensorDataset(xs, ys)

        def at_rung(epoch: int, loss: float) -> None:
            if epoch >= epochs - 1:
                return
            work = t.context.workload
            accuracy = work.evaluate(t.model, val, device=t.device)
            if work.trains_modules:
                t.model.train()  # evaluate left it in eval mode
            spent = sum(t.epoch_energy_kwh)  # the training so far (the pipeline's epochs)
            t.record({rung_key(epoch, "accuracy"): accuracy, rung_key(epoch, "energy_kwh"): spent})
            history = rung_history(t.trial.study, epoch, exclude=t.number)
            stop, reason = should_stop(
                (accuracy, spent),
                history,
                keep=sec.early_stop_keep,
                min_trials=sec.early_stop_min_trials,
            )
            if stop:
                t.record({Efficiency.early_stopped_at_rung: epoch})
                raise optuna.TrialPruned(reason)

        return plan.replace(epoch_callbacks=(*plan.epoch_callbacks, at_rung))

    def complete(self, t: RunningTrial, values: list[float]) -> None:
        metrics = {k: float(v) for k, v in t.metrics.items() if math.isfinite(float(v))}
        t.record({Efficiency.reuse_metrics: json.dumps(metrics, sort_keys=True)})
