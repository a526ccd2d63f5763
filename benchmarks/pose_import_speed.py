"""Benchmark: a MediaPipe Holistic .pose file -> both condition streams (issue #9 target:
a 250-frame file in <= 5 s on this CPU).

    python benchmarks/pose_import_speed.py [--root data/synthsign] [--split dev]
        [--frames 250] [--fps 25] [--repeats 3] [--threads 1] [--out benchmarks/results]

The .pose file is made from SynthSign ground truth: the SMPL-X joints of the split's
first samples, joined and resampled (linearly) to ``--fps`` until there are ``--frames``
frames, written as MediaPipe would store them (``lexicon_export.joints_to_pose``: body,
both hands, world landmarks, points outside the image masked). Then the preprocessing
path itself (``signgen.data.preprocess.CorpusSampleMaker.make``) turns it into a sample,
on a blank video of the same length: import (resample to ``data.fps``, framing), the
SMPL-X fit (2-D keypoints + world landmarks), and the render step (pose map drawn, hand
condition rendered from the fitted mesh). Reported: seconds of each step, median over
``--repeats`` runs after one warm-up run, and their sum without the video read (reading
and warping the source video is the same work whatever the conditions are).
Writes ``pose_import_speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.config import load_config  # noqa: E402
from signgen.data.corpora import CorpusItem  # noqa: E402
from signgen.data.preprocess import CorpusSampleMaker  # noqa: E402
from signgen.data.synthsign.generate import write_video  # noqa: E402
from signgen.data.synthsign.lexicon_export import joints_to_pose  # noqa: E402
from signgen.data.synthsign.signers import signing_camera  # noqa: E402
from signgen.provenance import machine_info  # noqa: E402

TARGET_SECONDS = 5.0
STEPS = ("import", "fit", "render")


def resampled_joints(root: Path, split: str, frames: int, fps: float) -> tuple[np.ndarray, list]:
    """(frames,144,3) SMPL-X joints of the split's first samples, end to end, linearly
    resampled from the dataset's fps to ``fps``; and the sample ids used."""
    meta = json.loads((root / "meta.json").read_text())
    manifest = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    ids = [s["sample_id"] for s in manifest if s["split"] == split]
    parts, used = [], []
    needed = frames / fps * meta["fps"] + 2
    for sample_id in ids:
        with np.load(root / "samples" / sample_id / "motion.npz") as motion:
            parts.append(motion["joints"].astype(np.float64))
        used.append(sample_id)
        if sum(len(p) for p in parts) >= needed:
            break
    joints = np.concatenate(parts)
    if len(joints) < needed:
        raise SystemExit(f"the {split} split has too few frames for {frames} at {fps} fps")
    source_t = np.arange(len(joints)) / meta["fps"]
    target_t = np.arange(frames) / fps
    flat = joints.reshape(len(joints), -1)
    out = np.stack([np.interp(target_t, source_t, flat[:, k]) for k in range(flat.shape[1])],
                   axis=1)
    return out.reshape(frames, *joints.shape[1:]).astype(np.float32), used


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="data/synthsign")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides (frame size, data.fps)")
    args = parser.parse_args(argv)
    if args.frames < 2 or args.fps <= 0 or args.repeats < 1:
        parser.error("need --frames >= 2, --fps > 0 and --repeats >= 1")
    torch.set_num_threads(args.threads)
    cfg = load_config("tiny", args.overrides)
    root = Path(args.root)
    joints, used = resampled_joints(root, args.split, args.frames, args.fps)
    camera = signing_camera(cfg.render.width, cfg.render.height)
    maker = CorpusSampleMaker(cfg)
    load_before = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        pose_path, video_path = Path(tmp) / "clip.pose", Path(tmp) / "clip.mp4"
        with open(pose_path, "wb") as f:
            joints_to_pose(joints, camera, args.fps).write(f)
        write_video(video_path, np.zeros((args.frames, cfg.render.height, cfg.render.width, 3),
                                         np.uint8), args.fps)
        item = CorpusItem(sample_id="clip", video_path=video_path, start_s=0.0, end_s=None,
                          text="", glosses=(), signer_id=None, split="train",
                          language="unknown")
        for run in range(args.repeats + 1):  # run 0 warms up
            arrays, info = maker.make(item, {"pose": pose_path})
            if run:
                runs.append(info["seconds"])
    seconds = {step: float(np.median([r[step] for r in runs])) for step in (*STEPS, "video")}
    total = float(np.median([sum(r[step] for step in STEPS) for r in runs]))
    command = (f"OMP_NUM_THREADS={args.threads} python benchmarks/pose_import_speed.py "
               f"--root {args.root} --split {args.split} --frames {args.frames} --fps "
               f"{args.fps:g} --repeats {args.repeats} --threads {args.threads}"
               + "".join(f" {o}" for o in args.overrides))
    result = {
        "benchmark": "pose_import_speed",
        "machine": machine_info(load_before),
        "torch": torch.__version__, "threads": args.threads,
        "pose_file": {"frames": args.frames, "fps": args.fps, "from_samples": used,
                      "world_landmarks": info["world_landmarks"]},
        "sample": {"frames": int(len(arrays["pose_map"])), "fps": cfg.data.fps,
                   "size": [cfg.render.height, cfg.render.width],
                   "fit_error_px_mean": info["fit_error_px"]["mean"]},
        "seconds": seconds, "conditions_seconds": total, "target_seconds": TARGET_SECONDS,
        "target_met": total <= TARGET_SECONDS, "runs": runs, "command": command,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pose_import_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"A {args.frames}-frame {args.fps:g} fps Holistic .pose file (world landmarks) -> a "
        f"{result['sample']['frames']}-frame {cfg.data.fps} fps sample at "
        f"{cfg.render.width}x{cfg.render.height}, {args.threads} thread(s), median of "
        f"{args.repeats} runs, load average {load_before:.1f} before ({os.cpu_count()} "
        f"cores); `{command}`", "",
        "| import s | SMPL-X fit s | pose map + hand render s | conditions total s "
        "| target <= 5 s | (video read s) | fit error px |",
        "|---|---|---|---|---|---|---|",
        f"| {seconds['import']:.2f} | {seconds['fit']:.2f} | {seconds['render']:.2f} | "
        f"{total:.2f} | {'met' if result['target_met'] else 'NOT met'} | "
        f"{seconds['video']:.2f} | {result['sample']['fit_error_px_mean']:.2f} |",
    ]
    (out / "pose_import_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
