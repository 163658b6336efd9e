"""The cut-detection bench scores detectors exactly: a cut counts only at its labelled frame."""

from bench import cut_cases
from bench.cuts import CutRow, evaluate, totals


def test_scores_count_exact_frames_and_false_cuts(monkeypatch):
    case = cut_cases.CutCase("toy", "real", lambda: ([], 25), (3, 7), "")
    monkeypatch.setitem(__import__("bench.cuts").cuts.DETECTORS, "fake", lambda thumbs: (3, 8))
    row = evaluate(case, [None] * 10, "fake")
    assert (row.true, row.false_cuts, row.missed) == (1, [8], [7])
    clean = CutRow("fake", "none", "must not flag", 10, 0, 0, 0, [], [], 0.01)
    precision, recall, false, ms = totals([row, clean])
    assert (precision, recall, false) == (0.5, 0.5, 1) and ms > 0


def test_held_out_labels_are_sorted_and_inside_the_clip():
    assert list(cut_cases.HELD_OUT_CUTS) == sorted(set(cut_cases.HELD_OUT_CUTS))
    assert len(cut_cases.HELD_OUT_CUTS) == 130 and 0 < cut_cases.HELD_OUT_CUTS[0] and cut_cases.HELD_OUT_CUTS[-1] < 5301
    assert cut_cases.HELD_OUT not in cut_cases.CASES  # never part of the tuning set
