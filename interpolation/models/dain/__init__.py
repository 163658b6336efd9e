"""DAIN (Depth-Aware Video Frame Interpolation, Bao et al., CVPR 2019) in plain PyTorch.

- :mod:`.layers`: the original's custom CUDA layers as tensor ops (correlation, PWC warp,
  depth-aware flow projection, adaptive filter interpolation);
- :mod:`.pwcnet`, :mod:`.megadepth`: the flow and depth networks it builds on;
- :mod:`.network`: the :class:`DAIN` network, key-compatible with the published ``best.pth``;
- :mod:`.interpolator`: :class:`DainInterpolator`, the engine's model interface.
"""

from .interpolator import DainInterpolator, load_dain
from .network import DAIN

__all__ = ["DAIN", "DainInterpolator", "load_dain"]
