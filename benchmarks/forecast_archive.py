"""What are a provider's forecasts worth? Replays with synthetic forecast archives.

For each shipped trace, MAPE level, job length and window, a synthetic archive is made from
the trace (``nas.scheduling._archive.synthetic_archive``: autocorrelated errors growing with
lead time, 48 h horizon, an issue every hour, seeds 0..SEEDS-1) and ``flexible-start`` is
replayed with it (one job an hour, all year, each decision sees the latest issue at or before
it). ``ratio_to_oracle`` is the saving against run-now divided by the oracle's (perfect
foresight) saving; the causal ``seasonal`` forecast is run next to it for scale. These are
simulations on 2020 traces with SYNTHETIC forecast errors, not measurements of a provider.

    python benchmarks/forecast_archive.py [--out benchmarks/results/forecast_archive.json]
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
from nas.scheduling._archive import synthetic_archive  # noqa: E402

TRACES = ("gb_2020", "fr_2020")
MAPES = (5.0, 7.0, 10.0, 20.0)
JOBS = (1, 4)
WINDOWS = (12, 24)
SEEDS = 2


def run_all() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name in TRACES:
        trace = load_trace(name)
        archives = {
            (m, s): synthetic_archive(trace, mape_pct=m, seed=s)[0]
            for m in MAPES
            for s in range(SEEDS)
        }
        for job, window in itertools.product(JOBS, WINDOWS):
            kw = dict(traces=[trace], policy="flexible-start", job_hours=job, window_hours=window)
            oracle = simulate(forecast="oracle", **kw).saving_pct
            causal = simulate(forecast="seasonal", **kw).saving_pct
            for m in MAPES:
                savings = [
                    simulate(forecast=archives[(m, s)], **kw).saving_pct for s in range(SEEDS)
                ]
                mean = statistics.fmean(savings)
                rows.append(
                    {
                        "trace": name,
                        "job_hours": job,
                        "window_hours": window,
                        "mape_pct": m,
                        "seeds": SEEDS,
                        "saving_pct": mean,
                        "saving_pct_by_seed": savings,
                        "oracle_saving_pct": oracle,
                        "ratio_to_oracle": mean / oracle,
                        "seasonal_ratio_to_oracle": causal / oracle,
                    }
                )
                print(
                    f"{name} job {job} h window {window} h MAPE {m:g}%: ratio {mean / oracle:.3f} "
                    f"(seasonal {causal / oracle:.3f}, oracle saving {oracle:.1f}%)",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/forecast_archive.json")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = run_all()
    result = {
        "benchmark": "forecast_archive",
        "rows": rows,
        "wall_s": round(time.perf_counter() - t0, 1),
        "provenance": _harness.provenance(),
    }
    text = json.dumps(result, indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"{len(rows)} cases in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
