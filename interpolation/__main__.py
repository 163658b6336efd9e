"""Command line: ``python -m interpolation INPUT -o OUTPUT [--fps N | --multi K] [--slowmo K] [--loop] [--gif] ...``

Exit codes: 0 success, 1 failure, 2 bad input or options, 3 missing/corrupt weights, 130 interrupted.
Errors are one line on stderr; ``-v`` adds the server-side detail (ffmpeg's output, paths) below it,
and SMOOTHBOT_DEBUG=1 shows tracebacks of unexpected failures.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import TextIO

from .api import describe_fps, run
from .errors import EngineError
from .encoding import CODECS, CONTAINERS, PRESETS
from .models import MODEL_NAMES
from .options import (COMPARE_MODES, CUT_MODES, MAX_SLOWMO, MIN_SLOWMO, QUALITY_MODES, Limits, Options, Progress,
                      Result, SceneSettings)

#: Seconds between progress-bar redraws.
PROGRESS_REDRAW_S = 0.2
PROGRESS_BAR_WIDTH = 28
SIZE_UNITS = {"": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
              "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def byte_size(text: str) -> int:
    """"8M", "10MB", "49.5mb", "52428800" → bytes (decimal units, as chat platforms count)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 8M, 49.5MB, 10000000)")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def slowmo_factor(text: str) -> float:
    value = positive_float(text.lower().removesuffix("x"))
    if not MIN_SLOWMO <= value <= MAX_SLOWMO:
        raise argparse.ArgumentTypeError(f"must be between {MIN_SLOWMO:g} and {MAX_SLOWMO:g}: {text!r}")
    return value


def threshold(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be at most 1: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m interpolation",
        description="Make a video smooth: synthesise in-between frames to reach a higher frame rate.",
        epilog="examples:\n  python -m interpolation clip.mp4 -o smooth.mp4 --fps 60\n"
               "  python -m interpolation clip.mp4 -o loop.gif --loop\n"
               "  python -m interpolation clip.mp4 -o frames/ --multi 4\n"
               "  python -m interpolation clip.mp4 -o slow.mp4 --slowmo 4 --fps 60\n"
               "  python -m interpolation clip.mp4 -o compare.webm --compare side",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="any video ffmpeg can read (mp4, mov, webm, mkv, GIF, ...)")
    parser.add_argument("-o", "--output", required=True,
                        help="result: .mp4, .mkv, .webm (VP9/Opus), .mov, .gif, or a directory ending in / "
                             "for numbered PNG frames")
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=positive_float, help="target frame rate (default: twice the input rate)")
    rate.add_argument("--multi", type=positive_float, help="multiply the input frame rate by this factor")
    parser.add_argument("--slowmo", type=slowmo_factor, metavar="K",
                        help=f"play K times slower ({MIN_SLOWMO:g}-{MAX_SLOWMO:g}, e.g. 2.5), every new frame "
                             "interpolated; audio is slowed with its pitch kept")
    parser.add_argument("--loop", action="store_true", help="interpolate the last frame back to the first")
    parser.add_argument("--gif", action="store_true", help="write an animated GIF (capped at 50 fps)")
    parser.add_argument("--model", choices=MODEL_NAMES, default="rife", help="interpolation model (default: rife)")
    parser.add_argument("--quality", choices=QUALITY_MODES, default="fast",
                        help="fast (default) or best: RIFE averages 4 views of each pair, ~4x slower, sharper")
    parser.add_argument("--weights", type=Path, help="model weights file (default: the fetched cache)")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: best available)")
    parser.add_argument("--max-bytes", type=byte_size, help="size budget, e.g. 8M: shrink until the file fits")
    parser.add_argument("--compare", choices=COMPARE_MODES,
                        help="before/after video: a moving split line, side by side, or stacked")
    parser.add_argument("--cut-mode", choices=CUT_MODES, default="cut",
                        help="at scene cuts: a hard cut (default) or a short cross-fade; never a morph")
    parser.add_argument("--cut-threshold", type=threshold, default=SceneSettings.cut_threshold,
                        help="shot-boundary network's confidence (0-1) that keeps a proposed scene cut "
                             f"(default: {SceneSettings.cut_threshold:g}; lower finds more cuts)")
    parser.add_argument("--codec", choices=tuple(CODECS),
                        help="video codec (default: h264, or vp9 for .webm); needs the encoder in ffmpeg")
    parser.add_argument("--container", choices=tuple(CONTAINERS),
                        help="video container (default: from the output name, else mp4)")
    parser.add_argument("--crf", type=int,
                        help="quality on the codec's scale, lower is better (default: h264 18, h265 22, vp9/av1 32)")
    parser.add_argument("--preset", choices=PRESETS, default="medium",
                        help="encoder speed, x264 names, translated for other codecs (default: medium)")
    parser.add_argument("--no-audio", action="store_true", help="drop the audio track")
    parser.add_argument("--max-duration", type=positive_float, default=Limits.max_duration_s,
                        help=f"refuse longer inputs, seconds (default: {Limits.max_duration_s:g})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="on errors, also print the details behind the one-line message (ffmpeg's output, paths)")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        fps=args.fps, multi=args.multi, loop=args.loop, output="gif" if args.gif else None,
        model=args.model, quality=args.quality, weights=args.weights, device=args.device, max_bytes=args.max_bytes,
        crf=args.crf, preset=args.preset, codec=args.codec, container=args.container, keep_audio=not args.no_audio,
        slowmo=args.slowmo, compare=args.compare, cut_mode=args.cut_mode,
        scene=SceneSettings(cut_threshold=args.cut_threshold), limits=Limits(max_duration_s=args.max_duration),
    )


class ProgressBar:
    """``[#####-----]  120/300 frames  4.2 fps  ETA 0:43`` redrawn in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_draw = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        final = progress.frames_done == progress.frames_total
        if not final and now - self.last_draw < PROGRESS_REDRAW_S:
            return
        self.last_draw = now
        filled = int(PROGRESS_BAR_WIDTH * progress.fraction)
        eta = progress.eta_s
        eta_text = "--:--" if eta is None else f"{int(eta // 60)}:{int(eta % 60):02d}"
        self.stream.write(
            f"\r[{'#' * filled}{'-' * (PROGRESS_BAR_WIDTH - filled)}] {progress.frames_done}/"
            f"{progress.frames_total} frames  {progress.frames_per_second:.1f} fps  ETA {eta_text}"
        )
        if final:
            self.stream.write("\n")
        self.stream.flush()


def summary(result: Result) -> str:
    extras = ["loop"] if result.loop else []
    if result.codec:
        extras.append(f"{result.codec.upper()} in {result.container.upper()}")
    text = (f"wrote {result.output_path}: {describe_fps(result.input_fps)} → {describe_fps(result.output_fps)} fps, "
            f"{result.frames_out} frames, {result.duration_s:.1f} s, {result.model_display_name}"
            f"{''.join(', ' + e for e in extras)} ({result.size_bytes / 1e6:.1f} MB)")
    return "\n".join([text] + result.highlights() + [f"note: {note}" for note in result.notes])


def error_text(error: EngineError, verbose: bool) -> str:
    """One line for people; with ``verbose``, the error's detail follows, indented."""
    if error.detail is None:
        return f"error: {error}"
    if not verbose:
        return f"error: {error} (-v for details)"
    return f"error: {error}\n" + "\n".join(f"  {line}" for line in error.detail.splitlines())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    show_progress = not args.quiet and sys.stderr.isatty()
    try:
        result = run(args.input, args.output, options_from(args),
                     progress=ProgressBar(sys.stderr) if show_progress else None)
    except EngineError as error:
        if show_progress:
            sys.stderr.write("\n")
        print(error_text(error, args.verbose), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\nerror: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line for people; the traceback on request
        if os.environ.get("SMOOTHBOT_DEBUG"):
            raise
        print(f"error: unexpected failure ({type(error).__name__}: {error}); "
              "rerun with SMOOTHBOT_DEBUG=1 for details", file=sys.stderr)
        return 1
    if not args.quiet:
        print(summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
