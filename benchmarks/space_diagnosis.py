"""Why a textbook CNN beat econas's front at the quickstart's budget: the recipe, then the space.

Every arm trains on the quickstart's data (Fashion-MNIST, 2,000 training images, 500
validation images carved from the training split with the study's seed 0, normalised per
channel), 2 epochs, batch 64, AdamW lr 3e-3, one thread, over several seeds (each seed sets
the model's init and the shuffling order; the same seed gives every arm the same order).

Sections (``--sections``, default all):

- ``recipe``: the issue's textbook CNN (conv3x3(8)-BN-ReLU-maxpool, conv3x3(16)-BN-ReLU-
  maxpool, flatten, linear; 9,146 params) trained by a plain 20-line loop (constant lr) and
  by econas's loop (:func:`nas.train.train_model`, the quickstart's recipe), plus ablations
  (constant schedule through econas's loop, inputs left in [0, 1], batch size, ...).
- ``space``: the claims about the CNN space, one arm per claim against its control (global
  pooling after many stride-2 stages, depthwise blocks at width 8, squeeze-excitation on tiny
  maps), built from ``cnn`` ArchSpecs.
- ``vit``: ViT patch sizes at 28x28 (token count vs training time and accuracy).

Per arm: validation accuracy per seed, mean, standard deviation, min/max, training seconds
and parameter count; per comparison the paired differences with their median and
distribution-free interval (:func:`nas.stats.median_ci`). Write ``benchmarks/results/
space_diagnosis.json`` (``--out``). Run it under the shared lock::

    flock /tmp/econas-bench.lock python benchmarks/space_diagnosis.py [--seeds 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import _harness  # noqa: E402  (pins the thread environment before torch loads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from nas.cost import count_flops  # noqa: E402
from nas.data import DataBudget, DataSplits, load_data  # noqa: E402
from nas.stats import median_ci  # noqa: E402
from nas.train import Trainer, cross_entropy_loss, evaluate, train_model  # noqa: E402
from search_spaces import ArchSpec, build_model, create_search_space  # noqa: E402
from search_spaces.baselines import baseline_specs  # noqa: E402
from search_spaces.cnn import CNNSpace  # noqa: E402
from search_spaces.vit import ViTSpace  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "space_diagnosis.json"
EPOCHS, BATCH, LR, WD = 2, 64, 3e-3, 0.01  # the quickstart's (weight decay: its default)
CPU = torch.device("cpu")

TrainFn = Callable[[nn.Module, TensorDataset, int], None]


def textbook_cnn(in_chs: int = 1, classes: int = 10, size: int = 28, width: int = 8) -> nn.Module:
    """The issue's hand-written model (conv biases included: 9,146 params at width 8)."""
    return nn.Sequential(
        nn.Conv2d(in_chs, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * (size // 4) ** 2, classes),
    )


def plain_train(model: nn.Module, data: TensorDataset, seed: int, *, batch: int = BATCH) -> None:
    """What a user writes: AdamW at a constant lr, cross-entropy, shuffled mini-batches."""
    x, y = data.tensors
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def econas_train(**overrides: Any) -> TrainFn:
    """econas's loop with the quickstart's recipe; ``overrides`` change one ingredient."""
    kwargs: dict[str, Any] = {
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "lr": LR,
        "weight_decay": WD,
        "optimizer": "adamw",
        "device": CPU,
    }
    smoothing = overrides.pop("label_smoothing", 0.0)
    kwargs.update(overrides)

    def run(model: nn.Module, data: TensorDataset, seed: int) -> None:
        train_model(model, data, seed=seed, loss_fn=cross_entropy_loss(smoothing), **kwargs)

    return run


def econas_warmup(pct_start: float) -> TrainFn:
    """econas's loop with a one-cycle schedule warming up over ``pct_start`` of the steps."""

    def run(model: nn.Module, data: TensorDataset, seed: int) -> None:
        trainer = Trainer(
            model, data, epochs=EPOCHS, batch_size=BATCH, lr=LR, device=CPU, seed=seed,
            weight_decay=WD,
        )  # fmt: skip
        steps = EPOCHS * -(-len(data) // BATCH)
        trainer.sched = torch.optim.lr_scheduler.OneCycleLR(
            trainer.opt, max_lr=LR, total_steps=steps, pct_start=pct_start
        )
        for _ in range(EPOCHS):
            trainer.run_epoch()

    return run


def raw01(data: DataSplits) -> DataSplits:
    """The same images left in [0, 1] (undo the per-channel normalisation)."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)

    def undo(ds: TensorDataset) -> TensorDataset:
        x, y = ds.tensors
        return TensorDataset(x * std + mean, y)

    out = DataSplits.__new__(DataSplits)
    out.__dict__.update(data.__dict__)
    out.train, out.val, out.test = undo(data.train), undo(data.val), undo(data.test)
    return out


def final_map_px(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Side of the last feature map before global pooling or flattening (ViT: token grid)."""
    sides: list[int] = []

    def hook(module: nn.Module, _inp: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-1] > 1:
            sides.append(int(out.shape[-1]))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *shape))
    finally:
        for h in handles:
            h.remove()
    return sides[-1] if sides else 1


def run_arm(arm: Arm, data: DataSplits, seed: int) -> dict[str, float]:
    torch.manual_seed(seed)
    model = arm.build()
    px = final_map_px(model, tuple(data.train.tensors[0].shape[1:]))
    start = time.process_time()
    arm.train(model, data.train, seed)
    train_s = time.process_time() - start
    return {
        "val_accuracy": evaluate(model, data.val, device=CPU),
        "train_cpu_s": train_s,
        "params": sum(p.numel() for p in model.parameters()),
        "final_map_px": px,
    }


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    acc = [r["val_accuracy"] for r in runs]
    secs = [r["train_cpu_s"] for r in runs]
    return {
        "params": int(runs[0]["params"]),
        "final_map_px": int(runs[0]["final_map_px"]),
        "val_accuracy": acc,
        "mean": statistics.fmean(acc),
        "std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "min": min(acc),
        "max": max(acc),
        "train_cpu_s_median": statistics.median(secs),
    }


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    lo, hi, coverage = median_ci(diffs)
    return {
        "median_diff": statistics.median(diffs),
        "mean_diff": statistics.fmean(diffs),
        "ci95": [lo, hi],
        "ci_coverage": coverage,
        "diffs": diffs,
    }


@dataclass(frozen=True)
class Arm:
    build: Callable[[], nn.Module]
    train: TrainFn
    data: str = "norm"  # "norm" (the study's inputs) or "raw01"
    max_seeds: int | None = None  # an expensive arm runs on the first seeds only
    spec: ArchSpec | None = None


def run_section(
    arms: dict[str, Arm],
    comparisons: list[tuple[str, str]],
    datas: dict[str, DataSplits],
    seeds: list[int],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Every arm on every seed, interleaved (seed-major, the arm order rotating per seed)."""
    names = list(arms)
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for i, seed in enumerate(seeds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            arm = arms[name]
            if arm.max_seeds is None or i < arm.max_seeds:
                runs[name].append(run_arm(arm, datas[arm.data], seed))
                log(f"seed {seed}: {name} {runs[name][-1]['val_accuracy']:.3f}")
    summary = {n: summarise(r) for n, r in runs.items()}
    shape = tuple(datas["norm"].train.tensors[0].shape[1:])
    for name, arm in arms.items():
        summary[name]["flops"] = count_flops(arm.build(), (1, *shape))  # fvcore: 1 FMA = 1
        if arm.spec is not None:
            summary[name]["arch"] = arm.spec.encode()
    compared = {
        f"{a} - {b}": paired(summary[a]["val_accuracy"], summary[b]["val_accuracy"])
        for a, b in comparisons
    }
    return {"arms": summary, "comparisons": compared}


def recipe_arms() -> tuple[dict[str, Arm], list[tuple[str, str]]]:
    arms: dict[str, Arm] = {
        "plain": Arm(textbook_cnn, plain_train),
        "econas": Arm(textbook_cnn, econas_train()),
        "econas_constant_lr": Arm(textbook_cnn, econas_train(lr_schedule="constant")),
        "plain_inputs_0_1": Arm(textbook_cnn, plain_train, "raw01"),
        "econas_label_smoothing_0.1": Arm(textbook_cnn, econas_train(label_smoothing=0.1)),
        "econas_batch_32": Arm(textbook_cnn, econas_train(batch_size=32)),
        "plain_batch_32": Arm(textbook_cnn, lambda m, d, s: plain_train(m, d, s, batch=32)),
        "econas_lr_6e-3": Arm(textbook_cnn, econas_train(lr=6e-3)),
        "econas_lr_1e-2": Arm(textbook_cnn, econas_train(lr=1e-2)),
        "econas_no_weight_decay": Arm(textbook_cnn, econas_train(weight_decay=0.0)),
        "econas_warmup_0.05": Arm(textbook_cnn, econas_warmup(0.05)),
        "econas_warmup_0.3": Arm(textbook_cnn, econas_warmup(0.3)),
    }
    comparisons = [
        ("econas", "plain"),
        ("econas_constant_lr", "plain"),
        ("plain_inputs_0_1", "plain"),
        ("econas_label_smoothing_0.1", "econas"),
        ("econas_batch_32", "econas"),
        ("plain_batch_32", "plain"),
        ("econas_lr_6e-3", "econas"),
        ("econas_lr_1e-2", "econas"),
        ("econas_no_weight_decay", "econas"),
        ("econas_warmup_0.05", "econas"),
        ("econas_warmup_0.3", "econas"),
    ]
    return arms, comparisons


def cnn_spec(stages: list[dict[str, Any]], *, stem: int = 16, stem_stride: int = 1) -> ArchSpec:
    """A ``cnn`` ArchSpec of the space as it was (stride-2 convs, global average pooling)."""
    config = {
        "stem_width": stem,
        "stem_stride": stem_stride,
        "activation": "relu",
        "stages": stages,
    }
    return ArchSpec(family="cnn", in_channels=1, num_classes=10, image_size=28, config=config)


def conv(width: int, stride: int, *, se: bool = False, depth: int = 1) -> dict[str, Any]:
    return {
        "block": "conv",
        "depth": depth,
        "width": width,
        "kernel": 3,
        "stride": stride,
        "se": se,
    }


def ir(width: int, stride: int, *, expand: int, se: bool = False) -> dict[str, Any]:
    return {**conv(width, stride, se=se), "block": "ir", "expand": expand}


def spec_arm(spec: ArchSpec, *, max_seeds: int | None = None) -> Arm:
    return Arm(lambda: build_model(spec), econas_train(), max_seeds=max_seeds, spec=spec)


def space_arms() -> tuple[dict[str, Arm], list[tuple[str, str]]]:
    """One claim per group, each against its control (econas's recipe throughout)."""
    widths = (16, 32, 48, 64)

    def downs(n: int, **kw: Any) -> ArchSpec:  # n stride-2 downsamplings of 4 conv stages
        strides = [1] * (4 - n) + [2] * n  # final map 28, 14, 7, 4, 2 px for n = 0..4
        return cnn_spec([conv(w, s, **kw) for w, s in zip(widths, strides, strict=True)])

    arms: dict[str, Arm] = {
        # global pooling after n stride-2 stages: final maps 28/14/7/4/2 at 28x28
        **{f"gap_after_{n}_stride2": spec_arm(downs(n)) for n in range(5)},
        # depthwise (inverted residual) blocks at width 8 versus plain convs at width 8
        "conv_w8": spec_arm(cnn_spec([conv(8, 2), conv(8, 2)], stem=8)),
        "ir_w8_e1": spec_arm(cnn_spec([ir(8, 2, expand=1), ir(8, 2, expand=1)], stem=8)),
        "ir_w8_e4": spec_arm(cnn_spec([ir(8, 2, expand=4), ir(8, 2, expand=4)], stem=8)),
        # squeeze-excitation on a 2x2 map versus a 7x7 map
        "se_final_2px": spec_arm(downs(4, se=True)),
        "se_final_7px": spec_arm(downs(2, se=True)),
    }
    comparisons = [
        *((f"gap_after_{n}_stride2", "gap_after_2_stride2") for n in (0, 1, 3, 4)),
        ("ir_w8_e1", "conv_w8"),
        ("ir_w8_e4", "conv_w8"),
        ("se_final_2px", "gap_after_4_stride2"),
        ("se_final_7px", "gap_after_2_stride2"),
    ]
    return arms, comparisons


def code_arm(code: str, *, max_seeds: int | None = None) -> Arm:
    """An arm from a compact encoding (``cnn|conv_d1_k3_s1_c8_mp|...|flat|relu``)."""
    if code.startswith("cnn|"):
        spec = CNNSpace.decode(code, in_channels=1, num_classes=10, image_size=28)
    else:
        spec = ViTSpace.decode(code, in_channels=1, num_classes=10, image_size=28)
    return spec_arm(spec, max_seeds=max_seeds)


DESIGNS = {
    "textbook": "cnn|conv_d1_k3_s1_c8_mp|conv_d1_k3_s1_c16_mp|flat|relu",
    "textbook_stride": "cnn|conv_d1_k3_s2_c8|conv_d1_k3_s2_c16|flat|relu",
    "textbook_k5": "cnn|conv_d1_k5_s1_c8_mp|conv_d1_k3_s1_c16_mp|flat|relu",
    "textbook_3stage_4px": "cnn|conv_d1_k3_s1_c8_mp|conv_d1_k3_s1_c16_mp|conv_d1_k3_s1_c16_mp|flat|relu",
    "textbook_3stage_c32_4px": "cnn|conv_d1_k3_s1_c8_mp|conv_d1_k3_s1_c16_mp|conv_d1_k3_s1_c32_mp|flat|relu",
    "textbook_gap_c64_4px": "cnn|conv_d1_k3_s1_c16_mp|conv_d1_k3_s1_c32_mp|conv_d1_k3_s1_c64_mp|relu",
    "stem_s2_flat_4px": "cnn|stem16s2|conv_d1_k3_s1_c24_mp|conv_d1_k3_s1_c24_mp|flat|relu",
    "sep_flat_4px": "cnn|stem16s1|ir_d1_k3_s2_e2_c16|ir_d1_k3_s2_e4_c24|ir_d1_k3_s2_e4_c32|flat|relu",
    "resnet8": "cnn|stem16s1|res_d1_k3_s1_c16|res_d1_k3_s2_c32|res_d1_k3_s2_c64|relu",
    "resnet8_4px": "cnn|stem16s2|res_d1_k3_s1_c16|res_d1_k3_s2_c32|res_d1_k3_s2_c64|relu",
    "mobilenetv2_tiny": "cnn|stem16s1|ir_d1_k3_s1_e1_c16|ir_d2_k3_s2_e4_c24|ir_d2_k3_s2_e4_c32|ir_d1_k3_s2_e4_c64|relu",
    "mobilenetv2_tiny_7px": "cnn|stem16s2|ir_d1_k3_s1_e1_c16|ir_d2_k3_s2_e4_c24|ir_d2_k3_s1_e4_c32|relu",
}


def design_arms() -> tuple[dict[str, Arm], list[tuple[str, str]]]:
    """Hand designs as specs of the new ``cnn`` family, against the textbook spec."""
    designs = {"textbook": DESIGNS["textbook"], **(EXTRA_DESIGNS or DESIGNS)}
    arms = {name: code_arm(code) for name, code in designs.items()}
    return arms, [(name, "textbook") for name in designs if name != "textbook"]


EXTRA_DESIGNS: dict[str, str] = {}  # --design NAME=CODE: these instead of DESIGNS


def vit_spec(patch: int, dim: int, depth: int, heads: int, mlp: float) -> ArchSpec:
    config = {"patch": patch, "dim": dim, "depth": depth, "heads": heads, "mlp_ratio": mlp}
    config["pool"] = "cls"
    return ArchSpec(family="vit", in_channels=1, num_classes=10, image_size=28, config=config)


def vit_arms() -> tuple[dict[str, Arm], list[tuple[str, str]]]:
    """Patch 2/4/7 at 28x28 (196/49/16 tokens) at one width; the new space's costliest ViT
    (patch 4, 49 tokens); the issue's patch-2 trial (one seed: minutes)."""
    arms = {f"vit_p{p}_d64_L2_h4_m2": spec_arm(vit_spec(p, 64, 2, 4, 2)) for p in (2, 4, 7)}
    arms["new_space_costliest_vit_p4_d96_L4_h4_m4"] = spec_arm(
        vit_spec(4, 96, 4, 4, 4), max_seeds=2
    )
    arms["issue_vit_p2_d96_L4_h8_m1"] = spec_arm(vit_spec(2, 96, 4, 8, 1), max_seeds=1)
    comparisons = [
        ("vit_p2_d64_L2_h4_m2", "vit_p4_d64_L2_h4_m2"),
        ("vit_p7_d64_L2_h4_m2", "vit_p4_d64_L2_h4_m2"),
    ]
    return arms, comparisons


LR_ARCHS = {
    **{name: spec.encode() for name, spec in baseline_specs(1, 10, 28).items()},
    "textbook_stride": DESIGNS["textbook_stride"],
    "sampled_cnn_01": "cnn|stem16s1|res_d1_k5_s1_c32_mp|ir_d1_k3_s1_e4_c48_mp|flat|silu",
    "sampled_cnn_05": "cnn|ir_d2_k3_s1_e2_c8|ir_d2_k3_s2_e4_c24|conv_d2_k3_s2_c24_se|conv_d1_k3_s1_c32_mp|silu",
    "vit_p7_d48_L3_h4_m1": "vit|p7_d48_L3_h4_m1|cls",
}
LRS = (3e-3, 6e-3, 1e-2)


def lr_arms() -> tuple[dict[str, Arm], list[tuple[str, str]]]:
    """The learning rate's peak (one-cycle) at this budget, per architecture: the
    baselines, a cheap CNN, two random samples of the new space, a ViT."""
    arms: dict[str, Arm] = {}
    for name, code in LR_ARCHS.items():
        for lr in LRS:
            arm = code_arm(code)
            arms[f"{name}@lr{lr:g}"] = Arm(arm.build, econas_train(lr=lr), spec=arm.spec)
    comparisons = [
        (f"{name}@lr{lr:g}", f"{name}@lr{LRS[0]:g}") for name in LR_ARCHS for lr in LRS[1:]
    ]
    return arms, comparisons


SAMPLED = 16  # --sampled: random samples of each new default space (one seed each)


def sampled_arms() -> tuple[dict[str, Arm], list[tuple[str, str]]]:
    """Random samples of the new default spaces at 28x28 (RandomSampler, seed 0), one seed
    each: what a search's startup trials look like."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    arms: dict[str, Arm] = {}
    for family in ("cnn", "vit"):
        space = create_search_space(family)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for i in range(SAMPLED):
            spec = space.sample(study.ask(), in_channels=1, num_classes=10, image_size=28)
            arms[f"{family}_{i:02d}"] = spec_arm(spec, max_seeds=1)
    return arms, []


SECTIONS: dict[str, Callable[[], tuple[dict[str, Arm], list[tuple[str, str]]]]] = {
    "recipe": recipe_arms,
    "space": space_arms,
    "vit": vit_arms,
    "designs": design_arms,
    "sampled": sampled_arms,
    "lr": lr_arms,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--design",
        action="append",
        default=[],
        metavar="NAME=CODE",
        help="section designs: run these encodings (with the textbook) instead of the built-in list",
    )
    args = ap.parse_args()
    for item in args.design:
        name, _, code = item.partition("=")
        EXTRA_DESIGNS[name] = code
    _harness.pin_threads()
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    budget = DataBudget(train_size=2000, val_size=500, test_size=1000, batch_size=BATCH)
    data = load_data("fashion-mnist", budget=budget, seed=0)
    datas = {"norm": data, "raw01": raw01(data)}
    before = _harness.provenance()
    seeds = list(range(args.seeds))
    run_arm(Arm(textbook_cnn, econas_train()), data, 0)  # warm-up: thrown away
    results: dict[str, Any] = {}
    for name in args.sections:
        log(f"-- {name}")
        arms, comparisons = SECTIONS[name]()
        results[name] = run_section(arms, comparisons, datas, seeds, log)
    out = {
        "benchmark": "space_diagnosis",
        "budget": {
            "dataset": "fashion-mnist",
            "train_size": 2000,
            "val_size": 500,
            "data_seed": 0,
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "lr": LR,
            "weight_decay": WD,
            "optimizer": "adamw",
            "threads": torch.get_num_threads(),
        },
        "seeds": seeds,
        "sections": results,
        "provenance": {"before": before, "after": _harness.provenance()},
        "notes": "val_accuracy on the 500-image validation split; train_cpu_s is process CPU "
        "time of training only; paired diffs are per seed (same init and order)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(args.out.read_text()) if args.out.exists() else {}
    if prev.get("budget") == out["budget"] and prev.get("seeds") == seeds:
        prev["sections"].update(results)  # a run of some sections keeps the others
        out["sections"] = prev["sections"]
    args.out.write_text(json.dumps(out, indent=2, allow_nan=False) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
