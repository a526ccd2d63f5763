"""Benchmark: SMPL-X fitting (signgen.body.fitting) on SynthSign keypoints with known truth.

    python benchmarks/fit_smplx.py [--root data/synthsign] [--split dev] [--samples 6]
                                   [--threads 1] [--set NAME=VALUE ...] [--out DIR]

For each sample the fitter sees (a) the 133 COCO-WholeBody keypoints in 3-D (the true
positions, masked like the 2-D ones), (b) the 2-D keypoints projected with the dataset's
camera, and (c) the 2-D keypoints with the signer's shape given.  Visibility is
SynthSign's (in front of the camera and inside the image).  Errors compare the fitted
model's joints with the true joints (motion.npz ``joints``), in millimetres:

- body: 13 upper-body SMPL-X joints (spine, neck, head, collars, shoulders, elbows,
  wrists) after aligning the pelvis (legs are out of frame and not scored);
- hand: the 15 finger joints and 5 fingertips of each hand after aligning its wrist,
  where the keypoint and the wrist keypoint are visible ("hand, all": out-of-frame
  hands too; "hand/pelvis": visible ones, pelvis-aligned).

Speed is frames fitted per second of wall-clock time (all stages, one sequence per
call).  Writes ``fit_smplx.json`` and ``fit_smplx.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.body import BodyModel  # noqa: E402
from signgen.body.fitting import BodyFitter, FitConfig  # noqa: E402
from signgen.body.keypoints import COCO_WHOLEBODY_FROM_SMPLX, COCO_WHOLEBODY_NAMES  # noqa: E402
from signgen.body.model import OUTPUT_JOINT_NAMES  # noqa: E402
from signgen.data.synthsign.signers import signing_camera  # noqa: E402
from signgen.provenance import machine_info  # noqa: E402

TARGETS = {"hand_mm": 8.0, "body_mm": 15.0, "fps": 20.0}
_OUT = {name: i for i, name in enumerate(OUTPUT_JOINT_NAMES)}
_COCO = {name: i for i, name in enumerate(COCO_WHOLEBODY_NAMES)}
UPPER_BODY = [_OUT[n] for n in (
    "spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
    "right_wrist")]
FINGER_POINTS = [f"{finger}{k}" for finger in ("thumb", "index", "middle", "ring", "pinky")
                 for k in (1, 2, 3)] + ["thumb", "index", "middle", "ring", "pinky"]
MODES = ("3d", "2d", "2d_known_betas")


def joint_errors(fitted: np.ndarray, truth: np.ndarray, visible: np.ndarray) -> dict:
    """Errors (mm) of fitted vs true output joints (T,144,3); visible (T,133) bool."""
    pelvis_f, pelvis_t = fitted[:, :1], truth[:, :1]
    body = np.linalg.norm((fitted[:, UPPER_BODY] - pelvis_f) - (truth[:, UPPER_BODY] - pelvis_t),
                          axis=-1)
    hand, hand_all, hand_pelvis = [], [], []
    for side in ("left", "right"):
        ids = [_OUT[f"{side}_{p}"] for p in FINGER_POINTS]
        wrist = _OUT[f"{side}_wrist"]
        seen = visible[:, [_COCO[f"{side}_{p}"] for p in FINGER_POINTS]] & visible[
            :, _COCO[f"{side}_wrist"], None]
        err = np.linalg.norm((fitted[:, ids] - fitted[:, wrist, None])
                             - (truth[:, ids] - truth[:, wrist, None]), axis=-1)
        err_p = np.linalg.norm((fitted[:, ids] - pelvis_f) - (truth[:, ids] - pelvis_t), axis=-1)
        hand.append(err[seen])
        hand_all.append(err.ravel())
        hand_pelvis.append(err_p[seen])
    return {"body_mm": 1000 * float(body.mean()),
            "hand_mm": 1000 * float(np.concatenate(hand).mean()),
            "hand_all_mm": 1000 * float(np.concatenate(hand_all).mean()),
            "hand_pelvis_mm": 1000 * float(np.concatenate(hand_pelvis).mean()),
            "hand_points": int(sum(len(h) for h in hand))}


def fit_sample(fitter: BodyFitter, body: BodyModel, motion, camera, mode: str) -> dict:
    keypoints3d = motion["joints"][:, COCO_WHOLEBODY_FROM_SMPLX.numpy()]
    start = time.perf_counter()
    if mode == "3d":
        result = fitter.fit(keypoints3d=keypoints3d, mask3d=motion["visible"])
    else:
        result = fitter.fit(keypoints2d=motion["keypoints"], confidence2d=motion["visible"],
                            camera=camera,
                            betas=motion["betas"] if mode == "2d_known_betas" else None)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        fitted = body(result.params()).joints.numpy()
    row = joint_errors(fitted, motion["joints"], motion["visible"])
    row.update(frames=len(fitted), seconds=seconds,
               fit_error=float((result.error_3d if mode == "3d" else result.error_2d)
                               .nanmean()) * (1000 if mode == "3d" else 1),
               fit_error_unit="mm" if mode == "3d" else "px")
    return row


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="data/synthsign")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="FitConfig overrides, e.g. --set iters_all=20 accel_weight=1e-4")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, value = item.split("=", 1)
        kind = type(getattr(FitConfig, name))
        overrides[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    meta = json.loads((root / "meta.json").read_text())
    manifest = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    ids = [s["sample_id"] for s in manifest if s["split"] == args.split][:args.samples]
    camera = signing_camera(meta["width"], meta["height"])  # SynthSign's fixed camera
    body = BodyModel()
    fitter = BodyFitter(body, FitConfig(**overrides))
    modes = args.modes.split(",")
    load_before = os.getloadavg()[0]
    rows = []
    for sample_id in ids:
        with np.load(root / "samples" / sample_id / "motion.npz") as motion:
            motion = {k: motion[k] for k in motion.files}
        for mode in modes:
            row = fit_sample(fitter, body, motion, camera, mode)
            rows.append({"sample_id": sample_id, "mode": mode, **row})
            print(f"{sample_id} {mode:15s} body {row['body_mm']:6.1f} hand {row['hand_mm']:6.1f} "
                  f"mm, {row['frames'] / row['seconds']:5.1f} frames/s", flush=True)
    summary = {}
    for mode in modes:
        sel = [r for r in rows if r["mode"] == mode]
        frames = sum(r["frames"] for r in sel)
        points = sum(r["hand_points"] for r in sel)
        summary[mode] = {
            # Frame- (and point-) weighted means over the samples.
            "body_mm": sum(r["body_mm"] * r["frames"] for r in sel) / frames,
            "hand_mm": sum(r["hand_mm"] * r["hand_points"] for r in sel) / max(points, 1),
            "hand_all_mm": sum(r["hand_all_mm"] * r["frames"] for r in sel) / frames,
            "hand_pelvis_mm": sum(r["hand_pelvis_mm"] * r["hand_points"] for r in sel)
            / max(points, 1),
            "fit_error": sum(r["fit_error"] * r["frames"] for r in sel) / frames,
            "fit_error_unit": sel[0]["fit_error_unit"],
            "frames": frames,
            "fps": frames / sum(r["seconds"] for r in sel),
        }
        summary[mode]["targets_met"] = {k: (summary[mode][k] >= v if k == "fps"
                                            else summary[mode][k] <= v)
                                        for k, v in TARGETS.items()}
    command = (f"OMP_NUM_THREADS={args.threads} python benchmarks/fit_smplx.py --root "
               f"{args.root} --split {args.split} --samples {args.samples} --threads "
               f"{args.threads}" + (" --set " + " ".join(args.set) if args.set else ""))
    result = {
        "benchmark": "fit_smplx",
        "machine": machine_info(load_before),
        "torch": torch.__version__, "threads": args.threads,
        "body_model": {"standin": body.is_standin, "vertices": body.num_vertices},
        "dataset": {"root": args.root, "split": args.split, "samples": ids,
                    "image": [meta["width"], meta["height"]]},
        "config": {k: getattr(fitter.config, k) for k in fitter.config.__dataclass_fields__},
        "targets": TARGETS, "summary": summary, "samples": rows, "command": command,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit_smplx.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"SMPL-X fitting on {len(ids)} SynthSign {args.split} samples "
        f"({meta['width']}x{meta['height']} px, {summary[modes[0]]['frames']} frames), "
        f"stand-in body model, {args.threads} thread(s), load average {load_before:.1f} "
        f"before ({os.cpu_count()} cores); `{command}`", "",
        "| input | body mm | hand mm | hand, all mm | hand/pelvis mm | keypoint fit error "
        "| frames/s | targets (hand <= 8, body <= 15, >= 20 fps) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, s in summary.items():
        met = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in s["targets_met"].items())
        lines.append(f"| {mode} | {s['body_mm']:.1f} | {s['hand_mm']:.1f} | "
                     f"{s['hand_all_mm']:.1f} | {s['hand_pelvis_mm']:.1f} | "
                     f"{s['fit_error']:.2f} {s['fit_error_unit']} | {s['fps']:.1f} | {met} |")
    (out / "fit_smplx.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
