"""The ``cnn`` family: stem conv, 1-4 stages of plain or inverted-residual blocks, pool + linear.

Spec config (JSON)::

    {"stem_width": 16, "stem_stride": 1, "activation": "relu",
     "stages": [{"block": "ir", "depth": 2, "width": 32, "kernel": 3, "stride": 2,
                 "expand": 4, "se": true}, ...]}

``block`` is ``conv`` (conv-bn-act, VGG-like) or ``ir`` (MobileNetV2 inverted residual with
expansion ratio ``expand``; ``expand`` is only present for ``ir``). Only the first block of a
stage has the stage's stride. Convs pad ``kernel // 2``, so a stride-2 conv maps H to
ceil(H / 2); the map entering the pool must be at least ``MIN_FINAL_RESOLUTION`` wide, else
the spec is rejected (too many stride-2 stages for the resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from search_spaces.errors import ConfigError, InvalidArchError
from search_spaces.spec import ArchSpec, SearchSpace, check_choices, register_search_space

if TYPE_CHECKING:
    import optuna

BLOCKS = ("conv", "ir")
MIN_FINAL_RESOLUTION = 2
_STAGE_KEYS = ("block", "depth", "width", "kernel", "stride", "se")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "hardswish": nn.Hardswish,
}


# -- blocks (timm style: layer types are arguments) ----------------------------------------------
class ConvBnAct(nn.Module):
    """Conv (padding kernel // 2, no bias) -> BatchNorm -> activation (none if act_layer is None)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: int,
        stride: int = 1,
        *,
        groups: int = 1,
        act_layer: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel, stride, kernel // 2, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))  # (B, out_chs, ceil(H / stride), ceil(W / stride))


class SqueezeExcite(nn.Module):
    """Channel gating: global pool -> 1x1 reduce -> act -> 1x1 expand -> sigmoid -> scale."""

    def __init__(self, chs: int, *, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        rd_chs = max(4, chs // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(chs, rd_chs, 1)
        self.act = act_layer()
        self.expand = nn.Conv2d(rd_chs, chs, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.expand(self.act(self.reduce(self.pool(x))))  # (B, C, 1, 1)
        return x * self.gate(s)  # (B, C, H, W)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> kxk depthwise -> [SE] -> 1x1 project, residual if shapes match."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: int,
        stride: int,
        expand: int,
        *,
        act_layer: type[nn.Module] = nn.ReLU,
        se_layer: type[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        mid = in_chs * expand
        self.use_residual = stride == 1 and in_chs == out_chs  # fixed at build time
        self.expand = (
            ConvBnAct(in_chs, mid, 1, act_layer=act_layer) if expand > 1 else nn.Identity()
        )
        self.dw = ConvBnAct(mid, mid, kernel, stride, groups=mid, act_layer=act_layer)
        self.se = se_layer(mid, act_layer=act_layer) if se_layer is not None else nn.Identity()
        self.project = ConvBnAct(mid, out_chs, 1, act_layer=None)

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))  # (B, out_chs, H', W')
        return x + y if self.use_residual else y


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

    @classmethod
    def parse(cls, d: Any, index: int) -> StageConfig:
        where = f"stage {index}"
        if not isinstance(d, dict):
            raise InvalidArchError(f"cnn {where}: must be an object, got {d!r}")
        block = _field(d, "block", str, where)
        if block not in BLOCKS:
            raise InvalidArchError(f"cnn {where}: block {block!r} is not one of {list(BLOCKS)}")
        keys = {*_STAGE_KEYS, "expand"} if block == "ir" else set(_STAGE_KEYS)
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
        )
        if min(stage.depth, stage.width, stage.expand) < 1:
            raise InvalidArchError(f"cnn {where}: depth, width and expand must be >= 1")
        if stage.kernel < 1 or stage.kernel % 2 == 0:
            raise InvalidArchError(f"cnn {where}: kernel {stage.kernel} must be odd and >= 1")
        if stage.stride not in (1, 2):
            raise InvalidArchError(f"cnn {where}: stride {stage.stride} must be 1 or 2")
        return stage

    def encode(self) -> str:
        e = f"_e{self.expand}" if self.block == "ir" else ""
        se = "_se" if self.se else ""
        return f"{self.block}_d{self.depth}_k{self.kernel}_s{self.stride}{e}_c{self.width}{se}"


@dataclass(frozen=True)
class CNNConfig:
    in_channels: int
    num_classes: int
    image_size: int
    stem_width: int
    stem_stride: int
    activation: str
    stages: tuple[StageConfig, ...]

    @classmethod
    def from_spec(cls, spec: ArchSpec) -> CNNConfig:
        """Parse and check the spec; InvalidArchError naming the first problem."""
        cfg = cls.parse(spec)
        final = cfg.final_resolution()
        if final < MIN_FINAL_RESOLUTION:
            n_down = sum(s.stride == 2 for s in cfg.stages) + (cfg.stem_stride == 2)
            raise InvalidArchError(
                f"cnn: {n_down} stride-2 downsamplings shrink {cfg.image_size}x{cfg.image_size} "
                f"to {final}x{final}, below the minimum {MIN_FINAL_RESOLUTION}x{MIN_FINAL_RESOLUTION}"
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
        if unknown := sorted(set(c) - {"stem_width", "stem_stride", "activation", "stages"}):
            raise InvalidArchError(f"cnn: unknown config keys {unknown}")
        activation = _field(c, "activation", str, "config")
        if activation not in ACTIVATIONS:
            raise InvalidArchError(f"cnn: activation {activation!r} not in {list(ACTIVATIONS)}")
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
        )
        if cfg.stem_width < 1 or cfg.stem_stride not in (1, 2):
            raise InvalidArchError("cnn: stem_width must be >= 1 and stem_stride 1 or 2")
        return cfg

    def final_resolution(self) -> int:
        size = self.image_size
        for stride in (self.stem_stride, *(s.stride for s in self.stages)):
            size = (size - 1) // stride + 1  # ceil(size / stride) with padding kernel // 2
        return size


class CNN(nn.Module):
    def __init__(self, cfg: CNNConfig) -> None:
        super().__init__()
        act = ACTIVATIONS[cfg.activation]
        self.stem = ConvBnAct(cfg.in_channels, cfg.stem_width, 3, cfg.stem_stride, act_layer=act)
        blocks: list[nn.Module] = []
        chs = cfg.stem_width
        for st in cfg.stages:
            for i in range(st.depth):
                stride = st.stride if i == 0 else 1
                se = SqueezeExcite if st.se else None
                if st.block == "ir":
                    blocks.append(
                        InvertedResidual(
                            chs, st.width, st.kernel, stride, st.expand, act_layer=act, se_layer=se
                        )
                    )
                else:
                    blocks.append(ConvBnAct(chs, st.width, st.kernel, stride, act_layer=act))
                    if se is not None:
                        blocks.append(se(st.width, act_layer=act))
                chs = st.width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(chs, cfg.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))  # (B, C, H', W')
        return self.head(self.pool(x).flatten(1))  # (B, num_classes)


@register_search_space("cnn")
class CNNSpace(SearchSpace):
    """Small CNNs sized for CPU proxies (widths 8-64 by default) on 28-32 px images."""

    def __init__(
        self,
        *,
        min_stages: int = 1,
        max_stages: int = 4,
        stem_width_choices: tuple[int, ...] = (8, 16, 24, 32),
        stem_stride_choices: tuple[int, ...] = (1, 2),
        width_choices: tuple[int, ...] = (8, 16, 24, 32, 48, 64),
        depth_choices: tuple[int, ...] = (1, 2, 3),
        kernel_choices: tuple[int, ...] = (3, 5, 7),
        stride_choices: tuple[int, ...] = (1, 2),
        block_choices: tuple[str, ...] = BLOCKS,
        expand_choices: tuple[int, ...] = (1, 2, 4),
        se_choices: tuple[bool, ...] = (False, True),
        activation_choices: tuple[str, ...] = tuple(ACTIVATIONS),
    ) -> None:
        check_choices("min_stages", [min_stages], integer=True)
        check_choices("max_stages", [max_stages], integer=True)
        if min_stages > max_stages:
            raise ConfigError(f"search option min_stages {min_stages} > max_stages {max_stages}")
        self.min_stages, self.max_stages = min_stages, max_stages
        self.stem_width_choices = check_choices(
            "stem_width_choices", stem_width_choices, integer=True
        )
        self.stem_stride_choices = check_choices("stem_stride_choices", stem_stride_choices, (1, 2))
        self.width_choices = check_choices("width_choices", width_choices, integer=True)
        self.depth_choices = check_choices("depth_choices", depth_choices, integer=True)
        self.kernel_choices = check_choices("kernel_choices", kernel_choices, (1, 3, 5, 7, 9))
        self.stride_choices = check_choices("stride_choices", stride_choices, (1, 2))
        self.block_choices = check_choices("block_choices", block_choices, BLOCKS)
        self.expand_choices = check_choices("expand_choices", expand_choices, integer=True)
        self.se_choices = check_choices("se_choices", se_choices, (False, True))
        acts = tuple(ACTIVATIONS)
        self.activation_choices = check_choices("activation_choices", activation_choices, acts)

    def sample(
        self,
        trial: optuna.Trial,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        prefix: str = "",
    ) -> ArchSpec:
        def cat(name: str, choices: tuple) -> Any:
            return trial.suggest_categorical(prefix + name, choices)

        n_stages = trial.suggest_int(prefix + "n_stages", self.min_stages, self.max_stages)
        config: dict[str, Any] = {
            "stem_width": cat("stem_width", self.stem_width_choices),
            "stem_stride": cat("stem_stride", self.stem_stride_choices),
            "activation": cat("activation", self.activation_choices),
            "stages": [],
        }
        stage_choices = {
            "depth": self.depth_choices,
            "width": self.width_choices,
            "kernel": self.kernel_choices,
            "stride": self.stride_choices,
            "se": self.se_choices,
        }
        for i in range(n_stages):
            stage = {"block": cat(f"s{i}.block", self.block_choices)}
            if stage["block"] == "ir":
                stage["expand"] = cat(f"s{i}.expand", self.expand_choices)
            stage.update({key: cat(f"s{i}.{key}", ch) for key, ch in stage_choices.items()})
            config["stages"].append(stage)
        return ArchSpec(
            family="cnn",
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            config=config,
        )

    def validate(self, spec: ArchSpec) -> None:
        CNNConfig.from_spec(spec)

    def build(self, spec: ArchSpec) -> nn.Module:
        return CNN(CNNConfig.from_spec(spec))

    @classmethod
    def encode(cls, spec: ArchSpec) -> str:
        """``cnn|stem16s1|ir_d2_k3_s2_e4_c32_se|conv_d1_k5_s1_c64|relu``; works on specs that
        break only the resolution rule (the objective encodes before it validates)."""
        try:
            cfg = CNNConfig.parse(spec)
        except InvalidArchError:
            return f"cnn|invalid|{spec.to_json()}"
        parts = [f"stem{cfg.stem_width}s{cfg.stem_stride}", *(s.encode() for s in cfg.stages)]
        return "|".join(["cnn", *parts, cfg.activation])
