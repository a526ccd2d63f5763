"""Side-by-side tiles of reference, conditions, generated and ground-truth frames."""

import numpy as np
import pytest

from signgen.errors import InvalidInputError
from signgen.eval.side_by_side import contact_sheet, save_gif, tile_streams


def test_streams_are_tiled_left_to_right_with_a_held_reference(tmp_path):
    reference = np.full((8, 6, 3), 200, np.uint8)
    clip = np.arange(3 * 8 * 6 * 3, dtype=np.uint8).reshape(3, 8, 6, 3)
    tiled = tile_streams([reference, clip], ["reference", "clip"])
    assert tiled.shape[0] == 3 and tiled.shape[2] == 2 * (6 + 2) + 2
    bottom = tiled[:, -(8 + 2):-2]
    assert (bottom[:, :, 2:8] == 200).all()  # the reference, every frame
    assert np.array_equal(bottom[:, :, 10:16], clip)
    sheet = contact_sheet(tiled, num_rows=2)
    assert sheet.shape == (2 * tiled.shape[1], tiled.shape[2], 3)
    save_gif(tmp_path / "a.gif", tiled, fps=12)
    assert (tmp_path / "a.gif").stat().st_size > 0


def test_mismatched_streams_are_refused():
    with pytest.raises(InvalidInputError, match="one label per stream"):
        tile_streams([np.zeros((2, 4, 4, 3), np.uint8)], [])
    with pytest.raises(InvalidInputError, match="every stream"):
        tile_streams([np.zeros((2, 4, 4, 3), np.uint8), np.zeros((3, 4, 4, 3), np.uint8)],
                     ["a", "b"])
    with pytest.raises(InvalidInputError, match="frame size"):
        tile_streams([np.zeros((2, 4, 4, 3), np.uint8), np.zeros((2, 5, 4, 3), np.uint8)],
                     ["a", "b"])
