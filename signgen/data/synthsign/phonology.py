"""SynthSign phonology: the inventories a sign's form is composed from.

A sign (see ``SignForm``) is a dominant handshape, a location, a movement, a palm
orientation, a two-handedness type, an optional non-manual marker and a duration — the
parameters sign-language phonology describes (Stokoe; Brentari). This module holds the
*names* and the geometric parameters of each inventory; ``handshapes.py`` turns
handshapes into SMPL-X finger poses and ``motion.py`` turns the rest into trajectories.

Coordinates here are in the signer's body frame, metres: +X the signer's left, +Y up,
+Z forward (away from the chest, toward the viewer). Points named "dominant side" are
given for a right-handed signer; left-handed signers mirror x.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Handshapes (dominant hand). Names follow ASL-style handshape labels.
HANDSHAPES: tuple[str, ...] = (
    "B",        # flat hand, fingers together, thumb alongside
    "B_bent",   # flat hand bent at the knuckles (90 degrees)
    "A",        # fist, thumb alongside the index
    "S",        # fist, thumb across the fingers
    "1",        # index extended, others closed
    "V",        # index + middle extended and spread
    "5",        # all fingers extended and spread
    "C",        # fingers and thumb curved into a C
    "O",        # fingertips touching the thumb tip
    "L",        # index up, thumb out
    "Y",        # thumb and pinky extended
    "claw",     # 5 with all finger joints bent
    "X",        # index hooked, others closed
    "W",        # index, middle, ring extended and spread
    "F",        # index and thumb touching, others extended
    "I",        # pinky extended
    "H",        # index + middle extended together
    "E",        # all fingers bent over the thumb
)

# Locations: where the stroke happens. "anchor" is a body joint (SMPL-X name) and the
# offset is added in the body frame; "contact" locations are touched by the fingertips.
LOCATIONS: dict[str, dict] = {
    "neutral":        {"anchor": "spine3", "offset": (-0.05, 0.02, 0.32)},
    "neutral_high":   {"anchor": "neck", "offset": (-0.08, 0.02, 0.33)},
    "neutral_low":    {"anchor": "spine2", "offset": (-0.06, -0.05, 0.30)},
    "neutral_side":   {"anchor": "spine3", "offset": (-0.25, 0.0, 0.26)},
    "forehead":       {"anchor": "head", "offset": (0.0, 0.12, 0.14)},
    "temple":         {"anchor": "head", "offset": (-0.08, 0.09, 0.07)},
    "eye":            {"anchor": "head", "offset": (-0.03, 0.08, 0.14)},
    "nose":           {"anchor": "head", "offset": (0.0, 0.05, 0.16)},
    "mouth":          {"anchor": "head", "offset": (0.0, 0.01, 0.14)},
    "chin":           {"anchor": "head", "offset": (0.0, -0.03, 0.13)},
    "cheek":          {"anchor": "head", "offset": (-0.07, 0.03, 0.1)},
    "ear":            {"anchor": "head", "offset": (-0.1, 0.06, 0.03)},
    "neck":           {"anchor": "neck", "offset": (0.0, -0.02, 0.08)},
    "chest":          {"anchor": "spine3", "offset": (0.0, 0.05, 0.16)},
    "chest_dominant": {"anchor": "spine3", "offset": (-0.1, 0.05, 0.15)},
    "shoulder":       {"anchor": "left_shoulder", "offset": (-0.02, 0.04, 0.1)},
    "stomach":        {"anchor": "spine1", "offset": (0.0, 0.02, 0.16)},
    "palm":           {"anchor": "base_hand", "offset": (0.0, 0.04, 0.0)},  # on the base hand
    "fingerspell":    {"anchor": "right_shoulder", "offset": (0.02, -0.08, 0.3)},
}

# Movements: the stroke path, in the body frame, relative to the location; amplitudes
# in metres before the signer's signing-space scale.
MOVEMENTS: dict[str, dict] = {
    "hold":          {"kind": "hold"},
    "straight_out":  {"kind": "line", "direction": (0.0, 0.0, 1.0), "amplitude": 0.14},
    "straight_down": {"kind": "line", "direction": (0.0, -1.0, 0.0), "amplitude": 0.12},
    "straight_side": {"kind": "line", "direction": (-1.0, 0.0, 0.0), "amplitude": 0.14},
    "straight_up":   {"kind": "line", "direction": (0.0, 1.0, 0.0), "amplitude": 0.12},
    "arc_forward":   {"kind": "arc", "direction": (0.0, 0.0, 1.0), "bulge": (0.0, 1.0, 0.0),
                      "amplitude": 0.16},
    "arc_side":      {"kind": "arc", "direction": (-1.0, 0.0, 0.0), "bulge": (0.0, 1.0, 0.0),
                      "amplitude": 0.16},
    "circle":        {"kind": "circle", "normal": (0.0, 0.0, 1.0), "amplitude": 0.06},
    "circle_flat":   {"kind": "circle", "normal": (0.0, 1.0, 0.0), "amplitude": 0.06},
    "tap":           {"kind": "tap", "direction": (0.0, 0.0, -1.0), "amplitude": 0.04},
    "wiggle":        {"kind": "wiggle", "amplitude": 0.35},  # finger flexion, radians
    "twist":         {"kind": "twist", "amplitude": 1.2},    # forearm rotation, radians
    "zigzag":        {"kind": "zigzag", "direction": (0.0, -1.0, 0.0), "amplitude": 0.14},
    "toward_body":   {"kind": "line", "direction": (0.0, 0.0, -1.0), "amplitude": 0.12},
}

# Palm orientations of the dominant hand at the start of the stroke: the direction the
# palm faces and the direction the fingers point (body frame, right-handed signer).
ORIENTATIONS: dict[str, dict] = {
    "palm_down_fingers_forward": {"palm": (0.0, -1.0, 0.0), "fingers": (0.0, 0.0, 1.0)},
    "palm_up_fingers_forward":   {"palm": (0.0, 1.0, 0.0), "fingers": (0.0, 0.0, 1.0)},
    "palm_out_fingers_up":       {"palm": (0.0, 0.0, 1.0), "fingers": (0.0, 1.0, 0.0)},
    "palm_in_fingers_up":        {"palm": (0.0, 0.0, -1.0), "fingers": (0.0, 1.0, 0.0)},
    "palm_side_fingers_up":      {"palm": (1.0, 0.0, 0.0), "fingers": (0.0, 1.0, 0.0)},
    "palm_side_fingers_forward": {"palm": (1.0, 0.0, 0.0), "fingers": (0.0, 0.0, 1.0)},
    "palm_down_fingers_side":    {"palm": (0.0, -1.0, 0.0), "fingers": (1.0, 0.0, 0.0)},
    "palm_in_fingers_side":      {"palm": (0.0, 0.0, -1.0), "fingers": (1.0, 0.0, 0.0)},
}

# Two-handedness (Battison): one hand; both hands moving in mirror symmetry; or the
# non-dominant hand as a static base the dominant hand acts on.
HAND_TYPES: tuple[str, ...] = ("one", "symmetric", "base")

# Non-manual markers: head movement, brows and mouth (drive SMPL-X head pose, expression
# and jaw).
NONMANUALS: tuple[str, ...] = ("head_shake", "head_nod", "brows_up", "brows_down",
                               "mouth_open", "puff", "pucker", "smile")

DURATION_RANGE = (0.35, 0.8)  # seconds of the stroke at signing speed 1.0
REPEAT_RANGE = (1, 3)


@dataclass(frozen=True)
class SignForm:
    """The phonological form of one sign (or one fingerspelled letter)."""

    handshape: str
    location: str
    movement: str
    orientation: str
    hands: str = "one"
    base_handshape: str | None = None  # the non-dominant hand's shape when hands='base'
    nonmanual: str | None = None
    duration: float = 0.5
    repeat: int = 1

    def __post_init__(self) -> None:
        checks = (("handshape", self.handshape, HANDSHAPES),
                  ("location", self.location, tuple(LOCATIONS)),
                  ("movement", self.movement, tuple(MOVEMENTS)),
                  ("orientation", self.orientation, tuple(ORIENTATIONS)),
                  ("hands", self.hands, HAND_TYPES))
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}")
        if (self.hands == "base") != (self.base_handshape is not None):
            raise ValueError("base_handshape is required exactly when hands='base'")
        if self.base_handshape is not None and self.base_handshape not in HANDSHAPES:
            raise ValueError(f"unknown base_handshape {self.base_handshape!r}")
        if self.location == "palm" and self.hands != "base":
            raise ValueError("location 'palm' needs hands='base'")
        if self.nonmanual is not None and self.nonmanual not in NONMANUALS:
            raise ValueError(f"unknown nonmanual {self.nonmanual!r}")
        if not self.duration > 0 or self.repeat < 1:
            raise ValueError("duration must be > 0 and repeat >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SignForm:
        return cls(**data)
