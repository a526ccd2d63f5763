"""Score a system on a SynthSign split with every evaluator; write JSON + Markdown.

A *system* turns a test sample (its text, glosses, language, signer) into a video
and/or 2D keypoints. The same evaluators judge every system:

- back-translation of videos (``bt_wer``, ``bt_bleu4``): the keypoint estimator, then the
  video pose recogniser trained on the estimator's keypoints of ground-truth train videos;
  the end-to-end CNN video recogniser gives a second opinion (``cnn_bt_wer``,
  ``cnn_bt_bleu4``); back-translation of keypoint output (``pose_bt_wer``,
  ``pose_bt_bleu4``): the pose recogniser trained on exact keypoints;
- ``dtw_mje``: DTW mean joint error between the system's keypoints and the ground
  truth's, on ``metrics.DTW_JOINTS`` after shoulder normalisation (so in shoulder
  widths); a video system's keypoints come from the keypoint estimator;
- ``pck``: keypoint-estimator output vs ground-truth keypoints, for frame-aligned video
  (PCK@0.05 of the bounding box of all visible keypoints); ``pck_hands``: the same over the
  42 hand keypoints alone (``metrics.HAND_POINTS``);
- ``identity_top1``: unseen-signer retrieval of the clip's signer among the split's
  reference images (``test_unseen_signers`` only);
- ``ssim``, ``ssim_masked`` (signer silhouette), ``psnr``: frame-aligned video only;
- ``jitter``: mean keypoint acceleration (shoulder widths / frame²).

A metric a system cannot be scored on is ``null`` with the reason in ``notes``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from signgen.data.synthsign.dataset import read_npz
from signgen.errors import SignGenError
from signgen.eval import metrics
from signgen.loading import load_pretrained

RESULT_KEYS = ("system", "split", "num_samples", "bt_wer", "bt_bleu4", "cnn_bt_wer",
               "pose_bt_wer", "pose_bt_bleu4", "dtw_mje", "pck", "pck_hands", "identity_top1",
               "ssim", "ssim_masked", "psnr", "jitter")


@dataclass
class SystemOutput:
    """What a system produced for one sample. video: (T,H,W,3) uint8; keypoints:
    (T,133,2) in any 2D frame (normalised before comparison), visible (T,133) bool.
    ``frame_aligned`` means frame t corresponds to ground-truth frame t."""

    video: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    visible: np.ndarray | None = None
    frame_aligned: bool = False


@dataclass
class GroundTruth:
    sample: dict
    video: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    background: tuple[float, float, float]


def split_samples(root: Path, split: str, num: int | None) -> list[dict]:
    """Manifest entries of the split, in manifest order (the first ``num`` of them)."""
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise SignGenError(f"{root} has no manifest.jsonl; generate SynthSign first")
    samples = [s for s in map(json.loads, manifest.read_text().splitlines())
               if s["split"] == split]
    if not samples:
        raise SignGenError(f"no finished {split!r} samples in {root}")
    return samples[:num]


def iter_ground_truth(root: Path, samples: list[dict]) -> Iterator[GroundTruth]:
    """Ground truth of ``samples``, read one at a time (videos are not all held)."""
    from signgen.data.synthsign.dataset import read_video

    signers = {s["signer_id"]: s for s in json.loads((root / "signers.json").read_text())}
    for sample in samples:
        folder = root / "samples" / sample["sample_id"]
        with read_npz(folder / "motion.npz") as motion:
            keypoints, visible = motion["keypoints"], motion["visible"]
        yield GroundTruth(sample, read_video(folder / "video.mp4"), keypoints, visible,
                          tuple(signers[sample["signer_id"]]["background"]))


def silhouette(video: np.ndarray, background) -> np.ndarray:
    """(T,H,W) bool: pixels that differ from the signer's background colour."""
    bg = np.asarray(background, np.float32) * 255
    return np.abs(video.astype(np.float32) - bg).max(axis=-1) > 12


@dataclass
class Evaluators:
    """The trained evaluators, loaded from ``eval.weights_dir``.

    ``keypoints`` reads keypoints off videos (estimator + hand refiner); the video
    pose recogniser must have been trained on what that same reader sees.
    """

    recogniser: object
    pose_recogniser: object
    video_pose_recogniser: object
    keypoints: object  # signgen.eval.hand_keypoints.VideoKeypointReader
    identity: object
    versions: dict = field(default_factory=dict)

    @classmethod
    def load(cls, weights_dir: str | Path) -> Evaluators:
        from signgen.eval.hand_keypoints import VideoKeypointReader
        from signgen.eval.identity import IdentityEncoder
        from signgen.eval.recogniser import PoseGlossRecogniser, VideoGlossRecogniser

        weights_dir = Path(weights_dir)
        classes = {"recogniser": VideoGlossRecogniser, "pose_recogniser": PoseGlossRecogniser,
                   "video_pose_recogniser": PoseGlossRecogniser, "identity": IdentityEncoder}
        loaded, versions = {}, {}
        for name, cls_ in classes.items():
            folder = weights_dir / name
            if not (folder / "config.json").is_file():
                raise SignGenError(f"evaluator {name!r} not found in {folder}; train it with "
                                   f"python train.py --stage {name}")
            loaded[name] = load_pretrained(cls_, folder).eval()
            info = folder / "training.json"
            versions[name] = (json.loads(info.read_text()).get("config_hash")
                              if info.is_file() else None)
        reader = VideoKeypointReader.from_weights_dir(weights_dir)
        versions["keypoint_reader"] = reader.version
        dataset = weights_dir / "video_pose_recogniser" / "dataset.json"
        if dataset.is_file():
            trained_on = json.loads(dataset.read_text()).get("keypoint_reader_version")
            if trained_on != reader.version:
                raise SignGenError(
                    f"the video pose recogniser in {dataset.parent} was trained on keypoints "
                    f"read by {trained_on or 'an older reader'}, but the keypoint reader "
                    f"in {weights_dir} is {reader.version}; retrain it with "
                    f"python train.py --stage video_pose_recogniser")
        return cls(**loaded, keypoints=reader, versions=versions)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def score_system(system, root: Path, split: str, evaluators: Evaluators,
                 num: int | None = None, progress: bool = True) -> dict:
    """Run ``system`` (``system.name``, ``system.generate(gt) -> SystemOutput``; a
    system may use only ``gt.sample``'s text, glosses, language and signer unless it is
    the ground truth itself) on ``split``; returns the result (RESULT_KEYS + extras)."""
    from tqdm import tqdm

    from signgen.eval.identity import embed_clip, embed_frames, retrieval_top1
    from signgen.eval.keypoints import VISIBLE_CONFIDENCE
    from signgen.eval.recogniser import recognise, recognise_poses

    start = time.perf_counter()
    refs, video_hyps, cnn_hyps, pose_hyps = [], [], [], []
    dtw, pck_values, pck_hands, jit, ssims, ssims_m, psnrs = [], [], [], [], [], [], []
    clip_embeddings, clip_signers = [], []
    notes: dict[str, str] = {}
    too_short = 0  # outputs under 3 frames: no jitter
    generate_seconds = 0.0
    samples = split_samples(root, split, num)
    for gt in tqdm(iter_ground_truth(root, samples), total=len(samples),
                   desc=f"{system.name} on {split}", disable=not progress):
        t0 = time.perf_counter()
        out: SystemOutput = system.generate(gt)
        generate_seconds += time.perf_counter() - t0
        language = gt.sample["language"]
        refs.append(list(gt.sample["glosses"]))
        keypoints, visible = out.keypoints, out.visible
        if out.video is not None:
            cnn_hyps.append(recognise(evaluators.recogniser, [out.video], [language])[0])
            estimated, confidence = evaluators.keypoints(out.video)
            video_hyps.append(recognise_poses(evaluators.video_pose_recogniser, [estimated],
                                              [confidence > VISIBLE_CONFIDENCE], [language])[0])
            if keypoints is None:
                keypoints, visible = estimated, confidence > VISIBLE_CONFIDENCE
            if out.frame_aligned:
                pck_values.append(metrics.pck(gt.keypoints, estimated, gt.visible))
                if gt.visible[:, metrics.HAND_POINTS].any():
                    pck_hands.append(metrics.pck(gt.keypoints, estimated, gt.visible,
                                                 points=metrics.HAND_POINTS))
                mask = silhouette(gt.video, gt.background)
                ssims.append(metrics.ssim(gt.video, out.video))
                ssims_m.append(metrics.ssim(gt.video, out.video, mask=mask))
                psnrs.append(metrics.psnr(gt.video, out.video))
            if split == "test_unseen_signers":
                clip_embeddings.append(embed_clip(evaluators.identity, out.video))
                clip_signers.append(gt.sample["signer_id"])
        if keypoints is not None:
            pose_hyps.append(recognise_poses(evaluators.pose_recogniser, [keypoints],
                                             [visible], [language])[0])
            norm_gt = metrics.normalise_keypoints(gt.keypoints, gt.visible)
            norm_out = metrics.normalise_keypoints(keypoints, visible)
            joints = metrics.DTW_JOINTS
            dtw.append(metrics.dtw_mje(norm_gt[:, joints], norm_out[:, joints],
                                       gt.visible[:, joints], visible[:, joints]))
            if len(keypoints) >= 3:  # jitter (an acceleration) needs 3 frames
                jit.append(metrics.jitter(norm_out[:, joints], visible[:, joints]))
            else:
                too_short += 1
    result = {"system": system.name, "split": split, "num_samples": len(samples)}
    if video_hyps:
        result["bt_wer"] = metrics.wer(refs, video_hyps)
        result["bt_bleu4"] = metrics.bleu4(refs, video_hyps)
        result["cnn_bt_wer"] = metrics.wer(refs, cnn_hyps)
        result["cnn_bt_bleu4"] = metrics.bleu4(refs, cnn_hyps)
    else:
        notes["bt_wer"] = notes["cnn_bt_wer"] = "system produces no video"
    if pose_hyps:
        result["pose_bt_wer"] = metrics.wer(refs, pose_hyps)
        result["pose_bt_bleu4"] = metrics.bleu4(refs, pose_hyps)
    result["dtw_mje"] = _mean(dtw)
    result["jitter"] = _mean(jit)
    if too_short:
        notes["jitter"] = f"mean over the outputs of 3+ frames ({too_short} shorter left out)"
    result["pck"], result["pck_hands"] = _mean(pck_values), _mean(pck_hands)
    if not pck_values:
        notes["pck"] = notes["pck_hands"] = "needs frame-aligned video"
    result["ssim"], result["ssim_masked"], result["psnr"] = (
        _mean(ssims), _mean(ssims_m), _mean([p for p in psnrs if np.isfinite(p)]))
    if psnrs and not np.isfinite(psnrs).all():
        notes["psnr"] = "identical frames give inf; mean over finite values"
    if clip_embeddings:
        references = sorted(set(clip_signers))
        ref_images = [np.asarray(_load_reference(root, s)) for s in references]
        ref_emb = embed_frames(evaluators.identity, np.stack(ref_images))
        result["identity_top1"] = retrieval_top1(np.stack(clip_embeddings), clip_signers,
                                                 ref_emb, references)
    else:
        notes["identity_top1"] = "test_unseen_signers video only"
    for key in RESULT_KEYS:
        result.setdefault(key, None)
    result["notes"] = notes
    result["generate_seconds_per_sample"] = round(generate_seconds / len(samples), 3)
    result["eval_seconds"] = round(time.perf_counter() - start, 1)
    result["evaluators"] = evaluators.versions
    result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return result


def _load_reference(root: Path, signer_id: str):
    from PIL import Image

    return Image.open(root / "references" / f"{signer_id}.png").convert("RGB")


def write_result(result: dict, out_dir: str | Path = "benchmarks/results") -> Path:
    """``<out_dir>/<system>__<split>[__<subset>][__<tag>].json`` and ``.md`` (a result on
    a subset, e.g. ``n24`` for the first 24 samples, or of a tagged variant of the
    system's settings, e.g. ``steps4``, never overwrites the whole split's)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    subset = "".join(f"__{result[key]}" for key in ("subset", "tag") if result.get(key))
    stem = out / f"{result['system']}__{result['split']}{subset}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown_table([result]) + "\n")
    return stem.with_suffix(".json")


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def row_name(result: dict) -> str:
    """A result's name in tables: its system, with its tag as ``system [tag]``."""
    return f"{result['system']} [{result['tag']}]" if result.get("tag") else result["system"]


def markdown_table(results: list[dict], marked: set[int] = frozenset()) -> str:
    """One row per result; rows whose ``id`` is in ``marked`` get a † after the name."""
    columns = [k for k in RESULT_KEYS if k not in ("system", "split")]
    lines = ["| system | split | " + " | ".join(columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for r in results:
        lines.append(f"| {row_name(r)}{' †' if id(r) in marked else ''} | {r['split']} | "
                     + " | ".join(_fmt(r.get(k)) for k in columns) + " |")
    return "\n".join(lines)
