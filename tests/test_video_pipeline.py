"""SignVideoPipeline on tiny random components: shapes, seeds, windows, schedulers,
save/load, and bad input."""

import warnings

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler

from signgen.errors import InvalidInputError
from signgen.models.condition_encoder import MultiConditionEncoder
from signgen.models.denoiser import build_unet, to_motion_unet
from signgen.models.reference_encoder import ReferenceEncoder
from signgen.pipelines.sign_video import (
    SignVideoPipeline,
    make_scheduler,
    window_starts,
    window_weights,
)

SIZE = 32  # frames 32x32 -> latents 16x16 (two-stage VAE)


def _nonzero(module: torch.nn.Module) -> None:
    """Give zero-initialised layers small random weights, so that every input matters."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            if not p.abs().sum():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def make_pipeline(temporal: bool = False, scheduler: str = "ddim",
                  size: int = SIZE, concat: bool = False,
                  zero_snr: bool = False) -> SignVideoPipeline:
    """Tiny random components for frames of ``size`` px (``concat``: the UNet also takes
    the reference's latent, 8 input channels)."""
    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
                        layers_per_block=1, latent_channels=4, norm_num_groups=4,
                        sample_size=size)
    unet = build_unet(in_channels=8 if concat else 4, out_channels=4, sample_size=size // 2,
                      block_out_channels=(16, 32), layers_per_block=1, attention_heads=2,
                      cross_attention_dim=16)
    conditions = MultiConditionEncoder(block_out_channels=[8, 16], embedding_channels=8,
                                       out_channels=16)
    reference = ReferenceEncoder(block_out_channels=[8, 16], token_dim=16)
    _nonzero(conditions)
    if temporal:
        unet = to_motion_unet(unet, motion_num_attention_heads=2, motion_max_seq_length=16)
        _nonzero(unet)
    train = DDPMScheduler(num_train_timesteps=100, beta_schedule="scaled_linear",
                          beta_start=0.00085, beta_end=0.012, rescale_betas_zero_snr=zero_snr,
                          prediction_type="v_prediction" if zero_snr else "epsilon")
    pipe = SignVideoPipeline(vae=vae.eval(), unet=unet.eval(),
                             condition_encoder=conditions.eval(),
                             reference_encoder=reference.eval(),
                             scheduler=make_scheduler(scheduler, train.config))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def conditions(frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pose = rng.integers(0, 256, (frames, SIZE, SIZE, 3), dtype=np.uint8)
    hands = rng.integers(0, 256, (frames, SIZE, SIZE, 3), dtype=np.uint8)
    reference = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return reference, pose, hands


def run(pipe, frames=5, seed=0, **kwargs):
    reference, pose, hands = conditions(frames)
    kwargs.setdefault("num_inference_steps", 2)
    return pipe(reference, pose, hands, generator=torch.Generator().manual_seed(seed),
                progress=False, **kwargs)


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline()


def test_output_shape_and_seed_determinism(pipe, one_thread):
    out = run(pipe)
    assert out.frames.shape == (5, SIZE, SIZE, 3) and out.frames.dtype == np.uint8
    assert out.embeddings.shape == (5, 8, SIZE // 2, SIZE // 2)
    assert np.array_equal(out.frames, run(pipe).frames)
    assert not np.array_equal(out.frames, run(pipe, seed=1).frames)


def test_embeddings_input_equals_condition_maps(pipe, one_thread):
    reference, pose, hands = conditions(4)
    embeddings = pipe.encode_conditions(pose, hands)
    a = pipe(reference, pose, hands, num_inference_steps=2, progress=False,
             generator=torch.Generator().manual_seed(3)).frames
    b = pipe(reference, condition_embeddings=embeddings, num_inference_steps=2,
             progress=False, generator=torch.Generator().manual_seed(3)).frames
    assert np.array_equal(a, b)


def test_conditions_and_reference_change_the_video(pipe, one_thread):
    reference, pose, hands = conditions(3)
    base = pipe(reference, pose, hands, num_inference_steps=2, progress=False,
                generator=torch.Generator().manual_seed(0)).frames
    other_pose = pipe(reference, 255 - pose, hands, num_inference_steps=2, progress=False,
                      generator=torch.Generator().manual_seed(0)).frames
    skeleton_only = pipe(reference, pose, None, num_inference_steps=2, progress=False,
                         generator=torch.Generator().manual_seed(0)).frames
    assert not np.array_equal(base, other_pose) and not np.array_equal(base, skeleton_only)


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver++", "euler"])
def test_schedulers_are_swappable(scheduler, one_thread):
    out = run(make_pipeline(scheduler=scheduler), frames=2)
    assert out.frames.shape == (2, SIZE, SIZE, 3)


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver++", "euler"])
def test_zero_terminal_snr_schedules_sample_finite_frames(scheduler, one_thread):
    pipe = make_pipeline(scheduler=scheduler, zero_snr=True)
    assert pipe.scheduler.config.rescale_betas_zero_snr  # inherited from training's
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    out = run(pipe, frames=2, output_type="pt")
    assert torch.isfinite(out.frames).all()


def test_latent_output_decodes_to_the_frames(pipe, one_thread):
    latents = run(pipe, frames=3, output_type="latent").frames
    assert latents.shape == (3, 4, SIZE // 2, SIZE // 2) and latents.dtype == torch.float32
    frames = run(pipe, frames=3, output_type="pt").frames
    torch.testing.assert_close(pipe.decode_latents(latents), frames)
    with pytest.raises(InvalidInputError, match="output_type"):
        run(pipe, frames=1, output_type="pil")


def test_guidance_changes_the_result(pipe, one_thread):
    assert not np.array_equal(run(pipe, frames=2).frames,
                              run(pipe, frames=2, guidance_scale=3.0).frames)


def test_save_and_load_give_identical_video(pipe, tmp_path, one_thread):
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = SignVideoPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.scheduler) is type(pipe.scheduler)
    assert np.array_equal(run(pipe, frames=2).frames, run(loaded, frames=2).frames)


def test_temporal_windows_cover_long_videos(tmp_path, one_thread):
    temporal = make_pipeline(temporal=True)
    out = run(temporal, frames=9, window=4, overlap=2)
    assert out.frames.shape == (9, SIZE, SIZE, 3)
    # The temporal layers couple frames: a different clip length changes frame 0.
    short = run(temporal, frames=2, window=4, overlap=2)
    assert not np.array_equal(out.frames[:2], short.frames)
    temporal.save_pretrained(tmp_path / "pipe")
    loaded = SignVideoPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.has_temporal_layers
    assert np.array_equal(run(loaded, frames=5, window=4, overlap=2).frames,
                          run(temporal, frames=5, window=4, overlap=2).frames)


@pytest.mark.parametrize("temporal, concat, guidance", [(True, True, 1.0), (True, False, 2.0),
                                                        (False, True, 2.0)])
def test_windows_batched_into_one_unet_call_give_the_same_video(temporal, concat, guidance,
                                                                 one_thread):
    pipe = make_pipeline(temporal=temporal, concat=concat)
    outs = [run(pipe, frames=11, window=4, overlap=1, guidance_scale=guidance,
                output_type="pt", window_batch=batch).frames for batch in (None, 1, 2)]
    assert outs[0].shape == (11, 3, SIZE, SIZE)
    torch.testing.assert_close(outs[0], outs[1], atol=2e-5, rtol=0)
    torch.testing.assert_close(outs[0], outs[2], atol=2e-5, rtol=0)


def test_bf16_precision_stays_close_to_fp32(one_thread):
    pipe = make_pipeline(temporal=True, concat=True)
    full, half = (run(pipe, frames=6, window=4, overlap=1, output_type="pt",
                      precision=p) for p in ("fp32", "bf16"))
    assert full.frames.dtype == half.frames.dtype == torch.float32
    assert half.embeddings.dtype == torch.float32
    assert 0 < (full.frames - half.frames).abs().mean() < 0.02  # of a [0,1] range
    with pytest.raises(InvalidInputError, match="precision must be one of"):
        run(pipe, precision="fp8")


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(native, monkeypatch, one_thread):
    from signgen.pipelines.sign_video import resolve_precision

    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: native, raising=False)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    pipe = make_pipeline()
    auto, chosen = (run(pipe, frames=3, window=4, output_type="pt", precision=p).frames
                    for p in ("auto", "bf16" if native else "fp32"))
    assert torch.equal(auto, chosen)


@pytest.mark.parametrize("temporal", [False, True])
def test_reference_latent_is_concatenated_when_the_unet_takes_it(temporal, one_thread):
    concat = make_pipeline(temporal=temporal, concat=True)
    assert concat.concatenates_reference_latent
    assert not make_pipeline(temporal=temporal).concatenates_reference_latent
    seen = []
    original = concat.unet.forward

    def spy(sample, *args, **kwargs):
        seen.append(sample.shape)
        return original(sample, *args, **kwargs)

    concat.unet.forward = spy
    out = run(concat, frames=5, window=4, overlap=1, guidance_scale=2.0)
    assert out.frames.shape == (5, SIZE, SIZE, 3)
    assert all(shape[1] == 8 for shape in seen)  # 4 noisy + 4 reference channels
    # The latent matters: another reference latent (same tokens) changes the video.
    concat.unet.forward = original
    base = run(concat, frames=3, window=4, overlap=1).frames
    latent = concat.encode_reference_latent
    concat.encode_reference_latent = lambda image, size: latent(image, size) + 1.0
    assert not np.array_equal(base, run(concat, frames=3, window=4, overlap=1).frames)


def test_window_starts_cover_every_frame_with_overlap():
    for frames in (1, 4, 5, 16, 17, 40):
        starts = window_starts(frames, 8, 3)
        covered = np.zeros(frames, int)
        for s in starts:
            covered[s:s + 8] += 1
        assert covered.min() >= 1 and starts[-1] + min(8, frames) == frames
        assert all(b - a <= 5 for a, b in zip(starts, starts[1:], strict=False))
    assert window_weights(5).min() > 0 and window_weights(5).argmax() == 2
    with pytest.raises(InvalidInputError, match="overlap"):
        window_starts(10, 4, 4)


def test_reference_images_are_converted_with_a_notice(pipe, one_thread):
    from PIL import Image

    _, pose, hands = conditions(2)
    rgba = Image.new("RGBA", (48, 40), (10, 20, 30, 128))
    with pytest.warns(UserWarning, match="RGBA"):
        out = pipe(rgba, pose, hands, num_inference_steps=1, progress=False)
    assert out.frames.shape == (2, SIZE, SIZE, 3)
    grey = np.zeros((SIZE, SIZE), np.uint8)
    with pytest.warns(UserWarning, match="to RGB"):
        pipe(grey, pose, hands, num_inference_steps=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right size and mode: no notice
        pipe(np.zeros((SIZE, SIZE, 3), np.uint8), pose, hands, num_inference_steps=1,
             progress=False)


def test_bad_input_is_a_clear_error(pipe):
    reference, pose, hands = conditions(3)
    with pytest.raises(InvalidInputError, match="differ in length"):
        pipe(reference, pose, hands[:2], num_inference_steps=1, progress=False)
    with pytest.raises(InvalidInputError, match="must be an image"):
        pipe("not an image", pose, hands, num_inference_steps=1, progress=False)
    with pytest.raises(InvalidInputError, match="no conditions"):
        pipe(reference, num_inference_steps=1, progress=False)
    with pytest.raises(InvalidInputError, match="condition_embeddings must be"):
        pipe(reference, condition_embeddings=torch.zeros(3, 5, 16, 16),
             num_inference_steps=1, progress=False)
    with pytest.raises(InvalidInputError, match="num_inference_steps"):
        pipe(reference, pose, hands, num_inference_steps=0, progress=False)
    with pytest.raises(InvalidInputError, match="unknown scheduler"):
        make_scheduler("heun-magic", pipe.scheduler.config)
