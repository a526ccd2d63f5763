"""MediaPipe Holistic .pose import: layout mapping, resampling, framing, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.generic import fake_openpose_pose

from signgen.body.keypoints import COCO_WHOLEBODY_NAMES, MEDIAPIPE_POSE_NAMES
from signgen.data.pose_import import (
    MEDIAPIPE_FACE_TO_IBUG68,
    ImportedPose,
    import_pose,
    normalise_keypoints,
    pose_maps,
    resample,
)
from signgen.data.synthsign.conditions import draw_pose_map, project_keypoints
from signgen.data.synthsign.lexicon_export import (
    MEDIAPIPE_HAND_POINTS,
    MEDIAPIPE_POSE_POINTS,
    joints_to_pose,
)
from signgen.errors import InvalidInputError

WIDTH, HEIGHT = 640, 480
SMALL_TOES = [18, 21]  # COCO slots MediaPipe has no landmark for
FACE, LEFT_HAND, RIGHT_HAND = slice(23, 91), slice(91, 112), slice(112, 133)


def _component(name, points):
    return PoseHeaderComponent(name=name, points=list(points), limbs=[], colors=[(255, 0, 0)],
                               point_format="XYZC")


def _face_matrix(num_face: int) -> np.ndarray:
    """(68, num_face) averaging matrix of the face table."""
    a = np.zeros((68, num_face))
    for row, sources in enumerate(MEDIAPIPE_FACE_TO_IBUG68):
        a[row, list(sources)] = 1.0 / len(sources)
    return a


def _holistic_pose(coco, visible, fps=25.0, num_face=478, hands=True, hand_z=None,
                   seed=0) -> Pose:
    """A Holistic .pose whose import gives back ``coco`` (T,133,2) file pixels.

    MediaPipe points with no COCO counterpart get random values; the face mesh is the
    least-norm solution whose table averages are the 68 targets; a face slot is visible
    only if the whole face is.
    """
    rng = np.random.default_rng(seed)
    frames = len(coco)
    pose = rng.uniform(0, WIDTH, (frames, 33, 3))
    pose_ok = np.ones((frames, 33), bool)
    for slot, name in enumerate(COCO_WHOLEBODY_NAMES[:23]):
        if name in MEDIAPIPE_POSE_NAMES:
            j = MEDIAPIPE_POSE_NAMES.index(name)
            pose[:, j, :2], pose_ok[:, j] = coco[:, slot], visible[:, slot]
    face = np.zeros((frames, num_face, 3))
    face[..., :2] = np.einsum("fk,tkd->tfd", np.linalg.pinv(_face_matrix(num_face)),
                              coco[:, FACE])
    face_ok = np.repeat(visible[:, FACE].all(axis=1, keepdims=True), num_face, axis=1)
    hand_z = np.zeros((frames, 2, 21)) if hand_z is None else hand_z
    blocks = [pose, face]
    oks = [pose_ok, face_ok]
    names = [("POSE_LANDMARKS", MEDIAPIPE_POSE_POINTS),
             ("FACE_LANDMARKS", [str(i) for i in range(num_face)])]
    if hands:
        for side, part in enumerate((LEFT_HAND, RIGHT_HAND)):
            blocks.append(np.concatenate([coco[:, part], hand_z[:, side, :, None]], -1))
            oks.append(visible[:, part])
        names += [("LEFT_HAND_LANDMARKS", MEDIAPIPE_HAND_POINTS),
                  ("RIGHT_HAND_LANDMARKS", MEDIAPIPE_HAND_POINTS)]
    blocks.append(rng.normal(size=(frames, 33, 3)))  # world landmarks: ignored
    oks.append(np.ones((frames, 33), bool))
    names.append(("POSE_WORLD_LANDMARKS", MEDIAPIPE_POSE_POINTS))
    data = np.concatenate(blocks, axis=1)[:, None].astype(np.float32)
    confidence = np.concatenate(oks, axis=1)[:, None].astype(np.float32)
    masked = np.ma.masked_array(data, mask=np.repeat(confidence[..., None] == 0, 3, -1))
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(WIDTH, HEIGHT, depth=0),
                        components=[_component(n, p) for n, p in names])
    return Pose(header, NumPyPoseBody(fps=fps, data=masked, confidence=confidence))


def _write(pose: Pose, path):
    with open(path, "wb") as f:
        pose.write(f)
    return path


def _clip(frames=10, seed=1) -> tuple[np.ndarray, np.ndarray]:
    """(T,133,2) file-pixel keypoints drifting slowly, shoulders level, all visible."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([230, 130], [410, 330], (133, 2))  # inside the 128 px frame
    base[5], base[6] = (380, 200), (260, 204)  # signer's left shoulder on the image right
    drift = np.cumsum(rng.normal(0, 1.5, (frames, 133, 2)), axis=0)
    return base + drift, np.ones((frames, 133), bool)


def test_known_keypoints_round_trip(tmp_path):
    coco, visible = _clip(12)
    visible[3, 95:100] = False  # a few masked finger points
    visible[7, 0] = False        # and the nose in one frame
    path = _write(_holistic_pose(coco, visible), tmp_path / "clip.pose")
    got = import_pose(path, size=(128, 128))
    assert isinstance(got, ImportedPose) and got.fps == 25.0 and got.size == (128, 128)
    assert got.keypoints.shape == (12, 133, 2) and got.keypoints.dtype == np.float32
    expected_visible = visible.copy()
    expected_visible[:, SMALL_TOES] = False
    expected, expected_visible = normalise_keypoints(coco, expected_visible, (128, 128))
    np.testing.assert_array_equal(got.visible, expected_visible)
    np.testing.assert_allclose(got.keypoints[got.visible], expected[expected_visible],
                               atol=2e-3)
    assert not got.visible[3, 95:100].any() and not got.visible[7, 0]


def test_framing_matches_synthsign_defaults(tmp_path):
    coco, visible = _clip(5)
    got = import_pose(_write(_holistic_pose(coco, visible), tmp_path / "c.pose"), (128, 128))
    left, right = got.keypoints[:, 5], got.keypoints[:, 6]
    width = np.median(np.linalg.norm(left - right, axis=-1))
    centre = np.median(0.5 * (left + right), axis=0)
    np.testing.assert_allclose(width, 0.348 * 128, rtol=1e-4)
    np.testing.assert_allclose(centre, [0.5 * 128 - 0.5, 0.456 * 128 - 0.5], atol=1e-3)
    wide = import_pose(tmp_path / "c.pose", size=(96, 200), shoulder_width=0.2,
                       shoulder_centre=(0.25, 0.5))
    np.testing.assert_allclose(np.median(np.linalg.norm(
        wide.keypoints[:, 5] - wide.keypoints[:, 6], axis=-1)), 40.0, rtol=1e-4)


def test_synthsign_export_imports_to_its_projected_keypoints(tmp_path, one_thread):
    """SynthSign's own Holistic exporter -> import == project_keypoints, same framing."""
    from signgen.body import BodyModel
    from signgen.data.synthsign.signers import make_signers, rest_params, signing_camera

    body = BodyModel()
    params = rest_params(body, make_signers(1)[0], 4)
    params.transl[:, 0] = torch.linspace(0.0, 0.05, 4)  # some motion
    with torch.no_grad():
        joints = body(params).joints.numpy()
    camera = signing_camera(128, 128)
    path = _write(joints_to_pose(joints, camera, fps=25.0), tmp_path / "s.pose")
    got = import_pose(path, size=(128, 128))
    keypoints, visible = project_keypoints(joints, camera)
    visible[:, FACE] = False  # the exporter writes no face mesh
    visible[:, SMALL_TOES] = False
    expected, expected_visible = normalise_keypoints(keypoints, visible, (128, 128))
    both = got.visible & expected_visible
    assert both.sum() >= 0.95 * expected_visible.sum() and both[:, [5, 6, 9, 10]].all()
    np.testing.assert_allclose(got.keypoints[both], expected[both], atol=0.05)
    assert not got.visible[:, FACE].any()


def test_missing_hands_are_masked_not_an_error(tmp_path):
    coco, visible = _clip(6)
    visible[:, LEFT_HAND] = False          # left hand never detected
    visible[2:4, RIGHT_HAND] = False       # right hand lost for two frames
    got = import_pose(_write(_holistic_pose(coco, visible), tmp_path / "h.pose"))
    assert not got.visible[:, LEFT_HAND].any()
    assert got.visible[[0, 1, 4, 5], RIGHT_HAND].all() and not got.visible[2:4, RIGHT_HAND].any()
    assert (got.keypoints[:, LEFT_HAND] == 0).all()


def test_hands_3d_follow_the_keypoints(tmp_path):
    coco, visible = _clip(4)
    z = np.random.default_rng(3).normal(0, 10, (4, 2, 21))
    got = import_pose(_write(_holistic_pose(coco, visible, hand_z=z), tmp_path / "z.pose"))
    assert got.hands_3d.shape == (4, 2, 21, 3) and got.hands_3d.dtype == np.float32
    np.testing.assert_allclose(got.hands_3d[..., :2].reshape(4, 42, 2),
                               got.keypoints[:, 91:], atol=1e-4)
    scale = (np.linalg.norm(got.keypoints[0, 5] - got.keypoints[0, 6])
             / np.linalg.norm(coco[0, 5] - coco[0, 6]))
    np.testing.assert_allclose(got.hands_3d[..., 2], z * scale, rtol=1e-3, atol=1e-3)


def test_resample_frame_count_and_values():
    t = np.arange(50, dtype=np.float64)
    points = np.stack([t, 2 * t], -1)[:, None]  # (50,1,2), linear in time
    visible = np.ones((50, 1), bool)
    out, out_visible = resample(points, visible, 25.0, 12.0)
    assert out.shape == (24, 1, 2) and out_visible.all()  # floor(49 * 12 / 25) + 1
    np.testing.assert_allclose(out[:, 0, 0], np.arange(24) * 25 / 12)
    np.testing.assert_allclose(out[:, 0, 1], np.arange(24) * 50 / 12)
    assert len(resample(np.zeros((250, 1, 2)), np.ones((250, 1), bool), 25, 12)[0]) == 120
    assert len(resample(np.zeros((10, 1, 2)), np.ones((10, 1), bool), 25, 25)[0]) == 10
    assert len(resample(np.zeros((10, 1, 2)), np.ones((10, 1), bool), 12, 24)[0]) == 19


def test_resample_masks_by_nearest_and_never_blends_a_hidden_point():
    points = np.array([[[0.0]], [[10.0]], [[20.0]], [[30.0]]])
    visible = np.array([[True], [False], [True], [True]])
    out, out_visible = resample(points, visible, 4.0, 10.0)  # t = 0, .4, .8, 1.2, ...
    # t=0.4 -> nearest frame 0 (visible), not blended with the hidden frame 1.
    assert out_visible[1, 0] and out[1, 0, 0] == 0.0
    assert not out_visible[2, 0]  # t=0.8 -> nearest is the hidden frame 1
    np.testing.assert_allclose(out[6, 0, 0], 24.0)  # t=2.4 between visible 2 and 3


def test_import_resamples_25_to_12_fps(tmp_path):
    coco, visible = _clip(50)
    got = import_pose(_write(_holistic_pose(coco, visible), tmp_path / "r.pose"), fps=12)
    assert got.fps == 12.0 and got.num_frames == 24 and got.hands_3d.shape[0] == 24
    full = import_pose(tmp_path / "r.pose")
    # The framing is computed on the resampled clip, so compare after re-framing both.
    times = np.arange(24) * 25 / 12
    lo = np.floor(times).astype(int)
    w = (times - lo)[:, None, None]
    interp = (1 - w) * coco[lo] + w * coco[np.minimum(lo + 1, 49)]
    vis = np.ones((24, 133), bool)
    vis[:, SMALL_TOES] = False
    expected, _ = normalise_keypoints(interp, vis, (128, 128))
    np.testing.assert_allclose(got.keypoints[got.visible], expected[got.visible], atol=2e-3)
    assert full.num_frames == 50


def test_single_frame_works(tmp_path):
    coco, visible = _clip(1)
    path = _write(_holistic_pose(coco, visible), tmp_path / "one.pose")
    got = import_pose(path, fps=12)
    assert got.num_frames == 1 and got.visible[0, 5:7].all()
    assert pose_maps(got).shape == (1, 128, 128, 3)


def test_face_468_and_reduced_face_by_point_name(tmp_path):
    coco, visible = _clip(3)
    got = import_pose(_write(_holistic_pose(coco, visible, num_face=468), tmp_path / "f.pose"))
    assert got.visible[:, FACE].all()
    # A mesh that lost point 4 (nose tip): only the slot using it is masked.
    pose = _holistic_pose(coco, visible)
    reduced = pose.get_components(
        ["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"],
        {"FACE_LANDMARKS": [str(i) for i in range(478) if i != 4]})
    got = import_pose(_write(reduced, tmp_path / "reduced.pose"))
    nose_tip = 23 + 30
    assert not got.visible[:, nose_tip].any()
    assert got.visible[:, 23:nose_tip].all() and got.visible[:, nose_tip + 1:91].all()


def test_face_table_is_a_valid_index_table():
    assert len(MEDIAPIPE_FACE_TO_IBUG68) == 68
    flat = [i for row in MEDIAPIPE_FACE_TO_IBUG68 for i in row]
    assert all(0 <= i < 468 for i in flat) and all(1 <= len(r) <= 2 for r in
                                                   MEDIAPIPE_FACE_TO_IBUG68)
    assert np.linalg.matrix_rank(_face_matrix(468)) == 68  # 68 distinct landmarks


def test_pose_maps_are_the_synthsign_condition_stream(tmp_path):
    coco, visible = _clip(3)
    got = import_pose(_write(_holistic_pose(coco, visible), tmp_path / "m.pose"), (64, 96))
    maps = pose_maps(got)
    assert maps.shape == (3, 64, 96, 3) and maps.dtype == np.uint8 and maps.any()
    np.testing.assert_array_equal(maps, draw_pose_map(got.keypoints, got.visible, 64, 96))


def _bad_files(tmp_path):
    coco, visible = _clip(4)
    good = _write(_holistic_pose(coco, visible), tmp_path / "good.pose").read_bytes()
    cases = {}

    def case(name, problem, data: bytes):
        path = tmp_path / f"{name}.pose"
        path.write_bytes(data)
        cases[name] = (path, problem)

    case("empty", "empty", b"")
    case("truncated_header", "truncated or corrupt", good[:40])
    case("truncated_body", "truncated or corrupt", good[: len(good) - 7])
    case("garbage", "truncated or corrupt", bytes(range(256)) * 4)
    zero = _holistic_pose(coco[:0], visible[:0])
    case("zero_frames", "zero frames", _write(zero, tmp_path / "tmp0").read_bytes())
    no_hands = _holistic_pose(coco, visible, hands=False)
    case("no_hands", "no hand component", _write(no_hands, tmp_path / "tmp1").read_bytes())
    case("zero_confidence", "no visible landmark",
         _write(_holistic_pose(coco, np.zeros_like(visible)), tmp_path / "tmp2").read_bytes())
    hidden = visible.copy()
    hidden[:, 5] = False
    case("no_shoulders", "both shoulders",
         _write(_holistic_pose(coco, hidden), tmp_path / "tmp3").read_bytes())
    case("openpose", "not a MediaPipe Holistic",
         _write(fake_openpose_pose(5), tmp_path / "tmp4").read_bytes())
    cases["missing"] = (tmp_path / "missing.pose", "no such")
    return cases


BAD_CASES = ["empty", "truncated_header", "truncated_body", "garbage", "zero_frames",
             "no_hands", "zero_confidence", "no_shoulders", "openpose", "missing"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_raises_one_line_error_naming_file(tmp_path, case):
    path, problem = _bad_files(tmp_path)[case]
    with pytest.raises(InvalidInputError) as info:
        import_pose(path)
    message = str(info.value)
    assert str(path) in message and problem in message and "\n" not in message


@pytest.mark.parametrize("kwargs", [{"size": (0, 128)}, {"size": (128,)}, {"fps": 0},
                                    {"fps": float("nan")}, {"shoulder_width": -1.0}])
def test_bad_arguments(tmp_path, kwargs):
    coco, visible = _clip(2)
    path = _write(_holistic_pose(coco, visible), tmp_path / "a.pose")
    with pytest.raises(InvalidInputError):
        import_pose(path, **kwargs)


def test_real_mediapipe_file_from_spoken_to_signed():
    """A real Holistic recording (478-point face, one hand missing) imports cleanly."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("spoken_to_signed")
    if spec is None:
        pytest.skip("spoken-to-signed (dev extra) is not installed")
    files = sorted((Path(spec.origin).parent / "assets" / "fingerspelling_lexicon").glob(
        "*/*.pose"))
    if not files:
        pytest.skip("spoken-to-signed ships no fingerspelling lexicon")
    got = import_pose(files[0], size=(128, 128), fps=12)
    assert got.fps == 12 and got.visible[:, [5, 6]].all() and got.visible[:, FACE].any()
    face = got.keypoints[0, FACE]
    # ibug order: jaw from the signer's right (image left) to left; right eye left of left.
    assert face[0, 0] < face[8, 0] < face[16, 0] and face[36, 0] < face[45, 0]
    assert pose_maps(got).any()
