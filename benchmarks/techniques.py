"""The technique table on the quickstart data: ``econas ablate studies/quickstart.toml`` with
repeats, written to ``benchmarks/results/techniques.json``.

    python benchmarks/techniques.py [--repeats 3] [--out PATH]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/techniques.py \
        --out benchmarks/results/techniques_avx2.json     # an AVX2-only CPU on an AVX-512 one
    python benchmarks/techniques.py --gpu --out /path/techniques_gpu.json   # the GPU variant

On this CPU-only machine every figure comes from the labelled CPU-time estimate; ``--gpu``
trains on CUDA with FP16 autocast and deploys an FP16 model on the GPU, measured by NVML
(there mixed precision and quantization savings are hardware effects, not estimates).

Threads are pinned by the shared harness (one by default); the file carries the commit, the
hardware provenance with the CPU's instruction sets (and any ISA-limiting environment
variables), the calibration that decided which techniques pay here, and the 95% intervals.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _harness import pin_threads, provenance  # noqa: E402 - sets the thread variables first


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(ROOT / "studies" / "quickstart.toml"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--gpu", action="store_true", help="CUDA + NVML variant (FP16 deploy, FP16 autocast)"
    )
    p.add_argument("--out", default=None)
    p.add_argument("--train-size", type=int, help="override data.train_size (a quicker run)")
    args = p.parse_args(argv)

    import torch

    threads = pin_threads()
    from nas.ablation import run_ablation
    from nas.commands.ablate import format_table
    from nas.config import load_config

    cfg = load_config(args.config)
    if args.gpu:
        if not torch.cuda.is_available():
            print("techniques.py --gpu: no CUDA device", file=sys.stderr)
            return 2
        cfg = cfg.replace("hardware", device="cuda", meter="auto")
        cfg = cfg.replace("ablate", quantization="fp16", precision="amp_fp16", threads=0)
    else:
        cfg = cfg.replace("hardware", device="cpu", meter="auto")
    if args.train_size:
        cfg = cfg.replace("data", train_size=args.train_size)
    out = Path(
        args.out
        or ROOT
        / "benchmarks"
        / "results"
        / ("techniques_gpu.json" if args.gpu else "techniques.json")
    )
    t0 = time.perf_counter()
    result = run_ablation(
        cfg,
        repeats=args.repeats,
        progress=lambda m: print(f"techniques: {m}", file=sys.stderr, flush=True),
    )
    result["benchmark"] = {
        "command": "python benchmarks/techniques.py"
        + (" --gpu" if args.gpu else "")
        + f" --repeats {args.repeats}"
        + (f" --train-size {args.train_size}" if args.train_size else ""),
        "env": {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")},
        "config": str(Path(args.config).relative_to(ROOT))
        if Path(args.config).is_relative_to(ROOT)
        else args.config,
        "ablate_settings": cfg.to_dict()["ablate"],
        "wall_s": time.perf_counter() - t0,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if args.gpu else None,
        "threads": threads,
        "provenance": provenance("cuda" if args.gpu else "cpu"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(format_table(result))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
