"""What every econas benchmark shares: pinned threads, paired interleaved rounds, intervals,
verdicts and provenance.

Import this module *before* torch: it pins the thread environment first.

- **Threads.** ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` are set to
  ``$ECONAS_BENCH_THREADS`` (default 1) unless already set, with a passive OpenMP wait
  (``OMP_WAIT_POLICY=PASSIVE``, ``KMP_BLOCKTIME=0``): spin-waiting threads burn CPU time that
  the estimate meter (CPU time x watts per core) would charge as energy. :func:`pin_threads`
  applies the same count to torch.
- **Rounds.** :func:`paired_rounds` runs the arms ABAB..., alternating which goes first, after
  warm-up rounds that are thrown away, so drifting machine load hits every arm alike.
- **Intervals.** :func:`ratio_summary` gives the median of the per-round paired ratios and
  its distribution-free 95% interval (order statistics); :func:`nas.stats.verdict` says ``met`` only when the
  whole interval clears the target, else ``unresolved`` (or ``not met``).
- **Provenance.** :func:`provenance` records the commit (and whether the tree was dirty),
  the hardware and instruction sets, torch and thread settings, and the load average; call
  it before and after the runs.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

THREADS = int(os.environ.get("ECONAS_BENCH_THREADS", "1"))
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")

ROOT = Path(__file__).resolve().parents[1]


def pin_threads(threads: int = THREADS) -> int:
    """torch's intra-op and inter-op threads set to ``threads`` (call before any torch work)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or parallel work has started: keep what is there
        pass
    return torch.get_num_threads()


def paired_rounds(
    arms: Mapping[str, Callable[[], float]],
    *,
    rounds: int,
    warmup: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, list[float]]:
    """Run every arm once per round, the order rotating each round (AB, BA, AB...); return
    each arm's measurements from the rounds after ``warmup``, paired by index."""
    names = list(arms)
    out: dict[str, list[float]] = {name: [] for name in names}
    for rnd in range(warmup + rounds):
        shift = rnd % len(names)
        order = names[shift:] + names[:shift]
        measured = {name: arms[name]() for name in order}
        if rnd >= warmup:
            for name in names:
                out[name].append(measured[name])
        if log:
            kind = "warm-up" if rnd < warmup else f"round {rnd - warmup + 1}/{rounds}"
            log(f"{kind}: " + ", ".join(f"{n} {measured[n]:.4g}" for n in order))
    return out


def ratio_summary(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    target: float | None = None,
    higher_is_better: bool = True,
) -> dict[str, Any]:
    """Median of the paired ratios ``numerator[i] / denominator[i]``, its distribution-free
    95% interval (order statistics, :func:`nas.stats.median_ci`), and the verdict against
    ``target``: ``unresolved`` whenever the rounds are too few for 95% coverage."""
    from nas.stats import median, median_ci, verdict

    ratios = [a / b for a, b in zip(numerator, denominator, strict=True) if b]
    lo, hi, coverage = median_ci(ratios)
    out: dict[str, Any] = {
        "ratio": median(ratios),
        "ratio_ci95": [lo, hi],
        "ratio_ci_coverage": coverage,
        "ratio_per_round": ratios,
        "rounds": len(ratios),
        "interval": "distribution-free interval of the median paired ratio (order statistics; "
        "at least 6 rounds for 95% coverage)",
    }
    if target is not None:
        out["target"] = target
        decided = verdict((lo, hi), target, higher_is_better=higher_is_better)
        out["verdict"] = decided if coverage >= 0.95 else "unresolved"
    return out


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(device: str = "cpu") -> dict[str, Any]:
    """Commit, hardware, instruction sets, versions, threads and the load average now."""
    from nas.hardware import hardware_provenance

    # results files change while benchmarks run; the code is what must be committed
    status = _git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results"
    )
    return {
        "commit": _git("rev-parse", "HEAD"),
        "tree_dirty": bool(status) if status is not None else None,
        "hardware": hardware_provenance(device),
        "thread_env": {
            k: os.environ.get(k)
            for k in (
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS",
                "OMP_WAIT_POLICY",
                "KMP_BLOCKTIME",
            )
        },
        "loadavg": list(os.getloadavg()),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
