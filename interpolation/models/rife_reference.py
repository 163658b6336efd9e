"""The IFNet forward pass exactly as Practical-RIFE publishes it (eager, FP32, NCHW).

Kept as the oracle that :mod:`.rife`'s faster forward is tested against, and as the baseline the
bench measures speed-ups from. It reuses :class:`~.rife.IFNet`'s weights but none of its forward code:
every layer is the plain PyTorch op (no fused convolutions, NCHW), everything at full size, one warp
per tensor, inputs joined before they are resized.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .base import Frame, check_pair
from .rife import BLOCK_SCALES, Head, IFBlock, IFNet, RifeInterpolator, internal_scale, to_frame


def reference_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    _, _, height, width = flow.shape
    xs = torch.linspace(-1.0, 1.0, width).view(1, 1, 1, width).expand(flow.shape[0], -1, height, -1)
    ys = torch.linspace(-1.0, 1.0, height).view(1, 1, height, 1).expand(flow.shape[0], -1, -1, width)
    grid = torch.cat((xs, ys), 1).to(flow)
    flow = torch.cat((flow[:, 0:1] / ((width - 1.0) / 2.0), flow[:, 1:2] / ((height - 1.0) / 2.0)), 1)
    return F.grid_sample(image, (grid + flow).permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def reference_encode(head: Head, image: torch.Tensor) -> torch.Tensor:
    x = F.leaky_relu(F.conv2d(image, head.cnn0.weight, head.cnn0.bias, 2, 1), 0.2)
    x = F.leaky_relu(F.conv2d(x, head.cnn1.weight, head.cnn1.bias, 1, 1), 0.2)
    x = F.leaky_relu(F.conv2d(x, head.cnn2.weight, head.cnn2.bias, 1, 1), 0.2)
    return F.conv_transpose2d(x, head.cnn3.weight, head.cnn3.bias, 2, 1)


def reference_block(block: IFBlock, x: torch.Tensor, flow: torch.Tensor | None,
                    scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
    if flow is not None:
        flow = F.interpolate(flow, scale_factor=1.0 / scale, mode="bilinear", align_corners=False) / scale
        x = torch.cat((x, flow), 1)
    for layer in block.conv0:
        x = F.leaky_relu(F.conv2d(x, layer[0].weight, layer[0].bias, 2, 1), 0.2)
    for residual in block.convblock:
        x = F.leaky_relu(F.conv2d(x, residual.conv.weight, residual.conv.bias, 1, 1) * residual.beta + x, 0.2)
    deconvolution = block.lastconv[0]
    out = F.pixel_shuffle(F.conv_transpose2d(x, deconvolution.weight, deconvolution.bias, 2, 1), 2)
    out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
    return out[:, :4] * scale, out[:, 4:5], out[:, 5:]


@torch.inference_mode()
def reference_forward(net: IFNet, img0: torch.Tensor, img1: torch.Tensor, t: float, scale: float = 1.0) -> torch.Tensor:
    """The frame at ``t`` between padded ``img0`` and ``img1`` (``(1, 3, H, W)`` in [0, 1])."""
    timestep = torch.full_like(img0[:, :1], t)
    feat0, feat1 = reference_encode(net.encode, img0), reference_encode(net.encode, img1)
    warped0, warped1 = img0, img1
    flow = mask = features = None
    for index, block in enumerate(net.blocks()):
        block_scale = BLOCK_SCALES[index] / scale
        if flow is None:
            flow, mask, features = reference_block(block, torch.cat((img0, img1, feat0, feat1, timestep), 1),
                                                   None, block_scale)
        else:
            inputs = torch.cat((warped0, warped1, reference_warp(feat0, flow[:, :2]),
                                reference_warp(feat1, flow[:, 2:4]), timestep, mask, features), 1)
            update, mask, features = reference_block(block, inputs, flow, block_scale)
            flow = flow + update
        warped0 = reference_warp(img0, flow[:, :2])
        warped1 = reference_warp(img1, flow[:, 2:4])
    weight = torch.sigmoid(mask)
    return warped0 * weight + warped1 * (1 - weight)


class ReferenceRifeInterpolator(RifeInterpolator):
    """RIFE run the published way, for the bench: every frame pair encoded anew, one t at a time."""

    name = "rife-reference"
    display_name = "RIFE (published forward)"

    @torch.inference_mode()
    def interpolate(self, frame0: Frame, frame1: Frame, times: Sequence[float]) -> list[Frame]:
        check_pair(frame0, frame1, times)
        height, width = frame0.shape[:2]
        scale = self.scale or internal_scale(height, width, self.quality)
        image0, image1 = self.padded(frame0, scale), self.padded(frame1, scale)
        results = []
        for t in times:
            middle = reference_forward(self.network, image0, image1, t, scale)[:, :, :height, :width]
            results.append(to_frame(middle)[0])
        return results
