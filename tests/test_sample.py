"""sample.py end to end on a tiny random pipeline folder: every output file is written,
complete and readable; user errors are one clear line."""

import json

import numpy as np
import pytest
from PIL import Image

import sample
from signgen.errors import InvalidInputError


def test_text_to_every_output_file(engine, tmp_path, one_thread):
    import imageio.v2 as imageio

    out = tmp_path / "out"
    assert sample.cli(["--text", "Hello Zoë", "--lang", "ssl-b", "--model", str(engine),
                       "--steps", "2", "--seed", "5", "--out", str(out),
                       "video.sampling.window=4", "video.sampling.overlap=1"]) == 0
    assert {p.name for p in out.iterdir()} == {"video.mp4", "avatar.mp4", "smplx.npz",
                                               "pose.pose", "tokens.json", "preview.png"}
    info = json.loads((out / "tokens.json").read_text())
    frames = len(info["tokens"])
    assert info["language"] == "ssl-b" and info["seed"] == 5 and frames >= 1
    assert info["notices"] == ["unknown word 'zoe': fingerspelled"]
    assert info["signer"] == "s7" and info["tokens_mirrored"] is False  # a shipped signer
    with np.load(out / "smplx.npz") as npz:
        assert npz["poses"].shape == (frames, 165) and npz["trans"].shape == (frames, 3)
        assert str(npz["surface_model_type"]) == "smplx" and float(npz["mocap_frame_rate"]) == 12
    for name in ("video.mp4", "avatar.mp4"):
        assert len(imageio.mimread(out / name)) == frames
    assert Image.open(out / "preview.png").size == (8 * 32, 2 * 32)
    from pose_format import Pose

    pose = Pose.read((out / "pose.pose").read_bytes())
    assert pose.body.data.shape[0] == frames
    assert [c.name for c in pose.header.components][:4] == [
        "POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"]


def test_gif_shows_the_video_beside_the_avatar(engine, tmp_path, one_thread):
    out = tmp_path / "out"
    assert sample.cli(["--text", "Hello", "--model", str(engine), "--steps", "1", "--gif",
                       "--out", str(out), "video.sampling.window=4",
                       "video.sampling.overlap=1"]) == 0
    frames = len(json.loads((out / "tokens.json").read_text())["tokens"])
    with Image.open(out / "preview.gif") as gif:
        assert gif.size == (2 * 32, 32) and gif.n_frames == frames and gif.info["loop"] == 0


def test_avatar_only_and_gloss_input(engine, tmp_path, one_thread):
    out = tmp_path / "avatar"
    assert sample.cli(["--gloss", "HELLO fs-ANNA", "--model", str(engine), "--avatar-only",
                       "--out", str(out)]) == 0
    assert "video.mp4" not in {p.name for p in out.iterdir()}
    assert "preview.gif" not in {p.name for p in out.iterdir()}  # only with --gif
    assert json.loads((out / "tokens.json").read_text())["gloss"] == "HELLO fs-ANNA"
    # The streamed avatar-only path makes what the full run makes.
    full = tmp_path / "full"
    assert sample.cli(["--gloss", "HELLO fs-ANNA", "--model", str(engine), "--steps", "1",
                       "--out", str(full), "video.sampling.window=4",
                       "video.sampling.overlap=1"]) == 0
    streamed, whole = (json.loads((d / "tokens.json").read_text()) for d in (out, full))
    assert streamed["tokens"] == whole["tokens"]
    assert set(streamed["timings"]) == {"translate_and_render_avatar", "write_files"}
    from signgen.data.synthsign.dataset import read_video

    assert len(read_video(out / "avatar.mp4")) == len(whole["tokens"])
    with np.load(out / "smplx.npz") as a, np.load(full / "smplx.npz") as b:
        np.testing.assert_allclose(a["poses"], b["poses"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("extra, message", [
    (["--signer", "nobody"], "unknown signer 'nobody'; this model ships s7"),
    (["--reference", "missing.png"], "cannot read the reference image"),
    (["--lang", "ssl-q"], "unknown sign language 'ssl-q'"),
])
def test_user_errors(engine, tmp_path, extra, message):
    with pytest.raises(InvalidInputError, match=message):
        sample.cli(["--text", "hello", "--model", str(engine), "--out", str(tmp_path / "o"),
                    *extra])
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        sample.cli(["--text", "hello", "--model", str(engine), "--out", str(tmp_path / "file")])


def _jobs(path, lines):
    path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines)
                    + "\n")
    return path


def test_batch_records_failures_resumes_and_never_escapes_the_folder(engine, tmp_path,
                                                                      one_thread):
    jobs = _jobs(tmp_path / "jobs.jsonl", [
        {"id": "a", "text": "hello", "seed": 1},
        {"id": "../evil", "text": "hello"},
        {"id": "a", "text": "again"},
        {"id": "b", "text": "hello", "lang": "ssl-q"},
        "{not json",
        {"id": "c", "gloss": "HELLO GO"},
    ])
    out = tmp_path / "batch"
    (out / "c").mkdir(parents=True)  # an unfinished earlier attempt: redone
    args = ["--batch", str(jobs), "--model", str(engine), "--out", str(out), "--steps", "1",
            "video.sampling.window=4", "video.sampling.overlap=1"]
    assert sample.cli(args) == 1  # some items failed
    assert sorted(p.name for p in out.iterdir()) == ["a", "c", "failures.jsonl"]
    assert not (tmp_path / "evil").exists()
    for item in ("a", "c"):
        assert (out / item / ".complete").is_file() and (out / item / "smplx.npz").is_file()
    failures = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert [f.get("id") for f in failures] == ["../evil", "a", None, "b"]
    assert "unknown sign language" in failures[3]["error"]
    stamp = (out / "a" / "tokens.json").stat().st_mtime_ns
    assert sample.cli(args) == 1  # b fails again; a and c are skipped, not redone
    assert (out / "a" / "tokens.json").stat().st_mtime_ns == stamp
    assert len((out / "failures.jsonl").read_text().splitlines()) == 8


def test_batch_shards_over_two_processes(engine, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    jobs = _jobs(tmp_path / "jobs.jsonl", [{"id": f"j{i}", "gloss": "HELLO"} for i in range(5)])
    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", "29517", str(root / "sample.py"), "--batch", str(jobs),
         "--model", str(engine), "--out", str(out), "--avatar-only"],
        capture_output=True, text=True, cwd=root, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [f"j{i}" for i in range(5)]
    assert "rank 0: 3 done" in result.stdout and "rank 1: 2 done" in result.stdout


def test_batch_removes_only_its_own_stale_temporary_folders(engine, tmp_path, one_thread):
    jobs = _jobs(tmp_path / "jobs.jsonl", [{"id": "a", "gloss": "HELLO"}])
    out = tmp_path / "batch"
    (out / ".tmp-a-999").mkdir(parents=True)  # left by a killed run of job "a"
    (out / ".tmp-a-b-123").mkdir()  # job "a-b", being written by another rank
    assert sample.cli(["--batch", str(jobs), "--model", str(engine), "--out", str(out),
                       "--avatar-only"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".tmp-a-b-123", "a"]


def test_the_signer_the_translator_is_told(tmp_path):
    from argparse import Namespace

    (tmp_path / "signers").mkdir()
    for name in ("s03", "s01"):
        Image.new("RGB", (4, 4)).save(tmp_path / "signers" / f"{name}.png")

    def signer(**kwargs):
        return sample._signer_id(Namespace(**{"signer": None, "reference": None, **kwargs}),
                                 tmp_path)

    assert signer(signer="s03") == "s03"
    assert signer() == "s01"  # the first shipped signer, whose image is rendered
    assert signer(reference="someone.png") is None  # someone the model does not know
    assert sample._signer_id(Namespace(signer=None, reference=None), tmp_path / "x") is None
