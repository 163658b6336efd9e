"""The report: Markdown tables (bench/REPORT.md), PNG plots beside it, raw numbers as JSON.

Speed is reported as ratios measured in the same run wherever possible (against RIFE, against the
same run's SGEMM, model share of a whole run): absolute times only mean something on this machine
at this moment, and the CPU may be shared.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cases import Case
from .endtoend import EndToEndRow
from .machine import Machine
from .memory import FLAT_TOLERANCE, MemoryResults
from .pipeline import ALONE_REPEATS, OverheadRow
from .quality import PSNR_CEILING_DB, Score, psnr, sample_truth
from .speed import RIFE_MODES, SpeedResults, SpeedRow

if TYPE_CHECKING:  # the bot benchmark imports the whole bot; only the runner needs it
    from .bot_intake import IntakeResult

REPORT_NAME = "REPORT.md"
#: What "% of SGEMM" means: useful work is counted once, on the published network, never on our own.
SGEMM_QUALIFIER = "FLOPs counted on the reference forward"
RESULTS_NAME = "results.json"
PSNR_PLOT = "psnr.png"
CROPS_PLOT = "crops.png"
#: Side of the square crop shown per case (smaller frames show their whole height).
CROP_SIDE = 112
#: Method colours, stable across plots and runs.
COLOURS = {"blend": "#9e9e9e", "minterpolate": "#f28e2b", "flow": "#59a14f", "rife": "#4e79a7", "rife-best": "#1f3f66",
           "dain": "#b07aa1"}


def sgemm_qualifier(machine: Machine | None) -> str:
    """:data:`SGEMM_QUALIFIER`, and that the rate is float32's where RIFE's convolutions ran in bfloat16."""
    if machine is not None and machine.rife_convolutions == "bfloat16":
        return SGEMM_QUALIFIER + "; RIFE's convolutions in bfloat16, the SGEMM in float32"
    return SGEMM_QUALIFIER


@dataclass
class ThroughputRow:
    scenario: str
    jobs_per_s: float


@dataclass
class Section:
    """A whole report section that one bench module contributes (cut detection, versus the published forward…).

    The module measures, then builds this from its own rows: ``title`` becomes a "##" heading, ``intro``
    the paragraph under it, ``tables`` the Markdown tables in order (build them with
    :func:`markdown_table`), ``summary`` lines join the report's Summary, ``notes`` its "Not run or
    replaced" list, and ``data`` (anything JSON-serialisable, e.g. ``[asdict(row) for row in rows]``)
    is saved in results.json under ``sections.<key>``. ``bench/__main__.py`` registers the module in one line
    (``CONTRIBUTED``); nothing here needs to change for a new section.
    """

    key: str
    title: str
    intro: str = ""
    tables: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: object = None

    def markdown(self) -> list[str]:
        out = [f"## {self.title}", ""]
        if self.intro:
            out += [self.intro, ""]
        for table in self.tables:
            out += [table, ""]
        return out


@dataclass
class BenchResults:
    mode: str  # "quick" or "full"
    command: str
    machine: Machine
    cases: list[Case] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    method_order: list[str] = field(default_factory=list)
    speed: SpeedResults | None = None
    minterpolate_speed: list[SpeedRow] = field(default_factory=list)
    overhead: list[OverheadRow] = field(default_factory=list)
    endtoend: list[EndToEndRow] = field(default_factory=list)
    breakdown: list[OverheadRow] = field(default_factory=list)
    memory: MemoryResults | None = None
    intake: list["IntakeResult"] = field(default_factory=list)
    throughput: list[ThroughputRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    section_seconds: dict[str, float] = field(default_factory=dict)
    #: Contributed sections, in the order they ran (see :class:`Section`).
    sections: list[Section] = field(default_factory=list)

    def add(self, section: Section) -> None:
        """Put a contributed section into the report (its notes join the report's notes)."""
        self.sections.append(section)
        self.notes += section.notes


# --- tables ------------------------------------------------------------------------------------

def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def score_lookup(scores: Sequence[Score]) -> dict[tuple[str, str], Score]:
    return {(s.case, s.method): s for s in scores}


def metric_table(results: BenchResults, kind: str, metric: str) -> str:
    """Cases of one kind as rows, methods as columns; the best of each row in bold; a mean row."""
    cases = [c for c in results.cases if c.kind == kind]
    methods = [m for m in results.method_order if any(s.method == m for s in results.scores)]
    lookup = score_lookup(results.scores)
    value = (lambda s: s.psnr_db) if metric == "psnr" else (lambda s: s.ssim)
    text = (lambda v: f"{v:.2f}") if metric == "psnr" else (lambda v: f"{v:.4f}")
    rows = []
    for case in cases:
        values = {m: value(lookup[(case.name, m)]) for m in methods if (case.name, m) in lookup}
        best = max(values.values()) if values else None
        rows.append([case.name] + [bold_if_best(text, values[m], best) if m in values else "–" for m in methods])
    means = {m: float(np.mean([value(lookup[(c.name, m)]) for c in cases if (c.name, m) in lookup]))
             for m in methods if any((c.name, m) in lookup for c in cases)}
    if means:
        best = max(means.values())
        rows.append(["*mean*"] + [bold_if_best(text, means[m], best) if m in means else "–" for m in methods])
    unit = "PSNR (dB, higher is better)" if metric == "psnr" else "SSIM (higher is better)"
    return markdown_table([f"case — {unit}", *methods], rows)


def spread_table(results: BenchResults, kind: str) -> str:
    """Per case and method: the lowest and highest per-frame PSNR and how many frames were scored."""
    cases = [c for c in results.cases if c.kind == kind]
    methods = [m for m in results.method_order if any(s.method == m for s in results.scores)]
    lookup = score_lookup(results.scores)
    rows = []
    for case in cases:
        cells = [case.name]
        for method in methods:
            score = lookup.get((case.name, method))
            values = score.psnr_per_frame if score is not None else []
            cells.append(f"{min(values):.2f}–{max(values):.2f} ({len(values)})" if values else "–")
        rows.append(cells)
    return markdown_table(["case — per-frame PSNR, lowest–highest dB (frames scored)", *methods], rows)


def bold_if_best(text: Callable[[float], str], value: float, best: float | None) -> str:
    """The value as shown, in bold when it shows the same as the best (ties at display precision)."""
    shown = text(value)
    return f"**{shown}**" if best is not None and shown == text(best) else shown


def cases_table(results: BenchResults) -> str:
    rows = [[c.name, c.kind, f"{c.width}×{c.height}", f"{len(c.kept)} → {len(c.truth)}",
             f"{float(c.kept_fps):g}", c.motion] for c in results.cases]
    return markdown_table(["case", "ground truth", "size", "kept → interpolated frames", "kept fps", "motion"], rows)


def wins_summary(results: BenchResults, kind: str) -> str:
    cases = [c for c in results.cases if c.kind == kind]
    lookup = score_lookup(results.scores)
    wins: dict[str, int] = {}
    for case in cases:
        candidates = [(lookup[(case.name, m)].psnr_db, m) for m in results.method_order if (case.name, m) in lookup]
        if candidates:
            winner = max(candidates)[1]
            wins[winner] = wins.get(winner, 0) + 1
    return ", ".join(f"{m} {n}" for m, n in sorted(wins.items(), key=lambda kv: -kv[1])) or "–"


def ms_text(ms: float) -> str:
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def ratio_text(ratio: float) -> str:
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2f}×"


def speed_table(speed: SpeedResults, minterpolate: Sequence[SpeedRow]) -> str:
    """ms/frame per model and size, with the speed relative to RIFE (the default model) in the same run."""
    sizes = sorted({(r.width, r.height) for r in speed.rows}, key=lambda s: s[0] * s[1])
    labels = list(dict.fromkeys([r.label for r in speed.rows] + [r.label for r in minterpolate]))
    rows_by = {(r.label, (r.width, r.height)): r for r in [*speed.rows, *minterpolate]}
    rows = []
    for label in labels:
        cells = [label]
        for size in sizes:
            row, rife = rows_by.get((label, size)), rows_by.get(("rife", size))
            if row is None:
                cells.append("–")
                continue
            ratio = f" ({ratio_text(rife.ms_per_frame / row.ms_per_frame)})" if rife and label != "rife" else ""
            cells.append(ms_text(row.ms_per_frame) + ratio)
        rows.append(cells)
    return markdown_table(["model — ms per interpolated frame (speed relative to RIFE)",
                           *(f"{w}×{h}" for w, h in sizes)], rows)


def rife_cost_table(speed: SpeedResults) -> str:
    rows = []
    for r in speed.rows:
        if r.gflops is None:
            continue
        at_median = (f"{100 * r.sgemm_fraction * r.ms_per_frame / r.median_ms:.0f} %" if r.median_ms else "–")
        rows.append([r.label, f"{r.width}×{r.height}", f"{r.gflop_per_frame:.1f}", ms_text(r.ms_per_frame), f"{r.gflops:.1f}",
                     f"{100 * r.sgemm_fraction:.0f} %", ms_text(r.median_ms) if r.median_ms else "–", at_median,
                     str(r.timed_frames)])
    return markdown_table(["model", "size", "GFLOP per frame (counted once)", "ms/frame (fastest)", "effective GFLOP/s",
                           "fraction of SGEMM", "median ms/frame", "fraction of SGEMM at the median", "timed frames"],
                          rows)


def modes_table(speed: SpeedResults) -> str:
    mode_labels = [entry.label for entry in RIFE_MODES]
    descriptions = {entry.label: entry.description for entry in RIFE_MODES}
    rows = []
    for r in speed.rows:
        if r.label not in mode_labels:
            continue
        is_reference = r.reference is None
        rows.append([r.label, descriptions.get(r.label, ""), f"{r.width}×{r.height}", ms_text(r.ms_per_frame),
                     "1 (reference)" if is_reference else ratio_text(r.speedup),
                     f"{r.gflops:.1f}" if r.gflops else "–",
                     f"{100 * r.sgemm_fraction:.0f} %" if r.sgemm_fraction else "–",
                     "reference" if is_reference else f"{r.psnr_vs_reference_db:.1f} dB"])
    return markdown_table(["mode", "what", "size", "ms/frame", "speed-up", "GFLOP/s", "of SGEMM",
                           "PSNR vs reference output"], rows)


def lanes_table(speed: SpeedResults) -> str:
    body = [[r.label, f"{r.width}×{r.height}", str(r.pairs), ms_text(r.one_at_a_time_ms), str(r.lanes),
             ms_text(r.laned_ms), ratio_text(r.speedup), f"{r.laned_gflops:.1f}" if r.laned_gflops else "–",
             f"{100 * r.laned_gflops / speed.sgemm_gflops:.0f} %" if r.laned_gflops else "–"] for r in speed.lanes]
    return markdown_table(["model", "size", "pairs", f"one pair at a time, ms/frame ({speed.threads} threads)",
                           "lanes", "in lanes, ms/frame", "throughput gain", "effective GFLOP/s in lanes",
                           "of SGEMM"], body)


def overhead_table(rows: Sequence[OverheadRow]) -> str:
    body = [[f"{r.model} → {r.output}", r.clip, f"{r.frames_out} ({r.interpolated} interpolated)",
             f"{r.cli_wall_s:.2f}", f"{r.startup_s:.2f}", f"{r.load_s:.2f}", f"{r.load_exposed_s:.2f}", str(r.lanes),
             f"{r.model_s:.2f}", f"{r.engine_other_s:.2f}", f"{100 * r.model_share:.0f} %"] for r in rows]
    return markdown_table(["run", "input", "frames out", "CLI wall s", "start-up s", "model build s",
                           "of it not hidden by probe + scan, s", "model lanes", "model busy s",
                           "engine outside model s", "model share of the run"], body)


def percent_range(shares: tuple[float, float]) -> str:
    """Two shares as signed percentages, e.g. "-4 … +21 %"."""
    return f"{100 * shares[0]:+.0f} … {100 * shares[1]:+.0f} %"


def breakdown_table(rows: Sequence[OverheadRow]) -> str:
    """Where a whole run's time goes, against the model alone on the same frames."""
    body = []
    for r in rows:
        alone, alone_spread, spread = r.alone_s, r.alone_range_s, r.overhead_range
        alone_text = "–" if not alone else f"{alone:.1f}"
        if alone and alone_spread:
            alone_text += " ({:.1f}–{:.1f})".format(*alone_spread)
        overhead_text = "–" if r.overhead is None else f"{100 * r.overhead:+.0f} %"
        if r.overhead is not None and spread:
            overhead_text += f" ({percent_range(spread)})"
        body.append([
            f"{r.flow} ({r.encoder})", r.model, f"{r.cli_wall_s:.1f}", alone_text, overhead_text,
            f"{r.startup_s:.1f}", f"{r.probe_scan_s:.1f}", f"{r.load_s:.1f} ({r.load_exposed_s:.1f})",
            f"{r.render_s:.1f}", f"{r.model_s:.1f}", f"{r.render_s - r.model_s:.1f}",
            f"{r.model_cpu_s:.1f}", f"{r.process_cpu_s - r.model_cpu_s:.1f}", f"{r.children_cpu_s:.1f}"])
    return markdown_table(["run (encoder)", "model that ran", "wall s", "model alone s (median; range)",
                           "on top of the model (range)",
                           "start-up + queue + reply s", "probe + scan s", "model build s (not hidden)",
                           "render s", "model busy s", "render outside model s", "CPU s: model lanes",
                           "CPU s: rest of the process", "CPU s: ffmpeg"], body)


def endtoend_table(rows: Sequence[EndToEndRow]) -> str:
    body = [[r.clip, f"{r.target_fps:g} fps",
             r.model if r.model == r.asked_model or not r.asked_model else f"{r.model} (**{r.asked_model} asked**)",
             f"{r.result_fps:g} fps, {r.result_duration_s:.1f} s",
             f"{r.wall_s:.1f}", f"≤ {r.goal_s:g}", "met" if r.wall_s <= r.goal_s else f"{r.wall_s / r.goal_s:.2f}× the goal"]
            for r in rows]
    return markdown_table(["clip", "asked", "model that ran (from the reply)", "result", "message in → result out, s",
                           "goal s", "verdict"],
                          body)


def memory_table(memory: MemoryResults) -> str:
    body = [[r.label, r.model, r.clip, str(r.frames_in), f"{r.engine_peak_mib:.0f}", f"{r.encoder_peak_mib:.0f}"]
            for r in memory.rows]
    return markdown_table(["run", "model", "input", "frames in", "engine peak RSS MiB", "ffmpeg encoder peak MiB"],
                          body)


def growth_lines(memory: MemoryResults) -> list[str]:
    lines = []
    for key, ratio in memory.growth.items():
        verdict = "flat" if ratio <= FLAT_TOLERANCE else "GROWS with length"
        lines.append(f"- {key}: peak × {ratio:.3f} — **{verdict}** (flat means within × {FLAT_TOLERANCE:g})")
    return lines


def intake_table(results: Sequence["IntakeResult"]) -> str:
    from .bot_intake import table

    return table(list(results))


def throughput_table(rows: Sequence[ThroughputRow]) -> str:
    return markdown_table(["queue scenario (50 concurrent producers)", "enqueued jobs/s"],
                          [[r.scenario, f"{r.jobs_per_s:.0f}"] for r in rows])


# --- the document -----------------------------------------------------------------------------

def mean_psnr(results: BenchResults, kind: str) -> dict[str, float]:
    """Mean PSNR per method over the cases of one kind that the method ran on."""
    names = {c.name for c in results.cases if c.kind == kind}
    means = {}
    for method in results.method_order:
        values = [s.psnr_db for s in results.scores if s.method == method and s.case in names]
        if values:
            means[method] = float(np.mean(values))
    return means


def summary_lines(results: BenchResults) -> list[str]:
    """The headline numbers, each a ratio or a difference measured in this run."""
    lines = []
    for kind, title in (("synthetic", "synthetic cases"), ("real", "real clips")):
        means = mean_psnr(results, kind)
        if "rife" in means:
            others = ", ".join(f"{m} {means[m]:.2f} dB ({means['rife'] - means[m]:+.2f})" for m in means if m != "rife")
            lines.append(f"- Quality, {title}: RIFE {means['rife']:.2f} dB mean PSNR; {others}. "
                         f"Best PSNR per case: {wins_summary(results, kind)}.")
    if results.speed is not None:
        for row in results.speed.rows:
            if row.label == "rife" and (row.width, row.height) == (640, 360):
                parts = [f"{ms_text(row.ms_per_frame)} ms/frame at 640×360 (fastest of {row.timed_frames}; median "
                         f"{ms_text(row.median_ms) if row.median_ms else '–'})"]
                if row.speedup:
                    parts.append(f"{ratio_text(row.speedup)} the speed of the published forward")
                if row.sgemm_fraction:
                    parts.append(f"{100 * row.sgemm_fraction:.0f} % of this CPU's SGEMM rate "
                                 f"({sgemm_qualifier(results.machine)})")
                lines.append("- Speed: RIFE " + ", ".join(parts) + f" ({results.speed.threads} torch threads).")
        for lane in results.speed.lanes:
            if lane.label == "rife" and lane.laned_gflops:
                lines.append(f"- Throughput as the engine runs a clip ({lane.lanes} pairs at once, one thread each): "
                             f"RIFE {ms_text(lane.laned_ms)} ms/frame at {lane.width}×{lane.height}, "
                             f"{100 * lane.laned_gflops / results.speed.sgemm_gflops:.0f} % of this CPU's SGEMM rate "
                             f"({sgemm_qualifier(results.machine)}; {ratio_text(lane.speedup)} one pair at a time).")
    for row in results.breakdown:
        if row.overhead is not None:
            spread = row.overhead_range
            within = "" if not spread else f", {percent_range(spread)} over its timings"
            lines.append(f"- Overhead: the {row.flow.lower()} flow ({row.encoder}) took {row.cli_wall_s:.1f} s for a "
                         f"{row.clip} fps clip, {100 * row.overhead:+.0f} % on top of the model alone "
                         f"({row.alone_s:.1f} s for the same {row.interpolated} frames in its lanes{within}; "
                         f"goal ≤ +10 %).")
    if results.memory is not None and results.memory.growth:
        worst = max(results.memory.growth.values())
        lines.append(f"- Memory: peak RSS of a 60 s clip is × {worst:.3f} that of a 10 s clip "
                     f"({'flat' if worst <= FLAT_TOLERANCE else 'NOT flat'}).")
    for section in results.sections:
        lines += [line if line.startswith("- ") else f"- {line}" for line in section.summary]
    if results.intake:
        busiest = max(results.intake, key=lambda r: r.senders)
        lines.append(f"- Bot: with {busiest.senders} users sending at once, median {busiest.median_s * 1000:.0f} ms and "
                     f"p95 {busiest.p95_s * 1000:.0f} ms to \"Queued\".")
    return lines


def render_markdown(results: BenchResults, plots: Sequence[str]) -> str:
    m = results.machine
    out = ["# smoothbot benchmarks", ""]
    out.append(f"Generated by `{results.command}` ({results.mode} mode) on {m.date}, commit {m.commit}. "
               "Benchmarks print numbers and never fail on a time; compare speeds only within one report.")
    summary = summary_lines(results)
    if summary:
        out += ["", "## Summary", "", *summary]
    out += ["", "## Machine", ""]
    load_end = ", ".join(f"{x:.1f}" for x in m.load_average_end) if m.load_average_end else "–"
    out.append(markdown_table(["", ""], [
        ["CPU", m.cpu_model], ["cores", f"{m.logical_cpus} logical, {m.usable_cpus} usable by this process"],
        ["flags", " ".join(m.flags) or "–"], ["torch", f"{m.torch_version}, {m.torch_threads} threads"],
        ["RIFE convolutions (fast path)", m.rife_convolutions],
        ["OpenCV", f"{m.opencv_version}, {m.opencv_threads} threads"], ["numpy", m.numpy_version],
        ["ffmpeg", m.ffmpeg_version], ["Python", m.python_version],
        ["load average (1, 5, 15 min)", f"start {', '.join(f'{x:.1f}' for x in m.load_average_start)}; "
                                        f"end {load_end}"],
        ["time per section", ", ".join(f"{k} {v:.0f} s" for k, v in results.section_seconds.items())],
    ]))
    busiest = max(m.load_average_start[0], m.load_average_end[0] if m.load_average_end else 0.0)
    if busiest > m.usable_cpus:
        out += ["", f"The 1-minute load average reached {busiest:.1f} on {m.usable_cpus} cores: other work shared "
                "the CPU, so absolute times are inflated and noisy; ratios within the run are the numbers to read."]

    if results.scores:
        out += ["", "## Quality", ""]
        out.append("Each sequence is rendered (or decoded) at twice the rate; every other frame is dropped and each "
                   "method rebuilds it from the same kept frames. Methods: `blend` (cross-fade), `minterpolate` "
                   "(ffmpeg, `mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1`, fed the kept frames losslessly "
                   "through the engine's ffmpeg binary, yuv444p inside), `flow` (our OpenCV DIS model), `rife` "
                   "(our Practical-RIFE 4.2x IFNet), `rife-best` (the same with `--quality best`: plain, reversed "
                   "and mirrored views averaged). PSNR and SSIM are means over each case's interpolated frames.")
        out += ["", cases_table(results), ""]
        for kind, title in (("synthetic", "Synthetic cases (exact ground truth)"),
                            ("real", "Real clips (the dropped camera frame as reference)")):
            if any(c.kind == kind for c in results.cases):
                out += [f"### {title}", "", metric_table(results, kind, "psnr"), "",
                        metric_table(results, kind, "ssim"), "", spread_table(results, kind), "",
                        f"Best PSNR per case: {wins_summary(results, kind)}.", ""]
        for plot in plots:
            out += [f"![{plot}]({plot})", ""]

    if results.speed is not None:
        speed = results.speed
        out += ["## Speed", ""]
        out.append(f"One interpolated frame at 2× between neighbouring frames of a pan over photographs, frames in "
                   f"order as the engine feeds them, first pair untimed (warm-up); the models take turns pair by "
                   f"pair and each one's fastest timed pair is reported (on a shared CPU other work only adds time). "
                   f"torch threads: {speed.threads}. The same run's fp32 SGEMM (4096² `torch.mm`, same threads, best "
                   f"of runs before and after the models): "
                   f"**{speed.sgemm_gflops:.1f} GFLOP/s** — the practical FP32 peak that RIFE is measured against.")
        out += ["", speed_table(speed, results.minterpolate_speed), "",
                "RIFE (`fast`) runs its network at 1× (½ above 1440p); `--quality best` runs frames whose short side "
                "is ≤ 300 px at 2× (so rife-best at 256×256 costs about as much as 512×512). FLOPs are counted once per size, on the reference forward, with "
                "`torch.utils.flop_counter.FlopCounterMode` (convolutions; resampling and warping are not "
                "counted); every RIFE mode is credited with that same useful work, so effective GFLOP/s = "
                "counted FLOPs / time, and its fraction of the same run's SGEMM is how much of the CPU's "
                "practical FP32 peak the model turns into useful work. The median timed frame is shown beside "
                "the fastest: their gap is how much other work on the machine disturbed this run.", "",
                rife_cost_table(speed), ""]
        out += ["### RIFE speed modes", "",
                "Execution modes of the same network side by side on the same frames: speed-up over the reference "
                "(Practical-RIFE's published forward, eager fp32, each pair encoded anew), share of the SGEMM "
                "peak, and PSNR of each mode's output against the reference's output (identical frames show as "
                f"{PSNR_CEILING_DB:g} dB). New modes are entries of `bench.speed.RIFE_MODES`.", "",
                modes_table(speed), ""]
        if speed.lanes:
            out += ["### Lanes: two pairs at once", "",
                    "The engine hands a CPU model two consecutive pairs at once, from two threads with one torch "
                    "thread each (`FrameInterpolator.lanes_for`); small convolutions and memory-bound steps split "
                    "poorly across threads, so two pairs side by side use both cores better. Wall time per frame over "
                    "the same run of pairs, both ways, best of three each; effective GFLOP/s credits the frames with the FLOPs "
                    "counted on the reference forward at that size, as above:", "", lanes_table(speed), ""]

    for section in results.sections:
        out += section.markdown()

    if results.endtoend:
        out += ["## End to end", "",
                "One clip through the whole chat flow (`python -m bot --console`: adapter → queue → worker → "
                "engine → reply, a fresh process), timed from process start to the reply on disk, the result "
                "probed.", "", endtoend_table(results.endtoend), ""]

    if results.breakdown:
        out += ["## Where a run's time goes", "",
                "The chat flow (`python -m bot --console`: queue, worker, engine, reply) and the command line on "
                "the same clip, each a fresh process timed inside itself (`bench/pipeline.py`). The model runs in "
                "its lanes exactly as in production (two pairs at once on a CPU); *model busy* is the wall time "
                "in which at least one lane ran. *Model alone* is the same model, after the run, on the clip's "
                "first pairs in its lanes with nothing else running, times the run's interpolated frames "
                f"(timed {ALONE_REPEATS} times: the median, the fastest and slowest in brackets): the "
                "wall time over it is the pipeline's overhead (goal ≤ 10 %). The model build runs beside the "
                "probe and scan; only the part they did not hide (in brackets) delays the run. CPU seconds: the "
                "model's lane threads, the rest of the Python process (start-up, scan, decode, planning), and "
                "the ffmpeg children (the encoder).", "", breakdown_table(results.breakdown), ""]
    if results.overhead:
        out += ["## Pipeline overhead", "",
                "A small clip through the real command line (`python -m interpolation`, a fresh process), timed "
                "inside that same run: *start-up* is interpreter start and imports, *model build* loads the "
                "weights (beside the probe and scan; the part they did not hide is not subtracted twice), "
                "*model busy* is the wall time in which the model ran (in its lanes, as always), *engine outside "
                "model* is probe, scan, decode, planning, encoding and the GIF palette.", "",
                overhead_table(results.overhead), ""]

    if results.memory is not None:
        out += ["## Memory", "",
                "Peak resident memory (kernel high-water mark) of whole engine runs, each in a fresh process; "
                "the encoder is the ffmpeg child.", "", memory_table(results.memory), ""]
        out += growth_lines(results.memory) + [""]
        out += [f"- {note}" for note in results.memory.notes]

    if results.intake or results.throughput:
        out += ["## Bot intake", ""]
        if results.intake:
            out += ["Time from a user's video message to the \"Queued\" reply with N users sending at once: the "
                    "real bot (python-telegram-bot, SQLite queue, worker busy smoothing) against the fake Telegram "
                    "Bot API over HTTP on 127.0.0.1 (`bench/bot_intake.py`).", "", intake_table(results.intake), ""]
        if results.throughput:
            out += ["Enqueue throughput of the SQLite job queue (`bench/queue_throughput.py`):", "",
                    throughput_table(results.throughput), ""]

    notes = [*results.notes]
    if notes:
        out += ["## Not run or replaced", ""] + [f"- {note}" for note in notes] + [""]
    out += ["## Reproduce", "", "```", "make bench        # quick: minutes on a 2-core machine",
            "make bench-full   # more frames per case and size, RIFE memory on long clips",
            ".venv/bin/python -m bench --help", "```", ""]
    return "\n".join(out)


def console_tables(results: BenchResults) -> str:
    """The main tables, for the terminal."""
    parts = ["Summary:\n" + "\n".join(summary_lines(results))]
    for kind in ("synthetic", "real"):
        if any(c.kind == kind for c in results.cases):
            parts += [f"Quality, {kind} cases:", metric_table(results, kind, "psnr"), metric_table(results, kind, "ssim")]
    if results.speed is not None:
        parts += [f"Speed (torch threads {results.speed.threads}, SGEMM {results.speed.sgemm_gflops:.1f} GFLOP/s):",
                  speed_table(results.speed, results.minterpolate_speed), rife_cost_table(results.speed),
                  modes_table(results.speed)] + ([lanes_table(results.speed)] if results.speed.lanes else [])
    for section in results.sections:
        parts += [f"{section.title}:", *section.tables]
    if results.endtoend:
        parts += ["End to end:", endtoend_table(results.endtoend)]
    if results.breakdown:
        parts += ["Where a run's time goes:", breakdown_table(results.breakdown)]
    if results.overhead:
        parts += ["Pipeline overhead:", overhead_table(results.overhead)]
    if results.memory is not None:
        parts += ["Memory:", memory_table(results.memory), *growth_lines(results.memory)]
    if results.intake:
        parts += ["Bot intake:", intake_table(results.intake)]
    if results.throughput:
        parts += [throughput_table(results.throughput)]
    return "\n\n".join(parts)


# --- plots ------------------------------------------------------------------------------------

def psnr_plot(results: BenchResults, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lookup = score_lookup(results.scores)
    methods = [m for m in results.method_order if any(s.method == m for s in results.scores)]
    cases = results.cases
    width = 0.8 / max(1, len(methods))
    figure, axes = plt.subplots(figsize=(max(8.0, 1.1 * len(cases) + 2), 4.5), dpi=110)
    positions = np.arange(len(cases))
    for i, method in enumerate(methods):
        values = [lookup[(c.name, method)].psnr_db if (c.name, method) in lookup else 0.0 for c in cases]
        axes.bar(positions + (i - (len(methods) - 1) / 2) * width, values, width, label=method,
                 color=COLOURS.get(method))
    synthetic = sum(1 for c in cases if c.kind == "synthetic")
    if 0 < synthetic < len(cases):
        axes.axvline(synthetic - 0.5, color="black", linewidth=0.8, linestyle="--")
    axes.set_xticks(positions, [c.name for c in cases], rotation=25, ha="right")
    axes.set_ylabel("PSNR (dB), mean over interpolated frames")
    low = min((s.psnr_db for s in results.scores), default=0.0)
    axes.set_ylim(max(0.0, 5 * math.floor(low / 5) - 5), None)
    axes.set_title("Interpolated frame vs dropped original (left: synthetic with exact ground truth; right: real)")
    axes.legend(ncol=len(methods), fontsize=8, loc="upper right")
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def crop_box(truth: np.ndarray, outputs: Sequence[np.ndarray]) -> tuple[int, int, int]:
    """(y, x, side) of the square where the methods' errors add up the most (where they differ)."""
    import cv2

    height, width = truth.shape[:2]
    side = min(CROP_SIDE, height, width)
    error = np.zeros((height, width), np.float32)
    for output in outputs:
        error += np.abs(output.astype(np.float32) - truth.astype(np.float32)).mean(axis=2)
    summed = cv2.boxFilter(error, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)
    half = side // 2
    inner = summed[half:height - side + half + 1, half:width - side + half + 1]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(y), int(x), side


def crops_plot(results: BenchResults, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lookup = score_lookup(results.scores)
    methods = [m for m in results.method_order if any(s.method == m for s in results.scores)]
    cases = [c for c in results.cases if all((c.name, m) in lookup for m in methods)]
    columns = 1 + len(methods)
    figure, axes = plt.subplots(len(cases), columns, figsize=(1.9 * columns, 2.0 * len(cases)), dpi=100,
                                squeeze=False)
    for row, case in enumerate(cases):
        truth = sample_truth(case)
        outputs = [lookup[(case.name, m)].sample for m in methods]
        y, x, side = crop_box(truth, outputs)
        panels = [("ground truth", truth)] + list(zip(methods, outputs))
        for column, (title, image) in enumerate(panels):
            crop = image[y:y + side, x:x + side]
            ax = axes[row][column]
            ax.imshow(crop, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = title if column == 0 else f"{title}\n{psnr(crop, truth[y:y + side, x:x + side]):.1f} dB"
            ax.set_title(label, fontsize=7)
            if column == 0:
                ax.set_ylabel(case.name, fontsize=8)
    figure.suptitle("Middle interpolated frame of each case, crop where the methods' errors are largest "
                    "(crop PSNR)", fontsize=9)
    # Leave the top strip to the title so it does not run into the first row's labels.
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (2.0 * len(cases))))
    figure.savefig(path)
    plt.close(figure)


# --- writing ----------------------------------------------------------------------------------

def to_json(results: BenchResults) -> dict:
    data = {
        "mode": results.mode, "command": results.command, "machine": asdict(results.machine),
        "cases": [{"name": c.name, "kind": c.kind, "width": c.width, "height": c.height,
                   "interpolated": len(c.truth), "motion": c.motion} for c in results.cases],
        "scores": [{k: v for k, v in asdict(s).items() if k != "sample"} for s in results.scores],
        "speed": asdict(results.speed) if results.speed else None,
        "minterpolate_speed": [asdict(r) for r in results.minterpolate_speed],
        "overhead": [asdict(r) for r in results.overhead],
        "breakdown": [asdict(r) for r in results.breakdown],
        "endtoend": [asdict(r) for r in results.endtoend],
        "memory": asdict(results.memory) if results.memory else None,
        "intake": [asdict(r) for r in results.intake],
        "throughput": [asdict(r) for r in results.throughput],
        "notes": results.notes, "section_seconds": results.section_seconds,
        "sections": {section.key: section.data for section in results.sections},
    }
    return data


def write(results: BenchResults, directory: Path) -> list[Path]:
    """REPORT.md, the plots and results.json in ``directory``; returns what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    plots = []
    if results.scores:
        psnr_plot(results, directory / PSNR_PLOT)
        crops_plot(results, directory / CROPS_PLOT)
        plots = [PSNR_PLOT, CROPS_PLOT]
        written += [directory / p for p in plots]
    (directory / REPORT_NAME).write_text(render_markdown(results, plots))
    (directory / RESULTS_NAME).write_text(json.dumps(to_json(results), indent=1, default=str) + "\n")
    return [directory / REPORT_NAME, *written, directory / RESULTS_NAME]
