"""Peak memory of whole engine runs, each in a fresh process so that peaks do not mix.

The engine streams (decode → model → encoder pipe), so its peak should not grow with the clip's
length: a 10 s and a 60 s clip are compared, and a 4K input shows the largest frames.

Peaks are the kernel's per-process high-water marks (``VmHWM`` in ``/proc/PID/status``), which
start afresh at ``exec``. (``getrusage``'s ``ru_maxrss`` does not: a child forked from a big
process inherits that process's peak, so it would report the benchmark's own memory.) The engine
child reads its own at the end; the ffmpeg processes it starts are sampled while they run.

    python -m bench.memory child INPUT OUTPUT MODEL      # (used by the benchmark)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from interpolation import ffmpeg_binary

#: A 60 s clip whose peak is within this factor of the 10 s clip's counts as flat (allocator
#: noise and the scan's per-frame bookkeeping, a few bytes a frame, stay well inside 10 %).
FLAT_TOLERANCE = 1.10
#: Generous limit for one engine run in the child.
CHILD_TIMEOUT_S = 1800.0
#: How often the child's ffmpeg processes are sampled. VmHWM only grows, so a sample shortly
#: before a process exits already holds (nearly) its peak.
SAMPLE_INTERVAL_S = 0.02


@dataclass(frozen=True)
class MemoryCase:
    """One engine run to measure: which model on a testsrc2 clip of this size, rate and length."""

    label: str
    model: str
    width: int
    height: int
    fps: int
    seconds: float


@dataclass
class MemoryRow:
    label: str
    model: str
    clip: str
    size: str
    seconds: float
    frames_in: int
    engine_peak_mib: float  # the engine process (decode, model, frames in flight)
    encoder_peak_mib: float  # the largest ffmpeg child
    wall_s: float


@dataclass
class MemoryResults:
    rows: list[MemoryRow]
    #: Per model and size measured at two lengths: longest clip's peak / shortest clip's peak.
    growth: dict[str, float]
    notes: list[str]


def make_clip(path: Path, width: int, height: int, fps: int, seconds: float) -> Path:
    """H.264 testsrc2 clip; ``ultrafast`` keeps making 4K and minute-long inputs quick."""
    argv = [*ffmpeg_binary.base_args(), "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(argv, check=True, capture_output=True)
    return path


def high_water_kib(pid: int | str = "self") -> int:
    """Peak resident memory of a process since its exec (KiB), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_child(clip: Path, output: Path, model: str) -> dict:
    """Run the engine in a fresh process; its report plus the largest ffmpeg child's peak."""
    import psutil

    argv = [sys.executable, "-m", "bench.memory", "child", str(clip), str(output), model]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children_peak: dict[int, int] = {}
    started = time.monotonic()
    try:
        parent = psutil.Process(process.pid)
        while process.poll() is None:
            if time.monotonic() - started > CHILD_TIMEOUT_S:
                process.kill()
                raise RuntimeError(f"the engine run took longer than {CHILD_TIMEOUT_S:.0f} s")
            try:
                descendants = parent.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            for child_process in descendants:
                peak = high_water_kib(child_process.pid)
                children_peak[child_process.pid] = max(children_peak.get(child_process.pid, 0), peak)
            time.sleep(SAMPLE_INTERVAL_S)
    finally:
        stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"memory child failed ({process.returncode}): {stderr.strip()[-300:]}")
    report = json.loads(stdout.strip().splitlines()[-1])
    report["children_peak_kib"] = max(children_peak.values(), default=0)
    return report


def measure(cases: list[MemoryCase], log: Callable[[str], None] = print) -> MemoryResults:
    """Each case in its own process; the growth of the peak with clip length per model and size."""
    rows: list[MemoryRow] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-memory-") as tmp:
        for case in cases:
            clip = make_clip(Path(tmp) / f"{case.width}x{case.height}-{case.seconds:g}s.mp4", case.width,
                             case.height, case.fps, case.seconds)
            try:
                report = run_child(clip, Path(tmp) / "out.mp4", case.model)
            except RuntimeError as error:
                notes.append(f"{case.label} ({case.model}): not measured: {error}")
                continue
            finally:
                clip.unlink(missing_ok=True)
            row = MemoryRow(case.label, case.model, f"{case.seconds:g} s {case.width}×{case.height} @ {case.fps} fps",
                            f"{case.width}×{case.height}", case.seconds, report["frames_in"],
                            report["engine_peak_kib"] / 1024, report["children_peak_kib"] / 1024, report["wall_s"])
            log(f"  {case.label} ({case.model}): engine peak {row.engine_peak_mib:.0f} MiB, "
                f"encoder peak {row.encoder_peak_mib:.0f} MiB, {row.wall_s:.1f} s")
            rows.append(row)
    return MemoryResults(rows, length_growth(rows), notes)


def length_growth(rows: list[MemoryRow]) -> dict[str, float]:
    """"model at size" → peak of its longest clip / peak of its shortest (when both were run)."""
    growth = {}
    for key in sorted({(row.model, row.size) for row in rows}):
        same = sorted((r for r in rows if (r.model, r.size) == key), key=lambda r: r.seconds)
        if len(same) >= 2 and same[-1].seconds > same[0].seconds:
            growth[f"{key[0]} at {key[1]}, {same[0].seconds:g} s → {same[-1].seconds:g} s"] = (
                same[-1].engine_peak_mib / same[0].engine_peak_mib)
    return growth


def child(clip: Path, output: Path, model: str) -> None:
    """Run the engine once and print its peaks as one JSON line."""
    from interpolation.api import run
    from interpolation.options import Options

    started = time.perf_counter()
    result = run(clip, output, Options(model=model))
    print(json.dumps({
        "engine_peak_kib": high_water_kib(),
        "frames_in": result.frames_in,
        "wall_s": time.perf_counter() - started,
    }))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "child":
        print("usage: python -m bench.memory child INPUT OUTPUT MODEL", file=sys.stderr)
        raise SystemExit(2)
    child(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
