"""Scalar evaluation metrics: gloss WER/BLEU, pose DTW-MJE/PCK/jitter, image PSNR/SSIM.

Pure functions: numpy arrays (or token lists) in, python floats out, deterministic. Every
malformed input raises :class:`~signgen.errors.InvalidInputError` naming the problem.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sacrebleu
from scipy.ndimage import gaussian_filter
from scipy.spatial.distance import cdist

from signgen.errors import InvalidInputError

# COCO-WholeBody indices the suite scores with DTW-MJE: body joints 5-10 (left/right
# shoulder, elbow, wrist) and the 21 + 21 hand keypoints 91-132 (left hand, then right).
# Legs and face are left out: they carry little of the signing and are often off-frame.
DTW_JOINTS = np.array([*range(5, 11), *range(91, 133)], dtype=np.intp)
DTW_JOINTS.setflags(write=False)

# COCO-WholeBody's 21 + 21 hand keypoints (left hand, then right): ``pck_hands``.
HAND_POINTS = np.arange(91, 133, dtype=np.intp)
HAND_POINTS.setflags(write=False)

# COCO(-WholeBody) left and right shoulder, the anchor of `normalise_keypoints`.
_SHOULDERS = (5, 6)

# SSIM constants of Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1, K2.
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


# --------------------------------------------------------------------------- glosses


def _check_corpus(references, hypotheses) -> None:
    if len(references) != len(hypotheses):
        raise InvalidInputError(
            f"got {len(references)} references but {len(hypotheses)} hypotheses; "
            "they must pair up one to one"
        )
    if len(references) == 0:
        raise InvalidInputError("the corpus is empty: give at least one reference/hypothesis")
    for name, corpus in (("reference", references), ("hypothesis", hypotheses)):
        for i, sentence in enumerate(corpus):
            if isinstance(sentence, str):
                raise InvalidInputError(
                    f"{name} {i} is a string; pass a list of gloss tokens (e.g. str.split())"
                )
            for token in sentence:
                if not isinstance(token, str) or not token or token != "".join(token.split()):
                    raise InvalidInputError(
                        f"{name} {i} has token {token!r}; gloss tokens are non-empty strings "
                        "without whitespace"
                    )


def edit_ops(ref: Sequence[str], hyp: Sequence[str]) -> tuple[int, int, int]:
    """Levenshtein alignment of one gloss sequence pair -> (substitutions, deletions, insertions).

    Their sum is the edit distance. Among equally short alignments the backtrace prefers a
    match/substitution, then a deletion, then an insertion (the usual WER convention).
    """
    tokens = {t: i for i, t in enumerate(dict.fromkeys([*ref, *hyp]))}
    r = np.array([tokens[t] for t in ref], dtype=np.int64)
    h = np.array([tokens[t] for t in hyp], dtype=np.int64)
    n, m = len(r), len(h)
    # dist[i, j]: edits turning ref[:i] into hyp[:j]. Row i from row i-1: deletion (up) and
    # match/substitution (diagonal) are elementwise; the chain of insertions along the row
    # is a running minimum: dist[i, j] = min_k (tmp[k] + j - k) = j + cummin(tmp - k).
    dist = np.empty((n + 1, m + 1), dtype=np.int64)
    dist[0] = np.arange(m + 1)
    cols = np.arange(m + 1)
    for i in range(1, n + 1):
        tmp = np.empty(m + 1, dtype=np.int64)
        tmp[0] = i
        tmp[1:] = np.minimum(dist[i - 1, 1:] + 1, dist[i - 1, :-1] + (h != r[i - 1]))
        dist[i] = cols + np.minimum.accumulate(tmp - cols)
    subs = dels = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dist[i, j] == dist[i - 1, j - 1] + (r[i - 1] != h[j - 1]):
            subs += int(r[i - 1] != h[j - 1])
            i, j = i - 1, j - 1
        elif i > 0 and dist[i, j] == dist[i - 1, j] + 1:
            dels += 1
            i -= 1
        else:
            ins += 1
            j -= 1
    return subs, dels, ins


def wer(references: list[list[str]], hypotheses: list[list[str]]) -> float:
    """Corpus word error rate on gloss tokens, a fraction (0 = perfect; can exceed 1).

    Total Levenshtein edits (substitutions + deletions + insertions) over all pairs divided
    by the total number of reference tokens, so long sentences weigh more than short ones.
    """
    _check_corpus(references, hypotheses)
    total = sum(len(r) for r in references)
    if total == 0:
        raise InvalidInputError("WER is undefined: every reference is empty")
    edits = sum(sum(edit_ops(r, h)) for r, h in zip(references, hypotheses, strict=True))
    return edits / total


def bleu4(references: list[list[str]], hypotheses: list[list[str]]) -> float:
    """Corpus BLEU-4 in 0..100 (sacrebleu, one reference per sentence).

    Sentences are the space-joined gloss tokens scored with ``tokenize="none"`` (glosses are
    tokens already) and sacrebleu's default ``exp`` smoothing. An empty hypothesis is allowed
    and matches nothing. A corpus whose sentences are all shorter than 4 tokens has no 4-grams
    and scores 0 even when identical (corpus BLEU does not lower its order).
    """
    _check_corpus(references, hypotheses)
    score = sacrebleu.corpus_bleu(
        [" ".join(h) for h in hypotheses], [[" ".join(r) for r in references]], tokenize="none"
    )
    return float(score.score)


# --------------------------------------------------------------------------- poses


def _as_points(name: str, points, ndim: int = 3) -> np.ndarray:
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} is not a numeric array: {exc}") from None
    if arr.ndim != ndim or 0 in arr.shape:
        raise InvalidInputError(
            f"{name} must be a non-empty {ndim}-d array (frames, joints, coords), "
            f"got shape {arr.shape}"
        )
    return arr


def _as_mask(name: str, mask, shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    """Boolean visibility of shape `shape` (all True for None); visible points must be finite."""
    if mask is None:
        mask = np.ones(shape, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise InvalidInputError(f"{name} must be a bool array, got dtype {mask.dtype}")
        if mask.shape != shape:
            raise InvalidInputError(f"{name} must have shape {shape}, got {mask.shape}")
    if not np.isfinite(points[mask]).all():
        raise InvalidInputError(
            f"non-finite coordinates at joints marked visible by {name}; mark them not visible"
        )
    return mask


def normalise_keypoints(points, visible=None) -> np.ndarray:
    """Make keypoints comparable across signers and framings: (T, K, D) -> (T, K, D).

    Per frame, subtract the midpoint of the shoulders (COCO indices 5 and 6) and divide by
    the shoulder width (their Euclidean distance), so the output is in shoulder widths
    centred on the neck. A frame whose shoulders are missing (not `visible`, non-finite, or
    coincident) uses the clip's median centre and median width instead. `visible` (T, K)
    bool defaults to "every finite point"; other missing points stay as they are (NaN stays
    NaN). Raises if no frame of the clip shows both shoulders.
    """
    pts = _as_points("points", points)
    if pts.shape[1] <= max(_SHOULDERS):
        raise InvalidInputError(
            f"points has {pts.shape[1]} keypoints; COCO layout needs the shoulders at 5 and 6"
        )
    left, right = pts[:, _SHOULDERS[0]], pts[:, _SHOULDERS[1]]
    ok = np.isfinite(left).all(-1) & np.isfinite(right).all(-1)
    if visible is not None:
        vis = np.asarray(visible)
        if vis.dtype != bool or vis.shape != pts.shape[:2]:
            raise InvalidInputError(
                f"visible must be a bool array of shape {pts.shape[:2]}, "
                f"got {vis.dtype} {vis.shape}"
            )
        ok &= vis[:, _SHOULDERS[0]] & vis[:, _SHOULDERS[1]]
    centre = (left + right) / 2
    width = np.linalg.norm(left - right, axis=-1)
    ok &= width > 0
    if not ok.any():
        raise InvalidInputError("cannot normalise: no frame shows both shoulders (COCO 5, 6)")
    centre = np.where(ok[:, None], centre, np.median(centre[ok], axis=0))
    width = np.where(ok, width, np.median(width[ok]))
    return (pts - centre[:, None, :]) / width[:, None, None]


def _frame_costs(ref, pred, mask_ref, mask_pred) -> np.ndarray:
    """(T1, T2) mean Euclidean distance over the joints present in both frames; inf if none.

    ref (T1, J, D), pred (T2, J, D), masks (T1, J) / (T2, J) bool. One ``cdist`` per joint
    into a reused buffer, absent rows/columns zeroed, summed over the joints in order (the
    same floating-point sums as a masked per-joint loop)."""
    # Missing joints may hold NaN: zero-fill them before cdist; their distances are zeroed.
    ref = np.where(mask_ref[..., None], ref, 0.0)
    pred = np.where(mask_pred[..., None], pred, 0.0)
    total = np.zeros((len(ref), len(pred)))
    distance = np.empty_like(total)
    for k in range(ref.shape[1]):
        rows, cols = mask_ref[:, k], mask_pred[:, k]
        if not (rows.any() and cols.any()):
            continue
        cdist(np.ascontiguousarray(ref[:, k]), np.ascontiguousarray(pred[:, k]),
              out=distance)
        if not rows.all():
            distance[~rows] = 0.0
        if not cols.all():
            np.copyto(distance, 0.0, where=~cols)
        total += distance
    count = _common_counts(mask_ref, mask_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.inf)


def _common_counts(mask_ref, mask_pred) -> np.ndarray:
    """(T1, J), (T2, J) bool -> (T1, T2) int64, the joints present in both frames: exact
    integer products of the clips' distinct mask rows (a clip has few), no BLAS call."""
    rows, row_of = _distinct_rows(mask_ref)
    cols, col_of = _distinct_rows(mask_pred)
    common = rows.astype(np.int64) @ cols.T.astype(np.int64)
    return common[row_of[:, None], col_of[None, :]]


def _distinct_rows(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, J) bool -> its distinct rows (U, J) and each row's index into them (T,)."""
    packed = np.packbits(mask, axis=1)  # (T, ceil(J / 8)) uint8
    words = np.zeros((len(mask), -(-packed.shape[1] // 8) * 8), dtype=np.uint8)
    words[:, :packed.shape[1]] = packed
    words = words.view(np.uint64)  # (T, W): a row's bits, 64 joints to a word
    if words.shape[1] == 1:  # one integer per row: a plain sort
        _, first, inverse = np.unique(words[:, 0], return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(words, axis=0, return_index=True, return_inverse=True)
    return mask[first], inverse.reshape(-1)


def _dtw(cost: np.ndarray) -> tuple[float, int]:
    """Optimal DTW path through a (T1, T2) cost matrix -> (accumulated cost, path length).

    Steps are (1, 1), (1, 0), (0, 1); the path runs from (0, 0) to (T1-1, T2-1). On cost
    ties the diagonal step wins, giving the shorter path. See :func:`_dtw_batch`.
    """
    totals, lengths = _dtw_batch([cost])
    return float(totals[0]), int(lengths[0])


def _dtw_batch(costs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_dtw` of several (T1_p, T2_p) cost matrices at once -> accumulated costs (P,)
    float and path lengths (P,) int. Cells on an anti-diagonal depend only on the two
    previous ones, so each anti-diagonal of every matrix is one numpy step; smaller
    matrices are padded with inf, which never reaches a cell inside them (a cell depends
    only on cells above and left of it).

    The accumulated costs are kept per anti-diagonal, indexed by row i (T1+1, P), in three
    rotating buffers, so the diagonal, up and left predecessors are plain slices; the
    costs (T1, T2, P) of an anti-diagonal are a strided slice of their flat view. The step
    taken is the first minimum of (diagonal, up, left), as an argmin would pick it."""
    sizes = np.array([c.shape for c in costs], dtype=np.int64).reshape(-1, 2)
    p, (t1, t2) = len(costs), sizes.max(axis=0)
    padded = np.full((t1, t2, p), np.inf)
    for index, cost in enumerate(costs):
        padded[:cost.shape[0], :cost.shape[1], index] = cost
    flat = padded.reshape(t1 * t2, p)  # cell (i, j) at row i * t2 + j
    step = max(t2 - 1, 1)  # along an anti-diagonal (t2 = 1: one cell per diagonal)
    # acc[s % 3][i]: accumulated cost of cell (i, s - i) on anti-diagonal s of the
    # (T1+1, T2+1) table whose row 0 and column 0 are inf except (0, 0) = 0.
    acc = np.full((3, t1 + 1, p), np.inf)
    acc[0, 0] = 0.0
    length = np.zeros((3, t1 + 1, p), dtype=np.int64)
    ends = sizes.sum(axis=1)  # the anti-diagonal of each matrix's last cell
    finishing = {int(s): np.flatnonzero(ends == s) for s in np.unique(ends)}
    totals, lengths = np.full(p, np.inf), np.zeros(p, dtype=np.int64)
    for s in range(2, t1 + t2 + 1):
        lo, hi = max(1, s - t2), min(t1, s - 1)  # rows of the inner cells on diagonal s
        acc2, acc1, acc0 = acc[(s - 2) % 3], acc[(s - 1) % 3], acc[s % 3]
        len2, len1, len0 = length[(s - 2) % 3], length[(s - 1) % 3], length[s % 3]
        diag, up, left = acc2[lo - 1:hi], acc1[lo - 1:hi], acc1[lo:hi + 1]
        diag_first = diag <= up  # ties: diagonal before up before left
        best = np.where(diag_first, diag, up)
        best_first = best <= left
        start = (lo - 1) * (t2 - 1) + s - 2  # cost of cell (lo, s - lo): padded[lo-1, s-lo-1]
        cost = flat[start:start + (hi - lo) * step + 1:step]
        np.add(cost, np.where(best_first, best, left), out=acc0[lo:hi + 1])
        steps = np.where(best_first, np.where(diag_first, len2[lo - 1:hi], len1[lo - 1:hi]),
                         len1[lo:hi + 1])
        np.add(steps, 1, out=len0[lo:hi + 1])
        if s == 2:  # this buffer holds diagonal 3 next: (0, 3) is inf, not (0, 0)'s 0
            acc[0, 0] = np.inf
        done = finishing.get(s)
        if done is not None:
            totals[done] = acc0[sizes[done, 0], done]
            lengths[done] = len0[sizes[done, 0], done]
    return totals, lengths


def dtw_mje(reference, prediction, mask_ref=None, mask_pred=None) -> float:
    """Mean per-joint position error after dynamic time warping (DTW-MJE), >= 0.

    reference (T1, J, D) and prediction (T2, J, D) are joint tracks in the same units, and
    the result is in those units: the suite feeds 3D joints in metres, or 2D keypoints put
    through :func:`normalise_keypoints` (shoulder widths), each restricted to `DTW_JOINTS`
    (COCO-WholeBody 5-10 shoulders/elbows/wrists + hands 91-132). mask_ref (T1, J) and
    mask_pred (T2, J) bool mark present joints (None = all present; absent ones may be NaN).

    The cost of frame pair (i, j) is the mean over joints present in both frames of the
    Euclidean distance. Standard DTW (steps (1,1), (1,0), (0,1), from the first to the last
    frame pair) minimises the accumulated cost, and the result is that accumulated cost
    divided by the number of frame pairs on the optimal path. Frames with no present joint
    are dropped first; raises if a clip has none left or no path avoids frame pairs without
    a common joint.
    """
    ref = _as_points("reference", reference)
    pred = _as_points("prediction", prediction)
    if ref.shape[1:] != pred.shape[1:]:
        raise InvalidInputError(
            f"reference joints/coords {ref.shape[1:]} differ from prediction's {pred.shape[1:]}"
        )
    m_ref = _as_mask("mask_ref", mask_ref, ref.shape[:2], ref)
    m_pred = _as_mask("mask_pred", mask_pred, pred.shape[:2], pred)
    total, length = _dtw(_pair_costs(ref, pred, m_ref, m_pred))
    if not np.isfinite(total):
        raise InvalidInputError(
            "DTW-MJE is undefined: every alignment pairs frames that share no present joint"
        )
    return total / length


def _pair_costs(ref, pred, m_ref, m_pred) -> np.ndarray:
    """The DTW cost matrix of two checked clips, frames without a present joint dropped."""
    keep_ref, keep_pred = m_ref.any(1), m_pred.any(1)
    if not keep_ref.any() or not keep_pred.any():
        raise InvalidInputError("DTW-MJE needs at least one frame with a present joint per clip")
    return _frame_costs(ref[keep_ref], pred[keep_pred], m_ref[keep_ref], m_pred[keep_pred])


# Frame-cost blocks of one clip against several are computed together up to this many
# cells (T1 x sum of T2): few numpy calls, buffers that stay in cache.
_COST_BLOCK_CELLS = 1 << 18


def _grouped_pair_costs(clips, pairs) -> dict[tuple[int, int], np.ndarray]:
    """:func:`_frame_costs` of every distinct (a, b) in ``pairs``: clips, a list of
    ((T_i, J, D) points, (T_i, J) mask) of non-empty clips -> {(a, b): (T_a, T_b)}. The
    clips b paired with one a are stacked along time and read in one call (in blocks of
    about ``_COST_BLOCK_CELLS``), the cost matrix split back per b."""
    partners: dict[int, dict[int, None]] = {}
    for a, b in pairs:
        partners.setdefault(int(a), {})[int(b)] = None
    blocks = {}
    for a, others in partners.items():
        ref, mask_ref = clips[a]
        groups, cells = [[]], 0
        for b in others:
            size = len(ref) * len(clips[b][0])
            if groups[-1] and cells + size > _COST_BLOCK_CELLS:
                groups.append([])
                cells = 0
            groups[-1].append(b)
            cells += size
        for group in groups:
            cost = _frame_costs(ref, np.concatenate([clips[b][0] for b in group]), mask_ref,
                                np.concatenate([clips[b][1] for b in group]))
            bounds = np.cumsum([len(clips[b][0]) for b in group])[:-1]
            blocks.update(((a, b), block) for b, block in
                          zip(group, np.split(cost, bounds, axis=1), strict=True))
    return blocks


def dtw_mje_pairs(tracks, masks, pairs) -> np.ndarray:
    """:func:`dtw_mje` of many clip pairs at once (one vectorised DTW): tracks, a list of
    (T_i, J, D) arrays; masks, a list of (T_i, J) bool masks or None entries; pairs, (P, 2)
    indices into them -> (P,) DTW-MJE, inf where :func:`dtw_mje` would raise (no present
    joint in a clip, or no alignment through common joints)."""
    if len(masks) != len(tracks):
        raise InvalidInputError(f"{len(tracks)} tracks but {len(masks)} masks")
    points = [_as_points(f"tracks[{i}]", t) for i, t in enumerate(tracks)]
    checked = [_as_mask(f"masks[{i}]", m, p.shape[:2], p)
               for i, (p, m) in enumerate(zip(points, masks, strict=True))]
    pairs = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
    result = np.full(len(pairs), np.inf)
    for a, b in pairs:
        if points[a].shape[1:] != points[b].shape[1:]:
            raise InvalidInputError(f"tracks {a} and {b} differ in joints/coords")
    # As _pair_costs: frames without a present joint dropped; a clip left empty gives inf.
    present = [m.any(1) for m in checked]
    clips = [(p[f], m[f]) if f.any() else None
             for p, m, f in zip(points, checked, present, strict=True)]
    pairs = pairs % max(len(points), 1)  # the indices checked above, made non-negative
    kept = [(row, (int(a), int(b))) for row, (a, b) in enumerate(pairs)
            if clips[a] is not None and clips[b] is not None]
    rows = [row for row, _ in kept]
    blocks = _grouped_pair_costs(clips, [pair for _, pair in kept])
    costs = [blocks[pair] for _, pair in kept]
    if costs:
        totals, lengths = _dtw_batch(costs)
        with np.errstate(invalid="ignore"):
            result[rows] = np.where(np.isfinite(totals), totals / np.maximum(lengths, 1),
                                    np.inf)
    return result


def dtw_mje_batch(references, predictions, masks_ref=None, masks_pred=None) -> float:
    """Mean of :func:`dtw_mje` over clip pairs (each clip weighs the same).

    references/predictions: equally long lists of (T_i, J, D) arrays; masks_ref/masks_pred:
    None or lists of matching (T_i, J) bool masks (None entries allowed).
    """
    n = len(references)
    if n == 0 or len(predictions) != n:
        raise InvalidInputError(
            f"need equally many (>0) references and predictions, got {n} and {len(predictions)}"
        )
    masks_ref = [None] * n if masks_ref is None else list(masks_ref)
    masks_pred = [None] * n if masks_pred is None else list(masks_pred)
    if len(masks_ref) != n or len(masks_pred) != n:
        raise InvalidInputError(f"masks must be lists of {n} entries, one per clip")
    scores = [
        dtw_mje(r, p, mr, mp)
        for r, p, mr, mp in zip(references, predictions, masks_ref, masks_pred, strict=True)
    ]
    return float(np.mean(scores))


def pck(reference, prediction, visible, threshold: float = 0.05, scale="bbox",
        points=None) -> float:
    """Percentage of correct keypoints as a fraction in [0, 1].

    reference/prediction (N, K, D) (usually D = 2, pixels), visible (N, K) bool: the
    keypoints that count (visible in the reference). A keypoint is correct when its
    Euclidean error is <= threshold * scale[n]. scale "bbox": per frame, the longer side of
    the axis-aligned bounding box of that frame's visible reference keypoints (a frame with
    a single visible keypoint has scale 0: only exact hits count). Or an explicit (N,) array
    of positive scales in the same units (e.g. head or torso size). ``points``: indices of
    the keypoints to count (e.g. ``HAND_POINTS``; None: all); the bbox scale still spans
    every visible keypoint.
    """
    ref = _as_points("reference", reference)
    pred = _as_points("prediction", prediction)
    if pred.shape != ref.shape:
        raise InvalidInputError(f"prediction shape {pred.shape} != reference shape {ref.shape}")
    vis = _as_mask("visible", visible, ref.shape[:2], ref)
    if not np.isfinite(pred[vis]).all():
        raise InvalidInputError("prediction has non-finite coordinates at visible keypoints")
    if not vis.any():
        raise InvalidInputError("PCK is undefined: no keypoint is visible")
    if not np.isfinite(threshold) or threshold < 0:
        raise InvalidInputError(f"threshold must be a finite number >= 0, got {threshold}")
    if isinstance(scale, str):
        if scale != "bbox":
            raise InvalidInputError(f"scale must be 'bbox' or an (N,) array, got {scale!r}")
        lo = np.where(vis[..., None], ref, np.inf).min(axis=1)
        hi = np.where(vis[..., None], ref, -np.inf).max(axis=1)
        # Frames without visible keypoints give -inf here; they have nothing to score.
        per_frame = np.where(vis.any(1), (hi - lo).max(axis=1), 0.0)
    else:
        per_frame = np.asarray(scale, dtype=np.float64)
        if per_frame.shape != (len(ref),) or not (np.isfinite(per_frame) & (per_frame > 0)).all():
            raise InvalidInputError(
                f"scale array must hold {len(ref)} finite positive values, got {per_frame.shape}"
            )
    error = np.linalg.norm(np.where(vis[..., None], pred - ref, 0.0), axis=-1)
    correct = error <= threshold * per_frame[:, None]
    if points is not None:
        correct, vis = correct[:, points], vis[:, points]
        if not vis.any():
            raise InvalidInputError("PCK is undefined: none of the given points is visible")
    return float(correct[vis].mean())


def jitter(keypoints, visible=None) -> float:
    """Temporal roughness: mean acceleration norm, in input units per frame^2, >= 0.

    keypoints (T, K, D), visible (T, K) bool or None (all visible). The acceleration of joint
    k at frame t is x[t+1] - 2 x[t] + x[t-1]; its Euclidean norm is averaged over every
    (t, k) whose three frames are all visible. A constant-velocity track scores 0.
    """
    pts = _as_points("keypoints", keypoints)
    vis = _as_mask("visible", visible, pts.shape[:2], pts)
    if len(pts) < 3:
        raise InvalidInputError(f"jitter needs at least 3 frames, got {len(pts)}")
    valid = vis[2:] & vis[1:-1] & vis[:-2]
    if not valid.any():
        raise InvalidInputError("jitter is undefined: no joint is visible in 3 frames in a row")
    filled = np.where(vis[..., None], pts, 0.0)
    acc = filled[2:] - 2 * filled[1:-1] + filled[:-2]
    return float(np.linalg.norm(acc, axis=-1)[valid].mean())


# --------------------------------------------------------------------------- images


def _as_images(a, b, data_range) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate two (T, H, W, 3) clips; returns them unchanged plus their data range."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 4 or a.shape[-1] != 3 or 0 in a.shape:
        raise InvalidInputError(f"images must have shape (T, H, W, 3), got {a.shape}")
    if b.shape != a.shape:
        raise InvalidInputError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.dtype == np.uint8 and b.dtype == np.uint8:
        inferred = 255.0
    elif a.dtype.kind == "f" and b.dtype.kind == "f":
        inferred = 1.0
    else:
        raise InvalidInputError(
            f"images must both be uint8 or both float, got {a.dtype} and {b.dtype}"
        )
    rng = inferred if data_range is None else float(data_range)
    if not rng > 0:
        raise InvalidInputError(f"data_range must be > 0, got {data_range}")
    if a.dtype.kind == "f":
        for name, x in (("a", a), ("b", b)):
            if not np.isfinite(x).all() or x.min() < 0 or x.max() > rng:
                raise InvalidInputError(
                    f"float image {name} must lie in [0, {rng:g}] (got "
                    f"[{np.nanmin(x):g}, {np.nanmax(x):g}]); pass data_range=255 for 0..255 floats"
                )
    return a, b, rng


def _as_pixel_mask(mask, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != shape:
        raise InvalidInputError(
            f"mask must be a bool array of shape {shape} (T, H, W), got {mask.dtype} {mask.shape}"
        )
    return mask


def psnr(a, b, mask=None, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio of two clips in dB; ``inf`` for identical clips.

    a, b (T, H, W, 3), both uint8 (peak 255) or both float, assumed in [0, 1] (peak 1; values
    outside raise) unless `data_range` gives the peak (e.g. 255 for 0..255 floats). The mean
    squared error is pooled over the whole clip (all frames, pixels, channels) before the
    log, so one PSNR per clip. mask (T, H, W) bool restricts it to those pixels (e.g. the
    signer's silhouette): pixels outside never enter.
    """
    a, b, peak = _as_images(a, b, data_range)
    m = _as_pixel_mask(mask, a.shape[:3])
    n = int(m.sum())
    if n == 0:
        raise InvalidInputError("mask selects no pixel")
    sq = 0.0
    for t in range(len(a)):  # per frame: bounds the float64 working memory
        diff = a[t].astype(np.float64) - b[t].astype(np.float64)
        sq += float(np.square(diff[m[t]]).sum())
    mse = sq / (n * 3)
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(peak**2 / mse))


def ssim(a, b, mask=None, data_range: float | None = None) -> float:
    """Mean structural similarity (Wang et al. 2004) of two clips, <= 1 (1 = identical).

    a, b and data_range as in :func:`psnr`. Local statistics use the standard 11x11 Gaussian
    window (sigma 1.5) with K1 = 0.01, K2 = 0.03 and no sample-size correction; SSIM is
    computed on each RGB channel separately and the map averaged over channels, pixels and
    frames. Pixels within 5 px of the border are left out (the window would leave the
    image), as in the reference implementation. Needs H, W >= 11.

    With mask (T, H, W) bool the local means/variances are mask-weighted Gaussian averages
    (normalised convolution) and the map is averaged over mask pixels only, so pixels outside
    the mask never enter the score. Without a mask this is plain SSIM.
    """
    a, b, peak = _as_images(a, b, data_range)
    if min(a.shape[1:3]) < 2 * _SSIM_RADIUS + 1:
        raise InvalidInputError(f"SSIM needs images of at least 11x11 pixels, got {a.shape[1:3]}")
    m = _as_pixel_mask(mask, a.shape[:3])
    inner = (slice(_SSIM_RADIUS, -_SSIM_RADIUS), slice(_SSIM_RADIUS, -_SSIM_RADIUS))
    if not m[(slice(None), *inner)].any():
        raise InvalidInputError("mask selects no pixel at least 5 px away from the border")
    c1, c2 = (_SSIM_K1 * peak) ** 2, (_SSIM_K2 * peak) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        # truncate * sigma = radius 5 -> an 11-tap normalised Gaussian; channels untouched.
        sigma = (_SSIM_SIGMA, _SSIM_SIGMA, 0)[: x.ndim]
        return gaussian_filter(x, sigma=sigma, truncate=_SSIM_RADIUS / _SSIM_SIGMA)

    total, count = 0.0, 0
    for t in range(len(a)):  # per frame: bounds the float64 working memory
        inside = m[t][inner]
        if not inside.any():
            continue
        x, y = a[t].astype(np.float64), b[t].astype(np.float64)
        w = m[t].astype(np.float64)
        norm = blur(w)[..., None]
        wx, wy = w[..., None] * x, w[..., None] * y
        with np.errstate(divide="ignore", invalid="ignore"):
            # Outside the mask `norm` may be 0; those pixels are never averaged.
            mu_x, mu_y = blur(wx) / norm, blur(wy) / norm
            var_x = blur(wx * x) / norm - mu_x**2
            var_y = blur(wy * y) / norm - mu_y**2
            cov = blur(wx * y) / norm - mu_x * mu_y
            num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
            den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        total += float((num[inner][inside] / den[inner][inside]).sum())
        count += int(inside.sum()) * 3
    return total / count
