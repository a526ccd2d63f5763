"""The two per-frame condition streams SignViP's video model is conditioned on.

- Pose maps (:func:`draw_pose_map`): the 133 COCO-WholeBody keypoints drawn as DWPose
  draws them, on black: the 18-keypoint OpenPose body (neck = the shoulders' midpoint)
  with one OpenPose colour per limb (limbs at 60 % brightness, joints at full), hand
  bones in an HSV rainbow (one hue per bone, so each finger has its own colours) with
  blue joint dots, and the 68 face landmarks as small white dots.  Feet are not drawn
  (DWPose leaves them out too).  Sizes scale with the image: DWPose's pixel sizes at
  512 px become fractions of ``min(H, W)``.
- Hand renders (:func:`render_hands`): only the two hand meshes, shaded by their
  camera-space normals, ``rgb = (n * 0.5 + 0.5) * 255`` in OpenGL camera axes (x right,
  y up, z toward the viewer), on black, as HaMeR-style normal renders.

Keypoints come from the SMPL-X joints through :func:`project_keypoints`.  Both streams
are (T, H, W, 3) uint8 and deterministic (byte-identical on repeated calls).
"""

from __future__ import annotations

import colorsys

import numpy as np
import torch
from PIL import Image, ImageDraw

from signgen.body import BodyModel
from signgen.body.keypoints import coco_wholebody_edges, to_coco_wholebody
from signgen.body.model import NUM_OUTPUT_JOINTS
from signgen.body.skeleton import hand_joints
from signgen.errors import InvalidInputError
from signgen.render.camera import PinholeCamera
from signgen.render.mesh_renderer import MeshRenderer

NUM_KEYPOINTS = 133
#: Values of the side image from :func:`render_hands_with_sides`.
HAND_SIDE_LEFT = 1
HAND_SIDE_RIGHT = 2

# OpenPose-18 body from COCO-WholeBody (as DWPose converts it); -1 is the neck.
_OPENPOSE_FROM_COCO = np.array([0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3])
# The 17 limbs DWPose draws (OpenPose's limbSeq without the two ear-shoulder limbs).
_OPENPOSE_LIMBS = np.array([
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
])
# OpenPose colours: limb i and keypoint i use colour i.
_OPENPOSE_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
# DWPose dims the limb layer to 60 % (integer truncation) before drawing the joints.
_LIMB_COLORS = tuple(tuple(c * 6 // 10 for c in rgb) for rgb in _OPENPOSE_COLORS)
_EDGES = coco_wholebody_edges()
_HAND_EDGES = np.array(_EDGES["left_hand"] + _EDGES["right_hand"])
# Bone k of each hand has hue k / 20, as in DWPose.
_HAND_EDGE_COLORS = tuple(
    tuple(round(255 * c) for c in colorsys.hsv_to_rgb(k / 20.0, 1.0, 1.0)) for k in range(20)
) * 2
_HAND_POINTS = np.arange(91, 133)
_HAND_DOT_COLOR = (0, 0, 255)
_FACE_POINTS = np.arange(23, 91)
_FACE_COLOR = (255, 255, 255)
_ELLIPSE_STEPS = 24  # polygon corners per limb ellipse


def _check_size(height, width) -> tuple[int, int]:
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(height), int(width)


def inside_frame(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """(...,2) pixel (column, row) points -> (...) bool, True inside a ``height`` x
    ``width`` frame (pixel centres at integers): the visibility rule of SynthSign's
    keypoints, which the pose evaluators are trained with. NaN points are outside."""
    keypoints = np.asarray(keypoints)
    with np.errstate(invalid="ignore"):
        return ((keypoints[..., 0] >= -0.5) & (keypoints[..., 0] < width - 0.5)
                & (keypoints[..., 1] >= -0.5) & (keypoints[..., 1] < height - 0.5))


def project_keypoints(joints, camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """Project SMPL-X output joints to COCO-WholeBody pixel keypoints.

    Args:
        joints: (T,144,3) SMPL-X output joints in metres (torch or numpy).
        camera: the camera the frames are rendered with.
    Returns:
        keypoints: (T,133,2) float32 pixel coordinates (column, row); (0, 0) is the
            centre of the top-left pixel.  Meaningless where not visible.
        visible: (T,133) bool, True where the point is in front of the camera and
            inside the image.
    """
    joints = joints.detach().cpu() if isinstance(joints, torch.Tensor) else np.asarray(joints)
    if joints.ndim != 3 or tuple(joints.shape[1:]) != (NUM_OUTPUT_JOINTS, 3):
        raise InvalidInputError(f"joints must have shape (T, {NUM_OUTPUT_JOINTS}, 3), "
                                f"got {tuple(joints.shape)}")
    points = to_coco_wholebody(torch.as_tensor(joints, dtype=torch.float64)).numpy()
    if not np.isfinite(points).all():
        raise InvalidInputError("joints contain NaN or infinite values")
    with np.errstate(divide="ignore", invalid="ignore"):  # points at depth 0
        uv, depth = camera.project(points)
    visible = (depth > 0) & inside_frame(uv, camera.height, camera.width)
    return np.where(np.isfinite(uv), uv, 0.0).astype(np.float32), visible


def _dot(draw: ImageDraw.ImageDraw, x: float, y: float, radius: float, color) -> None:
    if radius < 1.0:
        draw.point((x, y), fill=color)
    else:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color)


def _limb_polygons(points: np.ndarray, half_width: float) -> np.ndarray:
    """(T,L,2,2) limb end points -> (T,L,K,2) ellipse polygons (as DWPose's ellipses:
    the limb is the major axis, ``half_width`` the minor semi-axis)."""
    start, end = points[:, :, 0], points[:, :, 1]
    centre = 0.5 * (start + end)
    delta = end - start
    length = np.linalg.norm(delta, axis=-1, keepdims=True)
    # A zero-length limb has no direction; any axis gives the same small disc.
    axis = np.where(length > 0, delta / np.maximum(length, 1e-12), (1.0, 0.0))
    normal = np.stack([-axis[..., 1], axis[..., 0]], -1)
    angle = np.linspace(0.0, 2.0 * np.pi, _ELLIPSE_STEPS, endpoint=False)
    along = np.cos(angle)[:, None] * (0.5 * length[..., None, :]) * axis[..., None, :]
    across = np.sin(angle)[:, None] * half_width * normal[..., None, :]
    return centre[..., None, :] + along + across


def draw_pose_map(keypoints, visible, height: int, width: int) -> np.ndarray:
    """DWPose-style pose maps (see the module docstring).

    Args:
        keypoints: (T,133,2) pixel coordinates from :func:`project_keypoints`.
        visible: (T,133) bool; invisible points and every limb or bone touching one
            are not drawn.
        height, width: image size in pixels.
    Returns:
        (T,H,W,3) uint8, black background.
    """
    height, width = _check_size(height, width)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    visible = np.asarray(visible)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 2):
        raise InvalidInputError(f"keypoints must have shape (T, {NUM_KEYPOINTS}, 2), "
                                f"got {keypoints.shape}")
    if visible.shape != keypoints.shape[:2] or visible.dtype != bool:
        raise InvalidInputError(f"visible must be a bool array of shape "
                                f"{keypoints.shape[:2]}, got {visible.dtype} {visible.shape}")
    if not np.isfinite(keypoints[visible]).all():
        raise InvalidInputError("visible keypoints contain NaN or infinite values")
    # DWPose's sizes at 512 px: limbs 8 px wide, joints radius 4, hand bones 2 px,
    # hand joints radius 4, face dots radius 3.
    limb_width = max(1, round(min(height, width) / 64))
    joint_radius = limb_width / 2
    bone_width = max(1, round(limb_width / 4))
    face_radius = 3 * limb_width / 8

    neck = 0.5 * (keypoints[:, 5] + keypoints[:, 6])
    body = np.where(_OPENPOSE_FROM_COCO[None, :, None] < 0, neck[:, None],
                    keypoints[:, _OPENPOSE_FROM_COCO])
    body_visible = np.where(_OPENPOSE_FROM_COCO[None] < 0, (visible[:, 5] & visible[:, 6])[:, None],
                            visible[:, _OPENPOSE_FROM_COCO])
    limb_polygons = _limb_polygons(body[:, _OPENPOSE_LIMBS], joint_radius)
    limb_visible = body_visible[:, _OPENPOSE_LIMBS].all(-1)
    bone_visible = visible[:, _HAND_EDGES].all(-1)
    bones = keypoints[:, _HAND_EDGES].reshape(len(keypoints), -1, 4)

    frames = np.empty((len(keypoints), height, width, 3), np.uint8)
    for t in range(len(keypoints)):
        image = Image.new("RGB", (width, height))
        draw = ImageDraw.Draw(image)
        for limb in np.flatnonzero(limb_visible[t]):
            draw.polygon(limb_polygons[t, limb].ravel().tolist(), fill=_LIMB_COLORS[limb])
        for k in np.flatnonzero(body_visible[t]):
            _dot(draw, *body[t, k], joint_radius, _OPENPOSE_COLORS[k])
        for bone in np.flatnonzero(bone_visible[t]):
            draw.line(bones[t, bone].tolist(), fill=_HAND_EDGE_COLORS[bone], width=bone_width)
        for k in _HAND_POINTS[visible[t, _HAND_POINTS]]:
            _dot(draw, *keypoints[t, k], joint_radius, _HAND_DOT_COLOR)
        for k in _FACE_POINTS[visible[t, _FACE_POINTS]]:
            _dot(draw, *keypoints[t, k], face_radius, _FACE_COLOR)
        frames[t] = np.asarray(image)
    return frames


def _hand_geometry(body: BodyModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hand vertex ids (N,), re-indexed faces (F,3) and side labels (N,) uint32."""
    labels = body.vertex_joint_labels().numpy()
    left, right = hand_joints("left"), hand_joints("right")
    ids = np.flatnonzero(np.isin(labels, left + right))
    remap = np.full(body.num_vertices, -1, np.int64)
    remap[ids] = np.arange(len(ids))
    faces = remap[body.faces.numpy()]
    faces = faces[(faces >= 0).all(axis=1)]
    sides = np.where(np.isin(labels[ids], right), HAND_SIDE_RIGHT, HAND_SIDE_LEFT)
    return ids, faces, sides.astype(np.uint32)


def hand_mesh(body: BodyModel) -> tuple[np.ndarray, np.ndarray]:
    """The two hands as a sub-mesh of ``body``.

    A vertex belongs to a hand when its dominant skinning joint is a wrist or a finger
    joint: that takes the palm and fingers and leaves the sleeve, which follows the
    elbow and shoulder.
    Returns:
        vertex_ids: (N,) int64 sorted indices into the body's vertices.
        faces: (F,3) int64 triangles whose three corners are hand vertices, indexing
            ``vertex_ids``.
    """
    ids, faces, _ = _hand_geometry(body)
    return ids, faces


def render_hands_with_sides(vertices, body: BodyModel, camera: PinholeCamera,
                            renderer: MeshRenderer) -> tuple[np.ndarray, np.ndarray]:
    """Normal-shaded hand renders and which hand covers each pixel, from one render.

    Args:
        vertices: (T,V,3) posed body vertices in metres (torch or numpy).
        camera: the frames' camera; renderer: a MeshRenderer of the camera's size
            (only its size and clipping range matter).
    Returns:
        rgb: (T,H,W,3) uint8, ``round((n * 0.5 + 0.5) * 255)`` of the camera-space unit
            normal n in OpenGL axes (x right, y up, z toward the viewer: the usual
            normal-map colours, lilac-blue for surfaces facing the camera) where a hand
            is visible, 0 elsewhere.
        sides: (T,H,W) uint8, HAND_SIDE_LEFT / HAND_SIDE_RIGHT (the signer's left /
            right hand), 0 for background.
    """
    if not isinstance(renderer, MeshRenderer):
        raise InvalidInputError(f"renderer must be a MeshRenderer, got "
                                f"{type(renderer).__name__}")
    ids, faces, sides = _hand_geometry(body)
    out = renderer.render(body.vertex_array(vertices)[:, ids], faces, camera,
                          vertex_labels=sides)
    normals = out.normals * np.array([1.0, -1.0, -1.0], dtype=np.float32)  # OpenCV -> GL
    shaded = np.rint((normals * 0.5 + 0.5) * 255.0).astype(np.uint8)
    rgb = np.where(out.mask[..., None], shaded, np.uint8(0))
    return rgb, out.labels.astype(np.uint8)


def render_hands(vertices, body: BodyModel, camera: PinholeCamera,
                 renderer: MeshRenderer) -> np.ndarray:
    """(T,H,W,3) uint8 normal-shaded hand renders; see :func:`render_hands_with_sides`."""
    return render_hands_with_sides(vertices, body, camera, renderer)[0]
