"""Calibration: which training precisions and deployed quantizations pay on this hardware.

Before a study that samples compression or precision (and before ``econas ablate``), a short
metered micro-benchmark trains a few steps and predicts a few batches with every candidate
(bf16/fp16 autocast training; fp16/bf16 casts and dynamic/static INT8 deployed) and with
fp32, on small layers shaped like the search space's (a conv block, a transformer block) at
the study's resolution and batch size. Rounds are interleaved and the order rotates each
round, so a burst of load on a shared machine does not land on one candidate only. Each
round gives a ratio ``energy per step (candidate) / energy per step (fp32)``.

Decision rule: a candidate is **excluded** when the median of its per-round ratios is above
1 -- it costs more energy than fp32 here, so sampling it can only waste the search's budget.
The median's distribution-free interval (:func:`nas.stats.median_ci`) is recorded with it; a
point estimate decides because a candidate whose interval merely straddles 1 saves nothing
worth a trial either. ``force`` puts excluded candidates back in (the reason is still kept).

INT8 is compared with fp32 on the CPU it runs on; fp16/bf16 with fp32 on the training device.
Results are cached per process and hardware (instruction sets, torch's CPU capability, the
device and the shapes), so a second study in the same process reuses them (and is charged
nothing: :attr:`Calibration.reused`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from nas.compression.precision import DTYPES, precision_dtype
from nas.compression.quantize import INT8, quantize
from nas.energy import Meter
from nas.hardware import cpu_features, cuda_device_info, hardware_provenance, torch_cpu_capability
from nas.stats import median, median_ci
from nas.train import onednn_guard

WINDOW = "calibration"


@dataclass(frozen=True)
class CandidateResult:
    """One candidate's per-round energy ratios against fp32, and the decision."""

    name: str  # "bf16" (training dtype) or a quantization ("int8_static", "fp16"...)
    stage: str  # "train" | "inference"
    ratios: list[float]
    ratio_median: float
    ratio_ci: tuple[float, float]
    ci_coverage: float
    native: bool  # False: the hardware emulates it (bf16 without AVX512_BF16/AMX...)
    hardware_note: str  # "no AVX512_BF16", "VNNI", "bf16 tensor cores"...
    excluded: bool
    forced: bool
    reason: str  # "bf16: 4.1x fp32 train energy on this CPU (no AVX512_BF16): not sampled"


@dataclass
class Calibration:
    """What the calibration measured, what it excludes and what it cost (once)."""

    device: str
    family: list[str]
    input_shape: list[int]
    batch_size: int
    rounds: int
    candidates: dict[str, CandidateResult]  # "train:bf16", "inference:int8_static"
    energy_kwh: float
    energy_kind: str
    energy_source: str
    duration_s: float
    hardware: dict[str, Any] = field(default_factory=dict)
    reused: bool = False
    archs: dict[str, dict[str, Any]] | None = None  # the probed architectures (None: blocks)

    def excluded(self, stage: str) -> set[str]:
        return {c.name for c in self.candidates.values() if c.stage == stage and c.excluded}

    def allowed_precisions(self, choices: Iterable[str]) -> tuple[str, ...]:
        """``choices`` (training precisions) less those whose dtype is excluded."""
        bad = self.excluded("train")
        return tuple(p for p in choices if p == "fp32" or p.rsplit("_", 1)[-1] not in bad)

    def allowed_quantizations(self, choices: Iterable[str]) -> tuple[str, ...]:
        bad = self.excluded("inference")
        return tuple(q for q in choices if q not in bad)

    @property
    def reasons(self) -> list[str]:
        return [c.reason for c in self.candidates.values() if c.reason]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        cands = {
            k: CandidateResult(**{**v, "ratio_ci": tuple(v["ratio_ci"])})
            for k, v in d["candidates"].items()
        }
        return cls(**{**d, "candidates": cands})


_CACHE: dict[tuple[Any, ...], Calibration] = {}


def clear_cache() -> None:
    _CACHE.clear()


# -- what the hardware does natively -------------------------------------------------------
def _isa_limited() -> str | None:
    """The environment variable that keeps torch/oneDNN below AVX-512, if one does."""
    cap = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if cap and "avx512" not in cap and "amx" not in cap:
        return f"ATEN_CPU_CAPABILITY={cap}"
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa and "AVX512" not in isa and "AMX" not in isa and isa != "ALL":
        return f"ONEDNN_MAX_CPU_ISA={isa}"
    return None


def native_support(name: str, device: torch.device) -> tuple[bool, str]:
    """Whether ``name`` (bf16, fp16, int8_dynamic, int8_static) runs natively on ``device``,
    and the hardware fact that decides it, in words."""
    if device.type == "cuda":
        info = cuda_device_info(str(device)) or {}
        tc = info.get("tensor_core_dtypes", [])
        cc = info.get("compute_capability", "?")
        if name in INT8:
            return False, "INT8 runs on the CPU, not this GPU"
        ok = name in tc
        return ok, f"{name} tensor cores (sm {cc})" if ok else f"no {name} tensor cores (sm {cc})"
    f = cpu_features()
    limited = _isa_limited()
    if name == "bf16":
        hw = f.get("avx512_bf16") or f.get("amx_bf16")
        if hw and limited:
            return False, f"AVX512_BF16 disabled by {limited}"
        return bool(hw), "AVX512_BF16" if hw else "no AVX512_BF16"
    if name == "fp16":
        hw = f.get("avx512_fp16") or f.get("amx_fp16")
        if hw and limited:
            return False, f"AVX512_FP16 disabled by {limited}"
        return bool(hw), "AVX512_FP16" if hw else "no AVX512_FP16"
    vnni = f.get("avx512_vnni") or f.get("avx_vnni") or f.get("amx_int8")
    if vnni and limited and not f.get("avx_vnni"):
        return True, f"VNNI disabled by {limited}"
    return True, "VNNI" if vnni else f"no VNNI, {torch_cpu_capability() or 'unknown'} kernels"


# -- the layers ----------------------------------------------------------------------------
def probe_model(
    family: str,
    in_channels: int,
    image_size: int,
    num_classes: int,
    arch: dict[str, Any] | None = None,
) -> nn.Module:
    """A small block of ``family`` built by the search space itself (a conv stage pair, one
    transformer block) at the study's resolution; ``arch``: that architecture instead (the
    ablation's baseline)."""
    from search_spaces import ArchSpec, build_model

    if arch is not None:
        return build_model(ArchSpec(family, in_channels, num_classes, image_size, arch))

    conv = {"block": "conv", "depth": 1, "kernel": 3, "stride": 2, "se": False}
    config: dict[str, Any] = (
        {
            "stem_width": 16,
            "stem_stride": 1,
            "activation": "relu",
            "stages": [{**conv, "width": 32}, {**conv, "width": 64}],
        }
        if family == "cnn"
        else {"patch": 4, "dim": 64, "depth": 1, "heads": 4, "mlp_ratio": 2, "pool": "mean"}
    )
    return build_model(ArchSpec(family, in_channels, num_classes, image_size, config))


# -- measuring -----------------------------------------------------------------------------
def _per_step(
    meter: Meter, key: str, fn: Any, *, min_steps: int, min_duration_s: float, device: torch.device
) -> float:
    """kWh per call of ``fn`` over at least ``min_steps`` calls and ``min_duration_s``."""
    meter.begin_window("calibration_step")
    t0, n = time.perf_counter(), 0
    try:
        while n < min_steps or time.perf_counter() - t0 < min_duration_s:
            fn()
            n += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        m = meter.end_window("calibration_step")
    return m.energy_kwh / n


def _train_fn(model: nn.Module, dtype: torch.dtype | None, x: torch.Tensor, y: torch.Tensor) -> Any:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    dev = x.device.type

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_fn(model(x), y)
        with onednn_guard(model, x.device):
            loss.backward()
        opt.step()

    return step


def _infer_fn(model: nn.Module, x: torch.Tensor) -> Any:
    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def _times(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 2 else f"{ratio:.1f}x"


def _decide(
    name: str, stage: str, ratios: list[float], device: torch.device, force: set[str]
) -> CandidateResult:
    med = median(ratios)
    lo, hi, cov = median_ci(ratios)
    native, note = native_support(
        name, device if stage == "train" or name not in INT8 else torch.device("cpu")
    )
    where = "CPU" if (device.type == "cpu" or name in INT8) else "GPU"
    excluded = med > 1.0
    forced = excluded and name in force
    reason = ""
    if excluded:
        tail = "forced back in by the config" if forced else "not sampled"
        reason = (
            f"{name}: {_times(med)} fp32 {'train' if stage == 'train' else 'inference'} "
            f"energy on this {where} ({note}): {tail}"
        )
    return CandidateResult(
        name=name,
        stage=stage,
        ratios=ratios,
        ratio_median=med,
        ratio_ci=(lo, hi),
        ci_coverage=cov,
        native=native,
        hardware_note=note,
        excluded=excluded and not forced,
        forced=forced,
        reason=reason,
    )


def calibrate(
    *,
    families: Iterable[str],
    input_shape: tuple[int, int, int],
    num_classes: int,
    batch_size: int,
    device: torch.device,
    meter: Meter,
    precisions: Iterable[str] = (),
    quantizations: Iterable[str] = (),
    force: Iterable[str] = (),
    rounds: int = 5,
    min_steps: int = 2,
    min_duration_s: float = 0.1,
    inference_batch_size: int | None = None,
    archs: dict[str, dict[str, Any]] | None = None,
) -> Calibration:
    """Measure every candidate against fp32 (see the module docstring); cached per process."""
    families = sorted(set(families))
    dtypes = sorted(
        {
            n
            for p in precisions
            if (d := precision_dtype(p)) is not None
            for n, v in DTYPES.items()
            if v == d
        }
    )
    quants = sorted({q for q in quantizations if q != "fp32"})
    if "cnn" not in families:
        quants = [q for q in quants if q != "int8_static"]
    force_set = set(force)
    ib = inference_batch_size or batch_size
    key = (
        str(device),
        tuple(families),
        tuple(input_shape),
        batch_size,
        ib,
        tuple(dtypes),
        tuple(quants),
        tuple(sorted(force_set)),
        rounds,
        min_steps,
        min_duration_s,
        json.dumps(archs, sort_keys=True),
        torch_cpu_capability(),
        _isa_limited(),
        tuple(sorted(cpu_features().items())),
    )
    if key in _CACHE:
        return dataclasses.replace(_CACHE[key], reused=True)
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, *input_shape, generator=gen)
    y = torch.randint(0, num_classes, (batch_size,), generator=gen)
    xi = torch.randn(ib, *input_shape, generator=gen)
    fns: dict[str, Any] = {}
    for fam in families:
        torch.manual_seed(0)
        arch = (archs or {}).get(fam)
        base = probe_model(fam, input_shape[0], input_shape[1], num_classes, arch)
        for dt in ("fp32", *dtypes):
            model = copy.deepcopy(base).to(device).train()
            dtype = None if dt == "fp32" else DTYPES[dt]
            fns[f"train:{dt}:{fam}"] = _train_fn(model, dtype, x.to(device), y.to(device))
        base = base.eval()
        targets = {"fp32@dev": (device, base.to(device))}
        if device.type != "cpu" and any(q in INT8 for q in quants):
            targets["fp32@cpu"] = (cpu, copy.deepcopy(base).cpu())
        for q in quants:
            if q == "int8_static" and fam != "cnn":  # FX static INT8 is for the CNNs only
                continue
            calib = [torch.randn(16, *input_shape, generator=gen)]
            qm = quantize(base, quantization=q, device=device, calibration=calib)
            targets[q] = (cpu if q in INT8 else device, qm)
        for name, (dev, m) in targets.items():
            fns[f"inference:{name}:{fam}"] = _infer_fn(m, xi.to(dev))
    names = list(fns)
    started = time.perf_counter()
    meter.begin_window(WINDOW)
    try:
        for fn in fns.values():  # warm-up: kernels, caches, FX graphs
            fn()
        per: dict[str, list[float]] = {k: [] for k in names}
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for k in order:
                dev = device
                if ":int8" in k or "fp32@cpu" in k:
                    dev = cpu
                per[k].append(
                    _per_step(
                        meter,
                        k,
                        fns[k],
                        min_steps=min_steps,
                        min_duration_s=min_duration_s,
                        device=dev,
                    )
                )
    finally:
        total = meter.end_window(WINDOW)
    results: dict[str, CandidateResult] = {}
    for stage, cands in (("train", dtypes), ("inference", quants)):
        for name in cands:
            ratios = []
            for r in range(rounds):
                num = den = 0.0
                for fam in families:
                    if f"{stage}:{name}:{fam}" not in per:
                        continue
                    ref = (
                        "fp32"
                        if stage == "train"
                        else ("fp32@cpu" if name in INT8 and device.type != "cpu" else "fp32@dev")
                    )
                    num += per[f"{stage}:{name}:{fam}"][r]
                    den += per[f"{stage}:{ref}:{fam}"][r]
                ratios.append(num / den if den > 0 else float("inf"))
            results[f"{stage}:{name}"] = _decide(name, stage, ratios, device, force_set)
    cal = Calibration(
        device=str(device),
        family=families,
        input_shape=list(input_shape),
        batch_size=batch_size,
        rounds=rounds,
        candidates=results,
        energy_kwh=total.energy_kwh,
        energy_kind=total.kind,
        energy_source=total.source,
        duration_s=time.perf_counter() - started,
        hardware=hardware_provenance(str(device)),
        archs=archs,
    )
    _CACHE[key] = cal
    return cal
