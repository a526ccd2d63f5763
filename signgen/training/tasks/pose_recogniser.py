"""Training task of the keypoint back-translation recogniser (``--stage pose_recogniser``).

Data: the SynthSign ``train`` split's ground-truth COCO-WholeBody keypoints
(``motion.npz``: keypoints (T,133,2) pixels, visible (T,133)), kept in memory. Dataset,
loss (CTC + frame alignment) and dev WER are shared with the video task
(``recogniser.py``).

Augmentation, so that keypoints estimated from generated video are read too:
  - frame-rate jitter (speed 0.8-1.25, frames dropped or repeated);
  - one similarity transform per clip (scale 0.9-1.1, rotation up to 5 degrees, shift up
    to 10 px; the model normalises position and scale away, rotation it must tolerate);
  - Gaussian jitter of every point, sigma up to 3 % of the shoulder width (estimator noise);
  - missed detections: each point hidden with probability up to 5 %, and a whole hand
    hidden in 5 % of frames (hand detectors fail on blurred hands).
No horizontal flip: it would need the COCO-WholeBody left/right permutation of all 133
points, and SynthSign already contains left-handed signers.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import torch

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.synthsign.dataset import read_npz
from signgen.eval.recogniser import SHOULDERS, PoseGlossRecogniser, pose_input, recognise_poses
from signgen.training.tasks.recogniser import (
    GlossClips,
    GlossTaskBase,
    dataset_root,
    recogniser_loss,
)

# COCO-WholeBody: 91-111 left hand, 112-132 right hand.
HANDS = (slice(91, 112), slice(112, 133))
# Only the frame-independent fields of the shared model config apply to this model.
VIDEO_ONLY = ("input_size", "channels")


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.eval.pose_recogniser.train


def build_task(cfg: SignGenConfig) -> PoseRecogniserTask:
    kwargs = {k: v for k, v in asdict(cfg.eval.pose_recogniser.model).items()
              if k not in VIDEO_ONLY}
    return PoseRecogniserTask(dataset_root(cfg), kwargs, seed=cfg.experiment.seed,
                              train_splits=cfg.eval.pose_recogniser.train_splits)


def augment_keypoints(track: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """(T,133,3) float track (x px, y px, visible 0/1) -> the same with the geometric and
    detection augmentations of the module docstring (``GlossClips`` does the frame-rate
    jitter)."""
    points, visible = track[..., :2], track[..., 2]
    angle = math.radians(rng.uniform(-5, 5))
    scale = rng.uniform(0.9, 1.1)
    rotation = scale * torch.tensor([[math.cos(angle), -math.sin(angle)],
                                     [math.sin(angle), math.cos(angle)]], dtype=torch.float32)
    centre = points[:, list(SHOULDERS)].mean((0, 1))
    shift = torch.tensor(rng.uniform(-10, 10, 2), dtype=torch.float32)
    points = (points - centre) @ rotation.T + centre + shift
    width = (points[:, SHOULDERS[0]] - points[:, SHOULDERS[1]]).norm(dim=-1).mean()
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    points = points + torch.randn(points.shape, generator=generator) * (
        rng.uniform(0, 0.03) * width)
    keep = torch.rand(visible.shape, generator=generator) >= rng.uniform(0, 0.05)
    for hand in HANDS:
        keep[:, hand] &= torch.rand(len(track), 1, generator=generator) >= 0.05
    return torch.cat([points, (visible * keep)[..., None]], -1)


def model_input(track: torch.Tensor) -> torch.Tensor:
    """(T,133,3) pixel track -> (T,133,3): ``pose_input``'s normalised x, y and visible."""
    points, visible = pose_input(track[..., :2].numpy(), track[..., 2].numpy() > 0.5)
    return torch.cat([points, visible[..., None].float()], -1)


class PoseRecogniserTask(GlossTaskBase):
    """Trains ``PoseGlossRecogniser`` with CTC on SynthSign ground-truth keypoints."""

    def build_model(self) -> PoseGlossRecogniser:
        return PoseGlossRecogniser(vocabulary=list(self.vocabulary.glosses),
                                   languages=self.languages, **self.model_kwargs)

    def _load(self, samples: list[dict]) -> list[torch.Tensor]:
        tracks = []
        for sample in samples:
            with read_npz(self._folder(sample) / "motion.npz") as motion:
                points = torch.from_numpy(motion["keypoints"]).float()
                visible = torch.from_numpy(motion["visible"]).float()
            tracks.append(torch.cat([points, visible[..., None]], -1))
        return tracks

    def train_dataset(self) -> GlossClips:
        return self._dataset(model_input,
                             lambda track, rng: model_input(augment_keypoints(track, rng)))

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        track = batch["input"]
        output = model(track[..., :2], track[..., 2] > 0.5, batch["language"], batch["valid"])
        return recogniser_loss(output, batch, model.config.temporal_stride)

    def _recognise(self, model, inputs, languages):
        return recognise_poses(model, [x[..., :2].numpy() for x in inputs],
                               [x[..., 2].numpy() > 0.5 for x in inputs], languages)
