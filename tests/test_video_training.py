"""Stage I training on the tiny dataset: VAE, phase 1 (frames), phase 2 (temporal layers),
export to a pipeline that renders; the loss falls on a fixed batch."""

import json

import numpy as np
import pytest
import torch

from signgen.config import load_config
from signgen.errors import SignGenError

SMALL = ["video.vae.block_out_channels=[8,16]", "video.vae.norm_num_groups=4",
         "video.condition_encoder.block_out_channels=[8,16]",
         "video.condition_encoder.embedding_channels=8",
         "video.reference_encoder.block_out_channels=[8,16]",
         "video.denoiser.block_out_channels=[16,32]", "video.denoiser.cross_attention_dim=16",
         "video.denoiser.motion_max_seq_length=8", "video.clip_length=4",
         "video.sampling.window=4", "video.sampling.overlap=1",
         "video.denoiser.num_train_timesteps=100"]
STEPS = ["max_steps=2", "batch_size=2", "warmup_steps=1", "log_every=1", "eval_every=2",
         "save_every=2"]
# Every stage-I training (VAE, phases, render decoder) on micro steps, the render decoder
# on 2 clips and 32 px crops: what tests that run the demo recipe pass.
MICRO_VIDEO = [*(f"video.{phase}.{kv}" for phase in ("vae_train", "vae_decoder_train",
                                                     "phase1_train", "phase2_train",
                                                     "render_decoder.train") for kv in STEPS),
               "video.render_decoder.train_clips=2", "video.render_decoder.eval_clips=1",
               "video.vae.train_crop=32"]


@pytest.fixture(scope="module")
def trained(tiny_overrides, tmp_path_factory):
    import train

    out = tmp_path_factory.mktemp("video_run")
    overrides = [*tiny_overrides, f"experiment.output_dir={out}", *SMALL, *MICRO_VIDEO,
                 "video.render_decoder.colour_augment=1.0"]
    cfg = load_config("tiny", overrides)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train.main(cfg, "vae", progress=False)
        train.main(cfg, "vae_decoder", progress=False)
        folder = train.main(cfg, "video", progress=False)
    finally:
        torch.set_num_threads(threads)
    return cfg, out, folder


def test_both_phases_export_a_pipeline_that_renders(trained, tiny_data_root, one_thread):
    from signgen.pipelines.sign_video import SignVideoPipeline

    cfg, out, folder = trained
    assert folder == out / "video_temporal" / "model"
    info = json.loads((folder / "video.json").read_text())
    assert info["phase"] == 2 and info["vae_hash"]
    pipe = SignVideoPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.has_temporal_layers
    sample = tiny_data_root / "synthsign" / "samples" / "dev-00000"
    with np.load(sample / "conditions.npz") as c:
        pose, hands = c["pose_map"][:5], c["hand_render"][:5]
    reference = np.zeros((64, 64, 3), np.uint8)
    video = pipe(reference, pose, hands, num_inference_steps=2, window=4, overlap=1,
                 generator=torch.Generator().manual_seed(0), progress=False).frames
    assert video.shape == (5, 64, 64, 3) and video.dtype == np.uint8
    log = [json.loads(x) for x in (out / "video_frames" / "metrics.jsonl").read_text()
           .splitlines()]
    assert np.isfinite(log[-1]["eval/dev_loss"])


def test_phase_two_trains_only_the_temporal_layers(trained):
    from signgen.pipelines.sign_video import SignVideoPipeline

    _, out, _ = trained
    phase1 = SignVideoPipeline.from_pretrained(out / "video_frames" / "model")
    phase2 = SignVideoPipeline.from_pretrained(out / "video_temporal" / "model")
    spatial = dict(phase1.unet.named_parameters())
    changed_motion = False
    for name, p in phase2.unet.named_parameters():
        if "motion_modules" in name:
            changed_motion |= bool(p.abs().sum() > 0)
        else:
            assert torch.equal(p, spatial[name]), name
    for part in ("condition_encoder", "reference_encoder"):
        a, b = getattr(phase1, part).state_dict(), getattr(phase2, part).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), part
    assert changed_motion  # the zero-initialised outputs moved


def test_one_step_lowers_the_loss_on_a_fixed_batch(trained, one_thread):
    from signgen.training.tasks.video import VideoTask

    cfg, _, _ = trained
    torch.manual_seed(0)
    task = VideoTask(cfg, temporal=False, progress=False)
    model = task.build_model()
    data = task.train_dataset()
    batch = task._with_latents(task.collate([data[i] for i in range(4)]), "cpu")
    noise = torch.randn(batch["latents"].shape, generator=torch.Generator().manual_seed(0))
    timesteps = torch.tensor([10, 30, 50, 70])
    keep = torch.zeros(4, 2, dtype=torch.bool)
    keep_ref = torch.zeros(4, dtype=torch.bool)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = task._denoise_loss(model, batch, noise, timesteps, keep, keep_ref)
    for _ in range(3):
        optimiser.zero_grad()
        task._denoise_loss(model, batch, noise, timesteps, keep, keep_ref).backward()
        optimiser.step()
    after = task._denoise_loss(model, batch, noise, timesteps, keep, keep_ref)
    assert after.item() < before.item()


def test_gradient_checkpointing_gives_the_same_gradients(trained, one_thread):
    import copy

    from signgen.training.tasks.video import VideoTask

    cfg, _, _ = trained
    cfg = copy.deepcopy(cfg)
    grads, losses = [], []
    for checkpointing in (False, True):
        cfg.video.gradient_checkpointing = checkpointing
        task = VideoTask(cfg, temporal=False, progress=False)
        torch.manual_seed(0)
        model = task.build_model().train()
        assert model.unet.is_gradient_checkpointing == checkpointing
        data = task.train_dataset()
        batch = task._with_latents(task.collate([data[i] for i in range(2)]), "cpu")
        noise = torch.randn(batch["latents"].shape, generator=torch.Generator().manual_seed(0))
        loss = task._denoise_loss(model, batch, noise, torch.tensor([10, 60]),
                                  torch.zeros(2, 2, dtype=torch.bool),
                                  torch.zeros(2, dtype=torch.bool))
        loss.backward()
        losses.append(loss.item())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()
                      if p.grad is not None})
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_the_loss_goes_through_a_ddp_wrapped_model(trained, one_thread):
    """Multi-GPU training wraps the parts in DDP, which hides their attributes: the loss
    must call the wrapper (gradient sync, autocast), never unpack it."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from signgen.training.tasks.video import VideoTask

    cfg, _, _ = trained
    task = VideoTask(cfg, temporal=False, progress=False)
    torch.manual_seed(0)
    model = task.build_model()
    data = task.train_dataset()
    batch = task.collate([data[i] for i in range(2)])
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        wrapped = DistributedDataParallel(model, find_unused_parameters=True)
        loss, _ = task.loss(wrapped, batch)
        loss.backward()
    finally:
        dist.destroy_process_group()
    assert torch.isfinite(loss)
    assert model.unet.conv_in.weight.grad is not None


@pytest.mark.parametrize("clip", [False, True])
def test_the_loss_feeds_the_reference_latent_and_drops_it(clip, one_thread):
    """With a UNet of 2c input channels the loss appends the reference latent (zeros where
    the reference is dropped), for frames and for clips."""
    from test_video_pipeline import make_pipeline

    from signgen.training.video_loss import VideoParts, denoise_loss, training_scheduler

    pipe = make_pipeline(temporal=clip, concat=True)
    model = VideoParts(pipe.condition_encoder, pipe.reference_encoder, pipe.unet)
    g = torch.Generator().manual_seed(0)
    frames = (3,) if clip else ()
    batch = {"latents": torch.randn(2, *frames, 4, 16, 16, generator=g),
             "pose_map": torch.rand(2, *frames, 3, 32, 32, generator=g),
             "hand_render": torch.rand(2, *frames, 3, 32, 32, generator=g),
             "reference": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
             "reference_latents": torch.randn(2, 4, 16, 16, generator=g)}
    seen = []
    hook = model.unet.conv_in.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    args = (training_scheduler(100, "epsilon"), batch, torch.randn_like(batch["latents"]),
            torch.tensor([10, 50]), torch.zeros(2, 2, dtype=torch.bool))
    loss = denoise_loss(model, *args, torch.tensor([False, True]))
    hook.remove()
    loss.backward()
    x = seen[0]  # (B*F,8,h,w) for frames and clips alike
    n = frames[0] if clip else 1
    assert x.shape == (2 * n, 8, 16, 16)
    assert torch.equal(x[:n, 4:], batch["reference_latents"][:1].expand(n, -1, -1, -1))
    assert not x[n:, 4:].any()  # dropped reference: zeros
    assert model.unet.conv_in.weight.grad[:, 4:].abs().sum() > 0


def test_zero_terminal_snr_schedule_ends_in_pure_noise():
    from signgen.config import load_config
    from signgen.errors import ConfigError
    from signgen.training.video_loss import training_scheduler

    assert training_scheduler(1000, "v_prediction", True).alphas_cumprod[-1] == 0
    assert training_scheduler(1000, "epsilon").alphas_cumprod[-1] > 0.004
    with pytest.raises(ConfigError, match="zero_terminal_snr needs prediction_type"):
        load_config("tiny", ["video.denoiser.zero_terminal_snr=true",
                             "video.denoiser.prediction_type=epsilon"])


def test_phase_two_needs_phase_one(tiny_overrides, tmp_path):
    import train

    cfg = load_config("tiny", [*tiny_overrides, f"experiment.output_dir={tmp_path}", *SMALL])
    with pytest.raises(SignGenError, match="python train.py --stage vae"):
        train.main(cfg, "video_frames", progress=False)


def test_colour_shift_changes_frames_and_reference_alike():
    from signgen.training.tasks.video import colour_shift

    g = torch.Generator().manual_seed(0)
    clip = torch.rand(2, 3, 3, 4, 4, generator=g) * 2 - 1  # (B,F,3,H,W)
    reference = clip[:, 0].clone()  # the same pixels as frame 0
    order = torch.tensor([[2, 0, 1], [0, 1, 2]])
    gain = torch.tensor([[1.0, 0.8, 1.2], [1.0, 1.0, 1.0]])
    shifted_clip, shifted_ref = colour_shift(clip, order, gain), colour_shift(reference, order,
                                                                             gain)
    torch.testing.assert_close(shifted_clip[:, 0], shifted_ref)  # alike per sample
    torch.testing.assert_close(shifted_clip[1], clip[1])  # identity order and gain
    expected = ((clip[0, :, 2] + 1) / 2 * 1.0) * 2 - 1  # new channel 0 = old channel 2
    torch.testing.assert_close(shifted_clip[0, :, 0], expected)
    expected = (((clip[0, :, 0] + 1) / 2 * 0.8) * 2 - 1)  # channel 1 = old 0, gain 0.8
    torch.testing.assert_close(shifted_clip[0, :, 1], expected)
    assert shifted_clip.min() >= -1 and shifted_clip.max() <= 1


def test_colour_augmented_batches_encode_their_own_reference_latents(trained, one_thread):
    from signgen.training.tasks.video import VideoTask

    cfg, _, _ = trained
    task = VideoTask(cfg, temporal=False, progress=False)
    items = [task.train_dataset()[i] for i in range(2)]
    batch = task.collate(items)
    plain = task._with_latents(dict(batch), "cpu")
    torch.manual_seed(0)
    shifted = task._with_latents(dict(batch), "cpu", augment=1.0)
    assert not torch.allclose(plain["latents"], shifted["latents"])
    if "reference_latents" in plain:
        assert not torch.allclose(plain["reference_latents"], shifted["reference_latents"])


def test_a_pretrained_condition_encoder_stays_frozen_and_is_exported(trained, tiny_overrides,
                                                                      tmp_path, one_thread):
    """video.condition_encoder.pretrained_path: phase 1 trains the renderer around an
    existing embedding; the exported encoder is that one, weight for weight; an encoder
    of other conditions or widths is refused."""
    from signgen.errors import ConfigError
    from signgen.pipelines.sign_video import SignVideoPipeline
    from signgen.training.tasks.video import VideoTask

    cfg, out, _ = trained
    overrides = [*tiny_overrides, f"experiment.output_dir={out}", *SMALL]
    encoder = out / "video_frames" / "model" / "condition_encoder"
    frozen = load_config("tiny", [*overrides,
                                  f"video.condition_encoder.pretrained_path={encoder}"])
    task = VideoTask(frozen, temporal=False, progress=False)
    assert task.inputs_version != VideoTask(cfg, temporal=False, progress=False).inputs_version
    model = task.build_model()
    trainable = {id(p) for p in task.trainable_parameters(model)}
    assert not any(id(p) in trainable for p in model.condition_encoder.parameters())
    assert any(id(p) in trainable for p in model.unet.parameters())
    loss, _ = task.loss(model, task.collate([task.train_dataset()[i] for i in range(2)]))
    loss.backward()
    assert all(p.grad is None for p in model.condition_encoder.parameters())
    task.export(model, tmp_path / "export")
    original = SignVideoPipeline.from_pretrained(out / "video_frames" / "model")
    exported = SignVideoPipeline.from_pretrained(tmp_path / "export")
    a, b = original.condition_encoder.state_dict(), exported.condition_encoder.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for bad, message in ((["video.condition_encoder.conditions=[pose_map]"], "reads"),
                         (["video.denoiser.block_out_channels=[32,32]"], "outputs")):
        wrong = load_config("tiny", [*overrides, *bad,
                                     f"video.condition_encoder.pretrained_path={encoder}"])
        with pytest.raises(ConfigError, match=message):
            VideoTask(wrong, temporal=False, progress=False).build_model()



def test_latent_hand_weight_marks_the_cells_under_a_hand():
    from signgen.training.video_loss import latent_hand_weight

    render = torch.zeros(2, 3, 3, 16, 16)  # (B,F,3,H,W), black where no hand
    render[0, 1, 2, 5, 9] = 0.5  # one hand pixel: latent cell (1, 2) at factor 4
    weight = latent_hand_weight(render, 4, 12.0)
    assert weight.shape == (2, 3, 1, 4, 4)
    expected = torch.ones(2, 3, 1, 4, 4)
    expected[0, 1, 0, 1, 2] = 12.0
    assert torch.equal(weight, expected)
    assert torch.equal(latent_hand_weight(render[0], 4, 12.0), expected[0])


def test_hand_weighted_loss_counts_hand_cells_more(trained, tiny_overrides, one_thread):
    """video.hand_loss_weight: the same prediction error weighs more under a hand; weight
    1 everywhere is the plain MSE; the option enters the run's inputs_version."""
    from signgen.training.tasks.video import VideoTask
    from signgen.training.video_loss import latent_hand_weight

    cfg, out, _ = trained
    task = VideoTask(cfg, temporal=False, progress=False)
    model = task.build_model()
    data = task.train_dataset()
    items = [data[int(i)] for i in np.linspace(0, len(data) - 1, 4)]
    batch = task._with_latents(task.collate(items), "cpu")
    args = (torch.randn(batch["latents"].shape, generator=torch.Generator().manual_seed(0)),
            torch.tensor([10, 30, 50, 70]), torch.zeros(4, 2, dtype=torch.bool),
            torch.zeros(4, dtype=torch.bool))
    with torch.no_grad():
        plain = task._denoise_loss(model, batch, *args)
        ones = task._denoise_loss(model, {**batch, "latent_weight": torch.ones(
            4, 1, *batch["latents"].shape[-2:])}, *args)
        cells = latent_hand_weight(batch["hand_render"], task.vae_scale_factor, 2.0) - 1
        assert 0 < cells.mean() < 0.5
        hands = task._denoise_loss(model, {**batch, "latent_weight": cells}, *args)
        rest = task._denoise_loss(model, {**batch, "latent_weight": 1 - cells}, *args)
        weighted = task._denoise_loss(model, {**batch, "latent_weight": 1 + 7 * cells}, *args)
    torch.testing.assert_close(ones, plain)
    share = 8 * cells.sum() / (8 * cells.sum() + (1 - cells).sum())  # hands' weight share
    torch.testing.assert_close(weighted, share * hands + (1 - share) * rest)
    heavy = load_config("tiny", [*tiny_overrides, f"experiment.output_dir={out}", *SMALL,
                                 "video.hand_loss_weight=8"])
    heavy_task = VideoTask(heavy, temporal=False, progress=False)
    assert heavy_task.inputs_version != task.inputs_version
    torch.manual_seed(0)
    loss, _ = heavy_task.loss(model, task.collate(items))
    assert torch.isfinite(loss)
    assert set(task.evaluate(model)) == {"dev_loss", "dev_loss_hands"}


def test_references_can_be_other_frames_of_the_same_signer(trained, tiny_overrides, one_thread):
    """video.reference_from_frames: the reference is a frame of the item's own signer (not
    its reference image), encoded on its own; the option enters inputs_version."""
    from signgen.data.synthsign.dataset import images_to_tensor
    from signgen.training.tasks.video import FrameItems, VideoTask

    cfg, out, _ = trained
    task = VideoTask(cfg, temporal=False, progress=False)
    frames = task.train_frames
    torch.manual_seed(0)
    always = FrameItems(frames, reference_from_frames=1.0)
    never = FrameItems(frames)
    for index in np.linspace(0, len(always) - 1, 6).astype(int):
        item, plain = always[int(index)], never[int(index)]
        assert item["reference_is_frame"] and not plain["reference_is_frame"]
        assert torch.equal(plain["reference"], images_to_tensor(frames.reference(item["signer_id"]),
                                                      signed=True))
        own = [k for k, s in enumerate(frames.samples) if s["signer_id"] == item["signer_id"]]
        candidates = np.concatenate([np.arange(frames.offsets[k],
                                               frames.offsets[k] + frames.lengths[k])
                                     for k in own])
        assert any(torch.equal(item["reference"], images_to_tensor(frames.video[i], signed=True))
                   for i in candidates)
    batch = task.collate([always[0], never[0]])
    assert batch["reference_is_frame"].tolist() == [True, False]
    encoded = task._with_latents(dict(batch), "cpu")
    if "reference_latents" in encoded:
        from signgen.training.tasks.video import encode_frames
        torch.testing.assert_close(encoded["reference_latents"][:1],
                                   encode_frames(task.vae, batch["reference"][:1]))
    mixed = load_config("tiny", [*tiny_overrides, f"experiment.output_dir={out}", *SMALL,
                                 "video.reference_from_frames=0.5"])
    plain_cfg = load_config("tiny", [*tiny_overrides, f"experiment.output_dir={out}", *SMALL])
    assert VideoTask(mixed, temporal=False, progress=False).inputs_version \
        != VideoTask(plain_cfg, temporal=False, progress=False).inputs_version


def test_a_condition_adapter_trains_in_phase_one_and_stays_frozen_in_phase_two(
        trained, tiny_overrides, tmp_path, one_thread):
    """video.condition_adapter: phase 1 trains it with the UNet and exports it; phase 2
    lifts it unchanged (frozen); a config without one refuses that phase-1 model."""
    from signgen.errors import ConfigError
    from signgen.pipelines.sign_video import SignVideoPipeline
    from signgen.training.tasks.video import VideoTask

    cfg, out, _ = trained
    overrides = [*tiny_overrides, *SMALL, "video.condition_adapter=true",
                 "video.reference_shift=1",
                 f"video.vae.pretrained_path={out / 'vae' / 'model'}"]
    adapted = load_config("tiny", [*overrides, f"experiment.output_dir={tmp_path}"])
    task = VideoTask(adapted, temporal=False, progress=False)
    assert task.inputs_version != VideoTask(cfg, temporal=False, progress=False).inputs_version
    model = task.build_model()
    trainable = {id(p) for p in task.trainable_parameters(model)}
    assert all(id(p) in trainable for p in model.condition_adapter.parameters())
    loss, _ = task.loss(model, task.collate([task.train_dataset()[i] for i in range(2)]))
    loss.backward()
    assert any(p.grad.abs().sum() > 0 for p in model.condition_adapter.parameters())
    task.export(model, tmp_path / "video_frames" / "model")
    exported = SignVideoPipeline.from_pretrained(tmp_path / "video_frames" / "model")
    assert exported.condition_adapter is not None

    phase2 = VideoTask(adapted, temporal=True, progress=False)
    lifted = phase2.build_model()
    frozen = {id(p) for p in phase2.trainable_parameters(lifted)}
    assert not any(id(p) in frozen for p in lifted.condition_adapter.parameters())
    without = load_config("tiny", [*overrides, f"experiment.output_dir={tmp_path}",
                                   "video.condition_adapter=false"])
    with pytest.raises(ConfigError, match="trained with one"):
        VideoTask(without, temporal=True, progress=False).build_model()


def test_random_translate_moves_each_sample_by_whole_cells():
    from signgen.training.tasks.video import random_translate

    latents = torch.arange(2 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6).repeat(1, 3, 1, 1)
    assert random_translate(latents, 0) is latents
    moved = random_translate(latents, 2, torch.Generator().manual_seed(0))
    assert moved.shape == latents.shape
    for original, shifted in zip(latents, moved, strict=True):
        # the centre 2x2 of a shifted map is a 2x2 block somewhere in the original
        centre = shifted[0, 2:4, 2:4]
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(original[0, 2 + dy:4 + dy, 2 + dx:4 + dx], centre)]
        assert len(found) == 1
    offsets = {tuple((random_translate(latents, 2, torch.Generator().manual_seed(seed))
                      - latents)[0, 0, 3, 3:4].tolist()) for seed in range(20)}
    assert len(offsets) > 3  # offsets vary from draw to draw


def test_reference_shift_needs_a_concatenated_reference(tiny_overrides):
    from signgen.errors import ConfigError

    with pytest.raises(ConfigError, match="concat_latent"):
        load_config("tiny", [*tiny_overrides, "video.reference_shift=2",
                             "video.reference_encoder.concat_latent=false"])
    cfg = load_config("tiny", [*tiny_overrides, "video.reference_shift=2"])
    assert cfg.video.reference_shift == 2


def test_the_render_decoder_tunes_only_the_decoder_on_the_renderers_latents(
        trained, tiny_data_root, one_thread):
    """--stage render_decoder: the video model's latents of train clips (rendered as the
    pipeline renders them) -> a video folder whose VAE has the same encoder and a tuned
    decoder, recording the decoder it started from; a rerun reuses the latents."""
    import train
    from signgen.data.frame_cache import FrameCache
    from signgen.pipelines.sign_video import SignVideoPipeline
    from signgen.training.rendered_latents import RenderedLatents, colour_change, recoloured
    from signgen.training.tasks.render_decoder import pipeline_sampling
    from signgen.training.tasks.vae import to_unit
    from signgen.training.tasks.video import colour_shift

    cfg, out, video = trained
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = train.main(cfg, "render_decoder", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert folder == out / "render_decoder" / "model"
    tuned, original = (SignVideoPipeline.from_pretrained(f) for f in (folder, video))
    before, after = original.vae.state_dict(), tuned.vae.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith(
        ("decoder.", "post_quant_conv.")))
    assert any(not torch.equal(before[k], after[k]) for k in before
               if k.startswith("decoder."))
    for name in ("unet", "condition_encoder", "reference_encoder"):
        ours, theirs = getattr(tuned, name).state_dict(), getattr(original, name).state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name
    info = json.loads((folder / "video.json").read_text())
    assert info["render_decoder"]["video_model"] == str(video)
    assert set(info["render_decoder"]["eval_before"]) == {"psnr", "ssim", "psnr_signer",
                                                         "psnr_hands"}
    assert json.loads((folder / "training.json").read_text())["stage"] == "render_decoder"

    # the stored latents are the pipeline's for the clip's conditions, (recoloured)
    # reference and seed; its ground truth is recoloured alike
    rendered = RenderedLatents(out / "render_decoder" / "latents-train")
    first = rendered.index["samples"][0]
    cache = FrameCache.open(tiny_data_root / "synthsign", "train")
    frames = slice(first["cache_offset"], first["cache_offset"] + first["length"])
    order, gain = colour_change(cfg.experiment.seed + first["number"], 1.0)
    assert first["colour_order"] == order.tolist() and first["colour_gain"] != [1.0] * 3
    reference = recoloured(cache.reference(first["signer_id"]), order, gain)
    assert not np.array_equal(reference, cache.reference(first["signer_id"]))
    target = rendered.target_frames([0], cache.video[frames][:1])
    torch.testing.assert_close(target, colour_shift(to_unit(cache.video[frames][:1]),
                                                    order[None], gain[None]))
    again = original(reference, np.array(cache.pose_map[frames]),
                     np.array(cache.hand_render[frames]), output_type="latent",
                     generator=torch.Generator().manual_seed(cfg.experiment.seed
                                                             + first["number"]),
                     progress=False, **pipeline_sampling(cfg.video.sampling)).frames
    torch.testing.assert_close(torch.from_numpy(np.array(rendered.latents[:first["length"]]))
                               .float(), again.half().float())
    assert len(rendered) == rendered.latents.shape[0] == sum(
        s["length"] for s in rendered.index["samples"])


def test_the_render_decoder_loss_falls_and_needs_a_video_model(trained, tiny_overrides,
                                                               tmp_path, one_thread):
    from signgen.errors import ConfigError
    from signgen.training.tasks.render_decoder import RenderDecoderTask

    cfg, _, _ = trained
    task = RenderDecoderTask(cfg)
    model = task.build_model()
    params = task.trainable_parameters(model)
    assert {id(p) for p in params} == {id(p) for p in [*model.vae.decoder.parameters(),
                                                        *model.vae.post_quant_conv.parameters()]}
    torch.manual_seed(0)
    dataset = task.train_dataset()
    batch = task.collate([dataset[i] for i in range(4)])
    assert batch["latents"].shape[-1] * task.factor == batch["frames"].shape[-1] == 32
    optimiser = torch.optim.Adam(params, lr=1e-3)
    first, _ = task.loss(model, batch)
    for _ in range(3):
        optimiser.zero_grad()
        loss, logs = task.loss(model, batch)
        loss.backward()
        optimiser.step()
    assert task.loss(model, batch)[0].item() < first.item() and "l1_hands" in logs
    empty = load_config("tiny", [*tiny_overrides, f"experiment.output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="--stage video"):
        RenderDecoderTask(empty)


def test_rendered_latents_of_another_renderer_are_refused(trained, tiny_data_root, tmp_path,
                                                          one_thread):
    from signgen.training.rendered_latents import render_latents
    from signgen.training.tasks.render_decoder import pipeline_sampling

    cfg, out, video = trained
    sampling = pipeline_sampling(cfg.video.sampling)
    folder = tmp_path / "latents"
    first = render_latents(video, tiny_data_root / "synthsign", "dev", 1, folder, sampling,
                           progress=False)
    assert render_latents(video, tiny_data_root / "synthsign", "dev", 1, folder, sampling,
                          progress=False).index == first.index  # reopened, not rendered
    with pytest.raises(SignGenError, match="other inputs"):
        render_latents(video, tiny_data_root / "synthsign", "dev", 1, folder,
                       {**sampling, "num_inference_steps": 1}, progress=False)
