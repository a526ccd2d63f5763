"""Pinhole camera model shared by the renderer and the 2-D projection code.

Conventions
-----------
* World: SMPL-X's, in metres, +Y up, the body faces +Z, the body's left is +X.
* Camera: OpenCV's, x right, y down, z forward; points in front have z > 0.
  ``rotation`` and ``translation`` map world to camera: ``X_cam = R @ X + t``.
* Pixels: ``(u, v) = (column, row)`` with ``(0, 0)`` the *centre* of the
  top-left pixel, so pixel ``(i, j)`` (row, column) covers
  ``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]`` and the image centre is
  ``((width - 1) / 2, (height - 1) / 2)``.

``view_matrix`` and ``opengl_projection`` reproduce :meth:`PinholeCamera.project`
exactly in OpenGL, so a rasterised point lands on the pixel ``project`` names.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from signgen.errors import InvalidInputError

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

# OpenCV camera axes (y down, z forward) -> OpenGL eye axes (y up, z backward).
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def _frozen_array(value, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Copy ``value`` to a read-only float64 array of ``shape``; errors name ``name``."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be numeric, got {value!r}") from exc
    if array.shape != shape:
        raise InvalidInputError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"{name} must be finite, got {array.tolist()}")
    array.setflags(write=False)
    return array


def _unit(vector: np.ndarray, name: str) -> np.ndarray:
    norm = np.linalg.norm(vector)
    if norm < 1e-12:
        raise InvalidInputError(f"{name} has zero length")
    return vector / norm


@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """An undistorted pinhole camera (see the module docstring for conventions).

    Attributes:
        width, height: image size in pixels (> 0).
        fx, fy: focal lengths in pixels (> 0).
        cx, cy: principal point in pixels (pixel-centre convention).
        rotation: (3, 3) float64 world->camera rotation (read-only array).
        translation: (3,) float64 world->camera translation in metres (read-only).

    Instances compare and hash by identity (the fields hold arrays).
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            try:
                value = operator.index(value)
            except TypeError as exc:
                raise InvalidInputError(f"{name} must be an integer, got {value!r}") from exc
            if value <= 0:
                raise InvalidInputError(f"{name} must be > 0, got {value}")
            object.__setattr__(self, name, value)
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            try:
                value = float(value)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"{name} must be a number, got {value!r}") from exc
            if not math.isfinite(value):
                raise InvalidInputError(f"{name} must be finite, got {value}")
            if name in ("fx", "fy") and value <= 0:
                raise InvalidInputError(f"{name} must be > 0, got {value}")
            object.__setattr__(self, name, value)
        rotation = _frozen_array(self.rotation, (3, 3), "rotation")
        # The renderer rotates normals with R, which is only valid for a rotation.
        if (
            not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6)
            or np.linalg.det(rotation) < 0
        ):
            raise InvalidInputError(
                "rotation must be a proper rotation matrix (orthonormal, det +1)"
            )
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(
            self, "translation", _frozen_array(self.translation, (3,), "translation")
        )

    @classmethod
    def look_at(
        cls,
        width: int,
        height: int,
        eye,
        target,
        up=(0.0, 1.0, 0.0),
        fov_y_deg: float = 35.0,
    ) -> PinholeCamera:
        """A camera at ``eye`` looking at ``target``, square pixels, principal point centred.

        Args:
            eye, target: (3,) world points in metres; must differ.
            up: (3,) world direction that appears up in the image; not parallel to the view axis.
            fov_y_deg: vertical field of view in degrees, in (0, 180), spanning the full
                image height (outer pixel edges).
        """
        fov = float(fov_y_deg)
        if not 0.0 < fov < 180.0:
            raise InvalidInputError(f"fov_y_deg must be in (0, 180), got {fov_y_deg}")
        eye = _frozen_array(eye, (3,), "eye")
        target = _frozen_array(target, (3,), "target")
        up = _frozen_array(up, (3,), "up")
        forward = _unit(target - eye, "target - eye")
        right = np.cross(forward, up)
        if np.linalg.norm(right) < 1e-9 * np.linalg.norm(up):
            raise InvalidInputError("up must not be parallel to the viewing direction (or zero)")
        right = _unit(right, "up x forward")
        down = np.cross(forward, right)
        rotation = np.stack([right, down, forward])
        focal = 0.5 * height / math.tan(math.radians(fov) / 2.0)
        return cls(
            width=width,
            height=height,
            fx=focal,
            fy=focal,
            cx=(width - 1) / 2.0,
            cy=(height - 1) / 2.0,
            rotation=rotation,
            translation=-rotation @ eye,
        )

    @classmethod
    def frontal(
        cls,
        width: int,
        height: int,
        *,
        target=(0.0, 0.1, 0.0),
        distance: float = 2.2,
        extent: float = 1.4,
    ) -> PinholeCamera:
        """Default sign-language camera: in front of the body, looking along -Z at ``target``.

        The defaults frame an SMPL-X template (pelvis near y = -0.35, head top near
        y = +0.55): ``target`` is mid-chest, the eye is ``distance`` metres along +Z
        from it, and the focal length makes an ``extent`` x ``extent`` metre square
        centred on ``target`` (perpendicular to the view axis) exactly fill the
        *smaller* image side, so the framing holds for any aspect ratio.  The 1.4 m
        default covers the 1.2 m region from hips to above the head, and hands
        0.6 m either side of the body's midline even when held 0.3 m towards the
        camera.  The body's left (+X) appears on the image right.
        """
        distance = float(distance)
        extent = float(extent)
        if not (math.isfinite(distance) and distance > 0):
            raise InvalidInputError(f"distance must be finite and > 0, got {distance}")
        if not (math.isfinite(extent) and extent > 0):
            raise InvalidInputError(f"extent must be finite and > 0, got {extent}")
        target = _frozen_array(target, (3,), "target")
        focal = min(width, height) * distance / extent
        fov_y_deg = math.degrees(2.0 * math.atan(0.5 * height / focal))
        eye = target + np.array([0.0, 0.0, distance])
        return cls.look_at(width, height, eye, target, fov_y_deg=fov_y_deg)

    def world_to_camera(self, points: ArrayT) -> ArrayT:
        """Map (..., 3) world points (metres) to (..., 3) OpenCV camera coordinates.

        Numpy in, numpy out (float64 unless the input is float32); torch in, torch
        out with the input's float dtype and device, keeping autograd.
        """
        if isinstance(points, torch.Tensor):
            if not points.is_floating_point():
                points = points.to(torch.get_default_dtype())
            rotation = torch.tensor(self.rotation, dtype=points.dtype, device=points.device)
            translation = torch.tensor(self.translation, dtype=points.dtype, device=points.device)
            return points @ rotation.T + translation
        points = np.asarray(points)
        dtype = np.float32 if points.dtype == np.float32 else np.float64
        return (points.astype(np.float64) @ self.rotation.T + self.translation).astype(
            dtype, copy=False
        )

    def project(self, points: ArrayT) -> tuple[ArrayT, ArrayT]:
        """Project (..., 3) world points to pixels.

        Returns:
            uv: (..., 2) pixel coordinates (column, row), (0, 0) = centre of the
                top-left pixel.  Meaningless where depth <= 0 (behind the camera).
            depth: (...,) camera-space z in metres (> 0 in front of the camera).
        Types follow :meth:`world_to_camera` (torch keeps autograd).
        """
        cam = self.world_to_camera(points)
        x, y, z = cam[..., 0], cam[..., 1], cam[..., 2]
        u = self.fx * x / z + self.cx
        v = self.fy * y / z + self.cy
        stack = torch.stack if isinstance(cam, torch.Tensor) else np.stack
        return stack([u, v], -1), z

    def intrinsics_matrix(self) -> np.ndarray:
        """(3, 3) float64 intrinsics K, with ``K @ X_cam ~ (u, v, 1)``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def extrinsics_matrix(self) -> np.ndarray:
        """(4, 4) float64 world->camera transform in OpenCV axes."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation
        matrix[:3, 3] = self.translation
        return matrix

    def view_matrix(self) -> np.ndarray:
        """(4, 4) float64 world->OpenGL eye transform (x right, y up, looking down -z)."""
        return _CV_TO_GL @ self.extrinsics_matrix()

    def opengl_projection(self, near: float, far: float) -> np.ndarray:
        """(4, 4) float64 OpenGL projection (eye -> clip) matching :meth:`project`.

        Uses GL's default viewport/depth-range conventions for a ``width`` x
        ``height`` viewport; row 0 of the framebuffer is the image *bottom*, so
        read-back images must be flipped vertically.  ``0 < near < far`` (metres)
        bound the camera-space z that survives clipping.
        """
        near, far = float(near), float(far)
        if not (math.isfinite(near) and math.isfinite(far) and 0.0 < near < far):
            raise InvalidInputError(f"need finite 0 < near < far, got near={near}, far={far}")
        # GL window coordinates put pixel centres at +0.5 and count rows from the
        # bottom: x_w = u + 0.5 and y_w = height - (v + 0.5).
        w, h = self.width, self.height
        return np.array(
            [
                [2.0 * self.fx / w, 0.0, 1.0 - 2.0 * (self.cx + 0.5) / w, 0.0],
                [0.0, 2.0 * self.fy / h, 2.0 * (self.cy + 0.5) / h - 1.0, 0.0],
                [0.0, 0.0, -(far + near) / (far - near), -2.0 * far * near / (far - near)],
                [0.0, 0.0, -1.0, 0.0],
            ]
        )
