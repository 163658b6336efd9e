"""The timestamp planner: exact counts, exact hits, holds, loops, cuts and repeats."""

from fractions import Fraction

import pytest

from interpolation.analysis import SourceTimeline
from interpolation.timeline import output_frame_count, plan


def cfr_source(frames: int, fps: int | Fraction, *, duplicate=(), cuts=(), loop_is_cut=False) -> SourceTimeline:
    fps = Fraction(fps)
    return SourceTimeline(
        times=tuple(Fraction(k) / fps for k in range(frames)), fps=fps, duration=Fraction(frames) / fps,
        constant_rate=True, duplicate=tuple(k in duplicate for k in range(frames)),
        cut_before=tuple(k in cuts for k in range(frames)), loop_is_cut=loop_is_cut,
        width=8, height=8, first_frame_offset_s=0.0,
    )


@pytest.mark.parametrize(
    ("frames", "fps_in", "fps_out", "expected"),
    [(10, 25, 50, 20), (25, 25, 60, 60), (30, 30, 24, 24), (24, 24, 50, 50), (30, 30, 48, 48),
     (7, 25, 60, 17), (3, 2, 5, 8)],  # 7/25*60 = 16.8 → 17; 3/2*5 = 7.5 → 8 (half rounds up)
)
def test_output_frame_count_is_rounded_duration_times_rate(frames, fps_in, fps_out, expected):
    schedule = plan(cfr_source(frames, fps_in), Fraction(fps_out), loop=False, max_duplicate_run=4)
    assert schedule.frame_count == expected == output_frame_count(Fraction(frames, fps_in), Fraction(fps_out))
    assert [f.time for f in schedule.frames] == [Fraction(i, fps_out) for i in range(expected)]


def test_doubling_copies_every_input_and_interpolates_halfway():
    schedule = plan(cfr_source(4, 25), Fraction(50), loop=False, max_duplicate_run=4)
    described = [(f.left, f.right, f.t) for f in schedule.frames]
    assert described == [(0, None, 0), (0, 1, 0.5), (1, None, 0), (1, 2, 0.5), (2, None, 0), (2, 3, 0.5),
                         (3, None, 0), (3, None, 0)]  # the last output time is after the last frame: hold


def test_25_to_60_hits_inputs_every_5th_output_and_uses_exact_fractions():
    schedule = plan(cfr_source(25, 25), Fraction(60), loop=False, max_duplicate_run=4)
    for i, frame in enumerate(schedule.frames):
        if i % 12 == 0:  # 12 outputs per 5 inputs: i/60 == k/25 exactly when 12 | i
            assert frame.is_copy and frame.left == i * 25 // 60
        elif frame.right is not None:
            expected_t = (Fraction(i, 60) * 25) - frame.left
            assert frame.t == pytest.approx(float(expected_t))
            assert 0 < frame.t < 1 and frame.right == frame.left + 1


def test_30_to_24_drops_rate_by_interpolating_between_neighbours():
    schedule = plan(cfr_source(30, 30), Fraction(24), loop=False, max_duplicate_run=4)
    assert schedule.frame_count == 24
    assert schedule.frames[1].left == 1 and schedule.frames[1].t == pytest.approx(0.25)
    assert schedule.frames[4].is_copy and schedule.frames[4].left == 5


def test_loop_interpolates_last_frame_toward_first():
    schedule = plan(cfr_source(4, 25), Fraction(100), loop=True, max_duplicate_run=4)
    tail = [f for f in schedule.frames if f.time > Fraction(3, 25)]
    assert [(f.left, f.right) for f in tail] == [(3, 0)] * 3
    assert [f.t for f in tail] == pytest.approx([0.25, 0.5, 0.75])


def test_without_loop_the_tail_holds_the_last_frame():
    schedule = plan(cfr_source(4, 25), Fraction(100), loop=False, max_duplicate_run=4)
    tail = [f for f in schedule.frames if f.time > Fraction(3, 25)]
    assert all(f.is_copy and f.left == 3 for f in tail)


def test_no_morph_across_a_scene_cut_nearer_frame_wins():
    schedule = plan(cfr_source(4, 10, cuts={2}), Fraction(40), loop=False, max_duplicate_run=4)
    between = [f for f in schedule.frames if Fraction(1, 10) < f.time < Fraction(2, 10)]
    assert [(f.left, f.right) for f in between] == [(1, None), (2, None), (2, None)]  # t = .25, .5, .75
    assert schedule.scene_cuts == 1


def test_loop_across_a_cut_is_a_hard_cut():
    schedule = plan(cfr_source(3, 10, loop_is_cut=True), Fraction(40), loop=True, max_duplicate_run=4)
    tail = [f for f in schedule.frames if f.time > Fraction(2, 10)]
    assert [(f.left, f.right) for f in tail] == [(2, None), (0, None), (0, None)]


def test_animation_on_twos_is_interpolated_across_repeats():
    # Drawings A A B B C C at 24 fps: keys are A(0), B(2), C(4); frame 1 must not be a copy of A.
    schedule = plan(cfr_source(6, 24, duplicate={1, 3, 5}), Fraction(24), loop=False, max_duplicate_run=4)
    assert schedule.key_frames == (0, 2, 4)
    assert (schedule.frames[1].left, schedule.frames[1].right, schedule.frames[1].t) == (0, 2, 0.5)
    assert schedule.frames[2].is_copy and schedule.frames[2].left == 2
    assert schedule.duplicates == 3


def test_a_long_freeze_is_kept_not_smeared():
    # A then 6 repeats, then B: a freeze longer than max_duplicate_run keeps its last frame as a key.
    schedule = plan(cfr_source(8, 10, duplicate=set(range(1, 7))), Fraction(20), loop=False, max_duplicate_run=4)
    assert schedule.key_frames == (0, 6, 7)
    moving = [f for f in schedule.frames if f.right is not None and f.right == 7]
    assert [f.left for f in moving] == [6]


def test_variable_frame_rate_uses_real_timestamps():
    times = (Fraction(0), Fraction(1, 10), Fraction(3, 10), Fraction(4, 10))
    source = SourceTimeline(times=times, fps=Fraction(10), duration=Fraction(5, 10), constant_rate=False,
                            duplicate=(False,) * 4, cut_before=(False,) * 4, loop_is_cut=False,
                            width=8, height=8, first_frame_offset_s=0.0)
    schedule = plan(source, Fraction(10), loop=False, max_duplicate_run=4)
    assert [(f.left, f.right, f.t) for f in schedule.frames] == [
        (0, None, 0), (1, None, 0), (1, 2, 0.5), (2, None, 0), (3, None, 0)]


@pytest.mark.parametrize(("frames", "fps_in", "slowmo", "fps_out", "expected"),
                         [(25, 25, 4, 50, 200), (15, 30, 4, 60, 120), (24, 24, Fraction(5, 2), 60, 150),
                          (10, 25, 8, 25, 80)])
def test_slow_motion_lasts_k_times_longer_at_the_output_rate(frames, fps_in, slowmo, fps_out, expected):
    schedule = plan(cfr_source(frames, fps_in), Fraction(fps_out), loop=False, max_duplicate_run=4,
                    slowmo=Fraction(slowmo))
    assert schedule.frame_count == expected
    assert schedule.duration == Fraction(frames, fps_in) * Fraction(slowmo)
    assert [f.time for f in schedule.frames] == [Fraction(i) / (fps_out * Fraction(slowmo)) for i in range(expected)]


def test_slow_motion_interpolates_every_new_frame_instead_of_repeating():
    # 25 fps ×4 at 50 fps: 8 outputs per input interval, all distinct moments, exact hits every 8th.
    schedule = plan(cfr_source(5, 25), Fraction(50), loop=False, max_duplicate_run=4, slowmo=Fraction(4))
    before_last = [f for f in schedule.frames if f.time < Fraction(4, 25)]
    moments = [(f.left, f.right, f.t) for f in before_last]
    assert len(set(moments)) == len(moments) == 32
    assert all(f.is_copy == (i % 8 == 0) for i, f in enumerate(before_last))
    assert [f.t for f in before_last[1:8]] == pytest.approx([k / 8 for k in range(1, 8)])
    # The last input frame is shown for its own slowed duration (4/25 s), as in the original.
    assert all(f.is_copy and f.left == 4 for f in schedule.frames[32:])


def test_held_is_what_the_original_shows_at_each_output_moment():
    schedule = plan(cfr_source(3, 10), Fraction(40), loop=False, max_duplicate_run=4, slowmo=Fraction(2))
    assert [f.held for f in schedule.frames] == [k // 8 for k in range(24)]


def test_fade_mode_cross_fades_across_a_cut_instead_of_switching():
    cut = plan(cfr_source(4, 10, cuts={2}), Fraction(40), loop=False, max_duplicate_run=4, cut_mode="cut")
    fade = plan(cfr_source(4, 10, cuts={2}), Fraction(40), loop=False, max_duplicate_run=4, cut_mode="fade")
    across = [i for i, f in enumerate(fade.frames) if Fraction(1, 10) < f.time < Fraction(2, 10)]
    assert [(fade.frames[i].left, fade.frames[i].right, fade.frames[i].t, fade.frames[i].fade) for i in across] == [
        (1, 2, 0.25, True), (1, 2, 0.5, True), (1, 2, 0.75, True)]
    assert all(cut.frames[i].is_copy for i in across)
    # Away from the cut both modes plan the same model interpolations.
    elsewhere = [i for i in range(fade.frame_count) if i not in across]
    assert [fade.frames[i] for i in elsewhere] == [cut.frames[i] for i in elsewhere]
    assert not any(f.fade for f in cut.frames)
