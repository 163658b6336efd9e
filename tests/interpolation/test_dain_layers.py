"""DAIN's custom layers, vectorised, against per-pixel loops written straight from the CUDA kernels.

Each reference below is a plain transcription of one kernel of the original repository
(baowenbo/DAIN: ``correlation_cuda_kernel.cu``, ``PWCNet.warp``, ``depthflowprojection_cuda_kernel.cu``,
``filterinterpolation_cuda_kernel.cu``): slow, obviously correct, run on tiny float64 inputs.
"""

from __future__ import annotations

import math

import pytest
import torch

from interpolation.models.dain.layers import (apply_kernels, correlation, depth_flow_projection,
                                              filter_interpolation, kernel_sampling, pwc_warp)

#: The issue's bar: each layer equals its loop reference to 1e-5 in float64.
TOLERANCE = 1e-5


def random(*shape: int, seed: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(*shape, generator=generator, dtype=torch.float64)


# -- references --------------------------------------------------------------------------------

def correlation_reference(first: torch.Tensor, second: torch.Tensor, d: int) -> torch.Tensor:
    batch, channels, height, width = first.shape
    out = torch.zeros(batch, (2 * d + 1) ** 2, height, width, dtype=first.dtype)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                for dy in range(-d, d + 1):
                    for dx in range(-d, d + 1):
                        total = 0.0
                        if 0 <= y + dy < height and 0 <= x + dx < width:
                            for c in range(channels):
                                total += float(first[b, c, y, x] * second[b, c, y + dy, x + dx])
                        out[b, (dy + d) * (2 * d + 1) + (dx + d), y, x] = total / channels
    return out


def pwc_warp_reference(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = image.shape
    out = torch.zeros_like(image)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                sx, sy = x + float(flow[b, 0, y, x]), y + float(flow[b, 1, y, x])
                x0, y0 = math.floor(sx), math.floor(sy)
                corners = [(y0, x0, (x0 + 1 - sx) * (y0 + 1 - sy)), (y0, x0 + 1, (sx - x0) * (y0 + 1 - sy)),
                           (y0 + 1, x0, (x0 + 1 - sx) * (sy - y0)), (y0 + 1, x0 + 1, (sx - x0) * (sy - y0))]
                inside = [(yy, xx, w) for yy, xx, w in corners if 0 <= yy < height and 0 <= xx < width]
                if sum(w for _, _, w in inside) < 0.9999:  # sample point not fully inside: zeroed
                    continue
                for c in range(channels):
                    out[b, c, y, x] = sum(w * float(image[b, c, yy, xx]) for yy, xx, w in inside)
    return out


def projection_reference(flow: torch.Tensor, weight: torch.Tensor, fill_holes: bool) -> torch.Tensor:
    batch, _, height, width = flow.shape
    out = torch.zeros_like(flow)
    count = torch.zeros(batch, height, width, dtype=flow.dtype)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                fx, fy = float(flow[b, 0, y, x]), float(flow[b, 1, y, x])
                x2, y2 = x + fx, y + fy
                if x2 >= 0 and y2 >= 0 and x2 <= width - 1 and y2 <= height - 1:
                    left, top = int(x2), int(y2)
                    right, bottom = min(left + 1, width - 1), min(top + 1, height - 1)
                    w = float(weight[b, 0, y, x])
                    for yy, xx in ((top, left), (top, right), (bottom, left), (bottom, right)):
                        out[b, 0, yy, xx] += -w * fx
                        out[b, 1, yy, xx] += -w * fy
                        count[b, yy, xx] += w
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                if count[b, y, x] > 0:
                    out[b, :, y, x] /= count[b, y, x]
    if not fill_holes:
        return out
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                if count[b, y, x] > 0:
                    continue
                left, left_count = x, 0.0
                while left_count == 0 and left - 1 >= 0:
                    left -= 1
                    left_count = float(count[b, y, left])
                right, right_count = x, 0.0
                while right_count == 0 and right + 1 <= width - 1:
                    right += 1
                    right_count = float(count[b, y, right])
                up, up_count = y, 0.0
                while up_count == 0 and up - 1 >= 0:
                    up -= 1
                    up_count = float(count[b, up, x])
                down, down_count = y, 0.0
                while down_count == 0 and down + 1 <= height - 1:
                    down += 1
                    down_count = float(count[b, down, x])
                if left_count + right_count + up_count + down_count <= 0:
                    continue
                used = [(c > 0) * 1.0 for c in (left_count, right_count, up_count, down_count)]
                for ch in range(2):
                    values = (out[b, ch, y, left], out[b, ch, y, right], out[b, ch, up, x], out[b, ch, down, x])
                    out[b, ch, y, x] = sum(u * float(v) for u, v in zip(used, values)) / sum(used)
    return out


def filter_interpolation_reference(image: torch.Tensor, flow: torch.Tensor, filters: torch.Tensor,
                                   filter_size: int = 4) -> torch.Tensor:
    batch, channels, height, width = image.shape
    out = torch.zeros_like(image)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                fx, fy = float(flow[b, 0, y, x]), float(flow[b, 1, y, x])
                x2, y2 = x + fx, y + fy
                if not (x2 >= 0 and y2 >= 0 and x2 <= width - 1 and y2 <= height - 1
                        and abs(fx) < width / 2 and abs(fy) < height / 2):
                    out[b, :, y, x] = image[b, :, y, x]
                    continue
                left, top = int(x2) + 1 - filter_size // 2, int(y2) + 1 - filter_size // 2
                right, bottom = left + filter_size, top + filter_size
                alpha, beta = x2 - int(x2), y2 - int(y2)

                def tap_sum(rows: range, columns: range, c: int) -> float:
                    total = 0.0
                    for j in rows:
                        for i in columns:
                            pixel = float(image[b, c, min(max(0, j), height - 1), min(max(0, i), width - 1)])
                            total += pixel * float(filters[b, (j - top) * filter_size + (i - left), y, x])
                    return total

                upper, lower = range(top, int(y2) + 1), range(int(y2) + 1, bottom)
                west, east = range(left, int(x2) + 1), range(int(x2) + 1, right)
                for c in range(channels):
                    out[b, c, y, x] = ((1 - alpha) * (1 - beta) * tap_sum(upper, west, c)
                                       + alpha * (1 - beta) * tap_sum(upper, east, c)
                                       + (1 - alpha) * beta * tap_sum(lower, west, c)
                                       + alpha * beta * tap_sum(lower, east, c))
    return out


def max_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    assert got.shape == expected.shape and got.dtype == expected.dtype
    return (got - expected).abs().max().item()


# -- correlation -------------------------------------------------------------------------------

def test_correlation_equals_the_loop_reference():
    first, second = random(2, 5, 6, 7, seed=1, low=-1), random(2, 5, 6, 7, seed=2, low=-1)
    got = correlation(first, second)
    assert got.shape == (2, 81, 6, 7)
    assert max_error(got, correlation_reference(first, second, 4)) <= TOLERANCE


def test_correlation_channel_order_is_row_major_in_the_displacement():
    first = torch.ones(1, 1, 9, 9, dtype=torch.float64)
    second = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    second[0, 0, 4 + 1, 4 + 3] = 2.0  # the centre pixel's match sits at dx=+3, dy=+1
    got = correlation(first, second)[0, :, 4, 4]
    assert got.nonzero().flatten().tolist() == [(1 + 4) * 9 + (3 + 4)]


# -- PWC warp ----------------------------------------------------------------------------------

def test_pwc_warp_equals_the_loop_reference():
    image = random(2, 3, 6, 8, seed=3)
    flow = random(2, 2, 6, 8, seed=4, low=-2.5, high=2.5)
    got = pwc_warp(image, flow)
    expected = pwc_warp_reference(image, flow)
    assert max_error(got, expected) <= TOLERANCE
    assert (expected == 0).all(dim=1).any() and (expected != 0).any()  # both masked and sampled pixels


def test_pwc_warp_with_integer_flow_is_a_shift_with_a_zeroed_border():
    image = random(1, 2, 5, 6, seed=5)
    flow = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    flow[:, 0] = 1.0
    got = pwc_warp(image, flow)
    assert torch.allclose(got[..., :-1], image[..., 1:]) and (got[..., -1] == 0).all()


# -- depth-aware flow projection ---------------------------------------------------------------

@pytest.mark.parametrize("fill_holes", [True, False])
@pytest.mark.parametrize("seed", [6, 7, 8])
def test_depth_flow_projection_equals_the_loop_reference(fill_holes: bool, seed: int):
    flow = random(2, 2, 7, 9, seed=seed, low=-3, high=3)
    weight = random(2, 1, 7, 9, seed=seed + 100, low=0.05, high=2.0)
    got = depth_flow_projection(flow, weight, fill_holes=fill_holes)
    assert max_error(got, projection_reference(flow, weight, fill_holes)) <= TOLERANCE


def test_projection_with_integer_targets_and_zero_weights_equals_the_loop_reference():
    """Targets on the last row/column clamp two neighbours onto one pixel (counted twice); pixels
    hit only with zero weight are holes."""
    flow = torch.round(random(1, 2, 6, 7, seed=9, low=-3, high=3) * 2) / 2
    weight = random(1, 1, 6, 7, seed=10, low=0.1, high=1.0)
    weight[0, 0, ::2, ::3] = 0.0
    got = depth_flow_projection(flow, weight)
    assert max_error(got, projection_reference(flow, weight, True)) <= TOLERANCE


def test_projection_fills_holes_from_the_nearest_filled_pixels():
    """Only pixel 0 counts; it lands between columns 0 and 1, and columns 2… take its flow."""
    flow = torch.zeros(1, 2, 1, 6, dtype=torch.float64)
    flow[0, 0, 0, 0] = 0.5
    flow[0, 0, 0, 1] = 3.0  # lands at column 4, but with zero weight: column 4 stays a hole
    weight = torch.zeros(1, 1, 1, 6, dtype=torch.float64)
    weight[0, 0, 0, 0] = 1.0
    got = depth_flow_projection(flow, weight)
    assert got[0, 0, 0].tolist() == [-0.5] * 6 and (got[0, 1] == 0).all()
    assert (depth_flow_projection(flow, weight, fill_holes=False)[0, 0, 0, 2:] == 0).all()


def test_projection_leaves_zero_flow_where_nothing_arrives():
    flow = torch.full((1, 2, 4, 4), 50.0, dtype=torch.float64)
    got = depth_flow_projection(flow, torch.ones(1, 1, 4, 4, dtype=torch.float64))
    assert (got == 0).all()


def test_nearer_pixels_win_where_two_land_together():
    """Two pixels land on the same spot; the one with 9× the inverse depth dominates the mean."""
    flow = torch.zeros(1, 2, 1, 5, dtype=torch.float64)
    flow[0, 0, 0, 0], flow[0, 0, 0, 4] = 2.0, -2.0
    weight = torch.ones(1, 1, 1, 5, dtype=torch.float64)
    weight[0, 0, 0, 0] = 9.0
    weight[0, 0, 0, 1:4] = 1e-9  # the still pixels barely count
    got = depth_flow_projection(flow, weight)
    assert got[0, 0, 0, 2].item() == pytest.approx(-(9 * 2 + 1 * -2) / 10, abs=1e-6)


# -- filter interpolation ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [11, 12, 13])
def test_filter_interpolation_equals_the_loop_reference(seed: int):
    image = random(2, 3, 7, 9, seed=seed)
    flow = random(2, 2, 7, 9, seed=seed + 1, low=-5, high=5)  # some samples outside, some |f| ≥ size/2
    filters = random(2, 16, 7, 9, seed=seed + 2, low=-1, high=1)
    got = filter_interpolation(image, flow, filters)
    assert max_error(got, filter_interpolation_reference(image, flow, filters)) <= TOLERANCE


def test_filter_interpolation_on_integer_and_edge_samples_equals_the_loop_reference():
    image = random(1, 2, 6, 8, seed=14)
    flow = torch.round(random(1, 2, 6, 8, seed=15, low=-3, high=3))
    flow[0, 0, :, 5] = 2.0  # lands exactly on the last column: the window clamps past the edge
    filters = random(1, 16, 6, 8, seed=16)
    got = filter_interpolation(image, flow, filters)
    assert max_error(got, filter_interpolation_reference(image, flow, filters)) <= TOLERANCE


def test_filter_interpolation_in_row_strips_matches_the_whole_image():
    image = random(1, 4, 9, 8, seed=17)
    flow = random(1, 2, 9, 8, seed=18, low=-3, high=3)
    filters = random(1, 16, 9, 8, seed=19)
    whole = filter_interpolation(image, flow, filters)
    strips = torch.cat([filter_interpolation(image, flow, filters, slice(start, min(start + 4, 9)))
                        for start in range(0, 9, 4)], dim=2)
    assert torch.equal(whole, strips)


def test_filter_interpolation_needs_only_the_rows_its_samples_read():
    """The synthesis computes context features only for ``source_rows``; that band must suffice."""
    image = random(2, 3, 12, 8, seed=22)
    flow = random(2, 2, 12, 8, seed=23, low=-2, high=2)
    flow[1, 1, 5] = 4.0  # one row looks further down
    filters = random(2, 16, 12, 8, seed=24)
    rows = slice(4, 7)
    sampling = kernel_sampling(flow, rows)
    band = sampling.source_rows()
    assert band.start <= rows.start and band.stop >= rows.stop and band != slice(0, 12)
    got = apply_kernels(image[:, :, band], sampling, filters[:, :, rows], first_row=band.start)
    assert torch.equal(got, filter_interpolation(image, flow, filters, rows))


def test_bilinear_kernel_makes_filter_interpolation_a_bilinear_warp():
    """With weight 1 on the four taps around the sample point the layer is plain bilinear sampling."""
    image = random(1, 3, 6, 7, seed=20)
    flow = random(1, 2, 6, 7, seed=21, low=-1, high=1)
    filters = torch.zeros(1, 16, 6, 7, dtype=torch.float64)
    filters[:, [5, 6, 9, 10]] = 1.0  # window rows/cols 1 and 2 hold the pixels around the sample
    got = filter_interpolation(image, flow, filters)
    expected = pwc_warp_reference(image, flow)
    xs, ys = torch.meshgrid(torch.arange(7.0), torch.arange(6.0), indexing="xy")
    sample_x, sample_y = xs + flow[0, 0], ys + flow[0, 1]
    fully_inside = (sample_x >= 0) & (sample_x <= 6) & (sample_y >= 0) & (sample_y <= 5)
    assert torch.allclose(got[0][:, fully_inside], expected[0][:, fully_inside])
