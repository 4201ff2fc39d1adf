"""Overhead of a whole econas trial versus a bare script doing the same ML work.

**econas arm**: one trial of a real study (``nas.search.build_objective`` on SQLite, the
auto meter running): sampling (the architecture enqueued, so both arms train the same
model), fingerprint, cost analysis (params, FLOPs), training, validation and test
evaluation, the inference measurement, the carbon figures, the weights upload and every
attr written to storage.

**bare arm**: the same model, data and algorithm as a plain script: AdamW with the same
weight decay and one-cycle schedule, cross-entropy with the same label smoothing, the same
epochs and batch size, evaluation on the same validation and test sets, and batch-1
inference for the same ``inference_min_duration_s``. No meter, no storage, no FLOPs count.

The arms alternate (AB, BA, ...) after a warm-up round, with pinned threads
(``benchmarks/_harness.py``). Per round, ``bare_s / econas_s`` is econas's throughput
relative to the bare script (1 = no overhead; econas does strictly more work, so a ratio
above 1 is noise). ``ratio`` is the median over rounds and ``ratio_ci95`` its 95% bootstrap
interval; the target ``ratio_ci95[0] >= 0.97`` is ``met`` only when the interval's lower end
clears it.

    python benchmarks/overhead.py [--rounds 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _harness  # noqa: E402  (pins the thread environment before torch loads)
import optuna  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nas.config import Config, load_config  # noqa: E402
from nas.hardware import resolve_device  # noqa: E402
from nas.search import _quiet_expected_failures, build_objective  # noqa: E402
from nas.study import open_study  # noqa: E402
from nas.train import iterate_batches  # noqa: E402
from search_spaces import ArchSpec, build_model, create_search_space  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "overhead.json"
TARGET = 0.97


def make_config(root: Path, args: argparse.Namespace) -> Config:
    """The quickstart study, CNN space only, one trial's worth of work per round."""
    cfg = load_config(ROOT / "studies" / "quickstart.toml")
    cfg = cfg.replace(
        "study",
        name="overhead",
        storage=f"sqlite:///{root / 'study.db'}",
        artifacts=str(root / "artifacts"),
        trials=10_000,
        sampler="random",
    )
    cfg = cfg.replace("search", spaces=("cnn",))
    cfg = cfg.replace("data", train_size=args.train_size)
    cfg = cfg.replace("train", epochs=args.epochs)
    cfg = cfg.replace("hardware", device=args.device, meter="auto")
    # the same configuration every round: nothing reused, screened or stopped early
    return cfg.replace("efficiency", reuse=False, screen="none", early_stop=False)


def fixed_params(cfg: Config, in_channels: int, num_classes: int, image_size: int) -> dict:
    """The parameters of one mid-sized CNN of the space (seeded), to enqueue every round."""
    space = create_search_space("cnn", **cfg.search.options.get("cnn", {}))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    space.sample(
        trial,
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        prefix="cnn.",
    )
    return dict(trial.params)


def bare_trial(spec: ArchSpec, cfg: Config, data: Any, device: torch.device) -> dict[str, float]:
    """The same ML work as an econas trial, as a plain script."""
    torch.manual_seed(cfg.study.seed)
    model = build_model(spec).to(device)
    t = cfg.train
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps = -(-len(data.train) // cfg.data.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=t.lr, total_steps=t.epochs * steps, pct_start=0.15
    )
    gen = torch.Generator().manual_seed(cfg.study.seed)
    model.train()
    for _ in range(t.epochs):
        for x, y in iterate_batches(data.train, cfg.data.batch_size, device=device, generator=gen):
            loss = F.cross_entropy(model(x), y, label_smoothing=t.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    out = {}
    with torch.no_grad():
        for name in ("val", "test"):
            split = getattr(data, name)
            correct = 0
            for x, y in iterate_batches(split, 512, device=device):
                correct += int((model(x).argmax(dim=1) == y).sum())
            out[name] = correct / len(split)
    e = cfg.eval
    if e.measure_inference:
        x = torch.randn(e.inference_batch_size, spec.in_channels, spec.image_size, spec.image_size)
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            start = time.perf_counter()
            while time.perf_counter() - start < e.inference_min_duration_s:
                model(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    threads = _harness.pin_threads()
    before = _harness.provenance(args.device)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _quiet_expected_failures()
    root = Path(tempfile.mkdtemp(prefix="econas-overhead-"))
    try:
        cfg = make_config(root, args)
        study = open_study(cfg)
        objective = build_objective(cfg, study=study)
        data = objective.context.data
        params = fixed_params(cfg, data.in_channels, data.num_classes, data.image_size)
        device = resolve_device(args.device)
        spec = create_search_space("cnn", **cfg.search.options.get("cnn", {})).sample(
            optuna.trial.FixedTrial(params),
            in_channels=data.in_channels,
            num_classes=data.num_classes,
            image_size=data.image_size,
            prefix="cnn.",
        )

        def econas() -> float:
            study.enqueue_trial(params)
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=1, catch=(), gc_after_trial=False)
            seconds = time.perf_counter() - t0
            last = study.trials[-1]
            assert last.state == optuna.trial.TrialState.COMPLETE, last.user_attrs
            assert last.user_attrs["arch_spec"] == spec.to_json(), "the arms train other models"
            return seconds

        def bare() -> float:
            t0 = time.perf_counter()
            bare_trial(spec, cfg, data, device)
            return time.perf_counter() - t0

        log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
        seconds = _harness.paired_rounds(
            {"bare": bare, "econas": econas}, rounds=args.rounds, warmup=args.warmup, log=log
        )
        trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        phases = trials[-1].user_attrs.get("phases", "")
        last = trials[-1].user_attrs
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = _harness.ratio_summary(
        seconds["bare"], seconds["econas"], target=TARGET, higher_is_better=True
    )
    out = {
        "benchmark": "overhead",
        "what": "econas throughput relative to a bare script doing the same ML work "
        "(bare_s / econas_s per paired round)",
        **summary,
        "target_note": "ratio_ci95[0] >= 0.97",
        "device": str(device),
        "meter": last.get("energy_source"),
        "arch": last.get("arch"),
        "task": {
            "config": "studies/quickstart.toml, CNN space",
            "train_size": args.train_size,
            "val_size": cfg.data.val_size,
            "test_size": cfg.data.test_size,
            "epochs": args.epochs,
            "batch_size": cfg.data.batch_size,
            "inference_min_duration_s": cfg.eval.inference_min_duration_s,
            "econas_phases": phases,
        },
        "seconds": seconds,
        "threads": threads,
        "provenance": {"before": before, "after": _harness.provenance(args.device)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
