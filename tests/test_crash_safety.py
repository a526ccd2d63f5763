"""SIGKILL at random moments, then a re-run (issue #10): dataset generation and batch
rendering end with every item present exactly once, every file readable and no
temporary folders left. (Training: tests/test_training_loop.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import TINY_SYNTHSIGN
from PIL import Image

from signgen.data.synthsign.dataset import read_npz, read_video

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def kill_repeatedly(command: list[str], watch: Path, done, targets: list[int],
                    seed: int) -> None:
    """For each target: start ``command``, wait until ``done()`` items are finished at
    least ``target`` and it is writing the next one (a temporary folder ``*-<its pid>``
    is in ``watch``), wait a random 0-0.15 s more and SIGKILL it. Progress, not time,
    picks the moments, so a slow or fast machine kills at the same stages."""
    rng = np.random.default_rng(seed)
    for target in targets:
        process = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if done() >= target and any(watch.glob(f".*-{process.pid}")):
                time.sleep(rng.uniform(0.0, 0.15))
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        assert process.wait() == -signal.SIGKILL, "finished before it could be killed"


def random_targets(seed: int, total: int) -> list[int]:
    """Four kills: mid-write of the first item, then after three random numbers of
    finished items, all leaving at least two items for the last run."""
    later = np.random.default_rng(seed).choice(np.arange(1, total - 2), 3, replace=False)
    return [0, *sorted(int(k) for k in later)]


def run_to_the_end(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


RENDER = ["train-00000", "train-00001", "train-00002", "train-00003", "dev-00000",
          "test_novel_sentences-00000", "test_unseen_signers-00000"]


def test_dataset_generation_survives_sigkill(tmp_path):
    out = tmp_path / "synthsign"
    command = [sys.executable, "-m", "signgen.data.synthsign", "generate", "--out", str(out),
               "--workers", "1", *TINY_SYNTHSIGN, "--only", *RENDER]
    samples = out / "samples"
    kill_repeatedly(command, samples, lambda: sum(not p.name.startswith(".")
                                                  for p in samples.glob("*")),
                    random_targets(0, len(RENDER)), seed=0)
    finished = [p for p in (out / "samples").iterdir() if not p.name.startswith(".")]
    assert len(finished) < len(RENDER)  # the kills left work for the last run
    run_to_the_end(command)
    manifest = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    ids = [m["sample_id"] for m in manifest]
    assert sorted(ids) == sorted(RENDER)  # each exactly once
    assert sorted(p.name for p in (out / "samples").iterdir()) == sorted(RENDER)  # no .tmp
    for sample_id in ids:
        folder = out / "samples" / sample_id
        json.loads((folder / "sample.json").read_text())
        frames = read_video(folder / "video.mp4")
        with read_npz(folder / "conditions.npz") as cond, read_npz(folder / "motion.npz") as m:
            assert len(cond["pose_map"]) == len(frames) == len(m["poses"])


def test_batch_rendering_survives_sigkill(engine, tmp_path):
    from pose_format import Pose

    jobs = tmp_path / "jobs.jsonl"
    ids = [f"item-{i:02d}" for i in range(20)]
    jobs.write_text("".join(json.dumps({"id": i, "gloss": "HELLO GO STORE", "seed": n}) + "\n"
                            for n, i in enumerate(ids)))
    out = tmp_path / "out"
    command = [sys.executable, "sample.py", "--batch", str(jobs), "--model", str(engine),
               "--out", str(out), "--avatar-only"]
    kill_repeatedly(command, out, lambda: len(list(out.glob("*/.complete"))),
                    random_targets(1, len(ids)), seed=1)
    assert len(list(out.glob("*/.complete"))) < len(ids)  # the kills left work to do
    run_to_the_end(command)
    assert sorted(p.name for p in out.iterdir()) == ids  # no .tmp, no failures.jsonl
    for item in ids:
        folder = out / item
        assert (folder / ".complete").is_file()
        tokens = json.loads((folder / "tokens.json").read_text())["tokens"]
        with np.load(folder / "smplx.npz") as npz:
            assert npz["poses"].shape == (len(tokens), 165)
        assert len(read_video(folder / "avatar.mp4")) == len(tokens)
        assert Pose.read((folder / "pose.pose").read_bytes()).body.data.shape[0] == len(tokens)
        Image.open(folder / "preview.png").verify()
