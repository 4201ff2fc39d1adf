"""The ``eco`` sampler (ArchSampler bound by nas.proposals): whole architectures drawn from the
real spaces, never one seen, priced before training, the costly and the dominated avoided."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
import pytest
import torch

from nas.cost import analyze_cost
from nas.efficiency.cost_model import forward_work
from nas.proposals import RandomTrial, arch_sampler_of, bind_sampler, describe, draw
from nas.record import TrialAttrs, phase_key
from nas.search import run_search
from nas.search_strategy import ArchSampler, Described
from nas.study import make_sampler
from search_spaces import create_search_space
from search_spaces.spec import build_model
from tests.configs import TINY_VIT, tiny_config

optuna.logging.set_verbosity(optuna.logging.ERROR)
SPACES = {"cnn": create_search_space("cnn"), "vit": create_search_space("vit")}


def _ctx(train_size: int = 200) -> Any:
    data = SimpleNamespace(in_channels=1, num_classes=10, image_size=28, train=range(train_size))
    from nas.workload import TorchWorkload

    return SimpleNamespace(
        data=data,
        config=SimpleNamespace(
            train=SimpleNamespace(epochs=1), data=SimpleNamespace(batch_size=50)
        ),
        workload=TorchWorkload(),
        input_shape=(1, 28, 28),
    )


@pytest.mark.parametrize("family", ["cnn", "vit"])
def test_forward_work_counts_the_flops_fvcore_counts(family: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(6):
        spec = SPACES[family].sample(
            RandomTrial(rng),  # type: ignore[arg-type]
            in_channels=1,
            num_classes=10,
            image_size=28,
        )
        model = build_model(spec)
        flops, acts, calls = forward_work(model, (1, 28, 28))
        assert flops == analyze_cost(model, (1, 1, 28, 28)).flops, spec.encode()
        assert acts > 0 and calls > 5
        assert model.training  # the mode is restored


def test_a_drawn_candidate_replays_to_the_architecture_it_describes() -> None:
    ctx, rng = _ctx(), np.random.default_rng(0)
    for _ in range(10):
        params = draw(SPACES, ctx, rng)
        d = describe(SPACES, ctx, params)
        assert d is not None
        name = params["space"]
        assert d.categorical[0] == name and d.key.startswith(name + "|")
        assert d.work.samples == 200 and d.work.steps == 4 and d.work.flops_per_sample > 0
    sampler = ArchSampler()
    sampler.bind(
        draw=lambda rng: draw(SPACES, ctx, rng),
        describe=lambda p: describe(SPACES, ctx, p),
        predictor=lambda study: lambda work: 1.0,
    )
    assert sampler.describe({"space": "cnn"}) is None  # incomplete parameters: no candidate
    assert sampler.describe({"space": "mlp"}) is None  # not a family of the study


def _toy_sampler(**kw: Any) -> tuple[ArchSampler, list[int]]:
    """A 1-D space of 40 "architectures" n: accuracy rises with n up to 20, cost with n."""
    priced: list[int] = []

    def draw_(rng: np.random.Generator) -> dict[str, Any]:
        return {"n": int(rng.integers(40))}

    def describe_(p: Any) -> Described | None:
        if "n" not in p:
            return None
        return Described(key=("n", p["n"]), numeric=(float(p["n"]),), categorical=(), work=p["n"])

    def predictor(study: optuna.Study) -> Any:
        def price(n: int) -> float:
            priced.append(n)
            return 1.0 + n

        return price

    sampler = ArchSampler(seed=0, n_startup_trials=4, **kw)
    sampler.bind(draw=draw_, describe=describe_, predictor=predictor)
    return sampler, priced


def _toy_objective(trial: optuna.Trial) -> tuple[float, float]:
    n = trial.suggest_int("n", 0, 39)
    return min(n, 20) / 20.0, 1.0 + n


def test_never_reproposes_and_avoids_what_the_cost_guard_would_refuse() -> None:
    sampler, _ = _toy_sampler(pool=8, max_cost_ratio=3.0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_toy_objective, n_trials=25)
    ns = [t.params["n"] for t in study.trials]
    assert len(set(ns)) == len(ns)  # never the same architecture twice
    modelled = study.trials[4:]
    for t in modelled:  # from startup on: never above 3x the completed trials' median cost
        before = [u.values[1] for u in study.trials[: t.number]]
        assert t.values[1] <= 3.0 * float(np.median(before)) + 1e-9
    assert sampler.last_choice["how"] == "ehvi per predicted cost"


def test_the_dominated_region_is_skipped() -> None:
    # accuracy saturates at n = 20: beyond it a candidate costs more for nothing
    sampler, _ = _toy_sampler(pool=40, max_cost_ratio=None)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(_toy_objective, n_trials=14)
    modelled = [t.params["n"] for t in study.trials[4:]]
    assert sum(n > 25 for n in modelled) <= 2, modelled


def test_cost_aware_proposals_are_cheaper_for_the_same_front() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:  # diminishing returns
        n = trial.suggest_int("n", 0, 39)
        return float(np.sqrt(n / 39.0)), 1.0 + n

    mean_n = {}
    for cost_aware in (True, False):
        per_seed = []
        for seed in range(4):
            sampler, _ = _toy_sampler(pool=40, max_cost_ratio=None, cost_aware=cost_aware)
            sampler.seed = seed
            study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
            study.optimize(objective, n_trials=10)
            per_seed.append(np.mean([t.params["n"] for t in study.trials[4:]]))
        mean_n[cost_aware] = float(np.mean(per_seed))
    assert mean_n[True] < mean_n[False] - 2.0, mean_n  # measured: 9.7 vs 13.2


def test_unbound_it_samples_randomly_and_enqueued_trials_are_left_alone() -> None:
    sampler = ArchSampler(seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.enqueue_trial({"n": 7})
    study.optimize(_toy_objective, n_trials=3)
    assert study.trials[0].params["n"] == 7


def test_eco_is_a_config_sampler_and_a_study_with_it_samples_distinct_architectures(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(
        "eco",
        study={"sampler": "eco", "trials": 7, "startup_trials": 3},
        search={"spaces": ["cnn", "vit"], "vit": TINY_VIT, "cnn": None},
    )
    assert arch_sampler_of(make_sampler(cfg)) is not None
    torch.manual_seed(0)
    result = run_search(cfg, progress=False)
    trials = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    archs = [t.user_attrs[TrialAttrs.arch] for t in trials]
    assert len(trials) == 7 and len(set(archs)) == 7
    sampler = arch_sampler_of(result.study.sampler)
    assert sampler is not None and sampler.bound
    assert sampler.last_choice["how"] == "ehvi per predicted cost"  # modelled, not uniform
    # the proposal's work is inside the trial's metered sample phase
    assert all(t.user_attrs.get(phase_key("sample", "energy_kwh"), 0) > 0 for t in trials)


def test_bind_sampler_ignores_other_samplers() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    before = study.sampler
    bind_sampler(study, SimpleNamespace(context=None, spaces={}))  # TPE: nothing to bind
    assert study.sampler is before and arch_sampler_of(before) is None


def test_eco_is_the_default_sampler_and_the_quickstart_s() -> None:
    from nas.bundled import studies_dir
    from nas.config import StudySection, load_config

    assert StudySection.__dataclass_fields__["sampler"].default == "eco"
    quickstart = load_config(studies_dir() / "quickstart.toml")
    assert quickstart.study.sampler == "eco"
    assert arch_sampler_of(make_sampler(quickstart)) is not None
