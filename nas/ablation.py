"""The technique table (``econas ablate``): a baseline, each technique alone, all combined.

Every row trains on the same data with the same budget and is measured by the same meter;
then its deployed model's test accuracy, inference energy and latency are measured, and a
lifecycle of one training plus ``ablate.inference_predictions`` predictions gives its total
energy and kgCO2e. Rows are a small registry, run in registration order (``baseline``
first; the others may use ``ctx.baseline``)::

    register_technique("federated", lambda ctx: ...)  # returns a Deployed

The built-in rows live in :mod:`nas.compression.techniques`. Repeats use seeds
``seed, seed + 1, ...`` and the result carries each repeat's rows and their spread.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import torch

from nas.compression.calibrate import Calibration, calibrate, native_support
from nas.compression.combined import select_combined
from nas.compression.precision import precision_dtype
from nas.compression.techniques import (
    BUILTIN_TECHNIQUES,
    AblationContext,
    Deployed,
    baseline_spec,
    total_train,
)
from nas.config import Config
from nas.context import RunContext
from nas.errors import BadInputError
from nas.federated.ablation import federated_technique
from nas.hardware import hardware_provenance
from nas.stats import t_interval, verdict

log = logging.getLogger(__name__)

COLUMNS = (
    "technique",
    "accuracy",
    "accuracy_delta",
    "train_energy_kwh",
    "train_energy_change_pct",
    "inference_energy_kwh_per_1k",
    "inference_energy_change_pct",
    "energy_kwh",
    "energy_change_pct",
    "kgco2e",
    "carbon_change_pct",
    "params",
    "flops",
    "latency_ms",
)
PROVENANCE = ("energy_source", "energy_kind", "hardware", "intensity_g_per_kwh", "intensity_source")
# The reference paper's table (CodeCarbon on a V100): change vs. its baseline.
REFERENCE: dict[str, dict[str, float]] = {
    "pruning": {"energy_change_pct": -28.0, "carbon_change_pct": -25.0, "accuracy_delta": -1.5},
    "quantization": {
        "energy_change_pct": -35.0,
        "carbon_change_pct": -32.0,
        "accuracy_delta": -2.0,
    },
    "distillation": {
        "energy_change_pct": -42.0,
        "carbon_change_pct": -38.0,
        "accuracy_delta": -3.0,
    },
    "mixed_precision": {
        "energy_change_pct": -22.0,
        "carbon_change_pct": -20.0,
        "accuracy_delta": -0.5,
    },
    "combined": {"carbon_change_pct": -55.0},
}
TARGET = {"energy_change_pct": -55.0, "accuracy_delta": -1.5}  # combined, on the quickstart data

TechniqueFn = Callable[[AblationContext], Deployed]
_TECHNIQUES: dict[str, TechniqueFn] = {}


def register_technique(name: str, fn: TechniqueFn, *, replace: bool = False) -> None:
    """Add a row to the table (rows run in registration order; ``baseline`` is first)."""
    if name in _TECHNIQUES and not replace:
        raise ValueError(f"technique {name!r} is already registered")
    _TECHNIQUES[name] = fn


def list_techniques() -> list[str]:
    return list(_TECHNIQUES)


for _name, _fn in BUILTIN_TECHNIQUES:
    register_technique(_name, _fn)
register_technique("combined", select_combined)  # chosen by a small metered search
register_technique("federated", federated_technique)


def _pct(new: float, old: float) -> float:
    return (new - old) / old * 100.0 if old > 0 else float("nan")


def _measure_row(ctx: AblationContext, name: str, dep: Deployed) -> dict[str, Any]:
    """Accuracy, cost and training energy of one row (inference comes in :func:`_measure_inference`)."""
    from nas.cost import analyze_cost
    from nas.train import evaluate

    train = total_train(dep)
    cost = analyze_cost(dep.float_model, (1, *ctx.input_shape))
    return {
        "technique": name,
        "accuracy": evaluate(dep.model, ctx.data.test, device=dep.device),
        "train_energy_kwh": train.energy_kwh,
        "params": cost.params,
        "flops": cost.flops,
        "inference_device": str(dep.device),
        "train_duration_s": train.duration_s,
        "energy_source": train.source,
        "energy_kind": train.kind,
        "hardware": train.hardware,
    }


def _measure_inference(
    ctx: AblationContext, rows: list[dict[str, Any]], deployed: list[Deployed]
) -> None:
    """Inference energy and latency of every row, in interleaved rounds (median per row), so a
    burst of load on a shared machine does not land on one row only."""
    from nas.inference import measure_inference

    s = ctx.section
    energy: list[list[float]] = [[] for _ in rows]
    latency: list[list[float]] = [[] for _ in rows]
    for _ in range(s.inference_rounds):
        for i, dep in enumerate(deployed):
            inf = measure_inference(
                dep.model,
                input_shape=ctx.input_shape,
                batch_size=s.inference_batch_size,
                device=str(dep.device),
                meter=ctx.meter,
                min_duration_s=s.inference_min_duration_s,
            )
            energy[i].append(inf.energy_kwh_per_1k)
            latency[i].append(inf.latency_ms)
            if inf.measurement.kind == "estimated":
                rows[i]["energy_kind"] = "estimated"
    for row, e, lat in zip(rows, energy, latency, strict=True):
        row["inference_energy_kwh_per_1k"] = statistics.median(e)
        row["latency_ms"] = statistics.median(lat)
        row["energy_kwh"] = (
            row["train_energy_kwh"]
            + row["inference_energy_kwh_per_1k"] * s.inference_predictions / 1000.0
        )


def break_even_predictions(row: dict[str, Any], base: dict[str, Any]) -> float | None:
    """Predictions after which ``row``'s extra training energy is paid back by its inference
    saving over ``base``: 0 when it trains for no more; None when it never is (no saving per
    prediction, or a dearer prediction)."""
    extra = row["train_energy_kwh"] - base["train_energy_kwh"]
    saving = (base["inference_energy_kwh_per_1k"] - row["inference_energy_kwh_per_1k"]) / 1000.0
    if extra <= 0:
        return 0.0 if saving >= 0 else None
    return extra / saving if saving > 0 else None


def _add_changes(rows: list[dict[str, Any]], intensity: Any) -> None:
    from nas.carbon import kgco2e

    base = rows[0]
    for row in rows:
        row["accuracy_delta"] = (row["accuracy"] - base["accuracy"]) * 100.0
        row["kgco2e"] = kgco2e(row["energy_kwh"], intensity.intensity_g_per_kwh)
        for col, ref in (
            ("train_energy_change_pct", "train_energy_kwh"),
            ("inference_energy_change_pct", "inference_energy_kwh_per_1k"),
            ("energy_change_pct", "energy_kwh"),
            ("carbon_change_pct", "kgco2e"),
        ):
            row[col] = _pct(row[ref], base[ref])
        row["intensity_g_per_kwh"] = intensity.intensity_g_per_kwh
        row["intensity_source"] = intensity.source
        row["break_even_predictions"] = break_even_predictions(row, base)


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def run_ablation(
    config: Config,
    *,
    repeats: int | None = None,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every registered technique ``repeats`` times; return the table with its spread."""
    from nas.context import build_context

    s = config.ablate
    repeats = repeats or s.repeats
    seed = config.study.seed if seed is None else seed
    threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(s.threads)
    run = build_context(config, seed=seed)  # the data are drawn with the first seed
    device, meter, intensity, data = run.device, run.meter, run.intensity, run.data
    assert meter is not None  # build_context meters unless told not to
    spec = baseline_spec(config, data)
    target = deployment_target(config, device)
    cal = ablation_calibration(run, target, spec.config) if s.calibrate else None
    started = datetime.now(UTC)
    runs: list[list[dict[str, Any]]] = []
    details: dict[str, list[dict[str, Any]]] = {}
    try:
        for r in range(repeats):
            ctx = AblationContext(
                run=run.replace(seed=seed + r), spec=spec, calibration=cal, target=target
            )
            rows, deployed = [], []
            for name, fn in _TECHNIQUES.items():
                if progress:
                    progress(f"repeat {r + 1}/{repeats}: {name}")
                torch.manual_seed(seed + r)
                dep = fn(ctx)
                if name == "baseline":
                    ctx.baseline = dep
                if name == "combined" and cal is not None and not cal.reused:
                    # the calibration decided the selection's choices: its cost is the row's
                    dep.train.append(_calibration_measurement(meter, cal))
                    dep.details["calibration_energy_kwh"] = cal.energy_kwh
                rows.append(_measure_row(ctx, name, dep))
                rows[-1].update(_row_flags(ctx, name, dep))
                deployed.append(dep)
                details.setdefault(name, []).append(dep.details)
            if progress:
                progress(
                    f"repeat {r + 1}/{repeats}: inference, {s.inference_rounds} interleaved rounds"
                )
            _measure_inference(ctx, rows, deployed)
            runs.append(rows)
    finally:
        meter.close()
        torch.set_num_threads(threads)
    ci = intensity.intensity_over(started, datetime.now(UTC))
    for rows in runs:
        _add_changes(rows, ci)
    table, spread = [], {}
    for i, name in enumerate(_TECHNIQUES):
        per_run = [rows[i] for rows in runs]
        row: dict[str, Any] = {"technique": name}
        spread[name] = {}
        for col in (*COLUMNS[1:], "train_duration_s"):
            values = [float(x[col]) for x in per_run]
            spread[name][col] = _spread(values)
            row[col] = spread[name][col]["mean"]
        row["params"], row["flops"] = int(row["params"]), int(row["flops"])
        for col in (*PROVENANCE, "inference_device", *FLAGS):
            row[col] = per_run[0][col]
        row["break_even_predictions"] = break_even_predictions(row, table[0] if table else row)
        row.update(_intervals(per_run, repeats))
        table.append(row)
    return {
        "rows": table,
        "spread": spread,
        "runs": runs,
        "details": details,
        "repeats": repeats,
        "seeds": [seed + r for r in range(repeats)],
        "baseline_arch": spec.encode(),
        "baseline_spec": spec.to_dict(),
        "data": {"dataset": data.name, "train": len(data.train), "test": len(data.test)},
        "lifecycle": {
            "trainings": 1,
            "inference_predictions": s.inference_predictions,
            "inference_batch_size": s.inference_batch_size,
            "inference_rounds": s.inference_rounds,
            "inference_min_duration_s": s.inference_min_duration_s,
            "accuracy_split": "test",
        },
        "meter": {"source": meter.source, "kind": meter.kind, "hardware": meter.hardware},
        "device": str(device),
        "torch_threads": s.threads or threads,
        "accuracy_split": "test (the combined row's selection used the validation split)",
        "reference": REFERENCE,
        "comparison": compare_with_reference(table, repeats=repeats),
        "calibration": cal.to_dict() if cal is not None else None,
        "deployment_target": str(target),
        "hardware_provenance": hardware_provenance(str(device), threads=s.threads or threads),
    }


FLAGS = ("technique_setting", "emulated", "excluded", "excluded_reason", "hardware_note")


def deployment_target(config: Config, device: torch.device) -> torch.device:
    """Where every row's model is deployed and measured: ``[lifecycle] target_device``."""
    t = config.lifecycle.target_device
    if t in ("cpu", "onnx-cpu"):
        return torch.device("cpu")
    if device.type != "cuda":
        raise BadInputError(
            f"lifecycle.target_device {t!r} needs hardware.device cuda (training on {device})"
        )
    q = config.ablate.quantization
    if q.startswith("int8"):
        raise BadInputError(
            f"ablate.quantization {q!r} runs on the CPU; lifecycle.target_device is {t}: "
            "use fp16 or bf16 on that GPU"
        )
    return device


def ablation_calibration(
    run: RunContext, target: torch.device, arch: dict[str, Any] | None = None
) -> Calibration:
    """The study's calibration (:func:`nas.compression.calibrate.calibrate`) for the ablation's
    precision and target quantizations, on the baseline architecture itself (``arch``)."""
    from nas.compression.techniques import target_quantizations

    config, data, device = run.config, run.data, run.device
    s = config.ablate
    quants = target_quantizations(target, s.family)
    if s.quantization != "auto" and s.quantization not in quants:
        quants.append(s.quantization)
    return calibrate(
        families=[s.family],
        input_shape=(data.in_channels, data.image_size, data.image_size),
        num_classes=data.num_classes,
        batch_size=config.data.batch_size,
        inference_batch_size=s.inference_batch_size,
        device=device if target.type == "cuda" else torch.device("cpu"),
        meter=run.meter,
        precisions=[s.precision],
        quantizations=quants,
        force=s.force,
        rounds=s.calibration_rounds,
        min_duration_s=s.calibration_min_duration_s,
        archs={s.family: arch} if arch is not None else None,
    )


def _calibration_measurement(meter: Any, cal: Calibration) -> Any:
    """The calibration's energy as one window-like measurement (it ran before the rows)."""
    from nas.energy import Measurement

    return Measurement(
        name="calibration",
        duration_s=cal.duration_s,
        energy_j={"calibration": cal.energy_kwh * 3.6e6},
        total_energy_j=cal.energy_kwh * 3.6e6,
        source=cal.energy_source,
        kind=cal.energy_kind,
        hardware=meter.hardware,
    )


def _row_flags(ctx: Any, name: str, dep: Any) -> dict[str, Any]:
    """Whether the row's technique is emulated on this hardware, and excluded by the
    calibration (from the combined row's search; the row itself is still measured)."""
    s, cal = ctx.section, ctx.calibration
    flags: dict[str, Any] = dict.fromkeys(FLAGS)
    flags["emulated"], flags["excluded"] = False, False
    key = None
    if name == "mixed_precision":
        dtype = precision_dtype(s.precision)
        dname = "bf16" if dtype == torch.bfloat16 else "fp16"
        key, flags["technique_setting"] = f"train:{dname}", s.precision
        native, flags["hardware_note"] = native_support(dname, ctx.device)
        flags["emulated"] = not native
    elif name == "quantization":
        q = ctx.quantization
        key, flags["technique_setting"] = f"inference:{q}", q
        native, flags["hardware_note"] = native_support(
            q if q in ("bf16", "fp16") else "int8", ctx.deploy_device(q)
        )
        flags["emulated"] = not native
    elif name == "combined":
        flags["technique_setting"] = dep.details.get("combination")
    if cal is not None and key is not None and key in cal.candidates:
        c = cal.candidates[key]
        flags["excluded"] = c.excluded
        flags["excluded_reason"] = c.reason or None
    return flags


def _intervals(per_run: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """95% t-intervals of the accuracy change and the lifecycle-energy change over repeats
    (None with one repeat: nothing is resolved by one run)."""
    out: dict[str, Any] = {}
    for col in ("accuracy_delta", "energy_change_pct", "train_energy_change_pct"):
        values = [float(r[col]) for r in per_run]
        ok = repeats > 1 and all(v == v for v in values)
        out[f"{col}_ci95"] = list(t_interval(values)) if ok else None
    return out


def combined_verdict(row: dict[str, Any], repeats: int) -> str:
    """``target met`` only when both intervals support it, ``target missed`` when either is
    wholly on the wrong side, else ``not resolved at N repeats``."""
    e, a = row.get("energy_change_pct_ci95"), row.get("accuracy_delta_ci95")
    if e is None or a is None:
        return f"not resolved at {repeats} repeat{'s' if repeats != 1 else ''}"
    ve = verdict(tuple(e), TARGET["energy_change_pct"], higher_is_better=False)
    va = verdict(tuple(a), TARGET["accuracy_delta"], higher_is_better=True)
    if ve == "met" and va == "met":
        return "target met"
    if "not met" in (ve, va):
        return "target missed"
    return f"not resolved at {repeats} repeats"


def compare_with_reference(rows: list[dict[str, Any]], *, repeats: int = 1) -> list[str]:
    """One line per row against the reference paper's figures, and the combined target."""
    lines = []
    by_name = {r["technique"]: r for r in rows}
    for name, ref in REFERENCE.items():
        row = by_name.get(name)
        if row is None:
            continue
        parts = [
            f"energy {row['energy_change_pct']:+.1f}%"
            + (f" (paper {ref['energy_change_pct']:+.0f}%)" if "energy_change_pct" in ref else ""),
            f"carbon {row['carbon_change_pct']:+.1f}% (paper {ref['carbon_change_pct']:+.0f}%)",
            f"accuracy {row['accuracy_delta']:+.2f} pts"
            + (f" (paper {ref['accuracy_delta']:+.1f})" if "accuracy_delta" in ref else ""),
        ]
        lines.append(f"{name}: " + ", ".join(parts))
    combined = by_name.get("combined")
    if combined is not None:
        saving, drop = -combined["energy_change_pct"], -combined["accuracy_delta"]
        ok_e = saving >= -TARGET["energy_change_pct"]
        ok_a = drop <= -TARGET["accuracy_delta"]
        verdict_ = combined_verdict(combined, repeats)
        combined["target_verdict"] = verdict_
        short = []
        if not ok_e:
            short.append(f"saving short by {-TARGET['energy_change_pct'] - saving:.1f} points")
        if not ok_a:
            short.append(f"accuracy drop over by {drop + TARGET['accuracy_delta']:.2f} points")
        lines.append(
            f"combined target (>= 55% energy saved, <= 1.5 pts accuracy lost): {verdict_}: "
            f"{saving:.1f}% saved, {drop:+.2f} pts lost (means)"
            + (f" ({'; '.join(short)})" if short else "")
            + _ci_text(combined)
        )
    return lines


def _ci_text(row: dict[str, Any]) -> str:
    e, a = row.get("energy_change_pct_ci95"), row.get("accuracy_delta_ci95")
    if e is None or a is None:
        return ""
    return (
        f"; 95% intervals: energy change [{e[0]:+.1f}, {e[1]:+.1f}]%, "
        f"accuracy change [{a[0]:+.2f}, {a[1]:+.2f}] pts"
    )
