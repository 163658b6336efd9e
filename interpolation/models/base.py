"""The one interface every interpolation model implements.

Frames cross this boundary as numpy arrays: ``uint8``, shape ``(height, width, 3)``,
RGB, C-contiguous. Tensors never leave a model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

Frame = np.ndarray  # uint8 (H, W, 3) RGB


class FrameInterpolator(ABC):
    """Synthesises in-between frames for one pair of neighbouring frames."""

    #: Short name used on the command line and in captions ("rife", "flow", "blend", "dain").
    name: ClassVar[str]
    #: Human-readable name for captions ("RIFE", "optical flow", ...).
    display_name: ClassVar[str]

    @abstractmethod
    def interpolate(self, frame0: Frame, frame1: Frame, times: Sequence[float]) -> list[Frame]:
        """Return one frame per ``t`` in ``times`` (each strictly between 0 and 1).

        ``t`` is the fraction of the way from ``frame0`` (t=0) to ``frame1`` (t=1).
        Both frames have the same shape; the results have that shape too.
        """

    def lanes_for(self, height: int, width: int) -> int:
        """How many pairs of this size the engine may hand over at once, each from its own thread.

        Above 1, :meth:`interpolate` must be thread-safe. The default: one pair at a time.
        """
        return 1

    def expect(self, frame0: Frame, frame1: Frame) -> None:
        """Called in the engine's own thread, in the order of the pairs, before a pair is handed to a
        lane: a model whose frames depend on the pairs before it fixes the pair's place here, so that
        the lanes' timing cannot change its frames. The default: nothing."""

    def start_lane(self, lanes: int) -> None:
        """Called first in each engine thread that will run pairs while ``lanes`` threads run at once."""

    def end_lanes(self) -> None:
        """Called in the engine's own thread once its lane threads have finished."""

    def close(self) -> None:
        """Release what the model holds (GPU memory, caches, what it remembers of earlier pairs); the
        model stays usable and starts afresh (the benches time repeated runs that way)."""


def check_pair(frame0: Frame, frame1: Frame, times: Sequence[float]) -> None:
    """Validate the arguments of :meth:`FrameInterpolator.interpolate` (shared by all models)."""
    if frame0.shape != frame1.shape or frame0.ndim != 3 or frame0.shape[2] != 3:
        raise ValueError(f"frames must share one (H, W, 3) shape, got {frame0.shape} and {frame1.shape}")
    if frame0.dtype != np.uint8 or frame1.dtype != np.uint8:
        raise ValueError("frames must be uint8")
    for t in times:
        if not 0.0 < t < 1.0:
            raise ValueError(f"interpolation time must be strictly between 0 and 1, got {t}")
