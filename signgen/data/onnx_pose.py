"""Whole-body keypoints of your own videos with DWPose / RTMW ONNX models (issue #9).

    python -m signgen.data.onnx_pose --model dw-ll_ucoco_384.onnx --video IN.mp4
        --out POSES_DIR/<sample_id>.pose [--box X1 Y1 X2 Y2] [--batch-size 8]
        [--threads N] [--providers CPUExecutionProvider]

An alternative to MediaPipe Holistic for ``signgen.data.preprocess``: the ``.pose`` file
has one component, ``COCO_WHOLEBODY_133`` (``pose_import.COCO_COMPONENT``: the 133 points
in order, named ``pose_import.COCO_POINT_NAMES``, XYC, video pixels, confidence = the model's score,
one frame per video frame), which ``pose_import.import_pose`` reads (visible where the
score exceeds 0.3).  Needs ``pip install 'signgen[onnx]'`` (onnxruntime).

Models: RTMPose-family top-down whole-body ONNX exports with SimCC heads, e.g. DWPose's
``dw-ll_ucoco_384.onnx`` (384x288 input) or an RTMW export (mmpose / rtmlib).  They are
read from the local path given and never downloaded.  Contract: one input
(N,3,H,W) float32, N fixed or dynamic; outputs ``simcc_x`` (N,133,W*r) and ``simcc_y``
(N,133,H*r) (by name, else the two outputs in that order), r the SimCC split ratio
(2.0 in DWPose and RTMW; derived here from the output lengths).

Keypoint order: the models' 133 outputs are mmpose's ``coco_wholebody`` dataset order
(configs/_base_/datasets/coco_wholebody.py, which RTMW's and DWPose's configs train on):
17 COCO body, 6 feet (left big toe, small toe, heel, then right), ``face-0..67`` (300W /
ibug-68 order, jaw first), then left and right hand (root, thumb1-4, forefinger1-4,
middle, ring, pinky; base to tip).  That is signgen's ``COCO_WHOLEBODY_NAMES`` slot for
slot; "left" is the person's own left in both (COCO annotates the person's side).

Processing (mmpose's ``TopdownAffine`` and ``SimCCLabel`` decoding as DWPose's ONNX demo
``onnxpose.py`` and rtmlib do it; written anew here without OpenCV):

1. box (x1, y1, x2, y2) in pixels, default the whole frame (0, 0, W, H): centre c its
   midpoint, size its width and height times 1.25, then widened or heightened to the
   model's aspect W/H.  Input pixel q shows frame point p with
   ``q = (p - c) * s + (W/2, H/2)``, s = W / size, pixel centres at integers on both
   sides (cv2.warpAffine's convention), bilinear, black outside the frame.
2. (x - mean) / std per RGB channel, mean (123.675, 116.28, 103.53), std (58.395, 57.12,
   57.375): mmpose trains these models with ``bgr_to_rgb=True`` and these RGB
   statistics, so frames are taken as RGB.  NCHW float32.
3. per keypoint the first argmax bin of simcc_x and of simcc_y, divided by r -> q, then
   ``p = (q - (W/2, H/2)) / s + c``.  score: the smaller of the two maxima (mmpose's
   ``get_simcc_maximum``, DWPose's ``onnxpose.py``); newer rtmlib releases average them
   instead (``score="mean"``).  Scores are raw SimCC logits, not probabilities.  Unlike
   the reference code, a point with score <= 0 keeps its argmax location (the reference
   sets it to -1); its score says it is not detected.

Not done: a person detector (give boxes when the signer fills little of the frame) and
mmpose's flip test (its evaluation averages the flipped image's SimCC; the ONNX demos
do not).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from signgen.errors import DataError, InvalidInputError, ModelLoadError, SignGenError

NUM_KEYPOINTS = 133  # COCO-WholeBody, signgen's layout (kept import-light: no torch here)
SIMCC_OUTPUTS = ("simcc_x", "simcc_y")
MEAN = (123.675, 116.28, 103.53)  # RGB, 0..255
STD = (58.395, 57.12, 57.375)
BOX_PADDING = 1.25
SCORE_MODES = ("min", "mean")


def _onnxruntime():
    """The onnxruntime module, imported on first use (an optional dependency)."""
    try:
        import onnxruntime
    except ImportError as err:
        raise SignGenError("the ONNX pose estimator needs onnxruntime: pip install "
                           "'signgen[onnx]' (in a checkout: pip install -e '.[onnx]')") from err
    return onnxruntime


def _static(dim) -> int | None:
    """An ONNX shape entry as an int, or None when it is symbolic / unknown."""
    return dim if isinstance(dim, int) and dim > 0 else None


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float,
                 score: str = "min") -> tuple[np.ndarray, np.ndarray]:
    """SimCC vectors -> locations and scores.

    Args:
        simcc_x: (N,K,Wx), simcc_y: (N,K,Wy) float; bin i is input pixel i / split_ratio.
        score: "min" or "mean" of the two axes' maxima.
    Returns:
        locations (N,K,2) float32 input pixels (x, y) of the first maximum per axis;
        scores (N,K) float32.
    """
    if score not in SCORE_MODES:
        raise InvalidInputError(f"score must be one of {SCORE_MODES}, got {score!r}")
    locations = np.stack([simcc_x.argmax(-1), simcc_y.argmax(-1)], -1) / split_ratio
    peaks = np.stack([simcc_x.max(-1), simcc_y.max(-1)], -1)
    scores = peaks.min(-1) if score == "min" else peaks.mean(-1)
    return locations.astype(np.float32), scores.astype(np.float32)


def box_transforms(boxes: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """(N,4) boxes (x1, y1, x2, y2) pixels -> centres (N,2) and scales (N,) float64 of
    ``q = (p - centre) * scale + (W/2, H/2)`` (frame pixel p -> input pixel q), the box
    padded by 1.25 and fitted to the input's aspect ratio ``input_size`` (H, W)."""
    height, width = input_size
    centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    size = (boxes[:, 2:] - boxes[:, :2]) * BOX_PADDING
    box_width = np.maximum(size[:, 0], size[:, 1] * width / height)
    return centres, width / box_width


def _warp(frame: np.ndarray, centre: np.ndarray, scale: float,
          input_size: tuple[int, int]) -> np.ndarray:
    """(h,w,3) uint8 frame -> (H,W,3) float32 crop (bilinear, 0 outside the frame)."""
    height, width = input_size
    # No rotation, so bilinear sampling is separable: source rows and columns.
    xs = (np.arange(width) - width / 2) / scale + centre[0]
    ys = (np.arange(height) - height / 2) / scale + centre[1]
    padded = np.pad(frame, ((1, 1), (1, 1), (0, 0)))  # a ring of zeros: "outside"
    x0, y0 = np.floor(xs), np.floor(ys)
    wx, wy = (xs - x0)[None, :, None], (ys - y0)[:, None, None]
    # Padded index of source pixel i is i + 1; anything further out reads the ring.
    cols = [np.clip(x0 + k + 1, 0, frame.shape[1] + 1).astype(np.int64) for k in (0, 1)]
    rows = [np.clip(y0 + k + 1, 0, frame.shape[0] + 1).astype(np.int64) for k in (0, 1)]
    top = padded[rows[0]]
    bottom = padded[rows[1]]
    top = (1 - wx) * top[:, cols[0]] + wx * top[:, cols[1]]
    bottom = (1 - wx) * bottom[:, cols[0]] + wx * bottom[:, cols[1]]
    return ((1 - wy) * top + wy * bottom).astype(np.float32)


class WholeBodyPoseEstimator:
    """A DWPose / RTMW (RTMPose-family, SimCC) whole-body ONNX model on onnxruntime.

    Args:
        model_path: the local ``.onnx`` file.
        input_size: (H, W) of the model input; None reads it from the model, which must
            then have a static one; if both, they must agree.
        providers: onnxruntime execution providers, in order of preference.
        batch_size: crops per run when the model's batch dimension is dynamic (a fixed
            one, like DWPose's 1, is used as it is).
        threads: onnxruntime intra-op threads (None: its default).
        score: "min" (mmpose, DWPose) or "mean" (newer rtmlib) of the two SimCC maxima.
    Raises SignGenError when onnxruntime is missing, ModelLoadError for a missing,
    unreadable or non-conforming model, InvalidInputError for bad arguments.
    """

    def __init__(self, model_path: str | os.PathLike, input_size: tuple[int, int] | None = None,
                 providers: tuple[str, ...] | list[str] = ("CPUExecutionProvider",),
                 batch_size: int = 8, threads: int | None = None, score: str = "min") -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive int, got {batch_size!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise InvalidInputError(f"threads must be a positive int or None, got {threads!r}")
        if score not in SCORE_MODES:
            raise InvalidInputError(f"score must be one of {SCORE_MODES}, got {score!r}")
        ort = _onnxruntime()
        path = Path(model_path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such ONNX model file (the weights are never "
                                 f"downloaded: give the local path of DWPose's or RTMW's .onnx)")
        providers = list(providers)
        unknown = [p for p in providers if p not in ort.get_available_providers()]
        if unknown or not providers:
            raise InvalidInputError(f"onnxruntime providers {unknown or providers} are not "
                                    f"available here (available: "
                                    f"{ort.get_available_providers()})")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options,
                                                providers=providers)
        except Exception as err:  # onnxruntime's errors (InvalidProtobuf, Fail, ...)
            # derive from Exception directly; any of them means the file cannot be used.
            raise ModelLoadError(f"{path}: onnxruntime cannot load it: "
                                 f"{str(err).splitlines()[0][:300]}") from err
        self.path = path
        self.score = score
        self._input, static_batch, self.input_size = self._check_input(path, input_size)
        self._outputs = self._check_outputs(path)
        self.batch_size = static_batch or batch_size
        self._fixed_batch = static_batch is not None

    def _check_input(self, path: Path, input_size) -> tuple[str, int | None, tuple[int, int]]:
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].type != "tensor(float)":
            got = [(i.name, i.shape, i.type) for i in inputs]
            raise ModelLoadError(f"{path}: expected one float32 input (N,3,H,W), got {got}")
        batch, channels, height, width = (_static(d) for d in inputs[0].shape)
        if channels not in (3, None):
            raise ModelLoadError(f"{path}: input has {channels} channels, expected 3 (RGB)")
        model_size = (height, width) if height and width else None
        if input_size is not None:
            if (len(input_size) != 2 or any(isinstance(v, bool) or not isinstance(v, int)
                                            or v < 1 for v in input_size)):
                raise InvalidInputError(f"input_size must be (H, W) positive ints, got "
                                        f"{input_size!r}")
            if model_size is not None and tuple(input_size) != model_size:
                raise InvalidInputError(f"input_size {tuple(input_size)} but {path} takes "
                                        f"{model_size} (H, W)")
            model_size = tuple(input_size)
        if model_size is None:
            raise InvalidInputError(f"{path} has a dynamic input size {inputs[0].shape}: "
                                    f"give input_size=(H, W)")
        return inputs[0].name, batch, model_size

    def _check_outputs(self, path: Path) -> list[str]:
        outputs = self.session.get_outputs()
        by_name = {o.name: o for o in outputs}
        chosen = ([by_name[n] for n in SIMCC_OUTPUTS] if all(n in by_name for n in SIMCC_OUTPUTS)
                  else outputs if len(outputs) == 2 else None)
        if chosen is None or any(len(o.shape) != 3 for o in chosen):
            got = [(o.name, o.shape) for o in outputs]
            raise ModelLoadError(f"{path}: expected SimCC outputs simcc_x (N,{NUM_KEYPOINTS},"
                                 f"W*r) and simcc_y (N,{NUM_KEYPOINTS},H*r), got {got}")
        for output in chosen:
            keypoints = _static(output.shape[1])
            if keypoints not in (NUM_KEYPOINTS, None):
                raise ModelLoadError(f"{path}: output {output.name} has {keypoints} keypoints; "
                                     f"signgen needs COCO-WholeBody's {NUM_KEYPOINTS} (a "
                                     f"whole-body model such as DWPose or RTMW)")
        lengths = [_static(o.shape[2]) for o in chosen]
        if all(lengths):
            self._split_ratio(path, *lengths)
        return [o.name for o in chosen]

    def _split_ratio(self, path, length_x: int, length_y: int) -> float:
        """r from the SimCC lengths W*r and H*r; ModelLoadError unless both agree."""
        height, width = self.input_size
        ratio_x, ratio_y = length_x / width, length_y / height
        if not (ratio_x > 0 and abs(ratio_x - ratio_y) < 1e-6):
            raise ModelLoadError(f"{path}: SimCC lengths {length_x} (x) and {length_y} (y) "
                                 f"are not one split ratio times the input width {width} and "
                                 f"height {height}")
        return ratio_x

    @staticmethod
    def _check_frames(frames, boxes) -> tuple[np.ndarray, np.ndarray]:
        """Checked frames (T,H,W,3) uint8 and boxes (T,4) float64."""
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
            raise InvalidInputError(f"frames must be a uint8 numpy array (T,H,W,3) RGB, got "
                                    f"{type(frames).__name__} {getattr(frames, 'dtype', '')}")
        if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
            raise InvalidInputError(f"frames must have shape (T,H,W,3) with T, H, W >= 1, got "
                                    f"{frames.shape}")
        count, height, width = frames.shape[:3]
        if boxes is None:
            return frames, np.tile([0.0, 0.0, width, height], (count, 1))
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.shape == (4,):
            boxes = np.tile(boxes, (count, 1))
        if boxes.shape != (count, 4):
            raise InvalidInputError(f"boxes must be (4,) or (T, 4) = ({count}, 4) pixels "
                                    f"(x1, y1, x2, y2), got {boxes.shape}")
        if not (np.isfinite(boxes).all() and (boxes[:, 2:] > boxes[:, :2]).all()):
            raise InvalidInputError("boxes must be finite (x1, y1, x2, y2) with x2 > x1 and "
                                    "y2 > y1")
        return frames, boxes

    def preprocess(self, frames: np.ndarray, boxes=None) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
        """(T,H,W,3) uint8 RGB frames and boxes (None, (4,) or (T,4) x1 y1 x2 y2 pixels) ->
        model input (T,3,h,w) float32, centres (T,2) and scales (T,) (see
        :func:`box_transforms`)."""
        frames, boxes = self._check_frames(frames, boxes)
        centres, scales = box_transforms(boxes, self.input_size)
        return self._inputs(frames, centres, scales), centres, scales

    def _inputs(self, frames: np.ndarray, centres: np.ndarray,
                scales: np.ndarray) -> np.ndarray:
        """(n,H,W,3) uint8 frames -> (n,3,h,w) float32 normalised crops."""
        crops = np.stack([_warp(f, c, s, self.input_size)
                          for f, c, s in zip(frames, centres, scales, strict=True)])
        crops = (crops - np.float32(MEAN)) / np.float32(STD)
        return np.ascontiguousarray(crops.transpose(0, 3, 1, 2))

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One session run on (n,3,h,w), padded to a fixed batch; simcc_x, simcc_y."""
        count = len(batch)
        if self._fixed_batch and count < self.batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], self.batch_size - count, 0)])
        simcc_x, simcc_y = self.session.run(self._outputs, {self._input: batch})
        if (simcc_x.ndim != 3 or simcc_y.ndim != 3 or simcc_x.shape[:2] != simcc_y.shape[:2]
                or simcc_x.shape[:2] != (len(batch), NUM_KEYPOINTS)):
            raise ModelLoadError(f"{self.path}: the model returned {simcc_x.shape} and "
                                 f"{simcc_y.shape}, expected ({len(batch)}, {NUM_KEYPOINTS}, "
                                 f"W*r) and ({len(batch)}, {NUM_KEYPOINTS}, H*r)")
        return simcc_x[:count], simcc_y[:count]

    def __call__(self, frames: np.ndarray, boxes=None) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of one person per frame.

        Args:
            frames: (T,H,W,3) uint8 RGB.
            boxes: None (each whole frame), (4,) for every frame or (T,4), pixels
                (x1, y1, x2, y2) around the person.
        Returns:
            keypoints (T,133,2) float32 pixels (column, row) of the frames, pixel centres
            at integers, COCO-WholeBody order; scores (T,133) float32 (see the module
            docstring; > 0.3 counts as detected).
        """
        frames, boxes = self._check_frames(frames, boxes)
        centres, scales = box_transforms(boxes, self.input_size)
        height, width = self.input_size
        keypoints, scores = [], []
        for start in range(0, len(frames), self.batch_size):
            cut = slice(start, start + self.batch_size)  # crops made per batch: bounded memory
            simcc_x, simcc_y = self._run(self._inputs(frames[cut], centres[cut], scales[cut]))
            ratio = self._split_ratio(self.path, simcc_x.shape[-1], simcc_y.shape[-1])
            locations, score = decode_simcc(simcc_x, simcc_y, ratio, self.score)
            keypoints.append(locations)
            scores.append(score)
        q = np.concatenate(keypoints).astype(np.float64)
        p = (q - [width / 2, height / 2]) / scales[:, None, None] + centres[:, None]
        return p.astype(np.float32), np.concatenate(scores)


# -- .pose files -------------------------------------------------------------------------
def coco_pose(keypoints: np.ndarray, scores: np.ndarray, fps: float,
              size: tuple[int, int]):
    """A pose-format Pose with one COCO_WHOLEBODY_133 component (XYC, one person).

    keypoints (T,133,2) pixels; scores (T,133) -> confidence as it is (pose-format masks
    confidence 0; NaN is written as 0); size (height, width) of the video.
    """
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

    from signgen.body.keypoints import coco_wholebody_edges
    from signgen.data.pose_import import COCO_COMPONENT, COCO_POINT_NAMES

    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise InvalidInputError(f"fps must be a positive number, got {fps!r}")
    keypoints = np.asarray(keypoints, np.float32)
    scores = np.nan_to_num(np.asarray(scores, np.float32), nan=0.0)
    if keypoints.shape[1:] != (NUM_KEYPOINTS, 2) or scores.shape != keypoints.shape[:2]:
        raise InvalidInputError(f"keypoints (T,{NUM_KEYPOINTS},2) and scores (T,"
                                f"{NUM_KEYPOINTS}) expected, got {keypoints.shape} and "
                                f"{scores.shape}")
    limbs = [edge for part in coco_wholebody_edges().values() for edge in part]
    # One colour per point (pose-format's visualiser colours points, limbs average them).
    colours = ([(255, 0, 0)] * 23 + [(255, 255, 255)] * 68 + [(0, 255, 0)] * 21
               + [(0, 0, 255)] * 21)
    component = PoseHeaderComponent(name=COCO_COMPONENT, points=list(COCO_POINT_NAMES),
                                    limbs=limbs, colors=colours, point_format="XYC")
    height, width = size
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width, height, depth=0),
                        components=[component])
    body = NumPyPoseBody(fps=float(fps), data=keypoints[:, None], confidence=scores[:, None])
    return Pose(header, body)


def write_coco_pose(path: str | os.PathLike, keypoints: np.ndarray, scores: np.ndarray,
               fps: float, size: tuple[int, int]) -> Path:
    """Write :func:`coco_pose` to ``path`` (through a temporary file, so an interrupted
    run leaves no truncated ``.pose``); returns the path."""
    path = Path(path)
    pose = coco_pose(keypoints, scores, fps, size)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pose.write(f)
    os.replace(tmp, path)
    return path


# -- videos ------------------------------------------------------------------------------
def estimate_video(estimator: WholeBodyPoseEstimator, path: str | os.PathLike, box=None,
                   chunk: int = 64, fps: float | None = None):
    """Run ``estimator`` on every frame of a video, ``chunk`` frames in memory at a time.

    box: None (whole frames) or one (x1, y1, x2, y2) pixel box for every frame.
    fps: the frame rate to record (None: the video's own).
    Returns keypoints (T,133,2) float32, scores (T,133) float32, fps and (height, width).
    Raises DataError for a missing, unreadable or empty video.
    """
    import imageio.v2 as imageio

    path = Path(path)
    if not path.is_file():
        raise DataError(f"no video {path}")
    keypoints, scores, size, batch = [], [], None, []

    def unreadable(error: Exception) -> DataError:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return DataError(f"cannot read video {path} (truncated or corrupt?): {reason}")

    def flush():
        k, s = estimator(np.stack(batch), box)
        keypoints.append(k)
        scores.append(s)
        batch.clear()

    # Only the reader's calls are guarded: the estimator's own errors pass unchanged.
    read_errors = (OSError, RuntimeError, ValueError, IndexError)
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
        video_fps = reader.get_meta_data().get("fps")
    except read_errors as error:
        raise unreadable(error) from None
    with reader:
        frames = iter(reader)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except read_errors as error:
                raise unreadable(error) from None
            size = size or frame.shape[:2]
            batch.append(frame)
            if len(batch) == chunk:
                flush()
    if batch:
        flush()
    if size is None:
        raise DataError(f"video {path} has no frames")
    fps = video_fps if fps is None else fps
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise DataError(f"video {path} reports no usable frame rate ({fps!r}); give --fps")
    return np.concatenate(keypoints), np.concatenate(scores), float(fps), tuple(size)


# -- command line ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from signgen.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m signgen.data.onnx_pose",
                            description="A video -> a COCO_WHOLEBODY_133 .pose file with a "
                                        "local DWPose / RTMW ONNX model.")
    parser.add_argument("--model", required=True, help="the local .onnx file")
    parser.add_argument("--video", required=True, help="the input video (mp4, ...)")
    parser.add_argument("--out", required=True, help="the .pose file to write")
    parser.add_argument("--box", type=float, nargs=4, metavar=("X1", "Y1", "X2", "Y2"),
                        help="pixel box around the signer in every frame (default: the "
                             "whole frame)")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="crops per model run when its batch is dynamic (default 8)")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    parser.add_argument("--providers", nargs="+", default=["CPUExecutionProvider"])
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="model input size, for models with a dynamic one")
    parser.add_argument("--score", choices=SCORE_MODES, default="min")
    parser.add_argument("--fps", type=float, help="frame rate to record (default: the "
                                                  "video's)")
    args = parser.parse_args(argv)
    estimator = WholeBodyPoseEstimator(
        args.model, input_size=tuple(args.input_size) if args.input_size else None,
        providers=args.providers, batch_size=args.batch_size, threads=args.threads,
        score=args.score)
    keypoints, scores, fps, size = estimate_video(estimator, args.video, args.box,
                                                  fps=args.fps)
    out = write_coco_pose(args.out, keypoints, scores, fps, size)
    from signgen.data.pose_import import COCO_MIN_SCORE

    detected = float((scores > COCO_MIN_SCORE).mean())
    print(f"{out}: {len(keypoints)} frames at {fps:g} fps, {size[1]}x{size[0]}; "
          f"{detected:.0%} of keypoints scored > {COCO_MIN_SCORE}")
    return 0


if __name__ == "__main__":
    from signgen.cli import run_cli

    sys.exit(run_cli(main))
