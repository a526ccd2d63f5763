"""``python train.py --stage vae_decoder``: fine-tune the small VAE's decoder only
(see ``VAETask`` in ``vae.py``)."""

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.training.tasks.vae import VAETask


def build_task(cfg: SignGenConfig) -> VAETask:
    return VAETask(cfg, decoder_only=True)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.video.vae_decoder_train
