"""NVML meter: GPU energy from the driver's total-energy counter, or integrated power.

``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and newer) is
read at the window edges. Where it is not supported, one daemon thread per meter polls
``nvmlDeviceGetPowerUsage`` (mW) every ``poll_interval_s`` and integrates it (trapezoid).
Counters are board-wide: every process on the GPU counts. Only the trial's board is metered
(matched by UUID or PCI bus id, see ``_gpu``); other econas processes metering the same board
split it equally, and the number of other compute processes on it is recorded.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from nas.energy._base import Meter
from nas.energy._gpu import Board, NvmlUnavailable, find_boards, visible_gpus
from nas.energy._poll import Poller, TrapezoidIntegrator
from nas.energy._share import EqualShare, Share
from nas.errors import EconasError, MeterUnavailableError

__all__ = [
    "NvmlMeter",
    "import_pynvml",
    "nvml_is_available",
    "nvml_problem",
    "visible_gpus",
]

log = logging.getLogger(__name__)

_NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED
_FUNCTION_NOT_FOUND = 13  # NVML_ERROR_FUNCTION_NOT_FOUND
_INSTALL_HINT = "pynvml not installed (pip install nvidia-ml-py)"


def import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable(_INSTALL_HINT) from exc
    return pynvml


class NvmlMeter(Meter):
    """Measured GPU energy via NVML for ``device``: ``"cuda:N"`` that GPU, ``"cuda"`` the
    current CUDA device, ``"cuda:all"`` every visible GPU.

    Raises :class:`~nas.errors.MeterUnavailableError` when NVML can't be used. Domains are
    ``"gpu:N"`` with N the CUDA index (what ``torch`` calls ``cuda:N``). With ``share=True``
    (default) a board that other econas processes on this host meter too is split equally
    among them for the windows they overlap (``details["share"]``, ``share_method``).
    """

    def __init__(
        self, *, device: str = "cuda", poll_interval_s: float = 0.1, share: bool = True
    ) -> None:
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
            self._setup(device, poll_interval_s, share)
        except NvmlUnavailable as exc:
            self._shutdown()
            raise MeterUnavailableError(f"meter 'nvml' is not available: {exc}") from None
        except Exception as exc:
            self._shutdown()
            raise MeterUnavailableError(
                f"meter 'nvml' is not available: {_describe(exc)}"
            ) from None

    def _setup(self, device: str, poll_interval_s: float, share: bool) -> None:
        nvml = self._nvml
        self.boards: list[Board] = find_boards(nvml, device, os.environ.get("CUDA_VISIBLE_DEVICES"))
        self._handles: dict[str, Any] = {b.domain: b.handle for b in self.boards}
        names = [_text(nvml.nvmlDeviceGetName(b.handle)) for b in self.boards]
        counts = Counter(names)
        self._hardware = ", ".join(n if c == 1 else f"{c} x {n}" for n, c in counts.items())
        self._shares: dict[str, EqualShare] = {}
        if share:
            for b in self.boards:
                key = b.uuid or b.pci_bus_id or f"index:{b.nvml_id}"
                self._shares[b.domain] = EqualShare(f"nvml:{key}")
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
        marks = {d: sh.begin() for d, sh in self._shares.items()}
        if self._poller is not None:
            self._poller.open(name, TrapezoidIntegrator())
            return marks, None
        return marks, self._read_energy_mj()

    def _cancel(self, name: str, token: Any) -> None:
        if self._poller is not None:
            self._poller.discard(name)

    def _end(self, name: str, token: Any) -> tuple[dict[str, float], dict[str, Any]]:
        marks, start_mj = token
        details: dict[str, Any] = {"nvml_method": self.method}
        if self._poller is not None:
            acc = self._poller.close(name)
            details.update(
                samples=acc.samples,
                poll_interval_s=self._poller.interval_s,
                failed_reads=self._poller.failed_reads,
            )
            unshared = {d: mw_s / 1e3 for d, mw_s in acc.total.items()}
        else:
            end_mj = self._read_energy_mj()
            unshared = {}
            for domain, start in start_mj.items():
                delta_mj = end_mj[domain] - start
                if delta_mj < 0:
                    raise EconasError(
                        f"NVML energy counter of {domain} went backwards (driver reloaded?)"
                    )
                unshared[domain] = delta_mj / 1e3
            details["samples"] = 2
        shares = {d: sh.end(marks[d]) for d, sh in self._shares.items()}
        energy_j = {d: j * (shares[d].share if d in shares else 1.0) for d, j in unshared.items()}
        details.update(self._scope_details(shares, unshared, energy_j))
        return energy_j, details

    def _scope_details(
        self,
        shares: Mapping[str, Share],
        unshared: Mapping[str, float],
        charged: Mapping[str, float],
    ) -> dict[str, Any]:
        """What was metered (which board, matched how) and how it was shared."""
        total = sum(unshared.values())
        methods = list(dict.fromkeys(s.method for s in shares.values()))
        others = [n for b in self.boards if (n := self._other_processes(b)) is not None]
        return {
            "scope": "device",
            "nvml_devices": {b.domain: b.nvml_id for b in self.boards},
            "nvml_match": ", ".join(dict.fromkeys(b.match for b in self.boards)),
            "gpu_uuid": ", ".join(b.uuid or "unknown" for b in self.boards),
            "gpu_pci_bus_id": ", ".join(b.pci_bus_id or "unknown" for b in self.boards),
            "board_processes": max(others) if others else None,
            "share": sum(charged.values()) / total if total > 0 else _min_share(shares),
            "share_method": "; ".join(methods) or "whole board charged (share=False)",
            "energy_j_unshared": total,
            "peers": max((s.peers for s in shares.values()), default=0),
        }

    def _other_processes(self, board: Board) -> int | None:
        """Compute processes on the board other than this one (None: the driver can't say)."""
        try:
            procs = self._nvml.nvmlDeviceGetComputeRunningProcesses(board.handle)
        except Exception:  # old driver, partial fake, no permission
            return None
        return sum(1 for p in procs if getattr(p, "pid", None) != os.getpid())

    def _close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        for share in self._shares.values():
            share.close()
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception as exc:  # already shut down, driver gone: nothing left to release
            log.debug("nvmlShutdown failed: %r", exc)


def _min_share(shares: Mapping[str, Share]) -> float:
    return min((s.share for s in shares.values()), default=1.0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
