"""Projecting what training a trial's architecture at full budget will cost, before spending it.

Method (stated with every projection): the proxy measured its training energy over a known
number of samples, so its **energy per sample-epoch** scales to the full run::

    train      = proxy's last epoch kWh / samples per epoch  x  train_size x epochs
                 + the first epoch's warm-up above it, once per process that trains (a proxy
                   of one epoch: its whole training / samples)
    eval       = proxy validation kWh / validation images  x  validation images x epochs
    checkpoint = proxy upload kWh (a write of the weights, which costs more than a checkpoint
                 of weights and optimizer moments, measured) x epochs
    test       = proxy test kWh / test images  x  final test images
    fixed      = the proxy's quantize, upload and store phases once
    build      = once per process: the proxy's build phase x the share of it that constructing
                 the model took (its memory check and FLOP count are not redone)
    resumed    = per restart, the build (as measured in the earlier run) and the warm-up
                 again; energy measured as ``lost`` (an interrupted epoch's work, redone) added

For a pruned trial the per-sample figure comes from its fine-tune (the pruned network, which
is what the final run trains); distillation's teacher passes are inside the proxy's training
energy and so inside the projection. Duration scales the same way. The projection assumes the
proxy's threads and OpenMP wait policy (``econas train`` says when they differ). kgCO2e is the
projected energy at the intensity of the configured source over the projected interval from
now. :meth:`Projection.with_range` adds the spread of the projection's error measured by
``benchmarks/projection.py`` on this hardware class (``nas.final._spread``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from nas.errors import BadInputError
from nas.text import plural

_ONCE = ("quantize", "upload", "store")
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
    energy_kwh_low: float | None = None  # the benchmark's spread (None: not benchmarked here)
    energy_kwh_high: float | None = None
    range_basis: str | None = None  # "from N runs of benchmarks/projection.py on <hardware>"
    phases_kwh: dict[str, float] = field(default_factory=dict)  # as the final run meters them

    def with_carbon(self, intensity: Any) -> Projection:
        """The same projection charged at ``intensity`` (an IntensitySource) from now on."""
        now = datetime.now(UTC)
        # a window beyond ten years (epochs = 10**20) is charged at its first ten years' mean
        seconds = min(max(self.duration_s, 1.0), _MAX_WINDOW_S)
        ci = intensity.intensity_over(now, now + timedelta(seconds=seconds))
        return replace(
            self,
            kgco2e=self.energy_kwh * ci.intensity_g_per_kwh / 1000.0,
            intensity_g_per_kwh=ci.intensity_g_per_kwh,
            intensity_source=ci.source,
        )

    def with_range(self, error_pct: tuple[float, float] | None, basis: str) -> Projection:
        """The range the measured energy fell in around such projections: ``error_pct`` is
        the benchmark's (lowest, highest) ``(measured - projected) / projected`` in %; None
        when this hardware class was never benchmarked (``basis`` says so)."""
        if error_pct is None:
            return replace(self, energy_kwh_low=None, energy_kwh_high=None, range_basis=basis)
        lo, hi = error_pct
        return replace(
            self,
            energy_kwh_low=max(self.energy_kwh * (1.0 + lo / 100.0), 0.0),
            energy_kwh_high=self.energy_kwh * (1.0 + hi / 100.0),
            range_basis=basis,
        )

    @property
    def kgco2e_low(self) -> float | None:
        return self._kg(self.energy_kwh_low)

    @property
    def kgco2e_high(self) -> float | None:
        return self._kg(self.energy_kwh_high)

    def _kg(self, kwh: float | None) -> float | None:
        if kwh is None or self.intensity_g_per_kwh is None:
            return None
        return kwh * self.intensity_g_per_kwh / 1000.0

    def range_text(self) -> str:
        """``likely 1.2e-05 to 1.4e-05 kWh, from 12 runs of ...``, or why there is no range."""
        if self.energy_kwh_low is None or self.energy_kwh_high is None:
            return f"range unknown: {self.range_basis or 'not benchmarked'}"
        return (
            f"likely {self.energy_kwh_low:.3e} to {self.energy_kwh_high:.3e} kWh, "
            f"{self.range_basis}"
        )

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["kgco2e_low"], out["kgco2e_high"] = self.kgco2e_low, self.kgco2e_high
        return out


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
    restarts: int = 0,
    restart_build_kwh: float | None = None,
    lost_kwh: float = 0.0,
    lost_s: float = 0.0,
    model_build_s: float | None = None,
) -> Projection:
    """Scale a proxy's per-phase energy (kWh) and time (s) to a full-budget run; ``epoch_kwh``
    and ``epoch_s`` are its training epochs' own (``epoch_energy_kwh``). ``restarts``: runs
    this training already had that ended early (each rebuilds and warms up again; its build
    at ``restart_build_kwh`` when measured, else the proxy's);
    ``lost_kwh``/``lost_s``: what they measured as lost (interrupted epochs, redone);
    ``model_build_s``: of the proxy's build phase, the seconds constructing the model took (the
    rest, its memory check and FLOP count, a final run does not do; None: the whole phase)."""
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
    warm_kwh = warm_s = 0.0
    if steady:  # the last epoch, warmed up; the rest of the train phase once per process
        per_epoch = samples / len(epoch_kwh)
        per_sample_kwh, per_sample_s = epoch_kwh[-1] / per_epoch, epoch_s[-1] / per_epoch
        warm_kwh = max(phase_kwh[basis] - epoch_kwh[-1] * len(epoch_kwh), 0.0)
        warm_s = max(phase_s.get(basis, 0.0) - epoch_s[-1] * len(epoch_s), 0.0)
    else:
        per_sample_kwh = phase_kwh[basis] / samples
        per_sample_s = phase_s.get(basis, 0.0) / samples
    runs = 1 + max(restarts, 0)
    # (kWh, s) per phase of the final run, named as it meters them
    parts: dict[str, tuple[float, float]] = {
        "train": (
            per_sample_kwh * train_size * epochs + warm_kwh * runs,
            per_sample_s * train_size * epochs + warm_s * runs,
        )
    }
    inputs: dict[str, float | int | str] = {
        "basis_phase": basis + (" (last epoch)" if steady else ""),
        "proxy_samples": samples,
        "kwh_per_sample_epoch": per_sample_kwh,
        "warm_up_kwh": warm_kwh,
        "train_size": train_size,
        "epochs": epochs,
        "runs": runs,
    }
    per_run = {"eval": val_size * epochs, "test": test_size}
    for phase, images in (("eval", proxy_val_size), ("test", proxy_test_size)):
        if phase_kwh.get(phase) and images > 0:
            scale = per_run[phase] / images
            parts[phase] = (phase_kwh[phase] * scale, phase_s.get(phase, 0.0) * scale)
            inputs[f"{phase}_kwh_per_image"] = phase_kwh[phase] / images
    # a checkpoint every epoch end: serialising the state, as the proxy's weights upload did
    # (measured: the upload costs more than a checkpoint of weights + optimizer moments)
    parts["checkpoint"] = (
        phase_kwh.get("upload", 0.0) * epochs,
        phase_s.get("upload", 0.0) * epochs,
    )
    inputs["checkpoint_kwh_per_epoch"] = phase_kwh.get("upload", 0.0)
    build_kwh, build_s = phase_kwh.get("build", 0.0), phase_s.get("build", 0.0)
    if model_build_s is not None and build_s > 0:  # the share a final run redoes
        share = min(max(model_build_s / build_s, 0.0), 1.0)
        build_kwh, build_s = build_kwh * share, build_s * share
        inputs["model_build_share"] = share
    again = build_kwh if restart_build_kwh is None else restart_build_kwh
    parts["build"] = (build_kwh + again * (runs - 1), build_s * runs)
    for phase in _ONCE:
        parts[phase] = (phase_kwh.get(phase, 0.0), phase_s.get(phase, 0.0))
    if lost_kwh > 0:
        parts["lost"] = (lost_kwh, lost_s)
        inputs["lost_kwh"] = lost_kwh
    kwh = sum(k for k, _ in parts.values())
    secs = sum(t for _, t in parts.values())
    where = (
        f"its last epoch's ({per_sample_kwh:.3e} kWh)"
        if steady
        else (f"{per_sample_kwh:.3e} kWh over {plural(samples, 'sample')}")
    )
    method = (
        f"proxy {basis} energy per sample-epoch, {where}, x {plural(train_size, 'image')} x "
        f"{plural(epochs, 'epoch')}, plus its warm-up and build once per process, validation every epoch and the "
        "test set scaled per image, a checkpoint write every epoch (as the proxy's weights "
        "upload), and the proxy's quantize/upload/store once"
    )
    if restarts > 0 or lost_kwh > 0:
        method += (
            f"; resumed: {plural(restarts, 'earlier run')} rebuilt and warmed up again, "
            f"{lost_kwh:.3e} kWh measured as lost in interrupted epochs"
        )
    return Projection(
        energy_kwh=kwh,
        duration_s=secs,
        method=method,
        inputs=inputs,
        phases_kwh={name: k for name, (k, _) in parts.items()},
    )
