"""The ``combined`` row of ``econas ablate``, chosen by a small metered search, not fixed.

At the final budget the search is :mod:`nas.compression.combined_final`'s; this module's is
the proxy budget's (:func:`select_combined` dispatches). For the baseline architecture the
search tries every combination of training precision (fp32 plus ``ablate.precision`` unless the calibration excludes it here), distillation on or
off (the baseline is the teacher), pruning ratio (``ablate.select_prune_ratios``) with each
fine-tune length (``ablate.select_finetune_epochs``) and deployed quantization (fp32 plus what
the deployment target runs and the calibration keeps). Each candidate's accuracy is measured
on the **validation** split (the test split stays for the table) and its lifecycle energy is
its training path plus ``inference_predictions`` predictions at its measured energy per 1k.
The winner is the largest lifecycle-energy cut whose validation accuracy loss against the
baseline is within ``ablate.max_accuracy_loss_pts``; when none cuts energy within the limit,
the baseline model is deployed and the row says so.

Everything the search ran (trainings, fine-tunes, quantizations, validation passes and
inference measurements) is its cost, counted in the row's training energy together with the
teacher's training (the baseline's, amortised over ``ablate.teacher_amortised_over``) or,
when the winner starts from the baseline's weights, the baseline's training in full.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import torch

from nas.compression.distill import TEACHER_WINDOW
from nas.compression.row_context import AblationContext
from nas.compression.selection import (
    KEYS,
    choice_note,
    choose,
    chosen_details,
    deploy_and_score,
    measure_candidates,
)
from nas.compression.techniques import (
    prune_window,
    scaled,
    train_window,
)
from nas.energy import Measurement, WindowAccumulator, combine
from nas.trial import Deployed
from search_spaces import build_model


def select_combined(ctx: AblationContext) -> Deployed:
    """Search the combinations (module docstring); the winner as the row's :class:`Deployed`
    (at the final budget, :func:`nas.compression.combined_final.select_final`'s)."""
    if ctx.final:
        from nas.compression.combined_final import select_final

        return select_final(ctx)
    assert ctx.baseline is not None  # the baseline row runs first
    s, base = ctx.section, ctx.baseline
    cost: list[Measurement] = []  # every window the search ran
    precisions = ["fp32", *([s.precision] if ctx.allowed_precision(s.precision) else [])]
    quants = ["fp32", *ctx.allowed_quantizations()]
    teacher_kwh = combine(base.train, "teacher").energy_kwh
    candidates: list[dict[str, Any]] = []
    built: dict[tuple[Any, ...], tuple[torch.nn.Module, torch.nn.Module]] = {}
    where: list[torch.device] = []
    for precision, distill in itertools.product(precisions, s.select_distillation):
        passes = WindowAccumulator(ctx.meter, TEACHER_WINDOW) if distill else None
        plan = ctx.plan(precision=precision, distill=bool(distill), passes=passes)
        if precision == "fp32" and not distill:
            trained = copy.deepcopy(base.float_model)  # the baseline's weights: no training
        else:
            torch.manual_seed(ctx.seed)
            trained = build_model(ctx.spec)
            cost.append(train_window(ctx, trained, "train", plan))
        for ratio in s.select_prune_ratios:
            for ft in s.select_finetune_epochs if ratio > 0 else (0,):
                model = copy.deepcopy(trained)
                if ratio > 0:  # the fine-tune keeps the training's precision and teacher
                    m, _ = prune_window(ctx, model, ratio, ctx.finetune_plan(plan, ft))
                    cost.append(m)
                model.eval()
                for q in quants:
                    deployed, dev, acc = deploy_and_score(ctx, model, q, cost)
                    settings = {
                        "precision": precision,
                        "distillation": bool(distill),
                        "prune_ratio": ratio,
                        "finetune_epochs": ft,
                        "quantization": q,
                    }
                    candidates.append({**settings, "val_accuracy": acc})
                    built[tuple(settings.values())] = (deployed, model)
                    where.append(dev)
    models = list(built.values())
    measure_candidates(ctx, candidates, [m[0] for m in models], where, cost)
    # The lifecycle of each candidate: training path + predictions (the selection's own cost
    # is the same for every candidate, so it does not change the choice; it is in the row).
    path_kwh = {
        # from the baseline's weights: its training in full; distilled: the teacher's share
        True: teacher_kwh,
        False: teacher_kwh / s.teacher_amortised_over,
    }
    for c in candidates:
        from_base = c["precision"] == "fp32" and not c["distillation"]
        c["training_path_kwh"] = path_kwh[from_base]  # + its own windows, in the search cost
    best, qualified = choose(ctx, candidates)
    deployed, float_model = built[tuple(best[k] for k in KEYS)]
    search = combine(cost, "selection")
    from_base = best["precision"] == "fp32" and not best["distillation"]
    teacher = (
        base.train if from_base else [scaled(m, 1.0 / s.teacher_amortised_over) for m in base.train]
    )
    note = choice_note(ctx, best, qualified, "at the proxy budget")
    details: dict[str, Any] = {
        "combination": {k: best[k] for k in KEYS},
        "student": ctx.spec.encode(),  # the baseline architecture (pruned per prune_ratio)
        "qualifying": qualified,
        "note": note,
        "max_accuracy_loss_pts": s.max_accuracy_loss_pts,
        "selection_cost_kwh": search.energy_kwh,
        "selection_duration_s": search.duration_s,
        "selection_candidates": candidates,
        "selection_split": "val",
        **chosen_details(best, teacher_kwh, s.teacher_amortised_over, from_base=from_base),
    }
    return Deployed(
        model=deployed,
        device=ctx.deploy_device(best["quantization"]),
        float_model=float_model,
        train=[*teacher, *cost],
        details=details,
    )
