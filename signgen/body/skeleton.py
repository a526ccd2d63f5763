"""SMPL-X skeleton constants: joint names, parents and left/right symmetry.

The 55 joints and their order are those of SMPL-X (the same order smplx's
``JOINT_NAMES`` starts with); the kinematic tree is SMPL-X's ``kintree_table``.
Everything in signgen that refers to a joint by name uses these constants.
"""

from __future__ import annotations

NUM_JOINTS = 55
NUM_BODY_JOINTS = 21  # body_pose covers joints 1..21 (the pelvis is global_orient)
NUM_HAND_JOINTS = 15

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye_smplhf", "right_eye_smplhf",
    "left_index1", "left_index2", "left_index3", "left_middle1", "left_middle2",
    "left_middle3", "left_pinky1", "left_pinky2", "left_pinky3", "left_ring1",
    "left_ring2", "left_ring3", "left_thumb1", "left_thumb2", "left_thumb3",
    "right_index1", "right_index2", "right_index3", "right_middle1", "right_middle2",
    "right_middle3", "right_pinky1", "right_pinky2", "right_pinky3", "right_ring1",
    "right_ring2", "right_ring3", "right_thumb1", "right_thumb2", "right_thumb3",
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Parent of every joint (-1 for the root), SMPL-X's kintree_table[0].
PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")


def mirror_joint(index: int) -> int:
    """Index of the joint on the other side of the body (itself for midline joints)."""
    name = JOINT_NAMES[index]
    for a, b in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(a):
            return JOINT_INDEX[b + name[len(a):]]
    return index


def descendants(index: int) -> set[int]:
    """All joints below ``index`` in the kinematic tree (excluding itself)."""
    out: set[int] = set()
    for j in range(NUM_JOINTS):
        p = PARENTS[j]
        while p != -1:
            if p == index:
                out.add(j)
                break
            p = PARENTS[p]
    return out


def hand_joints(side: str) -> tuple[int, ...]:
    """Wrist plus the 15 finger joints of one hand (``side`` is 'left' or 'right')."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    wrist = JOINT_INDEX[f"{side}_wrist"]
    return (wrist, *sorted(descendants(wrist)))
