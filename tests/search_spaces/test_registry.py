from __future__ import annotations

import pytest
from torch import nn

import search_spaces.spec as registry
from nas.errors import BadInputError, InvalidArchError
from search_spaces import (
    ArchSpec,
    SearchSpace,
    build_model,
    create_search_space,
    list_search_spaces,
    register_search_space,
)


def test_list_is_sorted_and_holds_the_families() -> None:
    names = list_search_spaces()
    assert names == sorted(names) and {"cnn", "vit"} <= set(names)


def test_unknown_name_is_bad_input_listing_known_ones() -> None:
    with pytest.raises(
        BadInputError, match=r"unknown search space 'resnet'; known: \[.*'cnn'.*'vit'"
    ):
        create_search_space("resnet")
    with pytest.raises(BadInputError, match="unknown search space 'resnet'"):
        build_model(ArchSpec(family="resnet", in_channels=1, num_classes=2, image_size=8))


def test_create_passes_options_to_the_constructor() -> None:
    space = create_search_space("cnn", max_stages=2, width_choices=[8, 16])
    assert space.max_stages == 2 and space.width_choices == (8, 16)


def test_register_and_build_a_custom_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_search_space("linear")
    class LinearSpace(SearchSpace):
        def sample(self, trial, *, in_channels, num_classes, image_size, prefix=""):  # noqa: ANN001, ANN201
            raise NotImplementedError

        def validate(self, spec: ArchSpec) -> None:
            if spec.config.get("bias") not in (True, False):
                raise InvalidArchError("linear: bias must be a bool")

        def build(self, spec: ArchSpec) -> nn.Module:
            n_in = spec.in_channels * spec.image_size**2
            return nn.Sequential(
                nn.Flatten(), nn.Linear(n_in, spec.num_classes, bias=spec.config["bias"])
            )

        @classmethod
        def encode(cls, spec: ArchSpec) -> str:
            return f"linear|b{int(spec.config['bias'])}"

    assert LinearSpace.name == "linear" and "linear" in list_search_spaces()
    spec = ArchSpec(
        family="linear", in_channels=1, num_classes=2, image_size=4, config={"bias": False}
    )
    assert spec.encode() == "linear|b0"
    assert sum(p.numel() for p in build_model(spec).parameters()) == 32
    with pytest.raises(InvalidArchError, match="bias"):
        build_model(ArchSpec(family="linear", in_channels=1, num_classes=2, image_size=4))
    with pytest.raises(ValueError, match="already registered"):
        register_search_space("cnn")(LinearSpace)
