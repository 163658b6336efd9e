"""The scan: rates, timestamps, repeats and scene cuts read from real files."""

from fractions import Fraction

import cv2
import numpy as np
import pytest
from skimage import data

from interpolation.analysis import scan
from interpolation.options import Limits, SceneSettings
from interpolation.probe import probe
from tests.media import make_testsrc, moving_square_frames, write_frames


def scanned(path, loop=False):
    return scan(probe(path, Limits()), Limits(), SceneSettings(), loop=loop)


def test_ntsc_rate_in_matroska_is_snapped_to_the_exact_grid(tmp_path):
    # Matroska stores whole milliseconds: 0, 33, 67, 100 ... must become k * 1001/30000 exactly.
    clip = make_testsrc(tmp_path / "ntsc.mkv", fps="30000/1001", seconds=0.5)
    source = scanned(clip)
    assert source.constant_rate and source.fps == Fraction(30000, 1001)
    assert source.times == tuple(Fraction(k * 1001, 30000) for k in range(source.frame_count))
    assert source.duration == Fraction(source.frame_count * 1001, 30000)


def test_variable_rate_keeps_real_timestamps(tmp_path):
    frames = moving_square_frames(4)
    clip = tmp_path / "vfr.mkv"
    write_frames(clip, frames, 10, codec_args=("-c:v", "ffv1", "-vf", "setpts='if(eq(N,3),N+1,N)/(10*TB)'",
                                               "-fps_mode", "passthrough"))
    source = scanned(clip)
    assert not source.constant_rate
    assert [float(t) for t in source.times] == pytest.approx([0, 0.1, 0.2, 0.4], abs=1e-3)


def pan_and_cut_frames(step_fraction: float) -> tuple[list[np.ndarray], int]:
    """A camera pan over one photograph, then a cut to another (held for 10 frames); returns frames
    and the cut index."""
    photo = data.astronaut()
    width = 192
    window = photo[100:100 + 144, :]
    step = int(width * step_fraction)
    pan = [cv2.resize(window[:, x:x + width], (width, 144)) for x in range(0, photo.shape[1] - width, step)][:8]
    other = cv2.resize(data.coffee(), (width, 144))
    return pan + [other] * 10, len(pan)


@pytest.mark.parametrize("step_fraction", [0.05, 0.15, 0.3])
def test_a_fast_pan_is_not_a_cut_but_a_change_of_shot_is(tmp_path, step_fraction):
    frames, cut_index = pan_and_cut_frames(step_fraction)
    clip = write_frames(tmp_path / "pan.mkv", frames, 25)
    source = scanned(clip)
    assert [k for k, cut in enumerate(source.cut_before) if cut] == [cut_index]
    assert not source.loop_is_cut  # the last→first seam is looked at only for loops
    looped = scanned(clip, loop=True)
    assert looped.cut_before == source.cut_before
    if step_fraction == 0.05:  # the coffee cup cuts back to the pan (see test_scene_cuts for real shots)
        assert looped.loop_is_cut


def test_a_loop_whose_end_meets_its_start_has_no_cut_at_the_seam(tmp_path):
    """A pan out and back: the last frame continues into the first, so the seam is interpolated."""
    frames, cut_index = pan_and_cut_frames(0.05)
    there_and_back = frames[:cut_index] + frames[cut_index - 2:0:-1]
    source = scanned(write_frames(tmp_path / "back.mkv", there_and_back, 25), loop=True)
    assert not source.loop_is_cut and not any(source.cut_before)


def test_exact_repeats_are_found_but_small_motion_is_not_a_repeat(tmp_path):
    still = moving_square_frames(1, width=320, height=240)[0]
    nudged = still.copy()
    nudged[100:104, 200:204] = 255  # a 4×4-pixel detail changes
    clip = write_frames(tmp_path / "repeats.mp4", [still, still, nudged, nudged], 25,
                        codec_args=("-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p"))
    assert scanned(clip).duplicate == (False, True, False, True)
