"""Training threads vs energy on this CPU: what ``hardware.threads`` defaults to.

Trains architectures on the quickstart's budget and recipe (Fashion-MNIST, 2,000 images,
2 epochs, batch 64, ``TrainingPlan.from_config``) with 1 thread and with 2, in paired rounds
whose order alternates (1-2, 2-1, ...), each training in one meter window (the auto meter:
an estimate on machines without RAPL/NVML, labelled so in the output). The architectures are
the four baselines and the quickstart's typical small CNN (a stride-2 stem and one conv
stage, the front's shape in the quickstart studies). Reports per architecture the median
paired energy ratio 2 threads / 1 thread with its distribution-free interval, and the same
for wall time. Writes ``benchmarks/results/threads.json``::

    flock /tmp/econas-bench.lock python benchmarks/threads.py [--rounds 6]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _harness  # noqa: E402  (pins the thread environment before torch loads)
import torch  # noqa: E402

from nas.config import load_config  # noqa: E402
from nas.data import DataBudget, load_data  # noqa: E402
from nas.energy import create_meter  # noqa: E402
from nas.train import TrainingPlan, train_model  # noqa: E402
from search_spaces import ArchSpec, build_model  # noqa: E402
from search_spaces.baselines import baseline_specs  # noqa: E402
from search_spaces.cnn import CNNSpace  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "threads.json"
SMALL_CNN = "cnn|stem24s2|conv_d1_k3_s1_c16_mp|flat|silu"


def archs() -> dict[str, ArchSpec]:
    out = {f"baseline:{k}": v for k, v in baseline_specs(1, 10, 28).items()}
    out["small_cnn"] = CNNSpace.decode(SMALL_CNN, in_channels=1, num_classes=10, image_size=28)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    _harness.pin_threads(1)
    importlib.import_module("torch._dynamo")  # start-up, as nas.pipeline.Objective loads it
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    cfg = load_config(ROOT / "studies" / "quickstart.toml")
    budget = DataBudget(
        train_size=cfg.data.train_size, val_size=500, test_size=1000, batch_size=cfg.data.batch_size
    )
    data = load_data("fashion-mnist", budget=budget, seed=0)
    plan = TrainingPlan.from_config(cfg, device=torch.device("cpu"), seed=0)
    meter = create_meter("auto", device="cpu")
    before = _harness.provenance()
    rows: dict[str, Any] = {}
    kind = source = ""
    for name, spec in archs().items():
        seconds: dict[int, list[float]] = {1: [], 2: []}

        def arm(threads: int, spec: ArchSpec = spec, seconds: dict = seconds) -> float:
            nonlocal kind, source
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            net = build_model(spec)
            start = time.perf_counter()
            with meter.window("train") as w:
                train_model(net, data.train, plan)
            seconds[threads].append(time.perf_counter() - start)
            kind, source = w.measurement.kind, w.measurement.source
            return w.measurement.total_energy_j

        joules = _harness.paired_rounds(
            {"1 thread": lambda: arm(1), "2 threads": lambda: arm(2)},
            rounds=args.rounds,
            log=lambda s, name=name: log(f"{name}: {s}"),
        )
        # the warm-up round's times are dropped as its energies are
        t1, t2 = seconds[1][1:], seconds[2][1:]
        rows[name] = {
            "arch": spec.encode(),
            "energy_j_1_thread": joules["1 thread"],
            "energy_j_2_threads": joules["2 threads"],
            "energy_ratio_2_over_1": _harness.ratio_summary(
                joules["2 threads"], joules["1 thread"], target=1.0, higher_is_better=False
            ),
            "time_ratio_2_over_1": _harness.ratio_summary(t2, t1),
        }
    torch.set_num_threads(1)
    out = {
        "benchmark": "threads",
        "question": "does training on 2 threads instead of 1 cost more energy on this CPU?",
        "budget": {
            "train_size": cfg.data.train_size,
            "epochs": plan.epochs,
            "batch": plan.batch_size,
        },
        "meter": {"kind": kind, "source": source},
        "target_note": "energy_ratio_2_over_1 'met' means 2 threads cost no more than 1",
        "archs": rows,
        "provenance": {"before": before, "after": _harness.provenance()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, allow_nan=False) + "\n")
    for name, r in rows.items():
        e, t = r["energy_ratio_2_over_1"], r["time_ratio_2_over_1"]
        log(
            f"{name:24s} energy 2t/1t {e['ratio']:.2f} [{e['ratio_ci95'][0]:.2f}, "
            f"{e['ratio_ci95'][1]:.2f}]  time {t['ratio']:.2f} [{t['ratio_ci95'][0]:.2f}, "
            f"{t['ratio_ci95'][1]:.2f}]"
        )
    log(f"wrote {args.out} ({kind} energy, {source})")


if __name__ == "__main__":
    main()
