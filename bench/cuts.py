"""Cut-detection bench: precision, recall and cost per frame of each detector on clips with known cuts.

Detectors (all on the scan's 256-px-wide thumbnails):

* **colour histogram**: the engine's detector before TransNetV2 — Bhattacharyya distance of 16×8×8
  HSV histograms of neighbouring frames above 0.45.
* **adaptive alone**: PySceneDetect's ``AdaptiveDetector`` at its defaults (the engine's fallback
  without the TransNetV2 weights).
* **adaptive + TransNetV2**: the engine's detector (:mod:`interpolation.shots`).

A found cut counts when it is at the labelled frame exactly. The held-out clip (TransNetV2's test
video) is scored on its own row and in its own summary line; no setting was chosen by looking at it.
The scan row compares the whole scan (decode at thumbnail size + repeats + cuts) with a decode alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from bench import report
from bench.cut_cases import CASES, HELD_OUT, CutCase
from bench.footage import FootageError
from interpolation.analysis import THUMBNAIL_WIDTH
from interpolation.shots import find_cuts

HISTOGRAM_BINS = (16, 8, 8)
HISTOGRAM_THRESHOLD = 0.45


def histogram_cuts(thumbnails: list[np.ndarray], threshold: float = HISTOGRAM_THRESHOLD) -> tuple[int, ...]:
    """The old detector: colour histograms of neighbouring frames further apart than ``threshold``."""
    def hist(image: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        h = cv2.calcHist([hsv], [0, 1, 2], None, list(HISTOGRAM_BINS), [0, 180, 0, 256, 0, 256])
        return cv2.normalize(h, h).flatten()

    hists = [hist(t) for t in thumbnails]
    return tuple(k for k in range(1, len(hists))
                 if cv2.compareHist(hists[k - 1], hists[k], cv2.HISTCMP_BHATTACHARYYA) > threshold)


DETECTORS: dict[str, Callable[[list[np.ndarray]], tuple[int, ...]]] = {
    "colour histogram": histogram_cuts,
    "adaptive alone": lambda thumbs: find_cuts(thumbs, 0.5, use_network=False),
    "adaptive + TransNetV2": lambda thumbs: find_cuts(thumbs, 0.5, use_network=True),
}


@dataclass
class CutRow:
    detector: str
    case: str
    group: str
    frames: int
    labelled: int
    found: int
    true: int
    false_cuts: list[int]
    missed: list[int]
    seconds: float


def thumbnails(frames: list[np.ndarray]) -> list[np.ndarray]:
    height, width = frames[0].shape[:2]
    size = (THUMBNAIL_WIDTH, max(1, round(height * THUMBNAIL_WIDTH / width)))
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def evaluate(case: CutCase, thumbs: list[np.ndarray], detector: str) -> CutRow:
    start = time.perf_counter()
    found = DETECTORS[detector](thumbs)
    seconds = time.perf_counter() - start
    truth = set(case.cuts)
    return CutRow(detector, case.name, case.group, len(thumbs), len(truth), len(found), len(truth & set(found)),
                  sorted(set(found) - truth), sorted(truth - set(found)), seconds)


def totals(rows: list[CutRow]) -> tuple[float, float, int, float]:
    """Precision, recall, false cuts, milliseconds per frame."""
    found = sum(r.found for r in rows)
    true = sum(r.true for r in rows)
    labelled = sum(r.labelled for r in rows)
    frames = sum(r.frames for r in rows)
    precision = true / found if found else 1.0
    recall = true / labelled if labelled else 1.0
    return precision, recall, found - true, 1000 * sum(r.seconds for r in rows) / frames


def run_cases(cases: list[CutCase], log: Callable[[str], None], notes: list[str]) -> list[CutRow]:
    """Every detector on every case; a case whose footage cannot be had is left out, said in ``notes``."""
    rows = []
    for case in cases:
        try:
            frames, _ = case.build()
        except (OSError, ValueError, FootageError) as error:
            notes.append(f"cut detection: {case.name} not available ({error})")
            continue
        thumbs = thumbnails(frames)
        for detector in DETECTORS:
            row = evaluate(case, thumbs, detector)
            rows.append(row)
            log(f"  {case.name} / {detector}: {row.true}/{row.labelled} found, false {row.false_cuts}, "
                f"missed {row.missed}, {row.seconds:.2f} s")
    return rows


def scan_cost(log: Callable[[str], None]) -> tuple[float, float, float]:
    """Seconds for a decode alone, the old scan's work (decode + repeats + histograms) and the new scan,
    on a 10 s 854×480 30 fps clip (bikes frames scaled and looped)."""
    import tempfile

    from interpolation.analysis import max_block_difference, scan
    from interpolation.options import Limits, SceneSettings
    from interpolation.probe import probe
    from interpolation.video_io import decode

    frames = [cv2.resize(f, (854, 480)) for f in thumbnails_source()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        write_clip(path, (frames * 2)[:300], 30)
        info = probe(path, Limits())
        start = time.perf_counter()
        for _ in decode(path, width=THUMBNAIL_WIDTH):
            pass
        decode_s = time.perf_counter() - start
        start = time.perf_counter()
        thumbs, previous = [], None
        for frame in decode(path, width=THUMBNAIL_WIDTH):
            gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
            if previous is not None:
                max_block_difference(previous, gray)
            previous = gray
            thumbs.append(frame.image)
        histogram_cuts(thumbs)
        old_s = time.perf_counter() - start
        start = time.perf_counter()
        scan(info, Limits(), SceneSettings())
        new_s = time.perf_counter() - start
    log(f"  scan of 10 s 480p: decode {decode_s:.2f} s, old scan {old_s:.2f} s, new scan {new_s:.2f} s")
    return decode_s, old_s, new_s


def thumbnails_source() -> list[np.ndarray]:
    from bench.cut_cases import bikes
    return bikes(0, 150)


def write_clip(path: Path, frames: list[np.ndarray], fps: int) -> None:
    import subprocess

    from interpolation.ffmpeg_binary import ffmpeg_exe
    height, width = frames[0].shape[:2]
    process = subprocess.Popen([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                                "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "pipe:0",
                                "-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p", str(path)],
                               stdin=subprocess.PIPE)
    assert process.stdin is not None
    for frame in frames:
        process.stdin.write(frame.tobytes())
    process.stdin.close()
    process.wait()


def summary_table(rows: list[CutRow], title: str) -> str:
    lines = []
    for detector in DETECTORS:
        precision, recall, false, ms = totals([r for r in rows if r.detector == detector])
        lines.append([detector, f"{precision:.2f}", f"{recall:.2f}", str(false), f"{ms:.2f}"])
    return report.markdown_table([title, "precision", "recall", "false cuts", "ms/frame"], lines)


def section(full: bool, log: Callable[[str], None]) -> report.Section:
    log("cut detection")
    notes: list[str] = []
    rows = run_cases(list(CASES), log, notes)
    held = run_cases([HELD_OUT], log, notes)
    decode_s, old_s, new_s = scan_cost(log)
    per_case = report.markdown_table(
        ["case", "group", "cuts", *DETECTORS],
        [[case.name, case.group, str(len(case.cuts)),
          *[cell(next(r for r in rows + held if r.case == case.name and r.detector == d)) for d in DETECTORS]]
         for case in [*CASES, HELD_OUT] if any(r.case == case.name for r in rows + held)])
    tables = [summary_table(rows, "tuning set"), per_case]
    summary = []
    p, r, false, _ = totals([row for row in rows if row.detector == "adaptive + TransNetV2"])
    summary.append(f"Cut detection (adaptive + TransNetV2), tuning set: precision {p:.2f}, recall {r:.2f}, "
                   f"{false} false cuts")
    if held:
        tables.insert(1, summary_table(held, "held out (test.mp4)"))
        p, r, false, _ = totals([row for row in held if row.detector == "adaptive + TransNetV2"])
        summary.append(f"Cut detection, held-out test.mp4: precision {p:.2f}, recall {r:.2f}, {false} false cuts")
    tables.append(report.markdown_table(
        ["10 s 854×480 30 fps", "seconds", "× decode"],
        [["decode at thumbnail size", f"{decode_s:.2f}", "1.00"],
         ["old scan (repeats + colour histograms)", f"{old_s:.2f}", f"{old_s / decode_s:.2f}"],
         ["new scan (repeats + adaptive + TransNetV2)", f"{new_s:.2f}", f"{new_s / decode_s:.2f}"]]))
    return report.Section(
        key="cuts", title="Scene-cut detection",
        intro=__doc__.split("\n\n", 1)[1].strip(),
        tables=tables, summary=summary, notes=notes,
        data={"rows": [asdict(row) for row in rows + held], "scan_s": {"decode": decode_s, "old": old_s, "new": new_s}})


def cell(row: CutRow) -> str:
    text = f"{row.true}/{row.labelled}"
    if row.false_cuts:
        text += f", {len(row.false_cuts)} false"
    return text
