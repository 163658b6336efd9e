"""Child processes (ffmpeg, pip) that can always be stopped: by the caller's cancel check or by a deadline.

Each child runs in its own process group, so stopping it kills whatever it started too. Input is
written to its pipe without blocking, and every wait polls the caller's ``cancelled()`` and the
deadline, so a cancel is honoured within :data:`POLL_INTERVAL_S` in any phase (frames being piped in,
the encoder draining, a palette pass, a re-encode) and a hung child cannot block a worker forever.

Deadlines are proportional to the work (frames × megapixels) with a floor; every constant that sets
one lives here, so the engine's subprocess timeouts are in one place.

Errors: :class:`~interpolation.errors.CancelledError` when ``cancelled()`` turned true,
:class:`~interpolation.errors.EncoderTimeoutError` past the deadline, :class:`~interpolation.errors.EncoderError`
on a non-zero exit. Their messages name the step (``what``), never paths or the child's output;
the command and its last stderr lines are in ``detail``.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO

from .errors import CancelledError, EncoderError, EncoderTimeoutError

CancelCheck = Callable[[], bool]

#: How often a wait looks at ``cancelled()`` and the deadline.
POLL_INTERVAL_S = 0.05
#: The child's stderr is kept to this many trailing characters (for ``detail``).
STDERR_TAIL_CHARS = 2000

# --- Deadlines -------------------------------------------------------------------------------------
#: Every ffmpeg run may take at least this long (start-up, container rewrites such as +faststart).
TIMEOUT_FLOOR_S = 120.0
#: Seconds per frame-megapixel each encoder took at its slowest preset ("veryslow"), measured on this
#: project's 2-core machine with nothing else running (480×270 testsrc2, 24 frames, start-up included;
#: issue 16's closing note). ``None``: every other step (decoding, the FFV1 intermediate, GIF palette
#: and dither passes, filters), measured at 0.03-0.07 and rounded up.
MEASURED_SECONDS_PER_MEGAPIXEL_FRAME: dict[str | None, float] = {
    None: 0.1, "libx264": 0.093, "libx265": 1.28, "libvpx-vp9": 0.34, "libsvtav1": 0.19, "libaom-av1": 22.4,
}
#: Deadlines allow this many times the measured speed (slower CPUs, other jobs on the machine, 4K
#: frames that cache worse): a deadline stops a hung child, never an honest slow one.
WORK_MARGIN = 10.0
#: Frames an encoder may still hold when its input ends (x264/x265 lookahead and B-frames, libaom
#: lag-in-frames, SVT-AV1 lookahead are all below this): bounds the drain after the last frame.
ENCODER_MAX_LAG_FRAMES = 250
#: Short questions to the ffmpeg binary (``-encoders``).
QUERY_TIMEOUT_S = 60.0
#: Downloading a pinned wheel (tens of MB) with pip.
FETCH_TIMEOUT_S = 900.0
#: ``make demo``'s whole CLI run on its 3-second sample (a slow CPU takes about a minute).
DEMO_RUN_TIMEOUT_S = 1800.0


def work_timeout(frames: int, width: int, height: int, *, encoder: str | None = None, passes: int = 1) -> float:
    """Deadline in seconds for ``passes`` runs over ``frames`` frames of ``width × height`` written by
    ``encoder`` (an ffmpeg encoder name; None or an unlisted one: the cost of decoding and filtering)."""
    megapixel_frames = max(0, frames) * width * height / 1e6 * max(1, passes)
    speed = max(MEASURED_SECONDS_PER_MEGAPIXEL_FRAME.get(encoder, 0.0), MEASURED_SECONDS_PER_MEGAPIXEL_FRAME[None])
    return TIMEOUT_FLOOR_S + megapixel_frames * speed * WORK_MARGIN


def drain_timeout(frames_written: int, width: int, height: int, *, encoder: str | None = None) -> float:
    """Deadline for an encoder to finish after its input closed: it holds at most its lag in frames."""
    return work_timeout(min(frames_written, ENCODER_MAX_LAG_FRAMES), width, height, encoder=encoder)


def tail(data: bytes) -> str:
    return data[-STDERR_TAIL_CHARS:].decode("utf-8", "replace").strip()


class ChildProcess:
    """One child in its own process group; stdin a non-blocking pipe (``stdin=True``) or empty.

    stdout and stderr go to temporary files (no pipe to fill up and deadlock); :meth:`stdout_text`
    reads what the child printed. Use :meth:`write` / :meth:`close_stdin` / :meth:`wait`, or
    :func:`run`; on any error the group is killed before the error propagates.
    """

    def __init__(self, argv: Sequence[str], *, what: str, cancelled: CancelCheck | None = None,
                 stdin: bool = False, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.what = what
        self.cancelled = cancelled
        self._check(None)  # a cancel that came before the start starts nothing
        self._stdout: IO[bytes] = tempfile.TemporaryFile()
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                            stdout=self._stdout, stderr=self._stderr, env=env, process_group=0)
        except BaseException:
            self._close_files()
            raise
        self._stdin_fd: int | None = None
        if stdin:
            assert self.process.stdin is not None
            self._stdin_fd = self.process.stdin.fileno()
            os.set_blocking(self._stdin_fd, False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def write(self, data: bytes | memoryview, *, timeout_s: float) -> None:
        """Write all of ``data`` to the child's stdin within ``timeout_s`` (the child must keep reading)."""
        assert self._stdin_fd is not None, "the child was started without stdin"
        view = memoryview(data).cast("B")
        deadline = time.monotonic() + timeout_s
        try:
            while view:
                self._check(deadline, timeout_s)
                try:
                    written = os.write(self._stdin_fd, view)
                except BlockingIOError:
                    select.select([], [self._stdin_fd], [], POLL_INTERVAL_S)
                    continue
                view = view[written:]
        except BrokenPipeError:  # the child closed its input: it failed, or is failing (its status says)
            code = self.wait(timeout_s=max(POLL_INTERVAL_S, deadline - time.monotonic()), check=False)
            detail = self.detail(code)
            self._close_files()
            raise EncoderError(f"the {self.what} stopped unexpectedly", detail=detail) from None
        except BaseException:
            self.kill()
            raise

    def close_stdin(self) -> None:
        """End the child's input (it sees end of file)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:  # nothing is buffered (writes bypass the buffer); the child has gone
                pass

    def wait(self, *, timeout_s: float, check: bool = True) -> int:
        """Wait for the child to exit within ``timeout_s``; with ``check`` a non-zero exit raises EncoderError."""
        self.close_stdin()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                self._check(deadline, timeout_s)  # before the first look too: a cancel now is honoured
                try:
                    code = self.process.wait(timeout=POLL_INTERVAL_S)
                    break
                except subprocess.TimeoutExpired:
                    continue
        except BaseException:
            self.kill()
            raise
        if check and code != 0:
            detail = self.detail(code)
            self._close_files()
            raise EncoderError(f"the {self.what} failed", detail=detail)
        return code

    def stdout_text(self) -> str:
        self._stdout.seek(0)
        return self._stdout.read().decode("utf-8", "replace")

    def stderr_text(self) -> str:
        """The last :data:`STDERR_TAIL_CHARS` bytes the child wrote to stderr."""
        size = self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, size - STDERR_TAIL_CHARS))
        return tail(self._stderr.read())

    def detail(self, code: int | None = None) -> str:
        """Server-side description: the command, its exit status and its last stderr lines."""
        status = "" if code is None else f" (exit status {code})"
        try:
            stderr = self.stderr_text()
        except ValueError:  # files already closed
            stderr = ""
        return f"{self.what}{status}: {' '.join(self.argv)}" + (f"\n{stderr}" if stderr else "")

    def kill(self) -> None:
        """Kill the child's whole process group and reap the child; idempotent."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()
        self._close_files()

    def close(self) -> None:
        """Release the files of a child that has exited."""
        self._close_files()

    def _reap(self) -> int:
        self.close_stdin()
        return self.process.wait()

    def _check(self, deadline: float | None, timeout_s: float = 0.0) -> None:
        if self.cancelled is not None and self.cancelled():
            raise CancelledError("cancelled")
        if deadline is not None and time.monotonic() > deadline:
            limit = f"{timeout_s:.0f}" if timeout_s >= 1 else f"{timeout_s:.1f}"
            raise EncoderTimeoutError(f"the {self.what} took longer than {limit} s and was stopped",
                                      detail=self.detail())

    def _close_files(self) -> None:
        for handle in (self._stdout, self._stderr):
            handle.close()


def run(argv: Sequence[str], *, what: str, timeout_s: float, cancelled: CancelCheck | None = None,
        env: dict[str, str] | None = None) -> str:
    """Run ``argv`` to completion (stdin empty) and return its stdout; raise the module's typed errors."""
    child = ChildProcess(argv, what=what, cancelled=cancelled, env=env)
    child.wait(timeout_s=timeout_s)
    output = child.stdout_text()
    child.close()
    return output
