"""RIFE's full-size warp-and-join steps as compiled C kernels (``warp_kernels.c``), for CPU float32.

At 480p about a third of a forward pass was memory-bound work on full-size maps: warps, resizes and
the joins that build the fine blocks' inputs, and the warp and mix that make the output frame. The
kernels do each of those in one pass, and write the block input channels-last, the layout its
convolution reads fastest; they read the blocks' outputs where the convolutions leave them (as the
phases of each block's last deconvolution), and also turn decoded frames into the network's input
and its output back into 8-bit frames (see the C file for what each computes).

The C file is compiled on first use with the machine's C compiler, for this CPU (``-march=native``:
machines here range from AVX2 to AVX-512), and cached next to the weights, keyed by the source, the
compiler and the CPU. Without a compiler, or with ``SMOOTHBOT_FUSED_WARP=0``, :func:`kernels` is None
and the network runs the same steps as PyTorch ops; both paths are tested against each other.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from . import weights as weights_files

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("warp_kernels.c")
#: Set to 0 to run the PyTorch ops instead (A/B measurements, or a suspected kernel fault).
ENABLE_ENV = "SMOOTHBOT_FUSED_WARP"
#: -O3 vectorises the per-channel loops; no -ffast-math, so rounding stays PyTorch's.
FLAGS = ("-O3", "-std=c11", "-shared", "-fPIC")
CPU_FLAGS = ("-march=native",)
COMPILE_TIMEOUT_S = 120
#: A prepared frame's channels (picture and encoding), and the floats per pixel the kernels read.
SIDE_CHANNELS, SIDE_PIXEL = 7, 8
#: Channels of a fine block's input, as the C file lays them out.
BLOCK_INPUT_CHANNELS = 28
#: What a kernel returns when its scratch allocation fails.
OUT_OF_MEMORY = -1
#: Below this many output rows per thread, splitting the work costs more than it saves.
MIN_ROWS_PER_THREAD = 16

_I64, _FLOAT, _INT, _PTR = ctypes.c_int64, ctypes.c_float, ctypes.c_int, ctypes.c_void_p
_MAP = (_PTR, _I64, _I64, _I64)
_SIDES = (_PTR, _PTR, _I64)


class Kernels:
    """The loaded library: typed calls on tensors, split across the calling thread's torch threads."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._block_input = library.block_input
        self._block_input.argtypes = (*_SIDES, *_MAP, *_MAP, _FLOAT, _INT, _INT, _INT, _INT, _INT, _INT, _PTR, _INT,
                                      _INT, _INT)
        self._block_input.restype = None
        self._final_frame = library.final_frame
        self._final_frame.argtypes = (*_SIDES, *_MAP, *_MAP, _INT, _INT, _INT, _INT, _PTR, _INT, _INT, _INT)
        self._final_frame.restype = None
        self._warped_sides = library.warped_sides
        self._warped_sides.argtypes = (*_SIDES, *_MAP, _INT, _INT, _PTR, _INT, _INT)
        self._warped_sides.restype = None
        self._enlarged_input = library.enlarged_input
        self._enlarged_input.argtypes = (_PTR, *_MAP, *_MAP, _FLOAT, _INT, _INT, _INT, _INT, _INT, _PTR, _INT, _INT)
        self._enlarged_input.restype = None
        self._add_enlarged = library.add_enlarged
        self._add_enlarged.argtypes = (_PTR, _INT, *_MAP, _INT, _INT, _INT, _INT, _INT, _INT, _INT)
        self._add_enlarged.restype = _INT  # -1: out of memory
        self._encoding_into = library.encoding_into
        self._encoding_into.argtypes = (_PTR, _I64, *_MAP, _INT, _INT, _INT)
        self._encoding_into.restype = None
        self._picture_into = library.picture_into
        self._picture_into.argtypes = (_PTR, _I64, _INT, _INT, _PTR, _I64, _PTR, _INT, _INT, _INT, _INT)
        self._picture_into.restype = None
        self._to_pixels = library.to_pixels
        self._to_pixels.argtypes = (*_MAP, _INT, _INT, _PTR, _INT, _INT)
        self._to_pixels.restype = None

    def block_input(self, side0: torch.Tensor, side1: torch.Tensor, flow: torch.Tensor, t: torch.Tensor,
                    previous: torch.Tensor, factor: int, region: tuple[int, int] | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A refining block's 28 input channels at ``1/factor`` (1 or even) of the frame, channels-last.

        ``side0``/``side1``: ``(1, 7, H, W)`` prepared frames; ``flow``: ``(B, 4, H, W)``; ``t``:
        ``(B, 1, 1, 1)``; ``previous``: the previous block's output as phases (:func:`rife.shuffled`),
        ``(B, 208, H/8f + 1, W/8f + 1)`` or its region's part (its mask and features are what this block is
        handed).
        ``region``: the rows and columns wanted, from the top left (all ``H/f`` × ``W/f`` by default).
        ``dtype``: float32, or bfloat16 (each value rounded as ``Tensor.to`` rounds it) for a block whose
        convolutions run in bfloat16: half the bytes written, and no conversion pass of its own.
        """
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"block inputs are float32 or bfloat16, not {dtype}")
        batch, _, height, width = flow.shape
        rows, columns = region or (height // factor, width // factor)
        side0, side1 = _in_side_layout(side0), _in_side_layout(side1)
        out = torch.empty((batch, rows, columns, BLOCK_INPUT_CHANNELS), dtype=dtype)
        times = t.reshape(-1).tolist()
        for item in range(batch):
            fixed = (*_sides(side0, side1), *_map(flow[item]), *_map(previous[item]), times[item], factor, height, width,
                     columns, *_in_place_size(previous), out[item].data_ptr(), int(dtype == torch.bfloat16))
            self._in_rows(self._block_input, fixed, rows)
        return out.permute(0, 3, 1, 2)

    def enlarged_input(self, side0: torch.Tensor, side1: torch.Tensor, flow: torch.Tensor, t: torch.Tensor,
                       previous: torch.Tensor, region: tuple[int, int] | None = None) -> torch.Tensor:
        """:meth:`block_input` for a block at twice the frame's size (factor 1/2, small frames), after a
        block at the frame's size (``previous``, ``(B, 208, H/4 + 1, W/4 + 1)`` or its region's part)."""
        batch, _, height, width = flow.shape
        rows, columns = region or (2 * height, 2 * width)
        side0, side1 = _in_side_layout(side0), _in_side_layout(side1)
        warped = torch.empty((height, width, 2 * SIDE_PIXEL))
        out = torch.empty((batch, rows, columns, BLOCK_INPUT_CHANNELS))
        times = t.reshape(-1).tolist()
        for item in range(batch):
            self._in_rows(self._warped_sides, (*_sides(side0, side1), *_map(flow[item]), height, width,
                                               warped.data_ptr()), height)
            fixed = (warped.data_ptr(), *_map(flow[item]), *_map(previous[item]), times[item], height, width, columns,
                     *_in_place_size(previous), out[item].data_ptr())
            self._in_rows(self._enlarged_input, fixed, rows)
        return out.permute(0, 3, 1, 2)

    def final_frame(self, side0: torch.Tensor, side1: torch.Tensor, flow: torch.Tensor,
                    update: torch.Tensor, enlarged: bool = False) -> torch.Tensor:
        """The output frames ``(B, 3, h, w)`` from the flow before the last block and that block's
        output as phases (``(B, 80, h/4 + 1, w/4 + 1)``: the frame's ``H`` × ``W``, or the block's region
        of it, from the top left). ``enlarged``: the last block ran at twice the frame's size
        (:meth:`enlarged_input`), so its output is shrunk to the frame's."""
        batch, _, height, width = flow.shape
        rows, columns = _in_place_size(update)
        if enlarged:
            rows, columns = rows // 2, columns // 2
        side0, side1 = _in_side_layout(side0), _in_side_layout(side1)
        out = torch.empty((batch, 3, rows, columns))
        for item in range(batch):
            fixed = (*_sides(side0, side1), *_map(flow[item]), *_map(update[item]), int(enlarged), height, width,
                     columns, out[item].data_ptr(), rows)
            self._in_rows(self._final_frame, fixed, rows)
        return out

    def add_enlarged(self, flow: torch.Tensor | None, update: torch.Tensor, factor: int,
                     size: tuple[int, int]) -> torch.Tensor:
        """The full-size flow ``(B, 4, H, W)`` after a block at ``1/factor`` of the frame: ``flow`` (None
        before the first block, as if zero) plus the block's flow update enlarged, in place where ``flow``
        is given; ``size`` is ``(H, W)``.

        ``update``: the block's output as phases, ``(B, 16k, H/4f + 1, W/4f + 1)``, or the part for its
        region (from the top left): only that part of the flow changes.
        """
        batch = update.shape[0]
        small_height, small_width = _in_place_size(update)
        height, width = size
        rows = min(height, factor * small_height)
        whole = rows == height and factor * small_width >= width
        target = (torch.empty if whole else torch.zeros)((batch, 4, height, width)) if flow is None else flow
        assert target.is_contiguous()
        for item in range(batch):
            fixed = (target[item].data_ptr(), int(flow is not None), *_map(update[item]), factor, height, width,
                     small_height, small_width)
            self._in_rows(self._add_enlarged, fixed, rows)
        return target

    def encoding_into(self, side: torch.Tensor, phases: torch.Tensor) -> None:
        """Fill the encoding channels (3–6) of ``side`` (from :func:`side_buffer`) with the encoding
        from its phases (:func:`rife.deconvolved`), ``(1, 16, H/2 + 1, W/2 + 1)``."""
        assert has_side_layout(side)
        height, width = side.shape[2:]
        self._in_rows(self._encoding_into, (side.data_ptr(), side.stride(2), *_map(phases[0]), width), height)

    def picture(self, frame: np.ndarray, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A decoded frame (``(h, w, 3)`` uint8 RGB) in [0, 1], padded to ``height`` × ``width`` with
        zeros (as Practical-RIFE pads): a prepared frame's buffer (:func:`side_buffer`) with the
        picture channels filled (the encoding is :meth:`encoding_into`'s), and the same picture as the
        encoder's ``(1, 3, height, width)`` input. One pass, where the PyTorch ops took five."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        side = side_buffer(height, width, cleared=False)
        planes = torch.empty((1, 3, height, width))
        fixed = (frame.ctypes.data, frame.strides[0], frame.shape[0], frame.shape[1], side.data_ptr(), side.stride(2),
                 planes.data_ptr(), height, width)
        self._in_rows(self._picture_into, fixed, height)
        return side, planes

    def to_pixels(self, images: torch.Tensor, views: int, height: int, width: int) -> list[np.ndarray]:
        """The top-left ``height`` × ``width`` of ``images`` (``(B, 3, H, W)``, each the sum of ``views``
        frames in [0, 1]) as B uint8 RGB frames: their mean, rounded as :func:`rife.to_frame` rounds."""
        out = np.empty((images.shape[0], height, width, 3), dtype=np.uint8)
        for item in range(images.shape[0]):
            self._in_rows(self._to_pixels, (*_map(images[item]), views, width, out[item].ctypes.data), height)
        return list(out)

    @staticmethod
    def _in_rows(function: ctypes._CFuncPtr, fixed: tuple, rows: int) -> None:
        # ctypes releases the GIL during the call, so plain threads run the row ranges in parallel.
        # The calling thread's torch setting decides: an engine lane has one thread, a lone pair all.
        threads = max(1, min(torch.get_num_threads(), rows // MIN_ROWS_PER_THREAD))
        if threads == 1:
            results = [function(*fixed, 0, rows)]
        else:
            bounds = [rows * part // threads for part in range(threads + 1)]
            results = list(_pool().map(lambda part: function(*fixed, bounds[part], bounds[part + 1]), range(threads)))
        if any(result == OUT_OF_MEMORY for result in results):
            raise MemoryError(f"fused warp kernel {function.__name__}: out of memory")


def usable(*tensors: torch.Tensor) -> bool:
    """Whether the kernels can take these tensors: CPU float32, no autograd, kernels compiled."""
    return (all(x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad for x in tensors)
            and kernels() is not None)


@functools.cache
def kernels() -> Kernels | None:
    """The compiled kernels, built on first use; None where they cannot be (the ops run instead)."""
    if os.environ.get(ENABLE_ENV, "1") == "0":
        return None
    try:
        return Kernels(ctypes.CDLL(str(build())))
    except (OSError, subprocess.SubprocessError, KernelBuildError) as error:
        log.warning("fused warp kernels unavailable, using PyTorch ops (slower): %s", error)
        return None


class KernelBuildError(RuntimeError):
    """No C compiler, or it failed on the kernels' source."""


def build() -> Path:
    """The shared library for this source, compiler and CPU: from the cache, or compiled now."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise KernelBuildError("no C compiler (cc or gcc) on PATH")
    flags = [*FLAGS, *CPU_FLAGS] if _accepts(compiler, CPU_FLAGS) else list(FLAGS)
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), _version(compiler).encode(), " ".join(flags).encode(), _cpu().encode()):
        key.update(part)
    library = cache_dir() / f"warp_kernels-{key.hexdigest()[:16]}.so"
    if library.is_file():
        return library
    library.parent.mkdir(parents=True, exist_ok=True)
    # Compiled beside its final name and moved in place, so a concurrent process never loads half a file.
    with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
        built = Path(scratch) / library.name
        result = subprocess.run([compiler, *flags, str(SOURCE), "-o", str(built), "-lm"], capture_output=True,
                                text=True, timeout=COMPILE_TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise KernelBuildError(f"{compiler} failed on {SOURCE.name}: {result.stderr.strip()[-500:]}")
        os.replace(built, library)
    log.info("compiled fused warp kernels: %s", library)
    return library


def cache_dir() -> Path:
    """Compiled kernels live beside the weights cache (``$SMOOTHBOT_CACHE_DIR``)."""
    return weights_files.cache_dir().parent / "kernels"


def _accepts(compiler: str, flags: tuple[str, ...]) -> bool:
    probe = subprocess.run([compiler, *flags, "-x", "c", "-E", "-"], input="", capture_output=True, text=True,
                           timeout=COMPILE_TIMEOUT_S, check=False)
    return probe.returncode == 0


def _version(compiler: str) -> str:
    return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S,
                          check=False).stdout


def _cpu() -> str:
    """What -march=native compiles for: the CPU's feature flags (a cache built on another CPU may not run)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {flags.strip()}"


def side_buffer(height: int, width: int, cleared: bool = True) -> torch.Tensor:
    """Room for a prepared frame, ``(1, 7, H, W)``, laid out as the kernels read it: each pixel's 7
    channels in a row, padded to :data:`SIDE_PIXEL` floats (one vector load per pixel).

    ``cleared``: zeros, padding included; otherwise the caller writes every float (as :meth:`Kernels.picture`).
    """
    padded = (torch.zeros if cleared else torch.empty)((1, height, width, SIDE_PIXEL))
    return padded.permute(0, 3, 1, 2)[:, :SIDE_CHANNELS]


def has_side_layout(side: torch.Tensor) -> bool:
    height, width = side.shape[2:]
    return side.stride()[1:] == (1, width * SIDE_PIXEL, SIDE_PIXEL)


def _in_side_layout(side: torch.Tensor) -> torch.Tensor:
    if has_side_layout(side):
        return side
    copy = side_buffer(*side.shape[2:])
    return copy.copy_(side)


def _sides(side0: torch.Tensor, side1: torch.Tensor) -> tuple:
    """Pointers to both prepared frames and their row stride; the caller keeps the tensors alive."""
    return (side0.data_ptr(), side1.data_ptr(), side0.stride(2))


def _in_place_size(phases: torch.Tensor) -> tuple[int, int]:
    """Height and width of a block's output from its phases' (see :func:`rife.shuffled`)."""
    return 4 * (phases.shape[2] - 1), 4 * (phases.shape[3] - 1)


def _map(x: torch.Tensor) -> tuple:
    """A ``(C, H, W)`` float32 view as the C side's Map: pointer and element strides."""
    return (x.data_ptr(), *x.stride())


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="fused-warp")
