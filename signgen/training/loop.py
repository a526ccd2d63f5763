"""The one training loop (accelerate) every trained part of signgen goes through.

A part supplies a ``TrainingTask``: how to build its model, its dataset and collate
function, its loss, optionally an evaluation, and how to export the trained model.
The loop owns everything else: seeding, device and mixed precision, the optimiser and
learning-rate schedule, gradient clipping and accumulation, progress bar, metrics
log (``metrics.jsonl``), crash-safe checkpoints with resume, and the final export
(``<run>/model/``, written atomically, with ``training.json`` beside it).

Run folder::

    <run>/checkpoints/step-<N>/   accelerator.save_state + COMPLETE marker (newest kept)
    <run>/metrics.jsonl           one JSON line per log / eval step
    <run>/model/                  the exported model (save_pretrained) + training.json
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from signgen.config.schema import TrainConfig
from signgen.training.checkpoints import (
    latest_checkpoint,
    publish_folder,
    remove_partial,
    save_checkpoint,
)


class TrainingTask(Protocol):
    """What a trainable part provides to ``run_training``."""

    def build_model(self) -> torch.nn.Module: ...

    def train_dataset(self) -> Dataset: ...

    def collate(self, items: list) -> Any: ...

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss and extra numbers to log."""
        ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Validation numbers (may return {}); called with the unwrapped model in eval mode."""
        ...

    def export(self, model: torch.nn.Module, folder: Path) -> None:
        """Write the trained model into ``folder`` (``save_pretrained`` and friends)."""
        ...


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def _batches(dataset: Dataset, collate, cfg: TrainConfig, seed: int, start_epoch: int):
    """Endless batches; each epoch's order is seeded by (seed, epoch)."""
    for epoch in itertools.count(start_epoch):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        loader = DataLoader(dataset, batch_size=cfg.batch_size,
                            sampler=RandomSampler(dataset, generator=generator),
                            collate_fn=collate, num_workers=cfg.num_workers, drop_last=True,
                            persistent_workers=False)
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError(f"the training set ({len(dataset)} items) is smaller than one "
                             f"batch ({cfg.batch_size}); lower train.batch_size")


def run_training(task: TrainingTask, cfg: TrainConfig, run_dir: str | Path, seed: int,
                 device: str = "auto", metadata: dict | None = None,
                 progress: bool = True) -> Path:
    """Train ``task`` to ``cfg.max_steps`` (resuming from the newest complete checkpoint
    in ``run_dir``) and export it; returns the exported model folder."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_partial(run_dir)
    cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    accelerator = Accelerator(cpu=cpu, mixed_precision=cfg.mixed_precision,
                              gradient_accumulation_steps=cfg.grad_accumulation)
    set_seed(seed)
    model = task.build_model()
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate,
                                  weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, _lr_lambda(cfg.warmup_steps, cfg.max_steps))
    model, optimiser, scheduler = accelerator.prepare(model, optimiser, scheduler)
    step = 0
    found = latest_checkpoint(run_dir)
    if found is not None:
        step, folder = found
        accelerator.load_state(str(folder))
        accelerator.print(f"resumed from {folder} (step {step})")
    dataset = task.train_dataset()
    # A resumed run starts a fresh, deterministic epoch order seeded by the resume step.
    batches = _batches(dataset, task.collate, cfg, seed, start_epoch=step)
    log_path = run_dir / "metrics.jsonl"
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train", unit="step",
               disable=not (progress and accelerator.is_main_process))
    start, evals = time.perf_counter(), {}
    model.train()
    while step < cfg.max_steps:
        for _ in range(cfg.grad_accumulation):
            batch = next(batches)
            with accelerator.accumulate(model):
                loss, extra = task.loss(model, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at step {step}")
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.grad_clip > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimiser.step()
                scheduler.step()
                optimiser.zero_grad(set_to_none=True)
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        record = None
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            record = {"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0],
                      "seconds": round(time.perf_counter() - start, 2), **extra}
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            evals = _evaluate(task, accelerator.unwrap_model(model))
            record = {**(record or {"step": step}), **{f"eval/{k}": v for k, v in evals.items()}}
        if record is not None and accelerator.is_main_process:
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        # The final step is saved too, so raising max_steps later continues from here.
        if step % cfg.save_every == 0 or step == cfg.max_steps:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                save_checkpoint(run_dir, step, lambda d: accelerator.save_state(str(d)),
                                keep=cfg.keep_checkpoints)
    bar.close()
    accelerator.wait_for_everyone()
    final = run_dir / "model"
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)

        def write(folder: Path) -> None:
            task.export(unwrapped, folder)
            info = {"steps": step, "seed": seed, "eval": evals,
                    "train_seconds_this_run": round(time.perf_counter() - start, 1),
                    **(metadata or {})}
            (folder / "training.json").write_text(json.dumps(info, indent=2) + "\n")

        publish_folder(final, write)
    return final


def _evaluate(task: TrainingTask, model: torch.nn.Module) -> dict[str, float]:
    model.eval()
    try:
        with torch.no_grad():
            return dict(task.evaluate(model))
    finally:
        model.train()
