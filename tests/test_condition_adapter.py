"""The condition adapter: residual layout of diffusers UNets, zero start, save/load, bad
input, and the video pipeline with one (round trip, windows, guidance)."""

import numpy as np
import pytest
import torch
from test_video_pipeline import SIZE, _nonzero, conditions, make_pipeline

from signgen.errors import InvalidInputError
from signgen.models.condition_adapter import (
    ConditionAdapter,
    check_adapter_fits,
    skip_layout,
    unet_residual_kwargs,
)
from signgen.models.denoiser import build_unet, to_motion_unet
from signgen.pipelines.sign_video import SignVideoPipeline

WIDTHS, LATENT, EMBED = (16, 32), 8, 8


def _unet():
    torch.manual_seed(0)
    return build_unet(in_channels=4, out_channels=4, sample_size=LATENT,
                      block_out_channels=WIDTHS, layers_per_block=2, attention_heads=2,
                      cross_attention_dim=16)


def _inputs(n: int = 2):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(n, 4, LATENT, LATENT, generator=g), torch.tensor([5, 500][:n]),
            torch.randn(n, 3, 16, generator=g),
            torch.randn(n, EMBED, LATENT, LATENT, generator=g))


def test_sd15_layout_has_twelve_skip_residuals():
    layout = skip_layout((320, 640, 1280, 1280), 2)
    assert len(layout) == 12  # ControlNet's 12 down residuals for SD-1.5
    assert layout[0] == (320, 0) and layout[3] == (320, 1) and layout[-1] == (1280, 3)


def test_zero_initialised_adapter_leaves_the_unet_unchanged_and_learns(one_thread):
    unet = _unet()
    adapter = ConditionAdapter(embedding_channels=EMBED, block_out_channels=WIDTHS,
                               layers_per_block=2)
    x, t, tokens, embedding = _inputs()
    out = adapter(embedding)
    assert [tuple(r.shape[1:]) for r in out.down_residuals] == [
        (channels, LATENT >> level, LATENT >> level) for channels, level in adapter.layout]
    plain = unet(x, t, encoder_hidden_states=tokens).sample
    same = unet(x, t, encoder_hidden_states=tokens, **unet_residual_kwargs(out)).sample
    assert torch.equal(plain, same)
    # gradients reach the zero-initialised outputs, and after a step the embedding matters
    (unet(x, t, encoder_hidden_states=tokens, **unet_residual_kwargs(out)).sample
     .square().mean().backward())
    assert all(conv.weight.grad.abs().sum() > 0 for conv in adapter.down_outputs)
    _nonzero(adapter)
    moved = unet(x, t, encoder_hidden_states=tokens,
                 **unet_residual_kwargs(adapter(embedding))).sample
    assert not torch.allclose(plain, moved)


def test_a_motion_unet_takes_per_frame_residuals(one_thread):
    motion = to_motion_unet(_unet(), motion_max_seq_length=8)
    adapter = ConditionAdapter(embedding_channels=EMBED, block_out_channels=WIDTHS,
                               layers_per_block=2)
    _nonzero(adapter)
    frames = 3
    x = torch.randn(1, 4, frames, LATENT, LATENT)
    tokens = torch.randn(frames, 3, 16)
    embedding = torch.randn(frames, EMBED, LATENT, LATENT)
    with torch.no_grad():
        a = motion(x, 10, encoder_hidden_states=tokens,
                   **unet_residual_kwargs(adapter(embedding))).sample
        b = motion(x, 10, encoder_hidden_states=tokens,
                   **unet_residual_kwargs(adapter(embedding.flip(0)))).sample
    assert a.shape == x.shape and not torch.allclose(a, b)


def test_save_and_load_give_identical_residuals(tmp_path):
    adapter = ConditionAdapter(embedding_channels=EMBED, block_out_channels=WIDTHS)
    _nonzero(adapter)
    adapter.save_pretrained(tmp_path / "adapter")
    loaded = ConditionAdapter.from_pretrained(tmp_path / "adapter")
    embedding = _inputs()[3]
    a, b = adapter(embedding), loaded(embedding)
    assert all(torch.equal(x, y) for x, y in zip(a.down_residuals, b.down_residuals,
                                                 strict=True))
    assert torch.equal(a.mid_residual, b.mid_residual)


def test_bad_input_gets_clear_errors():
    adapter = ConditionAdapter(embedding_channels=EMBED, block_out_channels=WIDTHS)
    with pytest.raises(InvalidInputError, match="embedding must be"):
        adapter(torch.zeros(1, EMBED + 1, LATENT, LATENT))
    with pytest.raises(InvalidInputError, match="divisible by 2"):
        adapter(torch.zeros(1, EMBED, 7, 8))
    with pytest.raises(InvalidInputError, match="does not fit"):
        check_adapter_fits(adapter, _unet(), EMBED)  # the UNet has 2 layers per block
    with pytest.raises(InvalidInputError, match="positive"):
        ConditionAdapter(block_out_channels=())


def with_adapter(pipe: SignVideoPipeline) -> SignVideoPipeline:
    """The same components plus a random (non-zero) condition adapter."""
    adapter = ConditionAdapter(
        embedding_channels=pipe.condition_encoder.config.embedding_channels,
        block_out_channels=list(pipe.unet.config.block_out_channels),
        layers_per_block=pipe.unet.config.layers_per_block)
    _nonzero(adapter)
    new = SignVideoPipeline(vae=pipe.vae, unet=pipe.unet,
                            condition_encoder=pipe.condition_encoder,
                            reference_encoder=pipe.reference_encoder,
                            scheduler=pipe.scheduler, condition_adapter=adapter.eval())
    new.set_progress_bar_config(disable=True)
    return new


def _render(pipe, frames=5, **kwargs):
    reference, pose, hands = conditions(frames)
    return pipe(reference, pose, hands, num_inference_steps=2, progress=False,
                generator=torch.Generator().manual_seed(0), **kwargs).frames


def test_the_pipeline_renders_through_the_adapter_and_reloads(tmp_path, one_thread):
    plain = make_pipeline(concat=True)
    adapted = with_adapter(plain)
    video = _render(adapted)
    assert video.shape == (5, SIZE, SIZE, 3)
    assert not np.array_equal(video, _render(plain))
    adapted.save_pretrained(tmp_path / "pipe")
    loaded = SignVideoPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.condition_adapter is not None
    assert np.array_equal(_render(loaded), video)
    plain.save_pretrained(tmp_path / "plain")  # an optional part: absent loads as None
    assert SignVideoPipeline.from_pretrained(tmp_path / "plain").condition_adapter is None


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_windows_batched_with_an_adapter_give_the_same_video(guidance, one_thread):
    pipe = with_adapter(make_pipeline(temporal=True, concat=True))
    one = _render(pipe, frames=7, window=4, overlap=2, window_batch=1,
                  guidance_scale=guidance)
    every = _render(pipe, frames=7, window=4, overlap=2, window_batch=None,
                    guidance_scale=guidance)
    assert np.abs(one.astype(int) - every.astype(int)).max() <= 1


def test_a_pipeline_refuses_an_adapter_made_for_another_unet():
    pipe = make_pipeline()
    adapter = ConditionAdapter(embedding_channels=8, block_out_channels=(16, 64))
    with pytest.raises(InvalidInputError, match="does not fit"):
        SignVideoPipeline(vae=pipe.vae, unet=pipe.unet, condition_encoder=pipe.condition_encoder,
                          reference_encoder=pipe.reference_encoder, scheduler=pipe.scheduler,
                          condition_adapter=adapter)
