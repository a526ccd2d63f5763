"""The stand-in SMPL-X model: file format, posing through smplx, keypoints, bad input."""

import numpy as np
import pytest
import torch

from signgen.body import standin
from signgen.body.keypoints import (
    COCO_WHOLEBODY_NAMES,
    coco_wholebody_edges,
    to_coco_wholebody,
    to_mediapipe_holistic,
)
from signgen.body.model import NUM_OUTPUT_JOINTS, BodyModel, SMPLXParams
from signgen.body.skeleton import JOINT_INDEX, PARENTS, descendants, hand_joints
from signgen.errors import BodyModelError, InvalidInputError
from signgen.paths import standin_body_model_dir


@pytest.fixture(scope="module")
def body():
    return BodyModel()


def test_shipped_standin_is_reproducible(tmp_path):
    """The committed asset is exactly what `python -m signgen.body.standin` builds."""
    rebuilt = np.load(standin.save_standin(tmp_path))
    shipped = np.load(standin_body_model_dir() / "SMPLX_NEUTRAL.npz")
    assert sorted(rebuilt.files) == sorted(shipped.files)
    for key in shipped.files:
        if shipped[key].dtype.kind == "f":
            np.testing.assert_allclose(rebuilt[key], shipped[key], atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(rebuilt[key], shipped[key], err_msg=key)


def test_standin_has_official_layout():
    data = np.load(standin_body_model_dir() / "SMPLX_NEUTRAL.npz")
    v = data["v_template"].shape[0]
    assert data["f"].shape[1] == 3 and data["f"].max() == v - 1
    assert data["J_regressor"].shape == (55, v)
    np.testing.assert_allclose(data["J_regressor"].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(data["weights"].sum(1), 1.0, atol=1e-5)
    assert data["weights"].shape == (v, 55)
    assert data["shapedirs"].shape == (v, 3, 20)
    assert data["posedirs"].shape == (v, 3, 486)
    assert data["hands_componentsl"].shape == (45, 45) and data["hands_meanr"].shape == (45,)
    assert data["lmk_faces_idx"].shape == (51,) and data["lmk_bary_coords"].shape == (51, 3)
    assert data["dynamic_lmk_faces_idx"].shape == (79, 17)
    assert list(data["kintree_table"][0, 1:]) == list(PARENTS[1:])
    # Every body-shape and expression direction actually deforms the mesh.
    assert (np.abs(data["shapedirs"]).max(axis=(0, 1)) > 1e-3).all()


def test_rest_joints_match_the_design(body):
    out = body(body.zero_params(1))
    np.testing.assert_allclose(out.joints[0, :55].numpy(), standin.rest_joints(), atol=1e-4)
    assert out.joints.shape == (1, NUM_OUTPUT_JOINTS, 3)
    height = out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min()
    assert 1.6 < height < 1.8


def test_bending_the_left_elbow_moves_only_its_forearm_and_hand(body):
    params = body.zero_params(2)
    elbow = JOINT_INDEX["left_elbow"]
    params.body_pose[1, 3 * (elbow - 1) + 1] = -1.2  # flex about +Y: the forearm swings forward
    out = body(params)
    moved = ((out.joints[1, :55] - out.joints[0, :55]).norm(dim=1) > 1e-5).nonzero().flatten()
    assert set(moved.tolist()) == descendants(elbow)
    wrist = JOINT_INDEX["left_wrist"]
    assert out.joints[1, wrist, 2] > out.joints[0, wrist, 2] + 0.15  # moved toward +Z (front)
    # The elbow itself and the upper arm's vertices stay put; forearm length is preserved.
    weights = body.skin_weights
    upper_arm = weights[:, JOINT_INDEX["left_shoulder"]] > 0.999
    assert torch.allclose(out.vertices[1, upper_arm], out.vertices[0, upper_arm], atol=1e-6)
    length = (out.joints[:, wrist] - out.joints[:, elbow]).norm(dim=1)
    assert torch.allclose(length[0], length[1], atol=1e-5)


def test_hand_pose_uses_all_45_values_per_hand(body):
    params = body.zero_params(2)
    # Flex only the left index finger's middle joint (hand joint 1 = left_index2).
    params.left_hand_pose[1, 3 * 1 + 2] = -1.0
    out = body(params)
    tip = list(body_names()).index("left_index")
    moved = (out.joints[1] - out.joints[0]).norm(dim=1) > 1e-5
    assert moved[JOINT_INDEX["left_index3"]] and moved[tip]
    assert not moved[JOINT_INDEX["left_middle3"]] and not moved[JOINT_INDEX["right_index3"]]
    assert out.joints[1, tip, 1] < out.joints[0, tip, 1] - 0.01  # curls toward the palm (-Y)


def body_names():
    from signgen.body.model import OUTPUT_JOINT_NAMES
    return OUTPUT_JOINT_NAMES


def test_jaw_opens_the_mouth_and_expressions_touch_only_the_face(body):
    params = body.zero_params(3)
    params.jaw_pose[1, 0] = 0.3
    params.expression[2, 1] = 2.0  # brows up
    out = body(params)
    names = body_names()
    top, bottom = names.index("lip_top"), names.index("lip_bottom")
    gap = out.joints[:, top, 1] - out.joints[:, bottom, 1]
    assert gap[1] > gap[0] + 0.005
    brow = names.index("left_eye_brow3")
    assert out.joints[2, brow, 1] > out.joints[0, brow, 1] + 0.003
    moved = (out.vertices[2] - out.vertices[0]).norm(dim=1) > 1e-6
    assert moved.any() and (out.vertices[0, moved, 1] > 0.2).all()  # head only


def test_params_full_pose_round_trip():
    params = SMPLXParams.zeros(4)
    for name in SMPLXParams.FULL_POSE_ORDER:
        setattr(params, name, torch.randn_like(getattr(params, name)))
    again = SMPLXParams.from_full_pose(params.full_pose(), params.betas[0])
    assert params.full_pose().shape == (4, 165)
    for name in SMPLXParams.FULL_POSE_ORDER:
        assert torch.equal(getattr(again, name), getattr(params, name))


def test_keypoint_layouts(body):
    out = body(body.zero_params(1))
    coco = to_coco_wholebody(out.joints)
    assert coco.shape == (1, 133, 3)
    assert COCO_WHOLEBODY_NAMES[9] == "left_wrist" and COCO_WHOLEBODY_NAMES[91] == "left_wrist"
    np.testing.assert_allclose(coco[0, 9], out.joints[0, JOINT_INDEX["left_wrist"]])
    # The signer's left is +X; the left hand's 21 points are all on that side.
    assert (coco[0, 91:112, 0] > 0.6).all() and (coco[0, 112:133, 0] < -0.6).all()
    mp = to_mediapipe_holistic(out.joints)
    assert mp["POSE_LANDMARKS"].shape == (1, 33, 3)
    assert mp["LEFT_HAND_LANDMARKS"].shape == (1, 21, 3)
    # Face landmarks sit on the face: above the shoulders, in front of the head centre.
    face = coco[0, 23:91]
    assert (face[:, 1] > 0.2).all() and (face[:, 2] > 0.0).all()
    for part, edges in coco_wholebody_edges().items():
        assert all(0 <= a < 133 and 0 <= b < 133 for a, b in edges), part
    assert len(hand_joints("right")) == 16


def test_bad_inputs_give_named_errors(body, tmp_path):
    params = body.zero_params(2)
    params.body_pose = torch.zeros(2, 60)
    with pytest.raises(InvalidInputError, match="body_pose must have shape"):
        body(params)
    params = body.zero_params(2)
    params.left_hand_pose[0, 5] = float("nan")
    with pytest.raises(InvalidInputError, match="left_hand_pose contains NaN"):
        body(params)
    params = body.zero_params(2)
    params.jaw_pose = torch.zeros(3, 3)
    with pytest.raises(InvalidInputError, match="jaw_pose has batch size 3"):
        body(params)
    with pytest.raises(InvalidInputError, match=r"keypoint|SMPL-X output joints"):
        to_coco_wholebody(torch.zeros(1, 55, 3))


def test_missing_and_malformed_model_files(tmp_path, monkeypatch):
    monkeypatch.delenv("SMPLX_MODEL_DIR", raising=False)
    with pytest.raises(BodyModelError, match="does not exist"):
        BodyModel(tmp_path / "nowhere")
    with pytest.raises(BodyModelError, match="no SMPLX_NEUTRAL"):
        BodyModel(tmp_path)
    (tmp_path / "SMPLX_NEUTRAL.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(BodyModelError, match="malformed"):
        BodyModel(tmp_path)
    data = dict(np.load(standin_body_model_dir() / "SMPLX_NEUTRAL.npz"))
    del data["J_regressor"]
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **data)
    with pytest.raises(BodyModelError, match="J_regressor"):
        BodyModel(tmp_path)
    with pytest.raises(BodyModelError, match="gender"):
        BodyModel(gender="robot")


def test_env_var_points_at_other_model_files(tmp_path, monkeypatch):
    """SMPLX_MODEL_DIR is honoured (here: a copy of the stand-in with a moved template)."""
    data = dict(np.load(standin_body_model_dir() / "SMPLX_NEUTRAL.npz"))
    data["v_template"] = data["v_template"] + np.float32(1.0)
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **data)
    monkeypatch.setenv("SMPLX_MODEL_DIR", str(tmp_path))
    moved = BodyModel()
    assert not moved.is_standin
    out = moved(moved.zero_params(1))
    assert out.joints[0, 0, 1] > 0.5  # the pelvis moved up by ~1 m
