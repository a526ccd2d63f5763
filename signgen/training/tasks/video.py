"""Training tasks of the sign video diffusion model (stage I).

``python train.py --stage video`` runs both phases (each resumable on its own):

- ``video_frames`` (phase 1): single frames. The multi-condition encoder, the reference
  encoder and the 2D denoiser (``UNet2DConditionModel``) learn together to denoise the
  latent of one frame given its pose map and hand render (each dropped with
  ``condition_dropout``) and the signer's reference image (dropped with
  ``reference_dropout``: the null tokens of classifier-free guidance). With
  ``video.condition_adapter`` a ``ConditionAdapter`` trains with them (the embedding into
  every skip connection of the UNet).
- ``video_temporal`` (phase 2): clips of ``clip_length`` consecutive frames. Phase 1's
  denoiser is lifted to a ``UNetMotionModel`` (zero-initialised temporal layers, or the
  AnimateDiff modules at ``motion_adapter_path``); only the temporal layers train (a
  condition adapter stays as phase 1 left it).

Data: the frame cache of the train split (``signgen.data.frame_cache``). Latents come from
the frozen VAE (posterior mean x ``scaling_factor``) per batch: a tiny-config run sees
~40k frames, fewer than the 90k train frames a latent cache would have to encode first
(measured ~25 ms per 128 px frame on the 2-core CPU).

Loss: MSE between the denoiser's prediction and the noise (``epsilon``) or the velocity
(``v_prediction``) at a uniformly drawn timestep of the DDPM schedule (SD's scaled-linear
betas); with ``video.hand_loss_weight`` > 1 the latent cells under the 3D-hand render
weigh that much (``latent_hand_weight``). Evaluation: the plain MSE on fixed dev
frames/clips with fixed noise and timesteps (``dev_loss``; comparable across steps and
runs) and the same on the hand cells alone (``dev_loss_hands``). Export: the whole
``SignVideoPipeline`` folder, ready for ``SignVideoPipeline.from_pretrained``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from signgen.config.schema import SignGenConfig
from signgen.data.synthsign.dataset import images_to_tensor
from signgen.errors import ConfigError, SignGenError
from signgen.paths import weights_hash
from signgen.training.tasks.keypoints import dataset_root
from signgen.training.video_loss import VideoParts, latent_hand_weight, training_scheduler

DEV_FRAMES = 32  # phase-1 evaluation: frames spread over the dev split
DEV_CLIPS = 4  # phase-2 evaluation


def vae_folder(cfg: SignGenConfig) -> Path:
    """The frozen VAE: ``video.vae.pretrained_path``, or the one ``--stage vae`` trained
    (with the decoder ``--stage vae_decoder`` fine-tuned when ``finetune_vae_decoder``)."""
    if cfg.video.vae.pretrained_path:
        return Path(cfg.video.vae.pretrained_path)
    stage = "vae_decoder" if cfg.video.finetune_vae_decoder else "vae"
    return Path(cfg.experiment.output_dir) / stage / "model"


def frames_model_folder(cfg: SignGenConfig) -> Path:
    """Phase 1's exported pipeline, which phase 2 starts from."""
    return Path(cfg.experiment.output_dir) / "video_frames" / "model"


def load_vae(folder: Path):
    from diffusers import AutoencoderKL

    if not (folder / "config.json").is_file():
        stage = folder.parent.name if folder.parent.name.startswith("vae") else "vae"
        raise SignGenError(f"no VAE in {folder}; train it with python train.py --stage "
                           f"{stage} or set video.vae.pretrained_path")
    return AutoencoderKL.from_pretrained(folder).eval().requires_grad_(False)


@torch.no_grad()
def encode_frames(vae, frames: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """(N,3,H,W) float in [-1,1] -> (N,c,H/f,W/f) scaled VAE latent means."""
    return torch.cat([vae.encode(chunk).latent_dist.mean for chunk in frames.split(batch_size)]
                     ) * vae.config.scaling_factor


class FrameItems(Dataset):
    """Training items of a frame cache: one frame (``length`` None) or a clip of
    ``length`` consecutive frames of one sample.

    Item: video, pose_map / hand_render ((3,H,W) or (F,3,H,W) float; video in [-1,1],
    conditions in [0,1]), reference ((3,H,W) float in [-1,1]), sample_id, signer_id,
    reference_is_frame (bool). With probability ``reference_from_frames`` the reference
    is a random frame of the same signer (any of its samples) instead of the signer's
    reference image, so that its pose says nothing about the target's."""

    def __init__(self, frames, length: int | None = None,
                 starts: np.ndarray | None = None, reference_from_frames: float = 0.0) -> None:
        self.frames, self.length = frames, length
        if starts is None:
            starts = (np.arange(frames.num_frames) if length is None
                      else frames.clip_starts(length))
        if not len(starts):
            raise SignGenError(f"no clip of {length} frames in the frame cache")
        self.starts = np.asarray(starts)
        self.reference_from_frames = reference_from_frames
        self._signer_samples: dict[str, np.ndarray] = {}
        if reference_from_frames > 0:
            signers = np.array([sample["signer_id"] for sample in frames.samples])
            self._signer_samples = {signer: np.flatnonzero(signers == signer)
                                    for signer in np.unique(signers)}

    def __len__(self) -> int:
        return len(self.starts)

    def _reference(self, signer_id: str) -> tuple[np.ndarray, bool]:
        """(H,W,3) uint8 reference of a signer and whether it is one of its frames."""
        if self.reference_from_frames <= 0 or \
                torch.rand(()).item() >= self.reference_from_frames:
            return self.frames.reference(signer_id), False
        samples = self._signer_samples[signer_id]
        k = int(samples[torch.randint(len(samples), ()).item()])
        frame = self.frames.offsets[k] + torch.randint(int(self.frames.lengths[k]), ()).item()
        return self.frames.video[frame], True

    def __getitem__(self, index: int) -> dict:
        start = int(self.starts[index])
        span = slice(start, start + (self.length or 1))
        sample = self.frames.samples[self.frames.sample_of_frame(start)]
        reference, from_frame = self._reference(sample["signer_id"])
        item = {"video": images_to_tensor(self.frames.video[span], signed=True),
                "pose_map": images_to_tensor(self.frames.pose_map[span], signed=False),
                "hand_render": images_to_tensor(self.frames.hand_render[span], signed=False),
                "reference": images_to_tensor(reference, signed=True),
                "reference_is_frame": from_frame,
                "sample_id": sample["sample_id"], "signer_id": sample["signer_id"]}
        if self.length is None:
            for key in ("video", "pose_map", "hand_render"):
                item[key] = item[key][0]
        return item


def collate(items: list[dict]) -> dict:
    """Tensors stacked; ``sample_ids`` and ``signer_ids`` as lists;
    ``reference_is_frame`` (B,) bool (False where items lack it)."""
    batch = {k: torch.stack([item[k] for item in items]) for k in items[0]
             if isinstance(items[0][k], torch.Tensor)}
    batch["sample_ids"] = [item["sample_id"] for item in items]
    batch["signer_ids"] = [item["signer_id"] for item in items]
    batch["reference_is_frame"] = torch.tensor([bool(item.get("reference_is_frame"))
                                                for item in items])
    return batch


def colour_shift(images: torch.Tensor, order: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """One colour change per sample: images (B,3,H,W) or (B,F,3,H,W) in [-1,1]; order
    (B,3) int64, the new channel order; gain (B,3) per output channel -> same shape,
    clamped to [-1,1]."""
    index = order.view(len(order), *([1] * (images.ndim - 4)), 3, 1, 1).expand_as(images)
    shifted = (torch.gather(images, -3, index) + 1) / 2
    shifted = shifted * gain.view(len(gain), *([1] * (images.ndim - 4)), 3, 1, 1)
    return (shifted * 2 - 1).clamp(-1, 1)


def random_colour_changes(size: int, probability: float,
                          generator: torch.Generator | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw ``colour_shift``'s arguments for ``size`` samples: each changes with
    ``probability`` (a random channel order and gains in [0.75, 1.25]); the others keep
    the identity. Returns (changed (B,) bool, order (B,3) int64, gain (B,3) float).
    ``generator``: a CPU generator to draw from (None: torch's global one)."""
    changed = torch.rand(size, generator=generator) < probability
    order = torch.stack([torch.randperm(3, generator=generator) if c else torch.arange(3)
                         for c in changed.tolist()])
    gain = torch.where(changed[:, None], 0.75 + 0.5 * torch.rand(size, 3, generator=generator),
                       torch.ones(size, 3))
    return changed, order, gain


def random_translate(latents: torch.Tensor, max_shift: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Each sample of (B,c,h,w) ``latents`` moved by its own random whole-cell offset
    (dy, dx), each uniform in [-max_shift, max_shift], the uncovered border filled with
    the edge values (replicate padding) -> (B,c,h,w)."""
    if max_shift <= 0:
        return latents
    _, _, h, w = latents.shape
    if max_shift >= min(h, w):
        raise ConfigError(f"a shift of up to {max_shift} cells does not fit {h}x{w} latents")
    padded = F.pad(latents, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (len(latents), 2), generator=generator)
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w]
                        for i, (dy, dx) in enumerate(offsets.tolist())])


class VideoTask:
    """Phase 1 (``temporal=False``) or phase 2 (``temporal=True``) of the video model."""

    def __init__(self, cfg: SignGenConfig, temporal: bool, progress: bool = True) -> None:
        from signgen.data.frame_cache import FrameCache
        from signgen.data.synthsign.dataset import require_dataset_format

        self.cfg, self.video, self.temporal, self.progress = cfg, cfg.video, temporal, progress
        require_dataset_format(dataset_root(cfg), "the video model")
        self.vae_dir = vae_folder(cfg)
        self.vae = load_vae(self.vae_dir)
        root = dataset_root(cfg)
        self.train_frames = FrameCache.open(root, "train", progress=progress)
        self.dev_frames = FrameCache.open(root, "dev", progress=progress)
        self.noise_scheduler = training_scheduler(self.video.denoiser.num_train_timesteps,
                                                  self.video.denoiser.prediction_type,
                                                  self.video.denoiser.zero_terminal_snr)
        self.ema_decay = self.video.ema_decay
        # Frozen inputs (the VAE, the data, phase 1's UNet in phase 2) and the model recipe:
        # a run folder of another recipe is never resumed.
        encoder = asdict(self.video.condition_encoder)
        pretrained_encoder = encoder.pop("pretrained_path")
        parts = [asdict(self.video.denoiser), encoder, asdict(self.video.reference_encoder)]
        # (optional keys are absent when off: earlier runs keep their hash)
        if self.video.colour_augment:
            parts.append({"colour_augment": self.video.colour_augment})
        if self.video.hand_loss_weight != 1:
            parts.append({"hand_loss_weight": self.video.hand_loss_weight})
        if self.video.reference_from_frames:
            parts.append({"reference_from_frames": self.video.reference_from_frames})
        if self.video.condition_adapter:
            parts.append({"condition_adapter": True})
        if self.video.reference_shift:
            parts.append({"reference_shift": self.video.reference_shift})
        if pretrained_encoder:
            parts.append({"condition_encoder": weights_hash(pretrained_encoder)})
        recipe = json.dumps(parts, sort_keys=True)
        self.inputs_version = (f"vae {weights_hash(self.vae_dir)} data "
                               f"{self.train_frames.plan_hash} recipe "
                               f"{hashlib.sha256(recipe.encode()).hexdigest()[:12]}")
        if temporal and (frames_model_folder(cfg) / "unet").is_dir():
            self.inputs_version += (f" frames-unet "
                                    f"{weights_hash(frames_model_folder(cfg) / 'unet')}")
        self._dev_batch = None
        self._reference_latents: dict[str, torch.Tensor] = {}

    # -- model -----------------------------------------------------------------------------
    def build_model(self) -> VideoParts:
        from signgen.models.condition_encoder import MultiConditionEncoder
        from signgen.models.denoiser import (
            build_unet,
            load_motion_adapter,
            load_unet,
            to_motion_unet,
        )
        from signgen.models.reference_encoder import ReferenceEncoder

        d = self.video.denoiser
        if self.temporal:
            folder = frames_model_folder(self.cfg)
            if not (folder / "model_index.json").is_file():
                raise SignGenError(f"phase 2 starts from phase 1's model, not found in "
                                   f"{folder}; run python train.py --stage video_frames")
            from signgen.loading import load_pretrained
            from signgen.pipelines.sign_video import SignVideoPipeline

            pipe = load_pretrained(SignVideoPipeline, folder)
            adapter = load_motion_adapter(d.motion_adapter_path) if d.motion_adapter_path \
                else None
            unet = to_motion_unet(pipe.unet, adapter,
                                  motion_num_attention_heads=d.motion_num_attention_heads,
                                  motion_max_seq_length=d.motion_max_seq_length)
            if self.video.condition_adapter != (pipe.condition_adapter is not None):
                raise ConfigError(f"video.condition_adapter={self.video.condition_adapter} but "
                                  f"phase 1's model in {folder} was trained "
                                  f"{'with' if pipe.condition_adapter is not None else 'without'}"
                                  f" one")
            return self._checkpointed(VideoParts(pipe.condition_encoder, pipe.reference_encoder,
                                                 unet, pipe.condition_adapter))
        latent_size = self.train_frames.height // self.vae_scale_factor
        channels = self.vae.config.latent_channels
        in_channels = channels * (2 if self.video.reference_encoder.concat_latent else 1)
        if d.pretrained_path:
            unet = load_unet(Path(d.pretrained_path))
            if unet.config.in_channels != in_channels:
                raise ConfigError(f"the UNet in {d.pretrained_path} takes "
                                  f"{unet.config.in_channels} input channels, this config "
                                  f"needs {in_channels} (video.reference_encoder."
                                  f"concat_latent={self.video.reference_encoder.concat_latent})")
        else:
            unet = build_unet(in_channels=in_channels,
                              out_channels=self.vae.config.latent_channels,
                              sample_size=latent_size, block_out_channels=d.block_out_channels,
                              layers_per_block=d.layers_per_block,
                              attention_heads=d.attention_heads,
                              cross_attention_dim=d.cross_attention_dim)
        c = self.video.condition_encoder
        if c.pretrained_path:
            condition_encoder = self._pretrained_condition_encoder(
                Path(c.pretrained_path), unet.config.block_out_channels[0])
        else:
            condition_encoder = MultiConditionEncoder(
                conditions=list(c.conditions), block_out_channels=list(c.block_out_channels),
                embedding_channels=c.embedding_channels,
                out_channels=unet.config.block_out_channels[0])
        if condition_encoder.downsample_factor != self.vae_scale_factor:
            raise ConfigError(f"the condition encoder downsamples by "
                              f"{condition_encoder.downsample_factor}, the VAE by "
                              f"{self.vae_scale_factor}; they must match")
        reference_encoder = ReferenceEncoder(
            block_out_channels=list(self.video.reference_encoder.block_out_channels),
            token_dim=unet.config.cross_attention_dim)
        adapter = None
        if self.video.condition_adapter:
            from signgen.models.condition_adapter import ConditionAdapter

            adapter = ConditionAdapter(
                embedding_channels=condition_encoder.config.embedding_channels,
                block_out_channels=list(unet.config.block_out_channels),
                layers_per_block=unet.config.layers_per_block)
        return self._checkpointed(
            VideoParts(condition_encoder, reference_encoder, unet, adapter))

    def _pretrained_condition_encoder(self, folder: Path, unet_channels: int):
        """The frozen float32 encoder of ``folder``, checked against this config's
        conditions and the UNet's first block (ConfigError naming what differs)."""
        from signgen.loading import load_pretrained
        from signgen.models.condition_encoder import MultiConditionEncoder

        encoder = load_pretrained(MultiConditionEncoder, folder).float().eval()
        conditions = list(self.video.condition_encoder.conditions)
        if list(encoder.config.conditions) != conditions:
            raise ConfigError(f"the condition encoder in {folder} reads "
                              f"{list(encoder.config.conditions)}, this config "
                              f"video.condition_encoder.conditions={conditions}")
        if encoder.config.out_channels != unet_channels:
            raise ConfigError(f"the condition encoder in {folder} outputs "
                              f"{encoder.config.out_channels} channels, the UNet's first "
                              f"block has {unet_channels} (video.denoiser.block_out_channels)")
        return encoder.requires_grad_(False)

    def _checkpointed(self, parts: VideoParts) -> VideoParts:
        if self.video.gradient_checkpointing:
            parts.unet.enable_gradient_checkpointing()
        return parts

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def trainable_parameters(self, model: VideoParts):
        if not self.temporal:
            return [p for p in model.parameters() if p.requires_grad]
        from signgen.models.denoiser import freeze_except_motion

        model.condition_encoder.requires_grad_(False)
        model.reference_encoder.requires_grad_(False)
        if model.condition_adapter is not None:
            model.condition_adapter.requires_grad_(False)
        return freeze_except_motion(model.unet)

    # -- data ------------------------------------------------------------------------------
    def train_dataset(self) -> FrameItems:
        length = self.video.clip_length if self.temporal else None
        return FrameItems(self.train_frames, length,
                          reference_from_frames=self.video.reference_from_frames)

    def collate(self, items: list[dict]) -> dict:
        return collate(items)

    def _with_latents(self, batch: dict, device, augment: float = 0.0) -> dict:
        """The batch on ``device`` with ``latents`` ((B,c,h,w) or (B,F,c,h,w)) encoded by
        the frozen VAE in place of ``video``; with probability ``augment`` per sample its
        video and reference first get the same random colour change (``colour_shift``)."""
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                 for k, v in batch.items()}
        shifted = None
        if augment > 0 and "latents" not in batch:
            shifted, order, gain = random_colour_changes(len(batch["video"]), augment)
            order, gain = order.to(device), gain.to(device)
            batch["video"] = colour_shift(batch["video"], order, gain)
            batch["reference"] = colour_shift(batch["reference"], order, gain)
        if "latents" not in batch:
            video = batch.pop("video")
            self.vae.to(device)
            latents = encode_frames(self.vae, video.flatten(0, 1) if video.ndim == 5 else video)
            batch["latents"] = latents.view(*video.shape[:-3], *latents.shape[1:])
        if self.video.reference_encoder.concat_latent and "reference_latents" not in batch:
            # recoloured references and frames used as references are not the signer's
            # reference image: encoded on their own, not cached
            own = batch.get("reference_is_frame",
                            torch.zeros(len(batch["reference"]), dtype=torch.bool)).cpu()
            if shifted is not None:
                own = own | shifted.cpu()
            encoded = iter(encode_frames(self.vae, batch["reference"][own.to(device)])
                           if own.any() else [])
            batch["reference_latents"] = torch.cat([
                next(encoded)[None] if changed else self._reference_latent(signer, image)
                for signer, image, changed in zip(batch["signer_ids"], batch["reference"],
                                                  own.tolist(), strict=True)])
        return batch

    def _reference_latent(self, signer_id: str, image: torch.Tensor) -> torch.Tensor:
        """(1,c,h,w) scaled latent of a signer's reference image, encoded once per run."""
        cached = self._reference_latents.get(signer_id)
        if cached is None or cached.device != image.device:
            cached = encode_frames(self.vae, image[None])
            self._reference_latents[signer_id] = cached
        return cached

    # -- loss ------------------------------------------------------------------------------
    def _denoise_loss(self, model: VideoParts, batch: dict, noise: torch.Tensor,
                      timesteps: torch.Tensor, drop_conditions: torch.Tensor,
                      drop_reference: torch.Tensor) -> torch.Tensor:
        """``model`` is the prepared ``VideoParts`` (maybe DDP-wrapped): called, not
        unpacked, so that gradient sync and autocast apply."""
        return model(self.noise_scheduler, batch, noise, timesteps, drop_conditions,
                     drop_reference)

    def loss(self, model: VideoParts, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        device = next(model.parameters()).device
        batch = self._with_latents(batch, device, self.video.colour_augment)
        if self.video.reference_shift and "reference_latents" in batch:
            batch["reference_latents"] = random_translate(batch["reference_latents"],
                                                          self.video.reference_shift)
        if self.video.hand_loss_weight != 1:
            batch["latent_weight"] = latent_hand_weight(
                batch["hand_render"], self.vae_scale_factor, self.video.hand_loss_weight)
        batch_size = len(batch["latents"])
        noise = torch.randn_like(batch["latents"])
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps,
                                  (batch_size,), device=device)
        num_conditions = len(self.video.condition_encoder.conditions)
        drop_conditions = torch.rand(batch_size, num_conditions, device=device) \
            < self.video.condition_encoder.condition_dropout
        drop_reference = torch.rand(batch_size, device=device) \
            < self.video.reference_encoder.reference_dropout
        loss = self._denoise_loss(model, batch, noise, timesteps, drop_conditions,
                                  drop_reference)
        return loss, {}

    # -- evaluation and export ------------------------------------------------------------
    def evaluate(self, model: VideoParts) -> dict[str, float]:
        if self._dev_batch is None:
            if self.temporal:
                starts = self.dev_frames.clip_starts(self.video.clip_length)
            else:
                starts = np.arange(self.dev_frames.num_frames)
            count = DEV_CLIPS if self.temporal else DEV_FRAMES
            picked = starts[np.linspace(0, len(starts) - 1, min(count, len(starts))).astype(int)]
            items = FrameItems(self.dev_frames,
                               self.video.clip_length if self.temporal else None, picked)
            batch = self._with_latents(self.collate([items[i] for i in range(len(items))]),
                                       "cpu")
            g = torch.Generator().manual_seed(1234)
            batch["noise"] = torch.randn(batch["latents"].shape, generator=g)
            steps = self.noise_scheduler.config.num_train_timesteps
            batch["timesteps"] = torch.linspace(0, steps - 1, len(items)).round().long()
            # 1 on the latent cells under a hand, 0 elsewhere: dev_loss_hands
            batch["hand_cells"] = latent_hand_weight(batch["hand_render"],
                                                     self.vae_scale_factor, 2.0) - 1
            self._dev_batch = batch
        batch = self._dev_batch
        device = next(model.parameters()).device
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        n = len(batch["latents"])
        k = len(self.video.condition_encoder.conditions)
        keep_all = (torch.zeros(n, k, dtype=torch.bool, device=device),
                    torch.zeros(n, dtype=torch.bool, device=device))
        loss = self._denoise_loss(model, batch, batch["noise"], batch["timesteps"], *keep_all)
        hands = self._denoise_loss(model, {**batch, "latent_weight": batch["hand_cells"]},
                                   batch["noise"], batch["timesteps"], *keep_all)
        return {"dev_loss": loss.item(), "dev_loss_hands": hands.item()}

    def export(self, model: VideoParts, folder: Path) -> None:
        from signgen.pipelines.sign_video import SignVideoPipeline, make_scheduler

        scheduler = make_scheduler(self.video.sampling.scheduler,
                                   self.noise_scheduler.config)
        pipe = SignVideoPipeline(vae=self.vae, unet=model.unet,
                                 condition_encoder=model.condition_encoder,
                                 reference_encoder=model.reference_encoder,
                                 scheduler=scheduler,
                                 condition_adapter=model.condition_adapter)
        pipe.save_pretrained(folder)
        info = {"phase": 2 if self.temporal else 1, "vae": str(self.vae_dir),
                "vae_hash": weights_hash(self.vae_dir),
                "dataset_plan_hash": self.train_frames.plan_hash,
                "clip_length": self.video.clip_length,
                "sampling": asdict(self.video.sampling)}
        if self.temporal:  # the phase-1 export it was lifted from
            info["frames_model"] = str(frames_model_folder(self.cfg))
        (Path(folder) / "video.json").write_text(json.dumps(info, indent=2) + "\n")
