"""SMPL-X posing through the real ``smplx`` package — the only module importing smplx.

``BodyModel`` loads either the official SMPL-X files (when the user points
``model_dir`` or ``$SMPLX_MODEL_DIR`` at them) or signgen's stand-in (see
``signgen.body.standin``), with signgen's defaults: full 45-value hand poses (no PCA
truncation), a flat hand at zero pose, and the 17 face-contour landmarks on, so the
144 output joints cover COCO-WholeBody's 133 keypoints.

Loading a model file runs ``numpy.load(..., allow_pickle=True)`` inside smplx; model
files are trusted input (the official files are pickled), so only point signgen at
files you trust.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.joint_names import JOINT_NAMES as _SMPLX_OUTPUT_NAMES
from smplx.vertex_joint_selector import VertexJointSelector
from torch import nn

from signgen.body.skeleton import NUM_BODY_JOINTS, NUM_HAND_JOINTS, NUM_JOINTS
from signgen.errors import BodyModelError, InvalidInputError
from signgen.paths import standin_body_model_dir

#: Names of the 144 output joints: 55 skeleton joints, 21 vertex keypoints (nose, eyes,
#: ears, feet, fingertips), 51 face landmarks and 17 face-contour landmarks.
OUTPUT_JOINT_NAMES: tuple[str, ...] = tuple(_SMPLX_OUTPUT_NAMES)
NUM_OUTPUT_JOINTS = len(OUTPUT_JOINT_NAMES)
GENDERS = ("neutral", "male", "female")


@dataclass
class SMPLXParams:
    """SMPL-X parameters for a batch of B frames; axis-angle rotations in radians.

    Shapes: global_orient (B,3), body_pose (B,63), left_hand_pose (B,45),
    right_hand_pose (B,45), jaw_pose (B,3), leye_pose (B,3), reye_pose (B,3),
    betas (B,num_betas), expression (B,num_expression), transl (B,3) metres.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    left_hand_pose: torch.Tensor
    right_hand_pose: torch.Tensor
    jaw_pose: torch.Tensor
    leye_pose: torch.Tensor
    reye_pose: torch.Tensor
    betas: torch.Tensor
    expression: torch.Tensor
    transl: torch.Tensor

    POSE_WIDTHS = {
        "global_orient": 3, "body_pose": 3 * NUM_BODY_JOINTS, "jaw_pose": 3, "leye_pose": 3,
        "reye_pose": 3, "left_hand_pose": 3 * NUM_HAND_JOINTS,
        "right_hand_pose": 3 * NUM_HAND_JOINTS, "transl": 3,
    }
    # Order of the parts in the 165-value AMASS-style ``poses`` vector (55 joints x 3).
    FULL_POSE_ORDER = ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose",
                       "left_hand_pose", "right_hand_pose")

    @classmethod
    def zeros(cls, batch_size: int, num_betas: int = 10, num_expression: int = 10,
              dtype: torch.dtype = torch.float32) -> SMPLXParams:
        """Rest pose (T-pose, flat hands), mean shape, neutral face."""
        widths = dict(cls.POSE_WIDTHS, betas=num_betas, expression=num_expression)
        return cls(**{k: torch.zeros(batch_size, w, dtype=dtype) for k, w in widths.items()})

    @classmethod
    def from_full_pose(cls, poses: torch.Tensor, betas: torch.Tensor,
                       expression: torch.Tensor | None = None,
                       transl: torch.Tensor | None = None) -> SMPLXParams:
        """From AMASS-style ``poses`` (B,165); betas (B,S) or (S,) broadcast over frames."""
        poses = torch.as_tensor(poses, dtype=torch.float32)
        if poses.ndim != 2 or poses.shape[1] != 3 * NUM_JOINTS:
            raise InvalidInputError(f"poses must have shape (frames, {3 * NUM_JOINTS}), "
                                    f"got {tuple(poses.shape)}")
        b = poses.shape[0]
        parts, start = {}, 0
        for name in cls.FULL_POSE_ORDER:
            width = cls.POSE_WIDTHS[name]
            parts[name] = poses[:, start:start + width]
            start += width
        betas = torch.as_tensor(betas, dtype=poses.dtype)
        betas = betas.expand(b, -1) if betas.ndim == 1 else betas
        expression = torch.zeros(b, 10) if expression is None else expression
        transl = torch.zeros(b, 3) if transl is None else transl
        return cls(**parts, betas=betas, expression=torch.as_tensor(expression),
                   transl=torch.as_tensor(transl))

    def full_pose(self) -> torch.Tensor:
        """(B,165) axis-angle of all 55 joints in SMPL-X joint order (AMASS ``poses``)."""
        return torch.cat([getattr(self, k) for k in self.FULL_POSE_ORDER], dim=1)

    @property
    def batch_size(self) -> int:
        return self.global_orient.shape[0]

    def validate(self, num_betas: int, num_expression: int) -> None:
        """Raise InvalidInputError naming the first bad field (shape, dtype, NaN/inf)."""
        widths = dict(self.POSE_WIDTHS, betas=num_betas, expression=num_expression)
        batch = None
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, torch.Tensor):
                raise InvalidInputError(f"{f.name} must be a torch.Tensor, got "
                                        f"{type(value).__name__}")
            if not value.is_floating_point():
                raise InvalidInputError(f"{f.name} must be a floating-point tensor, got "
                                        f"{value.dtype}")
            if value.ndim != 2 or value.shape[1] != widths[f.name]:
                raise InvalidInputError(f"{f.name} must have shape (batch, {widths[f.name]}), "
                                        f"got {tuple(value.shape)}")
            batch = value.shape[0] if batch is None else batch
            if value.shape[0] != batch:
                raise InvalidInputError(f"{f.name} has batch size {value.shape[0]}, other "
                                        f"parameters have {batch}")
            if not torch.isfinite(value).all():
                raise InvalidInputError(f"{f.name} contains NaN or infinite values")

    def to(self, *args, **kwargs) -> SMPLXParams:
        return SMPLXParams(**{f.name: getattr(self, f.name).to(*args, **kwargs)
                              for f in fields(self)})


@dataclass
class BodyOutput:
    """vertices (B,V,3) and joints (B,144,3) in metres, world frame (+Y up, facing +Z)."""

    vertices: torch.Tensor
    joints: torch.Tensor


def resolve_model_dir(model_dir: str | os.PathLike | None) -> tuple[Path, bool]:
    """The folder to load from and whether it is signgen's stand-in.

    Priority: the explicit argument, then ``$SMPLX_MODEL_DIR``, then the stand-in.
    """
    chosen = model_dir or os.environ.get("SMPLX_MODEL_DIR")
    if chosen:
        return Path(chosen), False
    return standin_body_model_dir(), True


def _find_model_file(folder: Path, gender: str) -> Path:
    if gender not in GENDERS:
        raise BodyModelError(f"unknown body-model gender {gender!r}; choose one of {GENDERS}")
    if not folder.is_dir():
        raise BodyModelError(f"body-model folder {folder} does not exist")
    for ext in ("npz", "pkl"):
        path = folder / f"SMPLX_{gender.upper()}.{ext}"
        if path.is_file():
            return path
    raise BodyModelError(f"no SMPLX_{gender.upper()}.npz or .pkl in {folder} (set "
                         f"body.model_dir or SMPLX_MODEL_DIR to a folder with SMPL-X files)")


class BodyModel(nn.Module):
    """SMPL-X (official or stand-in) posed through smplx; see module docstring.

    Args:
        model_dir: folder with ``SMPLX_<GENDER>.npz`` (or ``.pkl``); None = see
            ``resolve_model_dir``.
        gender: 'neutral', 'male' or 'female'.
        num_betas / num_expression: shape and expression coefficients used (<= 10 for
            the stand-in).
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, gender: str = "neutral",
                 num_betas: int = 10, num_expression: int = 10) -> None:
        super().__init__()
        folder, self.is_standin = resolve_model_dir(model_dir)
        self.model_path = _find_model_file(folder, gender)
        ext = self.model_path.suffix[1:]
        try:
            # smplx prints a warning for files with only 10+10 shape components.
            with contextlib.redirect_stdout(io.StringIO()):
                self.smplx = smplx.create(
                    str(self.model_path), model_type="smplx", gender=gender, ext=ext,
                    num_betas=num_betas, num_expression_coeffs=num_expression,
                    use_pca=False, flat_hand_mean=True, use_face_contour=True,
                    batch_size=1)
        except (KeyError, AttributeError, ValueError, OSError, EOFError,
                zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError) as err:
            raise BodyModelError(f"body-model file {self.model_path} is malformed or "
                                 f"incomplete: {type(err).__name__}: {err}") from err
        self.num_betas = self.smplx.num_betas
        self.num_expression = self.smplx.num_expression_coeffs
        if self.num_betas < num_betas or self.num_expression < num_expression:
            raise BodyModelError(
                f"{self.model_path} has {self.num_betas} shape and {self.num_expression} "
                f"expression components; {num_betas} and {num_expression} were asked for")
        extra = self._read_extras(self.model_path) if ext == "npz" else {}
        if "signgen_vertex_ids" in extra:
            # The stand-in has its own topology; smplx's built-in ids assume 10,475 verts.
            ids = dict(zip(extra["signgen_vertex_id_names"].tolist(),
                           extra["signgen_vertex_ids"].tolist(), strict=True))
            self.smplx.vertex_joint_selector = VertexJointSelector(vertex_ids=ids)
        regions = extra.get("signgen_vertex_regions")
        #: Appearance region id per vertex (V,) and the region names; None for files
        #: without them (the official SMPL-X files).
        self.vertex_regions = None if regions is None else torch.as_tensor(regions.astype(np.int64))
        self.region_names = tuple(extra.get("signgen_region_names", np.array([])).tolist())

    @staticmethod
    def _read_extras(path: Path) -> dict[str, np.ndarray]:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files if k.startswith("signgen_")}

    @property
    def faces(self) -> torch.Tensor:
        """(F,3) int64 triangle vertex indices."""
        return self.smplx.faces_tensor

    @property
    def num_vertices(self) -> int:
        return self.smplx.v_template.shape[0]

    @property
    def skin_weights(self) -> torch.Tensor:
        """(V,55) linear-blend-skinning weights."""
        return self.smplx.lbs_weights

    def vertex_array(self, vertices) -> np.ndarray:
        """Posed vertices (T,V,3) of this model as a numpy array (torch or numpy in);
        InvalidInputError for another shape."""
        if isinstance(vertices, torch.Tensor):
            vertices = vertices.detach().cpu().numpy()
        vertices = np.asarray(vertices)
        if vertices.ndim != 3 or vertices.shape[1:] != (self.num_vertices, 3):
            raise InvalidInputError(f"vertices must have shape (T, {self.num_vertices}, 3), "
                                    f"got {vertices.shape}")
        return vertices

    def vertex_joint_labels(self) -> torch.Tensor:
        """(V,) the joint with the largest skinning weight for each vertex."""
        return self.skin_weights.argmax(dim=1)

    def zero_params(self, batch_size: int) -> SMPLXParams:
        return SMPLXParams.zeros(batch_size, self.num_betas, self.num_expression,
                                 dtype=self.smplx.v_template.dtype)

    def forward(self, params: SMPLXParams) -> BodyOutput:
        """Pose the body. Raises InvalidInputError for bad shapes or NaN/inf values."""
        params.validate(self.num_betas, self.num_expression)
        out = self.smplx(
            global_orient=params.global_orient, body_pose=params.body_pose,
            left_hand_pose=params.left_hand_pose, right_hand_pose=params.right_hand_pose,
            jaw_pose=params.jaw_pose, leye_pose=params.leye_pose, reye_pose=params.reye_pose,
            betas=params.betas, expression=params.expression, transl=params.transl,
            return_verts=True)
        return BodyOutput(vertices=out.vertices, joints=out.joints)
