"""Projecting what training a trial's architecture at full budget will cost, before spending it.

Method (stated with every projection): the proxy measured its training energy over a known
number of samples, so its **energy per sample-epoch** scales to the full run::

    train     = proxy's last epoch kWh / samples per epoch  x  train_size x epochs
                + the first epoch's warm-up above it, and the train phase's work between
                  epochs, once (a proxy of one epoch: its whole training / samples)
    eval      = proxy validation kWh / validation images  x  validation images x epochs
    test      = proxy test kWh / test images  x  final test images
    fixed     = the proxy's build, quantize, upload and store phases, once

For a pruned trial the per-sample figure comes from its fine-tune (the pruned network, which
is what the final run trains); distillation's teacher passes are inside the proxy's training
energy and so inside the projection. Duration scales the same way. Checkpoint writes are not
projected (they are measured in their own phase). kgCO2e is the projected energy at the
intensity of the configured source over the projected interval from now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nas.errors import BadInputError

_FIXED = ("build", "quantize", "upload", "store")
_MAX_WINDOW_S = 10 * 365.25 * 86400


@dataclass(frozen=True)
class Projection:
    energy_kwh: float
    duration_s: float
    method: str
    inputs: dict[str, float | int | str] = field(default_factory=dict)
    kgco2e: float | None = None
    intensity_g_per_kwh: float | None = None
    intensity_source: str | None = None

    def with_carbon(self, intensity: Any) -> Projection:
        """The same projection charged at ``intensity`` (an IntensitySource) from now on."""
        now = datetime.now(UTC)
        # a window beyond ten years (epochs = 10**20) is charged at its first ten years' mean
        seconds = min(max(self.duration_s, 1.0), _MAX_WINDOW_S)
        ci = intensity.intensity_over(now, now + timedelta(seconds=seconds))
        return Projection(
            energy_kwh=self.energy_kwh,
            duration_s=self.duration_s,
            method=self.method,
            inputs=self.inputs,
            kgco2e=self.energy_kwh * ci.intensity_g_per_kwh / 1000.0,
            intensity_g_per_kwh=ci.intensity_g_per_kwh,
            intensity_source=ci.source,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def project_energy(
    phase_kwh: Mapping[str, float],
    phase_s: Mapping[str, float],
    *,
    proxy_train_samples: int,
    proxy_val_size: int,
    proxy_test_size: int,
    pruned_finetune_samples: int | None,
    train_size: int,
    epochs: int,
    val_size: int,
    test_size: int,
    epoch_kwh: Sequence[float] = (),
    epoch_s: Sequence[float] = (),
) -> Projection:
    """Scale a proxy's per-phase energy (kWh) and time (s) to a full-budget run; ``epoch_kwh``
    and ``epoch_s`` are its training epochs' own (``epoch_energy_kwh``)."""
    basis = "train"
    samples = proxy_train_samples
    if pruned_finetune_samples and phase_kwh.get("finetune"):
        basis, samples = "finetune", pruned_finetune_samples
    if not phase_kwh.get(basis) or samples <= 0:
        raise BadInputError(
            f"the proxy has no measured {basis} energy over a known number of samples; "
            "nothing to project from"
        )
    steady = basis == "train" and len(epoch_kwh) >= 2 and len(epoch_s) == len(epoch_kwh)
    fixed_kwh = fixed_s = 0.0
    if steady:  # the last epoch, warmed up; the rest of the train phase once
        per_epoch = samples / len(epoch_kwh)
        per_sample_kwh, per_sample_s = epoch_kwh[-1] / per_epoch, epoch_s[-1] / per_epoch
        fixed_kwh = max(phase_kwh[basis] - epoch_kwh[-1] * len(epoch_kwh), 0.0)
        fixed_s = max(phase_s.get(basis, 0.0) - epoch_s[-1] * len(epoch_s), 0.0)
    else:
        per_sample_kwh = phase_kwh[basis] / samples
        per_sample_s = phase_s.get(basis, 0.0) / samples
    kwh = per_sample_kwh * train_size * epochs + fixed_kwh
    secs = per_sample_s * train_size * epochs + fixed_s
    inputs: dict[str, float | int | str] = {
        "basis_phase": basis + (" (last epoch)" if steady else ""),
        "proxy_samples": samples,
        "kwh_per_sample_epoch": per_sample_kwh,
        "warm_up_kwh": fixed_kwh,
        "train_size": train_size,
        "epochs": epochs,
    }
    for phase, images, per_run in (
        ("eval", proxy_val_size, val_size * epochs),
        ("test", proxy_test_size, test_size),
    ):
        if phase_kwh.get(phase) and images > 0:
            kwh += phase_kwh[phase] / images * per_run
            secs += phase_s.get(phase, 0.0) / images * per_run
            inputs[f"{phase}_kwh_per_image"] = phase_kwh[phase] / images
    for phase in _FIXED:
        kwh += phase_kwh.get(phase, 0.0)
        secs += phase_s.get(phase, 0.0)
    where = (
        f"its last epoch's ({per_sample_kwh:.3e} kWh)"
        if steady
        else (f"{per_sample_kwh:.3e} kWh over {samples} samples")
    )
    method = (
        f"proxy {basis} energy per sample-epoch, {where}, x {train_size} images x {epochs} "
        "epochs, plus its warm-up once, validation per epoch and the test set scaled per image, "
        "and the proxy's build/quantize/upload/store once"
    )
    return Projection(energy_kwh=kwh, duration_s=secs, method=method, inputs=inputs)
