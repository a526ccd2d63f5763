"""Handshapes as SMPL-X finger poses.

A handshape is described per finger by joint angles (radians) that read like an
anatomy text, and converted to the 45-value SMPL-X hand pose (15 joints x axis-angle)
of either hand. The description space is what motion interpolates in (blending two
shapes angle by angle gives a natural in-between, unlike blending axis-angles).

Conventions (SMPL-X rest pose, which the stand-in shares): the left hand points +X with
the palm facing -Y and the thumb on the +Z side; the right hand is its mirror image.
Left-hand fingers flex toward the palm about -Z, spread about +/-Y; the right hand's
axis-angles are the mirror (x, -y, -z) of the left hand's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from signgen.data.synthsign.phonology import HANDSHAPES

# Order of fingers in SMPL-X's 15 hand joints (3 joints each, base to tip).
SMPLX_FINGER_ORDER = ("index", "middle", "pinky", "ring", "thumb")
# Direction of a positive ``spread`` per finger: +1 toward the thumb side, -1 away.
_SPREAD_DIRECTION = {"index": 1.0, "middle": 1.0, "ring": -1.0, "pinky": -1.0}
# Rest direction of the left thumb's first two segments (stand-in and SMPL-X alike point
# the thumb forward-out from the palm), used to build its flexion axis.
_THUMB_DIRECTION = np.array([0.78, -0.17, 0.61]) / np.linalg.norm([0.78, -0.17, 0.61])


@dataclass(frozen=True)
class FingerAngles:
    """One long finger: flexion at the three joints and spread at the base (radians;
    positive spread moves index and middle toward the thumb, ring and pinky away)."""

    mcp: float = 0.0
    pip: float = 0.0
    dip: float = 0.0
    spread: float = 0.0


@dataclass(frozen=True)
class ThumbAngles:
    """The thumb: opposition (swing across the palm), flexion at its 3 joints, and
    abduction (away from the palm's plane, negative flexion of the base)."""

    opposition: float = 0.0
    cmc: float = 0.0
    mcp: float = 0.0
    ip: float = 0.0


def _fist(**kw) -> FingerAngles:
    return FingerAngles(mcp=1.5, pip=1.65, dip=1.0, **kw)


_STRAIGHT = FingerAngles()
_THUMB_ALONG = ThumbAngles(opposition=0.2, cmc=0.2, mcp=0.1, ip=0.1)
_THUMB_ACROSS = ThumbAngles(opposition=1.1, cmc=0.5, mcp=0.6, ip=0.5)
_THUMB_OUT = ThumbAngles(opposition=-0.1, cmc=-0.5, mcp=0.0, ip=0.0)

# name -> (index, middle, ring, pinky, thumb)
_TABLE: dict[str, tuple[FingerAngles, FingerAngles, FingerAngles, FingerAngles, ThumbAngles]] = {
    "B": (_STRAIGHT, _STRAIGHT, _STRAIGHT, _STRAIGHT, _THUMB_ALONG),
    "B_bent": (FingerAngles(mcp=1.45), FingerAngles(mcp=1.45), FingerAngles(mcp=1.45),
               FingerAngles(mcp=1.45), _THUMB_ALONG),
    "A": (_fist(), _fist(), _fist(), _fist(), ThumbAngles(opposition=0.0, cmc=0.1)),
    "S": (_fist(), _fist(), _fist(), _fist(), _THUMB_ACROSS),
    "1": (_STRAIGHT, _fist(), _fist(), _fist(), _THUMB_ACROSS),
    "V": (FingerAngles(spread=0.3), FingerAngles(spread=-0.3), _fist(), _fist(), _THUMB_ACROSS),
    "5": (FingerAngles(spread=0.3), _STRAIGHT, FingerAngles(spread=0.2),
          FingerAngles(spread=0.3), _THUMB_OUT),
    "C": (FingerAngles(mcp=0.5, pip=0.75, dip=0.3), FingerAngles(mcp=0.5, pip=0.75, dip=0.3),
          FingerAngles(mcp=0.5, pip=0.75, dip=0.3), FingerAngles(mcp=0.5, pip=0.75, dip=0.3),
          ThumbAngles(opposition=0.7, cmc=0.1, mcp=0.2, ip=0.2)),
    "O": (FingerAngles(mcp=0.95, pip=1.0, dip=0.5), FingerAngles(mcp=0.95, pip=1.0, dip=0.5),
          FingerAngles(mcp=0.95, pip=1.0, dip=0.5), FingerAngles(mcp=0.95, pip=1.0, dip=0.5),
          ThumbAngles(opposition=1.0, cmc=0.45, mcp=0.4, ip=0.3)),
    "L": (_STRAIGHT, _fist(), _fist(), _fist(), _THUMB_OUT),
    "Y": (_fist(), _fist(), _fist(), FingerAngles(spread=0.3), _THUMB_OUT),
    "claw": (FingerAngles(mcp=0.2, pip=1.1, dip=0.9, spread=0.3),
             FingerAngles(mcp=0.2, pip=1.1, dip=0.9),
             FingerAngles(mcp=0.2, pip=1.1, dip=0.9, spread=0.2),
             FingerAngles(mcp=0.2, pip=1.1, dip=0.9, spread=0.3), _THUMB_OUT),
    "X": (FingerAngles(mcp=0.3, pip=1.4, dip=1.1), _fist(), _fist(), _fist(), _THUMB_ACROSS),
    "W": (FingerAngles(spread=0.3), _STRAIGHT, FingerAngles(spread=0.3), _fist(),
          ThumbAngles(opposition=1.2, cmc=0.6, mcp=0.7, ip=0.6)),
    "F": (FingerAngles(mcp=0.85, pip=0.95, dip=0.6), FingerAngles(spread=-0.1),
          FingerAngles(spread=0.1), FingerAngles(spread=0.3),
          ThumbAngles(opposition=0.9, cmc=0.4, mcp=0.4, ip=0.3)),
    "I": (_fist(), _fist(), _fist(), FingerAngles(spread=0.1), _THUMB_ACROSS),
    "H": (_STRAIGHT, _STRAIGHT, _fist(), _fist(), _THUMB_ACROSS),
    "E": (FingerAngles(mcp=0.25, pip=1.7, dip=1.0), FingerAngles(mcp=0.25, pip=1.7, dip=1.0),
          FingerAngles(mcp=0.25, pip=1.7, dip=1.0), FingerAngles(mcp=0.25, pip=1.7, dip=1.0),
          ThumbAngles(opposition=1.2, cmc=0.7, mcp=0.8, ip=0.6)),
}
# A relaxed hand, used at rest and for the non-dominant hand of one-handed signs.
RELAXED = "relaxed"
_TABLE[RELAXED] = (FingerAngles(mcp=0.25, pip=0.35, dip=0.2, spread=0.05),
                   FingerAngles(mcp=0.3, pip=0.4, dip=0.2),
                   FingerAngles(mcp=0.35, pip=0.45, dip=0.2, spread=0.05),
                   FingerAngles(mcp=0.4, pip=0.5, dip=0.2, spread=0.1),
                   ThumbAngles(opposition=0.3, cmc=0.2, mcp=0.2, ip=0.1))
assert set(HANDSHAPES) <= set(_TABLE), set(HANDSHAPES) - set(_TABLE)

NUM_ANGLES = 20  # 4 long fingers x 4 + thumb 4


def handshape_angles(name: str) -> np.ndarray:
    """(20,) angle vector of a handshape: index, middle, ring, pinky (mcp, pip, dip,
    spread each), then thumb (opposition, cmc, mcp, ip)."""
    if name not in _TABLE:
        raise ValueError(f"unknown handshape {name!r}; known: {sorted(_TABLE)}")
    index, middle, ring, pinky, thumb = _TABLE[name]
    out = [(f.mcp, f.pip, f.dip, f.spread) for f in (index, middle, ring, pinky)]
    out.append((thumb.opposition, thumb.cmc, thumb.mcp, thumb.ip))
    return np.asarray(out, dtype=np.float64).reshape(-1)


def angles_to_hand_pose(angles: np.ndarray, side: str) -> np.ndarray:
    """(..., 20) angle vectors -> (..., 45) SMPL-X hand pose (axis-angle) of ``side``."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    angles = np.asarray(angles, dtype=np.float64)
    lead = angles.shape[:-1]
    a = angles.reshape(-1, 5, 4)
    n = a.shape[0]
    pose = np.zeros((n, 15, 3))
    long_fingers = ("index", "middle", "ring", "pinky")
    for k, finger in enumerate(long_fingers):
        base = 3 * SMPLX_FINGER_ORDER.index(finger)
        mcp, pip, dip, spread = a[:, k, 0], a[:, k, 1], a[:, k, 2], a[:, k, 3]
        zero = np.zeros_like(mcp)
        # Base joint: flexion about the finger's own axis, then spread in the palm's
        # plane (a rotation about -Y moves a left-hand finger toward the thumb, +Z).
        rot = (Rotation.from_rotvec(np.stack([zero, -spread * _SPREAD_DIRECTION[finger],
                                              zero], -1))
               * Rotation.from_rotvec(np.stack([zero, zero, -mcp], -1)))
        pose[:, base] = rot.as_rotvec()
        pose[:, base + 1, 2] = -pip
        pose[:, base + 2, 2] = -dip
    opposition, cmc, mcp, ip = (a[:, 4, i] for i in range(4))
    flex_axis = np.cross(_THUMB_DIRECTION, [0.0, -1.0, 0.0])
    flex_axis /= np.linalg.norm(flex_axis)
    base = 3 * SMPLX_FINGER_ORDER.index("thumb")
    # Opposition rolls the thumb about the hand's long axis (+X) toward the palm (-Y).
    rot = (Rotation.from_rotvec(np.outer(opposition, [1.0, 0.0, 0.0]))
           * Rotation.from_rotvec(np.outer(cmc, flex_axis)))
    pose[:, base] = rot.as_rotvec()
    pose[:, base + 1] = np.outer(mcp, flex_axis)
    pose[:, base + 2] = np.outer(ip, flex_axis)
    if side == "right":
        pose = pose * np.array([1.0, -1.0, -1.0])
    return pose.reshape(*lead, 45)


def hand_pose(name: str, side: str) -> np.ndarray:
    """(45,) SMPL-X hand pose of a named handshape for ``side``."""
    return angles_to_hand_pose(handshape_angles(name), side)
