"""The evaluation suite: metrics, evaluators (recogniser, keypoint estimator, identity
embedding), baselines and the command that scores a system on a split."""
