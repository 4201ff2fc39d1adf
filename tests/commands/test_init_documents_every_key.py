"""`econas init` writes every key econas reads, each set or commented with its default.

The quickstart documents every section's keys itself, [search.cnn]/[search.vit] options
included; the optional feature sections point to the bundled study that documents them
(`econas init compression` ...), and that study must document every key of its section.
A key added to a section (or a search-space option) without documentation fails here.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from pathlib import Path

import pytest

from nas.bundled import studies_dir
from nas.cli import main
from nas.config import SECTIONS
from search_spaces.spec import get_search_space_class

HEAD = re.compile(r"^\s*#?\s*\[([a-z_.]+)\]")
KEY = re.compile(r"^\s*#?\s*([a-z_][a-z0-9_]*)\s*=\s*(.*)$")
# Sections documented in a bundled study of their own: section -> study
ELSEWHERE = {
    "compression": "compression",
    "schedule": "green",
    "lifecycle": "lifecycle",
    "federated": "federated",
}
DEFAULTS_SHOWN = ("search.cnn", "search.vit", "efficiency", "ablate", "train")


def documented(text: str, *, commented_only: bool = False) -> dict[str, dict[str, str]]:
    """section -> {key: the value text as written}, commented lines included (only those
    with ``commented_only``)."""
    out: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        head = HEAD.match(line)
        if head:
            current = head.group(1)
            out.setdefault(current, {})
            continue
        key = KEY.match(line)
        if key and current is not None:
            if commented_only and not line.lstrip().startswith("#"):
                continue
            out[current].setdefault(key.group(1), key.group(2))
    return out


def section_keys(name: str) -> set[str]:
    if name.startswith("search."):
        cls = get_search_space_class(name.split(".", 1)[1])
        return {p for p in inspect.signature(cls.__init__).parameters if p != "self"}
    return {f.name for f in dataclasses.fields(SECTIONS[name])} - {"options"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("init")
    out = folder / "quickstart.toml"
    assert main(["init", "--out", str(out)]) == 0
    return out.read_text()


def test_init_writes_every_key_of_every_section(written: str) -> None:
    doc = documented(written)
    for name in [*SECTIONS, "search.cnn", "search.vit"]:
        if name in ELSEWHERE:
            study = ELSEWHERE[name]
            assert f"[{name}]" in written and f"econas init {study}" in written, name
            elsewhere = documented((studies_dir() / f"{study}.toml").read_text())
            missing = section_keys(name) - set(elsewhere.get(name, {}))
            assert not missing, f"{study}.toml does not document [{name}] {sorted(missing)}"
            continue
        missing = section_keys(name) - set(doc.get(name, {}))
        assert not missing, f"init's quickstart does not document [{name}] {sorted(missing)}"
    for key in ("storage", "timeout_s"):
        assert key in doc["study"]
    assert "resolution" in doc["data"]


def _value(text: str) -> object:
    return tomllib.loads(f"v = {text}")["v"]  # a trailing "# comment" is TOML too


def test_commented_defaults_are_the_defaults(written: str) -> None:
    doc = documented(written, commented_only=True)
    for name in DEFAULTS_SHOWN:
        if name.startswith("search."):
            params = inspect.signature(get_search_space_class(name[7:]).__init__).parameters
            defaults = {k: p.default for k, p in params.items() if k != "self"}
        else:
            defaults = {f.name: _field_default(f) for f in dataclasses.fields(SECTIONS[name])}
        for key, text in doc[name].items():
            got, want = _value(text), defaults[key]
            want = list(want) if isinstance(want, tuple) else want
            assert got == want, f"[{name}] {key}: the file says {got!r}, the default is {want!r}"


def _field_default(f: dataclasses.Field) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def test_the_written_file_loads_as_the_bundled_study(written: str, tmp_path: Path) -> None:
    from nas.config import load_config

    path = tmp_path / "q.toml"
    path.write_text(written)
    assert load_config(path).replace("study", name="quickstart").fingerprint() == (
        load_config("quickstart").fingerprint()
    )
