"""Side-by-side pictures of a generated clip: reference | pose map | hand render |
generated | ground truth, per frame (GIF) and as a contact sheet (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from signgen.errors import InvalidInputError

GAP, GAP_COLOUR, TEXT_COLOUR = 2, 64, (255, 255, 255)


def tile_streams(streams: Sequence[np.ndarray], labels: Sequence[str]) -> np.ndarray:
    """Equal-size (T,H,W,3) uint8 streams (a (H,W,3) image is held for every frame) ->
    (T,H',W',3) uint8: the streams left to right with a label row on top."""
    if len(streams) != len(labels) or not streams:
        raise InvalidInputError("tile_streams needs one label per stream")
    length = max(len(s) if np.asarray(s).ndim == 4 else 1 for s in streams)
    clips = []
    for s in streams:
        s = np.asarray(s)
        if s.ndim == 3:
            s = np.repeat(s[None], length, axis=0)
        if s.ndim != 4 or s.dtype != np.uint8 or len(s) != length:
            raise InvalidInputError(f"every stream must be ({length},H,W,3) uint8, got "
                                    f"{s.dtype} {s.shape}")
        clips.append(s)
    height, width = clips[0].shape[1:3]
    if any(c.shape[1:3] != (height, width) for c in clips):
        raise InvalidInputError("streams differ in frame size")
    font = ImageFont.load_default()
    label_height = font.getbbox("Hg")[3] + 2 * GAP
    header = Image.new("RGB", (len(clips) * (width + GAP) + GAP, label_height), (GAP_COLOUR,) * 3)
    draw = ImageDraw.Draw(header)
    for k, label in enumerate(labels):
        draw.text((GAP + k * (width + GAP), GAP), label, fill=TEXT_COLOUR, font=font)
    out = np.full((length, label_height + height + GAP, header.width, 3), GAP_COLOUR, np.uint8)
    out[:, :label_height] = np.asarray(header)
    for k, clip in enumerate(clips):
        left = GAP + k * (width + GAP)
        out[:, label_height:label_height + height, left:left + width] = clip
    return out


def save_gif(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """(T,H,W,3) uint8 -> looping GIF (delays are in 1/100 s, so fps is approximate)."""
    images = [Image.fromarray(f) for f in frames]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0)


def contact_sheet(tiled: np.ndarray, num_rows: int = 4) -> np.ndarray:
    """``num_rows`` evenly spaced time steps of a tiled clip stacked vertically."""
    picks = np.linspace(0, len(tiled) - 1, min(num_rows, len(tiled))).round().astype(int)
    return np.concatenate([tiled[i] for i in picks], axis=0)
