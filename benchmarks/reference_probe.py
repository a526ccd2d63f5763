"""Does the video model take the pose from the conditions or copy it from the reference?

Renders the same conditions (two frames of a test sample) with three references of the
same signer: its reference image, that image shifted sideways, and one of the sample's
own frames in another pose. A model that follows the conditions draws the same body in
every row; one that copies the reference's pixels moves the body with the shifted image
and paints the other pose's limbs over the frames: the shipped tiny renderer does both
(docs/reference_probe_before.png, 2026-11-27); trained with
``video.reference_from_frames=1.0`` it copies limbs less, the body's place still
(docs/reference_probe_refframes.png).

    python benchmarks/reference_probe.py --model assets/pipeline \
        [--sample test_unseen_signers-00000] [--frames 16,31] [--shift 28] \
        [--out docs/reference_probe.png] [--measure]

Writes one PNG: per row the reference, the generated frames and the true frames. With
``--measure`` the evaluation suite's keypoint reader (``eval.weights_dir``) reads the
generated frames, and a JSON beside the PNG gives per row the PCK against the sample's
true keypoints and ``follow_ratio``: how far the upper body (COCO body points 0-10)
moved with the shifted reference, as a fraction of the shift (median over visible
points and frames; 0 = the body stays where the conditions put it, 1 = it moves with
the reference).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.config import DEFAULT_CONFIG, load_config  # noqa: E402
from signgen.training.tasks.keypoints import dataset_root  # noqa: E402

ROWS = ("aligned", "shifted", "other_pose")
UPPER_BODY = list(range(11))  # COCO-WholeBody nose, eyes, ears, shoulders, elbows, wrists


def follow_ratio(aligned: np.ndarray, shifted: np.ndarray, visible: np.ndarray,
                 shift: int) -> float:
    """Median horizontal displacement of the upper-body points from ``aligned`` (T,133,2)
    to ``shifted`` (T,133,2) px, over the ``visible`` (T,133) ones, divided by ``shift``."""
    mask = np.zeros_like(visible, dtype=bool)
    mask[:, UPPER_BODY] = visible[:, UPPER_BODY]
    if not mask.any() or shift == 0:
        return float("nan")
    return float(np.median(shifted[..., 0][mask] - aligned[..., 0][mask]) / shift)


def measure(reader, generated: list[np.ndarray], keypoints: np.ndarray, visible: np.ndarray,
            shift: int) -> dict:
    """Per row of ``generated`` ((F,H,W,3) uint8 each, in ``ROWS`` order) the PCK of the
    keypoints ``reader`` finds against the true ``keypoints`` (F,133,2) / ``visible``
    (F,133), and the shifted row's ``follow_ratio``."""
    from signgen.eval import metrics

    found = [reader(frames)[0] for frames in generated]
    result = {f"pck_{row}": metrics.pck(keypoints, points, visible)
              for row, points in zip(ROWS, found, strict=True)}
    result["follow_ratio"] = follow_ratio(found[0], found[1], visible, shift)
    return result


def probe(pipe, sample_dir: Path, reference: np.ndarray, frames: list[int], shift: int,
          steps: int = 3, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Picture (3*H, (1+2*len(frames))*W, 3) uint8: rows for the reference, it shifted by
    ``shift`` px, and the sample's frame ``frames[0]`` as the reference; columns: that
    reference, the generated frames, the true frames. And each row's generated frames
    (F,H,W,3) uint8."""
    from signgen.data.synthsign.dataset import read_npz, read_video

    with read_npz(sample_dir / "conditions.npz") as conditions:
        pose_maps, hand_renders = conditions["pose_map"], conditions["hand_render"]
    video = read_video(sample_dir / "video.mp4")
    if max(frames) >= len(video):
        raise SystemExit(f"{sample_dir.name} has {len(video)} frames; asked for {frames}")
    pose, hands = pose_maps[frames], hand_renders[frames]
    rows, generated = [], []
    for ref in (reference, np.roll(reference, shift, axis=1), video[frames[0]]):
        out = pipe(ref, pose, hands, num_inference_steps=steps, window=len(frames),
                   overlap=0, generator=torch.Generator().manual_seed(seed),
                   progress=False).frames
        rows.append(np.concatenate([ref, *out, *video[frames]], axis=1))
        generated.append(out)
    return np.concatenate(rows, axis=0), generated


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="SignVideoPipeline or SignGenPipeline "
                        "folder")
    parser.add_argument("--sample", default="test_unseen_signers-00000")
    parser.add_argument("--frames", default="16,31", help="two or more frame indices")
    parser.add_argument("--shift", type=int, default=28, help="sideways shift in pixels")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="docs/reference_probe.png")
    parser.add_argument("--measure", action="store_true", help="also read the generated "
                        "frames' keypoints: PCK per row and follow_ratio, in a JSON beside "
                        "the PNG")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    from PIL import Image

    from signgen.loading import load_pretrained
    from signgen.pipelines.sign_video import SignVideoPipeline

    cfg = load_config(args.config, args.overrides)
    root = dataset_root(cfg)
    sample_dir = root / "samples" / args.sample
    if not sample_dir.is_dir():
        raise SystemExit(f"no sample {args.sample} in {root / 'samples'}")
    signer = json.loads((sample_dir / "sample.json").read_text())["signer_id"]
    with Image.open(root / "references" / f"{signer}.png") as image:
        reference = np.asarray(image.convert("RGB"))
    pipe = load_pretrained(SignVideoPipeline, Path(args.model))
    pipe.set_progress_bar_config(disable=True)
    frames = [int(f) for f in args.frames.split(",")]
    picture, generated = probe(pipe, sample_dir, reference, frames, args.shift, args.steps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(out)
    print(f"wrote {out} ({args.sample}, signer {signer}, frames {frames}, model {args.model})")
    if args.measure:
        from signgen.data.synthsign.dataset import read_npz
        from signgen.eval.hand_keypoints import VideoKeypointReader

        reader = VideoKeypointReader.from_weights_dir(cfg.eval.weights_dir)
        with read_npz(sample_dir / "motion.npz") as motion:
            keypoints, visible = motion["keypoints"][frames], motion["visible"][frames]
        result = {"model": args.model, "sample": args.sample, "frames": frames,
                  "shift": args.shift, "steps": args.steps,
                  **measure(reader, generated, keypoints, visible, args.shift)}
        out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))
    return out


if __name__ == "__main__":
    main()
