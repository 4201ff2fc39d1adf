"""Halving on a table: a promoted candidate continues from its checkpoint and pays only the
energy between the epochs (paused + resumed = one training)."""

from __future__ import annotations

from typing import Any

import pytest

from nas.search_strategy import SuccessiveHalving
from nas.tabular import load_table


def test_a_promotion_pays_only_the_epochs_between_checkpoints(make_table) -> None:
    """A study with halving on the tiny table: what each trial spends, by hand."""
    table = load_table(make_table())
    spent: list[float] = []
    sh = SuccessiveHalving(rungs=[1, 3], eta=2)

    def train(arch: str, start: int) -> tuple[float, Any]:
        before = table.lookup(arch, epochs=start, repeat=1).energy_kwh if start else 0.0
        hit = table.lookup(arch, epochs=1 if start == 0 else 3, repeat=1)
        spent.append(hit.energy_kwh - before)
        return hit.energy_kwh, hit

    _, first = train("B", 0)
    assert not sh.report("B", 0, accuracy=first.val_accuracy, energy=first.energy_kwh)
    sh.pause("B", 0, {}, state=first.epochs)
    _, other = train("F", 0)
    sh.report("F", 0, accuracy=other.val_accuracy, energy=other.energy_kwh)
    promo = sh.next_promotion()
    assert promo is not None and promo.key == "B"
    total, hit = train("B", promo.state)
    assert hit.epochs == 3 and spent[-1] == pytest.approx(2.0 - 2.0 / 3)  # 3 minus 1 epoch
    assert spent[0] + spent[-1] == pytest.approx(total)  # paused + resumed = one training
