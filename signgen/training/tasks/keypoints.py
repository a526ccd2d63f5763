"""Training task of the keypoint estimator (``python train.py --stage keypoints``).

Data: every ``FRAME_STRIDE``-th frame of each SynthSign training video, decoded once
and held in memory as uint8 with its ground-truth COCO-WholeBody keypoints and in-frame
mask. Augmentation (in ``collate``, on the whole batch): a small random zoom and shift
with the keypoints moved alike (points pushed out of the frame count as invisible), and
colour jitter. No horizontal flip: it would also swap the keypoints' left/right names and
SynthSign's framing is fixed anyway.

Loss, per visible keypoint: KL divergence from a Gaussian target distribution
(``SIGMA`` heatmap cells) to the heatmap's spatial softmax (fast, stable convergence),
plus L1 of the soft-argmax coordinates in heatmap cells (removes the soft-argmax bias and
gives sub-pixel precision); plus binary cross-entropy of the in-frame confidence over all
keypoints.

Evaluation: PCK@``eval.pck_threshold`` (bounding-box normalised, see
:func:`signgen.eval.metrics.pck`; also per part: body, face, hands) and the accuracy of the
in-frame confidence on ground-truth frames of the first ``EVAL_CLIPS`` clips of each test
split.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.synthsign.dataset import SynthSignDataset, read_npz, read_video
from signgen.eval import metrics
from signgen.eval.keypoints import NUM_COCO_WHOLEBODY, KeypointEstimator

FRAME_STRIDE = 4  # training frames: every 4th (neighbouring frames are near duplicates)
EVAL_SPLITS = ("test_novel_sentences", "test_unseen_signers")
EVAL_CLIPS = 40  # per split
EVAL_FRAME_STRIDE = 4
SIGMA = 1.0  # target heatmap spread, in heatmap cells
COORD_WEIGHT = 1.0
VISIBILITY_WEIGHT = 0.5
MAX_ZOOM = 0.1  # random scale in [1 - MAX_ZOOM, 1 + MAX_ZOOM]
MAX_SHIFT = 0.06  # random shift, fraction of the frame side
# COCO-WholeBody parts, for per-part PCK.
PARTS = {"body": slice(0, 23), "face": slice(23, 91), "hands": slice(91, 133)}


def dataset_root(cfg: SignGenConfig) -> Path:
    return Path(cfg.data.root) / cfg.data.dataset


def cache_frames(root: Path, split: str, frame_stride: int, size: int,
                 max_clips: int | None = None, frames_per_clip: int | None = None,
                 with_motion: bool = True, seed: int = 0) -> dict:
    """Decode frames of a SynthSign split into memory.

    Args:
        frame_stride: keep every n-th frame, from a per-clip offset in [0, n) drawn from
            ``seed`` (so all phases of the stride are seen across clips).
        size: frames are resized to ``size`` x ``size`` (keypoints scaled alike).
        max_clips: only the first clips of the split.
        frames_per_clip: instead of a stride, this many evenly spaced frames per clip.
    Returns:
        dict with 'frames' (N,size,size,3) uint8 tensor, 'clip' (N,) int64 tensor (index
        into 'sample_ids' / 'signer_ids', one entry per clip); with ``with_motion`` also
        'keypoints' (N,133,2) float32 pixels and 'visible' (N,133) bool.
    """
    from signgen.eval.identity import clip_frame_indices

    samples = SynthSignDataset(root, split, fields=("video",)).samples[:max_clips]
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, frame_stride, len(samples))

    def load(i: int) -> tuple:
        folder = root / "samples" / samples[i]["sample_id"]
        video = read_video(folder / "video.mp4")
        if frames_per_clip is not None:
            idx = clip_frame_indices(len(video), frames_per_clip)
        else:
            idx = np.arange(min(offsets[i], len(video) - 1), len(video), frame_stride)
        frames = torch.from_numpy(video[idx])
        height, width = frames.shape[1:3]
        if (height, width) != (size, size):
            x = frames.permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True)
            frames = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        out = [frames, torch.full((len(idx),), i, dtype=torch.long)]
        if with_motion:
            with read_npz(folder / "motion.npz") as motion:
                kp = torch.from_numpy(motion["keypoints"][idx].astype(np.float32))
                visible = torch.from_numpy(motion["visible"][idx].astype(bool))
            scale = torch.tensor([size / width, size / height])
            out += [(kp + 0.5) * scale - 0.5, visible]
        return tuple(out)

    # Decoding runs in ffmpeg subprocesses, so threads overlap well.
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        parts = list(pool.map(load, range(len(samples))))
    cache = {"frames": torch.cat([p[0] for p in parts]), "clip": torch.cat([p[1] for p in parts]),
             "sample_ids": [s["sample_id"] for s in samples],
             "signer_ids": [s["signer_id"] for s in samples]}
    if with_motion:
        cache["keypoints"] = torch.cat([p[2] for p in parts])
        cache["visible"] = torch.cat([p[3] for p in parts])
    return cache


class CachedKeypointFrames(Dataset):
    """Items (frame (S,S,3) uint8, keypoints (133,2) px, visible (133,) bool)."""

    def __init__(self, cache: dict) -> None:
        self.frames, self.keypoints = cache["frames"], cache["keypoints"]
        self.visible = cache["visible"]

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple:
        return self.frames[index], self.keypoints[index], self.visible[index]


def augment(frames: torch.Tensor, keypoints: torch.Tensor, visible: torch.Tensor,
            generator: torch.Generator | None = None) -> tuple:
    """Random zoom/shift (keypoints moved alike) and colour jitter of a batch.

    Args:
        frames: (B,3,S,S) float in [-1,1]; keypoints (B,K,2) px; visible (B,K) bool.
    Returns:
        the augmented frames, keypoints and visible (points moved out of frame dropped).
    """
    b, _, size, _ = frames.shape

    def uniform(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    scale = 1 + MAX_ZOOM * uniform(b)
    shift = MAX_SHIFT * size * uniform(b, 2)  # px
    # Output pixel p_out = scale * (p_in - c) + c + shift; affine_grid wants the inverse
    # map in normalised coordinates (align_corners=False: x = (2u + 1) / S - 1).
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = -(2 * shift / size) / scale[:, None]
    grid = F.affine_grid(theta, list(frames.shape), align_corners=False)
    frames = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border",
                           align_corners=False)
    centre = (size - 1) / 2
    keypoints = scale[:, None, None] * (keypoints - centre) + centre + shift[:, None]
    inside = ((keypoints >= -0.5) & (keypoints < size - 0.5)).all(dim=-1)
    # Colour: contrast, brightness and per-channel gains.
    contrast = 1 + 0.2 * uniform(b, 1, 1, 1)
    brightness = 0.1 * uniform(b, 1, 1, 1)
    gains = 1 + 0.08 * uniform(b, 3, 1, 1)
    mean = frames.mean(dim=(1, 2, 3), keepdim=True)
    frames = ((frames - mean) * contrast + mean) * gains + brightness
    return frames.clamp(-1, 1), keypoints, visible & inside


def keypoint_loss(heatmaps: torch.Tensor, predicted: torch.Tensor,
                  visibility_logits: torch.Tensor, keypoints: torch.Tensor,
                  visible: torch.Tensor, stride: int) -> tuple[torch.Tensor, dict]:
    """Heatmap KL + coordinate L1 (visible keypoints) + in-frame BCE (all keypoints).

    Args:
        heatmaps: (B,K,h,w) logits; predicted: (B,K,2) soft-argmax px; visibility_logits
            (B,K); keypoints: (B,K,2) target px; visible: (B,K) bool; stride: px per cell.
    """
    b, k, h, w = heatmaps.shape
    cells_u = (torch.arange(w, device=heatmaps.device) + 0.5) * stride - 0.5
    cells_v = (torch.arange(h, device=heatmaps.device) + 0.5) * stride - 0.5
    du = (cells_u.view(1, 1, 1, w) - keypoints[..., 0, None, None]) / stride  # b k 1 w
    dv = (cells_v.view(1, 1, h, 1) - keypoints[..., 1, None, None]) / stride  # b k h 1
    log_target = (-(du ** 2 + dv ** 2) / (2 * SIGMA ** 2)).flatten(2).log_softmax(dim=-1)
    log_prob = heatmaps.flatten(2).float().log_softmax(dim=-1)  # b k hw
    kl = (log_target.exp() * (log_target - log_prob)).sum(dim=-1)  # b k
    error = (predicted - keypoints).abs().sum(dim=-1) / stride  # b k, in cells
    mask = visible.float()
    count = mask.sum().clamp(min=1)
    kl_loss = (kl * mask).sum() / count
    coord_loss = (error * mask).sum() / count
    vis_loss = F.binary_cross_entropy_with_logits(visibility_logits.float(), mask)
    loss = kl_loss + COORD_WEIGHT * coord_loss + VISIBILITY_WEIGHT * vis_loss
    pixel_error = ((predicted - keypoints).norm(dim=-1) * mask).sum() / count
    return loss, {"kl": kl_loss.item(), "coord": coord_loss.item(), "vis": vis_loss.item(),
                  "px_error": pixel_error.item()}


class KeypointTask:
    """``TrainingTask`` of :class:`KeypointEstimator` on SynthSign."""

    def __init__(self, cfg: SignGenConfig) -> None:
        self.cfg = cfg
        self.root = dataset_root(cfg)
        self.model_kwargs = dataclasses.asdict(cfg.eval.keypoints.model)
        self._eval_sets: dict | None = None

    def build_model(self) -> KeypointEstimator:
        return KeypointEstimator(**self.model_kwargs, num_keypoints=NUM_COCO_WHOLEBODY)

    def train_dataset(self) -> Dataset:
        cache = cache_frames(self.root, "train", FRAME_STRIDE, self.model_kwargs["input_size"],
                             seed=self.cfg.experiment.seed)
        return CachedKeypointFrames(cache)

    def collate(self, items: list) -> dict:
        frames = torch.stack([f for f, _, _ in items]).permute(0, 3, 1, 2).float() / 127.5 - 1
        keypoints = torch.stack([k for _, k, _ in items])
        visible = torch.stack([v for _, _, v in items])
        frames, keypoints, visible = augment(frames, keypoints, visible)
        return {"frames": frames, "keypoints": keypoints, "visible": visible}

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        device = next(model.parameters()).device  # the loop leaves batches where collate made them
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(batch["frames"])
        stride = self.model_kwargs["heatmap_stride"]
        return keypoint_loss(out.heatmaps, out.keypoints, out.visibility_logits,
                             batch["keypoints"], batch["visible"], stride)

    def evaluate(self, model: KeypointEstimator) -> dict[str, float]:
        from signgen.eval.keypoints import estimate_keypoints

        if self._eval_sets is None:
            self._eval_sets = {
                split: cache_frames(self.root, split, EVAL_FRAME_STRIDE,
                                    self.model_kwargs["input_size"], max_clips=EVAL_CLIPS)
                for split in EVAL_SPLITS}
        alpha = self.cfg.eval.pck_threshold
        result = {}
        for split, cache in self._eval_sets.items():
            points, confidence = estimate_keypoints(model, cache["frames"])
            target, visible = cache["keypoints"].numpy(), cache["visible"].numpy()
            result[f"pck/{split}"] = metrics.pck(target, points, visible, alpha)
            # Per part, with the whole-body box as the scale (as in the overall number).
            low = np.where(visible[..., None], target, np.inf).min(axis=1)
            high = np.where(visible[..., None], target, -np.inf).max(axis=1)
            scale = np.where(visible.any(axis=1), (high - low).max(axis=-1), 0.0)
            scale = np.where(scale > 0, scale, 1.0)  # frames with nothing to score
            for part, idx in PARTS.items():
                part_visible = np.zeros_like(visible)
                part_visible[:, idx] = visible[:, idx]
                if part_visible.any():
                    result[f"pck_{part}/{split}"] = metrics.pck(
                        target, points, part_visible, alpha, scale=scale)
            result[f"in_frame_accuracy/{split}"] = float(((confidence > 0.5) == visible).mean())
        return result

    def export(self, model: KeypointEstimator, folder: Path) -> None:
        model.save_pretrained(folder)


def build_task(cfg: SignGenConfig) -> KeypointTask:
    return KeypointTask(cfg)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.eval.keypoints.train
