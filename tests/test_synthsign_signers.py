"""SynthSign signers: sampling, appearance, the signing camera and reference renders."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from signgen.body import BodyModel
from signgen.body.skeleton import JOINT_INDEX
from signgen.data.synthsign.signers import (
    FRAME_TOP,
    HAIR_STYLES,
    MIN_BACKGROUND_SHIRT_DISTANCE,
    MIN_BACKGROUND_SKIN_DISTANCE,
    SHIRT_PATTERNS,
    Signer,
    hair_mask,
    make_signers,
    render_reference,
    render_signer_frames,
    rest_params,
    shirt_colors,
    signer_vertex_colors,
    signing_camera,
)
from signgen.errors import InvalidInputError
from signgen.render import MeshRenderer

SIZES = [(128, 128), (272, 224), (96, 160)]  # (height, width)


@pytest.fixture(scope="module")
def body():
    return BodyModel()


@pytest.fixture(scope="module")
def signers():
    return make_signers()


def _luminance(rgb) -> float:
    return float(np.dot(rgb, (0.299, 0.587, 0.114)))


def test_signers_are_deterministic_distinct_and_extendable(signers):
    assert make_signers() == signers
    assert [s.signer_id for s in signers] == [f"s{i:02d}" for i in range(24)]
    assert len(set(signers)) == 24
    assert len({s.betas for s in signers}) == 24
    # Signer i depends only on (seed, i).
    assert make_signers(7) == signers[:7]
    assert make_signers(24, seed=1) != signers


def test_signer_values_are_in_range(signers):
    for s in signers:
        assert len(s.betas) == 10 and all(-2 <= b <= 2 for b in s.betas)
        for rgb in (s.skin, s.hair_color, s.shirt_color, s.trousers_color, s.background):
            assert len(rgb) == 3 and all(0 <= c <= 1 for c in rgb)
        assert s.hair_style in HAIR_STYLES and s.shirt_pattern in SHIRT_PATTERNS
        assert 0.8 <= s.speed <= 1.25 and 0.85 <= s.space_scale <= 1.15
    betas = np.array([s.betas for s in signers])
    assert 0.5 < betas.std() < 1.0  # N(0, 0.8), clipped
    skin = [_luminance(s.skin) for s in signers]
    assert min(skin) < 0.3 and max(skin) > 0.85  # light to dark
    # Styles and patterns vary.
    assert len({s.hair_style for s in signers}) >= 3
    assert len({s.shirt_pattern for s in signers}) == 3


def test_one_in_six_signers_is_left_handed(signers):
    assert sum(s.handedness == "left" for s in signers) == 4
    many = make_signers(120, seed=3)
    assert sum(s.handedness == "left" for s in many) == 20


def test_background_stands_out_from_shirt_and_skin():
    for s in make_signers(200, seed=5):
        for shirt in shirt_colors(s):
            assert np.linalg.norm(np.subtract(s.background, shirt)) >= (
                MIN_BACKGROUND_SHIRT_DISTANCE)
        assert np.linalg.norm(np.subtract(s.background, s.skin)) >= MIN_BACKGROUND_SKIN_DISTANCE


def test_json_round_trip(signers):
    for s in signers:
        again = Signer.from_dict(json.loads(json.dumps(s.to_dict())))
        assert again == s


def test_bad_input_raises_clear_errors(signers):
    with pytest.raises(InvalidInputError, match="num_signers"):
        make_signers(0)
    data = signers[0].to_dict()
    with pytest.raises(InvalidInputError, match="hair_style"):
        Signer.from_dict({**data, "hair_style": "mohawk"})
    with pytest.raises(InvalidInputError, match="missing keys"):
        Signer.from_dict({k: v for k, v in data.items() if k != "speed"})
    with pytest.raises(InvalidInputError, match="betas"):
        Signer.from_dict({**data, "betas": [0.0] * 9})
    with pytest.raises(InvalidInputError, match="background"):
        Signer.from_dict({**data, "background": [0.0, 1.5, 0.0]})


def _with(signer: Signer, **changes) -> Signer:
    return dataclasses.replace(signer, **changes)


def _assert_all(colors: np.ndarray, rgb) -> None:
    """Every row of (N,3) ``colors`` is ``rgb``."""
    assert len(colors) > 0
    np.testing.assert_allclose(colors, np.broadcast_to(rgb, colors.shape), atol=1e-6)


def test_vertex_colors_follow_regions(body, signers):
    names = body.region_names
    regions = body.vertex_regions.numpy()
    s = _with(signers[0], shirt_pattern="solid", hair_style="short")
    colors = signer_vertex_colors(s, body)
    assert colors.shape == (body.num_vertices, 3) and colors.dtype == np.float32
    assert colors.min() >= 0 and colors.max() <= 1
    _assert_all(colors[regions == names.index("hand")], s.skin)
    _assert_all(colors[regions == names.index("shirt")], s.shirt_color)
    _assert_all(colors[regions == names.index("trousers")], s.trousers_color)


def test_hair_style_changes_the_hair_vertices(body, signers):
    masks = {style: hair_mask(body, style) for style in HAIR_STYLES}
    assert not masks["bald"].any()
    assert masks["short"].sum() > 100
    # Longer styles cover strictly more of the head and neck.
    assert (masks["short"] <= masks["bob"]).all() and masks["bob"].sum() > masks["short"].sum()
    assert (masks["bob"] <= masks["long"]).all() and masks["long"].sum() > masks["bob"].sum()
    # Hair never covers the face's features, the clothes or the hands.
    regions = body.vertex_regions.numpy()
    allowed = [body.region_names.index("skin"), body.region_names.index("hair")]
    assert np.isin(regions[masks["long"]], allowed).all()
    # The hair-coloured vertex set of a signer follows the style.
    hair = (0.9, 0.1, 0.1)
    colored = {style: np.all(np.isclose(signer_vertex_colors(
        _with(signers[0], hair_style=style, hair_color=hair), body), hair), axis=1)
        for style in HAIR_STYLES}
    for style in HAIR_STYLES:
        np.testing.assert_array_equal(colored[style], masks[style])


def test_shirt_patterns(body, signers):
    shirt = body.vertex_regions.numpy() == body.region_names.index("shirt")
    for pattern, expected in (("solid", 1), ("stripes", 2), ("two_tone", 2)):
        s = _with(signers[1], shirt_pattern=pattern)
        colors = signer_vertex_colors(s, body)[shirt]
        assert len(np.unique(colors, axis=0)) == expected == len(shirt_colors(s))
    # Two-tone: the sleeves (arm vertices) differ from the torso.
    s = _with(signers[1], shirt_pattern="two_tone")
    colors = signer_vertex_colors(s, body)
    x = body.smplx.v_template[:, 0].numpy()
    sleeve, torso = shirt & (np.abs(x) > 0.35), shirt & (np.abs(x) < 0.1)
    _assert_all(colors[sleeve], shirt_colors(s)[1])
    _assert_all(colors[torso], s.shirt_color)


def _extreme_signer(signers, value: float) -> Signer:
    return _with(signers[0], betas=(value,) * 10)


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("beta", [-2.0, 0.0, 2.0])
def test_camera_frames_the_upper_body(body, signers, height, width, beta):
    camera = signing_camera(width, height)
    with torch.no_grad():
        out = body(rest_params(body, _extreme_signer(signers, beta)))
    vertices, joints = out.vertices[0].numpy(), out.joints[0].numpy()

    def inside(points):
        uv, depth = camera.project(points)
        return ((depth > 0) & (uv[..., 0] >= -0.5) & (uv[..., 0] < width - 0.5)
                & (uv[..., 1] >= -0.5) & (uv[..., 1] < height - 0.5))

    # Everything from the pelvis up (head top, shoulders, arms) is in the frame.
    upper = vertices[vertices[:, 1] > joints[JOINT_INDEX["pelvis"], 1]]
    assert inside(upper).all()
    # Hands 0.2 m out from either shoulder and 0.3 m forward stay in the frame.
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = joints[JOINT_INDEX[f"{side}_shoulder"]]
        for lift in (-0.1, 0.0, 0.1):
            assert inside(shoulder + (sign * 0.2, lift, 0.3)), (side, lift)
    # The frame's top edge (row -0.5) is FRAME_TOP in the body plane, just above the
    # tallest head, for every image size.
    assert vertices[:, 1].max() < FRAME_TOP < vertices[:, 1].max() + 0.4
    (_, top_row), _ = camera.project(np.array([0.0, FRAME_TOP, 0.0]))
    assert top_row == pytest.approx(-0.5, abs=1e-6)
    # Same camera for everyone: framing does not depend on the signer.
    np.testing.assert_allclose(camera.translation, signing_camera(width, height).translation)


def test_rest_params(body, signers):
    s = signers[2]
    params = rest_params(body, s, num_frames=3)
    assert params.batch_size == 3
    np.testing.assert_allclose(params.betas[:, :10].numpy(), np.tile(s.betas, (3, 1)),
                               atol=1e-6)
    with torch.no_grad():
        joints = body(params).joints[0].numpy()
    for side in ("left", "right"):
        wrist = joints[JOINT_INDEX[f"{side}_wrist"]]
        shoulder = joints[JOINT_INDEX[f"{side}_shoulder"]]
        assert wrist[1] < shoulder[1] - 0.3  # arms hang down (not a T-pose)
    # Fingers curl slightly, all the same way.
    assert (params.left_hand_pose.view(3, 15, 3)[:, :12, 2] < 0).all()
    assert (params.right_hand_pose.view(3, 15, 3)[:, :12, 2] > 0).all()
    with pytest.raises(InvalidInputError, match="num_frames"):
        rest_params(body, s, num_frames=0)


@pytest.mark.parametrize("height, width", [(128, 128), (272, 224)])
def test_reference_image(body, signers, height, width):
    s = signers[3]
    image = render_reference(s, body, (height, width))
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    background = np.round(np.array(s.background) * 255).astype(np.uint8)
    for corner in (image[0, 0], image[0, -1], image[-1, 0]):
        np.testing.assert_array_equal(corner, background)
    assert (image != background).any(axis=-1).mean() > 0.05  # the body is there
    # Passing a renderer gives the same picture.
    np.testing.assert_array_equal(render_reference(s, body, MeshRenderer(width, height)), image)


def test_render_signer_frames_uses_the_signer_background(body, signers):
    camera = signing_camera(64, 48)
    renderer = MeshRenderer(64, 48, background=(1.0, 1.0, 1.0))
    with torch.no_grad():
        vertices = body(rest_params(body, signers[4], num_frames=2)).vertices
    frames = render_signer_frames(vertices, body, signers[4], camera, renderer)
    assert frames.shape == (2, 48, 64, 3)
    background = np.round(np.array(signers[4].background) * 255).astype(np.uint8)
    np.testing.assert_array_equal(frames[:, 0, 0], [background, background])
    np.testing.assert_array_equal(frames[0], frames[1])
    with pytest.raises(InvalidInputError, match="vertices"):
        render_signer_frames(vertices[0], body, signers[4], camera, renderer)
