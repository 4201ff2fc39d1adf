"""NVML meter against a patched pynvml: counter path, polling fallback, failures, devices."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import pynvml
import pytest

from nas.energy import NvmlMeter, create_meter, nvml_is_available
from nas.energy._nvml import visible_gpus
from nas.energy._registry import proc_stat, registry_dir
from nas.errors import MeterUnavailableError

from .conftest import bus_id


def test_counter_path_reports_the_counter_difference(fake_nvml: Any) -> None:
    fake_nvml.energy_mj[0] = 5_000_000
    meter = create_meter("nvml", device="cuda:0")
    assert meter.source == "nvml" and meter.kind == "measured"
    assert meter.hardware == "NVIDIA H200"
    meter.begin_window("train")
    fake_nvml.energy_mj[0] += 123_456  # 123.456 J
    m = meter.end_window("train")
    assert m.energy_j == pytest.approx({"gpu:0": 123.456})
    assert m.total_energy_j == pytest.approx(123.456)
    assert m.details["nvml_method"] == "counter"
    assert m.details["domain_kinds"] == {"gpu:0": "measured"}
    assert m.kind == "measured" and m.source == "nvml"
    meter.close()
    assert fake_nvml.shutdowns == 1


def test_overlapping_windows_each_get_their_own_difference(fake_nvml: Any) -> None:
    meter = NvmlMeter(device="cuda:0")
    meter.begin_window("outer")
    fake_nvml.energy_mj[0] += 1_000
    meter.begin_window("inner")
    fake_nvml.energy_mj[0] += 2_000
    inner = meter.end_window("inner")
    fake_nvml.energy_mj[0] += 4_000
    outer = meter.end_window("outer")
    assert inner.total_energy_j == pytest.approx(2.0)
    assert outer.total_energy_j == pytest.approx(7.0)
    meter.close()


def test_polling_integrates_power_when_the_counter_is_not_supported(fake_nvml: Any) -> None:
    fake_nvml.counter_supported = False
    now = [0.0]
    fake_nvml.power_mw = lambda i: 100_000 + 20_000 * now[0]  # 100 W + 20 W/s ramp
    meter = NvmlMeter(device="cuda", poll_interval_s=3600.0)  # the test drives the samples
    assert meter.method == "polling"
    meter._poller.clock = lambda: now[0]
    meter.begin_window("w")
    for t in (0.5, 1.0, 1.5):
        now[0] = t
        meter._poller.poll_once()
    now[0] = 2.0
    m = meter.end_window("w")
    # exact integral of 100 + 20 t over [0, 2] s: 200 + 40 = 240 J (trapezoid is exact)
    assert m.total_energy_j == pytest.approx(240.0)
    assert m.details["nvml_method"] == "polling"
    assert m.details["samples"] == 5
    meter.close()


def test_polling_thread_samples_while_a_window_is_open(fake_nvml: Any) -> None:
    fake_nvml.counter_supported = False  # constant 100 W
    # a window of >= 1 s: the edges (a descheduled thread on a loaded machine) are noise
    fake_nvml.reads_before_event = 50
    meter = NvmlMeter(device="cuda", poll_interval_s=0.02)
    meter.begin_window("w")
    assert fake_nvml.power_read_event.wait(timeout=10.0), "the polling thread never sampled"
    m = meter.end_window("w")
    assert m.details["samples"] >= 50
    assert m.total_energy_j == pytest.approx(100.0 * m.duration_s, rel=0.05)
    meter.close()


def test_failed_init_makes_auto_fall_back_with_a_warning(
    fake_nvml: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ECONAS_POWERCAP_ROOT", "/nonexistent/powercap")
    fake_nvml.init_error = pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    with caplog.at_level(logging.WARNING, logger="nas.energy"):
        meter = create_meter("auto", device="cuda")
    assert meter.source == "estimate" and meter.kind == "estimated"
    assert any("nvml" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert not nvml_is_available()
    meter.close()


def test_explicit_nvml_raises_one_clear_line_when_init_fails(fake_nvml: Any) -> None:
    fake_nvml.init_error = pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(MeterUnavailableError, match=r"^meter 'nvml' is not available: ") as exc:
        create_meter("nvml", device="cuda")
    assert "\n" not in str(exc.value)


def test_missing_pynvml_is_unavailable_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert nvml_is_available() is False
    with pytest.raises(MeterUnavailableError, match="nvidia-ml-py"):
        create_meter("nvml", device="cuda")


def test_all_visible_gpus_and_hardware_names(make_fake_nvml: Any) -> None:
    # Was device="cuda": plain "cuda" now means the current CUDA device (a trial runs on
    # one), so metering every visible board takes the explicit "cuda:all".
    fake = make_fake_nvml(names=("NVIDIA A100", "NVIDIA A100", "Tesla T4"))
    meter = NvmlMeter(device="cuda:all")
    assert meter.hardware == "2 x NVIDIA A100, Tesla T4"
    meter.begin_window("w")
    fake.energy_mj[:] = [1000, 2000, 3000]
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx({"gpu:0": 1.0, "gpu:1": 2.0, "gpu:2": 3.0})
    assert m.to_attrs()["energy_j_gpu_1"] == pytest.approx(2.0)
    meter.close()


def test_cuda_visible_devices_maps_torch_index_to_nvml_index(
    make_fake_nvml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake_nvml(names=("GPU A", "GPU B", "GPU C"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    meter = NvmlMeter(device="cuda:0")  # torch's cuda:0 is NVML's GPU 2
    assert meter.hardware == "GPU C"
    meter.begin_window("w")
    fake.energy_mj[2] += 7_000
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx({"gpu:0": 7.0})
    assert m.details["nvml_devices"] == {"gpu:0": 2}
    assert m.details["nvml_match"] == "index (no torch CUDA to match by bus id)"
    assert m.details["gpu_uuid"] == "GPU-0002" and m.details["gpu_pci_bus_id"] == bus_id(2)
    meter.close()
    with pytest.raises(MeterUnavailableError, match="cuda:2 is not a visible GPU"):
        NvmlMeter(device="cuda:2")


def test_visible_gpus_parsing() -> None:
    assert visible_gpus(4, None) == [0, 1, 2, 3]
    assert visible_gpus(4, "1,3") == [1, 3]
    assert visible_gpus(4, "1,9,2") == [1]  # CUDA stops at the first invalid entry
    assert visible_gpus(2, "GPU-abc") == ["GPU-abc"]
    assert visible_gpus(2, "") == []


def test_plain_cuda_is_the_current_device_not_every_board(make_fake_nvml: Any) -> None:
    fake = make_fake_nvml(names=("GPU A", "GPU B"))
    meter = NvmlMeter(device="cuda")  # no torch CUDA here: the current device is 0
    meter.begin_window("w")
    fake.energy_mj[:] = [1000, 9000]
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx({"gpu:0": 1.0})
    assert m.details["scope"] == "device"
    meter.close()


def test_cuda_index_is_matched_by_uuid_not_by_nvml_order(
    make_fake_nvml: Any, make_fake_torch_cuda: Any
) -> None:
    fake = make_fake_nvml(names=("GPU A", "GPU B", "GPU C"))
    make_fake_torch_cuda(fake, order=[2, 0, 1])  # torch's cuda:0 is NVML's GPU 2
    meter = NvmlMeter(device="cuda:0")
    assert meter.hardware == "GPU C"
    assert ("index", 0) not in fake.lookups  # never by index order
    meter.begin_window("w")
    fake.energy_mj[:] = [1000, 2000, 3000]
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx({"gpu:0": 3.0})
    assert m.details["nvml_match"] == "uuid"
    assert m.details["gpu_uuid"] == "GPU-0002"
    assert m.details["gpu_pci_bus_id"] == bus_id(2)
    assert m.details["nvml_devices"] == {"gpu:0": "GPU-0002"}
    meter.close()


def test_without_a_torch_uuid_the_pci_bus_id_finds_the_board(
    make_fake_nvml: Any, make_fake_torch_cuda: Any
) -> None:
    fake = make_fake_nvml(names=("GPU A", "GPU B"))
    cuda = make_fake_torch_cuda(fake, order=[1, 0], current=1)
    cuda.report_uuid = False
    meter = NvmlMeter(device="cuda")  # the current device, cuda:1, is NVML's GPU 0
    assert fake.lookups == [("pci", bus_id(0))]
    meter.begin_window("w")
    fake.energy_mj[:] = [4000, 8000]
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx({"gpu:1": 4.0})
    assert m.details["nvml_match"] == "pci_bus_id"
    assert m.details["gpu_pci_bus_id"] == bus_id(0)
    meter.close()


def test_a_uuid_nvml_does_not_know_falls_back_to_the_bus_id(
    make_fake_nvml: Any, make_fake_torch_cuda: Any
) -> None:
    fake = make_fake_nvml(names=("GPU A", "GPU B"))
    make_fake_torch_cuda(fake, order=[1, 0])
    fake.uuids[1] = "GPU-renamed"  # torch reports GPU-0001, NVML doesn't know it
    meter = NvmlMeter(device="cuda:0")
    assert fake.lookups == [("uuid", "GPU-0001"), ("pci", bus_id(1))]
    assert meter.boards[0].match == "pci_bus_id" and meter.boards[0].uuid == "GPU-renamed"
    meter.close()


def test_torch_cuda_bounds_and_cuda_all(make_fake_nvml: Any, make_fake_torch_cuda: Any) -> None:
    fake = make_fake_nvml(names=("GPU A", "GPU B"))
    make_fake_torch_cuda(fake, order=[1, 0])
    with pytest.raises(MeterUnavailableError, match="cuda:2 is not a visible GPU"):
        NvmlMeter(device="cuda:2")
    meter = NvmlMeter(device="cuda:all")
    assert [(b.domain, b.nvml_id) for b in meter.boards] == [
        ("gpu:0", "GPU-0001"),
        ("gpu:1", "GPU-0000"),
    ]
    meter.close()


def test_cuda_visible_devices_uuid_entries_still_work(
    make_fake_nvml: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_fake_nvml(names=("GPU A", "GPU B"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-0001")
    meter = NvmlMeter(device="cuda:0")
    assert meter.hardware == "GPU B" and meter.boards[0].match == "uuid"
    meter.close()


def test_other_processes_on_the_board_are_counted(fake_nvml: Any) -> None:
    import os

    fake_nvml.processes[0] = [os.getpid(), 4242, 4343]
    meter = NvmlMeter(device="cuda:0")
    with meter.window("w") as w:
        pass
    assert w.measurement is not None
    assert w.measurement.details["board_processes"] == 2  # not counting this process
    fake_nvml.processes_supported = False  # an old driver: unknown, not 0
    with meter.window("w") as w:
        pass
    assert w.measurement is not None and w.measurement.details["board_processes"] is None
    meter.close()


def test_alone_on_the_board_the_share_is_one(fake_nvml: Any) -> None:
    meter = NvmlMeter(device="cuda:0")
    meter.begin_window("w")
    fake_nvml.energy_mj[0] += 10_000
    m = meter.end_window("w")
    assert m.details["share"] == 1.0 and m.details["peers"] == 0
    assert m.total_energy_j == pytest.approx(10.0)
    meter.close()


def test_econas_peers_on_the_same_board_split_it_equally(fake_nvml: Any) -> None:
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _register_as(peer.pid, "nvml:GPU-0000")
        meter = NvmlMeter(device="cuda:0")
        other = NvmlMeter(device="cuda:0", share=False)
        meter.begin_window("w")
        other.begin_window("w")
        fake_nvml.energy_mj[0] += 10_000
        m = meter.end_window("w")
        whole = other.end_window("w")
        assert m.details["share"] == pytest.approx(0.5)
        assert m.details["share_method"] == "equal split among 2 econas processes on this GPU"
        assert m.total_energy_j == pytest.approx(5.0)
        assert m.details["energy_j_unshared"] == pytest.approx(10.0)
        assert whole.total_energy_j == pytest.approx(10.0) and whole.details["share"] == 1.0
        meter.close()
        other.close()
    finally:
        peer.kill()
        peer.wait()


def _register_as(pid: int, scope: str) -> None:
    """Write the registry file another econas process metering ``scope`` would write."""
    stat = proc_stat(pid)
    assert stat is not None
    directory = registry_dir()
    directory.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "start": stat.start, "scopes": {scope: {"cpu_s_at_register": 0.0}}}
    (directory / f"{pid}.json").write_text(json.dumps(record))
