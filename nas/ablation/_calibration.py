"""Where the rows deploy, the calibration that decides what pays on this hardware, and each
row's flags (emulated here, excluded by the calibration, its setting)."""

from __future__ import annotations

from typing import Any

import torch

from nas.ablation._grid import Grid
from nas.ablation._reference import COMBINED_ROWS
from nas.compression.calibrate import Calibration, calibrate, native_support
from nas.compression.precision import precision_dtype
from nas.compression.selection import describe
from nas.compression.techniques import AblationContext, target_quantizations
from nas.config import Config
from nas.context import RunContext
from nas.errors import BadInputError
from nas.trial import Deployed

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


def calibration_measurement(meter: Any, cal: Calibration) -> Any:
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


def row_flags(ctx: AblationContext, name: str, dep: Deployed, grid: Grid) -> dict[str, Any]:
    """Whether the row's technique is emulated on this hardware, and excluded by the
    calibration (from the combined row's search; the row itself is still measured); its
    setting in words."""
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
    elif name == "scheduling":
        flags["technique_setting"] = (
            f"{grid.policy} on the {grid.forecast} forecast within {grid.window_hours:g} h "
            f"on {grid.trace.name}"
        )
    elif name in COMBINED_ROWS and "combination" in dep.details:
        flags["technique_setting"] = describe(dep.details["combination"]) + " + scheduling"
    if cal is not None and key is not None and key in cal.candidates:
        c = cal.candidates[key]
        flags["excluded"] = c.excluded
        flags["excluded_reason"] = c.reason or None
    return flags
