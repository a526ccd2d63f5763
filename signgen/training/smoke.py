"""Smoke test of the training loop under several processes: a toy regression, DDP.

    ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 \\
        -m signgen.training.smoke --run-dir outputs/smoke --steps 2

(``ACCELERATE_USE_CPU=1`` only on a CPU machine; ``accelerate launch --cpu`` starts a
single process there.) Each process writes ``<run-dir>/rank-<r>.json``: the number of
processes, the sample ids it trained on per step and the weights it held before each
step, so a test can check that the processes saw disjoint data and that DDP kept their
weights identical. The model is a plain ``torch.nn.Linear(4, 1)`` exported as
``model/model.safetensors``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

DIM = 4


class ToyRegression:
    """``TrainingTask``: fit y = x @ w on 64 fixed points, EMA on, batches named by id."""

    ema_decay = 0.9

    def __init__(self, size: int = 64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(size, DIM, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
        self.seen: list[dict] = []

    def build_model(self) -> torch.nn.Module:
        return torch.nn.Linear(DIM, 1)

    def train_dataset(self) -> list[dict]:
        return [{"sample_id": f"toy-{i:03d}", "x": x, "y": y}
                for i, (x, y) in enumerate(zip(self.x, self.y, strict=True))]

    def collate(self, items: list[dict]) -> dict:
        return {"sample_ids": [item["sample_id"] for item in items],
                "x": torch.stack([item["x"] for item in items]),
                "y": torch.stack([item["y"] for item in items])}

    def loss(self, model, batch: dict):
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        self.seen.append({"sample_ids": batch["sample_ids"], "weights": weights.tolist()})
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"]), {}

    def evaluate(self, model) -> dict[str, float]:
        return {"mse": torch.nn.functional.mse_loss(model(self.x), self.y).item()}

    def export(self, model, folder: Path) -> None:
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(folder / "model.safetensors"))


def main(run_dir: Path, steps: int, device: str = "auto", save_every: int | None = None) -> Path:
    from accelerate import PartialState

    from signgen.config.schema import TrainConfig
    from signgen.training.loop import run_training

    task = ToyRegression()
    cfg = TrainConfig(max_steps=steps, batch_size=8, learning_rate=0.1, warmup_steps=0,
                      log_every=1, eval_every=steps, save_every=save_every or steps,
                      keep_checkpoints=2)
    folder = run_training(task, cfg, run_dir, seed=0, device=device, progress=False)
    state = PartialState()
    report = {"rank": state.process_index, "processes": state.num_processes,
              "steps": task.seen}
    (run_dir / f"rank-{state.process_index}.json").write_text(json.dumps(report) + "\n")
    state.destroy_process_group()
    return folder


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--save-every", type=int, help="checkpoint interval (default: the end)")
    args = parser.parse_args(argv)
    main(args.run_dir, args.steps, args.device, args.save_every)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
