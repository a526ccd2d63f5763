"""The latents a trained stage-I renderer makes for SynthSign clips, kept for tuning its VAE
decoder (``python train.py --stage render_decoder``, see ``tasks/render_decoder.py``).

For each picked sample of a split the renderer runs on the sample's own conditions (pose
maps and hand renders) and its signer's reference image, at the given sampling settings,
and the final latents, before the VAE decoder, are kept beside the frame-cache indices of
the ground-truth frames they should decode to::

    <folder>/
        latents.f16     (N,c,h,w) float16, scaled by the VAE's scaling_factor (what
                        ``SignVideoPipeline(..., output_type="latent")`` returns)
        index.json      format, video_model_hash, split, plan_hash, sampling, seed,
                        colour_augment, shape, samples: [{sample_id, signer_id, number,
                        cache_offset, length, colour_order, colour_gain}]

Sample k (in the split's manifest order) is rendered with the noise seed ``seed + k``;
picked samples are spread evenly over the manifest, so every signer appears. With
``colour_augment`` p, a sample's reference image is recoloured with probability p (a
random channel order and gains, drawn with the seed ``seed + k + COLOUR_SEED``, as in the
renderer's training): the renderer copies the reference's colours, so the latents then
show a recoloured signer, and the ground-truth frames are recoloured alike when read
(:meth:`RenderedLatents.target_frames`). A decoder tuned on the training signers' own
colours alone learns them and shifts unseen signers' colours towards them. Rendering writes one
file per sample into ``<folder>.parts`` first: a killed run keeps the samples it finished
and a rerun renders only the rest; the folder itself appears, complete, at the end.
A folder rendered by other weights, settings or data is refused, never reused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from signgen.errors import SignGenError

FORMAT = "signgen-rendered-latents"
INDEX = "index.json"
LATENTS = "latents.f16"
COLOUR_SEED = 1_000_003  # the colour draws' seed offset (apart from the noise seeds)


class RenderedLatents:
    """A rendered-latents folder (see the module doc).

    Attributes:
        latents: (N,c,h,w) float16 read-only memmap, scaled latents.
        frames: (N,) int64 frame-cache indices of the ground-truth frame of each latent.
        sample_of: (N,) int64 the ``index["samples"]`` entry of each latent.
        index: the parsed index.json.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.index = json.loads((self.folder / INDEX).read_text())
        shape = tuple(self.index["shape"])
        self.latents = np.memmap(self.folder / LATENTS, dtype=np.float16, mode="r",
                                 shape=shape)
        samples = self.index["samples"]
        self.frames = np.concatenate(
            [np.arange(s["cache_offset"], s["cache_offset"] + s["length"])
             for s in samples]).astype(np.int64)
        self.sample_of = np.repeat(np.arange(len(samples)), [s["length"] for s in samples])

    def __len__(self) -> int:
        return len(self.frames)

    def target_frames(self, items, frames):
        """The ground truth of latents ``items`` (N,) from their frames (N,H,W,3) uint8
        (read from the frame cache at ``self.frames[items]``) -> (N,3,H,W) float in
        [-1,1], recoloured as each one's reference was."""
        import torch

        from signgen.training.tasks.vae import to_unit
        from signgen.training.tasks.video import colour_shift

        samples = [self.index["samples"][k] for k in self.sample_of[np.asarray(items)]]
        order = torch.tensor([s["colour_order"] for s in samples], dtype=torch.long)
        gain = torch.tensor([s["colour_gain"] for s in samples], dtype=torch.float32)
        return colour_shift(to_unit(torch.as_tensor(np.asarray(frames))), order, gain)


def colour_change(seed: int, probability: float):
    """The colour change (order (3,) int64, gain (3,) float32) of the sample rendered with
    noise seed ``seed`` (identity unless drawn with ``probability``)."""
    import torch

    from signgen.training.tasks.video import random_colour_changes

    generator = torch.Generator().manual_seed(seed + COLOUR_SEED)
    _, order, gain = random_colour_changes(1, probability, generator=generator)
    return order[0], gain[0]


def pick_samples(total: int, count: int) -> list[int]:
    """Up to ``count`` distinct sample numbers spread evenly over range(total)."""
    if count < 1:
        raise SignGenError(f"need at least one clip to render, got {count}")
    return sorted({int(round(x)) for x in np.linspace(0, total - 1, min(count, total))})


def recoloured(image: np.ndarray, order, gain) -> np.ndarray:
    """(H,W,3) uint8 -> the same with ``colour_shift``'s channel ``order`` (3,) and
    ``gain`` (3,) applied, uint8."""
    import torch

    from signgen.training.tasks.vae import to_uint8, to_unit
    from signgen.training.tasks.video import colour_shift

    shifted = colour_shift(to_unit(image[None]), torch.as_tensor(order)[None],
                           torch.as_tensor(gain, dtype=torch.float32)[None])
    return to_uint8(shifted)[0]


def render_latents(video_dir: str | Path, dataset_root: str | Path, split: str,
                   num_samples: int, folder: str | Path, sampling: dict, seed: int = 0,
                   colour_augment: float = 0.0, progress: bool = True) -> RenderedLatents:
    """Render (or reopen) the latents of ``num_samples`` samples of ``split`` with the
    stage-I export ``video_dir``; ``sampling``: the pipeline's keyword arguments
    (num_inference_steps, guidance_scale, window, overlap, window_batch, precision);
    ``colour_augment``: the probability of recolouring a sample (see the module doc)."""
    import torch
    from tqdm.auto import tqdm

    from signgen.data.frame_cache import FrameCache
    from signgen.loading import load_pretrained
    from signgen.paths import weights_hash
    from signgen.pipelines.sign_video import SignVideoPipeline

    video_dir, folder = Path(video_dir), Path(folder)
    cache = FrameCache.open(dataset_root, split, progress=progress)
    wanted = {"format": FORMAT, "video_model_hash": weights_hash(video_dir / "unet"),
              "vae_hash": weights_hash(video_dir / "vae"), "split": split,
              "plan_hash": cache.plan_hash, "sampling": dict(sampling), "seed": seed,
              "colour_augment": colour_augment}
    picked = pick_samples(len(cache.samples), num_samples)
    if (folder / INDEX).is_file():
        found = RenderedLatents(folder)
        recorded = {k: found.index.get(k) for k in wanted}
        if recorded != wanted or len(found.index["samples"]) != len(picked):
            raise SignGenError(f"{folder} holds latents rendered from other inputs "
                               f"({recorded}); delete it to render them again")
        return found
    parts = folder.with_name(f"{folder.name}.parts")
    parts.mkdir(parents=True, exist_ok=True)
    stamp = parts / INDEX
    if stamp.is_file() and json.loads(stamp.read_text()) != wanted:
        shutil.rmtree(parts)  # parts of another renderer or setting
        parts.mkdir(parents=True)
    stamp.write_text(json.dumps(wanted) + "\n")
    pipe = None
    for k in tqdm(picked, desc=f"render {split} latents", unit="clip", disable=not progress):
        path = parts / f"{k:06d}.npy"
        if path.is_file():
            continue
        if pipe is None:
            pipe = load_pretrained(SignVideoPipeline, video_dir)
            pipe.set_progress_bar_config(disable=True)
        sample = cache.samples[k]
        frames = slice(sample["offset"], sample["offset"] + sample["length"])
        order, gain = colour_change(seed + k, colour_augment)
        reference = recoloured(cache.reference(sample["signer_id"]), order, gain)
        latents = pipe(reference, np.array(cache.pose_map[frames]),
                       np.array(cache.hand_render[frames]), output_type="latent",
                       generator=torch.Generator().manual_seed(seed + k), progress=False,
                       **sampling).frames
        tmp = path.with_name(f".tmp-{path.name}")
        with open(tmp, "wb") as handle:
            np.save(handle, latents.half().cpu().numpy())
        tmp.rename(path)
    arrays = [np.load(parts / f"{k:06d}.npy") for k in picked]
    tmp = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stacked = np.concatenate(arrays).astype(np.float16)
    stacked.tofile(tmp / LATENTS)
    samples = [{"sample_id": cache.samples[k]["sample_id"],
                "signer_id": cache.samples[k]["signer_id"], "number": k,
                "cache_offset": int(cache.samples[k]["offset"]), "length": len(a),
                **dict(zip(("colour_order", "colour_gain"),
                           (x.tolist() for x in colour_change(seed + k, colour_augment)),
                           strict=True))}
               for k, a in zip(picked, arrays, strict=True)]
    (tmp / INDEX).write_text(json.dumps({**wanted, "shape": list(stacked.shape),
                                         "samples": samples}, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    shutil.rmtree(parts)
    return RenderedLatents(folder)
