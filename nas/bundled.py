"""The study configs shipped inside the package (``nas/studies/*.toml``).

The repository's ``studies/`` is a link to the same folder, so a checkout and an installed
wheel have the same files. Wherever a CONFIG is taken, a path that is not a file but names a
bundled study (``quickstart`` or ``quickstart.toml``) loads the bundled one::

    econas search quickstart          # the bundled quickstart, runs under ./runs/
    econas init compression           # ./compression.toml, a documented copy to edit

Relative paths inside a bundled config (an ``npz:`` data set, a trace CSV, a teacher
directory) resolve from the bundled folder, not from the working directory
(:func:`nas.config.load_config` does it). Nothing here imports torch or optuna.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path

from nas.errors import BadInputError, ConfigError

SUFFIX = ".toml"


def studies_dir() -> Path:
    """The folder of the bundled study configs (inside the installed package)."""
    return Path(str(resources.files("nas") / "studies"))


def list_studies() -> list[str]:
    """Names of the bundled study configs, sorted (``["cifar10_cnn", ..., "quickstart"]``)."""
    folder = studies_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob(f"*{SUFFIX}") if p.is_file())


def describe(name: str, *, width: int | None = None) -> str:
    """The first sentence of a bundled config's leading comment: what the study is for
    (whole; cut to at most ``width`` characters only when asked)."""
    words: list[str] = []
    for line in study_path(name).read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text.startswith("#") or not text.lstrip("#").strip():
            break
        words.append(text.lstrip("#").strip())
    blurb = " ".join(words)
    end = blurb.find(". ")
    blurb = blurb if end < 0 else blurb[: end + 1]
    if width is None or len(blurb) <= width:
        return blurb
    return blurb[: width - 3].rsplit(" ", 1)[0] + "..."


def bundled_name(text: str) -> str | None:
    """``quickstart`` / ``quickstart.toml`` -> ``quickstart`` if ``text`` could name a bundled
    study (no folder in it); None when it is a path."""
    if not text or "/" in text or "\\" in text:
        return None
    return text.removesuffix(SUFFIX) or None


def study_path(name: str) -> Path:
    """The file of bundled study ``name``; an unknown name lists the bundled ones."""
    stem = bundled_name(name)
    known = list_studies()
    if stem is None or stem not in known:
        raise BadInputError(f"no bundled study named {name!r}; bundled studies: {', '.join(known)}")
    return studies_dir() / f"{stem}{SUFFIX}"


def resolve_config_path(text: str | Path) -> tuple[Path, bool]:
    """Where the config ``text`` is: ``(path, bundled)``.

    An existing file wins; otherwise a bare name (``quickstart``, ``quickstart.toml``) is a
    bundled study. Anything else is bad input, in one line that lists the bundled studies.
    """
    path = Path(text)
    if path.is_file():
        return path, False
    stem = bundled_name(str(text))
    known = list_studies()
    if stem is not None and stem in known:
        return studies_dir() / f"{stem}{SUFFIX}", True
    hint = f"bundled studies: {', '.join(known)}"
    if stem is not None and not str(text).endswith(SUFFIX):
        raise ConfigError(f"no config file or bundled study named {str(text)!r}; {hint}")
    raise ConfigError(f"config file not found: {text} ({hint})")


_NAME_LINE = re.compile(r'^(\s*name\s*=\s*)"[^"\n]*"', re.MULTILINE)
_TABLE = re.compile(r"^\s*\[[^\]]+\]", re.MULTILINE)


def rename_study(text: str, study_name: str) -> str:
    """``text`` (a study config) with ``[study] name`` set to ``study_name``, comments kept
    (the caller checks the name: :func:`nas.config.check_study_name`)."""
    quoted = json.dumps(study_name, ensure_ascii=False)  # a JSON string is a TOML basic string
    old = tomllib.loads(text).get("study", {}).get("name")
    if isinstance(old, str) and old:  # defaults written in comments: runs/<name>/...
        text = text.replace(f"runs/{old}/", f"runs/{study_name}/")
    head = re.search(r"^\[study\][^\n]*\n", text, re.MULTILINE)
    if head is None:
        return f"[study]\nname = {quoted}\n\n{text}"
    nxt = _TABLE.search(text, head.end())
    end = nxt.start() if nxt else len(text)
    body = text[head.end() : end]
    if _NAME_LINE.search(body):
        body = _NAME_LINE.sub(lambda m: m.group(1) + quoted, body, count=1)
    else:
        body = f"name = {quoted}\n" + body
    return text[: head.end()] + body + text[end:]


def write_study(name: str, out: str | Path, *, study_name: str | None = None) -> Path:
    """Copy bundled study ``name`` to ``out``; an existing file is never overwritten.

    ``study_name`` renames the study in the copy (``econas init --out synth.toml`` writes a
    study named ``synth``, with its own ``runs/synth/``, not the bundled study's)."""
    source = study_path(name)
    target = Path(out)
    text = source.read_text(encoding="utf-8")
    if study_name is not None:
        text = rename_study(text, study_name)
    if target.exists():
        raise BadInputError(f"{target} already exists; not overwritten (choose --out FILE)")
    if not target.parent.is_dir():
        raise BadInputError(f"cannot write {target}: folder {target.parent} does not exist")
    try:
        with target.open("x", encoding="utf-8") as f:  # "x": a file made meanwhile is kept too
            f.write(text)
    except FileExistsError:
        raise BadInputError(
            f"{target} already exists; not overwritten (choose --out FILE)"
        ) from None
    except OSError as exc:
        raise BadInputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
