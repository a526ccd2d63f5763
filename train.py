"""Train a signgen component from a config.

    python train.py --stage video [--config tiny] [section.key=value ...]
    python train.py --stage demo      # every stage, then the shipped assets/pipeline

Every stage runs through one accelerate training loop; a stage supplies only its model
and loss. Configs are described in configs/ and signgen/config/schema.py.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from signgen.cli import ArgumentParser, NotBuiltYetError, run_cli
from signgen.config import DEFAULT_CONFIG, SignGenConfig, config_hash, config_to_yaml, load_config
from signgen.provenance import git_commit

# stage -> module with build_task(cfg) and train_config(cfg), or the issue that builds it
TASKS = {
    "recogniser": "signgen.training.tasks.recogniser",
    "pose_recogniser": "signgen.training.tasks.pose_recogniser",
    "video_pose_recogniser": "signgen.training.tasks.video_pose_recogniser",
    "keypoints": "signgen.training.tasks.keypoints",
    "hand_keypoints": "signgen.training.tasks.hand_keypoints",
    "identity": "signgen.training.tasks.identity",
    "vae": "signgen.training.tasks.vae",
    "vae_decoder": "signgen.training.tasks.vae_decoder",
    "video_frames": "signgen.training.tasks.video_frames",
    "video_temporal": "signgen.training.tasks.video_temporal",
    "render_decoder": "signgen.training.tasks.render_decoder",
    "fsq": "signgen.training.tasks.fsq",
    "translator": "signgen.training.tasks.translator",
    "pose_decoder": "signgen.training.tasks.pose_decoder",
    "regression_translator": "signgen.training.tasks.regression_translator",
}
# Stages that run others in order (each resumes on its own).
SEQUENCES = {"video": ("video_frames", "video_temporal")}
# Evaluators are shipped: their exported model is also copied to eval.weights_dir/<stage>.
EVALUATORS = ("recogniser", "pose_recogniser", "video_pose_recogniser", "keypoints",
              "hand_keypoints", "identity")
NOT_BUILT: dict[str, str] = {}
# ``--stage demo``: these stages, the FSQ token sets, the translator, then the pipeline
# folder <assets>/pipeline that sample.py uses by default (weights stored as float16).
DEMO_STAGES = ("vae", "vae_decoder", "video", "fsq")
STAGES = sorted([*TASKS, *SEQUENCES, *NOT_BUILT, "demo"])


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        description="Train a signgen component.",
        epilog="Overrides: section.key=value, e.g. experiment.seed=3 render.height=64")
    parser.add_argument("--stage", required=True, choices=STAGES,
                        help="which component to train")
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help="config name in configs/ or a YAML path (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    return parser


def main(cfg: SignGenConfig, stage: str, command: str = "", progress: bool = True) -> Path:
    """Train ``stage`` with ``cfg`` (what tests call); returns the exported model folder."""
    from signgen.training.loop import run_training

    if stage in NOT_BUILT:
        raise NotBuiltYetError(f"training {NOT_BUILT[stage]} is not built yet")
    if stage == "demo":
        return build_demo(cfg, command=command, progress=progress)
    if stage in SEQUENCES:
        for part in SEQUENCES[stage]:
            model_dir = main(cfg, part, command=command, progress=progress)
        return model_dir
    module = importlib.import_module(TASKS[stage])
    run_dir = Path(cfg.experiment.output_dir) / stage
    metadata = {"stage": stage, "command": command, "config_hash": config_hash(cfg),
                "git_commit": git_commit(), "config": config_to_yaml(cfg)}
    model_dir = run_training(module.build_task(cfg), module.train_config(cfg), run_dir,
                             seed=cfg.experiment.seed, device=cfg.experiment.device,
                             metadata=metadata, progress=progress)
    from accelerate import PartialState

    if stage in EVALUATORS and PartialState().is_main_process:
        target = Path(cfg.eval.weights_dir) / stage
        tmp = target.with_name(f".tmp-{stage}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(model_dir, tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        print(f"evaluator {stage} -> {target}")
    return model_dir


def build_demo(cfg: SignGenConfig, command: str = "", progress: bool = True,
               out: Path | None = None) -> Path:
    """The whole demo recipe; every step resumes (or is skipped) when re-run. Writes the
    pipeline folder ``out`` (default <assets>/pipeline) with ``demo.json``: the command,
    seed, config hash, git commit and each stage's training summary. Returns ``out``."""
    import json

    from signgen.data.synthsign.generate import generate
    from signgen.data.tokens import (
        META_FILE,
        default_tokens_dir,
        fsq_weights_id,
        tokenise_with_export,
    )
    from signgen.paths import assets_dir
    from signgen.pipelines.assemble import DEMO_FILE, assemble, stage_summary

    out = Path(out) if out else assets_dir() / "pipeline"
    commit = git_commit()  # before this recipe writes into the (tracked) assets folder
    dataset = generate(cfg, progress=progress)
    stages = [s for s in DEMO_STAGES if s != "vae_decoder" or cfg.video.finetune_vae_decoder]
    folders = {stage: main(cfg, stage, command=command, progress=progress)
               for stage in stages}
    renderer = folders["video"]
    if cfg.video.render_decoder.enabled:  # the video model with its decoder tuned
        renderer = main(cfg, "render_decoder", command=command, progress=progress)
    fsq_dir = folders["fsq"]
    canonical = cfg.translator.canonical_handedness

    def cached(split: str) -> str | None:
        """The embedding cache to read ``split``'s embeddings from: the one the FSQ
        training built of its train split, if it built one."""
        from signgen.training.tasks.fsq import cache_precision

        return cache_precision(cfg) if cfg.fsq.embedding_cache and split == "train" else None

    for split in dict.fromkeys((*cfg.translator.train_splits, "dev")):  # the translator's
        folder = default_tokens_dir(dataset, fsq_weights_id(fsq_dir), split, canonical)
        if not (folder / META_FILE).is_file():
            tokenise_with_export(fsq_dir, dataset, split, progress=progress,
                                 canonical_handedness=canonical,
                                 embedding_cache=cached(split))
    folders["translator"] = main(cfg, "translator", command=command, progress=progress)
    pose_decoder = None
    if cfg.pose_decoder.enabled:  # the avatar's pose read from the tokens in context
        for split in dict.fromkeys((*cfg.pose_decoder.train_splits, "dev")):  # not mirrored
            folder = default_tokens_dir(dataset, fsq_weights_id(fsq_dir), split)
            if not (folder / META_FILE).is_file():
                tokenise_with_export(fsq_dir, dataset, split, progress=progress,
                                     embedding_cache=cached(split))
        pose_decoder = main(cfg, "pose_decoder", command=command, progress=progress)
    assemble(renderer, fsq_dir, folders["translator"], out,
             signers=dataset / "references", storage_dtype="float16",
             sampling=asdict(cfg.video.sampling), pose_decoder=pose_decoder)
    optional = {"vae_decoder": cfg.video.finetune_vae_decoder,
                "render_decoder": cfg.video.render_decoder.enabled,
                "pose_decoder": cfg.pose_decoder.enabled}
    trained = [s for s in ("vae", "vae_decoder", "video_frames", "video_temporal",
                           "render_decoder", "fsq", "translator", "pose_decoder")
               if optional.get(s, True)]
    stages = {stage: stage_summary(Path(cfg.experiment.output_dir) / stage / "model")
              for stage in trained}
    (out / DEMO_FILE).write_text(json.dumps({
        "command": command, "seed": cfg.experiment.seed, "config_hash": config_hash(cfg),
        "git_commit": commit, "storage_dtype": "float16", "stages": stages},
        indent=2) + "\n")
    print(f"demo pipeline -> {out}")
    return out


def cli(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python train.py " + " ".join(sys.argv[1:] if argv is None else argv)
    main(load_config(args.config, args.overrides), args.stage, command=command)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(cli))
