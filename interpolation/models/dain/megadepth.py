"""MegaDepth's hourglass (Li & Snavely, CVPR 2018; the network of Chen et al., "Single-Image
Depth Perception in the Wild", NIPS 2016): single-image log-depth for DAIN's depth-aware
projection.

The network was converted from Lua Torch, and the checkpoint keeps Torch's nesting: a level of
the hourglass is ``Sequential(ConcatTable(pathA, pathB), CAddTable())``, an inception module is
``Concat(branch, …)``. Parameter names are those positions (``depthNet.3.0.0.3.0.1.…``), so the
classes below nest exactly so, with names that say what each piece does.

Structure: a 7 × 7 stem to 128 channels, then four nested levels. Each level adds a path that
stays at its resolution (inception modules) to a path that pools 2×, runs inception modules and
the next level, and upsamples back (nearest). A 3 × 3 convolution turns the 64 channels into log
depth. Inputs must be a multiple of 16 in both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .strips import on_rows, row_strips, with_halo

#: Batch-norm settings of the converted Torch model: eps 1e-5, no learned scale/shift.
BN_EPS = 1e-5
#: Receptive-field radii (rows) of the full-resolution parts, for strip-wise runs: the 7 × 7 stem,
#: the widest (11 × 11) convolution of the full-resolution inception module, the 3 × 3 head.
STEM_HALO = 3
SAME_SCALE_HALO = 5
HEAD_HALO = 1


@dataclass(frozen=True)
class InceptionSpec:
    """One inception module: a 1 × 1 branch and three ``1 × 1 → k × k`` branches, concatenated."""

    in_channels: int
    plain_out: int
    #: (kernel size, channels after the 1 × 1 reduction, output channels) per branch.
    branches: tuple[tuple[int, int, int], ...]

    @property
    def out_channels(self) -> int:
        return self.plain_out + sum(out for _, _, out in self.branches)


# The nine distinct modules of the hourglass (the names are ours).
A = InceptionSpec(128, 32, ((3, 32, 32), (5, 32, 32), (7, 32, 32)))
B = InceptionSpec(128, 32, ((3, 64, 32), (5, 64, 32), (7, 64, 32)))
C = InceptionSpec(128, 64, ((3, 32, 64), (5, 32, 64), (7, 32, 64)))
D = InceptionSpec(256, 64, ((3, 32, 64), (5, 32, 64), (7, 32, 64)))
E = InceptionSpec(256, 64, ((3, 64, 64), (7, 64, 64), (11, 64, 64)))
F = InceptionSpec(256, 32, ((3, 32, 32), (5, 32, 32), (7, 32, 32)))
G = InceptionSpec(128, 32, ((3, 64, 32), (7, 64, 32), (11, 64, 32)))
H = InceptionSpec(128, 16, ((3, 32, 16), (7, 32, 16), (11, 32, 16)))
I = InceptionSpec(128, 16, ((3, 64, 16), (7, 64, 16), (11, 64, 16)))  # noqa: E741 (the ninth letter)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel_size, 1, kernel_size // 2),
            nn.BatchNorm2d(out_channels, BN_EPS, affine=False), nn.ReLU(inplace=True)]


class Inception(nn.ModuleList):
    """Branches run side by side on the same input; their outputs are stacked along channels."""

    def __init__(self, spec: InceptionSpec) -> None:
        branches = [nn.Sequential(*conv_bn_relu(spec.in_channels, spec.plain_out, 1))]
        for kernel_size, reduced, out in spec.branches:
            branches.append(nn.Sequential(*conv_bn_relu(spec.in_channels, reduced, 1),
                                          *conv_bn_relu(reduced, out, kernel_size)))
        super().__init__(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self], dim=1)


class SummedPaths(nn.ModuleList):
    """Two paths from the same input, added (Torch's ConcatTable followed by CAddTable)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = self
        return first(x) + second(x)


class HourglassLevel(nn.Sequential):
    """One level: a path kept at this resolution plus a path through the 2×-coarser level.

    ``pooled_first`` gives the order the two paths have in the checkpoint (it differs between
    levels); the sum does not depend on it.
    """

    def __init__(self, same_scale: nn.Sequential, coarser: nn.Sequential, pooled_first: bool) -> None:
        paths = [coarser, same_scale] if pooled_first else [same_scale, coarser]
        super().__init__(SummedPaths(paths))


def coarser_path(pool: nn.Module, before: list[InceptionSpec], inner: nn.Module | None,
                 after: list[InceptionSpec]) -> nn.Sequential:
    """Pool 2×, inception modules, the next level (if any), more modules, upsample 2× (nearest)."""
    layers: list[nn.Module] = [pool, *(Inception(s) for s in before)]
    if inner is not None:
        layers.append(inner)
    layers += [*(Inception(s) for s in after), nn.Upsample(scale_factor=2, mode="nearest")]
    return nn.Sequential(*layers)


def same_scale_path(*specs: InceptionSpec) -> nn.Sequential:
    return nn.Sequential(*(Inception(s) for s in specs))


class HourGlass(nn.Sequential):
    """RGB in [0, 1] → log depth, both ``(B, ·, H, W)``; H and W a multiple of 16.

    Most of its memory goes to the full-resolution part: the 128-channel stem and the first
    level's same-scale path. Both are local, so :meth:`forward` can run them in row strips
    (``strip_pixels``); only the pooled path, at a quarter of the pixels, is run whole.
    """

    def __init__(self) -> None:
        level4 = HourglassLevel(same_scale_path(D, D), coarser_path(nn.AvgPool2d(2, 2), [D, D, D], None, []),
                                pooled_first=False)
        level3 = HourglassLevel(same_scale_path(D, E), coarser_path(nn.AvgPool2d(2, 2), [D, D], level4, [D, E]),
                                pooled_first=False)
        level2 = HourglassLevel(same_scale_path(A, G), coarser_path(nn.MaxPool2d(2, 2), [A, C], level3, [D, F]),
                                pooled_first=True)
        level1 = HourglassLevel(same_scale_path(I), coarser_path(nn.MaxPool2d(2, 2), [A, A], level2, [B, H]),
                                pooled_first=True)
        super().__init__(
            nn.Conv2d(3, 128, 7, 1, 3),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            level1,
            nn.Conv2d(H.out_channels, 1, 3, 1, 1),
        )

    def forward(self, image: torch.Tensor, strip_pixels: int | None = None) -> torch.Tensor:
        if strip_pixels is None:
            return super().forward(image)
        stem, level1, head = nn.Sequential(*list(self)[:3]), self[3], self[4]
        coarser, same_scale = level1[0]  # the first level lists its pooled path first
        pool, coarser_inner, upsample = coarser[0], coarser[1:-1], coarser[-1]
        height, width = image.shape[2:]
        # The pooled path: pooled stem, built band by band (even bands: 2 × 2 pooling), then run whole.
        pooled = torch.cat([pool(on_rows(stem, image, rows, STEM_HALO))
                            for rows in row_strips(height, width, strip_pixels, multiple=2)], dim=2)
        coarse = coarser_inner(pooled)  # half resolution, before its nearest-neighbour upsampling
        del pooled
        depth = image.new_empty(image.shape[0], 1, height, width)
        for rows in row_strips(height, width, strip_pixels):
            level_rows, keep = with_halo(rows, HEAD_HALO, height)
            near = on_rows(lambda band: same_scale(stem(band)), image, level_rows, STEM_HALO + SAME_SCALE_HALO)
            half = coarse[:, :, level_rows.start // 2:(level_rows.stop + 1) // 2]
            far = upsample(half)[:, :, level_rows.start % 2:level_rows.start % 2 + near.shape[2]]
            depth[:, :, rows] = head(far + near)[:, :, keep]
        return depth
