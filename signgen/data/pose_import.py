"""Import MediaPipe Holistic or COCO-WholeBody ``.pose`` files (pose-format) as signgen
keypoints.

Real signing clips are usually shared as MediaPipe Holistic ``.pose`` files (what
pose-format's ``video_to_pose --format mediapipe`` and the spoken-to-signed lexicons
write): components POSE_LANDMARKS (33), FACE_LANDMARKS (468, or 478 with irises),
LEFT_HAND_LANDMARKS and RIGHT_HAND_LANDMARKS (21 each, the signer's own left/right),
in image pixels, any fps, and optionally POSE_WORLD_LANDMARKS (33): MediaPipe's metric
pose in camera axes (x right, y down, z away from the camera) with the hips' midpoint
as origin, which pose-format's ``load_holistic`` stores with x multiplied by the image
width and y by its height (it runs them through the image landmarks' scaling); they
are read back in metres (:attr:`ImportedPose.world`).  Pixel coordinates are taken as
they are, pixel centres at integers as signgen projects them; MediaPipe's (normalised
x times width) put them half a source pixel further right and down, which this
ignores.

The other layout read is one component, ``COCO_WHOLEBODY_133`` (:data:`COCO_COMPONENT`):
the 133 COCO-WholeBody points in order, named :data:`COCO_POINT_NAMES`, point format
XYC, image pixels, confidence = the estimator's score; what ``python -m
signgen.data.onnx_pose`` writes from a DWPose / RTMW model.  Its points are visible where
the score exceeds :data:`COCO_MIN_SCORE` (0.3) unless ``min_confidence`` says otherwise.
:func:`keypoints_to_imported_pose` frames such keypoints held in memory the same way.

:func:`import_pose` turns one into signgen's condition keypoints:

0. Optionally a span ``[start_s, end_s)`` of the file (:func:`frame_span`).
1. Holistic -> COCO-WholeBody-133 (see ``signgen.body.keypoints``; a COCO_WHOLEBODY_133
   file is taken point by point, by name): body and feet from
   the pose landmarks by joint name (the small toes have no MediaPipe point and are
   masked), hands from the hand components (same 21-point order), the ibug-68 face
   from the face mesh through :data:`MEDIAPIPE_FACE_TO_IBUG68`.  Points are looked up
   by name, so reduced files (pose-format's ``reduce_holistic``) import too, with the
   points they dropped masked.
2. Resampling to a target fps (:func:`resample`).
3. One similarity transform per clip (:class:`FrameTransform`, kept in the result so
   that the clip's video can be warped the same way) into a ``(height, width)`` pixel
   frame framed as SynthSign frames its signer (:func:`normalise_keypoints`).

:func:`pose_maps` then draws the DWPose-style condition images with SynthSign's own
``draw_pose_map``.  Only the first person of a multi-person file is read.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pose_format import Pose

from signgen.body.keypoints import COCO_WHOLEBODY_NAMES, MEDIAPIPE_POSE_NAMES
from signgen.data.synthsign.conditions import NUM_KEYPOINTS, draw_pose_map
from signgen.data.synthsign.lexicon_export import MEDIAPIPE_HAND_POINTS, MEDIAPIPE_POSE_POINTS
from signgen.errors import InvalidInputError

POSE_COMPONENT = "POSE_LANDMARKS"
WORLD_COMPONENT = "POSE_WORLD_LANDMARKS"
FACE_COMPONENT = "FACE_LANDMARKS"
LEFT_HAND_COMPONENT = "LEFT_HAND_LANDMARKS"
RIGHT_HAND_COMPONENT = "RIGHT_HAND_LANDMARKS"
COCO_COMPONENT = "COCO_WHOLEBODY_133"
#: Visibility threshold of COCO_WHOLEBODY_133 scores: DWPose's drawing code (ControlNet's
#: DWPose annotator) treats a SimCC score above 0.3 as a detected keypoint.
COCO_MIN_SCORE = 0.3

# MediaPipe face-mesh indices averaged into each ibug-68 landmark (ibug order: 17 jaw
# points from the signer's right ear to the left, right brow, left brow, nose bridge,
# nostrils, right eye, left eye, outer lips, inner lips).  Index table from
# github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks (mp2dlib.py, 2024), with one change:
# it maps jaw point 13 to mesh point 361 alone although its mirror, jaw point 3, averages
# 132 and 58; we average 361 and 288 (the mirrors of 132 and 58) so the table is
# left-right symmetric.  Checked against pose-format's FLIPPED_FACE_POINTS (the mesh's
# mirror permutation): every row's mirror is the mirrored landmark's row.  All indices are
# < 468, so the 468- and 478-point meshes both work.
MEDIAPIPE_FACE_TO_IBUG68: tuple[tuple[int, ...], ...] = (
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,), (400,),
    (379,), (365,), (397, 288), (361, 288), (323,), (454,), (356,),     # jaw
    (70,), (63,), (105,), (66,), (107,),                                # right brow
    (336,), (296,), (334,), (293,), (300,),                             # left brow
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),  # nose
    (33,), (160,), (158,), (133,), (153,), (144,),                      # right eye
    (362,), (385,), (387,), (263,), (373,), (380,),                     # left eye
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,),
    (91,),                                                              # outer lips
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),          # inner lips
)
assert len(MEDIAPIPE_FACE_TO_IBUG68) == 68

# SynthSign's framing, measured on the 2,000 samples of data/synthsign (128x128, 12 fps):
# the median over samples of each clip's median shoulder width is 44.57 px (5-95 %:
# 38.8-50.5 px) = 0.348 of the width, the shoulder midpoint is at x = 63.50 px (the
# centre: 0.5 of the width) and y = 57.92 px = 0.456 of the height (fractions with
# pixel k spanning [k, k + 1) / 128).  SynthSign fits its camera to the tighter of width
# and height, so for other aspect ratios these fractions are an approximation.
DEFAULT_SHOULDER_WIDTH = 0.348
DEFAULT_SHOULDER_CENTRE = (0.5, 0.456)

_BODY_SLOTS = 23  # COCO body (17) + feet (6)
_LEFT_HAND_START = 91  # then 21 left-hand and 21 right-hand points
_LEFT_SHOULDER, _RIGHT_SHOULDER = 5, 6
# What pose-format's parser raises on truncated or corrupt bytes (struct.error and
# TypeError in fuzzing with real files; the others for headers decoding to nonsense).
_PARSE_ERRORS = (struct.error, ValueError, TypeError, EOFError, IndexError,
                 UnicodeDecodeError, OverflowError, MemoryError)


@dataclass(frozen=True)
class FrameTransform:
    """The similarity transform (uniform scale and shift, no rotation) that frames a clip:
    ``out = (p - source) * scale + target`` for pixel coordinates ``p`` (column, row) of
    the file, pixel centres at integers on both sides."""

    scale: float
    source: tuple[float, float]
    target: tuple[float, float]

    def apply(self, points) -> np.ndarray:
        """(...,2) file pixels -> (...,2) float64 output pixels."""
        return (np.asarray(points, np.float64) - self.source) * self.scale + self.target


@dataclass(frozen=True)
class ImportedPose:
    """One imported clip.

    keypoints: (T,133,2) float32 pixel coordinates (column, row) in a ``size`` frame,
        (0, 0) the centre of the top-left pixel, as ``project_keypoints`` gives them;
        meaningless where not visible.
    visible: (T,133) bool, False for masked, zero-confidence or missing points and for
        points outside the frame.
    fps: frames per second of ``keypoints``.
    size: (height, width) of the pixel frame.
    hands_3d: (T,2,21,3) float32 (left, right hand), x and y as in ``keypoints``, z the
        file's depth (MediaPipe: relative, in image-width units) times the same scale;
        visibility is ``visible[:, 91:133]``; None when the file has no z.
    transform: the file-pixels -> ``size`` frame transform the keypoints got.
    source_fps: the file's frame rate.
    source_frames: the file's number of frames; source_span: (first, stop) indices of
        the file's frames that were imported.
    world: (T,133,3) float32 metres in camera axes (x right, y down, z away from the
        camera), origin the hips' midpoint: POSE_WORLD_LANDMARKS in the COCO body and
        feet slots (0..22; the rest are never visible); None when the file has none.
    world_visible: (T,133) bool, where ``world`` is given (unmasked, confident, finite).
    """

    keypoints: np.ndarray
    visible: np.ndarray
    fps: float
    size: tuple[int, int]
    hands_3d: np.ndarray | None = None
    transform: FrameTransform | None = None
    source_fps: float | None = None
    source_frames: int | None = None
    source_span: tuple[int, int] | None = None
    world: np.ndarray | None = None
    world_visible: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)


def _slot_sources() -> list[tuple[str, tuple[str, ...]]]:
    """For each of the 133 COCO slots: (component, point names averaged); () = none."""
    mediapipe_point = dict(zip(MEDIAPIPE_POSE_NAMES, MEDIAPIPE_POSE_POINTS, strict=True))
    slots = []
    for name in COCO_WHOLEBODY_NAMES[:_BODY_SLOTS]:
        point = mediapipe_point.get(name)
        slots.append((POSE_COMPONENT, (point,) if point else ()))
    slots += [(FACE_COMPONENT, tuple(str(i) for i in row)) for row in MEDIAPIPE_FACE_TO_IBUG68]
    slots += [(LEFT_HAND_COMPONENT, (p,)) for p in MEDIAPIPE_HAND_POINTS]
    slots += [(RIGHT_HAND_COMPONENT, (p,)) for p in MEDIAPIPE_HAND_POINTS]
    assert len(slots) == NUM_KEYPOINTS
    return slots


_SLOTS = _slot_sources()
# Point names of the COCO_WHOLEBODY_133 component: COCO_WHOLEBODY_NAMES, except that the
# hand roots, which it calls left_wrist / right_wrist like the body's wrists (9, 10), get
# mmpose's coco_wholebody names: points are looked up by name, so names must be unique.
COCO_POINT_NAMES: tuple[str, ...] = tuple(
    {91: "left_hand_root", 112: "right_hand_root"}.get(i, name)
    for i, name in enumerate(COCO_WHOLEBODY_NAMES))
assert len(set(COCO_POINT_NAMES)) == NUM_KEYPOINTS
_COCO_SLOTS = [(COCO_COMPONENT, (name,)) for name in COCO_POINT_NAMES]


def read_pose_file(path: str | os.PathLike) -> Pose:
    """Read a ``.pose`` file; InvalidInputError (naming the file) if it is missing,
    empty or not readable by pose-format."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such .pose file")
    data = path.read_bytes()
    if not data:
        raise InvalidInputError(f"{path}: empty file, not a .pose file")
    try:
        return Pose.read(data)
    except _PARSE_ERRORS as err:  # pose-format's parser reports truncation this way
        raise InvalidInputError(f"{path}: not a readable .pose file (truncated or corrupt: "
                                f"{type(err).__name__}: {str(err)[:120]})") from err


def _layout(pose: Pose, name: str) -> tuple[list, float]:
    """(the 133 slots' sources, the default min_confidence) of a Holistic or
    COCO_WHOLEBODY_133 Pose; InvalidInputError for another layout."""
    components = [c.name for c in pose.header.components]
    if COCO_COMPONENT in components:
        return _COCO_SLOTS, COCO_MIN_SCORE
    if POSE_COMPONENT not in components:
        raise InvalidInputError(f"{name}: not a MediaPipe Holistic or {COCO_COMPONENT} pose "
                                f"(components {components}; expected {POSE_COMPONENT}, "
                                f"{LEFT_HAND_COMPONENT}, {RIGHT_HAND_COMPONENT}, or "
                                f"{COCO_COMPONENT})")
    missing = [c for c in (LEFT_HAND_COMPONENT, RIGHT_HAND_COMPONENT) if c not in components]
    if missing:
        raise InvalidInputError(f"{name}: no hand component {missing} (components "
                                f"{components}); signing needs both hands' landmarks")
    return _SLOTS, 0.0


def _file_points(pose: Pose, name: str, min_confidence: float):
    """Person 0 of a Pose: points (T,P,D) float64, ok (T,P) bool and
    {component: {point name: column}}; InvalidInputError for malformed data."""
    data = np.ma.getdata(pose.body.data)
    if data.ndim != 4 or data.shape[-1] < 2:
        raise InvalidInputError(f"{name}: body data of shape {data.shape}, expected "
                                f"(frames, people, points, >=2)")
    if data.shape[0] == 0:
        raise InvalidInputError(f"{name}: the file has zero frames")
    if data.shape[1] == 0:
        raise InvalidInputError(f"{name}: the file has no person")
    offsets, start = {}, 0
    for component in pose.header.components:
        offsets.setdefault(component.name, {p: start + i for i, p in enumerate(component.points)})
        start += len(component.points)
    if start != data.shape[2]:
        raise InvalidInputError(f"{name}: header lists {start} points but the body has "
                                f"{data.shape[2]}")
    points = data[:, 0].astype(np.float64)
    confidence = np.asarray(pose.body.confidence)[:, 0]
    ok = ((confidence > min_confidence) & ~np.ma.getmaskarray(pose.body.data)[:, 0].any(-1)
          & np.isfinite(points).all(-1))
    return points, ok, offsets


def _gather(points: np.ndarray, ok: np.ndarray, offsets: dict,
            slots: list[tuple[str, tuple[str, ...]]]) -> tuple[np.ndarray, np.ndarray]:
    """Slot coordinates (T,133,D) (the mean of the slot's source points, 0 where not
    visible) and visibility (T,133) (all sources visible)."""
    # Every slot averages two source points (a single source is used twice); the
    # dummy index points at a never-visible extra column.
    dummy = points.shape[1]
    points = np.concatenate([points, np.zeros_like(points[:, :1])], axis=1)
    ok = np.concatenate([ok, np.zeros_like(ok[:, :1])], axis=1)
    sources = np.full((NUM_KEYPOINTS, 2), dummy)
    for slot, (component, names) in enumerate(slots):
        lookup = offsets.get(component, {})
        if names and all(n in lookup for n in names):
            sources[slot] = [lookup[names[0]], lookup[names[-1]]]
    coords = points[:, sources].mean(axis=2)  # (T,133,D)
    visible = ok[:, sources].all(axis=2)
    return np.where(visible[..., None], coords, 0.0), visible


def pose_to_coco(pose: Pose, name: str = "pose",
                 min_confidence: float | None = None) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray | None]:
    """A Holistic- or COCO_WHOLEBODY_133-layout Pose -> COCO-WholeBody keypoints in the
    file's pixels.

    A point is visible where it is unmasked, finite and its confidence exceeds
    ``min_confidence`` (None: 0 for Holistic, :data:`COCO_MIN_SCORE` for
    COCO_WHOLEBODY_133); a slot averaging two mesh points needs both.
    Returns:
        keypoints: (T,133,2) float64 file pixels; visible: (T,133) bool;
        hands_3d: (T,2,21,3) float64 (x, y, z) or None when the points have no z.
    Raises InvalidInputError (naming ``name``) for another layout, no hand components,
    no frames or no person.
    """
    slots, default = _layout(pose, name)
    min_confidence = default if min_confidence is None else min_confidence
    points, ok, offsets = _file_points(pose, name, min_confidence)
    coords, visible = _gather(points, ok, offsets, slots)
    hands = coords[:, _LEFT_HAND_START:].reshape(len(coords), 2, 21, -1)
    hands_3d = hands[..., :3] if coords.shape[-1] >= 3 else None
    return coords[..., :2], visible, hands_3d


def world_to_coco(pose: Pose, name: str = "pose",
                  min_confidence: float | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """POSE_WORLD_LANDMARKS of a Holistic Pose in the COCO body and feet slots.

    Undoes pose-format's scaling (x times the header's width, y times its height).
    Returns world (T,133,3) float64 metres and visible (T,133) bool (only slots 0..22
    can be visible), or None when the file has no world landmarks (or no z).
    """
    _, default = _layout(pose, name)
    min_confidence = default if min_confidence is None else min_confidence
    points, ok, offsets = _file_points(pose, name, min_confidence)
    if WORLD_COMPONENT not in offsets or points.shape[-1] < 3:
        return None
    dims = pose.header.dimensions
    if not (dims.width > 0 and dims.height > 0):
        raise InvalidInputError(f"{name}: header size {dims.width}x{dims.height} cannot "
                                f"scale the world landmarks back to metres")
    slots = [(WORLD_COMPONENT, names) for _, names in _SLOTS[:_BODY_SLOTS]]
    slots += [("", ())] * (NUM_KEYPOINTS - _BODY_SLOTS)
    world, visible = _gather(points[..., :3], ok, offsets, slots)
    return world / np.array([dims.width, dims.height, 1.0]), visible


def frame_span(num_frames: int, fps: float, start_s: float = 0.0,
               end_s: float | None = None) -> tuple[int, int]:
    """(first, stop) frame indices of the span [start_s, end_s) seconds of a clip of
    ``num_frames`` frames at ``fps`` (frame k shows time k / fps; end None = the end);
    InvalidInputError when the span holds no frame."""
    first = max(0, math.ceil(start_s * fps - 1e-6))
    stop = num_frames if end_s is None else min(num_frames, math.ceil(end_s * fps - 1e-6))
    if stop <= first:
        raise InvalidInputError(f"the span [{start_s}, {end_s}) s holds no frame of a "
                                f"{num_frames}-frame clip at {fps} fps")
    return first, stop


def _resample_grid(frames: int, src_fps: float, dst_fps: float):
    """Output frame times in input frames: lower and upper neighbours (T',) and the
    weight of the upper one (T',)."""
    count = math.floor((frames - 1) * dst_fps / src_fps + 1e-9) + 1
    t = np.arange(count) * (src_fps / dst_fps)  # in input frames
    lo = np.minimum(np.floor(t + 1e-9).astype(np.int64), frames - 1)
    hi = np.minimum(lo + 1, frames - 1)
    return lo, hi, np.clip(t - lo, 0.0, 1.0)


def nearest_frames(frames: int, src_fps: float, dst_fps: float) -> np.ndarray:
    """(T',) int64: for each frame :func:`resample` outputs, the nearest input frame in
    time (what it takes the visibility from), for resampling video frames alike."""
    lo, hi, w = _resample_grid(frames, src_fps, dst_fps)
    return np.where(w >= 0.5, hi, lo)


def resample(points: np.ndarray, visible: np.ndarray, src_fps: float,
              dst_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample a clip in time.

    Output frame k is at time k / dst_fps, for every such time within the input's
    span [0, (T-1) / src_fps]: T' = floor((T-1) * dst_fps / src_fps) + 1 frames (one
    frame stays one frame).  Points are interpolated linearly between the two
    neighbouring input frames where both are visible, else copied from the nearest one;
    visibility is the nearest frame's.
    Args:
        points: (T,...,D) float; visible: (T,...) bool.
    Returns:
        (T',...,D) float64 and (T',...) bool.
    """
    points = np.asarray(points, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    if points.shape[:-1] != visible.shape or len(points) == 0:
        raise InvalidInputError(f"points {points.shape} and visible {visible.shape} must "
                                f"be (T,...,D) and (T,...) with T >= 1")
    for label, fps in (("src_fps", src_fps), ("dst_fps", dst_fps)):
        if not (math.isfinite(fps) and fps > 0):
            raise InvalidInputError(f"{label} must be a positive number, got {fps!r}")
    lo, hi, w = _resample_grid(len(points), src_fps, dst_fps)
    nearest = np.where(w >= 0.5, hi, lo)
    shape = (len(lo),) + (1,) * (points.ndim - 1)
    blend = (1 - w.reshape(shape)) * points[lo] + w.reshape(shape) * points[hi]
    both = (visible[lo] & visible[hi])[..., None]
    return np.where(both, blend, points[nearest]), visible[nearest]


def _frame_transform(keypoints: np.ndarray, visible: np.ndarray, size: tuple[int, int],
                     shoulder_width: float, shoulder_centre: tuple[float, float],
                     name: str) -> FrameTransform:
    """The clip's similarity transform (see :func:`normalise_keypoints`)."""
    both = visible[:, _LEFT_SHOULDER] & visible[:, _RIGHT_SHOULDER]
    if not both.any():
        raise InvalidInputError(f"{name}: no frame shows both shoulders, cannot frame "
                                f"the signer")
    left, right = keypoints[both, _LEFT_SHOULDER], keypoints[both, _RIGHT_SHOULDER]
    width = float(np.median(np.linalg.norm(left - right, axis=-1)))
    if not width > 0:
        raise InvalidInputError(f"{name}: the shoulders coincide, cannot frame the signer")
    height_px, width_px = size
    source = np.median(0.5 * (left + right), axis=0)
    target = np.array([shoulder_centre[0] * width_px - 0.5,
                       shoulder_centre[1] * height_px - 0.5])
    return FrameTransform(scale=shoulder_width * width_px / width,
                          source=(float(source[0]), float(source[1])),
                          target=(float(target[0]), float(target[1])))


def _check_frame(size, shoulder_width: float, shoulder_centre) -> tuple[int, int]:
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0
                   for v in size)):
        raise InvalidInputError(f"size must be (height, width) positive integers, got {size!r}")
    if not (math.isfinite(shoulder_width) and shoulder_width > 0):
        raise InvalidInputError(f"shoulder_width must be a positive fraction, got "
                                f"{shoulder_width!r}")
    if len(shoulder_centre) != 2 or not np.isfinite(shoulder_centre).all():
        raise InvalidInputError(f"shoulder_centre must be (x, y) fractions, got "
                                f"{shoulder_centre!r}")
    return int(size[0]), int(size[1])


def normalise_keypoints(keypoints, visible, size: tuple[int, int] = (128, 128),
                        shoulder_width: float = DEFAULT_SHOULDER_WIDTH,
                        shoulder_centre: tuple[float, float] = DEFAULT_SHOULDER_CENTRE,
                        name: str = "keypoints") -> tuple[np.ndarray, np.ndarray]:
    """Move a clip into a ``size`` pixel frame framed like SynthSign.

    One similarity transform (no rotation) for the whole clip, so the signer's own
    motion is kept: the median over frames of the shoulder midpoint goes to
    ``shoulder_centre`` (fractions of width, height) and the median shoulder width
    becomes ``shoulder_width`` times the width.
    Args:
        keypoints: (T,133,2) pixels in any frame; visible: (T,133) bool.
    Returns:
        keypoints (T,133,2) float32 in ``size`` pixels (pixel centres at integers) and
        visible (T,133) bool, now also False outside the frame.
    Raises InvalidInputError if no frame shows both shoulders.
    """
    height, width = _check_frame(size, shoulder_width, shoulder_centre)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 2):
        raise InvalidInputError(f"keypoints must have shape (T, {NUM_KEYPOINTS}, 2), got "
                                f"{keypoints.shape}")
    if visible.shape != keypoints.shape[:2]:
        raise InvalidInputError(f"visible must have shape {keypoints.shape[:2]}, got "
                                f"{visible.shape}")
    keypoints, visible, _ = _normalise(keypoints, visible, (height, width), shoulder_width,
                                       shoulder_centre, name)
    return keypoints, visible


def _normalise(keypoints: np.ndarray, visible: np.ndarray, size: tuple[int, int],
               shoulder_width: float, shoulder_centre: tuple[float, float],
               name: str) -> tuple[np.ndarray, np.ndarray, FrameTransform]:
    """:func:`normalise_keypoints` on checked arrays, also returning its transform."""
    height, width = size
    transform = _frame_transform(keypoints, visible, size, shoulder_width, shoulder_centre,
                                 name)
    out = transform.apply(keypoints)
    inside = ((out[..., 0] >= -0.5) & (out[..., 0] < width - 0.5)
              & (out[..., 1] >= -0.5) & (out[..., 1] < height - 0.5))
    visible = visible & inside
    return np.where(visible[..., None], out, 0.0).astype(np.float32), visible, transform


def _check_fps(fps, label: str = "fps", optional: bool = False) -> None:
    if (isinstance(fps, bool) or not isinstance(fps, (int, float, np.number))
            or not math.isfinite(fps) or fps <= 0):
        raise InvalidInputError(f"{label} must be a positive number{' or None' * optional}, "
                                f"got {fps!r}")


def import_pose(path: str | os.PathLike, size: tuple[int, int] = (128, 128),
                fps: float | None = None, shoulder_width: float = DEFAULT_SHOULDER_WIDTH,
                shoulder_centre: tuple[float, float] = DEFAULT_SHOULDER_CENTRE,
                min_confidence: float | None = None, start_s: float = 0.0,
                end_s: float | None = None) -> ImportedPose:
    """Read a MediaPipe Holistic or COCO_WHOLEBODY_133 ``.pose`` file as COCO-WholeBody
    keypoints.

    Args:
        path: the ``.pose`` file.
        size: (height, width) of the output pixel frame.
        fps: output frame rate (None keeps the file's).
        shoulder_width, shoulder_centre: framing, see :func:`normalise_keypoints`.
        min_confidence: points at or below this confidence are masked (None: 0 for
            Holistic files, :data:`COCO_MIN_SCORE` for COCO_WHOLEBODY_133 files).
        start_s, end_s: import only the span [start_s, end_s) seconds of the file
            (:func:`frame_span`; end None = to the end); framed on that span alone.
    Raises InvalidInputError, naming the file, for an unreadable, empty or truncated
    file, zero frames, an empty span, another layout (e.g. OpenPose), no hand
    components, nothing visible, or no frame with both shoulders.  Hands missing in
    some or all frames are only masked.
    """
    size = _check_frame(size, shoulder_width, shoulder_centre)
    if fps is not None:
        _check_fps(fps, optional=True)
    name = str(path)
    pose = read_pose_file(path)
    src_fps = float(pose.body.fps)
    if not (math.isfinite(src_fps) and src_fps > 0):
        raise InvalidInputError(f"{name}: invalid fps {pose.body.fps!r} in the file")
    keypoints, visible, hands_3d = pose_to_coco(pose, name, min_confidence)
    world = world_to_coco(pose, name, min_confidence)
    return _assemble(name, keypoints, visible, src_fps, size, fps, shoulder_width,
                     shoulder_centre, start_s, end_s, hands_3d, world)


def keypoints_to_imported_pose(keypoints, scores, fps: float,
                               size: tuple[int, int] = (128, 128),
                               out_fps: float | None = None,
                               threshold: float = COCO_MIN_SCORE,
                               shoulder_width: float = DEFAULT_SHOULDER_WIDTH,
                               shoulder_centre: tuple[float, float] = DEFAULT_SHOULDER_CENTRE,
                               name: str = "keypoints") -> ImportedPose:
    """COCO-WholeBody keypoints of a video (e.g. ``WholeBodyPoseEstimator``'s output) ->
    an :class:`ImportedPose`, exactly as :func:`import_pose` frames the ``.pose`` file
    ``signgen.data.onnx_pose`` writes of them.

    Args:
        keypoints: (T,133,2) pixels (column, row) of the video, pixel centres at integers.
        scores: (T,133) float; a point is visible where its score exceeds ``threshold``
            (NaN never) and its coordinates are finite.
        fps: the video's frame rate; out_fps: resample to this rate (None keeps fps).
        size, shoulder_width, shoulder_centre: the output frame, see :func:`import_pose`.
    Raises InvalidInputError for bad shapes or values, nothing visible, or no frame with
    both shoulders.
    """
    size = _check_frame(size, shoulder_width, shoulder_centre)
    _check_fps(fps)
    if out_fps is not None:
        _check_fps(out_fps, "out_fps", optional=True)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 2) or not len(keypoints):
        raise InvalidInputError(f"{name}: keypoints must have shape (T, {NUM_KEYPOINTS}, 2) "
                                f"with T >= 1, got {keypoints.shape}")
    if scores.shape != keypoints.shape[:2]:
        raise InvalidInputError(f"{name}: scores must have shape {keypoints.shape[:2]}, got "
                                f"{scores.shape}")
    visible = (scores > threshold) & np.isfinite(keypoints).all(-1)
    keypoints = np.where(visible[..., None], keypoints, 0.0)
    return _assemble(name, keypoints, visible, float(fps), size, out_fps, shoulder_width,
                     shoulder_centre, 0.0, None, None, None)


def _assemble(name: str, keypoints: np.ndarray, visible: np.ndarray, src_fps: float,
              size: tuple[int, int], fps: float | None, shoulder_width: float,
              shoulder_centre: tuple[float, float], start_s: float, end_s: float | None,
              hands_3d: np.ndarray | None,
              world: tuple[np.ndarray, np.ndarray] | None) -> ImportedPose:
    """Span, resampling and framing of a clip's COCO keypoints (T,133,2) in source
    pixels (see :func:`import_pose`)."""
    source_frames = len(keypoints)
    try:
        span = frame_span(len(keypoints), src_fps, start_s, end_s)
    except InvalidInputError as err:
        raise InvalidInputError(f"{name}: {err}") from None
    cut = slice(*span)
    keypoints, visible = keypoints[cut], visible[cut]
    hands_3d = None if hands_3d is None else hands_3d[cut]
    world = None if world is None else (world[0][cut], world[1][cut])
    if not visible.any():
        raise InvalidInputError(f"{name}: no visible landmark in any frame (all confidences "
                                f"are at or below the threshold, or masked)")
    out_fps = src_fps if fps is None else float(fps)
    if out_fps != src_fps:
        if hands_3d is not None:
            hands_vis = visible[:, _LEFT_HAND_START:].reshape(-1, 2, 21)
            hands_3d, _ = resample(hands_3d, hands_vis, src_fps, out_fps)
        if world is not None:
            world = resample(*world, src_fps, out_fps)
        keypoints, visible = resample(keypoints, visible, src_fps, out_fps)
    keypoints, visible, transform = _normalise(
        keypoints, visible, size, shoulder_width, shoulder_centre, name)
    if hands_3d is not None:
        hands_3d = hands_3d.copy()
        hands_3d[..., :2] = transform.apply(hands_3d[..., :2])
        hands_3d[..., 2] *= transform.scale
        hands_vis = visible[:, _LEFT_HAND_START:].reshape(-1, 2, 21, 1)
        hands_3d = np.where(hands_vis, hands_3d, 0.0).astype(np.float32)
    world_points = world_visible = None
    if world is not None:
        world_points = np.where(world[1][..., None], world[0], 0.0).astype(np.float32)
        world_visible = world[1]
    return ImportedPose(keypoints=keypoints, visible=visible, fps=out_fps, size=size,
                        hands_3d=hands_3d, transform=transform, source_fps=src_fps,
                        source_frames=source_frames, source_span=span, world=world_points,
                        world_visible=world_visible)


def pose_maps(pose: ImportedPose) -> np.ndarray:
    """(T,H,W,3) uint8 DWPose-style pose maps of an imported clip (SynthSign's
    ``draw_pose_map``: the same condition stream the video model trains on)."""
    return draw_pose_map(pose.keypoints, pose.visible, *pose.size)
