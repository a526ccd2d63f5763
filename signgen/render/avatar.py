"""The SMPL-X avatar video: a pose sequence posed with the body model (``pose_body``:
vertices and joints) and rendered in the SynthSign camera's frontal upper-body framing
(``render_avatar``; ``AvatarRenderer`` poses and renders chunks on a worker thread)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from signgen.errors import InvalidInputError


def pose_body(body, poses, betas=None) -> tuple[np.ndarray, np.ndarray]:
    """AMASS-style ``poses`` (T,165) axis-angle -> vertices (T,V,3) and SMPL-X output
    joints (T,144,3), world metres. ``body``: a :class:`~signgen.body.model.BodyModel`
    (the stand-in or real SMPL-X files); ``betas`` (num_betas,) (default: mean shape)."""
    from signgen.body.model import SMPLXParams

    poses = torch.as_tensor(np.asarray(poses), dtype=torch.float32)
    if poses.ndim != 2 or poses.shape[1] != 165 or not len(poses):
        raise InvalidInputError(f"poses must be (T,165) with T >= 1, got {tuple(poses.shape)}")
    betas = torch.zeros(body.num_betas) if betas is None else torch.as_tensor(betas).float()
    params = SMPLXParams.from_full_pose(poses, betas,
                                        expression=torch.zeros(len(poses), body.num_expression))
    with torch.no_grad():
        out = body(params)
    return out.vertices.numpy(), out.joints.numpy()


def render_avatar(body, vertices: np.ndarray, height: int, width: int,
                  batch_size: int = 32) -> np.ndarray:
    """Posed ``vertices`` (T,V,3) of ``body`` -> (T,H,W,3) uint8 frames (see
    :class:`AvatarRenderer`), rendered in chunks of ``batch_size`` frames."""
    with AvatarRenderer(body, height, width) as renderer:
        pending = [renderer.submit(vertices[start:start + batch_size])
                   for start in range(0, len(vertices), batch_size)]
        return np.concatenate([future.result() for future in pending])


class AvatarRenderer:
    """The avatar of ``body`` (coloured by
    :func:`~signgen.render.appearance.body_vertex_colors`) in the SynthSign camera's
    frontal upper-body framing, ``height`` x ``width``, made on a worker thread: ``submit``
    and ``submit_poses`` return futures at once and run in submission order. Use it as
    a context manager (the worker stops at the end)."""

    def __init__(self, body, height: int, width: int) -> None:
        from signgen.data.synthsign.signers import signing_camera
        from signgen.render.appearance import body_vertex_colors
        from signgen.render.mesh_renderer import MeshRenderer

        self.body = body
        self.colours = body_vertex_colors(body)
        self.camera = signing_camera(width, height)
        # The body is a closed surface seen from outside, so back faces are hidden but
        # where it intersects itself (fingers, hand on body): culling them costs ~40 %
        # less rasterising and changed 35 of 2.2 M pixels of a 135-frame sentence.
        self.renderer = MeshRenderer(width, height, cull_back_faces=True, geometry=False)
        self.faces = body.faces.numpy()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signgen-avatar")

    def _render(self, vertices: np.ndarray) -> np.ndarray:
        return self.renderer.render(vertices, self.faces, self.camera,
                                    vertex_colors=self.colours).rgb

    def submit(self, vertices: np.ndarray) -> Future[np.ndarray]:
        """Posed vertices (B,V,3) -> a future of (B,H,W,3) uint8 frames."""
        return self._worker.submit(self._render, vertices)

    def submit_poses(self, poses: np.ndarray,
                     betas=None) -> Future[tuple[np.ndarray, np.ndarray]]:
        """AMASS-style poses (B,165) -> a future of the frames (B,H,W,3) uint8 and the
        SMPL-X joints (B,144,3) (:func:`pose_body`, then the render, on the worker: the
        caller's thread is free meanwhile; torch releases the GIL while it computes)."""
        def work() -> tuple[np.ndarray, np.ndarray]:
            vertices, joints = pose_body(self.body, poses, betas)
            return self._render(vertices), joints

        return self._worker.submit(work)

    def close(self) -> None:
        self._worker.shutdown(wait=True)

    def __enter__(self) -> AvatarRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
