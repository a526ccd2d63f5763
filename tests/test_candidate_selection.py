"""Minimum-Bayes-risk choice among sampled translations: the medoid under DTW-MJE."""

import numpy as np
import pytest

from signgen.errors import InvalidInputError
from signgen.pipelines.candidate_selection import pairwise_pose_distances, select_medoid


def track(frames: int, seed: int, spread: float = 0.0, offset: float = 0.0) -> np.ndarray:
    """(T,133,2) pixels: shoulders fixed 20 px apart, the other joints a seeded pattern
    plus ``spread`` px of noise and ``offset`` px on every joint but the shoulders."""
    base = np.random.default_rng(0).uniform(20, 80, (1, 133, 2)).repeat(frames, axis=0)
    noise = np.random.default_rng(seed).normal(0, spread, base.shape) if spread else 0
    points = base + noise + offset
    points[:, 5], points[:, 6] = (40.0, 50.0), (60.0, 50.0)
    return points


def visible(points: np.ndarray) -> np.ndarray:
    return np.ones(points.shape[:2], dtype=bool)


def test_the_outlier_is_never_chosen_and_the_medoid_is_the_most_central():
    # Three draws near one signing (one of them exactly on it), one far off.
    tracks = [track(12, 1, spread=2.0), track(12, 0), track(9, 2, spread=2.0),
              track(12, 3, offset=15.0)]
    distances = pairwise_pose_distances(tracks, [visible(t) for t in tracks])
    assert distances.shape == (4, 4) and np.allclose(distances, distances.T)
    assert np.all(np.diag(distances) == 0) and np.all(distances[~np.eye(4, dtype=bool)] > 0)
    chosen, risks = select_medoid(tracks, [visible(t) for t in tracks])
    assert chosen == 1  # the noise-free one sits between the two noisy draws
    assert risks.argmax() == 3 and np.isclose(risks[1], distances[1].sum() / 3)
    # A time-stretched copy of a draw is at DTW distance ~0 from it.
    stretched = np.repeat(tracks[1], 2, axis=0)
    assert pairwise_pose_distances([tracks[1], stretched],
                                   [visible(tracks[1]), visible(stretched)])[0, 1] < 1e-9


def test_a_candidate_without_shoulders_cannot_win_and_one_candidate_is_kept():
    good = [track(8, 1, spread=1.0), track(8, 2, spread=1.0)]
    hidden = track(8, 3)
    mask = visible(hidden)
    mask[:, 5:7] = False  # no frame shows both shoulders: not comparable
    chosen, risks = select_medoid([hidden, *good], [mask, *map(visible, good)])
    assert chosen in (1, 2) and np.isinf(risks[0]) and np.isfinite(risks[1:]).all()
    assert select_medoid([hidden], [mask]) == (0, pytest.approx(np.zeros(1)))
    chosen, risks = select_medoid([hidden, hidden], [mask, mask])
    assert chosen == 0 and np.isinf(risks).all()  # nothing comparable: the first draw


def test_bad_input_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="no candidates"):
        select_medoid([], [])
    with pytest.raises(InvalidInputError, match="visibility masks"):
        pairwise_pose_distances([track(4, 0)], [])
