"""Identity embedding: shapes, unit norm, save/load, clip embedding, retrieval on
hand-made embeddings, the CosFace loss, and the training task on a tiny dataset."""

import json

import numpy as np
import pytest
import torch

from signgen.config import load_config
from signgen.errors import InvalidInputError, SignGenError
from signgen.eval.identity import (
    IdentityEncoder,
    clip_frame_indices,
    embed_clip,
    embed_frames,
    retrieval_top1,
)
from signgen.training.tasks.identity import augment

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(input_size=32, channels=[8, 16], embedding_dim=8, num_classes=3)


def test_shapes_unit_norm_and_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = IdentityEncoder(**SMALL).eval()
    x = torch.rand(5, 3, 64, 48) * 2 - 1  # any frame size: resized to 32x32
    out = model(x)
    assert out.embeddings.shape == (5, 8) and out.logits.shape == (5, 3)
    torch.testing.assert_close(out.embeddings.norm(dim=1), torch.ones(5))
    assert out.logits.abs().max() <= 16.0 + 1e-4  # logit_scale x cosine
    model.save_pretrained(tmp_path)
    again = IdentityEncoder.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(model(x).embeddings, again(x).embeddings)
    with pytest.raises(InvalidInputError):
        model(torch.zeros(2, 1, 32, 32))


def test_embed_clip_is_the_renormalised_mean_of_evenly_spaced_frames():
    torch.manual_seed(0)
    model = IdentityEncoder(**SMALL)
    video = np.random.default_rng(0).integers(0, 256, (20, 40, 40, 3), dtype=np.uint8)
    indices = clip_frame_indices(20, 4)
    assert indices.tolist() == [0, 6, 13, 19]
    assert clip_frame_indices(3, 8).tolist() == [0, 1, 2]
    frames = embed_frames(model, video[indices])
    assert frames.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(frames, axis=1), 1.0, rtol=1e-5)
    mean = frames.mean(0)
    clip = embed_clip(model, video, num_samples=4)
    np.testing.assert_allclose(clip, mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
    with pytest.raises(InvalidInputError, match="uint8"):
        embed_frames(model, video.astype(np.float32))


def test_retrieval_top1_on_hand_made_embeddings():
    references = np.eye(3)  # signers a, b, c along the axes
    clips = np.array([[1.0, 0.2, 0.0],   # a -> a
                      [0.1, 2.0, 0.0],   # b -> b (length does not matter)
                      [0.9, 0.0, 0.5],   # c -> a: wrong
                      [0.0, 0.3, 0.4]])  # c -> c
    top1 = retrieval_top1(clips, ["a", "b", "c", "c"], references, ["a", "b", "c"])
    assert top1 == 0.75
    assert retrieval_top1(clips[:2], ["a", "b"], references, ["a", "b", "c"]) == 1.0
    with pytest.raises(InvalidInputError, match="without a reference"):
        retrieval_top1(clips, ["a", "b", "c", "d"], references, ["a", "b", "c"])
    with pytest.raises(InvalidInputError):
        retrieval_top1(clips[:, :2], ["a", "b", "c", "c"], references, ["a", "b", "c"])


def test_augmentation_keeps_shape_and_colours_close():
    frames = torch.rand(4, 3, 32, 32) * 2 - 1
    out = augment(frames, generator=torch.Generator().manual_seed(0))
    assert out.shape == frames.shape and out.min() >= -1 and out.max() <= 1
    # Identity is mostly colour: the mean colour of a frame moves only a little.
    assert (out.mean(dim=(2, 3)) - frames.mean(dim=(2, 3))).abs().max() < 0.15


def test_loss_falls_when_overfitting_a_few_frames(tiny_overrides):
    from signgen.training.tasks.identity import IdentityTask

    task = IdentityTask(load_config("tiny", [*tiny_overrides,
                                             "eval.identity.model.input_size=32",
                                             "eval.identity.model.channels=[8,16]"]))
    torch.manual_seed(0)
    model = task.build_model()
    assert model.config.num_classes == 4  # the six signers but the two unseen ones
    g = torch.Generator().manual_seed(0)
    colours = torch.rand(4, 3, 1, 1, generator=g) * 2 - 1  # one flat colour per signer
    frames = (colours + 0.3 * torch.rand(4, 3, 32, 32, generator=g)).repeat(2, 1, 1, 1)
    batch = {"frames": frames.clamp(-1, 1), "labels": torch.arange(4).repeat(2)}
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss, extra = task.loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0] and extra["accuracy"] == 1.0


def test_training_task_runs_and_exports_a_loadable_model(tiny_overrides, tmp_path):
    import train

    overrides = [*tiny_overrides, f"experiment.output_dir={tmp_path}/out",
                 f"eval.weights_dir={tmp_path}/weights",
                 "eval.identity.model.input_size=32", "eval.identity.model.channels=[8,16]",
                 "eval.identity.model.embedding_dim=8",
                 "eval.identity.train.max_steps=3", "eval.identity.train.batch_size=8",
                 "eval.identity.train.warmup_steps=1", "eval.identity.train.log_every=1",
                 "eval.identity.train.eval_every=3", "eval.identity.train.save_every=2"]
    folder = train.main(load_config("tiny", overrides), "identity", progress=False)
    model = IdentityEncoder.from_pretrained(tmp_path / "weights" / "identity")
    assert model.config.embedding_dim == 8 and model.config.num_classes == 4
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] == 3
    for key in ("top1/unseen", "top1/unseen_vs_all", "top1/dev"):
        assert 0 <= info["eval"][key] <= 1
    log = [json.loads(line) for line in (tmp_path / "out" / "identity" / "metrics.jsonl")
           .read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and "accuracy" in log[0]


def test_a_folder_without_a_dataset_is_refused(tmp_path):
    from signgen.training.tasks.identity import IdentityTask

    with pytest.raises(SignGenError, match="not a SynthSign dataset"):
        IdentityTask(load_config("tiny", [f"data.root={tmp_path}"]))
