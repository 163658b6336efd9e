"""Before/after videos: the original (held at its own timing) beside or across the smoothed result.

``split`` shows one picture divided by a slowly sweeping line (original left, smoothed right);
``side`` puts the two next to each other, ``stack`` one above the other. Each part is labelled
("original 25 fps" / "smoothed 60 fps") in white on a translucent dark box, sized to the picture.
Labels are drawn once with Pillow's bundled TrueType font and then blended into every frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .options import CompareMode

#: One sweep of the split line (centre → right → left → centre) takes this long, in output seconds:
#: slow enough to follow, fast enough that a short clip shows both sides.
SPLIT_SWEEP_PERIOD_S = 4.0
#: The split line stays between these fractions of the width, so both sides always show something.
SPLIT_RANGE = (0.2, 0.8)
#: Line width as a fraction of the picture width (at least 2 pixels).
SPLIT_LINE_FRACTION = 1 / 400
#: Label text height as a fraction of the picture height, within readable pixel bounds.
LABEL_HEIGHT_FRACTION = 0.055
LABEL_MIN_PX, LABEL_MAX_PX = 10, 60
#: On pictures too narrow for LABEL_MIN_PX, text shrinks down to this (tiny, but still legible glyphs).
LABEL_FLOOR_PX = 7
#: A label may take at most this share of its part's width: most of it in side/stack, a half in split
#: (two labels share one picture there).
LABEL_MAX_WIDTH_SHARE = 0.9
SPLIT_LABEL_MAX_WIDTH_SHARE = 0.45
LABEL_BOX_OPACITY = 0.6
#: Padding around the text and distance from the picture's edge, as fractions of the text height.
LABEL_PADDING = 0.4
LABEL_MARGIN = 0.5


def composed_size(width: int, height: int, mode: CompareMode) -> tuple[int, int]:
    """Picture size of a comparison of two ``width × height`` videos."""
    if mode == "side":
        return width * 2, height
    if mode == "stack":
        return width, height * 2
    return width, height


def describe_rate(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def labels_for(input_fps: Fraction, output_fps: Fraction) -> tuple[str, str]:
    """("original 25 fps", "smoothed 60 fps"): short enough for small pictures (slow motion is in the caption)."""
    return f"original {describe_rate(input_fps)} fps", f"smoothed {describe_rate(output_fps)} fps"


@dataclass(frozen=True)
class Label:
    """A pre-rendered label: text coverage and box coverage (0…1), blended into frames."""

    text_alpha: np.ndarray
    box_alpha: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.box_alpha.shape
        return width, height

    def draw(self, image: np.ndarray, x: int, y: int) -> None:
        """Blend into ``image`` (in place) with its top-left corner at (x, y), clipped to the picture."""
        height, width = image.shape[:2]
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(width, x + self.size[0]), min(height, y + self.size[1])
        if x0 >= x1 or y0 >= y1:
            return
        box = self.box_alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
        text = self.text_alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
        region = image[y0:y1, x0:x1].astype(np.float32)
        region = region * (1 - box)  # darken behind the text
        region = region * (1 - text) + 255 * text  # white text
        image[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)


def render_label(text: str, picture_height: int, max_width: int, smallest_px: int = LABEL_MIN_PX) -> Label:
    """White ``text`` on a rounded translucent box, sized for a picture ``picture_height`` tall and
    shrunk (not below ``smallest_px``) until it is at most ``max_width`` wide."""
    text_px = int(np.clip(round(picture_height * LABEL_HEIGHT_FRACTION), LABEL_MIN_PX, LABEL_MAX_PX))
    while True:
        font = ImageFont.load_default(size=text_px)
        left, top, right, bottom = font.getbbox(text)
        pad = max(2, round(text_px * LABEL_PADDING))
        box_w, box_h = right - left + 2 * pad, bottom - top + 2 * pad
        if box_w <= max_width or text_px <= smallest_px:
            break
        text_px -= 1
    box = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(box).rounded_rectangle((0, 0, box_w - 1, box_h - 1), radius=pad, fill=255)
    glyphs = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(glyphs).text((pad - left, pad - top), text, font=font, fill=255)
    return Label(text_alpha=np.asarray(glyphs, dtype=np.float32) / 255,
                 box_alpha=np.asarray(box, dtype=np.float32) / 255 * LABEL_BOX_OPACITY)


@dataclass
class Comparison:
    """Composes before/after frames for one video (labels rendered once, on first use)."""

    mode: CompareMode
    labels: tuple[str, str]
    fps: Fraction
    _rendered: dict[tuple[int, int], tuple[Label, Label]] = field(default_factory=dict, repr=False)

    def rendered_labels(self, width: int, height: int) -> tuple[Label, Label]:
        """Labels for parts of ``width × height``; in split mode both share one picture's width."""
        key = (width, height)
        if key in self._rendered:
            return self._rendered[key]
        pair = None
        if self.mode == "split":  # both on the top row, if that leaves them readable
            room = int(width * SPLIT_LABEL_MAX_WIDTH_SHARE)
            pair = tuple(render_label(text, height, room) for text in self.labels)
            if any(label.size[0] > room for label in pair):
                pair = None
        if pair is None:
            room = int(width * LABEL_MAX_WIDTH_SHARE)
            pair = tuple(render_label(text, height, room, LABEL_FLOOR_PX) for text in self.labels)
        self._rendered[key] = pair
        return pair

    def compose(self, original: np.ndarray, smoothed: np.ndarray, index: int) -> np.ndarray:
        """Output frame ``index``: the original and the smoothed picture of the same moment, together."""
        height, width = smoothed.shape[:2]
        before, after = self.rendered_labels(width, height)
        margin = round(before.size[1] * LABEL_MARGIN / (1 + 2 * LABEL_PADDING))
        if self.mode == "split":
            frame = smoothed.copy()
            line_x = self.split_position(width, index)
            frame[:, :line_x] = original[:, :line_x]
            half_line = max(1, round(width * SPLIT_LINE_FRACTION / 2))
            frame[:, max(0, line_x - half_line):line_x + half_line] = 255
            before.draw(frame, margin, margin)
            # Both labels on the top row when they fit; on a narrow picture the second goes bottom right.
            fits_one_row = before.size[0] + after.size[0] + 3 * margin <= width
            after.draw(frame, width - margin - after.size[0], margin if fits_one_row else height - margin - after.size[1])
            return frame
        top_or_left, bottom_or_right = original.copy(), smoothed.copy()
        before.draw(top_or_left, margin, margin)
        after.draw(bottom_or_right, margin, margin)
        join = np.hstack if self.mode == "side" else np.vstack
        return np.ascontiguousarray(join([top_or_left, bottom_or_right]))

    def split_position(self, width: int, index: int) -> int:
        """Where the split line is at output frame ``index``: starts centred, sweeps right, then left."""
        low, high = SPLIT_RANGE
        phase = math.sin(2 * math.pi * float(index / self.fps) / SPLIT_SWEEP_PERIOD_S)
        return int(round(width * ((low + high) / 2 + (high - low) / 2 * phase)))

    def frames(self, originals: Iterable[np.ndarray], smoothed: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Zip the held originals with the smoothed frames, composing each pair."""
        for index, (before, after) in enumerate(zip(originals, smoothed, strict=True)):
            yield self.compose(before, after, index)
