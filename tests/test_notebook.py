"""notebooks/eco_performance.ipynb executes (nbclient, the venv's kernel) on two tiny studies."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import nas
from tests.report.tiny_study import tiny_study

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "eco_performance.ipynb"


def _text(nb) -> str:  # noqa: ANN001
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", ""))
            out.append(json.dumps(o.get("data", {})))
    return "\n".join(out)


def test_notebook_compares_two_studies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a_cfg, a = tiny_study("tiny")
    b_cfg, b = tiny_study("tiny_b", trials=3, seed=5)
    monkeypatch.setenv("ECONAS_STORAGE", a_cfg.storage_url)
    monkeypatch.setenv("ECONAS_STUDY", a.study_name)
    monkeypatch.setenv("ECONAS_STORAGE_B", b_cfg.storage_url)
    monkeypatch.setenv("ECONAS_STUDY_B", b.study_name)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # "python3" resolves to this interpreter (jupyter_client swaps `python` for sys.executable)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    text = _text(nb)
    assert (
        f"kernel python: {sys.executable}" in text
        or f"kernel python: {os.path.realpath(sys.executable)}" in text
    )
    assert f"study {a.study_name}:" in text and "search cost:" in text and "knee: trial" in text
    assert "application/vnd.plotly.v1+json" in text or "text/html" in text  # figures drawn
    assert "Eco-performance curves" in text and "final hypervolume" in text
    # the front door: nas.pareto_front and nas.trial_records on the same study
    n_front = len(nas.pareto_front(a))
    assert f"{n_front} front trials via nas.pareto_front, {len(a.trials)} trial records" in text
    assert "kWh by phase: sample" in text
    table = [line.split() for line in text.splitlines() if line.startswith(("tiny ", "tiny_b "))]
    assert {row[0] for row in table} == {"tiny", "tiny_b"}
    # completed trials that are findings of their own (a reused duplicate is its source's)
    n_a = sum(t.state.name == "COMPLETE" and not t.user_attrs.get("reused") for t in a.trials)
    assert next(int(r[1]) for r in table if r[0] == "tiny") == n_a
