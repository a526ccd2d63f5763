"""Minimum-Bayes-risk choice among several sampled translations of one sentence.

The translator samples its tokens; one draw may wander (a sign cut short, a hand that
drifts) where most draws agree. Drawing N candidates and keeping the one that is, on
average, closest to the other N - 1 (the medoid under a pose distance) picks the
consensus signing and discards outliers: minimum-Bayes-risk (MBR) decoding, with the other
candidates standing in for the distribution of translations. It uses nothing but the
model's own samples (no reference, no evaluator model).

The distance between two candidates is the suite's DTW-MJE (``signgen.eval.metrics``):
their 2D keypoints normalised to shoulder widths, on ``DTW_JOINTS`` (arms and hands), time
aligned by dynamic time warping; the same distance whether the candidates differ in
length or not.
"""

from __future__ import annotations

import numpy as np

from signgen.errors import InvalidInputError


def _normalised(keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray | None:
    """(T,133,2) pixels -> (T,J,2) shoulder widths on DTW_JOINTS; None when no frame
    shows both shoulders (such a candidate cannot be compared)."""
    from signgen.eval import metrics

    try:
        normalised = metrics.normalise_keypoints(keypoints, visible)
    except InvalidInputError:
        return None
    return normalised[:, metrics.DTW_JOINTS]


def pairwise_pose_distances(keypoints: list[np.ndarray], visible: list[np.ndarray]
                            ) -> np.ndarray:
    """N candidates' keypoints (T_i,133,2) pixels and visibility (T_i,133) bool -> the
    (N,N) symmetric DTW-MJE matrix in shoulder widths (0 on the diagonal; inf for a pair
    that cannot be compared: a candidate without a visible shoulder pair, or no common
    visible joint). All pairs go through one vectorised DTW."""
    from signgen.eval import metrics

    if len(keypoints) != len(visible):
        raise InvalidInputError(f"{len(keypoints)} keypoint tracks but {len(visible)} "
                                f"visibility masks")
    n = len(keypoints)
    tracks = [_normalised(k, v) for k, v in zip(keypoints, visible, strict=True)]
    usable = [i for i in range(n) if tracks[i] is not None]
    distances = np.full((n, n), np.inf)
    np.fill_diagonal(distances, 0.0)
    # Pairs among the usable candidates, numbered within them for dtw_mje_pairs.
    pairs = [(x, y) for x in range(len(usable)) for y in range(x + 1, len(usable))]
    if pairs:
        masks = [np.asarray(visible[i])[:, metrics.DTW_JOINTS] for i in usable]
        values = metrics.dtw_mje_pairs([tracks[i] for i in usable], masks, pairs)
        rows, cols = np.asarray(usable)[np.array(pairs).T]
        distances[rows, cols] = distances[cols, rows] = values
    return distances


def select_medoid(keypoints: list[np.ndarray], visible: list[np.ndarray]
                  ) -> tuple[int, np.ndarray]:
    """The index of the candidate with the smallest mean distance to the others (the
    lowest index on ties) and every candidate's mean distance (N,) (its Bayes risk), over
    the others it can be compared with (inf when none). One candidate: index 0, risk [0];
    no candidate comparable: index 0."""
    if not keypoints:
        raise InvalidInputError("no candidates to choose from")
    n = len(keypoints)
    if n == 1:
        return 0, np.zeros(1)
    distances = pairwise_pose_distances(keypoints, visible)
    off_diagonal = ~np.eye(n, dtype=bool)
    comparable = np.isfinite(distances) & off_diagonal
    counts = comparable.sum(axis=1)
    totals = np.where(comparable, distances, 0.0).sum(axis=1)
    risks = np.where(counts > 0, totals / np.maximum(counts, 1), np.inf)
    if not np.isfinite(risks).any():  # nothing comparable: keep the first draw
        return 0, risks
    return int(np.argmin(risks)), risks
