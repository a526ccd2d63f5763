"""Fused against per-tensor AdamW in the training loop (``train.fused_optimizer``).

Trains the stage II models of a config (the FSQ autoencoder and the token pose decoder)
for ``--steps`` steps each way, alternating fused and per-tensor runs ``--rounds`` times
(this machine's speed drifts by ~10 % from run to run, so one pair proves little), and
reports the training loop's milliseconds per step after ``--skip`` warm-up steps, from the
run's own ``metrics.jsonl`` (evaluation and checkpoints are switched off). Needs the
inputs the stages need: ``--fsq`` an exported FSQ autoencoder whose tokens of the train
split exist (``python -m signgen.data.tokens``), and the FSQ's stage-I pipeline.

    python benchmarks/fused_optimizer.py --fsq outputs/r30f/fsq/model \\
        [--config tiny_fast_stage2] [--video-model assets/pipeline] [--steps 600]

Writes ``benchmarks/results/fused_optimizer__<config>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.config import load_config  # noqa: E402
from signgen.training.loop import run_training  # noqa: E402
from signgen.training.tasks.fsq import FSQTask  # noqa: E402
from signgen.training.tasks.pose_decoder import PoseDecoderTask  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def ms_per_step(task, train_cfg, steps: int, skip: int, fused: bool, folder: Path) -> float:
    """The loop's ms per step over steps ``skip``..``steps`` of a fresh run in ``folder``."""
    train_cfg.max_steps, train_cfg.log_every = steps, 50
    train_cfg.eval_every = train_cfg.save_every = 10 ** 9
    train_cfg.fused_optimizer = fused
    shutil.rmtree(folder, ignore_errors=True)
    run_training(task, train_cfg, folder, seed=0, progress=False)
    seconds = {}
    for line in (folder / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        seconds[row["step"]] = row["seconds"]
    return (seconds[steps] - seconds[skip]) / (steps - skip) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny_fast_stage2")
    parser.add_argument("--fsq", required=True, help="exported FSQ autoencoder folder")
    parser.add_argument("--video-model", default="assets/pipeline",
                        help="the FSQ's stage-I pipeline folder")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--skip", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not 0 < args.skip < args.steps or args.steps % 50 or args.skip % 50:
        parser.error("--skip and --steps must be multiples of 50 with 0 < skip < steps")
    cfg = load_config(args.config, [f"fsq.video_model={args.video_model}",
                                    f"pose_decoder.fsq_model={args.fsq}"])
    stages = {"fsq": (FSQTask(cfg), cfg.fsq.train),
              "pose_decoder": (PoseDecoderTask(cfg), cfg.pose_decoder.train)}
    runs = {name: {"fused": [], "per_tensor": []} for name in stages}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, (task, train_cfg) in stages.items():
                for fused in (True, False):
                    ms = ms_per_step(task, train_cfg, args.steps, args.skip, fused,
                                     Path(tmp) / name)
                    runs[name]["fused" if fused else "per_tensor"].append(round(ms, 1))
                    print(f"{name} fused={fused}: {ms:.1f} ms/step", flush=True)
    result = {"config": args.config, "fsq": args.fsq, "steps": args.steps, "skip": args.skip,
              "rounds": args.rounds, "ms_per_step": runs,
              "command": "python benchmarks/fused_optimizer.py " + " ".join(sys.argv[1:])}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"fused_optimizer__{args.config}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"`{result['command']}`: training-loop ms per step (steps {args.skip}-"
             f"{args.steps}, runs alternated)", "",
             "| stage | fused AdamW | per-tensor AdamW | median saving |", "|---|---|---|---|"]
    for name, r in runs.items():
        saving = statistics.median(r["per_tensor"]) - statistics.median(r["fused"])
        lines.append(f"| {name} | {' / '.join(map(str, r['fused']))} | "
                     f"{' / '.join(map(str, r['per_tensor']))} | {saving:.1f} ms |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
