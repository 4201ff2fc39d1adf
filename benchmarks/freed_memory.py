"""What keeping freed memory (nas._malloc) changes in a fresh process's evaluation: CPU time
per image, user and system, and page faults, with ``ECONAS_KEEP_FREED_MEMORY`` on and off.

    python benchmarks/freed_memory.py                # 6 interleaved rounds, about 2 minutes

Each run is a fresh process, as ``econas train`` is: it builds a network of the quickstart's
kind (the CNN and the ViT that ``benchmarks/projection.py`` trains), trains it one epoch on
3,500 Fashion-MNIST images (batch 64), then evaluates 500 validation images three times (as
after each epoch) and the 10,000 test images once (batch 512, as ``nas.train.evaluate``).
The two settings alternate, the order rotating each round (``_harness.paired_rounds``). Per
network and setting: the median over rounds with its distribution-free interval; the ratio of
test CPU time per image, off / on, per round. Writes ``benchmarks/results/freed_memory.json``
with provenance (commit, hardware, instruction sets, threads).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _harness import THREADS, paired_rounds, provenance  # noqa: E402 - thread env first

NETWORKS = {  # the architectures benchmarks/projection.py picked on this machine
    "cnn|stem8s2|ir_d1_k5_s1_e2_c24_mp|silu": {
        "config": {
            "activation": "silu",
            "head": "gap",
            "stages": [
                {
                    "block": "ir",
                    "depth": 1,
                    "expand": 2,
                    "kernel": 5,
                    "pool": True,
                    "se": False,
                    "stride": 1,
                    "width": 24,
                }
            ],
            "stem_stride": 2,
            "stem_width": 8,
        },
        "family": "cnn",
    },
    "vit|p7_d32_L4_h1_m1|cls": {
        "config": {"depth": 4, "dim": 32, "heads": 1, "mlp_ratio": 1, "patch": 7, "pool": "cls"},
        "family": "vit",
    },
}


def child(arch: str) -> dict[str, Any]:
    """One fresh process's measurements (``ECONAS_KEEP_FREED_MEMORY`` set by the parent)."""
    import torch
    import torch.nn.functional as F

    from nas._malloc import keep_freed_memory
    from nas.data import DataBudget, load_data
    from nas.train import evaluate
    from search_spaces.spec import ArchSpec, build_model

    kept = keep_freed_memory()  # what nas.runs.build_context does
    spec = ArchSpec.from_json(
        json.dumps({**NETWORKS[arch], "image_size": 28, "in_channels": 1, "num_classes": 10})
    )
    data = load_data("fashion-mnist", budget=DataBudget(train_size=3500, val_size=500))
    torch.manual_seed(0)
    model = build_model(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = data.train.tensors
    model.train()
    for s in range(0, len(x), 64):
        opt.zero_grad()
        F.cross_entropy(model(x[s : s + 64]), y[s : s + 64]).backward()
        opt.step()

    def measured(split: Any) -> dict[str, float]:
        a = resource.getrusage(resource.RUSAGE_SELF)
        evaluate(model, split, device=torch.device("cpu"))
        b = resource.getrusage(resource.RUSAGE_SELF)
        n = len(split)
        return {
            "user_us_per_image": (b.ru_utime - a.ru_utime) / n * 1e6,
            "system_us_per_image": (b.ru_stime - a.ru_stime) / n * 1e6,
            "faults_per_image": (b.ru_minflt - a.ru_minflt) / n,
        }

    val = [measured(data.val) for _ in range(3)]
    return {"kept": kept, "val": val, "test": measured(data.test)}


def _spawn(arch: str, keep: bool) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONWARNINGS": "ignore",
        "ECONAS_KEEP_FREED_MEMORY": "1" if keep else "0",
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child", arch], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "freed_memory.json"
    )
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return 0
    from nas.stats import median, median_ci

    before = provenance()
    runs: dict[str, list[dict[str, Any]]] = {}

    def arm(arch: str, keep: bool) -> Any:
        def run() -> float:
            r = _spawn(arch, keep)
            if r["kept"] is not keep:
                raise SystemExit(f"the child's setting is {r['kept']}, asked {keep}")
            runs.setdefault(f"{arch} {'kept' if keep else 'default'}", []).append(r)
            return r["test"]["user_us_per_image"] + r["test"]["system_us_per_image"]

        return run

    arms = {
        f"{arch.split('|')[0]}-{'kept' if keep else 'default'}": arm(arch, keep)
        for arch in NETWORKS
        for keep in (False, True)
    }
    paired_rounds(arms, rounds=args.rounds, warmup=0, log=lambda s: print(s, file=sys.stderr))

    def stat(values: list[float]) -> dict[str, Any]:
        lo, hi, coverage = median_ci(values)
        return {"median": median(values), "ci95": [lo, hi], "ci_coverage": coverage}

    summary: dict[str, Any] = {}
    for key, rs in runs.items():
        test = [r["test"] for r in rs]
        later_val = [v for r in rs for v in r["val"][1:]]
        summary[key] = {
            "runs": len(rs),
            "test_cpu_us_per_image": stat(
                [t["user_us_per_image"] + t["system_us_per_image"] for t in test]
            ),
            "test_system_us_per_image": stat([t["system_us_per_image"] for t in test]),
            "test_faults_per_image": stat([t["faults_per_image"] for t in test]),
            "first_val_cpu_us_per_image": stat(
                [r["val"][0]["user_us_per_image"] + r["val"][0]["system_us_per_image"] for r in rs]
            ),
            "later_val_cpu_us_per_image": stat(
                [v["user_us_per_image"] + v["system_us_per_image"] for v in later_val]
            ),
        }
    ratios: dict[str, Any] = {}
    for arch in NETWORKS:
        off, on = runs[f"{arch} default"], runs[f"{arch} kept"]
        per_round = [
            (a["test"]["user_us_per_image"] + a["test"]["system_us_per_image"])
            / (b["test"]["user_us_per_image"] + b["test"]["system_us_per_image"])
            for a, b in zip(off, on, strict=True)
        ]
        ratios[arch] = stat(per_round) | {"per_round": per_round}
    result = {
        "benchmark": "freed_memory",
        "what": "CPU time per evaluated image in a fresh process, ECONAS_KEEP_FREED_MEMORY=0 "
        "(glibc's default) against the default of econas (kept); us = microseconds",
        "settings": {"rounds": args.rounds, "threads": THREADS},
        "summary": summary,
        "test_cpu_ratio_default_over_kept": ratios,
        "runs": runs,
        "provenance": {"before": before, "after": provenance()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, s in summary.items():
        t, f = s["test_cpu_us_per_image"], s["test_faults_per_image"]
        print(
            f"{key:>45}: test {t['median']:5.1f} us/image [{t['ci95'][0]:.1f}, {t['ci95'][1]:.1f}]"
            f" (system {s['test_system_us_per_image']['median']:.1f}), {f['median']:.2f} faults/"
            f"image; validation after the first {s['later_val_cpu_us_per_image']['median']:.1f}"
        )
    for arch, r in ratios.items():
        print(
            f"{arch}: test CPU time default / kept {r['median']:.2f} "
            f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
