"""Reading, validating and looking up tables; the front, hypervolume and oracle by hand."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from nas.errors import BadInputError
from nas.hypervolume import hypervolume_2d, improvement
from nas.tabular import (
    TableError,
    bundled_table,
    bundled_tables,
    exact_front,
    hypervolume_fraction,
    load_table,
    oracle,
    reference_point,
)


def test_lookup_gives_the_next_recorded_epoch_at_or_above(make_table) -> None:
    t = load_table(make_table())
    hit = t.lookup("A", epochs=2, repeat=1)
    assert (hit.epochs, hit.requested_epochs) == (3, 2)
    assert hit.val_accuracy == pytest.approx(0.4) and hit.energy_kwh == pytest.approx(0.9)
    first = t.lookup("A", epochs=0, repeat=2)
    assert first.epochs == 1 and first.energy_kwh == pytest.approx(1.1 / 3)
    assert t.lookup("A", epochs=1, repeat=2).epochs == 1
    with pytest.raises(ValueError, match="epochs"):
        t.lookup("A", epochs=4, repeat=1)
    with pytest.raises(KeyError):
        t.lookup("A", epochs=1, repeat=9)
    assert t.epochs("B", 1) == (1, 3) and t.repeats("B") == (1, 2) and t.params("C") == 30


def test_isomorphic_encodings_name_one_arch_and_unlisted_ones_none(make_table) -> None:
    t = load_table(make_table())
    assert t.arch_of({"x": 0, "op": "a"}) == t.arch_of({"x": 1, "op": "a"}) == "A"
    assert t.arch_of({"x": "1", "op": "a"}) == "A"  # values compared as text
    assert t.arch_of({"x": 2, "op": "b"}) is None  # an invalid cell
    assert t.arch_of({"x": 0}) is None  # a parameter missing
    assert t.choices == {"x": (0, 1, 2), "op": ("a", "b", "c")}
    assert sorted(e["x"] for e in t.encodings_of("A")) == [0, 1]
    assert t.n_encodings == 7 and len(t.archs) == 6


def test_repeat_for_is_deterministic_and_covers_the_repeats(make_table) -> None:
    t = load_table(make_table())
    assert t.repeat_for("A", 3) == t.repeat_for("A", 3)
    assert {t.repeat_for("A", s) for s in range(40)} == {1, 2}


def test_front_hypervolume_and_reference_by_hand(make_table) -> None:
    t = load_table(make_table())
    assert reference_point(t) == pytest.approx((0.2, 5.0))
    f = exact_front(t)
    assert f.archs == ("E", "A", "B", "D")
    assert f.hypervolume == pytest.approx(2.0)
    assert hypervolume_fraction(t, ["B"], f) == pytest.approx(0.75)
    assert hypervolume_fraction(t, ["A", "B", "C", "F"], f) == pytest.approx(0.9)
    assert hypervolume_fraction(t, t.archs, f) == pytest.approx(1.0)


def test_oracle_is_the_cheapest_set_reaching_the_fraction(make_table) -> None:
    t = load_table(make_table())
    assert oracle(t, 0.75).archs == ("B",) and oracle(t, 0.75).energy_kwh == pytest.approx(2.0)
    o = oracle(t, 0.8)  # {A, B}: 90% for 3 kWh beats {A, D}: 80% for 5 kWh
    assert o.archs == ("A", "B") and o.energy_kwh == pytest.approx(3.0)
    assert o.hypervolume_fraction == pytest.approx(0.9)
    assert oracle(t, 0.95).archs == ("A", "B", "D") and oracle(t, 1.0).energy_kwh == 7.0
    with pytest.raises(ValueError):
        oracle(t, 0.0)


def test_hypervolume_and_improvement_helpers() -> None:
    pts = [(0.5, 1.0), (0.7, 2.0), (0.6, 3.0)]
    ref = (0.2, 5.0)
    assert hypervolume_2d(pts, ref) == pytest.approx(0.3 * 1 + 0.5 * 3)
    new = (0.9, 4.0)
    gained = hypervolume_2d([*pts, new], ref) - hypervolume_2d(pts, ref)
    assert improvement(pts, ref, new) == pytest.approx(gained) == pytest.approx(0.2)
    assert improvement(pts, ref, (0.6, 2.5)) == 0.0  # dominated
    assert improvement(pts, ref, (0.9, 5.0)) == 0.0  # at the reference energy
    assert improvement([], ref, (0.3, 1.0)) == pytest.approx(0.1 * 4)


def test_the_bundled_table_loads_with_its_attribution() -> None:
    assert "ecnas-4v" in bundled_tables()
    t = bundled_table("ecnas-4v")
    assert (len(t.archs), t.n_encodings, t.max_epochs) == (91, 423, 4)
    assert t.energy_kind == "measured" and "RTX 6000" in t.hardware
    assert "MIT" in (bundled_tables()["ecnas-4v"] / "SOURCE.md").read_text()
    assert len(exact_front(t).archs) == 4
    with pytest.raises(TableError, match="no bundled table"):
        bundled_table("nope")


def _gz_text(path: Path, text: str) -> None:
    path.write_bytes(gzip.compress(text.encode()))


@pytest.mark.parametrize(
    ("breakage", "file", "message"),
    [
        (lambda d: (d / "meta.json").unlink(), "meta.json", "missing"),
        (lambda d: (d / "meta.json").write_text("{"), "meta.json", "not readable JSON"),
        (lambda d: (d / "meta.json").write_text("[]"), "meta.json", "JSON object"),
        (lambda d: _meta(d, max_epochs=0), "meta.json", "max_epochs"),
        (lambda d: _meta(d, energy_kind="guessed"), "meta.json", "energy_kind"),
        (lambda d: _meta(d, objective="loss"), "meta.json", "objective"),
        (lambda d: _meta(d, name="../x"), "meta.json", "name"),
        (lambda d: _meta(d, drop="hardware"), "meta.json", "missing key"),
        (lambda d: (d / "archs.csv.gz").write_bytes(b"plain"), "archs.csv.gz", "gzip"),
        (lambda d: (d / "results.csv.gz").unlink(), "results.csv.gz", "missing"),
        (lambda d: _gz_text(d / "archs.csv.gz", ""), "archs.csv.gz", "empty"),
        (lambda d: _gz_text(d / "archs.csv.gz", "id,x\nA,0\n"), "archs.csv.gz", "'arch'"),
        (lambda d: _gz_text(d / "archs.csv.gz", "arch\nA\n"), "archs.csv.gz", "parameter"),
        (
            lambda d: _gz_text(d / "archs.csv.gz", "arch,x,op\nA,0,a\nB,0,a\n"),
            "archs.csv.gz",
            "line 3: the encoding of line 2 again",
        ),
        (lambda d: _gz_text(d / "archs.csv.gz", "arch,x,op\nA,0\n"), "archs.csv.gz", "2 fields"),
        (
            lambda d: _results(d, lambda r: r[0] == "B" and r[2] == 3, energy="x"),
            "results.csv.gz",
            "energy_kwh 'x' is not a number",
        ),
        (
            lambda d: _results(d, lambda r: r[0] == "B" and r[2] == 3, energy="nan"),
            "results.csv.gz",
            "finite",
        ),
        (
            lambda d: _results(d, lambda r: r[0] == "B" and r[2] == 3, energy="0.1"),
            "results.csv.gz",
            "must not decrease",
        ),
        (
            lambda d: _results(d, lambda r: r[0] == "B" and r[2] == 3, acc="1.5"),
            "results.csv.gz",
            "fractions",
        ),
        (lambda d: _results(d, lambda r: r[0] == "B", arch="Z"), "results.csv.gz", "not listed"),
        (
            lambda d: _results(d, lambda r: r[0] == "C", drop=True),
            "archs.csv.gz",
            "'C' has no rows",
        ),
        (
            lambda d: _results(d, lambda r: r[0] == "D" and r[2] == 3, drop=True),
            "results.csv.gz",
            "not at max_epochs",
        ),
        (
            lambda d: _results(d, lambda r: r[0] == "D" and r[2] == 3, params="7"),
            "results.csv.gz",
            "two different params",
        ),
    ],
)
def test_a_malformed_table_raises_one_error_naming_the_file(
    make_table, breakage, file: str, message: str
) -> None:
    d = make_table()
    breakage(d)
    with pytest.raises(TableError) as err:
        load_table(d)
    text = str(err.value)
    assert isinstance(err.value, BadInputError)  # the CLI's exit 2
    assert str(d / file) in text and message in text and "\n" not in text


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="not a directory"):
        load_table(tmp_path / "nope")


def _meta(d: Path, drop: str | None = None, **changes: object) -> None:
    meta = json.loads((d / "meta.json").read_text()) | changes
    if drop:
        del meta[drop]
    (d / "meta.json").write_text(json.dumps(meta))


def _results(
    d: Path, which, *, drop: bool = False, energy=None, acc=None, arch=None, params=None
) -> None:  # noqa: E501
    lines = gzip.decompress((d / "results.csv.gz").read_bytes()).decode().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        f = line.split(",")
        row = [f[0], int(f[1]), int(f[2])]
        if which(row):
            if drop:
                continue
            if energy is not None:
                f[5] = energy
            if acc is not None:
                f[3] = acc
            if arch is not None:
                f[0] = arch
            if params is not None:
                f[7] = params
        out.append(",".join(f))
    _gz_text(d / "results.csv.gz", "\n".join(out) + "\n")
