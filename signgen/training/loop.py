"""The one training loop (accelerate) every trained part of signgen goes through.

A part supplies a ``TrainingTask``: how to build its model, its dataset and collate
function, its loss, optionally an evaluation, and how to export the trained model;
optionally which parameters train (``trainable_parameters``) and an EMA decay
(``ema_decay``). The loop owns everything else: seeding, device and mixed precision,
the optimiser and learning-rate schedule, gradient clipping and accumulation, an
exponential moving average of the weights, divergence checks, progress bar, metrics
log (``metrics.jsonl``), crash-safe checkpoints with exact resume, and the final export
(``<run>/model/``, written atomically, with ``training.json`` beside it).

Several processes (``torchrun --nproc_per_node N``; on CPU with ``ACCELERATE_USE_CPU=1``)
train one model with DDP. The loop shards the data itself rather than through
``accelerator.prepare(dataloader)``: each global batch is ``N * batch_size``
consecutive items of the epoch's seeded permutation and process ``r`` takes the
``r``-th slice, so processes see disjoint data, ``train.batch_size`` is per process and
``max_steps`` counts optimiser steps whatever ``N`` is. Only the main process
evaluates, logs and exports; all write checkpoints together.

Run folder::

    <run>/checkpoints/step-<N>/   accelerator.save_state + COMPLETE marker, and the EMA
                                  as ema.safetensors + ema.json (never a pickle)
    <run>/metrics.jsonl           one JSON line per log / eval step
    <run>/model/                  the exported model (save_pretrained) + training.json
    <run>/inputs.json             the task's inputs version (e.g. which FSQ made the tokens)
    <run>/architecture.json       the model's architecture fingerprint: a run folder is
                                  never resumed or kept by a config that builds another model
    <run>/.lock                   held (flock) by the training using the folder; holds its pid
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, Dataset

from signgen.config.schema import TrainConfig
from signgen.errors import ConfigError, SignGenError
from signgen.paths import make_folder
from signgen.precision import training_precision
from signgen.training.checkpoints import (
    latest_checkpoint,
    publish_folder,
    remove_partial,
    save_checkpoint,
)

EMA_WEIGHTS, EMA_INFO = "ema.safetensors", "ema.json"


class TrainingDivergedError(SignGenError):
    """The loss or the gradients became NaN/inf; nothing was saved for that step."""


_NOTHING_SAVED = ("Nothing was saved for this step; the last complete checkpoint is intact "
                  "and a rerun resumes from it")


class TrainingTask(Protocol):
    """What a trainable part provides to ``run_training``.

    Optional: ``trainable_parameters(model) -> Iterable[Parameter]`` (the rest of the
    model is frozen; default: every parameter with ``requires_grad``), an attribute
    ``ema_decay: float`` (default for ``run_training``'s argument) and an attribute
    ``inputs_version: str``, naming the frozen inputs the run depends on (data plan,
    frozen models' weight hashes): a run folder started on other inputs is never resumed.
    """

    def build_model(self) -> torch.nn.Module: ...

    def train_dataset(self) -> Dataset: ...

    def collate(self, items: list) -> Any: ...

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss and extra numbers to log."""
        ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        """Validation numbers (may return {}); called on the main process with the
        unwrapped model (EMA weights if any) in eval mode."""
        ...

    def export(self, model: torch.nn.Module, folder: Path) -> None:
        """Write the trained model into ``folder`` (``save_pretrained`` and friends)."""
        ...


INPUTS_FILE = "inputs.json"


def _check_run_record(run_dir: Path, file: str, key: str, value: str, main_process: bool,
                      mismatch: str, unrecorded: str | None = None) -> None:
    """Record ``key: value`` in ``run_dir/file`` of a new run folder; raise ConfigError
    ``mismatch`` (its ``{recorded}`` replaced) if the folder recorded another value. A folder
    with checkpoints but no record raises ``unrecorded``, or passes unchecked if None."""
    path = run_dir / file
    if path.is_file():
        recorded = json.loads(path.read_text()).get(key)
        if recorded != value:
            raise ConfigError(f"{run_dir} {mismatch.replace('{recorded}', str(recorded))}. Move or "
                              f"delete that folder, or set another experiment.output_dir")
    elif latest_checkpoint(run_dir) is not None:
        if unrecorded is not None:
            raise ConfigError(f"{run_dir} {unrecorded}; move or delete that folder, or set "
                              f"another experiment.output_dir")
    elif main_process:
        tmp = path.with_name(f".tmp-{path.name}")
        tmp.write_text(json.dumps({key: value}) + "\n")
        tmp.replace(path)


def _check_inputs_version(run_dir: Path, version: str | None, main_process: bool) -> None:
    """Record the task's ``inputs_version`` in a new run folder; refuse to resume a run
    folder that recorded another one (its checkpoints were trained on other inputs)."""
    if version is not None:
        _check_run_record(
            run_dir, INPUTS_FILE, "inputs_version", version, main_process,
            mismatch=f"holds a run trained on other inputs ({{recorded}}, now {version}); "
                     f"resuming would mix them",
            unrecorded="holds checkpoints of a run whose inputs were not recorded")


ARCHITECTURE_FILE = "architecture.json"


def architecture_fingerprint(model: torch.nn.Module) -> str:
    """16 hex digits naming the model's architecture: its state-dict keys and shapes
    (not the values), so a changed model config (a head, a width, a layer) changes it."""
    import hashlib

    described = sorted(f"{name}:{tuple(value.shape)}" for name, value
                       in model.state_dict().items())
    return hashlib.sha256("\n".join(described).encode()).hexdigest()[:16]


def _check_architecture(run_dir: Path, fingerprint: str, main_process: bool) -> None:
    """Record the model's architecture fingerprint in a new run folder; refuse a run
    folder that recorded another one (resuming would fail on the weights' shapes, and a
    finished run would be kept although the config asks for another model). Run
    folders from before this record are not checked."""
    _check_run_record(run_dir, ARCHITECTURE_FILE, "architecture", fingerprint, main_process,
                      mismatch=f"holds a model of another architecture ({{recorded}}, the "
                               f"config now builds {fingerprint}): the model settings "
                               f"changed")


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def _batches(dataset: Dataset, collate, cfg: TrainConfig, seed: int, first: int,
             rank: int = 0, world: int = 1) -> Iterator[tuple[str, Any]]:
    """Endless ``(where, batch)`` for process ``rank`` of ``world``, starting at global
    batch ``first`` (so a resumed run continues exactly where its checkpoint stopped).
    Each epoch's order is a permutation seeded by (seed, epoch)."""
    size = cfg.batch_size * world
    per_epoch = len(dataset) // size
    if per_epoch == 0:
        raise ConfigError(f"the training set ({len(dataset)} items) is smaller than one "
                          f"batch ({cfg.batch_size} x {world} processes); lower train.batch_size")
    start_epoch, skip = divmod(first, per_epoch)
    for epoch in itertools.count(start_epoch):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(dataset), generator=generator).tolist()
        chunks = [order[i * size + rank * cfg.batch_size:][:cfg.batch_size]
                  for i in range(skip, per_epoch)]
        loader = DataLoader(dataset, batch_sampler=chunks, collate_fn=collate,
                            num_workers=cfg.num_workers)
        for index, (items, batch) in enumerate(zip(chunks, loader, strict=True), start=skip):
            yield f"epoch {epoch} batch {index}, dataset items {items}", batch
        skip = 0


def _trainable(task: TrainingTask, model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the optimiser, clipping and EMA see; the rest is frozen so
    backward skips it (and DDP does not wait for its gradients)."""
    if not hasattr(task, "trainable_parameters"):
        chosen = [p for p in model.parameters() if p.requires_grad]
    else:
        chosen = list({id(p): p for p in task.trainable_parameters(model)}.values())
        owned = {id(p) for p in model.parameters()}
        if not all(id(p) in owned for p in chosen):
            raise ValueError("trainable_parameters returned parameters that are not the model's")
        keep = {id(p) for p in chosen}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)
    if not chosen:
        raise ValueError("the model has no trainable parameters")
    return chosen


def _save_state(accelerator, ema, folder: Path) -> None:
    """accelerate's state (model, optimiser, scheduler, RNG) and, from the main process,
    the EMA: shadow weights as safetensors, its counters as JSON."""
    from safetensors.torch import save_file

    accelerator.save_state(str(folder))
    if ema is not None and accelerator.is_main_process:
        state = ema.state_dict()
        shadow = state.pop("shadow_params")
        save_file({f"shadow.{i}": p.detach().cpu().contiguous() for i, p in enumerate(shadow)},
                  str(Path(folder) / EMA_WEIGHTS))
        (Path(folder) / EMA_INFO).write_text(json.dumps(state) + "\n")


def _load_ema(ema, folder: Path, device) -> None:
    """Restore an EMA written by ``_save_state`` (the same parameters, in order)."""
    from safetensors.torch import load_file

    tensors = load_file(str(Path(folder) / EMA_WEIGHTS), device=str(device))
    if len(tensors) != len(ema.shadow_params):
        raise ConfigError(f"{folder}: the saved EMA has {len(tensors)} tensors, the model "
                          f"{len(ema.shadow_params)} trainable parameters; a new run folder "
                          f"is needed for another set of trained parameters")
    state = json.loads((Path(folder) / EMA_INFO).read_text())
    state["shadow_params"] = [tensors[f"shadow.{i}"] for i in range(len(tensors))]
    ema.load_state_dict(state)


def _make_ema(decay: float | None, params: list[torch.nn.Parameter]):
    if not decay:  # None, or 0: an average that is the raw weights
        return None
    if not 0.0 < decay < 1.0:
        raise ConfigError(f"ema_decay must lie in [0, 1), got {decay}")
    from diffusers.training_utils import EMAModel

    # diffusers' EMAModel ramps the decay up: update 0 copies the weights, update n >= 1
    # uses min(ema_decay, (1 + n) / (10 + n)), so the random initialisation fades fast.
    return EMAModel(params, decay=float(decay), foreach=True)


def make_accelerator(*, mixed_precision: str, **kwargs):
    """An ``accelerate.Accelerator`` at ``mixed_precision`` ('no', 'bf16', 'fp16').

    One process may train several stages (train.py --stage demo, benchmarks, tests) at
    different precisions, but accelerate keeps one AcceleratorState per process and refuses
    a second precision: it is started afresh then (the process group, in PartialState,
    stays)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and \
            AcceleratorState().mixed_precision != mixed_precision:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed_precision, **kwargs)


def run_training(task: TrainingTask, cfg: TrainConfig, run_dir: str | Path, seed: int,
                 device: str = "auto", metadata: dict | None = None,
                 progress: bool = True, ema_decay: float | None = None) -> Path:
    """Train ``task`` to ``cfg.max_steps`` (resuming from the newest complete checkpoint
    in ``run_dir``) and export it; returns the exported model folder.

    ``ema_decay`` (default: ``task.ema_decay`` if present, else no EMA) keeps an
    exponential moving average of the trainable parameters, updated after every
    optimiser step and checkpointed; evaluation and the export use it. Raises
    ``TrainingDivergedError`` (naming step and batch) on a non-finite loss or gradient
    norm, before that step changes any weight or checkpoint."""
    run_dir = make_folder(run_dir, "run folder")  # every rank: fails before any work
    cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    precision = training_precision(cfg.mixed_precision, "cpu" if cpu else "cuda")
    # The schedule is stepped by hand once per optimiser step: accelerate would step it
    # once per process, assuming a dataloader it shortened by the number of processes.
    accelerator = make_accelerator(cpu=cpu, mixed_precision=precision,
                                   gradient_accumulation_steps=cfg.grad_accumulation,
                                   step_scheduler_with_optimizer=False)
    with lock_run_folder(run_dir, accelerator.is_main_process):
        return _train(task, cfg, run_dir, seed, accelerator, metadata, progress, ema_decay)


def _train(task: TrainingTask, cfg: TrainConfig, run_dir: Path, seed: int, accelerator,
           metadata: dict | None, progress: bool, ema_decay: float | None) -> Path:
    """``run_training`` once the run folder is this job's (see there)."""
    from accelerate.utils import set_seed
    from tqdm import tqdm

    if accelerator.is_main_process:
        remove_partial(run_dir)
    accelerator.wait_for_everyone()
    set_seed(seed)  # every process builds the same model
    model = task.build_model()
    _check_architecture(run_dir, architecture_fingerprint(model), accelerator.is_main_process)
    if _finished(run_dir, cfg.max_steps):
        accelerator.print(f"{run_dir} is trained to step {cfg.max_steps} and exported")
        return run_dir / "model"
    params = _trainable(task, model)
    optimiser = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                  fused=True if cfg.fused_optimizer else None)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, _lr_lambda(cfg.warmup_steps, cfg.max_steps))
    model, optimiser, scheduler = accelerator.prepare(model, optimiser, scheduler)
    if accelerator.process_index > 0:
        set_seed(seed, device_specific=True)  # own noise per process; rank 0 = 1-process run
    decay = ema_decay if ema_decay is not None else getattr(task, "ema_decay", None)
    ema = _make_ema(decay, params)  # after prepare: the copies live on the model's device
    step = 0
    _check_inputs_version(run_dir, getattr(task, "inputs_version", None),
                          accelerator.is_main_process)
    found = latest_checkpoint(run_dir)
    if found is not None:
        step, folder = found
        if (folder / EMA_WEIGHTS).is_file() != (ema is not None):
            raise ConfigError(f"{folder} was saved {'with' if ema is None else 'without'} an "
                              f"EMA; resume with the same ema_decay setting or a new run folder")
        accelerator.load_state(str(folder))
        if ema is not None:
            _load_ema(ema, folder, accelerator.device)
            ema.decay = float(decay)  # the requested decay wins over the saved one
        accelerator.print(f"resumed from {folder} (step {step})")
    batches = _batches(task.train_dataset(), task.collate, cfg, seed,
                       first=step * cfg.grad_accumulation,
                       rank=accelerator.process_index, world=accelerator.num_processes)
    log_path = run_dir / "metrics.jsonl"
    bar = tqdm(total=cfg.max_steps, initial=step, desc="train", unit="step",
               disable=not (progress and accelerator.is_main_process))
    start, evals = time.perf_counter(), {}
    model.train()
    while step < cfg.max_steps:
        for _ in range(cfg.grad_accumulation):
            where, batch = next(batches)
            if hasattr(task, "set_step"):  # tasks whose loss follows a schedule
                task.set_step(step, cfg.max_steps)
            with accelerator.accumulate(model):
                # The whole loss under the autocast (accelerate's own wraps only the
                # model's forward): frozen feature extractors run at the training
                # precision too; tasks keep what needs float32 (body-model joints) out.
                with accelerator.autocast():
                    loss, extra = task.loss(model, batch)
                mean_loss = _finite_mean(accelerator, loss, step + 1, batch, where)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.grad_clip > 0:
                    norm = accelerator.clip_grad_norm_(params, cfg.grad_clip)
                    # fp16 overflows are normal: the grad scaler skips those steps.
                    if (accelerator.mixed_precision != "fp16" and norm is not None
                            and not torch.isfinite(norm)):
                        raise TrainingDivergedError(
                            f"training diverged at step {step + 1}: gradient norm "
                            f"{norm.item()}. {_NOTHING_SAVED}")
                optimiser.step()
                optimiser.zero_grad(set_to_none=True)
        scheduler.step()
        if ema is not None:
            ema.step(params)
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{mean_loss:.4f}")
        record = None
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            record = {"step": step, "loss": mean_loss, "lr": scheduler.get_last_lr()[0],
                      "seconds": round(time.perf_counter() - start, 2), **extra}
        if accelerator.is_main_process and (step % cfg.eval_every == 0
                                            or step == cfg.max_steps):
            with _averaged(ema, params):
                evals = _evaluate(task, accelerator.unwrap_model(model))
            record = {**(record or {"step": step}), **{f"eval/{k}": v for k, v in evals.items()}}
        if record is not None and accelerator.is_main_process:
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        # The final step is saved too, so raising max_steps later continues from here.
        if step % cfg.save_every == 0 or step == cfg.max_steps:
            save_checkpoint(run_dir, step, lambda d: _save_state(accelerator, ema, d),
                            keep=cfg.keep_checkpoints, is_main=accelerator.is_main_process,
                            barrier=accelerator.wait_for_everyone)
    bar.close()
    accelerator.wait_for_everyone()
    final = run_dir / "model"
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)

        def write(folder: Path) -> None:
            with _averaged(ema, params):
                task.export(unwrapped, folder)
            info = {"steps": step, "seed": seed, "eval": evals,
                    "processes": accelerator.num_processes, "ema_decay": decay,
                    "mixed_precision": accelerator.mixed_precision,
                    "train_seconds_this_run": round(time.perf_counter() - start, 1),
                    **(metadata or {})}
            (folder / "training.json").write_text(json.dumps(info, indent=2) + "\n")

        publish_folder(final, write)
    accelerator.wait_for_everyone()  # every process returns once the export exists
    return final


LOCK_FILE = ".lock"


@contextlib.contextmanager
def lock_run_folder(run_dir: Path, main_process: bool = True):
    """Hold an exclusive lock on ``run_dir`` (``<run>/.lock``, ``fcntl.flock``) while
    training: a second job on the same run folder fails at once with the first one's
    pid, instead of both appending to its metrics and overwriting its checkpoints. Only
    the main process locks (the other ranks are the same job). The lock goes with the
    process, so a killed job leaves none behind. No-op where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        fcntl = None
    if not main_process or fcntl is None:
        yield
        return
    path = Path(run_dir) / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise SignGenError(f"another training (pid {holder}) is using the run folder "
                               f"{run_dir}; wait for it to end, or give this one another "
                               f"experiment.output_dir") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _finished(run_dir: Path, max_steps: int) -> bool:
    """True when the newest complete checkpoint is at ``max_steps`` and the export was
    written from that step (a re-run then keeps the export and its training.json)."""
    found = latest_checkpoint(run_dir)
    info = run_dir / "model" / "training.json"
    if found is None or found[0] != max_steps or not info.is_file():
        return False
    try:
        return json.loads(info.read_text()).get("steps") == max_steps
    except (OSError, ValueError):
        return False


def _finite_mean(accelerator, loss: torch.Tensor, step: int, batch: Any, where: str) -> float:
    """Mean loss over the processes; raises on every process together if any loss is
    NaN/inf (before backward, so no weight, EMA or checkpoint sees it)."""
    losses = accelerator.gather(loss.detach().float().reshape(1))
    if bool(torch.isfinite(losses).all()):
        return losses.mean().item()
    from accelerate.utils import gather_object

    mine = [] if torch.isfinite(loss) else [f"loss {loss.item()} on {_describe(batch, where)}"]
    if accelerator.num_processes > 1:
        mine = [f"process {accelerator.process_index}: {m}" for m in mine]
    raise TrainingDivergedError(f"training diverged at step {step}: "
                                f"{'; '.join(gather_object(mine))}. {_NOTHING_SAVED}")


def _describe(batch: Any, where: str) -> str:
    """Which samples a batch holds: its ``sample_ids`` / ``sample_id`` if it has them."""
    if isinstance(batch, dict):
        for key in ("sample_ids", "sample_id"):
            if key in batch:
                ids = batch[key]
                ids = ids.tolist() if torch.is_tensor(ids) else ids
                return f"{key} {[ids] if isinstance(ids, str) else list(ids)} ({where})"
    return where


@contextlib.contextmanager
def _averaged(ema, params: list[torch.nn.Parameter]):
    """Swap the EMA weights in for the block, then the raw training weights back."""
    if ema is None:
        yield
        return
    ema.store(params)
    ema.copy_to(params)
    try:
        yield
    finally:
        ema.restore(params)


def _evaluate(task: TrainingTask, model: torch.nn.Module) -> dict[str, float]:
    model.eval()
    try:
        with torch.no_grad():
            return dict(task.evaluate(model))
    finally:
        model.train()
