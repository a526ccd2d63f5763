"""``python train.py --stage demo`` on micro settings: every stage, the token sets and the
pipeline folder, with provenance; a re-run resumes instead of retraining."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_token_pose_decoder import MICRO_POSE_DECODER
from test_video_training import MICRO_VIDEO, SMALL, STEPS


@pytest.fixture(scope="module")
def demo(tiny_overrides, tiny_data_root, tmp_path_factory):
    import torch

    import train
    from signgen.config import load_config

    tmp = tmp_path_factory.mktemp("demo")
    data_root = tmp / "data"  # a private copy: caches and token sets are written into it
    shutil.copytree(tiny_data_root / "synthsign", data_root / "synthsign",
                    ignore=shutil.ignore_patterns("cache", "tokens"))
    base = [o for o in tiny_overrides if not o.startswith("data.root=")]
    overrides = [
        *base, f"data.root={data_root}", f"experiment.output_dir={tmp / 'out'}", *SMALL,
        *MICRO_VIDEO,
        "fsq.model.hidden_channels=[8,16,16]", "fsq.model.pose_hidden=32", "fsq.clip_length=3",
        *(f"fsq.train.{kv}" for kv in STEPS),
        "translator.model.dim=32", "translator.model.num_heads=2",
        "translator.model.encoder_layers=1", "translator.model.decoder_layers=1",
        *(f"translator.train.{kv}" for kv in STEPS), *MICRO_POSE_DECODER]
    cfg = load_config("tiny", overrides)
    # The full SynthSign corpus is generate()'s own test; here the tiny one is complete.
    import signgen.data.synthsign.generate as generation
    original = generation.generate
    generation.generate = lambda cfg, progress=True: data_root / "synthsign"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = train.build_demo(cfg, command="python train.py --stage demo (test)",
                               progress=False, out=tmp / "pipeline")
    finally:
        generation.generate = original
        torch.set_num_threads(threads)
    return cfg, out, data_root


def test_demo_builds_a_loadable_half_size_pipeline_with_provenance(demo, one_thread):
    from signgen.pipelines.sign_gen import SignGenPipeline

    cfg, out, _ = demo
    info = json.loads((out / "demo.json").read_text())
    assert info["command"] == "python train.py --stage demo (test)"
    assert info["seed"] == cfg.experiment.seed and len(info["config_hash"]) == 16
    assert info["storage_dtype"] == "float16"
    assert set(info["stages"]) == {"vae", "video_frames", "video_temporal", "render_decoder",
                                   "fsq", "translator",
                                   "pose_decoder"}  # tiny: no separate vae_decoder
    tuned = Path(cfg.experiment.output_dir) / "render_decoder" / "model"
    assert json.loads((out / "stages.json").read_text())["video"] == str(tuned)
    assert not (cfg.video.finetune_vae_decoder
                or (Path(cfg.experiment.output_dir) / "vae_decoder").exists())
    assert all(stage["steps"] == 2 and stage["git_commit"] == info["git_commit"]
               for stage in info["stages"].values())
    assert sorted(p.stem for p in (out / "signers").glob("*.png"))  # reference images shipped
    pipe = SignGenPipeline.from_pretrained(out)
    assert pipe.pose_decoder is not None  # the avatar's pose read by the pose decoder
    assert json.loads((out / "stages.json").read_text())["pose_decoder"] == str(
        Path(cfg.experiment.output_dir) / "pose_decoder" / "model")
    pipe.set_progress_bar_config(disable=True)
    result = pipe("hello", reference_image=np.zeros((64, 64, 3), np.uint8),
                  num_inference_steps=1, window=4, overlap=1, progress=False, seed=0)
    assert result.frames.shape[1:] == (64, 64, 3) and len(result.frames) == len(result.tokens)


def test_rerunning_the_demo_resumes_every_stage(demo, one_thread):
    import train

    cfg, out, data_root = demo
    import signgen.data.synthsign.generate as generation
    original = generation.generate
    generation.generate = lambda cfg, progress=True: data_root / "synthsign"
    try:
        weights = sorted(out.glob("*/*.safetensors"))
        before = [p.read_bytes() for p in weights]
        train.build_demo(cfg, command="again", progress=False, out=out)
    finally:
        generation.generate = original
    assert len(weights) >= 5 and [p.read_bytes() for p in weights] == before
    info = json.loads((out / "demo.json").read_text())
    assert info["command"] == "again"
    assert all(stage["steps"] == 2 for stage in info["stages"].values())  # nothing retrained
    # Finished stages are skipped: their exports keep the command that trained them.
    assert info["stages"]["fsq"]["command"] == "python train.py --stage demo (test)"
