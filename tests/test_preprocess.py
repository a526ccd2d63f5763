"""Real-corpus preprocessing (signgen.data.preprocess) on a fake PHOENIX-2014-T release
made from tiny SynthSign samples: frame folders from their videos, .pose files from
their true SMPL-X joints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHSIGN
from PIL import Image
from scipy.ndimage import map_coordinates

from signgen.body.keypoints import COCO_WHOLEBODY_FROM_SMPLX, MEDIAPIPE_POSE_FROM_SMPLX
from signgen.config import load_config
from signgen.data.pose_import import FrameTransform, frame_span, import_pose, nearest_frames
from signgen.data.preprocess import main, preprocess, read_clip, warp_frame
from signgen.data.synthsign.dataset import (
    SynthSignDataset,
    read_npz,
    read_video,
    require_dataset_format,
)
from signgen.data.synthsign.generate import FORMAT
from signgen.data.synthsign.signers import signing_camera
from signgen.errors import ConfigError, DataError, SignGenError
from signgen.exports import write_pose

GOOD = {"train-00000": "train", "train-00001": "train", "dev-00000": "dev"}
CORRUPT, MISSING = "train-00002", "test_novel_sentences-00000"  # .pose files: train, dev
UNREADABLE = "test_unseen_signers-00000"  # a frame that is not an image, in dev
DOUBLED = "train-00000"  # given at twice the rate: 16 fps video and pose, resampled to 8
SPLITS = ("train", "dev")
HEADER = "name|video|start|end|speaker|orth|translation"


def _fake_phoenix(source: Path, root: Path) -> tuple[Path, Path]:
    """A PHOENIX-2014-T layout (annotations + frame folders) and a folder of .pose files."""
    corpus, poses = root / "corpus", root / "poses"
    poses.mkdir(parents=True)
    camera = signing_camera(64, 64)
    rows: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    items = {**GOOD, CORRUPT: "train", MISSING: "dev", UNREADABLE: "dev"}
    for sample_id, split in sorted(items.items()):
        frames = read_video(source / "samples" / sample_id / "video.mp4")
        with read_npz(source / "samples" / sample_id / "motion.npz") as motion:
            joints = motion["joints"]
        fps = 8.0
        if sample_id == DOUBLED:  # frame k at 2k (and a copy at 2k+1); joints in between
            frames = np.repeat(frames, 2, axis=0)[:-1]
            mid = 0.5 * (joints[1:] + joints[:-1])
            joints = np.stack([joints[:-1], mid], 1).reshape(-1, *joints.shape[1:])
            joints = np.concatenate([joints, motion["joints"][-1:]])
            fps = 16.0
        folder = corpus / "features" / "fullFrame-210x260px" / split / sample_id / "1"
        folder.mkdir(parents=True)
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"images{i:04d}.png")
        if sample_id != MISSING:
            write_pose(poses / f"{sample_id}.pose", joints, camera, fps)
        info = json.loads((source / "samples" / sample_id / "sample.json").read_text())
        rows[split].append(f"{sample_id}|{sample_id}/1/*.png|-1|-1|{info['signer_id']}|"
                           f"{' '.join(info['glosses'])}|{info['text']}")
    (poses / f"{CORRUPT}.pose").write_bytes((poses / f"{CORRUPT}.pose").read_bytes()[:200])
    (corpus / "features" / "fullFrame-210x260px" / "dev" / UNREADABLE / "1" /
     "images0003.png").write_bytes(b"not a png")
    for split, lines in rows.items():
        path = corpus / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([HEADER, *lines]) + "\n")
    return corpus, poses


@pytest.fixture(scope="module")
def made(tiny_data_root, tmp_path_factory):
    """(source SynthSign folder, corpus, poses, dataset folder) after one preprocess run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    source = tiny_data_root / "synthsign"
    work = tmp_path_factory.mktemp("preprocess")
    corpus, poses = _fake_phoenix(source, work)
    out = preprocess(load_config("tiny", TINY_SYNTHSIGN), "phoenix14t", corpus, poses,
                     work / "phoenix14t", splits=SPLITS, workers=1, progress=False)
    torch.set_num_threads(threads)
    return source, corpus, poses, out


def test_layout_meta_and_references(made):
    source, _, _, out = made
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == FORMAT and meta["splits"] == list(SPLITS)
    assert meta["source"]["corpus"] == "phoenix14t" and len(meta["plan_hash"]) == 16
    assert meta["counts"] == {"train": 3, "dev": 3} and meta["finished"] == 3
    assert meta["failed"] == 3 and meta["status"] == "incomplete"
    assert meta["fit"]["samples"] == 3 and meta["fit"]["with_world_landmarks"] == 3
    assert set(meta["last_run"]["seconds_per_sample"]) == {"import", "video", "fit",
                                                          "render", "write", "total"}
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(s["sample_id"] for s in manifest) == sorted(GOOD)
    for sample_id in GOOD:
        folder = out / "samples" / sample_id
        assert sorted(p.name for p in folder.iterdir()) == [
            "conditions.npz", "motion.npz", "sample.json", "video.mp4"]
        info = json.loads((folder / "sample.json").read_text())
        truth = json.loads((source / "samples" / sample_id / "sample.json").read_text())
        assert info["text"] == truth["text"] and info["glosses"] == truth["glosses"]
        assert info["signer_id"] == truth["signer_id"] and info["world_landmarks"]
        assert info["source_fps"] == (16.0 if sample_id == DOUBLED else 8.0)
    # A signer's reference is frame 0 of their first clip in corpus order.
    assert meta["references"] == {"s02": "train-00000", "s01": "train-00001"}
    for signer, sample_id in meta["references"].items():
        reference = np.asarray(Image.open(out / "references" / f"{signer}.png"))
        np.testing.assert_array_equal(reference, read_video(
            out / "samples" / sample_id / "video.mp4")[0])
    assert not list((out / "samples").glob(".*"))  # no temporary folders left


def test_bad_and_missing_files_are_recorded(made):
    out = made[3]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    errors = {f["sample_id"]: f["error"] for f in failures}
    assert sorted(errors) == sorted([CORRUPT, MISSING, UNREADABLE])
    assert "not a readable .pose file" in errors[CORRUPT]
    assert "no such .pose file" in errors[MISSING]
    assert "cannot read frame" in errors[UNREADABLE] and "images0003.png" in errors[UNREADABLE]


@pytest.mark.parametrize("split", SPLITS)
def test_dataset_reads_every_field(made, split):
    source, _, _, out = made
    dataset = SynthSignDataset(out, split)
    assert sorted(s["sample_id"] for s in dataset.samples) == sorted(
        s for s, sp in GOOD.items() if sp == split)
    for item in dataset:
        t = json.loads((source / "samples" / item["sample_id"] / "sample.json").read_text()
                       )["num_frames"]  # resampling kept the source's frame times
        for key in ("frames", "pose_map", "hand_render"):
            assert item[key].shape == (t, 3, 64, 64)
        assert item["reference"].shape == (3, 64, 64)
        assert item["poses"].shape == (t, 165) and item["betas"].shape == (10,)
        assert item["expression"].shape == (t, 10) and not item["expression"].any()
        assert item["keypoints"].shape == (t, 133, 2) and item["visible"].shape == (t, 133)
        assert (item["frame_gloss"] == -1).all() and item["valid"].all()
        assert item["hand_render"].amax() > 0 and item["pose_map"].amax() > 0
    with pytest.raises(SignGenError, match="unknown split"):
        SynthSignDataset(out, "test_novel_sentences")
    # The training stages that need SynthSign's format (video model, FSQ) accept it.
    assert require_dataset_format(out, "the video model")["splits"] == list(SPLITS)
    with pytest.raises(ConfigError, match="the video model trains on a dataset in"):
        require_dataset_format(out / "samples", "the video model")


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares scale and shift with dst = scale * src + shift."""
    sc, dc = src.mean(0), dst.mean(0)
    scale = float(((src - sc) * (dst - dc)).sum() / ((src - sc) ** 2).sum())
    return scale, dc - scale * sc


@pytest.mark.parametrize("sample_id", sorted(GOOD))
def test_keypoints_and_video_line_up(made, sample_id):
    """The output keypoints are the true ones under one similarity transform, and the
    output video is the source video under the same transform (checked with scipy's
    resampling, not the code under test): the best-matching extra shift is ~0 px."""
    source, _, _, out = made
    with read_npz(source / "samples" / sample_id / "motion.npz") as m:
        true, true_visible = m["keypoints"].astype(np.float64), m["visible"]
    with read_npz(out / "samples" / sample_id / "motion.npz") as m:
        got, visible = m["keypoints"].astype(np.float64), m["visible"]
    both = visible & true_visible
    assert both[:, [5, 6]].all()
    # SynthSign's own framing: the shoulders stay within a couple of pixels.
    assert np.abs(got[:, 5:7] - true[:, 5:7]).max() < 3.0
    scale, shift = _similarity(true[both], got[both])
    assert np.abs(true[both] * scale + shift - got[both]).max() < 0.05

    src_video = read_video(source / "samples" / sample_id / "video.mp4").astype(np.float64)
    out_video = read_video(out / "samples" / sample_id / "video.mp4").astype(np.float64)
    assert out_video.shape == src_video.shape
    rows, cols = np.mgrid[0:64, 0:64].astype(np.float64)

    def error(dx: float, dy: float) -> float:
        """Mean |output - source warped with an extra shift (dx, dy)| over the pixels
        whose source point lies inside the source frame."""
        r, c = (rows - shift[1] - dy) / scale, (cols - shift[0] - dx) / scale
        inside = (r > 0.5) & (r < 62.5) & (c > 0.5) & (c < 62.5)
        total = 0.0
        for k in range(0, len(src_video), 4):
            expected = np.stack([map_coordinates(src_video[k, ..., ch], [r, c], order=1)
                                 for ch in range(3)], -1)
            total += np.abs(out_video[k] - expected)[inside].mean()
        return total
    grid = np.arange(-1.0, 1.01, 0.25)
    errors = np.array([[error(dx, dy) for dx in grid] for dy in grid])
    best = np.unravel_index(errors.argmin(), errors.shape)
    assert abs(grid[best[0]]) <= 0.25 and abs(grid[best[1]]) <= 0.25
    frames = len(range(0, len(src_video), 4))
    assert errors[4, 4] / frames < 4.0  # grey levels: codec noise only


def test_fit_uses_the_world_landmarks(made):
    """2-D keypoints plus POSE_WORLD_LANDMARKS: the arms' 3-D pose is recovered."""
    from signgen.body.skeleton import JOINT_INDEX

    source, _, _, out = made
    arms = [JOINT_INDEX[f"{side}_{joint}"] for side in ("left", "right")
            for joint in ("shoulder", "elbow", "wrist")]
    for sample_id in GOOD:
        with read_npz(source / "samples" / sample_id / "motion.npz") as m:
            true = m["joints"]
        with read_npz(out / "samples" / sample_id / "motion.npz") as m:
            fitted, fit_error = m["joints"], m["fit_error"]
        assert np.nanmedian(fit_error) < 1.0  # px
        error = np.linalg.norm((fitted[:, arms] - fitted[:, :1]) - (true[:, arms] - true[:, :1]),
                               axis=-1)
        assert error.mean() < 0.03  # metres, pelvis-relative (2-D only: ~0.15)


def test_rerun_skips_finished_samples_and_cleans_up(made, capsys):
    _, corpus, poses, out = made
    stale = out / "samples" / f".{CORRUPT}.tmp-12345"
    stale.mkdir()
    stamps = {s: (out / "samples" / s / "sample.json").stat().st_mtime_ns for s in GOOD}
    assert main(["--corpus", "phoenix14t", "--root", str(corpus), "--poses", str(poses),
                 "--out", str(out), "--splits", *SPLITS, "--config", "tiny",
                 *TINY_SYNTHSIGN]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["last_run"]["processed"] == 0 and meta["last_run"]["failed"] == 3
    assert meta["finished"] == 3 and not stale.exists()
    assert stamps == {s: (out / "samples" / s / "sample.json").stat().st_mtime_ns
                      for s in GOOD}
    assert len((out / "failures.jsonl").read_text().splitlines()) == 3  # not appended twice
    assert "3/6 samples (incomplete); this run 0 made, 3 failed" in capsys.readouterr().out


def test_other_settings_into_the_same_folder_are_refused(made):
    _, corpus, poses, out = made
    cfg = load_config("tiny", TINY_SYNTHSIGN)
    with pytest.raises(SignGenError, match="other items or settings"):
        preprocess(cfg, "phoenix14t", corpus, poses, out, splits=("train",), progress=False)
    with pytest.raises(SignGenError, match="other items or settings"):
        preprocess(load_config("tiny", [*TINY_SYNTHSIGN, "data.fps=12"]), "phoenix14t",
                   corpus, poses, out, splits=SPLITS, progress=False)


@pytest.mark.parametrize("scale", [2.0, 0.25])
def test_warp_frame_puts_a_source_point_where_the_transform_says(scale):
    frame = np.zeros((80, 80, 3), np.uint8)
    frame[36:44, 40:48] = 255  # an 8x8 block centred on pixel (43.5, 39.5)
    transform = FrameTransform(scale=scale, source=(40.0, 40.0), target=(31.5, 31.5))
    out = warp_frame(frame, transform, (64, 64)).astype(np.float64)[..., 0]
    rows, cols = np.mgrid[0:64, 0:64]
    centroid = np.array([(out * cols).sum(), (out * rows).sum()]) / out.sum()
    np.testing.assert_allclose(centroid, transform.apply([43.5, 39.5]), atol=0.05)
    np.testing.assert_allclose(out.sum() / 255, 64 * scale**2, rtol=0.02)  # area


def test_frame_span_and_nearest_frames():
    assert frame_span(100, 25.0) == (0, 100)
    assert frame_span(100, 25.0, 1.0, 2.0) == (25, 50)  # PHOENIX frames 25..49
    assert frame_span(100, 25.0, 0.5) == (13, 100)  # the first frame at or after 0.5 s
    with pytest.raises(SignGenError, match="holds no frame"):
        frame_span(100, 25.0, 5.0, 6.0)
    np.testing.assert_array_equal(nearest_frames(9, 16.0, 8.0), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(nearest_frames(10, 25.0, 12.0), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(nearest_frames(3, 8.0, 16.0), [0, 1, 1, 2, 2])


def test_import_span_and_world_landmarks(made):
    """import_pose cuts [start_s, end_s) before framing, and reads pose-format's world
    landmarks (x, y scaled by the image size) back in metres."""
    source, _, poses, _ = made
    path = poses / "train-00001.pose"
    whole = import_pose(path, size=(64, 64))
    part = import_pose(path, size=(64, 64), start_s=0.5, end_s=2.0)  # 8 fps: frames 4..15
    assert part.source_span == (4, 16) and part.num_frames == 12
    assert whole.source_frames == part.source_frames == whole.num_frames
    with read_npz(source / "samples" / "train-00001" / "motion.npz") as m:
        joints = m["joints"]
    camera = signing_camera(64, 64)
    cam = camera.world_to_camera(joints.reshape(-1, 3)).reshape(joints.shape)
    hips = cam[:, MEDIAPIPE_POSE_FROM_SMPLX[23:25]].mean(1)  # MediaPipe's origin
    left_shoulder = cam[:, COCO_WHOLEBODY_FROM_SMPLX[5]]
    assert whole.world_visible[:, 5].all() and not whole.world_visible[:, 23:].any()
    np.testing.assert_allclose(whole.world[:, 5], left_shoulder - hips, atol=1e-4)


def test_read_clip_from_mp4_and_bad_videos(tiny_data_root, tmp_path):
    video = tiny_data_root / "synthsign" / "samples" / "dev-00000" / "video.mp4"
    frames = read_video(video)
    identity = FrameTransform(scale=1.0, source=(0.0, 0.0), target=(0.0, 0.0))
    picks = np.array([0, 0, 5, len(frames) - 1])
    got = read_clip(video, picks, identity, (64, 64), len(frames))
    np.testing.assert_array_equal(got, frames[picks])
    with pytest.raises(DataError, match=f"has {len(frames)} frames but its pose file 7"):
        read_clip(video, picks, identity, (64, 64), 7)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(video.read_bytes()[:300])
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, message in ((broken, "cannot read video"), (tmp_path / "gone.mp4", "no video"),
                          (empty, "no .png/.jpg/.jpeg frames")):
        with pytest.raises(DataError, match=message):
            read_clip(path, picks, identity, (64, 64), len(frames))


def test_every_stage_trains_on_the_preprocessed_corpus(made, monkeypatch, tmp_path, one_thread):
    """A preprocessed corpus trains every stage with a config change only (data.dataset):
    the demo recipe's stages, tokens of its splits and an assembled pipeline that signs
    one of the corpus' sentences."""
    import shutil

    from test_token_pose_decoder import MICRO_POSE_DECODER
    from test_video_training import MICRO_VIDEO, SMALL, STEPS

    import signgen.data.synthsign.generate as generation
    import train
    from signgen.pipelines.sign_gen import SignGenPipeline

    _, _, _, out = made
    root = tmp_path / "data"  # a private copy: caches and token sets are written into it
    shutil.copytree(out, root / "phoenix14t")
    cfg = load_config("tiny", [
        *TINY_SYNTHSIGN, f"data.root={root}", "data.dataset=phoenix14t",
        f"experiment.output_dir={tmp_path / 'runs'}", *SMALL, *MICRO_VIDEO,
        "fsq.model.hidden_channels=[8,16,16]", "fsq.model.pose_hidden=32", "fsq.clip_length=3",
        *(f"fsq.train.{kv}" for kv in STEPS), "translator.train_splits=[train]",
        "translator.model.dim=32", "translator.model.num_heads=2",
        "translator.model.encoder_layers=1", "translator.model.decoder_layers=1",
        "translator.canonical_handedness=false",  # a real corpus records no handedness
        *(f"translator.train.{kv}" for kv in STEPS), *MICRO_POSE_DECODER,
        "pose_decoder.train_splits=[train]"])
    # The corpus is preprocessed already: the recipe's SynthSign generation is not run.
    monkeypatch.setattr(generation, "generate", lambda cfg, progress=True: root / "phoenix14t")
    pipeline_dir = train.build_demo(cfg, command="test", progress=False,
                                    out=tmp_path / "pipeline")
    info = json.loads((pipeline_dir / "demo.json").read_text())
    assert all(stage["steps"] == 2 for stage in info["stages"].values())
    text = json.loads((root / "phoenix14t" / "samples" / "train-00000" / "sample.json")
                      .read_text())["text"]
    pipe = SignGenPipeline.from_pretrained(pipeline_dir)
    result = pipe(text, avatar_only=True, seed=0)
    assert result.smplx_pose.ndim == 2 and result.smplx_pose.shape[1] == 165
    assert np.isfinite(result.smplx_pose).all()
