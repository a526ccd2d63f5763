"""Looking at SynthSign clips: contact sheets and side-by-side GIFs of a clip's frames,
pose maps and hand renders (all (T,H,W,3) uint8 of one size)."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from signgen.errors import InvalidInputError

_GAP_COLOR = 64  # grey between tiles, so black pose maps and hand renders stay apart
_CAPTION_COLOR = (255, 255, 255)


def _check_streams(frames, pose_maps, hand_renders) -> tuple[np.ndarray, ...]:
    streams = []
    for name, value in (("frames", frames), ("pose_maps", pose_maps),
                        ("hand_renders", hand_renders)):
        array = np.asarray(value)
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise InvalidInputError(f"{name} must be a (T, H, W, 3) uint8 array, got "
                                    f"{array.dtype} {array.shape}")
        if len(array) == 0:
            raise InvalidInputError(f"{name} has no frames")
        streams.append(array)
    if not streams[0].shape == streams[1].shape == streams[2].shape:
        raise InvalidInputError(f"frames, pose_maps and hand_renders must have the same "
                                f"shape, got {[s.shape for s in streams]}")
    return tuple(streams)


def _gap(size: tuple[int, int]) -> int:
    return max(1, min(size) // 64)


def contact_sheet(frames, pose_maps, hand_renders, num_columns: int = 8,
                  caption: str | None = None,
                  frame_labels: Sequence[str] | None = None) -> np.ndarray:
    """One image of a clip: rows frames / pose maps / hand renders at ``num_columns``
    evenly spaced time steps (first and last included; every frame if T is smaller).

    Args:
        frames, pose_maps, hand_renders: (T,H,W,3) uint8 each.
        caption: optional text (e.g. the clip's glosses) in a strip under the sheet.
        frame_labels: optional T strings (e.g. the gloss at each frame); each column
            shows its frame's label above the caption.
    Returns:
        (H',W',3) uint8 with H' = 3H + 4g (+ the text strip), W' = nW + (n+1)g, where n
        is the number of columns and g = max(1, min(H, W) // 64) grey gap pixels.
    """
    frames, pose_maps, hand_renders = _check_streams(frames, pose_maps, hand_renders)
    if isinstance(num_columns, bool) or not isinstance(num_columns, (int, np.integer)) \
            or num_columns < 1:
        raise InvalidInputError(f"num_columns must be a positive integer, got {num_columns!r}")
    num_frames, height, width, _ = frames.shape
    if frame_labels is not None and len(frame_labels) != num_frames:
        raise InvalidInputError(f"frame_labels has {len(frame_labels)} entries for "
                                f"{num_frames} frames")
    # Spacing >= 1 frame, so the rounded times are distinct.
    times = np.rint(np.linspace(0, num_frames - 1, min(num_columns, num_frames))).astype(int)
    gap = _gap((height, width))
    columns = len(times)
    sheet = np.full((3 * height + 4 * gap, columns * width + (columns + 1) * gap, 3),
                    _GAP_COLOR, np.uint8)
    for row, stream in enumerate((frames, pose_maps, hand_renders)):
        top = gap + row * (height + gap)
        for column, t in enumerate(times):
            left = gap + column * (width + gap)
            sheet[top:top + height, left:left + width] = stream[t]
    lines = []
    if frame_labels is not None:
        lines.append([(gap + c * (width + gap), f"{t}: {frame_labels[t]}")
                      for c, t in enumerate(times)])
    if caption:
        lines.append([(gap, caption)])
    if not lines:
        return sheet
    font = ImageFont.load_default()
    line_height = font.getbbox("Hg")[3] + 2 * gap
    strip = Image.new("RGB", (sheet.shape[1], line_height * len(lines)), (0, 0, 0))
    draw = ImageDraw.Draw(strip)
    for i, entries in enumerate(lines):
        for x, text in entries:
            draw.text((x, i * line_height + gap), text, fill=_CAPTION_COLOR, font=font)
    return np.concatenate([sheet, np.asarray(strip)], axis=0)


def side_by_side(frames, pose_maps, hand_renders) -> np.ndarray:
    """(T,H,3W+4g,3) uint8: each time step's frame | pose map | hand render."""
    streams = _check_streams(frames, pose_maps, hand_renders)
    num_frames, height, width, _ = streams[0].shape
    gap = _gap((height, width))
    out = np.full((num_frames, height, 3 * width + 4 * gap, 3), _GAP_COLOR, np.uint8)
    for k, stream in enumerate(streams):
        left = gap + k * (width + gap)
        out[:, :, left:left + width] = stream
    return out


def save_gif(path: str | os.PathLike, frames, pose_maps, hand_renders, fps: float) -> None:
    """Write a looping GIF of :func:`side_by_side` at ``fps`` frames per second.

    GIF stores delays in 1/100 s, so fps is approximate; Pillow merges identical
    consecutive frames into one longer frame.
    """
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps <= 100:
        raise InvalidInputError(f"fps must be a number in (0, 100], got {fps!r}")
    images = [Image.fromarray(frame) for frame in side_by_side(frames, pose_maps, hand_renders)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=round(1000 / fps), loop=0)


def save_png(path: str | os.PathLike, image) -> None:
    """Write an (H,W,3) uint8 image as PNG."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise InvalidInputError(f"image must be an (H, W, 3) uint8 array, got "
                                f"{image.dtype} {image.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


def image_grid(images: Sequence[np.ndarray], labels: Sequence[str] | None = None,
               num_columns: int = 6) -> np.ndarray:
    """Equal-size (H,W,3) uint8 images in a grid, each with an optional label under it."""
    if not len(images):
        raise InvalidInputError("image_grid needs at least one image")
    height, width, _ = images[0].shape
    if any(im.shape != images[0].shape for im in images):
        raise InvalidInputError("image_grid images must all have the same shape")
    font = ImageFont.load_default()
    gap = _gap((height, width))
    label_height = font.getbbox("Hg")[3] + 2 * gap if labels else 0
    rows = -(-len(images) // num_columns)
    cell_h, cell_w = height + label_height + gap, width + gap
    canvas = Image.new("RGB", (num_columns * cell_w + gap, rows * cell_h + gap),
                       (_GAP_COLOR,) * 3)
    draw = ImageDraw.Draw(canvas)
    for i, image in enumerate(images):
        left, top = gap + (i % num_columns) * cell_w, gap + (i // num_columns) * cell_h
        canvas.paste(Image.fromarray(image), (left, top))
        if labels:
            draw.text((left, top + height + gap), labels[i], fill=_CAPTION_COLOR, font=font)
    return np.asarray(canvas)
