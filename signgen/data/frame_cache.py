"""A memory-mapped frame cache of one SynthSign split, for frame- and clip-level training.

The video model trains on random frames and short clips drawn from ~90k frames; decoding
an mp4 and a compressed npz per item is far too slow on a 2-core CPU, so every frame of a
split is decoded once into raw uint8 arrays that are then opened with ``np.memmap``::

    <dataset>/cache/frames-<split>-<plan_hash[:12]>/
        video.u8         (N,H,W,3) uint8   the RGB frames of all samples, concatenated
        pose_map.u8      (N,H,W,3) uint8   the DWPose-style pose maps, same frames
        hand_render.u8   (N,H,W,3) uint8   the 3D-hand renders, same frames
        index.json       height, width, num_frames, plan_hash, samples: [{sample_id,
                         offset, length, signer_id, language}] in manifest order

N is the split's total frame count (train: ~90k frames, ~13 GB at 128 px). The folder is
built under a temporary name and renamed when complete, so a killed build leaves nothing
that is read (a rerun removes the leftover and rebuilds); an flock on a lock file beside
it keeps two processes from building the same cache at once. The plan hash in the name
means a regenerated dataset never reads a stale cache; a cache whose sample list differs
from the manifest's (a dataset still being generated) is rebuilt.

    cache = FrameCache.open("data/synthsign", "train")
    frame = cache.video[i]                                   # (H,W,3) uint8, read-only
    starts = cache.clip_starts(8)                            # windows inside one sample
    clip = cache.video[starts[k]:starts[k] + 8]              # (8,H,W,3)
    cache.samples[cache.sample_of_frame(i)]["signer_id"]
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from signgen.data.synthsign.dataset import SynthSignDataset, read_npz, read_video
from signgen.errors import SignGenError

ARRAYS = ("video", "pose_map", "hand_render")
INDEX = "index.json"
FORMAT = "signgen-frame-cache"
FORMAT_VERSION = 1
# Decoding threads: ffmpeg decodes in a subprocess and zlib releases the GIL, so two or
# three threads keep a 2-core machine busy; more only add contention.
DECODE_THREADS = max(1, min(3, os.cpu_count() or 1))


class FrameCache:
    """Memory-mapped frames, pose maps and hand renders of one split (see the module doc).

    Attributes:
        video, pose_map, hand_render: (N,H,W,3) uint8 read-only ``np.memmap`` (index them;
            fancy indexing returns an in-memory copy).
        samples: list of dicts {sample_id, offset, length, signer_id, language}; sample k
            holds global frames ``offset .. offset + length - 1``.
        num_frames: N; height, width: frame size in pixels; split; plan_hash; folder.
    """

    def __init__(self, root: Path, split: str, folder: Path, index: dict,
                 num_samples: int | None = None) -> None:
        self.root, self.split, self.folder = root, split, folder
        self.height, self.width = int(index["height"]), int(index["width"])
        self.plan_hash = index["plan_hash"]
        samples = index["samples"][:num_samples]
        self.samples = samples
        self.num_frames = int(sum(s["length"] for s in samples))
        self.offsets = np.array([s["offset"] for s in samples], dtype=np.int64)
        self.lengths = np.array([s["length"] for s in samples], dtype=np.int64)
        shape = (int(index["num_frames"]), self.height, self.width, 3)
        for name in ARRAYS:
            array = np.memmap(folder / f"{name}.u8", dtype=np.uint8, mode="r", shape=shape)
            setattr(self, name, array[: self.num_frames])
        self._references: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, dataset_root: str | Path, split: str, build: bool = True,
             progress: bool = True, limit: int | None = None) -> FrameCache:
        """The cache of ``split`` of the SynthSign folder ``dataset_root``, built first if
        missing, stale or incomplete (``build=False`` raises instead).

        ``limit``: only the first ``limit`` samples of the split (manifest order). A
        complete full cache is then viewed, not rebuilt; otherwise a separate small cache
        (``frames-<split>-<hash>-first<limit>``) is built, for tests and quick runs.
        """
        root = Path(dataset_root)
        dataset = SynthSignDataset(root, split, fields=("video",))  # checks format, split
        plan_hash = str(dataset.meta["plan_hash"])
        if limit is not None and limit < 1:
            raise SignGenError(f"limit must be >= 1, got {limit}")
        manifest = dataset.samples[:limit]
        wanted = [s["sample_id"] for s in manifest]
        name = f"frames-{split}-{plan_hash[:12]}"
        full = root / "cache" / name
        if limit is not None and limit < len(dataset.samples):
            index = read_index(full)
            if index is not None and [s["sample_id"] for s in index["samples"][:limit]] == wanted:
                return cls(root, split, full, index, num_samples=limit)
            folder = full.with_name(f"{name}-first{limit}")
        else:
            folder = full
        index = read_index(folder)
        if index is None or [s["sample_id"] for s in index["samples"]] != wanted:
            if not build:
                raise SignGenError(f"the frame cache {folder} is missing or out of date; "
                                   f"build it with FrameCache.open({str(root)!r}, {split!r})")
            index = _build_locked(root, manifest, plan_hash, folder, progress)
        return cls(root, split, folder, index)

    def __len__(self) -> int:
        return self.num_frames

    def sample_of_frame(self, i):
        """Index into ``samples`` of the sample holding global frame ``i`` (int or array)."""
        i = np.asarray(i)
        if np.any((i < 0) | (i >= self.num_frames)):
            raise IndexError(f"frame index out of range [0, {self.num_frames})")
        k = np.searchsorted(self.offsets, i, side="right") - 1
        return int(k) if k.ndim == 0 else k

    def clip_starts(self, length: int) -> np.ndarray:
        """(M,) int64 global start indices of every window of ``length`` consecutive frames
        that lies inside one sample (samples shorter than ``length`` contribute none)."""
        if length < 1:
            raise SignGenError(f"clip length must be >= 1, got {length}")
        counts = np.maximum(self.lengths - length + 1, 0)
        if counts.sum() == 0:
            return np.zeros(0, dtype=np.int64)
        # start = offset of its sample + position inside the sample
        sample = np.repeat(np.arange(len(counts)), counts)
        first = np.cumsum(counts) - counts  # first window number of each sample
        return self.offsets[sample] + np.arange(counts.sum()) - first[sample]

    def reference(self, signer_id: str) -> np.ndarray:
        """(H,W,3) uint8 reference image of ``signer_id`` (references/<signer>.png), cached."""
        if signer_id not in self._references:
            from PIL import Image

            path = self.root / "references" / f"{signer_id}.png"
            if not path.is_file():
                raise SignGenError(f"reference image {path} is missing")
            image = np.asarray(Image.open(path).convert("RGB"))
            if image.shape[:2] != (self.height, self.width):
                raise SignGenError(f"{path} is {image.shape[1]}x{image.shape[0]} px, the "
                                   f"frames are {self.width}x{self.height}")
            image.setflags(write=False)
            self._references[signer_id] = image
        return self._references[signer_id]


def read_index(folder: Path, fmt: str = FORMAT, version: int = FORMAT_VERSION) -> dict | None:
    """The ``index.json`` of a complete cache folder of format ``fmt`` / ``version``, or
    None (absent, other format)."""
    path = folder / INDEX
    if not path.is_file():
        return None
    index = json.loads(path.read_text())
    if index.get("format") != fmt or index.get("format_version") != version:
        return None
    return index


def build_once(folder: Path, current: Callable[[], dict | None],
               build: Callable[[], dict]) -> dict:
    """``build()`` the cache ``folder`` under an flock on ``<folder>.lock``, unless
    ``current()`` (its usable index, or None) shows that another process finished it
    while this one waited for the lock; returns the index."""
    import fcntl

    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        index = current()
        return index if index is not None else build()


def _build_locked(root: Path, manifest: list[dict], plan_hash: str, folder: Path,
                  progress: bool) -> dict:
    """Build ``folder`` unless another process finished it while we waited for the lock."""
    wanted = [s["sample_id"] for s in manifest]

    def current() -> dict | None:
        index = read_index(folder)
        return index if index is not None and \
            [s["sample_id"] for s in index["samples"]] == wanted else None

    return build_once(folder, current,
                      lambda: _build(root, manifest, plan_hash, folder, progress))


def _build(root: Path, manifest: list[dict], plan_hash: str, folder: Path,
           progress: bool) -> dict:
    from tqdm import tqdm

    height, width = int(manifest[0]["height"]), int(manifest[0]["width"])
    lengths = [int(s["num_frames"]) for s in manifest]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist()
    total = int(sum(lengths))
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a killed build's leftover
    shutil.rmtree(folder, ignore_errors=True)  # stale (sample list changed)
    needed = len(ARRAYS) * total * height * width * 3
    free = shutil.disk_usage(folder.parent).free
    if needed > free:
        raise SignGenError(f"the frame cache of {len(manifest)} samples needs "
                           f"{needed / 1e9:.1f} GB in {folder.parent}, {free / 1e9:.1f} GB free")
    tmp.mkdir(parents=True)
    # Plain positioned writes, not a writable memmap: the written pages stay ordinary page
    # cache instead of counting toward this process's memory (13 GB for train).
    files = {name: os.open(tmp / f"{name}.u8", os.O_WRONLY | os.O_CREAT, 0o644)
             for name in ARRAYS}
    frame_bytes = height * width * 3

    def load(k: int) -> int:
        sample = manifest[k]
        sample_dir = root / "samples" / sample["sample_id"]
        parts = {"video": read_video(sample_dir / "video.mp4")}
        with read_npz(sample_dir / "conditions.npz") as cond:
            parts.update(pose_map=cond["pose_map"], hand_render=cond["hand_render"])
        expected = (lengths[k], height, width, 3)
        for name, array in parts.items():
            if array.shape != expected or array.dtype != np.uint8:
                raise SignGenError(
                    f"sample {sample['sample_id']}: {name} is {array.dtype}{array.shape}, "
                    f"expected uint8{expected} (sample.json num_frames = {lengths[k]}); "
                    f"the sample is inconsistent, delete its folder and regenerate it")
            write_at(files[name], np.ascontiguousarray(array), offsets[k] * frame_bytes)
        return lengths[k]

    start = time.perf_counter()
    desc = f"frame cache {manifest[0]['split']}"
    pool = ThreadPoolExecutor(DECODE_THREADS)
    try:
        with tqdm(total=total, desc=desc, unit="frame", disable=not progress) as bar:
            for done in pool.map(load, range(len(manifest))):
                bar.update(done)
        for fd in files.values():
            os.fsync(fd)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)  # don't leave gigabytes behind
        raise
    finally:
        for fd in files.values():
            os.close(fd)
    pool.shutdown()
    index = {"format": FORMAT, "format_version": FORMAT_VERSION,
             "split": manifest[0]["split"], "plan_hash": plan_hash,
             "height": height, "width": width, "num_frames": total,
             "build_seconds": round(time.perf_counter() - start, 1),
             "samples": [{"sample_id": s["sample_id"], "offset": o, "length": n,
                          "signer_id": s["signer_id"], "language": s["language"]}
                         for s, o, n in zip(manifest, offsets, lengths, strict=True)]}
    # The index is written last, then the folder renamed: a cache with an index is whole.
    (tmp / INDEX).write_text(json.dumps(index) + "\n")
    tmp.rename(folder)
    return index


def write_at(fd: int, array: np.ndarray, position: int) -> None:
    """Write a contiguous array's bytes at ``position`` of the file (releases the GIL)."""
    view = memoryview(array).cast("B")
    while len(view):
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written
