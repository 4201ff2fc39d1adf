"""No credential reaches a terminal (issue 26, items 1-2): every message that can hold a
driver's, a library's or a server's text passes one redaction, for each credential form on
each verb.

The forms: ``user:password@`` in a URL (a raw ``@`` in the password too), ``password=`` and
``sslpassword=`` query parameters, tokens and keys in query strings, a carbon provider's base
URL with credentials, and a provider's token in the environment. The library errors: an
unreachable or refusing PostgreSQL, a URL SQLAlchemy cannot parse, an MLflow server that is
down or echoes the request back, a carbon provider that echoes the request into its reply.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from nas import credentials
from nas.cli import main
from nas.credentials import scrub
from nas.study import connect_url, redact_url
from tests.tiny_npz import tiny_toml

ROOT = Path(__file__).resolve().parents[1]
# Each secret is split in two fragments, neither of which may be printed.
PW = ("Zq7pw", "r3tpwX")  # joined with "@": a raw '@' in a password
TOKEN = ("TkA9", "tokZZ")


def _secret(parts: tuple[str, str], sep: str = "") -> str:
    return sep.join(parts)


# storage URL forms: (id, url); "{port}" is a closed port
STORAGE_FORMS = {
    "userinfo": f"postgresql+psycopg://econas:{_secret(PW)}@127.0.0.1:1/db",
    "raw-at": f"postgresql+psycopg://econas:{_secret(PW, '@')}@127.0.0.1:1/db",
    "password-param": f"postgresql+psycopg://econas@127.0.0.1:1/db?password={_secret(PW)}",
    "sslpassword": (
        f"postgresql+psycopg://econas@127.0.0.1:1/db?sslmode=require&sslpassword={_secret(PW)}"
    ),
    "bad-port": f"postgresql+psycopg://econas:{_secret(PW)}@127.0.0.1:abc/db",
    "bad-option": f"postgresql+psycopg://econas@127.0.0.1:1/db?bogus=1&password={_secret(PW)}",
    "no-driver": f"mysql+nosuchdriver://econas:{_secret(PW, '@')}@127.0.0.1/db",
}


def _leaks(text: str) -> list[str]:
    return [f for f in (*PW, *TOKEN) if f in text]


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    credentials.forget_all()
    yield
    credentials.forget_all()


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tiny_toml(tmp_path / "tiny")


class _Echo(BaseHTTPRequestHandler):
    """A hostile or careless server: its refusal quotes the request, headers included."""

    def log_message(self, *args: object) -> None:
        return None

    def _echo(self) -> None:
        said = (
            f"denied {self.path} Authorization: {self.headers.get('Authorization')} "
            f"auth-token={self.headers.get('auth-token')}"
        )
        body = said.encode()
        self.send_response(401, said)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo  # noqa: N815 - http.server's names


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _run(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, argv: list[str]):
    with caplog.at_level(logging.INFO):
        code = main(argv)
    out, err = capsys.readouterr()
    text = out + err + caplog.text
    assert not _leaks(text), text
    assert "Traceback" not in err, err
    return code, out, err


# --- the parts --------------------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(STORAGE_FORMS))
def test_every_url_form_is_masked_wherever_it_is_quoted(form: str) -> None:
    url = STORAGE_FORMS[form]
    assert not _leaks(redact_url(url)), redact_url(url)
    assert not _leaks(scrub(f"driver says: cannot use {url}; retrying")), form
    credentials.remember(url)  # then the password alone, as a driver may quote it
    password = _secret(PW, "@") if "@" in url.partition("@")[2] else _secret(PW)
    for quoted in (password, password.replace("@", "%40")):
        assert not _leaks(scrub(f"authentication failed for password {quoted!r}")), quoted


def test_masked_and_connected_urls_read_one_password_and_one_host() -> None:
    """Item 2: SQLAlchemy alone ends the password at its first '@' and connects to host
    'r3tpwX@127.0.0.1'; econas connects with the reading that it masks."""
    from sqlalchemy.engine import make_url

    url = STORAGE_FORMS["raw-at"]
    parsed = make_url(connect_url(url))
    assert parsed.password == _secret(PW, "@") and parsed.host == "127.0.0.1"
    assert redact_url(url) == "postgresql+psycopg://econas:***@127.0.0.1:1/db"
    plain = "postgresql+psycopg://econas:pw@db:5432/x?sslmode=require"
    assert connect_url(plain) == plain  # nothing to encode: passed as given


def test_scrub_masks_credential_shapes_it_was_not_told_about() -> None:
    text = (
        "GET http://bob:hunter22@h:9/api?x=1&api_key=K3yK3y&token=T0kT0k failed; "
        "password=Pa55word sslpassword='Pa55w0rd2' Authorization: Basic YWxhZGRpbjpvcGVu "
        "auth-token=abc123def"
    )
    clean = scrub(text)
    for secret in ("hunter22", "K3yK3y", "T0kT0k", "Pa55word", "Pa55w0rd2", "YWxhZGRp", "abc123"):
        assert secret not in clean, clean
    assert "http://bob:***@h:9/api?x=1&api_key=***&token=***" in clean
    assert scrub("sort_keys=True, key count 3, monkey=1") == "sort_keys=True, key count 3, monkey=1"


def test_basic_auth_form_of_a_remembered_password_is_masked() -> None:
    import base64

    credentials.remember(f"http://bob:{_secret(TOKEN)}@mlflow.example/")
    header = base64.b64encode(f"bob:{_secret(TOKEN)}".encode()).decode()
    assert header not in scrub(f"server said: {header}")


def test_a_credential_in_a_trial_attr_is_masked_before_it_is_stored(tmp_path: Path) -> None:
    import optuna

    from nas.record._store import store_attrs

    url = STORAGE_FORMS["userinfo"]
    credentials.remember(url)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = study.ask()
    store_attrs(trial, {"fail_message": f"OperationalError: cannot reach {url}", "n": 1})
    stored = optuna.load_study(study_name=study.study_name, storage=study._storage)
    assert not _leaks(str(stored.trials[0].user_attrs)), stored.trials[0].user_attrs


def test_an_unexpected_failure_traceback_is_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.commands.pareto as pareto

    url = STORAGE_FORMS["raw-at"]

    def boom(args: object) -> int:
        raise RuntimeError(f"driver could not use {url} (password {_secret(PW, '@')})")

    monkeypatch.setattr(pareto, "run", boom)
    assert main(["pareto", "--storage", url]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err and not _leaks(err), err


# --- each verb --------------------------------------------------------------------------------

STORAGE_VERBS = {
    "search": ["search", "{cfg}", "--storage", "{url}"],
    "worker": ["worker", "{cfg}", "--storage", "{url}", "--trials", "1"],
    "pareto": ["pareto", "--storage", "{url}"],
    "report": ["report", "--storage", "{url}", "--out", "r.html"],
    "export": ["export", "--storage", "{url}", "--trial", "0", "--out", "e"],
    "dashboard": ["dashboard", "--storage", "{url}", "--port", "1"],
    "train": ["train", "--storage", "{url}", "--study", "t", "--trial", "0", "--dry-run"],
}


@pytest.mark.parametrize("form", sorted(STORAGE_FORMS))
@pytest.mark.parametrize("verb", sorted(STORAGE_VERBS))
def test_storage_credentials_never_printed(
    verb: str,
    form: str,
    tiny: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    argv = [a.format(cfg=tiny, url=STORAGE_FORMS[form]) for a in STORAGE_VERBS[verb]]
    code, _, err = _run(capsys, caplog, argv)
    assert code == 2, err
    assert "***" in err, err  # the URL is named, masked
    assert not (tiny.parent / "runs").exists()


@pytest.mark.parametrize(
    "uri",
    [
        f"http://bob:{_secret(TOKEN)}@{{server}}/",
        f"http://{{server}}/?token={_secret(TOKEN)}",
        f"http://{{server}}/mlflow?x=1&api_key={_secret(TOKEN)}",
    ],
    ids=["userinfo", "token", "api_key"],
)
@pytest.mark.parametrize("server", ["refused", "echo"])
@pytest.mark.parametrize("verb", ["search", "worker"])
def test_mlflow_credentials_never_printed(
    verb: str,
    server: str,
    uri: str,
    tiny: Path,
    echo: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 1: MLflow's own error text quotes the request URL with its credentials."""
    where = echo if server == "echo" else "127.0.0.1:9"
    argv = [verb, str(tiny), "--mlflow", uri.format(server=where)]
    code, _, err = _run(capsys, caplog, [*argv, "--trials", "1"] if verb == "worker" else argv)
    assert code == 2 and "cannot reach MLflow" in err, err


CARBON = f"http://carbon:{_secret(PW)}@{{server}}/v3?api_key={_secret(TOKEN)}"
SOURCE = ["--carbon-source", "{source}", "--carbon-base-url", "{base}"]
CARBON_VERBS = {
    "search": ["search", "{cfg}", *SOURCE, "--dataset", "npz:missing.npz"],
    "worker": ["worker", "{cfg}", "--trials", "1", *SOURCE, "--dataset", "npz:missing.npz"],
    "measure": ["measure", *SOURCE, "--", sys.executable, "-c", "pass"],
    "schedule": [
        "schedule",
        "plan",
        "--source",
        "{source}",
        "--carbon-base-url",
        "{base}",
        "--job-hours",
        "1",
        "--window-hours",
        "2",
    ],
}


@pytest.mark.parametrize("source", ["live:electricitymaps:DE", "live:uk-carbon-intensity"])
@pytest.mark.parametrize("verb", sorted(CARBON_VERBS))
def test_carbon_provider_credentials_never_printed(
    verb: str,
    source: str,
    tiny: Path,
    echo: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A provider's base URL with credentials, its token in the environment, and a reply
    that quotes the request back: none of it is printed."""
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", _secret(TOKEN, "-"))
    base = CARBON.format(server=echo)
    argv = [a.format(cfg=tiny, source=source, base=base) for a in CARBON_VERBS[verb]]
    code, _, err = _run(capsys, caplog, argv)
    assert code in (0, 2), err


@pytest.mark.parametrize("source", ["live:electricitymaps:DE", "live:uk-carbon-intensity"])
def test_ablate_with_a_live_source_in_its_config_never_prints_its_credentials(
    source: str,
    tiny: Path,
    echo: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", _secret(TOKEN, "-"))
    base = CARBON.format(server=echo)
    text = tiny.read_text().replace(
        '[carbon]\nregion = "FRA"',
        f'[carbon]\nsource = "{source}"\nbase_url = "{base}"\nretries = 0',
    )
    tiny.write_text(text)
    code, _, err = _run(capsys, caplog, ["ablate", str(tiny), "--dataset", "npz:missing.npz"])
    assert code == 2, err


def test_train_with_a_live_source_never_prints_its_credentials(
    tmp_path: Path,
    echo: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.report.tiny_study import tiny_study

    config, study = tiny_study()
    monkeypatch.setenv("ELECTRICITYMAPS_TOKEN", _secret(TOKEN, "-"))
    argv = ["train", "--storage", config.storage_url, "--study", study.study_name, "--trial"]
    source = ["--carbon-source", "live:electricitymaps:DE"]
    base = ["--carbon-base-url", CARBON.format(server=echo)]
    code, _, err = _run(capsys, caplog, [*argv, "0", "--dry-run", *source, *base])
    assert code in (0, 2), err


# --- the real terminal: a child process, as a user runs it ------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["pareto", "--storage", STORAGE_FORMS["raw-at"], "--study", "x"],
        ["search", "{cfg}", "--mlflow", f"http://bob:{_secret(TOKEN)}@127.0.0.1:9/"],
    ],
    ids=["postgres-raw-at", "mlflow-userinfo"],
)
def test_the_terminal_never_sees_a_credential(argv: list[str], tiny: Path) -> None:
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "nas.cli", *[a.format(cfg=tiny) for a in argv]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert not _leaks(proc.stdout + proc.stderr), proc.stderr
    assert len([x for x in proc.stderr.splitlines() if x.startswith("econas: error:")]) == 1
