"""NVML meter against a patched pynvml: counter path, polling fallback, failures, devices."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pynvml
import pytest

from nas.energy import NvmlMeter, create_meter, nvml_is_available
from nas.energy._nvml import visible_gpus
from nas.errors import MeterUnavailableError


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
    fake_nvml.reads_before_event = 10  # a window of >= 0.18 s: edge timing is noise
    meter = NvmlMeter(device="cuda", poll_interval_s=0.02)
    meter.begin_window("w")
    assert fake_nvml.power_read_event.wait(timeout=10.0), "the polling thread never sampled"
    m = meter.end_window("w")
    assert m.details["samples"] >= 10
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
    fake = make_fake_nvml(names=("NVIDIA A100", "NVIDIA A100", "Tesla T4"))
    meter = NvmlMeter(device="cuda")
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
    meter.close()
    with pytest.raises(MeterUnavailableError, match="cuda:2 is not a visible GPU"):
        NvmlMeter(device="cuda:2")


def test_visible_gpus_parsing() -> None:
    assert visible_gpus(4, None) == [0, 1, 2, 3]
    assert visible_gpus(4, "1,3") == [1, 3]
    assert visible_gpus(4, "1,9,2") == [1]  # CUDA stops at the first invalid entry
    assert visible_gpus(2, "GPU-abc") == ["GPU-abc"]
    assert visible_gpus(2, "") == []
