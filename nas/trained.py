"""The typed result of training a trial at full budget (``econas train``, ``nas.train_trial``):
:class:`TrainedTrial`. Imports nothing heavy, so ``nas.TrainedTrial`` loads no torch.

    result = nas.train_trial(config, trial=3)
    result.test_accuracy, result.kgco2e, result.energy_kind, result.projection_error_pct
    result.to_dict()                   # what `econas train --json` prints

A dry run (``dry_run=True``) has the projection only: ``dry_run`` is True and the measured
figures (``test_accuracy``, ``energy_kwh``, ``kgco2e``, ...) are None.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainedTrial"]


@dataclass(frozen=True, kw_only=True)
class TrainedTrial:
    """One trial trained at full budget (or, with ``dry_run``, only projected): its figures
    with their units in the names; energy in kWh, carbon in kgCO2e, intensity in gCO2e/kWh."""

    trial: int
    dry_run: bool  # True: projected only, nothing trained
    epochs: int  # completed (a dry run: planned)
    train_size: int  # training images per epoch
    test_accuracy: float | None  # the whole (or [final] test_size) test split, once, at the end
    val_accuracy: float | None  # on the study's validation set, after the last epoch
    proxy_accuracy: float | None  # the search proxy's validation accuracy (the objective)
    proxy_test_accuracy: float | None
    energy_kwh: float | None  # every phase of every (resumed) run, lost work included
    kgco2e: float | None
    lost_energy_kwh: float | None  # epochs interrupted and redone
    energy_kind: str | None  # "measured" or "estimated"
    energy_source: str | None  # the meter: nvml, rapl, estimate, ...
    intensity_g_per_kwh: float | None
    intensity_source: str | None
    projected_energy_kwh: float | None  # before training (a resumed run: projected again)
    projected_kgco2e: float | None
    projected_energy_kwh_low: float | None  # benchmarks/projection.py's spread here
    projected_energy_kwh_high: float | None
    projected_kgco2e_low: float | None
    projected_kgco2e_high: float | None
    projection_range_basis: str | None  # where the range comes from, or why there is none
    projected_duration_s: float | None
    projection_method: str | None
    projected_phases_kwh: dict[str, float] = field(default_factory=dict)
    phases_kwh: dict[str, float] | None = None  # measured, per phase (None: a dry run)
    projection_error_pct: float | None = None  # (measured - projected) / projected
    resumed_from_epoch: int = 0  # 0: a fresh run
    weights_artifact_id: str | None = None  # the trained weights in the study's artifact store

    @property
    def trained(self) -> bool:
        """Weights were trained (not a dry run)."""
        return not self.dry_run

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready keys, as ``econas train --json`` prints them."""
        return dataclasses.asdict(self)
