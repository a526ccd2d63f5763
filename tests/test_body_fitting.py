"""SMPL-X fitting to keypoints: the fast joint model, recovery of known poses, masks,
and named errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from signgen.body import BodyModel, SMPLXParams
from signgen.body.fitting import (
    NUM_FIT_JOINTS,
    BodyFitter,
    FitConfig,
    FitResult,
    JointModel,
    _neutral_pose,
)
from signgen.body.keypoints import (
    COCO_WHOLEBODY_FROM_SMPLX,
    MEDIAPIPE_RIGHT_HAND_FROM_SMPLX,
    to_coco_wholebody,
)
from signgen.errors import InvalidInputError
from signgen.render.camera import PinholeCamera

FRAMES = 4


@pytest.fixture(scope="module")
def body():
    return BodyModel()


@pytest.fixture(scope="module")
def fitter(body):
    return BodyFitter(body)


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    """Small tensors: a second thread only costs synchronisation (see conftest)."""


def known_params(frames: int = FRAMES, seed: int = 0) -> SMPLXParams:
    """A short, smooth, plausible sequence: arms forward, elbows bent, curled fingers."""
    gen = torch.Generator().manual_seed(seed)
    base = _neutral_pose()
    base[1:22] += 0.2 * torch.randn(21, 3, generator=gen)
    base[[4, 5]] = 0.0  # knees straight
    base[[18, 19]] = torch.tensor([[0.0, -1.2, 0.0], [0.0, 1.2, 0.0]])  # elbows
    base[[20, 21]] = 0.8 * torch.randn(2, 3, generator=gen)  # wrists
    curl = 1.2 * torch.rand(30, generator=gen)
    base[25:40, 2], base[40:55, 2] = -curl[:15], curl[15:]  # left curls with z < 0
    base[[37, 52]] = torch.tensor([[0.8, 0.1, -0.2], [0.8, -0.1, 0.2]])  # thumbs
    poses = base + 0.03 * torch.randn(frames, 55, 3, generator=gen).cumsum(0)
    poses[:, 22:25] = 0.0  # jaw and eyes are not fitted
    betas = 0.5 * torch.randn(10, generator=gen)
    transl = 0.02 * torch.randn(frames, 3, generator=gen)
    return SMPLXParams.from_full_pose(poses.reshape(frames, -1), betas, transl=transl)


def posed_joints(body: BodyModel, params: SMPLXParams) -> torch.Tensor:
    with torch.no_grad():
        return body(params).joints


def test_joint_model_equals_body_model(body):
    params = known_params(3, seed=1)
    params.expression = 0.5 * torch.randn(3, 10)  # expressions move the landmarks
    shape = torch.cat([params.betas, params.expression], 1)
    fast = JointModel(body)(params.full_pose().reshape(3, 55, 3), shape, params.transl)
    assert fast.shape == (3, NUM_FIT_JOINTS, 3)
    torch.testing.assert_close(fast, posed_joints(body, params)[:, :NUM_FIT_JOINTS],
                               atol=1e-5, rtol=0)


def test_joint_model_includes_pose_correctives(tmp_path):
    """The official files have pose blend shapes (the stand-in's are zero)."""
    from signgen.paths import standin_body_model_dir

    with np.load(standin_body_model_dir() / "SMPLX_NEUTRAL.npz") as data:
        arrays = {k: data[k] for k in data.files}
    gen = np.random.default_rng(0)
    arrays["posedirs"] = 0.01 * gen.standard_normal(arrays["posedirs"].shape)
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **arrays)
    corrected = BodyModel(tmp_path)
    params = known_params(2, seed=7)
    fast = JointModel(corrected)(params.full_pose().reshape(2, 55, 3),
                                 torch.cat([params.betas, torch.zeros(2, 10)], 1), params.transl)
    torch.testing.assert_close(fast, posed_joints(corrected, params)[:, :NUM_FIT_JOINTS],
                               atol=1e-5, rtol=0)


def test_joint_model_runs_on_the_inputs_device(tmp_path):
    """No tensor made on the CPU mid-forward (the FSQ loss runs it on a GPU): on the meta
    device a CPU constant fails like a CUDA run would. With pose correctives, so that
    their branch runs too."""
    from signgen.paths import standin_body_model_dir

    with np.load(standin_body_model_dir() / "SMPLX_NEUTRAL.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["posedirs"] = np.full(arrays["posedirs"].shape, 0.01)
    np.savez(tmp_path / "SMPLX_NEUTRAL.npz", **arrays)
    model = JointModel(BodyModel(tmp_path)).to("meta")
    out = model(torch.zeros(2, 55, 3, device="meta"), torch.zeros(2, 20, device="meta"),
                torch.zeros(2, 3, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, NUM_FIT_JOINTS, 3)


# torch.func.jvp's first call scripts decompositions with the deprecated torch.jit.script.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch")
def test_analytic_jacobian_matches_forward_mode_autodiff(body):
    model = JointModel(body)
    params = known_params(2, seed=2)
    pose = params.full_pose().reshape(2, 55, 3)
    shape = torch.cat([params.betas, torch.zeros(2, 10)], 1)
    _, trunk, hands, d_shape = model.jacobian(pose, shape, params.transl)
    gen = torch.Generator().manual_seed(0)
    direction = torch.randn(2, 55, 3, generator=gen)
    _, expected = torch.func.jvp(lambda p: model(p, shape, params.transl), (pose,), (direction,))
    got = trunk @ direction[:, :25].reshape(2, 1, 75, 1)
    got = got[..., 0]
    for s, side in enumerate(("left", "right")):
        rows = list(range(25 + 15 * s, 40 + 15 * s)) + [66 + 5 * s + k for k in range(5)]
        fingers = direction[:, 25 + 15 * s:40 + 15 * s].reshape(2, 1, 45, 1)
        got[:, rows] += (hands[side] @ fingers)[..., 0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    d_betas = torch.randn(2, 20, generator=gen)
    _, expected = torch.func.jvp(lambda b: model(pose, b, params.transl), (shape,), (d_betas,))
    torch.testing.assert_close(torch.einsum("bkcs,bs->bkc", d_shape, d_betas), expected,
                               atol=1e-5, rtol=1e-4)


def test_fit_recovers_known_3d_keypoints(body, fitter):
    params = known_params()
    truth = posed_joints(body, params)
    result = fitter.fit(keypoints3d=to_coco_wholebody(truth))
    assert isinstance(result, FitResult)
    assert result.poses.shape == (FRAMES, 165) and result.transl.shape == (FRAMES, 3)
    assert result.betas.shape == (10,) and result.error_2d is None
    assert result.error_3d.shape == (FRAMES,) and float(result.error_3d.max()) < 3e-3
    fitted = posed_joints(body, result.params())
    error = torch.linalg.norm(fitted - truth, dim=-1)  # metres, no alignment needed
    observed = COCO_WHOLEBODY_FROM_SMPLX[COCO_WHOLEBODY_FROM_SMPLX < 76]  # no face
    assert float(error[:, observed].mean()) < 3e-3
    hand = list(range(25, 55)) + list(range(66, 76))  # finger joints and fingertips
    assert float(error[:, hand].mean()) < 5e-3
    assert float(error[:, hand].max()) < 2e-2


def test_fit_from_2d_reprojects_and_the_loss_falls(body, fitter):
    params = known_params(seed=3)
    camera = PinholeCamera.frontal(512, 512)
    keypoints, _ = camera.project(to_coco_wholebody(posed_joints(body, params)))
    result = fitter.fit(keypoints2d=keypoints, camera=camera)
    assert result.error_3d is None and result.error_2d.shape == (FRAMES,)
    assert float(result.error_2d.mean()) < 3.0  # pixels in a 512 px image
    cfg = fitter.config
    assert len(result.loss) == cfg.iters_torso + cfg.iters_body + cfg.iters_all + 3
    # Within the last stage (one objective) the loss only falls.
    last = result.loss[-fitter.config.iters_all - 1:]
    assert all(b <= a * (1 + 1e-4) for a, b in zip(last, last[1:], strict=False))
    assert last[-1] < last[0]


def test_masked_keypoints_are_ignored(body, fitter):
    params = known_params(seed=4)
    points = to_coco_wholebody(posed_joints(body, params))
    mask = torch.ones(FRAMES, 133, dtype=torch.bool)
    mask[:, 91:112] = False  # the left hand
    mask[1, :17] = False  # frame 1's body
    first = fitter.fit(keypoints3d=points, mask3d=mask)
    corrupted = points.clone()
    corrupted[~mask] = torch.tensor([5.0, -3.0, float("nan")])
    second = fitter.fit(keypoints3d=corrupted, mask3d=mask)
    assert torch.equal(first.poses, second.poses) and torch.equal(first.betas, second.betas)
    assert torch.equal(first.transl, second.transl)


def test_centred_hand_landmarks_fit_the_hand(body, fitter):
    """MediaPipe-style hand world landmarks: own origin per frame, so compared centred."""
    params = known_params(seed=5)
    truth = posed_joints(body, params)
    hand = truth[:, MEDIAPIPE_RIGHT_HAND_FROM_SMPLX]
    landmarks = hand - hand.mean(1, keepdim=True) + torch.randn(FRAMES, 1, 3)
    result = fitter.fit(keypoints3d=landmarks, joint_ids3d=MEDIAPIPE_RIGHT_HAND_FROM_SMPLX,
                        groups3d=torch.zeros(21, dtype=torch.long))
    fitted = posed_joints(body, result.params())[:, MEDIAPIPE_RIGHT_HAND_FROM_SMPLX]
    wrist_aligned = (fitted - fitted[:, :1]) - (hand - hand[:, :1])
    assert float(torch.linalg.norm(wrist_aligned, dim=-1).mean()) < 5e-3
    assert float(result.error_3d.max()) < 5e-3


def test_known_betas_stay_fixed_and_init_warm_starts(body, fitter):
    params = known_params(seed=6)
    points = to_coco_wholebody(posed_joints(body, params))
    result = fitter.fit(keypoints3d=points, betas=params.betas[0])
    assert torch.equal(result.betas, params.betas[0])
    warm = BodyFitter(body, FitConfig(iters_torso=0, iters_body=0, iters_all=2))
    again = warm.fit(keypoints3d=points, init=result.params())
    assert again.loss[-1] <= again.loss[0] and float(again.error_3d.max()) < 1e-3


def _bad_inputs():
    cam = PinholeCamera.frontal(64, 64)
    k2 = torch.zeros(FRAMES, 133, 2)
    nan = k2.clone()
    nan[2, 7, 0] = float("nan")
    return [
        (dict(keypoints2d=torch.zeros(FRAMES, 133, 3), camera=cam), "keypoints2d must have"),
        (dict(keypoints2d=torch.zeros(FRAMES, 120, 2), camera=cam), "133 COCO-WholeBody"),
        (dict(keypoints2d=torch.zeros(0, 133, 2), camera=cam), "no frames"),
        (dict(keypoints2d=k2), "camera"),
        (dict(keypoints2d=nan, camera=cam), "NaN or infinite values at frame 2, keypoint 7"),
        (dict(keypoints2d=k2, confidence2d=torch.zeros(FRAMES, 133), camera=cam),
         "no keypoint has non-zero confidence"),
        (dict(keypoints2d=k2, confidence2d=torch.ones(FRAMES, 13), camera=cam),
         "confidence2d must have shape"),
        (dict(keypoints2d=k2, confidence2d=-torch.ones(FRAMES, 133), camera=cam), ">= 0"),
        (dict(keypoints3d=torch.zeros(FRAMES, 50, 3)), "joint_ids3d"),
        (dict(keypoints3d=torch.zeros(FRAMES, 2, 3), joint_ids3d=[0, 500]), "joint_ids3d"),
        (dict(keypoints3d=torch.zeros(FRAMES, 133, 3), keypoints2d=torch.zeros(2, 133, 2),
              camera=cam), "frames"),
        (dict(keypoints3d=torch.zeros(FRAMES, 133, 3), betas=torch.zeros(3)), "betas"),
        (dict(keypoints3d=torch.zeros(FRAMES, 133, 3), init=SMPLXParams.zeros(2)), "init"),
        (dict(keypoints3d=np.zeros((FRAMES, 133, 3), dtype=np.int64)), "floating point"),
        ({}, "keypoints2d"),
    ]


@pytest.mark.parametrize(("kwargs", "message"), _bad_inputs())
def test_bad_input_raises_named_errors(fitter, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        fitter.fit(**kwargs)


def test_config_rejects_bad_values():
    with pytest.raises(InvalidInputError, match="accel_weight"):
        FitConfig(accel_weight=-1.0)
    with pytest.raises(InvalidInputError, match="robust_sigma"):
        FitConfig(robust_sigma=0.0)
