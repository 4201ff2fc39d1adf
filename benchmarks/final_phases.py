"""Diagnosis: what `econas train` spends, window by window, against the proxy trial it rebuilds.

Runs ``econas train CONFIG --trial N --epochs E`` in child processes: once fresh, and once
killed (SIGKILL) right after epoch K's checkpoint then resumed with the same command. Every
meter window the child closes (phases, per-batch progress chunks) is logged with its wall
time, CPU time and energy, with the CPU time spent before the first window (process start-up
and imports) and every ``progress.json`` write. The proxy's per-epoch figures come from the
trial's record. Prints one table per run and writes the raw log as JSON (``--out``)::

    python benchmarks/final_phases.py studies/quickstart.toml --trial 2 --epochs 5 --kill-after 2

The study must exist (run ``econas search CONFIG`` first). Nothing is asserted: this is a
measuring tool; its output is quoted in the issue notes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- the child: econas train with every window logged -----------------------------------------
def child(argv: list[str], log_path: str) -> int:
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - line-buffered for the parent

    def emit(**row: Any) -> None:
        log.write(json.dumps(row) + "\n")

    import psutil

    started = psutil.Process().create_time()
    t_import = time.time()
    import torch  # noqa: F401

    import nas.energy
    from nas.cli import main
    from nas.final import CheckpointDir

    emit(
        event="imports",
        wall_s=time.time() - started,
        imports_s=time.time() - t_import,
        cpu_s=_cpu_s(),
        threads=torch.get_num_threads(),
        env={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
    )
    create = nas.energy.create_meter
    first = {"done": False}

    def create_meter(*a: Any, **k: Any) -> Any:
        meter = create(*a, **k)
        begin, end = meter.begin_window, meter.end_window

        def begin_window(name: str, **kw: Any) -> Any:
            if not first["done"]:
                first["done"] = True
                emit(event="first_window", wall_s=time.time() - started, cpu_s=_cpu_s())
            return begin(name, **kw)

        def end_window(name: str, **kw: Any) -> Any:
            m = end(name, **kw)
            if m is not None:
                emit(
                    event="window",
                    name=name,
                    duration_s=m.duration_s,
                    cpu_time_s=m.details.get("cpu_time_s"),
                    energy_kwh=m.energy_kwh,
                )
            return m

        meter.begin_window, meter.end_window = begin_window, end_window  # type: ignore[method-assign]
        return meter

    nas.energy.create_meter = create_meter  # type: ignore[assignment]
    write = CheckpointDir.write_progress

    def write_progress(self: Any, epoch: int, spent: Any) -> None:
        t0, c0 = time.perf_counter(), _cpu_s()
        write(self, epoch, spent)
        emit(event="progress", epoch=epoch, wall_s=time.perf_counter() - t0, cpu_s=_cpu_s() - c0)

    CheckpointDir.write_progress = write_progress  # type: ignore[method-assign]
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = int(exc.code or 0)
    emit(event="exit", rc=rc, wall_s=time.time() - started, cpu_s=_cpu_s())
    return rc


# -- the parent ----------------------------------------------------------------------------
def _run(argv: list[str], log: Path, *, kill_after: int | None = None) -> list[dict[str, Any]]:
    log.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", str(log), "--", *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        assert proc.stderr is not None
        for line in proc.stderr:  # the epoch line follows its checkpoint
            if f"epoch {kill_after}/" in line:
                proc.send_signal(signal.SIGKILL)
                break
    _, err = proc.communicate()
    if kill_after is None and proc.returncode != 0:
        raise SystemExit(f"econas train failed ({proc.returncode}): {err[-2000:]}")
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def summarise(rows: list[dict[str, Any]], train_size: int) -> dict[str, Any]:
    """Per epoch: train/eval/checkpoint windows; progress writes; start-up."""
    out: dict[str, Any] = {"epochs": [], "other": {}}
    epoch: dict[str, Any] = {}
    chunks = progress = 0
    for r in rows:
        if r["event"] == "imports":
            out["imports"] = {k: r[k] for k in ("wall_s", "imports_s", "cpu_s", "threads", "env")}
        elif r["event"] == "first_window":
            out["first_window"] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"]}
        elif r["event"] == "exit":
            out["exit"] = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"]}
        elif r["event"] == "progress":
            progress += 1
            epoch["progress_cpu_s"] = epoch.get("progress_cpu_s", 0.0) + r["cpu_s"]
        elif r["event"] == "window":
            name = r["name"].removeprefix("phase:")
            if name == "final:chunk":
                chunks += 1
                continue
            fig = {k: r[k] for k in ("duration_s", "cpu_time_s", "energy_kwh")}
            if name in ("train", "eval", "checkpoint"):
                epoch[name] = fig
                if name == "checkpoint":
                    fig_train = epoch.get("train", {})
                    epoch["kwh_per_sample"] = fig_train.get("energy_kwh", 0.0) / train_size
                    out["epochs"].append(epoch)
                    epoch = {}
            else:
                out["other"][name] = fig
    if epoch:
        out["unfinished_epoch"] = epoch
    out["chunk_windows"], out["progress_writes"] = chunks, progress
    return out


def proxy_figures(config: str, trial: int) -> dict[str, Any]:
    from nas.commands._common import config_from_args
    from nas.record import TrialAttrs, TrialRecord
    from nas.study import load_existing_study

    cfg = config_from_args(argparse.Namespace(config=config, storage=None))
    study = load_existing_study(cfg.storage_url, cfg.study.name)
    rec = TrialRecord.of(study.trials[trial])
    epochs = rec.json(TrialAttrs.epoch_energy_kwh) or []
    samples = int(rec.get(TrialAttrs.train_samples) or 0)
    per_epoch = samples / max(len(epochs), 1)
    return {
        "train_samples": samples,
        "epoch_energy_kwh": epochs,
        "epoch_duration_s": rec.json(TrialAttrs.epoch_duration_s) or [],
        "kwh_per_sample_epoch": [e / per_epoch for e in epochs],
        "phases": {p.name: [p.energy_kwh, p.duration_s] for p in rec.phases},
        "threads": rec.get("threads"),
    }


def _table(name: str, s: dict[str, Any]) -> None:
    print(f"\n== {name}")
    imp, fw = s.get("imports", {}), s.get("first_window", {})
    print(
        f"  start-up: imports {imp.get('imports_s', 0):.2f} s, process CPU before the first "
        f"window {fw.get('cpu_s', 0):.2f} s, wall {fw.get('wall_s', 0):.2f} s, threads "
        f"{imp.get('threads')} {imp.get('env')}"
    )
    for k, v in s["other"].items():
        print(
            f"  {k:10s} {v['duration_s']:7.3f} s  cpu {v['cpu_time_s']:7.3f} s  "
            f"{v['energy_kwh']:.3e} kWh"
        )
    for i, e in enumerate(s["epochs"]):
        t, ev, c = e.get("train", {}), e.get("eval", {}), e.get("checkpoint", {})
        print(
            f"  epoch {i + 1}: train {t.get('duration_s', 0):6.3f} s cpu "
            f"{t.get('cpu_time_s', 0):6.3f} s {t.get('energy_kwh', 0):.3e} kWh "
            f"({e['kwh_per_sample']:.3e}/sample) | eval cpu {ev.get('cpu_time_s', 0):.3f} s | "
            f"ckpt cpu {c.get('cpu_time_s', 0):.3f} s | progress cpu "
            f"{e.get('progress_cpu_s', 0):.4f} s"
        )
    if "unfinished_epoch" in s:
        print(f"  unfinished: {s['unfinished_epoch']}")
    ex = s.get("exit", {})
    print(
        f"  process total: wall {ex.get('wall_s', 0):.2f} s, CPU {ex.get('cpu_s', 0):.2f} s; "
        f"{s['chunk_windows']} chunk windows, {s['progress_writes']} progress writes"
    )


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(sys.argv[4:], sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--trial", type=int, required=True)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--kill-after", type=int, default=2)
    p.add_argument("--train-size", default=None)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    argv = ["train", a.config, "--trial", str(a.trial), "--epochs", str(a.epochs), "--json"]
    if a.train_size:
        argv += ["--train-size", a.train_size]
    proxy = proxy_figures(a.config, a.trial)
    print(f"proxy trial {a.trial}: {proxy}")
    from nas.commands._common import config_from_args

    cfg = config_from_args(argparse.Namespace(config=a.config, storage=None))
    final_dir = Path("runs") / cfg.study.name / "final" / f"trial-{a.trial}"
    from nas.data import DataBudget, load_data

    budget = DataBudget(
        train_size=int(a.train_size) if a.train_size else cfg.final.train_size,
        val_size=cfg.data.val_size,
        test_size=cfg.final.test_size,
        resolution=cfg.data.resolution,
        batch_size=cfg.data.batch_size,
    )
    n = len(load_data(cfg.data.dataset, budget=budget, seed=cfg.study.seed).train)
    log = Path("final_phases.log")
    result: dict[str, Any] = {"proxy": proxy, "train_size": n, "argv": argv}
    shutil.rmtree(final_dir, ignore_errors=True)
    result["fresh"] = summarise(_run(argv, log), n)
    _table("fresh run", result["fresh"])
    shutil.rmtree(final_dir, ignore_errors=True)
    result["killed"] = summarise(_run(argv, log, kill_after=a.kill_after), n)
    _table(f"killed after epoch {a.kill_after}", result["killed"])
    result["resumed"] = summarise(_run(argv, log), n)
    _table("resumed", result["resumed"])
    log.unlink(missing_ok=True)
    if a.out:
        a.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
