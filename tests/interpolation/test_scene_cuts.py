"""Scene cuts as a user setting: hard cut or cross-fade, and a detector confidence that tells a cut
from a fast camera pan on a realistic clip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from bench.cuts import histogram_cuts
from interpolation.analysis import THUMBNAIL_WIDTH, scan
from interpolation.api import run
from interpolation.models.blend import BlendInterpolator
from interpolation.options import Limits, Options, SceneSettings
from interpolation.probe import probe
from interpolation.video_io import decode
from tests.media import ffmpeg, make_testsrc, read_png_dir, read_video, write_frames

DEFAULT_THRESHOLD = SceneSettings().cut_threshold


def two_shots(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """0.5 s of one test pattern, then a hard cut to another, lossless at 10 fps (inputs 4 | 5)."""
    lossless = ("-c:v", "ffv1", "-pix_fmt", "bgr0")
    first = make_testsrc(tmp_path / "a.mkv", fps="10", seconds=0.5, source="testsrc2", codec_args=lossless)
    second = make_testsrc(tmp_path / "b.mkv", fps="10", seconds=0.5, source="smptebars", codec_args=lossless)
    both = tmp_path / "cut.mkv"
    ffmpeg("-i", str(first), "-i", str(second), "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
           "-map", "[v]", *lossless, str(both))
    return both, read_video(both)[1]


class RecordingBlend(BlendInterpolator):
    """The blend model, noting which pairs of frames it was asked to interpolate between."""

    def __init__(self) -> None:
        self.pairs: list[tuple[bytes, bytes]] = []

    def interpolate(self, frame0, frame1, times):
        self.pairs.append((frame0.tobytes(), frame1.tobytes()))
        return super().interpolate(frame0, frame1, times)


def test_fade_cross_fades_across_a_real_cut_where_cut_mode_switches(tmp_path):
    clip, inputs = two_shots(tmp_path)
    hard_model, soft_model = RecordingBlend(), RecordingBlend()
    hard = run(clip, str(tmp_path / "hard") + "/", Options(fps=40, cut_mode="cut"), model=hard_model)
    soft = run(clip, str(tmp_path / "soft") + "/", Options(fps=40, cut_mode="fade"), model=soft_model)
    hard_frames, soft_frames = read_png_dir(hard.output_path), read_png_dir(soft.output_path)
    across_the_cut = (inputs[4].tobytes(), inputs[5].tobytes())
    assert across_the_cut not in hard_model.pairs and across_the_cut not in soft_model.pairs  # never morphed
    assert hard_model.pairs == soft_model.pairs
    assert hard.scene_cuts == soft.scene_cuts == 1
    assert len(hard_frames) == len(soft_frames) == 40
    a, b = inputs[4].astype(np.float32), inputs[5].astype(np.float32)
    for index, t in zip((17, 18, 19), (0.25, 0.5, 0.75)):  # output times between inputs 4 and 5
        assert any(np.array_equal(hard_frames[index], inputs[k]) for k in (4, 5))
        assert np.array_equal(soft_frames[index], np.floor(a + (b - a) * t + 0.5).astype(np.uint8))
    for index in [*range(0, 17), *range(20, 40)]:  # away from the cut both modes agree
        assert np.array_equal(hard_frames[index], soft_frames[index])
    assert soft.highlights() == ["1 scene cut cross-faded, 4 duplicate frames found"]  # the still colour bars
    assert hard.highlights() == ["1 scene cut kept as a hard cut, 4 duplicate frames found"]


def whip_pan_then_cut() -> tuple[list[np.ndarray], int]:
    """A phone-like clip: a fast, motion-blurred pan (a quarter of the frame per frame) across a
    motorbike scene and back, twice, then a cut to a slowly zooming cat. Returns the frames and the
    cut's index."""
    scene = cv2.resize(data.stereo_motorcycle()[0], (1480, 1000))
    there = []
    for x in range(0, 1480 - 480 + 1, 120):
        blurred = cv2.blur(scene[300:570, x:x + 480], (61, 1))  # the shutter smears a fast pan
        there.append(cv2.resize(blurred, (320, 180), interpolation=cv2.INTER_AREA))
    frames = (there + there[-2:0:-1]) * 2
    cut_index = len(frames)
    cat = data.chelsea()
    height, width = cat.shape[:2]
    for k in range(30):
        crop_h, crop_w = int(height / (1 + 0.01 * k)), int(width / (1 + 0.01 * k))
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        frames.append(cv2.resize(cat[top:top + crop_h, left:left + crop_w], (320, 180), interpolation=cv2.INTER_AREA))
    return frames, cut_index


@pytest.fixture(scope="module")
def pan_clip(tmp_path_factory) -> tuple[Path, int]:
    frames, cut_index = whip_pan_then_cut()
    path = tmp_path_factory.mktemp("pan") / "pan.mp4"
    write_frames(path, frames, 30, codec_args=("-c:v", "libx264", "-crf", "23", "-pix_fmt", "yuv420p"))
    return path, cut_index


def cuts_found(path: Path, threshold: float) -> list[int]:
    source = scan(probe(path, Limits()), Limits(), SceneSettings(cut_threshold=threshold))
    return [k for k, cut in enumerate(source.cut_before) if cut]


def test_default_threshold_finds_the_cut_and_not_the_fast_pan(pan_clip):
    path, cut_index = pan_clip
    assert cuts_found(path, DEFAULT_THRESHOLD) == [cut_index]
    # With room to spare: a looser or a stricter confidence gives the same answer.
    assert cuts_found(path, 0.3) == [cut_index]
    assert cuts_found(path, 0.7) == [cut_index]
    # The pan is a real test: colour alone at a low threshold takes it for a string of cuts.
    thumbnails = [f.image for f in decode(path, width=THUMBNAIL_WIDTH)]
    assert len(histogram_cuts(thumbnails, 0.15)) > 3


def test_cut_threshold_from_the_command_line(pan_clip, tmp_path):
    path, _ = pan_clip

    def summary(*flags: str) -> str:
        done = subprocess.run([sys.executable, "-m", "interpolation", str(path), "-o", str(tmp_path / "o.mp4"),
                               "--model", "blend", "--preset", "ultrafast", *flags],
                              capture_output=True, text=True, check=True)
        return done.stdout

    assert "1 scene cut kept as a hard cut" in summary()
    assert "scene cut" not in summary("--cut-threshold", "1")
    assert "1 scene cut cross-faded" in summary("--cut-mode", "fade")
