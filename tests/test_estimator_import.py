"""Conditions from 3-D estimators (signgen.data.estimator_import, preprocess --smplx /
--hamer): fake SMPL-X-estimator and HaMeR files made from a SynthSign clip's true SMPL-X
parameters, seen by SynthSign's own camera (so its true keypoints are the answer)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHSIGN
from PIL import Image
from scipy.spatial.transform import Rotation

from signgen.body import BodyModel
from signgen.body.model import SMPLXParams
from signgen.body.skeleton import JOINT_INDEX, PARENTS
from signgen.config import load_config
from signgen.data.estimator_import import (
    hand_mean,
    import_estimates,
    mirror_axis_angle,
    read_hamer_hands,
)
from signgen.data.preprocess import main, preprocess
from signgen.data.synthsign.conditions import project_keypoints
from signgen.data.synthsign.dataset import SynthSignDataset, read_npz, read_video
from signgen.data.synthsign.signers import signing_camera
from signgen.errors import DataError, InvalidInputError, SignGenError
from signgen.render.camera import PinholeCamera

SAMPLE = "train-00000"
HAND = {"left": slice(75, 120), "right": slice(120, 165)}  # columns of the (T,165) poses


@pytest.fixture(scope="module")
def body():
    return BodyModel()


@pytest.fixture(scope="module")
def truth(tiny_data_root):
    """The SynthSign clip: motion arrays, fps and video frames."""
    folder = tiny_data_root / "synthsign" / "samples" / SAMPLE
    with read_npz(folder / "motion.npz") as motion:
        arrays = {k: motion[k] for k in ("poses", "betas", "expression", "transl", "joints",
                                         "keypoints", "visible")}
    arrays["fps"] = json.loads((folder / "sample.json").read_text())["fps"]
    arrays["frames"] = read_video(folder / "video.mp4")
    return arrays


def _rotvec(matrix) -> np.ndarray:
    return Rotation.from_matrix(matrix).as_rotvec()


def _matrix(rotvec) -> np.ndarray:
    return Rotation.from_rotvec(np.asarray(rotvec).reshape(-1, 3)).as_matrix()


def _in_camera(truth, body, camera: PinholeCamera) -> dict:
    """The true parameters as an estimator in ``camera`` (OpenCV axes) gives them: root
    orientation in camera axes, cam_trans = SMPL-X transl in camera coordinates."""
    poses = truth["poses"].astype(np.float64)
    with torch.no_grad():
        rest = body(SMPLXParams.from_full_pose(torch.zeros(1, 165), torch.as_tensor(
            truth["betas"]))).joints[0, 0].double().numpy()  # the pelvis, rotated about
    rotation, translation = camera.rotation, camera.translation
    poses_cam = poses.copy()
    poses_cam[:, :3] = _rotvec(rotation @ _matrix(poses[:, :3]))
    cam_trans = (rest + truth["transl"]) @ rotation.T + translation - rest
    return {"poses": poses_cam, "cam_trans": cam_trans}


def _write_smplx(path: Path, truth, body, camera=None, frames=None, fps=None,
                 flat_hand_mean=True, drop=(), **replace) -> Path:
    """An estimator file of the clip (SMPLer-X key names, per-frame betas)."""
    camera = camera or signing_camera(64, 64)
    cam = _in_camera(truth, body, camera)
    poses, cam_trans = cam["poses"], cam["cam_trans"]
    t = len(poses)
    if not flat_hand_mean:  # SMPLer-X: hand poses relative to the model's mean hand
        mean = hand_mean(body)
        poses = poses.copy()
        poses[:, HAND["left"]] -= mean[0]
        poses[:, HAND["right"]] -= mean[1]
    arrays = {
        "root_pose": poses[:, :3], "body_pose": poses[:, 3:66], "jaw_pose": poses[:, 66:69],
        "lhand_pose": poses[:, HAND["left"]].reshape(t, 15, 3),
        "rhand_pose": poses[:, HAND["right"]], "betas": np.tile(truth["betas"], (t, 1)),
        "expr": truth["expression"], "cam_trans": cam_trans,
        "focal": np.array([camera.fx, camera.fy]), "princpt": np.array([camera.cx, camera.cy]),
        "fps": np.array(float(fps or truth["fps"])),
        "image_size": np.array([camera.height, camera.width]),
        "flat_hand_mean": np.array(flat_hand_mean),
    }
    if frames is not None:
        arrays = {k: v[frames] if v.ndim and len(v) == t and k != "image_size" else v
                  for k, v in arrays.items()}
    arrays = {k: v for k, v in {**arrays, **replace}.items() if k not in drop}
    np.savez(path, **arrays)
    return path


def _write_hamer(path: Path, truth, body, detections, keypoints=True, **replace) -> Path:
    """A HaMeR file with the true hands of ``detections`` [(frame, side)]: rotation
    matrices, every hand predicted as a right hand (left ones mirrored)."""
    poses = _in_camera(truth, body, signing_camera(64, 64))["poses"]
    out = {"frame_index": [], "is_right": [], "hand_pose": [], "global_orient": [],
           "keypoints_2d": [], "betas": []}
    for frame, side in detections:
        local = _matrix(poses[frame])  # (55,3,3)
        wrist = JOINT_INDEX[f"{side}_wrist"]
        chain, joint = [], wrist
        while joint != -1:
            chain.append(joint)
            joint = PARENTS[joint]
        orient = np.eye(3)
        for j in reversed(chain):
            orient = orient @ local[j]
        fingers = poses[frame, HAND[side]]
        orient = _rotvec(orient)
        if side == "left":  # HaMeR saw the flipped crop of a left hand
            fingers, orient = mirror_axis_angle(fingers), mirror_axis_angle(orient)
        out["frame_index"].append(frame)
        out["is_right"].append(int(side == "right"))
        out["hand_pose"].append(_matrix(fingers))
        out["global_orient"].append(_matrix(orient))
        start = 91 if side == "left" else 112
        out["keypoints_2d"].append(truth["keypoints"][frame, start:start + 21])
        out["betas"].append(np.zeros(10))
    shapes = {"hand_pose": (0, 15, 3, 3), "global_orient": (0, 3, 3), "keypoints_2d": (0, 21, 2),
              "betas": (0, 10)}
    arrays = {k: np.asarray(v, np.float64).reshape(-1, *shapes[k][1:]) if k in shapes
              else np.asarray(v, np.int64) for k, v in out.items()}
    if not keypoints:
        del arrays["keypoints_2d"]
    arrays.update(replace)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("flat_hand_mean", [True, False])
def test_round_trip_recovers_poses_and_keypoints(truth, body, tmp_path, flat_hand_mean):
    camera = signing_camera(64, 64)
    path = _write_smplx(tmp_path / "clip.npz", truth, body, flat_hand_mean=flat_hand_mean)
    clip = import_estimates(path, body, camera)
    t = len(truth["poses"])
    assert clip.num_frames == t and clip.pose.source_span == (0, t)
    np.testing.assert_allclose(clip.params.full_pose().numpy(), truth["poses"], atol=2e-5)
    np.testing.assert_allclose(clip.params.betas.numpy(), np.tile(truth["betas"], (t, 1)),
                               atol=1e-6)
    np.testing.assert_allclose(clip.params.expression.numpy(), truth["expression"], atol=1e-6)
    # The projected joints are SynthSign's own keypoints.
    np.testing.assert_array_equal(clip.source_visible, truth["visible"])
    visible = truth["visible"]
    assert np.abs(clip.source_keypoints - truth["keypoints"])[visible].max() < 1e-3
    # Framed like pose_import frames keypoints, and the placed body projects onto them.
    framed = clip.pose.transform.apply(truth["keypoints"])
    assert np.abs(clip.pose.keypoints - framed)[clip.pose.visible].max() < 1e-3
    with torch.no_grad():
        joints = body(clip.params).joints
    placed, _ = project_keypoints(joints, camera)
    gap = np.linalg.norm(placed - clip.pose.keypoints, axis=-1)[clip.pose.visible]
    assert gap.mean() < 0.2 and gap.max() < 1.0  # px: perspective, not a similarity
    assert np.nanmax(clip.placement_error) < 0.5


def test_another_camera_projects_with_its_intrinsics(truth, body, tmp_path):
    """A 480x640 image seen from the side and above, off-centre principal point, focal
    varying per frame: the keypoints are the true joints projected with that camera
    (PinholeCamera.project), and the body keeps its pose, turned as that camera saw it."""
    t = len(truth["poses"])
    focal = np.linspace(900.0, 960.0, t)[:, None].repeat(2, 1)
    view = PinholeCamera.look_at(640, 480, eye=(0.8, 0.5, 2.6), target=(0.0, 0.1, 0.0))

    def camera(k: int) -> PinholeCamera:
        return PinholeCamera(640, 480, focal[k, 0], focal[k, 1], 300.0, 250.0,
                             rotation=view.rotation, translation=view.translation)

    path = _write_smplx(tmp_path / "clip.npz", truth, body, camera=camera(0), focal=focal)
    signing = signing_camera(64, 64)
    clip = import_estimates(path, body, signing)
    for k in (0, t // 2, t - 1):
        uv, inside = project_keypoints(truth["joints"][k:k + 1], camera(k))
        np.testing.assert_array_equal(clip.source_visible[k], inside[0])
        assert inside[0, :17].sum() >= 13  # legs leave the picture
        np.testing.assert_allclose(clip.source_keypoints[k][inside[0]], uv[0][inside[0]],
                                   atol=1e-3)
    got = clip.params.full_pose().numpy()
    np.testing.assert_allclose(got[:, 3:], truth["poses"][:, 3:], atol=2e-5)
    turned = signing.rotation.T @ view.rotation @ _matrix(truth["poses"][:, :3])
    np.testing.assert_allclose(_matrix(got[:, :3]), turned, atol=1e-5)
    assert np.nanmax(clip.placement_error) < 0.5


def test_hamer_hands_replace_the_estimators(truth, body, tmp_path):
    """The estimator's fingers and wrists are zero; HaMeR's (left ones given mirrored, as
    HaMeR predicts them) replace them where it found the hand, and only there."""
    t = len(truth["poses"])
    cam = _in_camera(truth, body, signing_camera(64, 64))
    flat = cam["poses"].copy()
    flat[:, HAND["left"]] = flat[:, HAND["right"]] = 0
    for side in ("left", "right"):
        wrist = JOINT_INDEX[f"{side}_wrist"]
        flat[:, 3 * wrist:3 * wrist + 3] = 0
    smplx = _write_smplx(tmp_path / "clip.npz", truth, body, lhand_pose=flat[:, HAND["left"]],
                         rhand_pose=flat[:, HAND["right"]], body_pose=flat[:, 3:66])
    missing_left = set(range(0, t, 3))
    detections = [(k, side) for k in range(t) for side in ("left", "right")
                  if not (side == "left" and k in missing_left)]
    hamer = _write_hamer(tmp_path / "hands.npz", truth, body, detections)

    raw = np.load(hamer)
    lefts = raw["is_right"] == 0
    given = _rotvec(raw["hand_pose"][lefts].reshape(-1, 3, 3)).reshape(-1, 45)
    read = read_hamer_hands(hamer, t)
    true_left = truth["poses"][raw["frame_index"][lefts], HAND["left"]]
    assert np.abs(given - true_left).max() > 0.1  # the file holds the mirrored hand
    np.testing.assert_allclose(read.hand_pose[lefts], true_left, atol=1e-5)
    np.testing.assert_allclose(mirror_axis_angle(given), true_left, atol=1e-5)

    clip = import_estimates(smplx, body, signing_camera(64, 64), hamer)
    got = clip.params.full_pose().numpy()
    with_left = np.array([k not in missing_left for k in range(t)])
    np.testing.assert_allclose(got[:, HAND["right"]], truth["poses"][:, HAND["right"]],
                               atol=1e-5)
    np.testing.assert_allclose(got[with_left, HAND["left"]],
                               truth["poses"][with_left, HAND["left"]], atol=1e-5)
    assert not got[~with_left, HAND["left"]].any()  # the estimator's (zero) hand stays
    for side, frames in (("left", with_left), ("right", np.ones(t, bool))):
        wrist = slice(3 * JOINT_INDEX[f"{side}_wrist"], 3 * JOINT_INDEX[f"{side}_wrist"] + 3)
        np.testing.assert_allclose(got[frames, wrist], truth["poses"][frames, wrist],
                                   atol=1e-5)
    assert not got[~with_left, 3 * JOINT_INDEX["left_wrist"]:][:, :3].any()
    assert clip.hamer_frames == t and clip.hamer_offset_px < 1e-3
    # A clip where HaMeR found no hand: the estimator's hands throughout.
    empty = _write_hamer(tmp_path / "none.npz", truth, body, [])
    assert len(read_hamer_hands(empty, t).frame_index) == 0
    clip = import_estimates(smplx, body, signing_camera(64, 64), empty)
    assert clip.hamer_frames == 0 and not clip.params.full_pose()[:, 75:].any()


def test_resampling_25_to_12_fps_and_a_span(truth, body, tmp_path):
    """Nearest frame in time, as pose_import resamples: output k shows source frame
    round(k * 25 / 12) (halves up); parameters are not interpolated."""
    path = _write_smplx(tmp_path / "clip.npz", truth, body, frames=np.arange(25), fps=25)
    clip = import_estimates(path, body, signing_camera(64, 64), fps=12)
    expected = [0, 2, 4, 6, 8, 10, 13, 15, 17, 19, 21, 23]
    assert clip.pose.fps == 12 and clip.pose.source_fps == 25
    assert clip.pose.source_frames == 25 and clip.num_frames == len(expected)
    np.testing.assert_allclose(clip.params.full_pose().numpy(), truth["poses"][expected],
                               atol=2e-5)
    visible = truth["visible"][expected]
    assert np.abs(clip.source_keypoints - truth["keypoints"][expected])[visible].max() < 1e-3
    part = import_estimates(path, body, signing_camera(64, 64), fps=12, start_s=0.2,
                            end_s=0.8)
    assert part.pose.source_span == (5, 20)  # 25 fps: frames 5..19, shown at 5 + 25k/12
    np.testing.assert_allclose(part.params.full_pose().numpy(),
                               truth["poses"][[5, 7, 9, 11, 13, 15, 18]], atol=2e-5)


def _bad_smplx(tmp_path, truth, body, case: str) -> Path:
    path = tmp_path / f"{case}.npz"
    t = len(truth["poses"])
    if case == "pickled object array":
        return _write_smplx(path, truth, body, meta=np.array([{"focal": 5000}], dtype=object))
    options = {
        "missing key": {"drop": ("body_pose",)},
        "missing flat_hand_mean": {"drop": ("flat_hand_mean",)},
        "two aliases": {"global_orient": np.zeros((t, 3))},
        "wrong shape": {"body_pose": np.zeros((t, 60))},
        "NaN": {"betas": np.where(np.arange(10) == 3, np.nan, np.tile(truth["betas"], (t, 1)))},
        "frame-count mismatch": {"cam_trans": np.zeros((t - 1, 3))},
        "bad fps": {"fps": -1.0},
        "too many betas": {"betas": np.zeros((t, 16))},
    }[case]
    return _write_smplx(path, truth, body, **options)


@pytest.mark.parametrize("case, error, message", [
    ("missing key", InvalidInputError, "no array 'body_pose'"),
    ("missing flat_hand_mean", InvalidInputError, "no array 'flat_hand_mean'"),
    ("two aliases", InvalidInputError, "holds both 'root_pose' and 'global_orient'"),
    ("wrong shape", InvalidInputError, r"'body_pose' must have shape \(T, 63\)"),
    ("NaN", InvalidInputError, "'betas' has NaN or infinite values"),
    ("frame-count mismatch", InvalidInputError, "disagree on the number of frames"),
    ("bad fps", InvalidInputError, "'fps' must be one positive number"),
    ("too many betas", InvalidInputError, "16 betas components, the body model takes 10"),
    ("pickled object array", DataError, "Object arrays cannot be loaded when allow_pickle"),
])
def test_bad_smplx_files_give_one_clear_error(truth, body, tmp_path, case, error, message):
    path = _bad_smplx(tmp_path, truth, body, case)
    with pytest.raises(error, match=message) as caught:
        import_estimates(path, body, signing_camera(64, 64))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("case, message", [
    ("missing file", "no array file"),
    ("missing key", "no array 'is_right'"),
    ("frame-count mismatch", r"'frame_index' must be frame numbers in \[0, "),
    ("two right hands", "frame 1 has 2 right hands"),
    ("wrong shape", r"'hand_pose' must have shape \(N, 15, 3, 3\)"),
    ("not rotations", "'global_orient' holds matrices that are not rotations"),
    ("NaN", "'global_orient' has NaN"),
    ("detections disagree", "'is_right' has 1 detections, 'frame_index' 2"),
])
def test_bad_hamer_files_give_one_clear_error(truth, body, tmp_path, case, message):
    smplx = _write_smplx(tmp_path / "clip.npz", truth, body)
    t = len(truth["poses"])
    two = [(0, "left"), (1, "right")]
    path = tmp_path / "hands.npz"
    if case == "missing key":
        _write_hamer(path, truth, body, two)
        arrays = dict(np.load(path))
        del arrays["is_right"]
        np.savez(path, **arrays)
    elif case != "missing file":
        replace = {
            "frame-count mismatch": {"frame_index": np.array([0, t])},
            "two right hands": {"frame_index": np.array([1, 1]), "is_right": np.array([1, 1])},
            "wrong shape": {"hand_pose": np.zeros((2, 15, 2))},
            "not rotations": {"global_orient": np.full((2, 1, 3, 3), 0.5)},
            "NaN": {"global_orient": np.full((2, 3), np.nan)},
            "detections disagree": {"is_right": np.array([1])},
        }[case]
        _write_hamer(path, truth, body, two, **replace)
    with pytest.raises(SignGenError, match=message) as caught:
        import_estimates(smplx, body, signing_camera(64, 64), path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


GOOD, BROKEN = "train-00000", "train-00001"
HEADER = "name|video|start|end|speaker|orth|translation"


def test_preprocess_with_estimator_files(truth, body, tiny_data_root, tmp_path, one_thread,
                                         capsys):
    """A fake PHOENIX-2014-T release (frame folders) with --smplx and --hamer: the good
    item becomes a sample SynthSignDataset reads, with the estimator's poses; the item
    whose SMPL-X file is broken is a failure record."""
    corpus, smplx, hamer = tmp_path / "corpus", tmp_path / "smplx", tmp_path / "hamer"
    smplx.mkdir()
    hamer.mkdir()
    lines = []
    for sample_id in (GOOD, BROKEN):
        source = tiny_data_root / "synthsign" / "samples" / sample_id
        folder = corpus / "features" / "fullFrame-210x260px" / "train" / sample_id / "1"
        folder.mkdir(parents=True)
        for i, frame in enumerate(read_video(source / "video.mp4")):
            Image.fromarray(frame).save(folder / f"images{i:04d}.png")
        info = json.loads((source / "sample.json").read_text())
        lines.append(f"{sample_id}|{sample_id}/1/*.png|-1|-1|{info['signer_id']}|"
                     f"{' '.join(info['glosses'])}|{info['text']}")
    t = len(truth["poses"])
    _write_smplx(smplx / f"{GOOD}.npz", truth, body)
    _write_hamer(hamer / f"{GOOD}.npz", truth, body, [(k, "left") for k in range(0, t, 2)])
    _bad_smplx(tmp_path, truth, body, "NaN").rename(smplx / f"{BROKEN}.npz")
    _write_hamer(hamer / f"{BROKEN}.npz", truth, body, [])
    for split, rows in (("train", lines), ("dev", []), ("test", [])):
        path = corpus / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([HEADER, *rows]) + "\n")

    cfg = load_config("tiny", TINY_SYNTHSIGN)
    out = preprocess(cfg, "phoenix14t", corpus, None, tmp_path / "dataset", splits=("train",),
                     progress=False, smplx=smplx, hamer=hamer)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["finished"] == 1 and meta["failed"] == 1
    assert meta["source"]["smplx"] == str(smplx) and meta["source"]["hamer"] == str(hamer)
    assert meta["settings"]["estimators"]["inputs"] == ["smplx", "hamer"]
    assert "--smplx" in meta["command"] and "--poses" not in meta["command"]
    assert set(meta["last_run"]["seconds_per_sample"]) == {"import", "video", "render",
                                                          "write", "total"}
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["sample_id"] for f in failures] == [BROKEN]
    assert "'betas' has NaN" in failures[0]["error"]

    info = json.loads((out / "samples" / GOOD / "sample.json").read_text())
    assert info["source"]["smplx"] == info["source"]["hamer"] == f"{GOOD}.npz"
    assert info["estimators"]["hamer_frames"] == len(range(0, t, 2))
    assert info["fit_error_px"]["mean"] < 0.5 and not info["world_landmarks"]
    (item,) = SynthSignDataset(out, "train")
    assert item["frames"].shape == item["hand_render"].shape == (t, 3, 64, 64)
    np.testing.assert_allclose(item["poses"].numpy(), truth["poses"], atol=2e-5)
    np.testing.assert_allclose(item["expression"].numpy(), truth["expression"], atol=1e-6)
    assert item["hand_render"].amax() > 0 and item["pose_map"].amax() > 0
    with read_npz(out / "samples" / GOOD / "motion.npz") as motion:
        keypoints, visible = motion["keypoints"], motion["visible"]
    transform_scale = (keypoints[:, 5] - keypoints[:, 6]) / (
        truth["keypoints"][:, 5] - truth["keypoints"][:, 6])
    assert visible[:, [5, 6]].all() and np.ptp(transform_scale[:, 0]) < 1e-3

    with pytest.raises(SignGenError, match="--hamer needs --smplx"):
        main(["--corpus", "phoenix14t", "--root", str(corpus), "--poses", str(tmp_path),
              "--hamer", str(hamer), "--out", str(tmp_path / "other")])
    with pytest.raises(SignGenError, match="not allowed with argument"):
        main(["--corpus", "phoenix14t", "--root", str(corpus), "--poses", str(tmp_path),
              "--smplx", str(smplx), "--out", str(tmp_path / "other")])
