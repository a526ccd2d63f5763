"""Training task of the token pose decoder: ``python train.py --stage pose_decoder``.

The avatar's pose comes from the FSQ tokens. The FSQ autoencoder's pose head reads each
frame's tokens alone and shares its training with the embedding reconstruction; this
task trains a :class:`~signgen.models.token_pose_decoder.TokenPoseDecoder` (a copy of
that head plus frame blocks over neighbouring frames) on the frozen FSQ's tokens, so the
token space, and the translator that writes it, stay as they are.

Data: the token folders of ``pose_decoder.train_splits`` made by ``pose_decoder.fsq_model``
(``python -m signgen.data.tokens --fsq ... --split train``; not the canonical-handedness
ones: the targets are each sample's own motion), paired with each sample's ``motion.npz``
and its true body-model joints (computed once); items are windows of
``pose_decoder.clip_length`` frames (every start), read from memory.

Loss: the FSQ pose head's terms (:class:`~signgen.training.tasks.fsq.PoseTargets`):
rotation-matrix MSE, mean body-model joint distance (metres) over body, hand joints and
fingertips, L1 on visible keypoints; weights ``pose_weight``, ``joints_weight``,
``keypoints_weight``.

Evaluation on the dev split's tokens, each sample one clip: ``smplx_joint_error_mm``,
``pose_error_deg``, ``keypoint_error_px`` (as the FSQ task reports them); the export
records the FSQ head's numbers on the same samples (``fsq_head_eval``).

Export: ``save_pretrained`` + ``pose_decoder.json`` (``fsq_id``: the token space it
reads, checked by ``assemble``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.synthsign.dataset import require_dataset_format
from signgen.errors import SignGenError
from signgen.loading import load_pretrained
from signgen.models.translator import corrupt_tokens
from signgen.training.tasks.fsq import PoseTargets, read_motion
from signgen.training.tasks.keypoints import dataset_root

DEV_SAMPLES = 16  # whole dev samples, evenly spread over the split
INFO_FILE = "pose_decoder.json"


def sample_motion(root: Path, sample_id: str, height: int, width: int, num_betas: int,
                  num_expression: int, num_frames: int) -> dict[str, torch.Tensor]:
    """One sample's per-frame ground truth: poses (T,165), betas (T,num_betas), expression
    (T,num_expression), transl (T,3) float32; keypoints (T,133,2) normalised to the
    frame; visible (T,133) bool. ``num_frames``: T of its tokens (checked)."""
    from signgen.models.fsq_autoencoder import pixels_to_keypoints

    arrays = read_motion(root / "samples" / sample_id / "motion.npz", num_frames, num_betas,
                         num_expression, f"its tokens {num_frames}: tokenise the split again")
    out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    for key in ("poses", "betas", "expression", "transl"):
        out[key] = out[key].float()
    out["keypoints"] = pixels_to_keypoints(out["keypoints"].float(), height, width)
    out["visible"] = out["visible"].bool()
    return out


class TokenClips(Dataset):
    """Windows of ``length`` frames (every start) of samples with ``tokens`` (T,S) and
    their ``sample_motion`` fields; a sample shorter than ``length`` is one item, its
    last frame repeated to ``length`` (a held pose: its targets repeat alike)."""

    def __init__(self, samples: list[dict], length: int) -> None:
        self.samples, self.length = samples, length
        self.windows = [(k, start) for k, s in enumerate(samples)
                        for start in range(max(len(s["tokens"]) - length, 0) + 1)]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict:
        k, start = self.windows[index]
        sample = self.samples[k]
        frames = torch.arange(start, start + self.length).clamp(max=len(sample["tokens"]) - 1)
        return {key: value[frames] for key, value in sample.items()
                if isinstance(value, torch.Tensor)}


def collate(items: list[dict]) -> dict:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def load_fsq(folder: Path):
    """The exported FSQ autoencoder in ``folder`` (float32, eval mode)."""
    from signgen.models.fsq_autoencoder import FSQAutoencoder

    if not (folder / "config.json").is_file():
        raise SignGenError(f"no FSQ autoencoder in {folder}; train it with python train.py "
                           f"--stage fsq (or set pose_decoder.fsq_model)")
    return load_pretrained(FSQAutoencoder, folder, dtype=torch.float32).eval() \
        .requires_grad_(False)


class PoseDecoderTask:
    """The token pose decoder's ``TrainingTask`` (see the module doc)."""

    def __init__(self, cfg: SignGenConfig) -> None:
        from signgen.data.tokens import default_tokens_dir, fsq_weights_id, load_tokens

        self.cfg, self.settings = cfg, cfg.pose_decoder
        self.fsq_dir = Path(self.settings.fsq_model)
        self.fsq = load_fsq(self.fsq_dir)
        self.fsq_id = fsq_weights_id(self.fsq_dir)
        self.root = dataset_root(cfg)
        meta = require_dataset_format(self.root, "the token pose decoder")
        self.height, self.width = int(meta["height"]), int(meta["width"])
        self.targets = PoseTargets(cfg.body)
        train_splits = list(self.settings.train_splits)
        self.inputs_version = f"fsq {self.fsq_id}"
        if train_splits != ["train"]:
            self.inputs_version += f" splits {'+'.join(train_splits)}"
        splits = {}
        for split in (*train_splits, "dev"):
            folder = default_tokens_dir(self.root, self.fsq_id, split)
            if not (folder / "meta.json").is_file():
                raise SignGenError(f"no {split} tokens of FSQ checkpoint {self.fsq_id} in "
                                   f"{folder}; make them with python -m signgen.data.tokens "
                                   f"--fsq {self.fsq_dir} --split {split}")
            splits[split] = load_tokens(folder, self.fsq_id).samples
        self.train_samples = self._samples(
            [sample for split in train_splits for sample in splits[split]])
        dev = splits["dev"]
        picked = np.unique(np.linspace(0, len(dev) - 1, min(DEV_SAMPLES, len(dev))).astype(int))
        self.dev_samples = self._samples([dev[k] for k in picked])

    @torch.no_grad()
    def _samples(self, token_samples: list[dict]) -> list[dict]:
        """Token samples -> dicts of tokens (T,S) int64, the ``sample_motion`` fields and
        the true ``joints`` (T,J,3) metres (computed once, not every step)."""
        body = self.targets.body
        samples = []
        for s in token_samples:
            sample = {"tokens": torch.from_numpy(s["tokens"]).long(),
                      **sample_motion(self.root, s["sample_id"], self.height, self.width,
                                      body.num_betas, body.num_expression, len(s["tokens"]))}
            sample["joints"] = self.targets.joints(sample["poses"], sample)
            samples.append(sample)
        return samples

    # -- the TrainingTask protocol -------------------------------------------------------
    def build_model(self):
        from signgen.models.token_pose_decoder import TokenPoseDecoder

        model = TokenPoseDecoder.from_fsq(self.fsq, self.settings.temporal_kernel,
                                          self.settings.temporal_layers,
                                          self.settings.separable_frame_blocks)
        if not self.settings.train_token_features:
            model.token_features().requires_grad_(False)
        return model

    def train_dataset(self) -> TokenClips:
        return TokenClips(self.train_samples, self.settings.clip_length)

    def collate(self, items: list[dict]) -> dict:
        return collate(items)

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        device = next(model.parameters()).device
        frames = batch["tokens"].shape[1]
        flat = {k: v.to(device).flatten(0, 1) for k, v in batch.items()}
        tokens = corrupt_tokens(flat["tokens"], self.settings.token_corruption,
                                self.fsq.codebook_size) if model.training else flat["tokens"]
        terms = self.targets.terms(model(tokens, num_frames=frames), flat)
        s = self.settings
        loss = (s.pose_weight * terms["pose"] + s.joints_weight * terms["joints"]
                + s.keypoints_weight * terms["keypoints"])
        extra = {k: v.item() for k, v in terms.items()}
        extra["joint_error_mm"] = 1000 * extra.pop("joints")
        return loss, extra

    @torch.no_grad()
    def _evaluate(self, decode) -> dict[str, float]:
        """Dev errors of ``decode(tokens (T,S)) -> FSQDecoderOutput``."""
        sums = {"smplx_joint_error_mm": 0.0, "pose_error_deg": 0.0,
                "keypoint_error_px_sum": 0.0, "keypoint_count": 0.0}
        frames = 0
        for item in self.dev_samples:
            errors = self.targets.errors(decode(item["tokens"]), item, self.height, self.width)
            for key, value in errors.items():
                sums[key] += value
            frames += len(item["tokens"])
        return {"smplx_joint_error_mm": sums["smplx_joint_error_mm"] / frames,
                "pose_error_deg": sums["pose_error_deg"] / frames,
                "keypoint_error_px": sums["keypoint_error_px_sum"]
                / max(sums["keypoint_count"], 1)}

    def evaluate(self, model) -> dict[str, float]:
        device = next(model.parameters()).device
        return self._evaluate(lambda tokens: model(tokens.to(device), num_frames=len(tokens)))

    def export(self, model, folder: Path) -> None:
        folder = Path(folder)
        model.save_pretrained(folder)
        fsq_head = self._evaluate(lambda tokens: self.fsq.decode(
            self.fsq.decode_indices(tokens), num_frames=len(tokens), embedding=False))
        info = {"fsq_id": self.fsq_id, "fsq_model": str(self.fsq_dir),
                "dev_samples": len(self.dev_samples), "fsq_head_eval": fsq_head}
        (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


def build_task(cfg: SignGenConfig) -> PoseDecoderTask:
    return PoseDecoderTask(cfg)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.pose_decoder.train
