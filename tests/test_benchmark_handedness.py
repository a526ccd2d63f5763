"""benchmarks/handedness_split.py groups sentences by the signer's handedness."""

from types import SimpleNamespace

import numpy as np
import pytest
from test_benchmark_perf import benchmark


def test_sentences_are_scored_per_handedness_of_their_signer(monkeypatch):
    split = benchmark("handedness_split")
    samples = [{"signer_id": "s05", "glosses": ["A", "B"], "language": "ssl-a"},
               {"signer_id": "s00", "glosses": ["A"], "language": "ssl-a"},
               {"signer_id": "s01", "glosses": ["C", "D"], "language": "ssl-b"}]
    truths = [SimpleNamespace(sample=s, keypoints=np.zeros((n, 133, 2)))
              for s, n in zip(samples, (4, 5, 6), strict=True)]
    monkeypatch.setattr(split, "iter_ground_truth", lambda root, samples: iter(truths))
    # the "recogniser" reads what the system put in its keypoints' first value
    readings = {7: ["A", "B", "B"], 5: ["A"], 3: ["X", "D"]}
    monkeypatch.setattr(split, "recognise_poses", lambda recogniser, keypoints, visible,
                        languages: [readings[len(keypoints[0])]])

    class System:
        def generate(self, gt):
            n = {"s05": 7, "s00": 5, "s01": 3}[gt.sample["signer_id"]]
            return SimpleNamespace(keypoints=np.zeros((n, 133, 2)), visible=None)

    rows = split.split_by_handedness(System(), None, samples, SimpleNamespace(
        pose_recogniser=None), left={"s05"})
    assert rows["left"] == {"sentences": 1, "pose_bt_wer": pytest.approx(0.5),
                            "mean_length_difference": 3.0}
    assert rows["right"]["sentences"] == 2
    assert rows["right"]["pose_bt_wer"] == pytest.approx(1 / 3)  # 1 substitution, 3 glosses
    assert rows["right"]["mean_length_difference"] == pytest.approx(-1.5)  # 0 and -3
