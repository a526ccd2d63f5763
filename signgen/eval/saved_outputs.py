"""Score saved outputs: a system's outputs written once, re-scored by newer evaluators
without generating again, and anyone's own videos scored by the same evaluators.

``python -m signgen.eval score --system ... --save-outputs DIR`` writes, per sample,
``DIR/<sample_id>.npz`` (``video`` (T,H,W,3) uint8, and/or ``keypoints`` (T,133,2) float32
with ``visible`` (T,133) bool; ``frame_aligned`` and ``generate_seconds`` scalars:
lossless, so a re-score reads exactly what was scored) and ``DIR/outputs.json`` (the
system, split, its command and settings, and a stage-II system's token statistics,
which a re-score carries over).

``python -m signgen.eval score --system saved_outputs --outputs DIR --split S`` scores
them again under the system's own name. The folder may also hold the user's own videos
as ``<sample_id>.mp4`` (any frame rate and size the evaluators accept; not frame-aligned
with the ground truth, so no SSIM / PSNR / PCK unless ``outputs.json`` says
``"frame_aligned": true``); without ``outputs.json`` the rows are named
``external_videos``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from signgen.errors import SignGenError
from signgen.eval.score import GroundTruth, SystemOutput

OUTPUTS_INFO = "outputs.json"
EXTERNAL_NAME = "external_videos"


class OutputSaver:
    """Wraps a system: its outputs are scored as usual and also written to ``folder``."""

    def __init__(self, system, folder: str | Path, split: str, command: str,
                 tag: str | None = None) -> None:
        self.system, self.folder = system, Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = system.name
        self.saved = {"system": system.name, "split": split, "tag": tag, "command": command,
                      "system_info": getattr(system, "info", None)}
        self.record()

    def record(self, **extra) -> None:
        """Write ``outputs.json``, with ``extra`` entries (e.g. token statistics)."""
        self.saved.update(extra)
        (self.folder / OUTPUTS_INFO).write_text(json.dumps(self.saved, indent=2) + "\n")

    def __getattr__(self, name: str):  # info, token_stats, ... of the wrapped system
        return getattr(self.system, name)

    def generate(self, gt: GroundTruth) -> SystemOutput:
        start = time.perf_counter()
        out = self.system.generate(gt)
        seconds = time.perf_counter() - start
        arrays = {k: v for k, v in (("video", out.video), ("keypoints", out.keypoints),
                                    ("visible", out.visible)) if v is not None}
        path = self.folder / f"{gt.sample['sample_id']}.npz"
        tmp = path.with_name(f".tmp-{path.name}")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays, frame_aligned=np.bool_(out.frame_aligned),
                                generate_seconds=np.float64(seconds))
        tmp.replace(path)  # a killed run never leaves a half-written file
        return out


class SavedOutputsSystem:
    """Outputs read back from a folder (see the module doc)."""

    def __init__(self, folder: str | Path, split: str) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SignGenError(f"no outputs folder {self.folder}")
        info_path = self.folder / OUTPUTS_INFO
        self.saved = json.loads(info_path.read_text()) if info_path.is_file() else {}
        if self.saved.get("split", split) != split:
            raise SignGenError(f"{self.folder} holds outputs for {self.saved['split']}, "
                               f"not {split}")
        self.name = self.saved.get("system", EXTERNAL_NAME)
        self.tag = self.saved.get("tag")
        self.frame_aligned = bool(self.saved.get("frame_aligned", False))
        self.info = {"outputs": str(self.folder), **({"generated_by": self.saved}
                                                     if self.saved else {})}
        self.generate_seconds: list[float] = []

    def generate(self, gt: GroundTruth) -> SystemOutput:
        from signgen.data.synthsign.dataset import read_npz, read_video

        sample_id = gt.sample["sample_id"]
        saved = self.folder / f"{sample_id}.npz"
        if saved.is_file():
            with read_npz(saved) as a:
                if "generate_seconds" in a:
                    self.generate_seconds.append(float(a["generate_seconds"]))
                return SystemOutput(video=a.get("video"), keypoints=a.get("keypoints"),
                                    visible=a.get("visible"),
                                    frame_aligned=bool(a.get("frame_aligned", False)))
        video = self.folder / f"{sample_id}.mp4"
        if video.is_file():
            return SystemOutput(video=read_video(video), frame_aligned=self.frame_aligned)
        raise SignGenError(f"{self.folder} has no output for {sample_id} ({saved.name} or "
                           f"{video.name}); write them with score --save-outputs, or name "
                           f"your videos <sample_id>.mp4")
