"""The denoising loss of the video model, shared by its training task and the GPU
benchmark (``benchmarks/gpu_full.py``). Needs only torch, diffusers and signgen.models.

Batch layout: ``latents`` (B,c,h,w) frames or (B,F,c,h,w) clips (VAE posterior mean x
``scaling_factor``); one (B or B*F,3,H,W) float tensor in [0,1] per condition name of
the condition encoder (``pose_map``, ``hand_render``); ``reference`` (B,3,H,W) in [-1,1];
``reference_latents`` (B,c,h,w), the reference's scaled VAE latent, when the UNet takes it
concatenated to its input (``unet.config.in_channels`` = 2c); optionally
``latent_weight`` (B,1,h,w) or (B,F,1,h,w), a non-negative weight per latent cell of the
squared error (``latent_hand_weight``), absent: the plain MSE.

With a ``condition_adapter`` the condition embedding also reaches every skip connection
of the UNet (``signgen.models.condition_adapter``), computed with the same condition
dropout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def training_scheduler(num_train_timesteps: int, prediction_type: str,
                       zero_terminal_snr: bool = False):
    """The DDPM noise schedule of training (SD-1.5's scaled-linear betas; with
    ``zero_terminal_snr`` rescaled so that the last step is pure noise). Sampling
    schedulers are made from its config, so they inherit both settings."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule="scaled_linear",
                         beta_start=0.00085, beta_end=0.012, prediction_type=prediction_type,
                         clip_sample=False, rescale_betas_zero_snr=zero_terminal_snr)


class VideoParts(nn.Module):
    """The trained parts held together so that accelerate prepares one module.

    Its ``forward`` is :func:`denoise_loss`: the loss must be computed through the
    (prepared) module's forward, or DDP would not synchronise gradients and
    ``mixed_precision`` autocast would not apply.
    """

    def __init__(self, condition_encoder, reference_encoder, unet,
                 condition_adapter=None) -> None:
        super().__init__()
        self.condition_encoder = condition_encoder
        self.reference_encoder = reference_encoder
        self.unet = unet
        self.condition_adapter = condition_adapter  # optional ConditionAdapter

    def forward(self, noise_scheduler, batch: dict, noise: torch.Tensor,
                timesteps: torch.Tensor, drop_conditions: torch.Tensor,
                drop_reference: torch.Tensor) -> torch.Tensor:
        return denoise_loss(self, noise_scheduler, batch, noise, timesteps, drop_conditions,
                            drop_reference)


def denoise_loss(model: VideoParts, noise_scheduler, batch: dict, noise: torch.Tensor,
                 timesteps: torch.Tensor, drop_conditions: torch.Tensor,
                 drop_reference: torch.Tensor) -> torch.Tensor:
    """MSE of the denoiser on a batch (see the module docstring for its layout).

    Clips are flattened to B*F frames for the encoders; the motion UNet sees (B,c,F,h,w).
    ``noise`` is shaped like ``latents``; ``timesteps`` (B,) int; ``drop_conditions``
    (B, num conditions) bool and ``drop_reference`` (B,) bool drop per batch entry (a
    clip's frames share its drops and timestep). The target is the noise (``epsilon``)
    or the velocity (``v_prediction``), as the scheduler's ``prediction_type`` says.
    """
    from signgen.models.condition_adapter import unet_residual_kwargs
    from signgen.models.denoiser import add_to_conv_in

    latents = batch["latents"]
    clip = latents.ndim == 5
    frames = latents.shape[1] if clip else 1
    flat = (lambda x: x.flatten(0, 1)) if clip else (lambda x: x)
    names = list(model.condition_encoder.config.conditions)
    conditions = {k: flat(batch[k]) for k in names}
    mask = (~drop_conditions).repeat_interleave(frames, dim=0)
    encoded = model.condition_encoder(conditions, mask)
    residual = encoded.residual
    adapter = model.condition_adapter
    skips = unet_residual_kwargs(adapter(encoded.embedding) if adapter is not None else None)
    tokens = model.reference_encoder(batch["reference"], drop=drop_reference).tokens
    tokens = tokens.repeat_interleave(frames, dim=0)
    timestep_per_frame = timesteps.repeat_interleave(frames) if clip else timesteps
    noisy = noise_scheduler.add_noise(flat(latents), flat(noise), timestep_per_frame)
    if model.unet.config.in_channels != latents.shape[-3]:  # + the reference's latent
        keep = (~drop_reference).to(latents).view(-1, 1, 1, 1)
        reference = batch["reference_latents"] * keep
        noisy = torch.cat([noisy, reference.repeat_interleave(frames, dim=0)], dim=1)
    with add_to_conv_in(model.unet, residual):
        if clip:
            sample = noisy.view(*latents.shape[:2], *noisy.shape[1:]).transpose(1, 2)
            pred = model.unet(sample, timesteps, encoder_hidden_states=tokens, **skips).sample
            pred = pred.transpose(1, 2).flatten(0, 1)
        else:
            pred = model.unet(noisy, timesteps, encoder_hidden_states=tokens, **skips).sample
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(flat(latents), flat(noise), timestep_per_frame)
    else:
        target = flat(noise)
    weight = batch.get("latent_weight")
    if weight is None:
        return F.mse_loss(pred.float(), target.float())
    weight = flat(weight).float()
    error = (pred.float() - target.float()).square() * weight
    return error.sum() / (weight.sum() * pred.shape[1]).clamp_min(1e-8)


def latent_hand_weight(hand_render: torch.Tensor, factor: int, hand_weight: float
                       ) -> torch.Tensor:
    """Per-latent-cell loss weights from hand renders: (..., 3, H, W) in [0,1] (black
    where no hand) -> (..., 1, H/factor, W/factor) float, ``hand_weight`` on every latent
    cell whose ``factor`` x ``factor`` pixels touch a drawn hand pixel, 1 elsewhere.

    Hands are a few latent cells of a 32x32 frame and carry the signing; an unweighted
    MSE spends the small UNet's capacity on the background and the body."""
    drawn = (hand_render > 0).any(dim=-3, keepdim=True).float()
    lead = drawn.shape[:-3]
    cells = F.max_pool2d(drawn.flatten(0, -4) if lead else drawn[None], factor)
    cells = cells.view(*lead, *cells.shape[-3:]) if lead else cells[0]
    return 1.0 + (hand_weight - 1.0) * cells
