"""Convolutions with their activation (and residual sum) fused, through oneDNN, for CPU inference.

The RIFE blocks are chains of 3×3 convolutions, each followed by a LeakyReLU and, in the residual
blocks, a per-channel gain and a sum with the input. Run as separate PyTorch ops, every one of those
is another pass over a feature map that no longer fits in cache; oneDNN applies them while the
convolution's output is still in registers. Channels-last (NHWC) feature maps are what oneDNN's CPU
convolutions run fastest on; the callers switch to them once, after a block's first convolution.

Measured on this project's 2-core CPU at 480p, eight residual convolutions in a row: channels-last
with the fused gain and sum took 1.14–1.36× less time than the plain NCHW ops (the larger gain on the
finest, 32-channel block). bfloat16 feature maps run the same fused ops with the weights cast to
bfloat16 (float32 accumulation): on a CPU with AMX tiles 5–8× faster than float32, with AVX-512
BF16 alone a frame in 0.67–0.74× of float32's time (see :func:`.rife.conv_dtype`). Elsewhere (CUDA, other dtypes, no oneDNN, autograd) the functions compute
the same thing with plain ops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F

#: The slope of every LeakyReLU in the network.
LEAKY_SLOPE = 0.2
_SAME_3X3 = [1, 1]  # padding (and dilation) lists as oneDNN's ops take them


#: Input dtypes the fused convolutions take: float32, and bfloat16 (weights cast to it, bias and
#: accumulation in float32), which oneDNN runs on AMX tiles or AVX-512 BF16 where the CPU has them.
FUSED_DTYPES = (torch.float32, torch.bfloat16)


def fusable(x: torch.Tensor) -> bool:
    """Whether oneDNN's fused CPU convolution applies to ``x`` (float32 or bfloat16, on the CPU, no autograd)."""
    return (x.device.type == "cpu" and x.dtype in FUSED_DTYPES and torch.backends.mkldnn.is_available()
            and not (torch.is_grad_enabled() and x.requires_grad))


@functools.cache
def runs_bfloat16() -> bool:
    """Whether this CPU's oneDNN runs bfloat16 convolutions at all: it needs AVX-512 (BW, VL, DQ) or
    AVX-NE-CONVERT, and refuses on an AVX2-only CPU. Tried once on a tiny convolution."""
    if not torch.backends.mkldnn.is_available():
        return False
    x = torch.zeros((1, 8, 4, 4), dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    weight = torch.zeros((8, 8, 3, 3))
    try:
        conv_leaky(x, weight, torch.zeros(8), 1, WeightPacks())
    except RuntimeError:
        return False
    return True


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in the layout the fused convolutions run fastest on (unchanged where they do not apply)."""
    return x.contiguous(memory_format=torch.channels_last) if fusable(x) else x


#: Weight packs kept per convolution, one per input shape, layout and thread count seen (a worker
#: sees few sizes, and one or two thread counts: a lone pair's and its lanes').
PACKS_PER_CONVOLUTION = 8
Weights = tuple[torch.Tensor, torch.Tensor | None]  # weight and bias


class WeightPacks:
    """One convolution's weights in oneDNN's own blocked layout, made once per input shape and thread count.

    Handed plain weights, the fused op reorders them on every call (and the residual convolutions
    first fold their gain in): at 480p that was about 16 ms of a 400 ms single-thread forward pass,
    most of it in the 192-channel block, whose weights outweigh its feature maps. A pack is remade
    when a source parameter changes in place (its version counter moves, e.g. in load_state_dict).
    """

    def __init__(self) -> None:
        self._packs: dict[tuple, Weights] = {}

    def get(self, x: torch.Tensor, stride: int, sources: tuple[torch.Tensor, ...],
            derive: Callable[[], Weights]) -> Weights:
        """The weights ``derive`` makes from ``sources``, packed for inputs shaped like ``x``."""
        # The thread count too: oneDNN picks the blocked layout for the threads it will run on, and a
        # pack made for two threads slowed one-thread engine lanes by about 1.3x.
        key = (tuple(x.shape), x.dtype, is_channels_last(x), stride, torch.get_num_threads(),
               tuple((s.data_ptr(), s._version) for s in sources))
        pack = self._packs.get(key)
        if pack is None:
            weight, bias = derive()
            pack = (torch.ops.mkldnn._reorder_convolution_weight(_in_layout_of(x, weight), _SAME_3X3, [stride, stride],
                                                                 _SAME_3X3, 1, list(x.shape)), bias)
            if len(self._packs) >= PACKS_PER_CONVOLUTION:
                self._packs.clear()
            self._packs[key] = pack  # lanes may race to here: both packs are the same, either one stays
        return pack


def conv_leaky(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1,
               packs: WeightPacks | None = None, input_order: torch.Tensor | None = None) -> torch.Tensor:
    """``LeakyReLU(conv3x3(x))`` with padding 1; the output keeps ``x``'s memory layout.

    ``input_order``: ``x``'s channels are the weight's input channels in this order (the same order
    for every input of one shape: packs are keyed by shape).
    ``packs``: where this convolution's packed weights are kept between calls.
    """
    def derive() -> Weights:
        return (weight if input_order is None else weight.index_select(1, input_order)), bias

    if not fusable(x):
        weight, bias = derive()
        return F.leaky_relu(F.conv2d(x, weight, bias, stride, 1), LEAKY_SLOPE, inplace=True)
    weight, bias = _packed(x, stride, packs, (weight,) if bias is None else (weight, bias), derive)
    return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, _SAME_3X3, [stride, stride], _SAME_3X3, 1,
                                                   "leaky_relu", [LEAKY_SLOPE], None)


def conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, packs: WeightPacks | None = None,
         derive: Callable[[], Weights] | None = None) -> torch.Tensor:
    """``conv3x3(x)`` with padding 1, no activation; ``derive`` makes the weights used from ``weight``
    and ``bias`` (the sources of ``packs``' key)."""
    make = derive or (lambda: (weight, bias))
    if not fusable(x):
        return F.conv2d(x, *make(), 1, 1)
    packed, packed_bias = _packed(x, 1, packs, (weight,) if bias is None else (weight, bias), make)
    return torch.ops.mkldnn._convolution_pointwise(x, packed, packed_bias, _SAME_3X3, [1, 1], _SAME_3X3, 1,
                                                   "none", [], None)


def residual_conv_leaky(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, gain: torch.Tensor,
                        packs: WeightPacks | None = None) -> torch.Tensor:
    """``LeakyReLU(conv3x3(x) · gain + x)``, ``gain`` per output channel (shape ``(1, C, 1, 1)``)."""
    if not fusable(x):
        return F.leaky_relu(F.conv2d(x, weight, bias, 1, 1) * gain + x, LEAKY_SLOPE, inplace=True)

    def folded() -> Weights:
        # conv(x) · g = conv with weights and bias scaled by g: the gain costs no pass of its own.
        per_channel = gain.reshape(-1)
        # The summing op takes its bias in the input's dtype (the plain op takes float32 beside bfloat16).
        return weight * per_channel.view(-1, 1, 1, 1), (bias * per_channel).to(x.dtype)

    scaled, scaled_bias = _packed(x, 1, packs, (weight, bias, gain), folded)
    summed = torch.ops.mkldnn._convolution_pointwise.binary(x, x, scaled, scaled_bias, _SAME_3X3, [1, 1],
                                                            _SAME_3X3, 1, "add", None, None, [], None)
    # oneDNN fuses only ReLU after a sum, so the leaky slope is one in-place pass.
    return F.leaky_relu_(summed, LEAKY_SLOPE)


def _packed(x: torch.Tensor, stride: int, packs: WeightPacks | None, sources: tuple[torch.Tensor, ...],
            derive: Callable[[], Weights]) -> Weights:
    """Packed weights from ``packs``, or the plain derived weights in ``x``'s layout (no cache)."""
    if packs is not None:
        return packs.get(x, stride, sources, derive)
    weight, bias = derive()
    return _in_layout_of(x, weight), bias


def _in_layout_of(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``weight`` in the dtype and memory layout of ``x``."""
    return weight.to(x.dtype).contiguous(memory_format=torch.channels_last if is_channels_last(x) else torch.contiguous_format)


def is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
