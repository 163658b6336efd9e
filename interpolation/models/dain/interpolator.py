"""DAIN for the engine: numpy frames in and out, the user's checkpoint, padding as the original
demo pads, and work shared between the times of a pair and between neighbouring pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import WeightsError
from ..base import Frame, FrameInterpolator, check_pair
from ..checkpoints import pick_device, read_state_dict, state_dict_mismatch
from .network import DAIN, STRIP_PIXELS, FrameAnalysis, PairAnalysis

#: The demo pads each side to the next multiple of 128 ("more than necessary", but it is what
#: the model was evaluated with); a side already a multiple gets this margin on both ends.
PAD_MULTIPLE = 128
PAD_MARGIN = 32
#: What the checkpoint is, for every "no usable weights" message (said to people, in chat too).
CHECKPOINT_NAME = "best.pth from the DAIN project (https://github.com/baowenbo/DAIN)"
#: How the operator installs it: the error's ``detail`` (logs, ``-v``), never the chat message.
CHECKPOINT_HELP = (
    "download best.pth from the link in the README of https://github.com/baowenbo/DAIN and pass it "
    "with --weights PATH (command line) or set SMOOTHBOT_DAIN_WEIGHTS=PATH (bot)"
)


def memory_format_for(device: torch.device) -> torch.memory_format:
    """Channels-last on the CPU: oneDNN runs the depth and context networks about 1.7× faster
    that way (measured); elsewhere the default layout (not measured)."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def demo_padding(size: int) -> tuple[int, int]:
    """(before, after) replicate padding of one side, as DAIN's ``demo_MiddleBury.py`` computes it."""
    if size % PAD_MULTIPLE == 0:
        return PAD_MARGIN, PAD_MARGIN
    padded = (size // PAD_MULTIPLE + 1) * PAD_MULTIPLE
    before = (padded - size) // 2
    return before, padded - size - before


def load_dain(path: Path, device: torch.device) -> DAIN:
    """A :class:`DAIN` in eval mode on ``device`` with the checkpoint at ``path`` (strict)."""
    state = read_state_dict(path, "DAIN")
    network = DAIN()
    mismatch = state_dict_mismatch(network.state_dict(), network.normalise_checkpoint(state))
    if mismatch:
        raise WeightsError(f"the DAIN weights do not fit the DAIN network: {mismatch}", detail=f"weights file: {path}")
    network.load_state_dict(state, strict=True)
    return network.eval().to(device)


@dataclass
class PreparedFrame:
    """One input frame on the device, padded, with its depth (reused across pairs)."""

    source: np.ndarray  # a copy: matched by content, so a caller may reuse its buffers
    image: torch.Tensor
    analysis: FrameAnalysis


@dataclass
class PreparedPair:
    first: PreparedFrame
    second: PreparedFrame
    analysis: PairAnalysis


class DainInterpolator(FrameInterpolator):
    name = "dain"
    display_name = "DAIN"

    def __init__(self, weights: Path | None = None, device: str | None = None,
                 strip_pixels: int | None = STRIP_PIXELS) -> None:
        if weights is None:
            raise WeightsError(f"DAIN needs its pretrained checkpoint, {CHECKPOINT_NAME}, which cannot be fetched "
                               "automatically and is not set up here", detail=CHECKPOINT_HELP)
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"the DAIN weights were not found; DAIN needs {CHECKPOINT_NAME}",
                               detail=f"no file at {path}; {CHECKPOINT_HELP}")
        self.device = pick_device(device)
        self.memory_format = memory_format_for(self.device)
        self.network = load_dain(path, self.device).to(memory_format=self.memory_format)
        #: Pixels per strip of the full-resolution work (None: whole frames at once).
        self.strip_pixels = strip_pixels
        self._frames: list[PreparedFrame] = []
        self._pair: PreparedPair | None = None

    @torch.inference_mode()
    def interpolate(self, frame0: Frame, frame1: Frame, times: Sequence[float]) -> list[Frame]:
        check_pair(frame0, frame1, times)
        if not times:
            return []
        pair = self.prepared_pair(frame0, frame1)
        height, width = frame0.shape[:2]
        (top, _), (left, _) = demo_padding(height), demo_padding(width)
        results = []
        for t in times:
            middle = self.network.synthesise(pair.first.image, pair.second.image, pair.first.analysis,
                                             pair.second.analysis, pair.analysis, float(t), self.strip_pixels)
            pixels = (middle[0, :, top:top + height, left:left + width].clamp(0, 1) * 255).round().to(torch.uint8)
            results.append(np.ascontiguousarray(pixels.permute(1, 2, 0).cpu().numpy()))
        return results

    def prepared_pair(self, frame0: Frame, frame1: Frame) -> PreparedPair:
        if (self._pair is not None and np.array_equal(self._pair.first.source, frame0)
                and np.array_equal(self._pair.second.source, frame1)):
            return self._pair
        self._pair = None  # free the previous pair's kernels before computing new ones
        self._frames = [entry for entry in self._frames
                        if np.array_equal(entry.source, frame0) or np.array_equal(entry.source, frame1)]
        first, second = self.prepared(frame0), self.prepared(frame1)
        self._pair = PreparedPair(first, second, self.network.analyse_pair(first.image, second.image))
        return self._pair

    def prepared(self, frame: Frame) -> PreparedFrame:
        for entry in self._frames:
            if np.array_equal(entry.source, frame):
                return entry
        height, width = frame.shape[:2]
        (top, bottom), (left, right) = demo_padding(height), demo_padding(width)
        image = torch.from_numpy(frame).to(self.device).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        image = F.pad(image, (left, right, top, bottom), mode="replicate").contiguous(memory_format=self.memory_format)
        entry = PreparedFrame(frame.copy(), image, self.network.analyse_frame(image, self.strip_pixels))
        self._frames.append(entry)
        return entry

    def close(self) -> None:
        self._frames = []
        self._pair = None
