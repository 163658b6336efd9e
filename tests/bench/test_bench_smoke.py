"""The benchmark code keeps working: metrics, one tiny case end to end, the report, the mode table.

Numbers are not checked against times (benchmarks never fail on a time); only that the pieces
measure what they claim on inputs where the answer is known.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from bench import cases, endtoend, memory, pipeline, quality, report, speed
from bench.machine import describe
from bench.methods import MinterpolateMethod, ModelMethod
from interpolation.models import create_model

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_psnr_of_known_errors():
    truth = np.full((8, 8, 3), 100, np.uint8)
    assert quality.psnr(truth, truth) == quality.PSNR_CEILING_DB
    off_by_one = truth + 1  # MSE 1 → 20·log10(255)
    assert quality.psnr(off_by_one, truth) == pytest.approx(20 * math.log10(255), abs=1e-9)
    off_by_ten = truth + 10  # MSE 100 → 20 dB less
    assert quality.psnr(off_by_ten, truth) == pytest.approx(20 * math.log10(255) - 20, abs=1e-9)
    with pytest.raises(ValueError):
        quality.psnr(truth[:4], truth)


def test_ssim_is_one_for_identical_frames_and_drops_with_noise():
    truth = cases.photo("astronaut")[:64, :64]
    assert quality.ssim(truth, truth) == pytest.approx(1.0)
    noise = np.random.default_rng(0).integers(-40, 41, truth.shape)
    noisy = np.clip(truth.astype(int) + noise, 0, 255).astype(np.uint8)
    assert 0.0 < quality.ssim(noisy, truth) < 0.9


def test_a_case_keeps_even_frames_and_drops_odd_ones():
    case = cases.small_case(5)
    assert (case.width, case.height) == (176, 144)
    assert len(case.kept) == 3 and len(case.truth) == 2
    assert case.kept[1] is case.frames[2] and case.truth[0] is case.frames[1]
    # The camera moves: the dropped frame is neither neighbour, and rendering is deterministic.
    assert quality.psnr(case.truth[0], case.kept[0]) < 40
    assert np.array_equal(cases.small_case(5).frames[3], case.frames[3])


def test_minterpolate_returns_one_midpoint_per_pair_aligned_with_the_kept_frames():
    case = cases.small_case(5)
    midpoints = MinterpolateMethod().midpoints(case.kept, case.kept_fps)
    assert len(midpoints) == 2
    for middle, truth, before in zip(midpoints, case.truth, case.kept):
        assert middle.shape == truth.shape and middle.dtype == np.uint8
        # Closer to the dropped frame than to its neighbour: the right frame of the doubled stream.
        assert quality.psnr(middle, truth) > quality.psnr(middle, before)


def test_tiny_case_end_to_end_writes_tables_and_plots(tmp_path: Path):
    case = cases.small_case(5)
    methods = [ModelMethod("blend", create_model("blend")), MinterpolateMethod()]
    scores = quality.evaluate([case], methods, log=lambda _: None)
    by_method = {s.method: s for s in scores}
    assert set(by_method) == {"blend", "minterpolate"}
    assert all(s.frames == 2 and len(s.psnr_per_frame) == 2 and 0 < s.ssim <= 1 for s in scores)
    # Motion compensation beats a cross-fade on a camera pan.
    assert by_method["minterpolate"].psnr_db > by_method["blend"].psnr_db

    results = report.BenchResults(mode="quick", command="test", machine=describe(REPO), cases=[case],
                                  scores=scores, method_order=["blend", "minterpolate"])
    written = report.write(results, tmp_path)
    text = (tmp_path / report.REPORT_NAME).read_text()
    assert f"| {case.name} | {by_method['blend'].psnr_db:.2f} | **{by_method['minterpolate'].psnr_db:.2f}** |" in text
    assert "## Machine" in text and results.machine.torch_version in text
    for plot in (report.PSNR_PLOT, report.CROPS_PLOT):
        assert (tmp_path / plot).read_bytes().startswith(PNG_SIGNATURE)
    saved = json.loads((tmp_path / report.RESULTS_NAME).read_text())
    assert saved["scores"][0]["case"] == case.name and "sample" not in saved["scores"][0]
    assert len(written) == 4


def test_crop_box_lands_where_the_error_is():
    truth = np.zeros((200, 300, 3), np.uint8)
    wrong = truth.copy()
    wrong[150:190, 230:290] = 255
    y, x, side = report.crop_box(truth, [wrong])
    assert side == report.CROP_SIDE
    assert y <= 150 and y + side >= 190 and x <= 230 and x + side >= 290
    assert 0 <= y <= 200 - side and 0 <= x <= 300 - side


def test_a_mode_is_compared_with_its_reference(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(speed, "MIN_TIMING_S", 0.05)
    entries = [speed.ModelEntry("blend", lambda: create_model("blend")),
               speed.ModelEntry("blend again", lambda: create_model("blend"), "same model", reference="blend")]
    results = speed.benchmark(entries, [(64, 48)], {(64, 48): 2}, sgemm=100.0, log=lambda _: None)
    reference, mode = results.rows
    assert (mode.label, mode.reference) == ("blend again", "blend")
    assert mode.psnr_vs_reference_db == quality.PSNR_CEILING_DB  # identical outputs
    assert mode.speedup == pytest.approx(reference.ms_per_frame / mode.ms_per_frame)
    assert reference.timed_frames >= 2 and reference.gflops is None
    assert mode.timed_frames == reference.timed_frames  # equal sample counts, whichever went round again


def test_missing_models_become_notes_not_failures():
    def broken():
        raise ImportError("no module named interpolation.models.nothing")

    results = speed.benchmark([speed.ModelEntry("nothing", broken)], [(64, 48)], {(64, 48): 1}, sgemm=1.0,
                              log=lambda _: None)
    assert results.rows == [] and "nothing: not available" in results.notes[0]


def test_high_water_mark_of_this_process():
    assert memory.high_water_kib() > 10_000  # a Python with numpy and torch imported


@pytest.mark.slow
def test_rife_flops_are_counted_once_per_steady_state_frame():
    frames = cases.pan_sequence(64, 48, 3)
    model = speed.rife_reference_factory()
    flops = speed.steady_state_flops(model, frames)
    assert flops > 1e8  # a 128×128 network pass is hundreds of MFLOPs


@pytest.mark.slow
def test_pipeline_and_memory_measure_real_runs():
    rows = pipeline.measure("blend", ("mp4",), 64, 48, 6, 1.0, log=lambda _: None)
    assert rows[0].frames_out == 12 and rows[0].interpolated > 0
    row = rows[0]
    assert 0 < row.model_s and 0 <= row.load_exposed_s <= row.load_s
    assert row.model_s + row.load_exposed_s <= row.engine_wall_s <= row.cli_wall_s
    assert row.startup_s > 0 and row.engine_other_s > 0
    measured = memory.measure([memory.MemoryCase("short", "blend", 64, 48, 10, 0.5),
                               memory.MemoryCase("long", "blend", 64, 48, 10, 1.5)], log=lambda _: None)
    assert [r.label for r in measured.rows] == ["short", "long"] and measured.notes == []
    assert all(r.engine_peak_mib > 10 and r.encoder_peak_mib > 1 for r in measured.rows)
    assert list(measured.growth) == ["blend at 64×48, 0.5 s → 1.5 s"]


def test_lane_throughput_drives_the_lanes_like_the_engine():
    from interpolation.models.blend import BlendInterpolator

    class TwoLaneBlend(BlendInterpolator):
        def __init__(self) -> None:
            self.started: list[int] = []
            self.ended = 0

        def lanes_for(self, height: int, width: int) -> int:
            return 2

        def start_lane(self, lanes: int) -> None:
            self.started.append(lanes)

        def end_lanes(self) -> None:
            self.ended += 1

        def interpolate(self, frame0, frame1, times):
            time.sleep(0.01)  # long enough for the second lane to start
            return super().interpolate(frame0, frame1, times)

    model = TwoLaneBlend()
    row = speed.lane_throughput(model, "two-lane blend", (64, 48), 4, log=lambda _: None)
    assert row is not None and (row.lanes, row.pairs, row.width, row.height) == (2, 4, 64, 48)
    assert row.one_at_a_time_ms > 0 and row.laned_ms > 0 and row.speedup == row.one_at_a_time_ms / row.laned_ms
    rounds = speed.LANE_ROUNDS
    assert model.started == [2] * 2 * rounds and model.ended == rounds  # each laned run with two lane threads
    assert speed.lane_throughput(BlendInterpolator(), "blend", (64, 48), 4, log=lambda _: None) is None


@pytest.mark.slow
def test_end_to_end_runs_the_chat_flow_and_reports_against_the_goal(tmp_path: Path):
    row = endtoend.measure(64, 48, 6, 1.0, 12, model="blend", log=lambda _: None)
    assert row.result_fps == 12 and abs(row.result_duration_s - 1.0) < 0.2
    assert 0 < row.wall_s < endtoend.GOAL_S
    results = report.BenchResults(mode="quick", command="test", machine=describe(REPO), endtoend=[row])
    report.write(results, tmp_path)
    text = (tmp_path / report.REPORT_NAME).read_text()
    assert "## End to end" in text and f"| 1 s 64×48 @ 6 fps | 12 fps | blend | 12 fps, 1.0 s | {row.wall_s:.1f} |" in text
    assert "| met |" in text


def test_real_clip_stretches_stay_inside_their_shot():
    bikes = next(spec for spec in cases.REAL_CLIPS if spec.filename == "bikes.mp4")
    assert bikes.first_frame(7) == bikes.start
    assert bikes.first_frame(17) + 17 - 1 == bikes.last  # a longer stretch starts earlier, not across the cut
    with pytest.raises(ValueError):
        bikes.first_frame(bikes.last + 2)


def test_lanes_are_credited_with_the_reference_flops_and_reported_against_sgemm():
    results = speed.SpeedResults(threads=2, sgemm_gflops=100.0,
                                 rows=[speed.SpeedRow("rife-reference", 854, 480, 500.0, 4, gflop_per_frame=20.0),
                                       speed.SpeedRow("rife-reference", 640, 360, 300.0, 4, gflop_per_frame=10.0)],
                                 lanes=[speed.LaneRow("rife", 854, 480, 2, 12, 300.0, 250.0)])
    results.lane_gflops()
    lane = results.lanes[0]
    assert lane.gflop_per_frame == 20.0 and lane.laned_gflops == pytest.approx(80.0)  # 20 GFLOP in 0.25 s
    assert "| rife | 854×480 | 12 | 300 | 2 | 250 | 1.20× | 80.0 | 80 % |" in report.lanes_table(results)


def test_the_cost_table_shows_the_median_frame_beside_the_fastest():
    results = speed.SpeedResults(threads=2, sgemm_gflops=100.0, rows=[speed.SpeedRow(
        "rife", 854, 480, 200.0, 8, median_ms=250.0, gflop_per_frame=20.0, gflops=100.0, sgemm_fraction=1.0)])
    assert "| rife | 854×480 | 20.0 | 200 | 100.0 | 100 % | 250 | 80 % | 8 |" in report.rife_cost_table(results)
