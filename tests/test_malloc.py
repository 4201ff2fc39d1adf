"""econas processes keep the memory they free (nas._malloc): a fresh ``econas train`` process
re-faulted every evaluation batch's pages and paid twice the proxy's CPU time per test image
(issue 27)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# a forward pass over an evaluation batch, as evaluate() runs it: tens of MB allocated, used
# and freed, batch after batch; prints the page faults of the last 20 batches
_BATCHES = """
import resource, sys
import torch
if sys.argv[1] == "keep":
    from nas._malloc import keep_freed_memory
    assert keep_freed_memory()
net = torch.nn.Sequential(  # a small CNN of the quickstart's kind (8-16 channels)
    torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), torch.nn.SiLU(),
    torch.nn.Conv2d(8, 16, 1), torch.nn.SiLU(),
    torch.nn.Conv2d(16, 16, 5, padding=2, groups=16), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Linear(16 * 49, 10),
)
x = torch.randn(512, 1, 28, 28)
with torch.no_grad():
    for _ in range(5):
        net(x).argmax(1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        net(x).argmax(1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("ECONAS_KEEP_FREED_MEMORY", None)
    done = subprocess.run(
        [sys.executable, "-c", _BATCHES, mode], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_batches_are_reused_not_faulted_in_again() -> None:
    kept, default = _faults("keep"), _faults("default")
    # 20 batches of 512 images: glibc's default hands their activations back and faults them
    # in again, about 9,000 pages a batch here (measured); kept, they are reused: 0 faults
    assert default > 20 * 1000, default
    assert kept < default / 20, (kept, default)


def test_the_setting_is_recorded_and_can_be_turned_off() -> None:
    code = (
        "from nas._malloc import keep_freed_memory, freed_memory_kept; "
        "from nas.hardware import hardware_provenance; "
        "assert freed_memory_kept() is None; k = keep_freed_memory(); "
        "assert hardware_provenance()['freed_memory_kept'] is k; print(k)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    off = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "ECONAS_KEEP_FREED_MEMORY": "0"},
        capture_output=True,
        text=True,
    )
    assert on.returncode == 0 and off.returncode == 0, on.stderr[-1000:] + off.stderr[-1000:]
    assert off.stdout.strip() == "False"
    if sys.platform.startswith("linux"):
        assert on.stdout.strip() == "True"
