"""Keypoint layouts derived from the 144 SMPL-X output joints.

- COCO-WholeBody-133 (what DWPose / RTMW emit; signgen's pose maps use it):
  17 body, 6 feet, 68 face (ibug order: 17 contour, then 51), 21 left hand,
  21 right hand.
- MediaPipe Holistic (the sign-language-processing ``.pose`` layout): 33 pose
  landmarks and 21 landmarks per hand.

"left"/"right" always mean the signer's own left/right, as in all three conventions.
Every table is a tuple of SMPL-X output-joint names, resolved to indices once.
"""

from __future__ import annotations

import torch

from signgen.body.model import OUTPUT_JOINT_NAMES
from signgen.errors import InvalidInputError

_COCO_BODY = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
_COCO_FEET = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
              "right_small_toe", "right_heel")
# smplx lists the 17 contour points after the 51 inner landmarks; ibug-68 puts them first.
_FACE_68 = OUTPUT_JOINT_NAMES[127:144] + OUTPUT_JOINT_NAMES[76:127]


def _hand21(side: str) -> tuple[str, ...]:
    """Wrist, then each finger base-to-tip (thumb, index, middle, ring, pinky)."""
    names = [f"{side}_wrist"]
    for finger in ("thumb", "index", "middle", "ring", "pinky"):
        names += [f"{side}_{finger}{k}" for k in (1, 2, 3)] + [f"{side}_{finger}"]
    return tuple(names)


COCO_WHOLEBODY_NAMES: tuple[str, ...] = (
    _COCO_BODY + _COCO_FEET + _FACE_68 + _hand21("left") + _hand21("right"))

MEDIAPIPE_POSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye4", "left_eye", "left_eye1", "right_eye4", "right_eye", "right_eye1",
    "left_ear", "right_ear", "left_mouth_1", "right_mouth_1", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky1", "right_pinky1", "left_index1", "right_index1", "left_thumb2",
    "right_thumb2", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_heel", "right_heel", "left_big_toe", "right_big_toe",
)
MEDIAPIPE_LEFT_HAND_NAMES = _hand21("left")
MEDIAPIPE_RIGHT_HAND_NAMES = _hand21("right")


def _indices(names: tuple[str, ...]) -> torch.Tensor:
    lookup = {name: i for i, name in enumerate(OUTPUT_JOINT_NAMES)}
    return torch.tensor([lookup[n] for n in names], dtype=torch.long)


COCO_WHOLEBODY_FROM_SMPLX = _indices(COCO_WHOLEBODY_NAMES)
MEDIAPIPE_POSE_FROM_SMPLX = _indices(MEDIAPIPE_POSE_NAMES)
MEDIAPIPE_LEFT_HAND_FROM_SMPLX = _indices(MEDIAPIPE_LEFT_HAND_NAMES)
MEDIAPIPE_RIGHT_HAND_FROM_SMPLX = _indices(MEDIAPIPE_RIGHT_HAND_NAMES)
assert len(COCO_WHOLEBODY_FROM_SMPLX) == 133 and len(MEDIAPIPE_POSE_FROM_SMPLX) == 33


def _check_joints(joints: torch.Tensor) -> None:
    if joints.ndim < 2 or joints.shape[-2:] != (len(OUTPUT_JOINT_NAMES), 3):
        raise InvalidInputError(f"expected SMPL-X output joints of shape (..., "
                                f"{len(OUTPUT_JOINT_NAMES)}, 3), got {tuple(joints.shape)}")


def to_coco_wholebody(joints: torch.Tensor) -> torch.Tensor:
    """(..., 144, 3) SMPL-X output joints -> (..., 133, 3) COCO-WholeBody keypoints."""
    _check_joints(joints)
    return joints[..., COCO_WHOLEBODY_FROM_SMPLX, :]


def to_mediapipe_holistic(joints: torch.Tensor) -> dict[str, torch.Tensor]:
    """(..., 144, 3) -> {'POSE_LANDMARKS': (...,33,3), 'LEFT_HAND_LANDMARKS': (...,21,3),
    'RIGHT_HAND_LANDMARKS': (...,21,3)} (component names as in pose-format files)."""
    _check_joints(joints)
    return {
        "POSE_LANDMARKS": joints[..., MEDIAPIPE_POSE_FROM_SMPLX, :],
        "LEFT_HAND_LANDMARKS": joints[..., MEDIAPIPE_LEFT_HAND_FROM_SMPLX, :],
        "RIGHT_HAND_LANDMARKS": joints[..., MEDIAPIPE_RIGHT_HAND_FROM_SMPLX, :],
    }


# Skeleton edges of COCO-WholeBody (indices into the 133 keypoints), for pose maps.
_BODY_EDGES = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
               (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4),
               (15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22))
_HAND_EDGES = tuple((0 if k % 4 == 0 else k, k + 1) for k in range(20))


def coco_wholebody_edges() -> dict[str, tuple[tuple[int, int], ...]]:
    """Edges grouped by part ('body', 'left_hand', 'right_hand', 'face')."""
    face = tuple((23 + i, 24 + i) for i in range(67)
                 if i not in (16, 21, 26, 30, 35, 41, 47, 59))
    return {
        "body": _BODY_EDGES,
        "left_hand": tuple((91 + a, 91 + b) for a, b in _HAND_EDGES),
        "right_hand": tuple((112 + a, 112 + b) for a, b in _HAND_EDGES),
        "face": face,
    }
