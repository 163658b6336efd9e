"""Lean the fast RIFE output toward the cross-fade where the clip itself shows the cross-fade does better.

Two checks, each per pair of input frames (the frame is mixed as a whole, never pixel by pixel):

- The self-test. On the second pair of a chain, and then every :attr:`Confidence.test_every`
  consecutive pairs, the frame in the middle of the last three input frames is a frame whose truth is
  known: the model's midpoint of its two neighbours and their cross-fade each predict it, and the
  least-squares weight of the cross-fade in a mix of the two (the one that would have predicted that
  frame best) joins a running mean of the chain's tests (:attr:`Confidence.test_share`: one test alone
  swings with the content). Where that mean is at least ½ (at ½ the cross-fade alone predicts as well
  as the model), the pairs from there on take that mix; below it they are the model's frames as they
  are. The clip's own frames decide, not a threshold on its noise or texture. The known frame is twice
  as far from its neighbours as the frame being made is from its pair: the test sees more motion than
  the pair does, which favours the model, the safe side. While the mean stays settled, far from any
  change of the lean, the tests come ever more rarely (16, then 32 pairs apart: :func:`next_spacing`);
  a test that unsettles it brings them back to every 8.
- Where no self-test has spoken yet (the first pair of a run, and of every stretch whose pairs do
  not chain: frame 1 of one is frame 0 of the next; a scene cut, a seek, a new clip), the model's own
  warps decide (taken with the flow before the last block, :meth:`~.rife.IFNet.forward`'s ``flows``):
  where the warped frames' mean squared difference is still more than :attr:`Confidence.lean_from` of
  the unwarped frames' (the flow removed less than 30 % of it), no motion the network found explains
  the change (foliage, noise, light), and the frame leans to the cross-fade, fully from
  :attr:`Confidence.lean_to` on (:func:`pair_lean`). The tuning clips' first pairs: tree 0.86 (the
  cross-fade scores 1.1 dB more there), carphone 0.60, bikes 0.37, vtest and bunny under 0.1. Once a
  chain has a self-test, the warps no longer lean its pairs: on the tuning clips that check helped
  only a chain's first pair (tree: +1.05 dB) and changed no mean elsewhere, and single pairs it
  leaned went against the clip's own known frames.

Measured on the bench's tuning clips and synthetic cases only (``bench/cases.py``, ``TUNING_CLIPS``;
``bench/versus.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .base import Frame

#: The model's own midpoint of two frames, without any lean (what the self-test compares).
Predict = Callable[[Frame, Frame], Frame]
#: Per moment, both frames of a pair warped there by the model (what :func:`pair_lean` reads).
Warps = Callable[[], list[tuple[np.ndarray, np.ndarray]]]
#: Pairs remembered to find the one before a new pair (two lanes at once, a few chunks each).
REMEMBERED_PAIRS = 8


@dataclass(frozen=True)
class Confidence:
    """Bounds of :class:`Lean`."""

    #: Warped / unwarped mean squared difference from which a pair leans to the cross-fade …
    lean_from: float = 0.7
    #: … and at which it is the cross-fade.
    lean_to: float = 0.8
    #: A self-test on one of every this many consecutive pairs (each costs one more forward pass of
    #: the model); the pairs in between take the running mean as it stands.
    test_every: int = 8
    #: A new self-test's share of the running mean (exponential: the last few tests count).
    test_share: float = 0.3
    #: Where the running mean is settled, at least this far from every change of the lean (below ½ by
    #: it: the model's frames; at 1 + it or more: the cross-fade), the next test comes after twice as many
    #: pairs as the last one, … (the tuning clips' tests: bunny 0.05–0.08, bikes 0.22–0.26, vtest
    #: 0.26–0.39 settle, vtest's 60 pairs then test 4 times instead of 8 with the same frames; carphone
    #: 0.25–1.12 and tree 0.82–0.90 do not). A shot that changes its nature is heard at most
    #: :attr:`test_every_settled` pairs late: until then its frames stay as they were before the change.
    settled_by: float = 0.15
    #: … up to this many pairs apart; a mean that is not settled brings the spacing back to :attr:`test_every`.
    test_every_settled: int = 32

    def __post_init__(self) -> None:
        if self.test_every < 1:
            raise ValueError(f"test_every must be at least 1, got {self.test_every}")
        if self.test_every_settled < self.test_every:
            raise ValueError(f"test_every_settled must be at least test_every ({self.test_every}), "
                             f"got {self.test_every_settled}")
        if not 0.0 < self.test_share <= 1.0:
            raise ValueError(f"test_share must be in (0, 1], got {self.test_share}")


def pair_lean(frame0: np.ndarray, frame1: np.ndarray, warped0: np.ndarray, warped1: np.ndarray,
              settings: Confidence = Confidence()) -> float:
    """The per-pair check from the warps: 0 (the model) … 1 (the cross-fade). All arguments float32
    ``(H, W, 3)`` in 8-bit levels (the warps: each frame moved to the same moment).

    Squared differences, as PSNR counts them: on a still shot with a small moving object most pixels
    differ only by noise, which no warp removes, so the mean *absolute* difference barely drops where
    the flow explains the object (a real 1080p clip's first pair: 0.88 of it left in float32, 0.95 in
    bfloat16, and the cross-fade it leaned to cost 0.5 and 5.7 dB), while the squared one drops to 0.07."""
    moved = float(np.square(frame0 - frame1, dtype=np.float64).mean())
    if moved <= 0.0:
        return 0.0
    left = float(np.square(warped0 - warped1, dtype=np.float64).mean())
    return min(1.0, max(0.0, (left / moved - settings.lean_from) / (settings.lean_to - settings.lean_from)))


def self_test_weight(before: Frame, known: Frame, after: Frame, model_middle: Frame) -> float:
    """The cross-fade's least-squares weight learnt on a known frame: ``model_middle`` is the model's
    midpoint of ``before`` and ``after``, ``known`` the real frame between them; the ``w`` for which
    ``(1 − w) · model + w · cross-fade`` comes closest to ``known`` (unbounded; 0 where the two agree).
    ``w`` ≥ ½ exactly where the cross-fade alone predicts ``known`` at least as well as the model."""
    first, second = before.astype(np.float32), after.astype(np.float32)
    model = model_middle.astype(np.float32)
    error = model - known.astype(np.float32)
    apart = model - (first + second) * np.float32(0.5)
    spread = float(np.square(apart, dtype=np.float64).sum())
    if spread <= 0.0:
        return 0.0
    return float(np.multiply(error, apart, dtype=np.float64).sum()) / spread


def lean_of(score: float) -> float:
    """The cross-fade's share for a running mean of self-test weights: the mix where the cross-fade
    does at least as well as the model (``score`` ≥ ½), at most the cross-fade, else none."""
    return min(1.0, score) if score >= 0.5 else 0.0


def next_spacing(score: float, spacing: int, settings: Confidence) -> int:
    """Pairs until the chain's next self-test, after one that left the running mean at ``score`` and came
    ``spacing`` pairs after the test before it: twice that where the mean is settled (the lean would be
    the same ``settled_by`` either way of it), :attr:`Confidence.test_every` where it is not."""
    settled = score + settings.settled_by < 0.5 or score - settings.settled_by >= 1.0
    return min(settings.test_every_settled, 2 * spacing) if settled else settings.test_every


def mixed(frame0: Frame, frame1: Frame, middles: list[Frame], times: list[float], weights: list[float]
          ) -> list[Frame]:
    """Each of ``middles`` (the model's frames at ``times``) mixed with the cross-fade at its time, by
    its weight (0: the model's frame as it is, 1: the cross-fade)."""
    first, second = frame0.astype(np.float32), frame1.astype(np.float32)
    results = []
    for middle, t, weight in zip(middles, times, weights):
        if weight <= 0.0:
            results.append(middle)
            continue
        blend = first + (second - first) * np.float32(t)
        model = middle.astype(np.float32)
        results.append(np.clip(np.rint(model + (blend - model) * np.float32(weight)), 0, 255).astype(np.uint8))
    return results


@dataclass
class _Pair:
    """A pair seen by :class:`Lean`: its frames, its place in its chain, and the self-test weight."""

    first: Frame
    second: Frame
    #: The pair before it in its chain (None: the chain starts here).
    before: _Pair | None
    #: Pairs since the chain's last self-test (0: this pair ran one); None: the first pair of a chain.
    since_test: int | None = None
    #: Pairs from the chain's last self-test to its next (:func:`next_spacing`).
    spacing: int = 0
    #: The running mean of the chain's self-test weights so far (None: no test yet).
    score: float | None = None
    #: The self-test's lean (None: no self-test has informed the chain yet).
    weight: float | None = None
    #: Whether a call has taken on working out ``weight`` (the others wait for ``ready``).
    claimed: bool = False
    #: Set once ``weight`` is known, or will never be (its pair failed): a later pair may take it.
    ready: threading.Event = field(default_factory=threading.Event)


class Lean:
    """The lean of one model: remembers the last pairs (thread-safe: the engine runs two lanes).

    A pair's place in its chain is fixed when the lean first hears of it. The engine announces the
    pairs in order (:meth:`expect`) before its lanes run them, so which lane finishes its forward pass
    first cannot start a chain anew (two lanes once broke a chain at every pair that overtook the one
    before it, and the frames changed from run to run); without the announcement, the order of the
    calls decides.
    """

    def __init__(self, settings: Confidence = Confidence()) -> None:
        self.settings = settings
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()

    def expect(self, frame0: Frame, frame1: Frame) -> None:
        """The pair comes next: it follows the pairs announced or seen before it."""
        with self._lock:
            self._entry(frame0, frame1)

    def release(self, frame0: Frame, frame1: Frame) -> None:
        """The pair's frames will not come (its call failed): a pair after it waits no longer."""
        with self._lock:
            entry = self._find(frame0, frame1)
            if entry is not None:
                entry.claimed = True
                entry.before = None
        if entry is not None:
            entry.ready.set()

    def _find(self, frame0: Frame, frame1: Frame) -> _Pair | None:
        return next((p for p in reversed(self._pairs)
                     if np.array_equal(p.first, frame0) and np.array_equal(p.second, frame1)), None)

    def _entry(self, frame0: Frame, frame1: Frame) -> _Pair:
        """The pair's entry, made (after the last pair that ends where it starts) if it is new; under the lock."""
        seen = self._find(frame0, frame1)
        if seen is not None:
            return seen
        before = next((p for p in reversed(self._pairs) if np.array_equal(p.second, frame0)), None)
        entry = _Pair(frame0.copy(), frame1.copy(), before)
        self._pairs = [*self._pairs[-(REMEMBERED_PAIRS - 1):], entry]
        return entry

    def test_weight(self, frame0: Frame, frame1: Frame, predict: Predict) -> float | None:
        """The self-test's lean for the pair: from the running mean with its own test (one ``predict``
        call) or as the pair before left it; None at the start of a chain (no test yet)."""
        with self._lock:
            entry = self._entry(frame0, frame1)
            mine = not entry.claimed
            entry.claimed = True
        if not mine:  # the same pair again (its times in several calls), or another lane has it
            entry.ready.wait()
            return entry.weight
        try:
            before = entry.before
            if before is not None:
                before.ready.wait()  # its running mean, and so whether this pair tests
                entry.score, entry.spacing = before.score, before.spacing
                due = before.since_test is None or before.since_test + 1 >= before.spacing
                entry.since_test = 0 if due else before.since_test + 1  # type: ignore[operator]
                if due:
                    tested = self_test_weight(before.first, frame0, frame1, predict(before.first, frame1))
                    share = self.settings.test_share
                    entry.score = tested if before.score is None else share * tested + (1.0 - share) * before.score
                    entry.spacing = (self.settings.test_every if before.score is None
                                     else next_spacing(entry.score, before.spacing, self.settings))
                entry.weight = None if entry.score is None else lean_of(entry.score)
        finally:
            entry.ready.set()
            entry.before = None  # the chain keeps no frames beyond the remembered pairs
        return entry.weight

    def apply(self, frame0: Frame, frame1: Frame, middles: list[Frame], times: list[float],
              warps: Warps, predict: Predict) -> list[Frame]:
        """The model's ``middles`` at ``times`` leaned toward the cross-fade; ``warps``: per time, frame
        0 and frame 1 warped there by the model (float32 ``(H, W, 3)``, 8-bit levels), called only
        where no self-test has spoken yet (a warp of both full-size frames is not free)."""
        tested = self.test_weight(frame0, frame1, predict)
        if tested is not None:
            return mixed(frame0, frame1, middles, times, [tested] * len(middles))
        first, second = frame0.astype(np.float32), frame1.astype(np.float32)
        weights = [pair_lean(first, second, warped0, warped1, self.settings) for warped0, warped1 in warps()]
        return mixed(frame0, frame1, middles, times, weights)
