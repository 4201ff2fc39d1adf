"""nas.hardware: CPU features from cpuinfo, torch/CUDA capabilities, versions, provenance."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from nas import hardware
from nas.hardware import (
    CPU_FEATURES,
    cpu_features,
    cpu_isa_summary,
    cuda_device_info,
    hardware_provenance,
    quantized_engines,
    software_versions,
    tensor_core_dtypes,
    torch_cpu_capability,
)

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
siblings\t: 2
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi1 bmi2 aes hypervisor

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu avx512f amx_tile
"""
XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512dq avx512bw avx512_vnni avx512_bf16 \
avx_vnni amx_bf16 amx_tile amx_int8 avx512_fp16
"""
CACHED = (
    cpu_features,
    torch_cpu_capability,
    quantized_engines,
    software_versions,
    hardware._cpu_model,
    hardware._cuda_info,
)


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    for fn in CACHED:
        fn.cache_clear()
    yield
    for fn in CACHED:
        fn.cache_clear()


@pytest.fixture
def epyc(tmp_path: Path) -> Path:
    path = tmp_path / "cpuinfo-epyc"
    path.write_text(EPYC)
    return path


@pytest.fixture
def xeon(tmp_path: Path) -> Path:
    path = tmp_path / "cpuinfo-xeon"
    path.write_text(XEON)
    return path


def test_an_avx2_only_epyc(epyc: Path) -> None:
    features = cpu_features(epyc)
    assert list(features) == list(CPU_FEATURES)
    assert {k for k, v in features.items() if v} == {"avx2", "fma", "f16c"}  # first CPU only
    assert cpu_isa_summary(features) == "avx2+fma+f16c"


def test_an_avx512_amx_xeon(xeon: Path) -> None:
    features = cpu_features(xeon)
    # every feature but AMX_FP16 (Granite Rapids, not Sapphire Rapids)
    assert {k for k, v in features.items() if not v} == {"amx_fp16"}
    assert cpu_isa_summary(features) == (
        "avx512f+avx512_bf16+avx512_vnni+amx_tile+amx_bf16+amx_int8+avx512_fp16+avx_vnni+avx2"
        "+fma+f16c"
    )


def test_unreadable_cpuinfo_has_no_features(tmp_path: Path) -> None:
    features = cpu_features(tmp_path / "missing")
    assert not any(features.values()) and cpu_isa_summary(features) == "none"


def test_tensor_core_dtypes_follow_compute_capability() -> None:
    assert tensor_core_dtypes(6, 1) == []
    assert tensor_core_dtypes(7, 5) == ["fp16"]
    assert tensor_core_dtypes(8, 6) == ["fp16", "bf16", "tf32"]
    assert tensor_core_dtypes(8, 9) == ["fp16", "bf16", "tf32", "fp8"]
    assert tensor_core_dtypes(9, 0) == ["fp16", "bf16", "tf32", "fp8"]


def test_torch_capabilities_are_read_from_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(torch._C, "_supported_qengines", lambda: [4, 3])  # x86, onednn
    assert torch_cpu_capability() == "AVX512"
    assert quantized_engines() == ["x86", "onednn"]


def test_cuda_device_info(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert cuda_device_info("cpu") is None and cuda_device_info("mps") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cuda_device_info("cuda") is None  # no CUDA: None, not an error
    props = SimpleNamespace(
        name="NVIDIA H200",
        major=9,
        minor=0,
        uuid="6a7d2a7c-0000-1111-2222-333344445555",
        pci_domain_id=0,
        pci_bus_id=0x19,
        pci_device_id=0,
        total_memory=150_000_000_000,
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    info = cuda_device_info("cuda")
    assert info == {
        "index": 1,
        "name": "NVIDIA H200",
        "compute_capability": "9.0",
        "uuid": "GPU-6a7d2a7c-0000-1111-2222-333344445555",
        "pci_bus_id": "00000000:19:00.0",
        "total_memory_gb": 150.0,
        "tensor_core_dtypes": ["fp16", "bf16", "tf32", "fp8"],
    }
    assert cuda_device_info("cuda:0") is not None and cuda_device_info("cuda:2") is None


def test_software_versions_name_installed_packages_without_importing_them() -> None:
    versions = software_versions()
    assert set(versions) == {"python", "econas", "torch", "optuna", "onnxruntime", "codecarbon"}
    assert versions["python"] == platform.python_version()
    assert versions["econas"] and versions["torch"]
    code = (
        "import sys, nas.hardware, nas.energy\n"
        "nas.hardware.software_versions()\n"
        "print(sorted(m for m in ('torch', 'optuna', 'codecarbon') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # no torch at import, nothing imported for versions


def test_provenance_is_json_and_threads_stay_live(
    xeon: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(hardware, "CPUINFO", xeon)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    threads = [3]
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads[0])
    p = hardware_provenance("cpu")
    json.dumps(p)
    assert p["cpu_model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert p["cpu_features"] == [f for f in CPU_FEATURES if f != "amx_fp16"]
    assert p["cpu_isa"].startswith("avx512f+")
    assert p["torch_cpu_capability"] == "AVX512" and p["cuda"] is None
    assert p["threads"] == 3 and p["omp_num_threads"] == "4"
    assert p["logical_cores"] >= 1 and p["versions"]["python"] == platform.python_version()
    assert isinstance(p["quantized_engines"], list)
    threads[0] = 1  # torch.set_num_threads(1) later in the run: not cached
    assert hardware_provenance("cpu")["threads"] == 1
    assert hardware_provenance("cpu", threads=8)["threads"] == 8


def test_threads_without_torch_come_from_omp_num_threads(
    epyc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hardware, "CPUINFO", epyc)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace())  # torch not imported
    monkeypatch.setattr(hardware, "torch_cpu_capability", lambda: None)
    monkeypatch.setattr(hardware, "quantized_engines", lambda: [])
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    p = hardware_provenance("cpu")
    assert p["threads"] == 2 and p["cpu_isa"] == "avx2+fma+f16c"
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert hardware_provenance("cpu")["threads"] is None
