"""Systems the suite scores: the ground truth, baselines, and (later) signgen's stages."""

from __future__ import annotations

from pathlib import Path

from signgen.eval.score import GroundTruth, SystemOutput


class GroundTruthSystem:
    """The SynthSign videos and keypoints themselves: the upper bound."""

    name = "ground_truth"

    def generate(self, gt: GroundTruth) -> SystemOutput:
        return SystemOutput(video=gt.video, keypoints=gt.keypoints, visible=gt.visible,
                            frame_aligned=True)


class LookupConcatSystem:
    """spoken-to-signed's gloss lookup + concatenation on the isolated-sign export.

    It produces keypoints only; videos need a renderer from keypoints, which signgen's
    video model provides (issue #5): until then video metrics are null for it."""

    name = "lookup_concat"

    def __init__(self, lexicon_dir: str | Path) -> None:
        from signgen.eval.lookup_baseline import LookupConcatBaseline

        self.baseline = LookupConcatBaseline(lexicon_dir)

    def generate(self, gt: GroundTruth) -> SystemOutput:
        keypoints, visible = self.baseline.keypoints(gt.sample["glosses"], gt.sample["language"])
        return SystemOutput(keypoints=keypoints, visible=visible)
