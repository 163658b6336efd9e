"""Bad and hostile input through the real CLI: one human line on stderr, exit 2, nothing left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from interpolation.ffmpeg_binary import ffmpeg_exe
from tests.media import ffmpeg, make_testsrc


#: The checkout under test (the CLI runs in another directory, where the installed copy would win).
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "interpolation", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120, env=env)


def assert_refused(tmp_path: Path, source: Path, expected: str, *extra: str) -> None:
    output = tmp_path / "out" / "result.mp4"
    before = set(tmp_path.rglob("*"))
    result = run_cli(source, "-o", output, "--model", "blend", *extra, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert expected in lines[0], lines[0]
    assert not output.exists()
    assert set(tmp_path.rglob("*")) - before <= {tmp_path / "out"}  # no partial or temporary files


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_refused(tmp_path, empty, "empty")


def test_text_renamed_to_mp4(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video, just some text\n" * 20)
    assert_refused(tmp_path, text, "not a video")


def test_missing_file(tmp_path):
    assert_refused(tmp_path, tmp_path / "nowhere.mp4", "not found")


def test_truncated_file_without_index(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=2)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size * 6 // 10])
    assert_refused(tmp_path, truncated, "not a video")


def test_truncated_file_with_index_first(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=2,
                        codec_args=("-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size * 6 // 10])
    assert_refused(tmp_path, truncated, "truncated")


def test_audio_only_file(tmp_path):
    audio = tmp_path / "voice.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio))
    assert_refused(tmp_path, audio, "audio-only")


def test_single_frame_video(tmp_path):
    one = make_testsrc(tmp_path / "one.mp4", seconds=0.04)
    assert_refused(tmp_path, one, "single frame")


def test_absurd_frame_rate(tmp_path):
    fast = make_testsrc(tmp_path / "fast.mkv", fps="5000", seconds=0.004, codec_args=("-c:v", "ffv1"))
    assert_refused(tmp_path, fast, "frame rate")


def test_absurd_timestamps(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.2)
    slow = tmp_path / "slow.mkv"  # one frame every 1000 s
    ffmpeg("-i", str(clip), "-vf", "setpts=N*1000/TB", "-fps_mode", "passthrough", "-c:v", "ffv1", str(slow))
    assert_refused(tmp_path, slow, "long")


def test_unreadable_codec(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mkv", seconds=0.2)
    unknown = tmp_path / "unknown.mkv"
    unknown.write_bytes(clip.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/QQQ"))
    assert_refused(tmp_path, unknown, "codec")


def test_enormous_resolution(tmp_path):
    huge = tmp_path / "huge.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=8200x8200:r=1:d=1", "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", str(huge))
    assert_refused(tmp_path, huge, "too large")


def test_duration_beyond_the_limit(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=3)
    assert_refused(tmp_path, clip, "limit 2 s", "--max-duration", "2")


class ConnectionRecorder:
    """A real TCP listener on 127.0.0.1 that records the first bytes of every connection made to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    self.requests.append(connection.recv(1024))
                except OSError:
                    self.requests.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


@pytest.fixture
def recorder():
    listener = ConnectionRecorder()
    yield listener
    listener.close()


def hls_playlist(path: Path, *segments: str) -> Path:
    entries = "".join(f"#EXTINF:1.0,\n{segment}\n" for segment in segments)
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n{entries}#EXT-X-ENDLIST\n")
    return path


def test_hls_playlist_is_refused_and_nothing_is_fetched(tmp_path, recorder):
    secret = make_testsrc(tmp_path / "secret.ts", seconds=1, codec_args=("-c:v", "libx264", "-f", "mpegts"))
    url = f"http://127.0.0.1:{recorder.port}/x.ts"
    # The listener sees a fetch: ffmpeg allowed to use http does fetch the playlist's segment.
    control = hls_playlist(tmp_path / "control.m3u8", url)
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "quiet", "-protocol_whitelist", "file,http,tcp",
                    "-i", str(control), "-f", "null", "-"], capture_output=True, timeout=60)
    control.unlink()
    assert any(b"GET /x.ts" in request for request in recorder.requests), recorder.requests
    recorder.requests.clear()
    for name, segments in (("remote.m3u8", (url,)), ("playlist.m3u8", (f"file://{secret}", url)),
                           ("playlist.mp4", (f"file://{secret}", url))):
        playlist = hls_playlist(tmp_path / name, *segments)
        assert_refused(tmp_path, playlist, "not a video")
        playlist.unlink()
        assert recorder.requests == [], name  # nothing was fetched, not even a connection


def test_ffconcat_script_is_refused(tmp_path):
    secret = make_testsrc(tmp_path / "secret.mp4", seconds=1)
    for name in ("list.ffconcat", "list.mp4"):
        script = tmp_path / name
        script.write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
        assert_refused(tmp_path, script, "not a video")


def test_bad_options_exit_2(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    result = run_cli(clip, "-o", tmp_path / "x.mp4", "--fps", "-5", cwd=tmp_path)
    assert result.returncode == 2 and "must be positive" in result.stderr
    result = run_cli(clip, "-o", tmp_path / "x.mp4", "--gif", cwd=tmp_path)
    assert result.returncode == 2 and "must end in .gif" in result.stderr


@pytest.mark.parametrize("flag", [[], ["--quiet"]])
def test_success_prints_one_summary_line_unless_quiet(tmp_path, flag):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    result = run_cli(clip, "-o", tmp_path / "x.mp4", "--model", "blend", "--fps", "50", *flag, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    if flag:
        assert result.stdout == ""
    else:
        assert "25 → 50 fps, 20 frames, 0.4 s, blend" in result.stdout
    assert result.stderr == ""  # not a terminal: no progress bar


def test_an_error_with_server_details_is_one_line_and_verbose_adds_the_details(tmp_path):
    clip = make_testsrc(tmp_path / "clip.mp4", seconds=0.4)
    missing = tmp_path / "server-only" / "best.pth"
    plain = run_cli(clip, "-o", tmp_path / "x.mp4", "--model", "dain", "--weights", missing, cwd=tmp_path)
    assert plain.returncode == 3
    (line,) = plain.stderr.strip().splitlines()
    assert line.startswith("error: ") and line.endswith("(-v for details)") and "best.pth" in line
    assert str(tmp_path) not in line and "SMOOTHBOT_" not in line  # no server path, no environment variable
    verbose = run_cli(clip, "-o", tmp_path / "x.mp4", "--model", "dain", "--weights", missing, "-v", cwd=tmp_path)
    assert verbose.returncode == 3
    first, *details = verbose.stderr.strip().splitlines()
    assert first == line.removesuffix(" (-v for details)")
    assert details and str(missing) in "\n".join(details) and "Traceback" not in verbose.stderr
