"""Forward and inverse kinematics of the SMPL-X arm chain, vectorised over frames.

SMPL-X composes rotations down the tree: a joint's global rotation is its parent's
global rotation times its local rotation, and a child sits at
``p_child = p_parent + G_parent @ (rest_child - rest_parent)``. The arm IK treats the
elbow as a hinge: its rest axis is the one about which the elbow flexes forward in the
T-pose (+Y for the right arm, -Y for the left), and the elbow position on its swivel
circle is chosen toward a pole behind, below and outside the shoulder.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from signgen.body.skeleton import JOINT_INDEX, PARENTS

_HINGE_AXIS = {"right": np.array([0.0, 1.0, 0.0]), "left": np.array([0.0, -1.0, 0.0])}
# Elbow pole directions from the shoulder: outward, down and back.
_POLE = {"right": np.array([-0.35, -1.0, -0.45]), "left": np.array([0.35, -1.0, -0.45])}


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-12)


def chain_fk(rest: np.ndarray, local: dict[str, Rotation], chain: list[str]
             ) -> tuple[dict[str, np.ndarray], dict[str, Rotation]]:
    """Global positions (n,3) and rotations of the joints of ``chain`` (root first).

    Args:
        rest: (55,3) rest joint positions. local: joint name -> Rotation of n frames
            (missing joints are identity). ``chain[0]`` is placed at its rest position.
    """
    n = len(next(iter(local.values())))
    identity = Rotation.identity(n)
    pos: dict[str, np.ndarray] = {}
    glob: dict[str, Rotation] = {}
    for name in chain:
        j = JOINT_INDEX[name]
        parent = PARENTS[j]
        parent_name = None if parent < 0 else next(
            (c for c in pos if JOINT_INDEX[c] == parent), None)
        if parent_name is None:
            pos[name] = np.repeat(rest[j][None], n, 0)
            glob[name] = local.get(name, identity)
        else:
            pos[name] = pos[parent_name] + glob[parent_name].apply(rest[j] - rest[parent])
            glob[name] = glob[parent_name] * local.get(name, identity)
    return pos, glob


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Orthonormal frames (n,3,3) with columns a, b' (b made orthogonal to a), a x b'."""
    a = _normalise(a)
    b = _normalise(b - a * np.sum(a * b, axis=-1, keepdims=True))
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def solve_arm(side: str, rest: np.ndarray, shoulder_pos: np.ndarray, collar_global: Rotation,
              wrist_target: np.ndarray, hand_rotation: Rotation
              ) -> tuple[Rotation, Rotation, Rotation, np.ndarray]:
    """Two-bone IK with a hinge elbow, plus the wrist rotation for a hand orientation.

    Args:
        side: 'left' or 'right'. rest: (55,3) rest joints of this signer.
        shoulder_pos: (n,3) world position of the shoulder joint this frame.
        collar_global: Rotation (n) of the collar joint (the shoulder's parent).
        wrist_target: (n,3) desired wrist positions (clamped into reach).
        hand_rotation: Rotation (n), desired global rotation of the wrist joint.

    Returns local rotations of shoulder, elbow, wrist and the reached wrist (n,3).
    """
    s, e, w = (rest[JOINT_INDEX[f"{side}_{k}"]] for k in ("shoulder", "elbow", "wrist"))
    upper, fore = e - s, w - e
    a, b = np.linalg.norm(upper), np.linalg.norm(fore)
    to_target = wrist_target - shoulder_pos
    dist = np.linalg.norm(to_target, axis=-1, keepdims=True)
    reach = np.clip(dist, abs(a - b) + 0.02, 0.995 * (a + b))
    d = _normalise(to_target)
    wrist = shoulder_pos + d * reach
    # Elbow on its swivel circle, toward the pole.
    along = (a * a - b * b + reach**2) / (2 * reach)
    radius = np.sqrt(np.clip(a * a - along**2, 0.0, None))
    pole = _POLE[side] - d * np.sum(d * _POLE[side], axis=-1, keepdims=True)
    p_hat = _normalise(pole)
    elbow = shoulder_pos + d * along + p_hat * radius
    u = elbow - shoulder_pos
    hinge = _normalise(np.cross(p_hat, d))  # rotating u about it moves u toward the forearm
    rest_hinge = _HINGE_AXIS[side]
    # Shoulder: the rest (upper-arm, hinge) frame onto the posed one.
    rest_frame = _frame(upper[None], rest_hinge[None])[0]
    posed = _frame(u, hinge)
    shoulder_global = Rotation.from_matrix(posed @ rest_frame.T)
    # Elbow: flexion about the rest hinge axis, measured in the shoulder's frame.
    fore_local = shoulder_global.inv().apply(wrist - elbow)
    h = rest_frame[:, 1]
    f0 = _normalise(fore - h * np.dot(fore, h))
    f1 = _normalise(fore_local - h * (fore_local @ h)[:, None])
    angle = np.arctan2(np.cross(f0, f1) @ h, f1 @ f0)
    elbow_local = Rotation.from_rotvec(np.outer(angle, h))
    elbow_global = shoulder_global * elbow_local
    shoulder_local = collar_global.inv() * shoulder_global
    wrist_local = elbow_global.inv() * hand_rotation
    return shoulder_local, elbow_local, wrist_local, wrist
