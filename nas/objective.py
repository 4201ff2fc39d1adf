"""The trial objective: sample -> build -> cost -> train in a meter window -> evaluate -> carbon.

Everything a trial measured is stored as flat user attrs whose names carry their units, so
``pareto``, ``report``, ``export`` and optuna-dashboard read it from the storage alone.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import torch

from nas.carbon import IntensitySource, kgco2e
from nas.config import Config
from nas.cost import analyze_cost
from nas.data import DataSplits
from nas.energy import Measurement, Meter
from nas.errors import InvalidArchError, TrialFailure
from nas.train import cross_entropy_loss, evaluate, train_model
from search_spaces import SearchSpace, create_search_space

log = logging.getLogger(__name__)

WEIGHTS_ATTR = "weights_artifact_id"


@dataclass
class TrialOutcome:
    """What one trial measured; ``values`` follow the study's objective order."""

    values: list[float]
    attrs: dict[str, Any] = field(default_factory=dict)


class Objective:
    """Callable passed to ``study.optimize``; one instance per study run."""

    def __init__(
        self,
        *,
        config: Config,
        data: DataSplits,
        device: torch.device,
        meter: Meter,
        intensity: IntensitySource,
        artifact_store: optuna.artifacts.FileSystemArtifactStore | None,
    ) -> None:
        self.config = config
        self.data = data
        self.device = device
        self.meter = meter
        self.intensity = intensity
        self.artifact_store = artifact_store
        self.spaces: dict[str, SearchSpace] = {
            name: create_search_space(name, **config.search.options.get(name, {}))
            for name in config.search.spaces
        }
        self.input_shape = (data.in_channels, data.image_size, data.image_size)
        self.before_train: list[Callable[[optuna.Trial], None]] = []

    # -- sampling -------------------------------------------------------------------------
    def sample(self, trial: optuna.Trial) -> tuple[SearchSpace, Any]:
        names = list(self.spaces)
        name = trial.suggest_categorical("space", names) if len(names) > 1 else names[0]
        space = self.spaces[name]
        spec = space.sample(
            trial,
            in_channels=self.data.in_channels,
            num_classes=self.data.num_classes,
            image_size=self.data.image_size,
            prefix=f"{name}.",
        )
        trial.set_user_attr("family", spec.family)
        trial.set_user_attr("arch", spec.encode())
        trial.set_user_attr("arch_spec", spec.to_json())
        return space, spec

    # -- the objective ----------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> list[float]:
        try:
            outcome = self.run(trial)
        except TrialFailure as exc:
            trial.set_user_attr("fail_reason", exc.reason)
            trial.set_user_attr("fail_message", str(exc)[:500])
            raise
        except Exception as exc:  # recorded; the study goes on (search catches it)
            log.warning("trial %d failed: %r", trial.number, exc, exc_info=True)
            trial.set_user_attr("fail_reason", f"error:{type(exc).__name__}")
            trial.set_user_attr("fail_message", str(exc)[:500])
            raise
        for key, value in outcome.attrs.items():
            trial.set_user_attr(key, value)
        return outcome.values

    def run(self, trial: optuna.Trial) -> TrialOutcome:
        cfg = self.config
        space, spec = self.sample(trial)
        try:
            space.validate(spec)
        except InvalidArchError as exc:
            raise TrialFailure("invalid_arch", f"rejected before training: {exc}") from exc
        for hook in self.before_train:
            hook(trial)

        started = datetime.now(UTC)
        t0 = time.perf_counter()
        torch.manual_seed(cfg.study.seed + trial.number)
        model = space.build(spec)
        cost = analyze_cost(model, (1, *self.input_shape))
        attrs: dict[str, Any] = {
            "params": cost.params,
            "flops": cost.flops,
            "device": str(self.device),
            "started_at": started.isoformat(),
        }
        phases: list[Measurement] = []

        def record(m: Measurement) -> None:
            phases.append(m)
            attrs.update(m.to_attrs(prefix=f"{m.name}_"))

        self.meter.begin_window("train")
        try:
            result = train_model(
                model,
                self.data.train,
                epochs=cfg.train.epochs,
                batch_size=cfg.data.batch_size,
                lr=cfg.train.lr,
                weight_decay=cfg.train.weight_decay,
                optimizer=cfg.train.optimizer,
                loss_fn=cross_entropy_loss(cfg.train.label_smoothing),
                device=self.device,
                seed=cfg.study.seed + trial.number,
            )
        finally:
            record(self.meter.end_window("train"))
            attrs["energy_kwh_train"] = phases[-1].energy_kwh
        attrs.update(train_loss=result.final_loss, epochs=result.epochs, train_samples=result.samples)

        self.meter.begin_window("eval")
        try:
            accuracy = evaluate(model, self.data.val, device=self.device)
        finally:
            record(self.meter.end_window("eval"))
        energy_kwh = sum(m.energy_kwh for m in phases)
        # The test split is for final reporting only; never an objective.
        attrs["test_accuracy"] = evaluate(model, self.data.test, device=self.device)

        latency_ms = float("nan")
        if cfg.eval.measure_inference:
            latency_ms = self._measure_inference(model, attrs)
        finished = datetime.now(UTC)
        ci = self.intensity.intensity_over(started, finished)
        trial_kg = kgco2e(energy_kwh, ci.intensity_g_per_kwh)
        search_kwh = energy_kwh + float(attrs.get("inference_energy_kwh_window", 0.0))
        attrs.update(
            accuracy=accuracy,
            energy_kwh=energy_kwh,
            energy_j=energy_kwh * 3.6e6,
            kgco2e=trial_kg,
            energy_source=phases[0].source,
            energy_kind=_combined_kind(phases),
            hardware=phases[0].hardware,
            intensity_g_per_kwh=ci.intensity_g_per_kwh,
            intensity_source=ci.source,
            carbon_region=ci.region or "",
            search_energy_kwh=search_kwh,
            search_kgco2e=kgco2e(search_kwh, ci.intensity_g_per_kwh),
            duration_s=time.perf_counter() - t0,
            finished_at=finished.isoformat(),
        )
        if self.artifact_store is not None:
            attrs[WEIGHTS_ATTR] = self._save_weights(trial, model)
        metrics = {
            "accuracy": accuracy,
            "kgco2e": trial_kg,
            "energy_kwh": energy_kwh,
            "latency_ms": latency_ms,
            "params": float(cost.params),
        }
        return TrialOutcome(values=[metrics[o] for o in cfg.study.objectives], attrs=attrs)

    def _measure_inference(self, model: torch.nn.Module, attrs: dict[str, Any]) -> float:
        from nas.inference import measure_inference

        inf = measure_inference(
            model,
            input_shape=self.input_shape,
            batch_size=self.config.eval.inference_batch_size,
            device=str(self.device),
            meter=self.meter,
            min_duration_s=self.config.eval.inference_min_duration_s,
        )
        attrs.update(inf.to_attrs(prefix="inference_"))
        attrs["inference_energy_kwh_window"] = inf.measurement.energy_kwh
        return inf.latency_ms

    def _save_weights(self, trial: optuna.Trial, model: torch.nn.Module) -> str:
        assert self.artifact_store is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"trial-{trial.number}-state_dict.pt"
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(state, path)
            return optuna.artifacts.upload_artifact(
                artifact_store=self.artifact_store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )


def _combined_kind(phases: list[Measurement]) -> str:
    return "measured" if all(m.kind == "measured" for m in phases) else "estimated"
