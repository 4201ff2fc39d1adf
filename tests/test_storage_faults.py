"""Storage write faults (issue 26 item 7): a read-only study.db, one made read-only mid-search,
a full disk, a corrupted page. Each is one line (exit 2 for the storage, 1 for the machine),
no traceback, no trial left RUNNING where the storage still takes a write, no artifact file
without an owner. Verbs that only read (pareto, report, export) work on a read-only storage.

A read-only file: as root (whom file modes do not stop) a tmpfs remounted read-only, else
``chmod``; a full disk: a 2 MB tmpfs; both skip where ``mount`` is not permitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import torch

import nas.workload
from nas.cli import main
from tests.test_hardening import _copy, _export, _front_trial
from tests.test_hostile_input import _corrupt
from tests.tiny_npz import tiny_toml

S = optuna.trial.TrialState


def _mount(cmd: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot {' '.join(cmd[:3])}: {out.stderr.strip()[:200]}")


@contextmanager
def _tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    """A small tmpfs at ``path`` (skips when mounting is not permitted)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    _mount(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)  # lazy: pooled connections


@contextmanager
def _read_only_copy(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """The tiny study (storage URL, artifact dir, name) on storage nothing may write."""
    url, artifacts, name = _copy(tmp_path)
    db = Path(url.removeprefix("sqlite:///"))
    if os.geteuid() != 0:  # file modes stop everyone but root
        for p in (db, *artifacts.iterdir()):
            p.chmod(0o444)
        for d in (artifacts, db.parent):
            d.chmod(0o555)
        try:
            yield url, artifacts, name
        finally:
            for d in (artifacts, db.parent):
                d.chmod(0o755)
        return
    with _tmpfs(tmp_path / "ro", "8m") as mnt:
        shutil.copy(db, mnt / "study.db")
        shutil.copytree(artifacts, mnt / "artifacts")
        _mount(["mount", "-o", "remount,ro", str(mnt)])
        yield f"sqlite:///{mnt / 'study.db'}", mnt / "artifacts", name


def _one_line(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, prefix: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.startswith(prefix)]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.mark.parametrize("verb", ["search", "train", "pareto", "report", "export"])
def test_a_read_only_study(
    verb: str, tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """search and train --dry-run (which stores its projection) refuse in one line; the
    verbs that only read work."""
    with _read_only_copy(tmp_path) as (url, artifacts, name):
        trial = _front_trial(url, name).number
        before = Path(url.removeprefix("sqlite:///")).read_bytes()
        if verb in ("search", "train"):
            argv = {
                "search": ["search", str(tiny_toml(tmp_path / "cfg"))],
                "train": ["train", "--trial", str(trial), "--dry-run"],
            }[verb]
            argv += ["--storage", url, "--study-name" if verb == "search" else "--study", name]
            line = _one_line(capsys, argv, 2, "econas: error:")
            assert "is read-only" in line and url.removeprefix("sqlite:///") in line
        else:
            argv = {
                "pareto": ["pareto", "--storage", url, "--study", name],
                "report": ["report", "--storage", url, "--study", name, "--out", "r.html"],
                "export": _export(url, name, trial, work / "e", "--artifacts", str(artifacts)),
            }[verb]
            assert main(argv) == 0, capsys.readouterr().err
        assert Path(url.removeprefix("sqlite:///")).read_bytes() == before


def test_a_corrupted_page_under_train_dry_run(
    tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other verbs are in tests/test_hostile_input.py."""
    url, _, name = _copy(tmp_path)
    trial = _front_trial(url, name).number
    _corrupt(Path(url.removeprefix("sqlite:///")))
    argv = ["train", "--storage", url, "--study", name, "--trial", str(trial), "--dry-run"]
    line = _one_line(capsys, argv, 2, "econas: error:")
    assert "corrupt" in line or "not a SQLite database" in line
    assert list(work.iterdir()) == []


def _orphans(study: optuna.Study, artifacts: Path) -> set[str]:
    """Artifact files that no trial (and not the study) owns."""
    keys = [k for t in study.trials for k in t.system_attrs]
    keys += list(study._storage.get_study_system_attrs(study._study_id))
    owned = {k.removeprefix("artifacts:") for k in keys if k.startswith("artifacts:")}
    return {p.name for p in artifacts.iterdir()} - owned


@pytest.fixture
def read_only_switch() -> Iterator[list[bool]]:
    """Once set, every SQLite connection econas checks out is read-only (``PRAGMA
    query_only``): the driver then refuses each write as on a read-only file, mid-search."""
    switch = [False]

    def checkout(dbapi_connection, *_: object) -> None:  # noqa: ANN001
        dbapi_connection.execute(f"PRAGMA query_only = {'ON' if switch[0] else 'OFF'}")

    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "checkout", checkout)
    try:
        yield switch
    finally:
        sqlalchemy.event.remove(sqlalchemy.pool.Pool, "checkout", checkout)


def test_a_study_made_read_only_mid_search(
    tmp_path: Path,
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    read_only_switch: list[bool],
) -> None:
    """The second trial's results cannot be written: one line, exit 2 (not Optuna's
    UnboundLocalError); the trial stays RUNNING only because nothing can be written, and the
    next search, once the storage takes writes again, fails it as stale and goes on."""
    torch.set_num_threads(1)
    real, calls = nas.workload.train_model, [0]

    def train_model(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        read_only_switch[0] = calls[0] == 2
        return real(*args, **kwargs)

    monkeypatch.setattr(nas.workload, "train_model", train_model)
    monkeypatch.setenv("ECONAS_HEARTBEAT_S", "1")
    cfg = tiny_toml(tmp_path / "cfg", trials=3)
    line = _one_line(capsys, ["search", str(cfg)], 2, "econas: error:")
    assert "is read-only" in line, line
    read_only_switch[0] = False
    url = f"sqlite:///{tmp_path / 'cfg' / 'runs' / 't' / 'study.db'}"
    study = optuna.load_study(study_name="t", storage=url)
    assert [t.state for t in study.trials] == [S.COMPLETE, S.RUNNING]
    assert _orphans(study, tmp_path / "cfg" / "runs" / "t" / "artifacts") == set()
    # the grace period (3 x ECONAS_HEARTBEAT_S), and more: SQLite's CURRENT_TIMESTAMP, which
    # both the heartbeat and optuna's staleness check use, has whole seconds, so 3.5 s can
    # read as 3 (a beat at 35.0 s, checked at 38.5 s: 35 is not older than 38 - 3)
    time.sleep(5.0)
    assert main(["search", str(cfg)]) == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="t", storage=url)
    assert study.trials[1].state == S.FAIL
    assert len([t for t in study.trials if t.state == S.COMPLETE]) == 3


def test_a_full_disk(tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The study on a 2 MB tmpfs with 24 KB left: one line, exit 1 (a fault of the machine),
    no trial RUNNING, no artifact file cut short or without an owner."""
    torch.set_num_threads(1)
    with _tmpfs(tmp_path / "disk") as disk:
        cfg = tiny_toml(
            tmp_path / "cfg",
            storage=f"sqlite:///{disk / 'study.db'}",
            artifacts=str(disk / "artifacts"),
            trials=3,
        )
        assert main(["search", str(cfg), "--trials", "1"]) == 0
        st = os.statvfs(disk)
        (disk / "ballast").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 24 * 1024))
        line = _one_line(capsys, ["search", str(cfg)], 1, "econas: failed:")
        assert "the disk is full" in line, line
        (disk / "ballast").unlink()
        study = optuna.load_study(study_name="t", storage=f"sqlite:///{disk / 'study.db'}")
        assert S.RUNNING not in [t.state for t in study.trials]
        assert _orphans(study, disk / "artifacts") == set()


def test_an_export_onto_a_full_disk(
    tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, artifacts, name = _copy(tmp_path)
    trial = _front_trial(url, name).number
    with _tmpfs(tmp_path / "disk") as disk:
        st = os.statvfs(disk)
        (disk / "ballast").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 8 * 1024))
        argv = _export(url, name, trial, disk / "e", "--artifacts", str(artifacts))
        line = _one_line(capsys, argv, 1, "econas: failed:")
        assert "the disk is full" in line, line
        assert sorted(p.name for p in disk.iterdir()) == ["ballast"]  # no staging, no e
