"""The dictionary-lookup + concatenation baseline: spoken-to-signed on SynthSign.

spoken-to-signed (sign-language-processing, MIT) is a real peer system from the field:
it looks each gloss up in a lexicon of isolated ``.pose`` files, trims, normalises and
smoothly concatenates them. signgen runs it unchanged on SynthSign's isolated-sign
export (``signgen.data.synthsign.lexicon_export``) and maps its MediaPipe-Holistic
output to COCO-WholeBody keypoints so the same evaluators score it.

Its output is in its own normalised coordinates (shoulder width 1); every
keypoint metric of the suite normalises by the shoulders first, so scores compare.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from signgen.data.synthsign.lexicon import FINGERSPELL_PREFIX
from signgen.errors import SignGenError

# MediaPipe pose landmark name -> COCO-WholeBody index (by name: spoken-to-signed keeps
# only some body points).
_POSE_TO_COCO = {
    "NOSE": 0, "LEFT_EYE": 1, "RIGHT_EYE": 2, "LEFT_EAR": 3, "RIGHT_EAR": 4,
    "LEFT_SHOULDER": 5, "RIGHT_SHOULDER": 6, "LEFT_ELBOW": 7, "RIGHT_ELBOW": 8,
    "LEFT_WRIST": 9, "RIGHT_WRIST": 10, "LEFT_HIP": 11, "RIGHT_HIP": 12, "LEFT_KNEE": 13,
    "RIGHT_KNEE": 14, "LEFT_ANKLE": 15, "RIGHT_ANKLE": 16, "LEFT_FOOT_INDEX": 17,
    "LEFT_HEEL": 19, "RIGHT_FOOT_INDEX": 20, "RIGHT_HEEL": 22,
}
# Hand landmarks share COCO-WholeBody's hand order (wrist, thumb .. pinky, base to tip).
_HAND_TO_COCO = {"LEFT_HAND_LANDMARKS": 91, "RIGHT_HAND_LANDMARKS": 112}


def _require_spoken_to_signed():
    try:
        from spoken_to_signed.gloss_to_pose import CSVPoseLookup, gloss_to_pose
    except ImportError as err:
        raise SignGenError("the lookup baseline needs spoken-to-signed: "
                           "pip install -e '.[dev]' (or pip install spoken-to-signed)") from err
    return CSVPoseLookup, gloss_to_pose


def holistic_to_coco(pose) -> tuple[np.ndarray, np.ndarray]:
    """A pose-format Pose with POSE/LEFT_HAND/RIGHT_HAND_LANDMARKS (any subset of the
    body points, matched by name) -> COCO-WholeBody keypoints (T,133,2) and visibility
    (T,133); face points are not mapped (invisible)."""
    header = pose.header
    data = np.ma.getdata(pose.body.data)[:, 0, :, :2]
    conf = pose.body.confidence[:, 0]
    frames = data.shape[0]
    keypoints = np.zeros((frames, 133, 2), np.float32)
    visible = np.zeros((frames, 133), bool)

    for component in header.components:
        if component.name == "POSE_LANDMARKS":
            targets = [_POSE_TO_COCO.get(name) for name in component.points]
        elif component.name in _HAND_TO_COCO:
            targets = [_HAND_TO_COCO[component.name] + i for i in range(len(component.points))]
        else:
            continue
        offset = header.get_point_index(component.name, component.points[0])
        for i, dst in enumerate(targets):
            if dst is not None:
                keypoints[:, dst] = data[:, offset + i]
                visible[:, dst] = conf[:, offset + i] > 0
    return keypoints, visible


class LookupConcatBaseline:
    """Glosses -> concatenated keypoints through spoken-to-signed's gloss_to_pose."""

    def __init__(self, lexicon_dir: str | Path) -> None:
        csv_lookup, self._gloss_to_pose = _require_spoken_to_signed()
        lexicon_dir = Path(lexicon_dir)
        if not (lexicon_dir / "index.csv").is_file():
            raise SignGenError(f"{lexicon_dir} has no index.csv; export the lexicon with "
                               f"python -m signgen.data.synthsign export-lexicon --out "
                               f"{lexicon_dir}")
        self._lookup = csv_lookup(str(lexicon_dir))

    def keypoints(self, glosses: list[str], language: str) -> tuple[np.ndarray, np.ndarray]:
        """(T,133,2) keypoints and (T,133) visibility for a gloss sequence.

        A fingerspelled word (``fs-ANNA``) is looked up letter by letter, as the
        lexicon export stores letters (``fs-A``)."""
        items = []
        for gloss in glosses:
            if gloss.startswith(FINGERSPELL_PREFIX):
                letters = gloss[len(FINGERSPELL_PREFIX):]
                items += [(f"{FINGERSPELL_PREFIX}{c}",) * 2 for c in letters]
            else:
                items.append((gloss, gloss))
        with contextlib.redirect_stdout(io.StringIO()):  # it prints every step
            result = self._gloss_to_pose(items, self._lookup, "en", language)
        return holistic_to_coco(result.pose)
