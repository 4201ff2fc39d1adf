"""Choosing a meter by name: ``create_meter("auto" | "nvml" | "rapl" | "estimate")``."""

from __future__ import annotations

import logging

from nas.energy._base import Meter
from nas.energy._composite import CompositeMeter
from nas.energy._estimate import SCOPES, EstimateMeter
from nas.energy._nvml import NvmlMeter, nvml_problem
from nas.energy._rapl import RaplMeter, rapl_problem
from nas.errors import BadInputError, MeterUnavailableError

log = logging.getLogger(__name__)

METER_NAMES = ("auto", "nvml", "rapl", "estimate")


def create_meter(
    name: str = "auto", *, device: str = "cpu", scope: str = "process", share: bool = True
) -> Meter:
    """A meter for work on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"cuda:all"``).

    ``"auto"`` never fails: NVML for the GPU(s) plus a host meter when ``device`` is CUDA and
    NVML works (composite, e.g. ``"nvml+estimate"``); otherwise RAPL when powercap is
    readable; otherwise the estimate. A meter asked for by name that can't be used raises
    :class:`~nas.errors.MeterUnavailableError`. ``scope="children"`` makes the estimate
    count waited-for child processes instead of this one. NVML meters the device's board
    only (``"cuda"``: the current CUDA device; ``"cuda:all"``: every visible GPU; ``"nvml"``
    with a non-CUDA device: every visible GPU). RAPL is machine-wide and NVML board-wide:
    with ``share=True`` (default) a reading other econas processes on this host meter too is
    split among them (RAPL by CPU time, NVML equally); ``share=False`` charges it whole.
    """
    if name not in METER_NAMES:
        raise BadInputError(f"meter {name!r} is unknown; use one of {list(METER_NAMES)}")
    if scope not in SCOPES:
        raise BadInputError(f"meter scope {scope!r} is unknown; use one of {list(SCOPES)}")
    device = _check_device(device)
    if name == "nvml":
        return NvmlMeter(device=device if is_cuda(device) else "cuda:all", share=share)
    if name == "rapl":
        return RaplMeter(share=share)
    if name == "estimate":
        return EstimateMeter(scope=scope)
    host = _auto_host(scope, share)
    if is_cuda(device):
        try:
            gpu = NvmlMeter(device=device, share=share)
        except MeterUnavailableError as exc:
            log.warning("%s; measuring the host only (%s)", exc, host.source)
            return host
        return CompositeMeter(parts=[gpu, host])
    return host


def available_meters(device: str = "cpu") -> list[str]:
    """Names ``create_meter`` accepts on this machine for ``device`` (``auto`` always)."""
    device = _check_device(device)
    names = ["auto"]
    if nvml_problem(device if is_cuda(device) else "cuda:all") is None:
        names.append("nvml")
    if rapl_problem() is None:
        names.append("rapl")
    names.append("estimate")
    return names


def is_cuda(device: str) -> bool:
    return device == "cuda" or device.startswith("cuda:")


def _check_device(device: str) -> str:
    if not isinstance(device, str) or not device.strip():
        raise BadInputError(f"device must be a name like 'cpu' or 'cuda:0', got {device!r}")
    return device.strip().lower()


def _auto_host(scope: str, share: bool) -> Meter:
    problem = rapl_problem()
    if problem is None:
        try:
            return RaplMeter(share=share)
        except MeterUnavailableError as exc:  # vanished between the check and the open
            log.warning("%s; estimating CPU and DRAM energy instead", exc)
    else:
        log.info("RAPL not available (%s); estimating CPU and DRAM energy", problem)
    return EstimateMeter(scope=scope)
