"""One repeat's rows measured: accuracy, cost and training energy per row, inference energy
in interleaved rounds, then each scope's carbon on the grid and the changes against the
baseline row."""

from __future__ import annotations

import statistics
from typing import Any

from nas.ablation._grid import Grid
from nas.compression.techniques import SAME_AS, AblationContext, total_train
from nas.trial import Deployed

MEASURED = (  # what a row that is another row's model copies from it
    "accuracy",
    "train_energy_kwh",
    "train_duration_s",
    "params",
    "flops",
    "inference_device",
    "energy_source",
    "energy_kind",
    "hardware",
)


def measure_row(
    ctx: AblationContext, name: str, dep: Deployed, done: list[dict[str, Any]]
) -> dict[str, Any]:
    """Accuracy on the test split, cost and training energy of one row (inference comes in
    :func:`measure_inference`); a row that is another row's model (``same_as_row``) copies
    that row's measurements instead of measuring the same model twice."""
    from nas.cost import analyze_cost
    from nas.train import evaluate

    same = dep.details.get(SAME_AS)
    row: dict[str, Any] = {"technique": name, "scheduled": bool(dep.details.get("scheduled"))}
    if same is not None:
        source = next(r for r in done if r["technique"] == same)
        return {**row, **{k: source[k] for k in MEASURED}, SAME_AS: same}
    train = total_train(dep)
    cost = analyze_cost(dep.float_model, (1, *ctx.input_shape))
    return {
        **row,
        "accuracy": evaluate(dep.model, ctx.data.test, device=dep.device),
        "train_energy_kwh": train.energy_kwh,
        "params": cost.params,
        "flops": cost.flops,
        "inference_device": str(dep.device),
        "train_duration_s": train.duration_s,
        "energy_source": train.source,
        "energy_kind": train.kind,
        "hardware": train.hardware,
    }


def measure_inference(
    ctx: AblationContext, rows: list[dict[str, Any]], deployed: list[Deployed]
) -> None:
    """Inference energy and latency of every row, in interleaved rounds (median per row), so a
    burst of load on a shared machine does not land on one row only; a row that is another
    row's model gets that row's figures."""
    from nas.inference import measure_inference as measure

    s = ctx.section
    own = [i for i, row in enumerate(rows) if SAME_AS not in row]
    energy: dict[int, list[float]] = {i: [] for i in own}
    latency: dict[int, list[float]] = {i: [] for i in own}
    for _ in range(s.inference_rounds):
        for i in own:
            dep = deployed[i]
            inf = measure(
                dep.model,
                input_shape=ctx.input_shape,
                batch_size=s.inference_batch_size,
                device=str(dep.device),
                meter=ctx.meter,
                min_duration_s=s.inference_min_duration_s,
            )
            energy[i].append(inf.energy_kwh_per_1k)
            latency[i].append(inf.latency_ms)
            if inf.measurement.kind == "estimated":
                rows[i]["energy_kind"] = "estimated"
    for i in own:
        rows[i]["inference_energy_kwh_per_1k"] = statistics.median(energy[i])
        rows[i]["latency_ms"] = statistics.median(latency[i])
    by_name = {r["technique"]: r for r in rows}
    for row in rows:
        if SAME_AS in row:
            source = by_name[row[SAME_AS]]
            for k in ("inference_energy_kwh_per_1k", "latency_ms", "energy_kind"):
                row[k] = source[k]


def break_even_predictions(row: dict[str, Any], base: dict[str, Any]) -> float | None:
    """Predictions after which ``row``'s extra training energy is paid back by its inference
    saving over ``base``: 0 when it trains for no more; None when it never is (no saving per
    prediction, or a dearer prediction)."""
    extra = row["train_energy_kwh"] - base["train_energy_kwh"]
    saving = (base["inference_energy_kwh_per_1k"] - row["inference_energy_kwh_per_1k"]) / 1000.0
    if extra <= 0:
        return 0.0 if saving >= 0 else None
    return extra / saving if saving > 0 else None


def _pct(new: float, old: float) -> float:
    return (new - old) / old * 100.0 if old > 0 else float("nan")


CHANGES = (  # change column -> the column it compares with the baseline row's
    ("train_energy_change_pct", "train_energy_kwh"),
    ("inference_energy_change_pct", "inference_energy_kwh_per_1k"),
    ("energy_change_pct", "energy_kwh"),
    ("train_carbon_change_pct", "train_kgco2e"),
    ("inference_carbon_change_pct", "inference_kgco2e"),
    ("carbon_change_pct", "kgco2e"),
)


def add_scopes(rows: list[dict[str, Any]], grid: Grid, predictions: int) -> None:
    """Each row's training, inference and lifecycle energy and carbon, each with the intensity
    it was charged (:class:`~nas.ablation._grid.Grid`), and their changes against the
    baseline row (the first)."""
    from nas.carbon import kgco2e

    for row in rows:
        train = grid.training(row["train_duration_s"], scheduled=row["scheduled"])
        serve = grid.inference(scheduled=row["scheduled"])
        inference_kwh = row["inference_energy_kwh_per_1k"] * predictions / 1000.0
        row["inference_energy_kwh"] = inference_kwh
        row["energy_kwh"] = row["train_energy_kwh"] + inference_kwh
        row["train_kgco2e"] = kgco2e(row["train_energy_kwh"], train.intensity_g_per_kwh)
        row["train_intensity_g_per_kwh"] = train.intensity_g_per_kwh
        row["train_intensity_source"] = train.source
        row["inference_kgco2e"] = kgco2e(inference_kwh, serve.intensity_g_per_kwh)
        row["inference_intensity_g_per_kwh"] = serve.intensity_g_per_kwh
        row["inference_intensity_source"] = serve.source
        row["kgco2e"] = row["train_kgco2e"] + row["inference_kgco2e"]
        e = row["energy_kwh"]
        row["intensity_g_per_kwh"] = row["kgco2e"] * 1000.0 / e if e > 0 else float("nan")
        row["intensity_source"] = (
            f"lifecycle: training at {train.intensity_g_per_kwh:.4g} and inference at "
            f"{serve.intensity_g_per_kwh:.4g} gCO2e/kWh ({grid.trace.name})"
        )
        row["scheduling"] = train.scheduling
    base = rows[0]
    for row in rows:
        row["accuracy_delta"] = (row["accuracy"] - base["accuracy"]) * 100.0
        for col, ref in CHANGES:
            row[col] = _pct(row[ref], base[ref])
        row["break_even_predictions"] = break_even_predictions(row, base)
