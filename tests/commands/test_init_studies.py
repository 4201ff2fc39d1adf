"""Bundled study configs: `econas studies`, `econas init`, CONFIG by name, `econas --version`."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import nas.bundled
from nas.bundled import list_studies, studies_dir
from nas.cli import main
from nas.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_repo_studies_are_the_bundled_files() -> None:
    repo = sorted(p.name for p in (ROOT / "studies").glob("*.toml"))
    assert repo == [f"{n}.toml" for n in list_studies()]
    assert "quickstart" in list_studies() and "green" in list_studies()
    assert (ROOT / "studies").resolve() == studies_dir().resolve()


def test_studies_lists_every_bundled_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["studies", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list_studies()
    quick = next(r for r in rows if r["name"] == "quickstart")
    assert Path(quick["path"]).is_file() and quick["description"].startswith("The quickstart")
    assert main(["studies"]) == 0
    text = capsys.readouterr().out
    blocks: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith(" "):  # a wrapped description continues
            blocks[list(blocks)[-1]].append(line.strip())
        else:
            name, first = line.split(None, 1)
            blocks[name] = [first.strip()]
    assert list(blocks) == list_studies()
    for row in rows:  # whole, never cut with "...": the wrapped lines join back to it
        assert row["description"].endswith(".") and not row["description"].endswith("...")
        assert " ".join(blocks[row["name"]]) == row["description"]
    assert "minutes on 2 CPU cores." in quick["description"]


def test_init_writes_quickstart_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = tmp_path / "quickstart.toml"
    bundled = (studies_dir() / "quickstart.toml").read_text()
    assert written.read_text() == bundled
    assert "# " in bundled and "[final]" in bundled  # the documented config, comments kept
    assert capsys.readouterr().out.strip() == "quickstart.toml"
    assert load_config("quickstart.toml").study.name == "quickstart"

    written.write_text("# mine\n")
    assert main(["init"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "quickstart.toml already exists" in line
    assert written.read_text() == "# mine\n"  # untouched


def test_init_other_study_and_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "green", "--out", "my.toml", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"study": "green", "name": "my", "written": "my.toml"}
    written = (tmp_path / "my.toml").read_text()
    bundled = (studies_dir() / "green.toml").read_text()
    assert written.replace('name = "my"', 'name = "green"', 1) == bundled  # only the name
    assert load_config("my.toml").study.name == "my"


def test_init_out_names_the_study_after_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`init --out synth.toml` must not silently open the quickstart's database."""
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--out", "synth.toml"]) == 0
    config = load_config("synth.toml")
    assert config.study.name == "synth"
    assert config.storage_url == "sqlite:///runs/synth/study.db"
    text = (tmp_path / "synth.toml").read_text()
    assert "runs/quickstart/" not in text and "runs/synth/study.db" in text  # comments too
    bundled = load_config("quickstart")
    assert config.replace("study", name="quickstart").fingerprint() == bundled.fingerprint()
    capsys.readouterr()
    assert main(["init", "--out", " odd.toml"]) == 2  # a file name that is no study name
    assert "surrounding spaces" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / " odd.toml").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["init", "nope"], "no bundled study named 'nope'; bundled studies: "),
        (
            ["init", "quickstart", "--out", "missing/dir/q.toml"],
            "folder missing/dir does not exist",
        ),
        (["search", "nope"], "no config file or bundled study named 'nope'; bundled studies: "),
        (["search", "nope.toml"], "config file not found: nope.toml (bundled studies: "),
        (["pareto", "nope"], "no config file or bundled study named 'nope'"),
    ],
)
def test_unknown_names_are_one_line_exit_2(
    argv: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert needle in line
    if "bundled studies" in needle:
        assert all(name in line for name in list_studies())
    assert list(tmp_path.iterdir()) == []  # nothing half-made


def test_bundled_name_loads_and_runs_under_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("quickstart", "quickstart.toml"):
        cfg = load_config(name)
        assert Path(cfg.path or "").resolve() == (studies_dir() / "quickstart.toml").resolve()
        assert cfg.storage_url == "sqlite:///runs/quickstart/study.db"  # relative: under the cwd
        assert not cfg.run_dir.is_absolute()
    # a file of that name in the cwd wins over the bundled study
    (tmp_path / "quickstart.toml").write_text('[study]\nname = "mine"\n')
    assert load_config("quickstart.toml").study.name == "mine"


def test_relative_paths_of_a_bundled_config_resolve_from_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "data" / "tiny.npz").write_bytes(b"")
    (pkg / "trace.csv").write_text("")
    doc = (
        '[study]\nname = "rel"\n[data]\ndataset = "npz:data/tiny.npz"\n'
        '[carbon]\nregion = "trace:trace.csv"\n'
        '[schedule]\ntrace = "trace.csv"\nmax_kgco2e = 1.0\n'
    )
    (pkg / "rel.toml").write_text(doc)
    monkeypatch.setattr(nas.bundled, "studies_dir", lambda: pkg)
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config("rel")
    assert cfg.data.dataset == f"npz:{(pkg / 'data' / 'tiny.npz').resolve()}"
    assert cfg.carbon.region == f"trace:{(pkg / 'trace.csv').resolve()}"
    assert cfg.schedule.trace == str((pkg / "trace.csv").resolve())
    # the same text as a file of the user's keeps its paths as written (relative to the cwd)
    (elsewhere / "own.toml").write_text(doc)
    own = load_config("own.toml")
    assert own.data.dataset == "npz:data/tiny.npz" and own.schedule.trace == "trace.csv"
    # names that are not files (shipped traces, built-in data sets) are never rewritten
    (pkg / "names.toml").write_text(
        '[data]\ndataset = "fashion-mnist"\n[carbon]\nregion = "trace:gb_2020"\n'
    )
    names = load_config("names")
    assert (names.data.dataset, names.carbon.region) == ("fashion-mnist", "trace:gb_2020")


def test_version_prints_three_versions_without_torch() -> None:
    code = (
        "import sys\n"
        "from nas.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = out.stdout.splitlines()
    assert lines[:3] == [
        f"econas {metadata.version('econas')}",
        f"torch {metadata.version('torch')}",
        f"optuna {metadata.version('optuna')}",
    ]
    assert lines[3] == "torch imported: False"
