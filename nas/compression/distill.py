"""Knowledge distillation: a student trained against a teacher's temperature-softened labels.

The loss (Hinton et al., 2015) is ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) +
(1 - alpha) * CE(s, y)``. The teacher runs in eval mode without gradients inside the
student's training window, so its forward passes are part of the student's measured energy;
each is also wrapped in a nested window of a :class:`~nas.energy.WindowAccumulator` (named
``teacher``) so its share is reported, never added a second time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.errors import BadInputError

if TYPE_CHECKING:
    from nas.energy import WindowAccumulator
    from nas.train import LossFn

TEACHER_WINDOW = "teacher"


def kd_loss(
    student_logits: Tensor, teacher_logits: Tensor, y: Tensor, *, temperature: float, alpha: float
) -> Tensor:
    """Soft-label KL (scaled by T^2) weighted ``alpha`` plus hard-label CE weighted ``1 - alpha``."""
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits.float() / t, dim=1),
        F.log_softmax(teacher_logits.float() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student_logits.float(), y)
    return alpha * t * t * soft + (1.0 - alpha) * hard


def distillation_loss(
    teacher: nn.Module,
    *,
    temperature: float,
    alpha: float,
    passes: WindowAccumulator | None = None,
    teacher_device: torch.device | None = None,
) -> LossFn:
    """A ``loss_fn(model, x, y)`` for :func:`nas.train.train_model` distilling ``teacher``.

    With ``passes`` (``WindowAccumulator(meter, "teacher")``) each teacher forward pass runs
    in one of its windows: their energy, time and count are its totals (they stay inside the
    enclosing training window too).
    """
    from nas.compression.quantize import is_int8

    teacher.eval()
    # INT8 kernels take float32 only: an INT8 teacher runs outside the student's autocast
    int8 = is_int8(teacher)

    def teacher_logits(x: Tensor) -> Tensor:
        with torch.no_grad():
            xt = x if teacher_device is None else x.to(teacher_device)
            if not int8:
                return teacher(xt).to(x.device)
            with torch.autocast(xt.device.type, enabled=False):
                return teacher(xt.float()).float().to(x.device)

    def loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if passes is None:
            t_logits = teacher_logits(x)
        else:
            with passes.window():
                t_logits = teacher_logits(x)
        return kd_loss(model(x), t_logits, y, temperature=temperature, alpha=alpha)

    return loss


def load_teacher_dir(
    path: str | Path, *, num_classes: int, input_shape: tuple[int, int, int]
) -> nn.Module:
    """The fp32 model of an ``econas export --format state_dict`` directory, checked against the
    data (classes, channels, resolution); BadInputError naming any mismatch."""
    from search_spaces import ArchSpec, build_model

    d = Path(path)
    try:
        spec = ArchSpec.from_json((d / "arch_spec.json").read_text())
    except OSError as exc:
        raise BadInputError(f"teacher {d}: cannot read arch_spec.json ({exc})") from None
    if spec.num_classes != num_classes:
        raise BadInputError(
            f"teacher {d} predicts {spec.num_classes} classes but the data has {num_classes}"
        )
    if (spec.in_channels, spec.image_size, spec.image_size) != tuple(input_shape):
        raise BadInputError(
            f"teacher {d} takes {spec.in_channels}x{spec.image_size}x{spec.image_size} images, "
            f"the data are {'x'.join(map(str, input_shape))}"
        )
    model = build_model(spec)
    structure_file = d / "pruned_structure.json"
    if structure_file.is_file():
        from nas.compression.prune import apply_structure

        apply_structure(model, json.loads(structure_file.read_text()))
    try:
        state = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad teacher file
        raise BadInputError(f"teacher {d}/model.pt does not fit its arch_spec: {exc}") from None
    return model.eval()
