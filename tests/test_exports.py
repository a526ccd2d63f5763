"""signgen.exports: mp4 files appear whole or not at all."""

from __future__ import annotations

import numpy as np
import pytest

from signgen.data.synthsign.dataset import read_video
from signgen.errors import InvalidInputError
from signgen.exports import Mp4Writer, write_mp4


def frames(n: int, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_streamed_chunks_give_the_same_bytes_as_one_write(tmp_path):
    video = frames(7)
    write_mp4(tmp_path / "whole.mp4", video, fps=12)
    with Mp4Writer(tmp_path / "chunks.mp4", fps=12) as writer:
        for start in range(0, 7, 3):
            writer.append(video[start:start + 3])
    assert writer.frames == 7
    assert (tmp_path / "chunks.mp4").read_bytes() == (tmp_path / "whole.mp4").read_bytes()
    assert len(read_video(tmp_path / "chunks.mp4")) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunks.mp4", "whole.mp4"]


def test_a_failure_midway_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError, match="renderer died"):
        with Mp4Writer(tmp_path / "a.mp4", fps=12) as writer:
            writer.append(frames(2))
            raise RuntimeError("renderer died")
    with pytest.raises(InvalidInputError, match="after"):
        with Mp4Writer(tmp_path / "b.mp4", fps=12) as writer:
            writer.append(frames(2))
            writer.append(frames(2, size=8))
    with pytest.raises(InvalidInputError, match="no frames"):
        with Mp4Writer(tmp_path / "c.mp4", fps=12):
            pass
    with pytest.raises(InvalidInputError, match="uint8"):
        write_mp4(tmp_path / "d.mp4", frames(2).astype(np.float32), fps=12)
    assert list(tmp_path.iterdir()) == []
    # ffmpeg's side fails (in the writer thread): raised to the caller, nothing left.
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with Mp4Writer(tmp_path / "missing" / "e.mp4", fps=12) as writer:
            writer.append(frames(2))
    assert list(tmp_path.iterdir()) == []
