"""Left/right mirroring (signgen.body.mirror) and canonical handedness: left-handed
signers' samples re-rendered as their mirror images and tokenised so."""

import json
import shutil

import numpy as np
import pytest
import torch

from signgen.body.mirror import (
    COCO_WHOLEBODY_MIRROR,
    JOINT_MIRROR,
    mirror_full_pose,
    mirror_keypoints,
    mirror_transl,
    mirror_visible,
)
from signgen.errors import InvalidInputError, SignGenError


def test_mirrors_are_involutions_and_swap_sides():
    rng = np.random.default_rng(0)
    poses, keypoints = rng.normal(size=(4, 165)), rng.uniform(0, 63, size=(4, 133, 2))
    np.testing.assert_allclose(mirror_full_pose(mirror_full_pose(poses)), poses, atol=1e-6)
    np.testing.assert_allclose(mirror_keypoints(mirror_keypoints(keypoints, 64), 64),
                               keypoints, atol=1e-5)
    assert (JOINT_MIRROR[JOINT_MIRROR] == np.arange(55)).all()
    assert (COCO_WHOLEBODY_MIRROR[COCO_WHOLEBODY_MIRROR] == np.arange(133)).all()
    # the left wrist (joint 20) takes the right wrist's rotation, y and z negated
    mirrored = mirror_full_pose(poses).reshape(4, 55, 3)
    np.testing.assert_allclose(mirrored[:, 20], poses.reshape(4, 55, 3)[:, 21] * [1, -1, -1],
                               rtol=1e-6)
    # COCO: left shoulder 5 <-> right shoulder 6, left hand 91.. <-> right hand 112..
    assert COCO_WHOLEBODY_MIRROR[5] == 6 and COCO_WHOLEBODY_MIRROR[91] == 112
    np.testing.assert_allclose(mirror_keypoints(keypoints, 64)[:, 5, 0],
                               63 - keypoints[:, 6, 0], rtol=1e-6)
    np.testing.assert_allclose(mirror_transl(np.array([0.1, 0.2, 0.3])), [-0.1, 0.2, 0.3],
                               rtol=1e-6)
    visible = np.zeros((133,), bool)
    visible[91] = True
    assert mirror_visible(visible)[112] and not mirror_visible(visible)[91]
    as_tensor = mirror_full_pose(torch.tensor(poses))
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), mirror_full_pose(poses), rtol=1e-6)
    with pytest.raises(InvalidInputError, match="165"):
        mirror_full_pose(np.zeros((3, 164)))
    with pytest.raises(InvalidInputError, match="133, 2"):
        mirror_keypoints(np.zeros((3, 17, 2)), 64)


def test_the_mirrored_pose_poses_the_body_as_the_mirror_image(one_thread):
    """The stand-in body is left/right symmetric: posed with the mirrored parameters its
    joints are the mirror images of the original's, and the camera maps that to the
    horizontally flipped frame (the face landmarks are symmetric to within 5 mm)."""
    from signgen.body import BodyModel, SMPLXParams
    from signgen.body.keypoints import to_coco_wholebody
    from signgen.data.synthsign.conditions import project_keypoints
    from signgen.data.synthsign.signers import signing_camera

    body = BodyModel().eval()
    rng = np.random.default_rng(1)
    poses = torch.tensor(rng.normal(scale=0.3, size=(3, 165)), dtype=torch.float32)
    transl = torch.tensor([[0.05, 0.0, 0.1]] * 3)
    betas = torch.tensor(rng.normal(scale=0.8, size=(10,)), dtype=torch.float32)
    with torch.no_grad():
        out = body(SMPLXParams.from_full_pose(poses, betas, transl=transl))
        mirrored = body(SMPLXParams.from_full_pose(mirror_full_pose(poses), betas,
                                                   transl=mirror_transl(transl)))
    points = to_coco_wholebody(out.joints).numpy()
    expected = points[:, COCO_WHOLEBODY_MIRROR] * [-1, 1, 1]
    found = to_coco_wholebody(mirrored.joints).numpy()
    not_face = np.r_[0:23, 91:133]
    np.testing.assert_allclose(found[:, not_face], expected[:, not_face], atol=1e-4)
    np.testing.assert_allclose(found, expected, atol=5e-3)
    camera = signing_camera(64, 48)
    keypoints, _ = project_keypoints(out.joints, camera)
    mirrored_keypoints, _ = project_keypoints(mirrored.joints, camera)
    np.testing.assert_allclose(mirrored_keypoints[:, not_face],
                               mirror_keypoints(keypoints, 64)[:, not_face], atol=1e-3)


@pytest.fixture(scope="module")
def lefty_root(tiny_data_root, tmp_path_factory):
    """A copy of the tiny dataset whose dev sample's signer is left-handed."""
    root = tmp_path_factory.mktemp("lefty") / "synthsign"
    shutil.copytree(tiny_data_root / "synthsign", root)
    dev = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()
           if json.loads(line)["split"] == "dev"][0]
    signers = json.loads((root / "signers.json").read_text())
    for signer in signers:
        signer["handedness"] = "left" if signer["signer_id"] == dev["signer_id"] else "right"
    (root / "signers.json").write_text(json.dumps(signers))
    return root, dev["signer_id"]


def test_condition_mirror_redraws_the_mirror_image(lefty_root, one_thread):
    """Hand renders (normals in camera axes): the flipped frame with the normals' x
    negated. Pose maps: the flipped drawing, one pixel over (the drawing sits half a pixel
    right of the keypoints, as PIL rasterises), with left and right colours swapped."""
    from signgen.data.synthsign.dataset import read_npz
    from signgen.data.synthsign.mirroring import ConditionMirror, left_handed_signers

    root, signer = lefty_root
    assert left_handed_signers(root) == [signer]
    mirror = ConditionMirror(root)
    out = mirror.render("dev-00000")
    with read_npz(root / "samples" / "dev-00000" / "conditions.npz") as conditions:
        pose_map, hands = conditions["pose_map"], conditions["hand_render"]
    with read_npz(root / "samples" / "dev-00000" / "motion.npz") as motion:
        poses, keypoints = motion["poses"], motion["keypoints"]
    assert out["pose_map"].shape == pose_map.shape and out["pose_map"].dtype == np.uint8
    np.testing.assert_allclose(out["poses"], mirror_full_pose(poses), atol=1e-6)
    body = np.r_[0:23, 91:133]
    np.testing.assert_allclose(out["keypoints"][:, body],
                               mirror_keypoints(keypoints, 64)[:, body], atol=1e-3)
    flipped = hands[:, :, ::-1].astype(int)
    drawn = out["hand_render"].astype(int)
    both = (flipped.max(-1) > 0) & (drawn.max(-1) > 0)
    assert both.sum() > 20
    assert ((flipped.max(-1) > 0) == (drawn.max(-1) > 0)).mean() > 0.99
    assert np.abs(drawn[..., 0] - (255 - flipped[..., 0]))[both].mean() < 2
    assert np.abs(drawn[..., 1:] - flipped[..., 1:])[both].mean() < 2
    shape = np.roll(pose_map[:, :, ::-1].max(-1) > 0, -1, axis=2)
    found = out["pose_map"].max(-1) > 0
    assert (shape & found).sum() / (shape | found).sum() > 0.9
    assert not np.array_equal(out["pose_map"], np.roll(pose_map[:, :, ::-1], -1, axis=2))


def test_canonical_tokens_mirror_only_the_left_handed_signers(lefty_root, tmp_path,
                                                              one_thread):
    from test_fsq_autoencoder import pose_reading_tokeniser

    from signgen.data.synthsign.mirroring import ConditionMirror
    from signgen.data.tokens import _mirrored_item, load_tokens, tokenise_split

    root, signer = lefty_root
    encoder, model = pose_reading_tokeniser()
    plain = tokenise_split(model, encoder, root, "dev", tmp_path / "plain", "abc",
                           progress=False)
    canonical = tokenise_split(model, encoder, root, "dev", tmp_path / "canonical", "abc",
                               progress=False, canonical_handedness=True)
    plain, canonical = load_tokens(plain, "abc"), load_tokens(canonical, "abc")
    assert canonical.meta["mirrored_signers"] == [signer]
    assert "mirrored_signers" not in plain.meta
    item = _mirrored_item(ConditionMirror(root), "dev-00000")
    with torch.no_grad():
        embedding = encoder.embed({"pose_map": item["pose_map"],
                                   "hand_render": item["hand_render"]})
        expected = model.encode(embedding, smplx_pose=item["poses"].float()).indices
    np.testing.assert_array_equal(canonical.samples[0]["tokens"], expected.numpy())
    assert not np.array_equal(canonical.samples[0]["tokens"], plain.samples[0]["tokens"])
    # the train samples' signers are right-handed here: their tokens do not change
    train = [tokenise_split(model, encoder, root, "train", tmp_path / name, "abc",
                            progress=False, canonical_handedness=flag)
             for name, flag in (("a", False), ("b", True))]
    a, b = (load_tokens(t, "abc").samples for t in train)
    for x, y in zip(a, b, strict=True):
        if x["signer_id"] != signer:
            np.testing.assert_array_equal(x["tokens"], y["tokens"])


def test_a_corpus_without_handedness_is_refused(tmp_path):
    from signgen.data.synthsign.mirroring import left_handed_signers

    with pytest.raises(SignGenError, match="handedness"):
        left_handed_signers(tmp_path)
    (tmp_path / "signers.json").write_text(json.dumps([{"signer_id": "a"}]))
    with pytest.raises(SignGenError, match="handedness"):
        left_handed_signers(tmp_path)
