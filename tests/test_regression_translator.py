"""The continuous-regression translator (issue #7's Progressive-Transformers baseline):
model, generation, training stage, export and its evaluation system."""

import json

import numpy as np
import pytest
import torch

from signgen.errors import InvalidInputError, SignGenError
from signgen.loading import load_pretrained
from signgen.models.regression_translator import (
    POSE_DIM,
    POSE_JOINTS,
    RegressionTranslator,
    poses_from_6d,
    poses_to_6d,
    regression_loss,
)

SIZES = dict(dim=32, num_heads=2, encoder_layers=1, decoder_layers=1, ffn_mult=2,
             max_text_length=16, max_frames=12)


def model(seed: int = 0, **kwargs) -> RegressionTranslator:
    torch.manual_seed(seed)
    m = RegressionTranslator(vocab_size=20, **{**SIZES, **kwargs})
    statistics = torch.Generator().manual_seed(seed)
    m.set_pose_statistics(torch.randn(POSE_DIM, generator=statistics) * 0.1,
                          torch.rand(POSE_DIM, generator=statistics) + 0.5)
    return m.eval()


def text(batch: int = 2, length: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1, 20, (batch, length), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1:, -2:] = False  # a padded text
    return ids.masked_fill(~mask, 0), mask


def random_poses(batch: int, frames: int, seed: int = 2) -> torch.Tensor:
    """(B,T,165) axis-angle with the modelled joints set, the rest zero."""
    poses = torch.zeros(batch, frames, 55, 3)
    poses[:, :, list(POSE_JOINTS)] = 0.6 * torch.randn(
        batch, frames, len(POSE_JOINTS), 3, generator=torch.Generator().manual_seed(seed))
    return poses.flatten(2)


def test_shapes_and_pose_layout_round_trip(one_thread):
    poses = random_poses(2, 6)
    d6 = poses_to_6d(poses)
    assert d6.shape == (2, 6, POSE_DIM) and POSE_DIM == 312
    assert torch.allclose(poses_from_6d(d6), poses, atol=1e-5)
    ids, mask = text()
    out = model()(ids, mask, d6)
    assert out.poses.shape == (2, 6, POSE_DIM) and out.counter.shape == (2, 6)
    assert ((out.counter > 0) & (out.counter < 1)).all()
    loss, extra = regression_loss(out, d6, torch.tensor([6, 4]))
    assert loss.ndim == 0 and {"pose_mse", "counter_bce", "counter_error"} <= set(extra)
    with pytest.raises(InvalidInputError, match="poses must be"):
        model()(ids, mask, poses)  # axis-angle, not 6-D
    with pytest.raises(InvalidInputError, match="num_heads"):
        RegressionTranslator(vocab_size=20, dim=30, num_heads=4)


def test_save_load_gives_identical_outputs(tmp_path, one_thread):
    m = model(seed=3)
    m.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_pretrained(RegressionTranslator, tmp_path).eval()
    assert torch.equal(loaded.pose_scale, m.pose_scale)
    ids, mask = text()
    d6 = poses_to_6d(random_poses(2, 5))
    a, b = m(ids, mask, d6), loaded(ids, mask, d6)
    assert torch.equal(a.poses, b.poses) and torch.equal(a.counter, b.counter)
    for x, y in zip(m.generate(ids, mask, max_frames=6), loaded.generate(ids, mask, max_frames=6),
                    strict=True):
        assert torch.equal(x, y)


def test_generation_stops_on_the_counter_and_respects_max_frames(one_thread):
    m = model()
    ids, mask = text()
    with torch.no_grad():
        m.counter_head.weight.zero_()
        m.counter_head.bias.fill_(20.0)  # counter ~1 at once: one frame
    assert [len(p) for p in m.generate(ids, mask)] == [1, 1]
    assert [len(p) for p in m.generate(ids, mask, min_frames=3)] == [3, 3]
    with torch.no_grad():
        m.counter_head.bias.fill_(-20.0)  # counter ~0: never ends
    assert [len(p) for p in m.generate(ids, mask, max_frames=5)] == [5, 5]
    assert [len(p) for p in m.generate(ids, mask)] == [SIZES["max_frames"]] * 2
    # The counter implies a length t / counter; the end is where that is <= t + 0.5:
    # a constant 0.6 says "t / 0.6 frames" at every t (never reached), 0.7 "1.4 frames".
    for counter, length in ((0.6, SIZES["max_frames"]), (0.7, 1)):
        with torch.no_grad():
            m.counter_head.bias.fill_(float(np.log(counter / (1 - counter))))
        assert [len(p) for p in m.generate(ids, mask)] == [length] * 2
    with pytest.raises(InvalidInputError, match="max_frames"):
        m.generate(ids, mask, max_frames=SIZES["max_frames"] + 1)


def test_greedy_generation_is_deterministic_and_matches_teacher_forcing(one_thread):
    m = model(seed=5)
    ids, mask = text()
    first, second = m.generate(ids, mask, max_frames=7), m.generate(ids, mask, max_frames=7)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert first[0].shape == (7, 165) and first[0].dtype == torch.float32
    # The KV-cached loop predicts what one teacher-forced pass over its own frames does.
    generated = torch.stack(first)
    with torch.no_grad():
        forced = m(ids, mask, poses_to_6d(generated)).poses
    assert torch.allclose(poses_from_6d(forced), generated, atol=1e-4)


def test_overfits_one_batch(one_thread):
    torch.manual_seed(0)
    m = RegressionTranslator(vocab_size=20, **{**SIZES, "dropout": 0.0})
    ids, mask = text()
    d6 = poses_to_6d(random_poses(2, 8, seed=4))
    flat = d6.flatten(0, 1)  # the batch's own statistics, as the task sets the train set's
    m.set_pose_statistics(flat.mean(0), flat.std(0).clamp(min=1e-2))
    num_frames = torch.tensor([8, 6])
    optimiser = torch.optim.Adam(m.parameters(), lr=1e-2)
    history = []
    for _ in range(40):
        loss, extra = regression_loss(m(ids, mask, d6), d6, num_frames)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(extra)
    assert history[-1]["pose_mse"] < history[0]["pose_mse"] / 20
    assert history[-1]["counter_error"] < 0.05


def test_stage_trains_exports_and_scores_keypoints(tiny_overrides, tiny_data_root, tmp_path,
                                                   one_thread):
    import train
    from signgen.cli import run_cli
    from signgen.config import load_config
    from signgen.data.text_tokenizer import TextTokenizer
    from signgen.eval.__main__ import main as eval_main
    from signgen.eval.score import GroundTruth
    from signgen.eval.systems import RegressionTranslatorSystem

    overrides = [*tiny_overrides, f"experiment.output_dir={tmp_path}/out",
                 *(f"regression_translator.model.{kv}" for kv in
                   ("dim=32", "num_heads=2", "encoder_layers=1", "decoder_layers=1",
                    "max_frames=120")),
                 *(f"regression_translator.train.{kv}" for kv in
                   ("max_steps=3", "batch_size=2", "warmup_steps=1", "log_every=1",
                    "eval_every=3", "save_every=3"))]
    cfg = load_config("tiny", overrides)
    folder = train.main(cfg, "regression_translator", progress=False)
    info = json.loads((folder / "regression_translator.json").read_text())
    assert info["languages"] and info["input_noise"] == cfg.regression_translator.input_noise
    loaded = load_pretrained(RegressionTranslator, folder)
    assert loaded.config.dim == 32 and bool((loaded.pose_scale != 1).any())  # statistics saved
    TextTokenizer.load(folder)
    log = [json.loads(line) for line in (tmp_path / "out" / "regression_translator" /
                                         "metrics.jsonl").read_text().splitlines()]
    assert {"eval/dev_pose_mse", "eval/dev_pose_error_deg", "eval/length_error",
            "eval/dtw_mje_mm"} <= set(log[-1])
    assert log[0]["pose_mse"] > 0

    system = RegressionTranslatorSystem(folder, size=(64, 64))
    sample = next(json.loads(line) for line in (tiny_data_root / "synthsign" /
                                                  "manifest.jsonl").read_text().splitlines()
                  if line and json.loads(line)["split"] == "test_novel_sentences")
    out = system.generate(GroundTruth(sample, None, None, None, (1.0, 1.0, 1.0)))
    assert out.video is None and not out.frame_aligned
    assert out.keypoints.ndim == 3 and out.keypoints.shape[1:] == (133, 2)
    assert out.visible.shape == out.keypoints.shape[:2] and len(out.keypoints) >= 1
    with pytest.raises(InvalidInputError, match="nothing to sign"):
        system.poses("", sample["language"])
    with pytest.raises(InvalidInputError, match="unknown sign language 'xx'"):
        system.poses("hello", "xx")
    with pytest.raises(SignGenError, match="no regression translator"):
        RegressionTranslatorSystem(tmp_path / "missing")
    assert run_cli(eval_main, ["score", "--system", "regression_translator",
                               "--model", str(tmp_path / "missing"), *overrides]) == 2
