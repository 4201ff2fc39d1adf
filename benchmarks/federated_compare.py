"""Centralised versus federated training of one CNN to an equal accuracy target.

On the quickstart data (Fashion-MNIST, 2,000 train / 500 val / 1,000 test), one fixed CNN is
trained centrally for ``--epochs`` epochs; the target is ``--target-fraction`` x its best
validation accuracy. Each federated variant (FedAvg, FedProx; IID and Dirichlet(0.3) splits
over ``--clients`` clients) trains until it reaches the target or spends the same
``--epochs`` epoch-equivalents of compute. Both sides run the same schedule: one-cycle over
``--epochs`` epoch-equivalents (a federated round of k clients on n of N images advances it
by n/N epochs), so neither gets a longer, gentler schedule than the other. Compute energy is the meter's (here: the CPU-time estimate); comm energy
is bytes x kWh/GB (estimated); kgCO2e uses the quickstart's region. The JSON also gives the
break-even assumptions under which federated training would come out ahead.

    python benchmarks/federated_compare.py [--epochs 8] [--out benchmarks/results/federated_compare.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _harness  # noqa: E402  (pins the thread environment before torch loads)
import torch  # noqa: E402

from nas.carbon import kgco2e, resolve_intensity_source  # noqa: E402
from nas.config import load_config  # noqa: E402
from nas.data import DataBudget, load_data  # noqa: E402
from nas.energy import create_meter  # noqa: E402
from nas.federated import DEFAULT_NETWORK_KWH_PER_GB, DEFAULT_NETWORK_SOURCE, FederatedSpec  # noqa: E402
from nas.federated.comm import network_energy_kwh  # noqa: E402
from nas.federated.compare import TargetRun, centralised_to_target, federated_to_target  # noqa: E402
from nas.federated.split import label_skew, split_indices  # noqa: E402
from nas.train import TrainingPlan, cross_entropy_loss, evaluate, train_model  # noqa: E402
from search_spaces import ArchSpec, build_model  # noqa: E402

ARCH = {
    "stem_width": 16,
    "stem_stride": 1,
    "activation": "relu",
    "stages": [
        {"block": "conv", "depth": 1, "width": 32, "kernel": 3, "stride": 2, "se": False},
        {"block": "conv", "depth": 1, "width": 64, "kernel": 3, "stride": 2, "se": False},
    ],
}
VARIANTS = (
    ("fedavg", "iid"),
    ("fedprox", "iid"),
    ("fedavg", "dirichlet"),
    ("fedprox", "dirichlet"),
)
OLD_NETWORK_KWH_PER_GB = 0.06  # Aslan et al. 2018's 2015 figure, for the sensitivity check


def _first_reaching(run: TargetRun, target: float) -> dict[str, float] | None:
    return next((p for p in run.curve if p["val_accuracy"] >= target), None)


def _at_compute(run: TargetRun, epochs: float) -> float | None:
    """Validation accuracy at the last check within ``epochs`` of compute."""
    points = [p for p in run.curve if p["epochs_equivalent"] <= epochs + 1e-6]
    return points[-1]["val_accuracy"] if points else None


def _breakeven(run: TargetRun, central_kwh: float, raw_bytes: int, reached: bool) -> dict:
    """Assumptions under which this federated run would match centralised training.

    Federated (clients f x as energy-hungry per unit of work as this machine) is ahead iff
    ``f*C_clients + C_server + I*B_fed <= C_central + I*B_raw`` (I: kWh/GB, B: GB moved;
    B_raw: the raw training data uploaded once for centralised training).
    """
    assert run.comm is not None
    client = run.client_energy_kwh or 0.0
    rest = run.compute.energy_kwh - client  # server + engine bookkeeping
    i = DEFAULT_NETWORK_KWH_PER_GB
    b_fed, b_raw = run.comm.total_bytes / 1e9, raw_bytes / 1e9
    out: dict[str, Any] = {
        "comm_energy_kwh_at_2015_intensity": network_energy_kwh(
            run.comm.total_bytes, OLD_NETWORK_KWH_PER_GB
        ),
        "comm_bytes_over_raw_dataset_bytes": b_fed / b_raw,
        "breakeven_note": "to the target" if reached else "target not reached: a lower bound",
    }
    for key, upload in (("", 0.0), ("_with_upload", b_raw)):
        f = (central_kwh + i * upload - rest - i * b_fed) / client if client else float("nan")
        out[f"breakeven_client_energy_factor{key}"] = f if f > 0 else None  # None: impossible
    # Raw data (bytes) centralised training would have to upload for a tie at equal hardware
    # (f = 1), if the federated run needed the same rounds.
    out["breakeven_raw_dataset_bytes_equal_hardware"] = 1e9 * (
        b_fed + (run.compute.energy_kwh - central_kwh) / i
    )
    return out


def _findings(rows: list[dict[str, Any]], epochs: int) -> list[str]:
    """Plain statements computed from this run's numbers."""
    c = rows[0]
    c_kwh = c["energy_kwh_to_target"]
    lines = [
        f"centralised: target {c['target_accuracy']:.3f} after {c['epochs_to_target']:g} epochs, "
        f"{c_kwh:.3e} kWh compute; {c_kwh + c['raw_upload_energy_kwh']:.3e} kWh if the "
        f"{c['raw_upload_bytes'] / 1e6:.2f} MB of raw data must first be uploaded"
    ]
    for r in rows[1:]:
        acc = r["val_accuracy_at_matched_compute"]
        head = (
            f"{r['label']}: target after {r['epochs_to_target']:g} epochs-eq, "
            f"{r['energy_kwh_to_target'] / c_kwh:.1f}x the centralised energy"
            if r["reached"]
            else f"{r['label']}: target not reached in {r['epochs_equivalent']:g} epochs-eq "
            f"(val {r['val_accuracy']:.3f})"
        )
        f = r["breakeven_client_energy_factor_with_upload"]
        lines.append(
            f"{head}; val {acc:.3f} at matched compute ({epochs} epochs-eq) vs "
            f"{c['val_accuracy_at_matched_compute']:.3f}; comm {r['comm_energy_kwh']:.3e} kWh = "
            f"{r['comm_energy_kwh'] / r['compute_energy_kwh']:.1f}x its compute, "
            f"{r['comm_bytes_over_raw_dataset_bytes']:.1f}x the raw data's bytes; "
            + (
                f"ahead only if client devices need < {f:.2f}x this machine's energy per unit of work"
                if f
                else "behind whatever the clients' hardware (its network energy alone exceeds "
                "centralised compute + upload)"
            )
            + f"; at equal hardware a tie needs >= "
            f"{r['breakeven_raw_dataset_bytes_equal_hardware'] / 1e6:.1f} MB of raw data to upload "
            f"({r['breakeven_note']})"
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="studies/quickstart.toml")
    ap.add_argument(
        "--epochs",
        type=int,
        default=8,
        help="schedule length and compute cap, in epoch-equivalents, on both sides",
    )
    ap.add_argument("--target-fraction", type=float, default=0.97)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--client-fraction", type=float, default=0.5)
    ap.add_argument("--alpha", type=float, default=0.3)
    ap.add_argument("--prox-mu", type=float, default=0.01)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/federated_compare.json")
    args = ap.parse_args()

    cfg = load_config(args.config)
    torch.set_num_threads(args.threads)
    d = cfg.data
    budget = DataBudget(
        train_size=d.train_size,
        val_size=d.val_size,
        test_size=d.test_size,
        batch_size=args.batch_size,
    )
    data = load_data(d.dataset, budget=budget, seed=cfg.study.seed)
    device = torch.device("cpu")
    meter = create_meter(cfg.hardware.meter, device="cpu")
    intensity = resolve_intensity_source(region=cfg.carbon.region)
    spec = ArchSpec("cnn", data.in_channels, data.num_classes, data.image_size, ARCH)
    plan = TrainingPlan(
        epochs=1,
        batch_size=args.batch_size,
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        optimizer=cfg.train.optimizer,
        loss_fn=cross_entropy_loss(),
        device=device,
        seed=cfg.study.seed,
    )
    labels = data.train.tensors[1].numpy()
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    runs: list[tuple[TargetRun, torch.nn.Module, dict[str, Any]]] = []
    try:
        # Warm-up (not measured): allocator, kernels and caches as later runs will find them.
        train_model(build_model(spec), data.train, plan)
        torch.manual_seed(0)
        model = build_model(spec)
        central = centralised_to_target(
            model,
            data,
            plan=plan,
            meter=meter,
            target_accuracy=None,
            max_epochs=args.epochs,
        )
        target = args.target_fraction * max(p["val_accuracy"] for p in central.curve)
        print(
            f"centralised: best val {target / args.target_fraction:.4f}; target {target:.4f}",
            file=sys.stderr,
        )
        runs.append((central, model, {"strategy": "centralised"}))
        for strategy, split in VARIANTS:
            parts = split_indices(
                labels, clients=args.clients, split=split, alpha=args.alpha, seed=cfg.study.seed
            )
            fspec = FederatedSpec(
                strategy=strategy,
                clients=args.clients,
                client_fraction=args.client_fraction,
                prox_mu=args.prox_mu,
            )
            torch.manual_seed(0)
            model = build_model(spec)
            label = f"{strategy}-{split}" + (f"{args.alpha}" if split == "dirichlet" else "")
            run = federated_to_target(
                model,
                data,
                parts,
                spec=fspec,
                plan=plan,
                meter=meter,
                target_accuracy=target,
                max_epochs=args.epochs,  # the same one-cycle horizon as centralised
                kwh_per_gb=DEFAULT_NETWORK_KWH_PER_GB,
                network_source=DEFAULT_NETWORK_SOURCE,
                label=label,
            )
            info = {
                "strategy": strategy,
                "split": split,
                "label_skew": label_skew(labels, parts, data.num_classes),
                "clients": args.clients,
                "clients_per_round": fspec.clients_per_round,
                "prox_mu": fspec.mu,
            }
            print(
                f"{label}: reached={run.reached} val {run.val_accuracy:.4f} after "
                f"{run.epochs_equivalent:.1f} epochs-eq",
                file=sys.stderr,
            )
            runs.append((run, model, info))
    finally:
        meter.close()
    ci = intensity.intensity_over(started, datetime.now(UTC))
    g = ci.intensity_g_per_kwh
    n, px = len(data.train), data.in_channels * data.image_size**2
    raw_bytes = n * (px + 1)  # uint8 pixels + a 1-byte label per image, as in the IDX files
    raw_kwh = network_energy_kwh(raw_bytes, DEFAULT_NETWORK_KWH_PER_GB)
    central_hit = _first_reaching(central, target)
    c_kwh = central_hit["compute_kwh"] if central_hit else central.compute.energy_kwh
    rows = []
    for run, model, info in runs:
        row = {**info, **run.to_dict()}
        hit = _first_reaching(run, target)
        compute_kwh = hit["compute_kwh"] if hit else run.compute.energy_kwh
        row["target_accuracy"], row["reached"] = target, hit is not None
        row["compute_kwh_to_target"] = compute_kwh if hit else None
        row["epochs_to_target"] = hit["epochs_equivalent"] if hit else None
        row["val_accuracy_at_matched_compute"] = _at_compute(run, args.epochs)
        row["test_accuracy"] = evaluate(model, data.test, device=device)
        if run.comm is None:  # centralised: optionally the raw data must first be uploaded
            row["energy_kwh_to_target"] = compute_kwh
            row["raw_upload_bytes"] = raw_bytes
            row["raw_upload_energy_kwh"] = raw_kwh
            row["energy_kwh_to_target_with_upload"] = compute_kwh + raw_kwh
        else:
            row["energy_kwh_to_target"] = run.total_energy_kwh if hit else None
            row.update(_breakeven(run, c_kwh, raw_bytes, hit is not None))
        for key in ("energy_kwh_to_target", "energy_kwh_to_target_with_upload", "total_energy_kwh"):
            if row.get(key) is not None:
                row[key.replace("energy_kwh", "kgco2e")] = kgco2e(row[key], g)
        rows.append(row)
    out = {
        "findings": _findings(rows, args.epochs),
        "benchmark": "federated_compare",
        "date": started.isoformat(),
        "wall_s": time.perf_counter() - t0,
        "provenance": _harness.provenance("cpu"),
        "machine": {
            "platform": platform.platform(),
            "torch_threads": args.threads,
            "meter": {"source": meter.source, "kind": meter.kind, "hardware": meter.hardware},
        },
        "data": {
            "dataset": data.name,
            "train": n,
            "val": len(data.val),
            "test": len(data.test),
            "batch_size": args.batch_size,
        },
        "arch": spec.encode(),
        "arch_spec": spec.to_dict(),
        "params": sum(p.numel() for p in build_model(spec).parameters()),
        "settings": vars(args),
        "target_val_accuracy": target,
        "target_rule": f"{args.target_fraction} x best centralised validation accuracy",
        "schedule": f"one-cycle over {args.epochs} epoch-equivalents on both sides (the same "
        "horizon is the compute cap)",
        "network_kwh_per_gb": DEFAULT_NETWORK_KWH_PER_GB,
        "network_kwh_per_gb_source": DEFAULT_NETWORK_SOURCE,
        "intensity_g_per_kwh": g,
        "intensity_source": ci.source,
        "runs": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(
        json.dumps(
            {
                r.get("label"): {
                    k: r.get(k)
                    for k in (
                        "reached",
                        "val_accuracy",
                        "test_accuracy",
                        "epochs_equivalent",
                        "compute_energy_kwh",
                        "comm_energy_kwh",
                        "energy_kwh_to_target",
                        "breakeven_client_energy_factor",
                    )
                }
                for r in rows
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
