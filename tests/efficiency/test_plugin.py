"""The [efficiency] plugin inside real (tiny) studies: reuse, screening, early stopping."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import optuna
import pytest
import torch

import nas.efficiency.step as plugin_mod
from nas.errors import ConfigError
from nas.search import run_search
from tests.configs import load_tiny

S = optuna.trial.TrialState

# One CNN only (every choice single): every trial has the same fingerprint.
ONE_ARCH = {
    "min_stages": 1,
    "max_stages": 1,
    "stem_width_choices": [8],
    "stem_stride_choices": [2],
    "width_choices": [8],
    "depth_choices": [1],
    "kernel_choices": [3],
    "stride_choices": [2],
    "block_choices": ["conv"],
    "expand_choices": [1],
    "se_choices": [False],
    "activation_choices": ["relu"],
    "head_choices": ["gap"],
    "pool_choices": [False],
}
SMALL = {"max_stages": 2, "width_choices": [8, 16, 32]}


def _cfg(
    tmp_path: Path, name: str, *, space: dict, efficiency: str, trials: int = 4, epochs: int = 1
):  # noqa: ANN202
    """``tmp_path / f"{name}.toml"`` read back; ``efficiency`` is the section's TOML lines."""
    return load_tiny(
        tmp_path,
        name,
        study={"trials": trials, "seed": 4},
        search={"cnn": space},
        train={"epochs": epochs},
        efficiency=tomllib.loads(efficiency),
    )


@pytest.fixture(autouse=True)
def _tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)


def test_duplicates_reuse_the_stored_result_within_and_across_studies(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "reuse-a", space=ONE_ARCH, efficiency="reuse = true", trials=3)
    study = run_search(cfg, progress=False).study
    first, *dups = sorted(study.trials, key=lambda t: t.number)
    assert first.state == S.COMPLETE and not first.user_attrs.get("reused")
    assert first.user_attrs["search_energy_kwh"] > 0
    for t in dups:
        a = t.user_attrs
        assert t.state == S.COMPLETE and a["reused"] is True
        assert a["reused_from_trial"] == first.number and a["reused_from_study"] == "reuse-a"
        assert a["fingerprint"] == first.user_attrs["fingerprint"]
        assert t.values == first.values
        # it paid only for its own bookkeeping (sampling, the fingerprint search, storing)
        assert a["phases"] == "sample,reuse,store"
        assert 0 < a["search_energy_kwh"] < first.user_attrs["search_energy_kwh"]
        assert a["search_energy_kwh"] == pytest.approx(
            sum(a[f"{p}_energy_kwh"] for p in ("sample", "reuse", "store")), rel=1e-9
        )
        assert a["accuracy"] == first.user_attrs["accuracy"]
        assert "train_energy_kwh" in a  # the config's cost, copied: it is the objective
    # Another study in the same storage: reused only when asked to look across studies.
    other = _cfg(tmp_path, "reuse-b", space=ONE_ARCH, efficiency="reuse = true", trials=1)
    other = other.replace("study", storage=cfg.storage_url)
    t = run_search(other, progress=False).study.trials[0]
    assert not t.user_attrs.get("reused")
    across = _cfg(
        tmp_path,
        "reuse-c",
        space=ONE_ARCH,
        efficiency="reuse = true\nreuse_across_studies = true",
        trials=1,
    ).replace("study", storage=cfg.storage_url)
    t = run_search(across, progress=False).study.trials[0]
    assert t.user_attrs["reused"] is True and t.user_attrs["reused_from_study"] == "reuse-a"
    assert t.user_attrs["phases"] == "sample,reuse,store"  # no training


def test_reuse_off_retrains_and_still_stores_the_fingerprint(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "noreuse", space=ONE_ARCH, efficiency="reuse = false", trials=2)
    trials = run_search(cfg, progress=False).study.trials
    assert all(not t.user_attrs.get("reused") for t in trials)
    assert all(t.user_attrs["search_energy_kwh"] > 0 for t in trials)
    assert len({t.user_attrs["fingerprint"] for t in trials}) == 1


def test_screening_prunes_low_proxy_candidates_with_their_screen_energy(tmp_path: Path) -> None:
    eff = 'reuse = false\nscreen = "synflow"\nscreen_warmup = 2\nscreen_quantile = 0.5'
    cfg = _cfg(tmp_path, "screen", space=SMALL, efficiency=eff, trials=6)
    study = run_search(cfg, progress=False).study  # seeded sampler: deterministic
    trials = sorted(study.trials, key=lambda t: t.number)
    assert all(math.isfinite(t.user_attrs["proxy_synflow"]) for t in trials)
    assert all(t.state == S.COMPLETE for t in trials[:2])  # warm-up
    pruned = [t for t in trials if t.state == S.PRUNED]
    assert pruned, [t.user_attrs.get("proxy_synflow") for t in trials]
    for t in pruned:  # told PRUNED in a multi-objective study; paid only for the screen
        a = t.user_attrs
        assert a["stop_reason"].startswith("screened: synflow")
        phases = a["phases"].split(",")
        assert phases == ["sample", "reuse", "build", "screen", "store"]
        assert "train_energy_kwh" not in a and a["screen_energy_kwh"] > 0
        assert a["search_energy_kwh"] == pytest.approx(
            sum(a[f"{p}_energy_kwh"] for p in phases), rel=1e-9
        )
        earlier = [
            u.user_attrs["proxy_synflow"]
            for u in trials
            if u.number < t.number and u.state != S.RUNNING
        ]
        assert a["proxy_synflow"] < max(earlier)
    reloaded = optuna.load_study(study_name="screen", storage=cfg.storage_url)
    assert len(reloaded.directions) == 2
    assert {t.number for t in reloaded.get_trials(states=(S.PRUNED,))} == {t.number for t in pruned}


def test_early_stopping_records_rungs_and_prunes_in_a_multi_objective_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []

    def stop_when_history(point, history, *, keep, min_trials):  # noqa: ANN001, ANN202
        seen.append(len(history))
        return (len(history) >= 2, "early-stopped: test rule")

    monkeypatch.setattr(plugin_mod, "should_stop", stop_when_history)
    eff = "reuse = false\nearly_stop = true\nearly_stop_val_size = 50"
    cfg = _cfg(tmp_path, "es", space=SMALL, efficiency=eff, trials=4, epochs=2)
    study = run_search(cfg, n_trials=4, progress=False).study
    trials = sorted(study.trials, key=lambda t: t.number)
    assert seen == [0, 1, 2, 3]  # one rung (epoch 0 of 2) per trial, history grows
    assert [t.state for t in trials] == [S.COMPLETE, S.COMPLETE, S.PRUNED, S.PRUNED]
    for t in trials:
        a = t.user_attrs
        assert 0.0 <= a["rung_0_accuracy"] <= 1.0 and a["rung_0_energy_kwh"] > 0
    for t in trials[2:]:
        a = t.user_attrs
        assert a["stop_reason"] == "early-stopped: test rule" and a["early_stopped_at_rung"] == 0
        assert a["train_energy_kwh"] >= a["rung_0_energy_kwh"] * 0.5  # measured energy kept
        phases = a["phases"].split(",")
        assert "train" in phases and "eval" not in phases  # stopped inside training
        assert a["search_energy_kwh"] == pytest.approx(
            sum(a[f"{p}_energy_kwh"] for p in phases), rel=1e-9
        )
        assert "accuracy" not in a
    assert trials[0].user_attrs["epochs"] == 2


def test_bad_efficiency_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="efficiency.screen"):
        _cfg(tmp_path, "bad", space=SMALL, efficiency='screen = "magic"')
    with pytest.raises(ConfigError, match="early_stop_keep"):
        _cfg(tmp_path, "bad2", space=SMALL, efficiency="early_stop_keep = 1.5")
