"""SynthSign signers: body shape, appearance and signing style, and their rendering.

A :class:`Signer` is everything that makes one synthetic signer look and move
differently from another: SMPL-X shape coefficients, skin, hair, clothes, a solid
background, handedness, signing speed and the size of their signing space.
:func:`make_signers` draws a deterministic, diverse set of them.

All signers share the body model's mesh, so appearance is per-vertex colour:
the body model's appearance regions (skin, hair, shirt, ...) give the base colours,
hair styles recolour head and neck vertices by their position relative to the head
joint, and shirt patterns recolour shirt vertices by height or by the joint they
follow.  Positions are taken on the canonical rest pose (mean shape, arms down), so
a vertex keeps its colour whatever the signer's shape or pose.

All signers are filmed by one fixed camera (:func:`signing_camera`); body sizes vary
between signers as they do in real corpora.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from signgen.body import BodyModel, SMPLXParams
from signgen.body.skeleton import JOINT_INDEX
from signgen.errors import InvalidInputError
from signgen.render.camera import PinholeCamera
from signgen.render.mesh_renderer import MeshRenderer

HAIR_STYLES: tuple[str, ...] = ("short", "long", "bob", "bald")
SHIRT_PATTERNS: tuple[str, ...] = ("solid", "stripes", "two_tone")
HANDEDNESS: tuple[str, ...] = ("right", "left")
SPEED_RANGE = (0.8, 1.25)
SPACE_SCALE_RANGE = (0.85, 1.15)
BETA_STD = 0.8
BETA_LIMIT = 2.0
NUM_BETAS = 10
#: Smallest RGB distance (colours in [0, 1]) between a signer's background and each of
#: their shirt colours, and between the background and their skin, so that the body
#: and the hands always stand out from the background.
MIN_BACKGROUND_SHIRT_DISTANCE = 0.35
MIN_BACKGROUND_SKIN_DISTANCE = 0.25
LEFT_HANDED_EVERY = 6  # one left-handed signer in each block of six

# Monk Skin Tone scale (Google, CC-BY 4.0), light to dark; signers interpolate along it.
_MONK_SKIN_TONES = np.array([
    (0xF6, 0xED, 0xE4), (0xF3, 0xE7, 0xDB), (0xF7, 0xEA, 0xD0), (0xEA, 0xDA, 0xBA),
    (0xD7, 0xBD, 0x96), (0xA0, 0x7E, 0x56), (0x82, 0x5C, 0x43), (0x60, 0x41, 0x34),
    (0x3A, 0x31, 0x2A), (0x29, 0x24, 0x20),
]) / 255.0
# Natural hair colours and how often they are drawn.
_HAIR_COLORS = np.array([
    (0.05, 0.04, 0.04), (0.16, 0.10, 0.07), (0.33, 0.21, 0.12), (0.45, 0.21, 0.10),
    (0.74, 0.60, 0.38), (0.58, 0.57, 0.56), (0.84, 0.83, 0.80),
])
_HAIR_WEIGHTS = np.array([0.3, 0.25, 0.15, 0.06, 0.1, 0.09, 0.05])
_HAIR_STYLE_WEIGHTS = np.array([0.4, 0.25, 0.2, 0.15])
_SHIRT_PATTERN_WEIGHTS = np.array([0.5, 0.25, 0.25])
# Denim, black, grey, khaki, brown.
_TROUSERS_COLORS = np.array([
    (0.20, 0.27, 0.42), (0.08, 0.08, 0.09), (0.35, 0.35, 0.37), (0.60, 0.53, 0.40),
    (0.30, 0.22, 0.16),
])
_EYE_COLOR = (0.08, 0.08, 0.10)
_SHOES_COLOR = (0.10, 0.10, 0.10)
_LIPS_TINT = (0.85, 0.62, 0.62)  # lips = skin x tint: redder and darker than the skin
_BROW_DARKEN = 0.8

# Hair styles, in head-joint-relative coordinates of the canonical rest pose (metres;
# the stand-in's head ellipsoid spans y in [-0.045, 0.165] around the joint, the
# forehead is at z ~ 0.085, the back of the head at z ~ -0.075, the neck spans
# y in [-0.135, 0.01]).  Every style but "bald" has the crown: scalp vertices above
# the plane ``y - _CROWN_TILT * z > _CROWN_HEIGHT``, which runs from the forehead
# (y ~ 0.12) down to the nape (y ~ -0.01).  "bob" and "long" add a curtain: vertices
# behind the cheeks (z < _CURTAIN_Z) at the sides (|x| > _CURTAIN_X) or at the back
# (z < _CURTAIN_BACK_Z), down to jaw level (bob) or over the neck to the shoulders (long).
_CROWN_HEIGHT = 0.05
_CROWN_TILT = 0.8
_CURTAIN_Z = 0.03
_CURTAIN_X = 0.06
_CURTAIN_BACK_Z = -0.02
_CURTAIN_LOWEST = {"bob": -0.03, "long": -0.14}
_STRIPE_PERIOD = 0.15  # metres per stripe pair: each stripe spans two vertex rings
_STRIPE_ORIGIN = -0.35  # the pelvis height: stripes line up with the waist

# Rest pose: arms down by the sides (axis-angle, radians) and the four fingers of each
# hand slightly flexed (left hand about -Z, right about +Z; see docs/architecture.md).
_ARMS_DOWN = {"left_shoulder": (0.0, 0.0, -1.25), "right_shoulder": (0.0, 0.0, 1.25)}
_REST_FINGER_CURL = 0.15

# The signing camera (see signing_camera): metres in the body's plane (z = 0).
CAMERA_DISTANCE = 3.5
FRAME_TOP = 0.6  # above the tallest head (all betas +2: head top at y = 0.586)
FRAME_BOTTOM = -0.47  # just below the hip joints, as broadcast signing video is framed
# Hands 0.2 m out from the shoulders and 0.3 m forward stay inside (SynthSign's side
# locations); wider movements may leave the frame, as they do in RWTH-PHOENIX-2014T.
FRAME_HALF_WIDTH = 0.5


def _color(value, name: str) -> tuple[float, float, float]:
    try:
        rgb = tuple(float(c) for c in value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be 3 numbers in [0, 1], got {value!r}") from exc
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        raise InvalidInputError(f"{name} must be 3 numbers in [0, 1], got {value!r}")
    return rgb


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _choice(value, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInputError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _in_range(value, name: str, bounds: tuple[float, float]) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from exc
    # A little slack: values are stored rounded to 4 decimals.
    if not bounds[0] - 1e-4 <= number <= bounds[1] + 1e-4:
        raise InvalidInputError(f"{name} must be in [{bounds[0]}, {bounds[1]}], got {number}")
    return number


@dataclass(frozen=True)
class Signer:
    """One synthetic signer; colours are RGB in [0, 1].

    Attributes:
        signer_id: "s00", "s01", ...
        betas: 10 SMPL-X shape coefficients in [-2, 2].
        skin, hair_color, shirt_color, trousers_color, background: RGB colours.
        hair_style: one of ``HAIR_STYLES``; shirt_pattern: one of ``SHIRT_PATTERNS``.
        handedness: "right" or "left" (the dominant hand).
        speed: signing-speed factor in [0.8, 1.25]; space_scale: size factor of the
            signing movements in [0.85, 1.15].
    Lists are accepted for the tuple fields (as JSON gives them); values are checked.
    """

    signer_id: str
    betas: tuple[float, ...]
    skin: tuple[float, float, float]
    hair_color: tuple[float, float, float]
    hair_style: str
    shirt_color: tuple[float, float, float]
    shirt_pattern: str
    trousers_color: tuple[float, float, float]
    background: tuple[float, float, float]
    handedness: str
    speed: float
    space_scale: float

    def __post_init__(self) -> None:
        if not isinstance(self.signer_id, str) or not self.signer_id:
            raise InvalidInputError(f"signer_id must be a non-empty string, "
                                    f"got {self.signer_id!r}")
        try:
            betas = tuple(float(b) for b in self.betas)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"betas must be {NUM_BETAS} numbers, "
                                    f"got {self.betas!r}") from exc
        if len(betas) != NUM_BETAS or not all(abs(b) <= BETA_LIMIT for b in betas):
            raise InvalidInputError(f"betas must be {NUM_BETAS} numbers in "
                                    f"[-{BETA_LIMIT}, {BETA_LIMIT}], got {self.betas!r}")
        values = {
            "betas": betas,
            "skin": _color(self.skin, "skin"),
            "hair_color": _color(self.hair_color, "hair_color"),
            "hair_style": _choice(self.hair_style, "hair_style", HAIR_STYLES),
            "shirt_color": _color(self.shirt_color, "shirt_color"),
            "shirt_pattern": _choice(self.shirt_pattern, "shirt_pattern", SHIRT_PATTERNS),
            "trousers_color": _color(self.trousers_color, "trousers_color"),
            "background": _color(self.background, "background"),
            "handedness": _choice(self.handedness, "handedness", HANDEDNESS),
            "speed": _in_range(self.speed, "speed", SPEED_RANGE),
            "space_scale": _in_range(self.space_scale, "space_scale", SPACE_SCALE_RANGE),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """JSON-safe dict (lists for the tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Signer:
        """Inverse of :meth:`to_dict`; raises InvalidInputError for missing/unknown keys."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"a signer must be a dict, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        missing, unknown = sorted(names - data.keys()), sorted(data.keys() - names)
        if missing or unknown:
            raise InvalidInputError(f"signer dict has missing keys {missing} and unknown "
                                    f"keys {unknown}")
        return cls(**data)


def _shirt_palette(shirt_color, pattern: str) -> tuple[tuple[float, float, float], ...]:
    if pattern == "solid":
        return (tuple(shirt_color),)
    rgb = np.array(shirt_color)
    luminance = float(rgb @ (0.299, 0.587, 0.114))
    second = rgb + 0.55 * (1.0 - rgb) if luminance < 0.5 else 0.45 * rgb
    return tuple(shirt_color), _rounded(second)


def shirt_colors(signer: Signer) -> tuple[tuple[float, float, float], ...]:
    """The shirt's colours: ``shirt_color`` plus, for patterned shirts, a second colour
    (the shirt colour lightened when it is dark, darkened when it is light)."""
    return _shirt_palette(signer.shirt_color, signer.shirt_pattern)


def _rounded(rgb) -> tuple[float, float, float]:
    return tuple(round(float(np.clip(c, 0.0, 1.0)), 4) for c in rgb)


def _distance(a, b) -> float:
    return float(np.linalg.norm(np.subtract(a, b)))


def _jitter(rng: np.random.Generator, rgb: np.ndarray, amount: float) -> tuple:
    return _rounded(rgb + rng.uniform(-amount, amount, 3))


def _skin_tone(position: float) -> np.ndarray:
    """Interpolate the Monk scale at ``position`` in [0, 1] (0 lightest, 1 darkest)."""
    x = position * (len(_MONK_SKIN_TONES) - 1)
    low = min(int(x), len(_MONK_SKIN_TONES) - 2)
    t = x - low
    return (1 - t) * _MONK_SKIN_TONES[low] + t * _MONK_SKIN_TONES[low + 1]


def _background(rng: np.random.Generator, avoid_shirt, skin) -> tuple:
    """A solid studio-like background far enough from the shirt colours and the skin."""
    while True:  # succeeds in a few draws: most of the RGB cube is far from 3 colours
        h, s, v = rng.uniform(0, 1), rng.uniform(0.0, 0.55), rng.uniform(0.2, 0.95)
        candidate = _rounded(colorsys.hsv_to_rgb(h, s, v))
        if (all(_distance(candidate, c) >= MIN_BACKGROUND_SHIRT_DISTANCE for c in avoid_shirt)
                and _distance(candidate, skin) >= MIN_BACKGROUND_SKIN_DISTANCE):
            return candidate


def make_signers(num_signers: int = 24, seed: int = 0) -> list[Signer]:
    """``num_signers`` deterministic, distinct signers "s00", "s01", ...

    Signer i depends only on (seed, i), so a larger set extends a smaller one.  Skin
    tones follow a golden-ratio sequence along the Monk scale (evenly spread from
    light to dark for any count), and each block of six consecutive signers has
    exactly one left-handed signer.
    """
    num_signers = _positive_int(num_signers, "num_signers")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    skin_offset = np.random.default_rng([seed, 0]).uniform()
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    signers = []
    for i in range(num_signers):
        rng = np.random.default_rng([seed, 1, i])
        left_slot = np.random.default_rng([seed, 2, i // LEFT_HANDED_EVERY]).integers(
            LEFT_HANDED_EVERY)
        skin = _rounded(_skin_tone((skin_offset + i * golden) % 1.0))
        betas = np.clip(rng.normal(0.0, BETA_STD, NUM_BETAS), -BETA_LIMIT, BETA_LIMIT)
        hair = _jitter(rng, _HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_WEIGHTS)],
                       0.03)
        hair_style = HAIR_STYLES[rng.choice(len(HAIR_STYLES), p=_HAIR_STYLE_WEIGHTS)]
        # Mostly dark, moderately saturated shirts, as in broadcast interpreting.
        shirt = _rounded(colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.15, 0.8),
                                             0.12 + 0.73 * rng.uniform(0, 1) ** 1.5))
        pattern = SHIRT_PATTERNS[rng.choice(len(SHIRT_PATTERNS), p=_SHIRT_PATTERN_WEIGHTS)]
        trousers = _jitter(rng, _TROUSERS_COLORS[rng.integers(len(_TROUSERS_COLORS))], 0.03)
        speed = math.exp(rng.uniform(math.log(SPEED_RANGE[0]), math.log(SPEED_RANGE[1])))
        space_scale = rng.uniform(*SPACE_SCALE_RANGE)
        signers.append(Signer(
            signer_id=f"s{i:02d}", betas=tuple(round(float(b), 4) for b in betas),
            skin=skin, hair_color=hair, hair_style=hair_style, shirt_color=shirt,
            shirt_pattern=pattern, trousers_color=trousers,
            background=_background(rng, _shirt_palette(shirt, pattern), skin),
            handedness="left" if i % LEFT_HANDED_EVERY == left_slot else "right",
            speed=round(speed, 4), space_scale=round(float(space_scale), 4)))
    return signers


def _canonical_geometry(body: BodyModel) -> tuple[np.ndarray, np.ndarray]:
    """Rest-pose vertices (V,3) float32 of the mean shape, and the head joint (3,)."""
    params = _rest_pose(body, torch.zeros(1, body.num_betas))
    with torch.no_grad():
        out = body(params)
    return out.vertices[0].numpy(), out.joints[0, JOINT_INDEX["head"]].numpy()


def _regions(body: BodyModel) -> tuple[np.ndarray, tuple[str, ...]]:
    if body.vertex_regions is None:
        raise InvalidInputError(
            f"body model {body.model_path} has no appearance regions (official SMPL-X "
            "files carry none); SynthSign signers need signgen's stand-in body model")
    return body.vertex_regions.numpy(), body.region_names


def _hair_mask(hair_style: str, rel: np.ndarray, scalp: np.ndarray) -> np.ndarray:
    """(V,) bool hair vertices from head-relative rest positions ``rel`` (V,3) and the
    (V,) mask of vertices that may take hair."""
    if hair_style == "bald":
        return np.zeros(len(rel), bool)
    x, y, z = rel[:, 0], rel[:, 1], rel[:, 2]
    hair = y - _CROWN_TILT * z > _CROWN_HEIGHT
    if hair_style in _CURTAIN_LOWEST:
        hair |= ((z < _CURTAIN_Z) & ((np.abs(x) > _CURTAIN_X) | (z < _CURTAIN_BACK_Z))
                 & (y > _CURTAIN_LOWEST[hair_style]))
    return scalp & hair


def hair_mask(body: BodyModel, hair_style: str) -> np.ndarray:
    """(V,) bool: the vertices coloured as hair for ``hair_style``.

    Only skin and hair-region vertices of the head and neck can take hair, so the
    face's features (eyes, brows, lips) keep their colours.
    """
    _choice(hair_style, "hair_style", HAIR_STYLES)
    regions, names = _regions(body)
    vertices, head = _canonical_geometry(body)
    return _hair_mask(hair_style, vertices - head, _scalp(body, regions, names))


def _scalp(body: BodyModel, regions: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    head_neck = [JOINT_INDEX["head"], JOINT_INDEX["neck"]]
    return (np.isin(regions, [names.index("skin"), names.index("hair")])
            & np.isin(body.vertex_joint_labels().numpy(), head_neck))


def signer_vertex_colors(signer: Signer, body: BodyModel) -> np.ndarray:
    """(V,3) float32 albedo in [0,1] for ``signer`` on ``body`` (a model with regions).

    Regions give the base colours (the hand region takes the skin colour); then the
    hair style recolours scalp/neck vertices and the shirt pattern shirt vertices:
    "stripes" alternate the two shirt colours every ``_STRIPE_PERIOD / 2`` metres of
    rest-pose height (arms down, so sleeves are striped across like a real shirt),
    "two_tone" gives the sleeves (vertices following a shoulder or elbow) the second.
    """
    regions, names = _regions(body)
    skin = np.array(signer.skin)
    palette = {
        "skin": skin, "hand": skin, "hair": skin, "lips": skin * _LIPS_TINT,
        "brow": np.array(signer.hair_color) * _BROW_DARKEN, "eye": _EYE_COLOR,
        "shirt": signer.shirt_color, "trousers": signer.trousers_color,
        "shoes": _SHOES_COLOR,
    }
    unknown = [n for n in names if n not in palette]
    if unknown:
        raise InvalidInputError(f"body model has appearance regions {unknown} that "
                                "SynthSign does not know how to colour")
    colors = np.array([palette[n] for n in names], dtype=np.float32)[regions]
    vertices, head = _canonical_geometry(body)
    colors[_hair_mask(signer.hair_style, vertices - head, _scalp(body, regions, names))] = (
        signer.hair_color)
    shirt = regions == names.index("shirt")
    if signer.shirt_pattern == "stripes":
        band = np.floor((vertices[:, 1] - _STRIPE_ORIGIN) / (_STRIPE_PERIOD / 2))
        colors[shirt & (band % 2 == 1)] = shirt_colors(signer)[1]
    elif signer.shirt_pattern == "two_tone":
        sleeve_joints = [JOINT_INDEX[f"{side}_{part}"] for side in ("left", "right")
                         for part in ("shoulder", "elbow")]
        sleeve = np.isin(body.vertex_joint_labels().numpy(), sleeve_joints)
        colors[shirt & sleeve] = shirt_colors(signer)[1]
    return colors


def signing_camera(width: int, height: int) -> PinholeCamera:
    """The fixed SynthSign camera: frontal upper-body framing (RWTH-PHOENIX-2014T-like).

    The camera is ``CAMERA_DISTANCE`` metres in front of the body, looking along -Z
    with a level optical axis.  In the body's plane (z = 0) the frame spans at least
    x in [-FRAME_HALF_WIDTH, FRAME_HALF_WIDTH] and y in [FRAME_BOTTOM, FRAME_TOP]
    (hips to just above the tallest head).  The focal length
    makes the tighter of the two fit; the frame's top edge is always at FRAME_TOP, so
    extra height in tall or square images shows more of the legs, as in broadcast
    signing video.  The body's left (+X) appears on the image right.
    """
    width, height = _positive_int(width, "width"), _positive_int(height, "height")
    focal = CAMERA_DISTANCE * min(width / (2.0 * FRAME_HALF_WIDTH),
                                  height / (FRAME_TOP - FRAME_BOTTOM))
    # The top edge (row -0.5) is height / 2 pixels above the principal point.
    centre_y = FRAME_TOP - 0.5 * height * CAMERA_DISTANCE / focal
    fov_y = math.degrees(2.0 * math.atan(0.5 * height / focal))
    return PinholeCamera.look_at(width, height, eye=(0.0, centre_y, CAMERA_DISTANCE),
                                 target=(0.0, centre_y, 0.0), fov_y_deg=fov_y)


def _rest_pose(body: BodyModel, betas: torch.Tensor) -> SMPLXParams:
    """Rest pose for each row of ``betas`` (B, num_betas)."""
    params = body.zero_params(len(betas))
    for name, axis_angle in _ARMS_DOWN.items():
        i = JOINT_INDEX[name]
        params.body_pose[:, 3 * (i - 1):3 * i] = torch.tensor(axis_angle)
    # Hand poses list index, middle, pinky, ring, thumb (3 joints each); curl the first 12.
    params.left_hand_pose.view(-1, 15, 3)[:, :12, 2] = -_REST_FINGER_CURL
    params.right_hand_pose.view(-1, 15, 3)[:, :12, 2] = _REST_FINGER_CURL
    params.betas = betas.to(params.betas.dtype)
    return params


def rest_params(body: BodyModel, signer: Signer, num_frames: int = 1) -> SMPLXParams:
    """(num_frames,) rest pose of ``signer``: arms relaxed by the sides, hands flat and
    slightly curled, neutral face, the signer's betas."""
    num_frames = _positive_int(num_frames, "num_frames")
    if body.num_betas < NUM_BETAS:
        raise InvalidInputError(f"the body model has {body.num_betas} shape coefficients; "
                                f"signers need {NUM_BETAS}")
    betas = torch.zeros(num_frames, body.num_betas)
    betas[:, :NUM_BETAS] = torch.tensor(signer.betas)
    return _rest_pose(body, betas)


def _signer_renderer(renderer: MeshRenderer, signer: Signer) -> MeshRenderer:
    """``renderer`` with the signer's background.

    A MeshRenderer holds only settings (its GL state is per process and shared), so a
    copy costs a few microseconds, and the renderer already fills uncovered pixels
    with its background; compositing afterwards through the mask would be a second
    pass over every frame.
    """
    return MeshRenderer(renderer.width, renderer.height, background=signer.background,
                        ambient=renderer.ambient, light_direction=renderer.light_direction,
                        near=renderer.near, far=renderer.far)


def render_signer_frames(vertices, body: BodyModel, signer: Signer, camera: PinholeCamera,
                         renderer: MeshRenderer) -> np.ndarray:
    """(T,H,W,3) uint8 frames of ``signer`` (their colours and background).

    Args:
        vertices: (T,V,3) posed vertices in metres (numpy or torch).
        renderer: gives the size and lighting; its own background is not used.
    """
    if not isinstance(renderer, MeshRenderer):
        raise InvalidInputError(f"renderer must be a MeshRenderer, got "
                                f"{type(renderer).__name__}")
    vertices = body.vertex_array(vertices)
    colors = signer_vertex_colors(signer, body)
    return _signer_renderer(renderer, signer).render(
        vertices, body.faces.numpy(), camera, vertex_colors=colors).rgb


def render_reference(signer: Signer, body: BodyModel,
                     renderer_or_size: MeshRenderer | int | tuple[int, int]) -> np.ndarray:
    """(H,W,3) uint8 reference image of ``signer``: rest pose, neutral face, their
    background, seen by :func:`signing_camera`.

    ``renderer_or_size``: a MeshRenderer (its size and lighting), a square size, or
    (height, width).
    """
    if isinstance(renderer_or_size, MeshRenderer):
        renderer = renderer_or_size
    else:
        size = renderer_or_size
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            size = (size, size)
        if not (isinstance(size, tuple) and len(size) == 2):
            raise InvalidInputError("renderer_or_size must be a MeshRenderer, an int or "
                                    f"(height, width), got {renderer_or_size!r}")
        renderer = MeshRenderer(size[1], size[0])
    camera = signing_camera(renderer.width, renderer.height)
    with torch.no_grad():
        vertices = body(rest_params(body, signer)).vertices
    return render_signer_frames(vertices, body, signer, camera, renderer)[0]
