"""The whole engine on tiny real clips: frame counts, timestamps, exact hits, audio, GIF, PNG, sizes.

The blend model is used where the model is not the point (it is exact and fast).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from interpolation.api import run
from interpolation.options import Options
from tests.media import (audio_duration, ffmpeg, make_testsrc, moving_square_frames, read_png_dir, read_video,
                         textured, video_rate, write_frames)

BLEND = Options(model="blend")


def blend(**changes) -> Options:
    return Options(model="blend", **changes)


@pytest.mark.parametrize(
    ("fps_in", "seconds", "options", "fps_out", "frames_out"),
    [
        ("25", 1, blend(multi=2), 50, 50),
        ("25", 1, blend(fps=60), 60, 60),
        ("30", 1, blend(fps=24), 24, 24),
        ("24", 1, blend(fps=50), 50, 50),
        ("25", 1, blend(fps=60, loop=True), 60, 60),
        ("30000/1001", 0.5, blend(multi=2), Fraction(60000, 1001), 30),
    ],
)
def test_mp4_frame_count_rate_and_timestamps(tmp_path, fps_in, seconds, options, fps_out, frames_out):
    source = make_testsrc(tmp_path / "in.mp4", fps=fps_in, seconds=seconds)
    result = run(source, tmp_path / "out.mp4", options)
    times, images = read_video(result.output_path)
    assert result.frames_out == len(images) == frames_out
    assert video_rate(result.output_path) == fps_out
    assert times == pytest.approx([i / float(fps_out) for i in range(frames_out)], abs=1e-3)
    assert images[0].shape == (64, 96, 3)


def lossless_clip(tmp_path: Path, count: int = 5, fps: int = 25) -> tuple[Path, list[np.ndarray]]:
    frames = [textured(48, 64, seed=k) for k in range(count)]
    return write_frames(tmp_path / "lossless.mkv", frames, fps), frames


def test_exact_hits_copy_input_frames_bit_for_bit_and_blend_is_the_mean(tmp_path):
    source, frames = lossless_clip(tmp_path)
    result = run(source, str(tmp_path / "frames") + "/", blend(multi=2))
    out = read_png_dir(result.output_path)
    assert len(out) == 10
    for k, frame in enumerate(frames):
        assert np.array_equal(out[2 * k], frame), f"output {2 * k} must be input {k}"
    for k in range(4):
        mean = (frames[k].astype(int) + frames[k + 1].astype(int) + 1) // 2
        assert np.array_equal(out[2 * k + 1], mean.astype(np.uint8))
    assert np.array_equal(out[9], frames[4])  # after the last frame: hold


def test_loop_tail_blends_last_frame_into_first(tmp_path):
    source, frames = lossless_clip(tmp_path, count=3)
    out = read_png_dir(run(source, str(tmp_path / "loop") + "/", blend(multi=2, loop=True)).output_path)
    mean = (frames[2].astype(int) + frames[0].astype(int) + 1) // 2
    assert len(out) == 6 and np.array_equal(out[5], mean.astype(np.uint8))


def test_png_directory_output_is_numbered_and_lossless(tmp_path):
    source, frames = lossless_clip(tmp_path, count=3)
    target = tmp_path / "png"
    run(source, str(target) + "/", blend(fps=25))
    assert sorted(p.name for p in target.iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert all(np.array_equal(a, b) for a, b in zip(read_png_dir(target), frames))


def test_audio_is_kept_and_stays_in_sync(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", fps="25", seconds=2, audio=True)
    result = run(source, tmp_path / "out.mp4", blend(fps=60))
    assert result.has_audio
    assert audio_duration(result.output_path) == pytest.approx(2.0, abs=0.05)
    times, _ = read_video(result.output_path)
    assert len(times) == 120 and times[-1] + 1 / 60 == pytest.approx(2.0, abs=1e-3)


def test_audio_can_be_dropped(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", seconds=1, audio=True)
    result = run(source, tmp_path / "out.mp4", blend(keep_audio=False))
    assert not result.has_audio and audio_duration(result.output_path) is None


def test_mp4_is_h264_yuv420p_with_faststart(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", seconds=0.5)
    result = run(source, tmp_path / "out.mp4", BLEND)
    with av.open(str(result.output_path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    atoms = top_level_atoms(result.output_path.read_bytes())
    assert "moov" in atoms and "mdat" in atoms
    assert atoms.index("moov") < atoms.index("mdat")  # the index first: playback starts before the download ends


def top_level_atoms(data: bytes) -> list[str]:
    """The types of an MP4's top-level boxes, in file order (ISO/IEC 14496-12 box headers)."""
    types, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset:offset + 4], "big"), data[offset + 4:offset + 8].decode("latin-1")
        header = 8
        if size == 1:  # 64-bit size follows the type
            size, header = int.from_bytes(data[offset + 8:offset + 16], "big"), 16
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - offset
        assert size >= header and offset + size <= len(data), f"broken box {kind!r} at {offset}"
        types.append(kind)
        offset += size
    assert offset == len(data), "trailing bytes after the last box"
    return types


def test_the_atom_reader_sees_an_index_written_last(tmp_path):
    """The faststart check can fail: a plain MP4 (index at the end) reads as mdat before moov."""
    late = make_testsrc(tmp_path / "late.mp4", seconds=0.5)  # ffmpeg's default: moov after mdat
    atoms = top_level_atoms(late.read_bytes())
    assert atoms.index("mdat") < atoms.index("moov")


def test_gif_is_valid_loops_forever_and_is_capped_at_50_fps(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", fps="30", seconds=1)
    result = run(source, tmp_path / "out.gif", blend(fps=60))
    assert result.kind == "gif" and result.output_fps == 50
    assert any("50 fps" in note for note in result.notes)
    data = result.output_path.read_bytes()
    assert data[:6] == b"GIF89a"
    assert b"NETSCAPE2.0\x03\x01\x00\x00" in data  # application extension: loop count 0 = forever
    times, images = read_video(result.output_path)
    assert len(images) == 50 and images[0].shape == (64, 96, 3)
    assert times[1] - times[0] == pytest.approx(0.02)


def test_odd_sizes_still_encode(tmp_path):
    source = make_testsrc(tmp_path / "in.mkv", size="97x61", source="testsrc", codec_args=("-c:v", "ffv1"))
    result = run(source, tmp_path / "out.mp4", BLEND)
    _, images = read_video(result.output_path)
    assert images[0].shape == (62, 98, 3)


def test_rotated_phone_video_comes_out_upright(tmp_path):
    plain = make_testsrc(tmp_path / "plain.mp4", size="96x64", seconds=0.4)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated))
    result = run(rotated, str(tmp_path / "upright") + "/", blend(multi=1))
    out = read_png_dir(result.output_path)
    _, original = read_video(plain)
    assert out[0].shape == (96, 64, 3)
    assert np.abs(out[0].astype(int) - np.rot90(original[0]).astype(int)).mean() < 1


def test_variable_frame_rate_input_is_interpolated_by_real_timestamps(tmp_path):
    source, frames = lossless_clip(tmp_path, count=5, fps=10)
    vfr = tmp_path / "vfr.mkv"  # frame 2 removed: times 0, .1, .3, .4
    ffmpeg("-i", str(source), "-vf", "select='not(eq(n\\,2))'", "-fps_mode", "passthrough",
           "-c:v", "ffv1", "-pix_fmt", "bgr0", str(vfr))
    result = run(vfr, str(tmp_path / "vfr-out") + "/", blend(fps=10))
    out = read_png_dir(result.output_path)
    assert len(out) == 5
    assert np.array_equal(out[1], frames[1]) and np.array_equal(out[3], frames[3])
    mean = (frames[1].astype(int) + frames[3].astype(int) + 1) // 2
    assert np.array_equal(out[2], mean.astype(np.uint8))  # the gap at 0.2 s is filled halfway


def test_animated_gif_input(tmp_path):
    source = make_testsrc(tmp_path / "in.gif", fps="10", seconds=1, codec_args=())
    result = run(source, tmp_path / "out.mp4", blend(fps=20))
    assert result.frames_out == 20 and result.input_fps == 10


def test_repeated_frames_are_interpolated_across(tmp_path):
    drawings = moving_square_frames(3)
    on_twos = [drawings[0], drawings[0], drawings[1], drawings[1], drawings[2], drawings[2]]
    source = write_frames(tmp_path / "twos.mkv", on_twos, 24)
    result = run(source, str(tmp_path / "twos-out") + "/", blend(fps=24))
    out = read_png_dir(result.output_path)
    assert result.duplicates == 3
    mean = (drawings[0].astype(int) + drawings[1].astype(int) + 1) // 2
    assert np.array_equal(out[1], mean.astype(np.uint8))  # not a stuttering copy of drawing 0


def test_scene_cut_is_not_morphed(tmp_path):
    first = make_testsrc(tmp_path / "a.mkv", fps="10", seconds=0.5, source="testsrc2",
                         codec_args=("-c:v", "ffv1", "-pix_fmt", "bgr0"))
    second = make_testsrc(tmp_path / "b.mkv", fps="10", seconds=0.5, source="smptebars",
                          codec_args=("-c:v", "ffv1", "-pix_fmt", "bgr0"))
    both = tmp_path / "cut.mkv"
    ffmpeg("-i", str(first), "-i", str(second), "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
           "-map", "[v]", "-c:v", "ffv1", "-pix_fmt", "bgr0", str(both))
    _, inputs = read_video(both)
    result = run(both, str(tmp_path / "cut-out") + "/", blend(fps=40))
    out = read_png_dir(result.output_path)
    assert result.scene_cuts == 1
    # Outputs between input 4 (last of shot 1) and 5 (first of shot 2) are copies, never mixtures.
    for frame in out[17:20]:
        assert any(np.array_equal(frame, inputs[k]) for k in (4, 5))


def test_mp4_size_budget_shrinks_bitrate_until_it_fits(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", size="320x240", seconds=2, audio=True,
                          codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    unbounded = run(source, tmp_path / "big.mp4", blend(crf=0, preset="ultrafast"))
    budget = unbounded.size_bytes // 4
    fitted = run(source, tmp_path / "small.mp4", blend(crf=0, preset="ultrafast", max_bytes=budget))
    assert fitted.size_bytes <= budget < unbounded.size_bytes
    assert any("fit" in note for note in fitted.notes)
    times, _ = read_video(fitted.output_path)
    assert len(times) == 100 and fitted.has_audio


def test_gif_size_budget_shrinks_until_it_fits(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", size="256x192", fps="25", seconds=1)
    unbounded = run(source, tmp_path / "big.gif", BLEND)
    budget = unbounded.size_bytes // 3
    fitted = run(source, tmp_path / "small.gif", blend(max_bytes=budget))
    assert fitted.size_bytes <= budget
    assert any("shrunk" in note for note in fitted.notes)


def test_output_appears_only_when_complete(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", seconds=0.5)
    calls = []

    def cancel_midway() -> bool:
        calls.append(1)
        return len(calls) > 30

    from interpolation.errors import CancelledError

    with pytest.raises(CancelledError):
        run(source, tmp_path / "out.mp4", BLEND, cancelled=cancel_midway)
    assert not (tmp_path / "out.mp4").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"]  # no temporary left behind


def test_progress_reports_every_frame_up_to_the_total(tmp_path):
    source = make_testsrc(tmp_path / "in.mp4", seconds=0.4)
    seen = []
    run(source, tmp_path / "out.mp4", BLEND, progress=seen.append)
    assert [p.frames_done for p in seen] == list(range(1, 21))
    assert seen[-1].frames_total == 20 and seen[-1].fraction == 1.0


class LaneRecordingBlend:
    """The blend model, claiming two lanes and recording which threads run which pairs, and when."""

    def __init__(self, fail_at: int | None = None) -> None:
        import threading

        from interpolation.models.blend import BlendInterpolator

        self.inner = BlendInterpolator()
        self.name, self.display_name = "blend", "blend"
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.lane_threads: set[str] = set()
        self.started_lanes: list[int] = []
        self.ended = 0
        self.calls = 0
        self.fail_at = fail_at
        self.announced: list[tuple[bytes, bytes]] = []  # (frame0, frame1) as expect() heard them
        self.handed: list[tuple[bytes, bytes]] = []  # as interpolate() got them, when it got them

    def lanes_for(self, height: int, width: int) -> int:
        return 2

    def expect(self, frame0, frame1) -> None:
        import threading

        assert threading.current_thread() is threading.main_thread()  # the engine's own thread
        with self.lock:
            self.announced.append((frame0.tobytes(), frame1.tobytes()))

    def start_lane(self, lanes: int) -> None:
        import threading

        self.started_lanes.append(lanes)
        self.lane_threads.add(threading.current_thread().name)

    def end_lanes(self) -> None:
        self.ended += 1

    def interpolate(self, frame0, frame1, times):
        import time

        with self.lock:
            assert (frame0.tobytes(), frame1.tobytes()) in self.announced  # announced before a lane had it
            self.handed.append((frame0.tobytes(), frame1.tobytes()))
            self.calls += 1
            call = self.calls
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if call == self.fail_at:
                raise RuntimeError("lane failed")
            time.sleep(0.01)  # long enough for the other lane to start
            return self.inner.interpolate(frame0, frame1, times)
        finally:
            with self.lock:
                self.running -= 1

    def close(self) -> None:
        pass


def test_a_model_with_two_lanes_gets_two_pairs_at_once_and_the_output_keeps_its_order(tmp_path):
    frames = moving_square_frames(12)
    source = write_frames(tmp_path / "in.mkv", frames, 10)
    expected_dir, laned_dir = tmp_path / "one", tmp_path / "two"
    run(source, f"{expected_dir}/", blend(fps=30))
    model = LaneRecordingBlend()
    run(source, f"{laned_dir}/", blend(fps=30), model=model)
    assert model.most_at_once == 2 and len(model.lane_threads) == 2 and model.started_lanes == [2, 2]
    assert model.ended == 1
    # Every pair announced once, in the clip's order (each pair starts where the one before ended).
    assert sorted(model.announced) == sorted(set(model.handed)) and len(model.announced) == len(set(model.announced))
    assert all(before[1] == after[0] for before, after in zip(model.announced, model.announced[1:]))
    expected, laned = read_png_dir(expected_dir), read_png_dir(laned_dir)
    assert len(laned) == len(expected) == 36  # 1.2 s at 30 fps
    assert all(np.array_equal(a, b) for a, b in zip(expected, laned))


def test_a_failure_in_a_lane_reaches_the_caller_and_leaves_nothing_behind(tmp_path):
    source = write_frames(tmp_path / "in.mkv", moving_square_frames(12), 10)
    model = LaneRecordingBlend(fail_at=5)
    with pytest.raises(RuntimeError, match="lane failed"):
        run(source, tmp_path / "out.mp4", blend(fps=30), model=model)
    assert model.ended == 1 and not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(("given", "expected"), [(None, "10000"), ("50", "50")])
def test_the_engine_bounds_openmp_spinning_before_torch_loads(given: str | None, expected: str):
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "GOMP_SPINCOUNT"}
    if given is not None:
        env["GOMP_SPINCOUNT"] = given  # the user's own setting wins
    script = "import sys, os, interpolation; print('torch' in sys.modules, os.environ['GOMP_SPINCOUNT'])"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["False", expected]  # set before torch, which reads it when it loads


def test_the_engine_and_the_chat_flow_start_without_importing_torch():
    """torch takes a second or more to import: the model build does it, in its thread beside the probe and
    the scan, and the scan only when TransNetV2 scores a window. A blend job never imports it."""
    import subprocess
    import sys

    script = ("import sys, interpolation.api, interpolation.__main__, interpolation.shots, bot.__main__; "
              "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["False"]


def test_a_model_to_load_is_loaded_beside_the_scan_of_the_clip(tmp_path, monkeypatch):
    import threading

    from interpolation import api
    from interpolation.models.blend import BlendInterpolator

    source = write_frames(tmp_path / "in.mkv", moving_square_frames(6), 10)
    loading = threading.Event()
    scan = api.scan

    def scan_once_loading(*args, **kwargs):
        assert loading.wait(timeout=30), "the model was not loading while the clip was scanned"
        return scan(*args, **kwargs)

    def load() -> BlendInterpolator:
        loading.set()
        return BlendInterpolator()

    monkeypatch.setattr(api, "scan", scan_once_loading)
    result = run(source, f"{tmp_path / 'out'}/", blend(fps=20), model=load)
    assert result.model == "blend" and result.frames_out == 12


def test_a_bad_clip_is_reported_before_a_model_that_fails_to_load(tmp_path):
    from interpolation.errors import BadInputError, WeightsError

    text = tmp_path / "in.mp4"
    text.write_text("not a video\n" * 20)

    def broken_model():
        raise WeightsError("no weights here")

    with pytest.raises(BadInputError, match="not a video"):
        run(text, tmp_path / "out.mp4", blend(fps=20), model=broken_model)


@pytest.mark.parametrize(("given", "arenas"), [(None, 1), ("8", 3)])
def test_lane_threads_share_one_malloc_arena(given: str | None, arenas: int):
    """glibc's per-thread arenas unmapped the model lanes' freed tensors, so each was faulted in again."""
    import os
    import subprocess
    import sys

    script = """
import ctypes, ctypes.util, threading
import interpolation
import numpy as np
barrier = threading.Barrier(2)
kept = []
def lane():
    barrier.wait()  # both threads allocate at once: glibc would give the second its own arena
    for _ in range(200):
        kept.append(np.ones(100_000, np.float32))
threads = [threading.Thread(target=lane) for _ in range(2)]
for thread in threads: thread.start()
for thread in threads: thread.join()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()  # one "Arena n:" paragraph per arena, on stderr
"""
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    if given is not None:
        env["MALLOC_ARENA_MAX"] = given  # the user's own setting wins
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert sum(line.startswith("Arena ") for line in done.stderr.splitlines()) == arenas
