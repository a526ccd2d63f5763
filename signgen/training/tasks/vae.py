"""Training task of the video model's latent autoencoder (``python train.py --stage vae``).

A small ``diffusers.AutoencoderKL`` (``video.vae``: widths, layers, latent channels, norm
groups; spatial factor 2**(len(block_out_channels) - 1)) trained from scratch on single
SynthSign training frames, for configs without a pretrained VAE (full scale uses a
frozen sd-vae-ft-mse and has nothing to train here).

Data: random frames of the train split from the memory-mapped frame cache
(:class:`signgen.data.frame_cache.FrameCache`, built on first use), in [-1, 1].
Augmentation: horizontal flip (a mirrored signer is still a plausible frame, and the VAE
must not care about handedness; left-handed signers exist anyway) and, with
``video.vae.colour_augment``, a random channel order and per-channel gains (a VAE that saw
only the training signers' colours decodes an unseen signer's colours as theirs).

Loss: L1 reconstruction with the signer's pixels up-weighted, plus ``kl_weight`` x KL to
N(0, I). SynthSign backgrounds are flat, so the frame's corner colour separates signer from
background: pixels differing from it by more than ``FOREGROUND_THRESHOLD`` in some channel
get weight ``FOREGROUND_WEIGHT``, the rest 1; with ``video.vae.hand_weight`` the pixels of
the frame's 3D-hand render (dilated by one pixel, ``hand_mask``) get that weight. Hands
are only a few pixels wide at 128 px and are what carries the signing, while the
background is ~70 % of a frame and trivially easy; an unweighted loss spends its capacity
there and blurs fingers. ``kl_weight`` keeps its meaning from latent diffusion (LDM's
loss: L1 summed over each image's pixels + weight x KL summed over each latent); both
terms are divided by the pixel count here, so the logged L1 is a per-pixel mean. No
perceptual or adversarial loss: a stage-I decoder on flat synthetic frames does not need
them at tiny scale.

Evaluation: PSNR and SSIM (:mod:`signgen.eval.metrics`, uint8 frames) of the
reconstructions (posterior mode) of ``EVAL_FRAMES`` fixed, evenly spaced dev frames, and
PSNR on the signer's pixels only (``psnr_signer``) and on the hand pixels (``psnr_hands``).

Export: ``save_pretrained`` after setting ``scaling_factor`` = 1 / std of the latent means
of ``SCALE_FRAMES`` evenly spaced train frames, so scaled latents have unit variance as
in Stable Diffusion (Rombach et al. 2022, sec. G); ``vae.json`` beside records it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.frame_cache import FrameCache
from signgen.errors import ConfigError
from signgen.eval import metrics
from signgen.training.tasks.keypoints import dataset_root

EVAL_FRAMES = 64  # fixed dev frames reconstructed by evaluate()
SCALE_FRAMES = 512  # train frames whose latent means set scaling_factor
FOREGROUND_THRESHOLD = 12 / 255  # colour distance from the corner colour, fraction of 255
FOREGROUND_WEIGHT = 4.0
CHUNK = 16  # frames per forward pass in evaluation and export


def to_unit(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(B,H,W,3) uint8 -> (B,3,H,W) float in [-1,1]."""
    frames = torch.as_tensor(frames)
    return frames.permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(B,3,H,W) float in [-1,1] -> (B,H,W,3) uint8 (clipped)."""
    x = ((frames.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def background_colour(frames: torch.Tensor) -> torch.Tensor:
    """(B,3,1,1): the median of the four corner pixels of (B,3,H,W) frames (robust to a
    hand reaching one corner)."""
    corners = torch.stack([frames[..., 0, 0], frames[..., 0, -1],
                           frames[..., -1, 0], frames[..., -1, -1]], dim=-1)  # b c 4
    return corners.median(dim=-1).values[..., None, None]


def foreground_mask(frames: torch.Tensor, background: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """(B,1,H,W) bool: pixels whose colour differs from the frame's background colour by
    more than FOREGROUND_THRESHOLD in some channel.

    Args:
        frames: (B,3,H,W) in [-1,1].
        background: (B,3,1,1) in [-1,1]; default ``background_colour(frames)`` (pass the
            whole frame's colour for crops, whose corners may lie on the signer).
    """
    if background is None:
        background = background_colour(frames)
    distance = (frames - background).abs().amax(dim=1, keepdim=True)  # b 1 h w
    return distance > 2 * FOREGROUND_THRESHOLD  # [-1,1] units: 2 per 255


def hand_mask(hand_render: torch.Tensor) -> torch.Tensor:
    """(B,1,H,W) bool: the pixels of (B,3,H,W) uint8 hand renders (any channel above 0;
    black elsewhere) dilated by one pixel, so the hands' outline counts too."""
    drawn = (hand_render > 0).any(dim=1, keepdim=True).float()
    return torch.nn.functional.max_pool2d(drawn, 3, stride=1, padding=1) > 0


def vae_loss(model, frames: torch.Tensor, kl_weight: float,
             background: torch.Tensor | None = None,
             sample_posterior: bool = True, hands: torch.Tensor | None = None,
             hand_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Signer-weighted L1 of a posterior sample's reconstruction + kl_weight x KL.

    Args:
        model: an ``AutoencoderKL``, possibly DDP-wrapped; frames: (B,3,H,W) in [-1,1].
        hands: (B,1,H,W) bool hand pixels (``hand_mask``), weighted
            max(``hand_weight``, FOREGROUND_WEIGHT); None: no hand weighting.
    Returns:
        the scalar loss and numbers to log (l1, l1_signer, l1_hands: per-pixel means;
        kl: per image).
    """
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    # One call of the model's forward (encode -> posterior sample -> decode), not
    # vae.encode / vae.decode: a DDP wrapper only syncs gradients through its forward.
    # The posterior's moments are taken from the layer that outputs them.
    vae = getattr(model, "module", model)
    last = vae.quant_conv if vae.quant_conv is not None else vae.encoder
    moments = []
    hook = last.register_forward_hook(lambda module, args, out: moments.append(out))
    try:
        recon = model(frames, sample_posterior=sample_posterior).sample
    finally:
        hook.remove()
    posterior = DiagonalGaussianDistribution(moments[0].float())
    l1, logs = weighted_l1(recon, frames, background, hands, hand_weight)
    channels, pixels = frames.shape[1], frames[0, 0].numel()
    kl = posterior.kl().mean()  # summed over each latent, mean over the batch
    logs["kl"] = kl.item()
    return l1 + kl_weight * kl / (channels * pixels), logs


def weighted_l1(recon: torch.Tensor, frames: torch.Tensor, background: torch.Tensor | None,
                hands: torch.Tensor | None = None, hand_weight: float = 1.0
                ) -> tuple[torch.Tensor, dict]:
    """The reconstruction term of :func:`vae_loss`: the L1 between (B,3,H,W) ``recon`` and
    ``frames`` in [-1,1], averaged with the signer's pixels weighted FOREGROUND_WEIGHT and
    ``hands`` (B,1,H,W) bool max(``hand_weight``, FOREGROUND_WEIGHT), the rest 1.
    Returns it and per-pixel means to log (l1, l1_signer, l1_hands with hands)."""
    error = (recon.float() - frames).abs()  # b c h w
    foreground = foreground_mask(frames, background)
    weight = torch.where(foreground, FOREGROUND_WEIGHT, 1.0)  # b 1 h w
    if hands is not None:
        weight = torch.where(hands, max(hand_weight, FOREGROUND_WEIGHT), weight)
    channels = frames.shape[1]
    l1 = (weight * error).sum() / (weight.sum() * channels)
    signer = (foreground * error).sum() / (foreground.sum() * channels).clamp(min=1)
    logs = {"l1": error.mean().item(), "l1_signer": signer.item()}
    if hands is not None:
        logs["l1_hands"] = ((hands * error).sum() / (hands.sum() * channels).clamp(min=1)).item()
    return l1, logs


@torch.no_grad()
def reconstruct(vae, frames: np.ndarray) -> np.ndarray:
    """(N,H,W,3) uint8 -> (N,H,W,3) uint8 reconstructions from the posterior mode."""
    device = next(vae.parameters()).device
    out = []
    for i in range(0, len(frames), CHUNK):
        x = to_unit(frames[i:i + CHUNK]).to(device)
        out.append(to_uint8(vae.decode(vae.encode(x).latent_dist.mode()).sample))
    return np.concatenate(out)


@torch.no_grad()
def latent_means(vae, frames: np.ndarray) -> torch.Tensor:
    """(N,C,h,w) float32 posterior means of (N,H,W,3) uint8 frames."""
    device = next(vae.parameters()).device
    return torch.cat([vae.encode(to_unit(frames[i:i + CHUNK]).to(device)).latent_dist.mean
                      .float().cpu() for i in range(0, len(frames), CHUNK)])


def random_windows(count: int, height: int, width: int, size: int) -> list[tuple[int, int]]:
    """``count`` (top, left) corners of random ``size`` x ``size`` windows inside
    ``height`` x ``width`` (drawn from torch's global generator)."""
    tops = torch.randint(0, height - size + 1, (count,)).tolist()
    lefts = torch.randint(0, width - size + 1, (count,)).tolist()
    return list(zip(tops, lefts, strict=True))


def crop_windows(images: torch.Tensor, windows: list[tuple[int, int]], size: int,
                 scale: int = 1) -> torch.Tensor:
    """(B,C,H,W) -> (B,C,size*scale,size*scale): each sample's window with its corner and
    size multiplied by ``scale`` (windows of latent cells -> the pixels under them)."""
    side = size * scale
    return torch.stack([image[:, t * scale:t * scale + side, x * scale:x * scale + side]
                        for image, (t, x) in zip(images, windows, strict=True)])


def evenly_spaced(count: int, total: int) -> np.ndarray:
    """Up to ``count`` distinct indices spread evenly over range(total)."""
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(np.int64))


class CachedFrames(Dataset):
    """Items: single frames (H,W,3) uint8 of a frame cache, or (with ``hands``) pairs of
    the frame and its hand render (H,W,3) uint8."""

    def __init__(self, cache: FrameCache, hands: bool = False) -> None:
        self.video = cache.video
        self.hand_render = cache.hand_render if hands else None

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        frame = torch.from_numpy(np.array(self.video[index]))  # a writable copy
        if self.hand_render is None:
            return frame
        return frame, torch.from_numpy(np.array(self.hand_render[index]))


class VAETask:
    """``TrainingTask`` of the small ``AutoencoderKL`` on SynthSign frames.

    ``decoder_only``: start from the trained VAE (``<output_dir>/vae/model``) and train
    only its decoder on the posterior means (what the diffusion model produces), as
    sd-vae-ft-mse did for SD: the encoder, hence the latent space every later stage
    learns in, stays bit-identical, so a sharper decoder can be swapped in at any time."""

    def __init__(self, cfg: SignGenConfig, decoder_only: bool = False) -> None:
        self.decoder_only = decoder_only
        vae = cfg.video.vae
        if vae.pretrained_path is not None:
            raise ConfigError(
                f"video.vae.pretrained_path is set ({vae.pretrained_path}): this config uses "
                f"a pretrained VAE, so there is nothing to train; set "
                f"video.vae.pretrained_path=null to train the small VAE instead")
        bad = [c for c in vae.block_out_channels if c % vae.norm_num_groups]
        if not vae.block_out_channels or bad:
            raise ConfigError(f"video.vae.block_out_channels {vae.block_out_channels} must be "
                              f"non-empty multiples of video.vae.norm_num_groups "
                              f"({vae.norm_num_groups})")
        self.cfg, self.model_cfg = cfg, vae
        self.root = dataset_root(cfg)
        self._train: FrameCache | None = None
        self._eval_frames: np.ndarray | None = None
        self._eval_hands: np.ndarray | None = None

    def train_cache(self) -> FrameCache:
        if self._train is None:
            self._train = FrameCache.open(self.root, "train")
        return self._train

    def build_model(self):
        from diffusers import AutoencoderKL

        if self.decoder_only:
            source = Path(self.cfg.experiment.output_dir) / "vae" / "model"
            if not (source / "config.json").is_file():
                raise ConfigError(f"decoder fine-tuning starts from the trained VAE, not "
                                  f"found in {source}; run python train.py --stage vae")
            return AutoencoderKL.from_pretrained(source)

        meta = json.loads((self.root / "meta.json").read_text()) \
            if (self.root / "meta.json").is_file() else {}
        height = int(meta.get("height", self.cfg.render.height))
        factor = 2 ** (len(self.model_cfg.block_out_channels) - 1)
        crop = self.model_cfg.train_crop
        if crop is not None and (crop % factor or not factor <= crop <= height):
            raise ConfigError(f"video.vae.train_crop ({crop}) must be a multiple of the VAE's "
                              f"spatial factor {factor}, at most the frame size {height}")
        if height % factor:
            raise ConfigError(f"frames of {height} px do not divide by the VAE's spatial "
                              f"factor {factor} (video.vae.block_out_channels)")
        n = len(self.model_cfg.block_out_channels)
        return AutoencoderKL(
            in_channels=3, out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(self.model_cfg.block_out_channels),
            layers_per_block=self.model_cfg.layers_per_block,
            latent_channels=self.model_cfg.latent_channels,
            norm_num_groups=self.model_cfg.norm_num_groups,
            mid_block_add_attention=self.model_cfg.mid_block_attention,
            sample_size=height)

    def train_dataset(self) -> Dataset:
        return CachedFrames(self.train_cache(), hands=self.model_cfg.hand_weight > 1)

    def collate(self, items: list) -> dict:
        """frames (B,3,S,S) in [-1,1] (flipped at random; recoloured with probability
        ``colour_augment``; random crops of ``train_crop`` when set), each frame's
        background colour (B,3,1,1), taken before cropping, and, when the items carry hand
        renders, ``hands`` (B,1,S,S) bool (``hand_mask``), flipped and cropped alike."""
        from signgen.training.tasks.video import colour_shift, random_colour_changes

        hands = None
        if isinstance(items[0], tuple):
            items, renders = zip(*items, strict=True)
            hands = hand_mask(torch.stack(renders).permute(0, 3, 1, 2))
        frames = to_unit(torch.stack(items))
        if self.model_cfg.colour_augment > 0:
            _, order, gain = random_colour_changes(len(frames), self.model_cfg.colour_augment)
            frames = colour_shift(frames, order, gain)
        flip = torch.rand(len(frames)) < 0.5
        frames = torch.where(flip[:, None, None, None], frames.flip(-1), frames)
        if hands is not None:
            hands = torch.where(flip[:, None, None, None], hands.flip(-1), hands)
        background = background_colour(frames)
        crop = self.model_cfg.train_crop
        if crop:
            windows = random_windows(len(frames), *frames.shape[-2:], crop)
            frames = crop_windows(frames, windows, crop)
            if hands is not None:
                hands = crop_windows(hands, windows, crop)
        batch = {"frames": frames, "background": background}
        if hands is not None:
            batch["hands"] = hands
        return batch

    def trainable_parameters(self, model):
        vae = getattr(model, "module", model)
        if not self.decoder_only:
            return list(vae.parameters())
        parts = [vae.decoder] + ([vae.post_quant_conv] if vae.post_quant_conv else [])
        return [p for part in parts for p in part.parameters()]

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        device = next(model.parameters()).device  # the loop leaves batches where collate made them
        hands = batch.get("hands")
        return vae_loss(model, batch["frames"].to(device), self.model_cfg.kl_weight,
                        batch["background"].to(device),
                        sample_posterior=not self.decoder_only,
                        hands=None if hands is None else hands.to(device),
                        hand_weight=self.model_cfg.hand_weight)

    def evaluate(self, model) -> dict[str, float]:
        if self._eval_frames is None:
            dev = FrameCache.open(self.root, "dev")
            picked = evenly_spaced(EVAL_FRAMES, len(dev))
            self._eval_frames = np.array(dev.video[picked])
            renders = torch.from_numpy(np.array(dev.hand_render[picked])).permute(0, 3, 1, 2)
            self._eval_hands = hand_mask(renders)[:, 0].numpy()
        frames = self._eval_frames
        recon = reconstruct(model, frames)
        signer = foreground_mask(to_unit(frames))[:, 0].numpy()
        return {"psnr": metrics.psnr(frames, recon), "ssim": metrics.ssim(frames, recon),
                "psnr_signer": metrics.psnr(frames, recon, mask=signer),
                "psnr_hands": metrics.psnr(frames, recon, mask=self._eval_hands)}

    def export(self, model, folder: Path) -> None:
        cache = self.train_cache()
        indices = evenly_spaced(SCALE_FRAMES, len(cache))
        was_training = model.training
        model.eval()
        means = latent_means(model, np.array(cache.video[indices]))
        model.train(was_training)
        std = float(means.std())
        if not np.isfinite(std) or std <= 0:
            raise FloatingPointError(f"latent std is {std}; cannot set scaling_factor")
        model.register_to_config(scaling_factor=1.0 / std)
        model.save_pretrained(folder)
        info = {"scaling_factor": 1.0 / std, "latent_std": std,
                "latent_mean": float(means.mean()),
                "latent_channel_mean": means.mean(dim=(0, 2, 3)).tolist(),
                "latent_channel_std": means.std(dim=(0, 2, 3)).tolist(),
                "latent_shape": list(means.shape[1:]), "num_frames": len(indices),
                "split": "train", "plan_hash": cache.plan_hash}
        (folder / "vae.json").write_text(json.dumps(info, indent=2) + "\n")


def build_task(cfg: SignGenConfig) -> VAETask:
    return VAETask(cfg)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.video.vae_train
