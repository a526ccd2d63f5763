"""Training task of the signer-identity embedding (``python train.py --stage identity``).

Data: ``FRAMES_PER_CLIP`` evenly spaced frames of every SynthSign training video plus
each training signer's reference image (repeated ``REFERENCE_REPEATS`` times, since the
references are what clips are matched against), decoded once, downscaled to the model's
``input_size`` and held in memory. Classes: the signers of the train split (the unseen test
signers never occur there).

Loss: CosFace (cross-entropy over ``logit_scale`` x (cosine - ``MARGIN`` at the true
class)), so that frames of a signer cluster tightly and the embedding transfers to
signers never seen in training.

Augmentation: a small random zoom and shift (framing varies between videos), light blur
and pixel noise (generated video is softer and noisier), and small brightness/contrast
jitter. Colours are kept (hue is not jittered) because colour is most
of what identifies a SynthSign signer: skin, hair, shirt and background. No horizontal
flip: handedness is part of a signer (one in six is left-handed) and shirts and hair
styles need not be symmetric; generated videos are never mirrored, so the embedding does
not need to be mirror-invariant.

Evaluation: clip-to-reference retrieval top-1 (see
:func:`signgen.eval.identity.retrieval_top1`) for the test_unseen_signers clips against
the unseen signers' references (``top1/unseen``, the number the suite reports) and
against all references (``top1/unseen_vs_all``), and for dev clips (seen signers)
against the training signers' references (``top1/dev``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.errors import SignGenError
from signgen.eval.identity import IdentityEncoder, embed_frames, retrieval_top1
from signgen.training.tasks.keypoints import cache_frames, dataset_root

FRAMES_PER_CLIP = 10  # training frames per video
REFERENCE_REPEATS = 40  # each training signer's reference image, this many times per epoch
EVAL_FRAMES_PER_CLIP = 8  # as embed_clip's default
MARGIN = 0.2  # CosFace additive cosine margin
MAX_ZOOM = 0.12  # zoom in [1, 1 + MAX_ZOOM]
MAX_SHIFT = 0.05  # fraction of the frame side
BLUR_PROBABILITY = 0.3  # a 3x3 box blur mixed in with a random weight
MAX_NOISE = 0.03  # pixel noise sigma, in [-1, 1] units


def load_references(root: Path, signer_ids: list[str], size: int) -> torch.Tensor:
    """(M,size,size,3) uint8 reference images of ``signer_ids``."""
    from PIL import Image

    images = []
    for signer in signer_ids:
        path = root / "references" / f"{signer}.png"
        if not path.is_file():
            raise SignGenError(f"reference image {path} is missing; finish generating the "
                               f"dataset: python -m signgen.data.synthsign generate")
        image = Image.open(path).convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        images.append(torch.from_numpy(np.asarray(image).copy()))
    return torch.stack(images)


class IdentityFrames(Dataset):
    """Items (frame (S,S,3) uint8, signer class index)."""

    def __init__(self, frames: torch.Tensor, labels: torch.Tensor) -> None:
        self.frames, self.labels = frames, labels

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> tuple:
        return self.frames[index], self.labels[index]


def augment(frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random zoom-in/shift, light blur and noise, and mild brightness/contrast of
    (B,3,S,S) frames in [-1,1]."""
    b, _, size, _ = frames.shape

    def uniform(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    scale = 1 + MAX_ZOOM * torch.rand(b, generator=generator)
    shift = 2 * MAX_SHIFT * uniform(b, 2)  # normalised units
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = -shift / scale[:, None]
    grid = F.affine_grid(theta, list(frames.shape), align_corners=False)
    frames = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border",
                           align_corners=False)
    # Generated video is softer and noisier than rendered video; neither changes who it is.
    blurred = F.avg_pool2d(F.pad(frames, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    amount = torch.rand(b, 1, 1, 1, generator=generator) * (
        torch.rand(b, 1, 1, 1, generator=generator) < BLUR_PROBABILITY)
    frames = torch.lerp(frames, blurred, amount)
    noise = MAX_NOISE * torch.rand(b, 1, 1, 1, generator=generator)
    frames = frames + noise * torch.randn(frames.shape, generator=generator)
    contrast = 1 + 0.05 * uniform(b, 1, 1, 1)
    brightness = 0.04 * uniform(b, 1, 1, 1)
    mean = frames.mean(dim=(1, 2, 3), keepdim=True)
    return ((frames - mean) * contrast + mean + brightness).clamp(-1, 1)


class IdentityTask:
    """``TrainingTask`` of :class:`IdentityEncoder` on SynthSign."""

    def __init__(self, cfg: SignGenConfig) -> None:
        self.cfg = cfg
        self.root = dataset_root(cfg)
        self.model_kwargs = dataclasses.asdict(cfg.eval.identity.model)
        self.size = self.model_kwargs["input_size"]
        self._eval: dict | None = None
        meta_path, signers_path = self.root / "meta.json", self.root / "signers.json"
        if not meta_path.is_file() or not signers_path.is_file():
            raise SignGenError(f"{self.root} is not a SynthSign dataset (no meta.json or "
                               f"signers.json); generate one with: python -m "
                               f"signgen.data.synthsign generate")
        self.all_signers = [s["signer_id"] for s in json.loads(signers_path.read_text())]
        self.unseen_signers = list(json.loads(meta_path.read_text())["unseen_signers"])
        # The classes: the seen signers, in the dataset's order.
        self.signers = [s for s in self.all_signers if s not in self.unseen_signers]

    def build_model(self) -> IdentityEncoder:
        return IdentityEncoder(**self.model_kwargs, num_classes=len(self.signers))

    def train_dataset(self) -> Dataset:
        cache = cache_frames(self.root, "train", 1, self.size, frames_per_clip=FRAMES_PER_CLIP,
                             with_motion=False)
        index = {s: i for i, s in enumerate(self.signers)}
        labels = torch.tensor([index[cache["signer_ids"][c]] for c in cache["clip"].tolist()])
        references = load_references(self.root, self.signers, self.size)
        ref_labels = torch.arange(len(self.signers))
        frames = torch.cat([cache["frames"], references.repeat(REFERENCE_REPEATS, 1, 1, 1)])
        labels = torch.cat([labels, ref_labels.repeat(REFERENCE_REPEATS)])
        return IdentityFrames(frames, labels)

    def collate(self, items: list) -> dict:
        frames = torch.stack([f for f, _ in items]).permute(0, 3, 1, 2).float() / 127.5 - 1
        return {"frames": augment(frames), "labels": torch.stack([y for _, y in items])}

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        device = next(model.parameters()).device  # the loop leaves batches where collate made them
        out = model(batch["frames"].to(device))
        labels = batch["labels"].to(device)
        scale = self.model_kwargs["logit_scale"]
        margin = F.one_hot(labels, out.logits.shape[1]) * (scale * MARGIN)
        loss = F.cross_entropy(out.logits - margin, labels)
        accuracy = (out.logits.argmax(dim=1) == labels).float().mean()
        return loss, {"accuracy": accuracy.item()}

    def _eval_sets(self) -> dict:
        if self._eval is None:
            self._eval = {split: cache_frames(self.root, split, 1, self.size,
                                              frames_per_clip=EVAL_FRAMES_PER_CLIP,
                                              with_motion=False)
                          for split in ("test_unseen_signers", "dev")}
            self._eval["references"] = load_references(self.root, self.all_signers, self.size)
        return self._eval

    def evaluate(self, model: IdentityEncoder) -> dict[str, float]:
        sets = self._eval_sets()
        refs = dict(zip(self.all_signers, embed_frames(model, sets["references"]), strict=True))

        def top1(cache: dict, candidates: list[str]) -> float:
            emb = torch.from_numpy(embed_frames(model, cache["frames"]))
            clips = torch.zeros(len(cache["sample_ids"]), emb.shape[1]).index_add_(
                0, cache["clip"], emb)
            return retrieval_top1(F.normalize(clips, dim=1).numpy(), cache["signer_ids"],
                                  np.stack([refs[s] for s in candidates]), candidates)

        unseen = sets["test_unseen_signers"]
        return {"top1/unseen": top1(unseen, self.unseen_signers),
                "top1/unseen_vs_all": top1(unseen, self.all_signers),
                "top1/dev": top1(sets["dev"], self.signers)}

    def export(self, model: IdentityEncoder, folder: Path) -> None:
        model.save_pretrained(folder)


def build_task(cfg: SignGenConfig) -> IdentityTask:
    return IdentityTask(cfg)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.eval.identity.train
