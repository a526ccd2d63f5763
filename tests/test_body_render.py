"""Body model + renderer together: masks, depth and labels agree with projected joints."""

import numpy as np
import pytest
import torch

from signgen.body import BodyModel
from signgen.body.skeleton import JOINT_INDEX, hand_joints
from signgen.render import MeshRenderer, PinholeCamera
from signgen.render.preview import preview_params, render_preview


@pytest.fixture(scope="module")
def posed():
    body = BodyModel()
    with torch.no_grad():
        out = body(preview_params(body))
    return body, out


@pytest.mark.parametrize("height, width", [(128, 128), (272, 224)])
def test_hand_pixels_are_where_the_hand_joints_project(posed, height, width):
    body, out = posed
    camera = PinholeCamera.frontal(width, height, target=(0, 0.0, 0), distance=2.0, extent=1.3)
    labels = body.vertex_joint_labels().numpy() + 1  # 0 is background
    result = MeshRenderer(width, height).render(out.vertices[1], body.faces, camera,
                                                vertex_labels=labels)
    # Joint-label images: which joint owns each pixel.
    owner = result.labels[0] - 1
    for side in ("left", "right"):
        hand = set(hand_joints(side))
        # The middle finger's base knuckle sits inside the palm: its pixel is a hand pixel.
        knuckle = out.joints[1, JOINT_INDEX[f"{side}_middle1"]]
        (u, v), depth = camera.project(knuckle.numpy())
        u, v = int(round(float(u))), int(round(float(v)))
        patch = owner[v - 1:v + 2, u - 1:u + 2]
        assert np.isin(patch, list(hand)).any(), f"{side} hand not rendered at its joint"
        # The rendered hand is in front of the knuckle joint (the surface occludes it).
        assert result.depth[0, v, u] < depth + 0.03
        # And the hand's pixels gather around the projected hand joints.
        ys, xs = np.nonzero(np.isin(owner, list(hand)))
        proj, _ = camera.project(out.joints[1, list(hand)].numpy())
        assert abs(xs.mean() - proj[:, 0].mean()) < 0.04 * width
        assert abs(ys.mean() - proj[:, 1].mean()) < 0.04 * height
    # The signer's right hand (raised) appears on the image left, above the left hand.
    right_x = np.nonzero(np.isin(owner, list(hand_joints("right"))))[1].mean()
    left_x = np.nonzero(np.isin(owner, list(hand_joints("left"))))[1].mean()
    assert right_x < width / 2 < left_x


def test_depth_and_mask_are_consistent(posed):
    body, out = posed
    camera = PinholeCamera.frontal(128, 128)
    result = MeshRenderer(128, 128).render(out.vertices, body.faces, camera)
    mask = result.mask
    assert ((result.depth > 0) == mask).all()
    z = camera.world_to_camera(out.vertices.numpy().reshape(-1, 3))[:, 2]
    assert z.min() - 1e-3 <= result.depth[mask].min() and result.depth[mask].max() <= z.max() + 1e-3


def test_preview_is_deterministic():
    body = BodyModel()
    a, b = render_preview(body, size=64), render_preview(body, size=64)
    assert a.shape == (64, 256, 3) and np.array_equal(a, b)
    assert (a != 255).any(axis=-1).mean() > 0.1  # the tiles are not empty
