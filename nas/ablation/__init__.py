"""The technique table (``econas ablate``): a baseline, each technique alone, scheduling, all
combined, against the paper econas implements (Carbon-Conscious AI, Viswanath).

Every row trains on the same data at the same budget (``proxy``: a search trial's; ``final``:
as ``econas train`` trains, :mod:`nas.compression.row_context`) and is measured by the same
meter; then its deployed model's test accuracy, inference energy and latency are measured,
and each scope (the training job, inference, the lifecycle of one training plus
``ablate.inference_predictions`` predictions) is charged its own intensity on a real trace,
averaged over every start hour (:mod:`nas.ablation._grid`); the scheduling and combined rows'
training is shifted by econas's carbon-aware policy. Rows are a small registry, run in
registration order (``baseline`` first; the others may use ``ctx.baseline``)::

    register_technique("federated", lambda ctx: ...)  # returns a Deployed

The built-in rows live in :mod:`nas.compression.techniques` and
:mod:`nas.compression.paper_combined` (the paper's fixed combination) and
:mod:`nas.compression.combined` (econas's metered search). Repeats use seeds
``seed, seed + 1, ...`` and the result carries each repeat's rows, their spread and 95%
intervals. :func:`format_table` and
:func:`markdown_table` put a result in words.
"""

from __future__ import annotations

from nas.ablation._budget import ablation_config, ablation_context
from nas.ablation._calibration import FLAGS, ablation_calibration, deployment_target
from nas.ablation._grid import Grid, ScopeIntensity
from nas.ablation._measure import break_even_predictions
from nas.ablation._reference import (
    PAPER,
    PAPER_SETUP,
    REFERENCE,
    SCOPES,
    TARGET,
    combined_verdict,
    compare_with_reference,
)
from nas.ablation._registry import (
    _TECHNIQUES,
    TechniqueFn,
    list_techniques,
    register_technique,
    techniques,
)
from nas.ablation._report import format_table, markdown_table
from nas.ablation._run import COLUMNS, PROVENANCE, run_ablation
from nas.compression.combined import select_combined
from nas.compression.paper_combined import paper_combined
from nas.compression.techniques import BUILTIN_TECHNIQUES
from nas.federated.ablation import federated_technique

for _name, _fn in BUILTIN_TECHNIQUES:
    register_technique(_name, _fn)
register_technique("paper_combined", paper_combined)  # the paper's fixed combination
register_technique("combined", select_combined)  # chosen by a small metered search
register_technique("federated", federated_technique)

__all__ = [
    "COLUMNS",
    "FLAGS",
    "PAPER",
    "PAPER_SETUP",
    "PROVENANCE",
    "REFERENCE",
    "SCOPES",
    "TARGET",
    "Grid",
    "ScopeIntensity",
    "TechniqueFn",
    "_TECHNIQUES",
    "ablation_calibration",
    "ablation_config",
    "ablation_context",
    "break_even_predictions",
    "combined_verdict",
    "compare_with_reference",
    "deployment_target",
    "format_table",
    "list_techniques",
    "markdown_table",
    "register_technique",
    "run_ablation",
    "techniques",
]
