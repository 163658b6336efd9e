"""The fused oneDNN convolutions compute what the plain PyTorch ops compute, in either layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from interpolation.models.onednn import channels_last, conv_leaky, fusable, is_channels_last, residual_conv_leaky

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch has no oneDNN")


def random_layer(channels_in: int, channels_out: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(channels_out, channels_in, 3, 3, generator=generator) * 0.1
    return weight, torch.randn(channels_out, generator=generator) * 0.1


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_leaky_matches_plain_ops_and_keeps_the_layout(layout: str, stride: int) -> None:
    x = torch.randn(2, 7, 20, 34, generator=torch.Generator().manual_seed(1))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    weight, bias = random_layer(7, 12, seed=2)
    expected = F.leaky_relu(F.conv2d(x.contiguous(), weight, bias, stride, 1), 0.2)
    with torch.inference_mode():
        fused = conv_leaky(x, weight, bias, stride)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    assert is_channels_last(fused) == (layout == "channels_last")


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_residual_conv_folds_the_gain_and_matches_plain_ops(layout: str) -> None:
    x = torch.randn(1, 16, 24, 40, generator=torch.Generator().manual_seed(3))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    weight, bias = random_layer(16, 16, seed=4)
    gain = torch.rand(1, 16, 1, 1, generator=torch.Generator().manual_seed(5)) * 2 - 0.5  # negative gains too
    expected = F.leaky_relu(F.conv2d(x.contiguous(), weight, bias, 1, 1) * gain + x.contiguous(), 0.2)
    with torch.inference_mode():
        fused = residual_conv_leaky(x, weight, bias, gain)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    assert is_channels_last(fused) == (layout == "channels_last")


def test_autograd_and_other_dtypes_take_the_plain_path() -> None:
    weight, bias = random_layer(4, 4, seed=6)
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    assert not fusable(x)  # training or gradients through the model: plain ops, which autograd knows
    out = residual_conv_leaky(x, weight, bias, torch.ones(1, 4, 1, 1))
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    doubles = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    assert not fusable(doubles)
    assert channels_last(doubles) is doubles  # left alone where the fused kernels do not apply
    torch.testing.assert_close(conv_leaky(doubles, weight.double(), bias.double()),
                               F.leaky_relu(F.conv2d(doubles, weight.double(), bias.double(), 1, 1), 0.2))
