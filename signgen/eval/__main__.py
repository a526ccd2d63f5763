"""Evaluation command line.

    python -m signgen.eval score --system ground_truth --split test_novel_sentences
                                 [--num N] [--config tiny] [key=value ...]
    python -m signgen.eval score --system lookup_concat --split test_novel_sentences
    python -m signgen.eval score --system stage1_gt_conditions --split test_unseen_signers
                                 [--model DIR] [--steps N] [--guidance S]
    python -m signgen.eval score --system regression_translator --split test_novel_sentences
                                 [--model DIR]
    python -m signgen.eval score --system vae_reconstruction --split test_unseen_signers
                                 [--model DIR]   (the ground truth through the model's VAE)
    python -m signgen.eval score --system text2video ... --save-outputs DIR
    python -m signgen.eval score --system saved_outputs --outputs DIR --split S
                                 (re-score saved outputs, or your own <sample_id>.mp4)
    python -m signgen.eval report [--out docs/results.md]

``score`` writes benchmarks/results/<system>__<split>.json and .md; ``report``
regenerates docs/results.md from every result file.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from argparse import ArgumentTypeError
from pathlib import Path

from signgen.cli import ArgumentParser, run_cli
from signgen.config import DEFAULT_CONFIG, load_config
from signgen.data.synthsign.generate import SPLITS
from signgen.errors import SignGenError

SYSTEMS = ("ground_truth", "lookup_concat", "stage1_gt_conditions", "stage1_skeleton_only",
           "stage1_no_temporal", "stage2_decoded", "stage2_avatar", "text2video", "text2avatar",
           "regression_translator", "vae_reconstruction", "saved_outputs")
# Stage I systems: (trained phase whose model they use, conditions the model sees).
VIDEO_SYSTEMS = {
    "stage1_gt_conditions": ("video_temporal", ("pose_map", "hand_render")),
    "stage1_skeleton_only": ("video_temporal", ("pose_map",)),
    "stage1_no_temporal": ("video_frames", ("pose_map", "hand_render")),
}
RESULTS_DIR = Path("benchmarks/results")


def _build_system(name: str, cfg, args):
    from signgen.eval.systems import GroundTruthSystem, LookupConcatSystem

    if name == "ground_truth":
        return GroundTruthSystem()
    if name in ("stage2_decoded", "stage2_avatar"):  # stage-I embeddings through the FSQ
        from signgen.eval.systems import DecodedEmbeddingSystem

        model = args.model or Path(cfg.experiment.output_dir) / "video_temporal" / "model"
        fsq = args.fsq or Path(cfg.experiment.output_dir) / "fsq" / "model"
        return DecodedEmbeddingSystem(model, fsq, Path(cfg.data.root) / cfg.data.dataset,
                                      name=name, avatar_only=name == "stage2_avatar",
                                      num_inference_steps=args.steps,
                                      guidance_scale=args.guidance, seed=cfg.experiment.seed,
                                      window=args.window, overlap=args.overlap,
                                      pose_decoder=args.pose_decoder, **_speed(args))
    if name in ("text2video", "text2avatar"):  # the whole engine from the sample's text
        from signgen.eval.systems import TextToSignSystem
        from signgen.paths import assets_dir, display_path

        return TextToSignSystem(args.model or display_path(assets_dir() / "pipeline"),
                                Path(cfg.data.root) / cfg.data.dataset, name=name,
                                num_inference_steps=args.steps, guidance_scale=args.guidance,
                                window=args.window, overlap=args.overlap,
                                **_speed(args),
                                seed=cfg.experiment.seed,
                                avatar_only=name == "text2avatar",
                                decoding=dataclasses.asdict(cfg.translator.decoding),
                                tell_signer=not args.unknown_signer)
    if name == "vae_reconstruction":  # the ground truth through stage I's VAE
        from signgen.eval.systems import VAEReconstructionSystem
        from signgen.paths import assets_dir, display_path

        return VAEReconstructionSystem(args.model or display_path(assets_dir() / "pipeline"))
    if name == "regression_translator":  # issue #7's text -> SMPL-X regression baseline
        from signgen.eval.systems import RegressionTranslatorSystem

        model = args.model or Path(cfg.experiment.output_dir) / "regression_translator" / "model"
        return RegressionTranslatorSystem(model, size=(cfg.render.height, cfg.render.width))
    if name in VIDEO_SYSTEMS:
        from signgen.eval.systems import VideoModelSystem

        phase, conditions = VIDEO_SYSTEMS[name]
        model = args.model or Path(cfg.experiment.output_dir) / phase / "model"
        return VideoModelSystem(model, Path(cfg.data.root) / cfg.data.dataset, name,
                                conditions, num_inference_steps=args.steps,
                                guidance_scale=args.guidance, seed=cfg.experiment.seed,
                                window=args.window, overlap=args.overlap,
                                **_speed(args))
    lexicon_dir = Path(args.lexicon_dir or Path(cfg.data.root) / "synthsign_lexicon")
    if not (lexicon_dir / "index.csv").is_file():
        from signgen.data.synthsign.lexicon import Lexicon
        from signgen.data.synthsign.lexicon_export import export_lexicon
        from signgen.data.synthsign.signers import make_signers

        # The lexicon is performed by the first training signer, at the dataset's frame
        # rate and size (a dictionary is recorded once, by one signer).
        signer = make_signers(cfg.synthsign.num_signers, cfg.synthsign.seed)[0]
        for language in cfg.synthsign.languages:
            export_lexicon(lexicon_dir, Lexicon.load(), signer, language, fps=cfg.data.fps,
                           size=(cfg.render.height, cfg.render.width))
    renderer = None
    if args.render_video:  # the stage I model renders the baseline's poses (skeleton only)
        from signgen.eval.systems import VideoModelSystem

        model = args.model or Path(cfg.experiment.output_dir) / "video_temporal" / "model"
        renderer = VideoModelSystem(model, Path(cfg.data.root) / cfg.data.dataset,
                                    "lookup_concat_renderer", ("pose_map",),
                                    num_inference_steps=args.steps,
                                    guidance_scale=args.guidance, seed=cfg.experiment.seed,
                                    window=args.window, overlap=args.overlap,
                                    **_speed(args))
    return LookupConcatSystem(lexicon_dir, renderer, size=(cfg.render.height,
                                                           cfg.render.width))


def _speed(args) -> dict:
    """--window-batch and --precision for the video systems (None: the model's)."""
    return {"window_batch": args.window_batch, "precision": args.precision}


def _tag(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", value):
        raise ArgumentTypeError(f"a tag is letters, digits, '-' and '_', got {value!r}")
    return value


def _score(args) -> None:
    from signgen.eval.saved_outputs import OutputSaver, SavedOutputsSystem
    from signgen.eval.score import Evaluators, score_system, write_result

    cfg = load_config(args.config, args.overrides)
    root = Path(cfg.data.root) / cfg.data.dataset
    command = "python -m signgen.eval " + " ".join(sys.argv[1:])
    if args.system == "saved_outputs":
        if not args.outputs:
            raise SignGenError("--system saved_outputs needs --outputs DIR (a folder written "
                               "by score --save-outputs, or <sample_id>.mp4 videos)")
        if args.save_outputs:
            raise SignGenError("--save-outputs does not apply to --system saved_outputs")
        system = SavedOutputsSystem(args.outputs, args.split)
    else:
        system = _build_system(args.system, cfg, args)
        if args.save_outputs:
            system = OutputSaver(system, args.save_outputs, args.split, command, args.tag)
    result = score_system(system, root, args.split, Evaluators.load(cfg.eval.weights_dir),
                          num=args.num)
    if args.num is not None:
        result["subset"] = f"n{result['num_samples']}"
    tag = args.tag or getattr(system, "tag", None)
    if tag:
        result["tag"] = tag
    if isinstance(system, SavedOutputsSystem):  # timed when generated (if by signgen)
        seconds = system.generate_seconds
        result["generate_seconds_per_sample"] = (sum(seconds) / len(seconds)
                                                 if seconds else None)
    result["command"] = command
    if hasattr(system, "info"):
        result["system_info"] = system.info
    # Token statistics (stage2_*) are the system's own, not a score: saved beside its
    # outputs and carried into a re-score.
    stats = system.token_stats() if hasattr(system, "token_stats") else {}
    if isinstance(system, OutputSaver) and stats:
        system.record(token_stats=stats)
    if isinstance(system, SavedOutputsSystem):
        stats = system.saved.get("token_stats", {})
    result.update(stats)
    path = write_result(result, RESULTS_DIR)
    print(path.with_suffix(".md").read_text())


def _side_by_side(args) -> None:
    import json

    import numpy as np
    import torch
    from PIL import Image

    from signgen.data.synthsign.dataset import read_npz, read_video
    from signgen.eval.side_by_side import contact_sheet, save_gif, tile_streams
    from signgen.loading import load_pretrained
    from signgen.pipelines.sign_video import SignVideoPipeline

    cfg = load_config(args.config, args.overrides)
    root = Path(cfg.data.root) / cfg.data.dataset
    folder = root / "samples" / args.sample
    if not (folder / "sample.json").is_file():
        raise SignGenError(f"no sample {args.sample!r} in {root}")
    sample = json.loads((folder / "sample.json").read_text())
    model = Path(args.model or Path(cfg.experiment.output_dir) / "video_temporal" / "model")
    pipe = load_pretrained(SignVideoPipeline, model)
    with read_npz(folder / "conditions.npz") as c:
        pose, hands = c["pose_map"][:args.frames], c["hand_render"][:args.frames]
    reference = np.asarray(Image.open(root / "references" / f"{sample['signer_id']}.png")
                           .convert("RGB"))
    info = model / "video.json"
    sampling = json.loads(info.read_text()).get("sampling", {}) if info.is_file() else {}
    generated = pipe(reference, pose, hands, num_inference_steps=args.steps,
                     window=sampling.get("window", 8), overlap=sampling.get("overlap", 2),
                     generator=torch.Generator().manual_seed(cfg.experiment.seed)).frames
    truth = read_video(folder / "video.mp4")[:args.frames]
    tiled = tile_streams([reference, pose, hands, generated, truth],
                         ["reference", "pose map", "hand render", "generated", "truth"])
    out = Path(args.out)
    save_gif(out.with_suffix(".gif"), tiled, fps=sample["fps"])
    Image.fromarray(contact_sheet(tiled)).save(out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.gif')} and {out.with_suffix('.png')} "
          f"({sample['sample_id']}, signer {sample['signer_id']}, model {model})")


# The result key each evaluator's score goes to: a row without it (a pose-only system has
# no bt_wer) does not depend on that evaluator's version.
EVALUATOR_METRICS = {"recogniser": "cnn_bt_wer", "pose_recogniser": "pose_bt_wer",
                     "video_pose_recogniser": "bt_wer", "identity": "identity_top1"}


def _older_evaluators(result: dict, current: dict) -> dict:
    """The evaluators ``result`` depends on whose versions differ from ``current``'s
    (name -> the result's version); every evaluator if it records none."""
    versions = result.get("evaluators", {})
    if not versions:
        return dict.fromkeys(current or ["unrecorded"])
    return {name: version for name, version in versions.items()
            if (name not in EVALUATOR_METRICS
                or result.get(EVALUATOR_METRICS[name]) is not None)
            and current.get(name) != version}


def _newest_evaluators(results: list[dict]) -> dict:
    return max(results, key=lambda r: r.get("date", "")).get("evaluators", {})


def _stale_results(results: list[dict]) -> list[dict]:
    """Results scored by other versions of the evaluators they depend on than the newest
    result file's."""
    if not results:
        return []
    current = _newest_evaluators(results)
    return [r for r in results if _older_evaluators(r, current)]


def _report(args) -> None:
    from signgen.eval.score import markdown_table, row_name

    results = []
    for path in sorted(RESULTS_DIR.glob("*__*.json")):
        data = json.loads(path.read_text())
        if "system" in data and "split" in data:
            results.append(data)
    results.sort(key=lambda r: (r["split"], r["system"], -r["num_samples"]))
    stale = _stale_results(results)
    if not results:
        raise SignGenError(f"no result files in {RESULTS_DIR}; run python -m signgen.eval "
                           f"score first")
    lines = ["# Results", "",
             "Generated by `python -m signgen.eval report` from "
             "`benchmarks/results/<system>__<split>.json`; each row was produced by the "
             "command stored in its JSON file. `–` means not applicable (see the file's "
             "`notes`). WER and DTW-MJE: lower is better; BLEU-4, PCK, identity, SSIM, "
             "PSNR: higher is better. DTW-MJE and jitter are in shoulder widths. "
             "`pck_hands`: PCK over the 42 hand keypoints alone (`–` in rows scored "
             "before it existed). "
             "`bt_wer`: video -> keypoint estimator -> pose recogniser trained on the "
             "estimator's keypoints of ground-truth train and train_extra videos; "
             "`cnn_bt_wer`: the end-to-end CNN video recogniser; `pose_bt_wer`: the pose "
             "recogniser on the "
             "system's keypoints (exact ones for ground truth, estimated from video for "
             "video-only systems); a generated keypoint counts as visible where it lies "
             "inside the frame (SynthSign's rule). `stage2_avatar`: the sample's "
             "ground-truth conditions -> stage-I encoder -> FSQ tokens -> the FSQ pose "
             "head (rows with `--pose-decoder` in their command: the token pose "
             "decoder), no translator (the pose a perfect translator would reach). "
             "`vae_reconstruction`: the ground-truth video encoded and decoded by a "
             "video model's VAE (the best any stage-I video through that latent space "
             "can score). "
             "`stage1_*` rows run on the first `num_samples` clips of the split (see "
             "each file's `command` and `system_info`); `system [tag]`: a variant of "
             "the system's settings, named in its `command`.", "",
             markdown_table(results, marked={id(r) for r in stale}), ""]
    tokens = [r for r in results if "codebook_usage" in r]
    if tokens:  # stage II's own targets (issue #6)
        lines += ["Stage II tokens (`stage2_decoded`: the stage-I embeddings of the sample's "
                  "conditions through the FSQ autoencoder):", "",
                  "| system | split | samples | codebook usage | consecutive repeat rate | "
                  "SMPL-X joint error mm |", "|---|---|---|---|---|---|"]
        lines += [f"| {row_name(r)} | {r['split']} | {r['num_samples']} | "
                  f"{r['codebook_usage']:.3f} | {r['consecutive_repeat_rate']:.3f} | "
                  f"{r['smplx_joint_error_mm']:.1f} |" for r in tokens]
        lines.append("")
    if stale:
        current = _newest_evaluators(results)
        older = sorted({f"{name} {version}" for r in stale
                        for name, version in _older_evaluators(r, current).items()})
        lines += ["† scored by earlier evaluator weights than the newest results "
                  f"({', '.join(older)}; now "
                  + ", ".join(f"{name} {current.get(name.split()[0]) or '(none)'}"
                              for name in sorted({o.split()[0] for o in older}))
                  + "): compare a † row only with † rows scored by the same weights (its "
                  "file's `evaluators`), or re-score it (`score --system saved_outputs` "
                  "where its outputs were saved).", ""]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out} ({len(results)} rows)")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m signgen.eval",
                                     description="signgen's evaluation suite.")
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score a system on a split")
    score.add_argument("--system", required=True, choices=SYSTEMS)
    score.add_argument("--split", default="test_novel_sentences", choices=SPLITS)
    score.add_argument("--num", type=int, help="only the first N samples")
    score.add_argument("--lexicon-dir", help="isolated-sign export for lookup_concat")
    score.add_argument("--model", help="SignVideoPipeline folder for the stage1_* systems "
                                       "(default: the run's trained model), or the "
                                       "SignGenPipeline folder for signgen (default: "
                                       "assets/pipeline), or the exported "
                                       "regression_translator folder (default: the run's "
                                       "regression_translator/model)")
    score.add_argument("--fsq", help="FSQ autoencoder folder for stage2_decoded (default: "
                                     "the run's fsq/model)")
    score.add_argument("--pose-decoder", help="token pose decoder folder for stage2_* (the "
                       "pose read from the tokens by it, not by the FSQ's head)")
    score.add_argument("--render-video", action="store_true",
                       help="lookup_concat: render its poses to video with the stage I model")
    score.add_argument("--steps", type=int, help="denoising steps (stage1_*)")
    score.add_argument("--guidance", type=float, help="guidance scale (stage1_*)")
    score.add_argument("--window", type=int, help="temporal window in frames (stage1_*; "
                                                  "default: the model's video.json)")
    score.add_argument("--overlap", type=int, help="frames shared by windows (stage1_*)")
    score.add_argument("--window-batch", type=int, help="temporal windows per UNet call "
                                                        "(0: all at once; video systems)")
    score.add_argument("--precision", choices=["fp32", "bf16"],
                       help="UNet precision (video systems; default: the model's)")
    score.add_argument("--unknown-signer", action="store_true",
                       help="text2video / text2avatar: do not tell a translator with signer "
                            "conditioning whose the sample is (it signs for 'unknown')")
    score.add_argument("--save-outputs", metavar="DIR",
                       help="also write each sample's output to DIR/<sample_id>.npz "
                            "(re-score them with --system saved_outputs --outputs DIR)")
    score.add_argument("--outputs", metavar="DIR",
                       help="for --system saved_outputs: a --save-outputs folder, or "
                            "your own videos as DIR/<sample_id>.mp4")
    score.add_argument("--tag", type=_tag, help="a name for a variant of the system's "
                                                "settings (e.g. steps4): written to its own "
                                                "result file, shown as 'system [tag]'")
    score.add_argument("--config", default=DEFAULT_CONFIG)
    score.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    score.set_defaults(func=_score)
    side = sub.add_parser("side-by-side", help="GIF + PNG: reference, conditions, "
                                               "generated, ground truth")
    side.add_argument("--sample", default="test_unseen_signers-00000")
    side.add_argument("--model", help="SignVideoPipeline folder (default: the run's model)")
    side.add_argument("--frames", type=int, default=48)
    side.add_argument("--steps", type=int, default=20)
    side.add_argument("--out", default="docs/stage1_side_by_side")
    side.add_argument("--config", default=DEFAULT_CONFIG)
    side.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    side.set_defaults(func=_side_by_side)
    report = sub.add_parser("report", help="regenerate docs/results.md")
    report.add_argument("--out", default="docs/results.md")
    report.set_defaults(func=_report)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
