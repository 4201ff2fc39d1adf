from __future__ import annotations

import json

import pytest

from nas.errors import BadInputError
from search_spaces import ArchSpec


def _spec(**config: object) -> ArchSpec:
    cfg = {"patch": 4, "dim": 32, "depth": 1, "heads": 2, "mlp_ratio": 2, "pool": "cls"}
    cfg.update(config)
    return ArchSpec(family="vit", in_channels=1, num_classes=10, image_size=28, config=cfg)


def test_json_and_dict_round_trip_give_equal_spec() -> None:
    spec = ArchSpec(
        family="cnn",
        in_channels=3,
        num_classes=10,
        image_size=32,
        config={"stages": ({"width": 8, "se": True},), "ratio": 1.5, "activation": "relu"},
    )
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert ArchSpec.from_dict(spec.to_dict()) == spec
    assert ArchSpec.from_dict(json.loads(spec.to_json())) == spec
    assert spec.config["stages"] == [{"width": 8, "se": True}]  # tuples normalised to lists


def test_to_json_sorts_keys_and_is_stable() -> None:
    a = _spec()
    b = ArchSpec.from_json(a.to_json())
    assert a.to_json() == b.to_json()
    data = json.loads(a.to_json())
    assert list(data) == sorted(data)
    assert list(data["config"]) == sorted(data["config"])


def test_spec_is_hashable_and_equal_by_value() -> None:
    assert hash(_spec()) == hash(_spec())
    assert _spec() != _spec(dim=64)
    assert len({_spec(), _spec(), _spec(dim=64)}) == 2


def test_spec_is_frozen_and_to_dict_is_a_copy() -> None:
    spec = _spec()
    with pytest.raises(AttributeError):
        spec.family = "cnn"  # type: ignore[misc]
    d = spec.to_dict()
    d["config"]["dim"] = 999
    assert spec.config["dim"] == 32


def test_config_must_be_json() -> None:
    with pytest.raises(TypeError, match="JSON"):
        _spec(dim=object())
    with pytest.raises(TypeError, match="JSON"):
        _spec(mlp_ratio=float("nan"))
    with pytest.raises(TypeError, match="in_channels"):
        ArchSpec(family="vit", in_channels=True, num_classes=10, image_size=28)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"family": "vit"}', "missing keys"),
        (
            '{"family": "vit", "in_channels": 1, "num_classes": 10, "image_size": 28,'
            ' "config": {}, "extra": 1}',
            "unknown keys",
        ),
        (
            '{"family": "vit", "in_channels": "1", "num_classes": 10, "image_size": 28,'
            ' "config": {}}',
            "in_channels",
        ),
        (
            '{"family": "vit", "in_channels": 1, "num_classes": 10, "image_size": 28, "config": 3}',
            "dict",
        ),
    ],
)
def test_from_json_rejects_bad_input_with_bad_input_error(text: str, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        ArchSpec.from_json(text)


def test_encode_dispatches_to_the_family() -> None:
    assert _spec().encode() == "vit|p4_d32_L1_h2_m2|cls"
    with pytest.raises(BadInputError, match="unknown search space"):
        ArchSpec(family="nope", in_channels=1, num_classes=2, image_size=8).encode()
