"""The interpolation methods compared, behind one small interface: kept frames in, midpoints out.

Every method sees exactly the same kept frames: our models through the engine's
``FrameInterpolator`` interface, and ffmpeg's ``minterpolate`` through the engine's ffmpeg binary,
fed the frames losslessly (raw RGB in a file, raw RGB back through a pipe).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import numpy as np

from interpolation import ffmpeg_binary
from interpolation.models import FrameInterpolator, create_model

Frame = np.ndarray

#: ffmpeg's motion-compensated interpolation as the issue asks for it: motion-compensated
#: interpolation with overlapped-block motion compensation, bidirectional motion estimation and
#: variable-size block motion compensation — its best-quality settings.
MINTERPOLATE_SETTINGS = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"
#: minterpolate only takes planar YUV; 4:4:4 keeps full colour resolution, so the only loss on the
#: way in and out is YUV rounding (well above 50 dB PSNR, far below any method's error).
MINTERPOLATE_PIXEL_FORMAT = "yuv444p"
#: Generous limit for one ffmpeg run over a case (a 720p case takes seconds).
FFMPEG_TIMEOUT_S = 600.0
#: Models run by name through ``create_model``, in the order of the report's columns.
MODEL_METHODS = ("blend", "flow", "rife", "rife-best")
#: Report names of model settings other than a model's default: name → (model, quality).
MODEL_VARIANTS = {"rife-best": ("rife", "best")}


class Method(Protocol):
    """Produces the frame halfway between each pair of neighbouring kept frames."""

    name: str

    def midpoints(self, kept: Sequence[Frame], fps: Fraction) -> list[Frame]: ...

    def close(self) -> None: ...


@dataclass
class ModelMethod:
    """One of our models: ``interpolate(a, b, [0.5])`` for each neighbouring pair, in order."""

    name: str
    model: FrameInterpolator

    def midpoints(self, kept: Sequence[Frame], fps: Fraction) -> list[Frame]:
        # The same frame objects are passed on, so models that cache a frame's encoding reuse it as
        # they would in the engine.
        return [self.model.interpolate(a, b, [0.5])[0] for a, b in zip(kept, kept[1:])]

    def close(self) -> None:
        self.model.close()


@dataclass
class MinterpolateMethod:
    """ffmpeg ``minterpolate`` doubling the rate of the kept frames; the odd output frames are midpoints."""

    name: str = "minterpolate"
    settings: str = MINTERPOLATE_SETTINGS

    def midpoints(self, kept: Sequence[Frame], fps: Fraction) -> list[Frame]:
        height, width = kept[0].shape[:2]
        with tempfile.TemporaryDirectory(prefix="smoothbot-bench-mi-") as tmp:
            raw = Path(tmp) / "kept.rgb"
            with raw.open("wb") as f:
                # minterpolate stops at the last input timestamp; the last kept frame is written twice
                # so that the stream lasts long enough to give the midpoint of the last real pair.
                for frame in [*kept, kept[-1]]:
                    f.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
            doubled = fps * 2
            argv = [*ffmpeg_binary.base_args(), "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                    "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", str(raw),
                    "-vf", f"format={MINTERPOLATE_PIXEL_FORMAT},minterpolate=fps={doubled.numerator}/"
                           f"{doubled.denominator}:{self.settings}",
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
            result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg minterpolate failed: {ffmpeg_binary.stderr_summary(result.stderr)}")
        frame_bytes = width * height * 3
        count = len(result.stdout) // frame_bytes
        frames = np.frombuffer(result.stdout[:count * frame_bytes], np.uint8).reshape(count, height, width, 3)
        # Output frame 2k sits on kept frame k (copied through), 2k + 1 halfway to the next.
        wanted = len(kept) - 1
        if count < 2 * wanted:
            raise RuntimeError(f"ffmpeg minterpolate returned {count} frames for {len(kept)} kept frames")
        return [np.ascontiguousarray(frames[2 * k + 1]) for k in range(wanted)]

    def close(self) -> None:
        pass


@dataclass
class Methods:
    """The methods that could be built, and a note for each one that could not."""

    methods: list[Method] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        for method in self.methods:
            method.close()


def build_methods(dain_weights: Path | None = None, names: Sequence[str] | None = None) -> Methods:
    """blend, minterpolate, flow, rife (and dain with weights), skipping with a note what is missing.

    ``names`` restricts the set (in the standard order).
    """
    standard = ["blend", "minterpolate", "flow", "rife", "rife-best", "dain"]
    wanted = list(names) if names is not None else standard
    built = Methods()
    for name in standard:
        if name not in wanted:
            continue
        if name == "minterpolate":
            built.methods.append(MinterpolateMethod())
            continue
        if name == "dain" and dain_weights is None:
            built.notes.append("dain: not run (give --dain-weights PATH to include it)")
            continue
        model, note = try_model(name, dain_weights if name == "dain" else None)
        if model is None:
            built.notes.append(note)
        else:
            built.methods.append(ModelMethod(name, model))
    return built


def try_model(name: str, weights: Path | None = None) -> tuple[FrameInterpolator | None, str]:
    """The model, or ``None`` and a one-line reason (not importable yet, weights missing, ...)."""
    model_name, quality = MODEL_VARIANTS.get(name, (name, "fast"))
    try:
        return create_model(model_name, weights, quality=quality), ""
    except ImportError as error:
        return None, f"{name}: not available in this checkout ({error})"
    except Exception as error:  # the engine's own errors carry one-line human messages
        return None, f"{name}: could not be built: {error}"


def timed_midpoints(method: Method, kept: Sequence[Frame], fps: Fraction) -> tuple[list[Frame], float]:
    """The midpoints and the wall seconds the method took for all of them."""
    started = time.perf_counter()
    frames = method.midpoints(kept, fps)
    return frames, time.perf_counter() - started
