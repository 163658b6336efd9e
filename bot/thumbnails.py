"""A result's thumbnail for the chat: its first frame as a small JPEG (Telegram shows it before the
video has loaded; without one a client shows a blank box or makes its own later)."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

from PIL import Image

from interpolation.errors import EngineError
from interpolation.video_io import decode

log = logging.getLogger(__name__)

#: Telegram's limits on a thumbnail: JPEG, at most 320 px a side, under 200 kB.
MAX_SIDE = 320
JPEG_QUALITY = 85


def thumbnail_jpeg(video: Path, max_side: int = MAX_SIDE) -> bytes | None:
    """The first frame of ``video``, scaled to fit ``max_side`` (aspect kept), as JPEG bytes; None
    when the file cannot be read (the result is still sent, without a thumbnail)."""
    try:
        with contextlib.closing(decode(video)) as frames:
            first = next(frames, None)
    except (EngineError, OSError) as error:
        log.warning("no thumbnail for %s: %s", video.name, error)
        return None
    if first is None:
        return None
    image = Image.fromarray(first.image)
    image.thumbnail((max_side, max_side))
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG", quality=JPEG_QUALITY)
    return jpeg.getvalue()
