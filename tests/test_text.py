"""nas.text: counts agree with their nouns ("after 1 epochs" read badly)."""

from __future__ import annotations

from nas.text import plural


def test_plural() -> None:
    assert plural(1, "epoch") == "1 epoch"
    assert plural(2, "epoch") == "2 epochs"
    assert plural(0, "trial") == "0 trials"
    assert plural(1.5, "hour") == "1.5 hours"
    assert plural(3, "index", "indices") == "3 indices"
