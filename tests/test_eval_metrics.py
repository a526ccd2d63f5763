"""Evaluation metrics on hand-made cases: WER/BLEU, DTW-MJE, PCK, PSNR/SSIM, jitter."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signgen.body.keypoints import COCO_WHOLEBODY_NAMES
from signgen.errors import InvalidInputError
from signgen.eval.metrics import (
    DTW_JOINTS,
    bleu4,
    dtw_mje,
    dtw_mje_batch,
    dtw_mje_pairs,
    edit_ops,
    jitter,
    normalise_keypoints,
    pck,
    psnr,
    ssim,
    wer,
)

REF = "IX GO SCHOOL TOMORROW MORNING EARLY".split()


def naive_distance(a, b) -> int:
    """Textbook O(nm) Levenshtein, the oracle for the vectorised one."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            substitute = d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, substitute)
    return d[-1][-1]


# --------------------------------------------------------------------------- glosses


def test_wer_counts_edits_over_reference_tokens():
    assert wer([REF], [REF]) == 0.0
    assert wer([["A", "B", "C", "D"]], [["A", "X", "C", "D"]]) == 0.25
    assert edit_ops(["A", "B", "C", "D"], ["A", "X", "C", "D"]) == (1, 0, 0)
    assert edit_ops(["A", "B", "C"], ["A", "C"]) == (0, 1, 0)
    assert edit_ops(["A", "C"], ["A", "B", "C", "D"]) == (0, 0, 2)
    assert edit_ops([], ["A"]) == (0, 0, 1)
    # Corpus level: 1 + 2 edits over 4 + 2 reference tokens (not a mean of per-pair rates).
    assert wer([["A", "B", "C", "D"], ["E", "F"]], [["A", "B", "C"], []]) == pytest.approx(3 / 6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("ABC"), max_size=8), st.lists(st.sampled_from("ABC"), max_size=8))
def test_edit_distance_matches_oracle_and_bounds(a, b):
    d = sum(edit_ops(a, b))
    assert d == naive_distance(a, b) == sum(edit_ops(b, a))
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert (d == 0) == (a == b)
    if a:
        assert wer([a], [b]) == d / len(a)


def test_bleu_identical_is_100_and_word_order_matters():
    refs = [REF, "HELLO NAME ME ANNA YOU".split()]
    assert bleu4(refs, refs) == pytest.approx(100.0)
    shuffled = [REF[3:] + REF[:3], refs[1][::-1]]
    assert bleu4(refs, shuffled) < 50.0
    # Same bag of glosses: unigram precision is perfect, only order separates them.
    assert sorted(shuffled[0]) == sorted(REF)


def test_bleu_accepts_empty_hypotheses():
    assert bleu4([REF], [[]]) == 0.0
    full = bleu4([REF, REF], [REF, REF])
    assert 0.0 < bleu4([REF, REF], [REF, []]) < full


@pytest.mark.parametrize("fn", [wer, bleu4])
def test_gloss_metrics_reject_bad_corpora(fn):
    with pytest.raises(InvalidInputError, match="2 references but 1 hypotheses"):
        fn([REF, REF], [REF])
    with pytest.raises(InvalidInputError, match="is a string"):
        fn(["IX GO"], [REF])
    with pytest.raises(InvalidInputError, match="whitespace"):
        fn([["IX GO"]], [REF])
    with pytest.raises(InvalidInputError, match="empty"):
        fn([], [])


# --------------------------------------------------------------------------- poses


def test_dtw_joints_are_arms_and_hands():
    names = [COCO_WHOLEBODY_NAMES[i] for i in DTW_JOINTS]
    assert len(names) == 48 and len(set(DTW_JOINTS.tolist())) == 48
    assert names[:6] == [
        "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist",
    ]  # fmt: skip
    # Each hand: its wrist keypoint, then 4 points per finger from thumb to pinky.
    left, right = names[6:27], names[27:]
    assert left[0] == "left_wrist" and left[-1] == "left_pinky"
    assert right[0] == "right_wrist" and right[-1] == "right_pinky"
    assert all(n.startswith("left_") for n in left) and all(n.startswith("right_") for n in right)


def test_dtw_mje_identity_time_warp_and_offset():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 48, 3))
    assert dtw_mje(x, x) == 0.0
    # Stretched (some frames repeated) and delayed (first frame held) copies align exactly.
    stretched = x[np.sort(np.r_[np.arange(40), rng.integers(0, 40, 25)])]
    delayed = x[np.r_[[0] * 7, np.arange(40)]]
    for warped in (stretched, delayed):
        assert dtw_mje(x, warped) < 1e-6 and dtw_mje(warped, x) < 1e-6
    # A constant 3-4-5 offset on every joint: every frame pair on the diagonal costs 5.
    assert dtw_mje(x, x + np.array([0.3, 0.4, 0.0])) == pytest.approx(0.5)


def test_dtw_mje_divides_by_path_length():
    ref = np.array([[[0.0]], [[2.0]]])  # (2, 1, 1)
    pred = np.array([[[1.0]]])  # (1, 1, 1): the path is (0,0), (1,0), costs 1 and 1
    assert dtw_mje(ref, pred) == pytest.approx(1.0)
    # Costs |r - p|: rows [1, 1, 3] and [2, 2, 0]. The unique best path (0,0),(0,1),(1,2)
    # accumulates 1 + 1 + 0 over 3 frame pairs.
    ref = np.array([0.0, 3.0])[:, None, None]
    pred = np.array([1.0, 1.0, 3.0])[:, None, None]
    assert dtw_mje(ref, pred) == pytest.approx(2 / 3)


def test_dtw_mje_masks_drop_joints_and_frames():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 4, 2))
    y = x.copy()
    y[:, 3] += 10.0  # a wrong joint ...
    y[5:8, 1] = np.nan  # ... and an undetected one
    mask_pred = np.ones((20, 4), bool)
    mask_pred[:, 3] = False
    mask_pred[5:8, 1] = False
    assert dtw_mje(x, y, mask_pred=mask_pred) == pytest.approx(0.0, abs=1e-12)
    # A frame with nothing detected is dropped rather than aligned: the reference's frame 10
    # (a held pose, same as frame 9) then pairs with prediction frame 9 at no cost.
    x[10] = x[9]
    y[9] = y[10] = x[9]
    mask_pred[10] = False
    y[10] = np.nan
    assert dtw_mje(x, y, mask_pred=mask_pred) == pytest.approx(0.0, abs=1e-12)
    assert dtw_mje(x, y, mask_ref=mask_pred, mask_pred=mask_pred) == 0.0
    with pytest.raises(InvalidInputError, match="non-finite"):
        dtw_mje(x, y)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_dtw_mje_nonnegative_and_zero_on_identity(t1, t2, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((t1, 3, 2)), rng.standard_normal((t2, 3, 2))
    assert dtw_mje(a, b) >= 0.0 and dtw_mje(a, a) == 0.0
    assert dtw_mje(a, b) == pytest.approx(dtw_mje(b, a))


def test_dtw_mje_batch_and_bad_shapes():
    x = np.zeros((5, 2, 3))
    assert dtw_mje_batch([x, x], [x, x + [0, 0, 2.0]]) == pytest.approx(1.0)
    with pytest.raises(InvalidInputError, match="differ"):
        dtw_mje(x, np.zeros((5, 3, 3)))
    with pytest.raises(InvalidInputError, match="3-d array"):
        dtw_mje(np.zeros((5, 6)), x)
    with pytest.raises(InvalidInputError, match="shape"):
        dtw_mje(x, x, mask_ref=np.ones((4, 2), bool))
    with pytest.raises(InvalidInputError, match="equally many"):
        dtw_mje_batch([x], [x, x])


def test_dtw_mje_pairs_equals_dtw_mje_per_pair_and_inf_where_undefined():
    rng = np.random.default_rng(3)
    tracks = [rng.standard_normal((t, 4, 2)).round(1) for t in (5, 9, 1, 12)]
    masks = [rng.random(t.shape[:2]) > 0.3 for t in tracks]
    masks[2][:] = False  # no present joint: dtw_mje raises, the pair is inf
    pairs = [(a, b) for a in range(4) for b in range(4)]
    values = dtw_mje_pairs(tracks, masks, pairs)
    for (a, b), value in zip(pairs, values, strict=True):
        if 2 in (a, b):
            assert value == np.inf
        else:  # one vectorised DTW over padded matrices: the same numbers, bit for bit
            assert value == dtw_mje(tracks[a], tracks[b], masks[a], masks[b])
    with pytest.raises(InvalidInputError, match="masks"):
        dtw_mje_pairs(tracks, masks[:2], pairs)


def test_normalise_keypoints_uses_shoulders():
    pts = np.zeros((4, 7, 2))
    pts[:, 6] = [2.0, 0.0]  # shoulders (0, 0) and (2, 0): centre (1, 0), width 2 ...
    pts[0, 6] = [4.0, 0.0]  # ... except frame 0: centre (2, 0), width 4
    pts[3, 6] = [10.0, 0.0]
    pts[:, 0] = [1.0, 3.0]
    visible = np.ones((4, 7), bool)
    visible[3, 5] = False  # frame 3 lacks a shoulder -> clip medians: centre (1, 0), width 2
    out = normalise_keypoints(pts, visible)
    np.testing.assert_allclose(out[:, 5], [[-0.5, 0]] * 4)
    np.testing.assert_allclose(out[:, 6], [[0.5, 0], [0.5, 0], [0.5, 0], [4.5, 0]])
    np.testing.assert_allclose(out[:, 0], [[-0.25, 0.75], [0, 1.5], [0, 1.5], [0, 1.5]])
    with pytest.raises(InvalidInputError, match="shoulders"):
        normalise_keypoints(pts, np.zeros((4, 7), bool))


def test_pck_exact_on_handmade_frame():
    ref = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 20.0], [500.0, 500.0]]])
    # bbox of the 3 visible points: 10 x 20 -> scale 20, threshold 0.05 -> 1 px.
    errors = np.array([[0.5, 0.0], [0.0, 1.0], [1.5, 0.0], [99.0, 0.0]])
    visible = np.array([[True, True, True, False]])
    pred = ref + errors
    assert pck(ref, pred, visible) == pytest.approx(2 / 3)  # 1.0 px is on the threshold
    assert pck(ref, pred, visible, threshold=0.1) == 1.0
    assert pck(ref, pred, visible, scale=np.array([10.0])) == pytest.approx(1 / 3)
    # A subset of points is counted against the bbox of every visible point.
    assert pck(ref, pred, visible, points=[1, 2]) == pytest.approx(1 / 2)
    assert pck(ref, pred, visible, points=np.array([0])) == 1.0
    with pytest.raises(InvalidInputError, match="none of the given points is visible"):
        pck(ref, pred, visible, points=[3])
    visible[0, 3] = True  # now the far point counts (and widens the bbox to 500)
    assert pck(ref, pred, visible) == pytest.approx(3 / 4)
    assert pck(ref, pred, visible, points=[2, 3]) == pytest.approx(1 / 2)


def test_pck_rejects_bad_input():
    ref = np.zeros((2, 3, 2))
    with pytest.raises(InvalidInputError, match="prediction shape"):
        pck(ref, np.zeros((2, 4, 2)), np.ones((2, 3), bool))
    with pytest.raises(InvalidInputError, match="bool"):
        pck(ref, ref, np.ones((2, 3)))
    with pytest.raises(InvalidInputError, match="no keypoint is visible"):
        pck(ref, ref, np.zeros((2, 3), bool))
    with pytest.raises(InvalidInputError, match="scale"):
        pck(ref, ref, np.ones((2, 3), bool), scale=np.array([1.0]))


def test_jitter():
    t = np.arange(12, dtype=float)
    linear = np.stack([t * 0.3, -t, np.ones_like(t)], -1)[:, None, :]  # (12, 1, 3)
    assert jitter(linear) == pytest.approx(0.0, abs=1e-12)
    alternating = ((-1.0) ** t)[:, None, None] * np.ones((1, 2, 1))  # +-1 on one axis
    assert jitter(alternating) == pytest.approx(4.0)  # |1 - 2(-1) + 1| at every frame
    visible = np.ones((12, 2), bool)
    visible[::2] = False  # no three consecutive visible frames
    with pytest.raises(InvalidInputError, match="3 frames in a row"):
        jitter(alternating, visible)
    with pytest.raises(InvalidInputError, match="at least 3 frames"):
        jitter(linear[:2])


# --------------------------------------------------------------------------- images


def clip(seed=0, shape=(2, 24, 20, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_psnr_values_and_ranges():
    a = clip()
    assert psnr(a, a) == math.inf
    b = a.copy()
    b[a < 255] += 1
    b[a == 255] -= 1  # every value off by exactly 1 -> MSE 1
    assert psnr(a, b) == pytest.approx(20 * math.log10(255))
    af, bf = a / 255.0, b / 255.0
    assert psnr(af, bf) == pytest.approx(psnr(a, b))
    assert psnr(a.astype(float), b.astype(float), data_range=255) == pytest.approx(psnr(a, b))
    noisy = np.clip(af + np.random.default_rng(1).normal(0, 0.1, a.shape), 0, 1)
    assert psnr(af, noisy) < psnr(a, b)
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        psnr(a.astype(float), b.astype(float))
    with pytest.raises(InvalidInputError, match="both be uint8 or both float"):
        psnr(a, bf)
    with pytest.raises(InvalidInputError, match=r"\(T, H, W, 3\)"):
        psnr(a[0], b[0])


def test_ssim_matches_direct_window_computation():
    a = clip(2, (1, 13, 14, 3)) / 255.0
    b = np.clip(a + np.random.default_rng(3).normal(0, 0.1, a.shape), 0, 1)
    g = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(5, 8):
        for j in range(5, 9):
            for c in range(3):
                x, y = a[0, i - 5 : i + 6, j - 5 : j + 6, c], b[0, i - 5 : i + 6, j - 5 : j + 6, c]
                mx, my = (w * x).sum(), (w * y).sum()
                vx, vy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2
                cov = (w * x * y).sum() - mx * my
                values.append(
                    (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
                )
    assert ssim(a, b) == pytest.approx(np.mean(values), rel=1e-9)
    assert ssim(a, a) == pytest.approx(1.0) and ssim(a, b) < 0.99
    with pytest.raises(InvalidInputError, match="11x11"):
        ssim(a[:, :10], b[:, :10])


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_masked_metrics_ignore_pixels_outside_the_mask(metric):
    a = clip(4, (2, 32, 30, 3))
    b = np.clip(a.astype(int) + np.random.default_rng(5).integers(-20, 21, a.shape), 0, 255)
    b = b.astype(np.uint8)
    mask = np.zeros(a.shape[:3], bool)
    mask[:, 8:24, 9:22] = True
    score = metric(a, b, mask=mask)
    a2, b2 = a.copy(), b.copy()
    a2[~mask] = 0
    b2[~mask] = clip(6, b2[~mask].shape)
    assert metric(a2, b2, mask=mask) == pytest.approx(score, rel=1e-12)
    assert metric(a2, b2) != pytest.approx(metric(a, b))
    b2[mask] = a2[mask]
    assert metric(a2, b2, mask=mask) == pytest.approx(1.0 if metric is ssim else math.inf)
    with pytest.raises(InvalidInputError, match="mask"):
        metric(a, b, mask=np.zeros(a.shape[:3], bool))
