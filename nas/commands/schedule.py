"""`econas schedule simulate`: replay jobs over carbon-intensity traces, savings vs run-now."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nas.commands._common import print_json

if TYPE_CHECKING:
    from nas.scheduling import SimulationResult

# kept equal to nas.scheduling.FORECASTERS / POLICIES (tested) so `--help` needs no numpy

_FORECASTS = ("persistence", "seasonal", "oracle")
_POLICIES = ("run-now", "flexible-start", "pause-resume", "spatial")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedule", help="carbon-aware scheduling: replay policies over traces")
    verbs = p.add_subparsers(dest="schedule_command", metavar="VERB", parser_class=type(p))
    s = verbs.add_parser(
        "simulate",
        help="replay one job per arrival over a trace; savings against run-now",
        description=(
            "Replay a job arriving every --arrival-every-hours over the trace(s), schedule each "
            "with --policy from a --forecast made at its arrival, charge it the ACTUAL "
            "intensity, and report the mean per job and the saving against run-now, overall "
            "and by month. --forecast oracle is perfect foresight: an upper bound."
        ),
    )
    s.add_argument(
        "--trace",
        action="append",
        required=True,
        metavar="CSV",
        help="trace CSV or shipped name (gb_2020, fr_2020); repeat for spatial (first = home)",
    )
    s.add_argument("--job-hours", type=float, required=True, metavar="H", help="job length")
    s.add_argument(
        "--window-hours", type=float, required=True, metavar="W", help="deadline after arrival"
    )
    s.add_argument(
        "--policy",
        required=True,
        choices=_POLICIES,
        help="spatial: several --trace, best (region, start) pair",
    )
    s.add_argument(
        "--forecast",
        default="seasonal",
        choices=_FORECASTS,
        help="what the policy decides on (default: seasonal; oracle = upper bound)",
    )
    s.add_argument(
        "--arrival-every-hours", type=float, default=1.0, metavar="H", help="job spacing (1)"
    )
    s.add_argument("--job-kw", type=float, default=1.0, metavar="KW", help="job power (1 kW)")
    s.add_argument(
        "--slot-minutes", type=float, metavar="M", help="decision slot (default: trace step)"
    )
    s.add_argument(
        "--replan",
        action="store_true",
        help="flexible-start/pause-resume: decide again at every slot with a fresh forecast",
    )
    s.add_argument("--json", action="store_true", help="JSON summary on stdout")
    s.set_defaults(func=run)
    p.set_defaults(func=_missing_verb)


def _missing_verb(args: argparse.Namespace) -> int:
    from nas.errors import BadInputError

    raise BadInputError("schedule: give a verb, e.g. `econas schedule simulate --help`")


def run(args: argparse.Namespace) -> int:
    from nas.scheduling import load_trace, simulate

    traces = [load_trace(t) for t in args.trace]
    result = simulate(
        traces=traces,
        policy=args.policy,
        forecast=args.forecast,
        job_hours=args.job_hours,
        window_hours=args.window_hours,
        arrival_every_hours=args.arrival_every_hours,
        slot_minutes=args.slot_minutes,
        job_kw=args.job_kw,
        replan=args.replan,
    )
    if args.json:
        print_json(result.to_dict())
    else:
        print(format_table(result))
    return 0


def format_table(r: SimulationResult) -> str:
    """Human summary: header lines, one row per month, the overall row."""
    energy_kwh = r.job_kw * r.job_hours
    lines = [
        f"policy {r.policy}, forecast {r.forecast}"
        + (" (perfect foresight: an upper bound)" if r.forecast_is_upper_bound else "")
        + (", re-planned at every slot" if r.replan else ""),
        f"trace(s) {', '.join(r.traces)}; home region {r.regions[0]} (run-now runs there)",
        f"{r.jobs} jobs of {r.job_hours:g} h, one every {r.arrival_every_hours:g} h "
        f"({r.first_arrival} .. {r.last_arrival}), window {r.window_hours:g} h, "
        f"slots of {r.slot_minutes:g} min",
        f"job power {r.job_kw:g} kW assumed: {energy_kwh:g} kWh per job",
        "",
        f"{'month':<9} {'jobs':>6} {'run-now g/kWh':>14} {'policy g/kWh':>13} {'saving':>8}",
    ]
    for m in r.by_month:
        lines.append(
            f"{m.month:<9} {m.jobs:>6} {m.baseline_g_per_kwh:>14.1f} "
            f"{m.policy_g_per_kwh:>13.1f} {m.saving_pct:>7.1f}%"
        )
    lines.append(
        f"{'overall':<9} {r.jobs:>6} {r.baseline_g_per_kwh:>14.1f} "
        f"{r.policy_g_per_kwh:>13.1f} {r.saving_pct:>7.1f}%"
    )
    lines.append(
        f"per job: run-now {r.baseline_g_per_job:.1f} gCO2e, {r.policy} "
        f"{r.policy_g_per_job:.1f} gCO2e"
    )
    return "\n".join(lines)
