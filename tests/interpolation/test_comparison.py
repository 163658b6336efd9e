"""Before/after videos: sizes, length, the original held at its own timing, readable labels."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from interpolation.api import run
from interpolation.compare import Comparison, composed_size, labels_for
from interpolation.options import Options
from tests.media import make_testsrc, read_png_dir, read_video, textured, video_rate, write_frames

GRAY = 128


@pytest.mark.parametrize(("mode", "size"), [("split", (96, 64)), ("side", (192, 64)), ("stack", (96, 128))])
def test_comparison_video_sizes_and_length(tmp_path, mode, size):
    source = make_testsrc(tmp_path / "in.mp4", fps="25", seconds=0.4, audio=True)
    result = run(source, tmp_path / f"{mode}.mp4", Options(model="blend", fps=50, compare=mode))
    times, images = read_video(result.output_path)
    assert (result.width, result.height) == size and images[0].shape == (size[1], size[0], 3)
    assert len(images) == result.frames_out == 20 and video_rate(result.output_path) == 50
    assert times == pytest.approx([i / 50 for i in range(20)], abs=1e-3)
    assert result.has_audio and result.compare == mode


def test_odd_sizes_are_evened_and_slow_motion_combines(tmp_path):
    source = make_testsrc(tmp_path / "in.mkv", size="97x61", fps="25", seconds=0.4, source="testsrc",
                          codec_args=("-c:v", "ffv1"))
    result = run(source, tmp_path / "stack.webm", Options(model="blend", fps=50, slowmo=2, compare="stack"))
    times, images = read_video(result.output_path)
    assert images[0].shape == (122, 98, 3)  # 97×122 padded to even
    assert len(times) == 40 and times[-1] == pytest.approx(39 / 50, abs=1e-3)


def test_the_original_is_held_at_its_own_timing_beside_the_smoothed_frames(tmp_path):
    frames = [textured(64, 80, seed=k) for k in range(4)]
    source = write_frames(tmp_path / "in.mkv", frames, 10)
    smoothed = read_png_dir(run(source, str(tmp_path / "plain") + "/", Options(model="blend", fps=30)).output_path)
    side = read_png_dir(run(source, str(tmp_path / "side") + "/",
                            Options(model="blend", fps=30, compare="side")).output_path)
    assert len(side) == len(smoothed) == 12
    below_labels = slice(32, 64)  # labels sit in the top-left corner of each half
    for i, frame in enumerate(side):
        assert np.array_equal(frame[below_labels, :80], frames[i // 3][below_labels])  # each input shown 3 times
        assert np.array_equal(frame[below_labels, 80:], smoothed[i][below_labels])


def flat(value: int, width: int = 640, height: int = 360) -> np.ndarray:
    return np.full((height, width, 3), value, dtype=np.uint8)


@pytest.mark.parametrize(("mode", "corners"), [("split", [(0, 0), (340, 0)]), ("side", [(0, 0), (640, 0)]),
                                               ("stack", [(0, 0), (0, 360)])])
def test_labels_are_white_text_on_a_dark_box(mode, corners):
    comparison = Comparison(mode, labels_for(Fraction(25), Fraction(60)), Fraction(60))
    frame = comparison.compose(flat(GRAY), flat(GRAY), 0)
    assert frame.shape[:2] == tuple(reversed(composed_size(640, 360, mode)))
    for x0, y0 in corners:
        area = frame[y0:y0 + 60, x0:x0 + 300]
        assert (area >= 240).all(axis=2).sum() > 150, "text pixels are white"
        assert (area < GRAY * 0.5).all(axis=2).sum() > 2000, "the box behind them is dark"
        assert (area == GRAY).all(axis=2).sum() > 2000, "and small: most of the corner is still picture"


@pytest.mark.parametrize(("size", "one_row"), [((96, 64), False), ((160, 90), False), ((320, 180), True),
                                               ((3840, 2160), True)])
def test_labels_fit_small_and_large_pictures(size, one_row):
    comparison = Comparison("split", labels_for(Fraction(30000, 1001), Fraction(60000, 1001)), Fraction(60))
    before, after = comparison.rendered_labels(*size)
    assert max(before.size[0], after.size[0]) <= size[0] * 0.9
    assert (before.size[0] + after.size[0] <= size[0] * 0.9) == one_row  # else the second goes bottom right
    assert before.size[1] <= max(size[1] * 0.12, 20)
    frame = comparison.compose(flat(GRAY, *size), flat(GRAY, *size), 0)
    if not one_row:  # the smoothed label sits in the bottom right corner
        assert (frame[-size[1] // 4:, size[0] // 2:] >= 240).all(axis=2).any()


def test_labels_say_the_rates():
    assert labels_for(Fraction(25), Fraction(60)) == ("original 25 fps", "smoothed 60 fps")
    assert labels_for(Fraction(30000, 1001), Fraction(60000, 1001)) == ("original 29.97 fps", "smoothed 59.94 fps")


def test_split_line_sweeps_and_each_side_shows_its_video():
    comparison = Comparison("split", ("original", "smoothed"), Fraction(25))
    positions = [comparison.split_position(320, i) for i in range(0, 100, 5)]
    assert positions[0] == 160 and min(positions) >= 64 and max(positions) <= 256
    assert max(positions) > 230 and min(positions) < 90  # it travels across within one 4 s sweep
    frame = comparison.compose(flat(0, 320, 180), flat(200, 320, 180), 25)  # 1 s in: the line is on the right
    line = comparison.split_position(320, 25)
    row = frame[120]
    assert (row[:line - 2] == 0).all() and (row[line + 2:] == 200).all()
    assert (row[line - 1:line + 1] == 255).all()
