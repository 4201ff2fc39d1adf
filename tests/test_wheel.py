"""From a clean environment: build the wheel, install it alone into a fresh venv that reuses
this environment's installed dependencies, and run the bundled quickstart from an empty dir.

Slow: one real quickstart trial (2 epochs on 2,000 images; its first sampled ViT takes about
2 minutes on two idle cores, longer on busy ones)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import optuna
import pytest

from nas.record import TrialRecord

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{argv}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_inits_and_searches_from_an_empty_dir(tmp_path: Path) -> None:
    # the sources a wheel is built from, copied: the checkout gets no build/ or egg-info
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("nas", "search_spaces"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "-w", str(dist), str(src)],
        cwd=tmp_path,
        env=env,
    )
    (wheel,) = dist.glob("econas-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nas/studies/quickstart.toml" in names and "nas/traces/gb_2020.csv" in names
    assert not any(n.startswith(("tests/", "studies/")) for n in names)

    # a fresh venv: only the wheel installed; its dependencies are this environment's
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    py = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
    )
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    deps |= set(site.getsitepackages())
    (purelib / "econas_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        cwd=tmp_path,
        env=env,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([str(py), "-c", "import nas; print(nas.__file__)"], cwd=empty, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the wheel's nas, not a checkout's

    econas = str(venv / "bin" / "econas")
    version = _run([econas, "--version"], cwd=empty, env=env).stdout
    assert version.splitlines()[0] == "econas 0.1.0" and "torch " in version
    assert "quickstart" in _run([econas, "studies"], cwd=empty, env=env).stdout
    # the bundled quickstart by name: one real trial (minutes on two busy cores)
    _run([econas, "search", "quickstart", "--trials", "1"], cwd=empty, env=env)
    db = empty / "runs" / "quickstart" / "study.db"
    assert db.is_file()
    # `econas init` writes the same study's config: searching it resumes that study
    _run([econas, "init"], cwd=empty, env=env)
    assert (empty / "quickstart.toml").is_file()
    resumed = _run([econas, "search", "quickstart.toml", "--trials", "1"], cwd=empty, env=env)
    assert "0 new trials" in resumed.stderr
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{db}")
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 1 and (TrialRecord.of(finished[0]).kgco2e or 0) > 0
    assert sorted(p.name for p in empty.iterdir()) == ["quickstart.toml", "runs"]
