"""write_table: a valid table after every repeat, and a re-run that trains only what is missing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from nas.tabular import Evaluation, TableError, load_table, write_table

META = {
    "name": "mine",
    "source": "test",
    "licence": "CC0",
    "task": "none",
    "hardware": "this test",
    "energy_kind": "estimated",
    "meter": "estimate",
    "energy_covers": "training",
    "objective": "val_accuracy",
}
ENCODINGS = [
    ("w8", {"width": 8, "act": "relu"}),
    ("w8", {"width": 8, "act": "gelu"}),  # two encodings, one arch: trained once
    ("w16", {"width": 16, "act": "relu"}),
    ("w32", {"width": 32, "act": "relu"}),
]


class Trainer:
    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.fail_after = fail_after

    def __call__(self, enc: Any, repeat: int, epochs: Sequence[int]) -> list[Evaluation]:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt  # the user stops the run
        self.calls.append((enc["width"], repeat))
        w = enc["width"]
        return [
            Evaluation(
                epochs=e,
                val_accuracy=min(1.0, 0.1 * e + w / 100 + 0.01 * repeat),
                test_accuracy=min(1.0, 0.1 * e + w / 100),
                energy_kwh=w * e * 1e-4,
                duration_s=float(w * e),
                params=w * 10,
            )
            for e in epochs
        ]


def test_write_then_load_and_look_up(tmp_path: Path) -> None:
    train = Trainer()
    t = write_table(
        tmp_path / "t", meta=META, encodings=ENCODINGS, train=train, epochs=[2, 1], repeats=2
    )
    assert sorted(train.calls) == [(8, 1), (8, 2), (16, 1), (16, 2), (32, 1), (32, 2)]
    assert t.max_epochs == 2 and t.archs == ("w16", "w32", "w8") and t.n_encodings == 4
    assert t.arch_of({"width": 8, "act": "gelu"}) == "w8"
    hit = t.lookup("w16", epochs=2, repeat=2)
    assert hit.val_accuracy == pytest.approx(0.2 + 0.16 + 0.02)
    assert hit.energy_kwh == pytest.approx(16 * 2e-4) and hit.params == 160


def test_a_rerun_skips_what_is_written_and_resumes_after_a_stop(tmp_path: Path) -> None:
    out = tmp_path / "t"
    stopped = Trainer(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        write_table(out, meta=META, encodings=ENCODINGS, train=stopped, epochs=[1, 2])
    partial = load_table(out)  # valid after every repeat: the one architecture done so far
    assert partial.archs == ("w8",)
    resumed = Trainer()
    t = write_table(out, meta=META, encodings=ENCODINGS, train=resumed, epochs=[1, 2])
    assert sorted(resumed.calls) == [(16, 1), (32, 1)]
    assert len(t.archs) == 3
    again = Trainer()
    write_table(out, meta=META, encodings=ENCODINGS, train=again, epochs=[1, 2])
    assert again.calls == []
    more = Trainer()  # a second repeat asked for: only the new repeats train
    t2 = write_table(out, meta=META, encodings=ENCODINGS, train=more, epochs=[1, 2], repeats=2)
    assert sorted(more.calls) == [(8, 2), (16, 2), (32, 2)] and t2.repeats("w8") == (1, 2)


def test_a_rerun_into_another_table_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "t"
    write_table(out, meta=META, encodings=ENCODINGS[:1], train=Trainer(), epochs=[1, 2])
    with pytest.raises(TableError, match="max_epochs"):
        write_table(out, meta=META, encodings=ENCODINGS, train=Trainer(), epochs=[1, 4])
    with pytest.raises(TableError, match="name"):
        write_table(
            out, meta=META | {"name": "other"}, encodings=ENCODINGS, train=Trainer(), epochs=[1, 2]
        )


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="epochs"):
        write_table(tmp_path / "a", meta=META, encodings=ENCODINGS, train=Trainer(), epochs=[])
    with pytest.raises(TableError, match="parameter names"):
        write_table(
            tmp_path / "b",
            meta=META,
            encodings=[("x", {"a": 1}), ("y", {"b": 1})],
            train=Trainer(),
            epochs=[1],
        )

    def short(enc: Any, repeat: int, epochs: Sequence[int]) -> list[Evaluation]:
        return Trainer()(enc, repeat, epochs)[:1]

    with pytest.raises(TableError, match="returned epochs"):
        write_table(tmp_path / "c", meta=META, encodings=ENCODINGS, train=short, epochs=[1, 2])
