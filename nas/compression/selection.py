"""What the combined row's two searches share (:mod:`nas.compression.combined` at the proxy
budget, :mod:`nas.compression.combined_final` at the final one): each candidate's validation
accuracy in a metered window, their inference energy in interleaved rounds, and the choice,
the largest lifecycle-energy cut within ``[ablate] max_accuracy_loss_pts`` of the reference
candidate (the baseline's setting), or the reference when none qualifies.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.compression.row_context import AblationContext
from nas.energy import Measurement
from nas.stats import median

KEYS = ("precision", "distillation", "prune_ratio", "finetune_epochs", "quantization")


def evaluate_window(
    ctx: AblationContext, model: torch.nn.Module, device: torch.device
) -> tuple[float, Measurement]:
    """``model``'s accuracy on the validation split, in a ``select_eval`` window."""
    from nas.train import evaluate

    ctx.meter.begin_window("select_eval")
    try:
        acc = evaluate(model, ctx.data.val, device=device)
    finally:
        m = ctx.meter.end_window("select_eval")
    return acc, m


def measure_candidates(
    ctx: AblationContext,
    candidates: list[dict[str, Any]],
    models: list[torch.nn.Module],
    where: list[torch.device],
    cost: list[Measurement],
) -> None:
    """Inference energy of every candidate in interleaved rounds, the order rotating each
    round (median per candidate), so a burst of load does not decide the choice; each
    measurement's window in ``cost``."""
    from nas.inference import measure_inference

    s = ctx.section
    energy: list[list[float]] = [[] for _ in candidates]
    n = len(candidates)
    for r in range(s.inference_rounds):
        for i in [*range(r % n, n), *range(r % n)]:
            inf = measure_inference(
                models[i],
                input_shape=ctx.input_shape,
                batch_size=s.inference_batch_size,
                device=str(where[i]),
                meter=ctx.meter,
                min_duration_s=s.select_inference_min_duration_s,
            )
            cost.append(inf.measurement)
            energy[i].append(inf.energy_kwh_per_1k)
    for c, e in zip(candidates, energy, strict=True):
        c["inference_energy_kwh_per_1k"] = median(e)
        c["inference_rounds"] = len(e)


def is_reference(c: dict[str, Any]) -> bool:
    """The baseline's own setting: fp32, not distilled, not pruned, not quantized."""
    return (
        c["precision"] == "fp32"
        and not c["distillation"]
        and c["prune_ratio"] == 0
        and c["quantization"] == "fp32"
    )


def choose(ctx: AblationContext, candidates: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Score every candidate against the reference (``training_path_kwh`` must be set: its
    lifecycle is that plus ``inference_predictions`` predictions); the winner and whether any
    candidate qualified (else the winner is the reference)."""
    s = ctx.section
    ref = next(c for c in candidates if is_reference(c))
    for c in candidates:
        c["lifecycle_kwh"] = (
            c["training_path_kwh"]
            + c["inference_energy_kwh_per_1k"] * s.inference_predictions / 1000.0
        )
    for c in candidates:
        c["accuracy_loss_pts"] = (ref["val_accuracy"] - c["val_accuracy"]) * 100.0
        c["lifecycle_change_pct"] = (c["lifecycle_kwh"] / ref["lifecycle_kwh"] - 1.0) * 100.0
        c["qualifies"] = c["accuracy_loss_pts"] <= s.max_accuracy_loss_pts
    ok = [c for c in candidates if c["qualifies"] and c["lifecycle_kwh"] < ref["lifecycle_kwh"]]
    best = min(ok, key=lambda c: c["lifecycle_kwh"]) if ok else ref
    return best, bool(ok)


def choice_note(ctx: AblationContext, best: dict[str, Any], qualified: bool, where: str) -> str:
    """One line saying what was chosen and why (``where``: the budget it was judged at)."""
    if qualified:
        return (
            f"chosen: {best['lifecycle_change_pct']:+.1f}% lifecycle energy at "
            f"{-best['accuracy_loss_pts']:+.2f} pts validation accuracy {where} "
            "(before the search's cost)"
        )
    return (
        f"no combination cuts lifecycle energy within {ctx.section.max_accuracy_loss_pts} pts "
        f"validation accuracy loss {where}: the baseline model is deployed"
    )


def describe(combination: dict[str, Any]) -> str:
    """A combination in words: ``prune 50% + int8_static, fp32 training, not distilled``."""
    parts = []
    if combination.get("prune_ratio"):
        parts.append(f"prune {combination['prune_ratio']:.0%}")
    q = combination.get("quantization", "fp32")
    if q != "fp32":
        parts.append(q)
    head = " + ".join(parts) if parts else "no pruning or quantization"
    distilled = (
        "distilled from the baseline" if combination.get("distillation") else "not distilled"
    )
    return f"{head}, {combination.get('precision', 'fp32')} training, {distilled}"


def chosen_details(
    best: dict[str, Any], teacher_kwh: float, amortised_over: int, *, from_base: bool
) -> dict[str, Any]:
    """The combined row's chosen setting, its teacher accounting, and that it is scheduled:
    the details both budgets' selections (``combined``, ``combined_final``) record."""
    from nas.compression.techniques import teacher_details

    return {
        "quantization": best["quantization"],
        "precision": best["precision"],
        "prune_ratio": best["prune_ratio"],
        **teacher_details(
            None, teacher_kwh, 1 if from_base else amortised_over, used=best["distillation"]
        ),
        "starts_from_baseline_weights": from_base,
        "scheduled": True,  # combined = the chosen compression + scheduling (nas.ablation)
    }


def deploy_and_score(
    ctx: AblationContext, model: nn.Module, quantization: str, cost: list[Measurement]
) -> tuple[nn.Module, torch.device, float]:
    """``model`` deployed at ``quantization`` (``fp32``: as it is, on the target) and its
    validation accuracy there; the quantization and evaluation windows join ``cost``."""
    from nas.compression.techniques import quantize_window

    if quantization == "fp32":
        deployed, dev = model, ctx.target
    else:
        dep, m = quantize_window(ctx, model, quantization)
        cost.append(m)
        deployed, dev = dep.model, dep.device
    acc, m = evaluate_window(ctx, deployed, dev)
    cost.append(m)
    return deployed, dev, acc
