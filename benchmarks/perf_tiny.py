"""Whole-engine speed on this CPU (issue #11): text -> tokens -> SMPL-X pose -> video (and
the avatar), the fast sampling settings against a plain 20-step classifier-free-guidance
run of the same weights, on the same sentences, in one run.

    python benchmarks/perf_tiny.py [--model assets/pipeline] [--num 8] [--threads 2]

"fast" uses the sampling settings the video model was exported with (its ``video.json``,
kept in the pipeline's ``stages.json``); "plain" is DDIM at ``--plain-steps`` 20 with
guidance ``--plain-guidance`` 2.0. Both render the first ``--num`` sentences of
``--split`` for their signers. Reported: seconds per stage per second of video, the
real-time factor (compute seconds per second of video after model load; ``rtf`` is the
video path, ``rtf_with_avatar`` adds the avatar), the peak RSS of the process after each
system ran (before the evaluators load), ``speedup_vs_plain`` and the back-translation
WER of both (the shipped evaluators, ``python -m signgen.eval``).

Writes ``benchmarks/results/perf__tiny.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.config import load_config  # noqa: E402
from signgen.eval.score import SystemOutput, iter_ground_truth, split_samples  # noqa: E402
from signgen.eval.systems import TextToSignSystem  # noqa: E402

VIDEO_STAGES = ("translate", "decode_tokens", "render_video")


class Replay:
    """A system that returns outputs generated earlier, in the same order."""

    def __init__(self, name: str, outputs: list[SystemOutput]) -> None:
        self.name, self.outputs = name, list(outputs)

    def generate(self, gt) -> SystemOutput:
        return self.outputs.pop(0)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(system: TextToSignSystem, truths: list, fps: float) -> tuple[list, dict]:
    outputs = [system.generate(gt) for gt in truths]
    video_seconds = system.frames / fps
    per_stage = {k: round(v / video_seconds, 4) for k, v in system.timings.items()}
    row = {"settings": system.info, "frames": system.frames,
           "video_seconds": round(video_seconds, 2),
           "seconds_per_video_second": per_stage,
           "rtf": round(sum(system.timings[k] for k in VIDEO_STAGES) / video_seconds, 3),
           "rtf_with_avatar": round(sum(system.timings.values()) / video_seconds, 3),
           "peak_rss_mb": round(peak_rss_mb(), 1)}
    return outputs, row


def markdown(result: dict) -> str:
    lines = [f"Whole engine on this CPU ({result['threads']} threads), "
             f"{result['num_samples']} sentences of {result['split']}; "
             f"`{result['command']}`", "",
             "| run | steps | guidance | s / video s: translate | decode tokens | video | "
             "avatar | rtf (video) | rtf (+avatar) | peak RSS MB | BT-WER |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("fast", "plain"):
        r = result[name]
        s = r["seconds_per_video_second"]
        wer = r.get("bt_wer")
        lines.append(
            f"| {name} | {r['settings']['num_inference_steps']} | "
            f"{r['settings']['guidance_scale']} | {s.get('translate', 0):.3f} | "
            f"{s.get('decode_tokens', 0):.3f} | {s.get('render_video', 0):.3f} | "
            f"{s.get('render_avatar', 0):.3f} | {r['rtf']:.3f} | {r['rtf_with_avatar']:.3f} | "
            f"{r['peak_rss_mb']:.0f} | {'–' if wer is None else f'{wer:.3f}'} |")
    lines += ["", f"speedup_vs_plain: {result['speedup_vs_plain']:.2f}x"]
    if result.get("bt_wer_ratio") is not None:
        lines.append(f"BT-WER fast / plain: {result['bt_wer_ratio']:.3f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="assets/pipeline")
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--split", default="test_novel_sentences")
    parser.add_argument("--num", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window-batch", type=int, help="windows per UNet call of the fast "
                        "run (0: all; default: the model's sampling settings)")
    parser.add_argument("--precision", choices=["fp32", "bf16"],
                        help="the fast run's precision (default: the model's sampling settings)")
    parser.add_argument("--steps", type=int, help="diffusion steps of the fast run "
                        "(default: the video model's exported setting)")
    parser.add_argument("--plain-steps", type=int, default=20)
    parser.add_argument("--plain-guidance", type=float, default=2.0)
    parser.add_argument("--no-score", action="store_true",
                        help="skip back-translation (smoke test without evaluators)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    root = Path(cfg.data.root) / cfg.data.dataset
    truths = list(iter_ground_truth(root, split_samples(root, args.split, args.num)))
    seed = cfg.experiment.seed
    fast = TextToSignSystem(args.model, root, "signgen_fast", seed=seed, render_avatar=True,
                            num_inference_steps=args.steps, window_batch=args.window_batch,
                            precision=args.precision)
    with torch.inference_mode():
        fast_outputs, fast_row = run(fast, truths, cfg.data.fps)
        plain = TextToSignSystem(args.model, root, "signgen_plain", seed=seed,
                                 num_inference_steps=args.plain_steps,
                                 guidance_scale=args.plain_guidance, render_avatar=True,
                                 window_batch=1, precision="fp32")
        plain_outputs, plain_row = run(plain, truths, cfg.data.fps)
    result = {"benchmark": "perf", "config": args.config, "split": args.split,
              "num_samples": len(truths), "threads": args.threads,
              "machine": f"{platform.processor() or platform.machine()}, "
                         f"{torch.get_num_threads()} torch threads",
              "fast": fast_row, "plain": plain_row,
              "speedup_vs_plain": round(plain_row["rtf"] / fast_row["rtf"], 2),
              "command": "python benchmarks/perf_tiny.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if not args.no_score:
        from signgen.eval.score import Evaluators, score_system

        evaluators = Evaluators.load(cfg.eval.weights_dir)
        for name, outputs in (("fast", fast_outputs), ("plain", plain_outputs)):
            scored = score_system(Replay(f"signgen_{name}", outputs), root, args.split,
                                  evaluators, num=args.num, progress=False)
            result[name]["bt_wer"] = scored["bt_wer"]
            result[name]["bt_bleu4"] = scored["bt_bleu4"]
            result[name]["pose_bt_wer"] = scored["pose_bt_wer"]
        result["bt_wer_ratio"] = (round(result["fast"]["bt_wer"] / result["plain"]["bt_wer"], 3)
                                  if result["plain"]["bt_wer"] else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"perf__{args.config}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result) + "\n")
    print(stem.with_suffix(".md").read_text())
    return result


if __name__ == "__main__":
    main()
