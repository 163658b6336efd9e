"""Child processes that can always be stopped: real children (sh, sleep, ffmpeg), real signals, real pipes."""

from __future__ import annotations

import ast
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

import psutil
import pytest

from interpolation import child_process, ffmpeg_binary
from interpolation.child_process import ChildProcess
from interpolation.errors import CancelledError, EncoderError, EncoderTimeoutError

#: A child that starts a grandchild (in the same group) and then waits for it.
SLEEPS_WITH_A_GRANDCHILD = [sys.executable, "-c",
                            "import subprocess; subprocess.run(['sleep', '60'])"]


def alive(pid: int, settle_s: float = 5.0) -> bool:
    """Whether ``pid`` still runs ``settle_s`` after a kill (a killed process that is not our child is
    reaped by init, which takes a moment on a busy machine)."""
    deadline = time.monotonic() + settle_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.02)


def grandchildren_of(pid: int, wait_s: float = 30.0) -> list[int]:
    """The children the child started (waits until it has started one)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        found = [p.pid for p in psutil.Process(pid).children(recursive=True)]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("the child started no grandchild")


@pytest.mark.timeout(60)
def test_a_hung_child_is_killed_at_its_deadline_with_its_whole_group():
    child = ChildProcess(SLEEPS_WITH_A_GRANDCHILD, what="test step")
    grandchildren = grandchildren_of(child.pid)
    started = time.monotonic()
    with pytest.raises(EncoderTimeoutError) as caught:
        child.wait(timeout_s=0.5)
    assert time.monotonic() - started < 5  # the deadline, not the child's 60 s
    assert str(caught.value) == "the test step took longer than 0.5 s and was stopped"
    assert not alive(child.pid) and not any(alive(pid) for pid in grandchildren)


@pytest.mark.timeout(60)
def test_a_cancel_stops_a_running_child_and_its_group():
    flag = {"stop": False}
    child = ChildProcess(SLEEPS_WITH_A_GRANDCHILD, what="test step", cancelled=lambda: flag["stop"])
    grandchildren = grandchildren_of(child.pid)
    flag["stop"] = True
    with pytest.raises(CancelledError):
        child.wait(timeout_s=60)
    assert not alive(child.pid) and not any(alive(pid) for pid in grandchildren)


def test_a_cancel_before_the_start_starts_nothing():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(CancelledError):
        child_process.run(["sleep", "30"], what="test step", timeout_s=60, cancelled=lambda: True)
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


@pytest.mark.timeout(60)
def test_a_child_that_stops_reading_its_input_times_out_instead_of_blocking_the_writer():
    child = ChildProcess(["sleep", "60"], what="encoder", stdin=True)  # never reads stdin
    with pytest.raises(EncoderTimeoutError, match="encoder took longer than 1 s"):
        for _ in range(1000):  # the pipe holds 64 KiB: a blocking write would hang here for good
            child.write(b"\0" * 65536, timeout_s=1)
    assert not alive(child.pid)


@pytest.mark.timeout(60)
def test_a_cancel_is_seen_while_a_write_waits_for_a_full_pipe():
    calls = []

    def cancel_after_some_waiting() -> bool:
        calls.append(1)
        return len(calls) > 5

    child = ChildProcess(["sleep", "60"], what="encoder", stdin=True, cancelled=cancel_after_some_waiting)
    with pytest.raises(CancelledError):
        child.write(b"\0" * (1 << 22), timeout_s=60)
    assert not alive(child.pid)


def test_input_goes_through_and_output_comes_back():
    child = ChildProcess(["sh", "-c", "wc -c"], what="counter", stdin=True)
    child.write(b"x" * 300_000, timeout_s=30)
    assert child.wait(timeout_s=30) == 0
    assert child.stdout_text().strip() == "300000"
    child.close()


def test_a_failure_says_what_failed_and_keeps_the_command_and_stderr_for_the_detail(tmp_path: Path):
    secret = tmp_path / "server-only" / "input.mp4"
    with pytest.raises(EncoderError) as caught:
        ffmpeg_binary.run(ffmpeg_binary.base_args() + ["-i", str(secret), str(tmp_path / "out.mp4")],
                          what="MP4 encoder", timeout_s=60)
    error = caught.value
    assert str(error) == "the MP4 encoder failed"
    assert str(tmp_path) not in str(error)  # no server paths for people
    assert str(secret) in error.detail and "No such file or directory" in error.detail  # but for the log


def test_deadlines_grow_with_the_work_from_a_floor_and_with_the_encoders_measured_speed():
    floor = child_process.work_timeout(0, 1920, 1080)
    assert floor == child_process.TIMEOUT_FLOOR_S
    one_pass = child_process.work_timeout(600, 1920, 1080, encoder="libx264")
    assert one_pass > floor
    assert child_process.work_timeout(600, 1920, 1080, encoder="libx264", passes=2) - floor == pytest.approx(
        2 * (one_pass - floor))
    assert child_process.work_timeout(600, 3840, 2160, encoder="libx264") - floor == pytest.approx(
        4 * (one_pass - floor))
    # The slowest encoder gets the longest deadline; an unknown one at least that of decoding.
    assert child_process.work_timeout(600, 1920, 1080, encoder="libaom-av1") > child_process.work_timeout(
        600, 1920, 1080, encoder="libx265") > one_pass
    assert child_process.work_timeout(600, 1920, 1080, encoder="ffv1") == child_process.work_timeout(600, 1920, 1080)
    # Draining an encoder is bounded by what it can hold, not by the length of the clip.
    assert child_process.drain_timeout(100_000, 1920, 1080) == child_process.drain_timeout(
        child_process.ENCODER_MAX_LAG_FRAMES, 1920, 1080)


def test_no_subprocess_in_the_engine_runs_without_a_deadline():
    """Every child the engine starts goes through child_process (which always has a deadline) or passes
    ``subprocess`` a timeout that is not None."""
    root = Path(__file__).resolve().parents[2] / "interpolation"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "child_process.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess"):
                continue
            timeout = next((k.value for k in node.keywords if k.arg == "timeout"), None)
            if node.func.attr == "Popen" or timeout is None or (
                    isinstance(timeout, ast.Constant) and timeout.value is None):
                offenders.append(f"{path.relative_to(root)}:{node.lineno} subprocess.{node.func.attr}")
    assert offenders == []


def test_the_kill_reaches_a_stopped_child():
    child = ChildProcess(["sleep", "60"], what="test step")
    os.kill(child.pid, 19)  # SIGSTOP: a hung encoder
    child.kill()
    assert not alive(child.pid)


def test_an_encoder_that_fails_says_so_without_its_stderr_or_paths(tmp_path: Path):
    import numpy as np

    from interpolation.video_io import FfmpegSink

    output = tmp_path / "server-only" / "encoded.mp4"  # its folder does not exist: ffmpeg cannot open it
    sink = FfmpegSink(output, 32, 16, Fraction(25), ["-c:v", "libx264", "-f", "mp4"], what="MP4 encoder")
    with pytest.raises(EncoderError) as caught:
        for _ in range(200):
            sink.write(np.zeros((16, 32, 3), np.uint8))
        sink.finish()
    sink.abort()
    error = caught.value
    assert str(error) in ("the MP4 encoder failed", "the MP4 encoder stopped unexpectedly")
    assert "server-only" in error.detail and "No such file or directory" in error.detail
    assert not output.exists()


@pytest.mark.timeout(60)
def test_a_child_that_closes_its_input_and_hangs_still_ends_at_the_deadline():
    child = ChildProcess(["sh", "-c", "exec 0<&-; sleep 60"], what="encoder", stdin=True)
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{child.pid}/fd/0") and time.monotonic() < deadline:
        time.sleep(0.01)  # until it has closed its end of the pipe: writes then fail with EPIPE
    with pytest.raises(EncoderTimeoutError):
        for _ in range(100):
            child.write(b"\0" * 65536, timeout_s=1)
    assert not alive(child.pid)
