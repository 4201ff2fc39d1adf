"""What decides results on this machine, recorded with them (provenance).

The CPU's instruction-set features decide which techniques pay (bf16 is emulated without
AVX512_BF16/AMX; INT8 speed-ups differ between AVX2 and VNNI), the GPU's compute capability
decides which dtypes run on tensor cores, and thread counts and library versions change
timings. :func:`hardware_provenance` gathers them in one JSON-serialisable dict.

A leaf module: torch is imported only inside the functions that need it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

from nas._malloc import freed_memory_kept
from nas.energy import read_cpu_info

CPUINFO = Path("/proc/cpuinfo")
# /proc/cpuinfo flag names, in the order cpu_features() reports them.
CPU_FEATURES = (
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "avx512_fp16",
    "amx_fp16",
    "fma",
    "f16c",
)
# Widest first: the order of cpu_isa_summary().
_ISA_ORDER = (
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "avx512_fp16",
    "amx_fp16",
    "avx_vnni",
    "avx2",
    "fma",
    "f16c",
)
# Tensor-core dtypes by the compute capability that introduced them.
_TENSOR_CORE_DTYPES = (("fp16", (7, 0)), ("bf16", (8, 0)), ("tf32", (8, 0)), ("fp8", (8, 9)))
_PACKAGES = ("econas", "torch", "optuna", "onnxruntime", "codecarbon")


def resolve_device(name: str) -> Any:
    """The torch device ``name`` names: ``auto`` -> cuda when available, else cpu; a CUDA device
    on a machine without CUDA is bad input."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from nas.errors import BadInputError

        raise BadInputError(f"device {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)


@functools.cache
def cpu_features(cpuinfo_path: Path = CPUINFO) -> dict[str, bool]:
    """Which of :data:`CPU_FEATURES` the CPU has (the first ``flags`` line); all False when
    the file is unreadable."""
    flags: set[str] = set()
    try:
        text = Path(cpuinfo_path).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            break
    return {name: name in flags for name in CPU_FEATURES}


def cpu_isa_summary(features: dict[str, bool]) -> str:
    """``"avx2+fma+f16c"``, ``"avx512f+avx512_bf16+...+amx_bf16+..."``; ``"none"`` if empty."""
    present = [name for name in _ISA_ORDER if features.get(name)]
    return "+".join(present) or "none"


@functools.cache
def torch_cpu_capability() -> str | None:
    """The kernels torch dispatches to on this CPU (``"AVX2"``, ``"AVX512"``...), or None."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # no torch, or a build without the query
        return None


def cuda_device_info(device: str) -> dict[str, Any] | None:
    """Name, compute capability, UUID, PCI bus id and tensor-core dtypes of a CUDA device
    (``"cuda"`` = the current one, ``"cuda:N"``); None for other devices or without CUDA."""
    device = device.strip().lower()
    m = re.fullmatch(r"cuda(?::(\d+))?", device)
    if m is None:
        return None
    from nas.energy import torch_cuda

    cuda = torch_cuda()
    if cuda is None:
        return None
    index = int(m[1]) if m[1] is not None else int(cuda.current_device())
    if index >= cuda.device_count():
        return None
    return _cuda_info(index)


@functools.cache
def _cuda_info(index: int) -> dict[str, Any]:
    from nas.energy import torch_cuda, torch_identity

    cuda = torch_cuda()
    if cuda is None:  # checked by the caller; only a driver vanishing gets here
        raise RuntimeError("torch lost its CUDA devices")
    props = cuda.get_device_properties(index)
    major, minor = int(props.major), int(props.minor)
    uuid, bus = torch_identity(cuda, index)
    return {
        "index": index,
        "name": str(props.name),
        "compute_capability": f"{major}.{minor}",
        "uuid": uuid,
        "pci_bus_id": bus,
        "total_memory_gb": round(float(getattr(props, "total_memory", 0)) / 1e9, 1),
        "tensor_core_dtypes": tensor_core_dtypes(major, minor),
    }


def tensor_core_dtypes(major: int, minor: int) -> list[str]:
    """Dtypes with tensor-core support: fp16 >= 7.0, bf16 and tf32 >= 8.0, fp8 >= 8.9."""
    return [dtype for dtype, since in _TENSOR_CORE_DTYPES if (major, minor) >= since]


@functools.cache
def quantized_engines() -> list[str]:
    """``torch.backends.quantized.supported_engines`` (``[]`` without torch)."""
    try:
        import torch

        return [str(e) for e in torch.backends.quantized.supported_engines]
    except Exception:
        return []


@functools.cache
def software_versions() -> dict[str, str | None]:
    """Python's and the installed distributions' versions (None: not installed); nothing is
    imported."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.cache
def _cpu_model(cpuinfo_path: Path) -> tuple[str, int]:
    info = read_cpu_info(cpuinfo_path)
    return info.model, info.logical_cores


def _threads() -> int | None:
    torch = sys.modules.get("torch")
    get = getattr(torch, "get_num_threads", None)
    if get is not None:
        return int(get())
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.strip().isdigit() else None


def hardware_provenance(device: str = "cpu", *, threads: int | None = None) -> dict[str, Any]:
    """Everything above as one JSON-serialisable dict, for a trial or a benchmark result.

    ``threads`` is the intra-op thread count the work ran with; by default torch's (when
    torch is imported), else ``$OMP_NUM_THREADS``, else None. It is read on every call;
    what can't change within a process is cached.
    """
    model, cores = _cpu_model(CPUINFO)
    features = cpu_features(CPUINFO)
    return {
        "cpu_model": model,
        "logical_cores": cores,
        "cpu_features": [name for name, present in features.items() if present],
        "cpu_isa": cpu_isa_summary(features),
        "torch_cpu_capability": torch_cpu_capability(),
        "threads": threads if threads is not None else _threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "freed_memory_kept": freed_memory_kept(),
        "cuda": cuda_device_info(device),
        "quantized_engines": quantized_engines(),
        # set to emulate a narrower CPU (an AVX2-only one on an AVX-512 machine)
        "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "versions": software_versions(),
    }
