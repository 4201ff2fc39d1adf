"""Static PNG/SVG of the eco-performance curve via kaleido, which drives a Chromium."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from nas.errors import BadInputError, EconasError

log = logging.getLogger(__name__)

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


class NoBrowserError(EconasError):
    """No Chromium for kaleido: the report is HTML only."""


def find_chromium() -> str | None:
    """``$BROWSER_PATH`` (choreographer's own override) or a Chromium on ``PATH``."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).is_file():
        return env
    return next((p for n in BROWSER_NAMES if (p := shutil.which(n))), None)


def write_static(fig: Any, path: str | Path, *, width: int = 1000, height: int = 560) -> Path:
    """Write ``fig`` as PNG or SVG (by suffix); NoBrowserError where no Chromium is found."""
    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise BadInputError(f"static export is .png or .svg, not {out.name!r}")
    browser = find_chromium()
    if browser is None:
        raise NoBrowserError(
            "no Chromium found (set BROWSER_PATH or install chromium): wrote the HTML only"
        )
    os.environ.setdefault("BROWSER_PATH", browser)  # kaleido 1.x starts it via choreographer
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.write_image(str(out), format=fmt, width=width, height=height)
    except Exception as exc:  # kaleido/choreographer raise many types
        raise NoBrowserError(f"kaleido could not render with {browser}: {exc}") from exc
    return out
