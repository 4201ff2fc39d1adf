"""From proxy to product: train a chosen trial at full budget (``econas train``).

    options = FinalOptions.of(config, epochs=5)
    outputs = train_trials(study, [3], config, options)   # what econas train --json prints

or, one trial by hand::

    run = FinalRun(study, trial, final_context(config, options), options)
    projection = run.project()       # before spending: energy and kgCO2e
    record = run.run(projection)     # metered, checkpointed, resumable

The record (``nas.record.Final`` names) is stored in the study and merged into the trial's
record by :class:`nas.record.TrialRecord`; ``econas export`` ships its weights.
"""

from __future__ import annotations

from nas.final._checkpoint import Checkpoint, CheckpointDir
from nas.final._options import BudgetStop, FinalOptions, final_context
from nas.final._project import Projection, project_energy
from nas.final._run import FinalRun
from nas.final._train import summary, top_of_front, train_trials

__all__ = [
    "BudgetStop",
    "Checkpoint",
    "CheckpointDir",
    "FinalOptions",
    "FinalRun",
    "Projection",
    "final_context",
    "project_energy",
    "summary",
    "top_of_front",
    "train_trials",
]
