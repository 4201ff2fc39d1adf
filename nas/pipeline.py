"""A trial, start to end: the ordered steps assembled from the config's typed sections.

Read :meth:`Objective.run` top to bottom to see what a trial does; every line of work after
the trial starts runs in exactly one phase (``nas.record.PHASES``), so the trial's search
energy is the sum of its phases::

    sample     carbon budget left? architecture, then each step's choices        "sample"
    reuse      a finished trial with the same configuration? take its result     "reuse"
    wait       for a green window (idle, not metered, not in the wall time)
    build      will its training fit in memory? the model, its static cost       "build"
    screen     predicted training energy (a 10x trial refused); zero-cost proxy,
               drop the weakest candidates                                       "screen"
    train      the plan the steps made (precision, distillation, early stopping)
               by the central loop or federated rounds                           "train" (+"comm")
    deploy     prune + fine-tune, quantize                                       "finetune", "quantize"
    evaluate   validation accuracy (objective), test accuracy (reporting)        "eval", "test"
    inference  latency and energy per prediction                                 "inference"
    metrics    kgCO2e at the intensity of the run; lifecycle carbon              "lifecycle"
    upload     the deployed weights                                              "upload"
    store      the trial record                                                  "store"

Which features take part, and in which order their hooks run, is :func:`assemble_steps`.
Everything the trials of a run share is its run context (:class:`nas.context.RunContext`);
building, training and evaluating the model go through its workload (:mod:`nas.workload`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import optuna
import torch

from nas.carbon import kgco2e
from nas.context import RunContext
from nas.errors import InvalidArchError, TrialFailure
from nas.memory import warm_up
from nas.record import RECORD_VERSION, PhaseLog, Provenance, TrialAttrs, fields, store_attrs
from nas.record import Inference as InferenceAttr
from nas.signals import interrupts_deferred
from nas.storage_faults import is_fault
from nas.trial import Deployed, RunningTrial, Step
from nas.trial_memory import check_trial
from search_spaces import SearchSpace

log = logging.getLogger(__name__)

StepFactory = Callable[[RunContext], Step | None]
# A reused trial keeps these from its source: what producing the model cost, and on what.
_REUSED_KEEPS = frozenset(
    {
        TrialAttrs.energy_kwh,
        TrialAttrs.energy_j,
        TrialAttrs.kgco2e,
        TrialAttrs.energy_source,
        TrialAttrs.energy_kind,
        TrialAttrs.hardware,
        *fields(Provenance),
    }
)
_REGISTERED: list[StepFactory] = []


def register_step(factory: StepFactory) -> StepFactory:
    """Add a step of your own to every trial (after the built-in ones); returns ``factory``.

    ``factory(context)`` (the run's :class:`~nas.context.RunContext`) returns a
    :class:`~nas.trial.Step` (or None to stay out of this run).
    """
    _REGISTERED.append(factory)
    return factory


def assemble_steps(context: RunContext) -> list[Step]:
    """The steps of every trial of this run, in the order their hooks are called."""
    from nas.compression.step import CompressionStep
    from nas.efficiency.cost_guard import CostGuard
    from nas.efficiency.step import EfficiencyStep
    from nas.federated.step import FederatedStep
    from nas.lifecycle import LifecycleStep
    from nas.scheduling.step import BudgetGuard, GreenWindow, RegionPicker
    from nas.trial_model import best_trial_model

    cfg = context.config
    steps: list[Step] = []
    if cfg.schedule.max_kgco2e is not None:  # first: refuse before anything is spent
        steps.append(BudgetGuard(max_kgco2e=cfg.schedule.max_kgco2e))
    if cfg.compression.enabled:  # samples choices; plans precision and distillation; deploys
        steps.append(CompressionStep(context, best_teacher=best_trial_model))
    if cfg.federated.enabled:  # trains by federated rounds instead of the central loop
        steps.append(FederatedStep(context))
    if context.workload.trains_modules:  # training energy predicted on the built model; a
        # 10x trial refused before it trains (a table's lookups cost what the table says)
        steps.append(
            CostGuard(allow_costly=cfg.search.allow_costly, probe_steps=cfg.search.cost_probe_steps)
        )
    steps += context.workload.steps(context)  # e.g. a table's lookup bookkeeping
    steps.append(EfficiencyStep(cfg.efficiency))  # reuse, screening, early stopping
    if cfg.carbon.regions:  # spatial: the trial runs in the region forecast greenest
        steps.append(RegionPicker(context))
    if cfg.schedule.active:  # waits for a green slot; the trial's intensity is the slot's
        steps.append(GreenWindow(context))
    if cfg.lifecycle.active:  # lifecycle carbon objective, measured on the target
        steps.append(LifecycleStep(context))
    for factory in _REGISTERED:
        step = factory(context)
        if step is not None:
            steps.append(step)
    return steps


class _EpochLedger:
    """Each training epoch's energy (a window inside phase ``train``, never added again):
    steps read ``t.epoch_energy_kwh`` (early stopping's energy so far) and the projection of a
    full-budget run uses the last, warmed-up epoch. Work a step does between epochs (a rung's
    evaluation) falls between these windows, still inside ``train``."""

    WINDOW = "train:epoch"

    def __init__(self, t: RunningTrial) -> None:
        self.t = t

    def begin(self) -> None:
        self.t.meter.begin_window(self.WINDOW, restart=True)

    def end(self, epoch: int, loss: float) -> None:
        m = self.t.meter.end_window(self.WINDOW)
        t = self.t
        t.epoch_energy_kwh.append(m.energy_kwh)
        t.epoch_duration_s.append(m.duration_s)
        t.record(
            {
                TrialAttrs.epoch_energy_kwh: json.dumps(t.epoch_energy_kwh),
                TrialAttrs.epoch_duration_s: json.dumps(t.epoch_duration_s),
            }
        )

    def resume(self, epoch: int, loss: float) -> None:
        if self.t.plan is None or epoch < self.t.plan.epochs - 1:
            self.begin()

    def close(self) -> None:
        if self.WINDOW in self.t.meter.open_windows:
            self.t.meter.end_window(self.WINDOW, cancel=True)


class Objective:
    """The callable ``study.optimize`` runs: one trial of the pipeline per call."""

    def __init__(self, context: RunContext, steps: list[Step] | None = None) -> None:
        self.context = context
        cfg = context.config
        self.spaces: dict[str, SearchSpace] = context.workload.search_spaces(cfg)
        self.steps = assemble_steps(context) if steps is None else steps
        self._provenance: dict[str, Any] | None = None
        if context.workload.trains_modules:  # the memory guard's first meta-device run:
            warm_up()  # here, not in trial 0's build
            threads = cfg.hardware.threads
            if context.device.type == "cpu" and threads > 0:
                torch.set_num_threads(threads)  # recorded per trial (Provenance.threads)

    @property
    def config(self):  # noqa: ANN201 - nas.config.Config
        return self.context.config

    def __call__(self, trial: optuna.Trial) -> list[float]:
        ctx = self.context
        assert ctx.meter is not None  # a search's context is always metered
        t = RunningTrial(trial=trial, context=ctx, log=PhaseLog(ctx.meter), intensity=ctx.intensity)
        try:
            return self.run(t)
        except optuna.TrialPruned as exc:
            t.record({TrialAttrs.stop_reason: str(exc)[:200] or "pruned"})
            raise
        except TrialFailure as exc:
            t.record({TrialAttrs.fail_reason: exc.reason, TrialAttrs.fail_message: str(exc)[:500]})
            raise
        except Exception as exc:  # recorded; the study goes on (search catches it)
            if is_fault(exc):  # a full disk, a read-only storage: the search stops, one line
                t.record({TrialAttrs.fail_reason: "storage_fault"})
                t.record({TrialAttrs.fail_message: str(exc)[:500]})
                raise
            log.warning("trial %d failed: %r", trial.number, exc, exc_info=True)
            t.record({TrialAttrs.fail_reason: f"error:{type(exc).__name__}"})
            t.record({TrialAttrs.fail_message: str(exc)[:500]})
            raise
        finally:  # failed and pruned trials keep what they measured: the search paid for it
            with interrupts_deferred():  # a Ctrl-C here waits for the record to be written
                self.store(t)

    # -- the trial --------------------------------------------------------------------------
    def run(self, t: RunningTrial) -> list[float]:
        cfg, steps, work = self.config, self.steps, self.context.workload
        with t.phase("sample"):
            for step in steps:
                step.admit(t)
            self.sample(t)
        reusers = [s for s in steps if s.uses("reuse")]
        if reusers:
            with t.phase("reuse"):
                reused = next((v for s in reusers if (v := s.reuse(t)) is not None), None)
            if reused is not None:
                t.reused = True
                return reused
        with t.log.wait():
            for step in steps:
                t.intensity = step.wait(t) or t.intensity
        t.log.started_at = datetime.now(UTC)  # the trial's carbon interval starts here

        with t.phase("build"):
            if work.trains_modules:  # on the meta device: a model that would not fit fails
                check_trial(t)
            torch.manual_seed(t.seed)
            t0 = time.perf_counter()
            t.model = work.build(t.space, t.spec)
            built_s = time.perf_counter() - t0  # what `econas train` redoes (nas.final)
            cost = work.cost(t.model, (1, *t.input_shape))
            t.record(
                {
                    TrialAttrs.model_build_s: built_s,
                    TrialAttrs.params: cost.params,
                    TrialAttrs.flops: cost.flops,
                    TrialAttrs.cost_of: "trained_model",
                }
            )
        screeners = [s for s in steps if s.uses("screen")]
        if screeners:
            with t.phase("screen"):
                for step in screeners:
                    step.screen(t)

        with t.phase("train"):
            epochs = _EpochLedger(t)  # each epoch's training energy, first in, last out
            plan = self.context.plan(seed=t.seed).replace(
                on_start=(epochs.begin,), epoch_callbacks=(epochs.end,)
            )
            for step in steps:
                plan = step.plan(t, plan)
            plan = plan.replace(epoch_callbacks=(*plan.epoch_callbacks, epochs.resume))
            t.plan = plan
            try:
                plan.started()
                result = next((r for s in steps if (r := s.train(t, plan)) is not None), None)
                if result is None:
                    result = work.train(t.model, t.data.train, plan)
            finally:
                epochs.close()
        t.train_result = result
        t.record({TrialAttrs.epochs: result.epochs})
        if math.isfinite(result.final_loss):  # a table's lookup records no loss
            t.record({TrialAttrs.train_loss: result.final_loss})
        t.record({TrialAttrs.train_samples: result.samples})
        for step in steps:
            step.after_train(t)

        deployed = next((d for s in steps if (d := s.deploy(t, t.model)) is not None), None)
        t.deployed = deployed or Deployed(model=t.model, device=t.device)
        params = cost.params if t.deployed.params is None else t.deployed.params
        if t.deployed.params is not None:
            t.record(
                {
                    TrialAttrs.params: params,
                    TrialAttrs.flops: t.deployed.flops,
                    TrialAttrs.cost_of: "deployed_model",
                }
            )
        model, device = t.deployed.model, t.deployed.device
        with t.phase("eval"):
            accuracy = work.evaluate(model, t.data.val, device=device)
        with t.phase("test"):  # for reporting only; never an objective
            test_accuracy = work.evaluate(model, t.data.test, device=device)
        t.record({TrialAttrs.accuracy: accuracy, TrialAttrs.test_accuracy: test_accuracy})
        latency_ms = float("nan")
        if cfg.eval.measure_inference and work.trains_modules:
            with t.phase("inference"):
                latency_ms = self.measure_inference(t, model, device)

        metrics = self.carbon_metrics(t)
        metrics.update(accuracy=accuracy, latency_ms=latency_ms, params=float(params))
        for step in steps:
            metrics.update(step.evaluated(t, metrics))
        t.metrics = metrics
        if self.context.artifact_store is not None and work.trains_modules:
            with t.phase("upload"):
                t.record({TrialAttrs.weights_artifact_id: self.upload(t, model)})
        values = [float(metrics[o]) for o in cfg.study.objectives]
        for step in steps:
            step.complete(t, values)
        return values

    # -- the parts ---------------------------------------------------------------------------
    def sample(self, t: RunningTrial) -> None:
        """The architecture, then each step's choices; stored as soon as all are sampled."""
        names = list(self.spaces)
        name = t.trial.suggest_categorical("space", names) if len(names) > 1 else names[0]
        t.space = self.spaces[name]
        d = t.data
        t.spec = t.space.sample(
            t.trial,
            in_channels=d.in_channels,
            num_classes=d.num_classes,
            image_size=d.image_size,
            prefix=f"{name}.",
        )
        for step in self.steps:
            t.settings[step.name] = step.sample(t)
        store_attrs(
            t.trial,
            {
                TrialAttrs.record_version: RECORD_VERSION,
                TrialAttrs.family: t.spec.family,
                TrialAttrs.arch: t.spec.encode(),
                TrialAttrs.arch_spec: t.spec.to_json(),  # present: the trial is fully sampled
            },
        )
        try:
            t.space.validate(t.spec)
        except InvalidArchError as exc:
            raise TrialFailure("invalid_arch", f"rejected before training: {exc}") from exc

    def measure_inference(
        self, t: RunningTrial, model: torch.nn.Module, device: torch.device
    ) -> float:
        from nas.inference import measure_inference

        e = self.config.eval
        inf = measure_inference(
            model,
            input_shape=t.input_shape,
            batch_size=e.inference_batch_size,
            device=str(device),
            meter=t.meter,
            min_duration_s=e.inference_min_duration_s,
        )
        m = inf.measurement
        t.record(
            {
                InferenceAttr.runtime: inf.runtime,
                InferenceAttr.device: inf.device,
                InferenceAttr.batch_size: inf.batch_size,
                InferenceAttr.threads: inf.threads,
                InferenceAttr.samples: inf.samples,
                InferenceAttr.latency_ms: inf.latency_ms,
                InferenceAttr.latency_p90_ms: inf.latency_p90_ms,
                InferenceAttr.throughput_per_s: inf.throughput_per_s,
                InferenceAttr.energy_j_per_sample: inf.energy_j_per_sample,
                InferenceAttr.energy_kwh_per_1k: inf.energy_kwh_per_1k,
                InferenceAttr.window_duration_s: float(m.duration_s),
                InferenceAttr.window_energy_j: float(m.total_energy_j),
                InferenceAttr.energy_source: m.source,
                InferenceAttr.energy_kind: m.kind,
                InferenceAttr.energy_hardware: str(m.hardware),
            }
        )
        return inf.latency_ms

    def carbon_metrics(self, t: RunningTrial) -> dict[str, float]:
        """The model's energy and kgCO2e at the carbon intensity of the interval it ran."""
        finished = datetime.now(UTC)
        ci = t.intensity.intensity_over(t.log.started_at, finished)
        t.carbon = ci
        kwh = t.log.energy_kwh(model_cost_only=True)
        t.record({TrialAttrs.finished_at: finished.isoformat()})
        return {"energy_kwh": kwh, "kgco2e": kgco2e(kwh, ci.intensity_g_per_kwh)}

    def upload(self, t: RunningTrial, model: torch.nn.Module) -> str:
        """The deployed model's state_dict, to the study's artifact store."""
        from nas.trial_model import upload_weights

        name = f"trial-{t.number}-state_dict"
        return upload_weights(self.context.artifact_store, model, name, t.trial)

    # -- the record -------------------------------------------------------------------------
    def store(self, t: RunningTrial) -> None:
        """Write the trial record: everything but the store phase's own figures inside phase
        ``store``, then those figures and the totals (one small write, after it)."""
        ci = t.carbon
        if ci is None:
            try:
                ci = t.intensity.intensity_over(t.log.started_at, datetime.now(UTC))
            except Exception:  # noqa: BLE001 - never lose the energy over a carbon lookup
                log.debug("no intensity for trial %d", t.number, exc_info=True)
        g = None if ci is None else ci.intensity_g_per_kwh
        attrs = dict(t.attrs)
        if ci is not None and not t.reused:  # a reused result keeps the intensity it ran at
            attrs.update(
                {TrialAttrs.intensity_g_per_kwh: g, TrialAttrs.intensity_source: ci.source}
            )
            attrs[TrialAttrs.carbon_region] = ci.region or ""
            if ci.forecast_share is not None:
                attrs[TrialAttrs.intensity_forecast_share] = ci.forecast_share
            if ci.fallback_reason is not None:
                attrs[TrialAttrs.intensity_fallback_reason] = ci.fallback_reason[:300]
        if not t.reused:  # a reused result keeps the provenance of the run that produced it
            attrs.update(self.provenance(t))
        attrs[TrialAttrs.record_version] = RECORD_VERSION
        with t.phase("store"):
            store_attrs(t.trial, {**attrs, **self.accounting(t, g)})
        store_attrs(t.trial, self.accounting(t, g))

    def accounting(self, t: RunningTrial, g: float | None) -> dict[str, Any]:
        out = t.log.accounting(g)
        if t.reused:  # the model's cost and how it was measured are the reused result's
            return {k: v for k, v in out.items() if k not in _REUSED_KEEPS}
        return out

    def provenance(self, t: RunningTrial) -> dict[str, Any]:
        """What decides this run's figures (cached: it does not change within a run)."""
        if self._provenance is None:
            import json

            from nas.hardware import hardware_provenance

            p = hardware_provenance(str(t.device))
            cuda = p.get("cuda") or {}
            self._provenance = {
                Provenance.cpu_isa: p.get("cpu_isa") or "",
                Provenance.torch_cpu_capability: p.get("torch_cpu_capability") or "",
                Provenance.torch_version: (p.get("versions") or {}).get("torch") or "",
                Provenance.econas_version: (p.get("versions") or {}).get("econas") or "",
                Provenance.provenance: json.dumps(p, sort_keys=True, default=str),
            }
            if cuda:
                self._provenance[Provenance.cuda_device] = str(cuda.get("name", ""))
                capability = cuda.get("compute_capability", "")
                self._provenance[Provenance.cuda_capability] = str(capability)
        out = dict(self._provenance)
        out[Provenance.threads] = torch.get_num_threads()
        out[TrialAttrs.device] = str(t.device)
        return out
