"""Speed: ms per interpolated frame of each model at three sizes, and RIFE's use of the CPU.

Models are given as :class:`ModelEntry` (a label and a factory), so variants of one model (RIFE's
speed modes) can be measured side by side with the same frames in the same run: an entry that names
a ``reference`` gets a speed-up and a PSNR-against-the-reference column, and borrows the
reference's FLOP count (same network, same arithmetic, however it is executed).

Each model interpolates the midpoint of neighbouring frames of a pan over real photographs, in
order, as the engine does at 2× (a frame's encoding may be reused by the next pair). The first pair
is a warm-up (allocation, kernel selection) and is not timed; then the models take turns pair by
pair, and the fastest timed pair is reported, because on a shared CPU other work only ever adds
time (the minimum is the least disturbed sample).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from .cases import Frame, pan_sequence
from .methods import Method
from .quality import psnr
from interpolation.api import in_lanes, pair_jobs
from interpolation.models import FrameInterpolator

#: Frame sizes (width, height): a small square, a phone clip, 480p (the end-to-end clip's size), HD.
SIZES = ((256, 256), (640, 360), (854, 480), (1280, 720))
#: Side of the square fp32 matrices whose product measures the machine's practical FP32 peak.
SGEMM_SIZE = 4096
SGEMM_REPEATS = 3
#: Fast models are run over the frames again until this many seconds are spent, so their
#: millisecond timings are not a single noisy sample.
MIN_TIMING_S = 1.0
#: Alternations of one-pair-at-a-time and laned runs; the lanes speed up over their first rounds, and
#: a shared CPU's noise only adds time, so the fastest of several is the reading.
LANE_ROUNDS = 3


@dataclass(frozen=True)
class ModelEntry:
    """A model to time: ``factory()`` builds it."""

    label: str
    factory: Callable[[], FrameInterpolator]
    #: What this variant is, for the report ("eager fp32", "bf16 autocast", ...).
    description: str = ""
    #: Label of the entry this one is a variant of: compared for speed and output (PSNR).
    reference: str | None = None
    #: Count this model's FLOPs with torch's FLOP counter (torch models only).
    count_flops: bool = False


def rife_factory() -> FrameInterpolator:
    from interpolation.models import create_model

    return create_model("rife")


def rife_fp32_factory() -> FrameInterpolator:
    from interpolation.models.rife import RifeInterpolator

    return RifeInterpolator(precision="fp32")


def rife_best_factory() -> FrameInterpolator:
    from interpolation.models import create_model

    return create_model("rife", quality="best")


def rife_reference_factory() -> FrameInterpolator:
    from interpolation.models.rife_reference import ReferenceRifeInterpolator

    return ReferenceRifeInterpolator()


#: RIFE's execution modes, the reference first: Practical-RIFE's published forward (eager fp32, every
#: pair encoded anew), then the engine's. A new mode is one more entry with
#: ``reference="rife-reference"``; the report's "RIFE speed modes" section lists them all. Only the
#: reference's FLOPs are counted: every mode runs the same network, so the same useful work.
RIFE_MODES: tuple[ModelEntry, ...] = (
    ModelEntry("rife-reference", rife_reference_factory,
               "Practical-RIFE's published forward, eager fp32 (the reference implementation)", count_flops=True),
    ModelEntry("rife", rife_factory, "the engine's forward: same arithmetic reordered, frames prepared once, "
               "fused oneDNN convolutions (channels-last, packed weights), deconvolutions as 2×2 phase convolutions, "
               "compiled warp kernels, convolutions in bfloat16 on a CPU with AMX or AVX-512 BF16 (float32 elsewhere), warps and "
               "flows fp32, zero padding and blocks on the whole padded frame as published; "
               "then the default's lean toward the cross-fade (interpolation/models/confidence.py), so its "
               "output differs from the reference's where the lean acts; the fastest pair is one without a "
               "self-test (their cost is in the real-clip table, bench/versus.py)",
               reference="rife-reference"),
    ModelEntry("rife-fp32", rife_fp32_factory, "the engine's forward with its convolutions forced to float32 "
               "(--quality fast, SMOOTHBOT_RIFE_PRECISION=fp32): the same as rife where the CPU has neither AMX nor AVX-512 BF16",
               reference="rife-reference"),
    ModelEntry("rife-best", rife_best_factory, "quality mode --quality best: plain, reversed and mirrored views "
               "averaged (4 passes; its output differs from the reference's on purpose)", reference="rife-reference"),
)


def named_entry(name: str) -> ModelEntry:
    from interpolation.models import create_model

    return ModelEntry(name, lambda: create_model(name))


def model_entries(dain_weights: object | None = None) -> list[ModelEntry]:
    """blend, flow, RIFE's modes, and dain when weights are given."""
    entries = [named_entry("blend"), named_entry("flow"), *RIFE_MODES]
    if dain_weights is not None:
        from interpolation.models import create_model

        entries.append(ModelEntry("dain", lambda: create_model("dain", dain_weights)))
    return entries


@dataclass
class SpeedRow:
    label: str
    width: int
    height: int
    ms_per_frame: float  # the fastest timed frame: the least disturbed on a shared CPU
    timed_frames: int
    median_ms: float | None = None  # the typical timed frame, disturbances included
    gflop_per_frame: float | None = None
    gflops: float | None = None  # effective GFLOP/s: counted FLOPs / time
    sgemm_fraction: float | None = None  # gflops / the same run's SGEMM GFLOP/s
    reference: str | None = None
    speedup: float | None = None  # reference ms / this ms
    psnr_vs_reference_db: float | None = None
    note: str = ""


@dataclass
class SpeedResults:
    threads: int
    sgemm_gflops: float
    rows: list[SpeedRow] = field(default_factory=list)
    lanes: list[LaneRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lane_gflops(self) -> None:
        """Credit each lanes row with the FLOPs counted on the reference at its size."""
        for lane in self.lanes:
            lane.gflop_per_frame = next((row.gflop_per_frame for row in self.rows if row.gflop_per_frame and
                                         (row.width, row.height) == (lane.width, lane.height)), None)

    def use_sgemm(self, gflops: float) -> None:
        """Measure fractions against ``gflops`` (e.g. the best of SGEMM runs before and after the models)."""
        self.sgemm_gflops = gflops
        for row in self.rows:
            if row.gflops is not None:
                row.sgemm_fraction = row.gflops / gflops


def sgemm_gflops(size: int = SGEMM_SIZE, repeats: int = SGEMM_REPEATS) -> float:
    """Best GFLOP/s of an fp32 ``size``×``size`` matrix product with torch's current threads."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    torch.mm(a, b)  # warm-up: thread pool and kernel selection
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9


def steady_state_flops(model: FrameInterpolator, frames: Sequence[Frame]) -> int:
    """FLOPs of one midpoint when the left frame was seen in the previous pair (as in the engine)."""
    model.close()
    model.interpolate(frames[0], frames[1], [0.5])
    with FlopCounterMode(display=False) as counter:
        model.interpolate(frames[1], frames[2], [0.5])
    model.close()
    return int(counter.get_total_flops())


def time_interleaved(models: dict[str, FrameInterpolator],
                     frames: Sequence[Frame]) -> tuple[dict[str, list[float]], dict[str, list[Frame]]]:
    """Seconds per midpoint of every model (warm-up pair excluded) and every midpoint, in order.

    The models take turns pair by pair, so a burst of other work on a shared CPU falls on all of them
    rather than on one. Models faster than :data:`MIN_TIMING_S` for the whole sequence go round again.
    """
    times: dict[str, list[float]] = {label: [] for label in models}
    outputs: dict[str, list[Frame]] = {}
    for label, model in models.items():
        model.close()
        outputs[label] = [model.interpolate(frames[0], frames[1], [0.5])[0]]
    pending = list(models)
    first_round = True
    while pending:
        for a, b in zip(frames[1:], frames[2:]):
            for label in pending:
                started = time.perf_counter()
                middle = models[label].interpolate(a, b, [0.5])[0]
                times[label].append(time.perf_counter() - started)
                if first_round:
                    outputs[label].append(middle)
        first_round = False
        pending = [label for label in pending if sum(times[label]) < MIN_TIMING_S]
    for model in models.values():
        model.close()
    return times, outputs


def benchmark(entries: Sequence[ModelEntry], sizes: Sequence[tuple[int, int]], pairs: dict[tuple[int, int], int],
              sgemm: float, log: Callable[[str], None] = print) -> SpeedResults:
    """Time every entry at every size. ``pairs[size]`` is how many midpoints are timed there (≥ 1)."""
    results = SpeedResults(threads=torch.get_num_threads(), sgemm_gflops=sgemm)
    models: dict[str, FrameInterpolator] = {}
    for entry in entries:
        model, reason = try_model_entry(entry)
        if model is None:
            results.notes.append(reason)
        else:
            models[entry.label] = model
    built = [entry for entry in entries if entry.label in models]
    for size in sizes:
        width, height = size
        frames = pan_sequence(width, height, pairs[size] + 2)  # the warm-up pair's two frames, then one per pair
        flops = {entry.label: steady_state_flops(models[entry.label], frames) for entry in built if entry.count_flops}
        times, outputs = time_interleaved(models, frames)
        # Every model is read over the same number of timed pairs (fast ones went round again only for
        # timer resolution): the fastest of 12 would flatter a model against the fastest of 4.
        count = min((len(samples) for samples in times.values()), default=0)
        rows: dict[str, SpeedRow] = {}
        for entry in built:
            samples = times[entry.label][:count]
            row = SpeedRow(entry.label, width, height, 1000.0 * min(samples), len(samples),
                           1000.0 * statistics.median(samples))
            counted = flops.get(entry.label) or (flops.get(entry.reference) if entry.reference else None)
            if counted:
                row.gflop_per_frame = counted / 1e9
                row.gflops = counted / 1e9 / (row.ms_per_frame / 1000.0)
                row.sgemm_fraction = row.gflops / sgemm
            reference = rows.get(entry.reference) if entry.reference else None
            if reference is not None:
                row.reference = reference.label
                row.speedup = reference.ms_per_frame / row.ms_per_frame
                row.psnr_vs_reference_db = float(np.mean([
                    psnr(out, ref) for out, ref in zip(outputs[entry.label], outputs[reference.label])]))
            rows[entry.label] = row
            results.rows.append(row)
            log(f"  {entry.label:<14} {width}×{height}: {row.ms_per_frame:8.1f} ms/frame"
                + (f", {row.gflops:.1f} GFLOP/s ({100 * row.sgemm_fraction:.0f} % of SGEMM)" if row.gflops else ""))
    for model in models.values():
        model.close()
    return results


@dataclass
class LaneRow:
    """Throughput of one model over a run of pairs: one pair at a time vs the engine's lanes."""

    label: str
    width: int
    height: int
    lanes: int
    pairs: int
    one_at_a_time_ms: float  # wall ms per interpolated frame, pairs in order on all threads
    laned_ms: float  # the same pairs spread over the lanes (each lane its share of the threads)
    #: The reference's counted FLOPs at this size (:func:`SpeedResults.lane_gflops`), once known.
    gflop_per_frame: float | None = None

    @property
    def speedup(self) -> float:
        return self.one_at_a_time_ms / self.laned_ms

    @property
    def laned_gflops(self) -> float | None:
        """Effective GFLOP/s of the lanes: the counted FLOPs of the frames they made, per second."""
        return None if self.gflop_per_frame is None else self.gflop_per_frame / (self.laned_ms / 1000)


def lane_throughput(model: FrameInterpolator, label: str, size: tuple[int, int], pairs: int,
                    log: Callable[[str], None] = print) -> LaneRow | None:
    """Wall time per frame over ``pairs`` midpoints, one pair at a time and then in the model's lanes.

    The lanes are driven by the engine's own :func:`~interpolation.api.in_lanes`, so the ratio is
    what a whole job gains. Both runs start afresh after a warm-up pair, self-tests and all; they
    alternate :data:`LANE_ROUNDS` times and the fastest of each is kept.
    """
    width, height = size
    lanes = model.lanes_for(height, width)
    if lanes <= 1:
        return None
    frames = pan_sequence(width, height, pairs + 2)
    steps = list(range(1, pairs + 1))

    def afresh() -> None:
        """No frame or chain kept from the run before (the same pairs would skip their self-tests),
        then the warm-up pair, which starts the chain as a clip's first pair does."""
        model.close()
        model.interpolate(frames[0], frames[1], [0.5])

    def one_at_a_time() -> float:
        afresh()
        started = time.perf_counter()
        for k in steps:
            model.interpolate(frames[k], frames[k + 1], [0.5])
        return time.perf_counter() - started

    def laned() -> float:
        afresh()
        started = time.perf_counter()
        for _ in in_lanes(model, lanes, pair_jobs(model, ((frames[k], frames[k + 1]) for k in steps), [0.5])):
            pass
        return time.perf_counter() - started

    single_runs, laned_runs = [], []
    for _ in range(LANE_ROUNDS):
        single_runs.append(one_at_a_time())
        laned_runs.append(laned())
    row = LaneRow(label, width, height, lanes, pairs, 1000 * min(single_runs) / pairs, 1000 * min(laned_runs) / pairs)
    log(f"  {label} {width}×{height}: {row.one_at_a_time_ms:.0f} ms/frame one pair at a time, "
        f"{row.laned_ms:.0f} in {lanes} lanes ({row.speedup:.2f}×)")
    return row


def try_model_entry(entry: ModelEntry) -> tuple[FrameInterpolator | None, str]:
    try:
        return entry.factory(), ""
    except ImportError as error:
        return None, f"{entry.label}: not available in this checkout ({error})"
    except Exception as error:  # the engine's errors carry one-line messages
        return None, f"{entry.label}: could not be built: {error}"


def time_method(method: Method, sizes: Sequence[tuple[int, int]], pairs: dict[tuple[int, int], int],
                fps: Fraction = Fraction(25), log: Callable[[str], None] = print) -> list[SpeedRow]:
    """ms per midpoint of a whole-sequence method (ffmpeg minterpolate: one process per sequence)."""
    rows = []
    for width, height in sizes:
        frames = pan_sequence(width, height, pairs[(width, height)] + 1)
        started = time.perf_counter()
        midpoints = method.midpoints(frames, fps)
        seconds = time.perf_counter() - started
        row = SpeedRow(method.name, width, height, 1000.0 * seconds / len(midpoints), len(midpoints),
                       note="whole ffmpeg run (start, raw I/O) divided by the midpoints")
        rows.append(row)
        log(f"  {method.name:<14} {width}×{height}: {row.ms_per_frame:8.1f} ms/frame")
    return rows


__all__ = ["RIFE_MODES", "SIZES", "LaneRow", "ModelEntry", "SpeedResults", "SpeedRow", "benchmark", "lane_throughput",
           "model_entries", "sgemm_gflops", "time_method"]
