"""Hostile and careless input, second round (issue 26, items 6 and 8-12).

Every case answers with one line and exit 2 before anything is created or allocated: bad
search-space options, non-regular data/config/trace files, hostile arch specs, pruned
structures and checkpoints read back, in-memory and empty SQLite files, bad paths. And what
econas writes from a hostile study stays inert: the card's YAML, strict JSON, bounded text.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import optuna
import pytest

from nas.cli import main
from nas.errors import BadInputError
from nas.record import TrialAttrs
from tests.test_hardening import _copy, _export, _front_trial, _one_line_exit_2, _set_attr
from tests.tiny_npz import tiny_toml, write_npz

CONTROL = [chr(c) for c in (*range(0, 9), *range(11, 32), 127)]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (the cwd), with the tiny config one level below it."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (a FIFO read would block forever)."""

    def _late(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, _late)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _tiny(tmp_path: Path, cnn: dict[str, str] | None = None, extra: str = "") -> Path:
    """The tiny config with ``[search.cnn]`` lines replaced (TOML value text)."""
    path = tiny_toml(tmp_path / "cfg", extra=extra)
    text = path.read_text()
    for key, value in (cnn or {}).items():
        lines = [x for x in text.splitlines() if not x.startswith(f"{key} =")]
        at = lines.index("[search.cnn]") + 1
        lines.insert(at, f"{key} = {value}")
        text = "\n".join(lines) + "\n"
    path.write_text(text)
    return path


def _nothing_created(cfg: Path) -> None:
    assert not (cfg.parent / "runs").exists(), list((cfg.parent / "runs").rglob("*"))


# --- item 6: every search-space option checked before anything is created -------------------

BAD_OPTIONS = {
    "string": ({"width_choices": '"wide"'}, "width_choices"),
    "zero": ({"width_choices": "[0]"}, "width_choices"),
    "empty": ({"width_choices": "[]"}, "width_choices"),
    "min_stages_0": ({"min_stages": "0"}, "min_stages"),
    "unknown": ({"bogus": "1"}, "search.cnn.bogus"),
    "huge_width": ({"width_choices": "[100000000]"}, "width_choices"),
    "max_stages_1000": ({"max_stages": "1000"}, "max_stages"),
    "min_over_max": ({"min_stages": "3", "max_stages": "2"}, "min_stages"),
    "nan": ({"width_choices": "[nan]"}, "width_choices"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
@pytest.mark.parametrize("verb", ["search", "worker"])
def test_a_bad_search_option_creates_nothing(
    verb: str, case: str, tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options, named = BAD_OPTIONS[case]
    cfg = _tiny(tmp_path, options)
    argv = [verb, str(cfg), *(["--trials", "1"] if verb == "worker" else [])]
    assert named in _one_line_exit_2(capsys, argv)
    _nothing_created(cfg)
    assert list(work.iterdir()) == []


def test_nested_and_non_table_search_options(
    tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _tiny(tmp_path, extra="\n[search.cnn.deeper]\nx = 1\n")
    assert "search.cnn.deeper is a table" in _one_line_exit_2(capsys, ["search", str(cfg)])
    text = _tiny(tmp_path).read_text()
    start, end = text.index("[search.cnn]"), text.index("[data]")
    cfg.write_text(
        text[:start].replace('spaces = ["cnn"]', 'spaces = ["cnn"]\ncnn = 3') + text[end:]
    )
    line = _one_line_exit_2(capsys, ["search", str(cfg)])
    assert "search.cnn must be a table of options" in line and "unknown key" not in line
    _nothing_created(cfg)


def test_a_refused_option_does_not_lock_the_study_name(
    tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _tiny(tmp_path, {"width_choices": "[0]"})
    _one_line_exit_2(capsys, ["search", str(cfg)])
    cfg = _tiny(tmp_path)  # corrected: runs, not "differs in search.options"
    assert main(["search", str(cfg)]) == 0, capsys.readouterr().err


def test_images_too_small_are_refused_before_the_study(
    tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _tiny(tmp_path)
    npz = write_npz(tmp_path / "one.npz", side=1)
    line = _one_line_exit_2(capsys, ["search", str(cfg), "--dataset", f"npz:{npz}"])
    assert "1x1" in line
    _nothing_created(cfg)


# --- item 8: unbounded reads ----------------------------------------------------------------


def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"special-{kind}.npz"
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory"])
def test_non_regular_data_files_are_refused_without_reading(
    kind: str, tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _tiny(tmp_path)
    path = _special(tmp_path, kind)
    with _deadline(60):
        line = _one_line_exit_2(capsys, ["search", str(cfg), "--dataset", f"npz:{path}"])
        assert {"dev-zero": "a device", "fifo": "a FIFO", "directory": "a directory"}[kind] in line
        assert "not found" not in line
        _one_line_exit_2(capsys, ["search", str(path)])  # as the CONFIG
        _one_line_exit_2(
            capsys,
            [
                "schedule", "simulate", "--trace", str(path), "--job-hours", "1",
                "--window-hours", "2", "--policy", "run-now",
            ],
        )  # fmt: skip
    _nothing_created(cfg)


def test_bounded_reads_refuse_a_file_too_large(tmp_path: Path) -> None:
    from nas.files import read_text

    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 2048)
    with pytest.raises(BadInputError, match="larger than 1024 bytes"):
        read_text(big, "config file", max_bytes=1024)
    assert read_text(big, "config file", max_bytes=4096).startswith("#")


HOSTILE_SPECS = {
    "wide": lambda spec: spec["config"]["stages"][0].update(width=10**9),
    "classes": lambda spec: spec.update(num_classes=10**12),
    "stages": lambda spec: spec["config"].update(stages=spec["config"]["stages"] * 5000),
    "channels": lambda spec: spec.update(in_channels=10**6),
    "not-json": lambda spec: spec.clear(),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SPECS))
def test_a_hostile_arch_spec_is_refused_before_allocating(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import resource

    url, artifacts, name = _copy(tmp_path)
    study = optuna.load_study(study_name=name, storage=url)
    trial = next(
        t
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("family") == "cnn"
    )
    spec = json.loads(trial.user_attrs[TrialAttrs.arch_spec])
    HOSTILE_SPECS[case](spec)
    _set_attr(url, trial._trial_id, TrialAttrs.arch_spec, json.dumps(spec) if spec else "{not json")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = tmp_path / "out"
    argv = _export(
        url, name, trial.number, out, "--artifacts", str(artifacts), "--format", "state_dict"
    )
    line = _one_line_exit_2(capsys, argv)
    assert f"trial {trial.number}" in line and "arch" in line
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 500, grown_mb  # refused before the model was allocated
    assert not out.exists()


def test_a_pruned_structure_that_grows_a_tensor_is_refused() -> None:
    from nas.compression.prune import apply_structure
    from search_spaces import ArchSpec, build_model

    spec = ArchSpec(
        family="cnn",
        in_channels=1,
        num_classes=10,
        image_size=8,
        config={
            "stem_width": 8,
            "stem_stride": 1,
            "activation": "relu",
            "stages": [
                {"block": "conv", "depth": 1, "width": 8, "kernel": 3, "stride": 1, "se": False}
            ],
        },
    )
    model = build_model(spec)
    name, tensor = next(iter(model.named_parameters()))
    huge = [10**9, *list(tensor.shape)[1:]]
    with pytest.raises(BadInputError, match="pruning only removes"):
        apply_structure(model, {"shapes": {name: huge}})


@pytest.mark.parametrize(
    "spent",
    [
        {"cpu": -1e30},
        {"cpu": float("nan")},
        {"cpu": float("inf")},
        {"cpu": "1"},
        {"cpu": 1e40},
    ],
    ids=["negative", "nan", "inf", "string", "huge"],
)
def test_a_corrupt_progress_file_is_refused_not_trusted(spent: dict, tmp_path: Path) -> None:
    from nas.final._checkpoint import PROGRESS, CheckpointDir

    folder = CheckpointDir(tmp_path, study="s", trial=1)
    data = {
        "study": "s",
        "trial": 1,
        "epoch": 1,
        "spent": {
            "name": "lost",
            "duration_s": 1.0,
            "energy_j": spent,
            "source": "estimate",
            "kind": "estimated",
            "hardware": "cpu",
        },
    }
    (tmp_path / PROGRESS).write_text(json.dumps(data))
    with pytest.raises(BadInputError, match="is corrupt"):
        folder.take_progress(0)
    assert (tmp_path / PROGRESS).exists()  # kept for the user to look at: never half-trusted


def test_a_checkpoint_ledger_with_nan_is_corrupt(tmp_path: Path) -> None:
    from nas.final._checkpoint import Checkpoint, CheckpointDir

    folder = CheckpointDir(tmp_path, study="s", trial=1)
    bad = {"name": "train", "duration_s": 1.0, "energy_j": {"cpu": float("nan")}}
    bad |= {"source": "estimate", "kind": "estimated", "hardware": "cpu"}
    folder.save(Checkpoint(study="s", trial=1, settings={"a": 1}, epoch=1, ledger=[bad]))
    with pytest.raises(BadInputError, match="is corrupt"):
        folder.load({"a": 1})


# --- item 9: the card's YAML front matter, strict JSON --------------------------------------


def _front_matter(card: str) -> dict:
    import yaml

    head = card.split("---\n")[1]
    return yaml.safe_load(head)


def _walk(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


@pytest.fixture
def label(tmp_path: Path) -> dict:
    """The real carbon label of a front trial of the tiny study."""
    from nas.carbon_label import build_carbon_label

    url, _, name = _copy(tmp_path)
    study = optuna.load_study(study_name=name, storage=url)
    return build_carbon_label(study, _front_trial(url, name), weights="proxy")


def test_card_front_matter_decodes_to_plain_text(label: dict) -> None:
    from nas.carbon_label import model_card

    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">\x1b]0;t\x07\u202e'
    label["carbon_intensity"] |= {"source": hostile, "region": hostile}
    label["meter"]["source"] = hostile
    label["dataset"]["dataset"] = hostile
    label["hardware"] = hostile + "\\u001b[2J\\x07"
    front = _front_matter(model_card(label))
    texts = list(_walk(front))
    assert any("alert" in t for t in texts)  # the values are there, as text
    for text in texts:
        assert not any(c in text for c in CONTROL), repr(text)
        assert "<script" not in text and "<img" not in text and "\u202e" not in text, text
    assert front["co2_eq_emissions"]["emissions"] > 0


def test_unknown_emissions_are_not_written_as_zero(label: dict) -> None:
    from nas.carbon_label import model_card

    label["proxy_training"]["kgco2e"] = float("nan")
    card = model_card(label)
    assert "emissions:" not in card
    assert "unknown" in card
    assert _front_matter(card).get("co2_eq_emissions") is None


def test_the_carbon_label_is_strict_json_for_a_nan_trial(label: dict, tmp_path: Path) -> None:
    from nas.carbon_label import write_carbon_label

    label["proxy_training"]["kgco2e"] = math.inf
    label["accuracy"] = math.nan
    paths = write_carbon_label(tmp_path / "label", label)

    def strict(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    data = json.loads(paths["carbon_label"].read_text(), parse_constant=strict)
    assert data["accuracy"] is None and data["proxy_training"]["kgco2e"] is None


# --- item 10: in-memory SQLite --------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"]
)
@pytest.mark.parametrize("verb", ["search", "worker", "pareto"])
def test_in_memory_sqlite_is_refused(
    verb: str, url: str, tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _tiny(tmp_path)
    argv = {
        "search": ["search", str(cfg), "--storage", url],
        "worker": ["worker", str(cfg), "--storage", url, "--trials", "1"],
        "pareto": ["pareto", "--storage", url],
    }[verb]
    line = _one_line_exit_2(capsys, argv)
    assert "in-memory" in line or "no such database file" in line
    _nothing_created(cfg)
    assert list(work.iterdir()) == []


# --- item 11: bad paths ---------------------------------------------------------------------


def test_long_names_and_paths_are_one_line(
    tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    studies = Path(__file__).resolve().parents[1] / "studies" / "quickstart.toml"
    line = _one_line_exit_2(capsys, ["search", str(studies), "--study-name", "n" * 300])
    assert "study" in line and "300" in line
    line = _one_line_exit_2(capsys, ["search", "c" * 300 + ".toml"])
    assert "too long" in line
    assert list(work.iterdir()) == []  # no empty runs/


def test_pareto_on_an_empty_file_writes_nothing_into_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert "empty file" in _one_line_exit_2(capsys, ["pareto", "--storage", f"sqlite:///{empty}"])
    assert empty.stat().st_size == 0


def test_report_out_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _, name = _copy(tmp_path)
    base = ["report", "--storage", url, "--study", name]
    assert "cannot write" in _one_line_exit_2(capsys, [*base, "--out", "/proc/r.html"])
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "nowhere" / "x.html")
    assert "symbolic link" in _one_line_exit_2(capsys, [*base, "--out", str(dangling)])
    mine = tmp_path / "notes.html"
    mine.write_text("my notes\n")
    assert "not overwritten" in _one_line_exit_2(capsys, [*base, "--out", str(mine)])
    assert mine.read_text() == "my notes\n"
    report = tmp_path / "r.html"
    assert main([*base, "--out", str(report)]) == 0
    assert main([*base, "--out", str(report)]) == 0  # its own earlier report is replaced
    assert main([*base, "--out", str(mine), "--force"]) == 0
    capsys.readouterr()
    assert "<html>" in mine.read_text()


# --- item 7 (read side): a corrupted page ---------------------------------------------------


def _corrupt(db: Path) -> None:
    with sqlite3.connect(db) as con:
        page = con.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(db.read_bytes())
    rng = np.random.default_rng(0)
    start = 2 * page  # past the header page: the file still opens, its tables do not read
    data[start : start + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("verb", ["pareto", "report", "export", "search"])
def test_a_corrupted_page_is_one_line(
    verb: str, tmp_path: Path, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, artifacts, name = _copy(tmp_path)
    _corrupt(Path(url.removeprefix("sqlite:///")))
    cfg = _tiny(tmp_path)
    argv = {
        "pareto": ["pareto", "--storage", url, "--study", name],
        "report": ["report", "--storage", url, "--study", name, "--out", "r.html"],
        "export": _export(url, name, 0, work / "e", "--artifacts", str(artifacts)),
        "search": ["search", str(cfg), "--storage", url, "--study-name", name],
    }[verb]
    line = _one_line_exit_2(capsys, argv)
    assert "corrupt" in line or "not a SQLite database" in line
    assert list(work.iterdir()) == []


# --- item 12: leftovers and small lies ------------------------------------------------------


def test_pareto_clips_a_huge_attr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _, name = _copy(tmp_path)
    for t in optuna.load_study(study_name=name, storage=url).trials:
        _set_attr(url, t._trial_id, TrialAttrs.arch, "A" * 2_000_000)
        _set_attr(url, t._trial_id, TrialAttrs.hardware, "H" * 2_000_000)
    assert main(["pareto", "--storage", url, "--study", name]) == 0
    out = capsys.readouterr().out
    assert len(out) < 50_000 and "chars)" in out


def test_a_base_url_query_follows_the_endpoint_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    from nas.carbon import UKCarbonIntensity

    seen: list[str] = []

    class _Reply:
        def __enter__(self) -> _Reply:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self, size: int = -1) -> bytes:
            return b"{}"

    def urlopen(req, timeout: float):  # noqa: ANN001, ANN202
        seen.append(req.full_url)
        return _Reply()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    source = UKCarbonIntensity(base_url="http://127.0.0.1:9/v2?api_key=K3YSECRET&x=1", retries=0)
    with pytest.raises(BadInputError):  # the empty reply holds no intensity: only the URL matters
        source.latest()
    assert seen, "no request made"
    path, _, query = seen[0].partition("?")
    assert path.startswith("http://127.0.0.1:9/v2/") and "api_key" not in path, seen[0]
    assert "api_key=K3YSECRET" in query and "x=1" in query
    assert "K3YSECRET" not in source.scrub(f"failed {seen[0]}")


def test_the_dashboard_prints_its_url_only_once_it_listens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    url, _, _ = _copy(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", "--storage", url, "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "cannot listen" in err and "http://" not in err, err


def test_a_copied_run_folder_uses_its_own_artifacts(tmp_path: Path) -> None:
    import shutil

    from nas.config import config_from_dict
    from nas.study import open_study, study_artifact_dir
    from tests.report.tiny_study import tiny_config_dict

    root = tmp_path / "runs" / "a"
    cfg = config_from_dict(tiny_config_dict(root, "a"))
    open_study(cfg)
    (root / "artifacts").mkdir()
    shutil.copytree(root, tmp_path / "runs" / "b")
    copy = optuna.load_study(study_name="a", storage=f"sqlite:///{tmp_path / 'runs/b/study.db'}")
    assert study_artifact_dir(copy) == (tmp_path / "runs" / "b" / "artifacts").resolve()
    elsewhere = config_from_dict(
        tiny_config_dict(tmp_path / "c", "c")
        | {
            "study": {
                "name": "c",
                "storage": f"sqlite:///{tmp_path / 'c.db'}",
                "artifacts": str(tmp_path / "far"),
            }
        }  # noqa: E501
    )
    study = open_study(elsewhere)
    assert study_artifact_dir(study) == (tmp_path / "far").resolve()


def test_children_get_sigint_even_when_the_suite_ignores_it() -> None:
    """Item 13: the helper signal tests start econas with; with SIGINT ignored in this
    process (a suite run as a background job), the child still dies of Ctrl-C."""
    import subprocess
    import sys

    from tests.child import default_signals

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=default_signals,
        )
    finally:
        signal.signal(signal.SIGINT, old)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) in (-signal.SIGINT, 1, 130)
