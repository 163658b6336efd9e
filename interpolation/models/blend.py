"""Cross-fade baseline: the frame at ``t`` is ``(1 - t) * frame0 + t * frame1``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Frame, FrameInterpolator, check_pair


class BlendInterpolator(FrameInterpolator):
    name = "blend"
    display_name = "blend"

    def interpolate(self, frame0: Frame, frame1: Frame, times: Sequence[float]) -> list[Frame]:
        check_pair(frame0, frame1, times)
        a = frame0.astype(np.float32)
        b = frame1.astype(np.float32)
        # Round half up so that t=0.5 of (a, b) is exactly the rounded mean (a + b + 1) // 2.
        return [np.floor(a + (b - a) * np.float32(t) + 0.5).clip(0, 255).astype(np.uint8) for t in times]
