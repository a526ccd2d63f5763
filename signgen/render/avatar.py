"""The SMPL-X avatar video: a pose sequence posed once with the body model
(``pose_body``: vertices and joints) and rendered in the SynthSign camera's frontal
upper-body framing (``render_avatar``, ``signing_camera``)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future

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
    """Posed ``vertices`` (T,V,3) of ``body`` -> (T,H,W,3) uint8 frames, coloured by
    :func:`~signgen.render.appearance.body_vertex_colors`."""
    return np.concatenate(list(iter_avatar_frames(body, vertices, height, width, batch_size)))


def iter_avatar_frames(body, vertices: np.ndarray, height: int, width: int,
                       batch_size: int = 32) -> Iterator[np.ndarray]:
    """:func:`render_avatar` in chunks of up to ``batch_size`` frames ((B,H,W,3) uint8
    each). Every chunk is queued for the GL thread at once, so a consumer (an mp4
    encoder) works while the next chunks render."""
    renderer = AvatarRenderer(body, height, width)
    pending = [renderer.submit(vertices[start:start + batch_size])
               for start in range(0, len(vertices), batch_size)]
    for future in pending:
        yield future.result()


class AvatarRenderer:
    """The avatar of ``body`` (coloured by
    :func:`~signgen.render.appearance.body_vertex_colors`) in the SynthSign camera's
    frontal upper-body framing, ``height`` x ``width``."""

    def __init__(self, body, height: int, width: int) -> None:
        from signgen.data.synthsign.signers import signing_camera
        from signgen.render.appearance import body_vertex_colors
        from signgen.render.mesh_renderer import MeshRenderer

        self.colours = body_vertex_colors(body)
        self.camera = signing_camera(width, height)
        # The body is a closed surface seen from outside, so back faces are hidden but
        # where it intersects itself (fingers, hand on body): culling them costs ~40 %
        # less rasterising and changed 35 of 2.2 M pixels of a 135-frame sentence.
        self.renderer = MeshRenderer(width, height, cull_back_faces=True, geometry=False)
        self.faces = body.faces.numpy()

    def submit(self, vertices: np.ndarray) -> Future[np.ndarray]:
        """Posed vertices (B,V,3) -> a future of (B,H,W,3) uint8 frames, rendered on the
        GL thread (in submission order) while the caller goes on."""
        frames: Future[np.ndarray] = Future()

        def done(render: Future) -> None:
            error = render.exception()
            if error is None:
                frames.set_result(render.result().rgb)
            else:
                frames.set_exception(error)

        self.renderer.render_async(vertices, self.faces, self.camera,
                                   vertex_colors=self.colours).add_done_callback(done)
        return frames
