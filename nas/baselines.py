"""Reference designs in every study: enqueued as its first trials, judged against its front.

``[search] baselines`` names designs of :mod:`search_spaces.baselines` (a textbook CNN, a
ResNet-8, a MobileNetV2-tiny, a ViT-tiny). When a study is new, :func:`enqueue_baselines`
enqueues each one whose family is searched and that the configured space can sample at the
data's shape (:meth:`search_spaces.SearchSpace.params_for`), with the trial parameters under
which the objective's own sampling rebuilds exactly that design: they are ordinary trials,
trained and metered like any other, and the sampler learns from them. Each carries the user
attr ``baseline`` (its name). A study that already has trials (a resumed one, or one another
worker has started) gets none.

:func:`nas.pareto.baseline_verdicts` says for each trained baseline whether the study's
front dominates it.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass

import optuna

from nas.config import Config
from nas.record import StudyAttrs, TrialAttrs
from search_spaces import create_search_space
from search_spaces.baselines import baseline_specs
from search_spaces.errors import InvalidArchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedBaseline:
    name: str
    params: dict[str, object] | None  # None: left out (``reason`` says why)
    reason: str = ""


def plan_baselines(
    config: Config, *, in_channels: int, num_classes: int, image_size: int
) -> list[PlannedBaseline]:
    """Each configured baseline with the trial parameters that sample it in this study's
    spaces, or why it is left out (its family is not searched, or the space as configured
    cannot sample it at this resolution)."""
    search = config.search
    specs = baseline_specs(in_channels, num_classes, image_size)
    spaces = list(search.spaces)
    out = []
    for name in search.baselines:
        spec = specs[name]
        if spec.family not in spaces:
            out.append(PlannedBaseline(name, None, f"family {spec.family!r} is not searched"))
            continue
        space = create_search_space(spec.family, **search.options.get(spec.family, {}))
        try:
            params = space.params_for(spec, prefix=f"{spec.family}.")
        except InvalidArchError as exc:
            out.append(PlannedBaseline(name, None, f"not in the configured space ({exc})"))
            continue
        if len(spaces) > 1:  # the objective picks the family first (nas.pipeline)
            params = {"space": spec.family, **params}
        out.append(PlannedBaseline(name, params))
    return out


def enqueue_baselines(
    study: optuna.Study,
    config: Config,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
) -> list[str]:
    """Enqueue the configured baselines as the first trials of ``study`` if it is new (no
    trial yet, none enqueued before); the names enqueued."""
    if not config.search.baselines or StudyAttrs.baselines in study.user_attrs:
        return []
    if study.get_trials(deepcopy=False):  # resumed, or another worker got there first
        return []
    planned = plan_baselines(
        config, in_channels=in_channels, num_classes=num_classes, image_size=image_size
    )
    names = []
    for b in planned:
        if b.params is None:
            log.info("baseline %s not enqueued: %s", b.name, b.reason)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # skip_if_exists: a worker that started at the same moment enqueued it already
            study.enqueue_trial(
                b.params, user_attrs={TrialAttrs.baseline: b.name}, skip_if_exists=True
            )
        names.append(b.name)
    skipped = {b.name: b.reason for b in planned if b.params is None}
    study.set_user_attr(
        StudyAttrs.baselines, json.dumps({"enqueued": names, "skipped": skipped}, sort_keys=True)
    )
    return names
