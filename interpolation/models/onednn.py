"""Convolutions with their activation (and residual sum) fused, through oneDNN, for CPU inference.

The RIFE blocks are chains of 3×3 convolutions, each followed by a LeakyReLU and, in the residual
blocks, a per-channel gain and a sum with the input. Run as separate PyTorch ops, every one of those
is another pass over a feature map that no longer fits in cache; oneDNN applies them while the
convolution's output is still in registers. Channels-last (NHWC) feature maps are what oneDNN's CPU
convolutions run fastest on; the callers switch to them once, after a block's first convolution.

Measured on this project's 2-core CPU at 480p, eight residual convolutions in a row: channels-last
with the fused gain and sum took 1.14–1.36× less time than the plain NCHW ops (the larger gain on the
finest, 32-channel block). Elsewhere (CUDA, other dtypes, no oneDNN, autograd) the functions compute
the same thing with plain ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The slope of every LeakyReLU in the network.
LEAKY_SLOPE = 0.2
_SAME_3X3 = [1, 1]  # padding (and dilation) lists as oneDNN's ops take them


def fusable(x: torch.Tensor) -> bool:
    """Whether oneDNN's fused CPU convolution applies to ``x`` (float32, on the CPU, no autograd)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and not (torch.is_grad_enabled() and x.requires_grad))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the layout the fused convolutions run fastest on (unchanged where they do not apply)."""
    return x.contiguous(memory_format=torch.channels_last) if fusable(x) else x


def conv_leaky(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1) -> torch.Tensor:
    """``LeakyReLU(conv3x3(x))`` with padding 1; the output keeps ``x``'s memory layout."""
    if fusable(x):
        weight = weight.contiguous(memory_format=torch.channels_last if is_channels_last(x) else torch.contiguous_format)
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, _SAME_3X3, [stride, stride], _SAME_3X3, 1,
                                                       "leaky_relu", [LEAKY_SLOPE], None)
    return F.leaky_relu(F.conv2d(x, weight, bias, stride, 1), LEAKY_SLOPE, inplace=True)


def residual_conv_leaky(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``LeakyReLU(conv3x3(x) · gain + x)``, ``gain`` per output channel (shape ``(1, C, 1, 1)``)."""
    if not fusable(x):
        return F.leaky_relu(F.conv2d(x, weight, bias, 1, 1) * gain + x, LEAKY_SLOPE, inplace=True)
    # conv(x) · g = conv with weights and bias scaled by g: the gain costs no pass of its own.
    per_channel = gain.reshape(-1)
    scaled = (weight * per_channel.view(-1, 1, 1, 1)).contiguous(
        memory_format=torch.channels_last if is_channels_last(x) else torch.contiguous_format)
    summed = torch.ops.mkldnn._convolution_pointwise.binary(x, x, scaled, bias * per_channel, _SAME_3X3, [1, 1],
                                                            _SAME_3X3, 1, "add", None, None, [], None)
    # oneDNN fuses only ReLU after a sum, so the leaky slope is one in-place pass.
    return F.leaky_relu_(summed, LEAKY_SLOPE)


def is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
