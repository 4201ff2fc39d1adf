"""How close `econas train` comes to its projection: several CNN and ViT trials at three data
sizes, with and without one SIGKILL and resume, several interleaved rounds.

    python benchmarks/projection.py                      # full: 3,500 / 15,000 / 59,500 images
    python benchmarks/projection.py --sizes 1000,3500 --per-family 1 --rounds 2 \
        --out /tmp/projection.json --spread-out /tmp/spread.json        # reduced, minutes

Every round searches a fresh quickstart-budget study (2,000 images, 2 epochs, random
sampler and fixed seed, so every round proposes the same architectures) on Fashion-MNIST, so
that each projection comes from a proxy measured minutes before the training it projects:
on a shared machine the load moves the CPU-time estimate by tens of percent within the
hour, and a proxy measured once would fold that drift into the error (kept as
``error_vs_round1_proxy_pct``). The ``--per-family`` cheapest distinct architectures of each
family (by proxy training energy in round 1) are then trained at full budget
(``econas train --epochs E --train-size N``, a fresh process each), every (trial, size,
kill) case once per round, the order rotating each round (``_harness.paired_rounds``). A
killed case is SIGKILLed right after epoch ``--kill-after``'s progress line and resumed
with the same command; its error is against the resumed run's projection (the rebuild,
warm-up and measured lost energy added).

Per size and per fresh/resumed: the median absolute error with its distribution-free 95%
interval, the worst, and the verdicts against the targets (median <= 10 %, worst <= 25 %),
plus measured and projected kWh per phase for every run, and the noise floor (``noise_floor``:
how far the same training, repeated, measured from itself, which bounds what any projection
made before a run can reach on this host). Writes
``benchmarks/results/projection.json`` (provenance: commit, hardware, instruction sets,
threads, load before and after) and the spread that ``econas train`` quotes as its range,
``nas/final/projection_spread.json`` (package data; this hardware class's entry replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _harness import THREADS, paired_rounds, provenance  # noqa: E402 - thread env first

TARGET_MEDIAN_PCT, TARGET_WORST_PCT = 10.0, 25.0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}


def _econas(*args: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli", *args]


def _run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[3:5])} failed: {done.stderr[-2000:]}")
    return done.stdout


def study_text(name: str, trials: int, dataset: str) -> str:
    """The quickstart config as this benchmark's proxy study: its name, trials and data, and
    the random sampler (a fixed seed then proposes the same architectures every round)."""
    text = (ROOT / "studies" / "quickstart.toml").read_text()
    for old, new in (
        ('name = "quickstart"', f'name = "{name}"'),
        ("trials = 16 ", f"trials = {trials} "),
        ('sampler = "eco"', 'sampler = "random"'),
        ('dataset = "fashion-mnist"', f'dataset = "{dataset}"'),
    ):
        if old not in text:
            raise SystemExit(f"studies/quickstart.toml no longer has {old!r}: update this script")
        text = text.replace(old, new, 1)
    return text


def search(work: Path, name: str, trials: int, dataset: str) -> Path:
    """A quickstart-budget study in ``work``; returns its config."""
    config = work / f"{name}.toml"
    config.write_text(study_text(name, trials, dataset))
    _run(_econas("search", str(config)), work)
    return config


def proxies(work: Path, config: Path) -> dict[str, dict[str, Any]]:
    """Each distinct architecture's first COMPLETE trial: number, family, proxy train kWh."""
    cwd = os.getcwd()
    os.chdir(work)  # the config's storage is relative
    try:
        from nas.config import load_config
        from nas.record import TrialAttrs, TrialRecord
        from nas.study import load_existing_study

        cfg = load_config(str(config))
        study = load_existing_study(cfg.storage_url, cfg.study.name)
        out: dict[str, dict[str, Any]] = {}
        for t in study.trials:
            rec = TrialRecord.of(t)
            arch = str(rec.get(TrialAttrs.arch) or "")
            if t.state.name != "COMPLETE" or t.user_attrs.get("reused") or arch in out:
                continue
            train = next((p.energy_kwh for p in rec.phases if p.name == "train"), None)
            if train:
                out[arch] = {"trial": t.number, "family": rec.family, "proxy_train_kwh": train}
        return out
    finally:
        os.chdir(cwd)


def pick(found: dict[str, dict[str, Any]], per_family: int) -> list[str]:
    """The ``per_family`` cheapest architectures of each family, by proxy training energy."""
    by_family: dict[str, list[str]] = {}
    for arch in sorted(found, key=lambda a: found[a]["proxy_train_kwh"]):
        by_family.setdefault(found[arch]["family"], []).append(arch)
    missing = {"cnn", "vit"} - set(by_family)
    if missing:
        raise SystemExit(f"the study has no completed {sorted(missing)} trial; raise --trials")
    return [a for family in sorted(by_family) for a in by_family[family][:per_family]]


def _train(config: Path, trial: int, size: int, epochs: int, *extra: str) -> list[str]:
    args = ["train", str(config), "--trial", str(trial), "--epochs", str(epochs)]
    return _econas(*args, "--train-size", str(size), "--json", *extra)


class Round:
    """One round's proxy study and the projections made from it."""

    def __init__(self, work: Path, name: str, args: argparse.Namespace) -> None:
        self.work, self.name = work, name
        self.config = search(work, name, args.trials, args.dataset)
        self.proxies = proxies(work, self.config)
        self.dry: dict[tuple[str, int], dict[str, Any]] = {}

    def dry_run(self, arch: str, size: int, epochs: int) -> dict[str, Any]:
        key = (arch, size)
        if key not in self.dry:
            trial = self.proxies[arch]["trial"]
            cmd = _train(self.config, trial, size, epochs, "--dry-run")
            self.dry[key] = json.loads(_run(cmd, self.work))
        return self.dry[key]


def run_case(
    rnd: Round, first: Round, arch: str, size: int, *, epochs: int, kill_after: int | None
) -> dict[str, Any]:
    """One full-budget training (fresh checkpoint) from this round's proxy, killed and
    resumed when asked."""
    if arch not in rnd.proxies:
        raise SystemExit(f"round {rnd.name} did not sample {arch}: the search is not repeatable")
    trial = rnd.proxies[arch]["trial"]
    folder = rnd.work / "runs" / rnd.name / "final" / f"trial-{trial}"
    shutil.rmtree(folder, ignore_errors=True)
    cmd = _train(rnd.config, trial, size, epochs)
    t0 = time.perf_counter()
    if kill_after is not None:
        proc = subprocess.Popen(
            cmd,
            cwd=rnd.work,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if f" epoch {kill_after}/{epochs} " in line:
                proc.send_signal(signal.SIGKILL)
                break
        proc.communicate()
        if proc.returncode != -signal.SIGKILL:
            raise SystemExit(f"the run to kill ended on its own ({proc.returncode})")
    out = json.loads(_run(cmd, rnd.work))
    measured, projected = out["energy_kwh"], out["projected_energy_kwh"]
    round1 = first.dry_run(arch, size, epochs)["projected_energy_kwh"]
    return {
        "round": rnd.name,
        "arch": arch,
        "family": rnd.proxies[arch]["family"],
        "trial": trial,
        "size": size,
        "killed": kill_after is not None,
        "measured_kwh": measured,
        "projected_kwh": projected,
        "error_pct": (measured - projected) / projected * 100.0,
        "error_vs_first_projection_pct": (
            measured - rnd.dry_run(arch, size, epochs)["projected_energy_kwh"]
        )
        / rnd.dry_run(arch, size, epochs)["projected_energy_kwh"]
        * 100.0,
        "error_vs_round1_proxy_pct": (measured - round1) / round1 * 100.0,
        "phases_kwh": out.get("phases_kwh"),
        "projected_phases_kwh": out.get("projected_phases_kwh"),
        "lost_kwh": out.get("lost_energy_kwh"),
        "resumed_from_epoch": out.get("resumed_from_epoch"),
        "wall_s": time.perf_counter() - t0,
        "loadavg": list(os.getloadavg()),
    }


def summarise(errors: list[float]) -> dict[str, Any]:
    from nas.stats import median, median_ci, verdict

    absolute = [abs(e) for e in errors]
    lo, hi, coverage = median_ci(absolute)
    worst = max(absolute)
    median_verdict = verdict((lo, hi), TARGET_MEDIAN_PCT, higher_is_better=False)
    return {
        "runs": len(absolute),
        "median_abs_error_pct": median(absolute),
        "median_abs_error_ci95_pct": [lo, hi],
        "ci_coverage": coverage,
        "worst_abs_error_pct": worst,
        # P(all n runs below the q-quantile) = q**n: with 95% confidence the worst of n runs is
        # at or above the error distribution's q-quantile, q = 0.05 ** (1 / n)
        "worst_bounds_quantile_95": 0.05 ** (1.0 / len(absolute)),
        "signed_error_pct_min_median_max": [min(errors), median(errors), max(errors)],
        "verdict_median": median_verdict if coverage >= 0.95 else "unresolved",
        "verdict_worst": "met" if worst <= TARGET_WORST_PCT else "not met",
    }


def noise_floor(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What this host's noise alone leaves, per size and fresh/resumed, from the same runs.

    ``repeat``: each run's measured kWh against the median of its own case (the same trial,
    size and kill) over the rounds: how far the same training, repeated, measured from
    itself. ``median_proxy``: each run against the median of its case's projections, a
    projection with the proxy's own noise taken out; no projection made before a run does
    better than the training's repeat noise allows. ``proxy``: each projection against that
    median. ``worst_target_attainable``: whether the repeat noise alone stays within the
    worst-error target (when it does not, no projection can meet it in this run)."""
    from nas.stats import median

    cases: dict[tuple[str, int, bool], list[dict[str, Any]]] = {}
    for r in rows:
        cases.setdefault((r["arch"], r["size"], r["killed"]), []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for size in sorted({r["size"] for r in rows}):
        for name, killed in (("fresh", False), ("resumed", True)):
            repeat: list[float] = []
            oracle: list[float] = []
            proxy: list[float] = []
            for (_, sz, k), rs in cases.items():
                if sz != size or k is not killed or len(rs) < 2:
                    continue
                m = median([r["measured_kwh"] for r in rs])
                pm = median([r["projected_kwh"] for r in rs])
                repeat += [(r["measured_kwh"] - m) / m * 100.0 for r in rs]
                oracle += [(r["measured_kwh"] - pm) / pm * 100.0 for r in rs]
                proxy += [(r["projected_kwh"] - pm) / pm * 100.0 for r in rs]
            if not repeat:
                continue

            def stats(values: list[float]) -> dict[str, float]:
                absolute = [abs(v) for v in values]
                return {"median_abs_pct": median(absolute), "worst_abs_pct": max(absolute)}

            out[f"{size}/{name}"] = {
                "runs": len(repeat),
                "repeat": stats(repeat),
                "median_proxy": stats(oracle),
                "proxy": stats(proxy),
                "worst_target_attainable": max(abs(v) for v in repeat) <= TARGET_WORST_PCT,
            }
    return out


def spread_entry(rows: list[dict[str, Any]], prov: dict[str, Any]) -> dict[str, Any]:
    from nas.final import hardware_class

    hw = prov["hardware"]
    entry: dict[str, Any] = {
        "hardware_class": hardware_class(
            cpu_model=hw["cpu_model"], meter="estimate", device="cpu", threads=hw["threads"]
        ),
        "commit": prov["commit"],
        "at": prov["at"],
        "sizes": sorted({r["size"] for r in rows}),
        "results": "benchmarks/results/projection.json",
    }
    for name, killed in (("fresh", False), ("resumed", True)):
        errs = [r["error_pct"] for r in rows if r["killed"] is killed]
        if errs:
            entry[name] = {
                "runs": len(errs),
                "error_pct_min": min(errs),
                "error_pct_max": max(errs),
            }
    return entry


def write_spread(path: Path, entry: dict[str, Any]) -> None:
    """Replace this hardware class's entry, keep the others."""
    from nas.final import SPREAD_FORMAT, load_spread

    keep = [e for e in load_spread(path) if e.get("hardware_class") != entry["hardware_class"]]
    data = {
        "format": SPREAD_FORMAT,
        "written_by": "benchmarks/projection.py",
        "entries": [*keep, entry],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="3500,15000,59500", help="training images, comma-separated")
    p.add_argument("--per-family", type=int, default=2, help="architectures per family")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--kill-after", type=int, default=1)
    p.add_argument("--trials", type=int, default=10, help="proxy study size (per round)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "projection.json")
    p.add_argument(
        "--spread-out", type=Path, default=ROOT / "nas" / "final" / "projection_spread.json"
    )
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="work in this (new) folder and keep it: every round's proxy study and run",
    )
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    before = provenance()

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    rows: list[dict[str, Any]] = []
    if args.keep is not None and args.keep.exists():
        raise SystemExit(f"--keep {args.keep}: already exists; name a new folder")
    with tempfile.TemporaryDirectory(prefix="econas-projection-") as tmp:
        work = Path(tmp) if args.keep is None else args.keep.resolve()
        work.mkdir(parents=True, exist_ok=True)
        rounds: list[Round] = [Round(work, "projection-r1", args)]
        archs = pick(rounds[0].proxies, args.per_family)
        log(f"architectures: {archs}")

        def current() -> Round:  # a new proxy study whenever a round starts
            return rounds[-1]

        arms = {}
        for arch in archs:
            for size in sizes:
                for kill in (None, args.kill_after):

                    def arm(arch: str = arch, size: int = size, kill: int | None = kill) -> float:
                        row = run_case(
                            current(), rounds[0], arch, size, epochs=args.epochs, kill_after=kill
                        )
                        rows.append(row)
                        return row["error_pct"]

                    short = f"{rounds[0].proxies[arch]['family']}{archs.index(arch)}"
                    arms[f"{short}-{size}-{'kill' if kill else 'fresh'}"] = arm
        per_round = len(arms)

        def arm_then_roll(name: str, fn: Any) -> Any:
            def wrapped() -> float:
                value = fn()
                done = len(rows)
                if done % per_round == 0 and done // per_round < args.rounds:
                    rounds.append(Round(work, f"projection-r{done // per_round + 1}", args))
                return value

            return wrapped

        paired_rounds(
            {n: arm_then_roll(n, f) for n, f in arms.items()},
            rounds=args.rounds,
            warmup=0,
            log=log,
        )
    after = provenance()
    by_size: dict[str, Any] = {}
    for size in sizes:
        for name, killed in (("fresh", False), ("resumed", True)):
            sel = [r for r in rows if r["size"] == size and r["killed"] is killed]
            by_size[f"{size}/{name}"] = summarise([r["error_pct"] for r in sel]) | {
                "as_used_round1_proxy": summarise([r["error_vs_round1_proxy_pct"] for r in sel])
            }
    met = all(
        s["verdict_median"] == "met" and s["verdict_worst"] == "met" for s in by_size.values()
    )
    result = {
        "benchmark": "projection",
        "what": "(measured - projected) / projected energy of econas train, % (estimate meter); "
        "each run projected from its round's proxy study",
        "targets": {
            "median_abs_error_pct": TARGET_MEDIAN_PCT,
            "worst_abs_error_pct": TARGET_WORST_PCT,
        },
        "settings": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "threads": THREADS,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        },
        "architectures": archs,
        "by_size": by_size,
        "all_met": met,
        "noise_floor": noise_floor(rows),
        "runs": rows,
        "provenance": {"before": before, "after": after},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    write_spread(args.spread_out, spread_entry(rows, before))
    for key, s in by_size.items():
        lo, hi = s["median_abs_error_ci95_pct"]
        print(
            f"{key:>14}: median |error| {s['median_abs_error_pct']:5.1f}% [{lo:.1f}, {hi:.1f}] "
            f"({s['verdict_median']}), worst {s['worst_abs_error_pct']:5.1f}% "
            f"({s['verdict_worst']}), n={s['runs']}; from round 1's proxy: median "
            f"{s['as_used_round1_proxy']['median_abs_error_pct']:.1f}%, worst "
            f"{s['as_used_round1_proxy']['worst_abs_error_pct']:.1f}%"
        )
    for key, f in result["noise_floor"].items():
        print(
            f"{key:>14}: noise floor: the same training repeated measured a median "
            f"{f['repeat']['median_abs_pct']:.1f}% (worst {f['repeat']['worst_abs_pct']:.1f}%) "
            f"from its own median; against the median projection {f['median_proxy']['median_abs_pct']:.1f}% "
            f"(worst {f['median_proxy']['worst_abs_pct']:.1f}%); worst target attainable: "
            f"{f['worst_target_attainable']}"
        )
    print(f"wrote {args.out} and {args.spread_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
