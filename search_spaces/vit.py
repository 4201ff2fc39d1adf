"""The ``vit`` family: a small pre-norm vision transformer for CPU proxies.

Spec config (JSON)::

    {"patch": 4, "dim": 64, "depth": 4, "heads": 4, "mlp_ratio": 2, "pool": "cls"}

Patch embedding is a conv with kernel = stride = ``patch`` (so ``patch`` must divide
``image_size``), then a learnable position embedding, a cls token (``pool == "cls"``) or mean
pooling, ``depth`` pre-norm blocks of multi-head self-attention
(``F.scaled_dot_product_attention``; ``heads`` must divide ``dim``) and an MLP with
``round(dim * mlp_ratio)`` hidden units, then LayerNorm and a linear head.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_spaces.errors import ConfigError, InvalidArchError
from search_spaces.spec import ArchSpec, SearchSpace, check_choices, register_search_space

if TYPE_CHECKING:
    import optuna

POOLS = ("cls", "mean")
# The token count of a sampled ViT (benchmarks/space_diagnosis.py, section vit).
MIN_TOKENS = 16
MAX_TOKENS = 64
_CODE = re.compile(
    r"vit\|p(?P<patch>\d+)_d(?P<dim>\d+)_L(?P<depth>\d+)_h(?P<heads>\d+)_m(?P<mlp>[0-9.e+-]+)"
    r"\|(?P<pool>[a-z]+)"
)
_KEYS = ("patch", "dim", "depth", "heads", "mlp_ratio", "pool")


@dataclass(frozen=True)
class ViTConfig:
    in_channels: int
    num_classes: int
    image_size: int
    patch: int
    dim: int
    depth: int
    heads: int
    mlp_ratio: float
    pool: str

    @classmethod
    def parse(cls, spec: ArchSpec) -> ViTConfig:
        """The config's structure and per-field ranges, without the divisibility rules."""
        if spec.family != "vit":
            raise InvalidArchError(f"spec family {spec.family!r} is not 'vit'")
        c = spec.config
        missing = [k for k in _KEYS if k not in c]
        unknown = sorted(set(c) - set(_KEYS))
        if missing or unknown:
            raise InvalidArchError(f"vit: missing config keys {missing}, unknown keys {unknown}")
        for key in ("patch", "dim", "depth", "heads"):
            if isinstance(c[key], bool) or not isinstance(c[key], int) or c[key] < 1:
                raise InvalidArchError(f"vit: {key} must be an int >= 1, got {c[key]!r}")
        ratio = c["mlp_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio > 0:
            raise InvalidArchError(f"vit: mlp_ratio must be a number > 0, got {ratio!r}")
        if c["pool"] not in POOLS:
            raise InvalidArchError(f"vit: pool {c['pool']!r} is not one of {list(POOLS)}")
        if min(spec.in_channels, spec.num_classes, spec.image_size) < 1:
            raise InvalidArchError("vit: in_channels, num_classes and image_size must be >= 1")
        return cls(spec.in_channels, spec.num_classes, spec.image_size, **c)

    @classmethod
    def from_spec(cls, spec: ArchSpec) -> ViTConfig:
        """Parse and check the spec; InvalidArchError naming the first problem."""
        cfg = cls.parse(spec)
        if cfg.dim % cfg.heads:
            raise InvalidArchError(
                f"vit: embed dim {cfg.dim} is not divisible by {cfg.heads} heads"
            )
        if cfg.image_size % cfg.patch:
            raise InvalidArchError(
                f"vit: patch size {cfg.patch} does not divide the image size {cfg.image_size}"
            )
        if cfg.mlp_hidden < 1:
            raise InvalidArchError(f"vit: mlp_ratio {cfg.mlp_ratio} leaves no MLP hidden units")
        return cfg

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch) ** 2

    @property
    def mlp_hidden(self) -> int:
        return round(self.dim * self.mlp_ratio)


# -- blocks (timm style: layer types are arguments) ----------------------------------------------
class PatchEmbed(nn.Module):
    def __init__(self, in_chs: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chs, dim, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)  # (B, D, H/p, W/p)
        return x.flatten(2).transpose(1, 2)  # (B, N, D)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, L, C = x.shape
        qkv = self.qkv(x).reshape(B, L, 3, self.heads, C // self.heads)  # (B, L, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, Dh)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, H, L, Dh)
        return self.proj(x.transpose(1, 2).reshape(B, L, C))  # (B, L, C)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, *, act_layer: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (B, L, C)


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_hidden: int,
        *,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, mlp_hidden, act_layer=act_layer)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))  # (B, L, C)
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.use_cls = cfg.pool == "cls"  # fixed at build time: no data-dependent branches
        self.patch_embed = PatchEmbed(cfg.in_channels, cfg.dim, cfg.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim)) if self.use_cls else None
        tokens = cfg.num_patches + int(self.use_cls)
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, cfg.dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(
            *(Block(cfg.dim, cfg.heads, cfg.mlp_hidden) for _ in range(cfg.depth))
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x)  # (B, N, D)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1+N, D)
        x = self.norm(self.blocks(x + self.pos_embed))  # (B, L, D)
        x = x[:, 0] if self.use_cls else x.mean(dim=1)  # (B, D)
        return self.head(x)  # (B, num_classes)


def patch_range(
    image_size: int, *, min_tokens: int = MIN_TOKENS, max_tokens: int = MAX_TOKENS
) -> tuple[int, ...]:
    """Patch sizes for ``image_size``: the divisors whose token grid holds ``min_tokens``-
    ``max_tokens`` tokens (28 px: 4 and 7 -> 49 and 16 tokens; 32: 4, 8; 16: 2, 4), else the
    divisor whose token count is nearest that range (in ratio), so the sequence stays short."""
    divisors = [p for p in range(1, image_size + 1) if image_size % p == 0]
    inside = tuple(p for p in divisors if min_tokens <= (image_size // p) ** 2 <= max_tokens)
    if inside:
        return inside

    def distance(p: int) -> float:
        n = (image_size // p) ** 2
        return max(min_tokens / n, n / max_tokens)

    return (min(divisors, key=distance),)


@register_search_space("vit")
class ViTSpace(SearchSpace):
    """Small vision transformers whose sequence length suits the image size.

    ``patch_choices`` empty (the default): :func:`patch_range` of the sampled image size
    (16-64 tokens), so attention's cost stays bounded next to the CNN family at the same
    resolution (``benchmarks/space_diagnosis.py``, section ``vit``). The default head counts
    divide every default width, so no default sample is invalid.
    """

    def __init__(
        self,
        *,
        patch_choices: tuple[int, ...] = (),
        min_tokens: int = MIN_TOKENS,
        max_tokens: int = MAX_TOKENS,
        dim_choices: tuple[int, ...] = (32, 48, 64, 96),
        heads_choices: tuple[int, ...] = (1, 2, 4),
        depth_choices: tuple[int, ...] = (1, 2, 3, 4),
        mlp_ratio_choices: tuple[float, ...] = (1, 2, 4),
        pool_choices: tuple[str, ...] = POOLS,
    ) -> None:
        self.patch_choices = (
            check_choices("patch_choices", patch_choices, integer=True)
            if tuple(patch_choices)
            else ()
        )
        check_choices("min_tokens", [min_tokens], integer=True)
        check_choices("max_tokens", [max_tokens], integer=True)
        if min_tokens > max_tokens:
            raise ConfigError(f"search option min_tokens {min_tokens} > max_tokens {max_tokens}")
        self.min_tokens, self.max_tokens = min_tokens, max_tokens
        self.dim_choices = check_choices("dim_choices", dim_choices, integer=True)
        self.heads_choices = check_choices("heads_choices", heads_choices, integer=True)
        self.depth_choices = check_choices("depth_choices", depth_choices, integer=True)
        self.mlp_ratio_choices = check_choices("mlp_ratio_choices", mlp_ratio_choices)
        self.pool_choices = check_choices("pool_choices", pool_choices, POOLS)

    def patches_for(self, image_size: int) -> tuple[int, ...]:
        """The patch sizes this space samples at ``image_size``."""
        if self.patch_choices:
            return self.patch_choices
        return patch_range(image_size, min_tokens=self.min_tokens, max_tokens=self.max_tokens)

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

        config = {
            "patch": cat("patch", self.patches_for(image_size)),
            "dim": cat("dim", self.dim_choices),
            "depth": cat("depth", self.depth_choices),
            "heads": cat("heads", self.heads_choices),
            "mlp_ratio": cat("mlp_ratio", self.mlp_ratio_choices),
            "pool": cat("pool", self.pool_choices),
        }
        return ArchSpec(
            family="vit",
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            config=config,
        )

    def param_guess(self, spec: ArchSpec) -> dict[str, Any]:
        return dict(ViTConfig.from_spec(spec).__dict__ | spec.config)

    def validate(self, spec: ArchSpec) -> None:
        ViTConfig.from_spec(spec)

    def build(self, spec: ArchSpec) -> nn.Module:
        return ViT(ViTConfig.from_spec(spec))

    @classmethod
    def decode(cls, code: str, *, in_channels: int, num_classes: int, image_size: int) -> ArchSpec:
        """The spec of an :meth:`encode` string for that data shape (not validated)."""
        m = _CODE.fullmatch(code.strip())
        if m is None:
            raise InvalidArchError(f"vit: {code!r} is not a vit encoding (vit|p4_d64_L4_h4_m2|cls)")
        ratio = float(m["mlp"])
        config = {
            "patch": int(m["patch"]),
            "dim": int(m["dim"]),
            "depth": int(m["depth"]),
            "heads": int(m["heads"]),
            "mlp_ratio": int(ratio) if ratio.is_integer() else ratio,
            "pool": m["pool"],
        }
        return ArchSpec(
            family="vit",
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            config=config,
        )

    @classmethod
    def encode(cls, spec: ArchSpec) -> str:
        """``vit|p4_d64_L4_h4_m2|cls``; works on specs that break only the divisibility rules."""
        try:
            c = ViTConfig.parse(spec)
        except InvalidArchError:
            return f"vit|invalid|{spec.to_json()}"
        return f"vit|p{c.patch}_d{c.dim}_L{c.depth}_h{c.heads}_m{c.mlp_ratio:g}|{c.pool}"
