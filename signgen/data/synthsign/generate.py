"""Generate the SynthSign dataset on disk.

Layout of a dataset folder::

    meta.json            format, config, plan hash, counts, lexicon hash, command, status
    lexicon.json         the lexicon used (copy), signers.json
    references/<signer>.png
    samples/<id>/        video.mp4, conditions.npz, motion.npz, sample.json
    manifest.jsonl       one line per finished sample (written last)

Planning (which sentence, language and signer each sample gets, and its seed) runs in
the parent and is deterministic from the config. Rendering runs in 'spawn' worker
processes (OpenGL cannot be used in a forked child). Every sample is written to a
temporary folder and renamed when complete, so a killed run leaves no partial sample,
and a re-run skips the samples that exist.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from signgen.config.schema import SignGenConfig
from signgen.data.synthsign.grammar import SentenceGenerator
from signgen.data.synthsign.lexicon import FINGERSPELL_PREFIX, Lexicon
from signgen.data.synthsign.signers import Signer, make_signers
from signgen.errors import InvalidInputError, SignGenError

FORMAT = "signgen-synthsign-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "dev", "test_novel_sentences", "test_unseen_signers")
#: More training sentences (``synthsign.num_train_extra``), outside the plan hash.
EXTRA_SPLIT = "train_extra"


@dataclass(frozen=True)
class SampleSpec:
    """Everything that determines one sample (the worker needs nothing else)."""

    sample_id: str
    split: str
    language: str
    text: str
    glosses: tuple[str, ...]
    nonmanuals: tuple[str | None, ...]
    frame_key: str
    signer_id: str
    seed: int


def _unit_hash(text: str, salt: str) -> float:
    """A stable number in [0, 1) from a string (split assignment must not depend on
    Python's randomised hash())."""
    digest = hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()
    return int(digest[:12], 16) / float(16**12)


def _covered(glosses, known: set[str]) -> bool:
    return all(g.startswith(FINGERSPELL_PREFIX) or g in known for g in glosses)


def plan_samples(cfg: SignGenConfig, lexicon: Lexicon, signers: list[Signer]) -> list[SampleSpec]:
    """The deterministic list of samples of all four splits."""
    sc = cfg.synthsign
    unknown = [lang for lang in sc.languages if lang not in lexicon.languages]
    if unknown:
        raise InvalidInputError(f"synthsign.languages {unknown} are not in the lexicon "
                                f"(known: {list(lexicon.languages)})")
    rng = np.random.default_rng(sc.seed)
    generator = SentenceGenerator(lexicon, seed=sc.seed)
    weights = np.asarray(sc.language_weights, float) / sum(sc.language_weights)
    seen = signers[: len(signers) - sc.num_unseen_signers]
    unseen = signers[len(signers) - sc.num_unseen_signers:]
    wanted = {"train": sc.num_train, "dev": sc.num_dev,
              "test_novel_sentences": sc.num_test_novel_sentences,
              "test_unseen_signers": sc.num_test_unseen_signers}
    pools: dict[str, list] = {split: [] for split in SPLITS}
    held_out_candidates = []
    # Draw parallel sentences; frames held out by hash go to dev/test_novel_sentences.
    budget = 50 * (sum(wanted.values()) + 10)
    for _ in range(budget):
        if all(len(pools[s]) >= wanted[s] for s in ("train", "test_unseen_signers")) and (
                len(held_out_candidates) >= 3 * (wanted["dev"] + wanted["test_novel_sentences"])):
            break
        parallel = generator.sample_parallel()
        language = sc.languages[rng.choice(len(sc.languages), p=weights)]
        sentence = parallel[language]
        if _unit_hash(sentence.frame_key, "held-out") < sc.held_out_sentence_fraction:
            held_out_candidates.append(sentence)
        elif len(pools["train"]) < wanted["train"]:
            pools["train"].append((sentence, seen[rng.integers(len(seen))]))
        elif len(pools["test_unseen_signers"]) < wanted["test_unseen_signers"]:
            pools["test_unseen_signers"].append((sentence, unseen[rng.integers(len(unseen))]))
    known = {lang: set() for lang in sc.languages}
    for sentence, _ in pools["train"]:
        known[sentence.language].update(sentence.glosses)
    # Held-out sentences must be novel combinations of signs seen in training.
    for sentence in held_out_candidates:
        if not _covered(sentence.glosses, known[sentence.language]):
            continue
        half = "dev" if _unit_hash(sentence.frame_key, "dev-or-test") < 0.5 else \
            "test_novel_sentences"
        if len(pools[half]) < wanted[half]:
            pools[half].append((sentence, seen[rng.integers(len(seen))]))
    short = {s: (len(pools[s]), wanted[s]) for s in SPLITS if len(pools[s]) < wanted[s]}
    if short:
        raise SignGenError(f"could not draw enough sentences for {short} (have, wanted); "
                           f"raise synthsign.held_out_sentence_fraction or lower the counts")
    specs = []
    if sc.num_train_extra:
        excluded = {sentence.text for split in SPLITS if split != "train"
                    for sentence, _ in pools[split]}
        pools[EXTRA_SPLIT] = _plan_extra(cfg, lexicon, seen, excluded)
    for split_index, split in enumerate((*SPLITS, EXTRA_SPLIT)):
        for i, (sentence, signer) in enumerate(pools.get(split, ())):
            seed = int(np.random.SeedSequence([sc.seed, split_index, i]).generate_state(1)[0])
            specs.append(SampleSpec(
                sample_id=f"{split}-{i:05d}", split=split, language=sentence.language,
                text=sentence.text, glosses=tuple(sentence.glosses),
                nonmanuals=tuple(sentence.nonmanuals), frame_key=sentence.frame_key,
                signer_id=signer.signer_id, seed=seed))
    return specs


def _plan_extra(cfg: SignGenConfig, lexicon: Lexicon, seen: list[Signer],
                excluded: set[str]) -> list:
    """``num_train_extra`` (sentence, signer) pairs for the train_extra split, from their
    own random streams (so the four main splits are the same with or without them): seen
    signers only; sentence frames held out for dev / test_novel_sentences are skipped by
    the same hash rule, and so is any text of dev or a test split."""
    sc = cfg.synthsign
    stream = int(np.random.SeedSequence([sc.seed, len(SPLITS)]).generate_state(1)[0])
    rng = np.random.default_rng(stream)
    generator = SentenceGenerator(lexicon, seed=stream)
    weights = np.asarray(sc.language_weights, float) / sum(sc.language_weights)
    pool = []
    for _ in range(50 * (sc.num_train_extra + 10)):
        if len(pool) >= sc.num_train_extra:
            break
        sentence = generator.sample_parallel()[
            sc.languages[rng.choice(len(sc.languages), p=weights)]]
        if (_unit_hash(sentence.frame_key, "held-out") >= sc.held_out_sentence_fraction
                and sentence.text not in excluded):
            pool.append((sentence, seen[rng.integers(len(seen))]))
    if len(pool) < sc.num_train_extra:
        raise SignGenError(f"could only draw {len(pool)} of synthsign.num_train_extra = "
                           f"{sc.num_train_extra} extra training sentences")
    return pool


def plan_hash(specs: list[SampleSpec]) -> str:
    """Hash of the plan of the four main splits (train_extra samples are left out: adding
    them keeps every model trained on the dataset valid)."""
    specs = [s for s in specs if s.split in SPLITS]
    blob = json.dumps([asdict(s) for s in specs], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def expand_signs(glosses, language: str, lexicon: Lexicon):
    """[(gloss, [SignForm, ...])]: one form per lexical sign, one per letter for a
    fingerspelled word (gloss ``fs-WORD``)."""
    return [(gloss, lexicon.forms(gloss, language)) for gloss in glosses]


class SampleRenderer:
    """Renders samples: motion, mesh video, pose map, hand render. One per process."""

    def __init__(self, cfg: SignGenConfig, lexicon: Lexicon, signers: list[Signer]) -> None:
        # Heavy imports stay here so that planning and the CLI start fast.
        from signgen.body import BodyModel
        from signgen.data.synthsign.motion import MotionPlanner
        from signgen.data.synthsign.signers import signing_camera
        from signgen.render import MeshRenderer

        self.cfg = cfg
        self.lexicon = lexicon
        self.signers = {s.signer_id: s for s in signers}
        self.body = BodyModel(cfg.body.model_dir, cfg.body.gender, cfg.body.num_betas,
                              cfg.body.num_expression)
        self.planner = MotionPlanner(self.body, fps=cfg.data.fps)
        h, w = cfg.render.height, cfg.render.width
        self.camera = signing_camera(w, h)
        self.renderer = MeshRenderer(w, h)

    def render(self, spec: SampleSpec) -> dict:
        """Arrays of one sample: frames/pose_map/hand_render (T,H,W,3) uint8 and motion."""
        import torch

        from signgen.data.synthsign.conditions import (
            draw_pose_map,
            project_keypoints,
            render_hands,
        )
        from signgen.data.synthsign.motion import SignerMotionStyle
        from signgen.data.synthsign.signers import render_signer_frames

        signer = self.signers[spec.signer_id]
        style = SignerMotionStyle(betas=signer.betas, handedness=signer.handedness,
                                  speed=signer.speed, space_scale=signer.space_scale)
        signs = expand_signs(spec.glosses, spec.language, self.lexicon)
        clip = self.planner.plan(signs, style, np.random.default_rng(spec.seed),
                                 list(spec.nonmanuals))
        with torch.no_grad():
            out = self.body(clip.params)
        vertices = out.vertices.numpy()
        frames = render_signer_frames(vertices, self.body, signer, self.camera, self.renderer)
        keypoints, visible = project_keypoints(out.joints.numpy(), self.camera)
        h, w = self.cfg.render.height, self.cfg.render.width
        return {
            "frames": frames,
            "pose_map": draw_pose_map(keypoints, visible, h, w),
            "hand_render": render_hands(vertices, self.body, self.camera, self.renderer),
            "poses": clip.params.full_pose().numpy().astype(np.float32),
            "betas": np.asarray(signer.betas, np.float32),
            "expression": clip.params.expression.numpy().astype(np.float32),
            "transl": clip.params.transl.numpy().astype(np.float32),
            "joints": out.joints.numpy().astype(np.float32),
            "keypoints": keypoints.astype(np.float32),
            "visible": visible,
            "frame_gloss": clip.frame_gloss.astype(np.int16),
            "gloss_spans": clip.gloss_spans,
        }


def open_video_writer(path: Path, fps: float):
    """An imageio writer (``append_data(frame)``, ``close()``) of H.264 mp4 (yuv420p,
    crf 18, one thread: deterministic bytes). ffmpeg runs as its own process, so it
    encodes while the caller makes the next frames."""
    import imageio.v2 as imageio

    return imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", quality=None,
                              macro_block_size=1, pixelformat="yuv420p",
                              ffmpeg_params=["-crf", "18", "-threads", "1"],
                              ffmpeg_log_level="error")


def write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """(T,H,W,3) uint8 frames -> ``path`` (see :func:`open_video_writer`)."""
    with open_video_writer(path, fps) as writer:
        for frame in frames:
            writer.append_data(frame)


MOTION_KEYS = ("poses", "betas", "expression", "transl", "joints", "keypoints", "visible",
               "frame_gloss")


def write_sample_folder(root: Path, sample_id: str, arrays: dict, meta: dict, fps: float,
                        motion_keys: tuple[str, ...] = MOTION_KEYS) -> None:
    """Write ``samples/<sample_id>/`` atomically (a temporary folder renamed into place):
    video.mp4 from ``arrays['frames']``, conditions.npz, motion.npz (``motion_keys``)
    and sample.json (``meta`` plus the file names)."""
    final = root / "samples" / sample_id
    tmp = root / "samples" / f".{sample_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_video(tmp / "video.mp4", arrays["frames"], fps)
    np.savez_compressed(tmp / "conditions.npz", pose_map=arrays["pose_map"],
                        hand_render=arrays["hand_render"])
    np.savez_compressed(tmp / "motion.npz", **{k: arrays[k] for k in motion_keys})
    meta = meta | {"files": {"video": "video.mp4", "conditions": "conditions.npz",
                             "motion": "motion.npz"}}
    (tmp / "sample.json").write_text(json.dumps(meta, indent=1) + "\n")
    tmp.rename(final)


def write_sample(root: Path, spec: SampleSpec, arrays: dict, cfg: SignGenConfig) -> None:
    """One rendered SynthSign sample (see ``write_sample_folder``)."""
    meta = asdict(spec) | {
        "num_frames": int(arrays["frames"].shape[0]), "fps": cfg.data.fps,
        "height": cfg.render.height, "width": cfg.render.width,
        "gloss_spans": [list(s) for s in arrays["gloss_spans"]],
    }
    write_sample_folder(root, spec.sample_id, arrays, meta, cfg.data.fps)


# -- worker processes --------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(cfg: SignGenConfig, lexicon_json: str, signers: list[dict], root: str,
                 single_thread: bool = True) -> None:
    if single_thread:  # one process per core: keep torch and llvmpipe to one thread each
        os.environ.setdefault("LP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)
    lexicon = Lexicon.from_json(lexicon_json)
    _WORKER["renderer"] = SampleRenderer(cfg, lexicon, [Signer.from_dict(s) for s in signers])
    _WORKER["root"] = Path(root)
    _WORKER["cfg"] = cfg


def _work(spec: SampleSpec) -> tuple[str, float]:
    start = time.perf_counter()
    arrays = _WORKER["renderer"].render(spec)
    write_sample(_WORKER["root"], spec, arrays, _WORKER["cfg"])
    return spec.sample_id, time.perf_counter() - start


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def generate(cfg: SignGenConfig, out: str | os.PathLike | None = None,
             workers: int | None = None, limit: int | None = None,
             only: list[str] | None = None, progress: bool = True) -> Path:
    """Generate (or finish generating) the dataset; returns its folder.

    Args:
        out: dataset folder (default ``<data.root>/<data.dataset>``).
        workers: processes (default ``synthsign.workers``); 1 renders in this process.
        limit: render at most this many missing samples (for tests and quick looks).
        only: render only these sample ids (unknown ids are an error).
    """
    from tqdm import tqdm

    from signgen.config import config_hash, config_to_yaml

    root = Path(out) if out is not None else Path(cfg.data.root) / cfg.data.dataset
    if root.exists() and not root.is_dir():
        raise SignGenError(f"dataset path {root} exists and is not a folder")
    lexicon = Lexicon.load()
    signers = make_signers(cfg.synthsign.num_signers, cfg.synthsign.seed)
    specs = plan_samples(cfg, lexicon, signers)
    digest = plan_hash(specs)
    splits = (*SPLITS, EXTRA_SPLIT) if cfg.synthsign.num_train_extra else SPLITS
    meta_path = root / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old.get("plan_hash") != digest:
            raise SignGenError(f"{root} holds a SynthSign dataset made with other settings "
                               f"(plan {old.get('plan_hash')} != {digest}); use another "
                               f"folder or delete it")
    (root / "samples").mkdir(parents=True, exist_ok=True)
    for stale in (root / "samples").glob(".*.tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "plan_hash": digest,
        "config_hash": config_hash(cfg), "config": config_to_yaml(cfg),
        "seed": cfg.synthsign.seed, "fps": cfg.data.fps,
        "height": cfg.render.height, "width": cfg.render.width,
        "lexicon_sha256": hashlib.sha256(lexicon.to_json().encode()).hexdigest(),
        "counts": {s: sum(sp.split == s for sp in specs) for s in splits},
        "splits": list(splits),
        "unseen_signers": [s.signer_id for s in signers[len(signers) -
                                                          cfg.synthsign.num_unseen_signers:]],
        "command": "python -m signgen.data.synthsign generate --config "
                   f"{cfg.experiment.name}",
        "status": "incomplete",
    }
    _write_json(meta_path, meta)
    (root / "lexicon.json").write_text(lexicon.to_json())
    _write_json(root / "signers.json", [s.to_dict() for s in signers])
    todo = [s for s in specs if not (root / "samples" / s.sample_id / "sample.json").exists()]
    if only is not None:
        unknown = set(only) - {s.sample_id for s in specs}
        if unknown:
            raise SignGenError(f"unknown sample ids {sorted(unknown)[:5]}")
        todo = [s for s in todo if s.sample_id in set(only)]
    if limit is not None:
        todo = todo[:limit]
    workers = cfg.synthsign.workers if workers is None else workers
    args = (cfg, lexicon.to_json(), [s.to_dict() for s in signers], str(root))
    bar = tqdm(total=len(todo), desc="SynthSign samples", unit="sample", disable=not progress)
    if workers <= 1 or len(todo) <= 1:
        _init_worker(*args, single_thread=False)
        _write_references(root, signers)
        for spec in todo:
            _work(spec)
            bar.update()
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker, initargs=args) as pool:
            for _ in pool.imap_unordered(_work, todo, chunksize=4):
                bar.update()
        _init_worker(*args, single_thread=False)
        _write_references(root, signers)
    bar.close()
    finished = write_manifest(root)
    meta["status"] = "complete" if finished == len(specs) else "incomplete"
    meta["finished"] = finished
    _write_json(meta_path, meta)
    return root


def _write_references(root: Path, signers: list[Signer]) -> None:
    from PIL import Image

    from signgen.data.synthsign.signers import render_reference

    renderer: SampleRenderer = _WORKER["renderer"]
    (root / "references").mkdir(exist_ok=True)
    for signer in signers:
        path = root / "references" / f"{signer.signer_id}.png"
        if not path.exists():
            image = render_reference(signer, renderer.body, renderer.renderer)
            tmp = path.with_suffix(".tmp.png")
            Image.fromarray(image).save(tmp)
            tmp.replace(path)


def write_manifest(root: Path) -> int:
    """(Re)write manifest.jsonl from the finished samples; returns their number."""
    lines = []
    for meta_file in sorted((root / "samples").glob("*/sample.json")):
        lines.append(json.dumps(json.loads(meta_file.read_text()), sort_keys=True))
    tmp = root / "manifest.jsonl.tmp"
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.replace(root / "manifest.jsonl")
    return len(lines)
