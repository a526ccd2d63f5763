"""Turn a real sign-language corpus into a signgen dataset folder (issue #9).

    python -m signgen.data.preprocess --corpus {phoenix14t,how2sign,csl_daily}
        --root CORPUS_DIR (--poses POSES_DIR | --smplx SMPLX_DIR [--hamer HAMER_DIR])
        [--out DATASET_DIR] [--splits train dev test] [--workers N] [--limit N]
        [--config tiny] [KEY=VALUE ...]

The output has SynthSign's layout and ``format`` (see ``synthsign/generate.py``), so
``SynthSignDataset`` and every training stage read it once ``data.dataset`` names it
(default ``--out``: ``<data.root>/<corpus>``); its splits are the corpus's (``train``,
``dev``, ``test``), listed in ``meta.json["splits"]``.

Input: the release as :mod:`signgen.data.corpora` reads it, plus one MediaPipe Holistic
``.pose`` file per item, ``POSES_DIR/<sample_id>.pose``, estimated on the item's whole
video with pose-format's CLI (pose-format is installed with signgen; its estimator needs
``pip install "mediapipe<0.10.30"``)::

    video_to_pose --format mediapipe -i VIDEO.mp4 -o POSES_DIR/<sample_id>.pose

or, without MediaPipe, a COCO-WholeBody ``.pose`` file from a local DWPose / RTMW ONNX
model (``pip install 'signgen[onnx]'``; 2-D only, so the fit below has no world
landmarks)::

    python -m signgen.data.onnx_pose --model DWPOSE.onnx --video VIDEO.mp4 \\
        --out POSES_DIR/<sample_id>.pose

How2Sign's clips are named ``<sample_id>.mp4``, so ``videos_to_poses --format mediapipe
--directory <split>_rgb_front_clips/raw_videos`` writes them all next to the clips (then
``--poses`` is that folder).  PHOENIX-2014-T and CSL-Daily ship folders of frames; make a
lossless video of each at the corpus's frame rate first (PHOENIX: 25 fps; CSL-Daily:
30 fps), frames in name order::

    ffmpeg -framerate 25 -pattern_type glob -i 'FRAMES_DIR/*.png' -c:v libx264 -crf 0 \\
        CLIP.mp4

Or, instead of ``--poses``, the output of 3-D estimators: ``--smplx SMPLX_DIR`` with one
SMPL-X estimator file per item (SMPLer-X / OSX / Multi-HMR style), ``SMPLX_DIR/<sample_id>.npz``,
and optionally ``--hamer HAMER_DIR`` with HaMeR's hands, ``HAMER_DIR/<sample_id>.npz``
(formats: :mod:`signgen.data.estimator_import`).  Then step 1 reads those files
(``import_estimates``: the estimated parameters, HaMeR's hands where it found them,
resampled like the keypoints), the keypoints are the estimated joints projected with the
estimator's camera and framed as below, and step 3 fits nothing: the estimated body is
only placed before ``signing_camera`` (its ``fit_error`` is that placement's pixel
error), and its expression is kept.  Steps 2 and 4 are the same.

Per item (:class:`CorpusSampleMaker`):

1. import: the pose file's span [start_s, end_s) at ``data.fps``, framed into
   ``render.height`` x ``render.width`` like SynthSign (``pose_import.import_pose``).
2. video: the same span of the video (an ``.mp4``, or a folder of frame images taken in
   name order), which must have as many frames as the pose file and is taken to have
   its fps (the landmarks were estimated on it); resampled to ``data.fps`` by the
   nearest frame in time (the frame the keypoints take their visibility from) and
   warped with exactly the keypoints' similarity transform, so video and keypoints
   line up.  Pixels outside the source frame get the median colour of the first
   frame's border.
3. fit: SMPL-X (``BodyFitter``, default ``FitConfig``, shape fitted per clip) to the 2-D
   keypoints through ``signing_camera(width, height)``; when the file has
   POSE_WORLD_LANDMARKS, those whose image point is visible are a second, 3-D input,
   compared centred (MediaPipe puts their origin at the hips, which may be out of view)
   and rotated from camera into world axes.
4. render: the hand condition from the fitted mesh (``render_hands``); the pose map from
   the imported keypoints (``draw_pose_map``: what DWPose would draw on the video);
   expression zeros; ``frame_gloss`` all -1 (no gloss alignment is known).

Each sample is written to a temporary folder and renamed when complete; a re-run skips
finished samples and deletes temporary folders a killed run left.  An item whose pose
file or video is missing or unreadable (or that cannot be fitted) is skipped and
recorded in ``failures.jsonl`` (``{"sample_id", "error"}``; after each run it lists the
latest error of every item still unfinished) and retried by the next run.
``references/<signer_id>.png`` is the first frame of the signer's first finished clip
in corpus order (signer ``unknown`` where the corpus names none).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from signgen.config.schema import SignGenConfig
from signgen.data.corpora import CORPORA, CorpusItem, load_corpus
from signgen.data.corpora import SPLITS as CORPUS_SPLITS
from signgen.data.synthsign.generate import FORMAT, FORMAT_VERSION, write_manifest
from signgen.errors import DataError, SignGenError

if TYPE_CHECKING:
    from signgen.data.pose_import import FrameTransform

#: Bump when the processing changes: it is part of the plan hash.
PREPROCESS_VERSION = 1
UNKNOWN_SIGNER = "unknown"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


# -- planning ----------------------------------------------------------------------------
def plan_items(corpus: str, root: str | os.PathLike,
               splits: tuple[str, ...] = CORPUS_SPLITS) -> list[CorpusItem]:
    """The corpus items of ``splits`` in split then file order; SignGenError for an
    unknown split, a duplicate id or one that cannot be a folder name."""
    unknown = [s for s in splits if s not in CORPUS_SPLITS]
    if unknown or not splits:
        raise SignGenError(f"splits must be some of {list(CORPUS_SPLITS)}, got {list(splits)}")
    items = [item for split in dict.fromkeys(splits) for item in load_corpus(corpus, root, split)]
    seen: set[str] = set()
    for item in items:
        sid = item.sample_id
        if not sid or sid.startswith(".") or "/" in sid or "\\" in sid:
            raise SignGenError(f"{corpus} sample id {sid!r} cannot name a sample folder")
        if sid in seen:
            raise SignGenError(f"{corpus} sample id {sid!r} occurs twice")
        seen.add(sid)
    return items


def settings(cfg: SignGenConfig, corpus: str, splits, inputs: tuple[str, ...] = ("pose",)
             ) -> dict:
    """Everything besides the item list that determines the samples (``inputs``: the
    kinds of input file, see :func:`preprocess`)."""
    from signgen.body.fitting import FitConfig
    from signgen.data.pose_import import DEFAULT_SHOULDER_CENTRE, DEFAULT_SHOULDER_WIDTH

    setup = {"version": PREPROCESS_VERSION, "corpus": corpus, "splits": list(splits),
             "fps": cfg.data.fps, "height": cfg.render.height, "width": cfg.render.width,
             "shoulder_width": DEFAULT_SHOULDER_WIDTH,
             "shoulder_centre": list(DEFAULT_SHOULDER_CENTRE), "fit": asdict(FitConfig()),
             "body": asdict(cfg.body)}
    if inputs != ("pose",):  # (absent for .pose input: earlier plan hashes stay valid)
        from signgen.data.estimator_import import ESTIMATOR_IMPORT_VERSION

        setup["estimators"] = {"inputs": list(inputs), "version": ESTIMATOR_IMPORT_VERSION}
    return setup


def plan_hash(items: list[CorpusItem], setup: dict) -> str:
    """16 hex digits of the sorted item ids and the settings."""
    blob = json.dumps({"items": sorted(i.sample_id for i in items), "settings": setup},
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# -- video -------------------------------------------------------------------------------
def _stream_frames(path: Path, wanted: set[int]):
    """Yields (index, (H,W,3) uint8) of the wanted frames of an mp4 or a folder of
    images (name order), then (count, None); DataError if unreadable."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path}: no {'/'.join(IMAGE_SUFFIXES)} frames in the folder")
        from PIL import Image, UnidentifiedImageError

        for i in sorted(wanted):
            if i < len(files):
                try:
                    with Image.open(files[i]) as image:
                        yield i, np.asarray(image.convert("RGB"))
                except (OSError, UnidentifiedImageError) as error:
                    raise DataError(f"cannot read frame {files[i]}: {error}") from None
        yield len(files), None
        return
    if not path.is_file():
        raise DataError(f"no video {path}")
    import imageio.v2 as imageio

    count = 0
    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            for count, frame in enumerate(reader, start=1):
                if count - 1 in wanted:
                    yield count - 1, frame
    except (OSError, RuntimeError, ValueError, IndexError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"cannot read video {path} (truncated or corrupt?): {reason}") from None
    yield count, None


def _pil_affine(transform: FrameTransform, reduce: int) -> tuple[float, ...]:
    """PIL AFFINE coefficients (output -> input, pixel-edge coordinates on both sides,
    input reduced ``reduce`` times) of ``transform`` (pixel centres at integers)."""
    s, (sx, sy), (tx, ty) = transform.scale, transform.source, transform.target
    return (1 / (s * reduce), 0.0, ((-0.5 - tx) / s + sx + 0.5) / reduce,
            0.0, 1 / (s * reduce), ((-0.5 - ty) / s + sy + 0.5) / reduce)


def warp_frame(frame: np.ndarray, transform: FrameTransform, size: tuple[int, int],
               fill=(0, 0, 0)) -> np.ndarray:
    """(h,w,3) uint8 source frame -> (H,W,3) uint8 in the output frame ``size`` (H, W):
    output pixel p shows source point ``transform`` maps to p (bilinear; a box filter
    first when shrinking by 2x or more), ``fill`` outside the source."""
    from PIL import Image

    image = Image.fromarray(frame)
    reduce = max(1, int(1.0 / transform.scale))
    if reduce > 1:
        image = image.reduce(reduce)
    height, width = size
    out = image.transform((width, height), Image.AFFINE, _pil_affine(transform, reduce),
                          resample=Image.BILINEAR, fillcolor=tuple(int(c) for c in fill))
    return np.asarray(out)


def read_clip(path: Path, indices: np.ndarray, transform: FrameTransform,
              size: tuple[int, int], expected_frames: int,
              source: str = "pose file") -> np.ndarray:
    """Frames ``indices`` (T,) of a video or frame folder, warped: (T,H,W,3) uint8.
    DataError unless it has exactly ``expected_frames`` frames (the ``source``'s)."""
    where: dict[int, list[int]] = {}
    for position, index in enumerate(indices.tolist()):
        where.setdefault(index, []).append(position)
    out = np.zeros((len(indices), *size, 3), np.uint8)
    fill, count = None, None
    for index, frame in _stream_frames(path, set(where)):
        if frame is None:
            count = index
            break
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise DataError(f"{path}: frame {index} has shape {frame.shape}, expected (H,W,3)")
        if fill is None:  # the first wanted frame
            border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
            fill = np.median(border, axis=0)
        out[where[index]] = warp_frame(frame, transform, size, fill)
    if count != expected_frames:
        raise DataError(f"{path} has {count} frames but its {source} {expected_frames}; "
                        f"the landmarks must come from this very video")
    return out


# -- one sample --------------------------------------------------------------------------
class CorpusSampleMaker:
    """Makes the arrays of corpus samples (see the module docstring). One per process."""

    def __init__(self, cfg: SignGenConfig) -> None:
        from signgen.body import BodyModel
        from signgen.body.fitting import BodyFitter, FitConfig
        from signgen.data.synthsign.signers import signing_camera
        from signgen.render import MeshRenderer

        self.cfg = cfg
        self.size = (cfg.render.height, cfg.render.width)
        self.body = BodyModel(cfg.body.model_dir, cfg.body.gender, cfg.body.num_betas,
                              cfg.body.num_expression)
        self.fitter = BodyFitter(self.body, FitConfig())
        self.camera = signing_camera(cfg.render.width, cfg.render.height)
        self.renderer = MeshRenderer(cfg.render.width, cfg.render.height)

    def make(self, item: CorpusItem, inputs: dict[str, Path]) -> tuple[dict, dict]:
        """(arrays, info) of one item: frames/pose_map/hand_render (T,H,W,3) uint8 and
        the motion arrays; info holds the fit error and the seconds per step.
        ``inputs``: {'pose': the .pose file} or {'smplx': the SMPL-X estimator file,
        optionally 'hamer': the HaMeR file} (see the module docstring).
        Raises SignGenError (InvalidInputError, DataError) for bad input files."""
        import torch

        from signgen.data.estimator_import import import_estimates
        from signgen.data.pose_import import import_pose, nearest_frames
        from signgen.data.synthsign.conditions import draw_pose_map, render_hands

        seconds = {}
        start = time.perf_counter()
        clip = None
        if "smplx" in inputs:
            clip = import_estimates(inputs["smplx"], self.body, self.camera,
                                    inputs.get("hamer"), fps=self.cfg.data.fps,
                                    start_s=item.start_s, end_s=item.end_s)
            pose = clip.pose
        else:
            pose = import_pose(inputs["pose"], size=self.size, fps=self.cfg.data.fps,
                               start_s=item.start_s, end_s=item.end_s)
        first, stop = pose.source_span
        indices = first + nearest_frames(stop - first, pose.source_fps, pose.fps)
        seconds["import"] = time.perf_counter() - start

        start = time.perf_counter()
        frames = read_clip(item.video_path, indices, pose.transform, self.size,
                           pose.source_frames, "pose file" if clip is None else "SMPL-X file")
        seconds["video"] = time.perf_counter() - start

        world = {}
        if clip is None:
            start = time.perf_counter()
            world = self._world_input(pose)
            result = self.fitter.fit(keypoints2d=pose.keypoints, confidence2d=pose.visible,
                                     camera=self.camera, **world)
            params, fit_error = result.params(), result.error_2d.numpy()
            seconds["fit"] = time.perf_counter() - start
        else:  # no fit: the estimated body, as import_estimates placed it
            params, fit_error = clip.params, clip.placement_error

        start = time.perf_counter()
        with torch.no_grad():
            out = self.body(params)
        frames_t = len(frames)
        arrays = {
            "frames": frames,
            "pose_map": draw_pose_map(pose.keypoints, pose.visible, *self.size),
            "hand_render": render_hands(out.vertices.numpy(), self.body, self.camera,
                                        self.renderer),
            "poses": params.full_pose().numpy().astype(np.float32),
            "betas": params.betas[0].numpy().astype(np.float32),
            "expression": params.expression.numpy().astype(np.float32),  # 0 for a fit
            "transl": params.transl.numpy().astype(np.float32),
            "joints": out.joints.numpy().astype(np.float32),
            "keypoints": pose.keypoints,
            "visible": pose.visible,
            "frame_gloss": np.full(frames_t, -1, np.int16),
            "fit_error": fit_error.astype(np.float32),
        }
        seconds["render"] = time.perf_counter() - start
        error = arrays["fit_error"][np.isfinite(arrays["fit_error"])]
        info = {"source_fps": pose.source_fps, "source_frames": pose.source_frames,
                "source_span": list(pose.source_span), "world_landmarks": bool(world),
                "fit_error_px": {"mean": float(error.mean()) if len(error) else None,
                                 "median": float(np.median(error)) if len(error) else None,
                                 "frames_without_keypoints": int(frames_t - len(error))},
                "seconds": seconds}
        if clip is not None:
            info["estimators"] = {"inputs": sorted(inputs), "hamer_frames": clip.hamer_frames,
                                  "hamer_offset_px": clip.hamer_offset_px}
        return arrays, info

    def _world_input(self, pose) -> dict:
        """Fitter keywords for the world landmarks: those whose image point is visible,
        rotated from camera into world axes, compared centred (one group)."""
        if pose.world is None:
            return {}
        mask = pose.world_visible & pose.visible
        if not mask.any():
            return {}
        rotation = np.asarray(self.camera.rotation, np.float32)  # world -> camera
        return {"keypoints3d": pose.world @ rotation, "mask3d": mask,
                "groups3d": np.zeros(mask.shape[1], np.int64)}


def write_sample(root: Path, item: CorpusItem, signer_id: str, arrays: dict, info: dict,
                 cfg: SignGenConfig, inputs: dict[str, Path]) -> None:
    """Write one sample atomically, in SynthSign's layout (plus the per-frame fit error)."""
    from signgen.data.synthsign.generate import MOTION_KEYS, write_sample_folder

    meta = {
        "sample_id": item.sample_id, "split": item.split, "language": item.language,
        "text": item.text, "glosses": list(item.glosses), "signer_id": signer_id,
        "num_frames": int(len(arrays["frames"])), "fps": cfg.data.fps,
        "height": cfg.render.height, "width": cfg.render.width, "gloss_spans": [],
        "source": {"video": item.video_path.name,
                   **{kind: Path(path).name for kind, path in inputs.items()},
                   "start_s": item.start_s, "end_s": item.end_s},
        **info,
    }
    write_sample_folder(root, item.sample_id, arrays, meta, cfg.data.fps,
                        (*MOTION_KEYS, "fit_error"))


# -- worker processes --------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(cfg: SignGenConfig, root: str, single_thread: bool = True) -> None:
    if single_thread:  # one process per core: keep torch and llvmpipe to one thread each
        os.environ.setdefault("LP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)
    _WORKER.update(root=Path(root), cfg=cfg)
    try:
        _WORKER["maker"] = CorpusSampleMaker(cfg)
    except Exception as error:  # noqa: BLE001 - re-raised by _work, in the parent
        # A Pool replaces a worker whose initializer raises, forever: hand the error
        # (e.g. a missing body model) to the first task instead.
        _WORKER["init_error"] = error


def _work(task: tuple[CorpusItem, dict[str, str], str]) -> dict:
    """Make and write one sample; a SignGenError (bad input) becomes a failure record."""
    if "init_error" in _WORKER:
        raise _WORKER["init_error"]
    item, paths, signer_id = task
    inputs = {kind: Path(path) for kind, path in paths.items()}
    start = time.perf_counter()
    try:
        arrays, info = _WORKER["maker"].make(item, inputs)
        write_start = time.perf_counter()
        write_sample(_WORKER["root"], item, signer_id, arrays, info, _WORKER["cfg"], inputs)
        info["seconds"]["write"] = time.perf_counter() - write_start
    except SignGenError as error:
        return {"sample_id": item.sample_id, "error": str(error)}
    return {"sample_id": item.sample_id, "seconds": info["seconds"],
            "total": time.perf_counter() - start}


# -- the whole corpus --------------------------------------------------------------------
def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


# Per kind of input file: its name's suffix, command-line option and meta.json key.
_SUFFIX = {"pose": ".pose", "smplx": ".npz", "hamer": ".npz"}
_OPTION = {"pose": "--poses", "smplx": "--smplx", "hamer": "--hamer"}
_SOURCE_KEY = {"pose": "poses", "smplx": "smplx", "hamer": "hamer"}


def _signer(item: CorpusItem) -> str:
    return item.signer_id or UNKNOWN_SIGNER


def preprocess(cfg: SignGenConfig, corpus: str, corpus_root: str | os.PathLike,
               poses: str | os.PathLike | None, out: str | os.PathLike | None = None,
               splits: tuple[str, ...] = CORPUS_SPLITS, workers: int = 1,
               limit: int | None = None, progress: bool = True,
               smplx: str | os.PathLike | None = None,
               hamer: str | os.PathLike | None = None) -> Path:
    """Preprocess (or finish preprocessing) a corpus; returns the dataset folder.

    Args:
        corpus: a name in ``signgen.data.corpora.CORPORA``; corpus_root: its release.
        poses: the folder of ``<sample_id>.pose`` files; or None and
        smplx: the folder of ``<sample_id>.npz`` SMPL-X estimator files, with
        hamer: optionally the folder of ``<sample_id>.npz`` HaMeR files.
        out: dataset folder (default ``<data.root>/<corpus>``).
        splits: the corpus splits to include (part of the plan: a folder holds one plan).
        workers: processes ('spawn'); 1 works in this process.
        limit: process at most this many unfinished items.
    """
    from tqdm import tqdm

    from signgen.config import config_hash, config_to_yaml

    if corpus not in CORPORA:
        raise SignGenError(f"unknown corpus {corpus!r}; corpora: {', '.join(CORPORA)}")
    splits = tuple(dict.fromkeys(splits))
    root = Path(out) if out is not None else Path(cfg.data.root) / corpus
    if root.exists() and not root.is_dir():
        raise SignGenError(f"dataset path {root} exists and is not a folder")
    if (poses is None) == (smplx is None) or (hamer is not None and smplx is None):
        raise SignGenError("give either a folder of .pose files or one of SMPL-X estimator "
                           "files (optionally with one of HaMeR files)")
    folders = {kind: Path(folder) for kind, folder in
               (("pose", poses), ("smplx", smplx), ("hamer", hamer)) if folder is not None}
    for kind, folder in folders.items():
        if not folder.is_dir():
            raise SignGenError(f"{folder}: no such folder of {_SUFFIX[kind]} files")
    if limit is not None and limit < 0:
        raise SignGenError(f"limit must be >= 0, got {limit}")
    items = plan_items(corpus, corpus_root, splits)
    setup = settings(cfg, corpus, splits, tuple(folders))
    digest = plan_hash(items, setup)
    meta_path = root / "meta.json"
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old.get("plan_hash") != digest:
            source = old.get("source", {})
            raise SignGenError(f"{root} holds a dataset made from other items or settings "
                               f"(plan {old.get('plan_hash')} != {digest}; it was made from "
                               f"{source.get('corpus')} splits {old.get('splits')} at "
                               f"{old.get('fps')} fps, {old.get('height')}x"
                               f"{old.get('width')} px); use another folder or delete it")
    samples = root / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    for stale in samples.glob(".*.tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    options = [word for kind, folder in folders.items() for word in (_OPTION[kind], str(folder))]
    command = shlex.join(["python", "-m", "signgen.data.preprocess", "--corpus", corpus,
                          "--root", str(corpus_root), *options, "--out", str(root),
                          "--splits", *splits, "--config", cfg.experiment.name])
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "plan_hash": digest,
        "config_hash": config_hash(cfg), "config": config_to_yaml(cfg),
        "fps": cfg.data.fps, "height": cfg.render.height, "width": cfg.render.width,
        "splits": list(splits), "settings": setup,
        "source": {"corpus": corpus, "root": str(corpus_root),
                   **{_SOURCE_KEY[kind]: str(folder) for kind, folder in folders.items()}},
        "counts": {s: sum(i.split == s for i in items) for s in splits},
        "command": command, "status": "incomplete",
    }
    if meta_path.exists():  # keep what earlier runs recorded until it is recomputed
        meta = {**json.loads(meta_path.read_text()), **meta}
    _write_json(meta_path, meta)

    todo = [i for i in items if not (samples / i.sample_id / "sample.json").exists()]
    todo = todo[:limit] if limit is not None else todo
    tasks = [(i, {kind: str(folder / f"{i.sample_id}{_SUFFIX[kind]}")
                  for kind, folder in folders.items()}, _signer(i)) for i in todo]
    failures_path = root / "failures.jsonl"
    results = []
    start = time.perf_counter()
    bar = tqdm(total=len(tasks), desc=f"{corpus} samples", unit="sample",
               disable=not progress)
    with open(failures_path, "a") as failures:
        def record(result: dict) -> None:
            results.append(result)
            if "error" in result:
                failures.write(json.dumps(result, ensure_ascii=False) + "\n")
                failures.flush()
            bar.update()

        if workers <= 1 or len(tasks) <= 1:
            if tasks:
                _init_worker(cfg, str(root), single_thread=False)
            for task in tasks:
                record(_work(task))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, str(root))) as pool:
                for result in pool.imap_unordered(_work, tasks):
                    record(result)
    bar.close()
    elapsed = time.perf_counter() - start

    finished = write_manifest(root)
    done = {i.sample_id for i in items if (samples / i.sample_id / "sample.json").exists()}
    failed = _rewrite_failures(failures_path, done)
    references = _write_references(root, items, done, meta.get("references", {}))
    made = [r for r in results if "error" not in r]
    meta.update({
        "status": "complete" if finished == len(items) else "incomplete",
        "finished": finished, "failed": len(failed), "references": references,
        "finished_counts": {s: sum(i.split == s and i.sample_id in done for i in items)
                            for s in splits},
        "fit": _fit_summary(root, items, done),
        "last_run": {"processed": len(made), "failed": len(results) - len(made),
                     "seconds": round(elapsed, 2), "workers": workers,
                     "seconds_per_sample": _mean_seconds(made)},
    })
    _write_json(meta_path, meta)
    return root


def _rewrite_failures(path: Path, done: set[str]) -> dict[str, str]:
    """Keep each unfinished item's latest error; returns {sample_id: error}."""
    latest: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                latest[record["sample_id"]] = record["error"]
    latest = {sid: err for sid, err in latest.items() if sid not in done}
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps({"sample_id": sid, "error": err}, ensure_ascii=False)
                           + "\n" for sid, err in latest.items()))
    tmp.replace(path)
    return latest


def _write_references(root: Path, items: list[CorpusItem], done: set[str],
                      previous: dict[str, str]) -> dict[str, str]:
    """references/<signer>.png = frame 0 of the signer's first finished sample (corpus
    order); rewritten when that sample changes. Returns {signer: sample_id}."""
    import imageio.v2 as imageio
    from PIL import Image

    (root / "references").mkdir(exist_ok=True)
    chosen: dict[str, str] = {}
    for item in items:
        if item.sample_id in done:
            chosen.setdefault(_signer(item), item.sample_id)
    for signer, sample_id in chosen.items():
        path = root / "references" / f"{signer}.png"
        if previous.get(signer) == sample_id and path.exists():
            continue
        with imageio.get_reader(root / "samples" / sample_id / "video.mp4",
                                format="FFMPEG") as reader:
            first = reader.get_data(0)
        tmp = path.with_suffix(".tmp.png")
        Image.fromarray(first).save(tmp)
        tmp.replace(path)
    return chosen


def _fit_summary(root: Path, items: list[CorpusItem], done: set[str]) -> dict:
    """Per-sample mean 2-D fit error (px) over finished samples: median, mean, p90, max."""
    errors, world = [], 0
    for item in items:
        if item.sample_id in done:
            info = json.loads((root / "samples" / item.sample_id / "sample.json").read_text())
            if info["fit_error_px"]["mean"] is not None:
                errors.append(info["fit_error_px"]["mean"])
            world += bool(info.get("world_landmarks"))
    if not errors:
        return {"samples": 0}
    e = np.asarray(errors)
    return {"samples": len(e), "with_world_landmarks": world,
            "error_px_median": float(np.median(e)), "error_px_mean": float(e.mean()),
            "error_px_p90": float(np.percentile(e, 90)), "error_px_max": float(e.max())}


def _mean_seconds(made: list[dict]) -> dict:
    if not made:
        return {}
    keys = made[0]["seconds"]
    out = {k: float(np.mean([r["seconds"][k] for r in made])) for k in keys}
    out["total"] = float(np.mean([r["total"] for r in made]))
    return {k: round(v, 3) for k, v in out.items()}


# -- command line ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from signgen.cli import ArgumentParser
    from signgen.config import DEFAULT_CONFIG, load_config

    parser = ArgumentParser(prog="python -m signgen.data.preprocess",
                            description="A real corpus -> a signgen dataset folder.")
    parser.add_argument("--corpus", required=True, choices=sorted(CORPORA))
    parser.add_argument("--root", required=True, help="the corpus release folder")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--poses", help="folder of <sample_id>.pose files")
    inputs.add_argument("--smplx", help="folder of <sample_id>.npz SMPL-X estimator files "
                        "(signgen.data.estimator_import)")
    parser.add_argument("--hamer", help="with --smplx: folder of <sample_id>.npz HaMeR files")
    parser.add_argument("--out", help="dataset folder (default: <data.root>/<corpus>)")
    parser.add_argument("--splits", nargs="+", default=list(CORPUS_SPLITS),
                        choices=CORPUS_SPLITS)
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--limit", type=int, help="process at most N unfinished items")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.hamer and not args.smplx:
        parser.error("--hamer needs --smplx (HaMeR gives the hands, the body comes from "
                     "the SMPL-X estimator)")
    cfg = load_config(args.config, args.overrides)
    root = preprocess(cfg, args.corpus, args.root, args.poses, args.out,
                      splits=tuple(args.splits), workers=args.workers, limit=args.limit,
                      smplx=args.smplx, hamer=args.hamer)
    meta = json.loads((root / "meta.json").read_text())
    run, fit = meta["last_run"], meta["fit"]
    error = (f", fit error median {fit['error_px_median']:.2f} px" if fit.get("samples")
             else "")
    failed = f" (see {root / 'failures.jsonl'})" if run["failed"] else ""
    print(f"{root}: {meta['finished']}/{sum(meta['counts'].values())} samples "
          f"({meta['status']}); this run {run['processed']} made, {run['failed']} failed"
          f"{failed} in {run['seconds']:.0f} s{error}")
    return 0


if __name__ == "__main__":
    from signgen.cli import run_cli

    sys.exit(run_cli(main))
