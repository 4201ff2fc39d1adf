"""Sharing machine-wide readings among econas processes on one host (registry, RAPL share)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

from nas.energy import RaplMeter, create_meter
from nas.energy._registry import peers, proc_stat, registry_dir

REPO = Path(__file__).resolve().parents[2]

# One econas worker: meters window "w" over the fake powercap tree, idles until "go", burns
# CPU until "stop" (saying "burned" once it has used 0.3 s), prints its measurement, and
# stays registered until "exit" (so the other worker's window still sees it when it ends).
WORKER = r"""
import json, sys, threading, time
from nas.energy import RaplMeter

meter = RaplMeter(poll_interval_s=3600.0)
meter.begin_window("w")
print("ready", flush=True)
sys.stdin.readline()
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
start, said = time.process_time(), False
while not stop.is_set():
    sum(range(2000))
    if not said and time.process_time() - start > 0.3:
        print("burned", flush=True)
        said = True
m = meter.end_window("w")
print(json.dumps({"total_j": m.total_energy_j, **m.details}), flush=True)
sys.stdin.readline()
meter.close()
"""


def _bump(zone: Path, uj: int) -> None:
    path = zone / "energy_uj"
    path.write_text(f"{int(path.read_text()) + uj}\n")


def _expect(stream: IO[str] | None, word: str) -> None:
    assert stream is not None
    line = stream.readline().strip()
    assert line == word, f"worker said {line!r}, expected {word!r}"


def _send(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(word + "\n")
    proc.stdin.flush()


def test_two_workers_on_one_host_are_each_charged_a_share(powercap: dict[str, Path]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # carries the fake tree and registry
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for w in workers:
            _expect(w.stdout, "ready")  # both windows open, both idle
        for w in workers:
            _send(w, "go")
        for w in workers:
            _expect(w.stdout, "burned")  # both busy inside their windows
        _bump(powercap["package-0"], 100_000_000)  # +100 J while both windows are open
        for w in workers:
            _send(w, "stop")
        results = [json.loads(w.stdout.readline()) for w in workers if w.stdout is not None]
        for w in workers:
            _send(w, "exit")
            assert w.wait(timeout=30) == 0
    finally:
        for w in workers:
            w.kill()
            w.wait()
    shares = [r["share"] for r in results]
    assert all(0.0 < s < 1.0 for s in shares), shares
    assert all(r["peers"] == 1 for r in results)
    assert all(
        r["share_method"] == "cpu-time among 2 econas processes on this host" for r in results
    )
    assert all(r["energy_j_unshared"] == pytest.approx(100.0) for r in results)
    # Each window holds both workers' busy time; their edges differ only by the go/stop
    # hand-offs (idle, blocking reads) and a few ms of the GIL's switch interval, and the
    # peer's CPU time is read in 10 ms clock ticks, against >= 0.3 s of CPU each: ~5% at
    # most, so the shares (and the charged joules) add up to 1 (100 J) within 0.1 (10 J).
    assert sum(shares) == pytest.approx(1.0, abs=0.1)
    assert sum(r["total_j"] for r in results) == pytest.approx(100.0, abs=10.0)


def test_alone_the_share_is_one_and_the_registration_is_removed_on_close(
    powercap: dict[str, Path],
) -> None:
    meter = RaplMeter(poll_interval_s=3600.0)
    own_file = registry_dir() / f"{os.getpid()}.json"
    meter.begin_window("w")
    assert own_file.exists()
    record = json.loads(own_file.read_text())
    assert record["pid"] == os.getpid() and record["start"] == proc_stat(os.getpid()).start
    assert list(record["scopes"]) == [f"rapl:{os.path.realpath(powercap['root'])}"]
    _bump(powercap["package-0"], 7_000_000)
    m = meter.end_window("w")
    assert m.details["share"] == 1.0 and m.details["peers"] == 0
    assert m.details["share_method"].startswith("alone")
    assert m.total_energy_j == pytest.approx(7.0) and m.details["energy_j_unshared"] == 7.0
    assert m.scope == "system" and m.to_attrs()["energy_scope"] == "system"
    meter.close()
    assert not own_file.exists()


def test_stale_and_reused_pid_files_are_ignored_and_removed(powercap: dict[str, Path]) -> None:
    scope = f"rapl:{os.path.realpath(powercap['root'])}"
    directory = registry_dir()
    directory.mkdir(parents=True)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    parent = os.getppid()  # alive, but the file claims another start time: a reused pid
    for pid, start in ((dead_pid, "1"), (parent, "-1")):
        record = {"pid": pid, "start": start, "scopes": {scope: {"cpu_s_at_register": 0.0}}}
        (directory / f"{pid}.json").write_text(json.dumps(record))
    (directory / "garbage.json").write_text("{not json")
    assert peers(directory, scope) == {}
    assert sorted(p.name for p in directory.iterdir()) == ["garbage.json"]
    meter = RaplMeter(poll_interval_s=3600.0)
    with meter.window("w") as w:
        pass
    assert w.measurement is not None and w.measurement.details["share"] == 1.0
    meter.close()


def test_a_busy_peer_takes_a_share_unless_sharing_is_off(powercap: dict[str, Path]) -> None:
    scope = f"rapl:{os.path.realpath(powercap['root'])}"
    peer = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        stat = proc_stat(peer.pid)
        assert stat is not None
        directory = registry_dir()
        directory.mkdir(parents=True)
        record = {"pid": peer.pid, "start": stat.start, "scopes": {scope: {"cpu_s_at_register": 0}}}
        (directory / f"{peer.pid}.json").write_text(json.dumps(record))
        shared, whole = create_meter("rapl"), create_meter("rapl", share=False)
        shared.begin_window("w")
        whole.begin_window("w")
        while (now := proc_stat(peer.pid)) is not None and now.cpu_s - stat.cpu_s < 0.2:
            pass  # we burn too, while the peer burns
        _bump(powercap["package-0"], 10_000_000)
        m, full = shared.end_window("w"), whole.end_window("w")
    finally:
        peer.kill()
        peer.wait()
    assert 0.0 < m.details["share"] < 1.0 and m.details["peers"] == 1
    assert m.total_energy_j == pytest.approx(10.0 * m.details["share"])
    assert m.energy_j["package-0"] == pytest.approx(10.0 * m.details["share"])
    assert full.total_energy_j == pytest.approx(10.0) and full.details["share"] == 1.0
    shared.close()
    whole.close()
