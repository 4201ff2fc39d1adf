"""The ``combined`` row at the final budget: candidates ranked at a cheap, stated budget, the
chosen one trained as ``econas train`` trains it.

Training every candidate at the final budget would cost several final trainings, so the
search runs at the **selection budget**: every combination of training precision (fp32 plus
``ablate.precision`` unless the calibration excludes it), distillation on or off (the teacher
is the baseline row's final model), pruning ratio (``ablate.select_prune_ratios``; a pruned
candidate's structure trained from scratch, as it will be at the final budget) is trained by
the config's ``[train]`` recipe on the first ``select_train_size`` training images
(``[data] train_size``), and each deployed quantization (fp32 plus what the target runs and
the calibration keeps) is judged on the validation split (``[ablate] select_val_size``
images, large enough to rank candidates; the test split stays for the table).

Each candidate's lifecycle energy is its training at the final budget plus
``inference_predictions`` predictions at its measured energy per 1k. Its final training is
projected from its selection training by the ratio of sample-epochs (final over selection),
plus the teacher's share when it distils; the baseline's setting reuses the baseline row's
measured training. The winner is the largest lifecycle-energy cut within
``max_accuracy_loss_pts`` of the baseline's setting at the selection budget (else the
baseline's setting). It is then trained at the final budget (:func:`train_final`, once) and
deployed; the baseline's setting is the baseline row's model, quantized if chosen.

The row's training energy: the selection's windows (trainings, teacher passes, quantizations,
validation passes, inference measurements), the winner's final training, and the teacher's
training (shared over ``teacher_amortised_over``) when it distils, or the baseline's training
in full when it is the baseline's model.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from nas.compression.distill import TEACHER_WINDOW
from nas.compression.recipe import MeterWindows, scratch_model
from nas.compression.row_context import AblationContext
from nas.compression.selection import (
    choice_note,
    choose,
    chosen_details,
    deploy_and_score,
    is_reference,
    measure_candidates,
)
from nas.compression.techniques import (
    pruned_structure_for,
    quantize_window,
    scaled,
    train_final,
)
from nas.energy import Measurement, WindowAccumulator, combine
from nas.train import train_model
from nas.trial import Deployed

FINAL_KEYS = ("precision", "distillation", "prune_ratio", "quantization")


def _candidates(
    ctx: AblationContext, cost: list[Measurement]
) -> tuple[list[dict[str, Any]], list[torch.nn.Module], list[torch.device]]:
    """Every candidate trained at the selection budget and judged on the validation split."""
    s = ctx.section
    data, plan = ctx.select_data, ctx.run.plan()  # the config's recipe: the selection budget
    precisions = ["fp32", *([s.precision] if ctx.allowed_precision(s.precision) else [])]
    quants = ["fp32", *ctx.allowed_quantizations()]
    candidates: list[dict[str, Any]] = []
    models: list[torch.nn.Module] = []
    where: list[torch.device] = []
    for precision, distill, ratio in itertools.product(
        precisions, s.select_distillation, s.select_prune_ratios
    ):
        choice = ctx.choice(precision=precision, distill=bool(distill), prune_ratio=ratio)
        passes = WindowAccumulator(ctx.meter, TEACHER_WINDOW) if distill else None
        structure = (
            pruned_structure_for(ctx.spec, ratio, s.prune_criterion, ctx.seed) if ratio else None
        )
        torch.manual_seed(ctx.seed)
        model, cand_plan = scratch_model(
            ctx.spec, structure, choice, plan, teacher=ctx.teacher(choice), passes=passes
        )
        windows = MeterWindows(ctx.meter)
        with windows("select_train"):
            train_model(model, data, cand_plan)
        cost.extend(windows.measurements)
        model.eval()
        for q in quants:
            deployed, dev, acc = deploy_and_score(ctx, model, q, cost)
            candidates.append(
                {
                    "precision": precision,
                    "distillation": bool(distill),
                    "prune_ratio": ratio,
                    "quantization": q,
                    "val_accuracy": acc,
                    "selection_train_kwh": windows.measurements[-1].energy_kwh,
                }
            )
            models.append(deployed)
            where.append(dev)
    return candidates, models, where


def select_final(ctx: AblationContext) -> Deployed:
    """Search at the selection budget, train the winner at the final one (module docstring)."""
    assert ctx.baseline is not None  # the baseline row runs first
    s, base = ctx.section, ctx.baseline
    cost: list[Measurement] = []  # every window the search ran
    candidates, models, where = _candidates(ctx, cost)
    measure_candidates(ctx, candidates, models, where, cost)
    base_kwh = combine(base.train, "teacher").energy_kwh
    select_epochs, final_epochs = ctx.run.plan().epochs, ctx.epochs
    scale = (len(ctx.data.train) * final_epochs) / (len(ctx.select_data) * select_epochs)
    for c in candidates:
        from_base = c["precision"] == "fp32" and not c["distillation"] and not c["prune_ratio"]
        teacher = base_kwh / s.teacher_amortised_over if c["distillation"] else 0.0
        c["final_training_kwh_projected"] = (
            base_kwh if from_base else c["selection_train_kwh"] * scale + teacher
        )
        c["training_path_kwh"] = c["final_training_kwh_projected"]
    best, qualified = choose(ctx, candidates)
    search = combine(cost, "selection")
    combination = {k: best[k] for k in FINAL_KEYS}
    from_base = is_reference({**best, "quantization": "fp32"})
    if from_base:  # the baseline row's model (quantized if chosen): no training again
        if best["quantization"] == "fp32":
            deployed = Deployed(model=base.model, device=base.device, float_model=base.float_model)
        else:
            deployed, m = quantize_window(ctx, base.float_model, best["quantization"])
            cost.append(m)
        path = list(base.train)
        own: list[Measurement] = []
    else:
        ratio = best["prune_ratio"]
        structure = (
            pruned_structure_for(ctx.spec, ratio, s.prune_criterion, ctx.seed) if ratio else None
        )
        passes = WindowAccumulator(ctx.meter, TEACHER_WINDOW) if best["distillation"] else None
        choice = ctx.choice(
            precision=best["precision"],
            distill=best["distillation"],
            prune_ratio=ratio,
            quantization=best["quantization"],
        )
        deployed = train_final(ctx, ctx.spec, choice, structure=structure, passes=passes)
        own = list(deployed.train)
        n = s.teacher_amortised_over
        path = [scaled(m, 1.0 / n) for m in base.train] if best["distillation"] else []
    details: dict[str, Any] = {
        "combination": combination,
        "student": ctx.spec.encode(),  # the baseline architecture (pruned per prune_ratio)
        "qualifying": qualified,
        "note": choice_note(ctx, best, qualified, "at the selection budget"),
        "max_accuracy_loss_pts": s.max_accuracy_loss_pts,
        "selection_cost_kwh": search.energy_kwh,
        "selection_duration_s": search.duration_s,
        "selection_candidates": candidates,
        "selection_split": "val",
        "selection_budget": {
            "train_images": len(ctx.select_data),
            "epochs": select_epochs,
            "val_images": len(ctx.data.val),
            "recipe": "[train] recipe; pruned candidates' structures from scratch",
            "final_over_selection_sample_epochs": scale,
        },
        "final_training_kwh": combine(own, "final").energy_kwh if own else 0.0,
        **chosen_details(best, base_kwh, s.teacher_amortised_over, from_base=from_base),
    }
    return Deployed(
        model=deployed.model,
        device=ctx.deploy_device(best["quantization"]),
        float_model=deployed.float_model,
        train=[*path, *cost, *own],
        details=details,
    )
