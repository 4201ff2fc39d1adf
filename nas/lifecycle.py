"""Lifecycle carbon as a step of every trial: search share + training + inference + retraining.

The ``[lifecycle]`` section (:class:`nas.sections.LifecycleSection`) describes the deployment.
Per trial, after evaluation: the inference energy per sample is **measured on the target**
(the trial's own inference measurement when it already ran on that device at that batch
size, else a new measurement in phase ``lifecycle`` with :func:`nas.inference.measure_inference`,
or ONNX Runtime via :mod:`nas.onnx_inference` for ``onnx-cpu``). Then::

    lifecycle_kgco2e = search share + training + retrainings x training
                       + per-sample kWh x requests_per_day x days_deployed x g/kWh / 1000

"training" is the deployed model's training at the ``[final]`` budget, never the proxy's: in
a trial it is projected from the trial's own energy per sample-epoch (``nas.final``, basis
``projected``); once ``econas train`` ran, readers (:func:`project_trial`) use the measured run.

``search_share``: ``planned`` = mean ``search_kgco2e`` of the study's ended trials x
``study.trials`` / ``models_deployed`` (about the same for every trial, so it does not bend
the front); ``spent`` = what the search has emitted so far / ``models_deployed``; ``none``.

Objective ``lifecycle_kgco2e`` (minimise); asking for it without ``requests_per_day`` is a
config error.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from nas.config import Config
from nas.errors import ConfigError
from nas.record import Compression, Final, Inference, Lifecycle, TrialAttrs, TrialRecord, finite
from nas.sections.lifecycle import LIFECYCLE_OBJECTIVE, LifecycleSection
from nas.trial import RunningTrial, Step

if TYPE_CHECKING:  # pragma: no cover
    from nas.context import RunContext

log = logging.getLogger(__name__)

OBJECTIVE = LIFECYCLE_OBJECTIVE


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
            Lifecycle.kgco2e: self.kgco2e,
            Lifecycle.search_share_kgco2e: self.search_share_kgco2e,
            Lifecycle.training_kgco2e: self.training_kgco2e,
            Lifecycle.retrainings: self.retrainings,
            Lifecycle.retraining_kgco2e: self.retraining_kgco2e,
            Lifecycle.inferences: self.inferences,
            Lifecycle.inference_energy_kwh: self.inference_kwh,
            Lifecycle.inference_kgco2e: self.inference_kgco2e,
            Lifecycle.intensity_g_per_kwh: self.intensity_g_per_kwh,
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
    attrs: TrialRecord | dict[str, Any],
    section: LifecycleSection,
    *,
    search_share_kgco2e: float = 0.0,
) -> LifecycleCarbon:
    """Project a stored trial (its record or user attrs) under another deployment, e.g. in a
    report.

    Uses the per-sample inference energy the trial measured (``lifecycle_…`` if the step
    ran, else the trial's own ``inference_energy_j_per_sample``) and its intensity.
    """
    rec = attrs if isinstance(attrs, TrialRecord) else TrialRecord(attrs)
    training_kg, _basis = training_cost(rec)
    per_sample = rec.get(Lifecycle.per_sample_kwh)
    if per_sample is None:
        per_sample = float(rec.get(Inference.energy_j_per_sample)) / 3.6e6
    g = rec.get(Lifecycle.intensity_g_per_kwh, rec.get(TrialAttrs.intensity_g_per_kwh))
    return project(
        section,
        training_kgco2e=training_kg,
        inference_kwh_per_sample=float(per_sample),
        intensity_g_per_kwh=float(g),
        search_share_kgco2e=search_share_kgco2e,
    )


def training_cost(rec: TrialRecord) -> tuple[float, str]:
    """(kgCO2e of training the deployed model, its basis): the full-budget training when
    ``econas train`` ran it (with study, :meth:`TrialRecord.of` merges it), else the
    projection stored at search time. Records of studies made before both existed fall back to
    the proxy's training, and say so."""
    kg = rec.final_num(Final.kgco2e) if rec.has_final else None
    if kg is not None:
        return kg, f"{rec.final.get(Final.energy_kind)}: full-budget training (econas train)"
    kg = rec.num(Lifecycle.training_kgco2e)
    basis = rec.get(Lifecycle.training_basis)
    if kg is not None and basis:
        return kg, str(basis)
    return float(rec.get(TrialAttrs.kgco2e)), "proxy training (no projection in this record)"


def projected_training(t: RunningTrial) -> tuple[float, str]:
    """(kWh, basis) of training the trial's model at the [final] budget, projected from the
    trial's own phases (nas.final's method)."""
    from nas.final import project_energy

    c, d = t.config, t.data
    phases = t.log.merged()
    kwh = {m.name: m.energy_kwh for m in phases}
    secs = {m.name: m.duration_s for m in phases}
    pruned = t.attrs.get(Compression.pruned_structure) is not None
    train_size = c.final.train_size or max(d.train_split_size - len(d.val), len(d.train))
    p = project_energy(
        kwh,
        secs,
        proxy_train_samples=t.train_result.samples if t.train_result else 0,
        proxy_val_size=len(d.val),
        proxy_test_size=len(d.test),
        pruned_finetune_samples=c.compression.finetune_epochs * len(d.train) if pruned else None,
        train_size=train_size,
        epochs=c.final.epochs,
        val_size=len(d.val),
        test_size=c.final.test_size or d.test_split_size or len(d.test),
        epoch_kwh=t.epoch_energy_kwh,
        epoch_s=t.epoch_duration_s,
        model_build_s=finite(t.attrs.get(TrialAttrs.model_build_s)),
    )
    return p.energy_kwh, f"projected: {p.method}"


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
        TrialRecord.of(t).search_kgco2e for t in study.get_trials(deepcopy=False, states=ended)
    ]
    costs.append(own_kgco2e)  # this trial is still running
    if section.search_share == "spent":
        return sum(costs) / section.models_deployed
    return sum(costs) / len(costs) * config.study.trials / section.models_deployed


class LifecycleStep(Step):
    name = "lifecycle"

    def __init__(self, context: RunContext) -> None:
        self.section = section = context.config.lifecycle
        if section.target_device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("lifecycle.target_device = 'cuda' but no CUDA GPU is available")
        self.deployment = None
        if section.intensity_g_per_kwh is not None or section.region is not None:
            from nas.carbon import resolve_intensity_source

            self.deployment = resolve_intensity_source(
                region=section.region, intensity_g_per_kwh=section.intensity_g_per_kwh
            )

    def evaluated(self, t: RunningTrial, metrics: Mapping[str, float]) -> Mapping[str, float]:
        sec = self.section
        per_sample_kwh, info = self._per_sample_kwh(t)
        g_trial = t.carbon.intensity_g_per_kwh if t.carbon is not None else 0.0
        g, g_source = g_trial, t.carbon.source if t.carbon is not None else ""
        if self.deployment is not None:
            g, g_source = self.deployment.intensity_g_per_kwh, self.deployment.source  # type: ignore[attr-defined]
        own_kg = t.log.energy_kwh() * g_trial / 1000.0  # this trial's search cost so far
        share = search_share_kgco2e(sec, t.config, t.trial.study, own_kg)
        train_kwh, basis = projected_training(t)  # the deployed model's training, not the proxy's
        t.record(
            {
                Lifecycle.training_energy_kwh: train_kwh,
                Lifecycle.training_basis: basis,
            }
        )
        lc = project(
            sec,
            training_kgco2e=train_kwh * g_trial / 1000.0,
            inference_kwh_per_sample=per_sample_kwh,
            intensity_g_per_kwh=g,
            search_share_kgco2e=share,
        )
        t.record(lc.to_attrs())
        t.record(info)
        t.record(
            {
                Lifecycle.target_device: sec.target_device,
                Lifecycle.batch_size: sec.batch_size,
                Lifecycle.search_share: sec.search_share,
                Lifecycle.intensity_source: g_source,
                Lifecycle.per_sample_kwh: per_sample_kwh,
            }
        )
        return {OBJECTIVE: lc.kgco2e}

    def _per_sample_kwh(self, t: RunningTrial) -> tuple[float, dict[str, Any]]:
        """(kWh per sample on the target, provenance attrs); measures in phase ``lifecycle``
        unless the trial's own inference measurement already ran on the target."""
        sec, a = self.section, t.attrs
        assert t.deployed is not None  # evaluated() runs after deploy
        model, device = t.deployed.model, t.deployed.device
        target = "cpu" if sec.target_device == "onnx-cpu" else sec.target_device
        runtime = "onnxruntime" if sec.target_device == "onnx-cpu" else "torch"
        reuse = (
            runtime == "torch"
            and str(a.get(Inference.device, "")).split(":")[0] == target
            and a.get(Inference.batch_size) == sec.batch_size
            and a.get(Inference.energy_j_per_sample) is not None
        )
        if reuse:
            kwh = float(a[Inference.energy_j_per_sample]) / 3.6e6
            basis = "the trial's inference measurement"
            return kwh, _info(basis, a.get(Inference.energy_source), a.get(Inference.energy_kind))
        meter = t.meter
        if device.type != "cpu" and target == "cpu":
            from nas.energy import create_meter

            meter = create_meter("auto", device="cpu")
        min_s = t.config.eval.inference_min_duration_s
        fallback = ""
        with t.phase("lifecycle"):
            if runtime == "onnxruntime":
                try:
                    cost = _measure_onnx(model, t.input_shape, sec.batch_size, meter, min_s)
                except Exception as exc:  # noqa: BLE001 - e.g. a quantized model ONNX can't export
                    log.warning(
                        "trial %d: ONNX export/measure failed (%s); measuring torch on cpu",
                        t.number,
                        exc,
                    )
                    runtime, fallback = "torch", f" (ONNX failed: {str(exc)[:120]})"
            if runtime == "torch":
                from nas.inference import measure_inference

                m = model if device.type == target else copy.deepcopy(model)
                cost = measure_inference(
                    m,
                    input_shape=t.input_shape,
                    batch_size=sec.batch_size,
                    device=target,
                    meter=meter,
                    min_duration_s=min_s,
                )
        ms = cost.measurement
        info = _info(
            f"measured: {runtime} on {target}, batch {sec.batch_size}{fallback}", ms.source, ms.kind
        )
        info[Lifecycle.inference_latency_ms] = cost.latency_ms
        return cost.energy_j_per_sample / 3.6e6, info


def _info(basis: str, source: Any, kind: Any) -> dict[str, Any]:
    return {
        Lifecycle.inference_basis: basis,
        Lifecycle.inference_energy_source: str(source),
        Lifecycle.inference_energy_kind: str(kind),
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
