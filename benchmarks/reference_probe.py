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
        [--out docs/reference_probe.png]

Writes one PNG: per row the reference, the generated frames and the true frames.
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


def probe(pipe, sample_dir: Path, reference: np.ndarray, frames: list[int], shift: int,
          steps: int = 3, seed: int = 0) -> np.ndarray:
    """(3*H, (1+2*len(frames))*W, 3) uint8: rows for the reference, it shifted by
    ``shift`` px, and the sample's frame ``frames[0]`` as the reference; columns: that
    reference, the generated frames, the true frames."""
    from signgen.data.synthsign.dataset import read_npz, read_video

    with read_npz(sample_dir / "conditions.npz") as conditions:
        pose_maps, hand_renders = conditions["pose_map"], conditions["hand_render"]
    video = read_video(sample_dir / "video.mp4")
    if max(frames) >= len(video):
        raise SystemExit(f"{sample_dir.name} has {len(video)} frames; asked for {frames}")
    pose, hands = pose_maps[frames], hand_renders[frames]
    rows = []
    for ref in (reference, np.roll(reference, shift, axis=1), video[frames[0]]):
        out = pipe(ref, pose, hands, num_inference_steps=steps, window=len(frames),
                   overlap=0, generator=torch.Generator().manual_seed(seed),
                   progress=False).frames
        rows.append(np.concatenate([ref, *out, *video[frames]], axis=1))
    return np.concatenate(rows, axis=0)


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="SignVideoPipeline or SignGenPipeline "
                        "folder")
    parser.add_argument("--sample", default="test_unseen_signers-00000")
    parser.add_argument("--frames", default="16,31", help="two or more frame indices")
    parser.add_argument("--shift", type=int, default=28, help="sideways shift in pixels")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="docs/reference_probe.png")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    from PIL import Image

    from signgen.loading import load_pretrained
    from signgen.pipelines.sign_video import SignVideoPipeline

    root = dataset_root(load_config(args.config, args.overrides))
    sample_dir = root / "samples" / args.sample
    if not sample_dir.is_dir():
        raise SystemExit(f"no sample {args.sample} in {root / 'samples'}")
    signer = json.loads((sample_dir / "sample.json").read_text())["signer_id"]
    with Image.open(root / "references" / f"{signer}.png") as image:
        reference = np.asarray(image.convert("RGB"))
    pipe = load_pretrained(SignVideoPipeline, Path(args.model))
    pipe.set_progress_bar_config(disable=True)
    frames = [int(f) for f in args.frames.split(",")]
    picture = probe(pipe, sample_dir, reference, frames, args.shift, args.steps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(out)
    print(f"wrote {out} ({args.sample}, signer {signer}, frames {frames}, model {args.model})")
    return out


if __name__ == "__main__":
    main()
