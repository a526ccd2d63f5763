"""The FSQ autoencoder (stage II): exact index round trip, derived codebook size, save/load,
valid axis-angle from the 6D pose head, temporal context within clips only, a loss that
drops; token folders that refuse another checkpoint; a 2-step training run."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

from signgen.errors import InvalidInputError, SignGenError
from signgen.models.fsq_autoencoder import (
    NUM_POSE_JOINTS,
    POSE_JOINT_INDICES,
    FSQAutoencoder,
    axis_angle_to_matrix,
    keypoints_to_pixels,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    pixels_to_keypoints,
    rotation_6d_to_matrix,
)

TINY = dict(embedding_channels=4, embedding_size=(8, 8), hidden_channels=(8, 16),
            pose_hidden=32)


def tiny_model(**kwargs) -> FSQAutoencoder:
    torch.manual_seed(0)
    return FSQAutoencoder(**{**TINY, **kwargs}).eval()


def embeddings(n: int, model: FSQAutoencoder, seed: int = 0) -> torch.Tensor:
    c, (h, w) = model.config.embedding_channels, model.config.embedding_size
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def randomise_temporal(model: FSQAutoencoder) -> None:
    """The temporal convs start at zero (identity); give them weights to test."""
    with torch.no_grad():
        for part in (model.encoder_temporal, model.decoder_temporal):
            part.conv.weight.normal_(0, 0.3)


@pytest.mark.parametrize("levels", [(5, 5, 5, 5), (8, 5, 5, 5), (3, 4)])
def test_codebook_size_is_derived_from_levels(levels, one_thread):
    model = tiny_model(levels=levels)
    assert model.codebook_size == math.prod(levels)
    assert model.code_dim == len(levels)
    assert "codebook_size" not in model.config


@pytest.mark.parametrize("kwargs", [{}, {"temporal_kernel": 3}, {"levels": (7, 5, 3)},
                                    {"embedding_size": (9, 6)}])
def test_indices_decode_to_exactly_the_codes(kwargs, one_thread):
    model = tiny_model(**kwargs)
    if model.config.temporal_kernel > 1:
        randomise_temporal(model)
    x = embeddings(6, model) * 3  # spread over the whole lattice
    with torch.no_grad():
        out = model.encode(x, num_frames=3)
    assert out.indices.dtype == torch.int64
    assert out.indices.shape == (6, model.tokens_per_frame)
    assert out.codes.shape == (6, model.code_dim, *model.token_grid)
    assert int(out.indices.min()) >= 0 and int(out.indices.max()) < model.codebook_size
    assert torch.equal(model.decode_indices(out.indices), out.codes)
    with torch.no_grad():
        decoded = model.decode(out.codes, num_frames=3)
    assert decoded.embedding.shape == x.shape
    assert decoded.smplx_pose.shape == (6, 165) and decoded.keypoints.shape == (6, 133, 2)
    with torch.no_grad():  # the avatar's decode: the same pose, no embedding
        pose_only = model.decode(out.codes, num_frames=3, embedding=False)
    assert pose_only.embedding is None
    assert torch.equal(pose_only.smplx_pose, decoded.smplx_pose)
    assert torch.equal(pose_only.keypoints, decoded.keypoints)


def test_token_grid_halves_per_stage_rounding_up(one_thread):
    assert tiny_model().token_grid == (2, 2)  # 8 -> 4 -> 2
    assert tiny_model(embedding_size=(9, 6)).token_grid == (3, 2)  # 9 -> 5 -> 3, 6 -> 3 -> 2
    assert FSQAutoencoder(embedding_channels=4, hidden_channels=(8, 8, 8), pose_hidden=8
                          ).tokens_per_frame == 16  # the tiny default: 32x32 -> 4x4


def test_save_load_round_trip_gives_identical_outputs(tmp_path, one_thread):
    model = tiny_model(temporal_kernel=3)
    randomise_temporal(model)
    shape = model.embedding_mean.shape
    model.set_embedding_statistics(torch.randn(shape), torch.rand(shape) + 0.5)
    model.save_pretrained(tmp_path)
    again = FSQAutoencoder.from_pretrained(tmp_path).eval()
    x = embeddings(4, model)
    with torch.no_grad():
        a, b = model(x, num_frames=2), again(x, num_frames=2)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(again.embedding_scale, model.embedding_scale)
    assert again.codebook_size == model.codebook_size


def test_rotation_conversions_round_trip(one_thread):
    g = torch.Generator().manual_seed(0)
    axis = torch.nn.functional.normalize(torch.randn(2000, 3, generator=g), dim=-1)
    angle = torch.rand(2000, 1, generator=g) * (math.pi - 1e-3)
    axis_angle = axis * angle
    matrix = axis_angle_to_matrix(axis_angle)
    assert torch.allclose(matrix @ matrix.transpose(-1, -2), torch.eye(3).expand(2000, 3, 3),
                          atol=1e-5)
    assert torch.allclose(torch.linalg.det(matrix), torch.ones(2000), atol=1e-5)
    back = matrix_to_axis_angle(rotation_6d_to_matrix(matrix_to_rotation_6d(matrix)))
    assert torch.allclose(back, axis_angle, atol=1e-4)
    assert torch.equal(axis_angle_to_matrix(torch.zeros(3)), torch.eye(3))
    assert torch.equal(matrix_to_axis_angle(torch.eye(3)), torch.zeros(3))
    # Any 6D vector gives a rotation.
    any_6d = rotation_6d_to_matrix(torch.randn(100, 6, generator=g))
    assert torch.allclose(torch.linalg.det(any_6d), torch.ones(100), atol=1e-5)


def test_pose_head_gives_valid_axis_angle_in_smplx_order(one_thread):
    model = tiny_model()
    with torch.no_grad():
        for p in model.to_rotations.parameters():
            p.normal_(0, 1)  # far from the rest pose
        out = model(embeddings(5, model))
    joints = out.smplx_pose.view(5, 55, 3)
    assert torch.equal(joints[:, 23:25], torch.zeros(5, 2, 3))  # eyes
    assert float(joints.norm(dim=-1).max()) <= math.pi + 1e-5
    assert torch.allclose(axis_angle_to_matrix(joints[:, list(POSE_JOINT_INDICES)]),
                          out.rotations, atol=1e-4)
    assert out.rotations.shape == (5, NUM_POSE_JOINTS, 3, 3)
    # A fresh model starts near the rest pose.
    with torch.no_grad():
        assert float(tiny_model()(embeddings(5, model)).smplx_pose.abs().max()) < 0.5


def test_keypoint_normalisation_maps_frame_edges_to_unit_range():
    pixels = torch.tensor([[-0.5, -0.5], [63.5, 31.5], [10.0, 20.0]])
    normalised = pixels_to_keypoints(pixels, height=32, width=64)
    assert torch.allclose(normalised[:2], torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    assert torch.allclose(keypoints_to_pixels(normalised, 32, 64), pixels)


def test_temporal_context_stays_inside_each_clip(one_thread):
    model = tiny_model(temporal_kernel=3)
    randomise_temporal(model)
    x = embeddings(6, model)
    y = x.clone()
    y[1] += 1.0  # frame 1 of clip 0 (clips of 3 frames: rows 0-2, 3-5)
    with torch.no_grad():
        a, b = model(x, num_frames=3), model(y, num_frames=3)
    assert not torch.equal(a.embedding[0], b.embedding[0])  # a neighbour in the clip
    assert torch.equal(a.embedding[3:], b.embedding[3:])  # the other clip
    plain = tiny_model()
    with torch.no_grad():
        a, b = plain(x), plain(y)
    assert torch.equal(a.embedding[0], b.embedding[0])  # frames independent


def test_loss_drops_on_a_fixed_batch(one_thread):
    model = tiny_model().train()
    x = embeddings(8, model)
    g = torch.Generator().manual_seed(1)
    target_rot = axis_angle_to_matrix(torch.randn(8, NUM_POSE_JOINTS, 3, generator=g) * 0.3)
    target_kp = torch.rand(8, 133, 2, generator=g) * 2 - 1
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_of(out):
        return (torch.nn.functional.mse_loss(out.embedding, x)
                + torch.nn.functional.mse_loss(out.rotations, target_rot)
                + (out.keypoints - target_kp).abs().mean())

    losses = []
    for _ in range(80):
        loss = loss_of(model(x))
        optimiser.zero_grad()
        loss.backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_inputs_raise_clear_errors(one_thread):
    model = tiny_model()
    x = embeddings(4, model)
    with pytest.raises(InvalidInputError, match="embedding must be"):
        model.encode(x[:, :2])
    with pytest.raises(InvalidInputError, match="embedding must be"):
        model.encode(x[0])
    with pytest.raises(InvalidInputError, match="float"):
        model.encode(x.long())
    with pytest.raises(InvalidInputError, match="num_frames"):
        model.encode(x, num_frames=3)
    indices = model.encode(x).indices
    with pytest.raises(InvalidInputError, match=r"\[0, 625\)"):
        model.decode_indices(indices + 625)
    with pytest.raises(InvalidInputError, match=r"\[0, 625\)"):
        model.decode_indices(indices - 700)
    with pytest.raises(InvalidInputError, match="integer"):
        model.decode_indices(indices.float())
    with pytest.raises(InvalidInputError, match=r"\(N,4\)"):
        model.decode_indices(indices[:, :3])
    with pytest.raises(InvalidInputError, match="codes must be"):
        model.decode(torch.zeros(2, 3, 2, 2))
    with pytest.raises(InvalidInputError, match="scale"):
        model.set_embedding_statistics(torch.zeros(4, 8, 8), torch.zeros(4, 8, 8))
    with pytest.raises(InvalidInputError, match="must be"):
        model.set_embedding_statistics(torch.zeros(4, 8), torch.ones(4, 8))
    with pytest.raises(InvalidInputError, match="levels"):
        FSQAutoencoder(**{**TINY, "levels": (2, 5)})
    with pytest.raises(InvalidInputError, match="temporal_kernel"):
        FSQAutoencoder(**{**TINY, "temporal_kernel": 2})


def test_config_rejects_bad_fsq_settings():
    from signgen.config import load_config
    from signgen.errors import ConfigError

    cfg = load_config("tiny")
    assert cfg.fsq.video_model.endswith("video_frames/model")  # same encoder as phase 2
    with pytest.raises(ConfigError, match="levels"):
        load_config("tiny", ["fsq.model.levels=[2,5]"])
    with pytest.raises(ConfigError, match="codebook_size"):
        load_config("tiny", ["fsq.model.codebook_size=625"])


# -- token folders ---------------------------------------------------------------------------
def test_token_folder_round_trip_and_refuses_another_checkpoint(tiny_data_root, tmp_path,
                                                                one_thread):
    from signgen.data.tokens import load_tokens, tokenise_split
    from signgen.models.condition_encoder import MultiConditionEncoder

    torch.manual_seed(0)
    encoder = MultiConditionEncoder(block_out_channels=[4, 8], embedding_channels=4,
                                    out_channels=4)
    model = tiny_model(embedding_size=(32, 32), temporal_kernel=3)
    out = tokenise_split(model, encoder, tiny_data_root / "synthsign", "dev",
                         tmp_path / "dev", fsq_id="abc123", progress=False)
    split = load_tokens(out, "abc123")
    assert split.meta["split"] == "dev" and split.codebook_size == 625
    assert len(split.samples) == split.meta["num_samples"] == 1
    sample = split.samples[0]
    assert sample["sample_id"] == "dev-00000" and sample["glosses"] and sample["text"]
    tokens = sample["tokens"]
    assert tokens.dtype == np.int64 and tokens.shape[1] == model.tokens_per_frame == 64
    assert tokens.shape[0] == split.meta["num_frames"]
    assert 0 <= tokens.min() and tokens.max() < 625
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev"]  # no temporary left
    with pytest.raises(SignGenError, match="other|not 'def456'"):
        load_tokens(out, "def456")
    with pytest.raises(SignGenError, match="not a token folder"):
        load_tokens(tmp_path / "missing", "abc123")


def pose_reading_tokeniser():
    """A tiny condition encoder and pose-reading FSQ model whose tokens follow the pose."""
    from signgen.models.condition_encoder import MultiConditionEncoder

    torch.manual_seed(0)
    encoder = MultiConditionEncoder(block_out_channels=[4, 8], embedding_channels=4,
                                    out_channels=4).eval()
    model = tiny_model(embedding_size=(32, 32), pose_input=True)
    with torch.no_grad():  # an untrained pose path is faint: make it count
        model.pose_encoder[-1].weight.mul_(50)
    return encoder, model


def test_tokenising_gives_a_pose_reading_fsq_each_samples_poses(tiny_data_root, tmp_path,
                                                                 one_thread):
    from signgen.data.synthsign.dataset import SynthSignDataset
    from signgen.data.tokens import load_tokens, tokenise_split

    encoder, model = pose_reading_tokeniser()
    out = tokenise_split(model, encoder, tiny_data_root / "synthsign", "dev",
                         tmp_path / "dev", fsq_id="abc123", progress=False)
    tokens = load_tokens(out, "abc123").samples[0]["tokens"]
    item = SynthSignDataset(tiny_data_root / "synthsign", "dev",
                            fields=("pose_map", "hand_render", "motion"))[0]
    with torch.no_grad():
        embedding = encoder.embed({"pose_map": item["pose_map"],
                                   "hand_render": item["hand_render"]})
        expected = model.encode(embedding, smplx_pose=item["poses"].float()).indices
        unposed = model.encode(embedding, smplx_pose=torch.zeros_like(item["poses"]).float())
    assert np.array_equal(tokens, expected.numpy())
    assert not np.array_equal(tokens, unposed.indices.numpy())


def test_an_assembled_pipelines_fsq_tokenises_with_its_own_encoder(tiny_data_root, tmp_path,
                                                                   one_thread):
    """``--fsq assets/pipeline/fsq``: no fsq.json there; the pipeline's condition encoder."""
    from test_video_pipeline import make_pipeline

    from signgen.data.tokens import (
        fsq_weights_id,
        load_tokens,
        tokenise_split,
        tokenise_with_export,
    )

    engine = tmp_path / "engine"
    video = make_pipeline(size=64)
    video.save_pretrained(engine)
    model = tiny_model(embedding_channels=8, embedding_size=(32, 32))
    model.save_pretrained(engine / "fsq")
    with pytest.raises(SignGenError, match="neither an exported FSQ autoencoder"):
        tokenise_with_export(engine / "fsq", tiny_data_root / "synthsign", "dev",
                             tmp_path / "a", progress=False)
    (engine / "stages.json").write_text("{}")
    made = tokenise_with_export(engine / "fsq", tiny_data_root / "synthsign", "dev",
                                tmp_path / "a", progress=False)
    expected = tokenise_split(model, video.condition_encoder.eval(),
                              tiny_data_root / "synthsign", "dev", tmp_path / "b",
                              fsq_id="x", progress=False)
    a = load_tokens(made, fsq_weights_id(engine / "fsq")).samples[0]["tokens"]
    assert np.array_equal(a, load_tokens(expected, "x").samples[0]["tokens"])


# -- the training task -----------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["no", "bf16", "auto"])
def test_fsq_stage_trains_evaluates_and_exports(tiny_overrides, tiny_data_root, tmp_path,
                                                one_thread, precision):
    from test_video_pipeline import make_pipeline

    import train
    from signgen.config import load_config
    from signgen.paths import weights_hash

    data_root = tmp_path / "data"  # a private copy: the frame cache writes into it
    shutil.copytree(tiny_data_root / "synthsign", data_root / "synthsign",
                    ignore=shutil.ignore_patterns("cache"))
    video_dir = tmp_path / "stage1"
    make_pipeline(size=64).save_pretrained(video_dir)
    base = [o for o in tiny_overrides if not o.startswith("data.root=")]
    cfg = load_config("tiny", [
        *base, f"data.root={data_root}", f"experiment.output_dir={tmp_path / 'out'}",
        f"fsq.video_model={video_dir}", "fsq.model.hidden_channels=[8,16,16]",
        "fsq.model.pose_hidden=32", "fsq.model.temporal_kernel=3", "fsq.clip_length=3",
        *(f"fsq.train.{kv}" for kv in ("max_steps=2", "batch_size=2", "warmup_steps=1",
                                       "log_every=1", "eval_every=2", "save_every=2")),
        f"fsq.train.mixed_precision='{precision}'"])  # quoted: YAML reads no as False
    folder = train.main(cfg, "fsq", progress=False)
    records = [json.loads(line) for line in (tmp_path / "out" / "fsq" / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == [1, 2]
    assert all(math.isfinite(r["loss"]) and r["joint_error_mm"] >= 0 for r in records)
    last = records[-1]
    assert 0 < last["eval/codebook_usage"] <= 1 and last["eval/perplexity"] >= 1
    assert 0 <= last["eval/consecutive_repeat_rate"] <= 1
    assert math.isfinite(last["eval/smplx_joint_error_mm"]) and last["eval/embedding_nmse"] > 0

    info = json.loads((folder / "fsq.json").read_text())
    assert info["condition_encoder_hash"] == weights_hash(video_dir / "condition_encoder")
    assert info["video_model"] == str(video_dir) and info["frame_size"] == [64, 64]
    model = FSQAutoencoder.from_pretrained(folder)
    assert model.config.embedding_channels == 8 and list(model.config.embedding_size) == [32, 32]
    assert model.tokens_per_frame == info["tokens_per_frame"] == 16
    assert model.config.temporal_kernel == 3
    from signgen.precision import training_precision
    training = json.loads((folder / "training.json").read_text())
    assert training["mixed_precision"] == training_precision(precision, "cpu")

    # The joint loss and metric use JointModel: BodyModel's joints without the mesh.
    from signgen.body.model import SMPLXParams
    from signgen.training.tasks.fsq import FSQItems, FSQTask, collate

    task = FSQTask(cfg, progress=False)
    batch = task.collate([task.train_dataset()[i] for i in range(4)])
    # tiny.yaml: the items carry the cached embeddings, computed at the training's precision.
    assert cfg.fsq.embedding_cache and "pose_map" not in batch
    assert task.train_embeddings.precision == {"no": "fp32"}.get(
        training["mixed_precision"], training["mixed_precision"])
    plain = FSQItems(task.train_frames, task.train_motion, task.clip_length)
    conditions = collate([plain[i] for i in range(4)])
    with torch.autocast("cpu", dtype=torch.bfloat16,
                        enabled=task.train_embeddings.precision == "bf16"):
        computed = task._embed(conditions["pose_map"].flatten(0, 1),
                               conditions["hand_render"].flatten(0, 1))
    torch.testing.assert_close(batch["embedding"].flatten(0, 1), computed,
                               atol=1e-3 * computed.abs().max().item(), rtol=1e-3)
    flat = {k: v.flatten(0, 1) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    poses = flat["poses"] + 0.3 * random_poses(len(flat["poses"]))
    targets = task.targets
    expected = targets.body(SMPLXParams.from_full_pose(
        poses, flat["betas"], flat["expression"], flat["transl"])).joints[:, targets.joint_indices]
    torch.testing.assert_close(targets.joints(poses, flat), expected, atol=1e-5, rtol=0)


# -- pose input ------------------------------------------------------------------------------
def random_poses(n: int, seed: int = 1) -> torch.Tensor:
    """(n,165) axis-angle full poses, up to ~0.9 rad per joint."""
    return 0.5 * torch.randn(n, 165, generator=torch.Generator().manual_seed(seed))


def test_pose_input_is_read_required_and_round_trips(tmp_path, one_thread):
    model = tiny_model(pose_input=True)
    x, poses = embeddings(6, model), random_poses(6)
    with torch.no_grad():
        a = model.encode(x, smplx_pose=poses)
        b = model.encode(x, smplx_pose=random_poses(6, seed=2))
        # Indices still decode to exactly the codes, and the pose changes the tokens.
        assert torch.equal(model.decode_indices(a.indices), a.codes)
        assert not torch.equal(a.indices, b.indices)
        out = model(x, smplx_pose=poses)
    assert torch.equal(out.indices, a.indices)
    model.save_pretrained(tmp_path)
    again = FSQAutoencoder.from_pretrained(tmp_path).eval()
    assert again.config.pose_input
    with torch.no_grad():
        reloaded = again(x, smplx_pose=poses)
    for key in out:
        assert torch.equal(out[key], reloaded[key]), key
    with pytest.raises(InvalidInputError, match="pass smplx_pose"):
        model.encode(x)
    with pytest.raises(InvalidInputError, match=r"smplx_pose must be float \(6,165\)"):
        model.encode(x, smplx_pose=poses[:5])
    with pytest.raises(InvalidInputError, match="without pose_input"):
        tiny_model().encode(x, smplx_pose=poses)


def test_pose_input_lets_the_tokens_carry_the_pose(one_thread):
    """Embeddings that say nothing about the pose (all zero): only the pose input can
    tell the frames apart, and the pose loss falls when the encoder reads it."""
    def pose_loss_after_training(pose_input: bool) -> float:
        model = tiny_model(pose_input=pose_input).train()
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, poses = torch.zeros(8, 4, 8, 8), random_poses(8)
        target = axis_angle_to_matrix(poses.view(8, -1, 3)[:, list(POSE_JOINT_INDICES)])
        for _ in range(150):
            out = model(x, smplx_pose=poses if pose_input else None)
            loss = torch.nn.functional.mse_loss(out.rotations, target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return loss.item()

    without, with_pose = pose_loss_after_training(False), pose_loss_after_training(True)
    assert with_pose < 0.5 * without
