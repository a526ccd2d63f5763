"""Training task of the video back-translation recogniser (``--stage video_pose_recogniser``).

Reading glosses from a 128 px video is a two-step job here: the shipped keypoint
estimator (``eval.weights_dir/keypoints``, trained on ground-truth frames) and hand
refiner (``eval.weights_dir/hand_keypoints``) turn each frame into 133 keypoints
(:class:`~signgen.eval.hand_keypoints.VideoKeypointReader`), and a
``PoseGlossRecogniser`` reads the keypoint sequence.
This task trains that recogniser on what the *estimator* sees in the ground-truth train
videos, not on the true keypoints: the estimator's hand points are off by ~7 % of the
shoulder width (a few pixels), and a recogniser trained on exact keypoints misreads
them (measured: 54 % dev WER against 7 % on exact keypoints).

Estimated keypoints are cached per sample, the estimator's alone in
``<dataset>/cache/keypoints-<estimator hash>/<sample_id>.npz`` and with refined hands in
``<dataset>/cache/keypoints-<estimator hash>-<refiner hash>/`` (keypoints (T,133,2)
float32 pixels, confidence (T,133) float32), so retraining does not re-run either model
and a new refiner re-uses the estimator's cache; the hashes are of the weights, so new
weights never read stale caches.
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
from signgen.training.tasks.pose_recogniser import VIDEO_ONLY, PoseRecogniserTask
from signgen.training.tasks.recogniser import dataset_root


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.eval.video_pose_recogniser.train


def build_task(cfg: SignGenConfig) -> VideoPoseRecogniserTask:
    kwargs = {k: v for k, v in asdict(cfg.eval.video_pose_recogniser.model).items()
              if k not in VIDEO_ONLY}
    return VideoPoseRecogniserTask(dataset_root(cfg), kwargs, seed=cfg.experiment.seed,
                                   weights_dir=Path(cfg.eval.weights_dir),
                                   train_splits=cfg.eval.video_pose_recogniser.train_splits)


class VideoPoseRecogniserTask(PoseRecogniserTask):
    """``PoseRecogniserTask`` on keypoints estimated from the ground-truth videos."""

    def __init__(self, root, model_kwargs: dict, seed: int = 0, *, weights_dir: Path,
                 **kwargs) -> None:
        from signgen.eval.hand_keypoints import VideoKeypointReader

        super().__init__(root, model_kwargs, seed=seed, **kwargs)
        self.weights_dir = Path(weights_dir)
        self.reader = VideoKeypointReader.from_weights_dir(self.weights_dir)
        self.coarse_cache = self.root / "cache" / f"keypoints-{self.reader.estimator_hash}"
        self.cache = self.root / "cache" / f"keypoints-{self.reader.version}"
        self.inputs_version = f"keypoint reader {self.reader.version}"

    @staticmethod
    def _read_cache(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        if not path.is_file():
            return None
        with np.load(path) as cached:
            return cached["keypoints"], cached["confidence"]

    @staticmethod
    def _write_cache(path: Path, keypoints: np.ndarray, confidence: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}")
        with open(tmp, "wb") as f:
            np.savez(f, keypoints=keypoints, confidence=confidence)
        tmp.replace(path)  # a killed run never leaves a half-written cache entry

    def _estimate(self, sample: dict) -> tuple[np.ndarray, np.ndarray]:
        from signgen.data.synthsign.dataset import read_video

        name = f"{sample['sample_id']}.npz"
        refined = self._read_cache(self.cache / name)
        if refined is not None:
            return refined
        frames = read_video(self._folder(sample) / "video.mp4")
        coarse = self._read_cache(self.coarse_cache / name)
        if coarse is None:
            coarse = self.reader.coarse(frames)
            self._write_cache(self.coarse_cache / name, *coarse)
        refined = self.reader.refine(frames, *coarse)
        self._write_cache(self.cache / name, *refined)
        return refined

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
            raise SignGenError(f"the keypoint estimator in {self.weights_dir} finds no "
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
        info["keypoint_estimator_hash"] = self.reader.estimator_hash
        info["keypoint_reader_version"] = self.reader.version
        info_path.write_text(json.dumps(info, indent=2) + "\n")
