"""Run the benchmarks and write bench/REPORT.md, plots and results.json.

    .venv/bin/python -m bench            # quick: a few minutes on a 2-core machine
    .venv/bin/python -m bench --full     # more frames everywhere, RIFE memory on long clips
    .venv/bin/python -m bench --sections quality speed --out /tmp/bench

Sections: quality (PSNR/SSIM against ground truth), speed (ms/frame, RIFE FLOPs vs SGEMM, RIFE
speed modes), pipeline (whole CLI run vs model time), memory (peak RSS, 10 s vs 60 s, 4K) and
bot (time to "Queued" with 1/10/50 senders, queue enqueue throughput), plus the sections other
modules contribute whole (``CONTRIBUTED``). Never fails on a time.

A new section is one module with a function ``section(full: bool, log) -> bench.report.Section``
(measure, then return the title, intro, Markdown tables, summary lines, notes and JSON data) and
one line in ``CONTRIBUTED`` below; it runs with ``--sections NAME`` like the built-in ones.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import cases as case_library
from . import endtoend, memory, pipeline, quality, report, speed
from .machine import describe
from .memory import MemoryCase
from .methods import MinterpolateMethod, build_methods

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
#: Sections that other modules contribute whole: name -> module with ``section(full, log) -> report.Section``.
#: One line per module; they run, and appear in the report, after speed and in this order.
CONTRIBUTED: dict[str, str] = {
    "queue_engines": "bench.queue_throughput",
    "encoding": "bench.encoding",
    "cuts": "bench.cuts",
    "versus": "bench.versus",
    "scale_out": "bench.scaleout",
}


def section_names() -> tuple[str, ...]:
    """Every section in running order: the built-in ones with the contributed ones after speed."""
    return ("quality", "speed", *CONTRIBUTED, "endtoend", "pipeline", "memory", "bot")


@dataclass(frozen=True)
class Settings:
    """How much of everything a mode measures."""

    #: Interpolated (dropped) frames per quality case; 720p cases have their own, smaller count.
    interpolated: int
    hd_interpolated: int
    #: Timed midpoints per speed size.
    speed_pairs: dict[tuple[int, int], int]
    #: The pipeline-overhead clip: width, height, fps, seconds (RIFE runs on every in-between).
    overhead_clip: tuple[int, int, int, float]
    #: Frame size and pair count of the lanes throughput run (one pair at a time vs the engine's lanes).
    lane_size: tuple[int, int]
    lane_pairs: int
    #: The end-to-end clip (width, height, fps, seconds) and the frame rate asked for.
    endtoend_clip: tuple[int, int, int, float]
    endtoend_fps: float
    #: Pairs of the end-to-end clip the model runs alone on, after the timed runs (the overhead's yardstick).
    alone_pairs: int
    memory_cases: tuple[MemoryCase, ...]
    intake_senders: tuple[int, ...]
    queue_jobs_each: int


#: Quick: a few minutes here. RIFE costs a tenth of a second per frame at 320×240 on 2 cores, so it
#: scores 8 frames per case (2 at 720p; the report shows each case's per-frame spread) and one at
#: 4K; the 10 s/60 s memory comparison streams the whole pipeline with the cheap blend model (the
#: streaming, not the model, decides whether memory grows).
QUICK = Settings(
    interpolated=8,
    hd_interpolated=2,
    speed_pairs={(256, 256): 6, (640, 360): 4, (854, 480): 4, (1280, 720): 3},
    overhead_clip=(160, 120, 12, 1.0),
    lane_size=(854, 480),
    lane_pairs=12,
    endtoend_clip=(854, 480, 30, 10.0),
    endtoend_fps=60,
    alone_pairs=48,
    memory_cases=(
        MemoryCase("10 s clip", "blend", 320, 240, 25, 10),
        MemoryCase("60 s clip", "blend", 320, 240, 25, 60),
        MemoryCase("4K input", "blend", 3840, 2160, 25, 0.08),
        MemoryCase("4K input", "rife", 3840, 2160, 25, 0.08),
    ),
    intake_senders=(1, 10, 50),
    queue_jobs_each=10,
)

#: Full: several times the frames, and RIFE itself on a 10 s and a 60 s (tiny, low-rate) clip.
FULL = Settings(
    interpolated=20,
    hd_interpolated=5,
    speed_pairs={(256, 256): 12, (640, 360): 8, (854, 480): 6, (1280, 720): 5},
    overhead_clip=(320, 240, 25, 2.0),
    lane_size=QUICK.lane_size,
    lane_pairs=16,
    endtoend_clip=QUICK.endtoend_clip,
    endtoend_fps=QUICK.endtoend_fps,
    alone_pairs=96,
    memory_cases=(
        *QUICK.memory_cases[:2],
        MemoryCase("10 s clip", "rife", 96, 64, 5, 10),
        MemoryCase("60 s clip", "rife", 96, 64, 5, 60),
        MemoryCase("4K input", "blend", 3840, 2160, 25, 0.16),
        MemoryCase("4K input", "rife", 3840, 2160, 25, 0.16),
    ),
    intake_senders=(1, 10, 50),
    queue_jobs_each=40,
)


def log(message: str) -> None:
    print(message, flush=True)


def run_quality(results: report.BenchResults, settings: Settings, args: argparse.Namespace) -> None:
    synthetic = case_library.synthetic_cases(settings.interpolated, settings.hd_interpolated)
    real, notes = case_library.real_cases(settings.interpolated, settings.hd_interpolated)
    results.cases = synthetic + real
    results.notes += notes
    built = build_methods(args.dain_weights, args.methods)
    results.notes += built.notes
    results.method_order = [m.name for m in built.methods]
    try:
        results.scores = quality.evaluate(results.cases, built.methods, log)
    finally:
        built.close()


def run_speed(results: report.BenchResults, settings: Settings, args: argparse.Namespace) -> None:
    sgemm = speed.sgemm_gflops()
    log(f"  SGEMM {speed.SGEMM_SIZE}² fp32: {sgemm:.1f} GFLOP/s with {results.machine.torch_threads} threads")
    results.speed = speed.benchmark(speed.model_entries(args.dain_weights), speed.SIZES, settings.speed_pairs,
                                    sgemm, log)
    # Again after the models: other work on a shared CPU only lowers it, so the better run is the peak.
    again = speed.sgemm_gflops()
    log(f"  SGEMM again: {again:.1f} GFLOP/s")
    results.speed.use_sgemm(max(sgemm, again))
    results.notes += results.speed.notes
    rife, _ = speed.try_model_entry(speed.RIFE_MODES[1])
    if rife is not None:
        lane_row = speed.lane_throughput(rife, speed.RIFE_MODES[1].label, settings.lane_size, settings.lane_pairs, log)
        results.speed.lanes += [lane_row] if lane_row else []
        results.speed.lane_gflops()
        rife.close()
    results.minterpolate_speed = speed.time_method(MinterpolateMethod(), speed.SIZES, settings.speed_pairs, log=log)


def run_endtoend(results: report.BenchResults, settings: Settings, args: argparse.Namespace) -> None:
    width, height, fps, seconds = settings.endtoend_clip
    results.endtoend.append(endtoend.measure(width, height, fps, seconds, settings.endtoend_fps, log=log))


def run_pipeline(results: report.BenchResults, settings: Settings, args: argparse.Namespace) -> None:
    width, height, fps, seconds = settings.overhead_clip
    for model in ("blend", "rife"):
        results.overhead += pipeline.measure(model, ("mp4", "gif"), width, height, fps, seconds, log)
    # The chat flow and the CLI on the end-to-end clip, split into their parts, against the model alone.
    results.breakdown = pipeline.breakdown("rife", *settings.endtoend_clip, settings.endtoend_fps,
                                           settings.alone_pairs, log)


def run_memory(results: report.BenchResults, settings: Settings, args: argparse.Namespace) -> None:
    results.memory = memory.measure(list(settings.memory_cases), log)


def run_bot(results: report.BenchResults, settings: Settings, args: argparse.Namespace) -> None:
    from . import bot_intake, queue_throughput

    results.intake = asyncio.run(bot_intake.run(list(settings.intake_senders)))
    log(report.intake_table(results.intake))
    with tempfile.TemporaryDirectory(prefix="smoothbot-bench-queue-") as tmp:
        for index, scenario in enumerate(queue_throughput.SCENARIOS):
            rate, _ = asyncio.run(queue_throughput.run_scenario(
                scenario, Path(tmp) / f"queue-{index}.sqlite3", producers=50, jobs_each=settings.queue_jobs_each))
            results.throughput.append(report.ThroughputRow(scenario.name, rate))
            log(f"  {scenario.name}: {rate:.0f} jobs/s")


def run_contributed(name: str, results: report.BenchResults, args: argparse.Namespace) -> None:
    module = importlib.import_module(CONTRIBUTED[name])
    results.add(module.section(args.full, log))


Runner = Callable[[report.BenchResults, Settings, argparse.Namespace], None]
RUNNERS: dict[str, Runner] = {
    "quality": run_quality, "speed": run_speed, "endtoend": run_endtoend, "pipeline": run_pipeline,
    "memory": run_memory, "bot": run_bot,
}


def runner(name: str) -> Runner:
    if name in CONTRIBUTED:
        return lambda results, settings, args: run_contributed(name, results, args)
    return RUNNERS[name]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="more frames and longer runs (bench-full)")
    parser.add_argument("--sections", nargs="+", choices=section_names(), default=list(section_names()),
                        help="what to run (default: everything)")
    parser.add_argument("--methods", nargs="+", choices=("blend", "minterpolate", "flow", "rife", "dain"),
                        help="quality methods to compare (default: all available)")
    parser.add_argument("--dain-weights", type=Path, help="DAIN weights file: adds dain to quality and speed")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice, reported)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="where REPORT.md and the plots go "
                                                                    "(default: bench/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dain_weights is not None and not args.dain_weights.is_file():
        print(f"error: --dain-weights {args.dain_weights} is not a file", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    settings = FULL if args.full else QUICK
    command = "python -m bench" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    results = report.BenchResults(mode="full" if args.full else "quick", command=command, machine=describe(REPO_DIR))
    started = time.perf_counter()
    failed = []
    for name in section_names():
        if name not in args.sections:
            continue
        log(f"== {name}")
        section_started = time.perf_counter()
        try:
            runner(name)(results, settings, args)
        except Exception as error:  # one broken section must not lose the others' numbers
            failed.append(name)
            results.notes.append(f"section {name} failed: {type(error).__name__}: {error}")
            log(f"  section {name} failed: {error}")
        results.section_seconds[name] = time.perf_counter() - section_started
    results.machine.load_average_end = os.getloadavg()
    written = report.write(results, args.out)
    log("")
    log(report.console_tables(results))
    log("")
    log(f"total {time.perf_counter() - started:.0f} s; wrote " + ", ".join(str(p) for p in written))
    if failed:
        # A broken benchmark is a bug (never a slow time): say so with the exit status.
        log(f"error: section(s) failed: {', '.join(failed)} (see the report's notes)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
