"""Tiny test media made with the real ffmpeg binary, and readers for what the engine wrote."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from interpolation.ffmpeg_binary import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True)


def make_testsrc(path: Path, *, size: str = "96x64", fps: str = "25", seconds: float = 1.0,
                 audio: bool = False, codec_args: tuple[str, ...] = ("-c:v", "libx264", "-pix_fmt", "yuv420p"),
                 source: str = "testsrc2") -> Path:
    """A clip of one of ffmpeg's test patterns (optionally with a 440 Hz tone as long as the video)."""
    args = ["-f", "lavfi", "-i", f"{source}=s={size}:r={fps}:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                 "-c:a", "aac", "-b:a", "96k"]
    ffmpeg(*args, *codec_args, str(path))
    return path


def write_frames(path: Path, frames: list[np.ndarray], fps: Fraction | int | str,
                 codec_args: tuple[str, ...] = ("-c:v", "ffv1", "-pix_fmt", "bgr0")) -> Path:
    """Encode RGB frames (default: exactly lossless FFV1 in Matroska)."""
    height, width = frames[0].shape[:2]
    rate = Fraction(fps)
    process = subprocess.Popen(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{width}x{height}", "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0",
         *codec_args, str(path)],
        stdin=subprocess.PIPE,
    )
    assert process.stdin is not None
    for frame in frames:
        process.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
    process.stdin.close()
    assert process.wait() == 0
    return path


def read_video(path: Path) -> tuple[list[float], list[np.ndarray]]:
    """Every frame's time (seconds from the file start) and RGB picture."""
    times, images = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(float(frame.pts * frame.time_base))
            images.append(frame.to_ndarray(format="rgb24"))
    return times, images


def video_rate(path: Path) -> Fraction:
    with av.open(str(path)) as container:
        return Fraction(container.streams.video[0].average_rate)


def audio_duration(path: Path) -> float | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        last_end = 0.0
        for packet in container.demux(stream):
            if packet.pts is not None and packet.duration:
                last_end = max(last_end, float((packet.pts + packet.duration) * stream.time_base))
        return last_end


def read_png_dir(directory: Path) -> list[np.ndarray]:
    names = sorted(directory.glob("*.png"))
    return [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in names]


def textured(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth random texture (blurred noise) that optical flow can lock on to."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def moving_square_frames(count: int, *, width: int = 128, height: int = 96, square: int = 24,
                         step: int = 8, start: tuple[int, int] = (16, 30)) -> list[np.ndarray]:
    """A textured square moving ``step`` px right per frame over a textured background."""
    background = textured(height, width, seed=1)
    patch = textured(square, square, seed=2) // 2 + 128
    frames = []
    for k in range(count):
        frame = background.copy()
        x, y = start[0] + k * step, start[1]
        frame[y:y + square, x:x + square] = patch
        frames.append(frame)
    return frames
