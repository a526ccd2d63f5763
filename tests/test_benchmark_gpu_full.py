"""The GPU benchmark scripts run end to end (tiny models on the CPU, ``--smoke``), so
that it still works when a GPU is at hand. Its timings are not checked here."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_full():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_full
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return gpu_full


def test_smoke_run_writes_json_and_table(gpu_full, tmp_path):
    gpu_full.main(["--smoke", "--skip-training", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "gpu_full.json").read_text())
    assert [r["setting"] for r in result["inference"]][:2] == ["motion 8 steps",
                                                                "motion 4 steps"]
    assert all(r["ms_per_frame"] > 0 and r["frames"] == 12 for r in result["inference"])
    assert result["training"] == []
    table = (tmp_path / "gpu_full.md").read_text()
    assert "| motion 20 steps + CFG | True | 20 | 2.0 | 8/2 | float32 |" in table


def test_without_a_gpu_it_asks_for_smoke(gpu_full, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit):
        gpu_full.main(["--out", str(tmp_path)])


def test_stages_smoke_run_writes_json_and_table(tmp_path):
    """``benchmarks/gpu_stages.py``: the full configs' FSQ and translator steps, tiny."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_stages
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    gpu_stages.main(["--smoke", "--config", "configs/full/phoenix14t.yaml", "--out",
                     str(tmp_path)])
    result = json.loads((tmp_path / "gpu_stages.json").read_text())
    (config,) = result["configs"]
    assert config["fsq"]["codebook_size"] == 8 * 5 * 5 * 5  # the config's levels
    assert config["fsq"]["training"]["seconds_per_step"] > 0
    assert [r["frames"] for r in config["translator"]["training"]] == [8, 24]
    assert all(r["loss"] > 0 for r in config["translator"]["training"])
    assert [r["batch"] for r in config["translator"]["decoding"]] == [1, 1, 16]
    assert "| FSQ training step | 2 | 1 | no |" in (tmp_path / "gpu_stages.md").read_text()
