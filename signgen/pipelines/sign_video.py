"""Stage I inference: reference image + per-frame conditions -> signing video.

``SignVideoPipeline`` is a diffusers ``DiffusionPipeline`` (``save_pretrained`` writes
``model_index.json`` and one folder per component; ``from_pretrained`` reads it back):

    vae                AutoencoderKL: frames (N,3,H,W) in [-1,1] <-> latents (N,c,H/f,W/f)
    condition_encoder  MultiConditionEncoder: pose map + hand render -> embedding map
                       (T,E,H/f,W/f) -> zero-initialised residual added to conv_in's output
    condition_adapter  optional ConditionAdapter: embedding map -> residuals for every skip
                       connection and the mid block of the UNet (computed once per video)
    reference_encoder  ReferenceEncoder: the signer's image -> identity tokens (1,L,D),
                       cross-attended by the denoiser; computed once per video. When the
                       UNet's in_channels are twice the VAE's latent channels, the
                       reference's latent (1,c,h,w) is also concatenated to its input
    unet               UNet2DConditionModel (frames independent) or UNetMotionModel
                       (temporal layers over windows of frames)
    scheduler          any diffusers scheduler (DDIM, DPM-Solver++, Euler, ...)

Long videos are denoised in sliding windows of ``window`` frames that overlap by
``overlap`` frames; at every step each frame's noise prediction is the weighted mean of
the windows that contain it (weights fall off towards a window's edges), the AnimateDiff
"context window" scheme. Classifier-free guidance drops identity and conditions together
(null reference tokens, the residual of an all-zero embedding).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline, UNetMotionModel
from diffusers.utils import BaseOutput

# diffusers' from_pretrained loads a component only from a module already imported
# (signgen.models.condition_adapter is, below).
import signgen.models.condition_encoder  # noqa: F401
import signgen.models.reference_encoder  # noqa: F401
from signgen.errors import InvalidInputError
from signgen.models.condition_adapter import (
    ConditionAdapterOutput,
    check_adapter_fits,
    unet_residual_kwargs,
)
from signgen.models.denoiser import add_to_conv_in
from signgen.precision import native_bf16

SCHEDULERS = ("ddim", "dpmsolver++", "euler")


def make_scheduler(name: str, config: dict):
    """A sampling scheduler of kind ``name`` (see ``SCHEDULERS``) from a training
    scheduler's config (same betas and prediction type), with trailing timestep spacing
    (better few-step sampling)."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    kinds = {"ddim": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": False}),
             "dpmsolver++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
             "euler": (EulerDiscreteScheduler, {})}
    if name not in kinds:
        raise InvalidInputError(f"unknown scheduler {name!r}; choose one of {list(kinds)}")
    cls, extra = kinds[name]
    return cls.from_config(dict(config), timestep_spacing="trailing", **extra)


PRECISIONS = ("fp32", "bf16", "auto")
OUTPUT_TYPES = ("np", "pt", "latent")


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> "bf16" where ``device`` computes bfloat16 natively (a CUDA GPU that
    supports it; a CPU with AMX or AVX-512 BF16), else "fp32"; other values unchanged.
    Without native support bf16 autocast still works, but slower than fp32."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def window_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """Start frames of windows of ``window`` frames covering ``num_frames`` with at least
    ``overlap`` shared frames between neighbours (the last window ends at the last
    frame)."""
    if window < 1 or not 0 <= overlap < window:
        raise InvalidInputError(f"need window >= 1 and 0 <= overlap < window, got "
                                f"window={window}, overlap={overlap}")
    if num_frames <= window:
        return [0]
    stride = window - overlap
    starts = list(range(0, num_frames - window, stride))
    return starts + [num_frames - window]


def window_weights(length: int) -> torch.Tensor:
    """(length,) blending weights of one window's frames: highest in the middle, > 0 at
    the edges, so overlapping windows cross-fade."""
    position = torch.arange(length, dtype=torch.float32)
    return torch.minimum(position + 1, length - position) / ((length + 1) / 2)


def to_image_tensor(image, size: tuple[int, int]) -> torch.Tensor:
    """A reference image (PIL image, (H,W,3|4) or (H,W) uint8 array, or (3,H,W) float
    tensor in [-1,1]) -> (1,3,H,W) float in [-1,1] at ``size``; grey and RGBA images are
    converted and other sizes resized, each with a warning."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise InvalidInputError(f"a reference tensor must be (3,H,W) in [-1,1], got "
                                    f"{tuple(image.shape)}")
        image = Image.fromarray(((image.float().clamp(-1, 1) + 1) * 127.5).round().byte()
                                .permute(1, 2, 0).numpy())
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise InvalidInputError(f"a reference array must be (H,W[,3|4]) uint8, got "
                                    f"{image.dtype} {image.shape}")
        image = Image.fromarray(image)
    elif not isinstance(image, Image.Image):
        raise InvalidInputError(f"the reference must be an image, got {type(image).__name__}")
    if image.mode != "RGB":
        warnings.warn(f"reference image converted from {image.mode} to RGB", stacklevel=3)
        if image.mode in ("RGBA", "LA", "P"):  # transparent pixels become white
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        image = image.convert("RGB")
    height, width = size
    if image.size != (width, height):
        warnings.warn(f"reference image resized from {image.size[0]}x{image.size[1]} to "
                      f"{width}x{height}", stacklevel=3)
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 127.5 - 1
    return x[None]


def _to_condition_tensor(frames, name: str) -> torch.Tensor:
    """(T,H,W,3) uint8 array/tensor or (T,3,H,W) float tensor in [0,1] -> (T,3,H,W) float."""
    x = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
    if x.ndim != 4:
        raise InvalidInputError(f"{name} must be (T,H,W,3) uint8 or (T,3,H,W) float, got "
                                f"shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        if x.shape[-1] != 3:
            raise InvalidInputError(f"{name} must be (T,H,W,3) uint8, got {tuple(x.shape)}")
        return x.permute(0, 3, 1, 2).float() / 255
    if x.shape[1] != 3:
        raise InvalidInputError(f"{name} must be (T,3,H,W) float in [0,1], got "
                                f"{tuple(x.shape)}")
    return x.float()


@dataclass
class SignVideoPipelineOutput(BaseOutput):
    """frames: (T,H,W,3) uint8 (``output_type='np'``), (T,3,H,W) float in [0,1]
    (``'pt'``) or the undecoded latents (T,c,h,w) float32, scaled by the VAE's
    ``scaling_factor`` (``'latent'``); embeddings: (T,E,h,w) the condition embeddings that
    drove the video."""

    frames: np.ndarray | torch.Tensor
    embeddings: torch.Tensor


class SignVideoPipeline(DiffusionPipeline):
    """Reference image + per-frame conditions (or their embeddings) -> signing video."""

    model_cpu_offload_seq = "reference_encoder->condition_encoder->condition_adapter->unet->vae"
    _optional_components = ["condition_adapter"]

    def __init__(self, vae, unet, condition_encoder, reference_encoder, scheduler,
                 condition_adapter=None) -> None:
        super().__init__()
        if condition_adapter is not None:
            check_adapter_fits(condition_adapter, unet,
                               condition_encoder.config.embedding_channels)
        self.register_modules(vae=vae, unet=unet, condition_encoder=condition_encoder,
                              reference_encoder=reference_encoder, scheduler=scheduler,
                              condition_adapter=condition_adapter)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def has_temporal_layers(self) -> bool:
        return isinstance(self.unet, UNetMotionModel)

    @property
    def concatenates_reference_latent(self) -> bool:
        return self.unet.config.in_channels == 2 * self.vae.config.latent_channels

    # -- the parts the pipeline (and stage II) use separately ------------------------------
    @torch.no_grad()
    def encode_reference(self, image, size: tuple[int, int]) -> torch.Tensor:
        """Reference image -> identity tokens (1,L,D); see ``to_image_tensor`` for the
        accepted images."""
        x = to_image_tensor(image, size).to(self.device, self.reference_encoder.dtype)
        return self.reference_encoder(x).tokens

    @torch.no_grad()
    def encode_reference_latent(self, image, size: tuple[int, int]) -> torch.Tensor:
        """Reference image -> its scaled VAE latent mean (1,c,H/f,W/f)."""
        x = to_image_tensor(image, size).to(self.device, self.vae.dtype)
        return self.vae.encode(x).latent_dist.mean * self.vae.config.scaling_factor

    @torch.no_grad()
    def encode_conditions(self, pose_maps=None, hand_renders=None, condition_mask=None,
                          batch_size: int = 32) -> torch.Tensor:
        """Condition frames -> embedding map (T,E,H/f,W/f). Either condition may be None
        (then it is masked off: the encoder was trained with condition dropout)."""
        given = {"pose_map": pose_maps, "hand_render": hand_renders}
        names = list(self.condition_encoder.config.conditions)
        tensors = {k: _to_condition_tensor(v, k) for k, v in given.items()
                   if v is not None and k in names}
        if not tensors:
            raise InvalidInputError(f"no conditions given; pass one of {names}")
        lengths = {k: len(v) for k, v in tensors.items()}
        shapes = {tuple(v.shape[1:]) for v in tensors.values()}
        if len(set(lengths.values())) > 1 or len(shapes) > 1:
            raise InvalidInputError(f"condition clips differ in length or size: "
                                    f"{ {k: tuple(v.shape) for k, v in tensors.items()} }")
        num_frames = next(iter(lengths.values()))
        if num_frames == 0:
            raise InvalidInputError("condition clips are empty")
        present = torch.tensor([k in tensors for k in names])
        if condition_mask is not None:
            present = present & torch.as_tensor(condition_mask, dtype=torch.bool)
        dtype, device = self.condition_encoder.dtype, self.device
        chunks = []
        for start in range(0, num_frames, batch_size):
            part = {k: v[start:start + batch_size].to(device, dtype) for k, v in tensors.items()}
            mask = present.expand(len(next(iter(part.values()))), -1).to(device)
            chunks.append(self.condition_encoder.embed(part, mask))
        return torch.cat(chunks)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """(T,c,h,w) scaled latents -> (T,3,H,W) float frames in [0,1]."""
        frames = [self.vae.decode(chunk / self.vae.config.scaling_factor).sample
                  for chunk in latents.split(batch_size)]
        return ((torch.cat(frames).float() + 1) / 2).clamp(0, 1)

    def condition_residuals(self, embeddings: torch.Tensor) -> list[torch.Tensor]:
        """(T,E,h,w) embeddings -> the per-frame inputs of the UNet: [the conv_in residual
        (T,C0,h,w)] + with a condition adapter its skip residuals and mid residual
        ((T,C_i,h_i,w_i) each, in ``skip_layout`` order, mid last)."""
        residuals = [self.condition_encoder.project(embeddings)]
        if self.condition_adapter is not None:
            out = self.condition_adapter(embeddings)
            residuals += [*out.down_residuals, out.mid_residual]
        return residuals

    def _predict(self, latents: torch.Tensor, t, residuals: list[torch.Tensor],
                 tokens: torch.Tensor, reference_latents: torch.Tensor | None = None,
                 ) -> torch.Tensor:
        """Noise prediction for N windows in one UNet call: latents (N,F,c,h,w), residuals
        (B,N,F,C_i,h_i,w_i) each, as ``condition_residuals`` lists them, tokens (B,L,D),
        reference_latents (B,c,h,w) or None -> (B,N,F,c,h,w). B > 1 is the batch of
        classifier-free guidance (row 0 dropped); every window of a row shares that row's
        tokens and reference latents."""
        batch, (windows, frames) = tokens.shape[0], latents.shape[:2]
        clips = batch * windows
        sample = latents.repeat(batch, 1, 1, 1, 1)  # (B*N,F,c,h,w), row-major
        sample = self.scheduler.scale_model_input(sample, t)
        if reference_latents is not None:  # (B,c,h,w) -> every frame of its row
            ref = reference_latents.repeat_interleave(windows * frames, dim=0)
            sample = torch.cat([sample, ref.view(clips, frames, *ref.shape[1:])], 2)
        hidden = tokens.repeat_interleave(windows * frames, dim=0)  # (B*N*F,L,D)
        flat = [residual.flatten(0, 2) for residual in residuals]  # (B*N*F,...) clip-major
        skips = unet_residual_kwargs(ConditionAdapterOutput(
            down_residuals=tuple(flat[1:-1]), mid_residual=flat[-1]) if len(flat) > 1 else None)
        with add_to_conv_in(self.unet, flat[0]):
            if self.has_temporal_layers:
                out = self.unet(sample.transpose(1, 2), t, encoder_hidden_states=hidden,
                                **skips).sample
                out = out.transpose(1, 2)  # (B*N,F,c,h,w)
            else:
                out = self.unet(sample.flatten(0, 1), t, encoder_hidden_states=hidden,
                                **skips).sample
        return out.reshape(batch, windows, frames, *out.shape[-3:])

    @torch.no_grad()
    def __call__(self, reference_image, pose_maps=None, hand_renders=None,
                 condition_embeddings: torch.Tensor | None = None, condition_mask=None,
                 num_inference_steps: int = 20, guidance_scale: float = 1.0,
                 generator: torch.Generator | None = None, window: int = 8,
                 overlap: int = 2, output_type: str = "np", progress: bool = True,
                 window_batch: int | None = 1, precision: str = "fp32",
                 ) -> SignVideoPipelineOutput:
        """Render a video.

        Args:
            reference_image: the signer (PIL image, (H,W,3) uint8 array or (3,H,W) tensor in
                [-1,1]); converted to RGB and resized to the frame size with a warning.
            pose_maps, hand_renders: (T,H,W,3) uint8 or (T,3,H,W) float in [0,1]; or
            condition_embeddings: (T,E,H/f,W/f) (e.g. decoded from tokens by stage II).
            guidance_scale: > 1 enables classifier-free guidance (twice the compute).
            window, overlap: temporal windows of the motion UNet (a 2D UNet treats
                ``window`` as a batch size, without overlap); keep ``window`` at most the
                clip length the temporal layers were trained on (``video.json``).
            generator: seeds the initial noise (drawn on the CPU, so a seed gives the same
                video on any device type).
            window_batch: windows per UNet call (None: all at once; 1: one at a time, the
                least memory). The result does not depend on it beyond float rounding.
            precision: "fp32", or "bf16" to run the networks under bfloat16 autocast
                (faster on GPUs and on CPUs with AMX / AVX-512 BF16; the scheduler's
                arithmetic stays float32), or "auto": bf16 where the device has it
                natively (:func:`resolve_precision`).
            output_type: "np", "pt" or "latent" (see :class:`SignVideoPipelineOutput`;
                :meth:`decode_latents` turns latents into the "pt" frames).
        """
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        precision = resolve_precision(precision, self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=precision == "bf16"):
            return self._render(reference_image, pose_maps, hand_renders,
                                condition_embeddings, condition_mask, num_inference_steps,
                                guidance_scale, generator, window, overlap, output_type,
                                progress, window_batch)

    def _render(self, reference_image, pose_maps, hand_renders, condition_embeddings,
                condition_mask, num_inference_steps, guidance_scale, generator, window,
                overlap, output_type, progress, window_batch) -> SignVideoPipelineOutput:
        """``__call__`` without its precision context (same arguments)."""
        if output_type not in OUTPUT_TYPES:
            raise InvalidInputError(f"output_type must be one of {OUTPUT_TYPES}, got "
                                    f"{output_type!r}")
        if num_inference_steps < 1:
            raise InvalidInputError(f"num_inference_steps must be >= 1, got "
                                    f"{num_inference_steps}")
        if window_batch is not None and window_batch < 1:
            raise InvalidInputError(f"window_batch must be >= 1 or None, got {window_batch}")
        if condition_embeddings is None:
            embeddings = self.encode_conditions(pose_maps, hand_renders, condition_mask)
        else:
            if pose_maps is not None or hand_renders is not None:
                raise InvalidInputError("pass condition maps or condition_embeddings, not both")
            embeddings = condition_embeddings.to(self.device, self.condition_encoder.dtype)
            expected = self.condition_encoder.config.embedding_channels
            if embeddings.ndim != 4 or embeddings.shape[1] != expected:
                raise InvalidInputError(f"condition_embeddings must be (T,{expected},h,w), "
                                        f"got {tuple(embeddings.shape)}")
        num_frames, _, h, w = embeddings.shape
        factor = self.vae_scale_factor
        size = (h * factor, w * factor)
        tokens = self.encode_reference(reference_image, size)
        reference_latents = (self.encode_reference_latent(reference_image, size).to(
            self.unet.dtype) if self.concatenates_reference_latent else None)
        residuals = self.condition_residuals(embeddings)
        null_residuals = self.condition_residuals(torch.zeros_like(embeddings[:1]))
        use_guidance = guidance_scale > 1.0
        if use_guidance:
            null = self.reference_encoder.null_tokens(1, size[0], size[1]).to(tokens)
            tokens = torch.cat([null, tokens])
            if reference_latents is not None:  # dropped, as in training: zeros
                reference_latents = torch.cat([torch.zeros_like(reference_latents),
                                               reference_latents])

        channels = self.vae.config.latent_channels
        noise = torch.randn((num_frames, channels, h, w), generator=generator,
                            dtype=torch.float32)
        latents = (noise * self.scheduler.init_noise_sigma).to(self.device, self.unet.dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        if not self.has_temporal_layers:
            overlap = 0
        starts = window_starts(num_frames, window, overlap)
        length = min(window, num_frames)  # every window has this many frames
        spans = [slice(start, start + length) for start in starts]
        # Windows go through the UNet ``window_batch`` at a time (bigger matrix products
        # keep the cores busy); the windows' predictions are cross-faded.
        groups = [spans[i:i + (window_batch or len(spans))]
                  for i in range(0, len(spans), window_batch or len(spans))]
        weights = window_weights(length)[:, None, None, None]
        for t in self.progress_bar(self.scheduler.timesteps) if progress else \
                self.scheduler.timesteps:
            total = torch.zeros_like(latents, dtype=torch.float32)
            weight = torch.zeros(num_frames, 1, 1, 1)
            for group in groups:
                res = [torch.stack([r[span] for span in group])[None]  # (1,N,F,C,h,w)
                       for r in residuals]
                if use_guidance:  # all conditions dropped, as in training
                    res = [torch.cat([null.expand_as(r), r])
                           for null, r in zip(null_residuals, res, strict=True)]
                pred = self._predict(torch.stack([latents[span] for span in group]), t, res,
                                     tokens, reference_latents).float()
                if use_guidance:
                    pred = pred[0] + guidance_scale * (pred[1] - pred[0])
                else:
                    pred = pred[0]
                for span, window_pred in zip(group, pred, strict=True):
                    total[span] += window_pred * weights.to(window_pred)
                    weight[span] += weights
            noise_pred = (total / weight.to(total)).to(latents.dtype)
            latents = self.scheduler.step(noise_pred, t, latents).prev_sample
        if output_type == "latent":
            return SignVideoPipelineOutput(frames=latents.float(), embeddings=embeddings.float())
        frames = self.decode_latents(latents)
        if output_type == "np":
            frames = (frames * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return SignVideoPipelineOutput(frames=frames, embeddings=embeddings.float())
