"""Cancel means cancel and hung encoders end, in every phase of a real run (real ffmpeg, real signals).

Each test waits until the ffmpeg child of one phase is running, freezes it with SIGSTOP (a hung
encoder that will never finish by itself), and then either flips ``cancelled`` or lets its deadline
pass. The run must raise promptly and leave no ffmpeg process and no output behind.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from interpolation import child_process
from interpolation.api import run
from interpolation.errors import CancelledError, EncoderTimeoutError
from interpolation.ffmpeg_binary import ffmpeg_exe
from interpolation.options import Options
from tests.media import make_testsrc

#: A stopped child cannot finish; a cancel is honoured within one poll. Far below "forever".
PROMPT_S = 2.0


def ffmpeg_children() -> list[psutil.Process]:
    exe = os.path.basename(ffmpeg_exe())
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            argv = process.cmdline()  # empty between fork and exec
            if process.status() != psutil.STATUS_ZOMBIE and argv and os.path.basename(argv[0]) == exe:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


class PhaseWatch:
    """A ``cancelled`` callable that freezes the first ffmpeg child matching ``marker`` and then says
    "cancel" (or, with ``cancel=False``, never does: the deadline must end the run)."""

    def __init__(self, marker: Callable[[list[str]], bool], cancel: bool = True) -> None:
        self.marker = marker
        self.cancel = cancel
        self.frozen: psutil.Process | None = None
        self.flipped_at: float | None = None

    def __call__(self) -> bool:
        if self.frozen is None:
            for process in ffmpeg_children():
                try:
                    if self.marker(process.cmdline()):
                        process.send_signal(signal.SIGSTOP)
                        self.frozen = process
                        break
                except psutil.NoSuchProcess:
                    continue
        if self.frozen is not None and self.cancel:
            if self.flipped_at is None:
                self.flipped_at = time.monotonic()
            return True
        return False


def frames_are_all_in(argv: list[str]) -> bool:
    return "pipe:0" in argv  # the sink's encoder; frozen after its input (see the progress hook)


PHASES = {
    # name: (output name, options, clip with audio?, marker of the phase's ffmpeg command)
    "encoder drain and audio mux": ("out.mp4", Options(model="blend"), True, None),
    "GIF palette pass": ("out.gif", Options(model="blend"), False, lambda argv: any("palettegen" in a for a in argv)),
    "GIF encode pass": ("out.gif", Options(model="blend"), False, lambda argv: any("paletteuse" in a for a in argv)),
    "size-fit re-encode": ("out.mp4", Options(model="blend", crf=0, preset="ultrafast", max_bytes=60_000), True,
                           lambda argv: "-b:v" in argv),
}


def start_watch(phase: str, cancel: bool) -> tuple[str, Options, bool, PhaseWatch, Callable | None]:
    output, options, audio, marker = PHASES[phase]
    progress = None
    if marker is None:  # the drain: the sink's encoder once every frame is in
        state = {"all_in": False}
        watch = PhaseWatch(lambda argv: state["all_in"] and frames_are_all_in(argv), cancel)

        def progress(report) -> None:
            state["all_in"] = report.frames_done == report.frames_total
    else:
        watch = PhaseWatch(marker, cancel)
    return output, options, audio, watch, progress


def assert_nothing_left(tmp_path: Path, output: str) -> None:
    assert ffmpeg_children() == []
    assert not (tmp_path / output).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # no temporary folder either


@pytest.mark.timeout(120)
@pytest.mark.parametrize("phase", list(PHASES))
def test_a_cancel_in_a_phase_after_the_frames_stops_the_run_at_once(tmp_path: Path, phase: str):
    output, options, audio, watch, progress = start_watch(phase, cancel=True)
    source = make_testsrc(tmp_path / "in.mp4", size="320x240", seconds=1, audio=audio,
                          codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    with pytest.raises(CancelledError):
        run(source, tmp_path / output, options, progress=progress, cancelled=watch)
    raised_at = time.monotonic()
    assert watch.frozen is not None, f"the {phase} never ran"
    assert raised_at - watch.flipped_at < PROMPT_S
    assert_nothing_left(tmp_path, output)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("phase", ["encoder drain and audio mux", "GIF palette pass", "size-fit re-encode"])
def test_a_hung_encoder_in_any_phase_ends_in_a_clear_timeout(tmp_path: Path, phase: str, monkeypatch):
    monkeypatch.setattr(child_process, "TIMEOUT_FLOOR_S", 3.0)
    monkeypatch.setattr(child_process, "WORK_MARGIN", 0.0)
    output, options, audio, watch, progress = start_watch(phase, cancel=False)
    source = make_testsrc(tmp_path / "in.mp4", size="320x240", seconds=1, audio=audio,
                          codec_args=("-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p"))
    with pytest.raises(EncoderTimeoutError) as caught:
        run(source, tmp_path / output, options, progress=progress, cancelled=watch)
    assert watch.frozen is not None, f"the {phase} never ran"
    message = str(caught.value)
    assert "took longer than 3 s and was stopped" in message and str(tmp_path) not in message
    assert str(tmp_path) in caught.value.detail  # the command, for the operator's log
    assert_nothing_left(tmp_path, output)


@pytest.mark.timeout(120)
def test_an_encoder_that_stops_taking_frames_ends_in_a_timeout_not_a_blocked_worker(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(child_process, "TIMEOUT_FLOOR_S", 3.0)
    monkeypatch.setattr(child_process, "WORK_MARGIN", 0.0)
    watch = PhaseWatch(frames_are_all_in, cancel=False)  # frozen while frames are still being piped in
    source = make_testsrc(tmp_path / "in.mp4", size="320x240", seconds=2)
    with pytest.raises(EncoderTimeoutError, match="MP4 encoder took longer than 3 s"):
        run(source, tmp_path / "out.mp4", Options(model="blend"), cancelled=watch)
    assert watch.frozen is not None
    assert_nothing_left(tmp_path, "out.mp4")
