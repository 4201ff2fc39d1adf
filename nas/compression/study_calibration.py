"""Run the calibration once per study and narrow ``[compression]`` to what pays here.

The first process to open a study that samples compression runs :func:`calibrate` and stores
the result, its energy and kgCO2e as study attrs (``calibration_energy_kwh`` is added to the
study's search cost by :func:`nas.report.search_cost`). Workers that open the study later
read the stored result and run nothing, so the energy is counted once.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nas.compression.calibrate import Calibration, calibrate
from nas.config import Config
from nas.record import StudyAttrs

if TYPE_CHECKING:
    import optuna

    from nas.context import RunContext

log = logging.getLogger(__name__)


def calibrate_config(
    config: Config, cal: Calibration, *, section: str = "compression"
) -> tuple[Config, list[str]]:
    """``config`` with the excluded precisions and quantizations removed from ``section``'s
    choices; the log lines. A list left empty falls back to fp32 (said in the lines)."""
    s = config.compression
    lines = list(cal.reasons)
    precision = cal.allowed_precisions(s.precision)
    quantization = cal.allowed_quantizations(s.quantization)
    if not precision:
        precision = ("fp32",)
        lines.append("compression.precision: every choice excluded here: fp32 instead")
    if not quantization:
        quantization = ("fp32",)
        lines.append("compression.quantization: every choice excluded here: fp32 instead")
    if precision == s.precision and quantization == s.quantization:
        return config, lines
    return config.replace(section, precision=precision, quantization=quantization), lines


def calibrate_study(study: optuna.Study, context: RunContext) -> Config:
    """The config trials of ``study`` run with (``context.config``, calibrated when
    ``[compression]`` is on), measured on the run's device and meter."""
    from nas.carbon import kgco2e

    config = context.config
    s = config.compression
    if not s.enabled or not s.calibrate:
        return config
    stored = study.user_attrs.get(StudyAttrs.calibration)
    if stored:
        cal = Calibration.from_dict(json.loads(stored))
    else:
        started = datetime.now(UTC)
        d = context.data
        cal = calibrate(
            families=config.search.spaces,
            input_shape=(d.in_channels, d.image_size, d.image_size),
            num_classes=d.num_classes,
            batch_size=config.data.batch_size,
            inference_batch_size=config.eval.inference_batch_size,
            device=context.device,
            meter=context.meter,
            precisions=s.precision,
            quantizations=s.quantization,
            force=s.force,
            rounds=s.calibration_rounds,
            min_duration_s=s.calibration_min_duration_s,
        )
        if study.user_attrs.get(StudyAttrs.calibration):  # another worker stored one meanwhile
            log.warning("calibration: another process stored the study's first; using that")
            cal = Calibration.from_dict(json.loads(study.user_attrs[StudyAttrs.calibration]))
        else:
            energy = 0.0 if cal.reused else cal.energy_kwh
            g = context.intensity.intensity_over(started, datetime.now(UTC)).intensity_g_per_kwh
            attrs: dict[str, Any] = {
                StudyAttrs.calibration: json.dumps(cal.to_dict()),
                StudyAttrs.calibration_energy_kwh: energy,
                StudyAttrs.calibration_kgco2e: kgco2e(energy, g),
                StudyAttrs.calibration_excluded: json.dumps(cal.reasons),
            }
            for key, value in attrs.items():
                study.set_user_attr(key, value)
    new, lines = calibrate_config(config, cal)
    for line in lines:
        log.warning("calibration: %s", line)
    return new
