"""What machine and software produced the numbers (they are only comparable within one run)."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

#: CPU features that decide which kernels torch and OpenCV can use.
INTERESTING_FLAGS = ("sse4_2", "fma", "avx", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                     "amx_tile")


@dataclass
class Machine:
    cpu_model: str
    logical_cpus: int
    usable_cpus: int
    flags: list[str]
    torch_version: str
    torch_threads: int
    opencv_threads: int
    numpy_version: str
    opencv_version: str
    ffmpeg_version: str
    python_version: str
    commit: str
    date: str
    load_average_start: tuple[float, float, float]
    load_average_end: tuple[float, float, float] | None = None
    #: The dtype of the engine's RIFE convolutions on this CPU (``rife.conv_dtype``, precision "auto"
    #: unless $SMOOTHBOT_RIFE_PRECISION says otherwise): "bfloat16" or "float32".
    rife_convolutions: str = "float32"


def cpu_info() -> tuple[str, list[str]]:
    """Model name and the interesting feature flags from /proc/cpuinfo (Linux)."""
    model: str | None = None
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model is None:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model or platform.processor() or "unknown", [flag for flag in INTERESTING_FLAGS if flag in flags]


def git_commit(repo: Path) -> str:
    """Short commit hash, with "+changes" when the bench or engine differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "bench", "interpolation"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def ffmpeg_version() -> str:
    from interpolation.ffmpeg_binary import ffmpeg_exe

    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True)
    first = (result.stdout.splitlines() or ["unknown"])[0]
    return first.removeprefix("ffmpeg version ").split(" Copyright")[0]


def rife_convolutions() -> str:
    import torch

    from interpolation.models.rife import PRECISION_ENV, conv_dtype

    dtype = conv_dtype(torch.device("cpu"), os.environ.get(PRECISION_ENV) or "auto")
    return str(dtype).removeprefix("torch.")


def describe(repo: Path) -> Machine:
    import cv2
    import numpy
    import torch

    model, flags = cpu_info()
    return Machine(
        cpu_model=model,
        logical_cpus=os.cpu_count() or 0,
        usable_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0,
        flags=flags,
        torch_version=torch.__version__,
        torch_threads=torch.get_num_threads(),
        opencv_threads=cv2.getNumThreads(),
        numpy_version=numpy.__version__,
        opencv_version=cv2.__version__,
        ffmpeg_version=ffmpeg_version(),
        python_version=platform.python_version(),
        commit=git_commit(repo),
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        load_average_start=os.getloadavg(),
        rife_convolutions=rife_convolutions(),
    )
