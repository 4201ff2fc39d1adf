"""The ``paper_combined`` row of ``econas ablate``: the paper's own combination, fixed.

Carbon-Conscious AI (Viswanath) reports "pruning, quantization and scheduling combined: up to
55% lower emissions", a fixed recipe, not a search. This row is that recipe on the baseline
architecture: the pruning row's setting (``ablate.prune_ratio``, ``ablate.prune_criterion``)
and the quantization row's (``ablate.quantization``), trained and deployed as those rows are,
and the job shifted by the scheduling row's policy. Nothing is chosen, so nothing is spent on
choosing: the row's training energy is the model's own training (at the final budget the
pruned structure from scratch, then quantized; at the proxy budget the baseline's training,
the pruning fine-tune and the quantization, as the pruning row counts them).

The ``combined`` row (:mod:`nas.compression.combined`) is econas's addition beside it: a
metered search over the same techniques, its cost counted in its row.
"""

from __future__ import annotations

import copy

from nas.compression.row_context import AblationContext
from nas.compression.techniques import (
    prune_window,
    pruned_structure_for,
    quantize_window,
    train_final,
)
from nas.trial import Deployed


def paper_combined(ctx: AblationContext) -> Deployed:
    """Prune at ``ablate.prune_ratio``, quantize at the quantization row's setting, schedule
    (module docstring)."""
    assert ctx.baseline is not None  # the baseline row runs first
    s = ctx.section
    q = ctx.quantization
    combination = {
        "precision": "fp32",
        "distillation": False,
        "prune_ratio": s.prune_ratio,
        "quantization": q,
    }
    details = {
        "combination": combination,
        "recipe": "the paper's: the pruning row's and the quantization row's settings, scheduled",
        "criterion": s.prune_criterion,
        "scheduled": True,  # the job is shifted like the scheduling row's (nas.ablation)
    }
    if ctx.final:  # the pruned structure from scratch, then quantized, as econas train does
        structure = pruned_structure_for(ctx.spec, s.prune_ratio, s.prune_criterion, ctx.seed)
        deployed = train_final(
            ctx,
            ctx.spec,
            ctx.choice(prune_ratio=s.prune_ratio, quantization=q),
            structure=structure,
        )
        deployed.details = {**details, "trained": "pruned structure, from scratch"}
        return deployed
    model = copy.deepcopy(ctx.baseline.float_model)
    finetune = ctx.finetune_plan(ctx.plan(), s.finetune_epochs)
    ft, _ = prune_window(ctx, model, s.prune_ratio, finetune)
    model.eval()
    deployed, qm = quantize_window(ctx, model, q)
    deployed.train = [*ctx.baseline.train, ft, qm]
    deployed.details = {**details, "trained": "the baseline's weights, pruned and fine-tuned"}
    return deployed
