"""From a sequence of sign forms to SMPL-X parameters per frame.

The timeline is: rest hold, then for every sign a transition (movement epenthesis) and
the stroke, then a transition back to rest and a final hold. Strokes follow the sign's
location, movement path, palm orientation and handshape; transitions interpolate hand
position with a minimum-jerk profile, orientation by slerp and handshape angle by
angle, with the handshape change finishing early (anticipatory coarticulation). Arms
are solved by hinge-elbow IK (``kinematics.py``). Non-manual markers drive head pose,
jaw and expression; small smooth noise makes the body sway. All geometry is computed
for a right-handed signer and mirrored for left-handed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from signgen.body import OUTPUT_JOINT_NAMES, BodyModel, SMPLXParams
from signgen.body.skeleton import JOINT_INDEX, NUM_JOINTS, mirror_joint
from signgen.data.synthsign.handshapes import RELAXED, angles_to_hand_pose, handshape_angles
from signgen.data.synthsign.kinematics import chain_fk, solve_arm
from signgen.data.synthsign.phonology import (
    HANDSHAPES,
    LOCATIONS,
    MOVEMENTS,
    ORIENTATIONS,
    SignForm,
)
from signgen.errors import InvalidInputError

_MIRROR = np.array([-1.0, 1.0, 1.0])
# The right hand's rest frame (T-pose): fingers -X, palm normal -Y.
_RIGHT_REST_FINGERS, _RIGHT_REST_PALM = np.array([-1.0, 0, 0]), np.array([0, -1.0, 0])
_BASE_HAND = {"palm": (0.0, 1.0, 0.0), "fingers": (-0.7, 0.0, 0.7)}  # left hand, palm up
_SPINE_CHAIN = ["pelvis", "spine1", "spine2", "spine3"]
_EXPRESSION = {"smile": 0, "brows_up": 1, "brows_down": 2, "pucker": 3, "puff": 4}

REST_HOLD_S = 0.35
TRANSITION_S = (0.16, 0.45)
LETTER_TRANSITION_S = 0.08
HAND_SPEED_M_PER_S = 1.1


@dataclass
class SignerMotionStyle:
    """The parts of a signer that shape motion (see ``signers.Signer``)."""

    betas: tuple[float, ...]
    handedness: str = "right"
    speed: float = 1.0
    space_scale: float = 1.0


@dataclass
class MotionClip:
    """params: SMPLXParams of T frames; gloss_spans: (gloss, first, last+1 frame) of each
    sign's strokes; frame_gloss (T,) int: index into gloss_spans, -1 outside strokes."""

    params: SMPLXParams
    fps: float
    gloss_spans: list[tuple[str, int, int]]
    frame_gloss: np.ndarray = field(repr=False)

    @property
    def num_frames(self) -> int:
        return self.params.batch_size


@dataclass
class _HandTrack:
    """One hand over n frames: wrist-independent 'action point' positions (n,3), global
    hand rotations and handshape angles (n,20)."""

    position: np.ndarray
    rotation: Rotation
    angles: np.ndarray


def _min_jerk(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10 - 15 * u + 6 * u * u)


def _hand_rotation(palm, fingers, side: str = "right") -> Rotation:
    """Global rotation taking the rest hand frame onto (palm normal, finger direction)."""
    palm, fingers = np.asarray(palm, float), np.asarray(fingers, float)
    rest_f, rest_p = _RIGHT_REST_FINGERS, _RIGHT_REST_PALM
    if side == "left":
        rest_f, rest_p = rest_f * _MIRROR, rest_p * _MIRROR

    def frame(f, p):
        f = f / np.linalg.norm(f)
        p = p - f * np.dot(f, p)
        p /= np.linalg.norm(p)
        return np.stack([f, p, np.cross(f, p)], axis=1)

    return Rotation.from_matrix(frame(fingers, palm) @ frame(rest_f, rest_p).T)


def _mirror_rotation(rot: Rotation) -> Rotation:
    """Reflection x -> -x of a rotation: M R M (as an axis-angle: (x, -y, -z))."""
    return Rotation.from_rotvec(rot.as_rotvec() * np.array([1.0, -1.0, -1.0]))


class MotionPlanner:
    """Turns sign forms into SMPL-X motion for a signer; caches per-signer geometry."""

    def __init__(self, body: BodyModel, fps: float = 12.0) -> None:
        if fps <= 0:
            raise InvalidInputError(f"fps must be positive, got {fps}")
        self.body = body
        self.fps = float(fps)
        self._cache: dict[tuple[float, ...], tuple[np.ndarray, dict[str, np.ndarray]]] = {}

    # -- per-signer geometry ---------------------------------------------------------
    def _geometry(self, betas: tuple[float, ...]):
        """Rest joints (55,3) and, per handshape, the right hand's action point (the
        centroid of knuckles and fingertips) relative to the wrist, in the rest frame."""
        key = tuple(round(float(b), 6) for b in betas)
        if key not in self._cache:
            names = [RELAXED, *HANDSHAPES]
            params = self.body.zero_params(len(names))
            params.betas[:] = torch.tensor(betas, dtype=params.betas.dtype)
            angles = np.stack([handshape_angles(n) for n in names])
            params.right_hand_pose = torch.tensor(angles_to_hand_pose(angles, "right"),
                                                  dtype=params.betas.dtype)
            with torch.no_grad():
                joints = self.body(params).joints.numpy().astype(np.float64)
            tips = [OUTPUT_JOINT_NAMES.index(f"right_{f}") for f in
                    ("thumb", "index", "middle", "ring", "pinky")]
            knuckles = [JOINT_INDEX[f"right_{f}1"] for f in ("index", "middle", "ring", "pinky")]
            wrist = joints[:, JOINT_INDEX["right_wrist"]]
            action = joints[:, tips + knuckles].mean(axis=1) - wrist
            self._cache[key] = (joints[0, :NUM_JOINTS], dict(zip(names, action, strict=True)))
        return self._cache[key]

    # -- strokes -------------------------------------------------------------------------
    def _location(self, rest: np.ndarray, name: str, scale: float) -> np.ndarray:
        spec = LOCATIONS[name]
        anchor = rest[JOINT_INDEX[spec["anchor"]]]
        offset = np.asarray(spec["offset"], float)
        if name.startswith("neutral"):
            offset = offset * scale
        return anchor + offset

    @staticmethod
    def _path(form: SignForm, s: np.ndarray, scale: float):
        """Offsets (n,3), twist (n,) radians and finger wiggle (n,) over progress s."""
        spec = MOVEMENTS[form.movement]
        kind, r = spec["kind"], form.repeat
        amp = spec.get("amplitude", 0.0)
        offset = np.zeros((len(s), 3))
        twist = np.zeros(len(s))
        wiggle = np.zeros(len(s))
        cycle = 0.5 - 0.5 * np.cos(2 * np.pi * s * r)  # 0 -> 1 -> 0, r times
        one_way = _min_jerk(s) if r == 1 else cycle
        if kind in ("line", "arc", "zigzag"):
            direction = np.asarray(spec["direction"], float)
            amp *= scale
            offset = np.outer(one_way, direction * amp)
            if kind == "arc":
                offset += np.outer(np.sin(np.pi * one_way), np.asarray(spec["bulge"]) * 0.35 * amp)
            if kind == "zigzag":
                side = np.array([1.0, 0, 0]) if abs(direction[0]) < 0.5 else np.array([0, 1.0, 0])
                tri = 2 * np.abs((3 * s * r) % 1 - 0.5) - 0.5
                offset = np.outer(s, direction * amp) + np.outer(tri, side * 0.3 * amp)
        elif kind == "circle":
            normal = np.asarray(spec["normal"], float)
            e1 = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0, 0])
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(normal, e1)
            phase = 2 * np.pi * s * r
            offset = scale * amp * (np.outer(np.cos(phase) - 1, e1) + np.outer(np.sin(phase), e2))
        elif kind == "tap":
            direction = np.asarray(spec["direction"], float)
            offset = -np.outer(1 - cycle, direction * amp * scale)
        elif kind == "wiggle":
            wiggle = amp * np.sin(2 * np.pi * 2 * r * s)
        elif kind == "twist":
            twist = amp * ((_min_jerk(s) if r == 1 else cycle) - 0.5)
        return offset, twist, wiggle

    def _stroke(self, form: SignForm, n: int, rest, style, rng):
        """(dominant, non-dominant) _HandTracks of one stroke of n frames."""
        s = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
        scale = style.space_scale
        angles = handshape_angles(form.handshape) + rng.normal(0, 0.03, 20)
        orient = ORIENTATIONS[form.orientation]
        rotation0 = _hand_rotation(orient["palm"], orient["fingers"])
        jitter = rng.normal(0, 0.008, 3)
        base = None
        if form.hands == "base":
            base_pos = self._location(rest, "neutral_low", scale) * _MIRROR + (0.02, 0, 0)
            base_rot = _hand_rotation(_BASE_HAND["palm"], _BASE_HAND["fingers"], "left")
            base_angles = handshape_angles(form.base_handshape)
            base = _HandTrack(np.repeat(base_pos[None], n, 0), Rotation.concatenate([base_rot] * n),
                              np.repeat(base_angles[None], n, 0))
        if form.location == "palm":
            point = base.position[0] + np.array([0.0, 0.05, 0.0])
        else:
            point = self._location(rest, form.location, scale)
        if form.hands == "symmetric":
            point = point - np.array([max(point[0] + 0.09, 0.0), 0, 0])  # keep hands apart
        offset, twist, wiggle = self._path(form, s, scale)
        position = point + jitter + offset
        fingers_dir = rotation0.apply(_RIGHT_REST_FINGERS)
        rotation = Rotation.from_rotvec(np.outer(twist, fingers_dir)) * rotation0
        track_angles = np.repeat(angles[None], n, 0)
        for k in range(4):  # wiggle: the four fingers flex in a travelling wave
            track_angles[:, 4 * k] += wiggle * np.cos(k * np.pi / 2) + np.abs(wiggle) * 0.5
        dominant = _HandTrack(position, rotation, track_angles)
        if base is not None:
            other = base
        elif form.hands == "symmetric":
            other = _HandTrack(position * _MIRROR, _mirror_rotation(rotation), track_angles.copy())
        else:
            other = None
        return dominant, other

    @staticmethod
    def _rest_track(rest, action, side: str, n: int) -> _HandTrack:
        """Hands hanging by the sides, relaxed, palms toward the thighs."""
        shoulder = rest[JOINT_INDEX[f"{side}_shoulder"]]
        sign = 1.0 if side == "left" else -1.0
        arm = np.linalg.norm(rest[JOINT_INDEX[f"{side}_wrist"]] - shoulder)
        wrist = shoulder + np.array([sign * 0.1, -0.93 * arm, 0.08])
        rot = _hand_rotation((-sign, 0.0, 0.1), (0.0, -1.0, 0.15), side)
        point = wrist + rot.apply(action[RELAXED] * (_MIRROR if side == "left" else 1.0))
        return _HandTrack(np.repeat(point[None], n, 0), Rotation.concatenate([rot] * n),
                          np.repeat(handshape_angles(RELAXED)[None], n, 0))

    # -- the whole clip ----------------------------------------------------------------
    def plan(self, signs: list[tuple[str, list[SignForm]]], style: SignerMotionStyle,
             rng: np.random.Generator, sentence_nonmanuals: list[str | None] | None = None
             ) -> MotionClip:
        """Motion for ``signs``: (gloss, forms) pairs (several forms for a fingerspelled
        word). ``sentence_nonmanuals`` adds one marker per gloss (e.g. head_shake)."""
        if not signs:
            raise InvalidInputError("cannot plan motion for an empty sign sequence")
        if sentence_nonmanuals is not None and len(sentence_nonmanuals) != len(signs):
            raise InvalidInputError("sentence_nonmanuals must have one entry per gloss")
        if style.handedness not in ("right", "left"):
            raise InvalidInputError(f"handedness must be 'right' or 'left', got "
                                    f"{style.handedness!r}")
        rest, action = self._geometry(style.betas)
        fps, speed = self.fps, style.speed
        rest_r = self._rest_track(rest, action, "right", 1)
        rest_l = self._rest_track(rest, action, "left", 1)

        # Segments: ("hold"|"stroke"|"move", duration, payload)
        strokes = []
        for g, (gloss, forms) in enumerate(signs):
            for k, form in enumerate(forms):
                duration = form.duration * rng.uniform(0.9, 1.1) / speed
                strokes.append((g, gloss, form, duration, k > 0))
        frames_r: list[_HandTrack] = []
        frames_l: list[_HandTrack | None] = []
        frame_gloss: list[int] = []
        frame_form: list[SignForm | None] = []

        def emit(track_r, track_l, gloss_index, form):
            frames_r.append(track_r)
            frames_l.append(track_l)
            frame_gloss.extend([gloss_index] * len(track_r.position))
            frame_form.extend([form] * len(track_r.position))

        def n_frames(seconds: float) -> int:
            return max(1, int(round(seconds * fps)))

        hold_r = self._rest_track(rest, action, "right", n_frames(REST_HOLD_S))
        hold_l = self._rest_track(rest, action, "left", n_frames(REST_HOLD_S))
        emit(hold_r, hold_l, -1, None)
        prev_r, prev_l = rest_r, rest_l
        for g, _gloss, form, duration, within_word in strokes:
            dom, other = self._stroke(form, n_frames(duration), rest, style, rng)
            other_start = other if other is not None else rest_l
            distance = np.linalg.norm(dom.position[0] - prev_r.position[-1])
            if within_word:
                move_s = LETTER_TRANSITION_S / speed
            else:
                move_s = np.clip(0.1 + distance / HAND_SPEED_M_PER_S, *TRANSITION_S) / speed
            n_move = n_frames(move_s)
            emit(_blend(prev_r, dom, n_move), _blend(prev_l, other_start, n_move), -1, form)
            if other is None:
                other = _HandTrack(np.repeat(rest_l.position, len(dom.position), 0),
                                   Rotation.concatenate([rest_l.rotation] * len(dom.position)),
                                   np.repeat(rest_l.angles, len(dom.position), 0))
            emit(dom, other, g, form)
            prev_r, prev_l = _last(dom), _last(other)
        n_back = n_frames(0.4 / speed)
        emit(_blend(prev_r, rest_r, n_back), _blend(prev_l, rest_l, n_back), -1, None)
        emit(hold_r, hold_l, -1, None)

        right, left = _concat(frames_r), _concat(frames_l)
        frame_gloss_arr = np.asarray(frame_gloss)
        params = self._to_params(rest, right, left, action, style, rng, frame_gloss_arr,
                                 frame_form, signs, sentence_nonmanuals)
        spans = []
        for g, (gloss, _) in enumerate(signs):
            idx = np.flatnonzero(frame_gloss_arr == g)
            spans.append((gloss, int(idx[0]), int(idx[-1]) + 1))
        return MotionClip(params=params, fps=fps, gloss_spans=spans, frame_gloss=frame_gloss_arr)

    def _to_params(self, rest, right: _HandTrack, left: _HandTrack, action, style, rng,
                   frame_gloss, frame_form, signs, sentence_nonmanuals) -> SMPLXParams:
        n = len(right.position)
        t = np.arange(n) / self.fps
        local: dict[str, Rotation] = {}
        # Body sway: smooth low-frequency noise on the spine, neck and head.
        for name, amp in (("spine1", 0.015), ("spine2", 0.015), ("spine3", 0.02),
                          ("neck", 0.02), ("head", 0.03)):
            local[name] = Rotation.from_rotvec(_smooth_noise(rng, n, self.fps, amp))
        pos, glob = chain_fk(rest, local, [*_SPINE_CHAIN, "left_collar", "right_collar",
                                           "left_shoulder", "right_shoulder"])
        expression = np.zeros((n, self.body.num_expression))
        jaw = np.zeros((n, 3))
        head_extra = np.zeros((n, 3))
        # Non-manual markers: lexical ones on their strokes, sentence ones on their glosses.
        markers = np.full(n, None, dtype=object)
        for i, form in enumerate(frame_form):
            if form is not None and frame_gloss[i] >= 0 and form.nonmanual:
                markers[i] = form.nonmanual
        if sentence_nonmanuals:
            for g, marker in enumerate(sentence_nonmanuals):
                if marker:
                    idx = np.flatnonzero(frame_gloss == g)
                    lo, hi = max(idx[0] - 2, 0), min(idx[-1] + 3, n)
                    markers[lo:hi] = [m if m else marker for m in markers[lo:hi]]
        for marker in {m for m in markers if m}:
            env = _envelope(markers == marker, self.fps)
            if marker == "head_shake":
                head_extra[:, 1] += env * 0.25 * np.sin(2 * np.pi * 2.2 * t)
            elif marker == "head_nod":
                head_extra[:, 0] += env * 0.15 * (0.5 - 0.5 * np.cos(2 * np.pi * 1.8 * t))
            elif marker == "mouth_open":
                jaw[:, 0] += env * 0.25
            elif _EXPRESSION.get(marker, 99) < expression.shape[1]:
                expression[:, _EXPRESSION[marker]] += env * 1.8
        local["head"] = Rotation.from_rotvec(head_extra) * local["head"]

        rot_locals = {}
        for side, track in (("right", right), ("left", left)):
            # Wrist target: the action point minus the rotated action offset.
            mirror = _MIRROR if side == "left" else np.ones(3)
            offsets = _action_offsets(track.angles, action) * mirror
            hand_action = track.rotation.apply(offsets)
            wrist_target = track.position - hand_action
            sh, el, wr, _ = solve_arm(side, rest, pos[f"{side}_shoulder"],
                                      glob[f"{side}_collar"], wrist_target, track.rotation)
            rot_locals[f"{side}_shoulder"], rot_locals[f"{side}_elbow"] = sh, el
            rot_locals[f"{side}_wrist"] = wr
        local.update(rot_locals)
        body_pose = np.zeros((n, NUM_JOINTS, 3))
        for name, rot in local.items():
            body_pose[:, JOINT_INDEX[name]] = rot.as_rotvec()
        hands = {side: angles_to_hand_pose(track.angles, side)
                 for side, track in (("right", right), ("left", left))}
        if style.handedness == "left":
            body_pose = body_pose[:, [mirror_joint(j) for j in range(NUM_JOINTS)]]
            body_pose *= np.array([1.0, -1.0, -1.0])
            hands = {"right": hands["left"] * np.tile([1.0, -1.0, -1.0], 15),
                     "left": hands["right"] * np.tile([1.0, -1.0, -1.0], 15)}
            jaw = jaw * np.array([1.0, -1.0, -1.0])
        params = self.body.zero_params(n)
        dtype = params.betas.dtype

        def tensor(x):
            return torch.as_tensor(np.asarray(x), dtype=dtype)

        params.body_pose = tensor(body_pose[:, 1:22].reshape(n, -1))
        params.global_orient = tensor(body_pose[:, 0])
        params.left_hand_pose = tensor(hands["left"])
        params.right_hand_pose = tensor(hands["right"])
        params.jaw_pose = tensor(jaw)
        params.expression = tensor(expression)
        params.betas = tensor(np.tile(np.asarray(style.betas, float)[: params.betas.shape[1]],
                                      (n, 1)))
        return params


def _action_offsets(angles: np.ndarray, action: dict[str, np.ndarray]) -> np.ndarray:
    """(n,3) action-point offsets for per-frame handshape angles: the offset of the
    nearest named handshape (handshapes change smoothly, so this is piecewise smooth)."""
    names = list(action)
    table = np.stack([handshape_angles(n) for n in names])
    nearest = np.argmin(((angles[:, None, :] - table[None]) ** 2).sum(-1), axis=1)
    offsets = np.stack([action[n] for n in names])[nearest]
    # Smooth the switch between neighbouring shapes over a few frames.
    kernel = np.array([0.25, 0.5, 0.25])
    padded = np.pad(offsets, ((1, 1), (0, 0)), mode="edge")
    return kernel[0] * padded[:-2] + kernel[1] * padded[1:-1] + kernel[2] * padded[2:]


def _blend(a: _HandTrack, b: _HandTrack, n: int) -> _HandTrack:
    """n in-between frames from the last state of a to the first state of b."""
    u = (np.arange(1, n + 1) / (n + 1))
    w = _min_jerk(u)[:, None]
    w_shape = _min_jerk(np.clip(u * 1.4, 0, 1))[:, None]  # handshape leads: coarticulation
    pos = (1 - w) * a.position[-1] + w * b.position[0]
    angles = (1 - w_shape) * a.angles[-1] + w_shape * b.angles[0]
    keys = Rotation.concatenate([a.rotation[-1], b.rotation[0]])
    rot = Slerp([0.0, 1.0], keys)(w[:, 0])
    return _HandTrack(pos, rot, angles)


def _last(track: _HandTrack) -> _HandTrack:
    return _HandTrack(track.position[-1:], track.rotation[-1:], track.angles[-1:])


def _concat(tracks: list[_HandTrack]) -> _HandTrack:
    return _HandTrack(np.concatenate([t.position for t in tracks]),
                      Rotation.concatenate([t.rotation for t in tracks]),
                      np.concatenate([t.angles for t in tracks]))


def _smooth_noise(rng: np.random.Generator, n: int, fps: float, amp: float) -> np.ndarray:
    """(n,3) smooth noise: random values every 0.6 s, cosine-interpolated."""
    step = max(int(0.6 * fps), 1)
    keys = rng.normal(0, amp, (n // step + 2, 3))
    i = np.arange(n) / step
    lo = np.floor(i).astype(int)
    frac = (0.5 - 0.5 * np.cos(np.pi * (i - lo)))[:, None]
    return keys[lo] * (1 - frac) + keys[lo + 1] * frac


def _envelope(active: np.ndarray, fps: float) -> np.ndarray:
    """0..1 ramp in and out of the frames where ``active`` is True (0.15 s ramps)."""
    ramp = max(int(0.15 * fps), 1)
    x = active.astype(float)
    kernel = np.ones(2 * ramp + 1) / (2 * ramp + 1)
    return np.clip(np.convolve(x, kernel, mode="same"), 0, 1)
