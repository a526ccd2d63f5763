"""SynthSign condition streams (pose maps, hand renders) and the preview helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from signgen.body import BodyModel
from signgen.body.model import OUTPUT_JOINT_NAMES
from signgen.body.skeleton import JOINT_INDEX
from signgen.data.synthsign.conditions import (
    HAND_SIDE_LEFT,
    HAND_SIDE_RIGHT,
    draw_pose_map,
    hand_mesh,
    inside_frame,
    project_keypoints,
    render_hands,
    render_hands_with_sides,
)
from signgen.data.synthsign.preview import contact_sheet, save_gif, save_png, side_by_side
from signgen.data.synthsign.signers import signing_camera
from signgen.errors import InvalidInputError
from signgen.render import MeshRenderer
from signgen.render.preview import preview_params

SIZES = [(128, 128), (272, 224)]  # (height, width)
# COCO-WholeBody indices.
LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST = 7, 8, 9, 10


@pytest.fixture(scope="module")
def body():
    return BodyModel()


@pytest.fixture(scope="module")
def posed(body):
    """Frame 0: both forearms forward at waist height; frame 1: right hand raised by
    the chin, left hand forward (hands hanging at rest are below the signing frame)."""
    params = preview_params(body)
    for name, flex in (("left_elbow", -1.4), ("right_elbow", 1.4)):
        i = JOINT_INDEX[name]
        params.body_pose[0, 3 * (i - 1) + 1] = flex
    with torch.no_grad():
        return body(params)


def _pixel(uv) -> tuple[int, int]:
    """(row, column) of the pixel containing pixel coordinates (u, v)."""
    return int(round(float(uv[1]))), int(round(float(uv[0])))


@pytest.mark.parametrize("height, width", SIZES)
def test_project_keypoints(posed, height, width):
    camera = signing_camera(width, height)
    keypoints, visible = project_keypoints(posed.joints, camera)
    assert keypoints.shape == (2, 133, 2) and keypoints.dtype == np.float32
    assert visible.shape == (2, 133) and visible.dtype == bool
    # Upper body, face and hands are in view; the ankles (15, 16) are below the frame.
    assert visible[:, :13].all() and visible[:, 23:].all()
    assert not visible[:, 15:17].any()
    # numpy and torch input agree, and match projecting the SMPL-X joint directly.
    again, _ = project_keypoints(posed.joints.numpy(), camera)
    np.testing.assert_allclose(again, keypoints, atol=1e-4)
    uv, _ = camera.project(posed.joints[1, OUTPUT_JOINT_NAMES.index("right_wrist")].numpy())
    np.testing.assert_allclose(keypoints[1, RIGHT_WRIST], uv, atol=1e-3)
    # Points behind the camera are invisible.
    behind = posed.joints.clone()
    behind[..., 2] += 10.0
    assert not project_keypoints(behind, camera)[1].any()
    with pytest.raises(InvalidInputError, match="joints"):
        project_keypoints(posed.joints[:, :100], camera)
    # The in-frame rule on its own (what generated keypoints are scored with).
    np.testing.assert_array_equal(inside_frame(keypoints, height, width), visible)


def test_inside_frame_edges_and_nan():
    points = np.array([[-0.5, 0], [-0.51, 0], [3.49, 1], [3.5, 1], [0, 1.49], [0, 1.5],
                       [np.nan, 0]])
    np.testing.assert_array_equal(inside_frame(points, height=2, width=4),
                                  [True, False, True, False, True, False, False])


@pytest.mark.parametrize("height, width", SIZES)
def test_pose_map(posed, height, width):
    keypoints, visible = project_keypoints(posed.joints, signing_camera(width, height))
    maps = draw_pose_map(keypoints, visible, height, width)
    assert maps.shape == (2, height, width, 3) and maps.dtype == np.uint8
    lit = maps.any(axis=-1)
    for t in range(2):
        for k in (LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST):
            row, col = _pixel(keypoints[t, k])  # dots are ~1 px at 128 px: allow 1 px
            assert lit[t][row - 1:row + 2, col - 1:col + 2].any(), (t, k)
        # Black away from the body: outside the visible keypoints' box, grown by a
        # limb width, nothing is drawn.
        margin = max(1, round(min(height, width) / 64)) + 1
        (u0, v0), (u1, v1) = keypoints[t][visible[t]].min(0), keypoints[t][visible[t]].max(0)
        rows, cols = np.nonzero(lit[t])
        assert cols.min() >= u0 - margin and cols.max() <= u1 + margin
        assert rows.min() >= v0 - margin and rows.max() <= v1 + margin
    # Body limbs and dots use the OpenPose colours, face dots are white, hand joints blue.
    colours = {tuple(c) for c in maps.reshape(-1, 3)}
    assert {(255, 0, 0), (255, 255, 255), (0, 0, 255), (153, 0, 0)} <= colours
    # Deterministic.
    np.testing.assert_array_equal(draw_pose_map(keypoints, visible, height, width), maps)


def test_invisible_keypoints_are_not_drawn(posed):
    keypoints, visible = project_keypoints(posed.joints, signing_camera(128, 128))
    assert not draw_pose_map(keypoints, np.zeros_like(visible), 128, 128).any()
    # Only the shoulders visible: only the neck-shoulder limbs and dots are drawn.
    shoulders = np.zeros_like(visible)
    shoulders[:, 5:7] = True
    maps = draw_pose_map(keypoints, shoulders, 128, 128)
    for t in range(2):
        rows, cols = np.nonzero(maps[t].any(axis=-1))
        (u0, v0), (u1, v1) = keypoints[t, 5:7].min(0), keypoints[t, 5:7].max(0)
        assert len(rows) and cols.min() >= u0 - 2 and cols.max() <= u1 + 2
        assert rows.min() >= v0 - 2 and rows.max() <= v1 + 2
    # Hiding the right wrist removes its forearm limb (OpenPose limb 3, drawn at 60 %)
    # and its dot (OpenPose colour 4; the right hand, hidden here, would cover it).
    no_hand = visible.copy()
    no_hand[:, 112:] = False
    no_wrist = no_hand.copy()
    no_wrist[:, RIGHT_WRIST] = False
    forearm, wrist_dot = (153, 153, 0), (170, 255, 0)
    for mask, present in ((no_hand, True), (no_wrist, False)):
        colours = {tuple(c) for c in draw_pose_map(keypoints, mask, 128, 128).reshape(-1, 3)}
        assert (forearm in colours) == present and (wrist_dot in colours) == present
    with pytest.raises(InvalidInputError, match="visible"):
        draw_pose_map(keypoints, visible[:, :50], 128, 128)


def test_hand_mesh_is_palm_and_fingers_without_sleeve(body, posed):
    ids, faces = hand_mesh(body)
    regions = body.vertex_regions.numpy()
    assert len(ids) > 500 and (np.diff(ids) > 0).all()
    assert faces.min() == 0 and faces.max() == len(ids) - 1 and len(faces) > 500
    # Only hand-region vertices: no sleeve (shirt) vertex.
    assert (regions[ids] == body.region_names.index("hand")).all()
    # The palm is included: the vertices closest to each hand's middle knuckle.
    vertices = posed.vertices[0].numpy()
    for side in ("left", "right"):
        knuckle = posed.joints[0, JOINT_INDEX[f"{side}_middle1"]].numpy()
        nearest = np.argsort(np.linalg.norm(vertices - knuckle, axis=1))[:8]
        assert np.isin(nearest, ids).all()
    # The forearm, between elbow and wrist, is not.
    elbow = posed.joints[0, JOINT_INDEX["left_elbow"]].numpy()
    wrist = posed.joints[0, JOINT_INDEX["left_wrist"]].numpy()
    forearm = np.argsort(np.linalg.norm(vertices - (elbow + wrist) / 2, axis=1))[:20]
    assert not np.isin(forearm, ids).any()


@pytest.mark.parametrize("height, width", SIZES)
def test_hand_render(body, posed, height, width):
    camera = signing_camera(width, height)
    renderer = MeshRenderer(width, height)
    rgb, sides = render_hands_with_sides(posed.vertices, body, camera, renderer)
    assert rgb.shape == (2, height, width, 3) and rgb.dtype == np.uint8
    assert sides.shape == (2, height, width)
    lit = rgb.any(axis=-1)
    np.testing.assert_array_equal(lit, sides > 0)
    for t in range(2):
        for side, label in (("left", HAND_SIDE_LEFT), ("right", HAND_SIDE_RIGHT)):
            knuckle = posed.joints[t, JOINT_INDEX[f"{side}_middle1"]].numpy()
            row, col = _pixel(camera.project(knuckle)[0])
            assert lit[t, row, col], (t, side)
            assert sides[t, row, col] == label
        # Black around the torso centre.
        (u, v), _ = camera.project(posed.joints[t, JOINT_INDEX["spine2"]].numpy())
        row, col = _pixel((u, v))
        radius = max(2, height // 32)
        assert not lit[t, row - radius:row + radius + 1, col - radius:col + radius + 1].any()
    # The colours decode to unit normals facing the camera (OpenGL axes: z > 0; smooth
    # normals can lean slightly away at the silhouette).
    normals = rgb[lit].astype(np.float64) / 255.0 * 2.0 - 1.0
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=0.03)
    assert normals[:, 2].mean() > 0.3 and (normals[:, 2] > -0.02).mean() > 0.97
    # Deterministic, and render_hands gives the same colours.
    np.testing.assert_array_equal(render_hands(posed.vertices, body, camera, renderer), rgb)


def test_preview_contact_sheet_and_files(tmp_path):
    rng = np.random.default_rng(0)
    frames, poses, hands = (rng.integers(0, 256, (10, 24, 32, 3), dtype=np.uint8)
                            for _ in range(3))
    sheet = contact_sheet(frames, poses, hands, num_columns=4)
    gap = 1
    assert sheet.shape == (3 * 24 + 4 * gap, 4 * 32 + 5 * gap, 3) and sheet.dtype == np.uint8
    # Columns are frames 0, 3, 6, 9; rows are frames / pose maps / hand renders.
    np.testing.assert_array_equal(sheet[gap:gap + 24, gap:gap + 32], frames[0])
    np.testing.assert_array_equal(sheet[2 * gap + 24:2 * gap + 48, 2 * gap + 32:2 * gap + 64],
                                  poses[3])
    np.testing.assert_array_equal(sheet[-gap - 24:-gap, -gap - 32:-gap], hands[9])
    # More columns than frames: one column per frame.
    assert contact_sheet(frames[:2], poses[:2], hands[:2]).shape[1] == 2 * 32 + 3 * gap
    captioned = contact_sheet(frames, poses, hands, num_columns=4, caption="HELLO WORLD",
                              frame_labels=[f"g{t}" for t in range(10)])
    assert captioned.shape[1] == sheet.shape[1] and captioned.shape[0] > sheet.shape[0]
    np.testing.assert_array_equal(captioned[:sheet.shape[0]], sheet)
    assert captioned[sheet.shape[0]:].any()  # the text is drawn

    assert side_by_side(frames, poses, hands).shape == (10, 24, 3 * 32 + 4 * gap, 3)
    save_gif(tmp_path / "clip.gif", frames, poses, hands, fps=25)
    with Image.open(tmp_path / "clip.gif") as gif:
        assert gif.n_frames == 10 and gif.size == (3 * 32 + 4 * gap, 24)
        assert gif.info["loop"] == 0 and gif.info["duration"] == 40
    save_png(tmp_path / "sheet.png", sheet)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "sheet.png")), sheet)

    with pytest.raises(InvalidInputError, match="same shape"):
        contact_sheet(frames, poses[:5], hands)
    with pytest.raises(InvalidInputError, match="fps"):
        save_gif(tmp_path / "bad.gif", frames, poses, hands, fps=0)
