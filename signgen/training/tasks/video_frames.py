"""``python train.py --stage video_frames``: phase 1 of the video model (see ``video.py``)."""

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.training.tasks.video import VideoTask


def build_task(cfg: SignGenConfig) -> VideoTask:
    return VideoTask(cfg, temporal=False)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.video.phase1_train
