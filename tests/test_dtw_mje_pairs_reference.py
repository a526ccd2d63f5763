"""The vectorised DTW-MJE (``dtw_mje_pairs``, ``_frame_costs``, ``_dtw_batch``) against the
straightforward implementation it replaced (kept here only as the reference): the same
values, infinities, errors and path lengths (ties: diagonal, then up, then left)."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from signgen.errors import InvalidInputError
from signgen.eval import metrics
from signgen.eval.metrics import _dtw_batch, _frame_costs, dtw_mje, dtw_mje_pairs


# -- the reference: the per-pair, per-joint, argmin-per-diagonal code it replaced ----------
def reference_frame_costs(ref, pred, mask_ref, mask_pred) -> np.ndarray:
    total = np.zeros((len(ref), len(pred)))
    count = np.zeros((len(ref), len(pred)))
    for k in range(ref.shape[1]):
        both = mask_ref[:, k, None] & mask_pred[None, :, k]
        if both.any():
            a = np.where(mask_ref[:, k, None], ref[:, k], 0.0)
            b = np.where(mask_pred[:, k, None], pred[:, k], 0.0)
            total += np.where(both, cdist(a, b), 0.0)
            count += both
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.inf)


def reference_dtw_batch(costs):
    sizes = np.array([c.shape for c in costs], dtype=np.int64).reshape(-1, 2)
    p, (t1, t2) = len(costs), sizes.max(axis=0)
    padded = np.full((p, t1, t2), np.inf)
    for index, cost in enumerate(costs):
        padded[index, :cost.shape[0], :cost.shape[1]] = cost
    acc = np.full((p, t1 + 1, t2 + 1), np.inf)
    acc[:, 0, 0] = 0.0
    length = np.zeros((p, t1 + 1, t2 + 1), dtype=np.int64)
    for s in range(2, t1 + t2 + 1):
        i = np.arange(max(1, s - t2), min(t1, s - 1) + 1)
        j = s - i
        cand = np.stack([acc[:, i - 1, j - 1], acc[:, i - 1, j], acc[:, i, j - 1]])
        cand_len = np.stack([length[:, i - 1, j - 1], length[:, i - 1, j],
                             length[:, i, j - 1]])
        best = np.argmin(cand, axis=0)[None]
        acc[:, i, j] = padded[:, i - 1, j - 1] + np.take_along_axis(cand, best, 0)[0]
        length[:, i, j] = np.take_along_axis(cand_len, best, 0)[0] + 1
    rows = np.arange(p)
    return acc[rows, sizes[:, 0], sizes[:, 1]], length[rows, sizes[:, 0], sizes[:, 1]]


def reference_dtw_mje_pairs(tracks, masks, pairs) -> np.ndarray:
    if len(masks) != len(tracks):
        raise InvalidInputError(f"{len(tracks)} tracks but {len(masks)} masks")
    points = [metrics._as_points(f"tracks[{i}]", t) for i, t in enumerate(tracks)]
    checked = [metrics._as_mask(f"masks[{i}]", m, p.shape[:2], p)
               for i, (p, m) in enumerate(zip(points, masks, strict=True))]
    pairs = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
    result = np.full(len(pairs), np.inf)
    costs, rows = [], []
    for row, (a, b) in enumerate(pairs):
        if points[a].shape[1:] != points[b].shape[1:]:
            raise InvalidInputError(f"tracks {a} and {b} differ in joints/coords")
        keep_a, keep_b = checked[a].any(1), checked[b].any(1)
        if not keep_a.any() or not keep_b.any():
            continue
        costs.append(reference_frame_costs(points[a][keep_a], points[b][keep_b],
                                           checked[a][keep_a], checked[b][keep_b]))
        rows.append(row)
    if costs:
        totals, lengths = reference_dtw_batch(costs)
        with np.errstate(invalid="ignore"):
            result[rows] = np.where(np.isfinite(totals), totals / np.maximum(lengths, 1),
                                    np.inf)
    return result


# -- random clips ---------------------------------------------------------------------------
def random_clips(rng, count: int, joints: int, coords: int, max_frames: int = 14):
    """Clips of 1..max_frames frames with random masks (absent points NaN), some of them
    held poses (repeated frames: exact cost ties), one with no present joint at all."""
    tracks, masks = [], []
    for index in range(count):
        frames = int(rng.integers(1, max_frames + 1))
        points = rng.standard_normal((frames, joints, coords))
        if index % 3 == 1:  # a held pose: ties everywhere
            points[:] = points[:1]
        if index % 4 == 2:  # coarse values: many equal distances
            points = points.round(0)
        mask = rng.random((frames, joints)) < rng.uniform(0.3, 1.0)
        if index % 5 == 3:
            mask[:] = True
        points[~mask] = np.nan
        tracks.append(points)
        masks.append(mask)
    masks[-1] = np.zeros_like(masks[-1])  # nothing present: inf against anything
    tracks[-1][:] = np.nan
    return tracks, masks


def assert_same(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-9, atol=0)


@pytest.mark.parametrize("joints, coords", [(1, 2), (4, 2), (5, 3), (48, 2), (70, 2)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dtw_mje_pairs_equals_the_reference(joints, coords, seed):
    rng = np.random.default_rng(100 * joints + 10 * coords + seed)
    tracks, masks = random_clips(rng, 7, joints, coords)
    n = len(tracks)
    # every ordered pair, self pairs, a repeated pair and negative indices
    pairs = [(a, b) for a in range(n) for b in range(n)] + [(1, 2), (-1, 0), (-2, -3)]
    expected = reference_dtw_mje_pairs(tracks, masks, pairs)
    assert np.isfinite(expected).sum() > n  # the test compares numbers, not only infs
    assert_same(dtw_mje_pairs(tracks, masks, pairs), expected)
    for a, b in pairs[:n * n:5]:  # and dtw_mje, which goes through the same parts
        if masks[a].any() and masks[b].any():
            try:
                value = dtw_mje(tracks[a], tracks[b], masks[a], masks[b])
            except InvalidInputError:
                value = np.inf
            assert_same(np.array([value]), reference_dtw_mje_pairs(
                [tracks[a], tracks[b]], [masks[a], masks[b]], [(0, 1)]))


def test_cost_blocks_of_any_size_give_the_same_values(monkeypatch):
    rng = np.random.default_rng(7)
    tracks, masks = random_clips(rng, 6, 6, 2, max_frames=20)
    pairs = [(a, b) for a in range(6) for b in range(a + 1, 6)]
    expected = reference_dtw_mje_pairs(tracks, masks, pairs)
    for cells in (1, 50, 400, 1 << 30):  # one clip per block ... every partner in one
        monkeypatch.setattr(metrics, "_COST_BLOCK_CELLS", cells)
        assert_same(dtw_mje_pairs(tracks, masks, pairs), expected)


def test_inf_where_no_alignment_through_common_joints_and_errors_as_before():
    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal((t, 3, 2)) for t in (4, 5, 3))
    only_0, only_1 = np.zeros((4, 3), bool), np.zeros((5, 3), bool)
    only_0[:, 0] = True
    only_1[:, 1] = True  # a and b never share a joint: every frame pair costs inf
    late = np.ones((3, 3), bool)
    late[0] = [False, True, False]  # c's first frame shares nothing with a: (0, 0) is inf
    tracks, masks = [a, b, c], [only_0, only_1, late]
    pairs = [(0, 1), (1, 0), (0, 2), (1, 2), (2, 2)]
    values = dtw_mje_pairs(tracks, masks, pairs)
    assert_same(values, reference_dtw_mje_pairs(tracks, masks, pairs))
    assert np.isinf(values[:3]).all() and np.isfinite(values[3:]).all()
    for bad_tracks, bad_masks, message in (
            ([a, np.zeros((4, 2, 2))], [None, None], "differ"),
            ([a, np.full((2, 3, 2), np.nan)], [None, None], "non-finite"),
            ([a, b], [None], "masks")):
        for implementation in (dtw_mje_pairs, reference_dtw_mje_pairs):
            with pytest.raises(InvalidInputError, match=message):
                implementation(bad_tracks, bad_masks, [(0, 1)])
    assert dtw_mje_pairs([a], [None], np.zeros((0, 2), int)).shape == (0,)


def test_frame_costs_equal_the_reference_with_masks_and_nan():
    rng = np.random.default_rng(11)
    ref, pred = rng.standard_normal((9, 70, 3)), rng.standard_normal((13, 70, 3))
    mask_ref, mask_pred = rng.random((9, 70)) < 0.6, rng.random((13, 70)) < 0.6
    mask_ref[2] = False  # a frame with nothing present: inf against every frame
    mask_pred[:, 5] = True
    ref[~mask_ref], pred[~mask_pred] = np.nan, np.nan
    got = _frame_costs(ref, pred, mask_ref, mask_pred)
    assert_same(got, reference_frame_costs(ref, pred, mask_ref, mask_pred))
    assert np.isinf(got[2]).all() and np.isfinite(np.delete(got, 2, axis=0)).all()


@pytest.mark.parametrize("seed", range(6))
def test_dtw_batch_paths_and_tie_breaking_equal_the_reference(seed):
    """Small integer costs make many equal predecessors: the path length shows which
    step was taken (diagonal before up before left, as argmin's first minimum)."""
    rng = np.random.default_rng(seed)
    costs = []
    for _ in range(int(rng.integers(1, 9))):
        cost = rng.integers(0, 3, (int(rng.integers(1, 12)), int(rng.integers(1, 12))))
        cost = cost.astype(float)
        cost[rng.random(cost.shape) < 0.15] = np.inf
        costs.append(cost)
    costs.append(np.zeros((4, 7)))  # all ties: the diagonal first, then left
    costs.append(np.zeros((1, 1)))
    totals, lengths = _dtw_batch(costs)
    expected_totals, expected_lengths = reference_dtw_batch(costs)
    np.testing.assert_array_equal(totals, expected_totals)
    np.testing.assert_array_equal(lengths, expected_lengths)
    assert lengths[-2:].tolist() == [7, 1]
