"""Overhead of econas's trial training loop versus a bare PyTorch loop.

Same model architecture, same data, same batch size; the econas side runs ``train_model``
inside an energy-meter window of the auto-selected meter and writes the trial's attrs to an
Optuna trial, exactly as a search does. The two are alternated ``--rounds`` times so machine
noise hits both alike; the ratio of median throughputs (econas / bare) is reported.

    python benchmarks/overhead.py [--device cpu|cuda] [--rounds 5] [--out FILE]

Prints JSON with at least ``ratio``; the target is ratio >= 0.97.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F

from nas.data import DataBudget, load_data
from nas.energy import create_meter
from nas.train import iterate_batches, resolve_device, train_model
from search_spaces import ArchSpec, build_model


def make_spec(in_channels: int, num_classes: int, image_size: int) -> ArchSpec:
    """A mid-sized CNN from the search space, sampled deterministically."""
    from search_spaces import create_search_space

    space = create_search_space("cnn")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    return space.sample(
        trial, in_channels=in_channels, num_classes=num_classes, image_size=image_size
    )


def bare_epoch(
    model: torch.nn.Module, data, device: torch.device, batch_size: int, lr: float
) -> int:
    # The same algorithm as nas.train.train_model (AdamW, one-cycle schedule, no weight decay),
    # written as a plain loop: the ratio then measures econas's machinery, not a different
    # optimisation (a constant high learning rate trains into slower, denormal-heavy weights).
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    steps = -(-len(data) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    model.train()
    gen = torch.Generator().manual_seed(0)
    n = 0
    for x, y in iterate_batches(data, batch_size, device=device, generator=gen):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
        n += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n


def econas_epoch(model, data, device, batch_size: int, lr: float, meter, study) -> int:
    trial = study.ask()
    meter.begin_window("train")
    result = train_model(model, data, epochs=1, batch_size=batch_size, lr=lr, device=device)
    m = meter.end_window("train")
    for key, value in m.to_attrs(prefix="train_").items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("train_loss", result.final_loss)
    study.tell(trial, result.final_loss)
    return result.samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default="benchmarks/results/overhead.json")
    args = ap.parse_args()

    device = resolve_device(args.device)
    data = load_data(
        "fashion-mnist",
        budget=DataBudget(train_size=args.train_size, val_size=200, test_size=200),
        seed=0,
    )
    spec = make_spec(data.in_channels, data.num_classes, data.image_size)
    meter = create_meter("auto", device=device.type)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()  # in-memory: the bookkeeping, not a disk, is measured here
    rates: dict[str, list[float]] = {"bare": [], "econas": []}
    for rnd in range(args.rounds + 1):  # round 0 warms up both paths and is discarded
        order = ("bare", "econas") if rnd % 2 == 0 else ("econas", "bare")
        for name in order:
            torch.manual_seed(0)
            model = build_model(spec).to(device)
            t0 = time.perf_counter()
            if name == "bare":
                n = bare_epoch(model, data.train, device, args.batch_size, 3e-3)
            else:
                n = econas_epoch(model, data.train, device, args.batch_size, 3e-3, meter, study)
            if rnd:
                rates[name].append(n / (time.perf_counter() - t0))
    bare, eco = statistics.median(rates["bare"]), statistics.median(rates["econas"])
    out = {
        "benchmark": "overhead",
        "device": str(device),
        "meter": meter.source,
        "arch": spec.encode(),
        "rounds": args.rounds,
        "train_size": args.train_size,
        "bare_samples_per_s": bare,
        "econas_samples_per_s": eco,
        "ratio": eco / bare,
        "target_ratio": 0.97,
        "samples_per_s": rates,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
