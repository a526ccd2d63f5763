"""The whole-engine CPU benchmark runs end to end on a tiny random pipeline (no
evaluators); its timings are not checked here."""

import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def benchmark(name: str):
    """A script of benchmarks/ as a module."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_perf_benchmark_writes_json_and_table(engine, tiny_overrides, tmp_path, one_thread):
    perf_tiny = benchmark("perf_tiny")
    engine = Path(shutil.copytree(engine, tmp_path / "engine"))
    (engine / "stages.json").write_text(json.dumps(
        {"video_json": {"sampling": {"num_inference_steps": 2, "window": 4, "overlap": 1}}}))
    perf_tiny.main(["--model", str(engine), "--num", "2", "--split", "test_unseen_signers",
                    "--no-score", "--plain-steps", "3",
                    "--threads", "1", "--out", str(tmp_path), *tiny_overrides])
    result = json.loads((tmp_path / "perf__tiny.json").read_text())
    assert result["num_samples"] == 2
    assert result["fast"]["settings"]["num_inference_steps"] == 2
    assert result["plain"]["settings"] == {**result["fast"]["settings"], "window_batch": 1,
                                           "num_inference_steps": 3, "guidance_scale": 2.0}
    for run in ("fast", "plain"):
        row = result[run]
        assert row["frames"] > 0 and row["rtf"] > 0 and row["peak_rss_mb"] > 0
        assert set(row["seconds_per_video_second"]) == {
            "translate", "decode_tokens", "render_video", "render_avatar"}
    assert "speedup_vs_plain" in result
    assert "| fast | 2 |" in (tmp_path / "perf__tiny.md").read_text()


def test_batch_memory_benchmark_records_each_mark(engine, tmp_path):
    result = benchmark("batch_memory").main(["--model", str(engine), "--items", "4",
                                             "--marks", "1", "4", "--out", str(tmp_path)])
    assert result["finished"] == 4
    assert set(result["rss_mb_after_items"]) == {"1", "4"}
    assert all(v > 0 for v in result["rss_mb_after_items"].values())
    assert result["peak_rss_mb"] >= max(result["rss_mb_after_items"].values())
    assert (tmp_path / "batch_memory.md").is_file()


def test_sample_speed_benchmark_times_a_fresh_process(engine, tmp_path):
    result = benchmark("sample_speed").main(["--model", str(engine), "--text", "hello anna",
                                             "--steps", "1", "--threads", "1", "--repeats",
                                             "2", "--out", str(tmp_path)])
    for run in ("video", "avatar_only"):
        assert result[run]["wall_seconds"] > 0 and result[run]["frames"] >= 1
        assert result[run]["peak_rss_mb"] > 0
    assert "render_video" in result["video"]["stage_seconds"]
    # --avatar-only overlaps translation and rendering: one timing for both.
    assert set(result["avatar_only"]["stage_seconds"]) == {"translate_and_render_avatar",
                                                           "write_files"}
    speeds = result["avatar_only"]["speed_x_real_time_runs"]
    assert len(speeds) == 2 and speeds == sorted(speeds)
    assert result["avatar_only"]["speed_x_real_time"] in speeds
    assert (tmp_path / "sample_speed.md").is_file()


def test_translator_speed_benchmark_builds_the_configs_translator(tmp_path, one_thread):
    """benchmarks/translator_speed.py builds the translator the way training does (it
    broke when translator.model grew keys the model class does not take)."""
    translator_speed = benchmark("translator_speed")
    result = translator_speed.main(["--frames", "3", "--repeats", "1", "--batch", "2",
                                    "--threads", "1", "--out", str(tmp_path)])
    assert set(result["ms_per_sentence"]) == {"codes", "digits", "digits, 2 frames per step"}
    assert all(len(rows) == 5 and all(ms > 0 for ms in rows.values())
               for rows in result["ms_per_sentence"].values())
    assert (tmp_path / "translator_speed__tiny.md").is_file()


def test_reference_probe_draws_three_references_of_generated_and_true_frames(
        engine, tiny_overrides, tmp_path, one_thread):
    from PIL import Image

    reference_probe = benchmark("reference_probe")
    out = reference_probe.main(["--model", str(engine), "--frames", "0,2", "--steps", "1",
                                "--shift", "8", "--out", str(tmp_path / "probe.png"),
                                "--measure", *tiny_overrides])
    with Image.open(out) as picture:
        width, height = picture.size
    assert (width, height) == (64 * 5, 64 * 3)  # reference + 2 generated + 2 true, 3 rows
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["frames"] == [0, 2] and result["shift"] == 8
    assert all(0 <= result[f"pck_{row}"] <= 1 for row in ("aligned", "shifted", "other_pose"))
    assert np.isfinite(result["follow_ratio"])


def test_follow_ratio_is_the_share_of_the_shift_the_body_moved():
    follow_ratio = benchmark("reference_probe").follow_ratio
    aligned = np.random.default_rng(0).uniform(0, 60, (2, 133, 2))
    visible = np.ones((2, 133), bool)
    moved = aligned.copy()
    moved[:, :, 0] += 10
    assert follow_ratio(aligned, moved, visible, 10) == pytest.approx(1.0)
    assert follow_ratio(aligned, aligned, visible, 10) == pytest.approx(0.0)
    hands_only = aligned.copy()
    hands_only[:, 11:, 0] += 10  # only points outside the upper body moved
    assert follow_ratio(aligned, hands_only, visible, 10) == pytest.approx(0.0)
    assert np.isnan(follow_ratio(aligned, moved, np.zeros_like(visible), 10))
