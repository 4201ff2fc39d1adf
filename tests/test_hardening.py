"""Hostile and careless input (issue 16): every verb answers bad input with one line and exit
2, leaves nothing half written, and prints nothing from storage raw.

The studies are copies of the tiny real study (``tests/report/tiny_study.py``) in a temp dir,
so a test can corrupt its copy freely.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from nas.cli import main
from nas.config import config_from_dict
from nas.record import Efficiency, TrialAttrs
from nas.study import make_sampler, redact_text, redact_url, strip_password
from tests.report.tiny_study import tiny_config_dict, tiny_study

SECRET = "Pw@se:cr/et%42"


def _copy(tmp_path: Path, key: str = "tiny") -> tuple[str, Path, str]:
    """A private copy of the tiny study: (storage URL, artifact dir, study name)."""
    config, study = tiny_study(key)
    root = tmp_path / "copy"
    root.mkdir()
    db = Path(config.storage_url.removeprefix("sqlite:///"))
    shutil.copy(db, root / "study.db")
    shutil.copytree(config.artifact_dir, root / "artifacts")
    return f"sqlite:///{root / 'study.db'}", root / "artifacts", study.study_name


def _front_trial(url: str, name: str) -> optuna.trial.FrozenTrial:
    study = optuna.load_study(study_name=name, storage=url)
    return min(
        (t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: t.number,
    )


def _one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("econas: error:")]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def _set_attr(url: str, trial_id: int, key: str, value: object) -> None:
    """Write a trial's user attr straight into the SQLite file, as another writer of a shared
    database could (Optuna refuses to update a finished trial)."""
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        cur = db.execute(
            "UPDATE trial_user_attributes SET value_json = ? WHERE trial_id = ? AND key = ?",
            (json.dumps(value), trial_id, key),
        )
        if cur.rowcount == 0:
            db.execute(
                "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, ?, ?)",
                (trial_id, key, json.dumps(value)),
            )


# --- credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://econas:hunter2@db:5432/x",
        "postgresql+psycopg://:hunter2@db/x",
        "postgresql+psycopg://econas@db/x?password=hunter2",
        "postgresql+psycopg://econas:hun@ter2@db/x",
        "postgresql+psycopg://econas:hun%40ter2@db/x?sslmode=require&sslpassword=hunter2",
        "mysql+pymysql://u:hunter2@h/db",
    ],
)
def test_no_url_form_leaks_the_password(url: str) -> None:
    for form in (redact_url(url), strip_password(url), redact_text(f"cannot reach {url}", url)):
        assert "hunter2" not in form and "hun@ter2" not in form and "ter2" not in form, form
    assert "***" in redact_url(url)
    assert "db" in redact_url(url) or "h/db" in redact_url(url)


def test_stripped_url_still_names_user_host_and_database() -> None:
    url = "postgresql+psycopg://econas:hunter2@db.example:5433/econas_test?sslmode=require"
    assert (
        strip_password(url)
        == "postgresql+psycopg://econas@db.example:5433/econas_test?sslmode=require"
    )
    assert strip_password("sqlite:///runs/x/study.db") == "sqlite:///runs/x/study.db"
    assert strip_password("journal:runs/x.log") == "journal:runs/x.log"


def test_unreachable_server_error_hides_every_credential_form(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://econas:{SECRET}@127.0.0.1:1/nope?sslpassword={SECRET}"
    line = _one_line_exit_2(capsys, ["pareto", "--storage", url])
    assert SECRET not in line and "se:cr" not in line


# --- concurrent processes ----------------------------------------------------------------


def _float_study(storage: str) -> optuna.Study:
    return optuna.create_study(storage=storage, study_name="s", directions=["maximize"])


def test_two_processes_sampling_one_study_draw_different_configurations(tmp_path: Path) -> None:
    """Two samplers made from one config (two `search` processes) on one study: each trial is
    seeded by its own number, so they no longer draw the same candidates."""
    cfg = config_from_dict(tiny_config_dict(tmp_path, "seeds", trials=4))
    study = _float_study(f"sqlite:///{tmp_path / 's.db'}")
    a, b = make_sampler(cfg), make_sampler(cfg)
    drawn = []
    for sampler in (a, b, a, b):
        study.sampler = sampler
        trial = study.ask()
        drawn.append(trial.suggest_float("x", 0.0, 1.0))
        study.tell(trial, 0.0)
    assert len(set(drawn)) == 4, drawn


def test_one_process_stays_reproducible(tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_config_dict(tmp_path, "seeds", trials=4))
    runs = []
    for k in range(2):
        study = _float_study(f"sqlite:///{tmp_path / f'r{k}.db'}")
        study.sampler = make_sampler(cfg)
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=8)
        runs.append([t.params["x"] for t in study.trials])
    assert runs[0] == runs[1]


def test_a_running_twin_is_waited_for_then_reused(tmp_path: Path) -> None:
    from nas.efficiency.reuse import find_match, wait_for_running_twin

    study = _float_study(f"sqlite:///{tmp_path / 'twin.db'}")
    first = study.ask()
    first.set_user_attr(Efficiency.fingerprint, "abc")
    second = study.ask()

    def finish() -> None:
        time.sleep(1.0)
        first.set_user_attr(TrialAttrs.accuracy, 0.5)
        study.tell(first, 0.5)

    thread = threading.Thread(target=finish)
    thread.start()
    t0 = time.monotonic()
    assert wait_for_running_twin(study, "abc", second.number, poll_s=0.1) == first.number
    assert time.monotonic() - t0 >= 0.9
    thread.join()
    match = find_match(study, "abc")
    assert match is not None and match.trial.number == first.number
    # the later twin is never waited for (no deadlock), nor another fingerprint
    assert wait_for_running_twin(study, "abc", first.number, poll_s=0.1) is None
    assert wait_for_running_twin(study, "other", second.number + 1, poll_s=0.1) is None


# --- bad config values: one line, exit 2, before any work --------------------------------

BAD_VALUES: dict[str, tuple[str, str, object, str]] = {
    "weight_decay_nan": ("train", "weight_decay", float("nan"), "train.weight_decay"),
    "weight_decay_negative": ("train", "weight_decay", -0.1, "train.weight_decay"),
    "inference_min_duration_nan": (
        "eval",
        "inference_min_duration_s",
        float("nan"),
        "eval.inference_min_duration_s",
    ),
    "inference_batch_huge": ("eval", "inference_batch_size", 10**12, "eval.inference_batch_size"),
    "seed_too_large": ("study", "seed", 2**32, "study.seed"),
    "seed_negative": ("study", "seed", -1, "study.seed"),
    "name_newline": ("study", "name", "a\nb", "study.name"),
    "name_dotdot": ("study", "name", "..", "study.name"),
    "name_escape": ("study", "name", "x\x1b]0;pwned\x07", "study.name"),
    "lr_nan": ("train", "lr", float("nan"), "train.lr"),
}


def _toml_value(value: object) -> str:
    if isinstance(value, float) and value != value:
        return "nan"
    return json.dumps(value)


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_config_value_is_refused_before_any_work(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    section, key, value, named = BAD_VALUES[case]
    data = tiny_config_dict(tmp_path / "run", "bad")
    lines = []
    for name, table in data.items():
        table = dict(table)
        table.pop("cnn", None), table.pop("vit", None)
        if name == section:
            table[key] = value
        body = "\n".join(
            f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)
        )
        lines.append(f"[{name}]\n{body}\n")
    cfg = tmp_path / "bad.toml"
    cfg.write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    line = _one_line_exit_2(capsys, ["search", str(cfg)])
    assert named in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["..", ".", "a/b", "x\ny", "tab\there"])
def test_bad_study_name_flag(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    studies = Path(__file__).resolve().parents[1] / "studies" / "quickstart.toml"
    _one_line_exit_2(capsys, ["search", str(studies), "--study-name", name])
    assert list(tmp_path.iterdir()) == []


def test_device_is_checked_before_the_study_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    data = tiny_config_dict(tmp_path / "run", "dev")
    cfg = config_from_dict(data | {"hardware": {"device": "cuda", "meter": "estimate"}})
    from nas.errors import BadInputError
    from nas.search import run_search

    with pytest.raises(BadInputError, match="CUDA"):
        run_search(cfg, progress=False)
    assert not (tmp_path / "run").exists()  # no database, no artifact dir: a rerun isn't refused


def test_refusal_names_the_keys_that_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, name = _copy(tmp_path)
    config, _ = tiny_study()
    data = json.loads(json.dumps(config.to_dict()))
    data["search"] = {**data["search"].pop("options"), **data["search"]}
    data["study"] |= {"storage": url, "artifacts": str(tmp_path / "a")}
    data["train"]["lr"] = 0.5
    data["hardware"]["device"] = "cpu"
    for section in data.values():
        for k in [k for k, v in section.items() if v is None]:
            del section[k]
    from nas.errors import ConfigError
    from nas.study import open_study

    with pytest.raises(ConfigError, match=r"differs in train\.lr\b"):
        open_study(config_from_dict(data))


# --- storages ----------------------------------------------------------------------------


def test_read_only_verbs_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["pareto", "--storage", "sqlite:///typo/x.db"],
        ["report", "--storage", "sqlite:///typo/x.db", "--out", "r.html"],
        ["export", "--storage", "sqlite:///typo/x.db", "--trial", "0", "--out", "e"],
        ["pareto", "--storage", "journal:typo/x.log"],
    ):
        assert "typo" in _one_line_exit_2(capsys, argv)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"hello\nnot json\n", bytes(range(256)) * 4])
def test_a_file_that_is_not_a_journal(
    content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.log"
    path.write_bytes(content)
    line = _one_line_exit_2(capsys, ["pareto", "--storage", f"journal:{path}"])
    assert "not an Optuna journal" in line
    assert path.read_bytes() == content


# --- export and report outputs -----------------------------------------------------------


def _export(url: str, name: str, trial: int, out: Path, *extra: str) -> list[str]:
    return [
        "export",
        "--storage",
        url,
        "--study",
        name,
        "--trial",
        str(trial),
        "--out",
        str(out),
        *extra,
    ]


def test_export_never_overwrites_a_users_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, artifacts, name = _copy(tmp_path)
    trial = _front_trial(url, name).number
    out = tmp_path / "dir"
    out.mkdir()
    (out / "README.md").write_text("mine\n")
    line = _one_line_exit_2(
        capsys,
        _export(url, name, trial, out, "--artifacts", str(artifacts), "--format", "state_dict"),
    )
    assert "not empty" in line and "--force" in line
    assert [p.name for p in out.iterdir()] == ["README.md"]
    assert (out / "README.md").read_text() == "mine\n"
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    # --force replaces the export's own files and keeps the others
    (out / "notes.txt").write_text("keep\n")
    args = _export(url, name, trial, out, "--artifacts", str(artifacts), "--format", "state_dict")
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    assert (out / "notes.txt").read_text() == "keep\n"
    assert (out / "README.md").read_text() != "mine\n"  # the model card
    assert (out / "carbon_label.json").is_file()


def test_failed_export_leaves_nothing_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, artifacts, name = _copy(tmp_path)
    trial = _front_trial(url, name).number
    out = tmp_path / "new"
    base = _export(url, name, trial, out, "--artifacts", str(artifacts))
    for extra in (["--inference-min-duration-s", "nan"], ["--inference-min-duration-s", "-1"]):
        _one_line_exit_2(capsys, [*base, *extra])
    (tmp_path / "afile").write_text("x")
    assert "is a file" in _one_line_exit_2(
        capsys, _export(url, name, trial, tmp_path / "afile", "--artifacts", str(artifacts))
    )
    empty = tmp_path / "empty-artifacts"
    empty.mkdir()
    line = _one_line_exit_2(capsys, _export(url, name, trial, out, "--artifacts", str(empty)))
    assert "not found" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "copy", "empty-artifacts"]


@pytest.mark.parametrize(
    "artifact_id", ["../../etc/passwd", "/etc/passwd", "a b", "x" * 300, "..", ""]
)
def test_malformed_artifact_id(
    artifact_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, artifacts, name = _copy(tmp_path)
    trial = _front_trial(url, name)
    _set_attr(url, trial._trial_id, TrialAttrs.weights_artifact_id, artifact_id)
    out = tmp_path / "out"
    line = _one_line_exit_2(
        capsys, _export(url, name, trial.number, out, "--artifacts", str(artifacts))
    )
    assert "artifact" in line
    assert not out.exists()


def test_report_out_naming_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _, name = _copy(tmp_path)
    line = _one_line_exit_2(
        capsys, ["report", "--storage", url, "--study", name, "--out", str(tmp_path)]
    )
    assert "directory" in line


# --- nothing from storage reaches a terminal, page or card raw ---------------------------


def _hostile_copy(tmp_path: Path) -> tuple[str, Path, str, int]:
    url, artifacts, name = _copy(tmp_path)
    evil = "evil|name\n# heading <script>alert(1)</script>\x1b]0;title\x07"
    optuna.copy_study(from_study_name=name, from_storage=url, to_storage=url, to_study_name=evil)
    study = optuna.load_study(study_name=evil, storage=url)
    first = _front_trial(url, evil)
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        _set_attr(url, t._trial_id, TrialAttrs.energy_kind, "estimated\r\x1b[2Kmeasured")
        _set_attr(url, t._trial_id, TrialAttrs.arch, "cnn|x\n| injected | row |")
        phases = t.user_attrs.get(TrialAttrs.phases, "")
        hostile = '<a href="http://evil.example">click</a>'
        _set_attr(url, t._trial_id, TrialAttrs.phases, f"{phases},{hostile}")
        _set_attr(url, t._trial_id, f"{hostile}_energy_kwh", 1e-6)
    return url, artifacts, evil, first.number


CONTROL = [chr(c) for c in (*range(0, 9), *range(11, 32), 127)]


def test_pareto_strips_escape_sequences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _, evil, _ = _hostile_copy(tmp_path)
    assert main(["pareto", "--storage", url, "--study", evil]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in CONTROL), repr(out[:300])
    assert "estimatedmeasured" in out or "estimated[2Kmeasured" in out


def test_model_card_and_report_escape_storage_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, artifacts, evil, number = _hostile_copy(tmp_path)
    out = tmp_path / "export"
    args = _export(url, evil, number, out, "--artifacts", str(artifacts), "--format", "state_dict")
    assert main(args) == 0
    card = (out / "README.md").read_text()
    table = [line for line in card.splitlines() if line.startswith("|")]
    assert all(line.endswith("|") for line in table)
    assert not any("injected" in line and "\\|" not in line for line in table)
    assert "<script>" not in card and "\x1b" not in card
    assert not any(line.startswith("# heading") for line in card.splitlines())
    html = tmp_path / "r.html"
    assert main(["report", "--storage", url, "--study", evil, "--out", str(html)]) == 0
    capsys.readouterr()
    page = html.read_text()
    assert '<a href="http://evil.example">' not in page
    assert '<a href=\\"http://evil.example\\">' not in page
    assert "&lt;a href=" in page or "\\u0026lt;a href=" in page


# --- dashboard ---------------------------------------------------------------------------


def test_dashboard_is_read_only_unless_asked() -> None:
    from nas.commands.dashboard import is_loopback, read_only

    calls: list[str] = []

    def app(environ: dict, start: Callable) -> list[bytes]:
        calls.append(environ["REQUEST_METHOD"])
        start("200 OK", [])
        return [b"ok"]

    statuses: list[str] = []
    wrapped = read_only(app)
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"):
        wrapped({"REQUEST_METHOD": method}, lambda s, h: statuses.append(s))
    assert calls == ["GET", "HEAD"]
    assert statuses[:2] == ["200 OK"] * 2 and all(s.startswith("403") for s in statuses[2:])
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


# --- huge counts stay accepted, with their cost visible ----------------------------------


def test_progress_line_projects_what_is_left() -> None:
    import io

    from nas.search import ProgressBar

    _, study = tiny_study()
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    stream = io.StringIO()
    bar = ProgressBar(target=10**12, done=0, stream=stream)
    bar(study, done[0])
    line = stream.getvalue()
    assert f"{10**12 - 1} to go" in line and "years" in line and "kWh projected" in line


def test_huge_epochs_are_accepted_and_their_projection_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, study = tiny_study()
    argv = ["train", "--storage", config.storage_url, "--study", study.study_name, "--trial"]
    assert main([*argv, "0", "--epochs", str(10**20), "--dry-run", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["dry_run"] and summary["epochs"] == 10**20
    assert summary["projected_energy_kwh"] > 1e12
    assert "years (projected from the proxy" in captured.err


# --- property-based: no config value ends in anything but ConfigError ---------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nas.config import SECTIONS  # noqa: E402
from nas.errors import ConfigError  # noqa: E402

_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=4)), max_size=3),
    st.none(),
)
_FIELDS = sorted(
    (name, f.name)
    for name, cls in SECTIONS.items()
    for f in __import__("dataclasses").fields(cls)
    if f.name != "options"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(_FIELDS), value=_VALUES)
def test_any_config_value_is_accepted_or_refused_with_config_error(
    field: tuple[str, str], value: object
) -> None:
    section, key = field
    data = {"study": {"name": "prop"}, section: {key: value}}
    if value is None:
        data[section] = {}
    try:
        cfg = config_from_dict(data)
    except ConfigError as exc:
        assert "\n" not in str(exc).strip() or "\\n" in repr(str(exc))
        return
    # accepted: it must be usable as what it claims to be
    assert cfg.fingerprint()
    json.dumps(cfg.to_dict(), default=str)
    for name in SECTIONS:
        for v in __import__("dataclasses").asdict(getattr(cfg, name)).values():
            if isinstance(v, float):
                assert v == v, (field, value)  # no NaN accepted anywhere
            if isinstance(v, str):
                assert v.isprintable(), (field, value)


VERBS_TAKING_CONFIG = [
    ["search", "{cfg}"],
    ["worker", "{cfg}", "--trials", "1"],
    ["train", "{cfg}", "--trial", "0", "--dry-run"],
    ["ablate", "{cfg}"],
    ["pareto", "{cfg}"],
    ["report", "{cfg}", "--out", "r.html"],
    ["export", "{cfg}", "--trial", "0", "--out", "e"],
    ["dashboard", "{cfg}", "--port", "1"],
]


@pytest.mark.parametrize("argv", VERBS_TAKING_CONFIG, ids=lambda a: a[0])
@pytest.mark.parametrize(
    "body",
    [
        "[train]\nweight_decay = nan\n",
        '[study]\nname = ".."\n',
        "[study]\nseed = -1\n",
        "[eval]\ninference_batch_size = 1000000000000\n",
        "[nope]\nx = 1\n",
        "[study\n",
    ],
    ids=["nan", "dotdot", "seed", "batch", "section", "toml"],
)
def test_every_verb_refuses_a_bad_config_before_any_work(
    argv: list[str],
    body: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _one_line_exit_2(capsys, [a.format(cfg=cfg) for a in argv])
    assert list(work.iterdir()) == []


def test_carbon_source_is_not_part_of_what_a_trial_means(tmp_path: Path) -> None:
    base = config_from_dict(tiny_config_dict(tmp_path, "fp"))
    assert base.fingerprint() == base.replace("carbon", region="POL").fingerprint()
    assert base.fingerprint() != base.replace("hardware", meter="rapl").fingerprint()


def test_a_stale_fingerprint_rule_does_not_lock_a_study(tmp_path: Path) -> None:
    """A study whose stored fingerprint came from another version's rules resumes when its
    stored config says nothing really differs; a real difference is still refused."""
    from nas.errors import ConfigError
    from nas.study import FINGERPRINT_ATTR, open_study

    cfg = config_from_dict(tiny_config_dict(tmp_path, "stale"))
    study = open_study(cfg)
    study.set_user_attr(FINGERPRINT_ATTR, "0123456789abcdef")  # an older rule's hash
    assert open_study(cfg).study_name == "stale"
    with pytest.raises(ConfigError, match=r"differs in train\.epochs"):
        open_study(cfg.replace("train", epochs=3))


def test_sigterm_during_an_export_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 26 item 5: SIGTERM is handled as Ctrl-C by export: exit 143, one line, no
    staging folder and no output left behind."""
    import os
    import signal

    import nas.export._trial

    url, artifacts, name = _copy(tmp_path)
    trial = _front_trial(url, name).number
    real = nas.export._trial.publish

    def terminated_publish(tmp: Path, out: Path) -> None:
        assert any(tmp.iterdir())  # killed with the export written, before it is moved
        os.kill(os.getpid(), signal.SIGTERM)
        real(tmp, out)

    monkeypatch.setattr(nas.export._trial, "publish", terminated_publish)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "exports" / "e"
    argv = _export(url, name, trial, out, "--format", "state_dict", "--artifacts", str(artifacts))
    assert main(argv) == 143
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "econas: terminated (SIGTERM)", err
    assert "Traceback" not in err
    assert list((tmp_path / "exports").iterdir()) == []  # no .e.*.partial, no e
    assert signal.getsignal(signal.SIGTERM) == before  # the handler went with the verb
