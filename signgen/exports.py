"""Files a generation writes (``sample.py``), each written under a temporary name in the
same folder and renamed when complete, so a crash never leaves a half-written output.

- ``video.mp4`` / ``avatar.mp4``: H.264 (yuv420p) at the output frame rate;
- ``smplx.npz``: AMASS-style SMPL-X (``poses`` (T,165) axis-angle, ``trans`` (T,3) m,
  ``betas`` (num_betas,), ``gender``, ``mocap_frame_rate``, ``surface_model_type``
  'smplx'), the layout the SMPL-X Blender add-on and AMASS tools read;
- ``pose.pose``: pose-format file, MediaPipe-Holistic-style components (body, face
  placeholders, both hands, world landmarks) of the SMPL-X joints seen by the frames'
  camera;
- ``tokens.json``: the token ids per frame and what made them;
- ``preview.png``: a contact sheet (rows: video, avatar; evenly spaced frames).
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from signgen.errors import InvalidInputError


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` for a temporary path beside ``path``, then rename it into
    place (same folder: an atomic replace). The temporary file keeps ``path``'s suffix
    (writers that pick a format by suffix still work)."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def warm_up() -> None:
    """Import what writing an mp4 needs (imageio, its ffmpeg plugin, the ffmpeg binary's
    path) on a background thread and return at once: ~0.2 s that would otherwise land
    on the first video written (and, holding the GIL, on whatever runs beside it)."""
    def load() -> None:
        import imageio.plugins.ffmpeg  # noqa: F401
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg

        import signgen.data.synthsign.generate  # noqa: F401  (open_video_writer)

        imageio_ffmpeg.get_ffmpeg_exe()

    threading.Thread(target=load, daemon=True, name="signgen-warm-up").start()


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise InvalidInputError(f"frames must be (T,H,W,3) uint8 with T >= 1, got "
                                f"{frames.dtype} {frames.shape}")
    return frames


def write_mp4(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """(T,H,W,3) uint8 frames -> H.264 mp4."""
    with Mp4Writer(path, fps) as writer:
        writer.append(frames)
    return Path(path)


class Mp4Writer:
    """H.264 mp4 written as frames arrive (``append`` chunks of (B,H,W,3) uint8).

    ``append`` returns at once: a writer thread pipes the frames to ffmpeg, which encodes
    in its own process, so the caller makes the next chunk meanwhile. The file appears at
    ``path`` only when the ``with`` block ends without an error and at least one frame
    came (an error of the writer thread is raised by the next ``append`` or at the end);
    otherwise nothing is left behind. Appended arrays are written later: do not change
    them afterwards."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self.frames = 0
        self._tmp = self.path.with_name(f".tmp-{os.getpid()}-{self.path.name}")
        self._shape = None
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def append(self, frames: np.ndarray) -> None:
        frames = _check_frames(frames)
        if self._shape is not None and frames.shape[1:] != self._shape:
            raise InvalidInputError(f"frames of {frames.shape[1:]} after {self._shape}")
        self._raise_writer_error()
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_frames, daemon=True,
                                            name="signgen-mp4")
            self._thread.start()
        self._shape = frames.shape[1:]
        self._queue.put(frames)
        self.frames += len(frames)

    def _write_frames(self) -> None:
        from signgen.data.synthsign.generate import open_video_writer

        writer = None
        try:
            while (frames := self._queue.get()) is not None:
                writer = writer or open_video_writer(self._tmp, self.fps)
                for frame in frames:
                    writer.append_data(frame)
        except BaseException as error:  # handed to the caller's thread
            self._error = error
            while self._queue.get() is not None:  # drain: the caller may still append
                pass
        finally:
            if writer is not None:
                try:
                    writer.close()
                except BaseException as error:
                    self._error = self._error or error

    def _raise_writer_error(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        try:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
            if error_type is None:
                self._raise_writer_error()
                if not self.frames:
                    raise InvalidInputError(f"{self.path}: no frames were written")
                self._tmp.replace(self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


def write_smplx_npz(path: str | Path, poses: np.ndarray, fps: float, betas=None,
                    gender: str = "neutral", trans=None) -> Path:
    """AMASS-style SMPL-X parameters (see the module docstring)."""
    poses = np.asarray(poses, dtype=np.float32)
    if poses.ndim != 2 or poses.shape[1] != 165:
        raise InvalidInputError(f"poses must be (T,165), got {poses.shape}")
    frames = len(poses)
    trans = np.zeros((frames, 3), np.float32) if trans is None else np.asarray(trans, np.float32)
    betas = np.zeros(10, np.float32) if betas is None else np.asarray(betas, np.float32)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, poses=poses, trans=trans, betas=betas, gender=np.array(gender),
                     mocap_frame_rate=np.array(float(fps)),
                     surface_model_type=np.array("smplx"))

    return write_atomic(path, write)


def write_pose(path: str | Path, joints: np.ndarray, camera, fps: float) -> Path:
    """(T,144,3) SMPL-X joints (world metres) -> a pose-format ``.pose`` file."""
    from signgen.data.synthsign.lexicon_export import joints_to_pose

    pose = joints_to_pose(joints, camera, fps)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            pose.write(f)

    return write_atomic(path, write)


def write_json(path: str | Path, data: dict) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n"))


def contact_sheet(rows: Sequence[np.ndarray], columns: int = 8) -> np.ndarray:
    """Rows of (T,H,W,3) uint8 videos -> one (rows*H, columns*W, 3) image of ``columns``
    evenly spaced frames of each (videos of other sizes are resized to the first's)."""
    from PIL import Image

    height, width = rows[0].shape[1:3]
    tiles = []
    for video in rows:
        picks = np.linspace(0, len(video) - 1, columns).round().astype(int)
        row = []
        for i in picks:
            frame = video[i]
            if frame.shape[:2] != (height, width):
                frame = np.asarray(Image.fromarray(frame).resize((width, height)))
            row.append(frame)
        tiles.append(np.concatenate(row, axis=1))
    return np.concatenate(tiles, axis=0)


def write_gif(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """(T,H,W,3) uint8 frames -> a looping GIF (frame delays are whole 1/100 s, so the
    rate is approximate)."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise InvalidInputError(f"frames must be (T,H,W,3) uint8 with T >= 1, got "
                                f"{frames.dtype} {frames.shape}")
    images = [Image.fromarray(frame) for frame in frames]
    return write_atomic(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:],
        duration=round(1000 / fps), loop=0))


def write_png(path: str | Path, image: np.ndarray) -> Path:
    from PIL import Image

    return write_atomic(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))
