"""The overhead figures: lanes stay on while timed, overlap is counted once, the model that ran is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import encoding, endtoend, pipeline, report
from bench.machine import describe
from bench.pipeline import OverheadRow, TimedModel, union_seconds
from interpolation.models.blend import BlendInterpolator
from tests.media import make_testsrc

REPO = Path(__file__).resolve().parents[2]


def test_overlapping_intervals_count_once():
    assert union_seconds([]) == 0
    assert union_seconds([(0.0, 1.0), (0.5, 1.5), (3.0, 4.0)]) == pytest.approx(2.5)
    assert union_seconds([(2.0, 3.0), (0.0, 4.0)]) == pytest.approx(4.0)


class TwoLanes(BlendInterpolator):
    def __init__(self) -> None:
        self.started: list[int] = []

    def lanes_for(self, height: int, width: int) -> int:
        return 2

    def start_lane(self, lanes: int) -> None:
        self.started.append(lanes)


def test_the_timing_wrapper_keeps_the_models_lanes():
    inner = TwoLanes()
    timed = TimedModel(inner)
    assert timed.lanes_for(48, 64) == 2 and timed.lanes_used == 2
    timed.start_lane(2)
    assert inner.started == [2]
    frame = make_frame()
    timed.interpolate(frame, frame, [0.5])
    assert timed.calls == 1 and timed.frames == 1 and timed.busy_s() > 0


def make_frame():
    import numpy as np

    return np.zeros((48, 64, 3), np.uint8)


def test_the_engine_runs_the_timed_model_in_lanes(tmp_path: Path):
    from interpolation.api import run
    from interpolation.options import Options

    clip = make_testsrc(tmp_path / "clip.mp4", fps="6", seconds=1)
    inner = TwoLanes()
    timed = TimedModel(inner)
    run(clip, tmp_path / "out.mp4", Options(fps=12), model=timed)
    assert inner.started == [2, 2] and timed.frames > 0


def row(**changes) -> OverheadRow:
    values = dict(model="rife", output="mp4", clip="10 s 854×480 @ 30 fps → 60", frames_out=600, interpolated=300,
                  cli_wall_s=66.0, engine_wall_s=62.0, load_s=3.0, model_s=57.0, load_exposed_s=1.0, lanes=2,
                  flow="chat", encoder="veryfast CRF 16", probe_scan_s=2.5, render_s=58.5, model_cpu_s=110.0,
                  process_cpu_s=118.0, children_cpu_s=9.0, alone_ms_per_frame=200.0)
    values.update(changes)
    return OverheadRow(**values)


def test_the_split_subtracts_only_the_unhidden_model_build():
    r = row()
    assert r.engine_other_s == pytest.approx(62.0 - 1.0 - 57.0)  # not 62 - 3 - 57
    assert r.alone_s == pytest.approx(60.0) and r.overhead == pytest.approx(0.10)
    assert row(alone_ms_per_frame=None).overhead is None


def test_the_overhead_comes_with_its_range_over_the_model_alone_timings():
    r = row(alone_range_ms=(180.0, 220.0))  # median 200 ms: 60 s; fastest 54 s, slowest 66 s
    low, high = r.overhead_range
    assert low == pytest.approx(66.0 / 66.0 - 1) and high == pytest.approx(66.0 / 54.0 - 1)
    assert "60.0 (54.0–66.0) | +10 % (+0 … +22 %)" in report.breakdown_table([r])
    results = report.BenchResults(mode="quick", command="test", machine=describe(REPO), breakdown=[r])
    assert "+0 … +22 % over its timings" in "\n".join(report.summary_lines(results))
    assert row().overhead_range is None


def test_breakdown_table_and_summary():
    results = report.BenchResults(mode="quick", command="test", machine=describe(REPO), breakdown=[row()])
    table = report.breakdown_table(results.breakdown)
    assert "| chat (veryfast CRF 16) | rife | 66.0 | 60.0 | +10 % | 4.0 | 2.5 | 3.0 (1.0) | 58.5 | 57.0 | 1.5 |" in table
    assert "| 110.0 | 8.0 | 9.0 |" in table
    summary = "\n".join(report.summary_lines(results))
    assert "+10 % on top of the model alone" in summary and "goal ≤ +10 %" in summary
    assert "## Where a run's time goes" in report.render_markdown(results, [])


def test_a_sections_summary_lines_are_bullets_of_the_summary():
    results = report.BenchResults(mode="quick", command="test", machine=describe(REPO),
                                  sections=[report.Section("cuts", "Cuts", summary=["Cut detection: recall 0.82",
                                                                                   "- already a bullet"])])
    summary = report.summary_lines(results)
    assert "- Cut detection: recall 0.82" in summary and "- already a bullet" in summary


def test_the_model_that_ran_is_read_from_the_reply():
    transcript = "you: [video: clip.mp4] /fps 60\nbot: Queued\n[video: out/job-1.mp4]\n30 → 60 fps, 10.0 s, optical flow\n"
    assert endtoend.model_in_caption(transcript) == "flow"
    assert endtoend.model_in_caption("30 → 60 fps, 10.0 s, RIFE") == "rife"
    assert endtoend.model_in_caption("nothing here") is None
    fallback = endtoend.EndToEndRow("1 s", 60, "flow", 5.0, 60, 1.0, asked_model="rife")
    assert "flow (**rife asked**)" in report.endtoend_table([fallback])


def test_the_encoder_sweep_scores_each_setting_on_a_tiny_clip(tmp_path: Path):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="10", seconds=1)
    rows = encoding.measure(clip, 8, [("medium", 18, None), ("veryfast", 16, None), ("veryfast", 16, 1)],
                            log=lambda _: None)
    assert [(r.preset, r.crf, r.threads) for r in rows] == [("medium", 18, None), ("veryfast", 16, None),
                                                            ("veryfast", 16, 1)]
    assert all(r.size_bytes > 0 and 25 < r.psnr_db < 100 and 0.8 < r.ssim <= 1 and r.cpu_s > 0 for r in rows)
    # A lower CRF keeps more: closer to the lossless master.
    assert rows[1].psnr_db > encoding.measure(clip, 8, [("veryfast", 30, None)], log=lambda _: None)[0].psnr_db
    table = encoding.table(rows)
    assert "| medium (CLI default) | 18 | x264's |" in table and "| 1.00× |" in table
    assert "| veryfast (chat) | 16 | x264's |" in table and "| veryfast | 16 | 1 |" in table


def test_quality_spread_shows_the_per_frame_range():
    from bench import cases, quality
    from bench.methods import ModelMethod
    from interpolation.models import create_model

    case = cases.small_case(5)
    scores = quality.evaluate([case], [ModelMethod("blend", create_model("blend"))], log=lambda _: None)
    results = report.BenchResults(mode="quick", command="t", machine=describe(REPO), cases=[case], scores=scores,
                                  method_order=["blend"])
    low, high = min(scores[0].psnr_per_frame), max(scores[0].psnr_per_frame)
    assert f"| {case.name} | {low:.2f}–{high:.2f} (2) |" in report.spread_table(results, case.kind)


def test_the_model_alone_is_timed_once_per_repeat(tmp_path: Path):
    clip = make_testsrc(tmp_path / "clip.mp4", fps="10", seconds=1)
    timings = pipeline.model_alone_ms(BlendInterpolator(), clip, pairs=6, repeats=3)
    assert len(timings) == 3 and all(ms > 0 for ms in timings)
