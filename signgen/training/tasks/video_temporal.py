"""``python train.py --stage video_temporal``: phase 2 of the video model (see ``video.py``)."""

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.training.tasks.video import VideoTask


def build_task(cfg: SignGenConfig) -> VideoTask:
    return VideoTask(cfg, temporal=True)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.video.phase2_train
