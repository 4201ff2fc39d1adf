"""`econas ablate CONFIG`: baseline vs. pruning, quantization, distillation, mixed precision, combined."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from nas.commands._common import config_from_args, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ablate",
        help="measure each compression/efficient-training technique against a baseline",
        description="Train the [ablate] baseline architecture, then each technique alone and all "
        "combined on the same data, budget and meter; print accuracy, training and inference "
        "energy, lifecycle energy and kgCO2e, params, FLOPs and latency per row.",
    )
    p.add_argument("config", help="study config (TOML) with an optional [ablate] section")
    p.add_argument("--dataset", help="fashion-mnist | cifar10 | npz:PATH")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--meter", help="auto | nvml | rapl | estimate")
    p.add_argument("--repeats", type=int, help="repeats with seeds seed, seed+1, ... (spread)")
    p.add_argument("--seed", type=int, help="first seed (default: study.seed)")
    p.add_argument("--json", action="store_true", help="print the table and its spread as JSON")
    p.set_defaults(func=run)


def _fmt(value: Any, spec: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    return format(value, spec)


def format_table(result: dict[str, Any]) -> str:
    cols = [
        ("technique", "technique", "<16"),
        ("acc", "accuracy", ".4f"),
        ("Δacc pts", "accuracy_delta", "+.2f"),
        ("train kWh", "train_energy_kwh", ".3e"),
        ("Δtrain%", "train_energy_change_pct", "+.1f"),
        ("inf kWh/1k", "inference_energy_kwh_per_1k", ".3e"),
        ("Δinf%", "inference_energy_change_pct", "+.1f"),
        ("life kWh", "energy_kwh", ".3e"),
        ("Δenergy%", "energy_change_pct", "+.1f"),
        ("kgCO2e", "kgco2e", ".3e"),
        ("Δcarbon%", "carbon_change_pct", "+.1f"),
        ("params", "params", "d"),
        ("flops", "flops", "d"),
        ("lat ms", "latency_ms", ".3f"),
    ]
    cells = [[h for h, _, _ in cols]]
    for row in result["rows"]:
        cells.append([_fmt(row[k], f) if k != "technique" else row[k] for _, k, f in cols])
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    life = result["lifecycle"]
    m = result["meter"]
    row0 = result["rows"][0]
    lines += [
        "",
        f"baseline {result['baseline_arch']} on {result['data']['dataset']} "
        f"({result['data']['train']} train / {result['data']['test']} test images), "
        f"{result['repeats']} repeat(s), seeds {result['seeds']}",
        f"lifecycle: 1 training + {life['inference_predictions']:,} predictions in batches of "
        f"{life['inference_batch_size']}; latency_ms is per batch; accuracy on the test split; "
        f"{result['torch_threads']} torch thread(s)",
        f"meter: {m['source']} ({m['kind']}) on {m['hardware']}; intensity "
        f"{row0['intensity_g_per_kwh']:.1f} gCO2e/kWh ({row0['intensity_source']})",
        *_notes(result),
        "",
        "versus the reference paper (CodeCarbon, V100):",
        *(f"  {line}" for line in result["comparison"]),
    ]
    return "\n".join(lines)


def _notes(result: dict[str, Any]) -> list[str]:
    """What the calibration and the combined search decided, row by row."""
    lines: list[str] = []
    for row in result["rows"]:
        name = row["technique"]
        if row.get("emulated"):
            lines.append(f"{name}: emulated on this hardware ({row.get('hardware_note')})")
        if row.get("excluded"):
            lines.append(f"{name}: excluded from combined: {row.get('excluded_reason')}")
        be = row.get("break_even_predictions")
        if name != "baseline" and "break_even_predictions" in row:
            lines.append(
                f"{name}: extra training energy never paid back by inference"
                if be is None
                else f"{name}: extra training energy paid back after {be:,.0f} predictions"
            )
    for d in result.get("details", {}).get("combined", [])[:1]:
        if "combination" in d:
            lines.append(
                f"combined (repeat 1): {d['combination']}; {d['note']}; selection search "
                f"{d['selection_cost_kwh']:.3e} kWh, counted in the row"
            )
    cal = result.get("calibration")
    if cal:
        charged = "reused, charged 0" if cal.get("reused") else "counted in the combined row"
        lines.append(
            f"calibration: {cal['rounds']} interleaved rounds, {cal['energy_kwh']:.3e} kWh "
            f"({cal['energy_kind']}; {charged})"
        )
    return ["", *lines] if lines else []


def run(args: argparse.Namespace) -> int:
    from nas.ablation import run_ablation
    from nas.errors import BadInputError

    if args.repeats is not None and args.repeats < 1:
        raise BadInputError("--repeats must be >= 1")
    cfg = config_from_args(args)
    result = run_ablation(
        cfg,
        repeats=args.repeats,
        seed=args.seed,
        progress=lambda msg: print(f"econas ablate: {msg}", file=sys.stderr, flush=True),
    )
    if args.json:
        print_json(result)
    else:
        print(format_table(result))
    return 0
