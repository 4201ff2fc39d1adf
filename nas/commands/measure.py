"""`econas measure -- COMMAND...`: run a command and report its energy and kgCO2e.

Like ``perf stat``: the command runs with our stdin/stdout/stderr and its exit code is
ours. Human output goes to stdout after the command finishes; with ``--json`` one JSON
object is printed on stdout and the command's own stdout is sent to stderr, so stdout
stays parseable.
"""

from __future__ import annotations

import argparse
import logging
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nas.commands._common import add_carbon_source_args, print_json
from nas.errors import BadInputError

if TYPE_CHECKING:
    from nas.carbon import CarbonIntensity
    from nas.energy import Measurement

log = logging.getLogger(__name__)

_METERS = ("auto", "nvml", "rapl", "estimate")  # == nas.energy.METER_NAMES (tested)
WINDOW = "command"
WORLD = "WORLD"  # the region of codecarbon's world average (nas.carbon), used by default


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "measure",
        help="run a command and report the energy and kgCO2e it drew",
        description=(
            "Run COMMAND and report its duration, energy (J, kWh), kgCO2e and where each "
            "figure came from. NVML and RAPL measure the whole machine while COMMAND runs; "
            "the estimate (no GPU, no RAPL) charges COMMAND's CPU time and memory."
        ),
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--meter", default="auto", help=f"one of {', '.join(_METERS)} (auto)")
    p.add_argument(
        "--device",
        default="auto",
        help="auto | cpu | cuda | cuda:N: which GPU(s) NVML measures (auto: all, if any)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--country",
        metavar="C",
        help="grid region/country code, e.g. FR, GB (without --country, --intensity or "
        "--carbon-source: codecarbon's world average, 475 gCO2e/kWh, said so in the output)",
    )
    where.add_argument(
        "--intensity", type=float, metavar="G", help="fixed carbon intensity, gCO2e/kWh"
    )
    add_carbon_source_args(p)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.carbon import kgco2e, resolve_carbon_source
    from nas.energy import create_meter, nvml_is_available

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise BadInputError("measure: give a command to run, e.g. `econas measure -- python x.py`")
    if args.meter not in _METERS:
        raise BadInputError(f"meter {args.meter!r} is unknown; use one of {list(_METERS)}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", args.device):
        raise BadInputError(
            f"measure: --device {args.device!r} is unknown; use auto, cpu, cuda, cuda:N"
        )
    if args.carbon_source and (args.country or args.intensity is not None):
        raise BadInputError("measure: give --carbon-source or --country/--intensity, not both")
    intensity = resolve_carbon_source(
        source=args.carbon_source,
        region=args.country,
        intensity_g_per_kwh=args.intensity,
        base_url=args.carbon_base_url,
    )
    device = args.device
    if device == "auto":  # a command may use any GPU: meter every visible board
        device = "cuda:all" if args.meter in ("auto", "nvml") and nvml_is_available() else "cpu"
    elif device == "cuda":
        device = "cuda:all"
    meter = create_meter(args.meter, device=device, scope="children")
    try:
        started = datetime.now(UTC)
        meter.begin_window(WINDOW, sync=False)
        try:
            exit_code = _run_command(command, stdout_to_stderr=args.json)
        finally:
            measurement = meter.end_window(WINDOW, sync=False)
            finished = datetime.now(UTC)
    finally:
        meter.close()
    ci = intensity.intensity_over(started, finished)
    report = build_report(
        command=command,
        exit_code=exit_code,
        measurement=measurement,
        intensity=ci,
        kg=kgco2e(measurement.energy_kwh, ci.intensity_g_per_kwh),
        started=started,
        finished=finished,
    )
    if args.json:
        print_json(report)
    else:
        sys.stdout.write(format_report(report, measurement) + "\n")
    return exit_code


def _run_command(command: list[str], *, stdout_to_stderr: bool) -> int:
    """Run ``command`` to completion; with ``stdout_to_stderr`` its stdout goes to our stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    stdout: Any = None
    if stdout_to_stderr:
        stdout = sys.stderr if _has_fileno(sys.stderr) else subprocess.PIPE
    try:
        proc = subprocess.run(command, stdout=stdout)
    except FileNotFoundError:
        raise BadInputError(f"measure: command not found: {command[0]}") from None
    except PermissionError:
        raise BadInputError(f"measure: command not executable: {command[0]}") from None
    if proc.returncode < 0:  # killed by a signal: the shell's 128 + N
        return 128 - proc.returncode
    if stdout is subprocess.PIPE and proc.stdout:  # our stderr is not a file (e.g. captured)
        sys.stderr.write(proc.stdout.decode(errors="replace"))
    return proc.returncode


def _has_fileno(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def build_report(
    *,
    command: list[str],
    exit_code: int,
    measurement: Measurement,
    intensity: CarbonIntensity,
    kg: float,
    started: datetime,
    finished: datetime,
) -> dict[str, Any]:
    """The JSON object: flat figures with units in the names, then the meter's details."""
    return {
        "command": command,
        "exit_code": exit_code,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        **measurement.to_attrs(),
        "kgco2e": kg,
        "intensity_g_per_kwh": intensity.intensity_g_per_kwh,
        "intensity_source": intensity.source,
        "carbon_region": intensity.region,
        "energy_details": measurement.details,
    }


def format_report(report: dict[str, Any], m: Measurement) -> str:
    """``perf stat``-like summary: one figure per line, provenance in words."""
    label = "ESTIMATED" if m.kind == "estimated" else "measured"
    lines = [
        "",
        f" Energy ({label}, meter {m.source}) of: {shlex.join(report['command'])}",
        "",
    ]
    kinds = m.details.get("domain_kinds", {})
    for domain, joules in m.energy_j.items():
        lines.append(f"{joules:>16.3f} J   {domain:<12} {kinds.get(domain, m.kind)}")
    lines += [
        f"{m.total_energy_j:>16.3f} J   total        = {m.energy_kwh:.3e} kWh",
        f"{report['kgco2e']:>16.3e} kgCO2e at {report['intensity_g_per_kwh']:g} gCO2e/kWh "
        f"({report['intensity_source']})",
        f"{m.duration_s:>16.3f} s   elapsed",
        "",
        *(
            [
                " carbon intensity: the WORLD AVERAGE (no --country, --intensity or "
                "--carbon-source given); a grid's can be a tenth of it (FR: 56) or more: "
                "pass --country for yours"
            ]
            if report.get("carbon_region") == WORLD
            else []
        ),
        f" hardware: {m.hardware}",
        f" exit code: {report['exit_code']}",
    ]
    parts = m.details.get("parts", {"": m.details})
    for details in parts.values():
        if "watts_per_core" in details:
            lines.append(
                f" estimate: {details['cpu_time_s']:.3f} s CPU x {details['watts_per_core']:g} W"
                f"/core ({details['watts_per_core_source']}) + {details['mean_rss_gb']:.3f} GB"
                f" x {details['dram_w_per_gb']:g} W/GB ({details['dram_w_per_gb_source']})"
            )
    return "\n".join(lines)
