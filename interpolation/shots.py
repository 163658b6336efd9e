"""Scene cuts: a cheap detector proposes, TransNetV2 confirms.

Colour histograms cannot tell a cut between two shots in the same light (shot/reverse-shot dialogue)
from a fast pan or a flash. Here:

1. PySceneDetect's ``AdaptiveDetector`` scores every frame by how much its hue, saturation and
   brightness change *pixel by pixel* against the previous frame, relative to the changes of its
   neighbours (so a pan, which changes every frame a lot, is not a spike). With loose settings it
   proposes every plausible cut (high recall, cheap: one HSV conversion per thumbnail). Frame 1,
   which it never judges (too few frames before it), is judged by the same rule against the frames
   after it: a black or title frame cut to the first shot (the Megamind trailer's first cut).
2. TransNetV2 (:mod:`interpolation.models.transnet`), a network trained for shot boundaries, runs
   only on the 100-frame windows that hold a proposal, and confirms it when its probability that the
   frame before ends a shot is above ``SceneSettings.cut_threshold`` (default 0.5). The windows are
   the published inference's own (aligned to multiples of 50), so every probability is exactly what a
   full run of the network gives. The network, and torch with it, is imported only when a window is
   scored: the engine starts without torch, and the model build imports it beside the scan.

Without the TransNetV2 weights (``make weights`` fetches them) the adaptive detector decides alone, at
PySceneDetect's own defaults, and :attr:`CutFinder.note` says so (the result's notes carry it).
Memory stays bounded: only the small frames of the windows still to be scored are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import TYPE_CHECKING

import cv2
import numpy as np
from scenedetect import AdaptiveDetector, FrameTimecode

from .models import transnet_windows as windows
from .models.weights import TRANSNET, cached, resolve

if TYPE_CHECKING:  # the network (and torch) is imported only when a window is scored
    from .models.transnet import TransNetV2

#: Loose settings: propose every frame whose change stands out at all (TransNetV2 filters).
PROPOSE = {"adaptive_threshold": 1.6, "min_content_val": 6.0}
#: PySceneDetect's defaults, used when the adaptive detector decides alone (no TransNetV2 weights).
ALONE = {"adaptive_threshold": 3.0, "min_content_val": 15.0}
#: The confidence ``cut_threshold`` is compared with by default; without the network the adaptive
#: threshold scales with ``cut_threshold / DEFAULT_CONFIDENCE`` (lower still finds more).
DEFAULT_CONFIDENCE = 0.5
#: Neighbours on each side the adaptive detector averages; it reports a frame this many frames late.
ADAPTIVE_WINDOW = 2
#: The first frames after frame 0 that the adaptive detector never judges (its first judged frame has
#: ADAPTIVE_WINDOW frames before it, frame 0's change counted as 0): :class:`CutFinder` judges them
#: by the same rule with the neighbours they have.
UNJUDGED = ADAPTIVE_WINDOW - 1

NetworkLoader = Callable[[], "TransNetV2"]


def load_network() -> TransNetV2:
    from .models import transnet

    return transnet.load(resolve(TRANSNET))


class CutFinder:
    """Feed thumbnails (uint8 RGB, any size) in order with :meth:`push`; :meth:`finish` returns the
    indices ``k`` where frames ``k-1`` and ``k`` belong to different shots."""

    def __init__(self, threshold: float, *, network: NetworkLoader | None = None,
                 use_network: bool | None = None, only: int | None = None) -> None:
        """``use_network``: None decides by whether the TransNetV2 weights are cached. ``only``: judge
        that one frame and ignore other proposals (a loop's seam)."""
        self.threshold = threshold
        self._only = only
        self.use_network = cached(TRANSNET) is not None if use_network is None else use_network
        self._load = network or load_network
        self._network: TransNetV2 | None = None
        settings = dict(PROPOSE) if self.use_network else {
            "adaptive_threshold": ALONE["adaptive_threshold"] * threshold / DEFAULT_CONFIDENCE,
            "min_content_val": ALONE["min_content_val"]}
        self._adaptive = AdaptiveDetector(min_scene_len=0, window_width=ADAPTIVE_WINDOW, **settings)
        self._count = 0  # real frames pushed
        self._fed = 0  # frames the adaptive detector has seen (with the padding at the end)
        self._recent: list[np.ndarray] = []  # the last ADAPTIVE_WINDOW + 1 thumbnails
        self._first_changes: list[float] = []  # content scores of frames 1 … UNJUDGED + ADAPTIVE_WINDOW
        self.proposed: list[int] = []
        #: Small frames from index ``_base`` on (only those a window may still read).
        self._small: list[np.ndarray] = []
        self._base = 0
        self._pending: set[int] = set()  # windows holding a proposal, not yet scored
        self._scores: dict[int, np.ndarray] = {}  # window → probabilities of its 50 frames
        self.windows_scored = 0

    @property
    def note(self) -> str | None:
        """None with TransNetV2; else what a result's notes say about how its cuts were found."""
        if self.use_network:
            return None
        return "scene cuts found by the adaptive detector alone (TransNetV2 weights missing: run `make weights`)"

    def push(self, thumbnail: np.ndarray) -> None:
        self._propose(thumbnail)
        self._recent = [*self._recent[-ADAPTIVE_WINDOW:], thumbnail]
        self._count += 1
        if self.use_network:
            self._small.append(cv2.resize(thumbnail, windows.INPUT_SIZE[::-1], interpolation=cv2.INTER_AREA))
            self._score_ready(final=False)

    def finish(self) -> tuple[int, ...]:
        """Flush the adaptive detector and score what is left. The clip is mirrored at its end (the
        frames before the last, backwards), so the last frames' neighbours change as much as their
        own step: a repeated last frame would make any motion there stand out as a cut."""
        for k in range(1, min(UNJUDGED, self._count - 1) + 1):
            if k + ADAPTIVE_WINDOW >= self._count:  # not judged yet: the clip ends before all its neighbours
                self._judge_first(k)
        for thumbnail in self._recent[-2::-1]:
            self._propose(thumbnail, padding=True)
        if not self.use_network:
            return tuple(self.proposed)
        self._score_ready(final=True)
        return tuple(k for k in self.proposed if self.probability(k - 1) > self.threshold)

    def probability(self, frame: int) -> float:
        """TransNetV2's probability that ``frame`` is the last of its shot (its window scored)."""
        return float(self._scores[frame // windows.STEP][frame % windows.STEP])

    def _propose(self, thumbnail: np.ndarray, padding: bool = False) -> None:
        frame = self._fed
        timecode = FrameTimecode(frame, Fraction(25))  # a frame number; the rate plays no part
        self._fed += 1
        for cut in self._adaptive.process_frame(timecode, cv2.cvtColor(thumbnail, cv2.COLOR_RGB2BGR)):
            if cut.frame_num < self._count:  # not a frame of the mirrored padding
                self._proposal(cut.frame_num)
        if not padding and 0 < frame < UNJUDGED + ADAPTIVE_WINDOW + 1:
            change = getattr(self._adaptive, "_frame_score", None)  # PySceneDetect's content score of it
            self._first_changes.append(0.0 if change is None else float(change))
            if frame > ADAPTIVE_WINDOW:
                self._judge_first(frame - ADAPTIVE_WINDOW)

    def _judge_first(self, k: int) -> None:
        """The adaptive rule for one of the :data:`UNJUDGED` first frames: frame ``k``'s change against
        those of the neighbours it has (a title card or black frame cut to the first shot stands out
        from the changes after it; the start of a fast pan does not)."""
        changes = self._first_changes
        target = changes[k - 1]  # changes[j - 1] is frame j's
        around = [changes[j - 1] for j in range(max(1, k - ADAPTIVE_WINDOW), min(len(changes), k + ADAPTIVE_WINDOW) + 1)
                  if j != k]
        average = sum(around) / len(around) if around else 0.0
        least = self._adaptive.min_content_val
        if average > 1e-5:
            ratio = min(target / average, 255.0)
        else:  # as PySceneDetect: nothing around it changed
            ratio = 255.0 if target >= least else 0.0
        if ratio >= self._adaptive.adaptive_threshold and target >= least:
            self._proposal(k)

    def _proposal(self, k: int) -> None:
        """Propose a cut before frame ``k`` and mark the window that scores frame ``k-1``."""
        if k > 0 and self._only in (None, k):
            self.proposed.append(k)
            window = (k - 1) // windows.STEP
            if window not in self._scores:
                self._pending.add(window)

    def _score_ready(self, *, final: bool) -> None:
        """Score the pending windows whose frames are all here (all of them at the end), then drop
        the small frames no later window reads."""
        have = self._base + len(self._small)
        ready = sorted(w for w in self._pending if final or have >= first_read(w) + windows.WINDOW)
        if ready:
            if self._network is None:
                self._network = self._load()
            frames = np.stack(self._small)
            inputs = [frames[np.clip(np.arange(first_read(w), first_read(w) + windows.WINDOW), 0, have - 1) - self._base]
                      for w in ready]
            from .models import transnet

            for w, scores in zip(ready, transnet.score_windows(self._network, inputs)):
                self._scores[w] = scores
            self.windows_scored += len(ready)
            self._pending.difference_update(ready)
        # A proposal still to come is frame count - ADAPTIVE_WINDOW or later: its window scores
        # frame count - ADAPTIVE_WINDOW - 1 or later.
        upcoming = max(0, self._count - ADAPTIVE_WINDOW - 1) // windows.STEP
        keep_from = max(0, first_read(min([*self._pending, upcoming])))
        if keep_from > self._base:
            del self._small[:keep_from - self._base]
            self._base = keep_from


def first_read(window: int) -> int:
    """The first frame a window reads (frames before 0 are frame 0 repeated)."""
    return windows.STEP * window - windows.CONTEXT


def find_cuts(thumbnails: Iterable[np.ndarray], threshold: float, **kwargs) -> tuple[int, ...]:
    """All cuts of a sequence of thumbnails (see :class:`CutFinder`)."""
    finder = CutFinder(threshold, **kwargs)
    for thumbnail in thumbnails:
        finder.push(thumbnail)
    return finder.finish()


#: Frames on each side of a loop's seam (last frame → first) that its check reads: a window's context.
SEAM_FRAMES = windows.CONTEXT + windows.STEP


def seam_is_cut(tail: list[np.ndarray], head: list[np.ndarray], threshold: float, **kwargs) -> bool:
    """Whether a clip's last frame (``tail[-1]``) and its first (``head[0]``) lie in different shots:
    the same test as inside the clip, on the tail followed by the head, at their join only."""
    finder = CutFinder(threshold, only=len(tail), **kwargs)
    for thumbnail in [*tail, *head]:
        finder.push(thumbnail)
    return len(tail) in finder.finish()
