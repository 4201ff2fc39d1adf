"""The trial objective: sample -> build -> cost -> train in a meter window -> evaluate -> carbon.

Everything a trial measured is stored as flat user attrs whose names carry their units, so
``pareto``, ``report``, ``export`` and optuna-dashboard read it from the storage alone.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
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
from nas.plugins import TrialContext, TrialPlugin, make_trial_plugins
from nas.train import cross_entropy_loss, evaluate, train_model
from search_spaces import SearchSpace, create_search_space

log = logging.getLogger(__name__)

WEIGHTS_ATTR = "weights_artifact_id"


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
        self.plugins: list[TrialPlugin] = make_trial_plugins(self)

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
        ctx: TrialContext | None = None
        try:
            ctx = self.prepare(trial)
            values = self.run(ctx)
        except optuna.TrialPruned as exc:
            trial.set_user_attr("stop_reason", str(exc)[:200] or "pruned")
            raise
        except TrialFailure as exc:
            trial.set_user_attr("fail_reason", exc.reason)
            trial.set_user_attr("fail_message", str(exc)[:500])
            raise
        except Exception as exc:  # recorded; the study goes on (search catches it)
            log.warning("trial %d failed: %r", trial.number, exc, exc_info=True)
            trial.set_user_attr("fail_reason", f"error:{type(exc).__name__}")
            trial.set_user_attr("fail_message", str(exc)[:500])
            raise
        finally:
            # Failed and pruned trials keep what they measured: the search paid for it.
            if ctx is not None:
                self._store_attrs(ctx)
        for plugin in self.plugins:
            plugin.on_complete(ctx, values)
        return values

    def prepare(self, trial: optuna.Trial) -> TrialContext:
        """Sample the trial (architecture, then the plugins' parts) and build its model."""
        cfg = self.config
        space, spec = self.sample(trial)
        try:
            space.validate(spec)
        except InvalidArchError as exc:
            raise TrialFailure("invalid_arch", f"rejected before training: {exc}") from exc
        torch.manual_seed(cfg.study.seed + trial.number)
        model = space.build(spec)
        ctx = TrialContext(
            trial=trial,
            config=cfg,
            space=space,
            spec=spec,
            model=model,
            device=self.device,
            data=self.data,
            meter=self.meter,
            intensity=self.intensity,
            input_shape=self.input_shape,
            started=datetime.now(UTC),
            objective=self,
        )
        ctx.train_kwargs = dict(
            epochs=cfg.train.epochs,
            batch_size=cfg.data.batch_size,
            lr=cfg.train.lr,
            weight_decay=cfg.train.weight_decay,
            optimizer=cfg.train.optimizer,
            loss_fn=cross_entropy_loss(cfg.train.label_smoothing),
            device=self.device,
            seed=cfg.study.seed + trial.number,
        )
        for plugin in self.plugins:
            plugin.sample(ctx)
        return ctx

    def run(self, ctx: TrialContext) -> list[float]:
        cfg = self.config
        trial = ctx.trial
        for hook in self.before_train:
            hook(trial)
        for plugin in self.plugins:
            reused = plugin.before_train(ctx)
            if reused is not None:
                return reused
        # The trial's clock starts after any wait for a green window.
        ctx.started = datetime.now(UTC)
        t0 = time.perf_counter()
        cost = analyze_cost(ctx.model, (1, *self.input_shape))
        attrs = ctx.attrs
        attrs.update(
            params=cost.params,
            flops=cost.flops,
            device=str(self.device),
            started_at=ctx.started.isoformat(),
        )

        self.meter.begin_window("train")
        try:
            ctx.train_result = None
            for plugin in self.plugins:
                ctx.train_result = plugin.train(ctx)
                if ctx.train_result is not None:
                    break
            if ctx.train_result is None:
                callbacks = list(ctx.epoch_callbacks)

                def on_epoch_end(epoch: int, loss: float) -> None:
                    for cb in callbacks:
                        cb(epoch, loss)

                ctx.train_result = train_model(
                    ctx.model, self.data.train, on_epoch_end=on_epoch_end, **ctx.train_kwargs
                )
        finally:
            ctx.record(self.meter.end_window("train"))
            attrs["energy_kwh_train"] = ctx.phases[-1].energy_kwh
        result = ctx.train_result
        attrs.update(
            train_loss=result.final_loss, epochs=result.epochs, train_samples=result.samples
        )

        for plugin in self.plugins:
            plugin.after_train(ctx)
        model = ctx.eval_model if ctx.eval_model is not None else ctx.model
        device = ctx.eval_device or self.device
        attrs["cost_of"] = "trained_model"
        if model is not ctx.model:  # e.g. pruned: figures of what is deployed
            try:
                cost = analyze_cost(model, (1, *self.input_shape))
                attrs.update(params=cost.params, flops=cost.flops, cost_of="deployed_model")
            except Exception:  # noqa: BLE001 - e.g. quantized kernels fvcore cannot trace
                log.debug("cost of the deployed model not traceable; keeping the trained one")

        self.meter.begin_window("eval")
        try:
            accuracy = evaluate(model, self.data.val, device=device)
        finally:
            ctx.record(self.meter.end_window("eval"))
        # The test split is for final reporting only; never an objective.
        attrs["test_accuracy"] = evaluate(model, self.data.test, device=device)

        latency_ms = float("nan")
        if cfg.eval.measure_inference:
            latency_ms = self._measure_inference(model, attrs, device)
        finished = datetime.now(UTC)
        energy_kwh = ctx.energy_kwh
        ci = ctx.intensity.intensity_over(ctx.started, finished)
        trial_kg = kgco2e(energy_kwh, ci.intensity_g_per_kwh)
        search_kwh = energy_kwh + float(attrs.get("inference_energy_kwh_window", 0.0))
        attrs.update(
            accuracy=accuracy,
            energy_kwh=energy_kwh,
            energy_j=energy_kwh * 3.6e6,
            kgco2e=trial_kg,
            energy_source=ctx.phases[0].source,
            energy_kind=_combined_kind(ctx.phases),
            hardware=ctx.phases[0].hardware,
            intensity_g_per_kwh=ci.intensity_g_per_kwh,
            intensity_source=ci.source,
            carbon_region=ci.region or "",
            search_energy_kwh=search_kwh,
            search_kgco2e=kgco2e(search_kwh, ci.intensity_g_per_kwh),
            duration_s=time.perf_counter() - t0,
            finished_at=finished.isoformat(),
        )
        ctx.metrics.update(
            accuracy=accuracy,
            kgco2e=trial_kg,
            energy_kwh=energy_kwh,
            latency_ms=latency_ms,
            params=float(cost.params),
        )
        for plugin in self.plugins:
            plugin.after_eval(ctx)
        if self.artifact_store is not None:
            attrs[WEIGHTS_ATTR] = self._save_weights(trial, model)
        return [float(ctx.metrics[o]) for o in cfg.study.objectives]

    def _store_attrs(self, ctx: TrialContext) -> None:
        attrs = ctx.attrs
        if ctx.phases and "search_energy_kwh" not in attrs:  # stopped before the end
            kwh = ctx.energy_kwh + float(attrs.get("inference_energy_kwh_window", 0.0))
            attrs["search_energy_kwh"] = kwh
            attrs.setdefault("energy_source", ctx.phases[0].source)
            attrs.setdefault("energy_kind", _combined_kind(ctx.phases))
            try:
                ci = ctx.intensity.intensity_over(ctx.started, datetime.now(UTC))
                attrs["search_kgco2e"] = kgco2e(kwh, ci.intensity_g_per_kwh)
                attrs.setdefault("intensity_g_per_kwh", ci.intensity_g_per_kwh)
            except Exception:  # noqa: BLE001 - never lose the energy over a carbon lookup
                log.debug("no intensity for stopped trial %d", ctx.trial.number, exc_info=True)
        for key, value in attrs.items():
            ctx.trial.set_user_attr(key, value)

    def _measure_inference(
        self, model: torch.nn.Module, attrs: dict[str, Any], device: torch.device
    ) -> float:
        from nas.inference import measure_inference

        inf = measure_inference(
            model,
            input_shape=self.input_shape,
            batch_size=self.config.eval.inference_batch_size,
            device=str(device),
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
