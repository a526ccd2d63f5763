"""Crash-safe checkpoint folders: written under a temporary name, marked complete, renamed.

A checkpoint is ``<run>/checkpoints/step-<N>/`` holding ``accelerator.save_state``
files plus ``COMPLETE`` (JSON: step, time). Only folders with the marker are ever
loaded; temporary folders left by a killed process are removed on the next start.

With several processes (one machine, shared disk) every process writes into the same
temporary folder (accelerate saves one RNG state per process, the rest once); the main
process alone creates, marks, publishes and rotates folders, between barriers.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

MARKER = "COMPLETE"
PREFIX = "step-"


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint, oldest first."""
    root = run_dir / "checkpoints"
    found = []
    for folder in root.glob(f"{PREFIX}*") if root.is_dir() else []:
        if (folder / MARKER).is_file() and folder.name[len(PREFIX):].isdigit():
            found.append((int(folder.name[len(PREFIX):]), folder))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def remove_partial(run_dir: Path) -> None:
    """Delete temporary checkpoint folders (from a process killed while saving)."""
    root = run_dir / "checkpoints"
    for folder in root.glob(".tmp-*") if root.is_dir() else []:
        shutil.rmtree(folder, ignore_errors=True)


def save_checkpoint(run_dir: Path, step: int, write: Callable[[Path], None],
                    keep: int = 2, is_main: bool = True,
                    barrier: Callable[[], None] = lambda: None) -> Path:
    """Write a checkpoint with ``write(folder)``, mark and publish it, keep the newest
    ``keep`` complete ones.

    Collective when several processes train: all call it, all run ``write``; only the
    one with ``is_main`` touches folders; ``barrier`` waits for every process."""
    root = run_dir / "checkpoints"
    tmp = root / f".tmp-{PREFIX}{step}"
    final = root / f"{PREFIX}{step}"
    if is_main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    barrier()
    write(tmp)
    barrier()
    if is_main:
        (tmp / MARKER).write_text(json.dumps({"step": step, "time": time.time()}) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for _, old in complete_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def publish_folder(final: Path, write: Callable[[Path], None]) -> Path:
    """Write a folder under a temporary name and swap it into ``final`` when complete."""
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if final.exists():
        old = final.with_name(f".old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    return final
