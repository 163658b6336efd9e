"""Output control: codecs the ffmpeg binary has, containers, crf/preset, subtitles, metadata, rotation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from interpolation.api import run
from interpolation.encoding import CODECS, resolve, subtitle_encoder
from interpolation.errors import BadOptionsError
from interpolation.ffmpeg_binary import available_encoders, ffmpeg_exe
from interpolation.options import Options
from tests.media import audio_duration, ffmpeg, make_testsrc, read_video

#: The codec name a decoder reports for each --codec choice.
DECODED_NAME = {"h264": "h264", "h265": "hevc", "vp9": "vp9", "av1": "av1"}
#: One natural container per codec (each codec's other containers share the same code path).
CONTAINER_FOR = {"h264": "mp4", "h265": "mp4", "vp9": "webm", "av1": "mkv"}


def stream_codecs(path: Path) -> dict[str, list[str]]:
    """Canonical codec names per stream type, as ffprobe lists them."""
    with av.open(str(path)) as container:
        return {kind: [stream.codec_context.codec.canonical_name for stream in getattr(container.streams, kind)]
                for kind in ("video", "audio", "subtitles")}


def ffmpeg_report(path: Path) -> str:
    """What ``ffmpeg -i`` says about a file (streams, side data such as a display matrix, metadata)."""
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


@pytest.mark.parametrize("codec", list(CODECS))
def test_each_codec_the_binary_has_is_written_and_the_others_are_refused_clearly(tmp_path, codec):
    source = make_testsrc(tmp_path / "in.mp4", fps="25", seconds=0.4, audio=True)
    container = CONTAINER_FOR[codec]
    options = Options(model="blend", fps=50, codec=codec, preset="ultrafast")
    if not any(encoder in available_encoders() for encoder in CODECS[codec].encoders):
        with pytest.raises(BadOptionsError, match=f"this ffmpeg cannot encode {codec}"):
            run(source, tmp_path / f"out.{container}", options)
        return
    result = run(source, tmp_path / f"out.{container}", options)
    assert (result.codec, result.container) == (codec, container)
    assert stream_codecs(result.output_path)["video"] == [DECODED_NAME[codec]]
    times, images = read_video(result.output_path)
    assert len(images) == 20 and images[0].shape == (64, 96, 3)
    assert audio_duration(result.output_path) == pytest.approx(0.4, abs=0.03)


def test_a_missing_encoder_is_a_clear_error_naming_what_works():
    only_h264 = {"libx264", "aac", "libopus"}
    with pytest.raises(BadOptionsError, match=r"cannot encode av1 .*libsvtav1 or libaom-av1.*choose another codec: h264"):
        resolve("mp4", "av1", None, "medium", available=only_h264)
    assert resolve("mkv", "av1", None, "medium", available={"libaom-av1", "aac"}).encoder == "libaom-av1"
    with pytest.raises(BadOptionsError, match="h264 cannot go in webm"):
        resolve("webm", "h264", None, "medium", available=available_encoders())
    with pytest.raises(BadOptionsError, match="crf for h264 must be between 0 and 51"):
        resolve("mp4", "h264", 60, "medium", available=available_encoders())


def test_webm_output_name_picks_vp9_and_opus(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", fps="25", seconds=0.4, audio=True)
    cli = subprocess.run([sys.executable, "-m", "interpolation", str(source), "-o", str(tmp_path / "x.webm"),
                          "--model", "blend", "--preset", "ultrafast"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "VP9 in WEBM" in cli.stdout
    codecs = stream_codecs(tmp_path / "x.webm")
    assert codecs["video"] == ["vp9"] and codecs["audio"] == ["opus"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--codec", "h264", "-o", "x.webm"], "h264 cannot go in webm"),
    (["--container", "mkv", "-o", "x.mp4"], "ends in .mp4 but the container asked for is mkv"),
    (["-o", "x.avi"], "unknown video file type '.avi'"),
    (["--codec", "vp9", "-o", "x.gif"], "apply to video files, not to gif"),
    (["--codec", "mpeg2", "-o", "x.mp4"], "invalid choice: 'mpeg2'"),
    (["--slowmo", "12", "-o", "x.mp4"], "must be between 2 and 8"),
    (["--cut-threshold", "1.5", "-o", "x.mp4"], "must be at most 1"),
])
def test_bad_output_options_are_one_line_errors(tmp_path, flags, message):
    source = make_testsrc(tmp_path / "in.mp4", seconds=0.2)
    cli = subprocess.run([sys.executable, "-m", "interpolation", str(source), "--model", "blend", *flags],
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 2 and message in cli.stderr
    assert "Traceback" not in cli.stderr


def test_crf_and_preset_reach_the_encoder(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", size="160x96", seconds=0.4)
    fine = run(source, tmp_path / "fine.mp4", Options(model="blend", crf=12, preset="ultrafast"))
    coarse = run(source, tmp_path / "coarse.mp4", Options(model="blend", crf=40, preset="slow"))
    assert coarse.size_bytes < fine.size_bytes / 2
    # x264 writes its settings into the stream: ultrafast searches no sub-pixel motion (subme=0).
    assert b"crf=12.0" in fine.output_path.read_bytes() and b"subme=0" in fine.output_path.read_bytes()
    assert b"crf=40.0" in coarse.output_path.read_bytes() and b"subme=8" in coarse.output_path.read_bytes()


def with_subtitles_and_metadata(tmp_path: Path) -> Path:
    """A 1 s clip with audio, a text subtitle (0.5-0.8 s), a title, and where it was filmed."""
    subtitles = tmp_path / "s.srt"
    subtitles.write_text("1\n00:00:00,500 --> 00:00:00,800\nhello\n")
    clip = make_testsrc(tmp_path / "plain.mp4", fps="25", seconds=1, audio=True)
    tagged = tmp_path / "tagged.mp4"
    ffmpeg("-i", str(clip), "-i", str(subtitles), "-map", "0", "-map", "1", "-c:v", "copy", "-c:a", "copy",
           "-c:s", "mov_text", "-metadata", "title=Holiday", "-metadata", "location=+48.8577+002.2950/", str(tagged))
    return tagged


def subtitle_cues(path: Path, tmp_path: Path) -> str:
    srt = tmp_path / f"{path.stem}.srt"
    ffmpeg("-i", str(path), "-map", "0:s:0", str(srt))
    return srt.read_text()


@pytest.mark.parametrize(("name", "subtitle_codec"), [("out.mp4", "mov_text"), ("out.mkv", "subrip"),
                                                      ("out.webm", "webvtt")])
def test_subtitles_and_metadata_are_kept_but_not_the_location(tmp_path, name, subtitle_codec):
    source = with_subtitles_and_metadata(tmp_path)
    result = run(source, tmp_path / name, Options(model="blend", preset="ultrafast"))
    assert stream_codecs(result.output_path)["subtitles"] == [subtitle_codec]
    assert "00:00:00,500 --> 00:00:00,800" in subtitle_cues(result.output_path, tmp_path)
    with av.open(str(result.output_path)) as container:
        tags = {key.lower(): value for key, value in container.metadata.items()}
    assert tags.get("title") == "Holiday"
    assert not any("location" in key for key in tags)
    if not name.endswith(".mp4"):  # MP4's own brand tags are the muxer's; others must not inherit them
        assert "major_brand" not in tags


def test_slow_motion_stretches_subtitle_times(tmp_path):
    source = with_subtitles_and_metadata(tmp_path)
    result = run(source, tmp_path / "slow.mkv", Options(model="blend", slowmo=3, preset="ultrafast"))
    assert "00:00:01,500 --> 00:00:02,400" in subtitle_cues(result.output_path, tmp_path)


def test_picture_subtitles_go_only_where_the_container_holds_them():
    assert subtitle_encoder("mkv", "hdmv_pgs_subtitle") == "copy"
    assert subtitle_encoder("mp4", "hdmv_pgs_subtitle") is None
    assert subtitle_encoder("webm", "dvd_subtitle") is None
    assert subtitle_encoder("mkv", "mov_text") == "srt"
    assert subtitle_encoder("mov", "ass") == "mov_text"


@pytest.mark.parametrize(("rotation", "turns", "name"), [(90, 1, "out.mp4"), (270, 3, "out.webm"),
                                                         (180, 2, "out.mov")])
def test_rotated_phone_video_comes_out_upright_with_no_rotation_left(tmp_path, rotation, turns, name):
    plain = make_testsrc(tmp_path / "plain.mp4", size="96x64", seconds=0.4,
                         codec_args=("-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p"))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", str(rotation), "-i", str(plain), "-c", "copy", str(rotated))
    assert "Display Matrix" in ffmpeg_report(rotated)
    result = run(rotated, tmp_path / name, Options(model="blend", multi=1, crf=12, preset="ultrafast"))
    _, original = read_video(plain)
    with av.open(str(result.output_path)) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == 0
        image = frame.to_ndarray(format="rgb24")
    assert "Display Matrix" not in ffmpeg_report(result.output_path)  # players must not turn it again
    upright = np.rot90(original[0], turns)
    assert image.shape == upright.shape
    assert np.abs(image.astype(int) - upright.astype(int)).mean() < 4


def test_size_budget_works_for_other_codecs_too(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", size="160x120", seconds=0.6, audio=True,
                          codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    unbounded = run(source, tmp_path / "big.webm", Options(model="blend", crf=4, preset="ultrafast"))
    budget = unbounded.size_bytes // 3
    fitted = run(source, tmp_path / "small.webm",
                 Options(model="blend", crf=4, preset="ultrafast", max_bytes=budget))
    assert fitted.size_bytes <= budget
    assert stream_codecs(fitted.output_path) == {"video": ["vp9"], "audio": ["opus"], "subtitles": []}
    assert len(read_video(fitted.output_path)[0]) == 30
