"""The table in words: :func:`format_table` (``econas ablate``'s text output) and
:func:`markdown_table` (the README's technique table, generated from a results file)."""

from __future__ import annotations

import math
from typing import Any

from nas.ablation._reference import COMBINED_ROWS, PAPER, PAPER_SETUP, REFERENCE
from nas.compression.selection import describe

TEXT_COLUMNS = (
    ("technique", "technique", "<16"),
    ("acc", "accuracy", ".4f"),
    ("Δacc pts", "accuracy_delta", "+.2f"),
    ("train kWh", "train_energy_kwh", ".3e"),
    ("Δtrain%", "train_energy_change_pct", "+.1f"),
    ("train kgCO2e", "train_kgco2e", ".3e"),
    ("ΔtrainCO2e%", "train_carbon_change_pct", "+.1f"),
    ("inf kWh/1k", "inference_energy_kwh_per_1k", ".3e"),
    ("Δinf%", "inference_energy_change_pct", "+.1f"),
    ("life kWh", "energy_kwh", ".3e"),
    ("Δlife%", "energy_change_pct", "+.1f"),
    ("life kgCO2e", "kgco2e", ".3e"),
    ("ΔlifeCO2e%", "carbon_change_pct", "+.1f"),
    ("params", "params", "d"),
    ("flops", "flops", "d"),
    ("lat ms", "latency_ms", ".3f"),
)


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def _grid(cells: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]


def budget_line(result: dict[str, Any]) -> str:
    b = result.get("budget") or {}
    d = result["data"]
    if b.get("name") == "final":
        how = "every row trained as `econas train` trains a trial"
    else:
        how = "every row trained by the [train] recipe on [data]'s subsets (a search trial's)"
    return (
        f"budget {b.get('name', 'proxy')}: {how}: {b.get('epochs')} epoch(s) on "
        f"{d['train']:,} training images (batch {b.get('batch_size')}, lr {b.get('lr')}, "
        f"{b.get('schedule')}), accuracy once on {d['test']:,} test images"
    )


def grid_line(result: dict[str, Any]) -> str:
    g = result.get("grid") or {}
    share = (result.get("lifecycle") or {}).get("schedulable_inference_share", 0.0)
    return (
        f"grid: {g.get('trace')} trace ({g.get('slot_minutes', 0):g}-min slots), each job "
        f"averaged over every hourly start; scheduled rows (scheduling, paper_combined, combined): "
        f"{g.get('policy')} on the {g.get('forecast')} forecast within "
        f"{g.get('window_hours', 0):g} h; {share:.0%} of inference declared batch-schedulable"
    )


def format_table(result: dict[str, Any]) -> str:
    """``econas ablate``'s human output: the table, then what it rests on, then the paper."""
    cells = [[h for h, _, _ in TEXT_COLUMNS]]
    for row in result["rows"]:
        cells.append(
            [_fmt(row.get(k), f) if k != "technique" else row[k] for _, k, f in TEXT_COLUMNS]
        )
    life, m = result["lifecycle"], result["meter"]
    lines = _grid(cells)
    lines += [
        "",
        budget_line(result),
        f"baseline {result['baseline_arch']} on {result['data']['dataset']}, "
        f"{result['repeats']} repeat(s), seeds {', '.join(str(x) for x in result['seeds'])}",
        f"lifecycle: 1 training + {life['inference_predictions']:,} predictions in batches of "
        f"{life['inference_batch_size']}; latency_ms is per batch; "
        f"{result['torch_threads']} torch thread(s)",
        f"meter: {m['source']} ({m['kind']}) on {m['hardware']}",
        grid_line(result),
        *_intensity_lines(result),
        *_notes(result),
        "",
        f"versus {PAPER}, {PAPER_SETUP} (its scope: the training job):",
        *(f"  {line}" for line in result["comparison"]),
    ]
    return "\n".join(lines)


def _intensity_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for row in result["rows"]:
        if row["technique"] not in ("baseline", "scheduling", *COMBINED_ROWS):
            continue
        lines.append(
            f"{row['technique']}: training charged {row['train_intensity_g_per_kwh']:.4g} "
            f"gCO2e/kWh ({row['train_intensity_source']}); inference "
            f"{row['inference_intensity_g_per_kwh']:.4g} ({row['inference_intensity_source']})"
        )
    ran = result.get("ran_at")
    if ran:
        lines.append(
            f"(the work itself ran here at {ran['intensity_g_per_kwh']:.4g} gCO2e/kWh, "
            f"{ran['intensity_source']}; the table charges the grid above)"
        )
    return lines


def _notes(result: dict[str, Any]) -> list[str]:
    """What the calibration, the scheduler and the combined search decided, row by row."""
    lines: list[str] = []
    for row in result["rows"]:
        name = row["technique"]
        if row.get("emulated"):
            lines.append(f"{name}: emulated on this hardware ({row.get('hardware_note')})")
        if row.get("excluded"):
            lines.append(f"{name}: excluded from combined: {row.get('excluded_reason')}")
        sched = row.get("scheduling")
        if sched and name == "scheduling":
            lines.append(
                f"scheduling: a {sched['job_hours']:g}-h job saves {sched['saving_pct']:.1f}% "
                f"({sched['forecast']} forecast; the oracle {sched['oracle_saving_pct']:.1f}%) "
                f"over {sched['jobs']:,} hourly starts; energy and accuracy are the baseline's"
            )
        be = row.get("break_even_predictions")
        if name not in ("baseline", "scheduling") and "break_even_predictions" in row:
            lines.append(
                f"{name}: extra training energy never paid back by inference"
                if be is None
                else f"{name}: extra training energy paid back after {be:,.0f} predictions"
            )
    for d in result.get("details", {}).get("combined", [])[:1]:
        if "combination" in d:
            lines.append(
                f"combined (repeat 1): {describe(d['combination'])} + scheduling; {d['note']}; "
                f"selection search {d['selection_cost_kwh']:.3e} kWh, counted in the row"
            )
    sel = result.get("combined_selection")
    if sel:
        lines.append(_selection_line(sel, result["repeats"]))
    cal = result.get("calibration")
    if cal:
        charged = "reused, charged 0" if cal.get("reused") else "counted in the combined row"
        lines.append(
            f"calibration: {cal['rounds']} interleaved rounds, {cal['energy_kwh']:.3e} kWh "
            f"({cal['energy_kind']}; {charged})"
        )
    return ["", *lines] if lines else []


def _selection_line(sel: dict[str, Any], repeats: int) -> str:
    chosen = "; ".join(f"{k} ({v} of {repeats})" for k, v in sel["chosen"].items())
    text = f"combined's choice over repeats: {chosen}"
    if sel.get("val_images"):
        text += (
            f"; ranked on {sel['val_images']:,} validation images after training on "
            f"{sel['train_images']:,} images for {sel['epochs']} epoch(s)"
        )
    loss = sel.get("chosen_val_accuracy_loss_pts")
    if loss:
        text += (
            f"; the chosen setting's validation change {0.0 - loss['max']:+.2f} to "
            f"{0.0 - loss['min']:+.2f} pts"
        )
    delta = sel.get("chosen_test_accuracy_delta_pts")
    if delta:
        text += f", test change {delta['min']:+.2f} to {delta['max']:+.2f} pts"
    return text


# -- the README table ------------------------------------------------------------------------
def _ours(row: dict[str, Any], col: str, digits: int) -> str:
    value = row.get(col)
    if value is None or not math.isfinite(value):
        return "n/a"
    text = f"{value:+.{digits}f}"
    ci = row.get(f"{col}_ci95")
    if ci:
        text += f" [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"
    return text


def _paper(name: str, col: str, digits: int) -> str:
    ref = REFERENCE.get(name, {})
    return f"{ref[col]:+.{digits}f}" if col in ref else "—"


def _row_note(row: dict[str, Any], result: dict[str, Any]) -> str:
    name = row["technique"]
    notes = []
    if row.get("emulated"):
        notes.append("emulated here")
    if row.get("excluded"):
        notes.append("excluded from combined by the calibration")
    sched = row.get("scheduling")
    if sched:
        notes.append(
            f"{sched['policy']}, {sched['forecast']} forecast, {sched['window_hours']:g} h window "
            f"(oracle {-sched['oracle_saving_pct']:+.1f}%)"
        )
    if name in COMBINED_ROWS:
        setting = row.get("technique_setting")
        if setting:
            word = "the paper's recipe" if name == "paper_combined" else "chosen"
            notes.append(f"{word}: {setting}")
        verdicts = row.get("target_verdicts") or {}
        if verdicts:
            notes.append(
                f"training scope: {verdicts.get('training')}; lifecycle: {verdicts.get('lifecycle')}"
            )
    return "; ".join(notes)


def markdown_table(result: dict[str, Any]) -> str:
    """The README's technique table from a results file: the paper's figures beside ours,
    column for column (ours: mean [95% interval] over repeats), then what they rest on."""
    head = (
        "| technique | Δacc pts: paper | Δacc pts: ours | Δtraining energy %: paper | "
        "Δtraining energy %: ours | Δtraining CO2e %: paper | Δtraining CO2e %: ours | "
        "Δlifecycle CO2e %: ours | note |"
    )
    lines = [head, "|" + "---|" * 9]
    for row in result["rows"]:
        name = row["technique"]
        cells = [
            name,
            _paper(name, "accuracy_delta", 1),
            _ours(row, "accuracy_delta", 2),
            _paper(name, "train_energy_change_pct", 0),
            _ours(row, "train_energy_change_pct", 1),
            _paper(name, "train_carbon_change_pct", 0),
            _ours(row, "train_carbon_change_pct", 1),
            _ours(row, "carbon_change_pct", 1),
            _row_note(row, result),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    bench = result.get("benchmark") or {}
    prov = result.get("hardware_provenance") or {}
    m = result["meter"]
    caption = [
        f"Paper: {PAPER}, {PAPER_SETUP}, on the training job. Ours: "
        f"`{bench.get('command', 'econas ablate')}` ({result['repeats']} repeat(s); mean "
        "[95% t-interval over repeats]); energy from "
        f"{m['source']} ({m['kind']}) on {m['hardware']}"
        + (f", CPU features {prov.get('cpu_isa')}" if prov.get("cpu_isa") else "")
        + ".",
        budget_line(result) + ".",
        grid_line(result) + ".",
        f"Lifecycle = training + {result['lifecycle']['inference_predictions']:,} predictions "
        f"in batches of {result['lifecycle']['inference_batch_size']}.",
    ]
    sel = result.get("combined_selection")
    if sel:
        caption.append(_selection_line(sel, result["repeats"]) + ".")
    return "\n".join([*lines, "", *caption])
