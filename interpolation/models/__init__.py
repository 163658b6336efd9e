"""Model registry: ``create_model("rife")`` returns a ready :class:`FrameInterpolator`.

Models are imported lazily so that ``blend`` works without torch being imported.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BadOptionsError
from .base import Frame, FrameInterpolator

MODEL_NAMES = ("rife", "flow", "blend", "dain")


def create_model(name: str, weights: Path | None = None, device: str | None = None,
                 quality: str = "fast") -> FrameInterpolator:
    """Build the model called ``name``.

    ``weights`` overrides the default weights file (models without weights ignore it);
    ``device`` is a torch device string ("cpu", "cuda", "cuda:1"); ``None`` picks the best one.
    ``quality`` "best" makes RIFE average several views of each pair; other models have one way.
    """
    if name == "blend":
        from .blend import BlendInterpolator

        return BlendInterpolator()
    if name == "flow":
        from .flow import FlowInterpolator

        return FlowInterpolator()
    if name == "rife":
        from .rife import RifeInterpolator

        return RifeInterpolator(weights=weights, device=device, quality=quality)
    if name == "dain":
        from .dain import DainInterpolator

        return DainInterpolator(weights=weights, device=device)
    raise BadOptionsError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")


__all__ = ["MODEL_NAMES", "Frame", "FrameInterpolator", "create_model"]
