"""The SMPL-X avatar video: a pose sequence rendered with the body model in the SynthSign
camera's frontal upper-body framing (``signing_camera``)."""

from __future__ import annotations

import numpy as np
import torch

from signgen.errors import InvalidInputError


def _params(body, poses, betas):
    from signgen.body.model import SMPLXParams

    poses = torch.as_tensor(np.asarray(poses), dtype=torch.float32)
    if poses.ndim != 2 or poses.shape[1] != 165 or not len(poses):
        raise InvalidInputError(f"poses must be (T,165) with T >= 1, got {tuple(poses.shape)}")
    betas = torch.zeros(body.num_betas) if betas is None else torch.as_tensor(betas).float()
    return SMPLXParams.from_full_pose(poses, betas,
                                      expression=torch.zeros(len(poses), body.num_expression))


def smplx_joints(body, poses, betas=None) -> np.ndarray:
    """AMASS-style ``poses`` (T,165) -> SMPL-X output joints (T,144,3), world metres."""
    with torch.no_grad():
        return body(_params(body, poses, betas)).joints.numpy()


def render_avatar(body, poses, height: int, width: int, betas=None,
                  batch_size: int = 32) -> np.ndarray:
    """AMASS-style ``poses`` (T,165) axis-angle -> (T,H,W,3) uint8 frames.

    ``body``: a :class:`~signgen.body.model.BodyModel` (the stand-in or real SMPL-X
    files); ``betas`` (num_betas,) shape (default: the mean shape). Vertex colours come
    from the body model's appearance regions when it has them (the stand-in), else skin.
    """
    from signgen.data.synthsign.signers import signing_camera
    from signgen.render.appearance import DEFAULT_PALETTE, region_vertex_colors
    from signgen.render.mesh_renderer import MeshRenderer

    params = _params(body, poses, betas)
    if body.vertex_regions is not None:
        colours = region_vertex_colors(body.vertex_regions.numpy(), body.region_names)
    else:  # official SMPL-X files carry no appearance regions
        colours = np.tile(np.float32(DEFAULT_PALETTE["skin"]), (body.num_vertices, 1))
    camera = signing_camera(width, height)
    renderer = MeshRenderer(width, height)
    faces = body.faces.numpy()
    frames = []
    with torch.no_grad():
        for start in range(0, params.batch_size, batch_size):
            chunk = type(params)(**{k: v[start:start + batch_size]
                                    for k, v in vars(params).items()})
            vertices = body(chunk).vertices.numpy()
            frames.append(renderer.render(vertices, faces, camera, vertex_colors=colours).rgb)
    return np.concatenate(frames)
