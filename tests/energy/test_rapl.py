"""RAPL meter over a fake powercap tree: differences, sub-zones, wrap-around, discovery."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nas.energy import RaplMeter, create_meter, rapl_is_available
from nas.energy._rapl import discover_zones, rapl_problem
from nas.errors import MeterUnavailableError

MakeZone = Callable[..., Path]


def set_uj(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


def test_energy_is_the_counter_difference_and_dram_is_added(powercap: dict[str, Path]) -> None:
    assert rapl_is_available()
    meter = create_meter("rapl")
    assert meter.source == "rapl" and meter.kind == "measured"
    meter.begin_window("w")
    set_uj(powercap["package-0"], 1_000_000 + 30_000_000)  # +30 J
    set_uj(powercap["core"], 500_000 + 20_000_000)  # +20 J, inside the package
    set_uj(powercap["dram"], 200_000 + 5_000_000)  # +5 J
    m = meter.end_window("w")
    assert m.energy_j == pytest.approx({"package-0": 30.0, "dram": 5.0})
    assert m.total_energy_j == pytest.approx(35.0)  # core is not counted twice
    assert m.details["subdomains_j"] == pytest.approx({"core": 20.0})
    assert m.details["domain_kinds"] == {"package-0": "measured", "dram": "measured"}
    attrs = m.to_attrs(prefix="train_")
    assert attrs["train_energy_j_package-0"] == pytest.approx(30.0)
    assert attrs["train_energy_source"] == "rapl" and attrs["train_energy_kind"] == "measured"
    meter.close()


def test_counter_wrap_around_uses_max_energy_range(tmp_path: Path, make_zone: MakeZone) -> None:
    root = tmp_path / "pc"
    pkg = make_zone(root, "intel-rapl:0", "package-0", 990_000, max_range_uj=1_000_000)
    meter = RaplMeter(powercap_root=root, poll_interval_s=3600.0)
    meter.begin_window("w")
    set_uj(pkg, 10_000)  # wrapped: 990,000 -> 1,000,000 -> 10,000 = 20,000 uJ
    m = meter.end_window("w")
    assert m.total_energy_j == pytest.approx(0.02)
    assert m.details["counter_wraps"] == 1
    meter.close()


def test_polling_between_edges_catches_every_wrap(tmp_path: Path, make_zone: MakeZone) -> None:
    root = tmp_path / "pc"
    pkg = make_zone(root, "intel-rapl:0", "package-0", 0, max_range_uj=1_000_000)
    meter = RaplMeter(powercap_root=root, poll_interval_s=3600.0)
    meter.begin_window("w")
    for value in (600_000, 100_000, 700_000, 200_000):  # two wraps seen by the poller
        set_uj(pkg, value)
        meter._poller.poll_once()
    set_uj(pkg, 300_000)
    m = meter.end_window("w")
    assert m.total_energy_j == pytest.approx(2.3)  # 600+500+600+500+100 thousand uJ
    assert m.details["counter_wraps"] == 2
    meter.close()


def test_two_packages_name_dram_per_package_and_skip_psys_and_mmio(
    tmp_path: Path, make_zone: MakeZone
) -> None:
    root = tmp_path / "pc"
    for i in (0, 1):
        pkg = make_zone(root, f"intel-rapl:{i}", f"package-{i}", 0)
        make_zone(root, f"intel-rapl:{i}:0", "dram", 0, parent=pkg)
    make_zone(root, "intel-rapl:2", "psys", 0)
    make_zone(root, "intel-rapl-mmio:0", "package-0", 0)
    zones = {z.domain: z.additive for z in discover_zones(root)}
    assert zones == {"package-0": True, "package-1": True, "dram-0": True, "dram-1": True}


def test_root_level_sub_zone_links_are_found(tmp_path: Path, make_zone: MakeZone) -> None:
    root = tmp_path / "pc"
    make_zone(root, "intel-rapl:0", "package-0", 0)
    make_zone(root, "intel-rapl:0:0", "dram", 0)  # sysfs lists sub-zones at the top too
    assert [z.domain for z in discover_zones(root)] == ["package-0", "dram"]


def test_unavailable_rapl_gives_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("ECONAS_POWERCAP_ROOT", str(missing))
    assert not rapl_is_available()
    with pytest.raises(MeterUnavailableError) as exc:
        create_meter("rapl")
    assert str(exc.value) == f"meter 'rapl' is not available: {missing} not readable"
    (tmp_path / "empty").mkdir()
    assert (
        rapl_problem(tmp_path / "empty")
        == f"no RAPL zones (intel-rapl:N) under {tmp_path / 'empty'}"
    )


def test_unreadable_counter_is_named(tmp_path: Path, make_zone: MakeZone) -> None:
    root = tmp_path / "pc"
    pkg = make_zone(root, "intel-rapl:0", "package-0", 0)
    (pkg / "energy_uj").unlink()
    (pkg / "energy_uj").mkdir()  # unreadable even for root (mode 000 is not)
    assert rapl_problem(root) == f"{pkg / 'energy_uj'} not readable (Is a directory)"


def test_garbage_counter_is_unavailable_not_a_crash(tmp_path: Path, make_zone: MakeZone) -> None:
    root = tmp_path / "pc"
    pkg = make_zone(root, "intel-rapl:0", "package-0", 0)
    (pkg / "energy_uj").write_text("not a number\n")
    assert "energy_uj not readable" in (rapl_problem(root) or "")
    with pytest.raises(MeterUnavailableError):
        RaplMeter(powercap_root=root)


def test_auto_on_cpu_prefers_rapl(powercap: dict[str, Path]) -> None:
    meter = create_meter("auto", device="cpu")
    assert meter.source == "rapl"
    meter.close()
