"""Optical-flow model: moving things land where they should, pans, any size, edge times, caching, the CLI.

Scenes are synthetic so the truth is known: a bright textured square moving over a dark textured
background (its position is measured as the centroid of the bright pixels) and a camera window
sliding over a larger texture.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from interpolation.__main__ import main
from interpolation.models import create_model
from interpolation.models import flow as flow_module
from interpolation.models.flow import FlowInterpolator
from tests.media import read_png_dir, textured, write_frames

SQUARE = 24  # side of the moving square, px
BRIGHT = 127  # the square is 170..255, the background 0..85: the threshold between them


def square_frame(x: float, y: float, height: int = 96, width: int = 128) -> np.ndarray:
    """The bright textured square with its top-left corner at integer ``(x, y)`` on a dark texture."""
    frame = textured(height, width, seed=1) // 3
    patch = textured(SQUARE, SQUARE, seed=2) // 3 + 170
    left, top = round(x), round(y)
    assert (left, top) == (x, y), "render positions must be whole pixels"
    frame[top:top + SQUARE, left:left + SQUARE] = patch
    return frame


def bright_mask(frame: np.ndarray) -> np.ndarray:
    return frame.mean(axis=2) > BRIGHT


def bright_centroid(frame: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(bright_mask(frame))
    return np.array([xs.mean(), ys.mean()])


def assert_square_where_truth_has_it(frame: np.ndarray, truth: np.ndarray) -> None:
    """Within a pixel of the true position, and one square (not two faded ghosts)."""
    offset = np.hypot(*(bright_centroid(frame) - bright_centroid(truth)))
    got, expected = bright_mask(frame), bright_mask(truth)
    overlap = (got & expected).sum() / (got | expected).sum()
    assert offset < 1.0, f"square centroid {offset:.2f} px from the truth"
    assert overlap > 0.9, f"square shape overlaps the truth by only {overlap:.2f}"


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    mse = np.mean((image.astype(np.float64) - truth.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def pan_frame(x: int, y: int, height: int = 96, width: int = 128) -> np.ndarray:
    """A camera window at ``(x, y)`` over a larger texture (a global pan when x, y change)."""
    world = textured(height + 64, width + 64, seed=5)
    return world[y:y + height, x:x + width].copy()


@pytest.fixture
def flow() -> FlowInterpolator:
    return FlowInterpolator()


def test_registry_name_and_caption():
    model = create_model("flow")
    assert isinstance(model, FlowInterpolator)
    assert (model.name, model.display_name) == ("flow", "optical flow")


@pytest.mark.parametrize(("dx", "dy"), [(8, 0), (-8, 4), (16, 8)])
def test_moving_square_lands_within_a_pixel_at_every_t(flow, dx, dy):
    start = (40, 30)
    frame0, frame1 = square_frame(*start), square_frame(start[0] + dx, start[1] + dy)
    times = [0.25, 0.5, 0.75]
    for t, frame in zip(times, flow.interpolate(frame0, frame1, times)):
        assert_square_where_truth_has_it(frame, square_frame(start[0] + t * dx, start[1] + t * dy))


def test_the_position_check_catches_a_cross_fade():
    frame0, frame1 = square_frame(40, 30), square_frame(48, 30)
    (faded,) = create_model("blend").interpolate(frame0, frame1, [0.25])
    with pytest.raises(AssertionError):
        assert_square_where_truth_has_it(faded, square_frame(42, 30))


def test_global_pan_matches_the_true_middle_frame(flow):
    frame0, frame1, truth = pan_frame(32, 32), pan_frame(38, 28), pan_frame(35, 30)
    (middle,) = flow.interpolate(frame0, frame1, [0.5])
    (faded,) = create_model("blend").interpolate(frame0, frame1, [0.5])
    inner = np.s_[8:-8, 8:-8]  # content entering at the borders is seen by one frame only
    assert psnr(middle[inner], truth[inner]) > 40
    assert psnr(faded[inner], truth[inner]) < 30  # the scene is one a cross-fade gets wrong
    assert psnr(middle, truth) > 30


@pytest.mark.parametrize(("height", "width"), [(97, 131), (33, 17), (5, 7), (1, 1), (2, 64)])
def test_any_size_comes_back_at_its_own_size_as_uint8_rgb(flow, height, width):
    rng = np.random.default_rng(height * width)
    frame0 = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame1 = np.roll(frame0, 1, axis=1)
    frames = flow.interpolate(frame0, frame1, [0.2, 0.5, 0.8])
    assert len(frames) == 3
    for frame in frames:
        assert frame.shape == (height, width, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous


def test_odd_sized_frames_still_track_the_square(flow):
    frame0, frame1 = square_frame(41, 33, height=97, width=131), square_frame(49, 37, height=97, width=131)
    (middle,) = flow.interpolate(frame0, frame1, [0.5])
    assert_square_where_truth_has_it(middle, square_frame(45, 35, height=97, width=131))


def test_times_near_the_ends_give_nearly_the_end_frames(flow):
    frame0, frame1 = square_frame(40, 30), square_frame(48, 34)
    near0, near1 = flow.interpolate(frame0, frame1, [0.01, 0.99])
    assert_square_where_truth_has_it(near0, frame0)
    assert_square_where_truth_has_it(near1, frame1)
    assert np.abs(near0.astype(int) - frame0).mean() < 1.0
    assert np.abs(near1.astype(int) - frame1).mean() < 1.0


def test_identical_frames_come_back_unchanged(flow):
    frame = textured(72, 88, seed=3)
    for middle in flow.interpolate(frame, frame.copy(), [0.1, 0.5, 0.9]):
        assert np.array_equal(middle, frame)


def test_times_outside_the_open_interval_and_mismatched_frames_are_refused(flow):
    frame = textured(16, 16, seed=1)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        flow.interpolate(frame, frame, [1.0])
    with pytest.raises(ValueError, match="share one"):
        flow.interpolate(frame, frame[:8], [0.5])
    assert flow.interpolate(frame, frame, []) == []


class CountingDis:
    """Wraps a DIS estimator and counts flow computations."""

    calls = 0

    def __init__(self, dis: cv2.DISOpticalFlow) -> None:
        self.dis = dis

    def calc(self, *args):
        CountingDis.calls += 1
        return self.dis.calc(*args)


def test_flows_are_computed_once_per_pair_and_frames_are_shared(monkeypatch):
    original = flow_module.dis_for
    monkeypatch.setattr(flow_module, "dis_for", lambda pixels: CountingDis(original(pixels)))
    monkeypatch.setattr(CountingDis, "calls", 0)
    a, b, c = square_frame(40, 30), square_frame(48, 30), square_frame(56, 30)
    model = FlowInterpolator()
    together = model.interpolate(a, b, [0.25, 0.5, 0.75])
    assert CountingDis.calls == 2  # 0→1 and 1→0
    split = model.interpolate(a, b, [0.25]) + model.interpolate(a, b, [0.5, 0.75])
    assert CountingDis.calls == 2  # the same pair again, asked in two calls
    assert all(np.array_equal(x, y) for x, y in zip(together, split))
    b_prepared = model.grey(b)
    model.interpolate(b, c, [0.5])
    assert CountingDis.calls == 4
    assert model.motion(b, c).first is b_prepared  # b's grey image was kept from the pair a→b


def test_a_reused_buffer_with_new_content_is_not_mistaken_for_the_cached_frame(flow):
    a, b = square_frame(40, 30), square_frame(48, 30)
    first = flow.interpolate(a, b, [0.5])[0]
    b[:] = square_frame(56, 30)  # same object, new content
    second = flow.interpolate(a, b, [0.5])[0]
    fresh = FlowInterpolator().interpolate(a, b, [0.5])[0]
    assert np.array_equal(second, fresh) and not np.array_equal(first, second)


def test_cli_with_model_flow_puts_the_square_halfway(tmp_path: Path):
    inputs = [square_frame(24 + 8 * k, 30) for k in range(3)]
    source = write_frames(tmp_path / "square.mkv", inputs, 10)
    target = tmp_path / "frames"
    assert main([str(source), "-o", f"{target}/", "--model", "flow", "--multi", "2", "--quiet"]) == 0
    out = read_png_dir(target)
    assert len(out) == 6
    assert np.array_equal(out[0], inputs[0]) and np.array_equal(out[2], inputs[1])
    assert_square_where_truth_has_it(out[1], square_frame(28, 30))
    assert_square_where_truth_has_it(out[3], square_frame(36, 30))
