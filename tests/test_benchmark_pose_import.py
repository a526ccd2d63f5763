"""The .pose import benchmark runs the preprocessing path end to end on a short file made
from the tiny dataset; its timings are not checked here."""

import json

from test_benchmark_perf import benchmark


def test_pose_import_benchmark_writes_json_and_table(tiny_data_root, tiny_overrides, tmp_path,
                                                     one_thread):
    pose_import_speed = benchmark("pose_import_speed")
    size = [o for o in tiny_overrides if o.startswith(("render.", "data.fps"))]
    result = pose_import_speed.main([
        "--root", str(tiny_data_root / "synthsign"), "--split", "train", "--frames", "20",
        "--fps", "25", "--repeats", "1", "--out", str(tmp_path), *size])
    saved = json.loads((tmp_path / "pose_import_speed.json").read_text())
    assert saved["conditions_seconds"] == result["conditions_seconds"] > 0
    assert set(saved["seconds"]) == {"import", "fit", "render", "video"}
    assert saved["pose_file"]["frames"] == 20 and saved["pose_file"]["world_landmarks"]
    assert saved["sample"]["frames"] >= 1 and len(saved["runs"]) == 1
    assert "| import s |" in (tmp_path / "pose_import_speed.md").read_text()
