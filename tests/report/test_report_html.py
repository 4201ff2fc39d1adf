"""`econas report`: one offline HTML page whose plots really draw in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import optuna
import pytest

from nas.cli import main
from nas.report import build_report, find_chromium, write_static


def _report(
    config_and_study, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict:  # noqa: ANN001
    config, _ = config_and_study
    out = tmp_path / "report.html"
    argv = ["report", "--storage", config.storage_url, "--study", config.study.name]
    assert main([*argv, "--out", str(out), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_report_is_self_contained_and_names_its_figures(config_and_study, tmp_path, capsys) -> None:  # noqa: ANN001
    _, study = config_and_study
    cap = sorted(t.user_attrs["kgco2e"] for t in study.trials if t.state.name == "COMPLETE")[1]
    res = _report(config_and_study, tmp_path, capsys, "--carbon-cap", str(cap))
    page = Path(res["written"]["html"]).read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page)  # offline: plotly.js is inline
    assert "Plotly.newPlot" in page and len(page) > 1_000_000
    for text in (
        "Eco-performance curve",
        "Hypervolume",
        "Energy by phase",
        "knee point",
        "reference point",
    ):
        assert text in page
    total = sum(t.user_attrs.get("search_kgco2e", 0.0) for t in study.trials)
    assert res["search_kgco2e"] == pytest.approx(total)
    assert f"{total:.3e} kgCO2e" in page
    assert "estimate (estimated)" in page and "codecarbon" in page  # meter + intensity provenance
    capped = [
        t for t in study.trials if t.state.name == "COMPLETE" and t.user_attrs["kgco2e"] <= cap
    ]
    best = max(capped, key=lambda t: (t.user_attrs["accuracy"], -t.user_attrs["kgco2e"], -t.number))
    assert res["cap_trial"] == best.number
    assert res["knee_trial"] in res["front"]
    assert any("quantization not tried" in line for line in res["feedback"])


def test_report_reads_the_carbon_budget(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("carbon_budget_kgco2e", 2e-3)
    study.set_user_attr("carbon_budget_used_kgco2e", 1.5e-3)
    study.set_user_attr("carbon_budget_stop_reason", "budget spent")
    page = build_report(study).html
    assert "1.500e-03 kgCO2e of 2.000e-03 kgCO2e" in page and "stopped: budget spent" in page


def test_bad_cap_is_exit_2(config_and_study, tmp_path, capsys) -> None:  # noqa: ANN001
    config, _ = config_and_study
    argv = [
        "report",
        "--storage",
        config.storage_url,
        "--study",
        config.study.name,
        "--out",
        str(tmp_path / "r.html"),
    ]
    assert main([*argv, "--carbon-cap", "0"]) == 2
    assert "carbon-cap" in capsys.readouterr().err


def _chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no chromium binary (set BROWSER_PATH or install chromium) to render the report"
        )
    return path


def test_report_draws_in_headless_chromium(config_and_study, tmp_path, capsys) -> None:  # noqa: ANN001
    browser = _chromium()
    res = _report(config_and_study, tmp_path, capsys)
    url = Path(res["written"]["html"]).resolve().as_uri()
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    cmd += ["--virtual-time-budget=15000", "--dump-dom", url]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    # plotly.js builds these only when it really drew (the static HTML has none of them)
    assert len(re.findall(r'class="main-svg"', dom)) >= 3
    assert "scatterlayer" in dom and "barlayer" in dom
    assert 'class="legendtext"' in dom and "Pareto front" in dom
    source = Path(res["written"]["html"]).read_text()
    assert 'class="main-svg"' not in source


def test_static_png_and_svg(config_and_study, tmp_path) -> None:  # noqa: ANN001
    _chromium()
    report = build_report(config_and_study[1])
    png = write_static(report.figures["eco_curve"], tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = write_static(report.figures["eco_curve"], tmp_path / "curve.svg")
    assert "<svg" in svg.read_text()[:500]


def test_no_chromium_means_html_only(config_and_study, tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "missing"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    res = _report(config_and_study, tmp_path, capsys, "--png", str(tmp_path / "c.png"))
    assert "static" not in res["written"] and "no Chromium" in res["static_error"]
    assert Path(res["written"]["html"]).is_file() and not (tmp_path / "c.png").exists()


def test_report_stdout_labels_its_figures(config_and_study, tmp_path, capsys) -> None:  # noqa: ANN001
    """ "knee: trial 3 (0.2300, ...)" named neither the accuracy nor what the kgCO2e is."""
    config, _ = config_and_study
    argv = ["report", "--storage", config.storage_url, "--study", config.study.name]
    assert main([*argv, "--out", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    knee = next(line for line in out.splitlines() if line.startswith("knee: "))
    assert "(validation accuracy 0." in knee and " model " in knee and "kgCO2e)" in knee
    assert "kgCO2e (all trials, every phase, estimated)" in out
