"""Re-colour saved stage-I outputs to their signer's reference image, for a re-score.

An experiment tool (issue #5): a renderer that no longer copies the reference latent
(``video.reference_shift``) also stops taking the signer's colours from it. This script
tells how much of its score is colour alone: each generated frame's RGB channels are
shifted and scaled to the per-channel mean and standard deviation of the signer's
reference image (a global affine map per channel: no spatial information of the
reference enters, so no pose can be copied).

    python -m signgen.eval score --system stage1_gt_conditions ... --save-outputs OUT
    python benchmarks/colour_match_outputs.py OUT OUT-matched [--per clip|frame]
    python -m signgen.eval score --system saved_outputs --outputs OUT-matched \
        --split S --num N --tag T

``--per frame`` (default) fits one map per frame, ``--per clip`` one per clip (the
statistics of all its frames together). Reads the references from the dataset of the
default config (``data/synthsign``); writes ``DIR/<sample_id>.npz`` like ``--save-outputs``
and copies ``outputs.json`` with a ``colour_match`` entry naming this command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.config import load_config  # noqa: E402
from signgen.training.tasks.keypoints import dataset_root  # noqa: E402


def match_colours(video: np.ndarray, reference: np.ndarray, per: str = "frame") -> np.ndarray:
    """video (T,H,W,3) uint8, reference (h,w,3) uint8 -> (T,H,W,3) uint8 whose channel
    means and standard deviations (per frame, or over the clip) are the reference's."""
    frames = video.astype(np.float64).reshape(len(video), -1, 3)
    ref = reference.astype(np.float64).reshape(-1, 3)
    axis = 1 if per == "frame" else (0, 1)
    mean = frames.mean(axis=axis, keepdims=True)
    std = np.maximum(frames.std(axis=axis, keepdims=True), 1e-6)
    out = (frames - mean) / std * ref.std(0) + ref.mean(0)
    return np.clip(np.round(out), 0, 255).astype(np.uint8).reshape(video.shape)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outputs", type=Path, help="a folder written by score --save-outputs")
    parser.add_argument("out", type=Path)
    parser.add_argument("--per", choices=("frame", "clip"), default="frame")
    args = parser.parse_args(argv)
    info = json.loads((args.outputs / "outputs.json").read_text())
    root = Path(dataset_root(load_config()))
    args.out.mkdir(parents=True, exist_ok=True)
    files = sorted(args.outputs.glob("*.npz"))
    for path in files:
        arrays = dict(np.load(path))
        sample = json.loads((root / "samples" / path.stem / "sample.json").read_text())
        reference = np.asarray(Image.open(root / "references" / f"{sample['signer_id']}.png")
                               .convert("RGB"))
        arrays["video"] = match_colours(arrays["video"], reference, args.per)
        np.savez_compressed(args.out / path.name, **arrays)
    info["colour_match"] = " ".join(["python", "benchmarks/colour_match_outputs.py",
                                     str(args.outputs), str(args.out), "--per", args.per])
    (args.out / "outputs.json").write_text(json.dumps(info, indent=1))
    print(f"wrote {len(files)} re-coloured outputs to {args.out}")


if __name__ == "__main__":
    main()
