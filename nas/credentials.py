"""Credentials inside URLs, and keeping them out of every message econas prints or stores.

Three forms are recognised wherever a URL is given (a storage, an MLflow tracking URI, a live
carbon provider's base URL): the password of ``scheme://user:password@host``, the value of a
secret query parameter (``password=``, ``sslpassword=``, ``token=``, ``api_key=``, anything
whose name holds ``pass``, ``pwd``, ``secret``, ``token``, ``key``, ``auth`` or
``credential``), and the tokens the live carbon providers read from the environment.

:func:`remember` records the credentials of a URL for the whole process; :func:`scrub`
masks every remembered credential in a text, plus any credential-shaped part of a URL or a
``password=...`` pair it finds there, so a driver's or a library's own message (which may
quote the URL it was given, or a fragment of it) is safe to print. The CLI passes everything
it writes to stdout and stderr through :func:`scrub`, and trial attrs are scrubbed before
they are stored. Importing this module is cheap (no SQLAlchemy).
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, unquote

MASK = "***"
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "signature")
# Environment variables holding credentials that econas or the libraries it calls read.
SECRET_ENV = (
    "ELECTRICITYMAPS_TOKEN",
    "WATTTIME_PASSWORD",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "PGPASSWORD",
)
MIN_SECRET_LEN = 4  # a shorter remembered string is masked only where it sits in a URL

_lock = threading.Lock()
_known: set[str] = set()

_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_%]*)(:\d{1,5})?(,[^/?#]*)?")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_PAIR = re.compile(
    r"(?i)(?<![\w.\-])((?:ssl)?password|passwd|pwd|secret|client_secret|token|access_token|"
    r"auth_token|api[_-]?key|apikey|x-api-key)(\s*=\s*)(\"[^\"]*\"|'[^']*'|[^\s&;,'\"]*[^\s&;,'\":.)\]}])"
)
_HEADER = re.compile(
    r"(?i)\b(authorization|auth-token)(['\"]?\s*[:=]\s*['\"]?)((?:basic|bearer) )?([^\s'\",}]+)"
)


def is_secret_key(key: str) -> bool:
    """Whether a query parameter named ``key`` holds a credential."""
    return any(word in key.lower() for word in _SECRET_WORDS)


def userinfo_end(rest: str) -> int | None:
    """Index of the ``@`` that ends the userinfo of ``rest`` (the URL after ``://``), or None.

    RFC 3986 wants ``@`` and ``/`` in a password percent-encoded, but users paste raw ones;
    the separator is the rightmost ``@`` followed by something shaped like ``host[:port]``
    and then the end, ``/``, ``?`` or ``#`` (the way libpq reads a raw password)."""
    for pos in [i for i, c in enumerate(rest) if c == "@"][::-1]:
        if _HOST.fullmatch(_authority(rest[pos + 1 :])):
            return pos
    return None


def _split(url: str) -> tuple[str, str, str, str] | None:
    """(scheme, userinfo, host..., query) of ``url``; None when it has no ``://``."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return None
    at = userinfo_end(rest)
    if at is None:  # no host-shaped tail (a bad port, a broken IPv6 literal): last plain '@'
        at = next(
            (
                i
                for i in range(len(rest) - 1, -1, -1)
                if rest[i] == "@" and re.fullmatch(r"[^\s/?#@]+", _authority(rest[i + 1 :]))
            ),
            None,
        )
    userinfo, after = (rest[:at], rest[at + 1 :]) if at is not None else ("", rest)
    _, _, query = after.partition("?")
    return scheme, userinfo, after, query.partition("#")[0]


def _authority(tail: str) -> str:
    cut = [i for i in (tail.find("/"), tail.find("?"), tail.find("#")) if i >= 0]
    return tail[: min(cut, default=len(tail))]


def _forms(secret: str) -> set[str]:
    """A secret as it may appear in a text: raw, decoded and percent-encoded."""
    raw = {secret, unquote(secret)}
    return raw | {quote(s, safe="") for s in raw} | {quote(s) for s in raw}


def secrets_in_url(url: str) -> list[str]:
    """The credential strings inside ``url`` (its password, secret query values), in every
    form they may be printed in, longest first."""
    parts = _split(url)
    if parts is None:
        return []
    _, userinfo, _, query = parts
    found: set[str] = set()
    user, colon, password = userinfo.partition(":")
    if colon and password:
        found |= _forms(password)
        pair = f"{unquote(user)}:{unquote(password)}".encode()
        found.add(base64.b64encode(pair).decode("ascii"))  # as an Authorization header has it
    for pair in re.split(r"[&;]", query):
        key, eq, value = pair.partition("=")
        if eq and value and is_secret_key(unquote(key)):
            found |= _forms(value)
    return sorted((s for s in found if s), key=len, reverse=True)


def remember(*urls: str | None) -> None:
    """Record the credentials of each URL, so that :func:`scrub` masks them from now on."""
    with _lock:
        for url in urls:
            if url and "://" in url:
                _known.update(secrets_in_url(url))


def remember_secret(*secrets: str | None) -> None:
    """Record plain credential strings (an API token read from the environment)."""
    with _lock:
        for secret in secrets:
            if secret:
                _known.update(_forms(secret))


def remember_environment() -> None:
    """Record the credentials held in :data:`SECRET_ENV` variables."""
    remember_secret(*(os.environ.get(name) for name in SECRET_ENV))


def remember_strings(values: Iterable[object]) -> None:
    """Record the credentials of every URL among ``values`` (argv, a config's strings)."""
    for value in values:
        if isinstance(value, str) and "://" in value:
            start = value.find("=", 0, value.find("://"))  # --storage=URL
            remember(value[start + 1 :] if start >= 0 else value)


def _mask_url(match: re.Match[str]) -> str:
    url = match.group(0)
    trail = len(url) - len(url.rstrip(".,:;)]}"))  # the sentence's punctuation, not the URL's
    if trail:
        return _mask_url_text(url[:-trail]) + url[-trail:]
    return _mask_url_text(url)


def _mask_url_text(url: str) -> str:
    parts = _split(url)
    if parts is None:  # pragma: no cover - the pattern holds ://
        return url
    scheme, userinfo, after, _ = parts
    user, colon, password = userinfo.partition(":")
    if colon and password:
        userinfo = f"{user}:{MASK}"
    head, q, query = after.partition("?")
    if q:
        pairs = []
        for pair in re.split(r"([&;])", query):
            key, eq, value = pair.partition("=")
            pairs.append(f"{key}={MASK}" if eq and value and is_secret_key(unquote(key)) else pair)
        after = f"{head}?{''.join(pairs)}"
    return f"{scheme}://{userinfo}@{after}" if userinfo else f"{scheme}://{after}"


def scrub(text: object) -> str:
    """``text`` with every remembered credential masked, and every credential-shaped part
    (a URL's password or secret query values, ``password=...``, an ``Authorization`` header)
    masked too."""
    out = str(text)
    with _lock:
        known = sorted((s for s in _known if len(s) >= MIN_SECRET_LEN), key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    if "://" in out:
        out = _URL.sub(_mask_url, out)
    if "=" in out or ":" in out:
        out = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)
        out = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{MASK}", out)
    return out


def forget_all() -> None:
    """Forget every remembered credential (tests)."""
    with _lock:
        _known.clear()
