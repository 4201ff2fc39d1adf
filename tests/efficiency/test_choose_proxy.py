"""``screen = "auto"``: which proxy screens a family (params unless another clearly beats it)."""

from __future__ import annotations

import torch
from torch import nn

from nas.efficiency.proxies import SWITCH_MIN_TRIALS, choose_proxy, params


def _scores(n: int, good: str) -> tuple[dict[str, list[float]], list[float]]:
    acc = [i / n for i in range(n)]
    noise = [((i * 7) % n) / n for i in range(n)]  # unrelated to accuracy
    scores = {name: list(noise) for name in ("synflow", "naswot", "grad_norm", "params")}
    scores[good] = list(acc)
    return scores, acc


def test_params_screens_until_enough_trials() -> None:
    scores, acc = _scores(SWITCH_MIN_TRIALS - 1, good="naswot")
    assert choose_proxy(scores, acc, min_trials=4) == ("params", {})


def test_a_proxy_replaces_params_only_when_it_clearly_beats_it() -> None:
    scores, acc = _scores(20, good="naswot")
    name, rhos = choose_proxy(scores, acc, min_trials=4)
    assert name == "naswot" and rhos["naswot"] > rhos["params"] + 0.1
    scores["params"] = [a + 0.001 * (i % 2) for i, a in enumerate(acc)]  # params nearly as good
    assert choose_proxy(scores, acc, min_trials=4)[0] == "params"


def test_no_screening_when_nothing_correlates() -> None:
    n = 20
    acc = [i / n for i in range(n)]
    anti = [-a for a in acc]
    scores = {name: anti for name in ("synflow", "naswot", "grad_norm", "params")}
    assert choose_proxy(scores, acc, min_trials=4)[0] is None


def test_params_proxy_is_the_log_parameter_count() -> None:
    model = nn.Linear(3, 2)  # 8 parameters
    x = torch.zeros(1, 3)
    assert (
        abs(params(model, x, torch.zeros(1, dtype=torch.long)) - torch.log(torch.tensor(8.0)))
        < 1e-6
    )
