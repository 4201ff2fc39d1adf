"""`econas schedule simulate`: replay jobs over carbon-intensity traces, savings vs run-now."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nas.commands._common import print_json
from nas.text import plural

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
        type=_forecast_arg,
        metavar="FORECAST",
        help="what the policy decides on: seasonal (default), persistence, oracle (upper "
        "bound), or archive:FILE (issued forecasts, CSV issued_at,time,carbon_intensity: each "
        "decision sees the latest issue at or before it)",
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
    _add_plan(verbs)
    _add_archive(verbs)
    p.set_defaults(func=_missing_verb)


def _forecast_arg(text: str) -> str:
    if text in _FORECASTS or (text.startswith("archive:") and text.removeprefix("archive:")):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not one of {', '.join(_FORECASTS)} or archive:FILE"
    )


def _add_archive(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "forecast-archive",
        help="write a synthetic forecast archive from a trace (stated error model)",
        description=(
            "Write a CSV of issued forecasts (issued_at,time,carbon_intensity) made from the "
            "trace's actuals with an autocorrelated error whose mean absolute percentage error "
            "over all rows is --mape: relative error sigma x (0.5 + lead/horizon) x "
            "(sqrt(0.5) AR(1) over target time shared by all issues + sqrt(0.5) AR(1) over "
            "lead per issue), correlation time 6 h (see nas/scheduling/_archive.py). For "
            "what-if replays with `schedule simulate --forecast archive:FILE`."
        ),
    )
    p.add_argument("--trace", required=True, metavar="CSV", help="trace CSV or shipped name")
    p.add_argument("--mape", type=float, required=True, metavar="P", help="percent, e.g. 7")
    p.add_argument(
        "--seed", type=int, required=True, metavar="S", help="seed of the synthetic errors"
    )
    p.add_argument("--out", required=True, metavar="FILE", help="archive CSV to write")
    p.add_argument("--horizon-hours", type=float, default=48.0, metavar="H", help="(48)")
    p.add_argument("--issue-every-hours", type=float, default=1.0, metavar="H", help="(1)")
    p.add_argument("--json", action="store_true", help="a JSON summary on stdout")
    p.set_defaults(func=run_archive)


def run_archive(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.errors import BadInputError
    from nas.scheduling import load_trace, synthetic_archive, write_archive

    out = Path(args.out)
    if not out.parent.is_dir():
        raise BadInputError(f"--out: folder {out.parent} does not exist")
    trace = load_trace(args.trace)
    archive, rows = synthetic_archive(
        trace,
        mape_pct=args.mape,
        seed=args.seed,
        horizon_hours=args.horizon_hours,
        issue_every_hours=args.issue_every_hours,
    )
    write_archive(rows, out)
    summary = {
        "out": str(out),
        "trace": trace.name,
        "mape_pct": args.mape,
        "seed": args.seed,
        "issues": len(archive),
        "rows": len(rows),
        "horizon_hours": args.horizon_hours,
        "issue_every_hours": args.issue_every_hours,
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"wrote {out}: {len(archive)} issues, {len(rows)} rows, {args.mape:g}% MAPE "
            f"(synthetic, seed {args.seed}) from {trace.name}"
        )
    return 0


def _add_plan(verbs: argparse._SubParsersAction) -> None:
    p = verbs.add_parser(
        "plan",
        help="best start time for your own job, on a live source or a trace",
        description=(
            "Print the start time (UTC) that gives a --job-hours job the lowest expected mean "
            "intensity within --window-hours, with the expected saving against starting at "
            "once, and which data the forecast rests on. A live source plans from now on its "
            "own forecast (else a causal --forecast from its recent history); a trace (any "
            "source `schedule simulate` accepts) plans as of --at on a causal --forecast from "
            "the trace's past, and also states what the trace says really happened. With no "
            "data at all it is an error (exit 2) unless --fallback now."
        ),
    )
    p.add_argument(
        "--source",
        required=True,
        metavar="SOURCE",
        help="live:uk-carbon-intensity[:REGION] | live:electricitymaps:ZONE | "
        "live:watttime:REGION | a trace: shipped name (gb_2020, fr_2020), CSV path, or "
        "trace:NAME",
    )
    p.add_argument("--job-hours", type=float, required=True, metavar="H", help="job length")
    p.add_argument(
        "--window-hours", type=float, required=True, metavar="W", help="must end within W h"
    )
    p.add_argument(
        "--at",
        metavar="TIME",
        help="a trace: plan as of this time (ISO 8601, UTC, inside the trace; default now)",
    )
    p.add_argument(
        "--forecast",
        default="seasonal",
        choices=_FORECASTS,
        help="the causal forecast: seasonal (default) or persistence; for a live source only "
        "when the provider publishes none; oracle (a trace only): its actual values, an "
        "upper bound",
    )
    p.add_argument(
        "--fallback",
        choices=("now",),
        help="with no forecast and no history, start at once instead of failing (exit 2)",
    )
    p.add_argument("--carbon-base-url", metavar="URL", help="the live source's API at this URL")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    import math
    from datetime import timedelta

    from nas.errors import BadInputError

    for name, value in (("--job-hours", args.job_hours), ("--window-hours", args.window_hours)):
        if not (value > 0 and math.isfinite(value)):
            raise BadInputError(f"{name} must be a positive number of hours, got {value:g}")
    if args.window_hours < args.job_hours:
        raise BadInputError(
            f"--window-hours ({args.window_hours:g}) is shorter than --job-hours ({args.job_hours:g})"
        )
    text = args.source.strip()
    duration_s = args.job_hours * 3600.0
    window = timedelta(hours=args.window_hours)
    if text.startswith("live:"):
        plan = _live_plan(args, text, duration_s, window)
    else:
        plan = _trace_plan(args, text, duration_s, window)
    if args.json:
        print_json(plan.to_dict())
    else:
        print("\n".join(plan_lines(plan, live=text.startswith("live:"))))
    return 0


def _live_plan(args: argparse.Namespace, text: str, duration_s: float, window: object) -> object:
    from datetime import UTC, datetime

    from nas.carbon import create_live_source, parse_source
    from nas.errors import BadInputError
    from nas.scheduling import LivePlanner

    if args.at is not None:
        raise BadInputError(
            "--at is for traces: a live source plans from now (pass a trace, e.g. --source "
            "gb_2020, to plan as of another time)"
        )
    if args.forecast == "oracle":
        raise BadInputError("--forecast oracle needs the future: use it with a trace")
    source = create_live_source(parse_source(text), base_url=args.carbon_base_url)
    now = datetime.now(UTC)
    planner = LivePlanner(source=source, causal=args.forecast)
    return planner.plan(now, duration_s=duration_s, deadline=now + window, fallback=args.fallback)


def _trace_plan(args: argparse.Namespace, text: str, duration_s: float, window: object) -> object:
    from datetime import UTC, datetime

    from nas.errors import BadInputError
    from nas.scheduling import TracePlanner, load_trace, span
    from nas.sections import parse_utc

    if args.carbon_base_url:
        raise BadInputError("--carbon-base-url is for a live source (live:PROVIDER[:REGION])")
    name = text.removeprefix("trace:").strip()
    try:
        trace = load_trace(name)
    except BadInputError as exc:
        raise BadInputError(
            f"--source {text!r} is neither a live source (live:PROVIDER[:REGION]) nor a "
            f"readable trace: {exc}"
        ) from None
    if args.at is None:
        at = datetime.now(UTC)
        if not trace.start_s <= at.timestamp() < trace.end_s:
            raise BadInputError(
                f"trace {trace.name} covers {span(trace.start_s, trace.end_s)}, not now: give "
                "--at TIME inside it to plan as of then"
            )
    else:
        at = parse_utc(args.at, "--at")
    planner = TracePlanner(trace=trace, forecast=args.forecast)
    return planner.plan(at, duration_s=duration_s, deadline=at + window)


def plan_lines(plan: object, *, live: bool) -> list[str]:
    """The human output of ``schedule plan``: when, what it expects, on which data."""
    d = plan.to_dict()  # type: ignore[attr-defined]
    wait_s = max(0.0, (plan.start - plan.as_of).total_seconds())  # type: ignore[attr-defined]
    h, rest = divmod(int(round(wait_s)), 3600)
    when = f"in {h} h {rest // 60:02d} min" if live else f"{h} h {rest // 60:02d} min after --at"
    lines = [f"start {d['start']} ({when}{'' if live else ' ' + d['as_of']}), end {d['end']}"]
    if d["fallback"] is not None:
        lines.append(f"no forecast: {d['fallback']} (--fallback now): no figures to show")
        return lines
    lines.append(
        f"expected {d['expected_g_per_kwh']:.0f} gCO2e/kWh against {d['now_g_per_kwh']:.0f} if "
        f"started at once: {d['saving_pct']:.1f}% less (forecast, not measured)"
    )
    if d["actual_g_per_kwh"] is not None:
        lines.append(
            f"actual (the trace's values): {d['actual_g_per_kwh']:.0f} gCO2e/kWh against "
            f"{d['actual_now_g_per_kwh']:.0f} at once: {d['actual_saving_pct']:.1f}% less"
        )
    issued = f", issued {d['forecast_issued_at']}" if d["forecast_issued_at"] else ""
    lines.append(f"forecast: {d['forecast']}{issued}")
    lines.append(f"data: {d['data']}")
    return lines


def _missing_verb(args: argparse.Namespace) -> int:
    from nas.errors import BadInputError

    raise BadInputError("schedule: give a verb, e.g. `econas schedule simulate --help`")


def run(args: argparse.Namespace) -> int:
    from nas.scheduling import load_archive, load_trace, simulate

    forecast = args.forecast
    if forecast.startswith("archive:"):  # checked whole before any work
        forecast = load_archive(forecast.removeprefix("archive:"))
    traces = [load_trace(t) for t in args.trace]
    result = simulate(
        traces=traces,
        policy=args.policy,
        forecast=forecast,
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
        f"{plural(r.jobs, 'job')} of {r.job_hours:g} h, one every {r.arrival_every_hours:g} h "
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
