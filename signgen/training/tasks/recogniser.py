"""Training task of the video back-translation recogniser (``--stage recogniser``).

Data: the SynthSign ``train`` split only (ground-truth videos); every mp4 is decoded
once, resized to the model's ``input_size`` (area interpolation, 128 -> 64) and kept in
memory as uint8 (1600 clips x ~56 frames x 3x64x64 ~ 1.1 GB). Evaluation: WER of greedy
CTC decoding on a fixed dev subset (the first ``dev_samples`` dev clips).

Loss: CTC (``zero_infinity``) plus ``ALIGNMENT_WEIGHT`` x a frame-wise cross-entropy
towards SynthSign's known alignment (``frame_gloss``: the sign's gloss on its stroke
frames, the blank on transitions; the first and last frame of every segment are
ignored, as the boundaries are soft, and so is a model step whose ``temporal_stride``
frames disagree). That labelling is one of the paths CTC sums over,
so the two losses agree; the alignment term skips CTC's long all-blank plateau, which
matters with the few epochs a 2-core CPU affords. Inference is plain CTC decoding.

Augmentation, so that the recogniser also reads *generated* video, which is blurrier,
drifts in colour and timing, and frames the signer slightly differently:
  - frame-rate jitter: the clip is resampled at a random speed in [0.8, 1.25] (dropping
    or repeating frames), as generated signing may be faster or slower;
  - one random similarity transform per clip (scale 0.92-1.08, shift up to 6 % of the
    frame, rotation up to 3 degrees), with border replication (the backgrounds are flat);
  - horizontal flip with probability 1/2: a mirrored right-handed signer is a left-handed
    signer making the same sign (SynthSign's left-handers are mirrored the same way), so
    the glosses do not change;
  - colour: brightness +-0.1, contrast 0.8-1.2, saturation 0.7-1.3, per-channel gain
    0.9-1.1; Gaussian blur (sigma 0.3-1.0) for 30 % of clips; pixel noise (sigma up to
    0.03) for 30 % of clips.
  - gloss splicing (``SPLICE_PROBABILITY`` of the items): the clip is rebuilt from 2-3
    runs of consecutive signs cut out of clips of the same signer and language, cut in
    the middle of the transitions between signs. The test sets hold *novel* sentences;
    without splicing the recogniser memorises the 1,600 training sentences (measured:
    pose recogniser, train CTC 0.03 while dev WER stalled at 25 %).
The pose recogniser's task (``pose_recogniser.py``) reuses the dataset, CTC loss and
evaluation code here.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.synthsign.dataset import SynthSignDataset, read_npz, read_video
from signgen.data.synthsign.lexicon import Lexicon
from signgen.errors import ConfigError, SignGenError
from signgen.eval.metrics import wer
from signgen.eval.recogniser import (
    GlossVocabulary,
    RecogniserOutput,
    VideoGlossRecogniser,
    recognise,
    resize_video,
)

DEV_SAMPLES = 100
ALIGNMENT_WEIGHT = 1.0
SPLICE_PROBABILITY = 0.6
IGNORE = -100  # frame label that the cross-entropy skips


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.eval.recogniser.train


def build_task(cfg: SignGenConfig) -> VideoRecogniserTask:
    return VideoRecogniserTask(dataset_root(cfg), asdict(cfg.eval.recogniser.model),
                               seed=cfg.experiment.seed,
                               train_splits=cfg.eval.recogniser.train_splits)


def dataset_root(cfg: SignGenConfig) -> Path:
    """The SynthSign folder the recognisers train on."""
    if cfg.data.dataset != "synthsign":
        raise ConfigError(f"the recognisers train on SynthSign; data.dataset is "
                          f"{cfg.data.dataset!r}")
    return Path(cfg.data.root) / cfg.data.dataset


def _speed_indices(rng: np.random.Generator, length: int, low: float = 0.8,
                   high: float = 1.25) -> np.ndarray:
    """Frame indices that replay a clip of ``length`` frames at a random speed (log-uniform
    in [low, high]): frames are dropped (faster) or repeated (slower)."""
    speed = math.exp(rng.uniform(math.log(low), math.log(high)))
    return np.minimum(np.round(np.arange(0, length - 0.5, speed)).astype(np.int64), length - 1)


def augment_frames(frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """(T,3,S,S) uint8 -> (T,3,S,S) float in [-1,1] with the spatial and colour
    augmentations listed in the module docstring (one draw of every parameter per clip;
    ``GlossClips`` does the frame-rate jitter)."""
    x = frames.float() / 255
    angle = math.radians(rng.uniform(-3, 3))
    scale = rng.uniform(0.92, 1.08)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    theta = torch.tensor([[flip * math.cos(angle) / scale, -math.sin(angle) / scale,
                           rng.uniform(-0.12, 0.12)],
                          [flip * math.sin(angle) / scale, math.cos(angle) / scale,
                           rng.uniform(-0.12, 0.12)]], dtype=torch.float32)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * rng.uniform(0.7, 1.3)
    x = (x - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.1, 0.1)
    x = x * torch.tensor(rng.uniform(0.9, 1.1, 3), dtype=torch.float32)[:, None, None]
    if rng.random() < 0.3:
        sigma = rng.uniform(0.3, 1.0)
        taps = torch.exp(-torch.arange(-2, 3, dtype=torch.float32) ** 2 / (2 * sigma**2))
        taps = taps / taps.sum()
        kernel = (taps[:, None] * taps[None, :]).expand(3, 1, 5, 5)
        x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=3)
    if rng.random() < 0.3:
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        x = x + torch.randn(x.shape, generator=generator) * rng.uniform(0, 0.03)
    return x.clamp(0, 1) * 2 - 1


def frame_labels(frame_gloss: np.ndarray, targets: list[int]) -> torch.Tensor:
    """(T,) SynthSign ``frame_gloss`` (index into the sample's glosses, -1 between strokes)
    -> (T,) int64 class per frame: the gloss's class, the blank (0) between strokes, and
    ``IGNORE`` on the first and last frame of every segment (soft boundaries)."""
    labels = torch.tensor([targets[g] if g >= 0 else GlossVocabulary.blank
                           for g in frame_gloss.tolist()], dtype=torch.long)
    change = labels[1:] != labels[:-1]
    labels[1:][change] = IGNORE
    labels[:-1][change] = IGNORE
    return labels


class GlossClips(Dataset):
    """Cached clips of one split with their CTC targets and frame labels.

    ``inputs[i]`` is whatever the model reads, time first (e.g. (T,3,S,S) uint8 frames).
    Without ``augment`` an item's input is ``plain(inputs[i])``; with it, the clip is
    first replayed at a random speed (frames dropped or repeated, labels alike), then
    ``augment(clip, rng)`` makes the model input. Items: dict(input, targets (L,) int64,
    frame_labels (T,) int64, language int). Augmentation is deterministic per (seed,
    epoch, index).
    """

    def __init__(self, inputs: list, targets: list[list[int]], labels: list[torch.Tensor],
                 languages: list[int], plain, augment=None, seed: int = 0,
                 frame_gloss: list[np.ndarray] | None = None,
                 groups: list[str] | None = None) -> None:
        self.inputs, self.targets, self.labels = inputs, targets, labels
        self.languages = languages
        self.plain, self.augment, self.seed, self.epoch = plain, augment, seed, 0
        # For splicing: per-frame gloss positions and clips grouped by signer + language.
        self.frame_gloss = frame_gloss
        self.by_group: dict[str, list[int]] = {}
        for i, group in enumerate(groups or []):
            self.by_group.setdefault(group, []).append(i)
        self.groups = groups

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.inputs)

    def _span(self, j: int, rng: np.random.Generator):
        """A random run of consecutive signs of clip j: (input, labels, targets), cut in
        the middle of the transitions around it."""
        gloss = self.frame_gloss[j]
        count = len(self.targets[j])
        a = int(rng.integers(0, count))
        b = int(rng.integers(a + 1, min(count, a + 3) + 1))
        first = np.flatnonzero(gloss == a)[0]
        last = np.flatnonzero(gloss == b - 1)[-1]
        start = 0 if a == 0 else (np.flatnonzero(gloss == a - 1)[-1] + first + 1) // 2
        end = len(gloss) if b == count else (last + np.flatnonzero(gloss == b)[0] + 1) // 2
        labels = self.labels[j][start:end].clone()
        labels[:1] = IGNORE  # the cut is a jump in motion: no frame label there
        labels[-1:] = IGNORE
        return self.inputs[j][start:end], labels, self.targets[j][a:b]

    def _splice(self, index: int, rng: np.random.Generator):
        pool = self.by_group[self.groups[index]]
        parts = [self._span(index, rng)]
        for _ in range(int(rng.integers(1, 3))):
            parts.append(self._span(int(pool[rng.integers(len(pool))]), rng))
        return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
                [t for p in parts for t in p[2]])

    def __getitem__(self, index: int) -> dict:
        x, labels, targets = self.inputs[index], self.labels[index], self.targets[index]
        if self.augment is None:
            x = self.plain(x)
        else:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if self.frame_gloss is not None and rng.random() < SPLICE_PROBABILITY:
                x, labels, targets = self._splice(index, rng)
            keep = torch.from_numpy(_speed_indices(rng, len(x)))
            x, labels = self.augment(x[keep], rng), labels[keep]
        return {"input": x, "targets": torch.tensor(targets, dtype=torch.long),
                "frame_labels": labels, "language": self.languages[index]}


def pad_batch(items: list[dict]) -> dict:
    """Pad every item's input to the longest clip: input (B,T,…) zeros-padded, valid (B,T)
    bool, language (B,) int64, targets (sum L,) int64, target_lengths (B,) int64, and
    frame_labels (B,T) int64 (``IGNORE`` on padding) when the items have them."""
    longest = max(len(item["input"]) for item in items)
    first = items[0]["input"]
    inputs = first.new_zeros((len(items), longest, *first.shape[1:]))
    valid = torch.zeros(len(items), longest, dtype=torch.bool)
    labels = torch.full((len(items), longest), IGNORE, dtype=torch.long)
    for i, item in enumerate(items):
        inputs[i, : len(item["input"])] = item["input"]
        valid[i, : len(item["input"])] = True
        if "frame_labels" in item:
            labels[i, : len(item["frame_labels"])] = item["frame_labels"]
    return {"input": inputs, "valid": valid, "frame_labels": labels,
            "language": torch.tensor([item["language"] for item in items], dtype=torch.long),
            "targets": torch.cat([item["targets"] for item in items]),
            "target_lengths": torch.tensor([len(item["targets"]) for item in items],
                                           dtype=torch.long)}


def group_labels(labels: torch.Tensor, stride: int) -> torch.Tensor:
    """(B,T) frame labels -> (B,T') labels of the model's steps (``stride`` frames each):
    the common label of the group's frames, ``IGNORE`` where they differ."""
    b, t = labels.shape
    labels = F.pad(labels, (0, (-t) % stride), value=IGNORE).view(b, -1, stride)
    same = (labels == labels[..., :1]).all(-1)
    return torch.where(same, labels[..., 0], IGNORE)


def ctc_loss(output: RecogniserOutput, batch: dict) -> torch.Tensor:
    """Mean CTC loss (per target gloss) of a recogniser's output against a ``pad_batch``."""
    return F.ctc_loss(output.log_probs.transpose(0, 1), batch["targets"],
                      output.valid.sum(1), batch["target_lengths"],
                      blank=GlossVocabulary.blank, reduction="mean", zero_infinity=True)


def recogniser_loss(output: RecogniserOutput, batch: dict, stride: int
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """CTC + ``ALIGNMENT_WEIGHT`` x frame-wise cross-entropy (see the module docstring);
    ``stride`` is the model's ``temporal_stride``."""
    ctc = ctc_loss(output, batch)
    labels = group_labels(batch["frame_labels"], stride)
    if not ALIGNMENT_WEIGHT or not (labels != IGNORE).any():
        return ctc, {"ctc": ctc.item()}
    frame = F.nll_loss(output.log_probs.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    return ctc + ALIGNMENT_WEIGHT * frame, {"ctc": ctc.item(), "frame_ce": frame.item()}


class GlossTaskBase:
    """What both recogniser tasks share: lexicon and vocabulary of the dataset, sample
    lists, targets, collate, evaluation bookkeeping and export."""

    def __init__(self, root: str | Path, model_kwargs: dict, seed: int = 0,
                 dev_samples: int = DEV_SAMPLES, max_train: int | None = None,
                 progress: bool = True, train_splits=("train",)) -> None:
        self.root = Path(root)
        self.train_splits = list(train_splits)
        train = SynthSignDataset(self.root, "train", fields=())
        meta = train.meta
        self.plan_hash = meta.get("plan_hash")
        if meta.get("status") != "complete":
            print(f"warning: {self.root} is not completely generated "
                  f"({meta.get('finished', '?')} samples finished); training on what exists")
        lexicon = Lexicon.load(self.root / "lexicon.json")
        self.vocabulary = GlossVocabulary.from_lexicon(lexicon)
        self.languages = list(lexicon.languages)
        self.model_kwargs = dict(model_kwargs)
        self.seed, self.progress = seed, progress
        samples = [sample for split in self.train_splits for sample in
                   (train if split == "train" else
                    SynthSignDataset(self.root, split, fields=())).samples]
        self.train_samples = samples[:max_train]
        self.dev_samples = (SynthSignDataset(self.root, "dev", fields=()).samples[:dev_samples]
                            if dev_samples else [])
        self._dev_inputs = None

    def _targets(self, samples: list[dict]):
        """CTC targets, frame labels, language indices and per-frame gloss positions of
        ``samples``."""
        targets, labels, positions = [], [], []
        for sample in samples:
            targets.append(self.vocabulary.encode(sample["glosses"]))
            with read_npz(self._folder(sample) / "motion.npz") as motion:
                positions.append(motion["frame_gloss"].astype(np.int64))
            labels.append(frame_labels(positions[-1], targets[-1]))
        return (targets, labels, [self.languages.index(s["language"]) for s in samples],
                positions)

    def _folder(self, sample: dict) -> Path:
        return self.root / "samples" / sample["sample_id"]

    def _load(self, samples: list[dict]) -> list:
        raise NotImplementedError

    def _recognise(self, model, inputs: list, languages: list[str]) -> list[list[str]]:
        raise NotImplementedError

    def _dataset(self, plain, augment) -> GlossClips:
        targets, labels, languages, positions = self._targets(self.train_samples)
        groups = [f"{s['signer_id']}/{s['language']}" for s in self.train_samples]
        return GlossClips(self._load(self.train_samples), targets, labels, languages, plain,
                          augment, seed=self.seed, frame_gloss=positions, groups=groups)

    def collate(self, items: list[dict]) -> dict:
        return pad_batch(items)

    def evaluate(self, model) -> dict[str, float]:
        if not self.dev_samples:
            return {}
        if self._dev_inputs is None:
            self._dev_inputs = self._load(self.dev_samples)
        hypotheses = self._recognise(model, self._dev_inputs,
                                     [s["language"] for s in self.dev_samples])
        return {"dev_wer": wer([s["glosses"] for s in self.dev_samples], hypotheses)}

    def export(self, model, folder: Path) -> None:
        model.save_pretrained(folder)
        info = {"dataset": str(self.root), "plan_hash": self.plan_hash,
                "train_splits": self.train_splits, "train_samples": len(self.train_samples),
                "dev_samples": len(self.dev_samples)}
        (Path(folder) / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")


def _decode_resized(path: Path, size: int) -> torch.Tensor:
    return resize_video(read_video(path), size)


class VideoRecogniserTask(GlossTaskBase):
    """Trains ``VideoGlossRecogniser`` with CTC on SynthSign ground-truth videos."""

    def build_model(self) -> VideoGlossRecogniser:
        return VideoGlossRecogniser(vocabulary=list(self.vocabulary.glosses),
                                    languages=self.languages, **self.model_kwargs)

    def _load(self, samples: list[dict]) -> list[torch.Tensor]:
        from tqdm import tqdm

        size = self.model_kwargs.get("input_size", 64)
        paths = [self._folder(s) / "video.mp4" for s in samples]
        # ffmpeg decodes in a subprocess, so threads overlap the decoding.
        with ThreadPoolExecutor(2) as pool:
            clips = list(tqdm(pool.map(lambda p: _decode_resized(p, size), paths),
                              total=len(paths), desc="decoding videos", unit="video",
                              disable=not self.progress))
        for sample, clip in zip(samples, clips, strict=True):
            if len(clip) != sample["num_frames"]:
                raise SignGenError(f"{sample['sample_id']}: video has {len(clip)} frames, "
                                   f"sample.json says {sample['num_frames']}")
        return clips

    def train_dataset(self) -> GlossClips:
        return self._dataset(lambda x: x.float() / 127.5 - 1, augment_frames)

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        output = model(batch["input"], batch["language"], batch["valid"])
        return recogniser_loss(output, batch, model.config.temporal_stride)

    def _recognise(self, model, inputs, languages):
        videos = [clip.permute(0, 2, 3, 1).numpy() for clip in inputs]
        return recognise(model, videos, languages)
