"""Preview picture of the body model: rest pose, a signing-like pose, face and hand.

    python -m signgen.render.preview --out docs/standin_preview.png [--model-dir DIR]

Renders whatever body model ``BodyModel`` resolves (the stand-in by default).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from PIL import Image

from signgen.body import BodyModel, SMPLXParams
from signgen.body.skeleton import JOINT_INDEX
from signgen.cli import ArgumentParser, run_cli
from signgen.render.appearance import body_vertex_colors
from signgen.render.camera import PinholeCamera
from signgen.render.mesh_renderer import MeshRenderer

# Axis-angle (radians) per joint. Arms down from the T-pose, then for the signing pose
# the right hand raised beside the chin and the left hand forward at waist height, with
# the right index extended and the other fingers curled.
_ARMS_DOWN = {"left_shoulder": (0.0, 0.0, -1.25), "right_shoulder": (0.0, 0.0, 1.25)}
_SIGNING = {
    "right_shoulder": (-0.35, 0.0, 1.15), "right_elbow": (0.0, 2.3, 0.0),
    "right_wrist": (0.0, 0.0, 0.3), "left_shoulder": (-0.2, 0.0, -1.2),
    "left_elbow": (0.0, -1.5, 0.0), "head": (0.1, 0.15, 0.0),
}


def _set_joint(params: SMPLXParams, frame: int, name: str, axis_angle) -> None:
    i = JOINT_INDEX[name]
    params.body_pose[frame, 3 * (i - 1):3 * i] = torch.tensor(axis_angle)


def preview_params(body: BodyModel) -> SMPLXParams:
    """Frame 0: rest with arms down; frame 1: a signing-like pose."""
    params = body.zero_params(2)
    for frame in (0, 1):
        for name, aa in _ARMS_DOWN.items():
            _set_joint(params, frame, name, aa)
    for name, aa in _SIGNING.items():
        _set_joint(params, 1, name, aa)
    curl = torch.zeros(15, 3)
    curl[3:12, 2] = 1.2  # middle, pinky, ring joints of the right hand flex about +Z
    curl[12:, :] = torch.tensor((0.3, 0.4, 0.6))  # thumb across the palm
    params.right_hand_pose[1] = curl.reshape(-1)
    params.expression[1, 1] = 1.5  # brows raised
    return params


def render_preview(body: BodyModel, size: int = 256) -> np.ndarray:
    """(size, 4*size, 3) uint8: rest pose, signing pose, face close-up, hand close-up."""
    with torch.no_grad():
        out = body(preview_params(body))
    verts = out.vertices.numpy()
    colours = body_vertex_colors(body)
    renderer = MeshRenderer(size, size)
    faces = body.faces.numpy()
    head = out.joints[1, JOINT_INDEX["head"]].numpy()
    hand = out.joints[1, JOINT_INDEX["right_middle1"]].numpy()
    cameras = [
        (0, PinholeCamera.look_at(size, size, eye=(0, 0.05, 2.0), target=(0, 0, 0),
                                  fov_y_deg=30)),
        (1, PinholeCamera.look_at(size, size, eye=(0, 0.05, 2.0), target=(0, 0, 0),
                                  fov_y_deg=30)),
        (1, PinholeCamera.look_at(size, size, eye=head + (0.15, 0.08, 0.55),
                                  target=head + (0, 0.07, 0), fov_y_deg=30)),
        (1, PinholeCamera.look_at(size, size, eye=hand + (0.1, 0.05, 0.35), target=hand,
                                  fov_y_deg=30)),
    ]
    tiles = [renderer.render(verts[f], faces, cam, vertex_colors=colours).rgb[0]
             for f, cam in cameras]
    return np.concatenate(tiles, axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/standin_preview.png")
    parser.add_argument("--model-dir", help="SMPL-X folder (default: the stand-in)")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    Image.fromarray(render_preview(BodyModel(args.model_dir), args.size)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
