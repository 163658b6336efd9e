"""PWC-Net (Sun et al., CVPR 2018), the "PWC-DC" variant DAIN uses as its flow estimator.

A six-level feature pyramid is computed for both frames. From the coarsest level (1/64) to
1/4, the second frame's features are warped by the upsampled flow so far, a cost volume
(:func:`~.layers.correlation`) compares them with the first frame's, and a densely connected
decoder predicts the flow at that level. A dilated context network refines the 1/4 flow.

Flows are predicted in units of 1/20 pixel of the full-resolution image at every level
(hence the warp scales 0.625 = 20/32, 1.25, 2.5, 5.0); the caller multiplies by 20 and
upsamples. Attribute names match the checkpoint (``flownets.conv1a.0.weight`` …).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import MAX_DISPLACEMENT, correlation, pwc_warp

#: Channels of the cost volume: one per displacement in the (2·4 + 1)² window.
COST_CHANNELS = (2 * MAX_DISPLACEMENT + 1) ** 2
#: Output channels of the five densely connected decoder convolutions of every level.
DECODER_WIDTHS = (128, 128, 96, 64, 32)
#: Feature channels of pyramid levels 1 … 6 (1/2 … 1/64 resolution).
PYRAMID_WIDTHS = (16, 32, 64, 96, 128, 196)
#: Flow (in 1/20 px of the full image) × this = displacement in pixels of the level below the
#: one it was predicted at: 20 / 2^level.
WARP_SCALES = {5: 0.625, 4: 1.25, 3: 2.5, 2: 5.0}


def conv(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3 × 3 convolution + LeakyReLU(0.1), padded to keep the size (at stride 1)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(0.1))


def predict_flow(in_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, 2, 3, 1, 1)


def upsample(in_channels: int) -> nn.ConvTranspose2d:
    """Learned 2× upsampling (of the flow, or of decoder features into 2 channels)."""
    return nn.ConvTranspose2d(in_channels, 2, 4, 2, 1)


class PWCDCNet(nn.Module):
    """Flow from the first to the second image of a 6-channel input, at 1/4 resolution, in px/20.

    Inputs must be a multiple of 64 in both sides (six stride-2 levels).
    """

    def __init__(self) -> None:
        super().__init__()
        # Feature pyramid, shared by both frames: per level a stride-2 conv and two more convs.
        # (Level 6 names its first two convs the other way round; the checkpoint does too.)
        widths = (3, *PYRAMID_WIDTHS)
        for level in range(1, 6):
            setattr(self, f"conv{level}a", conv(widths[level - 1], widths[level], stride=2))
            setattr(self, f"conv{level}aa", conv(widths[level], widths[level]))
            setattr(self, f"conv{level}b", conv(widths[level], widths[level]))
        self.conv6aa = conv(widths[5], widths[6], stride=2)
        self.conv6a = conv(widths[6], widths[6])
        self.conv6b = conv(widths[6], widths[6])
        self.leakyRELU = nn.LeakyReLU(0.1)

        # Decoders, coarse to fine. Each conv's output is prepended to its input (dense links).
        dense_growth = [sum(DECODER_WIDTHS[:i]) for i in range(len(DECODER_WIDTHS) + 1)]
        for level in range(6, 1, -1):
            # Level 6 sees the cost volume only; finer levels add their pyramid features, the
            # upsampled flow and the upsampled decoder features (2 + 2 channels).
            first = COST_CHANNELS if level == 6 else COST_CHANNELS + PYRAMID_WIDTHS[level - 1] + 4
            for i, width in enumerate(DECODER_WIDTHS):
                setattr(self, f"conv{level}_{i}", conv(first + dense_growth[i], width))
            setattr(self, f"predict_flow{level}", predict_flow(first + dense_growth[-1]))
            setattr(self, f"deconv{level}", upsample(2))
            if level > 2:
                setattr(self, f"upfeat{level}", upsample(first + dense_growth[-1]))

        # Context network: dilated convolutions over the finest decoder state refine flow2.
        last_decoder = COST_CHANNELS + PYRAMID_WIDTHS[1] + 4 + dense_growth[-1]
        self.dc_conv1 = conv(last_decoder, 128)
        self.dc_conv2 = conv(128, 128, dilation=2)
        self.dc_conv3 = conv(128, 128, dilation=4)
        self.dc_conv4 = conv(128, 96, dilation=8)
        self.dc_conv5 = conv(96, 64, dilation=16)
        self.dc_conv6 = conv(64, 32)
        self.dc_conv7 = predict_flow(32)

    def pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Features at 1/2 … 1/64 resolution."""
        levels = []
        x = image
        for level in range(1, 7):
            names = ("aa", "a", "b") if level == 6 else ("a", "aa", "b")
            for suffix in names:
                x = getattr(self, f"conv{level}{suffix}")(x)
            levels.append(x)
        return levels

    def decode(self, level: int, x: torch.Tensor) -> torch.Tensor:
        """The densely connected decoder of one level: each output is stacked in front of its input."""
        for i in range(len(DECODER_WIDTHS)):
            x = torch.cat((getattr(self, f"conv{level}_{i}")(x), x), dim=1)
        return x

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        first = self.pyramid(frames[:, :3])
        second = self.pyramid(frames[:, 3:])
        cost = self.leakyRELU(correlation(first[5], second[5]))
        x = self.decode(6, cost)
        flow = self.predict_flow6(x)
        up_flow, up_features = self.deconv6(flow), self.upfeat6(x)
        for level in range(5, 1, -1):
            warped = pwc_warp(second[level - 1], up_flow * WARP_SCALES[level])
            cost = self.leakyRELU(correlation(first[level - 1], warped))
            x = self.decode(level, torch.cat((cost, first[level - 1], up_flow, up_features), dim=1))
            flow = getattr(self, f"predict_flow{level}")(x)
            if level > 2:
                up_flow = getattr(self, f"deconv{level}")(flow)
                up_features = getattr(self, f"upfeat{level}")(x)
        refinement = self.dc_conv4(self.dc_conv3(self.dc_conv2(self.dc_conv1(x))))
        return flow + self.dc_conv7(self.dc_conv6(self.dc_conv5(refinement)))
