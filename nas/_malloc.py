"""Keep freed heap memory in the process instead of handing it back to the OS at every free.

glibc returns large freed blocks to the kernel (``munmap``, or a trim of the heap's top) and
the next allocation of that size faults its pages in again, zero-filled, in kernel time. A
forward pass over an evaluation batch (512 images) allocates tens of MB of activations and
frees them batch after batch: in a fresh ``econas train`` process every validation and test
batch re-faulted its pages, which cost 2.5x the CPU time per test image
(``benchmarks/freed_memory.py``: 42.8 us, 20.6 of them in the kernel, against 17.6 us with the
memory kept; issue 27), while the search process that measured the proxy had long grown a
heap that it kept. With a fixed mmap threshold (glibc's largest, 32 MiB) and a trim threshold
of 1 GiB, a process reuses what it freed; its resident memory stays at its peak, which it
reached anyway.

``ECONAS_KEEP_FREED_MEMORY=0`` turns this off. Not glibc (macOS, musl): nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ENV = "ECONAS_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc refuses more on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 1024 * 1024 * 1024

_state: dict[str, bool] = {}  # "kept", once asked


def keep_freed_memory() -> bool:
    """Set the thresholds once per process; True when glibc took both."""
    if "kept" in _state:
        return _state["kept"]
    kept = False
    if os.environ.get(ENV, "1") != "0" and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            # the mmap threshold first: setting the trim threshold alone fixes glibc's
            # adaptive mmap threshold at its 128 KiB default
            kept = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
                mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            )
    _state["kept"] = kept
    return kept


def freed_memory_kept() -> bool | None:
    """Whether this process keeps freed memory (None: not asked yet)."""
    return _state.get("kept")
