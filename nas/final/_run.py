"""Train a trial's architecture at full budget, metered, checkpointed, resumable.

The model is rebuilt as the trial deployed it: its ArchSpec, its pruned structure (the
pruned network is trained from scratch), its training precision, its distillation teacher,
and its quantization after training. Phases are metered as in a trial (``build``, ``train``,
``eval`` every epoch, ``checkpoint``, ``quantize``, ``test``, ``upload``, ``store``; ``lost``
for interrupted epochs), their energy is carried across resumed runs in the checkpoint, and
the result is stored in the study (``nas.record.Final``) with its projection and error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import optuna
import torch
import torch._dynamo  # noqa: F401  (the first optimizer imports it: 1.6 s, process start-up

# like every other import, so it is loaded here rather than inside the metered build phase)
from nas._malloc import ENV as ENV_KEEP
from nas._malloc import freed_memory_kept
from nas.carbon import IntensitySource, kgco2e
from nas.compression import CompressionChoice, deploy, pruned_network, scratch_model
from nas.context import RunContext
from nas.data import DataSplits, indices_digest
from nas.energy import add_measurements, energy_kind
from nas.errors import BadInputError, EconasError, TrialFailure
from nas.final._checkpoint import Checkpoint, CheckpointDir, measurement_to_json
from nas.final._options import BudgetStop, FinalOptions, final_plan
from nas.final._project import Projection, project_energy
from nas.final._spread import hardware_class, spread_for
from nas.record import (
    RECORD_VERSION,
    Compression,
    Final,
    PhaseLog,
    Provenance,
    TrialAttrs,
    TrialRecord,
    final_key,
    finite,
)
from nas.text import plural
from nas.train import Trainer, TrainingPlan, evaluate
from search_spaces import ArchSpec

CHUNK_S = 2.0  # how often an epoch's energy so far is written to progress.json


def setting_differences(proxy: dict[str, Any]) -> list[str]:
    """What this process runs with differently from the proxy (its ``provenance``) that
    changes CPU time per sample: the OpenMP wait policy and whether freed memory is kept.
    A setting the proxy did not record says nothing."""
    lines = []
    wait = proxy.get("omp_wait_policy", "")
    if wait != "" and wait != os.environ.get("OMP_WAIT_POLICY"):
        lines.append(
            f"the proxy ran with OMP_WAIT_POLICY={wait}, this run with "
            f"{os.environ.get('OMP_WAIT_POLICY')}: spinning threads cost CPU time, so the "
            "projection assumes the same setting"
        )
    kept, here = proxy.get("freed_memory_kept"), freed_memory_kept()
    if kept is not None and kept != here:
        lines.append(
            f"the proxy {'kept' if kept else 'did not keep'} freed memory, this run "
            f"{'does' if here else 'does not'} ({ENV_KEEP}): evaluation that re-faults its "
            "memory costs more CPU time, so the projection assumes the same setting"
        )
    return lines


class FinalRun:
    """One trial's final training (see the module docstring)."""

    def __init__(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        context: RunContext,
        options: FinalOptions,
        *,
        run_dir: Path | None = None,
        stream: TextIO | None = None,
    ) -> None:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            raise BadInputError(
                f"trial {trial.number} is {trial.state.name}; only a COMPLETE trial can be trained"
            )
        self.study, self.trial, self.opts = study, trial, options
        self.context, self.config = context, context.config
        self.rec = TrialRecord.of(trial)
        if not self.rec.get(TrialAttrs.arch_spec):
            raise BadInputError(f"trial {trial.number} has no stored architecture")
        self.stream = stream or sys.stderr
        base = run_dir or Path("runs") / study.study_name
        self.ckpt = CheckpointDir(
            base / "final" / f"trial-{trial.number}", study=study.study_name, trial=trial.number
        )
        self._mark = 0  # log measurements up to here are not redone after an interrupt
        self._saved = 0  # log measurements up to here are in the checkpoint on disk

    # -- what it will cost ------------------------------------------------------------------
    @property
    def data(self) -> DataSplits:
        return self.context.data

    @property
    def seed(self) -> int:
        """The trial's training seed, as in the search."""
        return self.context.seed + self.trial.number

    @property
    def choice(self) -> CompressionChoice:
        """How the trial was compressed (its precision, teacher, quantization)."""
        return CompressionChoice.of_record(self.rec)

    def project(
        self,
        *,
        restarts: int = 0,
        restart_build_kwh: float | None = None,
        lost_kwh: float = 0.0,
        lost_s: float = 0.0,
    ) -> Projection:
        """The full run's energy and kgCO2e from the proxy's measured energy per sample-epoch,
        with the range measured by ``benchmarks/projection.py`` on this hardware class.
        ``restarts``/``lost_*``: what a resumed run already knows (nas.final._project)."""
        rec, c = self.rec, self.config
        phases = rec.phases
        kwh = {p.name: p.energy_kwh for p in phases}
        secs = {p.name: p.duration_s or 0.0 for p in phases}
        train_samples = int(rec.get(TrialAttrs.train_samples) or 0)
        ratio = finite(rec.get(Compression.prune_ratio)) or 0.0
        proxy_train = c.data.train_size or max(train_samples // max(c.train.epochs, 1), 1)
        finetune = c.compression.finetune_epochs * proxy_train if ratio > 0 else None
        d = self.data
        projection = project_energy(
            kwh,
            secs,
            proxy_train_samples=train_samples,
            proxy_val_size=c.data.val_size,
            proxy_test_size=c.data.test_size or d.test_split_size,
            pruned_finetune_samples=finetune,
            train_size=len(d.train),
            epochs=self.opts.epochs,
            val_size=len(d.val),
            test_size=len(d.test),
            epoch_kwh=rec.json(TrialAttrs.epoch_energy_kwh) or (),
            epoch_s=rec.json(TrialAttrs.epoch_duration_s) or (),
            restarts=restarts,
            restart_build_kwh=restart_build_kwh,
            lost_kwh=lost_kwh,
            lost_s=lost_s,
            model_build_s=finite(rec.get(TrialAttrs.model_build_s)),
        )
        error_pct, basis = spread_for(self._hardware_class(), resumed=restarts > 0 or lost_kwh > 0)
        return projection.with_range(error_pct, basis).with_carbon(self.context.intensity)

    def _hardware_class(self) -> dict[str, Any]:
        """The proxy's hardware class (the final run is projected on the same)."""
        prov = self.rec.json(Provenance.provenance) or {}
        threads = self.rec.get(Provenance.threads)
        return hardware_class(
            cpu_model=str(prov.get("cpu_model") or ""),
            meter=str(self.rec.get(TrialAttrs.energy_source) or ""),
            device=str(self.rec.get(TrialAttrs.device) or "cpu"),
            threads=int(threads) if threads is not None else None,
        )

    def store_projection(self, projection: Projection) -> None:
        """Keep the projection with the trial until (unless) a full-budget run replaces it."""
        if TrialRecord.of(self.trial, self.study).has_final:
            return
        self.study.set_user_attr(
            final_key(self.trial.number), json.dumps(self._projection_record(projection))
        )

    def _projection_record(self, projection: Projection) -> dict[str, Any]:
        return {
            Final.record_version: RECORD_VERSION,
            Final.status: "projected",
            Final.epochs_planned: self.opts.epochs,
            Final.train_size: len(self.data.train),
            Final.projected_energy_kwh: projection.energy_kwh,
            Final.projected_kgco2e: projection.kgco2e,
            Final.projection_method: projection.method,
            **_range_fields(projection),
        }

    # -- the run ------------------------------------------------------------------------------
    def run(self, projection: Projection) -> dict[str, Any]:
        """Train (or resume) to the end; store and return the final record."""
        meter, intensity = self.context.meter, self.context.intensity
        if meter is None:
            raise EconasError("this run context measures nothing: it can project, not train")
        opts, settings = self.opts, self.opts.settings()
        ckpt = self.ckpt.load(settings) or Checkpoint(
            study=self.study.study_name, trial=self.trial.number, settings=settings
        )
        if ckpt.complete:
            stored = self.study.user_attrs.get(final_key(self.trial.number))
            if stored:
                self._line(
                    f"trial {self.trial.number}: already trained ({self.ckpt.file}); nothing to do"
                )
                return json.loads(stored)
        log = PhaseLog(meter)
        for m in ckpt.measurements():
            log.add(m)
        self._saved = len(log.measurements)
        # a run killed mid-epoch: its energy was spent, the work is redone. progress.json stays
        # until this run's first progress write (which carries it on) or checkpoint holds it.
        lost = self.ckpt.take_progress(ckpt.epoch)
        if lost is not None:
            log.add(lost)
            self._line(
                f"recorded {lost.energy_kwh:.3e} kWh an interrupted run spent since the checkpoint as lost"
            )
        self._mark = len(log.measurements)  # what the checkpoint on disk accounts for
        resumed_from = ckpt.epoch
        if resumed_from:
            ckpt.resumed_from.append(resumed_from)
            self._line(
                f"trial {self.trial.number}: resuming at epoch {resumed_from + 1}/{opts.epochs}"
            )
        if log.measurements:  # a restart: its rebuild, warm-up and lost work are projected too
            projection = self._reproject(ckpt, log)
        device = self.context.device
        self.check_memory()
        proxy_threads = self.rec.get(Provenance.threads)
        if proxy_threads is not None and proxy_threads != torch.get_num_threads():
            if not os.environ.get("OMP_NUM_THREADS") and device.type == "cpu":
                torch.set_num_threads(int(proxy_threads))  # what the projection assumes
                self._line(
                    f"training with the proxy's {plural(proxy_threads, 'thread')}, as projected"
                )
            else:
                self._line(
                    f"the proxy trained with {plural(proxy_threads, 'thread')}, this run uses "
                    f"{torch.get_num_threads()} (OMP_NUM_THREADS): the projection assumes the "
                    "same setting"
                )
        for line in setting_differences(self.rec.json(Provenance.provenance) or {}):
            self._line(line)
        with log.phase("build"):
            data = self.data
            if device.type == "cuda":  # in-memory tensors: pinned pages copy to the GPU async
                data.train.tensors = tuple(t.pin_memory() for t in data.train.tensors)
            model, plan = self._build()
            trainer = Trainer(model, data.train, plan)
            if ckpt.trainer is not None:
                trainer.load_state_dict(ckpt.trainer)
        self._mark = len(log.measurements)  # build is not redone after an interrupt
        val_acc = float("nan")
        t_start = time.perf_counter()
        try:
            while trainer.epoch < opts.epochs:
                epoch = trainer.epoch
                with log.phase("train"):
                    loss = trainer.run_epoch(on_batch=self._ticker(log, epoch))
                with log.phase("eval"):
                    val_acc = evaluate(model, data.val, device=device)
                ckpt.epoch, ckpt.trainer = trainer.epoch, trainer.state_dict()
                with log.phase("checkpoint"):
                    ckpt.ledger = [measurement_to_json(m) for m in log.merged()]
                    self.ckpt.save(ckpt)
                    self._saved = len(log.measurements)
                    self.ckpt.clear_progress()
                self._mark = len(log.measurements)
                kwh = log.energy_kwh()
                kg = self._kg(intensity, kwh, log)
                done = trainer.epoch - resumed_from
                eta = (time.perf_counter() - t_start) / done * (opts.epochs - trainer.epoch)
                kind = energy_kind(m.kind for m in log.merged())
                self._line(
                    f"trial {self.trial.number} epoch {trainer.epoch}/{opts.epochs}  loss {loss:.4f}  "
                    f"val acc {val_acc:.4f}  {kwh:.3e} kWh  {kg:.3e} kgCO2e so far ({kind})  "
                    f"ETA {int(eta) // 60}:{int(eta) % 60:02d}"
                )
                if (
                    opts.max_kgco2e is not None
                    and kg >= opts.max_kgco2e
                    and trainer.epoch < opts.epochs
                ):
                    raise BudgetStop(
                        f"trial {self.trial.number}: stopped at epoch {trainer.epoch}/{opts.epochs}: "
                        f"{kg:.3e} kgCO2e reached the budget of {opts.max_kgco2e:.3e}; "
                        f"checkpoint kept in {self.ckpt.path}"
                    )
        except KeyboardInterrupt:
            self._interrupted(log, ckpt)
            raise
        except BudgetStop:  # stopped at a checkpoint: what it spent is kept with the trial
            kwh = log.energy_kwh()
            partial = self._projection_record(projection) | {
                Final.status: f"stopped at the carbon budget after epoch {trainer.epoch}",
                Final.epochs: trainer.epoch,
                Final.energy_kwh: kwh,
                Final.kgco2e: self._kg(intensity, kwh, log),
                Final.phases: json.dumps({m.name: m.energy_kwh for m in log.merged()}),
            }
            self.study.set_user_attr(final_key(self.trial.number), json.dumps(partial))
            raise
        return self._finish(log, ckpt, model, device, intensity, projection, val_acc, resumed_from)

    # -- the parts -----------------------------------------------------------------------------
    def plan(self) -> TrainingPlan:
        """The config's training recipe at the final budget (:func:`final_plan`)."""
        return final_plan(self.context, self.opts, seed=self.seed)

    def _build(self) -> tuple[torch.nn.Module, TrainingPlan]:
        """The trial's (pruned) network, fresh; its plan (its precision, distilled or not):
        the deploy recipe's :func:`~nas.compression.scratch_model`, as ``econas ablate
        --budget final`` builds its rows."""
        torch.manual_seed(self.seed)
        rec = self.rec
        return scratch_model(
            ArchSpec.from_json(rec.get(TrialAttrs.arch_spec)),
            rec.json(Compression.pruned_structure),
            self.choice,
            self.plan(),
            teacher=self._teacher(),
        )

    def _network(self) -> torch.nn.Module:
        """The trial's network as it deployed it (pruned structure applied), untrained."""
        spec = ArchSpec.from_json(self.rec.get(TrialAttrs.arch_spec))
        return pruned_network(spec, self.rec.json(Compression.pruned_structure))

    def check_memory(self) -> None:
        """BadInputError (exit 2) when the data or training the network at the final batch
        size would not fit the memory budget (nas.memory), before anything is allocated."""
        from nas.memory import check_training, estimate_training

        data = self.data  # DataError first when the data itself does not fit
        shape = (data.in_channels, data.image_size, data.image_size)
        estimate = estimate_training(
            self._network,
            input_shape=shape,
            batch_size=min(self.opts.batch_size, len(data.train)),
            optimizer=self.config.train.optimizer,
        )
        try:
            check_training(
                estimate,
                device=self.context.device,
                memory_budget_gb=self.config.hardware.memory_budget_gb,
                held_bytes=data.resident_bytes,
                what=f"trial {self.trial.number}'s model",
            )
        except TrialFailure as exc:
            raise BadInputError(
                f"{exc}; lower final.batch_size or --train-size, or raise hardware.memory_budget_gb"
            ) from None

    def _teacher(self) -> torch.nn.Module | None:
        rec = self.rec
        source = rec.get(Compression.teacher)
        if not rec.get(Compression.distill) or not source:
            return None
        if str(source).startswith("trial:"):
            from nas.trial_model import get_trial, load_trial_model

            teacher = get_trial(self.study, int(str(source).split(":", 1)[1]))
            self._line(f"distilling from trial {teacher.number} (its final weights if trained)")
            return load_trial_model(self.study, teacher)[0]
        from nas.compression import load_teacher_dir

        d = self.data
        return load_teacher_dir(
            source,
            num_classes=d.num_classes,
            input_shape=(d.in_channels, d.image_size, d.image_size),
        )

    def _ticker(self, log: PhaseLog, epoch: int) -> Callable[[int], None]:
        """After each batch: every CHUNK_S, to progress.json, the energy spent since the
        checkpoint on disk: what earlier killed runs left there (taken as ``lost`` at the
        start), this run's build, and the epoch's energy so far."""
        meter = log.meter
        window = "final:chunk"
        meter.begin_window(window, sync=False, restart=True)
        state: dict[str, Any] = {"t": time.perf_counter(), "spent": None}

        def tick(samples: int) -> None:
            if time.perf_counter() - state["t"] < CHUNK_S and samples < len(self.data.train):
                return
            m = meter.end_window(window)
            if samples < len(self.data.train):
                meter.begin_window(window, sync=False)
            state["spent"] = (
                m if state["spent"] is None else add_measurements(state["spent"], m, "lost")
            )
            state["t"] = time.perf_counter()
            unsaved = state["spent"]
            for earlier in reversed(log.measurements[self._saved :]):
                unsaved = add_measurements(earlier, unsaved, "lost")
            self.ckpt.write_progress(epoch, unsaved)

        return tick

    def _reproject(self, ckpt: Checkpoint, log: PhaseLog) -> Projection:
        """The projection of a restarted run: the proxy's, plus a rebuild and a warm-up per
        earlier run and the energy measured as lost (what the checkpoint and progress hold)."""
        lost = [m for m in log.measurements if m.name == "lost"]
        restarts = max(len(ckpt.resumed_from), 1)
        builds = [m.energy_kwh for m in log.measurements if m.name == "build"]
        projection = self.project(
            restarts=restarts,
            restart_build_kwh=sum(builds) / restarts if builds else None,
            lost_kwh=sum(m.energy_kwh for m in lost),
            lost_s=sum(m.duration_s for m in lost),
        )
        self._line(
            f"trial {self.trial.number}: projected again for the resumed run: "
            f"{projection.energy_kwh:.3e} kWh ({projection.range_text()})"
        )
        return projection

    def _interrupted(self, log: PhaseLog, ckpt: Checkpoint) -> None:
        """Ctrl-C: the unfinished epoch's work is lost (the checkpoint holds the last epoch
        boundary); its energy is kept in the checkpoint as phase ``lost``."""
        if "final:chunk" in log.meter.open_windows:
            log.meter.end_window("final:chunk", cancel=True)
        for i in range(self._mark, len(log.measurements)):  # since the last checkpoint
            m = log.measurements[i]
            if m.name in ("train", "eval"):
                log.measurements[i] = dataclasses.replace(m, name="lost")
        # the model, optimizer and RNG of the last epoch boundary (the live ones moved on)
        saved = self.ckpt.load(ckpt.settings)
        ckpt.trainer = saved.trainer if saved is not None else None
        ckpt.epoch = saved.epoch if saved is not None else 0
        ckpt.ledger = [measurement_to_json(m) for m in log.merged()]
        self.ckpt.save(ckpt)
        self.ckpt.clear_progress()
        self._line(
            f"interrupted: checkpoint {self.ckpt.file} keeps epoch {ckpt.epoch} and the energy spent"
        )

    def _finish(
        self,
        log: PhaseLog,
        ckpt: Checkpoint,
        model: torch.nn.Module,
        device: torch.device,
        intensity: IntensitySource,
        projection: Projection,
        val_acc: float,
        resumed_from: int,
    ) -> dict[str, Any]:
        d = self.data
        deployed = deploy(  # the pruned structure was trained from scratch: quantize only
            model,
            self.choice,
            data=d.train,
            device=device,
            seed=self.seed,
            phase=log.phase,
            pruned_before_training=True,
        )
        with log.phase("test"):
            test_acc = evaluate(deployed.model, d.test, device=deployed.device)
        with log.phase("upload"):
            artifact_id = self._upload(deployed.model)
        record: dict[str, Any] = {}
        with log.phase("store"):
            record = self._record(
                log, intensity, projection, val_acc, test_acc, artifact_id, resumed_from
            )
            self.study.set_user_attr(final_key(self.trial.number), json.dumps(record))
        record = self._record(
            log, intensity, projection, val_acc, test_acc, artifact_id, resumed_from
        )
        self.study.set_user_attr(final_key(self.trial.number), json.dumps(record))
        ckpt.complete = True
        ckpt.ledger = [measurement_to_json(m) for m in log.merged()]
        self.ckpt.save(ckpt)
        return record

    def _record(
        self,
        log: PhaseLog,
        intensity: IntensitySource,
        projection: Projection,
        val_acc: float,
        test_acc: float,
        artifact_id: str,
        resumed_from: int,
    ) -> dict[str, Any]:
        from nas.hardware import hardware_provenance

        phases = log.merged()
        kwh = log.energy_kwh()
        ci = self._ci(intensity, log)
        measured = [m for m in phases if m.details.get("carried_over") is not True] or phases
        error = (kwh - projection.energy_kwh) / projection.energy_kwh * 100.0
        d = self.data
        return {
            Final.record_version: RECORD_VERSION,
            Final.status: "complete",
            Final.epochs: self.opts.epochs,
            Final.epochs_planned: self.opts.epochs,
            Final.train_size: len(d.train),
            Final.test_size: len(d.test),
            Final.data_seed: self.context.seed,
            Final.test_indices_sha256: indices_digest(d.test_indices),
            Final.batch_size: self.opts.batch_size,
            Final.lr: self.opts.lr,
            Final.val_accuracy: val_acc,
            Final.test_accuracy: test_acc,
            Final.energy_kwh: kwh,
            Final.kgco2e: kgco2e(kwh, ci.intensity_g_per_kwh),
            Final.lost_energy_kwh: sum(m.energy_kwh for m in phases if m.name == "lost"),
            Final.energy_kind: energy_kind(m.kind for m in phases),
            Final.energy_source: measured[0].source,
            Final.hardware: measured[0].hardware,
            Final.intensity_g_per_kwh: ci.intensity_g_per_kwh,
            Final.intensity_source: ci.source,
            Final.phases: json.dumps({m.name: m.energy_kwh for m in phases}),
            Final.duration_s: sum(m.duration_s for m in phases),
            Final.projected_energy_kwh: projection.energy_kwh,
            Final.projected_kgco2e: projection.kgco2e,
            Final.projection_method: projection.method,
            **_range_fields(projection),
            Final.projection_error_pct: error,
            Final.resumed_from_epoch: resumed_from,
            Final.weights_artifact_id: artifact_id,
            Final.mean: json.dumps(list(d.mean)),
            Final.std: json.dumps(list(d.std)),
            Final.provenance: json.dumps(
                hardware_provenance(str(self.opts.device)), sort_keys=True, default=str
            ),
            Final.finished_at: datetime.now(UTC).isoformat(),
        }

    def _upload(self, model: torch.nn.Module) -> str:
        from nas.trial_model import artifact_store_for, upload_weights

        store = artifact_store_for(self.study)
        name = f"trial-{self.trial.number}-final-state_dict"
        return upload_weights(store, model, name, self.study)  # the trial is finished

    def _ci(self, intensity: IntensitySource, log: PhaseLog) -> Any:
        return intensity.intensity_over(log.started_at, datetime.now(UTC))

    def _kg(self, intensity: IntensitySource, kwh: float, log: PhaseLog) -> float:
        return kgco2e(kwh, self._ci(intensity, log).intensity_g_per_kwh)

    def _line(self, text: str) -> None:
        print(f"econas: {text}", file=self.stream, flush=True)


def _range_fields(projection: Projection) -> dict[str, Any]:
    return {
        Final.projected_energy_kwh_low: projection.energy_kwh_low,
        Final.projected_energy_kwh_high: projection.energy_kwh_high,
        Final.projection_range_basis: projection.range_basis,
        Final.projected_phases: json.dumps(projection.phases_kwh),
    }
