"""``python train.py --stage render_decoder``: tune the VAE decoder of a trained stage-I
model on the latents that model itself renders.

The diffusion model's final latents are not the VAE encoder's: at a few sampling steps
they carry a fine grain and small errors that the decoder, trained only on encoded frames,
turns into speckled backgrounds and smeared hands. Here the decoder (and
``post_quant_conv``) learns to map the renderer's latents of training clips, rendered on
the clips' own conditions and reference at the sampling settings the pipeline uses
(``video.sampling``), to those clips' ground-truth frames. The encoder is untouched, so the
latent space, the reference latents and everything trained in it stay as they are; the
decoder is matched to this renderer (retune it after retraining the UNet).

Data: ``video.render_decoder.train_clips`` train samples rendered once by
:func:`signgen.training.rendered_latents.render_latents` into
``<output_dir>/render_decoder/latents-train`` (``eval_clips`` dev samples into
``latents-dev``), paired with the frame cache's frames; with
``video.render_decoder.colour_augment`` some clips are rendered from a recoloured reference
and their frames recoloured alike (unseen signers' colours then decode as theirs).
Batches are aligned random crops (``video.vae.train_crop`` pixels, that over the VAE's
factor in latent cells), no flips (a latent is not its mirror image's).
Loss: the VAE's signer- and hand-weighted L1 (:func:`weighted_l1`, ``video.vae.hand_weight``).
Evaluation: PSNR, SSIM, signer and hand PSNR of the decoded dev latents against the dev
clips' frames; the export records the same numbers for the decoder it started from.
Export: the stage-I folder of ``<output_dir>/video_temporal/model`` with the tuned VAE,
its ``video.json`` naming the renderer it was tuned for (``render_decoder``), ready for
``assemble --video``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.frame_cache import FrameCache
from signgen.errors import ConfigError
from signgen.eval import metrics
from signgen.paths import weights_hash
from signgen.training.rendered_latents import RenderedLatents, render_latents
from signgen.training.tasks.keypoints import dataset_root
from signgen.training.tasks.vae import (
    background_colour,
    crop_windows,
    foreground_mask,
    hand_mask,
    random_windows,
    to_uint8,
    to_unit,
    weighted_l1,
)

CHUNK = 16  # latents decoded per call in evaluation


def pipeline_sampling(sampling) -> dict:
    """``video.sampling`` -> the ``SignVideoPipeline`` keyword arguments it sets."""
    return {"num_inference_steps": sampling.num_inference_steps,
            "guidance_scale": sampling.guidance_scale, "window": sampling.window,
            "overlap": sampling.overlap, "window_batch": sampling.window_batch or None,
            "precision": sampling.precision}


class LatentDecoder(torch.nn.Module):
    """A VAE called on latents: forward((B,c,h,w) scaled latents) -> (B,3,H,W) frames in
    [-1,1] (the model the loop trains, so that a DDP wrapper's forward is the decoding)."""

    def __init__(self, vae) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents / self.vae.config.scaling_factor).sample


class RenderedPairs(Dataset):
    """Items: (latent (c,h,w) float16, its target frame (3,H,W) float in [-1,1]
    (recoloured as its reference was), hand render (H,W,3) uint8)."""

    def __init__(self, latents: RenderedLatents, cache: FrameCache) -> None:
        self.latents, self.cache = latents, cache

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, i: int):
        frame = int(self.latents.frames[i])
        target = self.latents.target_frames([i], self.cache.video[frame][None])[0]
        return (torch.from_numpy(np.array(self.latents.latents[i])), target,
                torch.from_numpy(np.array(self.cache.hand_render[frame])))


class RenderDecoderTask:
    """``TrainingTask`` of the decoder of ``<output_dir>/video_temporal/model``'s VAE on
    that renderer's own latents (see the module doc)."""

    def __init__(self, cfg: SignGenConfig) -> None:
        self.cfg, self.settings = cfg, cfg.video.render_decoder
        self.video_dir = Path(cfg.experiment.output_dir) / "video_temporal" / "model"
        if not (self.video_dir / "model_index.json").is_file():
            raise ConfigError(f"the render decoder is tuned for a trained video model, not "
                              f"found in {self.video_dir}; run python train.py --stage video")
        self.root = dataset_root(cfg)
        self.run_dir = Path(cfg.experiment.output_dir) / "render_decoder"
        self.sampling = pipeline_sampling(cfg.video.sampling)
        # a run folder started for another renderer is never resumed
        self.inputs_version = (f"unet {weights_hash(self.video_dir / 'unet')} vae "
                               f"{weights_hash(self.video_dir / 'vae')} clips "
                               f"{self.settings.train_clips} colours "
                               f"{self.settings.colour_augment} sampling "
                               f"{json.dumps(self.sampling, sort_keys=True)}")
        self._train: RenderedPairs | None = None
        self._dev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _rendered(self, split: str, clips: int) -> RenderedLatents:
        return render_latents(self.video_dir, self.root, split, clips,
                              self.run_dir / f"latents-{split}", self.sampling,
                              seed=self.cfg.experiment.seed,
                              colour_augment=self.settings.colour_augment)

    def build_model(self):
        from diffusers import AutoencoderKL

        from signgen.loading import load_pretrained

        vae = load_pretrained(AutoencoderKL, self.video_dir / "vae")
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        crop = self.cfg.video.vae.train_crop
        if crop is not None and crop % factor:
            raise ConfigError(f"video.vae.train_crop ({crop}) must be a multiple of the VAE's "
                              f"spatial factor {factor}")
        self.factor = factor
        return LatentDecoder(vae)

    def train_dataset(self) -> Dataset:
        if self._train is None:
            self._train = RenderedPairs(self._rendered("train", self.settings.train_clips),
                                        FrameCache.open(self.root, "train"))
        return self._train

    def collate(self, items: list) -> dict:
        """latents (B,c,s,s) float32 and the frames (B,3,S,S) in [-1,1] and hand masks
        (B,1,S,S) bool under them (S = s x the VAE's factor; whole frames without
        ``video.vae.train_crop``), each frame's background colour (B,3,1,1)."""
        latents, frames, renders = (torch.stack(x) for x in zip(*items, strict=True))
        latents = latents.float()
        hands = hand_mask(renders.permute(0, 3, 1, 2))
        background = background_colour(frames)
        crop = self.cfg.video.vae.train_crop
        if crop and crop < frames.shape[-1]:
            cells = crop // self.factor
            windows = random_windows(len(latents), *latents.shape[-2:], cells)
            latents = crop_windows(latents, windows, cells)
            frames, hands = (crop_windows(x, windows, cells, self.factor)
                             for x in (frames, hands))
        return {"latents": latents, "frames": frames, "hands": hands, "background": background}

    def trainable_parameters(self, model):
        vae = getattr(model, "module", model).vae
        parts = [vae.decoder] + ([vae.post_quant_conv] if vae.post_quant_conv else [])
        return [p for part in parts for p in part.parameters()]

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        device = next(model.parameters()).device
        recon = model(batch["latents"].to(device))
        return weighted_l1(recon, batch["frames"].to(device), batch["background"].to(device),
                           batch["hands"].to(device), self.cfg.video.vae.hand_weight)

    def _dev_set(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._dev is None:
            rendered = self._rendered("dev", self.settings.eval_clips)
            cache = FrameCache.open(self.root, "dev")
            frames = to_uint8(rendered.target_frames(np.arange(len(rendered)),
                                                     cache.video[rendered.frames]))
            renders = torch.from_numpy(np.array(cache.hand_render[rendered.frames]))
            hands = hand_mask(renders.permute(0, 3, 1, 2))[:, 0].numpy()
            self._dev = np.array(rendered.latents), frames, hands
        return self._dev

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        latents, frames, hands = self._dev_set()
        device = next(model.parameters()).device
        decoded = np.concatenate([
            to_uint8(model(torch.from_numpy(latents[i:i + CHUNK]).float().to(device)))
            for i in range(0, len(latents), CHUNK)])
        signer = foreground_mask(to_unit(frames))[:, 0].numpy()
        return {"psnr": metrics.psnr(frames, decoded), "ssim": metrics.ssim(frames, decoded),
                "psnr_signer": metrics.psnr(frames, decoded, mask=signer),
                "psnr_hands": metrics.psnr(frames, decoded, mask=hands)}

    def export(self, model, folder: Path) -> None:
        from diffusers import AutoencoderKL

        from signgen.loading import load_pretrained

        folder = Path(folder)
        shutil.copytree(self.video_dir, folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("training.json", "vae"))
        model.vae.save_pretrained(folder / "vae")
        if (self.video_dir / "vae" / "vae.json").is_file():
            shutil.copy2(self.video_dir / "vae" / "vae.json", folder / "vae" / "vae.json")
        before = load_pretrained(AutoencoderKL, self.video_dir / "vae").eval()
        info = json.loads((self.video_dir / "video.json").read_text())
        info["vae_hash"] = weights_hash(folder / "vae")
        info["render_decoder"] = {
            "video_model": str(self.video_dir),
            "video_model_vae_hash": weights_hash(self.video_dir / "vae"),
            "train_clips": self.settings.train_clips, "eval_clips": self.settings.eval_clips,
            "sampling": self.sampling, "eval_before": self.evaluate(LatentDecoder(before))}
        (folder / "video.json").write_text(json.dumps(info, indent=2) + "\n")


def build_task(cfg: SignGenConfig) -> RenderDecoderTask:
    return RenderDecoderTask(cfg)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.video.render_decoder.train
