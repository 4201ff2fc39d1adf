"""One contract suite run against every registered search space (as optuna's sampler tests)."""

from __future__ import annotations

import optuna
import pytest
import torch

from nas.errors import ConfigError, InvalidArchError
from search_spaces import (
    ArchSpec,
    SearchSpace,
    build_model,
    create_search_space,
    list_search_spaces,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
FAMILIES = list_search_spaces()
# (in_channels, image_size): Fashion-MNIST-like and CIFAR-like inputs.
SHAPES = [(1, 28), (3, 32)]


def _sample_many(space: SearchSpace, n: int, *, seed: int, in_ch: int, size: int) -> list[ArchSpec]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    specs = []
    for _ in range(n):
        trial = study.ask()
        specs.append(
            space.sample(trial, in_channels=in_ch, num_classes=7, image_size=size, prefix="p.")
        )
        assert trial.params and all(name.startswith("p.") for name in trial.params)
    return specs


def test_both_families_are_registered() -> None:
    assert {"cnn", "vit"} <= set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("in_ch", "size"), SHAPES)
def test_sampled_specs_round_trip_build_and_forward(family: str, in_ch: int, size: int) -> None:
    space = create_search_space(family)
    assert space.name == family
    n_valid = 0
    for seed in (0, 1):
        for spec in _sample_many(space, 6, seed=seed, in_ch=in_ch, size=size):
            assert spec.family == family and spec.image_size == size
            assert ArchSpec.from_json(spec.to_json()) == spec
            assert spec.encode().startswith(f"{family}|")
            try:
                space.validate(spec)
            except InvalidArchError:
                with pytest.raises(InvalidArchError):
                    build_model(spec)
                continue
            n_valid += 1
            model = build_model(ArchSpec.from_json(spec.to_json())).eval()
            with torch.no_grad():
                out = model(torch.randn(2, in_ch, size, size))
            assert out.shape == (2, 7)
            assert torch.isfinite(out).all()
    assert n_valid >= 3


@pytest.mark.parametrize("family", FAMILIES)
def test_build_from_spec_alone_is_deterministic(family: str) -> None:
    space = create_search_space(family)
    specs = [s for s in _sample_many(space, 12, seed=3, in_ch=1, size=28) if _is_valid(space, s)]
    assert specs
    for spec in specs:
        a, b = space.build(spec), build_model(ArchSpec.from_json(spec.to_json()))
        assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
        shapes_a = {k: v.shape for k, v in a.state_dict().items()}
        assert shapes_a == {k: v.shape for k, v in b.state_dict().items()}
        b.load_state_dict(a.state_dict())  # a trial's weights load into the rebuilt model


@pytest.mark.parametrize("family", FAMILIES)
def test_space_shares_a_study_under_its_prefix(family: str) -> None:
    spaces = {name: create_search_space(name) for name in FAMILIES}
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    for name, space in spaces.items():
        space.sample(trial, in_channels=1, num_classes=10, image_size=28, prefix=f"{name}.")
    mine = [p for p in trial.params if p.startswith(f"{family}.")]
    assert mine and len(trial.params) == sum(1 for p in trial.params if p.split(".")[0] in spaces)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "sampler",
    [
        optuna.samplers.TPESampler(seed=0, n_startup_trials=4),
        optuna.samplers.NSGAIISampler(seed=0, population_size=4),
    ],
    ids=["tpe", "nsga2"],
)
def test_model_based_samplers_work_with_the_space(
    family: str, sampler: optuna.samplers.BaseSampler
) -> None:
    space = create_search_space(family)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        spec = space.sample(trial, in_channels=1, num_classes=10, image_size=28, prefix="s.")
        space.validate(spec)  # raises InvalidArchError -> trial FAIL, the study goes on
        model = space.build(spec)
        return float(sum(p.numel() for p in model.parameters())), float(len(spec.encode()))

    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=10, catch=(InvalidArchError,))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 10 and done


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_export_works_on_a_sampled_model(family: str) -> None:
    space = create_search_space(family)
    spec = next(s for s in _sample_many(space, 20, seed=5, in_ch=1, size=28) if _is_valid(space, s))
    model = build_model(spec).eval()
    x = torch.randn(2, 1, 28, 28)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


@pytest.mark.parametrize("family", FAMILIES)
def test_validate_rejects_a_spec_of_another_family(family: str) -> None:
    other = ArchSpec(family="other", in_channels=1, num_classes=2, image_size=8)
    with pytest.raises(InvalidArchError, match="family"):
        create_search_space(family).validate(other)


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_options_raise_config_error_and_unknown_ones_type_error(family: str) -> None:
    with pytest.raises(TypeError):
        create_search_space(family, no_such_option=1)
    with pytest.raises(ConfigError, match="depth_choices"):
        create_search_space(family, depth_choices=[])
    with pytest.raises(ConfigError, match="depth_choices"):
        create_search_space(family, depth_choices=[0, 1])


def _is_valid(space: SearchSpace, spec: ArchSpec) -> bool:
    try:
        space.validate(spec)
    except InvalidArchError:
        return False
    return True
