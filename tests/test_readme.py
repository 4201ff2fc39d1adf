"""Every example in the README's "Quick start", "Commands" and "Python" sections runs.

The fenced ``sh`` examples are run in order, as written, in an empty folder, on a tiny budget:
the ``quickstart.toml`` that ``econas init`` writes is then replaced by a tiny config of the
same name (a file named ``quickstart`` too, which a bare CONFIG name finds before the bundled
study), so the whole walk takes about a minute. The Python example runs as a script there.
Synopses (a line with ``[...]``), the ``### `econas ...``` headings and inline ``econas ...``
spans are checked against ``--help``: every flag they name exists. The examples that need what
a test machine lacks are listed in :data:`NOT_RUN`, each with the test that covers it; a new
example that is neither run nor listed fails here.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from nas.cli import main
from tests.report.tiny_study import TINY_SEARCH

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTIONS = ("## Quick start", "## Commands", "## Python")

NOT_RUN = {
    "make run": "the full-budget quickstart (minutes); its config is what `econas init` writes",
    "make test": "this test suite",
    "pip install -c constraints.txt .": "tests/test_wheel.py installs the wheel in a fresh venv",
    "pip install 'econas[mlflow]'": "needs the package index; mlflow is installed here",
    "export STORAGE='postgresql+psycopg://econas:PASSWORD@db-host:5432/econas'": (
        "a PostgreSQL server: tests/workers/ run workers on a real one"
    ),
    'econas worker studies/quickstart.toml --storage "$STORAGE" --trials 8 --device cuda:0': (
        "a GPU and PostgreSQL: tests/workers/test_workers.py"
    ),
    'econas pareto --storage "$STORAGE" --study quickstart': (
        "PostgreSQL: tests/workers/test_workers.py reads fronts from it"
    ),
}


def _sections() -> str:
    out, keep = [], False
    for line in README.splitlines():
        if line.startswith("## "):
            keep = line.strip() in SECTIONS
        if keep:
            out.append(line)
    return "\n".join(out)


def _blocks(lang: tuple[str, ...]) -> list[str]:
    return re.findall(r"^```(?:" + "|".join(lang) + r")\n(.*?)^```", _sections(), re.M | re.S)


def _words(line: str) -> list[str]:
    return shlex.split(line, comments=True)


def _as_written(line: str) -> str:
    """The command as it appears in the README (comments dropped), for NOT_RUN's keys."""
    lex = shlex.shlex(line, posix=False, punctuation_chars=False)
    lex.whitespace_split, lex.commenters = True, "#"
    return " ".join(lex)


def is_synopsis(line: str) -> bool:
    return any(w.startswith("[") for w in _words(line)) or " | " in line


def test_readme_examples_are_found() -> None:
    lines = [_as_written(raw) for raw in _raw_lines()]
    assert "econas init" in lines and "econas search quickstart.toml" in lines
    assert any(line.startswith("econas schedule plan") for line in lines)
    assert set(NOT_RUN) <= set(lines), set(NOT_RUN) - set(lines)  # no stale entry
    assert len(_blocks(("python",))) == 1


def _raw_lines() -> list[str]:
    out: list[str] = []
    for block in _blocks(("sh",)):
        for raw in block.splitlines():
            if not raw.strip():
                continue
            if raw[:1].isspace() and out:
                out[-1] += " " + raw.strip()
            else:
                out.append(raw)
    return out


# -- synopses and inline commands: every flag exists ------------------------------------------
def _help(verb: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as exit_:
        main([*verb, "--help"])
    assert exit_.value.code == 0, verb
    return buf.getvalue()


def _verb(words: list[str]) -> list[str]:
    verb = [words[1]] if len(words) > 1 else []
    if verb == ["schedule"] and len(words) > 2 and not words[2].startswith("-"):
        verb.append(words[2])
    return verb


def synopses() -> list[str]:
    text = _sections()
    heads = re.findall(r"^###+ .*?`(econas [^`]+)`", text, re.M)
    inline = re.findall(r"`(econas [^`]+)`", text)
    return [*heads, *inline, *(r for r in _raw_lines() if is_synopsis(r))]


@pytest.mark.parametrize("line", sorted(set(synopses())))
def test_every_flag_in_a_synopsis_exists(line: str) -> None:
    words = line.split()
    verb = _verb(words)
    if not verb or verb[0].startswith("-"):  # `econas --version`
        assert "--version" in _help([])
        return
    helptext = _help(verb)
    for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line):
        assert flag in helptext, f"{line}: {flag} is not an option of econas {' '.join(verb)}"


# -- the walk: every runnable example, in order ---------------------------------------------
def _tiny(name: str = "quickstart") -> str:
    search = {k: v for k, v in TINY_SEARCH.items() if k != "spaces"}
    lines = [
        "[study]",
        f'name = "{name}"',
        'sampler = "random"',
        "trials = 4",
        "seed = 2",
        "[search]",
        'spaces = ["cnn", "vit"]',
    ]
    for space, options in search.items():
        lines.append(f"[search.{space}]")
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in options.items()]
    lines += [
        "[data]",
        "train_size = 200",
        "val_size = 100",
        "test_size = 100",
        "batch_size = 50",
        "[train]",
        "epochs = 1",
        "[hardware]",
        'device = "cpu"',
        'meter = "estimate"',
        "[carbon]",
        'region = "FRA"',
        "[eval]",
        "inference_min_duration_s = 0.05",
        "[efficiency]",
        "reuse = false",  # a reused trial has no training to project (`econas train` refuses)
        "[final]",
        "epochs = 1",
        "train_size = 300",
        "test_size = 200",
    ]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)
    return text


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    """Run every runnable sh example in order in one folder; (folder, [(line, output)])."""
    folder = tmp_path_factory.mktemp("readme")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "ECONAS_POWERCAP_ROOT": str(folder / "no-powercap"),  # the estimate, as everywhere here
    }
    ran: list[tuple[str, str]] = []
    for raw in _raw_lines():
        written = _as_written(raw)
        if written in NOT_RUN or is_synopsis(raw):
            continue
        proc = subprocess.run(
            written, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"`{written}` exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        ran.append((written, proc.stdout + proc.stderr))
        if written == "econas init":  # the same study at a tiny budget from here on
            (folder / "quickstart.toml").write_text(_tiny())
            (folder / "quickstart").write_text(_tiny())
    return folder, ran


def test_every_runnable_example_runs(walk) -> None:  # noqa: ANN001
    folder, ran = walk
    runnable = [
        _as_written(r) for r in _raw_lines() if _as_written(r) not in NOT_RUN and not is_synopsis(r)
    ]
    assert [line for line, _ in ran] == runnable
    assert (folder / "runs" / "quickstart" / "study.db").is_file()
    assert (folder / "report.html").is_file() and (folder / "model" / "model.onnx").is_file()


def test_python_example_runs(walk) -> None:  # noqa: ANN001
    folder, _ = walk
    (code,) = _blocks(("python",))
    script = folder / "readme_example.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ECONAS_POWERCAP_ROOT": str(folder / "none")}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (folder / "exported" / "model.onnx").is_file()
