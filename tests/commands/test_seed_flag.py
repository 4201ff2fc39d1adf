"""``--seed S`` on search/worker overrides study.seed; a bad one is a config error (exit 2)."""

from __future__ import annotations

import pytest

from nas.cli import build_parser
from nas.commands._common import config_from_args
from nas.errors import ConfigError


@pytest.mark.parametrize("verb", ["search", "worker"])
def test_seed_overrides_the_study_seed(verb: str) -> None:
    args = build_parser().parse_args([verb, "quickstart", "--seed", "7"])
    assert config_from_args(args).study.seed == 7
    plain = build_parser().parse_args([verb, "quickstart"])
    assert config_from_args(plain).study.seed != 7  # the config's own seed otherwise


def test_a_seed_out_of_range_is_a_config_error() -> None:
    args = build_parser().parse_args(["search", "quickstart", "--seed", "-1"])
    with pytest.raises(ConfigError, match="study.seed"):
        config_from_args(args)
