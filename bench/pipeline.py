"""Pipeline overhead: what a whole run costs beyond the model's own time, and where it goes.

A clip goes through the real command line (``python -m interpolation``) or the bot's whole chat flow
(``python -m bot --console``) in a fresh process, started through a thin wrapper that times, inside
that same run, the engine call, its probe + scan, the model build (weights load, which runs beside
the probe and scan: only the part they did not hide counts), the render (decode, model, encode) and
every call of the model, which runs in its lanes as always (two pairs at once on a CPU; the wall time
in which at least one lane was busy is the model's). CPU seconds of the process's threads, of the
model's lanes and of the ffmpeg children (encoder, audio) say who took the cores. After the run the
same model times the clip's first pairs alone, in its lanes (:data:`ALONE_REPEATS` times: the median,
and the range beside it): the run's wall time over that is the overhead on top of the model.
Measuring all of it in one run keeps the split consistent on a shared, noisy CPU.

    python -m bench.pipeline child REPORT.json CLI|chat ALONE_PAIRS ARGS...   # (used by the benchmark)
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interpolation import ffmpeg_binary
from interpolation.models import Frame, FrameInterpolator

#: Generous limit for one CLI run of the small benchmark clip.
CLI_TIMEOUT_S = 900.0
#: Timings of the model alone per run (two in a row on a shared 2-core machine differed by up to 19 %).
ALONE_REPEATS = 3


class TimedModel(FrameInterpolator):
    """Wraps a model and records when its ``interpolate`` calls ran, lanes and all.

    The engine runs the wrapped model exactly as it would the model itself: the same lanes
    (``lanes_for``, ``start_lane``, ``end_lanes`` are the wrapped model's), so the timing run is the
    real run. With two lanes the calls overlap, so the model's share of the run is the wall time in
    which at least one call was running (:meth:`busy_s`), and its CPU time is the lanes' own.
    """

    name = "timed"
    display_name = "timed"

    def __init__(self, inner: FrameInterpolator) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # per instance: the wrapped model's names
        self.display_name = inner.display_name  # type: ignore[misc]
        self.intervals: list[tuple[float, float]] = []
        self.cpu_s = 0.0
        self.calls = 0
        self.frames = 0
        self.lanes_used = 1
        self._lock = threading.Lock()

    def interpolate(self, frame0: Frame, frame1: Frame, times: Sequence[float]) -> list[Frame]:
        started, cpu = time.perf_counter(), time.thread_time()
        result = self.inner.interpolate(frame0, frame1, times)
        ended = time.perf_counter()
        with self._lock:
            self.intervals.append((started, ended))
            self.cpu_s += time.thread_time() - cpu
            self.calls += 1
            self.frames += len(result)
        return result

    def lanes_for(self, height: int, width: int) -> int:
        lanes = self.inner.lanes_for(height, width)
        self.lanes_used = max(self.lanes_used, lanes)
        return lanes

    def expect(self, frame0: Frame, frame1: Frame) -> None:
        self.inner.expect(frame0, frame1)

    def start_lane(self, lanes: int) -> None:
        self.inner.start_lane(lanes)

    def end_lanes(self) -> None:
        self.inner.end_lanes()

    def busy_s(self) -> float:
        """Wall seconds in which at least one call was running (the union of the calls' intervals)."""
        return union_seconds(self.intervals)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> object:
        # Anything else the engine may ask of a model is the wrapped model's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def union_seconds(intervals: Sequence[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


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
    model_s: float  # wall time in which the model ran (lanes overlapping counted once)
    #: The part of the model build that the probe and scan did not hide (the engine waited for it).
    load_exposed_s: float = 0.0
    lanes: int = 1
    #: How the run was made: "CLI" (python -m interpolation) or "chat" (python -m bot --console).
    flow: str = "CLI"
    encoder: str = ""  # e.g. "medium CRF 18"
    probe_scan_s: float = 0.0
    #: From the first output frame asked for to the encoder's file finished.
    render_s: float = 0.0
    model_cpu_s: float = 0.0
    process_cpu_s: float = 0.0  # every thread of the Python process (model, decode, scan, start-up)
    children_cpu_s: float = 0.0  # the ffmpeg children (encoder, audio mux)
    #: The same model on pairs of the same clip with nothing else running, per interpolated frame.
    alone_ms_per_frame: float | None = None
    #: The fastest and slowest of the :data:`ALONE_REPEATS` timings of the model alone (the median above).
    alone_range_ms: tuple[float, float] | None = None

    @property
    def engine_other_s(self) -> float:
        """The engine's wall time outside the model and the part of its build that nothing hid:
        probe, scan, decode, plan, encode, GIF palette."""
        return self.engine_wall_s - self.load_exposed_s - self.model_s

    @property
    def startup_s(self) -> float:
        """The process's time outside the engine run: interpreter start, imports, queue and reply."""
        return self.cli_wall_s - self.engine_wall_s

    @property
    def model_share(self) -> float:
        return self.model_s / self.cli_wall_s

    @property
    def alone_s(self) -> float | None:
        """What the model alone needs for this run's interpolated frames."""
        return None if self.alone_ms_per_frame is None else self._for_the_run(self.alone_ms_per_frame)

    @property
    def alone_range_s(self) -> tuple[float, float] | None:
        """:attr:`alone_s` at the fastest and the slowest timing of the model alone."""
        return None if not self.alone_range_ms else (self._for_the_run(self.alone_range_ms[0]),
                                                     self._for_the_run(self.alone_range_ms[1]))

    def _for_the_run(self, ms_per_frame: float) -> float:
        return ms_per_frame * self.interpolated / 1000

    @property
    def overhead(self) -> float | None:
        """Wall time on top of the model alone, as a share of the model alone (the issue's goal: ≤ 10 %)."""
        alone = self.alone_s
        return None if not alone else self.cli_wall_s / alone - 1

    @property
    def overhead_range(self) -> tuple[float, float] | None:
        """:attr:`overhead` against the slowest and the fastest timing of the model alone."""
        spread = self.alone_range_s
        if not spread or min(spread) <= 0:
            return None
        fastest, slowest = spread
        return self.cli_wall_s / slowest - 1, self.cli_wall_s / fastest - 1


def make_clip(path: Path, width: int, height: int, fps: int, seconds: float) -> Path:
    """An H.264 clip of ffmpeg's testsrc2 (moving objects, text), like a phone upload."""
    argv = [*ffmpeg_binary.base_args(), "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(argv, check=True, capture_output=True)
    return path


def timed_run(flow: str, clip: Path, output: Path, model: str, workdir: Path, extra: Sequence[str] = (),
              alone_pairs: int = 0) -> tuple[float, dict]:
    """Wall seconds of one fresh process and the times it measured inside itself.

    ``flow`` "CLI" runs ``python -m interpolation CLIP -o OUTPUT``; "chat" runs the bot's whole chat
    flow on the terminal (``python -m bot --console CLIP``: queue, worker, engine, reply; OUTPUT is
    the reply directory). ``alone_pairs`` > 0 then times the model alone on that many pairs of the clip.
    """
    report = workdir / f"{output.name}.json"
    if flow == "CLI":
        args = [str(clip), "-o", str(output), "--model", model, "--quiet", *extra]
    else:
        args = ["--console", str(clip), "--model", model, "--out-dir", str(output), *extra]
    argv = [sys.executable, "-m", "bench.pipeline", "child", str(report), flow, str(alone_pairs), *args]
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{flow} run failed ({result.returncode}): {(result.stdout + result.stderr).strip()[-300:]}")
    inside = json.loads(report.read_text())
    # The process's own start-up counts from the parent's clock: subtract the alone timing done after.
    return seconds - inside.get("after_s", 0.0), inside


def row_from(flow: str, model: str, kind: str, clip_text: str, encoder: str, wall: float, inside: dict) -> OverheadRow:
    return OverheadRow(
        inside.get("model", model), kind, clip_text, inside["frames_out"], inside["interpolated"], wall,
        inside["engine_s"], inside["load_s"], inside["model_s"], load_exposed_s=inside["load_exposed_s"],
        lanes=inside["lanes"], flow=flow, encoder=encoder, probe_scan_s=inside["probe_scan_s"],
        render_s=inside["render_s"], model_cpu_s=inside["model_cpu_s"], process_cpu_s=inside["process_cpu_s"],
        children_cpu_s=inside["children_cpu_s"], alone_ms_per_frame=inside.get("alone_ms_per_frame"),
        alone_range_ms=tuple(inside["alone_range_ms"]) if inside.get("alone_range_ms") else None)


def measure(model_name: str, outputs: Sequence[str], width: int, height: int, fps: int, seconds: float,
            log: Callable[[str], None] = print) -> list[OverheadRow]:
    """One CLI row per output kind ("mp4", "gif"): the wall time split into its parts."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-pipeline-") as tmp:
        workdir = Path(tmp)
        clip = make_clip(workdir / "clip.mp4", width, height, fps, seconds)
        for kind in outputs:
            wall, inside = timed_run("CLI", clip, workdir / f"out.{kind}", model_name, workdir)
            row = row_from("CLI", model_name, kind, f"{seconds:g} s {width}×{height} @ {fps} fps",
                           "medium CRF 18" if kind == "mp4" else "GIF", wall, inside)
            log(f"  {model_name} → {kind}: CLI {wall:.1f} s, engine {row.engine_wall_s:.1f} s, model "
                f"{row.model_s:.1f} s ({100 * row.model_share:.0f} % of the CLI run)")
            rows.append(row)
    return rows


def breakdown(model_name: str, width: int, height: int, fps: int, seconds: float, target_fps: float,
              alone_pairs: int, log: Callable[[str], None] = print) -> list[OverheadRow]:
    """The chat flow and the CLI on one clip, each timed inside, with the model alone for comparison."""
    from interpolation.encoding import CHAT_CRF, CHAT_PRESET

    rows = []
    clip_text = f"{seconds:g} s {width}×{height} @ {fps} fps → {target_fps:g}"
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-breakdown-") as tmp:
        workdir = Path(tmp)
        clip = make_clip(workdir / "clip.mp4", width, height, fps, seconds)
        runs = (("chat", f"{CHAT_PRESET} CRF {CHAT_CRF}", workdir / "replies"),
                ("CLI", "medium CRF 18", workdir / "out.mp4"))
        for flow, encoder, output in runs:
            wall, inside = timed_run(flow, clip, output, model_name, workdir, ["--fps", f"{target_fps:g}"],
                                     alone_pairs)
            row = row_from(flow, model_name, "mp4", clip_text, encoder, wall, inside)
            log(f"  {flow} ({encoder}): {wall:.1f} s, model busy {row.model_s:.1f} s, model alone "
                f"{row.alone_s or 0:.1f} s → {100 * (row.overhead or 0):+.0f} %")
            rows.append(row)
    return rows


def model_alone_ms(model: FrameInterpolator, clip: Path, pairs: int, repeats: int = 1) -> list[float]:
    """Wall ms per midpoint of ``model`` on the first ``pairs`` pairs of ``clip``, in the engine's lanes,
    once per repeat (one timing swings by ±10 % on a shared 2-core machine)."""
    from interpolation.api import in_lanes, pair_jobs
    from interpolation.video_io import decode

    frames = []
    for frame in decode(clip):
        frames.append(frame.image)
        if len(frames) > pairs + 1:
            break
    height, width = frames[0].shape[:2]
    lanes = model.lanes_for(height, width)
    pairs_in_order = list(zip(frames, frames[1:]))

    def run_all(batch: Sequence[tuple[Frame, Frame]]) -> None:
        # Announced in order, as the engine does, so the lean's chain is the run's own in any lane.
        list(in_lanes(model, lanes, pair_jobs(model, batch, [0.5])))

    timings = []
    for _ in range(repeats):
        model.close()  # afresh: no frame or chain kept from the run or the repeat before
        run_all(pairs_in_order[:2])  # warm-up, and the chain's start and first self-test, as at the clip's start
        started = time.perf_counter()
        run_all(pairs_in_order[2:])
        timings.append(1000 * (time.perf_counter() - started) / (len(pairs_in_order) - 2))
    return timings


def child(report: Path, flow: str, alone_pairs: int, args: list[str]) -> int:
    """Run the real CLI (or the chat flow) with its phases, model build and model calls timed.

    The engine imports ``create_model``, ``probe``, ``scan`` and ``render`` by name, the worker
    ``create_model``, so all are wrapped before those modules are imported.
    """
    import interpolation.api
    import interpolation.models

    times: dict = {"engine_s": 0.0, "load_s": 0.0, "interpolated": 0, "frames_out": 0, "probe_scan_s": 0.0,
                   "render_s": 0.0, "load_exposed_s": 0.0}
    marks: dict[str, float] = {}
    models: list[TimedModel] = []
    originals = {name: getattr(interpolation.api, name) for name in ("run", "probe", "scan", "render")}
    build = interpolation.models.create_model

    def timed_create_model(*args, **kwargs) -> FrameInterpolator:
        started = time.perf_counter()
        model = TimedModel(build(*args, **kwargs))
        marks["loaded"] = time.perf_counter()
        times["load_s"] += marks["loaded"] - started
        models.append(model)
        return model

    def timed_probe(*args, **kwargs):
        marks["probe"] = time.perf_counter()
        return originals["probe"](*args, **kwargs)

    def timed_scan(*args, **kwargs):
        result = originals["scan"](*args, **kwargs)
        marks["scanned"] = time.perf_counter()
        times["probe_scan_s"] += marks["scanned"] - marks["probe"]
        return result

    def timed_render(*args, **kwargs):
        started = time.perf_counter()
        try:
            return originals["render"](*args, **kwargs)
        finally:
            times["render_s"] += time.perf_counter() - started

    def timed_engine(*args, **kwargs):
        started = time.perf_counter()
        result = originals["run"](*args, **kwargs)
        times["engine_s"] += time.perf_counter() - started
        times["frames_out"] = result.frames_out
        times["model"] = result.model  # the model that ran, whatever was asked
        if "loaded" in marks and "scanned" in marks:
            times["load_exposed_s"] += max(0.0, marks["loaded"] - marks["scanned"])
        return result

    interpolation.models.create_model = timed_create_model
    interpolation.api.create_model = timed_create_model
    interpolation.api.run = timed_engine
    interpolation.api.probe = timed_probe
    interpolation.api.scan = timed_scan
    interpolation.api.render = timed_render
    if flow == "CLI":
        from interpolation.__main__ import main
    else:
        from bot.__main__ import main
    status = main(args)
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    times["process_cpu_s"] = own.ru_utime + own.ru_stime
    times["children_cpu_s"] = children.ru_utime + children.ru_stime
    times["model_s"] = union_seconds([i for model in models for i in model.intervals])
    times["model_cpu_s"] = sum(model.cpu_s for model in models)
    times["interpolated"] = sum(model.frames for model in models)
    times["lanes"] = max((model.lanes_used for model in models), default=1)
    if alone_pairs > 0 and models and status == 0:
        started = time.perf_counter()
        clip = Path(args[1] if flow != "CLI" else args[0])
        timings = model_alone_ms(models[0].inner, clip, alone_pairs, ALONE_REPEATS)
        times["alone_ms_per_frame"] = statistics.median(timings)
        times["alone_range_ms"] = [min(timings), max(timings)]
        times["after_s"] = time.perf_counter() - started
    report.write_text(json.dumps(times))
    return status


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] != "child":
        print("usage: python -m bench.pipeline child REPORT.json CLI|chat ALONE_PAIRS ARGS...", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:]))
