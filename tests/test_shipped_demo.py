"""The shipped demo weights (assets/pipeline, ``python train.py --stage demo``) run from
the README's command with no --model, and what they write opens and agrees with itself.
Few diffusion steps: this checks the shipped files and the wiring, not the quality
(that is docs/results.md)."""

import json
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from signgen.paths import REPO_ROOT, assets_dir

DEMO = assets_dir() / "pipeline"


def test_demo_is_shipped_with_its_provenance():
    from signgen.paths import weights_hash

    assert (DEMO / "model_index.json").is_file(), "the demo pipeline is not in assets/"
    info = json.loads((DEMO / "demo.json").read_text())
    assert info["storage_dtype"] == "float16" and info["seed"] == 0
    assert {"vae", "video_frames", "video_temporal", "fsq", "translator"} <= set(info["stages"])
    for stage in info["stages"].values():
        assert stage["steps"] > 0 and stage["config_hash"] and stage["command"]
    stages = json.loads((DEMO / "stages.json").read_text())
    translator = json.loads((DEMO / "translator" / "config.json").read_text())
    assert translator["codebook_size"] == 625
    assert len(weights_hash(DEMO / "translator")) == 12
    assert sorted(p.stem for p in (DEMO / "signers").glob("*.png"))
    assert stages["storage_dtype"] == "float16"
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 50 * 2**20, f"the demo weighs {size / 2**20:.1f} MB"


@pytest.mark.parametrize("avatar_only", [False, True])
def test_readme_command_on_the_shipped_demo(tmp_path, avatar_only):
    out = tmp_path / "out"
    command = [sys.executable, "sample.py", "--text", "tomorrow I go to the store",
               "--steps", "2", "--out", str(out)] + (["--avatar-only"] if avatar_only else [])
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((out / "tokens.json").read_text())
    frames = len(info["tokens"])
    assert 12 <= frames <= 256 and info["language"] == "ssl-a" and not info["notices"]
    assert len(info["tokens"][0]) == 16
    expected = {"avatar.mp4", "smplx.npz", "pose.pose", "tokens.json", "preview.png"}
    assert {p.name for p in out.iterdir()} == expected | (set() if avatar_only
                                                          else {"video.mp4"})
    with np.load(out / "smplx.npz") as npz:
        assert npz["poses"].shape == (frames, 165) and np.isfinite(npz["poses"]).all()
    for name in ["avatar.mp4"] + ([] if avatar_only else ["video.mp4"]):
        video = np.stack(imageio.mimread(out / name))
        assert video.shape == (frames, 128, 128, 3) and video.std() > 5  # not blank
    Image.open(out / "preview.png").verify()
