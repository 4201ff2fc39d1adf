"""Which NVML board is torch's ``cuda:N``: matched by UUID or PCI bus id, never by order.

CUDA numbers devices fastest-first by default while NVML numbers them by PCI bus, so an
index can name another board. When torch has CUDA, the device's UUID (else its PCI bus id)
from ``torch.cuda.get_device_properties`` finds the NVML handle. Without torch CUDA (a fake
NVML in tests, a driver without the runtime) the ``CUDA_VISIBLE_DEVICES`` order is used and
``match`` says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

INDEX_MATCH = "index (no torch CUDA to match by bus id)"


class NvmlUnavailable(Exception):
    """Internal: why NVML can't be used (one line)."""


@dataclass(frozen=True)
class Board:
    domain: str  # "gpu:N", N the CUDA index (what torch calls cuda:N)
    handle: Any
    nvml_id: int | str  # what found the handle: NVML index, UUID or PCI bus id
    match: str  # "uuid", "pci_bus_id" or INDEX_MATCH
    uuid: str | None
    pci_bus_id: str | None


def torch_cuda() -> Any | None:
    """``torch.cuda`` when torch imports and sees at least one CUDA device, else None."""
    try:
        import torch

        cuda = torch.cuda
        return cuda if cuda.is_available() and cuda.device_count() > 0 else None
    except Exception:  # no torch, a CPU build, a broken driver: match by index instead
        return None


def torch_identity(cuda: Any, index: int) -> tuple[str | None, str | None]:
    """(NVML-style UUID ``GPU-...``, PCI bus id ``00000000:19:00.0``) of torch's cuda:index."""
    props = cuda.get_device_properties(index)
    raw = getattr(props, "uuid", None)
    uuid = str(raw) if raw is not None and str(raw) else None
    if uuid is not None and not uuid.startswith(("GPU-", "MIG-")):
        uuid = f"GPU-{uuid}"
    bus = getattr(props, "pci_bus_id", None)
    if bus is None:
        return uuid, None
    domain = int(getattr(props, "pci_domain_id", 0) or 0)
    slot = int(getattr(props, "pci_device_id", 0) or 0)
    return uuid, f"{domain:08X}:{int(bus):02X}:{slot:02X}.0"


def visible_gpus(count: int, env: str | None) -> list[int | str]:
    """NVML indexes (or UUIDs) of the GPUs CUDA numbers 0, 1, ... under CUDA_VISIBLE_DEVICES.

    Plain indexes and ``GPU-`` UUIDs are understood; like CUDA, the list stops at the first
    invalid entry. MIG instances are not (NVML reports energy per board, not per instance).
    Used only without torch CUDA: assumes CUDA_DEVICE_ORDER=PCI_BUS_ID (NVML's order).
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


def cuda_indexes(device: str, cuda: Any | None, visible: int) -> list[int]:
    """CUDA indexes ``device`` names: ``cuda:N``; ``cuda`` = the current device (torch's, else
    0); ``cuda:all`` = every visible GPU."""
    device = device.strip().lower()
    count = cuda.device_count() if cuda is not None else visible
    if device == "cuda:all":
        return list(range(count))
    if device == "cuda":
        return [int(cuda.current_device()) if cuda is not None else 0]
    m = re.fullmatch(r"cuda:(\d+)", device)
    if m is None:
        raise NvmlUnavailable(f"{device!r} is not a CUDA device (cuda, cuda:N or cuda:all)")
    if int(m[1]) >= count:
        raise NvmlUnavailable(f"{device} is not a visible GPU ({count} visible)")
    return [int(m[1])]


def find_boards(nvml: Any, device: str, env: str | None) -> list[Board]:
    """The NVML boards ``device`` runs on, matched by UUID or PCI bus id when torch can say."""
    visible = visible_gpus(nvml.nvmlDeviceGetCount(), env)  # also refuses MIG
    if not visible:
        raise NvmlUnavailable("no GPU visible to NVML (or CUDA_VISIBLE_DEVICES hides all)")
    cuda = torch_cuda()
    boards: list[Board] = []
    for index in cuda_indexes(device, cuda, len(visible)):
        uuid: str | None = None
        bus: str | None = None
        if cuda is not None:
            uuid, bus = torch_identity(cuda, index)
            handle, nvml_id, match = _by_identity(nvml, uuid, bus, device)
        elif isinstance(target := visible[index], str):
            handle, nvml_id, match = nvml.nvmlDeviceGetHandleByUUID(target), target, "uuid"
        else:
            handle, nvml_id, match = nvml.nvmlDeviceGetHandleByIndex(target), target, INDEX_MATCH
        uuid = _nvml_uuid(nvml, handle) or uuid
        bus = _nvml_bus(nvml, handle) or bus
        boards.append(Board(f"gpu:{index}", handle, nvml_id, match, uuid, bus))
    return boards


def _by_identity(nvml: Any, uuid: str | None, bus: str | None, device: str) -> tuple[Any, str, str]:
    if uuid is not None:
        try:
            return nvml.nvmlDeviceGetHandleByUUID(uuid), uuid, "uuid"
        except Exception:  # a MIG or unknown UUID: the bus id names the board
            pass
    if bus is not None:
        get = getattr(nvml, "nvmlDeviceGetHandleByPciBusId_v2", None)
        get = get or nvml.nvmlDeviceGetHandleByPciBusId
        try:
            return get(bus), bus, "pci_bus_id"
        except Exception:
            pass
    raise NvmlUnavailable(f"NVML finds no board with {device}'s UUID {uuid} or PCI bus id {bus}")


def _nvml_uuid(nvml: Any, handle: Any) -> str | None:
    try:
        return _text(nvml.nvmlDeviceGetUUID(handle))
    except Exception:  # old driver or a partial fake: the identity stays unknown
        return None


def _nvml_bus(nvml: Any, handle: Any) -> str | None:
    try:
        return _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
    except Exception:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
