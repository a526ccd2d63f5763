"""Import the output of 3-D estimators (SMPL-X whole-body estimators, HaMeR hands) as
signgen SMPL-X parameters and keypoints (issue #9, item 3(c)).

A third way to get conditions from real videos, beside fitting SMPL-X to ``.pose``
keypoints (``signgen.data.pose_import`` + ``signgen.body.fitting``): take the SMPL-X
parameters an estimator predicted per frame.  :func:`import_estimates` reads one clip's
files and returns (:class:`EstimatorClip`) its parameters in signgen's world, placed in
front of signgen's camera, plus the 2-D keypoints framed like SynthSign.

SMPL-X estimator file (one ``.npz`` per clip; SMPLer-X / OSX / Multi-HMR style)
-------------------------------------------------------------------------------
Per-frame arrays, T frames (the frames of the clip's video, in order), axis-angle in
radians, metres, OpenCV camera axes (x right, y down, z forward):

- ``root_pose`` (alias ``global_orient``) (T,3): pelvis orientation in the camera frame.
- ``body_pose`` (T,63): joints 1..21 in SMPL-X order; (T,21,3) is read too.
- ``lhand_pose`` (``left_hand_pose``), ``rhand_pose`` (``right_hand_pose``) (T,45) each:
  the 15 finger joints; (T,15,3) is read too.
- ``jaw_pose`` (T,3); ``leye_pose``, ``reye_pose`` (T,3): optional, zeros when absent.
- ``betas`` (``shape``) (T,B) or (B,), B <= the body model's: the clip gets their
  per-component median over the imported span (one signer, one shape).
- ``expression`` (``expr``) (T,E) or (E,), E <= the body model's: optional, zeros.
- ``cam_trans`` (``transl``) (T,3): SMPL-X's ``transl`` in camera coordinates (the model
  posed without translation, plus cam_trans, is the body in camera coordinates).
- ``focal`` (``focal_length``), ``princpt`` (``principal_point``) (2,) or (T,2): fx, fy
  and cx, cy in pixels of the source image.
- ``fps`` (): the frame rate of the clip's video.
- ``image_size`` (2,): (height, width) of the source image in pixels.
- ``flat_hand_mean`` () bool, required: True when the hand poses are absolute
  (Multi-HMR), False when they are offsets from the model's mean hand (SMPLer-X).

The SMPLer-X prefixes (``smplx_root_pose``, ``smplx_body_pose``, ``smplx_lhand_pose``,
``smplx_rhand_pose``, ``smplx_jaw_pose``, ``smplx_shape``, ``smplx_expr``) are read too.
Where these conventions come from (checked in the estimators' code):

- SMPLer-X (github.com/caizhongang/SMPLer-X, commit d3e3c10): ``main/inference.py`` saves
  per frame ``global_orient``, ``body_pose``, ``left_hand_pose``, ``right_hand_pose``,
  ``jaw_pose``, ``betas``, ``expression`` and ``transl`` = the network's ``cam_trans``,
  and a meta json with ``focal`` and ``princpt`` rescaled to the original image;
  ``main/SMPLer_X.py`` (``get_coord``) poses SMPL-X without translation, adds
  ``cam_trans`` to get camera coordinates and projects ``x / z * focal + princpt``.
  ``common/utils/human_models.py`` builds its layer with ``smplx.create(...,
  use_pca=False)`` and smplx's default ``flat_hand_mean=False``: its hand poses are
  offsets from the mean hand, so ``flat_hand_mean`` is False for SMPLer-X (OSX, whose code
  SMPLer-X grew from, was not checked).  Stack the per-frame files of one person into
  one file.
- Multi-HMR (github.com/naver/multi-hmr, ``blocks/smpl_layer.py``) builds its layer with
  ``flat_hand_mean=True``; with its default ``person_center=None`` its ``transl`` is
  SMPL-X's.
- The pixel convention of ``princpt`` (whether (0, 0) is the centre or the corner of the
  top-left pixel) is not stated by the estimators; signgen takes pixel centres at
  integers, so at worst the keypoints are half a source pixel off, as in
  ``pose_import``.

HaMeR file (one ``.npz`` per clip, optional)
--------------------------------------------
Per-detection arrays, N detections (N may be 0), at most one per frame and hand:

- ``frame_index`` (N,) int: the detection's frame, 0 <= index < T (the SMPL-X file's).
- ``is_right`` (N,) 0/1: 1 for the signer's right hand.
- ``hand_pose`` (N,15,3,3) rotation matrices, or (N,45) / (N,15,3) axis-angle: MANO's
  finger rotations as HaMeR predicted them.
- ``global_orient`` (N,1,3,3) or (N,3,3), or (N,3) / (N,1,3): MANO's hand orientation
  in the camera frame, as predicted.
- ``betas`` (N,10): optional, not used (MANO's shape space is not SMPL-X's).
- ``keypoints_2d`` (N,21,2) source pixels (or (N,21,3) with a score): optional, only
  compared with the imported hand (:attr:`EstimatorClip.hamer_offset_px`).

HaMeR predicts every hand as a right hand (github.com/geopavlakos/hamer, commit
3a01849): ``hamer/datasets/vitdet_dataset.py`` flips the crop of a box whose
``right == 0``, and ``demo.py`` mirrors such a prediction back by negating the vertices'
x and the camera's x offset.  The mirror of MANO parameters is the one
``hamer/datasets/utils.py`` (``fliplr_params``) applies when it flips an image: negate
the y and z axis-angle components of ``global_orient`` and ``hand_pose``, (x, y, z) ->
(x, -y, -z), joint by joint; :func:`mirror_axis_angle` does exactly this to a left
hand's parameters, turning them into the left-hand parameters of the unflipped image
(the mirror signgen's skeleton uses between its left and right hands as well).
HaMeR's MANO layer (``hamer/models/mano_wrapper.py``, a ``smplx.MANOLayer``) feeds the
rotation matrices straight to linear blend skinning, adding no mean hand: its hand poses
are absolute, like signgen's (``flat_hand_mean=True``).  MANO's 15 finger joints come in
SMPL-X's hand order (index, middle, pinky, ring, thumb; 3 joints each: what
``mano_to_openpose`` in ``mano_wrapper.py`` implies), and HaMeR's 21 keypoints come out
in OpenPose order (wrist, then thumb, index, middle, ring, pinky, base to tip), which is
COCO-WholeBody's hand order.

The hand's global orientation becomes the SMPL-X wrist rotation relative to the
estimator's forearm: ``R_wrist = G_elbow^T R_hand``, with ``G_elbow`` the elbow's global
rotation in the camera frame from the estimator's body pose.  This takes MANO's rest
hand to lie in SMPL-X's rest frame (SMPL-X's hands are MANO's; the common MANO-to-SMPL-X
conversions, e.g. github.com/VincentHu19/Mano2Smpl-X, assume the same) and HaMeR's camera
axes to be the body estimator's (the same image): not checked against the licensed MANO
files.  When both files exist, the fingers and wrists of the frames and hands HaMeR
detected come from HaMeR (more accurate on hands), everything else from the body
estimator; frames where HaMeR has no hand keep the estimator's hand and wrist.

Import (:func:`import_estimates`)
---------------------------------
1. Read and check both files (one-line :class:`~signgen.errors.InvalidInputError` for a
   missing key, a wrong shape, NaN / inf, frame counts that disagree;
   :class:`~signgen.errors.DataError` from ``read_npz`` for a missing, corrupt or pickled
   file: object arrays are never unpickled).
2. Hands to absolute poses (+ the model's mean hand where ``flat_hand_mean`` is False),
   HaMeR merged in, everything in the (T,165) ``poses`` layout (global orient 3, body 63,
   jaw 3, eyes 6, left hand 45, right hand 45; ``SMPLXParams.FULL_POSE_ORDER``).
3. The span [start_s, end_s) (``pose_import.frame_span``), resampled to ``fps`` by the
   nearest frame in time (``pose_import.nearest_frames``, the frames preprocessing takes
   from the video).  Parameters are not interpolated.
4. SMPL-X posed in the estimator's camera, its COCO-WholeBody-133 joints
   (``signgen.body.keypoints``) projected with the file's focal, princpt and
   image_size: :attr:`EstimatorClip.source_keypoints`; framed into the camera's frame
   like SynthSign (``pose_import.keypoints_to_imported_pose``): :attr:`EstimatorClip.pose`.
5. No optimisation: the body keeps the estimated pose and is only placed before
   signgen's camera, rotated as the estimator's camera saw it, shifted per frame by the
   translation (closed-form linear least squares) that best puts its projected
   keypoints on the framed ones.  The framing is a 2-D similarity, which a rigid 3-D
   shift reproduces up to perspective: :attr:`EstimatorClip.placement_error` says by how
   much (a fraction of a pixel for an upper-body view).  Why no fit (``BodyFitter``
   initialised from the estimate): the keypoints are the estimate's own joints, so a fit
   could only pull the pose towards its priors (pose, joint limits, an upright root)
   and refit the shape, at seconds per clip, and HaMeR's hands would not stay HaMeR's.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from signgen.body.joint_model import axis_angle_to_matrix, matrix_to_axis_angle
from signgen.body.keypoints import to_coco_wholebody
from signgen.body.model import BodyModel, SMPLXParams
from signgen.body.skeleton import JOINT_INDEX, NUM_HAND_JOINTS, NUM_JOINTS, PARENTS
from signgen.data.pose_import import (
    DEFAULT_SHOULDER_CENTRE,
    DEFAULT_SHOULDER_WIDTH,
    ImportedPose,
    frame_span,
    keypoints_to_imported_pose,
    nearest_frames,
)
from signgen.data.synthsign.dataset import read_npz
from signgen.errors import DataError, InvalidInputError
from signgen.render.camera import PinholeCamera

#: Bump when the import changes what it produces (preprocessing's plan hash holds it).
ESTIMATOR_IMPORT_VERSION = 1

#: Accepted names of each SMPL-X estimator key, the canonical name first.
SMPLX_KEYS: dict[str, tuple[str, ...]] = {
    "root_pose": ("root_pose", "global_orient", "smplx_root_pose"),
    "body_pose": ("body_pose", "smplx_body_pose"),
    "lhand_pose": ("lhand_pose", "left_hand_pose", "smplx_lhand_pose"),
    "rhand_pose": ("rhand_pose", "right_hand_pose", "smplx_rhand_pose"),
    "jaw_pose": ("jaw_pose", "smplx_jaw_pose"),
    "leye_pose": ("leye_pose",),
    "reye_pose": ("reye_pose",),
    "betas": ("betas", "shape", "smplx_shape"),
    "expression": ("expression", "expr", "smplx_expr"),
    "cam_trans": ("cam_trans", "transl"),
    "focal": ("focal", "focal_length"),
    "princpt": ("princpt", "principal_point"),
    "fps": ("fps",),
    "image_size": ("image_size",),
    "flat_hand_mean": ("flat_hand_mean",),
}
_OPTIONAL = ("leye_pose", "reye_pose", "expression")
# Axis-angle widths of the pose keys, in the order of the (T,165) ``poses`` vector.
_POSE_WIDTHS = {"root_pose": 3, "body_pose": 63, "jaw_pose": 3, "leye_pose": 3,
                "reye_pose": 3, "lhand_pose": 45, "rhand_pose": 45}
_SIDE_START = {"left": 3 * JOINT_INDEX["left_index1"], "right": 3 * JOINT_INDEX["right_index1"]}
_HAND_WIDTH = 3 * NUM_HAND_JOINTS
_ROTATION_TOLERANCE = 1e-3  # |R R^T - I| and |det R - 1| of a rotation matrix read


@dataclass(frozen=True)
class SMPLXEstimates:
    """One clip's SMPL-X estimator output, checked (float64; see the module docstring).

    poses: (T,165) axis-angle in the ``poses`` layout, global orientation in the
    estimator's camera frame, hands as in the file (see ``flat_hand_mean``);
    betas (T,B); expression (T,E); cam_trans (T,3) metres; focal, princpt (T,2)
    pixels; fps; image_size (height, width); flat_hand_mean: hands absolute (True) or
    relative to the model's mean hand (False).
    """

    poses: np.ndarray
    betas: np.ndarray
    expression: np.ndarray
    cam_trans: np.ndarray
    focal: np.ndarray
    princpt: np.ndarray
    fps: float
    image_size: tuple[int, int]
    flat_hand_mean: bool

    @property
    def num_frames(self) -> int:
        return len(self.poses)


@dataclass(frozen=True)
class HamerHands:
    """One clip's HaMeR detections, already in SMPL-X's convention for their side.

    frame_index (N,) int64; is_right (N,) bool; hand_pose (N,45) axis-angle, absolute
    (flat hand = 0); global_orient (N,3) axis-angle of the hand in the camera frame;
    keypoints_2d (N,21,2) source pixels or None.  Left hands are mirrored already.
    """

    frame_index: np.ndarray
    is_right: np.ndarray
    hand_pose: np.ndarray
    global_orient: np.ndarray
    keypoints_2d: np.ndarray | None = None


@dataclass(frozen=True)
class EstimatorClip:
    """One imported clip (see :func:`import_estimates`).

    pose: the framed keypoints, as ``pose_import`` gives them (keypoints (T,133,2) px in
        the camera's frame, visible, transform, fps, source_fps / source_frames /
        source_span of the estimator file).
    params: SMPLXParams of the T frames in signgen's world (+Y up, facing +Z), placed
        before the camera; betas the same in every row; expression as estimated.
    source_keypoints: (T,133,2) float32 projected keypoints in source-image pixels;
        source_visible (T,133): in front of the camera and inside the image.
    placement_error: (T,) float32 mean pixel distance between the placed body's
        projected keypoints and ``pose.keypoints`` over the visible ones (NaN where
        none is visible).
    hamer_frames: how many of the T frames took at least one hand from HaMeR.
    hamer_offset_px: median distance (source pixels) between HaMeR's 2-D hand keypoints
        and the imported hand's projected ones, over the detections in the T frames;
        None without HaMeR keypoints.
    """

    pose: ImportedPose
    params: SMPLXParams
    source_keypoints: np.ndarray
    source_visible: np.ndarray
    placement_error: np.ndarray
    hamer_frames: int = 0
    hamer_offset_px: float | None = None

    @property
    def num_frames(self) -> int:
        return self.pose.num_frames


# -- rotations ---------------------------------------------------------------------------
def mirror_axis_angle(axis_angle) -> np.ndarray:
    """(...,3k) or (...,3) axis-angle -> its mirror image in the x = 0 plane, joint by
    joint: (x, y, z) -> (x, -y, -z) (HaMeR's ``fliplr_params``; signgen's left <-> right
    joints).  An involution."""
    out = np.array(axis_angle, dtype=np.float64, copy=True)
    if out.ndim == 0 or out.shape[-1] % 3:
        raise InvalidInputError(f"axis-angle must have shape (..., 3k), got {out.shape}")
    flat = out.reshape(*out.shape[:-1], out.shape[-1] // 3, 3)
    flat[..., 1:] *= -1
    return flat.reshape(out.shape)


def _to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    return axis_angle_to_matrix(torch.as_tensor(axis_angle, dtype=torch.float64)).numpy()


def _to_axis_angle(matrix: np.ndarray) -> np.ndarray:
    return matrix_to_axis_angle(torch.as_tensor(matrix, dtype=torch.float64)).numpy()


def _global_rotation(local: np.ndarray, joint: int) -> np.ndarray:
    """(N,3,3) global rotation of ``joint`` from (N,55,3,3) local rotations."""
    chain = []
    while joint != -1:
        chain.append(joint)
        joint = PARENTS[joint]
    out = local[:, chain[-1]]
    for j in reversed(chain[:-1]):
        out = out @ local[:, j]
    return out


# -- reading -----------------------------------------------------------------------------
def _take(arrays: dict, name: str, key: str, required: bool = True):
    """The array stored under ``key`` or one of its aliases (None if optional and absent);
    InvalidInputError if missing, given twice, or not numeric."""
    present = [k for k in SMPLX_KEYS.get(key, (key,)) if k in arrays]
    if len(present) > 1:
        raise InvalidInputError(f"{name}: holds both {present[0]!r} and {present[1]!r} (the "
                                f"same quantity); keep one")
    if not present:
        if not required:
            return None
        aliases = SMPLX_KEYS.get(key, (key,))
        also = f" (or {', '.join(repr(a) for a in aliases[1:])})" if len(aliases) > 1 else ""
        raise InvalidInputError(f"{name}: no array {key!r}{also}; it has {sorted(arrays)}")
    value = arrays[present[0]]
    if value.dtype.kind not in "biuf":
        raise InvalidInputError(f"{name}: {present[0]!r} must be numeric, got dtype "
                                f"{value.dtype}")
    value = value.astype(np.float64)
    if not np.isfinite(value).all():
        where = np.argwhere(~np.isfinite(value))[0].tolist()
        raise InvalidInputError(f"{name}: {present[0]!r} has NaN or infinite values (first "
                                f"at index {where})")
    return value


def _per_frame(value: np.ndarray, width: int, name: str, key: str) -> np.ndarray:
    """(T,width) or (T,width/3,3) -> (T,width) float64; InvalidInputError otherwise."""
    if value.ndim >= 2 and len(value) and math.prod(value.shape[1:]) == width and (
            value.ndim == 2 or value.shape[-1] == 3):
        return value.reshape(len(value), width)
    forms = f"(T, {width})" + (f" or (T, {width // 3}, 3)" if width > 3 else "")
    raise InvalidInputError(f"{name}: {key!r} must have shape {forms} with T >= 1, got "
                            f"{value.shape}")


def read_smplx_estimates(path: str | os.PathLike) -> SMPLXEstimates:
    """Read and check one SMPL-X estimator file (module docstring); no pickles.
    InvalidInputError / DataError (naming the file) for anything malformed."""
    name = str(path)
    with read_npz(Path(path)) as arrays:
        values = {key: _take(arrays, name, key, key not in _OPTIONAL) for key in SMPLX_KEYS}
    frames = {}
    poses = []
    for key, width in _POSE_WIDTHS.items():
        if values[key] is None:  # optional eyes: zeros, frame count from root_pose
            poses.append(np.zeros((len(values["root_pose"]), width)))
            continue
        poses.append(_per_frame(values[key], width, name, key))
        frames[key] = len(poses[-1])
    cam_trans = _per_frame(values["cam_trans"], 3, name, "cam_trans")
    frames["cam_trans"] = len(cam_trans)
    out = {}
    for key in ("betas", "expression", "focal", "princpt"):
        value = values[key]
        if value is None:  # expression: zeros
            out[key] = np.zeros((1, 0))
            continue
        if value.ndim not in (1, 2) or value.size == 0:
            raise InvalidInputError(f"{name}: {key!r} must have shape (T, K) or (K,), got "
                                    f"{value.shape}")
        if key in ("focal", "princpt") and value.shape[-1] != 2:
            raise InvalidInputError(f"{name}: {key!r} must have shape (2,) or (T, 2), got "
                                    f"{value.shape}")
        out[key] = value if value.ndim == 2 else value[None]
        if value.ndim == 2:
            frames[key] = len(value)
    if len(set(frames.values())) > 1:
        counts = ", ".join(f"{k} {n}" for k, n in frames.items())
        raise InvalidInputError(f"{name}: the per-frame arrays disagree on the number of "
                                f"frames ({counts})")
    t = frames["root_pose"]
    if (out["focal"] <= 0).any():
        raise InvalidInputError(f"{name}: 'focal' must be > 0")
    fps = values["fps"]
    if fps.shape != () or not fps > 0:
        raise InvalidInputError(f"{name}: 'fps' must be one positive number, got "
                                f"{fps.tolist()!r}")
    size = values["image_size"]
    if size.shape != (2,) or (size <= 0).any() or (size != np.round(size)).any():
        raise InvalidInputError(f"{name}: 'image_size' must be (height, width) positive "
                                f"integers, got {size.tolist()!r}")
    flat = values["flat_hand_mean"]
    if flat.shape != () or flat not in (0, 1):
        raise InvalidInputError(f"{name}: 'flat_hand_mean' must be one boolean, got "
                                f"{flat.tolist()!r}")
    return SMPLXEstimates(
        poses=np.concatenate(poses, axis=1),
        betas=np.broadcast_to(out["betas"], (t, out["betas"].shape[1])).copy(),
        expression=np.broadcast_to(out["expression"], (t, out["expression"].shape[1])).copy(),
        cam_trans=cam_trans,
        focal=np.broadcast_to(out["focal"], (t, 2)).copy(),
        princpt=np.broadcast_to(out["princpt"], (t, 2)).copy(),
        fps=float(fps), image_size=(int(size[0]), int(size[1])), flat_hand_mean=bool(flat))


def _rotations(value: np.ndarray, joints: int, name: str, key: str) -> np.ndarray:
    """(N,joints,3,3) / (N,joints*3) / (N,joints,3) (and (N,3,3) for one joint) ->
    (N,joints*3) axis-angle; InvalidInputError for another shape or non-rotations."""
    n = len(value)
    if value.ndim == 4 and value.shape[1:] == (joints, 3, 3) or (
            joints == 1 and value.shape[1:] == (3, 3)):
        matrices = value.reshape(n, joints, 3, 3)
        eye = np.eye(3)
        if n and (np.abs(matrices @ np.swapaxes(matrices, -1, -2) - eye).max()
                  > _ROTATION_TOLERANCE
                  or np.abs(np.linalg.det(matrices) - 1).max() > _ROTATION_TOLERANCE):
            raise InvalidInputError(f"{name}: {key!r} holds matrices that are not rotations")
        return _to_axis_angle(matrices).reshape(n, 3 * joints)
    if value.ndim >= 2 and math.prod(value.shape[1:]) == 3 * joints and (
            value.ndim == 2 or value.shape[-1] == 3):
        return value.reshape(n, 3 * joints)
    raise InvalidInputError(f"{name}: {key!r} must have shape (N, {joints}, 3, 3) rotation "
                            f"matrices or (N, {3 * joints}) axis-angle, got {value.shape}")


def read_hamer_hands(path: str | os.PathLike, num_frames: int) -> HamerHands:
    """Read and check one HaMeR file (module docstring) of a clip of ``num_frames``
    frames; left hands are mirrored into SMPL-X's left-hand convention.  No pickles.
    InvalidInputError / DataError (naming the file) for anything malformed."""
    name = str(path)
    with read_npz(Path(path)) as arrays:
        frame_index = _take(arrays, name, "frame_index")
        is_right = _take(arrays, name, "is_right")
        hand_pose = _take(arrays, name, "hand_pose")
        orient = _take(arrays, name, "global_orient")
        betas = _take(arrays, name, "betas", required=False)
        keypoints = _take(arrays, name, "keypoints_2d", required=False)
    if frame_index.ndim != 1:
        raise InvalidInputError(f"{name}: 'frame_index' must have shape (N,), got "
                                f"{frame_index.shape}")
    n = len(frame_index)
    for key, value in (("is_right", is_right), ("hand_pose", hand_pose),
                       ("global_orient", orient), ("betas", betas),
                       ("keypoints_2d", keypoints)):
        if value is not None and (value.ndim == 0 or len(value) != n):
            raise InvalidInputError(f"{name}: {key!r} has {len(value) if value.ndim else 0} "
                                    f"detections, 'frame_index' {n}")
    if is_right.shape != (n,) or not np.isin(is_right, (0, 1)).all():
        raise InvalidInputError(f"{name}: 'is_right' must be (N,) zeros and ones")
    if (frame_index != np.round(frame_index)).any() or (frame_index < 0).any() or (
            frame_index >= num_frames).any():
        raise InvalidInputError(f"{name}: 'frame_index' must be frame numbers in [0, "
                                f"{num_frames}) (the SMPL-X file's frames), got "
                                f"{frame_index.min():g}..{frame_index.max():g}")
    pairs = frame_index.astype(np.int64) * 2 + is_right.astype(np.int64)
    unique, counts = np.unique(pairs, return_counts=True)
    if (counts > 1).any():
        twice = unique[counts > 1][0]
        raise InvalidInputError(f"{name}: frame {twice // 2} has {counts[counts > 1][0]} "
                                f"{'right' if twice % 2 else 'left'} hands; keep one "
                                f"detection per frame and hand (the signer's)")
    if keypoints is not None and (keypoints.ndim != 3 or keypoints.shape[1:2] != (21,)
                                  or keypoints.shape[2] not in (2, 3)):
        raise InvalidInputError(f"{name}: 'keypoints_2d' must have shape (N, 21, 2), got "
                                f"{keypoints.shape}")
    if betas is not None and betas.ndim != 2:
        raise InvalidInputError(f"{name}: 'betas' must have shape (N, 10), got {betas.shape}")
    hand_pose = _rotations(hand_pose, NUM_HAND_JOINTS, name, "hand_pose")
    orient = _rotations(orient, 1, name, "global_orient")
    left = is_right == 0
    hand_pose[left] = mirror_axis_angle(hand_pose[left])
    orient[left] = mirror_axis_angle(orient[left])
    return HamerHands(frame_index=frame_index.astype(np.int64), is_right=is_right == 1,
                      hand_pose=hand_pose, global_orient=orient,
                      keypoints_2d=None if keypoints is None else keypoints[..., :2])


# -- converting --------------------------------------------------------------------------
def hand_mean(body: BodyModel) -> np.ndarray:
    """(2,45) the body model file's mean hand poses (left, right): what an estimator whose
    SMPL-X layer has ``flat_hand_mean=False`` adds to its hand poses.  BodyModel itself
    uses flat hands, so it keeps no copy; the file is read again (a ``.pkl`` model is
    unpickled, as smplx does when loading it: model files are trusted input)."""
    path = body.model_path
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                left, right = data["hands_meanl"], data["hands_meanr"]
        else:
            with open(path, "rb") as f:
                data = pickle.load(f, encoding="latin1")
            left, right = data["hands_meanl"], data["hands_meanr"]
    except (OSError, KeyError, ValueError, EOFError, ImportError, AttributeError,
            pickle.UnpicklingError) as error:
        raise DataError(f"cannot read the mean hand poses (hands_meanl / hands_meanr) of "
                        f"{path}: {type(error).__name__}: {error}") from None
    return np.stack([np.asarray(left, np.float64).reshape(-1),
                     np.asarray(right, np.float64).reshape(-1)])


def absolute_poses(estimates: SMPLXEstimates, hands: HamerHands | None = None,
                   mean: np.ndarray | None = None) -> np.ndarray:
    """(T,165) poses in the estimator's camera frame with absolute hands (``mean`` (2,45)
    added when the file's are relative to it) and HaMeR's fingers and wrists where it
    detected a hand (module docstring)."""
    poses = estimates.poses.copy()
    if not estimates.flat_hand_mean:
        if mean is None:
            raise InvalidInputError("hand poses relative to the mean hand need the model's "
                                    "mean (hand_mean(body))")
        for s, side in enumerate(("left", "right")):
            poses[:, _SIDE_START[side]:_SIDE_START[side] + _HAND_WIDTH] += mean[s]
    if hands is None or not len(hands.frame_index):
        return poses
    local = _to_matrix(poses.reshape(-1, NUM_JOINTS, 3))
    for side in ("left", "right"):
        pick = hands.is_right == (side == "right")
        frames = hands.frame_index[pick]
        wrist = JOINT_INDEX[f"{side}_wrist"]
        forearm = _global_rotation(local[frames], PARENTS[wrist])
        hand = _to_matrix(hands.global_orient[pick])
        poses[frames, 3 * wrist:3 * wrist + 3] = _to_axis_angle(
            np.swapaxes(forearm, -1, -2) @ hand)
        poses[frames, _SIDE_START[side]:_SIDE_START[side] + _HAND_WIDTH] = hands.hand_pose[pick]
    return poses


def _fit_width(value: np.ndarray, width: int, name: str, key: str) -> np.ndarray:
    """Pad (T,K) with zero columns to (T,width); InvalidInputError if K > width."""
    if value.shape[1] > width:
        raise InvalidInputError(f"{name}: {value.shape[1]} {key} components, the body model "
                                f"takes {width}")
    return np.pad(value, ((0, 0), (0, width - value.shape[1])))


def _project(points: np.ndarray, focal, princpt) -> np.ndarray:
    """(T,K,3) camera coordinates -> (T,K,2) pixels; intrinsics (T,2) or (2,)."""
    focal, princpt = np.asarray(focal), np.asarray(princpt)
    if focal.ndim == 2:
        focal, princpt = focal[:, None], princpt[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # points at depth 0
        return points[..., :2] / points[..., 2:3] * focal + princpt


def _placement(points: np.ndarray, target: np.ndarray, visible: np.ndarray,
               camera: PinholeCamera) -> np.ndarray:
    """(T,3) shifts d, in the camera's coordinates, such that ``points + d`` (T,K,3)
    projects through the camera's intrinsics closest to ``target`` (T,K,2) at the
    visible points: linear least squares on ``f (x + d_x) = (u - c) (z + d_z)`` (the
    projection times depth), per frame; frames with under 2 visible points get the
    median shift."""
    f = np.array([camera.fx, camera.fy])
    c = np.array([camera.cx, camera.cy])
    offset = target - c  # (T,K,2)
    rows = np.zeros((*offset.shape, 3))  # (T,K,2,3): one row per coordinate
    rows[..., 0, 0], rows[..., 1, 1] = f[0], f[1]
    rows[..., 2] = -offset
    rhs = offset * points[..., 2:3] - f * points[..., :2]  # (T,K,2)
    weight = visible[..., None, None].astype(np.float64)
    normal = np.einsum("tkai,tkaj->tij", rows * weight, rows)
    right = np.einsum("tkai,tka->ti", rows * weight, rhs)
    good = visible.sum(1) >= 2
    shift = np.zeros((len(points), 3))
    shift[good] = np.linalg.solve(normal[good], right[good][..., None])[..., 0]
    shift[~good] = np.median(shift[good], axis=0)
    return shift


def import_estimates(smplx_path: str | os.PathLike, body: BodyModel, camera: PinholeCamera,
                     hamer_path: str | os.PathLike | None = None, fps: float | None = None,
                     start_s: float = 0.0, end_s: float | None = None,
                     shoulder_width: float = DEFAULT_SHOULDER_WIDTH,
                     shoulder_centre: tuple[float, float] = DEFAULT_SHOULDER_CENTRE
                     ) -> EstimatorClip:
    """Import one clip's estimator files (see the module docstring).

    Args:
        smplx_path: the SMPL-X estimator ``.npz``; hamer_path: the clip's HaMeR ``.npz``
            (None: hands from the SMPL-X estimator alone).
        body: the BodyModel the parameters are for (its mean hand, betas and expression
            widths).
        camera: signgen's camera: the output frame is (camera.height, camera.width) and
            the body is placed before it (``signing_camera`` in preprocessing).
        fps: output frame rate (None keeps the file's); start_s, end_s: the span
            [start_s, end_s) seconds of the file to import.
        shoulder_width, shoulder_centre: framing, as ``pose_import.import_pose``.
    Raises InvalidInputError / DataError (naming the file) for malformed files, an empty
    span or no frame showing both shoulders.
    """
    name = str(smplx_path)
    estimates = read_smplx_estimates(smplx_path)
    hands = None if hamer_path is None else read_hamer_hands(hamer_path,
                                                             estimates.num_frames)
    mean = None if estimates.flat_hand_mean else hand_mean(body)
    poses = absolute_poses(estimates, hands, mean)
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps)
                                and fps > 0):
        raise InvalidInputError(f"fps must be a positive number or None, got {fps!r}")
    out_fps = estimates.fps if fps is None else float(fps)
    try:
        span = frame_span(estimates.num_frames, estimates.fps, start_s, end_s)
    except InvalidInputError as error:
        raise InvalidInputError(f"{name}: {error}") from None
    index = span[0] + nearest_frames(span[1] - span[0], estimates.fps, out_fps)
    betas = _fit_width(np.median(estimates.betas[slice(*span)], axis=0, keepdims=True),
                       body.num_betas, name, "betas")[0]
    expression = _fit_width(estimates.expression[index], body.num_expression, name,
                            "expression")
    poses, cam_trans = poses[index], estimates.cam_trans[index]

    # 4. Posed in the estimator's camera and projected with its intrinsics.
    in_camera = SMPLXParams.from_full_pose(torch.as_tensor(poses), torch.as_tensor(betas),
                                           torch.as_tensor(expression, dtype=torch.float32),
                                           torch.as_tensor(cam_trans, dtype=torch.float32))
    with torch.no_grad():
        joints = body(in_camera).joints.double()
    points = to_coco_wholebody(joints).numpy()  # (T,133,3) camera coordinates
    uv = _project(points, estimates.focal[index], estimates.princpt[index])
    height, width = estimates.image_size
    visible = ((points[..., 2] > 0) & np.isfinite(uv).all(-1) & (uv[..., 0] >= -0.5)
               & (uv[..., 0] < width - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] < height - 0.5))
    uv = np.where(visible[..., None], uv, 0.0)
    framed = keypoints_to_imported_pose(uv, visible.astype(np.float64), out_fps,
                                        size=(camera.height, camera.width),
                                        threshold=0.5, shoulder_width=shoulder_width,
                                        shoulder_centre=shoulder_centre, name=name)
    framed = dataclasses.replace(framed, source_fps=estimates.fps,
                                 source_frames=estimates.num_frames, source_span=span)

    # 5. Placed before signgen's camera: X_camera = X_estimator + d, world = R^T (X - t).
    shift = _placement(points, framed.keypoints.astype(np.float64), framed.visible, camera)
    placed = _project(points + shift[:, None], (camera.fx, camera.fy), (camera.cx, camera.cy))
    distance = np.linalg.norm(placed - framed.keypoints, axis=-1)
    count = framed.visible.sum(1)
    with np.errstate(invalid="ignore"):
        error = np.where(count > 0, (distance * framed.visible).sum(1) / count, np.nan)
    rotation, translation = np.asarray(camera.rotation), np.asarray(camera.translation)
    pelvis = joints[:, 0].numpy()  # = rest pelvis J0 + cam_trans, whatever the pose
    rest_pelvis = pelvis - cam_trans
    world = poses.copy()
    world[:, :3] = _to_axis_angle(rotation.T @ _to_matrix(poses[:, :3]))
    transl = (pelvis + shift - translation) @ rotation - rest_pelvis  # R^T (.) per row
    params = SMPLXParams.from_full_pose(torch.as_tensor(world), torch.as_tensor(betas),
                                        torch.as_tensor(expression, dtype=torch.float32),
                                        torch.as_tensor(transl, dtype=torch.float32))

    hamer_frames, offset = 0, None
    if hands is not None and len(hands.frame_index):
        detected = np.zeros((estimates.num_frames, 2), bool)
        detected[hands.frame_index, hands.is_right.astype(np.int64)] = True
        hamer_frames = int(detected[index].any(1).sum())
        if hands.keypoints_2d is not None:
            at = np.full((estimates.num_frames, 2), -1)
            at[hands.frame_index, hands.is_right.astype(np.int64)] = np.arange(
                len(hands.frame_index))
            rows, sides = np.nonzero(at[index] >= 0)
            if len(rows):
                points21 = 91 + 21 * sides[:, None] + np.arange(21)  # COCO hand slots
                own = uv[rows[:, None], points21]  # (M,21,2)
                seen = visible[rows[:, None], points21]
                theirs = hands.keypoints_2d[at[index][rows, sides]]
                gap = np.linalg.norm(own - theirs, axis=-1)[seen]
                offset = float(np.median(gap)) if len(gap) else None
    return EstimatorClip(pose=framed, params=params,
                         source_keypoints=uv.astype(np.float32), source_visible=visible,
                         placement_error=error.astype(np.float32),
                         hamer_frames=hamer_frames, hamer_offset_px=offset)
