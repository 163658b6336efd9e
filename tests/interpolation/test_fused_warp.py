"""The compiled warp kernels compute what RIFE's PyTorch ops compute, and their absence is harmless."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interpolation.models import fused_warp
from interpolation.models.rife import IFNet, added_in_region, deconvolved, resize, shuffled, side_by_side, to_frame

HEIGHT, WIDTH = 64, 96


@pytest.fixture(scope="module")
def kernels() -> fused_warp.Kernels:
    loaded = fused_warp.kernels()
    if loaded is None:
        pytest.skip("no C compiler here: the network runs the PyTorch ops (tested in test_rife)")
    return loaded


def random_side(seed: int, layout: str) -> torch.Tensor:
    values = torch.rand(1, 7, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(seed))
    if layout == "kernel":
        return fused_warp.side_buffer(HEIGHT, WIDTH).copy_(values)
    return values.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else values


def random_flow(batch: int, seed: int) -> torch.Tensor:
    # Large enough that many samples land outside the frame and are clamped to its border.
    return torch.randn(batch, 4, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(seed)) * 8


@pytest.mark.parametrize("layout", ["kernel", "channels_last", "nchw"])
@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_block_input_matches_the_ops(kernels: fused_warp.Kernels, factor: int, layout: str) -> None:
    batch = 2
    side0, side1 = random_side(1, layout), random_side(2, layout)
    flow, t = random_flow(batch, 3), torch.tensor([0.25, 0.8]).view(-1, 1, 1, 1)
    # The previous block's output as phases, channels-last as the convolution leaves them: whole phase
    # rows, so at 1/8 a little more than the half size this block reads (the ops crop, the kernel reads less).
    previous = torch.randn(batch, 208, -(-HEIGHT // (8 * factor)) + 1, -(-WIDTH // (8 * factor)) + 1).contiguous(
        memory_format=torch.channels_last)
    region = (HEIGHT // factor, WIDTH // factor)
    fused = kernels.block_input(side0, side1, flow, t, previous, factor)
    expected = IFNet().block_input(side_by_side(side0, side1, batch), flow, t, shuffled(previous)[:, 4:], 2.0 * factor,
                                   factor, region)
    assert fused.shape == expected.shape == (batch, 28, HEIGHT // factor, WIDTH // factor)
    assert fused.is_contiguous(memory_format=torch.channels_last)  # what the block's convolution reads fastest
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("factor", [1, 4])
def test_block_input_in_bfloat16_is_the_float32_input_rounded(kernels: fused_warp.Kernels, factor: int) -> None:
    """Written as bfloat16 for a bfloat16 block: each value rounded exactly as ``Tensor.to`` rounds it."""
    side0, side1 = random_side(1, "kernel"), random_side(2, "kernel")
    flow, t = random_flow(1, 3), torch.tensor([0.3]).view(-1, 1, 1, 1)
    previous = torch.randn(1, 208, -(-HEIGHT // (8 * factor)) + 1, -(-WIDTH // (8 * factor)) + 1).contiguous(
        memory_format=torch.channels_last)
    full = kernels.block_input(side0, side1, flow, t, previous, factor)
    half = kernels.block_input(side0, side1, flow, t, previous, factor, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(half, full.to(torch.bfloat16))
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        kernels.block_input(side0, side1, flow, t, previous, factor, dtype=torch.float16)


@pytest.mark.parametrize("factor", [1.0, 0.5])  # 1/2: a small frame's last block, at twice the frame's size
def test_final_frame_matches_the_ops(kernels: fused_warp.Kernels, factor: float) -> None:
    batch = 2
    side0, side1 = random_side(4, "kernel"), random_side(5, "kernel")
    flow = random_flow(batch, 6)
    phases = (int(HEIGHT / factor) // 4 + 1, int(WIDTH / factor) // 4 + 1)
    update = torch.randn(batch, 80, *phases, generator=torch.Generator().manual_seed(7)) * 3
    expected = final_frame_by_ops(side0, side1, flow, shuffled(update), factor)
    got = kernels.final_frame(side0, side1, flow, update, enlarged=factor == 0.5)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def final_frame_by_ops(side0: torch.Tensor, side1: torch.Tensor, flow: torch.Tensor, out: torch.Tensor,
                       factor: float) -> torch.Tensor:
    """What IFNet.forward's PyTorch ops make of the last block's output ``out`` (at 1/factor)."""
    batch = flow.shape[0]
    full = flow + resize(out[:, :4] * factor, factor)
    warped = IFNet().warp(side_by_side(side0, side1, batch)[:, :3], full).view(batch, 2, 3, *flow.shape[2:])
    return torch.lerp(warped[:, 1], warped[:, 0], torch.sigmoid(resize(out[:, 4:5], factor)))


@pytest.mark.parametrize("region", ["whole", "part"])
@pytest.mark.parametrize("factor", [1, 2, 16])
@pytest.mark.parametrize("first", [True, False])
def test_add_enlarged_matches_the_ops(kernels: fused_warp.Kernels, factor: int, first: bool, region: str) -> None:
    batch = 2
    raw = torch.randn(batch, 208, HEIGHT // factor // 4 + 1, WIDTH // factor // 4 + 1,
                      generator=torch.Generator().manual_seed(15)).contiguous(memory_format=torch.channels_last)
    if region == "part":  # a block that worked on the top-left part of the frame only
        raw = raw[:, :, :max(2, raw.shape[2] * 3 // 4), :max(2, raw.shape[3] * 2 // 3)]
    flow = None if first else random_flow(batch, 16)
    expected = added_in_region(None if flow is None else flow.clone(), resize(shuffled(raw)[:, :4] * factor, factor),
                               (HEIGHT, WIDTH))
    got = kernels.add_enlarged(None if flow is None else flow.clone(), raw, factor, (HEIGHT, WIDTH))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_rows_split_across_threads_give_the_same_result(kernels: fused_warp.Kernels) -> None:
    side0, side1 = random_side(8, "kernel"), random_side(9, "kernel")
    flow, t = random_flow(1, 10), torch.full((1, 1, 1, 1), 0.5)
    previous = torch.randn(1, 208, HEIGHT // 8 + 1, WIDTH // 8 + 1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = kernels.block_input(side0, side1, flow, t, previous, 1)
        torch.set_num_threads(3)  # rows split in three uneven ranges
        split = kernels.block_input(side0, side1, flow, t, previous, 1)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(alone, split)


def test_a_flow_of_nan_or_inf_reads_no_memory_outside_the_frame(kernels: fused_warp.Kernels) -> None:
    side0, side1 = random_side(11, "kernel"), random_side(12, "kernel")
    flow = torch.full((1, 4, HEIGHT, WIDTH), float("nan"))
    flow[:, :, ::2] = float("inf")
    flow[:, :, 1::4] = -float("inf")
    update = torch.zeros(1, 80, HEIGHT // 4 + 1, WIDTH // 4 + 1)
    frame = kernels.final_frame(side0, side1, flow, update)
    assert frame.shape == (1, 3, HEIGHT, WIDTH)  # no crash; the values are as meaningless as the flow


@pytest.fixture
def fresh_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SMOOTHBOT_CACHE_DIR", str(tmp_path))
    fused_warp.kernels.cache_clear()
    yield tmp_path
    fused_warp.kernels.cache_clear()


def test_a_failing_compiler_leaves_the_ops_in_place_with_a_warning(fresh_build: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CC", "false")
    with caplog.at_level(logging.WARNING, logger=fused_warp.__name__):
        assert fused_warp.kernels() is None
    assert "using PyTorch ops" in caplog.text
    assert not fused_warp.usable(torch.zeros(1))


def test_the_switch_turns_the_kernels_off(fresh_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fused_warp.ENABLE_ENV, "0")
    assert fused_warp.kernels() is None
    assert not list(fresh_build.rglob("*.so"))


def test_the_library_is_compiled_once_and_then_reused(kernels: fused_warp.Kernels, fresh_build: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first = fused_warp.build()
    assert first.parent == fresh_build / "kernels" and first.is_file()
    run = fused_warp.subprocess.run
    commands: list[list[str]] = []

    def recording_run(argv: list[str], **kwargs: object) -> object:
        commands.append(argv)
        return run(argv, **kwargs)

    monkeypatch.setattr(fused_warp.subprocess, "run", recording_run)
    assert fused_warp.build() == first
    assert commands and not any(str(fused_warp.SOURCE) in argv for argv in commands)  # probed, not compiled


def test_resize_and_warp_of_the_ops_path_are_unchanged_by_the_side_layout() -> None:
    """The coarse blocks still run PyTorch ops on the kernels' padded layout: same values as contiguous."""
    side = random_side(13, "kernel")
    flow = random_flow(1, 14)[:, :2]
    network = IFNet()
    torch.testing.assert_close(network.warp(side, flow), network.warp(side.contiguous(), flow))
    torch.testing.assert_close(resize(side, 0.25), resize(side.contiguous(), 0.25))


def test_encoding_into_a_side_puts_the_phases_in_place(kernels: fused_warp.Kernels) -> None:
    phases = torch.randn(1, 16, HEIGHT // 2 + 1, WIDTH // 2 + 1).contiguous(memory_format=torch.channels_last)
    side = random_side(17, "kernel")
    picture = side[:, :3].clone()
    kernels.encoding_into(side, phases)
    assert torch.equal(side[:, 3:], deconvolved(phases))
    assert torch.equal(side[:, :3], picture)  # the picture channels are left alone


def test_picture_is_the_padded_frame_in_both_layouts(kernels: fused_warp.Kernels) -> None:
    frame = np.random.default_rng(18).integers(0, 256, (HEIGHT - 14, WIDTH - 26, 3), dtype=np.uint8)
    side, planes = kernels.picture(frame, HEIGHT, WIDTH)
    # What RifeInterpolator.padded computes with PyTorch ops: [0, 1], zeros below and right, as published.
    expected = F.pad(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0, (0, 26, 0, 14))
    assert torch.equal(planes, expected) and planes.is_contiguous()
    assert fused_warp.has_side_layout(side) and torch.equal(side[:, :3], expected)
    assert torch.all(side.as_strided((HEIGHT, WIDTH), (WIDTH * 8, 8), 7) == 0)  # the padding lane is cleared


def test_to_pixels_rounds_as_to_frame(kernels: fused_warp.Kernels) -> None:
    views = 4
    # Out of range values, and sums whose mean lies exactly halfway between two levels (round half to even).
    images = torch.rand(2, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(19)) * 6 - 1
    images[0, 0, 0, :10] = (torch.arange(10) + 0.5) / 255 * views
    got = kernels.to_pixels(images, views, HEIGHT - 5, WIDTH - 7)
    expected = to_frame(images[:, :, :HEIGHT - 5, :WIDTH - 7] / views)
    assert len(got) == 2 and all(np.array_equal(g, e) for g, e in zip(got, expected))
    assert got[0].shape == (HEIGHT - 5, WIDTH - 7, 3) and got[0].flags.c_contiguous


@pytest.mark.parametrize("factor", [1, 2])
def test_block_input_of_a_region_matches_the_ops(kernels: fused_warp.Kernels, factor: int) -> None:
    """A block working on the top-left part of the frame, handed the previous block's part (half its
    own: the enlargement clamps at that part's edge, not at the frame's)."""
    side0, side1 = random_side(21, "kernel"), random_side(22, "kernel")
    flow, t = random_flow(1, 23), torch.full((1, 1, 1, 1), 0.4)
    region = (HEIGHT // factor - 16, WIDTH // factor - 16)
    previous = torch.randn(1, 208, region[0] // 8 + 1, region[1] // 8 + 1).contiguous(memory_format=torch.channels_last)
    fused = kernels.block_input(side0, side1, flow, t, previous, factor, region)
    expected = IFNet().block_input(side_by_side(side0, side1, 1), flow, t, shuffled(previous)[:, 4:], 2.0 * factor,
                                   factor, region)
    assert fused.shape == expected.shape == (1, 28, *region)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)


def test_final_frame_of_a_region_is_that_part_of_the_frame(kernels: fused_warp.Kernels) -> None:
    side0, side1 = random_side(24, "kernel"), random_side(25, "kernel")
    flow = random_flow(1, 26)
    whole = torch.randn(1, 80, HEIGHT // 4 + 1, WIDTH // 4 + 1, generator=torch.Generator().manual_seed(27))
    part = whole[:, :, :HEIGHT // 4 - 2, :WIDTH // 4 - 4]
    got = kernels.final_frame(side0, side1, flow, part)
    assert got.shape == (1, 3, HEIGHT - 12, WIDTH - 20)
    torch.testing.assert_close(got, kernels.final_frame(side0, side1, flow, whole)[:, :, :HEIGHT - 12, :WIDTH - 20])


@pytest.mark.parametrize("region", [None, (HEIGHT * 2 - 16, WIDTH * 2 - 24)])
def test_enlarged_input_matches_the_ops(kernels: fused_warp.Kernels, region: tuple[int, int] | None) -> None:
    """The last block of a small frame runs at twice the frame's size, after one at the frame's size."""
    batch = 2
    side0, side1 = random_side(29, "kernel"), random_side(30, "kernel")
    flow, t = random_flow(batch, 31), torch.tensor([0.3, 0.7]).view(-1, 1, 1, 1)
    rows, columns = region or (2 * HEIGHT, 2 * WIDTH)
    previous = torch.randn(batch, 208, rows // 8 + 1, columns // 8 + 1,
                           generator=torch.Generator().manual_seed(32)).contiguous(memory_format=torch.channels_last)
    fused = kernels.enlarged_input(side0, side1, flow, t, previous, region)
    expected = IFNet().block_input(side_by_side(side0, side1, batch), flow, t, shuffled(previous)[:, 4:], 1.0, 0.5,
                                   (rows, columns))
    assert fused.shape == expected.shape == (batch, 28, rows, columns)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
