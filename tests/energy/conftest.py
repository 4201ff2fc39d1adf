"""Fakes for the energy tests: a patched ``pynvml``, torch's CUDA view, a powercap tree.

Every test gets its own meter registry (``ECONAS_METER_REGISTRY``), so econas processes
metering elsewhere on this host never split a test's readings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest


@pytest.fixture(autouse=True)
def private_meter_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    registry = tmp_path / "meter-registry"
    monkeypatch.setenv("ECONAS_METER_REGISTRY", str(registry))
    return registry


def bus_id(i: int) -> str:
    """NVML's PCI bus id of fake GPU ``i`` (boards sit on buses 0x19, 0x3B, 0x5D, ...)."""
    return f"00000000:{0x19 + 0x22 * i:02X}:00.0"


class FakeNvml:
    """Patches the pynvml functions the meter uses; GPUs are ``("gpu", nvml_index)``.

    Each GPU has a UUID (``GPU-000i``) and a PCI bus id (:func:`bus_id`); ``lookups``
    records how handles were asked for (``("index", 1)``, ``("uuid", ...)``, ``("pci", ...)``).
    """

    def __init__(self, names: tuple[str, ...] = ("NVIDIA H200",)) -> None:
        self.names = list(names)
        self.uuids = [f"GPU-{i:04d}" for i in range(len(names))]
        self.bus_ids = [bus_id(i) for i in range(len(names))]
        self.processes: list[list[int]] = [[] for _ in names]  # pids of compute processes
        self.processes_supported = True
        self.lookups: list[tuple[str, object]] = []
        self.energy_mj = [0] * len(names)
        self.power_mw: Callable[[int], float] = lambda i: 100_000.0
        self.counter_supported = True
        self.init_error: Exception | None = None
        self.inits = 0
        self.shutdowns = 0
        self.power_reads = 0
        self.reads_before_event = 3
        self.power_read_event = threading.Event()  # set after reads_before_event reads

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
        for name in (
            "nvmlInit",
            "nvmlShutdown",
            "nvmlDeviceGetCount",
            "nvmlDeviceGetHandleByIndex",
            "nvmlDeviceGetHandleByUUID",
            "nvmlDeviceGetHandleByPciBusId",
            "nvmlDeviceGetUUID",
            "nvmlDeviceGetPciInfo",
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetName",
            "nvmlDeviceGetTotalEnergyConsumption",
            "nvmlDeviceGetPowerUsage",
        ):
            monkeypatch.setattr(pynvml, name, getattr(self, name))
        return self

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.names)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        self.lookups.append(("index", index))
        if not 0 <= index < len(self.names):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return ("gpu", index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> tuple[str, int]:
        self.lookups.append(("uuid", uuid))
        if uuid not in self.uuids:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return ("gpu", self.uuids.index(uuid))

    def nvmlDeviceGetHandleByPciBusId(self, bus: str) -> tuple[str, int]:
        self.lookups.append(("pci", bus))
        domain, _, rest = bus.upper().partition(":")
        wanted = f"{int(domain, 16):08X}:{rest}"  # NVML accepts 4- or 8-digit domains
        if wanted not in self.bus_ids:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return ("gpu", self.bus_ids.index(wanted))

    def nvmlDeviceGetUUID(self, handle: tuple[str, int]) -> str:
        return self.uuids[handle[1]]

    def nvmlDeviceGetPciInfo(self, handle: tuple[str, int]) -> SimpleNamespace:
        return SimpleNamespace(busId=self.bus_ids[handle[1]].encode())

    def nvmlDeviceGetComputeRunningProcesses(self, handle: tuple[str, int]) -> list[Any]:
        if not self.processes_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=1 << 30) for pid in self.processes[handle[1]]
        ]

    def nvmlDeviceGetName(self, handle: tuple[str, int]) -> bytes:
        return self.names[handle[1]].encode()

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: tuple[str, int]) -> int:
        if not self.counter_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self.energy_mj[handle[1]]

    def nvmlDeviceGetPowerUsage(self, handle: tuple[str, int]) -> int:
        self.power_reads += 1
        if self.power_reads >= self.reads_before_event:
            self.power_read_event.set()
        return int(self.power_mw(handle[1]))


@pytest.fixture
def make_fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeNvml]:
    """``make_fake_nvml(names=(...))`` installs a fake NVML with those GPUs."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def make(names: tuple[str, ...] = ("NVIDIA H200",)) -> FakeNvml:
        return FakeNvml(names).install(monkeypatch)

    return make


@pytest.fixture
def fake_nvml(make_fake_nvml: Callable[..., FakeNvml]) -> FakeNvml:
    """One fake NVIDIA H200 with a working energy counter."""
    return make_fake_nvml()


class FakeTorchCuda:
    """torch.cuda as a GPU machine shows it: ``order[i]`` is the NVML index of ``cuda:i``."""

    def __init__(self, fake: FakeNvml, order: list[int], current: int = 0) -> None:
        self.fake, self.order, self.current = fake, order, current
        self.uuids = list(fake.uuids)  # what the CUDA driver reports, fixed at install
        self.report_uuid = True

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeTorchCuda:
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(self.order))
        monkeypatch.setattr(torch.cuda, "current_device", lambda: self.current)
        monkeypatch.setattr(torch.cuda, "get_device_properties", self.get_device_properties)
        return self

    def get_device_properties(self, index: int) -> SimpleNamespace:
        nvml_index = self.order[index]
        domain, bus, rest = self.fake.bus_ids[nvml_index].split(":")
        uuid = self.uuids[nvml_index].removeprefix("GPU-")  # torch prints it bare
        return SimpleNamespace(
            name=self.fake.names[nvml_index],
            uuid=uuid if self.report_uuid else None,
            pci_domain_id=int(domain, 16),
            pci_bus_id=int(bus, 16),
            pci_device_id=int(rest.split(".")[0], 16),
        )


@pytest.fixture
def make_fake_torch_cuda(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., FakeTorchCuda]]:
    """``make_fake_torch_cuda(fake_nvml, order=[1, 0], current=0)`` patches torch.cuda."""

    def make(fake: FakeNvml, order: list[int], current: int = 0) -> FakeTorchCuda:
        return FakeTorchCuda(fake, order, current).install(monkeypatch)

    yield make


def make_zone(
    root: Path,
    zone_id: str,
    name: str,
    energy_uj: int,
    *,
    max_range_uj: int = 262_143_328_850,
    parent: Path | None = None,
) -> Path:
    """One powercap zone directory (``intel-rapl:0`` or, under ``parent``, a sub-zone)."""
    path = (parent or root) / zone_id
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return path


@pytest.fixture(name="make_zone")
def make_zone_fixture() -> Callable[..., Path]:
    """``make_zone(root, "intel-rapl:0", "package-0", energy_uj, ...)``."""
    return make_zone


@pytest.fixture
def powercap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A one-package tree: package-0 (with core and dram sub-zones); env points at it."""
    root = tmp_path / "powercap"
    root.mkdir()
    pkg = make_zone(root, "intel-rapl:0", "package-0", 1_000_000)
    zones = {
        "root": root,
        "package-0": pkg,
        "core": make_zone(root, "intel-rapl:0:0", "core", 500_000, parent=pkg),
        "dram": make_zone(root, "intel-rapl:0:1", "dram", 200_000, parent=pkg),
    }
    monkeypatch.setenv("ECONAS_POWERCAP_ROOT", str(root))
    return zones
