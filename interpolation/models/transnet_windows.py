"""TransNetV2's input geometry: what the scan needs to plan the network's windows, without torch.

The scene-cut scan (:mod:`interpolation.shots`) collects thumbnails at this size and groups them in
these windows while the clip decodes; the network itself (:mod:`.transnet`, which imports torch) is
loaded only when a window holds a proposed cut. So starting the engine does not import torch: the
model build does, in its own thread beside the probe and the scan.
"""

from __future__ import annotations

#: Frame size the network reads (height, width).
INPUT_SIZE = (27, 48)
#: Frames per window, frames scored per window, and the context on each side of them.
WINDOW, STEP, CONTEXT = 100, 50, 25
