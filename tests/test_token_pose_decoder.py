"""TokenPoseDecoder: FSQ tokens -> SMPL-X pose with temporal context; its training stage
and its place in the pipeline (assemble, the avatar path)."""

import json

import numpy as np
import pytest
import torch

from signgen.errors import InvalidInputError, SignGenError
from signgen.models.fsq_autoencoder import FSQAutoencoder
from signgen.models.token_pose_decoder import TokenPoseDecoder

# The pose decoder on micro steps and clips: what tests that run the demo recipe pass.
MICRO_POSE_DECODER = ["pose_decoder.clip_length=4", "pose_decoder.train.max_steps=2",
                      "pose_decoder.train.batch_size=2", "pose_decoder.train.warmup_steps=1",
                      "pose_decoder.train.log_every=1", "pose_decoder.train.eval_every=2",
                      "pose_decoder.train.save_every=2"]

def small_fsq(temporal_kernel: int = 1, seed: int = 0) -> FSQAutoencoder:
    torch.manual_seed(seed)
    return FSQAutoencoder(embedding_channels=4, embedding_size=(16, 16), hidden_channels=(8, 8),
                          levels=(3, 3), temporal_kernel=temporal_kernel,
                          pose_hidden=16).eval()


def random_tokens(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 9, (n, 16), generator=torch.Generator().manual_seed(seed))


def trained_blocks(model: TokenPoseDecoder, seed: int = 3) -> TokenPoseDecoder:
    """``model`` with random (not zero) frame-block outputs, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.frame_blocks:
            block.out.weight.copy_(0.3 * torch.randn(block.out.weight.shape, generator=g))
    return model


@pytest.mark.parametrize("fsq_kernel, separable", [(1, False), (3, False), (1, True)])
def test_it_starts_as_the_fsq_pose_head(fsq_kernel, separable):
    fsq = small_fsq(fsq_kernel)
    decoder = TokenPoseDecoder.from_fsq(fsq, temporal_kernel=3, temporal_layers=2,
                                        separable_frame_blocks=separable).eval()
    tokens = random_tokens(12)
    with torch.no_grad():
        expected = fsq.decode(fsq.decode_indices(tokens), num_frames=6, embedding=False)
        got = decoder(tokens, num_frames=6)
    assert got.embedding is None
    torch.testing.assert_close(got.smplx_pose, expected.smplx_pose, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.keypoints, expected.keypoints, atol=1e-6, rtol=0)
    assert got.smplx_pose.shape == (12, 165) and got.rotations.shape == (12, 53, 3, 3)


@pytest.mark.parametrize("separable", [False, True])
def test_a_frame_is_read_with_its_neighbours_within_reach_and_clips_apart(separable):
    # kernel 3, 2 blocks: each frame sees 2 frames each side
    decoder = trained_blocks(TokenPoseDecoder.from_fsq(small_fsq(), 3, 2, separable)).eval()
    tokens = random_tokens(20)
    changed = tokens.clone()
    changed[5] = (changed[5] + 1) % 9
    with torch.no_grad():
        a = decoder(tokens, num_frames=10).smplx_pose
        b = decoder(changed, num_frames=10).smplx_pose
    moved = (a - b).abs().amax(dim=1) > 1e-6
    assert moved.nonzero().flatten().tolist() == [3, 4, 5, 6, 7]  # clip 2 (rows 10-19) not
    with torch.no_grad():  # the same clip alone reads the same
        torch.testing.assert_close(decoder(tokens[:10]).smplx_pose, a[:10], atol=1e-6, rtol=0)


@pytest.mark.parametrize("separable", [False, True])
def test_save_and_load_give_identical_output(tmp_path, separable):
    decoder = trained_blocks(TokenPoseDecoder.from_fsq(small_fsq(), 5, 1, separable)).eval()
    if separable:  # depthwise frame convs: k weights per channel
        assert decoder.frame_blocks[0].conv.weight.shape == (16, 1, 5)
    decoder.save_pretrained(tmp_path)
    loaded = TokenPoseDecoder.from_pretrained(tmp_path).eval()
    tokens = random_tokens(8)
    with torch.no_grad():
        assert torch.equal(loaded(tokens).smplx_pose, decoder(tokens).smplx_pose)
        assert torch.equal(loaded(tokens).keypoints, decoder(tokens).keypoints)


@pytest.mark.parametrize("tokens, num_frames, message", [
    (torch.zeros(4, 16), None, "integer"),
    (torch.zeros(4, 15, dtype=torch.long), None, r"\(N,16\)"),
    (torch.full((4, 16), 9), None, r"\[0, 9\)"),
    (torch.zeros(4, 16, dtype=torch.long), 3, "divide"),
])
def test_bad_input_is_a_clear_error(tokens, num_frames, message):
    decoder = TokenPoseDecoder.from_fsq(small_fsq())
    with pytest.raises(InvalidInputError, match=message):
        decoder(tokens, num_frames=num_frames)
    with pytest.raises(InvalidInputError, match="odd"):
        TokenPoseDecoder(levels=(3, 3), token_grid=(4, 4), temporal_kernel=4)


@pytest.mark.parametrize("fsq_kernel, kernel, layers, separable", [
    (1, 3, 2, False), (3, 5, 2, False), (1, 5, 1, True), (3, 3, 0, False), (1, 1, 2, False)])
def test_clips_of_different_lengths_read_together_as_each_alone(fsq_kernel, kernel, layers,
                                                                 separable):
    """``lengths``: clips one after the other, each read with its own edge frames repeated
    (never its neighbour clip's), as it would be alone; ``pose=False``: the same keypoints."""
    fsq = small_fsq(fsq_kernel)
    decoder = trained_blocks(TokenPoseDecoder.from_fsq(fsq, kernel, layers, separable)).eval()
    if fsq_kernel > 1:  # the FSQ's temporal conv starts at zero: give it weights too
        with torch.no_grad():
            weight = decoder.decoder_temporal.conv.weight
            weight.copy_(0.3 * torch.randn(weight.shape, generator=torch.Generator()
                                           .manual_seed(5)))
    lengths = [1, 2, 7, 3, 12, 5]
    tokens = random_tokens(sum(lengths), seed=4)
    with torch.no_grad():
        alone = [decoder(clip) for clip in tokens.split(lengths)]
        together = decoder(tokens, lengths=lengths)
        keypoints_only = decoder(tokens, lengths=lengths, pose=False)
        as_one_clip = decoder(tokens)
    for name in ("smplx_pose", "keypoints", "rotations"):
        expected = torch.cat([getattr(out, name) for out in alone])
        torch.testing.assert_close(getattr(together, name), expected, atol=1e-5, rtol=0)
    assert keypoints_only.smplx_pose is None and keypoints_only.rotations is None
    assert torch.equal(keypoints_only.keypoints, together.keypoints)
    if kernel > 1 and layers or fsq_kernel > 1:  # read as one clip, they would mix
        assert not torch.allclose(as_one_clip.keypoints, together.keypoints, atol=1e-4)
    with pytest.raises(InvalidInputError, match="sum to the 30 rows"):
        decoder(tokens, lengths=[1, 2])
    with pytest.raises(InvalidInputError, match=">= 1"):
        decoder(tokens, lengths=[0, 30])
    with pytest.raises(InvalidInputError, match="not both"):
        decoder(tokens, num_frames=30, lengths=[30])


# -- the training stage -----------------------------------------------------------------
def _fsq_folder(tmp_path):
    folder = tmp_path / "fsq"
    small_fsq().save_pretrained(folder)
    return folder


def test_pose_decoder_stage_trains_evaluates_and_exports(tiny_overrides, tiny_data_root,
                                                         tmp_path, one_thread):
    from test_translator import _token_folders

    import train
    from signgen.config import load_config

    fsq = _fsq_folder(tmp_path)
    overrides = [*tiny_overrides, f"experiment.output_dir={tmp_path}/out",
                 f"pose_decoder.fsq_model={fsq}", "pose_decoder.temporal_kernel=3",
                 "pose_decoder.clip_length=8",
                 *(f"pose_decoder.train.{kv}" for kv in
                   ("max_steps=30", "batch_size=4", "learning_rate=3e-3", "warmup_steps=1",
                    "log_every=1", "eval_every=30", "save_every=30"))]
    cfg = load_config("tiny", overrides)
    with pytest.raises(SignGenError, match="python -m signgen.data.tokens"):
        train.main(cfg, "pose_decoder", progress=False)
    fsq_id = _token_folders(tiny_data_root / "synthsign", fsq, codebook_size=9, width=16)
    folder = train.main(cfg, "pose_decoder", progress=False)
    info = json.loads((folder / "pose_decoder.json").read_text())
    assert info["fsq_id"] == fsq_id and info["dev_samples"] >= 1
    log = [json.loads(line) for line in (tmp_path / "out" / "pose_decoder" / "metrics.jsonl")
           .read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])  # it learns the motion
    evaluation = log[-1]
    assert {"eval/smplx_joint_error_mm", "eval/pose_error_deg",
            "eval/keypoint_error_px"} <= set(evaluation)
    # it started as the FSQ's head and learnt: better than that head on the dev samples
    assert evaluation["eval/smplx_joint_error_mm"] < info["fsq_head_eval"]["smplx_joint_error_mm"]
    model = TokenPoseDecoder.from_pretrained(folder)
    assert model.config.temporal_kernel == 3 and model.config.temporal_layers == 2

    # pose_decoder.train_token_features=false: the token-grid feature convs stay the FSQ's.
    frozen = train.main(load_config("tiny", [
        *overrides, f"experiment.output_dir={tmp_path}/frozen",
        "pose_decoder.train_token_features=false", "pose_decoder.train.max_steps=5",
        "pose_decoder.separable_frame_blocks=true", "pose_decoder.token_corruption=0.2"]),
        "pose_decoder", progress=False)
    learnt = TokenPoseDecoder.from_pretrained(frozen)
    source = FSQAutoencoder.from_pretrained(fsq)
    for name, value in source.from_code.state_dict().items():
        assert torch.equal(learnt.from_code.state_dict()[name], value)
        assert not torch.equal(model.from_code.state_dict()[name], value)  # trained above
    assert not torch.equal(learnt.pose_trunk[1].weight, source.pose_trunk[1].weight)
    assert learnt.config.separable_frame_blocks


def test_token_corruption_changes_only_the_training_input(tiny_overrides, tiny_data_root,
                                                          tmp_path, one_thread):
    """pose_decoder.token_corruption: the loss of a training step reads corrupted tokens;
    evaluation (and the model in eval mode) reads them as they are."""
    from test_translator import _token_folders

    from signgen.config import load_config
    from signgen.training.tasks.pose_decoder import PoseDecoderTask

    fsq = _fsq_folder(tmp_path)
    _token_folders(tiny_data_root / "synthsign", fsq, codebook_size=9, width=16)
    cfg = load_config("tiny", [*tiny_overrides, f"pose_decoder.fsq_model={fsq}",
                               "pose_decoder.clip_length=8", "pose_decoder.token_corruption=0.5"])
    task = PoseDecoderTask(cfg)
    model = trained_blocks(task.build_model())
    batch = task.collate([task.train_dataset()[i] for i in range(2)])
    seen = []
    model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(args[0].clone()),
                                    with_kwargs=True)
    model.train()
    task.loss(model, batch)
    model.eval()
    task.loss(model, batch)
    clean = batch["tokens"].flatten(0, 1)
    changed = (seen[0] != clean).float().mean().item()
    assert 0.3 < changed < 0.6  # half replaced, some by the code they had
    assert torch.equal(seen[1], clean)


# -- the pipeline ----------------------------------------------------------------------------
def test_candidates_are_decoded_in_one_call_as_each_alone(one_thread):
    """translate(candidates=N) with a pose decoder reading the neighbours decodes the N
    draws (different lengths) in one call: the keypoints of each draw decoded alone, and
    the same choice as decoding them one by one."""
    from test_sign_gen_pipeline import build

    from signgen.data.synthsign.conditions import inside_frame
    from signgen.pipelines.candidate_selection import select_medoid
    from signgen.pipelines.sign_gen import SignGenPipeline

    base = build(levels=(3, 3))
    decoder = trained_blocks(TokenPoseDecoder.from_fsq(base.fsq, 3, 2)).eval()
    parts = ("translator", "fsq", "vae", "unet", "condition_encoder", "reference_encoder",
             "scheduler", "text_tokenizer")
    pipe = SignGenPipeline(**{name: getattr(base, name) for name in parts},
                           pose_decoder=decoder)
    assert pipe.pose_context
    drawn = [random_tokens(n, seed=n) for n in (1, 5, 2, 9, 4)]
    together = pipe._candidate_keypoints(drawn)
    for tokens, keypoints in zip(drawn, together, strict=True):
        alone = pipe.decode_tokens(tokens.numpy(), embeddings=False)[2]
        assert keypoints.shape == alone.shape
        np.testing.assert_allclose(keypoints, alone, rtol=1e-5, atol=1e-4)  # pixels
    for seed in range(3):
        ids, _ = pipe._text_ids("Hello Anna", "ssl-a", None)
        ids = ids.expand(6, -1)
        draws = pipe.translator.generate(ids, torch.ones_like(ids, dtype=torch.bool),
                                         greedy=False,
                                         generator=torch.Generator().manual_seed(seed))
        keypoints = [pipe.decode_tokens(d.numpy(), embeddings=False)[2] for d in draws]
        chosen, _ = select_medoid(keypoints, [inside_frame(k, *pipe.frame_size)
                                              for k in keypoints])
        tokens, _ = pipe.translate("Hello Anna", "ssl-a", candidates=6,
                                   generator=torch.Generator().manual_seed(seed))
        np.testing.assert_array_equal(tokens, draws[chosen].numpy())


def test_assembled_pipeline_reads_the_pose_with_its_pose_decoder(tmp_path, one_thread):
    from test_sign_gen_pipeline import _export_stages, build
    from test_video_pipeline import SIZE

    from signgen.paths import weights_hash
    from signgen.pipelines.assemble import main
    from signgen.pipelines.sign_gen import SignGenPipeline

    pipe = build(levels=(3, 3))
    video, fsq, translator = _export_stages(pipe, tmp_path)
    base = tmp_path / "base"
    assert main(["--video", str(video), "--fsq", str(fsq), "--translator", str(translator),
                 "--out", str(base), "--storage-dtype", "float16"]) == 0
    decoder_dir = tmp_path / "pd"
    decoder = trained_blocks(TokenPoseDecoder.from_fsq(pipe.fsq, 3, 1)).eval()
    decoder.save_pretrained(decoder_dir)
    (decoder_dir / "pose_decoder.json").write_text(json.dumps({"fsq_id": "0123456789ab"}))
    args = ["--base", str(base), "--pose-decoder", str(decoder_dir), "--out", str(tmp_path / "o")]
    with pytest.raises(SignGenError, match="read the tokens of FSQ checkpoint 0123456789ab"):
        main(args)
    # trained on the float32 FSQ the pipeline was assembled from: accepted
    (decoder_dir / "pose_decoder.json").write_text(json.dumps({"fsq_id": weights_hash(fsq)}))
    assert main(args) == 0
    plain = SignGenPipeline.from_pretrained(base)
    loaded = SignGenPipeline.from_pretrained(tmp_path / "o")
    assert plain.pose_decoder is None and loaded.pose_decoder is not None
    assert loaded.pose_context and not plain.pose_context
    for p in (plain, loaded):
        p.set_progress_bar_config(disable=True)
    kwargs = dict(text="hello anna", language="ssl-a", seed=4, num_inference_steps=1,
                  window=4, overlap=1, progress=False,
                  reference_image=np.full((SIZE, SIZE, 3), 128, np.uint8))
    out, before = loaded(**kwargs), plain(**kwargs)
    assert np.array_equal(out.tokens, before.tokens)  # the same tokens and video ...
    assert np.array_equal(out.frames, before.frames)
    assert not np.allclose(out.smplx_pose, before.smplx_pose)  # ... another pose reading
    with torch.no_grad():
        expected = loaded.pose_decoder(torch.from_numpy(out.tokens)).smplx_pose.numpy()
    np.testing.assert_allclose(out.smplx_pose, expected, atol=1e-6)
    # the avatar stream comes whole (a frame needs its neighbours) and equals the call
    notices, chunks = loaded.stream_avatar("hello anna", "ssl-a", seed=4, chunk_frames=2)
    chunks = list(chunks)
    assert len(chunks) == 1
    np.testing.assert_allclose(chunks[0].smplx_pose, out.smplx_pose, atol=1e-6)
    # a new FSQ drops the pose decoder that read the old one's tokens
    (fsq / "fsq.json").write_text(json.dumps(
        {"condition_encoder_hash": weights_hash(base / "condition_encoder")}))
    assert main(["--base", str(tmp_path / "o"), "--fsq", str(fsq), "--translator",
                 str(translator), "--out", str(tmp_path / "o2")]) == 0
    assert SignGenPipeline.from_pretrained(tmp_path / "o2").pose_decoder is None
