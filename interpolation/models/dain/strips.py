"""Row strips: run a local (convolutional) computation over a frame a band of rows at a time.

A band is computed together with ``halo`` extra rows on each side (the receptive-field radius
of what runs on it) and cropped back, so each output row sees exactly the neighbourhood it
would see in a whole-frame run: the result is the same, only the memory is bounded by the band.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


def row_strips(height: int, width: int, pixels: int | None, multiple: int = 1) -> Iterator[slice]:
    """Consecutive row ranges covering ``height`` rows, each about ``pixels`` pixels (all if None).

    Band heights are a multiple of ``multiple`` (so that, e.g., 2 × 2 pooling never straddles a cut).
    """
    rows = height if pixels is None else max(multiple, pixels // width // multiple * multiple)
    for start in range(0, height, rows):
        yield slice(start, min(start + rows, height))


def with_halo(rows: slice, halo: int, height: int) -> tuple[slice, slice]:
    """The rows to compute for ``rows`` (widened by ``halo``, within the image) and where ``rows`` sit in them."""
    start, stop = max(0, rows.start - halo), min(height, rows.stop + halo)
    return slice(start, stop), slice(rows.start - start, rows.stop - start)


def on_rows(compute: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, rows: slice,
            halo: int) -> torch.Tensor:
    """``compute(image)[:, :, rows]``, computing only ``rows`` plus a ``halo`` of context."""
    computed, keep = with_halo(rows, halo, image.shape[2])
    return compute(image[:, :, computed])[:, :, keep]
