"""Token datasets: a split encoded by one FSQ autoencoder checkpoint, on disk.

The translator (stage III) learns text -> the FSQ tokens of each frame. Tokens only mean
something to the FSQ decoder that made them, so every token folder records that
checkpoint's weights hash (``fsq_id``) and ``load_tokens`` refuses any other::

    <out_dir>/                 default <dataset>/tokens/<fsq_id>/<split>/
        tokens.jsonl           one line per sample: sample_id, text, glosses, language,
                               signer_id, tokens ([[int] * tokens_per_frame] * T)
        meta.json              format, fsq_id, codebook_size, tokens_per_frame,
                               token_grid, split, num_samples, num_frames, plan_hash,
                               mirrored_signers (canonical handedness; else absent)

With ``--canonical-handedness`` the left-handed signers' samples are encoded from their
mirror images (:mod:`signgen.data.synthsign.mirroring`), into
``<dataset>/tokens/<fsq_id>/canonical_handedness/<split>/``.

The folder is written under a temporary name and renamed when complete, so a reader
never sees half a split.

    python -m signgen.data.tokens --fsq outputs/tiny/fsq/model --split train [--out DIR]
        [--canonical-handedness] [--embedding-cache [auto|fp32|bf16|fp16]]

With ``--embedding-cache`` the frames' stage-I embeddings are read from the split's
:class:`~signgen.data.embedding_cache.EmbeddingCache` (the one an ``fsq.embedding_cache``
training made of train, or built first) instead of decoding and embedding every sample.

The models are passed in (``tokenise_split``); only the command line loads them, from
the exported FSQ folder and the stage-I pipeline its ``fsq.json`` names.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from signgen.errors import SignGenError
from signgen.loading import load_pretrained

FORMAT = "signgen-tokens"
FORMAT_VERSION = 1
TOKENS_FILE = "tokens.jsonl"
META_FILE = "meta.json"
CONDITION_BATCH = 64  # frames per condition-encoder call


@dataclass
class TokenSplit:
    """A loaded token folder: ``meta`` (meta.json) and ``samples``, one dict per sample
    with sample_id, text, glosses, language, signer_id and tokens (T,tokens_per_frame)
    int64 in [0, codebook_size)."""

    meta: dict
    samples: list[dict]

    @property
    def fsq_id(self) -> str:
        return self.meta["fsq_id"]

    @property
    def codebook_size(self) -> int:
        return int(self.meta["codebook_size"])

    @property
    def tokens_per_frame(self) -> int:
        return int(self.meta["tokens_per_frame"])


CANONICAL_FOLDER = "canonical_handedness"


def default_tokens_dir(dataset_root: str | Path, fsq_id: str, split: str,
                       canonical_handedness: bool = False) -> Path:
    folder = Path(dataset_root) / "tokens" / fsq_id
    return (folder / CANONICAL_FOLDER if canonical_handedness else folder) / split


@torch.no_grad()
def tokenise_split(fsq_model, condition_encoder, dataset_root: str | Path, split: str,
                   out_dir: str | Path, fsq_id: str, progress: bool = True,
                   canonical_handedness: bool = False, embeddings=None) -> Path:
    """Encode every sample of ``split`` of the SynthSign folder ``dataset_root`` into FSQ
    tokens in ``out_dir`` (replacing what is there); returns ``out_dir``.

    ``condition_encoder`` (stage I) embeds each frame's pose map and hand render;
    ``fsq_model`` (an ``FSQAutoencoder`` built for that encoder) encodes each sample as
    one clip, with the sample's SMPL-X poses when it reads them (``pose_input``);
    ``fsq_id`` is its weights hash (``fsq_weights_id``). ``canonical_handedness``
    encodes the left-handed signers' samples from their mirror images (their ids go to
    meta.json's ``mirrored_signers``). ``embeddings``: an ``EmbeddingCache`` of the
    split's frame cache made by ``condition_encoder``, read instead of embedding the
    frames again (mirrored samples are still embedded)."""
    from tqdm import tqdm

    from signgen.data.synthsign.dataset import SynthSignDataset

    pose_input = bool(fsq_model.config.pose_input)  # the encoder reads the SMPL-X pose too
    fields = (*(() if embeddings is not None else ("pose_map", "hand_render")),
              *(("motion",) if pose_input else ()))
    dataset = SynthSignDataset(dataset_root, split, fields=fields)
    if embeddings is not None and [s["sample_id"] for s in embeddings.frames.samples] != \
            [s["sample_id"] for s in dataset.samples]:
        raise SignGenError(f"the embedding cache {embeddings.folder} is not of {split}'s "
                           f"samples in manifest order")
    mirrored, mirror = set(), None
    if canonical_handedness:
        from signgen.data.synthsign.mirroring import ConditionMirror, left_handed_signers

        mirrored = set(left_handed_signers(dataset_root))
        mirror = ConditionMirror(dataset_root)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)  # a killed run's leftover
    tmp.mkdir()
    fsq_model.eval()
    condition_encoder.eval()
    device = fsq_model.device
    condition_encoder.to(device)
    num_frames = 0
    try:
        with open(tmp / TOKENS_FILE, "w") as f:
            for i in tqdm(range(len(dataset)), desc=f"tokenise {split}", disable=not progress):
                item = dataset[i]
                if item["signer_id"] in mirrored:
                    item.update(_mirrored_item(mirror, item["sample_id"]))
                if "pose_map" in item:
                    embedding = torch.cat([
                        condition_encoder.embed({"pose_map": p.to(device),
                                                 "hand_render": h.to(device)})
                        for p, h in zip(item["pose_map"].split(CONDITION_BATCH),
                                        item["hand_render"].split(CONDITION_BATCH),
                                        strict=True)])
                else:
                    embedding = embeddings.sample(i).to(device)
                pose = item["poses"].float() if pose_input else None
                indices = fsq_model.encode(embedding, num_frames=len(embedding),
                                           smplx_pose=pose).indices
                record = {k: item[k] for k in ("sample_id", "text", "glosses", "language",
                                               "signer_id")}
                record["tokens"] = indices.cpu().tolist()
                f.write(json.dumps(record) + "\n")
                num_frames += len(indices)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "fsq_id": fsq_id,
                "codebook_size": int(fsq_model.codebook_size),
                "tokens_per_frame": int(fsq_model.tokens_per_frame),
                "token_grid": list(fsq_model.token_grid), "split": split,
                "num_samples": len(dataset), "num_frames": num_frames,
                "plan_hash": dataset.meta.get("plan_hash")}
        if canonical_handedness:
            meta["mirrored_signers"] = sorted(mirrored)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _mirrored_item(mirror, sample_id: str) -> dict[str, torch.Tensor]:
    """The dataset item's pose_map / hand_render (T,3,H,W) in [0,1] and poses (T,165) of
    the mirror image of ``sample_id``."""
    from signgen.data.synthsign.dataset import images_to_tensor

    arrays = mirror.render(sample_id)
    images = {key: images_to_tensor(arrays[key]) for key in ("pose_map", "hand_render")}
    return images | {"poses": torch.from_numpy(arrays["poses"])}


def load_tokens(directory: str | Path, expected_fsq_id: str) -> TokenSplit:
    """Read a token folder; SignGenError if it is missing, malformed, or was made by
    another FSQ checkpoint than ``expected_fsq_id``."""
    directory = Path(directory)
    meta_path, tokens_path = directory / META_FILE, directory / TOKENS_FILE
    if not meta_path.is_file() or not tokens_path.is_file():
        raise SignGenError(f"{directory} is not a token folder (no {META_FILE} / "
                           f"{TOKENS_FILE}); make one with python -m signgen.data.tokens")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise SignGenError(f"{meta_path} has format {meta.get('format')!r} version "
                           f"{meta.get('format_version')!r}, expected {FORMAT!r} "
                           f"version {FORMAT_VERSION}")
    if meta.get("fsq_id") != expected_fsq_id:
        raise SignGenError(f"the tokens in {directory} were made by FSQ checkpoint "
                           f"{meta.get('fsq_id')!r}, not {expected_fsq_id!r}; re-tokenise the "
                           f"split with that checkpoint (python -m signgen.data.tokens)")
    width, size = int(meta["tokens_per_frame"]), int(meta["codebook_size"])
    samples = []
    for line_number, line in enumerate(tokens_path.read_text().splitlines(), start=1):
        record = json.loads(line)
        tokens = np.asarray(record["tokens"], dtype=np.int64)
        if tokens.ndim != 2 or tokens.shape[1] != width or tokens.shape[0] < 1 \
                or tokens.min() < 0 or tokens.max() >= size:
            raise SignGenError(f"{tokens_path}:{line_number}: tokens must be T x {width} "
                               f"integers in [0, {size}), got shape {tokens.shape}")
        record["tokens"] = tokens
        samples.append(record)
    if len(samples) != meta.get("num_samples"):
        raise SignGenError(f"{tokens_path} has {len(samples)} samples, meta.json says "
                           f"{meta.get('num_samples')}")
    return TokenSplit(meta=meta, samples=samples)


def fsq_weights_id(fsq_dir: str | Path) -> str:
    """The ``fsq_id`` of an exported FSQ folder: its weights hash."""
    from signgen.paths import weights_hash

    return weights_hash(fsq_dir)


def tokenise_with_export(fsq_dir: str | Path, dataset_root: str | Path, split: str,
                         out: str | Path | None = None, progress: bool = True,
                         canonical_handedness: bool = False,
                         embedding_cache: str | None = None) -> Path:
    """Tokenise ``split`` of ``dataset_root`` with the exported FSQ folder ``fsq_dir`` and
    the stage-I condition encoder its ``fsq.json`` names (checked by hash), or with the
    ``fsq/`` folder of an assembled pipeline (say ``assets/pipeline/fsq``) and that
    pipeline's own condition encoder; ``out`` defaults to
    ``<dataset_root>/tokens/<fsq_id>/<split>`` (``.../<fsq_id>/canonical_handedness/
    <split>`` with ``canonical_handedness``, see :func:`tokenise_split`).
    ``embedding_cache``: a precision ("fp32", "bf16", "fp16") to read the frames'
    embeddings from the split's ``EmbeddingCache`` at (built first if missing, with the
    split's frame cache; ``fsq.embedding_cache`` training builds the train split's).
    Returns the token folder."""
    from signgen.models.fsq_autoencoder import FSQAutoencoder
    from signgen.paths import weights_hash
    from signgen.training.tasks.fsq import load_condition_encoder

    fsq_dir = Path(fsq_dir)
    info_path = fsq_dir / "fsq.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        video_dir = Path(info["video_model"])
        encoder = load_condition_encoder(video_dir)
        found = weights_hash(video_dir / "condition_encoder")
        if found != info["condition_encoder_hash"]:
            raise SignGenError(f"the condition encoder in {video_dir} (hash {found}) is not "
                               f"the one the FSQ autoencoder was trained on "
                               f"({info['condition_encoder_hash']})")
    elif (fsq_dir.parent / "stages.json").is_file():  # assembled: the stages belong together
        encoder = load_condition_encoder(fsq_dir.parent)
        found = weights_hash(fsq_dir.parent / "condition_encoder")
    else:
        raise SignGenError(f"{fsq_dir} is neither an exported FSQ autoencoder (no fsq.json) "
                           f"nor the fsq folder of an assembled pipeline; train one with "
                           f"python train.py --stage fsq")
    fsq_id = fsq_weights_id(fsq_dir)
    out = Path(out) if out else default_tokens_dir(dataset_root, fsq_id, split,
                                                   canonical_handedness)
    embeddings = None
    if embedding_cache is not None:
        from signgen.data.embedding_cache import EmbeddingCache
        from signgen.data.frame_cache import FrameCache

        frames = FrameCache.open(dataset_root, split, progress=progress)
        embeddings = EmbeddingCache.open(frames, encoder, found, precision=embedding_cache,
                                         progress=progress)
    return tokenise_split(load_pretrained(FSQAutoencoder, fsq_dir), encoder, dataset_root,
                          split, out, fsq_id, progress=progress,
                          canonical_handedness=canonical_handedness, embeddings=embeddings)


def main(argv: list[str] | None = None) -> int:
    from signgen.config import DEFAULT_CONFIG, load_config

    parser = ArgumentParser(description="Encode a dataset split into FSQ tokens.")
    parser.add_argument("--fsq", required=True, help="exported FSQ folder (with fsq.json), "
                        "or an assembled pipeline's fsq folder")
    parser.add_argument("--split", required=True, help="dataset split, e.g. train")
    parser.add_argument("--out", help="output folder (default <dataset>/tokens/<fsq_id>/<split>)")
    parser.add_argument("--canonical-handedness", action="store_true",
                        help="encode left-handed signers' samples from their mirror images "
                        "(for translator.canonical_handedness)")
    parser.add_argument("--embedding-cache", nargs="?", const="auto",
                        choices=["auto", "fp32", "bf16", "fp16"],
                        help="read the frames' stage-I embeddings from the split's embedding "
                        "cache (built first if missing), computed at this precision; auto: "
                        "the FSQ training's (fsq.train.mixed_precision), which makes the "
                        "cache an fsq.embedding_cache training built reusable")
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help="config naming the dataset (data.root, data.dataset)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    root = Path(cfg.data.root) / cfg.data.dataset
    precision = args.embedding_cache
    if precision == "auto":
        from signgen.training.tasks.fsq import cache_precision

        precision = cache_precision(cfg)
    out = tokenise_with_export(args.fsq, root, args.split, args.out,
                               canonical_handedness=args.canonical_handedness,
                               embedding_cache=precision)
    print(f"tokens of {args.split} -> {out}")
    return 0


if __name__ == "__main__":
    from signgen.cli import ArgumentParser, run_cli

    sys.exit(run_cli(main))
