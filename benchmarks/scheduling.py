"""Savings of each carbon-aware policy against run-now on the shipped 2020 traces.

For each home trace (fr_2020, gb_2020), job length (1, 6, 24 h) and deadline window
(12, 24, 48 h; combinations with the window shorter than the job are skipped), one job arrives
every hour of the trace; each forecast-based policy is run next to the same policy with the
oracle forecast (perfect foresight, the upper bound), and ``ratio_to_oracle`` is the share of
the oracle's saving it achieves. ``spatial`` may also run in the other trace's region.

    python benchmarks/scheduling.py [--out benchmarks/results/scheduling.json]

Prints the JSON list on stdout (a summary on stderr) and writes it to ``--out``. The issue's
target is ratio_to_oracle >= 0.8 for forecast-based flexible-start and pause-resume.

Forecast-based flexible-start and pause-resume are run twice: deciding once at arrival
(``replan: false``) and deciding again at every slot with the forecast made at that slot
(``replan: true``, as a live scheduler would; no parameters, nothing fitted). Re-planning
raised the median ratio to the oracle from 0.559 to 0.581 (flexible-start) and from 0.593 to
0.620 (pause-resume) on the 2020 traces; the 0.8 target is not reached (GB about 0.7, FR 0.55).

Second round of forecaster variants (tuned on GB Jan-Jun 2020, held out: GB Jul-Dec and FR),
flexible-start + pause-resume medians over 1/6/24-h jobs in 12/24/48-h windows, GB H1 / H2:
default 0.645 / 0.724; half-life 12 h 0.650 / 0.722; 48 h 0.629 / 0.713; 7 days 0.622 / 0.701;
same hour last week blended 0.3: 0.645 / 0.721, 0.5 over 3 weeks: 0.651 / 0.723;
multiplicative deviation 0.642 / 0.728; damped trend of the deviation 0.598-0.621 / 0.678-0.693.
None beats the default by more than noise on both halves, so the default was kept.

Seasonal forecaster settings (see nas/scheduling/_forecast.py) were first picked on these traces
from days in {3, 7, 14, 28}, persistence weight in {0, 0.25, 0.3, 0.6, 1}, deviation
half-life in {0, 3, 6, 8, 12, 24, 48, 96} h, with and without re-levelling the profile to the
last 24 h; a weekly (same hour last week) term, a smoothed deviation, exponentially weighted
days and an online ridge regression per horizon were tried and did no better. Mean ratio to
the oracle over that grid ranged from about 0.41 to 0.61. For scale: a profile that PEEKS at
the mean daily shape of the week around the decision (3 days back, 4 ahead) reaches only
0.42-0.78 of the oracle (flexible-start, 1-6 h jobs), so most of the oracle's edge comes from
weather-driven swings that no daily-profile forecast of past intensity can see.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness  # noqa: E402  (provenance: commit, hardware, versions)

from nas.scheduling import load_trace, simulate  # noqa: E402
from nas.scheduling._simulate import REPLAN_POLICIES  # noqa: E402

TRACES = ("fr_2020", "gb_2020")
JOB_HOURS = (1, 6, 24)
WINDOW_HOURS = (12, 24, 48)
FORECASTS = ("seasonal", "persistence")
POLICIES = ("flexible-start", "pause-resume", "spatial")
TARGET_RATIO = 0.8


def run_all() -> list[dict[str, object]]:
    traces = {name: load_trace(name) for name in TRACES}
    rows: list[dict[str, object]] = []
    for home in TRACES:
        others = [traces[n] for n in TRACES if n != home]
        for window in WINDOW_HOURS:
            for job in JOB_HOURS:
                if job > window:
                    continue
                for policy in POLICIES:
                    used = [traces[home], *others] if policy == "spatial" else [traces[home]]
                    common = dict(traces=used, policy=policy, job_hours=job, window_hours=window)
                    oracle = simulate(forecast="oracle", **common)
                    replans = (False, True) if policy in REPLAN_POLICIES else (False,)
                    for forecast, replan in itertools.product(FORECASTS, replans):
                        res = simulate(forecast=forecast, replan=replan, **common)
                        ratio = (
                            res.saving_pct / oracle.saving_pct
                            if abs(oracle.saving_pct) > 1e-9
                            else None
                        )
                        rows.append(
                            {
                                "trace": home,
                                "regions": list(res.regions),
                                "policy": policy,
                                "forecast": forecast,
                                "replan": replan,
                                "job_hours": job,
                                "window_hours": window,
                                "jobs": res.jobs,
                                "baseline_g_per_kwh": round(res.baseline_g_per_kwh, 3),
                                "policy_g_per_kwh": round(res.policy_g_per_kwh, 3),
                                "oracle_g_per_kwh": round(oracle.policy_g_per_kwh, 3),
                                "saving_pct": round(res.saving_pct, 3),
                                "oracle_saving_pct": round(oracle.saving_pct, 3),
                                "ratio_to_oracle": None if ratio is None else round(ratio, 4),
                            }
                        )
    return rows


def summary(rows: list[dict[str, object]]) -> str:
    lines = [f"{'policy':<15} {'forecast':<19} {'cases':>5} {'median':>7} {'min':>6} {'>=0.8':>6}"]
    for policy, forecast, replan in itertools.product(POLICIES, FORECASTS, (False, True)):
        ratios = [
            float(r["ratio_to_oracle"])  # type: ignore[arg-type]
            for r in rows
            if r["policy"] == policy
            and r["forecast"] == forecast
            and r["replan"] == replan
            and r["ratio_to_oracle"] is not None
        ]
        if not ratios:
            continue
        hit = sum(x >= TARGET_RATIO for x in ratios)
        label = f"{forecast}{'+replan' if replan else ''}"
        lines.append(
            f"{policy:<15} {label:<19} {len(ratios):>5} {statistics.median(ratios):>7.3f} "
            f"{min(ratios):>6.3f} {hit:>3}/{len(ratios)}"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/scheduling.json", help="JSON output")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = run_all()
    elapsed_s = time.perf_counter() - t0
    result = {
        "benchmark": "scheduling",
        "rows": rows,
        "wall_s": round(elapsed_s, 1),
        "provenance": _harness.provenance(),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(rows), file=sys.stderr)
    print(f"{len(rows)} rows in {elapsed_s:.1f} s; written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
