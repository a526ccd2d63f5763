"""Isolated-sign export: .pose files readable by pose-format, spoken-to-signed index."""

import csv

import numpy as np
import pytest
import torch
from pose_format import Pose

from signgen.body import BodyModel
from signgen.data.synthsign.lexicon import Lexicon
from signgen.data.synthsign.lexicon_export import INDEX_COLUMNS, export_lexicon
from signgen.data.synthsign.motion import MotionPlanner, SignerMotionStyle
from signgen.data.synthsign.signers import make_signers, signing_camera


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    lexicon = Lexicon.load()
    signer = make_signers(1)[0]
    out = export_lexicon(tmp_path_factory.mktemp("lex"), lexicon, signer, "ssl-b", fps=25,
                         size=(128, 128), glosses=["HELLO", "STORE"])
    return out, lexicon, signer


def test_index_has_spoken_to_signed_columns(exported):
    out, lexicon, _ = exported
    with open(out / "index.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == INDEX_COLUMNS
    store_words = {r["words"] for r in rows if r["glosses"] == "STORE"}
    assert store_words == set(lexicon.concept("STORE").words)  # every synonym is a row
    letters = [r for r in rows if r["glosses"].startswith("fs-")]
    assert len(letters) == 26 and {r["signed_language"] for r in rows} == {"ssl-b"}
    for row in rows:
        assert (out / row["path"]).is_file() and int(row["end"]) > int(row["start"]) == 0


def test_pose_files_read_back_with_holistic_components(exported):
    out, lexicon, signer = exported
    pose = Pose.read((out / "ssl-b" / "HELLO.pose").read_bytes())
    names = [c.name for c in pose.header.components]
    assert names == ["POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS",
                     "RIGHT_HAND_LANDMARKS", "POSE_WORLD_LANDMARKS"]
    assert pose.body.data.shape[1:] == (1, 33 + 478 + 21 + 21 + 33, 3)
    assert pose.body.fps == 25
    # The right wrist landmark is where the SMPL-X right wrist projects.
    body = BodyModel()
    clip = MotionPlanner(body, fps=25).plan(
        [("HELLO", lexicon.forms("HELLO", "ssl-b"))],
        SignerMotionStyle(betas=signer.betas, handedness=signer.handedness,
                          speed=signer.speed, space_scale=signer.space_scale),
        np.random.default_rng([0, 0]))
    with torch.no_grad():
        joints = body(clip.params).joints.numpy()
    camera = signing_camera(128, 128)
    uv, _ = camera.project(joints[:, 21])
    wrist = pose.header.get_point_index("POSE_LANDMARKS", "RIGHT_WRIST")
    got = pose.body.data[:, 0, wrist, :2]
    visible = ~np.ma.getmaskarray(got).any(axis=1)
    assert visible.sum() > len(visible) // 2
    np.testing.assert_allclose(np.asarray(got)[visible], uv[visible], atol=1e-3)
    # The face mesh is absent (masked), and confidence 0 means masked.
    face = pose.header.get_point_index("FACE_LANDMARKS", "0")
    assert (pose.body.confidence[:, 0, face:face + 478] == 0).all()


def test_exporting_a_second_language_keeps_the_first(exported):
    out, lexicon, signer = exported
    export_lexicon(out, lexicon, signer, "ssl-a", fps=25, size=(128, 128), glosses=["HELLO"])
    with open(out / "index.csv") as f:
        languages = {r["signed_language"] for r in csv.DictReader(f)}
    assert languages == {"ssl-a", "ssl-b"}
