"""The ``cnn`` family: [stem conv], 1-N stages of VGG, ResNet or MobileNetV2 blocks, a head.

The spec's config is described in :mod:`search_spaces._cnn_config` (JSON: stem, stages of
``conv``/``res``/``ir`` blocks with stride or max-pool downsampling, ``gap`` or ``flatten``
head). The space samples networks whose downsamplings suit ``image_size``: their number lies
in :func:`downsampling_range` (the final map stays between ``MIN_SAMPLED_FINAL`` and
``MAX_SAMPLED_FINAL`` pixels where the image allows), so no sampled network collapses a small
image to 1-2 pixels nor pools a map that still holds most of the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from search_spaces._cnn_blocks import (
    ACTIVATIONS,
    BasicBlock,
    ConvBnAct,
    InvertedResidual,
    SqueezeExcite,
    max_pool,
)
from search_spaces._cnn_config import (
    BLOCKS,
    HEADS,
    MIN_FINAL_RESOLUTION,
    CNNConfig,
    StageConfig,
    decode,
    downsample,
)
from search_spaces.errors import ConfigError, InvalidArchError
from search_spaces.spec import ArchSpec, SearchSpace, check_choices, register_search_space

if TYPE_CHECKING:
    import optuna

__all__ = [
    "ACTIVATIONS",
    "BLOCKS",
    "HEADS",
    "MAX_SAMPLED_FINAL",
    "MIN_FINAL_RESOLUTION",
    "MIN_SAMPLED_FINAL",
    "CNNConfig",
    "CNNSpace",
    "BasicBlock",
    "ConvBnAct",
    "InvertedResidual",
    "SqueezeExcite",
    "StageConfig",
    "downsampling_range",
]

# The final feature map of a sampled network, in pixels a side (benchmarks/space_diagnosis.py).
MIN_SAMPLED_FINAL = 4
MAX_SAMPLED_FINAL = 8


def downsampling_range(
    image_size: int, *, min_final: int = MIN_SAMPLED_FINAL, max_final: int = MAX_SAMPLED_FINAL
) -> tuple[int, int]:
    """(fewest, most) halvings a sampled network makes at ``image_size``: the most that keep
    the final map >= ``min_final`` px (none below it), the fewest that bring it <= ``max_final``.
    28 px: (2, 3) -> 7 or 4 px; 32: (2, 3) -> 8 or 4; 16: (1, 2) -> 8 or 4; 8: (0, 1)."""
    most = 0
    while downsample(image_size, most + 1) >= min_final:
        most += 1
    fewest = 0
    while fewest < most and downsample(image_size, fewest) > max_final:
        fewest += 1
    return fewest, most


def _stem_widths(values: Any) -> tuple[int, ...]:
    """``stem_width_choices``: distinct ints >= 0 (0: no stem)."""
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise ConfigError(f"search option stem_width_choices must be a list, got {values!r}")
    choices = tuple(values)
    if not choices or len(set(choices)) != len(choices):
        raise ConfigError(
            "search option stem_width_choices must be a non-empty list without repeats"
        )
    for w in choices:
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise ConfigError(f"search option stem_width_choices: {w!r} must be an int >= 0")
    return choices


def _stage_blocks(st: StageConfig, chs: int, act: type[nn.Module]) -> list[nn.Module]:
    se = SqueezeExcite if st.se else None
    blocks: list[nn.Module] = []
    for i in range(st.depth):
        stride = st.stride if i == 0 else 1
        if st.block == "ir":
            blocks.append(
                InvertedResidual(
                    chs, st.width, st.kernel, stride, st.expand, act_layer=act, se_layer=se
                )
            )
        elif st.block == "res":
            blocks.append(BasicBlock(chs, st.width, st.kernel, stride, act_layer=act, se_layer=se))
        else:
            blocks.append(ConvBnAct(chs, st.width, st.kernel, stride, act_layer=act))
            if se is not None:
                blocks.append(se(st.width, act_layer=act))
        chs = st.width
    if st.pool:
        blocks.append(max_pool())
    return blocks


class CNN(nn.Module):
    def __init__(self, cfg: CNNConfig) -> None:
        super().__init__()
        act = ACTIVATIONS[cfg.activation]
        chs = cfg.stem_width or cfg.in_channels
        self.stem = (
            ConvBnAct(cfg.in_channels, chs, 3, cfg.stem_stride, act_layer=act)
            if cfg.stem_width
            else nn.Identity()
        )
        blocks: list[nn.Module] = []
        for st in cfg.stages:
            blocks += _stage_blocks(st, chs, act)
            chs = st.width
        self.blocks = nn.Sequential(*blocks)
        final = cfg.final_resolution()
        flat = cfg.head == "flatten"
        self.pool = nn.Identity() if flat else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(chs * final * final if flat else chs, cfg.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))  # (B, C, H', W')
        return self.head(self.pool(x).flatten(1))  # (B, num_classes)


@register_search_space("cnn")
class CNNSpace(SearchSpace):
    """Small CNNs for CPU proxies whose downsampling adapts to the image size.

    Per trial: ``n_stages``; the stem (``stem_width``, 0 = none, and ``stem_stride``); the
    ``activation`` and ``head``; per stage ``block`` (+ ``expand`` for ``ir``), ``depth``,
    ``width``, ``kernel``, ``se`` and how it downsamples (``stride`` 2, else ``pool``). A
    downsampling choice is asked only while :func:`downsampling_range`'s most is not reached,
    and a stage must downsample (``down``: stride or pool) when the remaining stages are
    needed to reach its fewest; so every sampled network's final map is
    ``MIN_SAMPLED_FINAL``-``MAX_SAMPLED_FINAL`` px where the image allows. Stage widths are
    assigned in ascending order (the sampled widths, sorted): widths never shrink with depth.
    """

    def __init__(
        self,
        *,
        min_stages: int = 1,
        max_stages: int = 4,
        stem_width_choices: tuple[int, ...] = (0, 8, 16, 24),
        stem_stride_choices: tuple[int, ...] = (1, 2),
        width_choices: tuple[int, ...] = (8, 16, 24, 32, 48, 64),
        depth_choices: tuple[int, ...] = (1, 2),
        kernel_choices: tuple[int, ...] = (3, 5),
        stride_choices: tuple[int, ...] = (1, 2),
        pool_choices: tuple[bool, ...] = (False, True),
        block_choices: tuple[str, ...] = BLOCKS,
        expand_choices: tuple[int, ...] = (2, 4),
        se_choices: tuple[bool, ...] = (False, True),
        activation_choices: tuple[str, ...] = ("relu", "silu", "hardswish"),
        head_choices: tuple[str, ...] = HEADS,
    ) -> None:
        check_choices("min_stages", [min_stages], integer=True)
        check_choices("max_stages", [max_stages], integer=True)
        if min_stages > max_stages:
            raise ConfigError(f"search option min_stages {min_stages} > max_stages {max_stages}")
        self.min_stages, self.max_stages = min_stages, max_stages
        self.stem_width_choices = _stem_widths(stem_width_choices)
        self.stem_stride_choices = check_choices("stem_stride_choices", stem_stride_choices, (1, 2))
        self.width_choices = check_choices("width_choices", width_choices, integer=True)
        self.depth_choices = check_choices("depth_choices", depth_choices, integer=True)
        self.kernel_choices = check_choices("kernel_choices", kernel_choices, (1, 3, 5, 7, 9))
        self.stride_choices = check_choices("stride_choices", stride_choices, (1, 2))
        self.pool_choices = check_choices("pool_choices", pool_choices, (False, True))
        self.block_choices = check_choices("block_choices", block_choices, BLOCKS)
        self.expand_choices = check_choices("expand_choices", expand_choices, integer=True)
        self.se_choices = check_choices("se_choices", se_choices, (False, True))
        acts = tuple(ACTIVATIONS)
        self.activation_choices = check_choices("activation_choices", activation_choices, acts)
        self.head_choices = check_choices("head_choices", head_choices, HEADS)
        # how a downsampling stage downsamples: what the stride and pool choices allow
        kinds = (("stride",) if 2 in self.stride_choices else ()) + (
            ("pool",) if True in self.pool_choices else ()
        )
        self.down_choices: tuple[str, ...] = kinds or ("stride",)

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

        fewest, most = downsampling_range(image_size)
        n_down = trial.suggest_int(prefix + "n_down", fewest, most) if most > fewest else most
        n_stages = trial.suggest_int(prefix + "n_stages", self.min_stages, self.max_stages)
        n_stages = max(self.min_stages, min(n_stages, n_down + 1))  # <= 1 stage at full size
        stem_width = cat("stem_width", self.stem_width_choices)
        # the places that may downsample, first to last: the stem (when it may stride), stages
        stem_slot = bool(stem_width) and 2 in self.stem_stride_choices
        forced_stem = stem_slot and 1 not in self.stem_stride_choices and n_down > 0
        slots = n_stages + stem_slot
        downs = set(range(slots - min(n_down, slots), slots))  # the last n_down places
        if forced_stem and 0 not in downs:  # a stem that can only stride takes the first
            downs = {0, *sorted(downs)[1:]}
        config: dict[str, Any] = {
            "stem_width": stem_width,
            "stem_stride": 2 if stem_slot and 0 in downs else 1,
            "activation": cat("activation", self.activation_choices),
            "head": cat("head", self.head_choices),
            "stages": [],
        }
        for i in range(n_stages):
            stage: dict[str, Any] = {"block": cat(f"s{i}.block", self.block_choices)}
            if stage["block"] == "ir":
                stage["expand"] = cat(f"s{i}.expand", self.expand_choices)
            for key, choices in (
                ("depth", self.depth_choices),
                ("width", self.width_choices),
                ("kernel", self.kernel_choices),
                ("se", self.se_choices),
            ):
                stage[key] = cat(f"s{i}.{key}", choices)
            kind = "none"
            if i + stem_slot in downs:
                kinds = self.down_choices
                kind = cat(f"s{i}.down", kinds) if len(kinds) > 1 else kinds[0]
            stage["stride"], stage["pool"] = 2 if kind == "stride" else 1, kind == "pool"
            config["stages"].append(stage)
        widths = sorted(s["width"] for s in config["stages"])
        for stage, width in zip(config["stages"], widths, strict=True):
            stage["width"] = width
        return ArchSpec(
            family="cnn",
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            config=config,
        )

    def param_guess(self, spec: ArchSpec) -> dict[str, Any]:
        cfg = CNNConfig.from_spec(spec)
        fewest, most = downsampling_range(spec.image_size)
        params: dict[str, Any] = {
            "n_down": max(fewest, min(cfg.downsamplings, most)),  # short nets do what they can
            "n_stages": len(cfg.stages),
            "stem_width": cfg.stem_width,
            "activation": cfg.activation,
            "head": cfg.head,
        }
        for i, st in enumerate(cfg.stages):
            params.update(
                {
                    f"s{i}.block": st.block,
                    f"s{i}.expand": st.expand,
                    f"s{i}.depth": st.depth,
                    f"s{i}.width": st.width,
                    f"s{i}.kernel": st.kernel,
                    f"s{i}.se": st.se,
                    f"s{i}.down": "pool" if st.pool else "stride",
                }
            )
        return params

    def validate(self, spec: ArchSpec) -> None:
        CNNConfig.from_spec(spec)

    def build(self, spec: ArchSpec) -> nn.Module:
        return CNN(CNNConfig.from_spec(spec))

    @classmethod
    def decode(cls, code: str, *, in_channels: int, num_classes: int, image_size: int) -> ArchSpec:
        """The spec of an :meth:`encode` string for that data shape (not validated)."""
        return ArchSpec(
            family="cnn",
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            config=decode(code),
        )

    @classmethod
    def encode(cls, spec: ArchSpec) -> str:
        """``cnn|stem16s1|ir_d2_k3_s2_e4_c32_se|conv_d1_k5_s1_c64_mp|flat|relu`` (``flat``:
        flatten head; no stem part when ``stem_width`` is 0); works on specs that break only
        the resolution rule (the objective encodes before it validates)."""
        try:
            cfg = CNNConfig.parse(spec)
        except InvalidArchError:
            return f"cnn|invalid|{spec.to_json()}"
        return cfg.encode()
