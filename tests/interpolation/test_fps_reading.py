"""Reading the frame rate: the declared rate where the timestamps agree, real times where they do not.

Real files made by the real ffmpeg (AVI with B-frames, MP4, MKV, MOV, variable-rate, sparse AVI), read by
the real probe and scan; the rules themselves on exact timestamps.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from interpolation.analysis import scan
from interpolation.api import run
from interpolation.errors import BadInputError
from interpolation.frame_rate import COMMON_RATES, looks_truncated, plausible_rates, read_timing, sorted_times
from interpolation.options import Limits, Options, SceneSettings
from interpolation.probe import probe
from bot.replies import result_caption
from tests.media import ffmpeg, make_testsrc

NTSC_FILM = Fraction(24000, 1001)
NTSC = Fraction(30000, 1001)
LIMITS = Limits()


def scanned(path: Path):
    return scan(probe(path, LIMITS), LIMITS, SceneSettings())


def encoded(path: Path, rate: str, frames: int, *codec_args: str) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=96x64:r={rate}", "-frames:v", str(frames), *codec_args, str(path))
    return path


# --- real files ---------------------------------------------------------------------------------

def test_avi_with_b_frames_at_23_976_is_read_as_23_976_not_24_065(tmp_path):
    # The file: 271 frames declared 24000/1001 in AVI. AVI stores no presentation times, so
    # the decoder labels B-frame-reordered frames with decoding stamps (1, 3, 4, 2 …).
    clip = encoded(tmp_path / "film.avi", "24000/1001", 271, "-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p")
    source = scanned(clip)
    assert source.fps == NTSC_FILM and source.constant_rate
    assert source.frame_count == 271
    assert source.duration == Fraction(271 * 1001, 24000)
    assert not any(source.duplicate)  # out-of-order stamps are not repeats


def test_the_caption_of_that_avi_says_23_976(tmp_path):
    clip = encoded(tmp_path / "film.avi", "24000/1001", 60, "-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p")
    result = run(clip, tmp_path / "out.mp4", Options(fps=60, model="blend"))
    assert result_caption(result).startswith("23.976 → 60 fps")
    assert result.duplicates == 0 and result.frames_out == round(60 * 60 * 1001 / 24000)


def test_avi_without_b_frames(tmp_path):
    source = scanned(encoded(tmp_path / "plain.avi", "24000/1001", 48, "-c:v", "mpeg4", "-bf", "0"))
    assert source.fps == NTSC_FILM and source.constant_rate and source.frame_count == 48


@pytest.mark.parametrize("rate, expected", [("24000/1001", NTSC_FILM), ("30000/1001", NTSC), ("25", Fraction(25)),
                                            ("60000/1001", Fraction(60000, 1001)), ("50", Fraction(50))])
def test_mp4_declared_rates(tmp_path, rate, expected):
    source = scanned(encoded(tmp_path / "clip.mp4", rate, 30, "-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p"))
    assert source.fps == expected and source.constant_rate
    assert source.times == tuple(Fraction(k) / expected for k in range(30))


@pytest.mark.parametrize("rate, expected", [("24000/1001", NTSC_FILM), ("30000/1001", NTSC),
                                            ("60000/1001", Fraction(60000, 1001)), ("24", Fraction(24))])
def test_matroska_millisecond_stamps_snap_to_the_exact_grid(tmp_path, rate, expected):
    source = scanned(encoded(tmp_path / "clip.mkv", rate, 40, "-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p"))
    assert source.fps == expected and source.constant_rate
    assert source.times[-1] == Fraction(39) / expected


def test_mov_at_29_97(tmp_path):
    source = scanned(encoded(tmp_path / "clip.mov", "30000/1001", 30, "-c:v", "libx264", "-pix_fmt", "yuv420p"))
    assert source.fps == NTSC and source.constant_rate


def test_long_avi_keeps_its_exact_duration(tmp_path):
    # Ten minutes of frames would drift by seconds at 24.065 instead of 23.976; 1000 frames already do.
    source = scanned(encoded(tmp_path / "long.avi", "24000/1001", 1000, "-s", "32x32", "-c:v", "mpeg4", "-bf", "2"))
    assert source.fps == NTSC_FILM
    assert float(source.duration) == pytest.approx(1000 * 1001 / 24000, abs=1e-9)


def test_variable_rate_mp4_keeps_real_times(tmp_path):
    # Every fourth frame comes half a frame late, as a phone under load writes them.
    clip = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=30:d=2", "-vf", "settb=1/90000,setpts='(N+floor(N/4)*0.5)/(30*TB)'",
           "-fps_mode", "passthrough", "-enc_time_base", "1/90000", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-video_track_timescale", "90000",
           str(clip))
    source = scanned(clip)
    # The typical interval, not the 26.9 mean nor ffmpeg's r_frame_rate (60, the grid all stamps sit on).
    assert not source.constant_rate and source.fps == 30
    expected = [(k + (k // 4) * 0.5) / 30 for k in range(source.frame_count)]
    assert [float(t) for t in source.times] == pytest.approx(expected, abs=1e-4)
    assert list(source.times) == sorted(source.times)


def test_dropped_frames_keep_the_declared_rate_as_nominal(tmp_path):
    clip = tmp_path / "dropped.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=30:d=2", "-vf", "select='not(eq(mod(n\\,7)\\,3))'",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip))
    source = scanned(clip)
    assert not source.constant_rate and source.fps == 30
    assert Fraction(4, 30) in source.times and Fraction(3, 30) not in source.times


def test_sparse_avi_is_not_called_truncated(tmp_path):
    # AVI writers leave dropped frames out and still count them in the index (OpenCV's tree.avi):
    # few frames spread over the whole declared duration.
    clip = tmp_path / "sparse.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=15:d=4", "-vf", "select='not(mod(n\\,5))'",
           "-fps_mode", "passthrough", "-c:v", "mjpeg", str(clip))
    info = probe(clip, LIMITS)
    source = scan(info, LIMITS, SceneSettings())
    assert info.declared_frames is not None and source.frame_count < info.declared_frames * 0.5
    assert source.fps == 15 and not source.constant_rate
    assert source.times[:3] == (Fraction(0), Fraction(1, 3), Fraction(2, 3))


def test_a_truncated_file_is_still_refused(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=2,
                        codec_args=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size * 6 // 10])
    with pytest.raises(BadInputError, match="truncated"):
        scanned(cut)


def test_probe_lists_the_declared_rates_most_trusted_first(tmp_path):
    info = probe(encoded(tmp_path / "film.avi", "24000/1001", 24, "-c:v", "mpeg4"), LIMITS)
    assert info.declared_rates == (NTSC_FILM,)  # r_frame_rate, average and time base agree
    mkv = probe(encoded(tmp_path / "clip.mkv", "25", 10, "-c:v", "libx264", "-pix_fmt", "yuv420p"), LIMITS)
    assert mkv.declared_rates[0] == 25 and all(rate <= COMMON_RATES[-1] for rate in mkv.declared_rates)


# --- the rules on exact stamps ---------------------------------------------------------------------

def stamps(rate: Fraction, count: int) -> list[Fraction | None]:
    return [Fraction(k) / rate for k in range(count)]


def test_unsorted_stamps_are_sorted_onto_the_frames():
    assert sorted_times([Fraction(1), Fraction(3), None, Fraction(2)]) == [Fraction(1), Fraction(2), None, Fraction(3)]


def test_the_first_declared_rate_that_fits_wins_over_a_wrong_average():
    raw = stamps(NTSC_FILM, 271)
    timing = read_timing(raw, (Fraction(271 * 24000, 270 * 1001), NTSC_FILM), LIMITS, "clip")
    assert (timing.fps, timing.constant_rate, timing.source) == (NTSC_FILM, True, "declared")


def test_without_a_declared_rate_a_common_rate_is_found():
    raw = [Fraction(round(t * 1000), 1000) for t in stamps(NTSC, 50)]  # millisecond rounding
    timing = read_timing(raw, (), LIMITS, "clip")
    assert (timing.fps, timing.constant_rate, timing.source) == (NTSC, True, "common rate")
    assert timing.times[-1] == Fraction(49) / NTSC


def test_an_uncommon_constant_rate_without_declaration_is_variable_at_its_mean():
    raw = stamps(Fraction(37), 20)
    timing = read_timing(raw, (), LIMITS, "clip")
    assert not timing.constant_rate and timing.fps == 37 and timing.source == "mean"


def test_phone_jitter_gives_the_typical_interval_on_the_grid():
    # 30 fps with ±4 ms of jitter and one 100 ms stall: variable, nominally 30.
    jitter = [0, 4, -3, 2, -4, 3, 0, -2]
    raw = [Fraction(k, 30) + Fraction(jitter[k % 8], 1000) + (Fraction(1, 15) if k > 20 else 0) for k in range(40)]
    timing = read_timing(raw, (Fraction(90000),), LIMITS, "clip")
    assert not timing.constant_rate and timing.fps == 30 and timing.source == "typical interval"
    assert timing.times == tuple(t - raw[0] for t in raw)


def test_missing_stamps_take_the_declared_grid():
    raw = stamps(Fraction(25), 6)
    raw[2] = raw[4] = None
    timing = read_timing(raw, (Fraction(25),), LIMITS, "clip")
    assert timing.constant_rate and timing.times == tuple(Fraction(k, 25) for k in range(6))


def test_no_stamps_at_all_use_the_declaration_or_refuse():
    assert read_timing([None, None, None], (Fraction(24),), LIMITS, "clip").fps == 24
    with pytest.raises(BadInputError, match="frame rate is missing"):
        read_timing([None, None, None], (), LIMITS, "clip")


def test_implausible_stamps_are_refused_with_the_files_name():
    raw = [Fraction(0), Fraction(500), Fraction(1000)]  # one frame every 500 s
    with pytest.raises(BadInputError, match="clip.mp4: the timestamps are implausible"):
        read_timing(raw, (), LIMITS, "clip.mp4")


def test_a_millisecond_time_base_is_no_nominal_rate():
    raw = [Fraction(0), Fraction(33, 1000), Fraction(100, 1000), Fraction(133, 1000), Fraction(233, 1000)]
    timing = read_timing(raw, (Fraction(1000),), LIMITS, "clip")
    assert not timing.constant_rate and timing.fps != 1000


def test_plausible_rates_drop_duplicates_and_nonsense():
    assert plausible_rates([Fraction(25), None, Fraction(0), Fraction(25), Fraction(90000), NTSC], LIMITS) == (
        Fraction(25), NTSC)


def test_truncation_needs_both_missing_frames_and_an_early_end():
    assert looks_truncated(30, 1.2, 50, 2.0, Fraction(25), 0.9)
    assert not looks_truncated(12, 3.67, 56, 3.73, Fraction(15), 0.9)  # sparse, full length
    assert not looks_truncated(50, 1.96, 50, 2.0, Fraction(25), 0.9)
    assert looks_truncated(30, 1.2, 50, None, Fraction(25), 0.9)


def test_a_variable_rate_gif_is_not_read_at_its_clocks_100_fps(tmp_path):
    # GIF delays count in hundredths of a second: the 1/100 time base is a clock, not a frame rate.
    clip = tmp_path / "vfr.gif"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=10:d=2", "-vf", "settb=1/100,setpts='(N*10+mod(N\\,3)*3)'",
           "-fps_mode", "passthrough", str(clip))
    info = probe(clip, LIMITS)
    assert Fraction(100) not in info.declared_rates
    source = scan(info, LIMITS, SceneSettings())
    assert not source.constant_rate and source.fps < 50
