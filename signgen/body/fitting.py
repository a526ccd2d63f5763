"""Fit SMPL-X parameters to 2-D and/or 3-D keypoint sequences by optimisation.

The SMPLify-X recipe, batched over all frames of a sequence: staged fitting (global
orientation + translation from the torso points, then the body, then a temporally
smooth search over hand orientations and everything with the hands) of

- a robust (Geman-McClure) keypoint error weighted by confidence: 2-D reprojection
  error through a known :class:`PinholeCamera` and/or 3-D error against metric
  keypoints (2-D residuals are converted from pixels to metres at the subject's initial
  depth, so one robust scale serves both);
- a temporal prior on the acceleration (optionally velocity) of the pose parameters;
- box joint limits on axis-angle components (:data:`JOINT_LIMITS`: no backward elbow or
  knee bend, no finger hyperextension);
- pose and shape magnitude priors (towards :data:`NEUTRAL_POSE` and the mean shape), and
  for 2-D-only input an upright, camera-facing prior on the global orientation.

The optimiser is Levenberg-Marquardt with iteratively reweighted least squares: every
frame has its own 168 x 168 Gauss-Newton system (pose and translation), coupled to the
shared shape through a Schur complement.  L-BFGS on the stacked (T x 168) problem was
tried first: its low-rank curvature cannot capture T independent blocks and it needed
hundreds of evaluations.  The model is evaluated by :class:`JointModel`
(``signgen.body.joint_model``), which reproduces ``BodyModel``'s output joints exactly
from the same tensors, with their analytic Jacobian, at about a millisecond per frame
and iteration.  The 17 face-contour keypoints are not used: smplx picks them from a
head-yaw lookup table spanning thousands of vertices of the official mesh.

The temporal prior's Gauss-Newton coupling between frames is dropped (each frame sees
its neighbours as fixed), which makes a strong ``accel_weight`` converge slowly; the
default is weak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from signgen.body.joint_model import (
    FINGERS,
    HAND_OUTPUTS,
    NUM_FIT_JOINTS,
    NUM_TRUNK_JOINTS,
    OUTPUT_INDEX,
    SIDES,
    JointModel,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
)
from signgen.body.keypoints import COCO_WHOLEBODY_FROM_SMPLX
from signgen.body.model import NUM_OUTPUT_JOINTS, BodyModel, SMPLXParams
from signgen.body.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS
from signgen.errors import InvalidInputError
from signgen.render.camera import PinholeCamera

_TORSO = tuple(OUTPUT_INDEX[n] for n in (
    "pelvis", "left_hip", "right_hip", "spine1", "spine2", "spine3", "neck", "left_collar",
    "right_collar", "left_shoulder", "right_shoulder"))

_FACE_OUTPUTS = tuple(range(76, NUM_FIT_JOINTS))

# Box limits (radians) on the axis-angle components (x, y, z) of the LEFT joints; the
# right side mirrors them ((x, y, z) -> (x, -y, -z)).  Axes are SMPL-X's rest frame
# (left arm along +X, palm down, body facing +Z): the left elbow bends forward with
# y < 0, knees bend with x > 0, left fingers curl with z < 0 (so z > 0 is
# hyperextension).  Generous on the anatomical side: they exist to pick the plausible
# solution of a depth ambiguity, not to pull real poses.
_FINGER_BASE = ((-0.3, 0.3), (-0.6, 0.6), (-2.3, 0.35))
_FINGER_MID = ((-0.15, 0.15), (-0.15, 0.15), (-2.3, 0.1))
JOINT_LIMITS: dict[str, tuple[tuple[float, float], ...]] = {
    "left_knee": ((-0.1, 2.7), (-0.3, 0.3), (-0.3, 0.3)),
    "left_elbow": ((-1.2, 1.2), (-3.0, 0.1), (-0.4, 0.4)),
    **{f"left_{f}1": _FINGER_BASE for f in FINGERS[1:]},
    **{f"left_{f}{k}": _FINGER_MID for f in FINGERS[1:] for k in (2, 3)},
    "left_thumb1": ((-0.8, 1.9), (-0.7, 0.7), (-0.9, 0.9)),
    "left_thumb2": ((-0.3, 1.0), (-0.3, 0.3), (-1.2, 0.3)),
    "left_thumb3": ((-0.3, 1.0), (-0.3, 0.3), (-1.2, 0.3)),
}

#: The mean of the pose prior and the starting pose: arms down and forward, elbows bent.
NEUTRAL_POSE: dict[str, tuple[float, float, float]] = {
    "left_shoulder": (0.0, -0.3, -1.1), "right_shoulder": (0.0, 0.3, 1.1),
    "left_elbow": (0.0, -1.0, 0.0), "right_elbow": (0.0, 1.0, 0.0),
}

_DAMPING_FLOOR = 1e-4  # added to the diagonal: m^2 per rad^2 (~ a point 1 cm from a joint)
_MAX_STEP = 1.0  # radians a joint may turn in one step (a trust region)


def _limit_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """(165,) lower and upper bounds of the full pose (+-inf where unlimited)."""
    lo = torch.full((NUM_JOINTS, 3), -math.inf)
    hi = torch.full((NUM_JOINTS, 3), math.inf)
    for name, box in JOINT_LIMITS.items():
        box_t = torch.tensor(box)
        lo[JOINT_INDEX[name]], hi[JOINT_INDEX[name]] = box_t[:, 0], box_t[:, 1]
        right = JOINT_INDEX["right" + name[4:]]
        lo[right] = torch.stack([box_t[0, 0], -box_t[1, 1], -box_t[2, 1]])
        hi[right] = torch.stack([box_t[0, 1], -box_t[1, 0], -box_t[2, 0]])
    return lo.reshape(-1), hi.reshape(-1)


def _neutral_pose() -> torch.Tensor:
    """(55,3) axis-angle of NEUTRAL_POSE."""
    pose = torch.zeros(NUM_JOINTS, 3)
    for name, value in NEUTRAL_POSE.items():
        pose[JOINT_INDEX[name]] = torch.tensor(value)
    return pose


def _unwrap(pose: torch.Tensor) -> torch.Tensor:
    """(T,J,3) axis-angle made continuous in time: each rotation takes whichever of its two
    nearest representations (angle a or a - 2 pi about the same axis) is closer to the
    previous frame's, so that temporal differences measure rotation changes."""
    out = [pose[0]]
    angle = torch.linalg.norm(pose, dim=-1, keepdim=True)
    other = pose - 2 * math.pi * pose / angle.clamp_min(1e-12)
    for t in range(1, len(pose)):
        closer = (((other[t] - out[-1]) ** 2).sum(-1, keepdim=True)
                  < ((pose[t] - out[-1]) ** 2).sum(-1, keepdim=True)) & (angle[t] > 1e-6)
        out.append(torch.where(closer, other[t], pose[t]))
    return torch.stack(out)


def _super_fibonacci(n: int) -> torch.Tensor:
    """(n,3,3) rotations spread evenly over SO(3) (Alexa, "Super-Fibonacci Spirals", 2022)."""
    s = torch.arange(n, dtype=torch.float64) + 0.5
    r, big_r = torch.sqrt(s / n), torch.sqrt(1 - s / n)
    alpha, beta = 2 * math.pi * s / math.sqrt(2), 2 * math.pi * s / 1.533751168755204288118041
    w, x, y, z = r * torch.sin(alpha), r * torch.cos(alpha), big_r * torch.sin(beta), \
        big_r * torch.cos(beta)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(
        n, 3, 3).float()


_WRIST_CANDIDATES = _super_fibonacci(512)  # every rotation within ~27 degrees of one
# Squared angle (rad^2) between every two candidates, times the cost of turning a hand
# between frames: m^2 of palm-keypoint error per rad^2.
_WRIST_TURN_COST = 1e-3 * torch.arccos(((torch.einsum(
    "aij,bij->ab", _WRIST_CANDIDATES, _WRIST_CANDIDATES) - 1) / 2).clamp(-1, 1)) ** 2


def _smoothest_path(score: torch.Tensor, transition: torch.Tensor) -> torch.Tensor:
    """Viterbi: the states (T,) minimising sum_t score[t, s_t] + transition[s_t-1, s_t]
    for per-frame costs score (T,N) and transition costs (N,N)."""
    total, back = score[0], []
    for t in range(1, len(score)):
        best, arg = (total[:, None] + transition).min(0)
        total = best + score[t]
        back.append(arg)
    path = [int(total.argmin())]
    for arg in reversed(back):
        path.append(int(arg[path[-1]]))
    return torch.tensor(path[::-1])


def gmof(squared: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure penalty of squared residuals (metres^2): ~r^2 for r << sigma,
    saturating at sigma^2."""
    return sigma**2 * squared / (squared + sigma**2)


def gmof_weight(squared: torch.Tensor, sigma: float) -> torch.Tensor:
    """d gmof / d squared: the iteratively-reweighted-least-squares weight, 1 at 0."""
    return sigma**4 / (squared + sigma**2) ** 2


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings.  Weights multiply per-frame sums in metres^2 (keypoints) or
    radians^2 and metres^2 (pose and translation priors)."""

    #: Levenberg-Marquardt iterations of the stages: torso (orientation + translation),
    #: body (+ body pose and shape), everything (+ wrists and fingers).
    iters_torso: int = 3
    iters_body: int = 6
    iters_all: int = 10
    #: Fit the shape coefficients (shared over the sequence) unless ``betas`` are given.
    fit_betas: bool = True
    #: Fit one global scale from the model to the 3-D keypoints' units.
    fit_scale: bool = False
    #: Geman-McClure scale (metres) of the last stage, and of the first two, which start
    #: far from the answer: a wide basin there, robustness to outliers at the end.
    robust_sigma: float = 0.1
    coarse_sigma: float = 1.0
    face_weight: float = 0.1  # relative weight of the 51 face landmarks
    pose_weight: float = 1e-5  # body pose towards NEUTRAL_POSE
    hand_pose_weight: float = 1e-6  # finger poses towards flat
    #: 2-D only: global orientation towards upright and facing the camera (as signers
    #: stand); monocular keypoints hardly tell a lean towards the camera.
    orient_weight: float = 1e-2
    betas_weight: float = 1e-5  # per frame
    limit_weight: float = 1e-1
    accel_weight: float = 1e-5  # second differences of pose (rad) and translation (m)
    velocity_weight: float = 0.0  # first differences of the same

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"{f.name} must be finite and >= 0, got {value}")
        for name in ("robust_sigma", "coarse_sigma"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass
class FitResult:
    """Fitted parameters of T frames.

    poses: (T,165) axis-angle in SMPL-X joint order (SynthSign's / AMASS ``poses``);
    betas: (S,) shared shape; transl: (T,3) metres; scale: model-to-3-D-keypoint scale
    (1 unless fitted); error_2d: (T,) confidence-weighted mean reprojection error in
    pixels (None without 2-D input; NaN for frames without keypoints); error_3d: (T,)
    the same for the 3-D keypoints, in their units; loss: the objective at the start of
    each stage and after each of its iterations (stages weigh different keypoints).
    """

    poses: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    scale: float
    error_2d: torch.Tensor | None
    error_3d: torch.Tensor | None
    loss: list[float] = field(default_factory=list)

    def params(self) -> SMPLXParams:
        """SMPLXParams of the T frames (neutral jaw, eyes and expression)."""
        return SMPLXParams.from_full_pose(self.poses, self.betas, transl=self.transl)


def _weights(conf, shape: tuple[int, int], name: str) -> torch.Tensor:
    """(T,K) float weights from bool/float confidence; InvalidInputError if malformed."""
    if conf is None:
        return torch.ones(shape)
    conf = conf if isinstance(conf, torch.Tensor) else torch.as_tensor(np.asarray(conf))
    if tuple(conf.shape) != shape:
        raise InvalidInputError(f"{name} must have shape {shape}, got {tuple(conf.shape)}")
    conf = conf.detach().float()
    if not torch.isfinite(conf).all() or (conf < 0).any():
        raise InvalidInputError(f"{name} must be finite and >= 0")
    return conf


def _points(points, ndim: int, name: str) -> torch.Tensor:
    points = points if isinstance(points, torch.Tensor) else torch.as_tensor(np.asarray(points))
    if points.ndim != 3 or points.shape[-1] != ndim:
        raise InvalidInputError(f"{name} must have shape (T, K, {ndim}), got "
                                f"{tuple(points.shape)}")
    if points.shape[0] == 0:
        raise InvalidInputError(f"{name} has no frames (T = 0)")
    if not points.is_floating_point():
        raise InvalidInputError(f"{name} must be floating point, got {points.dtype}")
    return points.detach().float()


def _check_finite(points: torch.Tensor, weights: torch.Tensor, name: str) -> torch.Tensor:
    """NaN/inf where the weight is > 0 is an error; where it is 0 the point is unused."""
    bad = ~torch.isfinite(points).all(-1) & (weights > 0)
    if bad.any():
        t, k = bad.nonzero()[0].tolist()
        raise InvalidInputError(f"{name} has NaN or infinite values at frame {t}, keypoint "
                                f"{k}, whose confidence is not 0")
    return torch.where(weights[..., None] > 0, points, torch.zeros_like(points))


# Per-frame unknowns, in this order: trunk pose (joints 0..24), translation, left and
# right finger poses; then the shared ones: betas, log-scale.
_TRUNK = slice(0, 3 * NUM_TRUNK_JOINTS + 3)
_HAND_COLS = {side: slice(_TRUNK.stop + 45 * s, _TRUNK.stop + 45 * (s + 1))
              for s, side in enumerate(SIDES)}
_NUM_FRAME = _TRUNK.stop + 90
#: Column of each full-pose component (165,) and of the translation (3,).
_POSE_COLS = torch.cat([torch.arange(3 * NUM_TRUNK_JOINTS), torch.arange(_TRUNK.stop, _NUM_FRAME)])
_TRANSL_COLS = torch.arange(3 * NUM_TRUNK_JOINTS, _TRUNK.stop)


class BodyFitter:
    """Fits SMPL-X sequences to keypoints with one BodyModel (see the module docstring).

    Args:
        body: the BodyModel (official SMPL-X or stand-in) whose parameters are fitted.
        config: FitConfig (defaults when None).
    """

    def __init__(self, body: BodyModel, config: FitConfig | None = None) -> None:
        self.body = body
        self.config = config or FitConfig()
        self.joint_model = JointModel(body)
        self.limit_lo, self.limit_hi = _limit_tensors()
        self.neutral = _neutral_pose()
        prior = torch.zeros(NUM_JOINTS)
        prior[1:22] = self.config.pose_weight
        prior[NUM_TRUNK_JOINTS:] = self.config.hand_pose_weight
        self.prior_weight = prior.repeat_interleave(3)  # (165,)

    def fit(self, keypoints2d=None, confidence2d=None, camera: PinholeCamera | None = None,
            keypoints3d=None, mask3d=None, joint_ids3d=None, groups3d=None,
            betas=None, init: SMPLXParams | None = None) -> FitResult:
        """Fit T frames.

        Args:
            keypoints2d: (T,133,2) COCO-WholeBody pixel coordinates (column, row), with
                ``confidence2d`` (T,133) bool or float >= 0 (None = all 1) and ``camera``.
            keypoints3d: (T,K,3) metres (or any unit with ``fit_scale``), with ``mask3d``
                (T,K) bool or float >= 0.  ``joint_ids3d`` (K,) names each point by its
                index in BodyModel's 144 output joints; default: the COCO-WholeBody
                layout for K = 133, the output joints themselves for K = 144.
            groups3d: (K,) ints; when given, each group's points are compared after
                subtracting their weighted centroid per frame (e.g. MediaPipe hand world
                landmarks, whose origin is the hand's centre), so translation is free.
            betas: (num_betas,) known shape: kept fixed instead of fitted.
            init: SMPLXParams of T frames to start from (e.g. a previous window's
                solution) instead of NEUTRAL_POSE, the torso alignment and the wrist
                search.
        Keypoints whose confidence is 0 are ignored entirely (NaN allowed there).
        Raises InvalidInputError for malformed input or when no keypoint has weight.
        """
        cfg = self.config
        data = self._prepare(keypoints2d, confidence2d, camera, keypoints3d, mask3d,
                             joint_ids3d, groups3d)
        if betas is not None:
            betas = torch.as_tensor(np.asarray(betas) if not isinstance(betas, torch.Tensor)
                                    else betas).detach().float()
            if betas.shape != (self.body.num_betas,) or not torch.isfinite(betas).all():
                raise InvalidInputError(f"betas must be {self.body.num_betas} finite values, "
                                        f"got shape {tuple(betas.shape)}")
        var = self._initial_variables(data["frames"], data, betas, init)
        if "k3" not in data:
            data["orient0"] = var["pose"][:, 0].clone()
        if "k2" in data:  # pixels -> metres at the subject's depth (a constant)
            _, depth = data["camera"].project(self._joints(var)[:, 0])
            data["px_to_m"] = float(depth.median().clamp_min(0.1)) / (
                0.5 * (data["camera"].fx + data["camera"].fy))
        shared_free = torch.zeros(self.body.num_betas + 1, dtype=torch.bool)
        shared_free[:-1] = betas is None and cfg.fit_betas
        shared_free[-1] = cfg.fit_scale and "k3" in data
        free = torch.zeros(_NUM_FRAME, dtype=torch.bool)
        free[_POSE_COLS[:3]] = free[_TRANSL_COLS] = True
        torso = torch.zeros(NUM_FIT_JOINTS)
        torso[list(_TORSO)] = 1
        body_rows = torch.ones(NUM_FIT_JOINTS)
        body_rows[list(HAND_OUTPUTS["left"] + HAND_OUTPUTS["right"])] = 0
        stages = [(cfg.iters_torso, free.clone(), torch.zeros_like(shared_free), torso,
                   cfg.coarse_sigma)]
        # Not the wrists yet: only the hand keypoints orient them.
        free[_POSE_COLS[3:3 * JOINT_INDEX["left_wrist"]]] = True
        stages.append((cfg.iters_body, free.clone(), shared_free, body_rows, cfg.coarse_sigma))
        free[_POSE_COLS[3 * JOINT_INDEX["left_wrist"]:3 * JOINT_INDEX["jaw"]]] = True
        free[_TRUNK.stop:] = True
        stages.append((cfg.iters_all, free, shared_free, torch.ones(NUM_FIT_JOINTS),
                       cfg.robust_sigma))
        loss_log: list[float] = []
        for stage, (iters, free_cols, shared, rows, sigma) in enumerate(stages):
            if stage == 2 and init is None:
                self._search_wrists(var, data)
            if iters > 0:
                data["sigma"] = sigma
                self._levenberg_marquardt(var, data, free_cols, shared, rows, iters, loss_log)
        joints = self._joints(var)
        err2, err3 = self._errors(joints, var, data)
        return FitResult(poses=var["pose"].reshape(len(joints), -1).clone(),
                         betas=var["betas"].clone(), transl=var["transl"].clone(),
                         scale=float(var["log_scale"].exp()), error_2d=err2, error_3d=err3,
                         loss=loss_log)

    # -- inputs ----------------------------------------------------------------------
    def _prepare(self, k2, c2, camera, k3, m3, ids3, groups3) -> dict:
        data: dict = {}
        if k2 is None and k3 is None:
            raise InvalidInputError("give keypoints2d (with a camera) and/or keypoints3d")
        if k2 is not None:
            if not isinstance(camera, PinholeCamera):
                raise InvalidInputError("keypoints2d needs camera=PinholeCamera(...)")
            k2 = _points(k2, 2, "keypoints2d")
            if k2.shape[1] != len(COCO_WHOLEBODY_FROM_SMPLX):
                raise InvalidInputError(f"keypoints2d must have the 133 COCO-WholeBody "
                                        f"keypoints, got {k2.shape[1]}")
            w2 = _weights(c2, tuple(k2.shape[:2]), "confidence2d")
            k2 = _check_finite(k2, w2, "keypoints2d")
            keep = self._used(COCO_WHOLEBODY_FROM_SMPLX, w2)
            data.update(frames=k2.shape[0], given=["k2"])
            if keep.any():
                data.update(k2=k2[:, keep], w2=w2[:, keep], camera=camera,
                            ids2=COCO_WHOLEBODY_FROM_SMPLX[keep])
        if k3 is not None:
            k3 = _points(k3, 3, "keypoints3d")
            if ids3 is None:
                if k3.shape[1] == len(COCO_WHOLEBODY_FROM_SMPLX):
                    ids3 = COCO_WHOLEBODY_FROM_SMPLX
                elif k3.shape[1] == NUM_OUTPUT_JOINTS:
                    ids3 = torch.arange(NUM_OUTPUT_JOINTS)
                else:
                    raise InvalidInputError(f"keypoints3d has {k3.shape[1]} points: pass "
                                            f"joint_ids3d (K,) to say which joints they are")
            ids3 = torch.as_tensor(ids3, dtype=torch.long)
            if (ids3.shape != (k3.shape[1],) or ids3.min() < 0
                    or ids3.max() >= NUM_OUTPUT_JOINTS):
                raise InvalidInputError(f"joint_ids3d must be {k3.shape[1]} indices in "
                                        f"[0, {NUM_OUTPUT_JOINTS})")
            if "frames" in data and k3.shape[0] != data["frames"]:
                raise InvalidInputError(f"keypoints2d has {data['frames']} frames, "
                                        f"keypoints3d {k3.shape[0]}")
            w3 = _weights(m3, tuple(k3.shape[:2]), "mask3d")
            k3 = _check_finite(k3, w3, "keypoints3d")
            keep = self._used(ids3, w3)
            data.update(frames=k3.shape[0], given=data.get("given", []) + ["k3"])
            if keep.any():
                data.update(k3=k3[:, keep], w3=w3[:, keep], ids3=ids3[keep])
            if groups3 is not None:
                groups3 = torch.as_tensor(groups3, dtype=torch.long)
                if groups3.shape != (k3.shape[1],):
                    raise InvalidInputError(f"groups3d must have shape ({k3.shape[1]},), "
                                            f"got {tuple(groups3.shape)}")
            if groups3 is not None and keep.any():
                data["groups3"] = torch.nn.functional.one_hot(
                    torch.unique(groups3[keep], return_inverse=True)[1]).float()  # (K,G)
        if "k2" not in data and "k3" not in data:
            raise InvalidInputError("no keypoint has non-zero confidence: nothing to fit")
        # Which rows (one per coordinate) belong to which keypoint, over both inputs.
        points = [torch.arange(data["k2"].shape[1]).repeat_interleave(2)] if "k2" in data else []
        if "k3" in data:
            start = data["k2"].shape[1] if "k2" in data else 0
            points.append(start + torch.arange(data["k3"].shape[1]).repeat_interleave(3))
        data["row_point"] = torch.cat(points)
        return data

    @staticmethod
    def _used(ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(K,) keypoints that take part: weighted in some frame, and not on the face
        contour (not modelled)."""
        return (weights > 0).any(0) & (ids < NUM_FIT_JOINTS)

    # -- variables -------------------------------------------------------------------
    def _initial_variables(self, t: int, data: dict, betas, init) -> dict:
        nb = self.body.num_betas
        if init is not None:
            if not isinstance(init, SMPLXParams) or init.batch_size != t:
                raise InvalidInputError(f"init must be SMPLXParams of {t} frames")
            init.validate(nb, self.body.num_expression)
            return {"pose": init.full_pose().reshape(t, NUM_JOINTS, 3).float().clone(),
                    "transl": init.transl.float().clone(), "log_scale": torch.zeros(1),
                    "betas": init.betas[0].float().clone() if betas is None else betas}
        var = {"pose": self.neutral.expand(t, -1, -1).clone(), "transl": torch.zeros(t, 3),
               "betas": torch.zeros(nb) if betas is None else betas,
               "log_scale": torch.zeros(1)}
        joints = self._joints(var)
        if "k3" in data and "groups3" not in data:
            self._align_3d(var, data, joints)
        elif "k2" in data:  # centred 3-D points leave the position to the 2-D ones
            self._align_2d(var, data, joints)
        var["pose"] = _unwrap(var["pose"])
        return var

    def _shape(self, var: dict) -> torch.Tensor:
        t = var["transl"].shape[0]
        return torch.cat([var["betas"].expand(t, -1), torch.zeros(t, self.body.num_expression)],
                         1)

    def _joints(self, var: dict) -> torch.Tensor:
        return self.joint_model(var["pose"], self._shape(var), var["transl"])

    @staticmethod
    def _rotate_root(var: dict, rot: torch.Tensor, pelvis: torch.Tensor,
                     target: torch.Tensor, model: torch.Tensor) -> None:
        """Turn the root by rot (T,3,3) about the pelvis (T,3) and move the body so that
        its point ``model`` (T,3) lands on ``target`` (T,3)."""
        orient = axis_angle_to_matrix(var["pose"][:, 0])
        var["pose"][:, 0] = matrix_to_axis_angle(rot @ orient)
        var["transl"] = target - (rot @ (model - pelvis)[..., None])[..., 0] - pelvis

    def _align_3d(self, var: dict, data: dict, joints: torch.Tensor) -> None:
        """Orientation, translation (and scale) per frame by Procrustes on the torso."""
        if "groups3" in data:
            return  # centred comparison: orientation and translation come from the fit
        model, target, w = joints[:, data["ids3"]], data["k3"], data["w3"]
        torso = w * torch.isin(data["ids3"], torch.tensor(_TORSO))
        use = torch.where((torso > 0).sum(1, keepdim=True) >= 3, torso, w)
        norm = use.sum(1, keepdim=True).clamp_min(1e-12)
        mc = (use[..., None] * model).sum(1) / norm
        tc = (use[..., None] * target).sum(1) / norm
        cov = torch.einsum("tk,tki,tkj->tij", use, target - tc[:, None], model - mc[:, None])
        u, s, vh = torch.linalg.svd(cov)
        sign = torch.ones_like(s)
        sign[:, 2] = torch.sign(torch.linalg.det(u @ vh))
        rot = u @ torch.diag_embed(sign) @ vh  # model -> target
        ok = (use > 0).sum(1) >= 3
        rot = torch.where(ok[:, None, None], rot, torch.eye(3))
        if self.config.fit_scale:
            spread = (use * ((model - mc[:, None]) ** 2).sum(-1)).sum(1)
            scale = ((s * sign).sum(-1) / spread.clamp_min(1e-12))[ok]
            if len(scale):
                var["log_scale"] = scale.median().clamp_min(1e-6).log().reshape(1)
        self._rotate_root(var, rot, joints[:, 0], tc / var["log_scale"].exp(), mc)

    def _align_2d(self, var: dict, data: dict, joints: torch.Tensor) -> None:
        """Face the camera upright; depth from the torso's size, position from its centre."""
        cam: PinholeCamera = data["camera"]
        k2, w2, ids = data["k2"], data["w2"], data["ids2"]
        torso = w2 * torch.isin(ids, torch.tensor(_TORSO))
        use = torso if torso.sum() > 0 else w2
        cam_rot = torch.tensor(cam.rotation, dtype=torch.float32)
        forward, up = -cam_rot[2], -cam_rot[1]  # towards the camera, image up
        rot = torch.stack([torch.linalg.cross(up, forward), up, forward], 1)
        # Facing the camera, the body's left shoulder is on the image right.
        left, right = (torch.nonzero(ids == OUTPUT_INDEX[f"{side}_shoulder"]).flatten()
                       for side in SIDES)
        if len(left) and len(right):
            both = (w2[:, left[0]] > 0) & (w2[:, right[0]] > 0)
            if both.any() and (k2[both, left[0], 0] - k2[both, right[0], 0]).median() < 0:
                rot = rot @ torch.diag(torch.tensor([-1.0, 1.0, -1.0]))
        pelvis = joints[:, 0]
        model = (rot @ (joints[:, ids] - pelvis[:, None])[..., None])[..., 0] + pelvis[:, None]
        norm = use.sum(1).clamp_min(1e-12)[:, None]
        pc = (use[..., None] * k2).sum(1) / norm
        mc = (use[..., None] * model).sum(1) / norm
        # Depth: RMS spread in pixels vs metres across the view axis.
        flat = (model - mc[:, None]) @ cam_rot[:2].T
        spread_m = ((use * (flat**2).sum(-1)).sum(1) / norm[:, 0]).sqrt()
        spread_px = ((use * ((k2 - pc[:, None]) ** 2).sum(-1)).sum(1) / norm[:, 0]).sqrt()
        has = ((use > 0).sum(1) >= 2) & (spread_px > 0)
        focal = 0.5 * (cam.fx + cam.fy)
        depth = (focal * spread_m[has] / spread_px[has]).median() if has.any() else (
            torch.tensor(float(np.linalg.norm(cam.translation)) or 3.0))
        ray = torch.stack([(pc[:, 0] - cam.cx) / cam.fx, (pc[:, 1] - cam.cy) / cam.fy,
                           torch.ones(len(pc))], -1) * depth
        centre = (ray - torch.tensor(cam.translation, dtype=torch.float32)) @ cam_rot
        if has.any():
            centre = torch.where(has[:, None], centre, centre[has].median(0).values)
        model_centre = (use[..., None] * joints[:, ids]).sum(1) / norm
        self._rotate_root(var, rot.expand(len(k2), 3, 3), pelvis, centre, model_centre)

    def _search_wrists(self, var: dict, data: dict) -> None:
        """Set each wrist to one of _WRIST_CANDIDATES global hand orientations per frame:
        the sequence that best fits the palm keypoints (thumb and finger bases) while
        turning least between frames.  Gauss-Newton steps cannot turn a hand by up to pi
        from the neutral start, and in 2-D a palm facing the camera or away from it
        projects alike; continuity picks between the two, and fills frames where the
        hand is out of view."""
        g_rot, g_pos, rest, *_ = self.joint_model._pose(var["pose"], self._shape(var))
        t = len(g_rot)
        for side in SIDES:
            wrist = JOINT_INDEX[f"{side}_wrist"]
            palm = [JOINT_INDEX[f"{side}_{f}1"] for f in FINGERS]
            offsets = rest[:, palm] - rest[:, wrist, None]  # (T,5,3), rigid with the wrist
            points = (g_pos[:, wrist, None, None] + var["transl"][:, None, None]
                      + torch.einsum("nij,tkj->tnki", _WRIST_CANDIDATES, offsets))  # (T,N,5,3)
            score = torch.zeros(t, len(_WRIST_CANDIDATES))
            for key, ids, w in (("k2", "ids2", "w2"), ("k3", "ids3", "w3")):
                if key not in data:
                    continue
                found = [(torch.nonzero(data[ids] == j).flatten()[:1], n)
                         for n, j in enumerate(palm)]
                found = [(k, n) for k, n in found if len(k)]
                if not found:
                    continue
                cols = torch.cat([k for k, _ in found])
                pts = points[:, :, [n for _, n in found]]
                weight, target = data[w][:, cols], data[key][:, cols]
                if key == "k2":
                    uv, _ = data["camera"].project(pts)
                    dist = ((uv - target[:, None]) ** 2).sum(-1) * data["px_to_m"] ** 2
                else:
                    pts = pts * var["log_scale"].exp()
                    if "groups3" in data:  # compare shapes, not positions
                        pts = pts - pts.mean(2, keepdim=True)
                        target = target - target.mean(1, keepdim=True)
                    dist = ((pts - target[:, None]) ** 2).sum(-1)
                score += (weight[:, None] * dist).sum(-1)
            chosen = _WRIST_CANDIDATES[_smoothest_path(score, _WRIST_TURN_COST)]
            parent = g_rot[:, PARENTS[wrist]]
            var["pose"][:, wrist] = matrix_to_axis_angle(parent.transpose(-1, -2) @ chosen)
        var["pose"] = _unwrap(var["pose"])

    # -- objective -------------------------------------------------------------------
    def _residuals(self, joints: torch.Tensor, var: dict, data: dict, rows: torch.Tensor,
                   jac: tuple | None = None):
        """Keypoint residuals (T,R) in metres and their weights (T,R) before the robust
        loss; with ``jac`` = JointModel.jacobian's (trunk (T,127,3,78) incl. translation,
        hands, shape (T,127,3,Q)) also the rows' Jacobians: trunk (T,R,78), hands
        {side: (row ids (R_s,), (T,R_s,45))} and shared (T,R,Q)."""
        face = torch.ones(NUM_FIT_JOINTS)
        face[list(_FACE_OUTPUTS)] = self.config.face_weight
        face = face * rows
        res, wts, j_trunk, j_shared = [], [], [], []
        j_hands: dict[str, list] = {side: [] for side in SIDES}
        start = 0
        for key in ("k2", "k3"):
            if key not in data:
                continue
            ids = data["ids2" if key == "k2" else "ids3"]
            w = data["w2" if key == "k2" else "w3"]
            dim = 2 if key == "k2" else 3
            if key == "k2":
                cam: PinholeCamera = data["camera"]
                scale = data["px_to_m"]
                cam_rot = torch.tensor(cam.rotation, dtype=torch.float32)
                pc = joints[:, ids] @ cam_rot.T + torch.tensor(cam.translation,
                                                               dtype=torch.float32)
                z = pc[..., 2:].clamp_min(1e-3)
                focal = torch.tensor([cam.fx, cam.fy])
                uv = focal * pc[..., :2] / z + torch.tensor([cam.cx, cam.cy])
                diff = (uv - data["k2"]) * scale
                if jac is not None:
                    d_cam = torch.zeros(*pc.shape[:2], 2, 3)  # d uv / d camera point
                    d_cam[..., 0, 0] = focal[0] / z[..., 0]
                    d_cam[..., 1, 1] = focal[1] / z[..., 0]
                    d_cam[..., :, 2] = -focal * pc[..., :2] / z**2
                    d_world = scale * d_cam @ cam_rot  # (T,K,2,3)

                    def chain(j: torch.Tensor, k=None, d_world=d_world) -> torch.Tensor:
                        return d_world[:, k] @ j if k is not None else d_world @ j
            else:
                scale = var["log_scale"].exp()
                pred, target = joints[:, ids] * scale, data["k3"]
                if "groups3" in data:
                    groups = data["groups3"]  # (K,G)
                    wg = w[..., None] * groups
                    avg = wg / wg.sum(1, keepdim=True).clamp_min(1e-12)  # (T,K,G)

                    def centred(x: torch.Tensor, avg=avg, groups=groups) -> torch.Tensor:
                        mean = torch.einsum("tkg,tk...->tg...", avg, x)
                        return x - torch.einsum("kg,tg...->tk...", groups, mean)
                else:
                    def centred(x: torch.Tensor) -> torch.Tensor:
                        return x
                diff = centred(pred) - centred(target)
                if jac is not None:
                    def chain(j: torch.Tensor, k=None, scale=scale) -> torch.Tensor:
                        return j * scale
            res.append(diff.flatten(1))
            wts.append((w * face[ids]).repeat_interleave(dim, 1))
            if jac is not None:
                trunk, hands, shape = jac
                if key == "k2":
                    j_trunk.append(chain(trunk[:, ids]).flatten(1, 2))
                    shared = chain(shape[:, ids])
                else:
                    j_trunk.append(centred(chain(trunk[:, ids])).flatten(1, 2))
                    shared = chain(shape[:, ids])
                    shared = centred(torch.cat([shared[..., :-1], pred[..., None]], -1))
                j_shared.append(shared.flatten(1, 2))
                for side in SIDES:
                    where = {o: n for n, o in enumerate(HAND_OUTPUTS[side])}
                    k = torch.tensor([i for i, o in enumerate(ids.tolist()) if o in where],
                                     dtype=torch.long)
                    n = torch.tensor([where[o] for o in ids.tolist() if o in where],
                                     dtype=torch.long)
                    if key == "k3" and "groups3" in data:
                        # Centring mixes rows: every row of the input gets hand columns.
                        full = torch.zeros(*trunk.shape[:2], 3, 45)[:, ids]
                        full[:, k] = hands[side][:, n]
                        block, k = centred(chain(full)), torch.arange(len(ids))
                    else:
                        block = chain(hands[side][:, n], k)
                    rows_s = start + (k[:, None] * dim + torch.arange(dim)).flatten()
                    j_hands[side].append((rows_s, block.flatten(1, 2)))
            start += len(ids) * dim
        res, wts = torch.cat(res, 1), torch.cat(wts, 1)
        if jac is None:
            return res, wts, None
        hands_out = {side: (torch.cat([r for r, _ in v]), torch.cat([b for _, b in v], 1))
                     for side, v in j_hands.items()}
        return res, wts, (torch.cat(j_trunk, 1), hands_out, torch.cat(j_shared, 1))

    @staticmethod
    def _robust(res: torch.Tensor, wts: torch.Tensor, row_point: torch.Tensor, sigma: float):
        """Per-frame robust data cost (T,) and IRLS row weights (T,R)."""
        per_point = torch.zeros(res.shape[0], int(row_point.max()) + 1)
        per_point.index_add_(1, row_point, res**2)
        dist = per_point[:, row_point]  # squared distance of each row's keypoint
        coords = torch.bincount(row_point)[row_point]
        cost = (wts * gmof(dist, sigma) / coords).sum(1)
        return cost, wts * gmof_weight(dist, sigma)

    def _vector(self, var: dict) -> torch.Tensor:
        """(T,168) per-frame unknowns in column order."""
        out = torch.empty(len(var["pose"]), _NUM_FRAME)
        out[:, _POSE_COLS] = var["pose"].reshape(len(out), -1)
        out[:, _TRANSL_COLS] = var["transl"]
        return out

    def _smooth_terms(self, x: torch.Tensor):
        """Temporal prior of x (T,D): per-frame cost (T,), gradient/2 (T,D) and the
        weight with which each frame enters (T,), its Gauss-Newton diagonal."""
        cfg = self.config
        t = x.shape[0]
        cost, grad, count = x.new_zeros(t), torch.zeros_like(x), x.new_zeros(t)
        if t >= 3 and cfg.accel_weight > 0:
            acc = cfg.accel_weight * (x[2:] - 2 * x[1:-1] + x[:-2])
            cost[1:-1] += (acc * (x[2:] - 2 * x[1:-1] + x[:-2])).sum(1)
            grad[2:] += acc
            grad[1:-1] -= 2 * acc
            grad[:-2] += acc
            count[2:] += cfg.accel_weight
            count[1:-1] += 4 * cfg.accel_weight
            count[:-2] += cfg.accel_weight
        if t >= 2 and cfg.velocity_weight > 0:
            vel = cfg.velocity_weight * (x[1:] - x[:-1])
            cost[1:] += (vel * (x[1:] - x[:-1])).sum(1)
            grad[1:] += vel
            grad[:-1] -= vel
            count[1:] += cfg.velocity_weight
            count[:-1] += cfg.velocity_weight
        return cost, grad, count

    def _pose_prior(self, pose: torch.Tensor, orient0: torch.Tensor | None = None):
        """Pose magnitude prior (and orientation prior towards orient0 (T,3)) and joint
        limits: per-frame cost (T,), gradient/2 (T,165) and Gauss-Newton diagonal (T,165)."""
        flat = pose.reshape(len(pose), -1)
        diff = flat - self.neutral.reshape(-1)
        over = flat - flat.clamp(self.limit_lo, self.limit_hi)
        w_l = self.config.limit_weight
        weight = self.prior_weight.expand(len(flat), -1)
        if orient0 is not None:
            diff = torch.cat([flat[:, :3] - orient0, diff[:, 3:]], 1)
            weight = weight.clone()
            weight[:, :3] = self.config.orient_weight
        cost = (weight * diff**2 + w_l * over**2).sum(1)
        return cost, weight * diff + w_l * over, weight + w_l * (over != 0)

    def _cost(self, var: dict, data: dict, rows: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Per-frame objective (T,) and the shared (shape prior) part."""
        res, wts, _ = self._residuals(self._joints(var), var, data, rows)
        cost, _ = self._robust(res, wts, data["row_point"], data["sigma"])
        cost = (cost + self._smooth_terms(self._vector(var))[0]
                + self._pose_prior(var["pose"], data.get("orient0"))[0])
        return cost, float(len(cost) * self.config.betas_weight * (var["betas"] ** 2).sum())

    def _normal_equations(self, var: dict, data: dict, rows: torch.Tensor):
        """Gauss-Newton blocks: per frame H (T,168,168), g (T,168) and the coupling to
        the shared unknowns C (T,168,Q); shared S (Q,Q) and g_s (Q,)."""
        t, nb = len(var["pose"]), self.body.num_betas
        joints, trunk, hands, shape = self.joint_model.jacobian(
            var["pose"], self._shape(var), var["transl"])
        trunk = torch.cat([trunk, torch.eye(3).expand(t, NUM_FIT_JOINTS, 3, 3)], -1)
        shape = torch.cat([shape[..., :nb], torch.zeros(t, NUM_FIT_JOINTS, 3, 1)], -1)
        res, wts, (jt, jh, js) = self._residuals(joints, var, data, rows, (trunk, hands, shape))
        _, irls = self._robust(res, wts, data["row_point"], data["sigma"])
        hess = torch.zeros(t, _NUM_FRAME, _NUM_FRAME)
        grad = torch.zeros(t, _NUM_FRAME)
        cross = torch.zeros(t, _NUM_FRAME, shape.shape[-1])
        jtw = (jt * irls[..., None]).transpose(1, 2)
        hess[:, _TRUNK, _TRUNK] = jtw @ jt
        grad[:, _TRUNK] = (jtw @ res[..., None])[..., 0]
        cross[:, _TRUNK] = jtw @ js
        for side, (rows_s, block) in jh.items():
            cols = _HAND_COLS[side]
            bw = (block * irls[:, rows_s, None]).transpose(1, 2)  # (T,45,R_s)
            hess[:, cols, cols] = bw @ block
            hess[:, cols, _TRUNK] = bw @ jt[:, rows_s]
            hess[:, _TRUNK, cols] = hess[:, cols, _TRUNK].transpose(1, 2)
            grad[:, cols] = (bw @ res[:, rows_s, None])[..., 0]
            cross[:, cols] = bw @ js[:, rows_s]
        shared_hess = torch.einsum("trq,tr,trs->qs", js, irls, js)
        shared_grad = torch.einsum("trq,tr->q", js, irls * res)
        _, s_grad, s_count = self._smooth_terms(self._vector(var))
        _, p_grad, p_diag = self._pose_prior(var["pose"], data.get("orient0"))
        grad += s_grad
        grad[:, _POSE_COLS] += p_grad
        diag = torch.diagonal(hess, dim1=-2, dim2=-1)  # a view: adds in place
        diag += s_count[:, None]
        diag[:, _POSE_COLS] += p_diag
        shared_hess[range(nb), range(nb)] += t * self.config.betas_weight
        shared_grad[:nb] += t * self.config.betas_weight * var["betas"]
        return hess, grad, cross, shared_hess, shared_grad

    def _levenberg_marquardt(self, var: dict, data: dict, free: torch.Tensor,
                             shared_free: torch.Tensor, rows: torch.Tensor, iters: int,
                             loss_log: list[float]) -> None:
        """Batched LM; steps are accepted per frame, the shared step when the total
        objective falls.  Fixed unknowns are masked out of the systems."""
        t, nb = len(var["pose"]), self.body.num_betas
        damping = torch.full((t,), 1e-3)
        shared_damping = 1e-3
        cost, shared_cost = self._cost(var, data, rows)
        loss_log.append(float(cost.sum()) + shared_cost)
        for _ in range(iters):
            step, shared_step = self._solve(*self._normal_equations(var, data, rows), free,
                                            shared_free, damping, shared_damping)
            old = {k: v.clone() for k, v in var.items()}
            flat = var["pose"].reshape(t, -1)
            moved = flat + step[:, _POSE_COLS]
            # Projected step: a component inside its joint limits stays inside (the
            # quadratic model knows nothing of a limit it has not yet crossed).
            inside = (flat >= self.limit_lo) & (flat <= self.limit_hi)
            moved = torch.where(inside, moved.clamp(self.limit_lo, self.limit_hi), moved)
            var["pose"] = moved.reshape(t, -1, 3)
            var["transl"] = var["transl"] + step[:, _TRANSL_COLS]
            var["betas"] = var["betas"] + shared_step[:nb]
            var["log_scale"] = var["log_scale"] + shared_step[nb:]
            new_cost, new_shared = self._cost(var, data, rows)
            better = new_cost < cost
            damping = torch.where(better, (damping / 3).clamp_min(1e-7), damping * 4)
            moved = {k: var[k] for k in ("pose", "transl")}
            total = float(new_cost.sum()) + new_shared
            if shared_free.any() and total >= float(cost.sum()) + shared_cost:
                var["betas"], var["log_scale"] = old["betas"], old["log_scale"]
                shared_damping *= 4
                new_cost, new_shared = self._cost(var, data, rows)
                better = new_cost < cost
            elif shared_free.any():
                shared_damping = max(shared_damping / 3, 1e-7)
            # Keep the frames that improved; with a new shape, only if that lowers the total
            # (a frame's old pose may suit the new shape worse than its new one).
            var["pose"] = torch.where(better[:, None, None], var["pose"], old["pose"])
            var["transl"] = torch.where(better[:, None], var["transl"], old["transl"])
            cost, shared_cost = self._cost(var, data, rows)
            if float(cost.sum()) + shared_cost > total:
                var.update(moved)
                cost, shared_cost = self._cost(var, data, rows)
            loss_log.append(float(cost.sum()) + shared_cost)

    @staticmethod
    def _solve(hess, grad, cross, shared_hess, shared_grad, free, shared_free, damping,
               shared_damping):
        """Damped step of [[H_t, C_t], [C_t^T, S]] [dx_t; ds] = -[g_t; g_s] over the free
        unknowns, through the Schur complement of the per-frame blocks."""
        idx, sidx = free.nonzero().flatten(), shared_free.nonzero().flatten()
        h = hess[:, idx][:, :, idx]
        # Marquardt's scaled damping plus a floor, so that directions the keypoints hardly
        # see (a fingertip's twist) take small steps, not huge ones.
        diag = torch.diagonal(h, dim1=-2, dim2=-1)
        diag.mul_(1 + damping[:, None]).add_(_DAMPING_FLOOR)
        chol, info = torch.linalg.cholesky_ex(h)
        if info.any():  # float32 round-off: redo in float64
            chol = torch.linalg.cholesky(h.double())
        rhs = torch.cat([grad[:, idx, None], cross[:, idx][:, :, sidx]], -1).to(chol.dtype)
        solved = torch.cholesky_solve(rhs, chol).double()
        inv_grad, inv_cross = solved[..., 0], solved[..., 1:]
        coupling = rhs[..., 1:].double()
        shared_step = torch.zeros(len(shared_free), dtype=torch.float64)
        if len(sidx):
            schur = shared_hess[sidx][:, sidx].double()
            schur.diagonal().mul_(1 + shared_damping).add_(_DAMPING_FLOOR)
            schur -= (coupling.transpose(1, 2) @ inv_cross).sum(0)
            s_rhs = (-shared_grad[sidx].double()
                     + (coupling.transpose(1, 2) @ inv_grad[..., None])[..., 0].sum(0))
            shared_step[sidx] = torch.linalg.solve(schur, s_rhs)
        step = torch.zeros(grad.shape, dtype=torch.float64)
        step[:, idx] = -inv_grad - inv_cross @ shared_step[sidx]
        # Trust region: no joint turns by more than _MAX_STEP radians in one step.
        pose_step = step[:, _POSE_COLS].reshape(len(step), -1, 3)
        turn = torch.linalg.norm(pose_step, dim=-1, keepdim=True)
        step[:, _POSE_COLS] = (pose_step * (_MAX_STEP / turn.clamp_min(1e-12)).clamp(max=1.0)
                               ).reshape(len(step), -1)
        return step.float(), shared_step.float()

    def _errors(self, joints: torch.Tensor, var: dict, data: dict):
        """Per-frame weighted mean keypoint distance: 2-D in pixels, 3-D in input units."""
        out = []
        for key, w in (("k2", "w2"), ("k3", "w3")):
            if key not in data:
                out.append(torch.full((len(joints),), float("nan"))
                           if key in data["given"] else None)
                continue
            only = {k: v for k, v in data.items() if k != ("k3" if key == "k2" else "k2")}
            res, _, _ = self._residuals(joints, var, only, torch.ones(NUM_FIT_JOINTS))
            dim = 2 if key == "k2" else 3
            dist = torch.linalg.norm(res.reshape(len(res), -1, dim), dim=-1)
            if key == "k2":
                dist = dist / data["px_to_m"]
            total = data[w].sum(1)
            err = (data[w] * dist).sum(1) / total.clamp_min(1e-12)
            out.append(torch.where(total > 0, err, torch.full_like(err, float("nan"))))
        return tuple(out)
