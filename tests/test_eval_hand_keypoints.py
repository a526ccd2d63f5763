"""Hand refiner: save/load, crop geometry (sub-pixel, mirrored, rotated), mirror
consistency of ``refine_hands``, what it leaves alone, the loss and bad input."""

import math

import numpy as np
import pytest
import torch

from signgen.config import load_config
from signgen.errors import ConfigError, InvalidInputError
from signgen.eval.hand_keypoints import (
    LEFT_HAND,
    RIGHT_HAND,
    HandRefiner,
    crop_frames,
    crop_to_frame,
    crop_transforms,
    frame_to_crop,
    refine_hands,
)
from signgen.training.tasks.hand_keypoints import hand_keypoint_loss, hand_scores, make_crops

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(crop_size=16, frame_size=64, channels=[4, 8, 8])


def blob(size: int, u: float, v: float, sigma: float = 1.5) -> torch.Tensor:
    """(1,3,size,size) in [-1,1]: a Gaussian dot centred on pixel (u, v)."""
    s = torch.arange(size, dtype=torch.float64)
    g = torch.exp(-((s[None] - u) ** 2 + (s[:, None] - v) ** 2) / (2 * sigma ** 2))
    return (2 * g - 1).float().expand(1, 3, size, size)


def centroid(image: torch.Tensor) -> torch.Tensor:
    """(1,3,S,S) in [-1,1] -> (2,) intensity-weighted (u, v) of the brightness above -1."""
    w = (image[0, 0].double() + 1)
    s = torch.arange(w.shape[0], dtype=torch.float64)
    return torch.stack([(w.sum(0) * s).sum(), (w.sum(1) * s).sum()]) / w.sum()


def test_save_load_round_trip_and_shapes(tmp_path):
    torch.manual_seed(0)
    model = HandRefiner(**SMALL).eval()
    crops = torch.rand(3, 3, 16, 16) * 2 - 1
    out = model(crops)
    assert out.heatmaps.shape == (3, 21, 16, 16) and out.keypoints.shape == (3, 21, 2)
    model.save_pretrained(tmp_path)
    again = HandRefiner.from_pretrained(tmp_path).eval()
    assert again.config.channels == [4, 8, 8] and again.config.frame_size == 64
    with torch.no_grad():
        assert torch.equal(model(crops).keypoints, again(crops).keypoints)


@pytest.mark.parametrize("mirror,zoom,angle", [
    (False, 1.0, 0.0), (True, 1.0, 0.0), (True, 1.1, math.radians(15)), (False, 0.9, -0.2)])
def test_crop_location_maps_back_to_the_frame(mirror, zoom, angle):
    dot = torch.tensor([[29.37, 21.81]])  # sub-pixel, frame px
    frame = blob(64, *dot[0].tolist())
    centre = torch.tensor([[31.6, 24.2]])  # near the dot: the whole blob is in the crop
    a = crop_transforms(torch.tensor([mirror]), zoom=torch.tensor([zoom]),
                        angle=torch.tensor([angle]))
    crop = crop_frames(frame, centre, a, 24)
    found = centroid(crop).float().view(1, 1, 2)
    # Bilinear resampling keeps the centroid exactly on an axis-aligned grid; on a
    # rotated one it moves by ~0.004 px.
    back = crop_to_frame(found, centre, a, 24)
    assert (back - dot).abs().max() < 0.01
    torch.testing.assert_close(frame_to_crop(back, centre, a, 24), found)


def test_refining_a_mirrored_frame_gives_mirrored_points():
    torch.manual_seed(1)
    model = HandRefiner(**SMALL)
    frame = (torch.rand(1, 64, 64, 3) * 255).to(torch.uint8)
    points = (torch.rand(1, 133, 2) * 20 + 22).numpy()
    confidence = np.ones((1, 133), np.float32)
    refined, _ = refine_hands(model, frame, points, confidence)
    # The mirrored frame: u -> 63 - u, and the signer's left hand is now on the right.
    flipped = points.copy()
    flipped[..., 0] = 63 - flipped[..., 0]
    flipped[:, LEFT_HAND], flipped[:, RIGHT_HAND] = (flipped[:, RIGHT_HAND],
                                                     flipped[:, LEFT_HAND].copy())
    again, _ = refine_hands(model, frame.flip(2), flipped, confidence)
    again[..., 0] = 63 - again[..., 0]
    again[:, LEFT_HAND], again[:, RIGHT_HAND] = again[:, RIGHT_HAND], again[:, LEFT_HAND].copy()
    assert not np.allclose(refined[:, 91:], points[:, 91:])  # the hands did move
    np.testing.assert_allclose(again, refined, atol=1e-3)


def test_refine_hands_leaves_other_points_and_unseen_hands_alone():
    torch.manual_seed(2)
    model = HandRefiner(**SMALL)
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    points = np.random.default_rng(1).uniform(28, 36, (2, 133, 2))  # float64 is fine
    confidence = np.full((2, 133), 0.9, np.float32)
    confidence[:, RIGHT_HAND][:, :11] = 0.2  # right hand: only 10 of 21 seen -> unseen
    confidence[0, 95] = 0.1  # one unsure point of a seen left hand
    confidence[1, LEFT_HAND] = 0.3  # frame 1: left hand unseen too
    refined, conf = refine_hands(model, frames, points, confidence)
    assert refined.dtype == np.float32 and np.array_equal(conf, confidence)
    np.testing.assert_array_equal(refined[:, :91], points[:, :91].astype(np.float32))
    np.testing.assert_array_equal(refined[:, RIGHT_HAND], points[:, RIGHT_HAND].astype(np.float32))
    np.testing.assert_array_equal(refined[1], points[1].astype(np.float32))
    assert refined[0, 95].tolist() == points[0, 95].astype(np.float32).tolist()
    moved = np.abs(refined[0, LEFT_HAND] - points[0, LEFT_HAND]).max(-1) > 1e-3
    assert moved.sum() == 20  # all confident points of the seen hand
    # Nothing seen at all: the input comes back.
    same, _ = refine_hands(model, frames, points, np.zeros((2, 133), np.float32))
    np.testing.assert_array_equal(same, points.astype(np.float32))


def test_loss_falls_when_overfitting_a_few_crops():
    torch.manual_seed(0)
    model = HandRefiner(crop_size=16, channels=[8, 16])
    frames = torch.rand(4, 3, 32, 32) * 2 - 1
    keypoints = torch.rand(4, 21, 2) * 10 + 11
    visible = torch.rand(4, 21) > 0.2
    crops, targets, valid = make_crops(frames, keypoints, visible,
                                       torch.tensor([True, False, True, False]), 16,
                                       generator=torch.Generator().manual_seed(0))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = model(crops)
        loss, extra = hand_keypoint_loss(out.heatmaps, out.keypoints, targets, valid)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert set(extra) == {"kl", "coord", "px_error"}


def test_training_crops_move_targets_with_the_image():
    frames = -torch.ones(3, 3, 64, 64)
    spread = torch.randn(3, 21, 2, generator=torch.Generator().manual_seed(0))
    keypoints = torch.tensor([30.0, 20.0]) + spread
    for b in range(3):
        u, v = keypoints[b, 0].round().long().tolist()
        frames[b, :, v, u] = 1.0  # a bright pixel at point 0
        keypoints[b, 0] = torch.tensor([float(u), float(v)])
    crops, targets, valid = make_crops(frames, keypoints, torch.ones(3, 21, dtype=torch.bool),
                                       torch.tensor([True, False, True]), 24,
                                       generator=torch.Generator().manual_seed(1))
    for b in range(3):
        v, u = divmod(crops[b].sum(0).flatten().argmax().item(), 24)
        assert abs(u - targets[b, 0, 0]) <= 1 and abs(v - targets[b, 0, 1]) <= 1
    assert valid.all()


def test_hand_scores_count_hands_only():
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 64, (3, 133, 2))
    target[:, 5], target[:, 6] = (10.0, 20.0), (50.0, 20.0)  # shoulders 40 px apart
    visible = np.ones((3, 133), bool)
    predicted = target.copy()
    predicted[:, :91] += 9.0  # body and face errors do not count
    predicted[:, 91:] += (2.0, 0.0)  # every hand point 2 px off
    scores = hand_scores(target, predicted, visible, alpha=0.05)
    assert scores["error_px"] == pytest.approx(2.0) and scores["error_px_p90"] == pytest.approx(2.0)
    assert scores["error_shoulder_pct"] == pytest.approx(5.0)
    assert scores["pck_hands"] == 1.0  # 2 px <= 0.05 x a ~64 px body box
    exact = hand_scores(target, target, visible, alpha=0.05)
    assert exact["pck_hand_box"] == 1.0 and exact["error_px"] == 0.0


def test_bad_input_fails_loudly():
    model = HandRefiner(**SMALL)
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    points, confidence = np.zeros((2, 133, 2), np.float32), np.ones((2, 133), np.float32)
    with pytest.raises(InvalidInputError, match="uint8"):
        refine_hands(model, frames.astype(np.float32), points, confidence)
    with pytest.raises(InvalidInputError, match="keypoints"):
        refine_hands(model, frames, points[:1], confidence)
    with pytest.raises(InvalidInputError, match="keypoints"):
        refine_hands(model, frames, points.astype(np.int64), confidence)
    with pytest.raises(InvalidInputError, match="confidence"):
        refine_hands(model, frames, points, confidence[:, :21])
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        refine_hands(model, frames, points, confidence * 2)
    nan = points.copy()
    nan[0, 100] = np.nan
    with pytest.raises(InvalidInputError, match="non-finite"):
        refine_hands(model, frames, nan, confidence)
    with pytest.raises(InvalidInputError, match="shape"):
        model(torch.zeros(1, 3, 20, 20))
    with pytest.raises(InvalidInputError, match="multiple"):
        HandRefiner(crop_size=18, channels=[4, 8, 8])
    with pytest.raises(InvalidInputError, match="2 or 3"):
        HandRefiner(channels=[4, 8, 8, 8])
    with pytest.raises(ConfigError, match="crop_size"):
        load_config("tiny", ["eval.hand_keypoints.model.crop_size=42"])
