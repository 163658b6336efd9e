"""Pipeline overhead: what a whole command-line run costs beyond the model's own time.

A clip goes through the real command line (``python -m interpolation``) in a fresh process,
started through a thin wrapper that times, inside that same run, the engine call, the model build
(weights load) and every call of the model. The rest of the engine's time is probe, scan, decode,
planning, encoding and the GIF palette; the rest of the process's is interpreter start and imports.
Measuring all of it in one run keeps the split consistent on a shared, noisy CPU.

    python -m bench.pipeline child REPORT.json INPUT -o OUTPUT ...   # (used by the benchmark)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interpolation import ffmpeg_binary
from interpolation.models import Frame, FrameInterpolator

#: Generous limit for one CLI run of the small benchmark clip.
CLI_TIMEOUT_S = 900.0


class TimedModel(FrameInterpolator):
    """Wraps a model and adds up the wall time of its ``interpolate`` calls.

    It runs one pair at a time (the base class's single lane), so the calls' times add up to the
    model's share of the run; the end-to-end section measures the engine with its lanes.
    """

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

    def __getattr__(self, name: str) -> object:
        # Anything else the engine may ask of a model is the wrapped model's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


@dataclass
class OverheadRow:
    model: str
    output: str  # "mp4" or "gif"
    clip: str  # what went in, e.g. "1 s 160×120 @ 12 fps"
    frames_out: int
    interpolated: int
    cli_wall_s: float  # the whole command, process start to exit
    engine_wall_s: float  # interpolation.api.run inside it (includes the model build)
    load_s: float  # building the model (weights load) inside the engine run
    model_s: float  # sum of the model's interpolate calls

    @property
    def engine_other_s(self) -> float:
        """probe, scan, decode, plan, encode, GIF palette: the engine's time outside the model."""
        return self.engine_wall_s - self.load_s - self.model_s

    @property
    def startup_s(self) -> float:
        """The process's time outside the engine run: interpreter start and imports."""
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


def timed_cli_run(clip: Path, output: Path, model: str, workdir: Path) -> tuple[float, dict]:
    """Wall seconds of the CLI process and the times it measured inside itself."""
    report = workdir / f"{output.name}.json"
    argv = [sys.executable, "-m", "bench.pipeline", "child", str(report),
            str(clip), "-o", str(output), "--model", model, "--quiet"]
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"CLI run failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    return seconds, json.loads(report.read_text())


def measure(model_name: str, outputs: Sequence[str], width: int, height: int, fps: int, seconds: float,
            log: Callable[[str], None] = print) -> list[OverheadRow]:
    """One row per output kind ("mp4", "gif"): the CLI's wall time split into its parts."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-pipeline-") as tmp:
        workdir = Path(tmp)
        clip = make_clip(workdir / "clip.mp4", width, height, fps, seconds)
        for kind in outputs:
            wall, inside = timed_cli_run(clip, workdir / f"out.{kind}", model_name, workdir)
            row = OverheadRow(model_name, kind, f"{seconds:g} s {width}×{height} @ {fps} fps", inside["frames_out"],
                              inside["interpolated"], wall, inside["engine_s"], inside["load_s"], inside["model_s"])
            log(f"  {model_name} → {kind}: CLI {wall:.1f} s, engine {row.engine_wall_s:.1f} s, model "
                f"{row.model_s:.1f} s ({100 * row.model_share:.0f} % of the CLI run)")
            rows.append(row)
    return rows


def child(report: Path, cli_args: list[str]) -> int:
    """Run the real CLI with its engine call, model build and model calls timed; write them to ``report``.

    The engine imports ``create_model`` and the CLI imports ``run`` by name, so both are wrapped
    before those modules are imported.
    """
    import interpolation.api
    import interpolation.models

    times = {"engine_s": 0.0, "load_s": 0.0, "model_s": 0.0, "interpolated": 0, "frames_out": 0}
    models: list[TimedModel] = []
    build = interpolation.models.create_model
    run = interpolation.api.run

    def timed_create_model(*args, **kwargs) -> FrameInterpolator:
        started = time.perf_counter()
        model = TimedModel(build(*args, **kwargs))
        times["load_s"] += time.perf_counter() - started
        models.append(model)
        return model

    def timed_run(*args, **kwargs):
        started = time.perf_counter()
        result = run(*args, **kwargs)
        times["engine_s"] += time.perf_counter() - started
        times["frames_out"] = result.frames_out
        return result

    interpolation.models.create_model = timed_create_model
    interpolation.api.create_model = timed_create_model
    interpolation.api.run = timed_run
    from interpolation.__main__ import main

    status = main(cli_args)
    times["model_s"] = sum(model.seconds for model in models)
    times["interpolated"] = sum(model.frames for model in models)
    report.write_text(json.dumps(times))
    return status


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "child":
        print("usage: python -m bench.pipeline child REPORT.json INPUT -o OUTPUT [CLI options]", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(child(Path(sys.argv[2]), sys.argv[3:]))
