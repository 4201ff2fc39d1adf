"""Reference designs as specs of the families, built for the data's shape.

:func:`baseline_specs` returns what a user would write by hand, each adapted to the image
size the way the families are (the number of downsamplings in
:func:`search_spaces.cnn.downsampling_range`, the ViT's patch in
:func:`search_spaces.vit.patch_range`):

- ``textbook``: conv3x3(8)-BN-ReLU-maxpool, conv3x3(16)-BN-ReLU-maxpool, flatten, linear
  (the issue-22 model; 9,122 parameters at 28x28x1 with 10 classes: the hand-written one's
  9,146 less the 24 conv biases a BatchNorm makes redundant).
- ``resnet8``: a 16-channel stem and three ResNet basic-block stages of 16, 32, 64 channels,
  the last two downsampling, global average pooling (CIFAR ResNet-8 style).
- ``mobilenetv2_tiny``: a 16-channel stem and MobileNetV2 inverted residuals (expansion 4)
  of 24, 32 and 64 channels, each stage downsampling, global average pooling.
- ``vit_tiny``: a 4-block, 64-wide ViT with 4 heads, MLP ratio 2 and a cls token, on the
  patch giving the longest sequence the ViT family allows (49 tokens at 28x28).
"""

from __future__ import annotations

from search_spaces.spec import ArchSpec

BASELINES = ("textbook", "resnet8", "mobilenetv2_tiny", "vit_tiny")


def _clamp(n: int, fewest: int, most: int) -> int:
    return max(fewest, min(n, most))


def _stages(widths: list[int], codes: list[str], n_down: int, first_slot: int) -> list[str]:
    """Stage codes ``codes[i] % (stride, width)``-style: the last ``n_down`` places (the stem
    being place 0 when ``first_slot`` is 1) downsample, as the cnn space samples them."""
    places = len(widths) + first_slot
    return [
        code.format(s=2 if i + first_slot >= places - n_down else 1, c=w)
        for i, (w, code) in enumerate(zip(widths, codes, strict=True))
    ]


def baseline_specs(in_channels: int, num_classes: int, image_size: int) -> dict[str, ArchSpec]:
    """``{name: ArchSpec}`` for :data:`BASELINES`, in that order, for that data shape."""
    from search_spaces.cnn import CNNSpace, downsampling_range
    from search_spaces.vit import patch_range

    fewest, most = downsampling_range(image_size)
    shape = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}

    def cnn(*parts: str) -> ArchSpec:
        return CNNSpace.decode("|".join(["cnn", *parts, "relu"]), **shape)

    # textbook: conv(8)-pool, conv(16)-pool (one more conv(16)-pool per extra halving)
    n = _clamp(2, fewest, most)
    widths = [8, 16, *[16] * (min(n, 4) - 2)]  # at most 4 stages (the space's default)
    pooled = [
        "conv_d1_k3_s1_c{c}" + ("_mp" if i >= len(widths) - n else "") for i in range(len(widths))
    ]
    textbook = [code.format(c=w) for code, w in zip(pooled, widths, strict=True)]
    # ResNet-8: stem + basic blocks of 16, 32, 64 channels, the last two halving the map
    n = _clamp(2, fewest, most)
    widths = [16, 32, 64][: max(2, n + 1)] + ([64] if n > 4 else [])
    resnet = _stages(widths, ["res_d1_k3_s{s}_c{c}"] * len(widths), n, 1)
    stem_r = f"stem16s{2 if n > len(widths) else 1}"
    # MobileNetV2-tiny: stem + inverted residuals (x4) of 24, 32, 64 channels, each halving
    n = _clamp(3, fewest, most)
    widths = [24, 32, 64][-(n + 1) :] if n < 2 else [24, 32, 64] + ([64] if n > 4 else [])
    codes = ["ir_d1_k3_s{s}_e4_c{c}"] + ["ir_d2_k3_s{s}_e4_c{c}"] * (len(widths) - 1)
    mbv2 = _stages(widths, codes, n, 1)
    stem_m = f"stem16s{2 if n > len(widths) else 1}"
    patch = min(patch_range(image_size))  # the longest sequence the vit family samples
    vit = {"patch": patch, "dim": 64, "depth": 4, "heads": 4, "mlp_ratio": 2, "pool": "cls"}
    return {
        "textbook": cnn(*textbook, "flat"),
        "resnet8": cnn(stem_r, *resnet),
        "mobilenetv2_tiny": cnn(stem_m, *mbv2),
        "vit_tiny": ArchSpec(family="vit", **shape, config=vit),
    }
