"""From proxy to product: train a chosen trial at full budget (``econas train``).

    run = FinalRun(study, trial, config, FinalOptions.of(config, epochs=5))
    projection = run.project(intensity)      # before spending: energy and kgCO2e
    record = run.run(meter, intensity, projection)   # metered, checkpointed, resumable

The record (``nas.record.Final`` names) is stored in the study and merged into the trial's
record by :class:`nas.record.TrialRecord`; ``econas export`` ships its weights.
"""

from __future__ import annotations

from nas.final._checkpoint import Checkpoint, CheckpointDir
from nas.final._project import Projection, project_energy
from nas.final._run import BudgetStop, FinalOptions, FinalRun

__all__ = [
    "BudgetStop",
    "Checkpoint",
    "CheckpointDir",
    "FinalOptions",
    "FinalRun",
    "Projection",
    "project_energy",
]
