"""DAIN: Depth-Aware Video Frame Interpolation (Bao et al., CVPR 2019), in plain PyTorch.

For two frames and a moment ``t`` the network

1. estimates optical flow both ways with PWC-Net (:class:`~.pwcnet.PWCDCNet`) and depth of
   each frame with MegaDepth's hourglass (:class:`~.megadepth.HourGlass`);
2. projects the flows to time ``t``, weighting by inverse depth so that nearer objects win
   where several pixels arrive together (:func:`~.layers.depth_flow_projection`);
3. predicts a 4 × 4 interpolation kernel per pixel and per frame (:class:`KernelEstimation`)
   and extracts context features of each frame (:class:`ContextExtractor`);
4. warps both frames and their context with the projected flows and kernels
   (:func:`~.layers.filter_interpolation`), mixes the warped frames by ``t``;
5. refines that mix with a residual network (:class:`FrameSynthesis`) looking at everything.

Attribute names follow the original ``networks/DAIN.py`` so that its published ``best.pth``
loads strictly. The original handles t = 0.5 only (its ``DAIN_slowmotion`` variant any t):
here any t in (0, 1) follows the slow-motion variant, which is identical at t = 0.5.

Inference is split in stages (per frame: depth; per pair: flows and kernels; per t: the rest)
so that the interpolator can reuse work across times and pairs. The full-resolution work runs in
row strips (:mod:`.strips`) to bound memory, the context features only for the rows a strip
samples; strips reproduce the whole-frame result (they recompute their receptive-field halo).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import FILTER_SIDE, apply_kernels, depth_flow_projection, kernel_sampling
from .megadepth import HourGlass
from .pwcnet import PWCDCNet
from .strips import row_strips, with_halo

#: PWC-Net predicts flow divided by 20 (its training convention).
FLOW_DIVISOR = 20.0
#: PWC-Net's flow comes at 1/4 of the input resolution.
FLOW_STRIDE = 4
#: Inputs must be a multiple of this: PWC-Net goes down six stride-2 levels.
SIZE_MULTIPLE = 64
#: Added to the inverse depth so that no pixel has zero projection weight (as in the original).
INVERSE_DEPTH_FLOOR = 1e-6
#: Channels of the context features: the frame itself, three 64-channel stages and log depth.
CONTEXT_CHANNELS = 3 + 3 * 64 + 1
#: Rows beyond a strip that influence it, i.e. the receptive-field radius of each strip-wise net.
#: ContextExtractor: 7×7 (3) + dilated block (4 + 1) + dilated block (8 + 1). FrameSynthesis:
#: 7×7 (3) + three blocks of two 3×3 (6) + 3×3 (1).
CONTEXT_HALO = 3 + 5 + 9
SYNTHESIS_HALO = 3 + 6 + 1
#: The synthesis network's input, in the original's order of concatenation, with channel counts:
#: the t-weighted mix, both warped frames, both projected flows, both kernels, both warped contexts.
SYNTHESIS_INPUTS = {"mix": 3, "warped0": 3, "warped1": 3, "offset0": 2, "offset1": 2,
                    "kernels0": FILTER_SIDE ** 2, "kernels1": FILTER_SIDE ** 2,
                    "context0": CONTEXT_CHANNELS, "context1": CONTEXT_CHANNELS}
#: Pixels per strip of the full-resolution work (depth, context, synthesis). A strip holds about
#: 3.5 kB a pixel at its peak (the 437-channel synthesis input and the residual blocks), so
#: ≈ 650 MB whatever the frame size; smaller strips save memory but recompute more halo rows.
STRIP_PIXELS = 192 * 1024


def conv3x3(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, 1, padding=dilation, dilation=dilation, bias=False)


class ResidualBlock(nn.Module):
    """Two 3 × 3 convolutions (the first optionally dilated) added to the input; no batch norm."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels, dilation)
        self.conv2 = conv3x3(channels, channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


class ContextExtractor(nn.Module):
    """Per-pixel context of one frame: the frame and three conv stages, stacked (195 channels).

    Dilations 4 and 8 widen the view without downsampling, so features stay pixel-aligned and
    can be warped like the frame itself (``S2DF_3dense`` in the original).
    """

    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, 64, 7, 1, 3, bias=False), nn.ReLU(inplace=True))
        self.block2 = ResidualBlock(64, dilation=4)
        self.block3 = ResidualBlock(64, dilation=8)

    def stages(self, frame: torch.Tensor) -> list[torch.Tensor]:
        first = self.block1(frame)
        second = self.block2(first)
        return [frame, first, second, self.block3(second)]

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.stages(frame), dim=1)


class FrameSynthesis(nn.Module):
    """The residual refinement: a 7 × 7 conv, three residual blocks and a 3 × 3 conv to RGB
    (``MultipleBasicBlock_4`` in the original)."""

    def __init__(self, in_channels: int, channels: int = 128) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(in_channels, channels, 7, 1, 3), nn.ReLU(inplace=True))
        self.block2 = ResidualBlock(channels)
        self.block3 = ResidualBlock(channels)
        self.block4 = ResidualBlock(channels)
        self.block5 = nn.Sequential(nn.Conv2d(channels, 3, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block5(self.block4(self.block3(self.block2(self.block1(x)))))


def conv_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, 1, 1), nn.ReLU()]


class KernelEstimation(nn.Sequential):
    """The U-Net shared by both kernel heads (``initScaleNets_filter`` in the original).

    Five conv + max-pool stages down to 1/32, a conv, five upsample + conv stages back. The
    activation entering each pool is added to the output of the matching upsample (a skip
    link). The layers sit in one flat sequence because the checkpoint indexes them so.
    """

    def __init__(self, in_channels: int) -> None:
        widths = (16, 32, 64, 128, 256, 512)
        layers = conv_relu(in_channels, widths[0])
        for narrow, wide in zip(widths, widths[1:]):
            layers += [*conv_relu(narrow, wide), nn.MaxPool2d(2)]
        layers += conv_relu(widths[-1], widths[-1])
        for wide, narrow in zip(widths[:0:-1], widths[-2::-1]):
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), *conv_relu(wide, narrow)]
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self:
            if isinstance(layer, nn.MaxPool2d):
                skips.append(x)
            x = layer(x)
            if isinstance(layer, nn.Upsample):
                x = x + skips.pop()
        return x


def kernel_head(channels: int, taps: int) -> nn.Sequential:
    """Per-frame output of the kernel U-Net: conv, ReLU, conv to the 16 kernel weights (no activation)."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU(), nn.Conv2d(channels, taps, 3, 1, 1))


@dataclass
class FrameAnalysis:
    """What DAIN needs of one frame whatever it is paired with, kept while the frame is in use.

    Only the depth: the context features (196 channels, the largest per-frame tensor) are
    recomputed for the rows each synthesis strip samples, which costs little and keeps memory flat.
    """

    log_depth: torch.Tensor  # (B, 1, H, W)

    @property
    def inverse_depth(self) -> torch.Tensor:
        return INVERSE_DEPTH_FLOOR + 1.0 / torch.exp(self.log_depth)


@dataclass
class PairAnalysis:
    """What DAIN needs of a pair of frames, whatever the moment t."""

    flow_forward: torch.Tensor  # frame 0 → frame 1 at 1/4 resolution, in pixels / 20
    flow_backward: torch.Tensor  # frame 1 → frame 0, likewise
    kernels0: torch.Tensor  # (B, 16, H, W) interpolation kernels applied to frame 0
    kernels1: torch.Tensor


class DAIN(nn.Module):
    """The DAIN network in its default configuration (3 channels, 4 × 4 kernels)."""

    def __init__(self) -> None:
        super().__init__()
        self.initScaleNets_filter = KernelEstimation(2 * 3)
        self.initScaleNets_filter1 = kernel_head(16, FILTER_SIDE ** 2)
        self.initScaleNets_filter2 = kernel_head(16, FILTER_SIDE ** 2)
        self.ctxNet = ContextExtractor()
        self.rectifyNet = FrameSynthesis(sum(SYNTHESIS_INPUTS.values()))
        self.flownets = PWCDCNet()
        self.depthNet = HourGlass()

    # -- stages ---------------------------------------------------------------------------

    def analyse_frame(self, frame: torch.Tensor, strip_pixels: int | None = None) -> FrameAnalysis:
        """Log depth of one frame (``(B, 3, H, W)``, RGB in [0, 1])."""
        return FrameAnalysis(self.depthNet(frame, strip_pixels))

    def analyse_pair(self, frame0: torch.Tensor, frame1: torch.Tensor) -> PairAnalysis:
        """Flows both ways and the interpolation kernels of both frames."""
        shared = self.initScaleNets_filter(torch.cat((frame0, frame1), dim=1))
        return PairAnalysis(
            flow_forward=self.flownets(torch.cat((frame0, frame1), dim=1)),
            flow_backward=self.flownets(torch.cat((frame1, frame0), dim=1)),
            kernels0=self.initScaleNets_filter1(shared),
            kernels1=self.initScaleNets_filter2(shared),
        )

    def context(self, frame: torch.Tensor, analysis: FrameAnalysis, rows: slice) -> torch.Tensor:
        """Context features of ``rows`` of ``frame``: the context extractor's 195 channels and log
        depth, laid out channels-last (the warp reads pixels as rows of channels)."""
        computed, keep = with_halo(rows, CONTEXT_HALO, frame.shape[2])
        parts = [*self.ctxNet.stages(frame[:, :, computed]), analysis.log_depth[:, :, computed]]
        band = frame.new_empty(frame.shape[0], rows.stop - rows.start, frame.shape[3], CONTEXT_CHANNELS)
        for part, place in zip(parts, band.split([part.shape[1] for part in parts], dim=3)):
            place.copy_(part[:, :, keep].permute(0, 2, 3, 1))
        return band.permute(0, 3, 1, 2)

    def warp(self, frame: torch.Tensor, analysis: FrameAnalysis, offset: torch.Tensor, kernels: torch.Tensor,
             rows: slice, frame_out: torch.Tensor, context_out: torch.Tensor) -> None:
        """Warp ``rows`` of the frame and of its context to time t with the adaptive warping layer,
        into ``frame_out`` and ``context_out`` ((B, R, W, C) views of the synthesis input).

        The context is computed only for the rows those output rows sample.
        """
        sampling = kernel_sampling(offset, rows)
        kernels = kernels[:, :, rows]
        apply_kernels(frame, sampling, kernels, out=frame_out)
        sampled = sampling.source_rows()
        apply_kernels(self.context(frame, analysis, sampled), sampling, kernels, sampled.start, out=context_out)

    def synthesise(self, frame0: torch.Tensor, frame1: torch.Tensor, first: FrameAnalysis, second: FrameAnalysis,
                   pair: PairAnalysis, t: float, strip_pixels: int | None = None) -> torch.Tensor:
        """The refined frame at ``t`` (unclipped), from the stages above."""
        offset0 = depth_flow_projection(self.flow_at(pair.flow_forward, t), first.inverse_depth)
        offset1 = depth_flow_projection(self.flow_at(pair.flow_backward, 1.0 - t), second.inverse_depth)
        height, width = frame0.shape[2:]
        result = frame0.new_empty(frame0.shape)
        for rows in row_strips(height, width, strip_pixels):
            computed, keep = with_halo(rows, SYNTHESIS_HALO, height)
            # The synthesis input is filled in place, channels-last, instead of concatenated.
            features = frame0.new_zeros(frame0.shape[0], computed.stop - computed.start, width,
                                        sum(SYNTHESIS_INPUTS.values()))
            inputs = dict(zip(SYNTHESIS_INPUTS, features.split(list(SYNTHESIS_INPUTS.values()), dim=3)))
            self.warp(frame0, first, offset0, pair.kernels0, computed, inputs["warped0"], inputs["context0"])
            self.warp(frame1, second, offset1, pair.kernels1, computed, inputs["warped1"], inputs["context1"])
            torch.add(inputs["warped0"] * (1.0 - t), inputs["warped1"] * t, out=inputs["mix"])
            for name, source in (("offset0", offset0), ("offset1", offset1), ("kernels0", pair.kernels0),
                                 ("kernels1", pair.kernels1)):
                inputs[name].copy_(source[:, :, computed].permute(0, 2, 3, 1))
            mix = inputs["mix"].permute(0, 3, 1, 2)
            result[:, :, rows] = (self.rectifyNet(features.permute(0, 3, 1, 2)) + mix)[:, :, keep]
        return result

    @staticmethod
    def flow_at(flow: torch.Tensor, t: float) -> torch.Tensor:
        """PWC-Net's output as full-resolution pixels, scaled to the fraction ``t`` of the motion."""
        # Same order of operations as the original, so the projection's discrete decisions (which
        # pixel a target falls on) are taken on identical numbers.
        return F.interpolate(FLOW_DIVISOR * flow * t, scale_factor=FLOW_STRIDE, mode="bilinear",
                             align_corners=False)

    def forward(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float = 0.5) -> torch.Tensor:
        """The frame at ``t`` between ``frame0`` and ``frame1`` (``(B, 3, H, W)``, RGB in [0, 1],
        H and W multiples of 64), before clipping, as the original's rectified output."""
        check_size(frame0.shape[2], frame0.shape[3])
        return self.synthesise(frame0, frame1, self.analyse_frame(frame0), self.analyse_frame(frame1),
                               self.analyse_pair(frame0, frame1), t)

    # -- checkpoints ----------------------------------------------------------------------

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load a DAIN checkpoint. Accepts the original's keys as saved (with or without the
        ``module.`` prefix DataParallel adds, with or without batch-norm ``num_batches_tracked``)."""
        return super().load_state_dict(self.normalise_checkpoint(state_dict), strict=strict, assign=assign)

    def normalise_checkpoint(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        state = {key.removeprefix("module."): value for key, value in state_dict.items()}
        for name, module in self.named_modules():
            if isinstance(module, nn.BatchNorm2d) and module.track_running_stats:
                # Only a counter for training with momentum=None; inference never reads it.
                state.setdefault(f"{name}.num_batches_tracked", torch.zeros((), dtype=torch.long))
        return state


def check_size(height: int, width: int) -> None:
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(f"DAIN needs sides that are multiples of {SIZE_MULTIPLE}, got {width}x{height}")

