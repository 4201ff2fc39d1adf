"""The contract every trial step keeps, run against every built-in step (as optuna's sampler
tests and tests/energy/test_meter_contract.py do for theirs).

:class:`nas.trial.Step`'s docstring is the contract. Every hook of every step of a tiny real
study is wrapped by a :class:`ContractChecker` that records a :class:`Violation` per broken
rule (the trial goes on, so one run shows every break):

``return``     a hook returns what it says: ``admit``, ``screen``, ``after_train`` and
               ``complete`` None; ``reuse`` None or one number per objective; ``wait`` None
               or an IntensitySource; ``plan`` a TrainingPlan; ``train`` None or a
               TrainResult; ``deploy`` None or a Deployed; ``evaluated`` a mapping of numbers
``state``      only the pipeline assigns the RunningTrial's fields: no hook rebinds one
``settings``   a step never changes another step's settings (``t.settings[other]``)
``objective``  nor the objective: ``evaluated`` adds metrics of its own, leaving the ones it
               is given and ``t.metrics`` as they were; ``complete`` leaves the values
``plan``       ``plan`` returns a changed copy keeping the plan's callbacks (``on_start``,
               ``epoch_callbacks``: the pipeline's per-epoch energy ledger among them), its
               device and its seed
``phase``      every bit of work inside a phase: no model runs forward in a hook while no
               phase is open (``after_train``, ``deploy``, ``evaluated``, ``complete`` and
               ``wait`` run outside one; a hook that works opens its own)
``attrs``      attrs go to the record through ``t.record``, under names from
               :mod:`nas.record`; an attr a step publishes early on the optuna trial (so other
               workers see it) is one it also records; study attrs are ``nas.record.Study``'s
``sample``     ``sample`` records its choices: every parameter it suggests has its value among
               the attrs it records in that call, and it returns its settings

The built-in steps run in three studies (compression + budget + screening + early stopping +
green windows + lifecycle; federated + reuse; spatial on the loopback provider), and the
suite also checks that every hook each built-in step implements ran at least once. The last
test adds one deliberately broken step per rule and checks that exactly that rule is caught.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

import nas.pipeline
from nas.carbon import IntensitySource
from nas.record import (
    PHASE_NAMES,
    PHASE_SUFFIXES,
    TRIAL_GROUPS,
    Compression,
    StudyAttrs,
    fields,
    is_proxy_key,
    phase_key,
)
from nas.search import run_search
from nas.train import TrainResult
from nas.trial import Deployed, Step, TrainingPlan
from tests.configs import tiny_config
from tests.scheduling.loopback import TOKEN, Loopback

HOOKS = (
    "admit",
    "sample",
    "reuse",
    "wait",
    "screen",
    "plan",
    "train",
    "after_train",
    "deploy",
    "evaluated",
    "complete",
)
RULES = ("return", "state", "settings", "objective", "plan", "phase", "attrs", "sample")
_MISSING = object()


@dataclass(frozen=True)
class Violation:
    step: str
    hook: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.step}.{self.hook}: {self.rule}: {self.detail}"


def _trial_attr_names() -> set[str]:
    names = {str(f) for g in TRIAL_GROUPS for f in fields(g)}
    return names | {phase_key(p, s) for p in PHASE_NAMES for s in PHASE_SUFFIXES}


_TRIAL_ATTRS = _trial_attr_names()
_STUDY_ATTRS = {str(f) for f in fields(StudyAttrs)}
_VARIABLE = re.compile(
    rf"rung_\d+_(accuracy|energy_kwh)|({'|'.join(PHASE_NAMES)})_energy_j_\w+|econas_final_\d+"
)


def _known(name: str, names: set[str]) -> bool:
    return name in names or is_proxy_key(name) or _VARIABLE.fullmatch(name) is not None


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Items of ``after`` that are new or another object than in ``before``."""
    out = {}
    for k, v in after.items():
        old = before.get(k, _MISSING)
        if old is _MISSING or (old is not v and not _same(old, v)):
            out[k] = v
    return out


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
    except Exception:  # noqa: BLE001 - tensors and other values without a plain ==
        return False


def _frozen(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - not copyable: compare its repr
        return repr(value)


def _subsequence(part: tuple, whole: tuple) -> bool:
    it = iter(whole)
    return all(any(x is y for y in it) for x in part)


def _number(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


@dataclass
class ContractChecker:
    """Wraps every hook a step uses (instance attributes: ``uses`` and ``isinstance`` see the
    step as it is) and records what each call breaks."""

    violations: list[Violation] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)  # (step class, hook) -> calls
    _current: tuple[Any, str, Any] | None = None  # (step, hook, trial state) running now
    _forwards_outside: int = 0

    def instrument(self, steps: list[Step]) -> list[Step]:
        for step in steps:
            for hook in HOOKS:
                if step.uses(hook):
                    setattr(step, hook, self._wrap(step, hook, getattr(step, hook)))
        return steps

    def flag(self, step: Step, hook: str, rule: str, detail: str) -> None:
        self.violations.append(Violation(step.name, hook, rule, detail))

    @contextmanager
    def watching_forwards(self) -> Iterator[None]:
        """A global forward hook: counts forwards run in a hook while no phase is open."""

        def pre_hook(module: torch.nn.Module, args: Any) -> None:
            if self._current is not None and self._current[2].log._open is None:
                self._forwards_outside += 1

        handle = torch.nn.modules.module.register_module_forward_pre_hook(pre_hook)
        try:
            yield
        finally:
            handle.remove()

    def _wrap(self, step: Step, hook: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(t: Any, *args: Any) -> Any:
            self.calls[(type(step), hook)] += 1
            before = self._snapshot(t, step)
            given = (
                [dict(args[0]) if hook == "evaluated" else list(args[0])]
                if hook in ("evaluated", "complete")
                else []
            )
            outer, self._current, self._forwards_outside = self._current, (step, hook, t), 0
            result: Any = _MISSING
            try:
                result = fn(t, *args)
                return result
            finally:
                forwards, self._current = self._forwards_outside, outer
                self._check(step, hook, t, before, args, given, result, forwards)

        return wrapped

    def _snapshot(self, t: Any, step: Step) -> dict[str, Any]:
        study = t.trial.study
        return {
            "fields": {f.name: getattr(t, f.name) for f in dataclasses.fields(t)},
            "settings": {k: (v, _frozen(v)) for k, v in t.settings.items() if k != step.name},
            "metrics": dict(t.metrics),
            "attrs": dict(t.attrs),
            "params": dict(t.trial.params),
            "trial_attrs": dict(t.trial.user_attrs),
            "study_attrs": dict(study.user_attrs),
        }

    def _check(  # noqa: C901, PLR0912 - one rule per block, in the module docstring's order
        self,
        step: Step,
        hook: str,
        t: Any,
        before: dict[str, Any],
        args: tuple,
        given: list[Any],
        result: Any,
        forwards: int,
    ) -> None:
        flag = lambda rule, detail: self.flag(step, hook, rule, detail)  # noqa: E731
        if result is not _MISSING:  # the hook returned (no exception)
            ok = {
                "admit": result is None,
                "screen": result is None,
                "after_train": result is None,
                "complete": result is None,
                "sample": True,
                "reuse": result is None
                or (
                    isinstance(result, list)
                    and len(result) == len(t.config.study.objectives)
                    and all(_number(v) for v in result)
                ),
                "wait": result is None or isinstance(result, IntensitySource),
                "plan": isinstance(result, TrainingPlan),
                "train": result is None or isinstance(result, TrainResult),
                "deploy": result is None or isinstance(result, Deployed),
                "evaluated": isinstance(result, Mapping)
                and all(isinstance(k, str) and _number(v) for k, v in result.items()),
            }[hook]
            if not ok:
                flag("return", f"returned {result!r:.80}")
        for name, value in before["fields"].items():
            if getattr(t, name) is not value:
                flag("state", f"assigned t.{name}")
        for name, (value, frozen) in before["settings"].items():
            now = t.settings.get(name, _MISSING)
            if now is not value or not _same(_frozen(now), frozen):
                flag("settings", f"changed the settings of step {name!r}")
        if t.metrics != before["metrics"]:
            flag("objective", "changed t.metrics")
        if hook == "evaluated":
            metrics = args[0]
            if dict(metrics) != given[0]:
                flag("objective", "changed the metrics it was given")
            if isinstance(result, Mapping) and (clash := sorted(set(result) & set(given[0]))):
                flag("objective", f"returned metrics it did not add: {clash}")
        if hook == "complete" and list(args[0]) != given[0]:
            flag("objective", "changed the trial's values")
        if hook == "plan" and isinstance(result, TrainingPlan):
            plan = args[0]
            for part in ("on_start", "epoch_callbacks"):
                if not _subsequence(getattr(plan, part), getattr(result, part)):
                    flag("plan", f"dropped callbacks of plan.{part}")
            if result.device != plan.device or result.seed != plan.seed:
                flag("plan", "changed the plan's device or seed")
        if forwards:
            flag("phase", f"{forwards} forward pass(es) outside any phase")
        recorded = _changed(before["attrs"], t.attrs)
        for name in recorded:
            if not _known(name, _TRIAL_ATTRS):
                flag("attrs", f"recorded {name!r}, a name nas.record does not declare")
        for name, value in _changed(before["trial_attrs"], t.trial.user_attrs).items():
            if not _same(t.attrs.get(name, _MISSING), value):
                flag("attrs", f"stored trial attr {name!r} without t.record")
            elif not _known(name, _TRIAL_ATTRS):
                flag("attrs", f"stored {name!r}, a name nas.record does not declare")
        for name in _changed(before["study_attrs"], t.trial.study.user_attrs):
            if not _known(name, _STUDY_ATTRS):
                flag("attrs", f"stored study attr {name!r}, not one of nas.record.Study")
        if hook == "sample":
            suggested = _changed(before["params"], t.trial.params)
            values = list(recorded.values())
            for name, value in suggested.items():
                if not any(_same(value, v) for v in values):
                    flag("sample", f"suggested {name}={value!r} without recording it")
            if suggested and result in (None, _MISSING):
                flag("sample", "suggested parameters but returned no settings")


@contextmanager
def checked(extra: tuple[type[Step], ...] = ()) -> Iterator[ContractChecker]:
    """Every study run inside has its steps (built-in ones, then ``extra``) instrumented."""
    checker = ContractChecker()
    original = nas.pipeline.assemble_steps

    def assemble(env: Any) -> list[Step]:
        return checker.instrument([*original(env), *(cls() for cls in extra)])

    with pytest.MonkeyPatch.context() as mp, checker.watching_forwards():
        mp.setattr(nas.pipeline, "assemble_steps", assemble)
        yield checker


def _study(root: Path, name: str, **sections: Any) -> Any:
    storage = {"storage": f"sqlite:///{root / name}.db", "artifacts": str(root / name)}
    study = {**storage, **sections.pop("study", {})}
    return tiny_config(name, study=study, **sections)


ONE_CNN = {  # every choice single: every trial has the same fingerprint (reuse)
    "min_stages": 1,
    "stem_stride_choices": [2],
    "width_choices": [8],
    "stride_choices": [2],
    "block_choices": ["conv"],
    "expand_choices": [1],
    "se_choices": [False],
    "activation_choices": ["relu"],
}


def _every_feature(root: Path) -> Any:
    return _study(
        root,
        "features",
        study={"trials": 3, "objectives": ["accuracy", "kgco2e", "lifecycle_kgco2e"]},
        train={"epochs": 2},
        compression={
            "enabled": True,
            "prune_ratios": [0.5],
            "quantization": ["int8_dynamic"],
            "precision": ["fp32"],
            "distillation": [True],  # a teacher from the second trial on
            "calibrate": False,
        },
        efficiency={"screen": "synflow", "screen_warmup": 1, "early_stop": True},
        lifecycle={"requests_per_day": 1000.0, "target_device": "cpu", "batch_size": 4},
        schedule={
            "max_kgco2e": 1.0,
            "trace": "gb_2020",
            "policy": "flexible-start",
            "clock": "simulated",
            "start": "2020-06-10T06:00:00Z",
            "trial_hours": 1.0,
            "window_hours": 24.0,
        },
    )


@pytest.fixture(scope="module")
def built_in(tmp_path_factory: pytest.TempPathFactory) -> ContractChecker:
    """The studies that run every built-in step, one checker over all of them."""
    root = tmp_path_factory.mktemp("contract")
    server = Loopback()
    try:
        with checked() as checker, pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            mp.setenv("ELECTRICITYMAPS_TOKEN", TOKEN)
            run_search(_every_feature(root), progress=False)
            federated = _study(
                root,
                "federated",
                study={"trials": 2},
                search={"cnn": ONE_CNN},
                federated={"enabled": True, "clients": 2, "rounds": 1},
                efficiency={"reuse": True},  # the second trial reuses the first
            )
            run_search(federated, progress=False)
            spatial = _study(
                root,
                "spatial",
                study={"trials": 1},
                carbon={
                    "intensity_g_per_kwh": None,
                    "source": "live:electricitymaps:DE",
                    "base_url": server.url,
                    "retries": 0,
                    "regions": ["DE", "FR"],
                },
            )
            run_search(spatial, progress=False)
            table = _study(  # a tabular benchmark: lookups through the table's own step
                root, "table", study={"trials": 4}, search={"benchmark": "table:ecnas-4v"}
            )
            run_search(table, progress=False)
    finally:
        server.close()
    return checker


def _built_in_steps() -> set[type[Step]]:
    import nas.compression.step
    import nas.efficiency.step
    import nas.federated.step
    import nas.lifecycle
    import nas.scheduling.step  # noqa: F401 - every module that defines a step

    out: set[type[Step]] = set()
    todo = list(Step.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("nas."):
            out.add(cls)
    return out


def test_every_built_in_step_keeps_the_contract(built_in: ContractChecker) -> None:
    assert [str(v) for v in built_in.violations] == []


def test_every_hook_of_every_built_in_step_ran(built_in: ContractChecker) -> None:
    """Guards the suite itself: a new step or hook that no study here exercises fails."""
    expected = {
        (cls, hook)
        for cls in _built_in_steps()
        for hook in HOOKS
        if getattr(cls, hook) is not getattr(Step, hook)
    }
    assert len({cls for cls, _ in expected}) >= 7  # budget, green, spatial, ... lifecycle
    missing = sorted(f"{cls.__name__}.{hook}" for cls, hook in expected - set(built_in.calls))
    assert missing == []


# -- steps that break it, one rule each -----------------------------------------------------
class BreaksReturn(Step):
    name = "breaks-return"

    def screen(self, t: Any) -> Any:
        return True  # "passed": a screen passes by returning (None) and prunes by raising


class BreaksState(Step):
    name = "breaks-state"

    def after_train(self, t: Any) -> None:
        t.model = copy.deepcopy(t.model)  # only the pipeline assigns the trial's fields


class BreaksSettings(Step):
    name = "breaks-settings"

    def sample(self, t: Any) -> None:
        t.settings["efficiency"] = {"reuse": True}  # another step's settings


class BreaksObjective(Step):
    name = "breaks-objective"

    def evaluated(self, t: Any, metrics: Mapping[str, float]) -> Mapping[str, float]:
        return {"accuracy": 1.0}  # overrides the objective instead of adding a metric


class BreaksValues(Step):
    name = "breaks-values"

    def complete(self, t: Any, values: list[float]) -> None:
        values[1] = 0.0  # "carbon-free"


class BreaksPlan(Step):
    name = "breaks-plan"

    def plan(self, t: Any, plan: TrainingPlan) -> TrainingPlan:
        return plan.replace(epoch_callbacks=())  # drops the epoch ledger's callback


class BreaksPhase(Step):
    name = "breaks-phase"

    def after_train(self, t: Any) -> None:
        with torch.no_grad():
            t.model(t.data.val.tensors[0][:4].to(t.device))  # work no phase measures


class BreaksAttrs(Step):
    name = "breaks-attrs"

    def after_train(self, t: Any) -> None:
        t.record({"my_score": 1.0})  # a name nas.record does not declare
        t.trial.set_user_attr(Compression.distill, False)  # around t.record


class BreaksSample(Step):
    name = "breaks-sample"

    def sample(self, t: Any) -> str:
        return t.trial.suggest_categorical("broken.choice", ["a", "b"])  # not recorded


BROKEN: dict[type[Step], str] = {
    BreaksReturn: "return",
    BreaksState: "state",
    BreaksSettings: "settings",
    BreaksObjective: "objective",
    BreaksValues: "objective",
    BreaksPlan: "plan",
    BreaksPhase: "phase",
    BreaksAttrs: "attrs",
    BreaksSample: "sample",
}


def test_a_step_that_breaks_the_contract_is_caught(tmp_path: Path) -> None:
    assert set(BROKEN.values()) == set(RULES)  # one demonstration per rule at least
    with checked(tuple(BROKEN)) as checker, pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        study = run_search(_study(tmp_path, "broken", study={"trials": 1}), progress=False).study
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]
    caught: dict[str, set[str]] = {}
    for v in checker.violations:
        caught.setdefault(v.step, set()).add(v.rule)
    assert caught == {cls.name: {rule} for cls, rule in BROKEN.items()}, checker.violations
    details = {v.step: v.detail for v in checker.violations}
    assert details["breaks-state"] == "assigned t.model"
    assert details["breaks-settings"] == "changed the settings of step 'efficiency'"
    assert details["breaks-plan"] == "dropped callbacks of plan.epoch_callbacks"
    assert details["breaks-sample"] == "suggested broken.choice='a' without recording it" or (
        details["breaks-sample"] == "suggested broken.choice='b' without recording it"
    )
