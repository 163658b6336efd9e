"""Test-time adaptation of RIFE for ``quality="best"``: a copy of the network fine-tuned on the clip itself.

Every run of three consecutive input frames inside one shot is an example of "predict the middle
frame from its neighbours", at twice the motion of the pairs the engine then interpolates. A bounded
number of such triplets is sampled evenly over the clip; of each, one window (at most
:data:`WINDOW_PIXELS` on a side, the same place in all three frames) is kept, so memory does not grow
with the clip or its resolution. A copy of the network (never the engine's shared one, never the file
on disk) is fine-tuned on random crops of those windows — random flips and time reversal, Adam, L1,
a fixed number of steps — through the published forward (:func:`.rife_reference.reference_forward`,
with gradients), at the internal scale the clip is interpolated at. Every :attr:`AdaptSettings.guard_every`
-th triplet is held out: the adapted weights are used only if one plain view scores a higher PSNR on
those than the published weights (the harm guard).

Measured in bench/REPORT.md ("Test-time adaptation", ``python -m bench.adapt``).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CancelledError
from .rife import COARSEST_STRIDE, IFNet, RifeInterpolator
from .rife_reference import reference_forward

#: A triplet of uint8 ``(h, w, 3)`` frames: before, middle (the target), after.
Triplet = tuple[np.ndarray, np.ndarray, np.ndarray]
#: Reports (steps done, steps in all) during the fine-tuning.
StepCallback = Callable[[int, int], None]

#: The published forward without its ``inference_mode`` decorator: gradients flow to the weights.
differentiable_forward = reference_forward.__wrapped__  # type: ignore[attr-defined]
#: Largest side of the window kept of each sampled triplet (frame pixels): 24 triplets of 640 × 640
#: windows are 88 MB whatever the clip's length or size.
WINDOW_PIXELS = 640


@dataclass(frozen=True)
class AdaptSettings:
    """Chosen on two tuning clips (bench/REPORT.md); about 50–75 CPU seconds at 256 px crops."""

    steps: int = 200
    lr: float = 3e-5
    #: Square training crops as the network sees them: frame pixels × the internal scale (where it is above 1).
    crop: int = 256
    #: Triplets sampled over the clip (training and guard together).
    triplets: int = 24
    #: Every n-th sampled triplet is held out of the training for the harm guard.
    guard_every: int = 4
    #: Fewer usable triplets than this: the clip is too short to teach anything, no adaptation.
    min_triplets: int = 8
    seed: int = 0


#: What the engine runs (:func:`interpolation.api.adapted_model`).
SETTINGS = AdaptSettings()


@dataclass(frozen=True)
class Adaptation:
    """What one adaptation did: the adapted model, whether the harm guard kept it, and the guard's scores."""

    model: RifeInterpolator
    kept: bool
    steps: int
    guard_published_db: float
    guard_adapted_db: float
    cpu_s: float

    @property
    def note(self) -> str:
        """A line for the result's caption."""
        if self.kept:
            return (f"adapted to this clip ({self.steps} training steps; held-out frames "
                    f"{self.guard_published_db:.1f} → {self.guard_adapted_db:.1f} dB)")
        return (f"adaptation to this clip did not help on its held-out frames "
                f"({self.guard_published_db:.1f} → {self.guard_adapted_db:.1f} dB): published weights used")


def usable_starts(duplicate: Sequence[bool], cut_before: Sequence[bool]) -> list[int]:
    """First frames ``k`` of the triplets ``k, k + 1, k + 2`` inside one shot with no repeated frame."""
    return [k for k in range(len(duplicate) - 2)
            if not (duplicate[k + 1] or duplicate[k + 2] or cut_before[k + 1] or cut_before[k + 2])]


def chosen_starts(starts: Sequence[int], count: int) -> list[int]:
    """``count`` of ``starts`` spread evenly over the clip (all of them where there are fewer)."""
    if len(starts) <= count:
        return list(starts)
    return sorted({starts[round(i)] for i in np.linspace(0, len(starts) - 1, count)})


def collect_triplets(frames: Iterable[np.ndarray], starts: Sequence[int], seed: int = 0,
                     window: int = WINDOW_PIXELS) -> list[Triplet]:
    """A window (same place in all three frames, at most ``window`` on a side) of the triplet at each of
    ``starts``, read from the stream of ``frames``; stops reading after the last one."""
    rng = random.Random(seed)
    wanted = set(starts)
    last = max(starts, default=-1) + 2
    recent: deque[np.ndarray] = deque(maxlen=3)
    triplets: list[Triplet] = []
    for index, frame in enumerate(frames):
        recent.append(frame)
        if index - 2 in wanted:
            height, width = frame.shape[:2]
            rows, columns = min(window, height), min(window, width)
            top, left = rng.randrange(height - rows + 1), rng.randrange(width - columns + 1)
            triplets.append(tuple(np.ascontiguousarray(f[top:top + rows, left:left + columns])
                                  for f in recent))  # type: ignore[arg-type]
        if index >= last:
            break
    return triplets


def split(triplets: Sequence[Triplet], guard_every: int) -> tuple[list[Triplet], list[Triplet]]:
    """(training, guard): every ``guard_every``-th triplet is the guard's."""
    guard = list(triplets[guard_every - 1::guard_every])
    return [t for i, t in enumerate(triplets) if (i + 1) % guard_every], guard


def random_crop(triplet: Sequence[np.ndarray], crop: int, rng: random.Random) -> list[np.ndarray]:
    """The same random ``crop`` × ``crop`` window (at most the frame) of each frame, randomly flipped
    (left↔right, up↔down) and randomly in reverse order (the middle stays the middle)."""
    height, width = triplet[0].shape[:2]
    ch, cw = min(crop, height), min(crop, width)
    top, left = rng.randrange(height - ch + 1), rng.randrange(width - cw + 1)
    frames = [frame[top:top + ch, left:left + cw] for frame in triplet]
    if rng.random() < 0.5:
        frames = [frame[:, ::-1] for frame in frames]
    if rng.random() < 0.5:
        frames = [frame[::-1] for frame in frames]
    if rng.random() < 0.5:
        frames = frames[::-1]
    return [np.ascontiguousarray(frame) for frame in frames]


def padded_batch(crops: Sequence[Sequence[np.ndarray]], scale: float,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The crops' first and last frames as batches zero-padded to the network's stride (as the engine
    pads), and their middles as they are; ``(N, 3, H, W)`` in [0, 1]."""
    first, middle, last = (torch.from_numpy(np.stack([crop[i] for crop in crops])).to(device)
                           .permute(0, 3, 1, 2).float() / 255.0 for i in range(3))
    stride = int(COARSEST_STRIDE / scale)
    pad = (0, -first.shape[3] % stride, 0, -first.shape[2] % stride)
    return F.pad(first, pad), F.pad(last, pad), middle


def fine_tune(network: IFNet, triplets: Sequence[Triplet], scale: float, settings: AdaptSettings,
              step_done: StepCallback | None = None, cancelled: Callable[[], bool] | None = None) -> list[float]:
    """Fine-tune ``network`` in place on random crops of ``triplets``; the loss of every step.

    Raises :class:`~interpolation.errors.CancelledError` when ``cancelled`` says so (checked every step).
    """
    if not triplets:
        raise ValueError("fine-tuning needs at least one triplet")
    rng = random.Random(settings.seed)
    device = next(network.parameters()).device
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.lr)
    crop = round(settings.crop / max(1.0, scale))  # the network upscales small frames inside
    losses = []
    network.train()
    try:
        for step in range(settings.steps):
            if cancelled is not None and cancelled():
                raise CancelledError("cancelled")
            image0, image1, target = padded_batch([random_crop(rng.choice(triplets), crop, rng)], scale, device)
            prediction = differentiable_forward(network, image0, image1, 0.5, scale)
            loss = F.l1_loss(prediction[:, :, :target.shape[2], :target.shape[3]], target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if step_done is not None:
                step_done(step + 1, settings.steps)
    finally:
        network.eval()
    return losses


def plain_view_psnr(model: RifeInterpolator, triplets: Sequence[Triplet]) -> float:
    """Mean PSNR (8-bit peak) of the middle frames as one plain view of ``model`` predicts them."""
    scores = []
    for before, middle, after in triplets:
        error = model.interpolate(before, after, [0.5])[0].astype(np.float64) - middle.astype(np.float64)
        scores.append(10.0 * np.log10(255.0 ** 2 / max(float(np.mean(error ** 2)), 1e-10)))
    return float(np.mean(scores))


def with_weights(network: IFNet, like: RifeInterpolator, quality: str, scale: float | None) -> RifeInterpolator:
    """A new engine model (its own network, the published file's layout) carrying ``network``'s weights."""
    # No confidence blend: a plain view is what the guard compares; best mode's views have none anyway.
    model = RifeInterpolator(device=str(like.device), scale=scale, quality=quality, confidence=None,
                             precision=like.precision)
    model.network.load_state_dict(network.state_dict())
    return model


def adapt(model: RifeInterpolator, triplets: Sequence[Triplet], scale: float, settings: AdaptSettings = AdaptSettings(),
          step_done: StepCallback | None = None, cancelled: Callable[[], bool] | None = None) -> Adaptation | None:
    """Fine-tune a copy of ``model``'s network on ``triplets`` (see the module) and guard it; None when there
    are too few to teach anything. ``model`` itself is left as it is."""
    if len(triplets) < settings.min_triplets:
        return None
    started = time.process_time()
    train, guard = split(triplets, settings.guard_every)
    network = IFNet().to(model.device)
    network.load_state_dict(model.network.state_dict())  # a copy: the shared model stays as it is
    fine_tune(network, train, scale, settings, step_done, cancelled)
    published = plain_view_psnr(with_weights(model.network, model, "fast", scale), guard)
    adapted = plain_view_psnr(with_weights(network, model, "fast", scale), guard)
    return Adaptation(with_weights(network, model, model.quality, model.scale), adapted > published, settings.steps,
                      published, adapted, time.process_time() - started)
