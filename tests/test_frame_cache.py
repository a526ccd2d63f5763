"""The memory-mapped frame cache: same content as the samples, windows never cross
samples, a killed build is redone, a complete one is reused."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from signgen.data import frame_cache
from signgen.data.frame_cache import FrameCache
from signgen.data.synthsign.dataset import read_video
from signgen.errors import SignGenError


def copy_dataset(src, dst):
    """A private copy of the tiny dataset (the session fixture stays read-only)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("cache"))
    return dst


@pytest.fixture(scope="module")
def root(tiny_data_root, tmp_path_factory):
    return copy_dataset(tiny_data_root / "synthsign", tmp_path_factory.mktemp("fc") / "ds")


@pytest.fixture(scope="module")
def cache(root):
    return FrameCache.open(root, "train", progress=False)


def manifest(root, split):
    lines = (root / "manifest.jsonl").read_text().splitlines()
    return [s for s in map(json.loads, lines) if s["split"] == split]


def test_content_equals_samples(root, cache):
    expected = manifest(root, "train")
    plan_hash = json.loads((root / "meta.json").read_text())["plan_hash"]
    assert cache.folder == root / "cache" / f"frames-train-{plan_hash[:12]}"
    assert [s["sample_id"] for s in cache.samples] == [s["sample_id"] for s in expected]
    assert cache.num_frames == sum(s["num_frames"] for s in expected) == len(cache.video)
    assert cache.video.shape == (cache.num_frames, 64, 64, 3)
    assert not cache.video.flags.writeable
    offset = 0
    for entry, sample in zip(cache.samples, expected, strict=True):
        assert entry["offset"] == offset and entry["length"] == sample["num_frames"]
        assert (entry["signer_id"], entry["language"]) == (sample["signer_id"],
                                                           sample["language"])
        folder = root / "samples" / sample["sample_id"]
        window = slice(offset, offset + entry["length"])
        np.testing.assert_array_equal(cache.video[window], read_video(folder / "video.mp4"))
        with np.load(folder / "conditions.npz") as cond:
            np.testing.assert_array_equal(cache.pose_map[window], cond["pose_map"])
            np.testing.assert_array_equal(cache.hand_render[window], cond["hand_render"])
        offset += entry["length"]
    index = json.loads((cache.folder / "index.json").read_text())
    assert (index["height"], index["width"], index["num_frames"]) == (64, 64, cache.num_frames)
    assert index["plan_hash"] == plan_hash
    signer = cache.samples[0]["signer_id"]
    png = np.asarray(Image.open(root / "references" / f"{signer}.png").convert("RGB"))
    np.testing.assert_array_equal(cache.reference(signer), png)
    assert cache.reference(signer) is cache.reference(signer)


def test_sample_of_frame(cache):
    ends = [s["offset"] + s["length"] - 1 for s in cache.samples]
    for k, sample in enumerate(cache.samples):
        assert cache.sample_of_frame(sample["offset"]) == k
        assert cache.sample_of_frame(ends[k]) == k
    every = cache.sample_of_frame(np.arange(cache.num_frames))
    assert every.tolist() == np.repeat(np.arange(len(cache.samples)),
                                       [s["length"] for s in cache.samples]).tolist()
    with pytest.raises(IndexError):
        cache.sample_of_frame(cache.num_frames)


@pytest.mark.parametrize("length", [1, 7, "shortest", "longest", "too_long"])
def test_clip_starts_stay_inside_one_sample(cache, length):
    lengths = [s["length"] for s in cache.samples]
    length = {"shortest": min(lengths), "longest": max(lengths),
              "too_long": max(lengths) + 1}.get(length, length)
    starts = cache.clip_starts(length)
    # Every window inside a sample, each once, in order.
    expected = [s["offset"] + i for s in cache.samples for i in range(s["length"] - length + 1)]
    assert starts.tolist() == expected
    if len(starts):
        assert (cache.sample_of_frame(starts) ==
                cache.sample_of_frame(starts + length - 1)).all()


def test_reopen_does_not_rebuild(root, cache, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("rebuilt a complete cache")

    monkeypatch.setattr(frame_cache, "_build", fail)
    again = FrameCache.open(root, "train", progress=False)
    assert again.num_frames == cache.num_frames
    FrameCache.open(root, "train", build=False)  # complete: no build needed
    # A limit views the complete cache instead of building a small one.
    first = FrameCache.open(root, "train", limit=2, progress=False)
    assert first.folder == cache.folder and len(first.samples) == 2
    assert first.num_frames == cache.samples[2]["offset"]
    np.testing.assert_array_equal(first.video, cache.video[: first.num_frames])


def test_killed_build_is_rebuilt(tiny_data_root, tmp_path):
    root = copy_dataset(tiny_data_root / "synthsign", tmp_path / "ds")
    with pytest.raises(SignGenError, match="missing or out of date"):
        FrameCache.open(root, "dev", build=False)
    built = FrameCache.open(root, "dev", progress=False)
    folder = built.folder
    # Simulate a build killed before its rename: a .tmp folder and no final folder.
    shutil.rmtree(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir()
    (tmp / "video.u8").write_bytes(b"partial")
    with pytest.raises(SignGenError):
        FrameCache.open(root, "dev", build=False)  # the leftover is never read
    rebuilt = FrameCache.open(root, "dev", progress=False)
    assert not tmp.exists() and (folder / "index.json").is_file()
    np.testing.assert_array_equal(rebuilt.video, built.video)


def test_limit_builds_a_small_cache(tiny_data_root, tmp_path):
    root = copy_dataset(tiny_data_root / "synthsign", tmp_path / "ds")
    small = FrameCache.open(root, "train", limit=1, progress=False)
    assert small.folder.name.endswith("-first1") and len(small.samples) == 1
    assert small.num_frames == manifest(root, "train")[0]["num_frames"]


def test_frame_count_mismatch_is_a_clear_error(tiny_data_root, tmp_path):
    root = copy_dataset(tiny_data_root / "synthsign", tmp_path / "ds")
    bad = manifest(root, "train")[1]["sample_id"]
    path = root / "samples" / bad / "conditions.npz"
    with np.load(path) as cond:
        short = {k: cond[k][:-1] for k in cond.files}
    np.savez_compressed(path, **short)
    with pytest.raises(SignGenError, match=f"{bad}: pose_map"):
        FrameCache.open(root, "train", progress=False)
    assert not list((root / "cache").glob("*.tmp"))  # nothing half-built is left
