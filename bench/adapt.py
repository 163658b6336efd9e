"""Test-time adaptation of RIFE for ``--quality best`` (issue 20): does it pay on real clips?

Each clip is the 2× test of :mod:`bench.versus`: 2n + 1 consecutive frames inside one shot, every other
frame dropped and interpolated back, PSNR against the dropped camera frame. The adaptation
(:func:`interpolation.models.adapt.adapt`, what ``--quality best`` runs) sees only the kept frames: a copy
of the published network is fine-tuned on triplets of consecutive kept frames (original frames k, k + 2,
k + 4: predict k + 2 from its neighbours, twice the motion of the pairs that are then interpolated) —
random crops, random flips and time reversal, Adam, L1, a fixed number of steps — at the internal scale
best mode runs the clip at. Every ``guard_every``-th triplet is held out of the training for the harm
guard: the adapted weights are kept only if one plain view scores better on those than the published
weights. (The engine samples at most 24 triplets over the whole clip and keeps a window of at most 640 px
of each; here the clip's kept frames are the triplets, whole.)

Scored on the dropped frames, which the adaptation never saw: best mode (4 views) with the published
weights, with the adapted ones, and with whatever the guard kept. Times are the process's CPU seconds
(all threads; ``time.process_time``) and wall seconds; on a shared box wall time is inflated, so the
budget (issue 20: about 2 minutes on 2 cores for a 10 s 480p clip) is judged by CPU seconds / 2.

``python -m bench.adapt [--group tuning|held-out] [--clips NAME ...] [--steps N] [--lr X ...] [--crop PX]
[--triplets N] [--threads N] [--out FILE]`` prints one row per clip and rate (and writes the rows as JSON
where asked).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from interpolation.models import create_model
from interpolation.models.adapt import AdaptSettings, adapt
from interpolation.models.rife import RifeInterpolator, internal_scale

from .cases import HELD_OUT_CLIPS, TUNING_CLIPS, VERSUS_TRIPLETS, Case, footage_case
from .versus import score


@dataclass
class AdaptRow:
    settings: AdaptSettings
    group: str
    clip: str
    size: str
    scale: float
    triplets: int  # scored (dropped frames)
    best_db: float  # best mode, published weights
    adapted_db: float  # best mode, adapted weights
    guard_published_db: float  # one plain view on the guard triplets
    guard_adapted_db: float
    guard_kept: bool  # the guard kept the adapted weights
    adapt_cpu_s: float  # fine-tuning and guard
    adapt_wall_s: float
    best_cpu_s: float  # the 2× test in best mode, published weights

    @property
    def gain(self) -> float:
        return self.adapted_db - self.best_db

    @property
    def guarded_db(self) -> float:
        return self.adapted_db if self.guard_kept else self.best_db


def run_clip(group: str, case: Case, variants: Sequence[AdaptSettings],
             log: Callable[[str], None] = print) -> list[AdaptRow]:
    """Best mode with the published weights once, then one adaptation per settings in ``variants``."""
    scale = internal_scale(case.height, case.width, "best")
    published = create_model("rife", None, quality="best")
    assert isinstance(published, RifeInterpolator)
    cpu = time.process_time()
    best = score(published, case)
    best_cpu = time.process_time() - cpu
    log(f"  {case.name}: best {best.psnr_db:.2f} dB ({best_cpu:.0f} cpu s), adapting at scale {scale}")
    kept = case.kept
    triplets = [(kept[j], kept[j + 1], kept[j + 2]) for j in range(len(kept) - 2)]
    rows = []
    for settings in variants:
        wall = time.perf_counter()
        adaptation = adapt(published, triplets, scale, settings)
        if adaptation is None:
            log(f"  {case.name}: too few triplets ({len(triplets)}) to adapt")
            continue
        wall = time.perf_counter() - wall
        adapted = score(adaptation.model, case)
        row = AdaptRow(settings, group, case.name, f"{case.width}×{case.height}", scale, len(case.truth), best.psnr_db,
                       adapted.psnr_db, adaptation.guard_published_db, adaptation.guard_adapted_db, adaptation.kept,
                       adaptation.cpu_s, wall, best_cpu)
        log(f"  {case.name}: lr {settings.lr:g}: adapted {row.adapted_db:.2f} dB ({row.gain:+.2f}), "
            f"{adaptation.note}, {row.adapt_cpu_s:.0f} cpu s {row.adapt_wall_s:.0f} wall s")
        rows.append(row)
    return rows


def table(rows: Sequence[AdaptRow]) -> str:
    header = ["group", "clip", "size", "scale", "steps", "lr", "best dB", "adapted dB", "gain dB",
              "guard (plain view) dB", "guarded gain dB", "adapt CPU s", "best-mode 2× test CPU s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join([
            row.group, row.clip, row.size, f"{row.scale:g}", str(row.settings.steps), f"{row.settings.lr:g}",
            f"{row.best_db:.2f}", f"{row.adapted_db:.2f}", f"{row.gain:+.2f}",
            f"{row.guard_published_db:.2f} → {row.guard_adapted_db:.2f} ({'kept' if row.guard_kept else 'fell back'})",
            f"{row.guarded_db - row.best_db:+.2f}", f"{row.adapt_cpu_s:.0f}", f"{row.best_cpu_s:.0f}"]) + " |")
    if rows:
        lines.append(f"| mean | | | | | | {np.mean([r.best_db for r in rows]):.2f} | {np.mean([r.adapted_db for r in rows]):.2f}"
                     f" | {np.mean([r.gain for r in rows]):+.2f} | | {np.mean([r.guarded_db - r.best_db for r in rows]):+.2f}"
                     f" | {np.mean([r.adapt_cpu_s for r in rows]):.0f} | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.adapt", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--group", choices=("tuning", "held-out"), default="tuning")
    parser.add_argument("--clips", nargs="*", help="only these clips of the group (by name)")
    parser.add_argument("--triplets", type=int, default=VERSUS_TRIPLETS)
    defaults = AdaptSettings()
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--lr", type=float, nargs="+", default=[defaults.lr], help="one adaptation per rate")
    parser.add_argument("--crop", type=int, default=defaults.crop)
    parser.add_argument("--guard-every", type=int, default=defaults.guard_every)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a loaded box two threads' OpenMP spin-waits inflate CPU time ~7×)")
    parser.add_argument("--out", help="write the rows here as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = [replace(defaults, steps=args.steps, lr=lr, crop=args.crop, guard_every=args.guard_every)
                for lr in args.lr]
    rows: list[AdaptRow] = []
    for clip in TUNING_CLIPS if args.group == "tuning" else HELD_OUT_CLIPS:
        if args.clips and clip.name not in args.clips:
            continue
        case = footage_case(clip, args.triplets)
        if case is None:
            print(f"adapt: {clip.name} not available")
            continue
        rows.extend(run_clip(args.group, case, variants))
        print(table(rows), flush=True)
        if args.out:  # after every clip: a long run that is stopped keeps what it measured
            with open(args.out, "w") as out:
                json.dump([asdict(row) for row in rows], out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
