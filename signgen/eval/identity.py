"""Signer-appearance embedding: a frame -> a unit vector, close for frames of one signer.

The evaluation suite asks whether a generated video keeps the identity of its reference
image: embed the clip and the references, and count how often the nearest reference is
the right signer (``retrieval_top1``). Face-recognition networks do not transfer to
SynthSign's stand-in avatars, so signgen trains a small CNN on the training signers with a
cosine (normalised-softmax) classifier (Wang et al., "NormFace", 2017; CosFace margin), which
makes the embedding a metric space that generalises to signers never trained on.

Identity on SynthSign is mostly colour and layout (skin, hair, shirt, background, body
shape), so the network sees a downscaled frame (``input_size``) and is not asked to be
invariant to colour.
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
from signgen.eval.keypoints import ResidualBlock, frames_to_tensor


@dataclass
class IdentityOutput(BaseOutput):
    """What :class:`IdentityEncoder` returns.

    Attributes:
        embeddings: (B,D) float unit vectors.
        logits: (B,C) float, ``logit_scale`` x cosine to each training signer's class
            centre (C = ``num_classes``).
    """

    embeddings: torch.Tensor = None
    logits: torch.Tensor = None


class IdentityEncoder(ModelMixin, ConfigMixin):
    """Frame (B,3,H,W) in [-1,1] -> unit embedding (B,D), D = ``embedding_dim``.

    Args:
        input_size: frames are resized to this square side before the CNN.
        channels: widths of the stride-2 residual stages.
        embedding_dim: D.
        num_classes: training signers (rows of the cosine classifier; training only).
        logit_scale: multiplies the cosines before the softmax (NormFace's s).
    """

    @register_to_config
    def __init__(self, input_size: int = 64, channels: Sequence[int] = (32, 64, 128, 128),
                 embedding_dim: int = 64, num_classes: int = 20,
                 logit_scale: float = 16.0) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise InvalidInputError(f"channels needs positive widths, got {channels}")
        if input_size < 2 ** len(channels):
            raise InvalidInputError(f"input_size {input_size} is too small for "
                                    f"{len(channels)} stride-2 stages")
        if embedding_dim < 1 or num_classes < 1 or logit_scale <= 0:
            raise InvalidInputError("embedding_dim, num_classes and logit_scale must be "
                                    "positive")
        blocks, previous = [], 3
        for width in channels:
            blocks.append(ResidualBlock(previous, width, stride=2))
            previous = width
        self.backbone = nn.Sequential(*blocks)
        # Mean and max pooling: the mean carries the dominant colours (background, shirt),
        # the max small distinctive regions (hair, skin of the face and hands).
        self.project = nn.Linear(2 * previous, embedding_dim)
        self.classifier = nn.Parameter(torch.randn(num_classes, embedding_dim) * 0.1)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B,3,H,W) float in [-1,1] (any size) -> (B,D) unit vectors."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise InvalidInputError(f"frames must have shape (B, 3, H, W), "
                                    f"got {tuple(frames.shape)}")
        size = self.config.input_size
        if tuple(frames.shape[-2:]) != (size, size):
            frames = F.interpolate(frames, size=(size, size), mode="bilinear",
                                   align_corners=False, antialias=True)
        h = self.backbone(frames)  # b c h w
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return F.normalize(self.project(pooled), dim=-1)

    def forward(self, frames: torch.Tensor) -> IdentityOutput:
        """frames (B,3,H,W) in [-1,1] -> :class:`IdentityOutput`."""
        embeddings = self.embed(frames)
        cosine = embeddings @ F.normalize(self.classifier, dim=-1).T
        return IdentityOutput(embeddings=embeddings, logits=self.config.logit_scale * cosine)


@torch.no_grad()
def embed_frames(model: IdentityEncoder, frames, batch_size: int = 128) -> np.ndarray:
    """(N,H,W,3) uint8 frames (numpy, torch or a list) -> (N,D) float32 unit vectors."""
    model.eval()
    x, _ = frames_to_tensor(frames, model.config.input_size)
    device = next(model.parameters()).device
    out = [model.embed(chunk.to(device)).float().cpu() for chunk in x.split(batch_size)]
    if not out:
        return np.zeros((0, model.config.embedding_dim), np.float32)
    return torch.cat(out).numpy()


def clip_frame_indices(num_frames: int, num_samples: int = 8) -> np.ndarray:
    """``num_samples`` evenly spaced frame indices of a clip (all frames if fewer)."""
    if num_frames < 1:
        raise InvalidInputError("a clip needs at least one frame")
    count = min(num_frames, num_samples)
    return np.unique(np.linspace(0, num_frames - 1, count).round().astype(int))


def embed_clip(model: IdentityEncoder, video, num_samples: int = 8) -> np.ndarray:
    """(T,H,W,3) uint8 video -> (D,) float32 unit vector: the renormalised mean of the
    embeddings of ``num_samples`` evenly spaced frames."""
    video = video if isinstance(video, (np.ndarray, torch.Tensor)) else np.stack(video)
    if video.ndim != 4:
        raise InvalidInputError(f"video must be (T, H, W, 3) uint8, got shape "
                                f"{tuple(video.shape)}")
    frames = video[clip_frame_indices(len(video), num_samples)]
    mean = embed_frames(model, frames).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def retrieval_top1(clip_embeddings, clip_signers: Sequence[str], reference_embeddings,
                   reference_signers: Sequence[str]) -> float:
    """Fraction of clips whose most similar reference (cosine) shows their own signer.

    Args:
        clip_embeddings: (N,D) float, one row per clip (e.g. from :func:`embed_clip`).
        clip_signers: N signer ids.
        reference_embeddings: (M,D) float, one row per reference image.
        reference_signers: M signer ids (the candidates; each clip's signer should be one).
    Returns:
        top-1 accuracy in [0, 1].
    """
    clips = np.asarray(clip_embeddings, np.float64)
    refs = np.asarray(reference_embeddings, np.float64)
    if clips.ndim != 2 or refs.ndim != 2 or clips.shape[1] != refs.shape[1]:
        raise InvalidInputError(f"embeddings must be (N,D) and (M,D), got {clips.shape} "
                                f"and {refs.shape}")
    if len(clip_signers) != len(clips) or len(reference_signers) != len(refs):
        raise InvalidInputError("one signer id per embedding row is needed")
    if not len(clips) or not len(refs):
        raise InvalidInputError("retrieval needs at least one clip and one reference")
    missing = set(clip_signers) - set(reference_signers)
    if missing:
        raise InvalidInputError(f"clips of signers without a reference: {sorted(missing)}")
    clips = clips / np.maximum(np.linalg.norm(clips, axis=1, keepdims=True), 1e-12)
    refs = refs / np.maximum(np.linalg.norm(refs, axis=1, keepdims=True), 1e-12)
    nearest = (clips @ refs.T).argmax(axis=1)
    hits = [reference_signers[j] == s for j, s in zip(nearest, clip_signers, strict=True)]
    return float(np.mean(hits))
