"""The fused oneDNN convolutions compute what the plain PyTorch ops compute, in either layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from interpolation.models.onednn import (PACKS_PER_CONVOLUTION, WeightPacks, channels_last, conv_leaky, fusable, runs_bfloat16,
                                        is_channels_last, residual_conv_leaky)

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


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_packed_weights_are_made_once_per_input_shape_and_give_the_same_result(layout: str) -> None:
    weight, bias = random_layer(6, 6, seed=7)
    gain = torch.rand(1, 6, 1, 1, generator=torch.Generator().manual_seed(8))
    order = torch.tensor([5, 4, 3, 2, 1, 0])
    packs, residual_packs = WeightPacks(), WeightPacks()
    x = torch.randn(1, 6, 12, 20, generator=torch.Generator().manual_seed(9))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        plain = (conv_leaky(x, weight, bias, 2, input_order=order), residual_conv_leaky(x, weight, bias, gain))
        for _ in range(2):
            packed = (conv_leaky(x, weight, bias, 2, packs, order), residual_conv_leaky(x, weight, bias, gain, residual_packs))
            for got, expected in zip(packed, plain):
                torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        assert len(packs._packs) == len(residual_packs._packs) == 1  # the second call reused the first's pack
        conv_leaky(x[:, :, :8], weight, bias, 2, packs, order)  # another shape: another pack
        assert len(packs._packs) == 2
    torch.testing.assert_close(plain[0], F.leaky_relu(F.conv2d(x.contiguous(), weight[:, order], bias, 2, 1), 0.2),
                               rtol=1e-5, atol=1e-5)


def test_a_changed_parameter_is_packed_again_and_the_packs_stay_bounded() -> None:
    weight, bias = random_layer(4, 4, seed=10)
    gain = torch.ones(1, 4, 1, 1)
    packs = WeightPacks()
    x = torch.randn(1, 4, 10, 10, generator=torch.Generator().manual_seed(11))
    with torch.inference_mode():
        before = residual_conv_leaky(x, weight, bias, gain, packs)
    gain.mul_(2)  # as load_state_dict would: in place, same storage
    with torch.inference_mode():
        after = residual_conv_leaky(x, weight, bias, gain, packs)
        torch.testing.assert_close(after, residual_conv_leaky(x, weight, bias, gain))
        assert not torch.allclose(before, after)
        for size in range(4, 4 + 2 * PACKS_PER_CONVOLUTION):
            residual_conv_leaky(x[:, :, :size], weight, bias, gain, packs)
    assert len(packs._packs) <= PACKS_PER_CONVOLUTION


def test_each_thread_count_gets_its_own_pack() -> None:
    """oneDNN lays packed weights out for the threads it runs on; engine lanes run on fewer."""
    weight, bias = random_layer(8, 8, seed=12)
    packs = WeightPacks()
    x = torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(13)).contiguous(
        memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    try:
        with torch.inference_mode():
            results = []
            for count in (2, 1, 2):
                torch.set_num_threads(count)
                results.append(conv_leaky(x, weight, bias, 1, packs))
    finally:
        torch.set_num_threads(threads)
    assert len(packs._packs) == 2
    for result in results:
        torch.testing.assert_close(result, results[0])


def test_the_bfloat16_probe_agrees_with_the_cpus_instructions() -> None:
    """oneDNN's bfloat16 convolutions need AVX-512 BW, VL and DQ, or AVX-NE-CONVERT (an AVX2-only CPU refuses)."""
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo to read the CPU's instructions from")
    flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split(":")[1].split())
    capable = {"avx512bw", "avx512vl", "avx512dq"} <= flags or "avx_ne_convert" in flags
    assert runs_bfloat16() == capable


@pytest.mark.skipif(not runs_bfloat16(), reason="this CPU's oneDNN has no bfloat16 convolutions (AVX2 only)")
def test_bfloat16_inputs_run_fused_in_bfloat16_close_to_float32() -> None:
    """bfloat16 feature maps (weights cast to bfloat16, float32 accumulation): the packed convolutions
    keep the dtype and stay within bfloat16's rounding of the float32 ops; packs are kept per dtype."""
    x = torch.randn(1, 16, 24, 40, generator=torch.Generator().manual_seed(7)).contiguous(memory_format=torch.channels_last)
    weight, bias = random_layer(16, 16, seed=8)
    gain = torch.rand(1, 16, 1, 1, generator=torch.Generator().manual_seed(9)) + 0.5
    packs = WeightPacks()
    with torch.inference_mode():
        plain = residual_conv_leaky(x, weight, bias, gain, packs)
        half = x.to(torch.bfloat16)
        assert fusable(half)
        fused = residual_conv_leaky(half, weight, bias, gain, packs)
        activated = conv_leaky(half, weight, bias, 1, WeightPacks())
    assert fused.dtype == activated.dtype == torch.bfloat16 and is_channels_last(fused)
    assert len(packs._packs) == 2  # one float32 pack, one bfloat16 pack
    torch.testing.assert_close(fused.float(), plain, rtol=0.02, atol=0.05)
    torch.testing.assert_close(activated.float(), F.leaky_relu(F.conv2d(x.contiguous(), weight, bias, 1, 1), 0.2),
                               rtol=0.02, atol=0.05)
    assert not torch.equal(fused.float(), plain)  # it ran in bfloat16
