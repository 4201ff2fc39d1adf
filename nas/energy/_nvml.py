"""NVML meter: GPU energy from the driver's total-energy counter, or integrated power.

``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and newer) is
read at the window edges. Where it is not supported, one daemon thread per meter polls
``nvmlDeviceGetPowerUsage`` (mW) every ``poll_interval_s`` and integrates it (trapezoid).
Counters are board-wide: every process on the GPU counts.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from types import ModuleType
from typing import Any

from nas.energy._base import Meter
from nas.energy._poll import Poller, TrapezoidIntegrator
from nas.errors import EconasError, MeterUnavailableError

log = logging.getLogger(__name__)

_NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED
_FUNCTION_NOT_FOUND = 13  # NVML_ERROR_FUNCTION_NOT_FOUND
_INSTALL_HINT = "pynvml not installed (pip install nvidia-ml-py)"


class NvmlUnavailable(Exception):
    """Internal: why NVML can't be used (one line)."""


def import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable(_INSTALL_HINT) from exc
    return pynvml


def parse_cuda_index(device: str) -> int | None:
    """``"cuda:1"`` -> 1; ``"cuda"`` (every visible GPU) or a non-CUDA device -> None."""
    m = re.fullmatch(r"cuda:(\d+)", device.strip())
    return int(m[1]) if m else None


def visible_gpus(count: int, env: str | None) -> list[int | str]:
    """NVML indexes (or UUIDs) of the GPUs CUDA numbers 0, 1, ... under CUDA_VISIBLE_DEVICES.

    Plain indexes and ``GPU-`` UUIDs are understood; like CUDA, the list stops at the first
    invalid entry. MIG instances are not (NVML reports energy per board, not per instance).
    Assumes CUDA_DEVICE_ORDER=PCI_BUS_ID when several GPUs differ (NVML's order).
    """
    if env is None:
        return list(range(count))
    visible: list[int | str] = []
    for item in (x.strip() for x in env.split(",")):
        if item.isdigit() and int(item) < count:
            visible.append(int(item))
        elif item.startswith("GPU-"):
            visible.append(item)
        elif item.startswith("MIG-"):
            raise NvmlUnavailable(f"CUDA_VISIBLE_DEVICES={env!r}: MIG instances are not supported")
        else:
            break
    return visible


class NvmlMeter(Meter):
    """Measured GPU energy via NVML for ``device`` (``"cuda:N"``: that GPU; else all visible).

    Raises :class:`~nas.errors.MeterUnavailableError` when NVML can't be used. Domains are
    ``"gpu:N"`` with N the CUDA index (what ``torch`` calls ``cuda:N``).
    """

    def __init__(self, *, device: str = "cuda", poll_interval_s: float = 0.1) -> None:
        super().__init__()
        try:
            self._nvml = import_pynvml()
        except NvmlUnavailable as exc:
            raise MeterUnavailableError(f"meter 'nvml' is not available: {exc}") from None
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded...
            raise MeterUnavailableError(
                f"meter 'nvml' is not available: NVML init failed ({_describe(exc)})"
            ) from None
        try:
            self._setup(device, poll_interval_s)
        except NvmlUnavailable as exc:
            self._shutdown()
            raise MeterUnavailableError(f"meter 'nvml' is not available: {exc}") from None
        except Exception as exc:
            self._shutdown()
            raise MeterUnavailableError(
                f"meter 'nvml' is not available: {_describe(exc)}"
            ) from None

    def _setup(self, device: str, poll_interval_s: float) -> None:
        nvml = self._nvml
        visible = visible_gpus(nvml.nvmlDeviceGetCount(), os.environ.get("CUDA_VISIBLE_DEVICES"))
        if not visible:
            raise NvmlUnavailable("no GPU visible to NVML (or CUDA_VISIBLE_DEVICES hides all)")
        index = parse_cuda_index(device)
        if index is not None and index >= len(visible):
            raise NvmlUnavailable(f"{device} is not a visible GPU ({len(visible)} visible)")
        chosen = [index] if index is not None else list(range(len(visible)))
        self._handles: dict[str, Any] = {}
        self._nvml_ids: dict[str, int | str] = {}
        names: list[str] = []
        for cuda_index in chosen:
            target = visible[cuda_index]
            if isinstance(target, str):
                handle = nvml.nvmlDeviceGetHandleByUUID(target)
            else:
                handle = nvml.nvmlDeviceGetHandleByIndex(target)
            domain = f"gpu:{cuda_index}"
            self._handles[domain] = handle
            self._nvml_ids[domain] = target
            name = nvml.nvmlDeviceGetName(handle)
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        counts = Counter(names)
        self._hardware = ", ".join(n if c == 1 else f"{c} x {n}" for n, c in counts.items())
        self.method = "counter" if self._counter_supported() else "polling"
        self._poller: Poller | None = None
        if self.method == "polling":
            log.info("NVML energy counter not supported; polling power every %g s", poll_interval_s)
            self._poller = Poller(
                read=self._read_power_mw, interval_s=poll_interval_s, name="econas-nvml"
            )

    def _counter_supported(self) -> bool:
        for handle in self._handles.values():
            try:
                self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except AttributeError:
                return False
            except Exception as exc:
                if _nvml_code(exc) in (_NOT_SUPPORTED, _FUNCTION_NOT_FOUND):
                    return False
                raise
        return True

    @property
    def source(self) -> str:
        return "nvml"

    @property
    def kind(self) -> str:
        return "measured"

    @property
    def hardware(self) -> str:
        return self._hardware

    def _read_energy_mj(self) -> dict[str, float]:
        return self._read(self._nvml.nvmlDeviceGetTotalEnergyConsumption, "energy counter")

    def _read_power_mw(self) -> dict[str, float]:
        return self._read(self._nvml.nvmlDeviceGetPowerUsage, "power")

    def _read(self, fn: Any, what: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for domain, handle in self._handles.items():
            try:
                out[domain] = float(fn(handle))
            except Exception as exc:
                raise EconasError(
                    f"NVML failed reading the {what} of {domain}: {_describe(exc)}"
                ) from exc
        return out

    def _begin(self, name: str) -> Any:
        if self._poller is not None:
            self._poller.open(name, TrapezoidIntegrator())
            return None
        return self._read_energy_mj()

    def _end(self, name: str, token: Any) -> tuple[dict[str, float], dict[str, Any]]:
        details: dict[str, Any] = {
            "scope": "system",
            "nvml_method": self.method,
            "nvml_devices": dict(self._nvml_ids),
        }
        if self._poller is not None:
            acc = self._poller.close(name)
            details.update(
                samples=acc.samples,
                poll_interval_s=self._poller.interval_s,
                failed_reads=self._poller.failed_reads,
            )
            return {d: mw_s / 1e3 for d, mw_s in acc.total.items()}, details
        end_mj = self._read_energy_mj()
        energy_j: dict[str, float] = {}
        for domain, start in token.items():
            delta_mj = end_mj[domain] - start
            if delta_mj < 0:
                raise EconasError(
                    f"NVML energy counter of {domain} went backwards (driver reloaded?)"
                )
            energy_j[domain] = delta_mj / 1e3
        details["samples"] = 2
        return energy_j, details

    def _close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception as exc:  # already shut down, driver gone: nothing left to release
            log.debug("nvmlShutdown failed: %r", exc)


def nvml_problem(device: str = "cuda") -> str | None:
    """Why NVML can't measure ``device`` (one line), or None when it can."""
    try:
        meter = NvmlMeter(device=device)
    except MeterUnavailableError as exc:
        return str(exc).removeprefix("meter 'nvml' is not available: ")
    meter.close()
    return None


def nvml_is_available() -> bool:
    """True when pynvml imports, NVML initialises and at least one GPU is visible."""
    return nvml_problem() is None


def _nvml_code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
