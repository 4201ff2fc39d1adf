"""Energy meters: measure named windows in joules, with provenance.

``create_meter("auto", device=...)`` picks NVML (GPU, plus a host meter) on CUDA, RAPL where
``/sys/class/powercap`` is readable, else a clearly labelled CPU-time estimate::

    meter = create_meter("auto", device="cuda")
    with meter.window("train") as w:
        train()
    w.measurement.total_energy_j, w.measurement.kind  # e.g. 812.4, "measured"

``WindowAccumulator(meter, "teacher")`` sums a window repeated many times. Machine-wide
(RAPL) and board-wide (NVML) readings are shared among the econas processes metering them on
one host; ``Measurement.scope`` and ``.share`` say what was charged.

Hardware probes the meters use, for provenance elsewhere: :func:`read_cpu_info` (CPU model,
cores, hypervisor), :func:`torch_cuda` (``torch.cuda`` when a CUDA device is visible, else
None) and :func:`torch_identity` (a device's UUID and PCI bus id).
"""

from __future__ import annotations

from nas.energy._accumulate import WindowAccumulator, WindowTotals
from nas.energy._base import J_PER_KWH, Measurement, Meter, Window, combine
from nas.energy._composite import CompositeMeter
from nas.energy._cpu_power import CpuInfo, read_cpu_info
from nas.energy._estimate import EstimateMeter
from nas.energy._gpu import torch_cuda, torch_identity
from nas.energy._measurement import add_measurements, energy_kind, sanitize_domain
from nas.energy._nvml import NvmlMeter, nvml_is_available
from nas.energy._rapl import RaplMeter, rapl_is_available
from nas.energy._select import METER_NAMES, available_meters, create_meter

__all__ = [
    "J_PER_KWH",
    "METER_NAMES",
    "CompositeMeter",
    "CpuInfo",
    "EstimateMeter",
    "Measurement",
    "Meter",
    "NvmlMeter",
    "RaplMeter",
    "Window",
    "WindowAccumulator",
    "WindowTotals",
    "add_measurements",
    "energy_kind",
    "available_meters",
    "combine",
    "create_meter",
    "nvml_is_available",
    "rapl_is_available",
    "read_cpu_info",
    "sanitize_domain",
    "torch_cuda",
    "torch_identity",
]
