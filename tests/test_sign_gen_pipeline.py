"""SignGenPipeline on tiny random components: text -> tokens -> embeddings + SMPL-X pose ->
video; seeds, avatar-only, save/load, mismatched parts and bad input."""

import numpy as np
import pytest
import torch
from test_video_pipeline import SIZE, make_pipeline

from signgen.data.text_tokenizer import TextTokenizer
from signgen.errors import InvalidInputError
from signgen.models.fsq_autoencoder import FSQAutoencoder
from signgen.models.translator import SignTranslator
from signgen.pipelines.sign_gen import SignGenPipeline


def build(levels=(3, 3, 3), tokenizer=None) -> SignGenPipeline:
    video = make_pipeline(temporal=True)
    tokenizer = tokenizer or TextTokenizer.train(
        ["Hello Anna, I go to the store.", "Who goes to the store tomorrow?"],
        ["ssl-a", "ssl-b"], spelled_words=["anna"], glosses=["HELLO", "GO", "STORE"])
    torch.manual_seed(0)
    fsq = FSQAutoencoder(embedding_channels=8, embedding_size=(SIZE // 2, SIZE // 2),
                         hidden_channels=(8, 8), levels=levels, pose_hidden=16).eval()
    translator = SignTranslator(vocab_size=tokenizer.vocab_size,
                                codebook_size=fsq.codebook_size,
                                tokens_per_frame=fsq.tokens_per_frame, dim=16, num_heads=2,
                                encoder_layers=1, decoder_layers=1, dropout=0.0,
                                max_text_length=32, max_frames=6).eval()
    pipe = SignGenPipeline(translator=translator, fsq=fsq, vae=video.vae, unet=video.unet,
                           condition_encoder=video.condition_encoder,
                           reference_encoder=video.reference_encoder,
                           scheduler=video.scheduler, text_tokenizer=tokenizer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe():
    return build()


REFERENCE = np.full((SIZE, SIZE, 3), 128, np.uint8)


def run(pipe, **kwargs):
    kwargs.setdefault("num_inference_steps", 2)
    kwargs.setdefault("window", 4)
    kwargs.setdefault("overlap", 1)
    return pipe("Hello Zoë", "ssl-b", reference_image=REFERENCE, progress=False, **kwargs)


def test_text_to_video_and_pose(pipe, one_thread):
    out = run(pipe)
    t = len(out.tokens)
    assert 1 <= t <= 6 and out.tokens.shape == (t, 16)
    assert out.frames.shape == (t, SIZE, SIZE, 3) and out.frames.dtype == np.uint8
    assert out.smplx_pose.shape == (t, 165) and out.keypoints.shape == (t, 133, 2)
    inside = (out.keypoints >= -0.5).all(-1) & (out.keypoints < SIZE - 0.5).all(-1)
    np.testing.assert_array_equal(out.visible, inside)  # SynthSign's visibility rule
    assert out.embeddings.shape == (t, 8, SIZE // 2, SIZE // 2)
    assert out.notices == ["unknown word 'zoe': fingerspelled"]
    assert set(out.timings) == {"translate", "decode_tokens", "render_video"}


def test_seeds_and_avatar_only(pipe, one_thread):
    a, b = run(pipe, seed=3), run(pipe, seed=3)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.frames, run(pipe, seed=4).frames)
    sampled = [run(pipe, greedy=False, seed=s, avatar_only=True).tokens for s in (0, 0, 1)]
    assert np.array_equal(sampled[0], sampled[1])
    assert not np.array_equal(sampled[0], sampled[2])
    avatar = pipe("Hello", avatar_only=True, progress=False)
    assert avatar.frames is None and "render_video" not in avatar.timings
    assert avatar.smplx_pose.shape[1] == 165 and avatar.embeddings is None
    # Without the video the embedding decoder is skipped; the pose is the same.
    np.testing.assert_array_equal(run(pipe, seed=5, avatar_only=True).smplx_pose,
                                  run(pipe, seed=5).smplx_pose)


def test_streamed_avatar_chunks_are_the_avatar_only_output(pipe, one_thread):
    whole = pipe("Hello Zoë", "ssl-b", avatar_only=True, seed=7, progress=False)
    assert len(whole.tokens) > 2  # several chunks below
    for chunk_frames in (1, 2, 1000):
        notices, chunks = pipe.stream_avatar("Hello Zoë", "ssl-b", seed=7,
                                             chunk_frames=chunk_frames)
        chunks = list(chunks)
        assert notices == whole.notices and all(len(c.tokens) <= chunk_frames for c in chunks)
        for key in ("tokens", "smplx_pose", "keypoints"):
            # Same tokens; the pose of a chunk may differ in the last float bit (kernels
            # pick other summation orders for other batch sizes).
            np.testing.assert_allclose(np.concatenate([getattr(c, key) for c in chunks]),
                                       getattr(whole, key), rtol=0, atol=1e-5, err_msg=key)
    with pytest.raises(InvalidInputError, match="either text or glosses"):
        pipe.stream_avatar()  # bad input fails at the call, not at the first chunk
    with pytest.raises(InvalidInputError, match="chunk_frames"):
        pipe.stream_avatar("Hello", chunk_frames=0)


def test_glosses_go_through_the_same_model(pipe, one_thread):
    out = pipe(glosses="HELLO fs-ANNA GO", language="ssl-a", avatar_only=True, progress=False)
    assert out.tokens.shape[1] == 16 and out.notices == []


def test_save_and_load_give_identical_output(pipe, tmp_path, one_thread):
    pipe.save_pretrained(tmp_path / "engine")
    assert (tmp_path / "engine" / "text_tokenizer" / "tokenizer.json").is_file()
    loaded = SignGenPipeline.from_pretrained(tmp_path / "engine")
    loaded.set_progress_bar_config(disable=True)
    a, b = run(pipe), run(loaded)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.smplx_pose, b.smplx_pose)


def test_parts_that_were_not_trained_together_are_refused():
    with pytest.raises(InvalidInputError, match="not trained together"):
        p = build()
        SignGenPipeline(translator=p.translator, fsq=build(levels=(3, 3)).fsq, vae=p.vae,
                        unet=p.unet, condition_encoder=p.condition_encoder,
                        reference_encoder=p.reference_encoder, scheduler=p.scheduler,
                        text_tokenizer=p.text_tokenizer)


@pytest.mark.parametrize("kwargs, message", [
    (dict(text="hello", language="ssl-q"), "unknown sign language"),
    (dict(text="", language="ssl-a"), "nothing to sign"),
    (dict(text="hello", glosses="HELLO"), "either text or glosses"),
    (dict(text="hello " * 40), "split it into sentences"),
])
def test_bad_input_is_a_clear_error(pipe, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        pipe(avatar_only=True, progress=False, **kwargs)
    with pytest.raises(InvalidInputError, match="reference image"):
        pipe("hello", progress=False)
    with pytest.raises(InvalidInputError, match="not a signgen pipeline folder"):
        SignGenPipeline.from_pretrained("/nonexistent/engine")


def _export_stages(pipe, tmp_path, fsq_id=None):
    """The three exported stage folders of ``pipe`` (as train.py writes them); the
    translator claims the FSQ checkpoint ``fsq_id`` (default: the real one)."""
    import json

    from signgen.paths import weights_hash

    video, fsq, translator = tmp_path / "video", tmp_path / "fsq", tmp_path / "tr"
    pipe.video_pipeline().save_pretrained(video)
    pipe.fsq.save_pretrained(fsq)
    (fsq / "fsq.json").write_text(json.dumps(
        {"condition_encoder_hash": weights_hash(video / "condition_encoder")}))
    pipe.translator.save_pretrained(translator)
    pipe.text_tokenizer.save(translator)
    (translator / "translator.json").write_text(
        json.dumps({"fsq_id": fsq_id or weights_hash(fsq)}))
    return video, fsq, translator


def test_assemble_checks_that_the_stages_belong_together(tmp_path, one_thread):
    import json

    from PIL import Image

    from signgen.errors import SignGenError
    from signgen.paths import weights_hash
    from signgen.pipelines.assemble import assemble

    pipe = build()
    video, fsq, translator = _export_stages(pipe, tmp_path, fsq_id="0123456789ab")
    with pytest.raises(SignGenError, match="learnt the tokens of FSQ checkpoint 0123456789ab"):
        assemble(video, fsq, translator, tmp_path / "engine")
    (translator / "translator.json").write_text(json.dumps({"fsq_id": weights_hash(fsq)}))
    signers = tmp_path / "refs"
    signers.mkdir()
    for name in ("s1", "s2"):
        Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(signers / f"{name}.png")
    out = assemble(video, fsq, translator, tmp_path / "engine", signers, ["s2"])
    assert [p.name for p in (out / "signers").iterdir()] == ["s2.png"]
    loaded = SignGenPipeline.from_pretrained(out)
    loaded.set_progress_bar_config(disable=True)
    assert np.array_equal(run(loaded).frames, run(pipe).frames)
    (fsq / "fsq.json").write_text(json.dumps({"condition_encoder_hash": "feedfacecafe"}))
    with pytest.raises(SignGenError, match="trained on condition encoder feedfacecafe"):
        assemble(video, fsq, translator, tmp_path / "engine2")


def _stored_as_half(module, folder) -> bool:
    """True when ``module``'s weights are those saved in ``folder``, rounded to float16
    (how an assembled demo stores them)."""
    expected = type(module).from_pretrained(folder).to(torch.float16).float()
    return all(torch.equal(a, b) for a, b in zip(module.state_dict().values(),
                                                 expected.state_dict().values(), strict=True))


def test_a_translator_replaces_the_one_of_an_assembled_pipeline(tmp_path, one_thread):
    """``assemble --base``: a translator trained on the tokens of a shipped (half-precision)
    pipeline's FSQ (the checkpoint it was stored from, or the stored copy) takes that
    pipeline's place; one of another FSQ is refused."""
    import json

    from signgen.errors import SignGenError
    from signgen.paths import weights_hash
    from signgen.pipelines.assemble import assemble, main

    video, fsq, translator = _export_stages(build(), tmp_path)
    base = assemble(video, fsq, translator, tmp_path / "base", storage_dtype="float16")
    new = tmp_path / "new"
    torch.manual_seed(1)  # other weights, same architecture
    old = SignGenPipeline.from_pretrained(base).translator
    SignTranslator(**{k: v for k, v in old.config.items() if not k.startswith("_")}) \
        .save_pretrained(new)
    TextTokenizer.load(translator).save(new)
    (new / "translator.json").write_text(json.dumps({"fsq_id": "0123456789ab"}))
    with pytest.raises(SignGenError, match="learnt the tokens of FSQ checkpoint"):
        main(["--base", str(base), "--translator", str(new), "--out", str(tmp_path / "o")])
    assert weights_hash(fsq) != weights_hash(base / "fsq")  # float16 copy: another hash
    for fsq_id in (weights_hash(fsq), weights_hash(base / "fsq")):
        (new / "translator.json").write_text(json.dumps({"fsq_id": fsq_id}))
        assert main(["--base", str(base), "--translator", str(new), "--out",
                     str(tmp_path / "o")]) == 0
    replaced = SignGenPipeline.from_pretrained(tmp_path / "o")
    assert _stored_as_half(replaced.translator, new)
    assert weights_hash(tmp_path / "o" / "fsq") == weights_hash(base / "fsq")
    stages = json.loads((tmp_path / "o" / "stages.json").read_text())
    assert stages["translator"] == str(new) and stages["base"] == str(base)
    out = replaced(text="hello anna", language="ssl-a", avatar_only=True, progress=False)
    assert out.smplx_pose.shape[1] == 165


def test_an_fsq_and_its_translator_replace_those_of_an_assembled_pipeline(tmp_path,
                                                                         one_thread):
    """``assemble --base --fsq --translator``: stages II and III retrained on a shipped
    pipeline's condition encoder replace its own; an FSQ of another encoder, or a
    translator of another FSQ, is refused."""
    import json

    from signgen.errors import SignGenError
    from signgen.models.fsq_autoencoder import FSQAutoencoder
    from signgen.paths import weights_hash
    from signgen.pipelines.assemble import assemble, main

    video, fsq, translator = _export_stages(build(), tmp_path)
    base = assemble(video, fsq, translator, tmp_path / "base", storage_dtype="float16")
    old = SignGenPipeline.from_pretrained(base)
    torch.manual_seed(2)  # other weights, same architectures
    new_fsq, new_translator = tmp_path / "fsq2", tmp_path / "tr2"
    FSQAutoencoder(**{k: v for k, v in old.fsq.config.items() if not k.startswith("_")}) \
        .save_pretrained(new_fsq)
    SignTranslator(**{k: v for k, v in old.translator.config.items()
                      if not k.startswith("_")}).save_pretrained(new_translator)
    TextTokenizer.load(translator).save(new_translator)
    (new_fsq / "fsq.json").write_text(json.dumps({"condition_encoder_hash": "feedfacecafe"}))
    (new_translator / "translator.json").write_text(
        json.dumps({"fsq_id": weights_hash(new_fsq)}))
    (base / "demo.json").write_text(json.dumps({"command": "python train.py --stage demo",
                                                "stages": {"vae": {"steps": 3}}}))
    (new_fsq / "training.json").write_text(json.dumps({"steps": 15, "command": "fsq cmd",
                                                       "eval": {"x": 1.0}, "other": 0}))
    args = ["--base", str(base), "--fsq", str(new_fsq), "--translator", str(new_translator),
            "--out", str(tmp_path / "o")]
    with pytest.raises(SignGenError, match="trained on condition encoder feedfacecafe"):
        main(args)
    (new_fsq / "fsq.json").write_text(json.dumps(
        {"condition_encoder_hash": weights_hash(base / "condition_encoder")}))
    with pytest.raises(SignGenError, match="learnt the tokens of FSQ checkpoint"):
        main([*args[:2], "--fsq", str(new_fsq), "--translator", str(translator),
              "--out", str(tmp_path / "o")])
    assert main(args) == 0
    replaced = SignGenPipeline.from_pretrained(tmp_path / "o")
    assert _stored_as_half(replaced.fsq, new_fsq)
    assert weights_hash(tmp_path / "o" / "unet") == weights_hash(base / "unet")
    stages = json.loads((tmp_path / "o" / "stages.json").read_text())
    assert stages["fsq"] == str(new_fsq) and stages["translator"] == str(new_translator)
    demo = json.loads((tmp_path / "o" / "demo.json").read_text())  # provenance: the new FSQ's
    assert demo["stages"]["vae"] == {"steps": 3} and "translator" not in demo["stages"]
    assert demo["stages"]["fsq"] == {"steps": 15, "seed": None, "config_hash": None,
                                     "command": "fsq cmd", "git_commit": None,
                                     "eval": {"x": 1.0}}
    [update] = demo["updates"]  # how the folder came to be
    assert update["command"] == "python -m signgen.pipelines.assemble " + " ".join(args)
    assert update["replaced"] == ["fsq", "translator"] and "git_commit" in update
    out = replaced(text="hello anna", language="ssl-a", avatar_only=True, progress=False)
    assert out.smplx_pose.shape[1] == 165


def test_a_renderer_on_the_same_condition_encoder_replaces_the_video_model(tmp_path,
                                                                          one_thread):
    """``assemble --base --video``: a video model trained around the shipped pipeline's
    own (half-precision) condition encoder replaces its VAE, UNet and reference encoder;
    FSQ, translator and encoder stay; one with another condition encoder is refused."""
    import json

    from signgen.errors import SignGenError
    from signgen.models.condition_encoder import MultiConditionEncoder
    from signgen.paths import weights_hash
    from signgen.pipelines.assemble import assemble, main

    video, fsq, translator = _export_stages(build(), tmp_path)
    base = assemble(video, fsq, translator, tmp_path / "base", storage_dtype="float16")
    (base / "demo.json").write_text(json.dumps({"stages": {
        "vae": {"steps": 3}, "vae_decoder": {"steps": 4}, "fsq": {"steps": 6}}}))
    renderer = make_pipeline(temporal=True)
    torch.manual_seed(3)  # another renderer of the same architecture
    for module in (renderer.vae, renderer.unet, renderer.reference_encoder):
        for parameter in module.parameters():
            parameter.data.normal_(0, 0.05)
    other = tmp_path / "other"
    renderer.save_pretrained(other)  # its own (random) condition encoder: refused
    args = ["--base", str(base), "--out", str(tmp_path / "o")]
    with pytest.raises(SignGenError, match="another condition encoder"):
        main([*args, "--video", str(other)])
    renderer.condition_encoder = MultiConditionEncoder.from_pretrained(
        base / "condition_encoder").float()  # as video.condition_encoder.pretrained_path
    renderer.register_modules(condition_encoder=renderer.condition_encoder)
    new = tmp_path / "new"
    renderer.save_pretrained(new)
    frames, vae = tmp_path / "frames", tmp_path / "vae2"
    for folder, steps in ((frames, 5), (vae, 9)):
        folder.mkdir()
        (folder / "training.json").write_text(json.dumps({"steps": steps, "stage": "vae"}))
    (new / "video.json").write_text(json.dumps({"phase": 2, "sampling": {"window": 4},
                                                "frames_model": str(frames),
                                                "vae": str(vae)}))
    (new / "training.json").write_text(json.dumps({"steps": 7, "command": "video cmd"}))
    assert weights_hash(new / "condition_encoder") != weights_hash(base / "condition_encoder")
    assert main([*args, "--video", str(new)]) == 0
    out = tmp_path / "o"
    replaced = SignGenPipeline.from_pretrained(out)
    assert _stored_as_half(replaced.unet, new / "unet")
    assert _stored_as_half(replaced.vae, new / "vae")
    for kept in ("condition_encoder", "fsq", "translator"):
        assert weights_hash(out / kept) == weights_hash(base / kept)
    stages = json.loads((out / "stages.json").read_text())
    assert stages["video"] == str(new) and stages["video_json"]["sampling"] == {"window": 4}
    assert stages.get("sampling") == json.loads((base / "stages.json").read_text()).get("sampling")
    demo = json.loads((out / "demo.json").read_text())
    assert demo["stages"]["video_temporal"]["command"] == "video cmd"
    assert {k: v["steps"] for k, v in demo["stages"].items()} == {
        "vae": 9, "video_frames": 5, "video_temporal": 7, "fsq": 6}  # no stale vae_decoder
    assert demo["updates"][-1]["replaced"] == ["video"]
    replaced.set_progress_bar_config(disable=True)
    expected = SignGenPipeline(
        translator=replaced.translator, fsq=replaced.fsq,
        vae=type(renderer.vae).from_pretrained(new / "vae").half().float(),
        unet=type(renderer.unet).from_pretrained(new / "unet").half().float(),
        condition_encoder=replaced.condition_encoder,
        reference_encoder=type(renderer.reference_encoder).from_pretrained(
            new / "reference_encoder").half().float(),
        scheduler=replaced.scheduler, text_tokenizer=replaced.text_tokenizer)
    expected.set_progress_bar_config(disable=True)
    assert np.array_equal(run(replaced).frames, run(expected).frames)


def test_a_renderer_with_a_condition_adapter_brings_it_and_one_without_removes_it(
        tmp_path, one_thread):
    """``assemble --base --video`` with a renderer that has a condition adapter: the
    pipeline renders through it (as the renderer alone does); replacing that renderer
    by one without an adapter leaves none behind."""
    from test_condition_adapter import with_adapter

    from signgen.models.condition_encoder import MultiConditionEncoder
    from signgen.pipelines.assemble import assemble, main

    base = assemble(*_export_stages(build(), tmp_path), tmp_path / "base")
    plain = make_pipeline(temporal=True)
    plain.condition_encoder = MultiConditionEncoder.from_pretrained(base / "condition_encoder")
    plain.register_modules(condition_encoder=plain.condition_encoder)
    adapted = with_adapter(plain)
    adapted.save_pretrained(tmp_path / "adapted")
    plain.save_pretrained(tmp_path / "plain")
    assert main(["--base", str(base), "--out", str(tmp_path / "a"),
                 "--video", str(tmp_path / "adapted")]) == 0
    with_it = SignGenPipeline.from_pretrained(tmp_path / "a")
    with_it.set_progress_bar_config(disable=True)
    assert with_it.condition_adapter is not None
    embeddings = torch.randn(3, 8, SIZE // 2, SIZE // 2)
    reference = np.zeros((SIZE, SIZE, 3), np.uint8)

    def render(video_pipe):
        return video_pipe(reference, condition_embeddings=embeddings, num_inference_steps=2,
                          window=4, generator=torch.Generator().manual_seed(0),
                          progress=False).frames

    assert np.array_equal(render(with_it.video_pipeline()), render(adapted))
    assert main(["--base", str(tmp_path / "a"), "--out", str(tmp_path / "b"),
                 "--video", str(tmp_path / "plain")]) == 0
    assert SignGenPipeline.from_pretrained(tmp_path / "b").condition_adapter is None
    assert not (tmp_path / "b" / "condition_adapter").exists()


def test_assembled_pipeline_records_the_sampling_it_is_run_with(tmp_path, one_thread):
    """The eval systems run a pipeline with the settings assemble recorded, not the
    (older) ones its video model was exported with."""
    import json

    from signgen.eval.systems import sampling_defaults, sampling_settings
    from signgen.pipelines.assemble import assemble

    video, fsq, translator = _export_stages(build(), tmp_path)
    (video / "video.json").write_text(json.dumps({"sampling": {"num_inference_steps": 20,
                                                              "window_batch": 1}}))
    plain = assemble(video, fsq, translator, tmp_path / "plain")
    assert sampling_defaults(plain) == {"num_inference_steps": 20, "window_batch": 1}
    fast = assemble(video, fsq, translator, tmp_path / "fast",
                    sampling={"num_inference_steps": 3, "window_batch": 0})
    assert sampling_defaults(fast) == {"num_inference_steps": 3, "window_batch": 0}
    settings = sampling_settings(fast, num_inference_steps=None, window_batch=None)
    assert settings == {"num_inference_steps": 3, "window_batch": None}
    assert sampling_settings(fast, num_inference_steps=5)["num_inference_steps"] == 5


def test_assemble_stores_half_precision_and_loads_as_float32(tmp_path, one_thread):
    import copy
    import json

    from signgen.pipelines.assemble import assemble

    pipe = build()
    video, fsq, translator = _export_stages(pipe, tmp_path)
    full = assemble(video, fsq, translator, tmp_path / "full")
    half = assemble(video, fsq, translator, tmp_path / "half", storage_dtype="float16")

    def weight_bytes(folder):
        return sum(p.stat().st_size for p in folder.rglob("*.safetensors"))

    assert weight_bytes(half) < 0.6 * weight_bytes(full)
    assert json.loads((half / "stages.json").read_text())["storage_dtype"] == "float16"
    loaded = SignGenPipeline.from_pretrained(half)
    loaded.set_progress_bar_config(disable=True)
    for module in (loaded.translator, loaded.fsq, loaded.unet, loaded.vae):
        assert {p.dtype for p in module.parameters()} == {torch.float32}
    # The loaded weights are the float32 ones rounded to float16, computed in float32.
    rounded = copy.deepcopy(pipe)
    for module in (rounded.translator, rounded.fsq, rounded.unet, rounded.vae,
                   rounded.condition_encoder, rounded.reference_encoder):
        for p in module.parameters():
            p.data = p.data.half().float()
    assert np.array_equal(run(loaded).frames, run(rounded).frames)
    with pytest.raises(Exception, match="storage dtype 'int4'"):
        assemble(video, fsq, translator, tmp_path / "bad", storage_dtype="int4")


def test_tokens_are_sampled_by_default_and_seeded(pipe, one_thread):
    first, again = (run(pipe, seed=3, avatar_only=True).tokens for _ in range(2))
    greedy = run(pipe, seed=3, avatar_only=True, greedy=True).tokens
    assert np.array_equal(first, again)
    sampled = [run(pipe, seed=s, avatar_only=True).tokens for s in range(4)]
    assert any(not np.array_equal(t, greedy) for t in sampled)  # not greedy decoding


def test_candidates_keep_the_medoid_of_the_seeded_draws(pipe, one_thread):
    from signgen.data.synthsign.conditions import inside_frame
    from signgen.pipelines.candidate_selection import select_medoid

    out = pipe("Hello Zoë", "ssl-b", avatar_only=True, seed=2, candidates=4, progress=False)
    # The same four draws, made by hand: one batch from the seed's generator.
    ids, _ = pipe._text_ids("Hello Zoë", "ssl-b", None)
    ids = ids.expand(4, -1)
    draws = pipe.translator.generate(ids, torch.ones_like(ids, dtype=torch.bool), greedy=False,
                                     generator=torch.Generator().manual_seed(2))
    keypoints = [pipe.decode_tokens(d.numpy(), embeddings=False)[2] for d in draws]
    chosen, risks = select_medoid(keypoints, [inside_frame(k, SIZE, SIZE) for k in keypoints])
    assert len({d.numpy().tobytes() for d in draws}) > 1  # the draws differ
    np.testing.assert_array_equal(out.tokens, draws[chosen].numpy())
    assert np.isfinite(risks).all() and risks[chosen] == risks.min()
    # Streaming gives the same choice; one candidate is the plain draw.
    _, chunks = pipe.stream_avatar("Hello Zoë", "ssl-b", seed=2, candidates=4, chunk_frames=2)
    np.testing.assert_array_equal(np.concatenate([c.tokens for c in chunks]), out.tokens)
    np.testing.assert_array_equal(
        pipe("Hello Zoë", "ssl-b", avatar_only=True, seed=2, candidates=1, progress=False).tokens,
        pipe("Hello Zoë", "ssl-b", avatar_only=True, seed=2, progress=False).tokens)
    np.testing.assert_array_equal(  # greedy draws are all alike: one is decoded
        pipe("Hello", avatar_only=True, greedy=True, candidates=4, progress=False).tokens,
        pipe("Hello", avatar_only=True, greedy=True, progress=False).tokens)
    with pytest.raises(InvalidInputError, match="candidates"):
        pipe("Hello", avatar_only=True, candidates=0, progress=False)
    with pytest.raises(InvalidInputError, match="candidates"):
        pipe.stream_avatar("Hello", candidates=0)


def test_a_translator_with_signer_conditioning_signs_for_the_signer_asked_for(one_thread):
    pipe = build()
    config = {k: v for k, v in pipe.translator.config.items() if not k.startswith("_")}
    translator = SignTranslator(**{**config, "signers": ["s00", "s01"]}).eval()
    with torch.no_grad():
        translator.signer_embed.weight.normal_(std=3.0)  # make the signers differ
    pipe.translator = translator

    def tokens(signer, seed=1):
        return pipe("Hello", avatar_only=True, seed=seed, signer=signer, progress=False)

    differs = [not np.array_equal(tokens("s00", seed).tokens, tokens("s01", seed).tokens)
               for seed in range(4)]
    assert any(differs)
    unknown = tokens("s77")
    assert any("'s77' is not one the translator learnt" in n for n in unknown.notices)
    np.testing.assert_array_equal(unknown.tokens, tokens(None).tokens)  # both "unknown"
    assert not any("learnt" in n for n in tokens("s01").notices)
    _, chunks = pipe.stream_avatar("Hello", seed=1, signer="s01", chunk_frames=2)
    np.testing.assert_array_equal(np.concatenate([c.tokens for c in chunks]),
                                  tokens("s01").tokens)
    many = pipe("Hello", avatar_only=True, seed=1, signer="s01", candidates=3, progress=False)
    assert len(many.tokens) >= 1


def test_a_signer_learnt_mirrored_gets_the_mirror_image_of_the_signing(one_thread):
    """Canonical handedness: the same tokens as for any other signer; pose and keypoints
    mirrored back, and the frames those of the mirrored reference, flipped back."""
    from signgen.body.mirror import mirror_full_pose, mirror_keypoints

    pipe = build()
    config = {k: v for k, v in pipe.translator.config.items() if not k.startswith("_")}
    translator = SignTranslator(**{**config, "mirrored_signers": ["s05"]}).eval()
    translator.load_state_dict(pipe.translator.state_dict())
    pipe.translator = translator
    reference = np.zeros((SIZE, SIZE, 3), np.uint8)
    reference[:, : SIZE // 3] = (200, 40, 40)  # not left/right symmetric
    kwargs = dict(num_inference_steps=2, window=4, overlap=1, seed=3, progress=False)
    plain = pipe("Hello", reference_image=reference, signer="s01", **kwargs)
    mirrored = pipe("Hello", reference_image=reference, signer="s05", **kwargs)
    assert not plain.mirrored and mirrored.mirrored
    np.testing.assert_array_equal(mirrored.tokens, plain.tokens)
    np.testing.assert_allclose(mirrored.smplx_pose, mirror_full_pose(plain.smplx_pose))
    np.testing.assert_allclose(mirrored.keypoints, mirror_keypoints(plain.keypoints, SIZE))
    flipped = pipe("Hello", reference_image=reference[:, ::-1].copy(), signer="s01", **kwargs)
    np.testing.assert_array_equal(mirrored.frames, flipped.frames[:, :, ::-1])
    assert not np.array_equal(mirrored.frames, plain.frames)
    _, chunks = pipe.stream_avatar("Hello", seed=3, signer="s05", chunk_frames=2)
    np.testing.assert_allclose(np.concatenate([c.smplx_pose for c in chunks]),
                               mirrored.smplx_pose)
    assert not pipe.translator.mirrors(None) and pipe.translator.mirrors("s05")
