"""Pipeline overhead: what a whole run costs beyond the model's own time.

The same clip goes through the real command line (``python -m interpolation``, a fresh process:
interpreter start, imports, weights load, probe, scan, decode, plan, model, encode, GIF palette) and
through :func:`interpolation.api.run` in this process with a timed model, which splits the
engine's wall time into model time and everything else.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interpolation import ffmpeg_binary
from interpolation.api import run
from interpolation.models import Frame, FrameInterpolator, create_model
from interpolation.options import Options

#: Generous limit for one CLI run of the small benchmark clip.
CLI_TIMEOUT_S = 900.0


class TimedModel(FrameInterpolator):
    """Wraps a model and adds up the wall time of its ``interpolate`` calls."""

    name = "timed"
    display_name = "timed"

    def __init__(self, inner: FrameInterpolator) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # per instance: the wrapped model's names
        self.display_name = inner.display_name  # type: ignore[misc]
        self.seconds = 0.0
        self.calls = 0
        self.frames = 0

    def interpolate(self, frame0: Frame, frame1: Frame, times: Sequence[float]) -> list[Frame]:
        started = time.perf_counter()
        result = self.inner.interpolate(frame0, frame1, times)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        self.frames += len(result)
        return result

    def close(self) -> None:
        self.inner.close()


@dataclass
class OverheadRow:
    model: str
    output: str  # "mp4" or "gif"
    clip: str  # what went in, e.g. "2 s 320×240 @ 12 fps"
    frames_out: int
    interpolated: int
    cli_wall_s: float  # the whole command, process start to exit
    engine_wall_s: float  # api.run with a loaded model
    model_s: float  # sum of the model's interpolate calls inside api.run
    load_s: float  # building the model (weights load) in this process

    @property
    def engine_other_s(self) -> float:
        """probe, scan, decode, plan, encode, GIF palette: the engine's time outside the model."""
        return self.engine_wall_s - self.model_s

    @property
    def startup_s(self) -> float:
        """What the CLI spends outside the engine run: interpreter, imports, weights."""
        return self.cli_wall_s - self.engine_wall_s

    @property
    def model_share(self) -> float:
        return self.model_s / self.cli_wall_s


def make_clip(path: Path, width: int, height: int, fps: int, seconds: float) -> Path:
    """An H.264 clip of ffmpeg's testsrc2 (moving objects, text), like a phone upload."""
    argv = [*ffmpeg_binary.base_args(), "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(argv, check=True, capture_output=True)
    return path


def cli_seconds(clip: Path, output: Path, model: str) -> float:
    argv = [sys.executable, "-m", "interpolation", str(clip), "-o", str(output), "--model", model, "--quiet"]
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"CLI run failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    return seconds


def measure(model_name: str, outputs: Sequence[str], width: int, height: int, fps: int, seconds: float,
            log: Callable[[str], None] = print) -> list[OverheadRow]:
    """One row per output kind: the CLI's wall time against the engine's and the model's."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-pipeline-") as tmp:
        workdir = Path(tmp)
        clip = make_clip(workdir / "clip.mp4", width, height, fps, seconds)
        started = time.perf_counter()
        model = TimedModel(create_model(model_name))
        load_s = time.perf_counter() - started
        for kind in outputs:
            cli_s = cli_seconds(clip, workdir / f"cli.{kind}", model_name)
            model.seconds, model.frames = 0.0, 0
            started = time.perf_counter()
            result = run(clip, workdir / f"api.{kind}", Options(model=model_name), model=model)
            engine_s = time.perf_counter() - started
            row = OverheadRow(model_name, kind, f"{seconds:g} s {width}×{height} @ {fps} fps", result.frames_out,
                              model.frames, cli_s, engine_s, model.seconds, load_s)
            log(f"  {model_name} → {kind}: CLI {cli_s:.1f} s, engine {engine_s:.1f} s, model {model.seconds:.1f} s "
                f"({100 * row.model_share:.0f} % of the CLI run)")
            rows.append(row)
        model.close()
    return rows
