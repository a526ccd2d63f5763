"""The shared training loop: loss falls, checkpoints are crash-safe, resume, export."""

import json
import shutil
from pathlib import Path

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch.utils.data import TensorDataset

from signgen.config.schema import TrainConfig
from signgen.training.checkpoints import complete_checkpoints
from signgen.training.loop import run_training


class Linear(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, dim: int = 4):
        super().__init__()
        self.proj = torch.nn.Linear(dim, 1)

    def forward(self, x):
        return self.proj(x)


class ToyTask:
    """Fit y = x @ w on 64 fixed points."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def build_model(self):
        return Linear(4)

    def train_dataset(self):
        return TensorDataset(self.x, self.y)

    def collate(self, items):
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def loss(self, model, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y), {}

    def evaluate(self, model):
        return {"mse": torch.nn.functional.mse_loss(model(self.x), self.y).item()}

    def export(self, model, folder: Path):
        model.save_pretrained(folder)


def cfg(**kw):
    base = dict(max_steps=60, batch_size=16, learning_rate=0.3, warmup_steps=5,
                log_every=10, eval_every=30, save_every=20, keep_checkpoints=2)
    return TrainConfig(**{**base, **kw})


def test_loss_falls_and_the_export_reloads_identically(tmp_path):
    task = ToyTask()
    folder = run_training(task, cfg(), tmp_path, seed=0, device="cpu", progress=False,
                          metadata={"command": "test"})
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["eval/mse"] < 0.1 * task.evaluate(Linear(4))["mse"]
    model = Linear.from_pretrained(folder)
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] == 60 and info["command"] == "test"
    assert abs(task.evaluate(model)["mse"] - log[-1]["eval/mse"]) < 1e-6
    # Checkpoints rotate: only the newest two complete ones remain (the last is final).
    assert [s for s, _ in complete_checkpoints(tmp_path)] == [40, 60]


def test_resume_uses_the_last_complete_checkpoint(tmp_path):
    task = ToyTask()
    run_training(task, cfg(max_steps=30), tmp_path, seed=0, device="cpu", progress=False)
    # Simulate a kill after step 20's checkpoint: drop the final (step 30) checkpoint.
    shutil.rmtree(tmp_path / "checkpoints" / "step-30")
    # A crash while writing step 60 leaves a temporary folder; it must be ignored.
    partial = tmp_path / "checkpoints" / ".tmp-step-60"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"garbage")
    run_training(task, cfg(max_steps=60), tmp_path, seed=0, device="cpu", progress=False)
    assert not partial.exists()
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log]
    # The second run continued after step 20 (the last complete checkpoint): it logged
    # steps 30..60 again.
    assert steps[-1] == 60 and steps.count(30) == 2
    assert json.loads((tmp_path / "model" / "training.json").read_text())["steps"] == 60


def test_same_seed_same_result(tmp_path):
    a = run_training(ToyTask(), cfg(max_steps=20), tmp_path / "a", seed=3, device="cpu",
                     progress=False)
    b = run_training(ToyTask(), cfg(max_steps=20), tmp_path / "b", seed=3, device="cpu",
                     progress=False)
    wa, wb = Linear.from_pretrained(a).proj.weight, Linear.from_pretrained(b).proj.weight
    assert torch.equal(wa, wb)
