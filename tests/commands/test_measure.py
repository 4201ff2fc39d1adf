"""`econas measure`: JSON and human output, the command's exit code, bad input exits 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nas.cli import main
from nas.commands import measure as measure_cmd
from nas.energy import METER_NAMES


@pytest.fixture(autouse=True)
def _no_rapl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ECONAS_POWERCAP_ROOT", str(tmp_path / "no-powercap"))


def test_cli_meter_names_match_the_library() -> None:
    assert measure_cmd._METERS == METER_NAMES


def test_json_gives_an_estimated_positive_plausible_figure(capsys: pytest.CaptureFixture) -> None:
    code = "print('child output'); sum(range(10**6))"
    rc = main(
        [
            "measure",
            "--json",
            "--meter",
            "estimate",
            "--intensity",
            "100",
            "--",
            sys.executable,
            "-c",
            code,
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0
    out = json.loads(captured.out)  # the child's stdout went to stderr: stdout is one object
    assert out["exit_code"] == 0 and out["command"][-1] == code
    assert out["energy_source"] == "estimate" and out["energy_kind"] == "estimated"
    details = out["energy_details"]
    # a Python start-up plus 10**6 additions: some tens of ms of CPU, well under a minute
    assert 0.005 < details["cpu_time_s"] < 60
    assert out["energy_j_cpu"] == pytest.approx(details["cpu_time_s"] * details["watts_per_core"])
    assert out["energy_j"] == pytest.approx(out["energy_j_cpu"] + out["energy_j_dram"])
    assert 0 < out["energy_j"] < 60 * 4 * 3.5  # at most 4 cores at 3.5 W for a minute
    assert out["energy_kwh"] == pytest.approx(out["energy_j"] / 3.6e6)
    assert out["intensity_g_per_kwh"] == 100.0 and out["intensity_source"] == "fixed"
    assert out["kgco2e"] == pytest.approx(out["energy_kwh"] * 100.0 / 1000.0)
    assert out["duration_s"] > 0 and out["hardware"]


def test_human_output_and_exit_code_of_the_command(capsys: pytest.CaptureFixture) -> None:
    rc = main(["measure", "--intensity", "50", "--", sys.executable, "-c", "raise SystemExit(3)"])
    out = capsys.readouterr().out
    assert rc == 3
    assert "ESTIMATED" in out and "kgCO2e at 50 gCO2e/kWh" in out
    assert "exit code: 3" in out and "W/core" in out


def test_country_is_used_for_the_intensity(capsys: pytest.CaptureFixture) -> None:
    assert main(["measure", "--json", "--country", "FR", "--", sys.executable, "-c", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["carbon_region"] and "FRA" in out["intensity_source"]
    assert out["intensity_g_per_kwh"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["measure"], "give a command"),
        (["measure", "--"], "give a command"),
        (["measure", "--", "econas-no-such-command-xyz"], "command not found"),
        (["measure", "--meter", "joulemeter", "--", "true"], "meter 'joulemeter' is unknown"),
        (["measure", "--meter", "rapl", "--", "true"], "meter 'rapl' is not available"),
        (["measure", "--device", "tpu", "--", "true"], "--device 'tpu' is unknown"),
        (["measure", "--country", "XX", "--", "true"], "XX"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(argv) == 2
    err_lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("econas:")]
    assert len(err_lines) == 1 and message in err_lines[0]


def test_country_and_intensity_are_exclusive(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["measure", "--country", "FR", "--intensity", "10", "--", "true"])
    assert exc.value.code == 2


def test_default_meter_never_shows_the_estimate_as_measured(capsys: pytest.CaptureFixture) -> None:
    # no RAPL here (fixture); with or without a GPU, the host part is estimated
    assert main(["measure", "--json", "--", sys.executable, "-c", "sum(range(10**6))"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["energy_kind"] == "estimated" and "estimate" in out["energy_source"]
    assert out["energy_j"] > 0 and out["energy_j_cpu"] > 0


def test_without_a_region_the_output_says_world_average_and_logs_read_plainly(
    tmp_path: Path,
) -> None:
    """No --country: the 475 g world average was only in a log line named after a module."""
    import os
    import subprocess

    env = {**os.environ, "ECONAS_POWERCAP_ROOT": str(tmp_path / "none")}
    cli = [sys.executable, "-m", "nas.cli"]
    cmd = [*cli, "measure", "--meter", "estimate", "--", "true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert "carbon intensity: the WORLD AVERAGE (no --country" in proc.stdout
    assert "econas: warning: no carbon region or intensity given" in proc.stderr
    assert "nas.carbon" not in proc.stderr and "WARNING" not in proc.stderr
    fr = subprocess.run(
        [*cli, "measure", "--country", "FR", "--", "true"], capture_output=True, text=True, env=env
    )
    assert fr.returncode == 0 and "WORLD AVERAGE" not in fr.stdout and not fr.stderr.strip()
    debug = subprocess.run([*cli, "-vv", *cmd[3:]], capture_output=True, text=True, env=env)
    assert "econas: warning: nas.carbon." in debug.stderr  # module names only with -vv
