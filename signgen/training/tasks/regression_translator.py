"""Training task of the continuous-regression translator, issue #7's Progressive-
Transformers baseline (``python train.py --stage regression_translator``).

Data: the SynthSign (or preprocessed corpus) ``train`` split's texts, languages and
SMPL-X ``poses`` (T,165) (``motion.npz``), read once into memory; the ``dev`` split for
evaluation. No FSQ tokens: the model regresses poses directly.

The text tokenizer is trained on the train texts exactly as the token translator's
(``signgen.training.tasks.translator``: fingerspelled names kept out of the vocabulary,
glosses added) and exported with the model. Inputs are always the text (no gloss mixing:
the baseline reads what the evaluation gives it).

Loss (``regression_loss``): MSE of the 6-D rotations of body, jaw and hand joints +
``counter_weight`` x BCE of the progress counter; optionally ``joints_weight`` x the mean
distance (metres) between ``BodyModel`` joints (``fsq.joint_error_indices``) of the
predicted and true pose, with the sample's betas (off by default: it costs a body-model
pass over every frame of the batch). The teacher-forced inputs get Gaussian noise of
``input_noise`` in standardised units (the targets never).

Evaluation on the dev split: teacher-forced ``dev_pose_mse``, ``dev_pose_error_deg``
(mean geodesic angle per joint) and ``dev_counter_error``; greedy decoding of
``DEV_DECODED`` samples gives ``length_error`` (mean |decoded - true| frames) and
``dtw_mje_mm`` (``metrics.dtw_mje`` on the body + hand joints and fingertips, both poses
with the sample's betas, millimetres).

Export: ``save_pretrained`` + the tokenizer (``tokenizer.json``, ``text_tokenizer.json``)
+ ``regression_translator.json`` (languages, dataset plan hash, training settings).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.synthsign.dataset import read_npz, require_dataset_format
from signgen.errors import SignGenError
from signgen.training.tasks.keypoints import dataset_root
from signgen.training.tasks.translator import train_text_tokenizer

DEV_DECODED = 8
# Standardisation floor, relative to the RMS standard deviation (as the FSQ task's): the
# 6-D values that hardly move (legs, the root's neighbours) are not blown up.
SCALE_FLOOR = 0.1
INFO_FILE = "regression_translator.json"


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.regression_translator.train


def build_task(cfg: SignGenConfig) -> RegressionTranslatorTask:
    return RegressionTranslatorTask(cfg)


def load_split(root: Path, split: str) -> list[dict]:
    """Manifest entries of ``split`` with their ``poses`` (T,165) float32 read in."""
    lines = (root / "manifest.jsonl").read_text().splitlines()
    samples = [s for s in map(json.loads, lines) if s["split"] == split]
    if not samples:
        raise SignGenError(f"split {split!r} of {root} has no finished samples")
    for s in samples:
        with read_npz(root / "samples" / s["sample_id"] / "motion.npz") as motion:
            s["poses"] = motion["poses"].astype(np.float32)
            s["betas"] = motion["betas"].astype(np.float32)
    return samples


class RegressionTranslatorTask:
    """Text -> SMPL-X articulated pose per frame (see the module docstring)."""

    def __init__(self, cfg: SignGenConfig) -> None:

        self.cfg, self.settings = cfg, cfg.regression_translator
        root = dataset_root(cfg)
        meta = require_dataset_format(root, "the regression translator")
        self.plan_hash = meta.get("plan_hash")
        self.inputs_version = f"dataset {self.plan_hash}"
        train, dev = load_split(root, "train"), load_split(root, "dev")
        self.tokenizer = train_text_tokenizer(train)
        self.train_items, self.dev_items = self._items(train), self._items(dev)
        self._dev_batches = None
        self._body = None

    def _items(self, samples: list[dict]) -> list[dict]:
        from signgen.models.regression_translator import poses_to_6d

        longest = self.settings.model.max_frames
        items = []
        for s in samples:
            if len(s["poses"]) > longest:
                raise SignGenError(f"{s['sample_id']} has {len(s['poses'])} frames; "
                                   f"regression_translator.model.max_frames is {longest}")
            poses = torch.from_numpy(s["poses"])
            items.append({"sample_id": s["sample_id"],
                          "text": self.tokenizer.encode(s["text"], s["language"]).ids,
                          "poses": poses, "pose6d": poses_to_6d(poses),
                          "betas": torch.from_numpy(s["betas"])})
        return items

    def pose_statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and floored standard deviation (POSE_DIM,) of the train poses' 6-D values."""
        values = torch.cat([item["pose6d"] for item in self.train_items])
        mean, std = values.mean(0), values.std(0)
        floor = SCALE_FLOOR * std.pow(2).mean().sqrt().clamp(min=1e-6)
        return mean, std.clamp(min=floor)

    # -- model -----------------------------------------------------------------------------
    def build_model(self):
        from signgen.models.regression_translator import RegressionTranslator

        model = RegressionTranslator(vocab_size=self.tokenizer.vocab_size,
                                     pad_id=self.tokenizer.pad_id,
                                     **dataclasses.asdict(self.settings.model))
        model.set_pose_statistics(*self.pose_statistics())
        return model

    # -- data ------------------------------------------------------------------------------
    def train_dataset(self) -> list[dict]:
        return self.train_items

    def collate(self, items: list[dict]) -> dict:
        """text_ids (B,L) + text_mask, pose6d (B,T,POSE_DIM) + num_frames (padding repeats
        the last frame; the loss ignores it), poses (B,T,165), betas (B,10)."""
        from signgen.models.regression_translator import POSE_DIM

        length = max(len(item["text"]) for item in items)
        if length > self.settings.model.max_text_length:
            raise SignGenError(f"an input of {length} text ids exceeds "
                               f"regression_translator.model.max_text_length")
        text_ids = torch.full((len(items), length), self.tokenizer.pad_id, dtype=torch.long)
        frames = max(len(item["poses"]) for item in items)
        pose6d = torch.zeros(len(items), frames, POSE_DIM)
        poses = torch.zeros(len(items), frames, 165)
        for row, item in enumerate(items):
            text_ids[row, :len(item["text"])] = torch.tensor(item["text"])
            n = len(item["poses"])
            pose6d[row, :n], pose6d[row, n:] = item["pose6d"], item["pose6d"][-1]
            poses[row, :n], poses[row, n:] = item["poses"], item["poses"][-1]
        return {"text_ids": text_ids, "text_mask": text_ids != self.tokenizer.pad_id,
                "pose6d": pose6d, "poses": poses,
                "num_frames": torch.tensor([len(item["poses"]) for item in items]),
                "betas": torch.stack([item["betas"] for item in items]),
                "sample_ids": [item["sample_id"] for item in items]}

    # -- loss ------------------------------------------------------------------------------
    def body(self, device):
        """The body model (built on first use) and the joints the joint terms compare."""
        if self._body is None:
            from signgen.body.model import BodyModel
            from signgen.training.tasks.fsq import joint_error_indices

            body = self.cfg.body
            self._body = (BodyModel(body.model_dir, body.gender, body.num_betas,
                                    body.num_expression).eval().requires_grad_(False),
                          list(joint_error_indices()))
        self._body[0].to(device)
        return self._body

    def joints(self, poses: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """(N,165) poses, (N,num_betas) betas -> (N,J,3) metres (``joint_error_indices``),
        zero expression and translation (as SynthSign's); float32 under any autocast."""
        from signgen.body.model import SMPLXParams
        from signgen.precision import float32

        body, indices = self.body(poses.device)
        with float32(poses.device):
            params = SMPLXParams.from_full_pose(poses.float(), betas[:, :body.num_betas].float())
            return body(params).joints[:, indices]

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        from signgen.models.regression_translator import poses_from_6d, regression_loss

        device = next(model.parameters()).device
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        out = model(batch["text_ids"], batch["text_mask"], batch["pose6d"],
                    input_noise=self.settings.input_noise)
        loss, extra = regression_loss(out, batch["pose6d"], batch["num_frames"],
                                      self.settings.counter_weight)
        if self.settings.joints_weight > 0:
            real = (torch.arange(batch["pose6d"].shape[1], device=device)[None]
                    < batch["num_frames"][:, None])
            betas = batch["betas"][:, None].expand(-1, real.shape[1], -1)[real]
            with torch.no_grad():
                true = self.joints(batch["poses"][real], betas)
            predicted = self.joints(poses_from_6d(out.poses[real].float()), betas)
            error = (predicted - true).norm(dim=-1).mean()
            loss = loss + self.settings.joints_weight * error
            extra["joint_error_mm"] = 1000 * error.item()
        return loss, extra

    # -- evaluation and export ------------------------------------------------------------
    def evaluate(self, model) -> dict[str, float]:
        from signgen.eval.metrics import dtw_mje
        from signgen.models.fsq_autoencoder import rotation_6d_to_matrix
        from signgen.models.regression_translator import regression_loss

        device = next(model.parameters()).device
        if self._dev_batches is None:
            self._dev_batches = [self.collate(self.dev_items[i:i + 32])
                                 for i in range(0, len(self.dev_items), 32)]
        sums = {"mse": 0.0, "deg": 0.0, "counter": 0.0}
        for batch in self._dev_batches:
            b = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            out = model(b["text_ids"], b["text_mask"], b["pose6d"])
            _, extra = regression_loss(out, b["pose6d"], b["num_frames"])
            real = (torch.arange(b["pose6d"].shape[1], device=device)[None]
                    < b["num_frames"][:, None])
            n = len(batch["sample_ids"])
            predicted, true = (rotation_6d_to_matrix(x[real].view(-1, 6))
                               for x in (out.poses.float(), b["pose6d"]))
            cosine = (((predicted.transpose(-1, -2) @ true).diagonal(dim1=-2, dim2=-1)
                       .sum(-1) - 1) / 2).clamp(-1, 1)
            sums["mse"] += extra["pose_mse"] * n
            sums["counter"] += extra["counter_error"] * n
            sums["deg"] += torch.rad2deg(torch.acos(cosine)).mean().item() * n
        count = len(self.dev_items)
        decoded_items = self.dev_items[:DEV_DECODED]
        batch = self.collate(decoded_items)
        decoded = model.generate(batch["text_ids"].to(device), batch["text_mask"].to(device),
                                 max_frames=self.settings.model.max_frames)
        errors = []
        with torch.no_grad():
            for poses, item in zip(decoded, decoded_items, strict=True):
                betas = item["betas"][None]
                predicted = self.joints(poses.to(device), betas.expand(len(poses), -1).to(device))
                true = self.joints(item["poses"].to(device),
                                   betas.expand(len(item["poses"]), -1).to(device))
                errors.append(1000 * dtw_mje(true.cpu().numpy(), predicted.cpu().numpy()))
        return {"dev_pose_mse": sums["mse"] / count, "dev_pose_error_deg": sums["deg"] / count,
                "dev_counter_error": sums["counter"] / count,
                "length_error": float(np.mean([abs(len(d) - len(i["poses"]))
                                               for d, i in zip(decoded, decoded_items,
                                                               strict=True)])),
                "dtw_mje_mm": float(np.mean(errors))}

    def export(self, model, folder: Path) -> None:
        folder = Path(folder)
        model.save_pretrained(folder)
        self.tokenizer.save(folder)
        info = {"languages": self.tokenizer.languages, "dataset_plan_hash": self.plan_hash,
                "input_noise": self.settings.input_noise,
                "counter_weight": self.settings.counter_weight,
                "joints_weight": self.settings.joints_weight}
        (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
