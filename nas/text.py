"""Text that came from a study on its way to a terminal or a Markdown page.

A study in a shared database is untrusted input: an attr value such as
``"estimated\\r\\x1b[2Kmeasured"`` would redraw a terminal line, an OSC sequence in a study
name would set the terminal title, and a newline in a Markdown table cell would break the
table. Everything econas prints or writes into Markdown from storage goes through these.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls; plus the bidi overrides that reorder text.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_ALL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def for_terminal(text: Any, *, keep_newlines: bool = True) -> str:
    """``text`` without control characters (escape sequences, carriage returns, bells...);
    newlines and tabs stay unless ``keep_newlines`` is False."""
    pattern = _CONTROL if keep_newlines else _CONTROL_ALL
    return pattern.sub("", str(text))


def one_line(text: Any) -> str:
    """``text`` on one line: newlines and tabs become spaces, other controls are dropped."""
    return _CONTROL_ALL.sub("", re.sub(r"[\r\n\t]+", " ", str(text)))


def markdown_cell(text: Any) -> str:
    """``text`` as literal Markdown inline text: one line, Markdown/HTML specials escaped."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))
    return escaped.replace("&", "&amp;")


def finite_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinity replaced by None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_json(v) for v in obj]
    return obj


def json_text(obj: Any, *, indent: int | None = 2) -> str:
    """Strict JSON of ``obj``: NaN and infinities as null, other objects as their text."""
    return json.dumps(finite_json(obj), indent=indent, default=str, allow_nan=False)


def human_duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``, ``4.2 days``, ``1.39e+14 years``."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s"


def plural(count: int | float, noun: str, plural_form: str | None = None) -> str:
    """``1 epoch``, ``2 epochs``, ``0 trials``: a count with its noun agreeing."""
    word = noun if count == 1 else (plural_form or noun + "s")
    return f"{count:g} {word}" if isinstance(count, float) else f"{count} {word}"
