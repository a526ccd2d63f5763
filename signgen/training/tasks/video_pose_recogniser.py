"""Training task of the video back-translation recogniser (``--stage video_pose_recogniser``).

Reading glosses from a 128 px video is a two-step job here: the shipped keypoint
estimator (``eval.weights_dir/keypoints``, trained on ground-truth frames) turns each
frame into 133 keypoints, and a ``PoseGlossRecogniser`` reads the keypoint sequence.
This task trains that recogniser on what the *estimator* sees in the ground-truth train
videos, not on the true keypoints: the estimator's hand points are off by ~7 % of the
shoulder width (a few pixels), and a recogniser trained on exact keypoints misreads
them (measured: 54 % dev WER against 7 % on exact keypoints).

Estimated keypoints are cached per sample in
``<dataset>/cache/keypoints-<estimator hash>/<sample_id>.npz`` (keypoints (T,133,2)
float32 pixels, confidence (T,133) float32), so retraining does not re-run the estimator;
the hash is of the estimator's weights, so a new estimator never reads stale caches.
Augmentation, loss and evaluation are the pose recogniser's.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.errors import SignGenError
from signgen.eval.keypoints import VISIBLE_CONFIDENCE
from signgen.paths import weights_hash
from signgen.training.tasks.pose_recogniser import VIDEO_ONLY, PoseRecogniserTask
from signgen.training.tasks.recogniser import dataset_root


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.eval.video_pose_recogniser.train


def build_task(cfg: SignGenConfig) -> VideoPoseRecogniserTask:
    kwargs = {k: v for k, v in asdict(cfg.eval.video_pose_recogniser.model).items()
              if k not in VIDEO_ONLY}
    return VideoPoseRecogniserTask(dataset_root(cfg), kwargs, seed=cfg.experiment.seed,
                                   estimator_dir=Path(cfg.eval.weights_dir) / "keypoints")


class VideoPoseRecogniserTask(PoseRecogniserTask):
    """``PoseRecogniserTask`` on keypoints estimated from the ground-truth videos."""

    def __init__(self, root, model_kwargs: dict, seed: int = 0, *, estimator_dir: Path,
                 **kwargs) -> None:
        super().__init__(root, model_kwargs, seed=seed, **kwargs)
        self.estimator_dir = Path(estimator_dir)
        if not (self.estimator_dir / "config.json").is_file():
            raise SignGenError(f"the keypoint estimator is not in {self.estimator_dir}; "
                               f"train it first: python train.py --stage keypoints")
        self.estimator_hash = weights_hash(self.estimator_dir)
        self.cache = self.root / "cache" / f"keypoints-{self.estimator_hash}"
        self._estimator = None

    def _estimate(self, sample: dict) -> tuple[np.ndarray, np.ndarray]:
        from signgen.data.synthsign.dataset import read_video
        from signgen.eval.keypoints import KeypointEstimator, estimate_keypoints

        path = self.cache / f"{sample['sample_id']}.npz"
        if path.is_file():
            with np.load(path) as cached:
                return cached["keypoints"], cached["confidence"]
        if self._estimator is None:
            self._estimator = KeypointEstimator.from_pretrained(self.estimator_dir).eval()
        keypoints, confidence = estimate_keypoints(
            self._estimator, read_video(self._folder(sample) / "video.mp4"))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}")
        with open(tmp, "wb") as f:
            np.savez(f, keypoints=keypoints, confidence=confidence)
        tmp.replace(path)  # a killed run never leaves a half-written cache entry
        return keypoints, confidence

    def _load(self, samples: list[dict]) -> list[torch.Tensor]:
        from tqdm import tqdm

        tracks = []
        for sample in tqdm(samples, desc="estimating keypoints", unit="video",
                           disable=not self.progress):
            keypoints, confidence = self._estimate(sample)
            if len(keypoints) != sample["num_frames"]:
                raise SignGenError(f"{sample['sample_id']}: {len(keypoints)} estimated "
                                   f"frames, sample.json says {sample['num_frames']}")
            visible = torch.from_numpy(confidence > VISIBLE_CONFIDENCE).float()
            tracks.append(torch.cat([torch.from_numpy(keypoints).float(),
                                     visible[..., None]], -1))
        return tracks

    def train_dataset(self):
        """The pose recogniser's dataset, without train clips in which the estimator finds
        no frame with both shoulders (they cannot be normalised)."""
        from signgen.eval.recogniser import shows_shoulders

        readable = []
        for sample in self.train_samples:
            keypoints, confidence = self._estimate(sample)
            if shows_shoulders(keypoints, confidence > VISIBLE_CONFIDENCE):
                readable.append(sample)
        if not readable:
            raise SignGenError(f"the keypoint estimator in {self.estimator_dir} finds no "
                               f"shoulders in any train video; is it trained?")
        if len(readable) < len(self.train_samples):
            print(f"warning: {len(self.train_samples) - len(readable)} train videos skipped "
                  f"(the estimator finds no shoulders in them)")
        self.train_samples = readable
        return super().train_dataset()

    def export(self, model, folder: Path) -> None:
        super().export(model, folder)
        info_path = Path(folder) / "dataset.json"
        info = json.loads(info_path.read_text())
        info["keypoint_estimator_hash"] = self.estimator_hash
        info_path.write_text(json.dumps(info, indent=2) + "\n")
