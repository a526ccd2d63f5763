"""Export SynthSign's lexicon as isolated signs in the sign-language-processing formats.

Every sign (and every fingerspelled letter) is performed alone by one signer — rest,
sign, rest — and written as a ``.pose`` file (pose-format) with MediaPipe-Holistic
components, plus an ``index.csv`` in the layout of spoken-to-signed's lexicons
(path, spoken_language, signed_language, start, end, words, glosses, priority; start
and end in milliseconds). A dictionary-lookup system such as spoken-to-signed can then
run on SynthSign.

Components (as MediaPipe Holistic writes them): POSE_LANDMARKS (33), FACE_LANDMARKS
(478, all masked: SynthSign has no face mesh), LEFT_HAND_LANDMARKS and
RIGHT_HAND_LANDMARKS (21 each, the signer's own left/right), POSE_WORLD_LANDMARKS (33).
Image landmarks are pixels of the SynthSign camera (z: depth relative to the hips, in
pixels, as MediaPipe scales it); world landmarks are metres from the hips' midpoint in
camera axes (x right, y down, z away from the camera), stored as pose-format's
``load_holistic`` stores MediaPipe's: x times the image width, y times its height, z as
is. Points outside the image have confidence 0 (masked).

    python -m signgen.data.synthsign export-lexicon --out DIR [--language ssl-a]
                                                    [--signer s00]
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.openpose import hand_colors

from signgen.body.keypoints import MEDIAPIPE_POSE_FROM_SMPLX, to_mediapipe_holistic
from signgen.data.synthsign.lexicon import LETTERS, Lexicon
from signgen.data.synthsign.motion import MotionPlanner, SignerMotionStyle
from signgen.data.synthsign.signers import Signer, signing_camera
from signgen.errors import SignGenError

MEDIAPIPE_POSE_POINTS = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL",
    "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)
MEDIAPIPE_POSE_LIMBS = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
    (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
    (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27),
    (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)
MEDIAPIPE_HAND_POINTS = ("WRIST", *(f"{finger}_{joint}" for finger, joints in (
    ("THUMB", ("CMC", "MCP", "IP", "TIP")), ("INDEX_FINGER", ("MCP", "PIP", "DIP", "TIP")),
    ("MIDDLE_FINGER", ("MCP", "PIP", "DIP", "TIP")), ("RING_FINGER", ("MCP", "PIP", "DIP", "TIP")),
    ("PINKY", ("MCP", "PIP", "DIP", "TIP"))) for joint in joints))
MEDIAPIPE_HAND_LIMBS = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19),
    (19, 20),
)
NUM_FACE_POINTS = 478
INDEX_COLUMNS = ("path", "spoken_language", "signed_language", "start", "end", "words",
                 "glosses", "priority")


def holistic_header(width: int, height: int) -> PoseHeader:
    """A pose-format header with MediaPipe Holistic's five components."""
    def component(name, points, limbs, colors):
        return PoseHeaderComponent(name=name, points=list(points), limbs=list(limbs),
                                   colors=colors, point_format="XYZC")

    return PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width, height, depth=0),
                      components=[
        component("POSE_LANDMARKS", MEDIAPIPE_POSE_POINTS, MEDIAPIPE_POSE_LIMBS, [(255, 0, 0)]),
        component("FACE_LANDMARKS", [str(i) for i in range(NUM_FACE_POINTS)], [],
                  [(128, 0, 0)]),
        component("LEFT_HAND_LANDMARKS", MEDIAPIPE_HAND_POINTS, MEDIAPIPE_HAND_LIMBS,
                  hand_colors),
        component("RIGHT_HAND_LANDMARKS", MEDIAPIPE_HAND_POINTS, MEDIAPIPE_HAND_LIMBS,
                  hand_colors),
        component("POSE_WORLD_LANDMARKS", MEDIAPIPE_POSE_POINTS, MEDIAPIPE_POSE_LIMBS,
                  [(255, 0, 0)]),
    ])


def joints_to_pose(joints: np.ndarray, camera, fps: float) -> Pose:
    """(T,144,3) SMPL-X output joints (world metres) -> a Holistic-layout Pose."""
    joints = torch.as_tensor(joints, dtype=torch.float32)
    parts = to_mediapipe_holistic(joints)
    cam = camera.world_to_camera(joints.numpy().reshape(-1, 3)).reshape(*joints.shape)
    frames = joints.shape[0]
    blocks, confidences = [], []
    hips = None
    for name in ("POSE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"):
        points = parts[name].numpy()
        uv, depth = camera.project(points.reshape(-1, 3))
        uv, depth = uv.reshape(frames, -1, 2), depth.reshape(frames, -1)
        if hips is None:  # MediaPipe's z: depth relative to the hips, scaled like x
            hips = depth[:, 23:25].mean(axis=1, keepdims=True)
        z = (depth - hips) * camera.fx
        inside = ((uv[..., 0] >= 0) & (uv[..., 0] <= camera.width - 1) & (uv[..., 1] >= 0)
                  & (uv[..., 1] <= camera.height - 1) & (depth > 0))
        blocks.append(np.concatenate([uv, z[..., None]], axis=-1))
        confidences.append(inside.astype(np.float32))
        if name == "POSE_LANDMARKS":  # the face mesh comes right after the body
            blocks.append(np.zeros((frames, NUM_FACE_POINTS, 3)))
            confidences.append(np.zeros((frames, NUM_FACE_POINTS), np.float32))
    # World landmarks: metres from the hips' midpoint, camera axes (y down), with
    # pose-format's scaling of x and y by the image size (holistic.body_points).
    world = cam[:, MEDIAPIPE_POSE_FROM_SMPLX.numpy()]
    world = world - world[:, 23:25].mean(axis=1, keepdims=True)
    world = world * np.array([camera.width, camera.height, 1.0])
    blocks.append(world)
    confidences.append(np.ones(world.shape[:2], np.float32))
    data = np.concatenate(blocks, axis=1)[:, None].astype(np.float32)
    confidence = np.concatenate(confidences, axis=1)[:, None]
    masked = np.ma.masked_array(data, mask=np.repeat(confidence[..., None] == 0, 3, -1))
    header = holistic_header(camera.width, camera.height)
    return Pose(header, NumPyPoseBody(fps=fps, data=masked, confidence=confidence))


def export_lexicon(out_dir: str | os.PathLike, lexicon: Lexicon, signer: Signer,
                   language: str = "ssl-a", fps: float = 25.0, size: tuple[int, int] = (256, 256),
                   glosses: list[str] | None = None, seed: int = 0) -> Path:
    """Write ``<out_dir>/<language>/<GLOSS>.pose`` (+ letters) and add the language's
    rows to ``<out_dir>/index.csv`` (rows of other languages already there are kept)."""
    from signgen.body import BodyModel

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SignGenError(f"export path {out} exists and is not a folder")
    (out / language).mkdir(parents=True, exist_ok=True)
    body = BodyModel()
    planner = MotionPlanner(body, fps=fps)
    camera = signing_camera(size[1], size[0])
    style = SignerMotionStyle(betas=signer.betas, handedness=signer.handedness,
                              speed=signer.speed, space_scale=signer.space_scale)
    entries = [(g, lexicon.concept(g).words) for g in (glosses or lexicon.glosses(language))]
    entries += [(f"fs-{ch}", (ch,)) for ch in LETTERS]
    rows = []
    for i, (gloss, words) in enumerate(entries):
        forms = lexicon.forms(gloss, language)
        clip = planner.plan([(gloss, forms)], style, np.random.default_rng([seed, i]))
        with torch.no_grad():
            joints = body(clip.params).joints.numpy()
        pose = joints_to_pose(joints, camera, fps)
        name = f"{language}/{gloss}.pose"
        tmp = out / f"{name}.tmp"
        with open(tmp, "wb") as f:
            pose.write(f)
        tmp.replace(out / name)
        end_ms = int(round(1000 * clip.num_frames / fps))
        for word in words:  # one row per English form: the lookup matches single words
            rows.append({"path": name, "spoken_language": "en", "signed_language": language,
                         "start": 0, "end": end_ms, "words": word, "glosses": gloss,
                         "priority": 0})
    index = out / "index.csv"
    if index.is_file():  # keep the other languages' rows: one folder serves them all
        with open(index, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["signed_language"] != language] + rows
    tmp = out / "index.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(index)
    return out
