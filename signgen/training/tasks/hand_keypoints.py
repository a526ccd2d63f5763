"""Training task of the hand refiner (``python train.py --stage hand_keypoints``).

Data: the frames of the keypoint task (every ``FRAME_STRIDE``-th frame of each SynthSign
training video, decoded once with :func:`~signgen.training.tasks.keypoints.cache_frames`
at the keypoint estimator's ``input_size``); one item per hand that has a majority of
its 21 points in frame, so ``train.batch_size`` counts crops. Left hands are mirrored
(the refiner sees right hands only; see signgen/eval/hand_keypoints.py).

Augmentation (in ``collate``): the crop centre is the mean of the ground-truth hand
points shifted by up to ``MAX_SHIFT`` px (the coarse estimator's centre is that far off),
zoomed by up to ``MAX_ZOOM`` and rotated by up to ``MAX_ROTATION``, with the targets
moved alike; colour jitter, a Gaussian blur of up to ``MAX_BLUR`` px (generated videos
are blurrier than rendered ones) and a little pixel noise.

Loss, per target point in frame and inside the crop: KL divergence from a Gaussian
target distribution (``SIGMA`` px) to the heatmap's spatial softmax, plus L1 of the
soft-argmax coordinates in px (as the keypoint task, without its in-frame term).

Evaluation, on every ``EVAL_FRAME_STRIDE``-th frame of the first ``EVAL_CLIPS`` clips of
each test split: hand errors in px and in % of the shoulder width, and hand PCK, for the
coarse estimator alone (``eval.weights_dir/keypoints``) and coarse + refiner with crops
centred on the coarse estimate (the real inference path). Without a trained coarse
estimator only the refiner is scored, on crops centred on the ground truth.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.eval import metrics
from signgen.eval.hand_keypoints import (
    HANDS,
    LEFT_HAND,
    MIN_SEEN_POINTS,
    RIGHT_HAND,
    HandRefiner,
    crop_frames,
    crop_transforms,
    frame_to_crop,
    hand_centres,
    refine_hands,
)
from signgen.eval.keypoints import VISIBLE_CONFIDENCE
from signgen.eval.recogniser import SHOULDERS
from signgen.loading import load_pretrained
from signgen.training.tasks.keypoints import (
    EVAL_CLIPS,
    EVAL_FRAME_STRIDE,
    EVAL_SPLITS,
    FRAME_STRIDE,
    cache_frames,
    dataset_root,
)

MAX_SHIFT = 3.0  # px, per axis
MAX_ZOOM = 0.1  # crop scale in [1 - MAX_ZOOM, 1 + MAX_ZOOM]
MAX_ROTATION = math.radians(15)
MAX_BLUR = 1.0  # Gaussian sigma in px, uniform in [0, MAX_BLUR]
NOISE = 0.02  # pixel noise std, in [-1, 1] units
SIGMA = 1.0  # target heatmap spread, px (= heatmap cells at stride 1)
COORD_WEIGHT = 1.0
HAND_POINTS = np.arange(LEFT_HAND.start, RIGHT_HAND.stop)  # the 42 hand points


class CachedHands(Dataset):
    """Items (frame (S,S,3) uint8, hand keypoints (21,2) px, visible (21,) bool, mirror)
    for every hand of the cache with at least ``MIN_SEEN_POINTS`` points in frame."""

    def __init__(self, cache: dict) -> None:
        self.frames, self.keypoints = cache["frames"], cache["keypoints"]
        self.visible = cache["visible"]
        rows = []
        for side, (hand, _) in enumerate(HANDS):
            index = torch.nonzero(self.visible[:, hand].sum(-1) >= MIN_SEEN_POINTS).flatten()
            rows.append(torch.stack([index, torch.full_like(index, side)], -1))
        self.rows = torch.cat(rows)  # n 2: frame index, hand side

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple:
        frame, side = self.rows[index].tolist()
        hand, mirror = HANDS[side]
        return self.frames[frame], self.keypoints[frame, hand], self.visible[frame, hand], mirror


def make_crops(frames: torch.Tensor, keypoints: torch.Tensor, visible: torch.Tensor,
               mirror: torch.Tensor, crop_size: int, augment: bool = True,
               generator: torch.Generator | None = None) -> tuple:
    """Training crops around the ground-truth hands, targets moved alike.

    Args:
        frames: (N,3,H,W) float in [-1,1]; keypoints (N,21,2) frame px; visible (N,21)
            bool; mirror (N,) bool (left hands).
        augment: random shift, zoom, rotation, colour, blur and noise (else centred crops).
    Returns:
        crops (N,3,S,S) float in [-1,1], targets (N,21,2) crop px, valid (N,21) bool
        (in frame and inside the crop).
    """
    n = len(frames)

    def uniform(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    centres = hand_centres(keypoints, visible)
    zoom = angle = None
    if augment:
        centres = centres + MAX_SHIFT * uniform(n, 2)
        zoom, angle = 1 + MAX_ZOOM * uniform(n), MAX_ROTATION * uniform(n)
    transforms = crop_transforms(mirror, zoom=zoom, angle=angle)
    crops = crop_frames(frames, centres, transforms, crop_size)
    targets = frame_to_crop(keypoints, centres, transforms, crop_size)
    inside = ((targets >= -0.5) & (targets <= crop_size - 0.5)).all(-1)
    if augment:
        contrast = 1 + 0.2 * uniform(n, 1, 1, 1)
        brightness = 0.1 * uniform(n, 1, 1, 1)
        gains = 1 + 0.08 * uniform(n, 3, 1, 1)
        mean = crops.mean(dim=(1, 2, 3), keepdim=True)
        crops = ((crops - mean) * contrast + mean) * gains + brightness
        crops = blur(crops, MAX_BLUR * torch.rand(n, generator=generator))
        crops = crops + NOISE * torch.randn(crops.shape, generator=generator)
    return crops.clamp(-1, 1), targets, visible & inside


def blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of (N,C,H,W) images, one sigma (N,) px each (0: none)."""
    n, c, h, w = images.shape
    radius = 2
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-offsets ** 2 / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))  # n 5
    kernel = (kernel / kernel.sum(-1, keepdim=True)).repeat_interleave(c, 0)  # nc 5
    x = F.pad(images.reshape(1, n * c, h, w), (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.view(n * c, 1, 1, -1), groups=n * c)
    x = F.conv2d(x, kernel.view(n * c, 1, -1, 1), groups=n * c)
    return x.view(n, c, h, w)


def hand_keypoint_loss(heatmaps: torch.Tensor, predicted: torch.Tensor,
                       targets: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Heatmap KL + coordinate L1 (px), over the valid points.

    Args:
        heatmaps: (N,21,S,S) logits; predicted: (N,21,2) soft-argmax crop px; targets:
            (N,21,2) crop px; valid: (N,21) bool.
    """
    n, k, h, w = heatmaps.shape
    du = torch.arange(w, device=heatmaps.device).view(1, 1, 1, w) - targets[..., 0, None, None]
    dv = torch.arange(h, device=heatmaps.device).view(1, 1, h, 1) - targets[..., 1, None, None]
    log_target = (-(du ** 2 + dv ** 2) / (2 * SIGMA ** 2)).flatten(2).log_softmax(dim=-1)
    log_prob = heatmaps.flatten(2).float().log_softmax(dim=-1)  # n k ss
    kl = (log_target.exp() * (log_target - log_prob)).sum(dim=-1)  # n k
    mask = valid.float()
    count = mask.sum().clamp(min=1)
    kl_loss = (kl * mask).sum() / count
    coord_loss = ((predicted - targets).abs().sum(dim=-1) * mask).sum() / count
    pixel_error = ((predicted - targets).norm(dim=-1) * mask).sum() / count
    loss = kl_loss + COORD_WEIGHT * coord_loss
    return loss, {"kl": kl_loss.item(), "coord": coord_loss.item(), "px_error": pixel_error.item()}


def hand_scores(target: np.ndarray, predicted: np.ndarray, visible: np.ndarray,
                alpha: float) -> dict[str, float]:
    """Hand errors of (N,133,2) predictions against (N,133,2) targets, visible (N,133).

    Returns 'error_px' (mean), 'error_px_p90', 'error_shoulder_pct' (mean error in % of
    the frame's shoulder width, over frames with both shoulders; absent if none),
    'pck_hands' (threshold ``alpha`` x the whole-body box, as the keypoint task's
    per-part PCK) and 'pck_hand_box' (``alpha`` x each hand's own box: finger-level).
    """
    hand_visible = np.zeros_like(visible)
    hand_visible[:, HAND_POINTS] = visible[:, HAND_POINTS]
    error = np.linalg.norm(predicted - target, axis=-1)  # n 133
    shoulders = visible[:, SHOULDERS[0]] & visible[:, SHOULDERS[1]]
    width = np.linalg.norm(target[:, SHOULDERS[0]] - target[:, SHOULDERS[1]], axis=-1)
    result = {"error_px": float(error[hand_visible].mean()),
              "error_px_p90": float(np.percentile(error[hand_visible], 90))}
    if hand_visible[shoulders].any():
        relative = error[shoulders] / width[shoulders, None]
        result["error_shoulder_pct"] = float(100 * relative[hand_visible[shoulders]].mean())
    low = np.where(visible[..., None], target, np.inf).min(axis=1)
    high = np.where(visible[..., None], target, -np.inf).max(axis=1)
    body_box = np.where(visible.any(axis=1), (high - low).max(axis=-1), 0.0)
    result["pck_hands"] = metrics.pck(target, predicted, hand_visible, alpha,
                                      scale=np.where(body_box > 0, body_box, 1.0))
    # Each hand as its own "frame", so the bbox normalisation is that hand's box.
    per_hand = [np.concatenate([x[:, h] for h, _ in HANDS]) for x in (target, predicted, visible)]
    result["pck_hand_box"] = metrics.pck(*per_hand, alpha)
    return result


def crop_placement(target: np.ndarray, visible: np.ndarray, keypoints: np.ndarray,
                   confidence: np.ndarray, crop_size: int) -> dict[str, float]:
    """How well the coarse estimate places the refiner's crops (as ``refine_hands`` does).

    Args:
        target, keypoints: (N,133,2) ground-truth and coarse px; visible (N,133) bool;
            confidence (N,133) coarse.
    Returns 'centre_error_px' (coarse vs ground-truth hand centre, mean over refined
    hands), 'coverage' (fraction of their in-frame ground-truth points inside the crop)
    and 'refined_fraction' (of the hands with a majority of points in frame, those the
    coarse estimate lets refine).
    """
    errors, inside, refined, present = [], [], 0, 0
    for hand, _ in HANDS:
        seen = torch.from_numpy(confidence[:, hand] > VISIBLE_CONFIDENCE)
        truth = torch.from_numpy(visible[:, hand])
        chosen = (seen.sum(-1) >= MIN_SEEN_POINTS) & truth.any(-1)
        majority = truth.sum(-1) >= MIN_SEEN_POINTS
        present += int(majority.sum())
        refined += int((chosen & majority).sum())
        centre = hand_centres(torch.from_numpy(keypoints[:, hand]).float(), seen)[chosen]
        gt = torch.from_numpy(target[:, hand]).float()[chosen]
        errors.append((centre - hand_centres(gt, truth[chosen])).norm(dim=-1))
        offset = (gt - centre[:, None]).abs().max(-1).values  # Chebyshev distance, px
        inside.append((offset <= crop_size / 2)[truth[chosen]])
    errors, inside = torch.cat(errors), torch.cat(inside)
    if not len(errors):
        return {}
    return {"centre_error_px": errors.mean().item(), "coverage": inside.float().mean().item(),
            "refined_fraction": refined / max(present, 1)}


class HandKeypointTask:
    """``TrainingTask`` of :class:`HandRefiner` on SynthSign."""

    def __init__(self, cfg: SignGenConfig) -> None:
        self.cfg = cfg
        self.root = dataset_root(cfg)
        self.model_kwargs = dataclasses.asdict(cfg.eval.hand_keypoints.model)
        self.frame_size = cfg.eval.keypoints.model.input_size
        self._eval_sets: dict | None = None

    def build_model(self) -> HandRefiner:
        return HandRefiner(**self.model_kwargs, frame_size=self.frame_size)

    def train_dataset(self) -> Dataset:
        cache = cache_frames(self.root, "train", FRAME_STRIDE, self.frame_size,
                             seed=self.cfg.experiment.seed)
        return CachedHands(cache)

    def collate(self, items: list) -> dict:
        frames = torch.stack([f for f, _, _, _ in items]).permute(0, 3, 1, 2).float() / 127.5 - 1
        keypoints = torch.stack([k for _, k, _, _ in items])
        visible = torch.stack([v for _, _, v, _ in items])
        mirror = torch.tensor([m for _, _, _, m in items])
        crops, targets, valid = make_crops(frames, keypoints, visible, mirror,
                                           self.model_kwargs["crop_size"])
        return {"crops": crops, "targets": targets, "valid": valid}

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        device = next(model.parameters()).device  # the loop leaves batches where collate made them
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(batch["crops"])
        return hand_keypoint_loss(out.heatmaps, out.keypoints, batch["targets"], batch["valid"])

    def _load_eval_sets(self) -> dict:
        """Per split: the cached frames and the coarse estimate (None without an estimator)."""
        from signgen.eval.keypoints import KeypointEstimator, estimate_keypoints

        folder = Path(self.cfg.eval.weights_dir) / "keypoints"
        estimator = None
        if (folder / "config.json").is_file():
            estimator = load_pretrained(KeypointEstimator, folder)
        else:
            print(f"hand_keypoints: no keypoint estimator in {folder}; scoring the refiner "
                  f"on crops centred on the ground truth")
        sets = {}
        for split in EVAL_SPLITS:
            cache = cache_frames(self.root, split, EVAL_FRAME_STRIDE, self.frame_size,
                                 max_clips=EVAL_CLIPS)
            coarse = None if estimator is None else estimate_keypoints(estimator, cache["frames"])
            sets[split] = (cache, coarse)
        return sets

    def evaluate(self, model: HandRefiner) -> dict[str, float]:
        if self._eval_sets is None:
            self._eval_sets = self._load_eval_sets()
        alpha = self.cfg.eval.pck_threshold
        result = {}
        for split, (cache, coarse) in self._eval_sets.items():
            target, visible = cache["keypoints"].numpy(), cache["visible"].numpy()
            if not visible[:, HAND_POINTS].any():
                continue
            if coarse is None:  # the refiner alone: ground-truth centres
                runs = {"refined_gt_centre": refine_hands(
                    model, cache["frames"], target, visible.astype(np.float32))[0]}
            else:
                runs = {"coarse": coarse[0],
                        "refined": refine_hands(model, cache["frames"], *coarse)[0]}
                crops = crop_placement(target, visible, *coarse, model.config.crop_size)
                result.update({f"crops/{k}/{split}": v for k, v in crops.items()})
            for name, points in runs.items():
                for key, value in hand_scores(target, points, visible, alpha).items():
                    result[f"{name}/{key}/{split}"] = value
        return result

    def export(self, model: HandRefiner, folder: Path) -> None:
        model.save_pretrained(folder)


def build_task(cfg: SignGenConfig) -> HandKeypointTask:
    return HandKeypointTask(cfg)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.eval.hand_keypoints.train
