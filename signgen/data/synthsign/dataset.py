"""PyTorch access to a generated SynthSign folder (see ``generate.py`` for the layout),
or to a real corpus preprocessed into the same layout (``signgen.data.preprocess``)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from signgen.data.synthsign.generate import FORMAT, SPLITS
from signgen.errors import ConfigError, DataError, SignGenError

FIELDS = ("video", "pose_map", "hand_render", "reference", "motion")


def read_video(path: Path) -> np.ndarray:
    """(T,H,W,3) uint8 frames of an mp4; DataError for a missing, truncated or corrupt
    file or one without frames."""
    import imageio.v2 as imageio

    if not Path(path).is_file():
        raise DataError(f"no video file {path}")
    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            # Not list(reader): the reader reports len() = inf for mp4 streams.
            frames = [frame for frame in reader]
    except (OSError, RuntimeError, ValueError, IndexError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"cannot read video {path} (truncated or corrupt?): {reason}") from None
    if not frames:
        raise DataError(f"video {path} has no frames")
    return np.stack(frames)


class _Arrays(dict):
    """The arrays of one ``.npz``; a missing key is a DataError naming the file."""

    def __init__(self, path: Path, arrays: dict) -> None:
        super().__init__(arrays)
        self.path = path

    def __missing__(self, key):
        raise DataError(f"{self.path} has no array {key!r} (it has {sorted(self)})")


@contextmanager
def read_npz(path: Path) -> Iterator[dict[str, np.ndarray]]:
    """Every array of an ``.npz`` (no pickles), read eagerly: ``with read_npz(p) as a:``.
    DataError for a missing, truncated or corrupt file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise DataError(f"no array file {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"cannot read {path} (truncated or corrupt?): {reason}") from None
    yield _Arrays(Path(path), arrays)


def require_dataset_format(root: str | Path, user: str) -> dict:
    """meta.json of ``root`` if it is a dataset in SynthSign's layout (generated, or a
    corpus from ``signgen.data.preprocess``); else a ConfigError naming ``user``."""
    meta_path = Path(root) / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{user} trains on a dataset in SynthSign's format; {root} is "
                          f"not one (data.root/data.dataset; make one with python -m "
                          f"signgen.data.synthsign generate or python -m "
                          f"signgen.data.preprocess)")
    return meta


def images_to_tensor(images: np.ndarray, signed: bool = False) -> torch.Tensor:
    """(...,H,W,3) uint8 -> (...,3,H,W) float in [-1,1] (signed) or [0,1]."""
    x = torch.from_numpy(np.array(images)).movedim(-1, -3).float() / 255.0  # a writable copy
    return x * 2 - 1 if signed else x


class SynthSignDataset(Dataset):
    """Samples of one split.

    Each item is a dict with, depending on ``fields``:
      video: 'frames' (T,3,H,W) float in [-1,1]; pose_map / hand_render: (T,3,H,W) float in
      [0,1]; reference: (3,H,W) float in [-1,1] (the signer's canonical image); motion:
      'poses' (T,165) axis-angle, 'betas' (10,), 'expression' (T,10), 'keypoints'
      (T,133,2) pixels, 'visible' (T,133) bool, 'frame_gloss' (T,) int;
    always: 'valid' (T,) bool (False for padding), 'sample_id', 'text', 'glosses',
    'language', 'signer_id'.

    ``clip_length`` cuts a window of that many frames (random per ``set_epoch`` when
    ``random_clip``, else the first frames), padding short samples by repeating the
    last frame, so items stack into batches.
    """

    def __init__(self, root: str | Path, split: str, fields: Sequence[str] = FIELDS,
                 clip_length: int | None = None, random_clip: bool = False,
                 seed: int = 0) -> None:
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise SignGenError(f"{self.root} is not a SynthSign dataset (no meta.json); "
                               f"generate one with: python -m signgen.data.synthsign generate")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT:
            raise SignGenError(f"{meta_path} has format {self.meta.get('format')!r}, "
                               f"expected {FORMAT!r}")
        # A preprocessed corpus (signgen.data.preprocess) lists its own splits.
        splits = tuple(self.meta.get("splits", SPLITS))
        if split not in splits:
            raise SignGenError(f"unknown split {split!r}; splits: {list(splits)}")
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise SignGenError(f"unknown fields {sorted(unknown)}; fields: {list(FIELDS)}")
        if clip_length is not None and clip_length < 1:
            raise SignGenError(f"clip_length must be >= 1, got {clip_length}")
        manifest = self.root / "manifest.jsonl"
        lines = manifest.read_text().splitlines() if manifest.is_file() else []
        self.samples = [s for s in map(json.loads, lines) if s["split"] == split]
        if not self.samples:
            raise SignGenError(f"split {split!r} of {self.root} has no finished samples")
        self.split, self.fields = split, tuple(fields)
        self.clip_length, self.random_clip, self.seed = clip_length, random_clip, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Changes the random clip windows (deterministically per epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def _window(self, index: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame indices (L,) and validity (L,) of the clip window."""
        length = self.clip_length or num_frames
        start = 0
        if self.random_clip and num_frames > length:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, num_frames - length + 1))
        idx = np.arange(start, start + length)
        return np.minimum(idx, num_frames - 1), idx < num_frames

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        folder = self.root / "samples" / sample["sample_id"]
        idx, valid = self._window(index, sample["num_frames"])
        item = {"valid": torch.from_numpy(valid), "sample_id": sample["sample_id"],
                "text": sample["text"], "glosses": list(sample["glosses"]),
                "language": sample["language"], "signer_id": sample["signer_id"]}
        if "video" in self.fields:
            item["frames"] = images_to_tensor(read_video(folder / "video.mp4")[idx], signed=True)
        if {"pose_map", "hand_render"} & set(self.fields):
            with read_npz(folder / "conditions.npz") as cond:
                for key in ("pose_map", "hand_render"):
                    if key in self.fields:
                        item[key] = images_to_tensor(cond[key][idx], signed=False)
        if "reference" in self.fields:
            from PIL import Image

            image = np.asarray(Image.open(self.root / "references" /
                                          f"{sample['signer_id']}.png").convert("RGB"))
            item["reference"] = images_to_tensor(image, signed=True)
        if "motion" in self.fields:
            with read_npz(folder / "motion.npz") as motion:
                for key in ("poses", "expression", "keypoints", "visible", "frame_gloss"):
                    item[key] = torch.from_numpy(motion[key][idx])
                item["betas"] = torch.from_numpy(motion["betas"])
        return item


def collate(items: list[dict]) -> dict:
    """Batch items: tensors are stacked, everything else (ids, text, glosses) is listed."""
    out = {}
    for key in items[0]:
        values = [item[key] for item in items]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out
