"""Keypoint estimator: a frame -> 133 COCO-WholeBody keypoints with confidences.

The evaluation suite measures how well a generated video follows its conditions with the
keypoint accuracy (PCK) between the keypoints estimated on generated frames and the
ground-truth ones, as SignViP does with DWPose. DWPose is not redistributable here and is
trained on real photographs, so signgen trains its own small estimator on SynthSign.

Architecture: a compact encoder-decoder (residual conv stages down to input/2**N, then
upsampling with skip connections back to input/``heatmap_stride``) that emits one heatmap
per keypoint. Coordinates come from a soft-argmax over each heatmap (integral regression:
sub-pixel and differentiable; Sun et al., "Integral Human Pose Regression", ECCV 2018), so a
32x32 heatmap still places the small hand keypoints of a 128 px frame to a fraction of a
pixel. A separate head predicts whether each keypoint lies in the frame; that probability
is the returned confidence.

Pixel convention (as ``PinholeCamera.project``): (u, v) = (column, row), (0, 0) is the
centre of the top-left pixel.
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

NUM_COCO_WHOLEBODY = 133
# An estimated keypoint counts as visible above this confidence.
VISIBLE_CONFIDENCE = 0.5


@dataclass
class KeypointOutput(BaseOutput):
    """What :class:`KeypointEstimator` returns.

    Attributes:
        heatmaps: (B,K,h,w) float logits; a spatial softmax of each map is the keypoint's
            location distribution (h = w = input_size / heatmap_stride).
        keypoints: (B,K,2) float pixel coordinates (u, v) in the input frame.
        visibility_logits: (B,K) float; sigmoid gives the confidence in [0, 1] that the
            keypoint is inside the frame.
    """

    heatmaps: torch.Tensor = None
    keypoints: torch.Tensor = None
    visibility_logits: torch.Tensor = None


class ResidualBlock(nn.Module):
    """Two 3x3 convs with batch norm and an identity (or strided 1x1) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(h)) + self.shortcut(x))


def soft_argmax(heatmaps: torch.Tensor, stride: int) -> torch.Tensor:
    """Expected pixel location under each heatmap's spatial softmax.

    Args:
        heatmaps: (B,K,h,w) logits on a grid whose cell (i, j) covers input pixels
            [j*stride, (j+1)*stride) x [i*stride, (i+1)*stride).
        stride: input pixels per heatmap cell.
    Returns:
        (B,K,2) float (u, v) in input pixels; a cell's centre is at (j + 0.5) * stride - 0.5.
    """
    b, k, h, w = heatmaps.shape
    prob = heatmaps.flatten(2).float().softmax(dim=-1).view(b, k, h, w)
    us = (torch.arange(w, device=heatmaps.device, dtype=prob.dtype) + 0.5) * stride - 0.5
    vs = (torch.arange(h, device=heatmaps.device, dtype=prob.dtype) + 0.5) * stride - 0.5
    u = (prob.sum(dim=2) * us).sum(dim=-1)  # marginal over columns
    v = (prob.sum(dim=3) * vs).sum(dim=-1)  # marginal over rows
    return torch.stack([u, v], dim=-1)


class KeypointEstimator(ModelMixin, ConfigMixin):
    """Frame (B,3,S,S) in [-1,1] -> COCO-WholeBody keypoints, S = ``input_size``.

    Args:
        input_size: side of the (square) input frame in pixels; a multiple of
            2 ** len(channels).
        num_keypoints: heatmaps emitted (133 for COCO-WholeBody).
        channels: widths of the encoder stages; stage i works at S / 2**(i+1).
        heatmap_stride: input pixels per heatmap cell (a power of two, 2 ..
            2 ** len(channels)); the decoder upsamples to S / heatmap_stride.
    """

    @register_to_config
    def __init__(self, input_size: int = 128, num_keypoints: int = NUM_COCO_WHOLEBODY,
                 channels: Sequence[int] = (32, 64, 96, 128), heatmap_stride: int = 4) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        depth = len(channels)
        if depth < 2 or min(channels) < 1:
            raise InvalidInputError(f"channels needs >= 2 positive widths, got {channels}")
        if input_size % (2 ** depth):
            raise InvalidInputError(f"input_size {input_size} must be a multiple of "
                                    f"2**len(channels) = {2 ** depth}")
        if heatmap_stride < 2 or heatmap_stride & (heatmap_stride - 1) or \
                heatmap_stride > 2 ** depth:
            raise InvalidInputError(f"heatmap_stride must be a power of two in [2, "
                                    f"{2 ** depth}], got {heatmap_stride}")
        if num_keypoints < 1:
            raise InvalidInputError(f"num_keypoints must be >= 1, got {num_keypoints}")
        self.down = nn.ModuleList()
        previous = 3
        for width in channels:
            self.down.append(ResidualBlock(previous, width, stride=2))
            previous = width
        # Decoder: from the deepest stage up to the heatmap resolution, adding the
        # encoder's skip features of the same resolution.
        num_up = depth - int(np.log2(heatmap_stride))
        self.up = nn.ModuleList()
        self.skip = nn.ModuleList()
        for i in range(num_up):
            width = channels[depth - 2 - i]
            self.skip.append(nn.Conv2d(width, previous, 1, bias=False))
            self.up.append(ResidualBlock(previous, width))
            previous = width
        self.head = nn.Sequential(nn.Conv2d(previous, previous, 3, 1, 1), nn.ReLU(),
                                  nn.Conv2d(previous, num_keypoints, 1))
        # Whether a point is in the frame is a global question (hands leave the frame at
        # its lower edge): pooled deepest features, 2x2 to keep the coarse layout.
        self.visibility = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                        nn.Linear(4 * channels[-1], num_keypoints))

    def forward(self, frames: torch.Tensor) -> KeypointOutput:
        """frames (B,3,S,S) float in [-1,1] -> :class:`KeypointOutput`."""
        size = self.config.input_size
        if frames.ndim != 4 or tuple(frames.shape[1:]) != (3, size, size):
            raise InvalidInputError(f"frames must have shape (B, 3, {size}, {size}), "
                                    f"got {tuple(frames.shape)}")
        features = []
        h = frames
        for block in self.down:
            h = block(h)
            features.append(h)
        for i, (skip, block) in enumerate(zip(self.skip, self.up, strict=True)):
            h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
            h = block(h + skip(features[-2 - i]))
        heatmaps = self.head(h)  # b k h w
        keypoints = soft_argmax(heatmaps, self.config.heatmap_stride)  # b k 2
        return KeypointOutput(heatmaps=heatmaps, keypoints=keypoints,
                              visibility_logits=self.visibility(features[-1]))


def frames_to_signed(frames) -> torch.Tensor:
    """(T,H,W,3) uint8 numpy / torch / list of frames -> (T,3,H,W) float in [-1,1]."""
    if isinstance(frames, torch.Tensor):
        x = frames.detach().cpu()
    elif isinstance(frames, np.ndarray):
        x = torch.from_numpy(frames)
    else:
        x = torch.from_numpy(np.stack([np.asarray(f) for f in frames]))
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8:
        raise InvalidInputError(f"frames must be (T, H, W, 3) uint8, got shape "
                                f"{tuple(x.shape)} dtype {x.dtype}")
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def frames_to_tensor(frames, size: int) -> tuple[torch.Tensor, tuple[float, float]]:
    """(T,H,W,3) uint8 frames -> (T,3,size,size) float in [-1,1] and the (x, y) scale
    from model pixels back to frame pixels. Frames of another size are resized."""
    x = frames_to_signed(frames)
    height, width = x.shape[-2:]
    if (height, width) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return x, (width / size, height / size)


@torch.no_grad()
def estimate_keypoints(model: KeypointEstimator, frames, batch_size: int = 64,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of every frame.

    Args:
        model: a trained :class:`KeypointEstimator` (put in eval mode here).
        frames: (T,H,W,3) uint8 (numpy, torch, or a list of (H,W,3) frames); frames that
            are not ``input_size`` square are resized and the keypoints scaled back.
    Returns:
        keypoints: (T,133,2) float32 pixel coordinates (u, v) in the given frames.
        confidence: (T,133) float32 in [0, 1], the probability that the point is in frame.
    """
    model.eval()
    x, (sx, sy) = frames_to_tensor(frames, model.config.input_size)
    device = next(model.parameters()).device
    points, confidence = [], []
    for chunk in x.split(batch_size):
        out = model(chunk.to(device))
        points.append(out.keypoints.float().cpu())
        confidence.append(out.visibility_logits.float().sigmoid().cpu())
    if not points:
        k = model.config.num_keypoints
        return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)
    uv = torch.cat(points)
    # Pixel centres: model pixel u covers frame pixels [u*sx, (u+1)*sx).
    uv = torch.stack([(uv[..., 0] + 0.5) * sx - 0.5, (uv[..., 1] + 0.5) * sy - 0.5], -1)
    return uv.numpy().astype(np.float32), torch.cat(confidence).numpy().astype(np.float32)

