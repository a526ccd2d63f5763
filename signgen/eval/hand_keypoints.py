"""Hand refinement: re-estimate each hand's 21 keypoints from a native-resolution crop.

The whole-frame :class:`~signgen.eval.keypoints.KeypointEstimator` works on 32x32
heatmaps (stride 4) of a 128 px frame: its body points are good (~2 % of the shoulder
width off) but its hand points are ~3 px off, more than the 2-3 px between fingers, so
handshapes are lost. The second stage here follows the usual top-down whole-body recipe
(body first, then a hand crop at a finer scale, as in DWPose/RTMW's hand branch):

1. the crop centre is the mean of the coarse estimate's confidently in-frame points of
   that hand (averaging 11-21 points cancels much of their individual error);
2. a ``crop_size`` px square is sampled around it at the frame's native scale with
   ``grid_sample`` (bilinear, border padding), so sub-pixel centres cost nothing;
3. :class:`HandRefiner` emits 21 heatmaps at the crop's full resolution (stride 1);
   their soft-argmax gives sub-pixel crop coordinates, mapped back to the frame.

Left hands are mirrored horizontally before the model sees them, so one model learns
the (right-hand) appearance of both; the mirror is part of the crop transform, so
mapping the crop coordinates back through it un-mirrors them.

Crop geometry: crop pixel ``p`` (u, v) maps to frame pixel ``centre + A @ (p - m)``
with ``m = (crop_size - 1) / 2`` and a per-crop 2x2 matrix ``A`` (mirror, zoom,
rotation and the frame's pixel scale; see :func:`crop_transforms`). Pixel convention
as ``PinholeCamera.project``: (u, v) = (column, row), (0, 0) is the centre of the
top-left pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from torch import nn

from signgen.errors import InvalidInputError
from signgen.eval.keypoints import (
    NUM_COCO_WHOLEBODY,
    VISIBLE_CONFIDENCE,
    KeypointEstimator,
    ResidualBlock,
    estimate_keypoints,
    frames_to_signed,
    soft_argmax,
)

NUM_HAND_KEYPOINTS = 21
# COCO-WholeBody: 91-111 the signer's left hand, 112-132 the right hand (wrist first).
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)
# (hand, mirrored?): left hands are mirrored to look like right hands.
HANDS = ((LEFT_HAND, True), (RIGHT_HAND, False))
# A hand is refined when the coarse estimator is confident about a majority of its points.
MIN_SEEN_POINTS = NUM_HAND_KEYPOINTS // 2 + 1


@dataclass
class HandOutput(BaseOutput):
    """What :class:`HandRefiner` returns.

    Attributes:
        heatmaps: (N,21,S,S) float logits, one per hand keypoint at crop resolution.
        keypoints: (N,21,2) float soft-argmax (u, v) in crop pixels.
    """

    heatmaps: torch.Tensor = None
    keypoints: torch.Tensor = None


class HandRefiner(ModelMixin, ConfigMixin):
    """Right-hand crop (N,3,S,S) in [-1,1] -> 21 hand keypoints, S = ``crop_size``.

    A small encoder-decoder that never goes below S/4 (a 40 px crop holds a ~15 px hand;
    the fingers need the full resolution, the S/4 stage gives the context to tell them
    apart) and upsamples back to stride 1 with skip connections.

    Args:
        crop_size: crop side in pixels; a multiple of 2 ** (len(channels) - 1).
        frame_size: side of the frames the crops were cut from in training; crops of
            other frame sizes are cut over the same fraction of the frame (see
            :func:`refine_hands`).
        channels: widths of the stages; stage i works at S / 2**i (2 or 3 stages).
    """

    @register_to_config
    def __init__(self, crop_size: int = 40, frame_size: int = 128,
                 channels: Sequence[int] = (24, 48, 96)) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        depth = len(channels)
        if depth not in (2, 3) or min(channels) < 1:
            raise InvalidInputError(f"channels needs 2 or 3 positive widths (the lowest "
                                    f"stage is at crop_size / 4), got {channels}")
        if crop_size < 2 ** depth or crop_size % (2 ** (depth - 1)):
            raise InvalidInputError(f"crop_size {crop_size} must be a multiple of "
                                    f"2**(len(channels) - 1) = {2 ** (depth - 1)}")
        if frame_size < 1:
            raise InvalidInputError(f"frame_size must be >= 1, got {frame_size}")
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU())
        self.down = nn.ModuleList([ResidualBlock(channels[0], channels[0])])
        for i in range(1, depth):
            self.down.append(ResidualBlock(channels[i - 1], channels[i], stride=2))
        # A second block at the coarsest stage: its 3x3 convs then span the whole crop.
        self.middle = ResidualBlock(channels[-1], channels[-1])
        self.skip = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(depth - 1):
            wide, narrow = channels[depth - 1 - i], channels[depth - 2 - i]
            self.skip.append(nn.Conv2d(narrow, wide, 1, bias=False))
            self.up.append(ResidualBlock(wide, narrow))
        self.head = nn.Sequential(nn.Conv2d(channels[0], channels[0], 3, 1, 1), nn.ReLU(),
                                  nn.Conv2d(channels[0], NUM_HAND_KEYPOINTS, 1))

    def forward(self, crops: torch.Tensor) -> HandOutput:
        """crops (N,3,S,S) float in [-1,1] of right hands (left ones mirrored) ->
        :class:`HandOutput`."""
        size = self.config.crop_size
        if crops.ndim != 4 or tuple(crops.shape[1:]) != (3, size, size):
            raise InvalidInputError(f"crops must have shape (N, 3, {size}, {size}), "
                                    f"got {tuple(crops.shape)}")
        features = []
        h = self.stem(crops)
        for block in self.down:
            h = block(h)
            features.append(h)
        h = self.middle(h)
        for i, (skip, block) in enumerate(zip(self.skip, self.up, strict=True)):
            h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
            h = block(h + skip(features[-2 - i]))
        heatmaps = self.head(h)  # n 21 s s
        return HandOutput(heatmaps=heatmaps, keypoints=soft_argmax(heatmaps, stride=1))


# ---------------------------------------------------------------------------------------
# Crop geometry


def crop_transforms(mirror: torch.Tensor, pixel_scale: tuple[float, float] = (1.0, 1.0),
                    zoom: torch.Tensor | None = None,
                    angle: torch.Tensor | None = None) -> torch.Tensor:
    """The 2x2 matrices ``A`` of crops (crop offset from the centre -> frame offset).

    Args:
        mirror: (N,) bool, flip the crop horizontally (left hands).
        pixel_scale: (x, y) frame pixels per crop pixel before zoom (frame side /
            the refiner's ``frame_size``).
        zoom: (N,) float or None (1): a zoom > 1 covers more of the frame.
        angle: (N,) float radians or None (0): the crop's rotation in the frame.
    Returns:
        (N,2,2) float32: ``diag(pixel_scale) @ R(angle) * zoom @ diag(+-1, 1)``.
    """
    n = len(mirror)
    zoom = torch.ones(n) if zoom is None else zoom.float()
    angle = torch.zeros(n) if angle is None else angle.float()
    cos, sin = angle.cos() * zoom, angle.sin() * zoom
    flip = torch.where(mirror.bool(), -1.0, 1.0)
    a = torch.stack([torch.stack([cos * flip, -sin], -1),
                     torch.stack([sin * flip, cos], -1)], -2)  # n 2 2
    return a * torch.tensor([pixel_scale[0], pixel_scale[1]]).view(1, 2, 1)


def crop_to_frame(points: torch.Tensor, centres: torch.Tensor, transforms: torch.Tensor,
                  crop_size: int) -> torch.Tensor:
    """Crop pixels (N,K,2) -> frame pixels (N,K,2) of crops at ``centres`` (N,2) with
    ``transforms`` (N,2,2)."""
    m = (crop_size - 1) / 2
    return centres[:, None] + torch.einsum("nij,nkj->nki", transforms, points - m)


def frame_to_crop(points: torch.Tensor, centres: torch.Tensor, transforms: torch.Tensor,
                  crop_size: int) -> torch.Tensor:
    """Frame pixels (N,K,2) -> crop pixels (N,K,2); the inverse of :func:`crop_to_frame`."""
    m = (crop_size - 1) / 2
    return torch.einsum("nij,nkj->nki", torch.linalg.inv(transforms),
                        points - centres[:, None]) + m


def crop_frames(frames: torch.Tensor, centres: torch.Tensor, transforms: torch.Tensor,
                crop_size: int) -> torch.Tensor:
    """Bilinear crops (N,3,S,S) of ``frames`` (N,3,H,W) at ``centres`` (N,2) frame pixels
    with ``transforms`` (N,2,2); outside the frame the border pixels repeat."""
    n, _, height, width = frames.shape
    s = torch.arange(crop_size, dtype=torch.float32, device=frames.device)
    grid = torch.stack(torch.meshgrid(s, s, indexing="xy"), -1).view(1, -1, 2)  # 1 ss 2 (u, v)
    uv = crop_to_frame(grid.expand(n, -1, -1), centres.float().to(frames.device),
                       transforms.float().to(frames.device), crop_size)
    # grid_sample, align_corners=False: normalised x = (2u + 1) / W - 1.
    size = torch.tensor([width, height], dtype=torch.float32, device=frames.device)
    grid = ((2 * uv + 1) / size - 1).view(n, crop_size, crop_size, 2)
    return F.grid_sample(frames.float(), grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def hand_centres(points: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Mean of the seen points: points (N,21,2), seen (N,21) bool -> (N,2); a hand with
    no seen point gets the mean of all its points."""
    weight = seen.float()
    weight = torch.where(weight.sum(-1, keepdim=True) > 0, weight, torch.ones_like(weight))
    return (points * weight[..., None]).sum(1) / weight.sum(-1, keepdim=True)


# ---------------------------------------------------------------------------------------
# Inference


@torch.no_grad()
def refine_hands(refiner: HandRefiner, frames, keypoints: np.ndarray, confidence: np.ndarray,
                 batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Replace the coarse hand keypoints by the refiner's.

    A hand is refined in a frame when at least ``MIN_SEEN_POINTS`` of its 21 points have
    a confidence above ``VISIBLE_CONFIDENCE``; its crop is centred on the mean of those
    points. Of a refined hand, a point is replaced when it is itself confident and its
    coarse position lies inside the crop (the refiner cannot place a point outside its
    crop). Everything else, and all confidences, are returned unchanged.

    Args:
        refiner: a trained :class:`HandRefiner` (put in eval mode here).
        frames: (T,H,W,3) uint8 (numpy, torch, or a list of (H,W,3) frames) at any size:
            crops cover ``crop_size / frame_size`` of the frame side (native pixels for
            frames of ``frame_size``).
        keypoints: (T,133,2) float COCO-WholeBody pixel coordinates (u, v) in ``frames``.
        confidence: (T,133) float in [0, 1], as from ``estimate_keypoints``.
    Returns:
        keypoints (T,133,2) float32 with refined hands; confidence (T,133) float32 (a copy).
    """
    x = frames_to_signed(frames)
    points = np.asarray(keypoints)
    conf = np.asarray(confidence)
    t, _, height, width = x.shape
    if points.shape != (t, NUM_COCO_WHOLEBODY, 2) or not np.issubdtype(points.dtype, np.floating):
        raise InvalidInputError(f"keypoints must be float ({t}, {NUM_COCO_WHOLEBODY}, 2) for "
                                f"{t} frames, got {points.dtype} {points.shape}")
    if conf.shape != (t, NUM_COCO_WHOLEBODY) or not np.issubdtype(conf.dtype, np.floating):
        raise InvalidInputError(f"confidence must be float ({t}, {NUM_COCO_WHOLEBODY}) for "
                                f"{t} frames, got {conf.dtype} {conf.shape}")
    if not ((conf >= 0) & (conf <= 1)).all():
        raise InvalidInputError("confidence must lie in [0, 1]")
    out = torch.from_numpy(points.astype(np.float32))  # a copy
    conf_t = torch.from_numpy(conf.astype(np.float32))
    size = refiner.config.crop_size
    pixel_scale = (width / refiner.config.frame_size, height / refiner.config.frame_size)
    crops_of = []  # (frame index, hand slice, mirrored)
    for hand, mirrored in HANDS:
        seen = conf_t[:, hand] > VISIBLE_CONFIDENCE
        refine = seen.sum(-1) >= MIN_SEEN_POINTS
        if not torch.isfinite(out[:, hand][seen]).all():
            raise InvalidInputError("keypoints has non-finite coordinates at confident hand points")
        crops_of += [(i, hand, mirrored) for i in torch.nonzero(refine).flatten().tolist()]
    if not crops_of:
        return out.numpy(), conf_t.numpy()
    refiner.eval()
    device = next(refiner.parameters()).device
    for start in range(0, len(crops_of), batch_size):
        chunk = crops_of[start:start + batch_size]
        index = torch.tensor([i for i, _, _ in chunk])
        mirror = torch.tensor([m for _, _, m in chunk])
        hands = torch.stack([out[i, hand] for i, hand, _ in chunk])  # n 21 2
        seen = torch.stack([conf_t[i, hand] > VISIBLE_CONFIDENCE for i, hand, _ in chunk])
        centres = hand_centres(hands, seen)
        transforms = crop_transforms(mirror, pixel_scale)
        crops = crop_frames(x[index], centres, transforms, size)
        predicted = refiner(crops.to(device)).keypoints.float().cpu()
        refined = crop_to_frame(predicted, centres, transforms, size)
        coarse = frame_to_crop(hands, centres, transforms, size)
        inside = ((coarse >= -0.5) & (coarse <= size - 0.5)).all(-1)
        hands = torch.where((seen & inside)[..., None], refined, hands)
        for row, (i, hand, _) in enumerate(chunk):
            out[i, hand] = hands[row]
    return out.numpy(), conf_t.numpy()


class VideoKeypointReader:
    """How the evaluation suite reads keypoints off a video: the whole-frame estimator,
    then the hand refiner. ``reader(frames)`` takes (T,H,W,3) uint8 frames and returns
    keypoints (T,133,2) float32 px and confidence (T,133) float32 in [0, 1].

    ``estimator_hash`` / ``refiner_hash``: sha256 prefixes of their safetensors;
    ``version`` (``<estimator hash>-<refiner hash>``) names both, so caches and results
    record exactly what read them.
    """

    def __init__(self, estimator: KeypointEstimator, refiner: HandRefiner,
                 estimator_hash: str = "", refiner_hash: str = "") -> None:
        self.estimator = estimator.eval()
        self.refiner = refiner.eval()
        self.estimator_hash, self.refiner_hash = estimator_hash, refiner_hash

    @property
    def version(self) -> str:
        return f"{self.estimator_hash}-{self.refiner_hash}"

    @classmethod
    def from_weights_dir(cls, weights_dir) -> VideoKeypointReader:
        """Load ``<weights_dir>/keypoints`` and ``<weights_dir>/hand_keypoints``."""
        from pathlib import Path

        from signgen.errors import SignGenError
        from signgen.loading import load_pretrained
        from signgen.paths import weights_hash

        weights_dir = Path(weights_dir)
        folders = {"keypoints": weights_dir / "keypoints",
                   "hand_keypoints": weights_dir / "hand_keypoints"}
        for stage, folder in folders.items():
            if not (folder / "config.json").is_file():
                raise SignGenError(f"evaluator {stage!r} not found in {folder}; train it "
                                   f"with python train.py --stage {stage}")
        return cls(load_pretrained(KeypointEstimator, folders["keypoints"]),
                   load_pretrained(HandRefiner, folders["hand_keypoints"]),
                   weights_hash(folders["keypoints"]), weights_hash(folders["hand_keypoints"]))

    def coarse(self, frames) -> tuple[np.ndarray, np.ndarray]:
        """The estimator alone (hands ~3 px off at 128 px)."""
        return estimate_keypoints(self.estimator, frames)

    def refine(self, frames, keypoints: np.ndarray,
               confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Refine the hands of a coarse estimate (see :func:`refine_hands`)."""
        return refine_hands(self.refiner, frames, keypoints, confidence)

    def __call__(self, frames) -> tuple[np.ndarray, np.ndarray]:
        return self.refine(frames, *self.coarse(frames))
