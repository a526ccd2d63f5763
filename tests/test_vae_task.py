"""The VAE training task: trains through the shared loop, exports a diffusers folder
whose reload decodes identically, with a scaling_factor that gives unit-variance latents."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from signgen.config import load_config
from signgen.data.frame_cache import FrameCache
from signgen.errors import ConfigError
from signgen.training.tasks import vae as vae_task

TINY_VAE = ["video.vae.block_out_channels=[8,16]", "video.vae.norm_num_groups=4",
            "video.condition_encoder.block_out_channels=[8,16]"]


@pytest.fixture(scope="module")
def overrides(tiny_overrides, tiny_data_root, tmp_path_factory):
    """Tiny config on a private copy of the tiny dataset (the frame cache writes into it)."""
    data_root = tmp_path_factory.mktemp("vae_data")
    shutil.copytree(tiny_data_root / "synthsign", data_root / "synthsign",
                    ignore=shutil.ignore_patterns("cache"))
    base = [o for o in tiny_overrides if not o.startswith("data.root=")]
    return [*base, f"data.root={data_root}", *TINY_VAE, "experiment.device=cpu"]


def test_trains_exports_and_reloads(overrides, tmp_path, one_thread):
    import train

    cfg = load_config("tiny", [
        *overrides, f"experiment.output_dir={tmp_path}",
        "video.vae_train.max_steps=3", "video.vae_train.batch_size=4",
        "video.vae_train.warmup_steps=1", "video.vae_train.log_every=1",
        "video.vae_train.eval_every=3", "video.vae_train.save_every=2"])
    folder = train.main(cfg, "vae", progress=False)
    records = [json.loads(line) for line in (tmp_path / "vae" / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and r["l1"] > 0 and r["kl"] >= 0 for r in records)
    assert 0 < records[-1]["eval/psnr"] < 100 and -1 <= records[-1]["eval/ssim"] <= 1

    info = json.loads((folder / "vae.json").read_text())
    vae = AutoencoderKL.from_pretrained(folder).eval()
    assert vae.config.block_out_channels == [8, 16] and vae.config.sample_size == 64
    assert math.isfinite(info["scaling_factor"]) and info["scaling_factor"] > 0
    assert vae.config.scaling_factor == pytest.approx(info["scaling_factor"])
    # The scaling factor makes the latent means of the same frames unit-variance.
    cache = FrameCache.open(cfg.data.root + "/synthsign", "train", build=False)
    frames = np.array(cache.video[vae_task.evenly_spaced(vae_task.SCALE_FRAMES, len(cache))])
    means = vae_task.latent_means(vae, frames)
    assert float(means.std()) * vae.config.scaling_factor == pytest.approx(1.0, rel=1e-3)


def test_export_reload_decodes_identically(overrides, tmp_path, one_thread):
    task = vae_task.build_task(load_config("tiny", overrides))
    torch.manual_seed(0)
    model = task.build_model()
    task.export(model, tmp_path)
    reloaded = AutoencoderKL.from_pretrained(tmp_path)
    model.eval()  # from_pretrained returns eval mode (train mode differs by ~1e-6 on CPU)
    latents = torch.randn(2, model.config.latent_channels, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.decode(latents).sample, reloaded.decode(latents).sample)
    assert reloaded.config.scaling_factor == model.config.scaling_factor != 0.18215


def test_foreground_weighting():
    frames = torch.full((1, 3, 16, 16), 0.2)
    frames[:, :, 5:7, 8:9] = 0.6  # a "finger": 2 px
    frames[:, 1, 10, 10] += 2 * 10 / 255  # within the threshold: background
    mask = vae_task.foreground_mask(frames)[0, 0]
    assert mask.sum() == 2 and mask[5:7, 8].all()


def test_loss_falls_on_one_batch(overrides, one_thread):
    task = vae_task.build_task(load_config("tiny", overrides))
    torch.manual_seed(0)
    model = task.build_model()
    batch = task.collate([task.train_dataset()[i] for i in range(0, 40, 10)])
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss, _ = task.loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_pretrained_vae_has_nothing_to_train(overrides):
    cfg = load_config("tiny", [*overrides, "video.vae.pretrained_path=weights/sd-vae-ft-mse"])
    with pytest.raises(ConfigError, match="pretrained VAE"):
        vae_task.build_task(cfg)


def test_norm_groups_must_divide_widths(overrides):
    cfg = load_config("tiny", [*overrides, "video.vae.norm_num_groups=3"])
    with pytest.raises(ConfigError, match="norm_num_groups"):
        vae_task.build_task(cfg)


def test_loss_goes_through_a_ddp_wrapper(overrides, tmp_path, one_thread):
    """DDP syncs gradients only through its forward: the loss must call it, not encode()."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    task = vae_task.build_task(load_config("tiny", overrides))
    torch.manual_seed(0)
    model = task.build_model()
    frames = task.collate([task.train_dataset()[i] for i in (0, 5)])["frames"]
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        wrapped = DistributedDataParallel(model)
        torch.manual_seed(1)
        loss, extra = vae_task.vae_loss(wrapped, frames, kl_weight=1e-6)
        loss.backward()
        torch.manual_seed(1)
        plain, plain_extra = vae_task.vae_loss(model, frames, kl_weight=1e-6)
    finally:
        dist.destroy_process_group()
    assert loss.item() == pytest.approx(plain.item()) and extra == pytest.approx(plain_extra)
    assert all(p.grad is not None for p in model.parameters())


def test_random_crops_keep_the_whole_frames_background(overrides, one_thread):
    task = vae_task.build_task(load_config("tiny", [
        *overrides, "video.vae.train_crop=32", "video.vae.colour_augment=0",
        "video.vae.hand_weight=1"]))  # plain frames, their own colours
    items = [task.train_dataset()[i] for i in (0, 5, 9)]
    batch = task.collate(items)
    assert batch["frames"].shape == (3, 3, 32, 32)
    whole = vae_task.background_colour(vae_task.to_unit(torch.stack(items)))
    assert torch.equal(batch["background"], whole)  # (a flip keeps the corner colours)
    model = task.build_model()
    loss, extra = task.loss(model, batch)
    assert torch.isfinite(loss) and extra["l1"] > 0
    with pytest.raises(ConfigError, match="train_crop"):
        vae_task.build_task(load_config("tiny", [*overrides, "video.vae.train_crop=31"])
                            ).build_model()


def test_decoder_finetuning_keeps_the_encoder_bit_identical(overrides, tmp_path, one_thread):
    import train

    steps = ["max_steps=2", "batch_size=4", "warmup_steps=1", "log_every=1", "eval_every=2",
             "save_every=2"]
    cfg = load_config("tiny", [*overrides, f"experiment.output_dir={tmp_path}",
                               "video.finetune_vae_decoder=true",
                               *(f"video.vae_train.{kv}" for kv in steps),
                               *(f"video.vae_decoder_train.{kv}" for kv in steps)])
    with pytest.raises(ConfigError, match="python train.py --stage vae"):
        train.main(cfg, "vae_decoder", progress=False)
    first = AutoencoderKL.from_pretrained(train.main(cfg, "vae", progress=False))
    tuned = AutoencoderKL.from_pretrained(train.main(cfg, "vae_decoder", progress=False))
    a, b = first.state_dict(), tuned.state_dict()
    encoder = [k for k in a if k.startswith(("encoder.", "quant_conv."))]
    decoder = [k for k in a if k.startswith("decoder.")]
    assert encoder and all(torch.equal(a[k], b[k]) for k in encoder)
    assert any(not torch.equal(a[k], b[k]) for k in decoder)
    assert tuned.config.scaling_factor == pytest.approx(first.config.scaling_factor)
    from signgen.training.tasks.video import vae_folder

    assert vae_folder(cfg) == tmp_path / "vae_decoder" / "model"


def test_hand_mask_covers_the_render_and_its_outline():
    render = torch.zeros(1, 3, 12, 12, dtype=torch.uint8)
    render[0, 1, 5, 6] = 40  # one hand pixel, lit in one channel
    mask = vae_task.hand_mask(render)[0, 0]
    assert mask.sum() == 9 and mask[4:7, 5:8].all()


def test_hand_pixels_weigh_more(one_thread):
    """The hand weight moves the loss by exactly the hand pixels' share."""
    torch.manual_seed(0)
    model = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=2)
    frames = torch.full((2, 3, 16, 16), -0.5)
    frames[:, :, 4:12, 4:12] = 0.5  # the signer
    hands = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    hands[:, :, 5:7, 5:7] = True
    plain, logs = vae_task.vae_loss(model, frames, 0.0, sample_posterior=False)
    same, _ = vae_task.vae_loss(model, frames, 0.0, sample_posterior=False, hands=hands,
                                hand_weight=1.0)  # at most the signer's weight: unchanged
    heavy, heavy_logs = vae_task.vae_loss(model, frames, 0.0, sample_posterior=False,
                                          hands=hands, hand_weight=50.0)
    assert same.item() == pytest.approx(plain.item())
    assert heavy.item() != pytest.approx(plain.item())
    assert "l1_hands" not in logs and heavy_logs["l1_hands"] > 0
    recon = model(frames, sample_posterior=False).sample
    error = (recon - frames).abs().mean(dim=1, keepdim=True)
    assert heavy_logs["l1_hands"] == pytest.approx(error[hands].mean().item(), rel=1e-5)


def test_batches_carry_hands_and_colour_changes(overrides, one_thread):
    """With a hand weight, batches carry hand masks cropped and flipped with their frames;
    colour augmentation recolours frames (each frame's background is taken after it)."""
    task = vae_task.build_task(load_config("tiny", [
        *overrides, "video.vae.train_crop=32", "video.vae.hand_weight=8",
        "video.vae.colour_augment=1.0"]))
    items = [task.train_dataset()[i] for i in range(0, 40, 5)]
    assert all(isinstance(item, tuple) and len(item) == 2 for item in items)
    torch.manual_seed(0)
    batch = task.collate(items)
    assert batch["frames"].shape == (8, 3, 32, 32)
    assert batch["hands"].shape == (8, 1, 32, 32) and batch["hands"].dtype == torch.bool
    plain = vae_task.to_unit(torch.stack([frame for frame, _ in items]))
    assert not torch.equal(batch["background"], vae_task.background_colour(plain))
    # Without cropping, the hand masks are the renders' (flipped with their frame).
    whole = vae_task.build_task(load_config("tiny", [*overrides, "video.vae.hand_weight=8",
                                                     "video.vae.colour_augment=0"]))
    torch.manual_seed(1)
    batch = whole.collate(items)
    renders = vae_task.hand_mask(torch.stack([r for _, r in items]).permute(0, 3, 1, 2))
    for i, (frame, _) in enumerate(items):
        flipped = not torch.equal(batch["frames"][i], vae_task.to_unit(frame[None])[0])
        assert torch.equal(batch["hands"][i], renders[i].flip(-1) if flipped else renders[i])
    assert renders.any()
    model = whole.build_model()
    loss, logs = whole.loss(model, batch)
    assert torch.isfinite(loss) and logs["l1_hands"] > 0
