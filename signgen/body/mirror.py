"""Left/right mirror images of SMPL-X poses and COCO-WholeBody keypoints.

The mirror is the reflection in the body's x = 0 plane (SMPL-X's x is the body's left).
For SynthSign's camera (on the x = 0 plane, looking along -Z, principal point at the image
centre) it is the horizontal flip of the frame, so a left-handed signer's clip mirrored
is a right-handed signer's clip of the same signs. The stand-in body model (and a
mean-shaped SMPL-X) is left/right symmetric, so posing the body with the mirrored
parameters gives the mirrored joints.

Conventions: a joint's axis-angle (x, y, z) becomes (x, -y, -z) on the other side's
joint; ``transl`` (x, y, z) becomes (-x, y, z); a keypoint column ``u`` in a frame
``width`` pixels wide (pixel centres at integers) becomes ``width - 1 - u`` on the other
side's keypoint. Every function is an involution.
"""

from __future__ import annotations

import numpy as np
import torch

from signgen.body.skeleton import NUM_JOINTS, mirror_joint
from signgen.errors import InvalidInputError

#: Joint i of a mirrored 55-joint pose is joint JOINT_MIRROR[i] of the original.
JOINT_MIRROR = np.array([mirror_joint(j) for j in range(NUM_JOINTS)])


def _face_mirror() -> list[int]:
    """The 68 face landmarks' left/right permutation (iBUG 300-W order)."""
    pairs = [(i, 16 - i) for i in range(8)]                       # jaw line
    pairs += [(17 + i, 26 - i) for i in range(5)]                 # eyebrows
    pairs += [(31, 35), (32, 34)]                                 # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]   # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]                       # inner lips
    perm = list(range(68))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def _coco_wholebody_mirror() -> np.ndarray:
    body = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    feet = [20, 21, 22, 17, 18, 19]
    face = [23 + i for i in _face_mirror()]
    hands = list(range(112, 133)) + list(range(91, 112))
    return np.array(body + feet + face + hands)


#: Keypoint k of mirrored COCO-WholeBody keypoints is keypoint COCO_WHOLEBODY_MIRROR[k].
COCO_WHOLEBODY_MIRROR = _coco_wholebody_mirror()


def _as_float(array, name: str, last: tuple[int, ...]):
    is_tensor = isinstance(array, torch.Tensor)
    out = array.clone() if is_tensor else np.array(array, dtype=np.float32, copy=True)
    if out.ndim < len(last) or tuple(out.shape[out.ndim - len(last):]) != last:
        raise InvalidInputError(f"{name} must have shape (..., {', '.join(map(str, last))}), "
                                f"got {tuple(out.shape)}")
    return out


def mirror_full_pose(poses):
    """(...,165) AMASS-order axis-angle pose (numpy or torch) -> its mirror image:
    each joint takes the other side's rotation with y and z negated."""
    out = _as_float(poses, "poses", (3 * NUM_JOINTS,))
    joints = out.reshape(*out.shape[:-1], NUM_JOINTS, 3)
    joints = joints[..., JOINT_MIRROR, :]
    joints[..., 1:] *= -1
    return joints.reshape(out.shape)


def mirror_transl(transl):
    """(...,3) translation in metres -> (-x, y, z)."""
    out = _as_float(transl, "transl", (3,))
    out[..., 0] *= -1
    return out


def mirror_keypoints(keypoints, width: int):
    """(...,133,2) COCO-WholeBody pixel keypoints (column, row) of a ``width``-pixel-wide
    frame -> the keypoints of the horizontally flipped frame, left and right swapped."""
    out = _as_float(keypoints, "keypoints", (133, 2))
    out = out[..., COCO_WHOLEBODY_MIRROR, :]
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def mirror_visible(visible):
    """(...,133) per-keypoint flags -> the flags of the mirrored keypoints."""
    return visible[..., COCO_WHOLEBODY_MIRROR]
