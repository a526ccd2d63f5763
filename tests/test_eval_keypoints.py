"""Keypoint estimator: shapes, save/load, soft-argmax, augmentation geometry, the loss,
``estimate_keypoints`` and the training task on a tiny generated dataset."""

import json

import numpy as np
import pytest
import torch

from signgen.config import load_config
from signgen.errors import ConfigError, InvalidInputError
from signgen.eval.keypoints import KeypointEstimator, estimate_keypoints, soft_argmax
from signgen.training.tasks.keypoints import augment, keypoint_loss

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(input_size=64, channels=[8, 16, 16], heatmap_stride=4)


def test_shapes_and_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = KeypointEstimator(**SMALL).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out = model(x)
    assert out.heatmaps.shape == (2, 133, 16, 16)
    assert out.keypoints.shape == (2, 133, 2) and out.visibility_logits.shape == (2, 133)
    model.save_pretrained(tmp_path)
    again = KeypointEstimator.from_pretrained(tmp_path).eval()
    assert again.config.channels == [8, 16, 16]
    with torch.no_grad():
        assert torch.equal(model(x).keypoints, again(x).keypoints)
    with pytest.raises(InvalidInputError, match="shape"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InvalidInputError, match="multiple"):
        KeypointEstimator(input_size=60, channels=[8, 16, 16])


def test_config_rejects_inconsistent_sizes():
    with pytest.raises(ConfigError, match="multiple"):
        load_config("tiny", ["eval.keypoints.model.input_size=100"])
    with pytest.raises(ConfigError, match="heatmap_stride"):
        load_config("tiny", ["eval.keypoints.model.channels=[8,16]",
                             "eval.keypoints.model.heatmap_stride=8"])


def test_soft_argmax_returns_the_peak_with_sub_pixel_precision():
    heatmaps = torch.full((1, 2, 8, 8), -50.0)
    heatmaps[0, 0, 2, 5] = 50.0  # row 2, column 5
    heatmaps[0, 1, 6, 3] = heatmaps[0, 1, 6, 4] = 50.0  # between columns 3 and 4
    uv = soft_argmax(heatmaps, stride=4)
    # Cell (i, j) is centred on input pixel ((j + 0.5) * 4 - 0.5, (i + 0.5) * 4 - 0.5).
    torch.testing.assert_close(uv[0, 0], torch.tensor([21.5, 9.5]))
    torch.testing.assert_close(uv[0, 1], torch.tensor([15.5, 25.5]))


def test_augmentation_moves_keypoints_with_the_image():
    frames = -torch.ones(3, 3, 64, 64)
    keypoints = torch.tensor([[20.0, 30.0], [40.0, 12.0], [63.0, 63.0]]).expand(3, 3, 2)
    for b in range(3):
        frames[b, :, 30, 20] = 1.0  # a bright pixel at keypoint 0
    visible = torch.ones(3, 3, dtype=torch.bool)
    out, moved, still = augment(frames, keypoints.clone(), visible,
                                generator=torch.Generator().manual_seed(1))
    for b in range(3):
        brightest = out[b].sum(0).flatten().argmax()
        v, u = divmod(brightest.item(), 64)
        assert abs(u - moved[b, 0, 0]) <= 1 and abs(v - moved[b, 0, 1]) <= 1
    inside = ((moved >= -0.5) & (moved < 63.5)).all(-1)
    assert torch.equal(still, inside)


def test_loss_falls_when_overfitting_a_few_frames():
    torch.manual_seed(0)
    model = KeypointEstimator(input_size=32, channels=[8, 16], heatmap_stride=4)
    frames = torch.rand(4, 3, 32, 32) * 2 - 1
    keypoints = torch.rand(4, 133, 2) * 28 + 2
    visible = torch.rand(4, 133) > 0.2
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        out = model(frames)
        loss, extra = keypoint_loss(out.heatmaps, out.keypoints, out.visibility_logits,
                                    keypoints, visible, stride=4)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert set(extra) == {"kl", "coord", "vis", "px_error"}


def test_estimate_keypoints_maps_back_to_the_given_frame_size():
    # A hand-made model: flat heatmaps (soft-argmax = the centre) and a fixed visibility.
    model = KeypointEstimator(**SMALL)
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
        model.visibility[-1].weight.zero_()
        model.visibility[-1].bias.fill_(2.0)
    frames = np.zeros((5, 96, 128, 3), np.uint8)  # H=96, W=128: resized to 64x64
    points, confidence = estimate_keypoints(model, frames, batch_size=2)
    assert points.shape == (5, 133, 2) and confidence.shape == (5, 133)
    np.testing.assert_allclose(points[..., 0], 63.5, atol=1e-4)  # centre of 128 columns
    np.testing.assert_allclose(points[..., 1], 47.5, atol=1e-4)  # centre of 96 rows
    np.testing.assert_allclose(confidence, 1 / (1 + np.exp(-2.0)), rtol=1e-5)
    same, _ = estimate_keypoints(model, list(np.zeros((2, 64, 64, 3), np.uint8)))
    np.testing.assert_allclose(same, 31.5, atol=1e-4)
    with pytest.raises(InvalidInputError, match="uint8"):
        estimate_keypoints(model, np.zeros((2, 64, 64, 3), np.float32))


def test_training_task_runs_and_exports_a_loadable_model(tiny_overrides, tmp_path):
    import train

    overrides = [*tiny_overrides, f"experiment.output_dir={tmp_path}/out",
                 f"eval.weights_dir={tmp_path}/weights",
                 "eval.keypoints.model.input_size=64", "eval.keypoints.model.channels=[8,16,16]",
                 "eval.keypoints.train.max_steps=3", "eval.keypoints.train.batch_size=4",
                 "eval.keypoints.train.warmup_steps=1", "eval.keypoints.train.log_every=1",
                 "eval.keypoints.train.eval_every=3", "eval.keypoints.train.save_every=2"]
    folder = train.main(load_config("tiny", overrides), "keypoints", progress=False)
    model = KeypointEstimator.from_pretrained(tmp_path / "weights" / "keypoints")
    assert model.config.input_size == 64
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] == 3
    for split in ("test_novel_sentences", "test_unseen_signers"):
        assert 0 <= info["eval"][f"pck/{split}"] <= 1
        assert 0 <= info["eval"][f"pck_hands/{split}"] <= 1
    log = [json.loads(line) for line in (tmp_path / "out" / "keypoints" / "metrics.jsonl")
           .read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and "px_error" in log[0]
