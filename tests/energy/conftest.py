"""Fakes for the energy tests: a patched ``pynvml`` and a fake powercap tree."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pynvml
import pytest


class FakeNvml:
    """Patches the pynvml functions the meter uses; GPUs are ``("gpu", nvml_index)``."""

    def __init__(self, names: tuple[str, ...] = ("NVIDIA H200",)) -> None:
        self.names = list(names)
        self.uuids = [f"GPU-{i:04d}" for i in range(len(names))]
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
        if not 0 <= index < len(self.names):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return ("gpu", index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> tuple[str, int]:
        return ("gpu", self.uuids.index(uuid))

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
