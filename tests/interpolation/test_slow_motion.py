"""Slow motion end to end: frame counts, timestamps, slowed audio (pitch kept) or none, captions."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from interpolation.api import run
from interpolation.errors import BadOptionsError
from interpolation.options import Options
from tests.media import audio_duration, make_testsrc, read_png_dir, read_video, textured, video_rate, write_frames

#: The test tone of tests.media.make_testsrc.
TONE_HZ = 440


def dominant_frequency(path) -> float:
    """The strongest frequency of the first audio stream (decoded as ffprobe/ffplay would)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([frame.to_ndarray().reshape(-1, frame.samples)[0]
                                  for frame in container.decode(stream)])
        rate = stream.rate
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_slowmo_4_at_60_fps_from_30_fps_keeps_the_audio_slowed_with_its_pitch(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", fps="30", seconds=0.5, audio=True)
    result = run(source, tmp_path / "slow.mp4", Options(model="blend", fps=60, slowmo=4))
    times, images = read_video(result.output_path)
    assert result.frames_out == len(images) == 120  # 0.5 s × 4 × 60 fps
    assert video_rate(result.output_path) == 60
    assert times == pytest.approx([i / 60 for i in range(120)], abs=1e-3)
    assert result.duration_s == pytest.approx(2.0)
    assert result.audio == "slowed" and result.has_audio
    assert audio_duration(result.output_path) == pytest.approx(2.0, abs=0.025)  # one AAC frame
    assert dominant_frequency(result.output_path) == pytest.approx(TONE_HZ, abs=8)  # not 110 Hz: pitch kept
    assert "4× slow motion, audio slowed 4×, pitch kept" in result.highlights()


def test_fractional_slowmo_and_dropped_audio(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", fps="24", seconds=0.5, audio=True)
    result = run(source, tmp_path / "slow.mp4", Options(model="blend", fps=48, slowmo=2.5, keep_audio=False))
    times, _ = read_video(result.output_path)
    assert len(times) == 60 and result.output_fps == 48  # 0.5 s × 2.5 × 48 fps
    assert audio_duration(result.output_path) is None
    assert result.audio == "dropped" and result.slowmo == Fraction(5, 2)
    assert "2.5× slow motion, audio dropped" in result.highlights()


def test_every_new_frame_is_interpolated_not_repeated(tmp_path):
    frames = [textured(32, 48, seed=k) for k in range(3)]
    source = write_frames(tmp_path / "in.mkv", frames, 10)
    result = run(source, str(tmp_path / "png") + "/", Options(model="blend", fps=10, slowmo=4))
    out = read_png_dir(result.output_path)
    assert len(out) == 12
    for k in range(3):
        assert np.array_equal(out[4 * k], frames[k])  # inputs land exactly every 4th output
    for k in range(2):  # between inputs: the blend model's mixes at t = 1/4, 1/2, 3/4
        for step in range(1, 4):
            expected = np.floor(frames[k] + (frames[k + 1].astype(np.float32) - frames[k]) * (step / 4) + 0.5)
            assert np.array_equal(out[4 * k + step], expected.astype(np.uint8))
    distinct = {frame.tobytes() for frame in out[:9]}
    assert len(distinct) == 9


@pytest.mark.parametrize("factor", [1.5, 9])
def test_slowmo_outside_2_to_8_is_refused(factor):
    with pytest.raises(BadOptionsError, match="between 2× and 8×"):
        Options(slowmo=factor)
