"""The ``cnn`` spec's config: parsing, checks, the feature map's size and the compact encoding.

Spec config (JSON)::

    {"stem_width": 16, "stem_stride": 1, "activation": "relu", "head": "gap",
     "stages": [{"block": "ir", "depth": 2, "width": 32, "kernel": 3, "stride": 2,
                 "expand": 4, "se": true, "pool": false}, ...]}

- ``stem_width``: a 3x3 conv-bn-act stem with that many channels and ``stem_stride``;
  ``0`` means no stem (the first stage sees the image).
- ``block``: ``conv`` (conv-bn-act, VGG-like), ``res`` (ResNet basic block) or ``ir``
  (MobileNetV2 inverted residual with expansion ratio ``expand``, only present for ``ir``).
  Only the first block of a stage has the stage's ``stride``; ``pool: true`` adds a 2x2
  max-pool after the stage's blocks (VGG-style downsampling).
- ``head``: ``gap`` (global average pool, then linear) or ``flatten`` (the final map
  flattened into the linear layer, as a textbook CNN does).

``head`` and ``pool`` were added later: a spec without them (every spec stored before) means
``gap`` and no pooling, exactly as it was built then, so no field changed meaning. Each
downsampling maps H to ceil(H / 2); the final map must be at least ``MIN_FINAL_RESOLUTION``
wide, else the spec is rejected (the space's sampler keeps a wider margin, see
``search_spaces.cnn.downsampling_range``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from search_spaces._cnn_blocks import ACTIVATIONS
from search_spaces.errors import InvalidArchError
from search_spaces.spec import ArchSpec

BLOCKS = ("conv", "res", "ir")
HEADS = ("gap", "flatten")
MIN_FINAL_RESOLUTION = 2
_STAGE_KEYS = ("block", "depth", "width", "kernel", "stride", "se")
_CONFIG_KEYS = ("stem_width", "stem_stride", "activation", "stages")


def _field(d: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in d:
        raise InvalidArchError(f"cnn {where}: missing {key!r}")
    value = d[key]
    if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
        raise InvalidArchError(f"cnn {where}: {key} must be {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class StageConfig:
    block: str
    depth: int
    width: int
    kernel: int
    stride: int
    se: bool
    expand: int = 1
    pool: bool = False

    @classmethod
    def parse(cls, d: Any, index: int) -> StageConfig:
        where = f"stage {index}"
        if not isinstance(d, dict):
            raise InvalidArchError(f"cnn {where}: must be an object, got {d!r}")
        block = _field(d, "block", str, where)
        if block not in BLOCKS:
            raise InvalidArchError(f"cnn {where}: block {block!r} is not one of {list(BLOCKS)}")
        keys = {*_STAGE_KEYS, "pool", *(("expand",) if block == "ir" else ())}
        if unknown := sorted(set(d) - keys):
            raise InvalidArchError(f"cnn {where}: unknown keys {unknown} for block {block!r}")
        stage = cls(
            block=block,
            depth=_field(d, "depth", int, where),
            width=_field(d, "width", int, where),
            kernel=_field(d, "kernel", int, where),
            stride=_field(d, "stride", int, where),
            se=_field(d, "se", bool, where),
            expand=_field(d, "expand", int, where) if block == "ir" else 1,
            pool=_field(d, "pool", bool, where) if "pool" in d else False,
        )
        if min(stage.depth, stage.width, stage.expand) < 1:
            raise InvalidArchError(f"cnn {where}: depth, width and expand must be >= 1")
        if stage.kernel < 1 or stage.kernel % 2 == 0:
            raise InvalidArchError(f"cnn {where}: kernel {stage.kernel} must be odd and >= 1")
        if stage.stride not in (1, 2):
            raise InvalidArchError(f"cnn {where}: stride {stage.stride} must be 1 or 2")
        return stage

    @property
    def downsamplings(self) -> int:
        return int(self.stride == 2) + int(self.pool)

    def encode(self) -> str:
        e = f"_e{self.expand}" if self.block == "ir" else ""
        se = "_se" if self.se else ""
        mp = "_mp" if self.pool else ""
        return f"{self.block}_d{self.depth}_k{self.kernel}_s{self.stride}{e}_c{self.width}{se}{mp}"


@dataclass(frozen=True)
class CNNConfig:
    in_channels: int
    num_classes: int
    image_size: int
    stem_width: int
    stem_stride: int
    activation: str
    stages: tuple[StageConfig, ...]
    head: str = "gap"

    @classmethod
    def from_spec(cls, spec: ArchSpec) -> CNNConfig:
        """Parse and check the spec; InvalidArchError naming the first problem."""
        cfg = cls.parse(spec)
        final = cfg.final_resolution()
        if final < MIN_FINAL_RESOLUTION:
            raise InvalidArchError(
                f"cnn: {cfg.downsamplings} downsamplings (stride 2 or max-pool) shrink "
                f"{cfg.image_size}x{cfg.image_size} to {final}x{final}, below the minimum "
                f"{MIN_FINAL_RESOLUTION}x{MIN_FINAL_RESOLUTION}"
            )
        return cfg

    @classmethod
    def parse(cls, spec: ArchSpec) -> CNNConfig:
        """The config's structure and per-field ranges, without the resolution rule."""
        if spec.family != "cnn":
            raise InvalidArchError(f"spec family {spec.family!r} is not 'cnn'")
        if min(spec.in_channels, spec.num_classes, spec.image_size) < 1:
            raise InvalidArchError("cnn: in_channels, num_classes and image_size must be >= 1")
        c = spec.config
        if unknown := sorted(set(c) - {*_CONFIG_KEYS, "head"}):
            raise InvalidArchError(f"cnn: unknown config keys {unknown}")
        activation = _field(c, "activation", str, "config")
        if activation not in ACTIVATIONS:
            raise InvalidArchError(f"cnn: activation {activation!r} not in {list(ACTIVATIONS)}")
        head = _field(c, "head", str, "config") if "head" in c else "gap"
        if head not in HEADS:
            raise InvalidArchError(f"cnn: head {head!r} is not one of {list(HEADS)}")
        stages = _field(c, "stages", list, "config")
        if not stages:
            raise InvalidArchError("cnn: needs at least one stage")
        cfg = cls(
            in_channels=spec.in_channels,
            num_classes=spec.num_classes,
            image_size=spec.image_size,
            stem_width=_field(c, "stem_width", int, "config"),
            stem_stride=_field(c, "stem_stride", int, "config"),
            activation=activation,
            stages=tuple(StageConfig.parse(s, i) for i, s in enumerate(stages)),
            head=head,
        )
        if cfg.stem_width < 0 or cfg.stem_stride not in (1, 2):
            raise InvalidArchError(
                "cnn: stem_width must be >= 0 (0: no stem) and stem_stride 1 or 2"
            )
        if cfg.stem_width == 0 and cfg.stem_stride != 1:
            raise InvalidArchError("cnn: stem_width 0 (no stem) needs stem_stride 1")
        return cfg

    @property
    def downsamplings(self) -> int:
        return int(self.stem_stride == 2) + sum(s.downsamplings for s in self.stages)

    def final_resolution(self) -> int:
        return downsample(self.image_size, self.downsamplings)

    def encode(self) -> str:
        stem = [f"stem{self.stem_width}s{self.stem_stride}"] if self.stem_width else []
        head = ["flat"] if self.head == "flatten" else []
        return "|".join(["cnn", *stem, *(s.encode() for s in self.stages), *head, self.activation])


def downsample(size: int, times: int) -> int:
    """The side after ``times`` halvings, each ceil(H / 2) (padded stride-2 conv, ceil pool)."""
    for _ in range(times):
        size = (size - 1) // 2 + 1
    return size


_STAGE_CODE = re.compile(
    r"(?P<block>[a-z]+)_d(?P<depth>\d+)_k(?P<kernel>\d+)_s(?P<stride>\d+)(?:_e(?P<expand>\d+))?"
    r"_c(?P<width>\d+)(?P<se>_se)?(?P<mp>_mp)?"
)
_STEM_CODE = re.compile(r"stem(?P<width>\d+)s(?P<stride>\d+)")


def decode(code: str) -> dict[str, Any]:
    """The spec config of an encoding (``cnn|stem16s1|res_d1_k3_s2_c32|relu``), the inverse of
    :meth:`CNNConfig.encode`; InvalidArchError if ``code`` is not one."""
    parts = code.strip().split("|")
    if len(parts) < 3 or parts[0] != "cnn":
        raise InvalidArchError(f"cnn: {code!r} is not a cnn encoding (cnn|<stages>|<activation>)")
    config: dict[str, Any] = {"stem_width": 0, "stem_stride": 1, "activation": parts[-1]}
    body = parts[1:-1]
    if body and (m := _STEM_CODE.fullmatch(body[0])):
        config.update(stem_width=int(m["width"]), stem_stride=int(m["stride"]))
        body = body[1:]
    config["head"] = "gap"
    if body and body[-1] == "flat":
        config["head"], body = "flatten", body[:-1]
    stages = []
    for part in body:
        m = _STAGE_CODE.fullmatch(part)
        if m is None:
            raise InvalidArchError(f"cnn: stage code {part!r} in {code!r} is not understood")
        stage: dict[str, Any] = {
            "block": m["block"],
            "depth": int(m["depth"]),
            "width": int(m["width"]),
            "kernel": int(m["kernel"]),
            "stride": int(m["stride"]),
            "se": m["se"] is not None,
            "pool": m["mp"] is not None,
        }
        if m["expand"] is not None:
            stage["expand"] = int(m["expand"])
        stages.append(stage)
    config["stages"] = stages
    return config
