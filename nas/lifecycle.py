"""Lifecycle carbon (plugin, see ``nas.plugins``): search share + training + inference + retraining.

``[lifecycle]`` section::

    [lifecycle]
    requests_per_day = 1_000_000   # predictions served per day (one request = one sample)
    days_deployed = 365
    batch_size = 1                 # how requests are batched when served
    target_device = "cpu"          # cpu | cuda | onnx-cpu (ONNX Runtime on the CPU: edge stand-in)
    retrain_every_days = 90        # optional: retrain (cost: the trial's training) this often
    search_share = "planned"       # planned | spent | none: the search's cost charged to the model
    models_deployed = 1            # models the search's cost is shared between
    # region = "FRA" | intensity_g_per_kwh = 50: the deployment grid (default: the trial's)

Per trial, after evaluation: the inference energy per sample is **measured on the target**
(the trial's own inference measurement when it already ran on that device at that batch
size, else a new window with :func:`nas.inference.measure_inference`, or ONNX Runtime via
:mod:`nas.onnx_inference` for ``onnx-cpu``; that extra measurement counts in the trial's
``search_energy_kwh``). Then::

    lifecycle_kgco2e = search share + kgco2e (training) + retrainings x kgco2e
                       + per-sample kWh x requests_per_day x days_deployed x g/kWh / 1000

``search_share``: ``planned`` = mean ``search_kgco2e`` of the study's ended trials x
``study.trials`` / ``models_deployed`` (about the same for every trial, so it does not bend
the front); ``spent`` = what the search has emitted so far / ``models_deployed``; ``none``.

Objective ``lifecycle_kgco2e`` (minimise). Without ``requests_per_day`` (no [lifecycle]
section) the plugin does nothing and stores no attrs; asking for the objective without it
is a config error.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from nas.config import Config
from nas.errors import ConfigError
from nas.plugins import TrialContext, TrialPlugin

log = logging.getLogger(__name__)

TARGETS = ("cpu", "cuda", "onnx-cpu")
SEARCH_SHARES = ("planned", "spent", "none")
OBJECTIVE = "lifecycle_kgco2e"


@dataclass(frozen=True)
class LifecycleSection:
    requests_per_day: float | None = None  # None: no lifecycle projection
    days_deployed: float = 365.0
    batch_size: int = 1
    target_device: str = "cpu"
    retrain_every_days: float | None = None
    search_share: str = "planned"
    models_deployed: int = 1
    region: str | None = None
    intensity_g_per_kwh: float | None = None

    @property
    def active(self) -> bool:
        return self.requests_per_day is not None

    def check(self) -> None:
        if self.requests_per_day is not None and not (
            math.isfinite(self.requests_per_day) and self.requests_per_day >= 0
        ):
            raise ConfigError("lifecycle.requests_per_day must be a number >= 0")
        if not (math.isfinite(self.days_deployed) and self.days_deployed > 0):
            raise ConfigError("lifecycle.days_deployed must be > 0")
        if self.batch_size < 1 or self.models_deployed < 1:
            raise ConfigError("lifecycle.batch_size and lifecycle.models_deployed must be >= 1")
        if self.target_device not in TARGETS:
            raise ConfigError(
                f"lifecycle.target_device {self.target_device!r} is unknown; use {list(TARGETS)}"
            )
        if self.retrain_every_days is not None and not self.retrain_every_days > 0:
            raise ConfigError("lifecycle.retrain_every_days must be > 0")
        if self.search_share not in SEARCH_SHARES:
            raise ConfigError(
                f"lifecycle.search_share {self.search_share!r} is unknown; use {list(SEARCH_SHARES)}"
            )
        if self.region is not None and self.intensity_g_per_kwh is not None:
            raise ConfigError("lifecycle: give either region or intensity_g_per_kwh, not both")
        if self.intensity_g_per_kwh is not None and not self.intensity_g_per_kwh >= 0:
            raise ConfigError("lifecycle.intensity_g_per_kwh must be >= 0")


SECTIONS = {"lifecycle": LifecycleSection}
OBJECTIVES = {OBJECTIVE: "minimize"}


@dataclass(frozen=True)
class LifecycleCarbon:
    """One model's projected lifecycle kgCO2e and its parts."""

    search_share_kgco2e: float
    training_kgco2e: float
    retrainings: int
    retraining_kgco2e: float
    inferences: float
    inference_kwh: float
    inference_kgco2e: float
    intensity_g_per_kwh: float

    @property
    def kgco2e(self) -> float:
        return (
            self.search_share_kgco2e
            + self.training_kgco2e
            + self.retraining_kgco2e
            + self.inference_kgco2e
        )

    def to_attrs(self) -> dict[str, float | int]:
        return {
            "lifecycle_kgco2e": self.kgco2e,
            "lifecycle_search_share_kgco2e": self.search_share_kgco2e,
            "lifecycle_training_kgco2e": self.training_kgco2e,
            "lifecycle_retrainings": self.retrainings,
            "lifecycle_retraining_kgco2e": self.retraining_kgco2e,
            "lifecycle_inferences": self.inferences,
            "lifecycle_inference_energy_kwh": self.inference_kwh,
            "lifecycle_inference_kgco2e": self.inference_kgco2e,
            "lifecycle_intensity_g_per_kwh": self.intensity_g_per_kwh,
        }


def project(
    section: LifecycleSection,
    *,
    training_kgco2e: float,
    inference_kwh_per_sample: float,
    intensity_g_per_kwh: float,
    search_share_kgco2e: float = 0.0,
) -> LifecycleCarbon:
    """Lifecycle kgCO2e of one model under ``section``'s deployment (pure arithmetic)."""
    inferences = float(section.requests_per_day or 0.0) * section.days_deployed
    retrainings = 0
    if section.retrain_every_days is not None:
        retrainings = math.floor(section.days_deployed / section.retrain_every_days)
    inference_kwh = inference_kwh_per_sample * inferences
    return LifecycleCarbon(
        search_share_kgco2e=search_share_kgco2e,
        training_kgco2e=training_kgco2e,
        retrainings=retrainings,
        retraining_kgco2e=retrainings * training_kgco2e,
        inferences=inferences,
        inference_kwh=inference_kwh,
        inference_kgco2e=inference_kwh * intensity_g_per_kwh / 1000.0,
        intensity_g_per_kwh=intensity_g_per_kwh,
    )


def project_trial(
    attrs: dict[str, Any], section: LifecycleSection, *, search_share_kgco2e: float = 0.0
) -> LifecycleCarbon:
    """Project a stored trial (its user attrs) under another deployment, e.g. in a report.

    Uses the per-sample inference energy the trial measured (``lifecycle_…`` if the plugin
    ran, else the trial's own ``inference_energy_j_per_sample``) and its intensity.
    """
    per_sample = attrs.get("lifecycle_inference_energy_kwh_per_sample")
    if per_sample is None:
        per_sample = float(attrs["inference_energy_j_per_sample"]) / 3.6e6
    return project(
        section,
        training_kgco2e=float(attrs["kgco2e"]),
        inference_kwh_per_sample=float(per_sample),
        intensity_g_per_kwh=float(
            attrs.get("lifecycle_intensity_g_per_kwh", attrs["intensity_g_per_kwh"])
        ),
        search_share_kgco2e=search_share_kgco2e,
    )


def search_share_kgco2e(
    section: LifecycleSection, config: Config, study: optuna.Study, own_kgco2e: float
) -> float:
    """The search's cost charged to one model (see the module docstring)."""
    if section.search_share == "none":
        return 0.0
    ended = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    costs = [
        float(t.user_attrs.get("search_kgco2e") or 0.0)
        for t in study.get_trials(deepcopy=False, states=ended)
    ]
    costs.append(own_kgco2e)  # this trial is still running
    if section.search_share == "spent":
        return sum(costs) / section.models_deployed
    return sum(costs) / len(costs) * config.study.trials / section.models_deployed


class LifecyclePlugin(TrialPlugin):
    name = "lifecycle"

    def __init__(self, *, section: LifecycleSection) -> None:
        self.section = section

    def after_eval(self, ctx: TrialContext) -> None:
        sec, a = self.section, ctx.attrs
        per_sample_kwh, info, extra_kwh = self._per_sample_kwh(ctx)
        g_trial = float(a["intensity_g_per_kwh"])
        if extra_kwh:  # the lifecycle measurement is part of what the search paid
            a["search_energy_kwh"] = float(a["search_energy_kwh"]) + extra_kwh
            a["search_kgco2e"] = float(a["search_kgco2e"]) + extra_kwh * g_trial / 1000.0
        g, g_source = g_trial, str(a.get("intensity_source", ""))
        if sec.intensity_g_per_kwh is not None or sec.region is not None:
            from nas.carbon import resolve_intensity_source

            src = resolve_intensity_source(
                region=sec.region, intensity_g_per_kwh=sec.intensity_g_per_kwh
            )
            g, g_source = src.intensity_g_per_kwh, src.source  # type: ignore[attr-defined]
        share = search_share_kgco2e(sec, ctx.config, ctx.trial.study, float(a["search_kgco2e"]))
        lc = project(
            sec,
            training_kgco2e=float(a["kgco2e"]),
            inference_kwh_per_sample=per_sample_kwh,
            intensity_g_per_kwh=g,
            search_share_kgco2e=share,
        )
        a.update(lc.to_attrs())
        a.update(info)
        a.update(
            lifecycle_target_device=sec.target_device,
            lifecycle_batch_size=sec.batch_size,
            lifecycle_search_share=sec.search_share,
            lifecycle_intensity_source=g_source,
            lifecycle_inference_energy_kwh_per_sample=per_sample_kwh,
        )
        ctx.metrics[OBJECTIVE] = lc.kgco2e

    def _per_sample_kwh(self, ctx: TrialContext) -> tuple[float, dict[str, Any], float]:
        """(kWh per sample on the target, provenance attrs, kWh the measurement took)."""
        sec, a = self.section, ctx.attrs
        model = ctx.eval_model if ctx.eval_model is not None else ctx.model
        device = ctx.eval_device or ctx.device
        target = "cpu" if sec.target_device == "onnx-cpu" else sec.target_device
        runtime = "onnxruntime" if sec.target_device == "onnx-cpu" else "torch"
        reuse = (
            runtime == "torch"
            and str(a.get("inference_device", "")).split(":")[0] == target
            and a.get("inference_batch_size") == sec.batch_size
            and a.get("inference_energy_j_per_sample") is not None
        )
        if reuse:
            kwh = float(a["inference_energy_j_per_sample"]) / 3.6e6
            basis = "the trial's inference measurement"
            return (
                kwh,
                _info(basis, a.get("inference_energy_source"), a.get("inference_energy_kind")),
                0.0,
            )
        meter = ctx.meter
        if device.type != "cpu" and target == "cpu":
            from nas.energy import create_meter

            meter = create_meter("auto", device="cpu")
        min_s = ctx.config.eval.inference_min_duration_s
        fallback = ""
        if runtime == "onnxruntime":
            try:
                cost = _measure_onnx(model, ctx.input_shape, sec.batch_size, meter, min_s)
            except Exception as exc:  # noqa: BLE001 - e.g. a quantized model ONNX cannot export
                log.warning(
                    "trial %d: ONNX export/measure failed (%s); measuring torch on cpu",
                    ctx.trial.number,
                    exc,
                )
                runtime, fallback = "torch", f" (ONNX failed: {str(exc)[:120]})"
        if runtime == "torch":
            from nas.inference import measure_inference

            m = model if device.type == target else copy.deepcopy(model)
            cost = measure_inference(
                m,
                input_shape=ctx.input_shape,
                batch_size=sec.batch_size,
                device=target,
                meter=meter,
                min_duration_s=min_s,
            )
        ms = cost.measurement
        info = _info(
            f"measured: {runtime} on {target}, batch {sec.batch_size}{fallback}", ms.source, ms.kind
        )
        info["lifecycle_inference_latency_ms"] = cost.latency_ms
        return cost.energy_j_per_sample / 3.6e6, info, float(ms.energy_kwh)


def _info(basis: str, source: Any, kind: Any) -> dict[str, Any]:
    return {
        "lifecycle_inference_basis": basis,
        "lifecycle_inference_energy_source": str(source),
        "lifecycle_inference_energy_kind": str(kind),
    }


def _measure_onnx(
    model: Any, input_shape: tuple[int, int, int], batch_size: int, meter: Any, min_s: float
) -> Any:
    import torch

    from nas.export import export_model
    from nas.onnx_inference import measure_onnx_inference

    with tempfile.TemporaryDirectory() as tmp:
        m = copy.deepcopy(model)
        example = torch.randn(1, *input_shape)
        path = export_model(m, example_input=example, fmt="onnx", out_dir=Path(tmp))
        return measure_onnx_inference(
            path, input_shape=input_shape, meter=meter, batch_size=batch_size, min_duration_s=min_s
        )


def make_trial_plugins(objective: Any) -> list[TrialPlugin]:
    config: Config = objective.config
    section: LifecycleSection = config.lifecycle
    if not section.active:
        if OBJECTIVE in config.study.objectives:
            raise ConfigError(
                f"objective {OBJECTIVE!r} needs a [lifecycle] section with requests_per_day"
            )
        return []
    if section.target_device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("lifecycle.target_device = 'cuda' but no CUDA GPU is available")
    return [LifecyclePlugin(section=section)]
