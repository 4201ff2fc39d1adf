"""create_meter / available_meters: names, fall-backs, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nas.energy import METER_NAMES, available_meters, create_meter
from nas.errors import BadInputError, MeterUnavailableError


@pytest.fixture
def no_rapl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ECONAS_POWERCAP_ROOT", str(tmp_path / "no-powercap"))


def test_meter_names() -> None:
    assert METER_NAMES == ("auto", "nvml", "rapl", "estimate")


def test_unknown_meter_or_scope_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="meter 'joulemeter' is unknown"):
        create_meter("joulemeter")
    with pytest.raises(BadInputError, match="scope"):
        create_meter("estimate", scope="machine")


def test_auto_on_cpu_without_rapl_is_the_estimate(no_rapl: None) -> None:
    meter = create_meter("auto", device="cpu")
    assert meter.source == "estimate" and meter.kind == "estimated"
    meter.close()


def test_auto_on_cpu_does_not_touch_nvml(no_rapl: None, fake_nvml: Any) -> None:
    create_meter("auto", device="cpu").close()
    assert fake_nvml.inits == 0


def test_available_meters(no_rapl: None, fake_nvml: Any) -> None:
    assert available_meters("cpu") == ["auto", "nvml", "estimate"]
    assert available_meters("cuda:0") == ["auto", "nvml", "estimate"]
    assert available_meters("cuda:3") == ["auto", "estimate"]  # only one fake GPU


def test_available_meters_with_rapl_and_without_nvml(
    powercap: dict[str, Path], fake_nvml: Any
) -> None:
    fake_nvml.init_error = RuntimeError("no driver")
    assert available_meters("cuda") == ["auto", "rapl", "estimate"]


def test_explicit_unavailable_meters_raise(no_rapl: None, fake_nvml: Any) -> None:
    fake_nvml.init_error = RuntimeError("no driver")
    with pytest.raises(MeterUnavailableError, match="^meter 'nvml' is not available"):
        create_meter("nvml", device="cuda")
    with pytest.raises(MeterUnavailableError, match="^meter 'rapl' is not available"):
        create_meter("rapl")


def test_auto_on_cuda_with_rapl_is_nvml_plus_rapl(
    powercap: dict[str, Path], fake_nvml: Any
) -> None:
    meter = create_meter("auto", device="cuda:0")
    assert meter.source == "nvml+rapl" and meter.kind == "measured"
    meter.close()
