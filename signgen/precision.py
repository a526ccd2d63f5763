"""Which floating-point precision to compute in, shared by training and inference.

bfloat16 autocast speeds up convolutions and large matrix products where the hardware
computes bfloat16 natively (CUDA GPUs that support it; CPUs with AMX or AVX-512 BF16,
through oneDNN: the tiny FSQ trains at 0.17 instead of 0.32 s/step on this project's
2-core Xeon, its small translator only ~9 % faster) and is slower than float32 elsewhere,
where it is emulated. ``auto`` settings pick bf16 exactly where it is native.
"""

from __future__ import annotations

import torch


def native_bf16(device: torch.device | str) -> bool:
    """True where ``device`` computes bfloat16 natively (see the module doc)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return False


def training_precision(mixed_precision: str, device: torch.device | str) -> str:
    """A ``train.mixed_precision`` setting as accelerate takes it: "auto" -> "bf16" where
    ``device`` computes it natively, else "no"; "no" / "bf16" / "fp16" unchanged."""
    if mixed_precision != "auto":
        return mixed_precision
    return "bf16" if native_bf16(device) else "no"


def float32(device: torch.device | str) -> torch.autocast:
    """A context that turns autocast off on ``device``'s type: what runs inside (and gets
    float32 inputs) computes in float32 under any ``mixed_precision``, e.g. body-model
    joints, whose metres would carry millimetres of bfloat16 rounding."""
    return torch.autocast(torch.device(device).type, enabled=False)
