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


@pytest.fixture(scope="module")
def trained(tiny_overrides, tmp_path_factory):
    import train

    out = tmp_path_factory.mktemp("video_run")
    overrides = [*tiny_overrides, f"experiment.output_dir={out}", *SMALL,
                 *(f"video.{phase}.{kv}" for phase in ("vae_train", "vae_decoder_train",
                                                       "phase1_train", "phase2_train")
                   for kv in STEPS)]
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


def test_phase_two_needs_phase_one(tiny_overrides, tmp_path):
    import train

    cfg = load_config("tiny", [*tiny_overrides, f"experiment.output_dir={tmp_path}", *SMALL])
    with pytest.raises(SignGenError, match="python train.py --stage vae_decoder"):
        train.main(cfg, "video_frames", progress=False)
