"""The ``cnn`` family's blocks (timm style: layer types are arguments).

``ConvBnAct`` (VGG-style), ``BasicBlock`` (ResNet), ``InvertedResidual`` (MobileNetV2, with
optional ``SqueezeExcite``). Convs pad ``kernel // 2``, so a stride-2 conv maps H to
ceil(H / 2); the 2x2 max-pool uses ``ceil_mode`` to match.
"""

from __future__ import annotations

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "hardswish": nn.Hardswish,
}


def max_pool() -> nn.Module:
    """2x2 max-pool, stride 2, H -> ceil(H / 2) (as a stride-2 conv)."""
    return nn.MaxPool2d(2, 2, ceil_mode=True)


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


class BasicBlock(nn.Module):
    """ResNet basic block: kxk conv-bn-act -> kxk conv-bn [-> SE], plus the shortcut, then act.

    The shortcut is the identity when shapes match, else a strided 1x1 conv-bn projection.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: int,
        stride: int,
        *,
        act_layer: type[nn.Module] = nn.ReLU,
        se_layer: type[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = ConvBnAct(in_chs, out_chs, kernel, stride, act_layer=act_layer)
        self.conv2 = ConvBnAct(out_chs, out_chs, kernel, act_layer=None)
        self.se = se_layer(out_chs, act_layer=act_layer) if se_layer is not None else nn.Identity()
        same = stride == 1 and in_chs == out_chs
        self.shortcut = (
            nn.Identity() if same else ConvBnAct(in_chs, out_chs, 1, stride, act_layer=None)
        )
        self.act = act_layer()

    def forward(self, x: Tensor) -> Tensor:
        y = self.se(self.conv2(self.conv1(x)))  # (B, out_chs, H', W')
        return self.act(y + self.shortcut(x))
