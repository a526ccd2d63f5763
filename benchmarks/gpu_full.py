"""Speed and memory of the full-scale video model on one GPU (random weights).

The full config's stage I has the architecture of SD-1.5 (``UNet2DConditionModel``
defaults with 768-wide cross-attention, the SD ``AutoencoderKL``) lifted to a
``UNetMotionModel`` with an AnimateDiff-v1.5-shaped ``MotionAdapter``, plus signgen's
condition and reference encoders. Speed and memory depend on the architecture, not the
weights, so this script builds it with random weights (no licence-gated downloads) and
times, on 272x224 frames:

- inference through ``SignVideoPipeline`` (sliding windows, DPM-Solver++), per setting:
  milliseconds per output frame (whole pipeline: condition encoding, reference,
  denoising, VAE decoding) and peak GPU memory;
- training steps of phase 1 (single frames, all parts) and phase 2 (clips, motion
  layers only), through ``accelerate`` with bf16 autocast and AdamW, including the
  frozen VAE's encoding of each batch: seconds per step and peak GPU memory.

    python benchmarks/gpu_full.py --out benchmarks/results          # on a GPU
    python benchmarks/gpu_full.py --smoke --out outputs/gpu_smoke   # tiny sizes, CPU

Writes ``gpu_full.json`` and ``gpu_full.md`` into ``--out`` (``gpu_full_levers.*`` with
``--levers``: the 8-step setting against speed levers, inference only).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_parts(smoke: bool):
    """(vae, 2D unet, condition encoder, reference encoder, motion adapter), random."""
    from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel

    from signgen.models.condition_encoder import MultiConditionEncoder
    from signgen.models.reference_encoder import ReferenceEncoder

    torch.manual_seed(0)
    if smoke:
        widths, vae_widths, heads = (32, 64), (32, 64), 2
        unet = UNet2DConditionModel(
            sample_size=16, block_out_channels=widths, layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=64,
            attention_head_dim=heads, norm_num_groups=32)
        vae = AutoencoderKL(block_out_channels=vae_widths, layers_per_block=1,
                            down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=32)
        adapter = MotionAdapter(block_out_channels=widths, motion_layers_per_block=1,
                                motion_num_attention_heads=2, motion_norm_num_groups=32,
                                motion_max_seq_length=32, use_motion_mid_block=False)
        cond_widths, ref_widths, embedding = (16, 32), (16, 32, 64, 64), 16
    else:
        # UNet2DConditionModel's defaults are SD-1.5's layout (320/640/1280/1280, two
        # layers per block, 8 heads); SD-1.5's CLIP width is 768.
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                            down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512)
        adapter = MotionAdapter()  # AnimateDiff v1.5's shape (mm_sd_v15_v2)
        cond_widths, ref_widths, embedding = (16, 32, 64, 128), (64, 128, 256, 512), 64
    condition_encoder = MultiConditionEncoder(
        conditions=["pose_map", "hand_render"], block_out_channels=cond_widths,
        embedding_channels=embedding, out_channels=unet.config.block_out_channels[0])
    reference_encoder = ReferenceEncoder(block_out_channels=ref_widths,
                                         token_dim=unet.config.cross_attention_dim)
    return vae, unet, condition_encoder, reference_encoder, adapter


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def pick_device(parser, smoke: bool) -> torch.device:
    """The GPU (TF32 matmuls allowed), or the CPU for ``--smoke``; a parser error when a
    full run finds no GPU."""
    device = torch.device("cuda" if torch.cuda.is_available() and not smoke else "cpu")
    if device.type == "cpu" and not smoke:
        parser.error("no GPU here; use --smoke to check the script on the CPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return device


class Meter:
    """Wall time (synchronised) and peak accelerator memory of a block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    @contextlib.contextmanager
    def measure(self, out: dict):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        out["seconds"] = time.perf_counter() - start
        if self.device.type == "cuda":
            out["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)


def bench_inference(parts, device, dtype, size, num_frames, meter, settings):
    from signgen.models.denoiser import to_motion_unet
    from signgen.pipelines.sign_video import SignVideoPipeline, make_scheduler
    from signgen.training.video_loss import training_scheduler

    vae, unet, condition_encoder, reference_encoder, adapter = parts
    scheduler = make_scheduler("dpmsolver++", training_scheduler(1000, "epsilon").config)
    motion = to_motion_unet(unet, adapter)
    height, width = size
    g = torch.Generator().manual_seed(0)
    pose = torch.rand(num_frames, 3, height, width, generator=g)
    hands = torch.rand(num_frames, 3, height, width, generator=g)
    reference = torch.rand(3, height, width, generator=g) * 2 - 1
    rows = []
    for name, temporal, steps, guidance, window, overlap, run_dtype, *options in settings:
        options = options[0] if options else {}
        pipe = SignVideoPipeline(vae=vae, unet=motion if temporal else unet,
                                 condition_encoder=condition_encoder,
                                 reference_encoder=reference_encoder, scheduler=scheduler)
        pipe.to(device, run_dtype or dtype)
        if options.get("channels_last"):
            pipe.unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
        if options.get("compile"):
            pipe.unet.compile()  # in place: the pipeline still sees a UNetMotionModel
        kwargs = dict(pose_maps=pose, hand_renders=hands, guidance_scale=guidance,
                      window=window, overlap=overlap, progress=False)
        t0 = time.perf_counter()
        pipe(reference, num_inference_steps=2, **kwargs)  # warm-up: kernels, compile
        warmup = round(time.perf_counter() - t0, 1)
        row = {"setting": name, "temporal": temporal, "steps": steps,
               "guidance_scale": guidance, "window": window, "overlap": overlap,
               "frames": num_frames, "dtype": str(run_dtype or dtype).replace("torch.", ""),
               **options, "warmup_seconds": warmup}  # not counted; includes compiling
        with meter.measure(row):
            out = pipe(reference, num_inference_steps=steps,
                       generator=torch.Generator().manual_seed(0), **kwargs)
        assert out.frames.shape == (num_frames, height, width, 3)
        row["ms_per_frame"] = round(1000 * row["seconds"] / num_frames, 2)
        if options.get("parts"):  # where the time goes, outside the denoising loop
            parts_ms = {}
            with meter.measure(parts_ms):
                embeddings = pipe.encode_conditions(pose, hands)
            row["encode_conditions_ms_per_frame"] = round(1000 * parts_ms["seconds"]
                                                          / num_frames, 2)
            latents = torch.randn(num_frames, 4, *embeddings.shape[-2:], device=device,
                                  dtype=pipe.vae.dtype)
            with meter.measure(parts_ms):
                pipe.decode_latents(latents)
            row["decode_ms_per_frame"] = round(1000 * parts_ms["seconds"] / num_frames, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
        pipe.to("cpu", torch.float32)
        del pipe
    return rows


def synthetic_batch(vae, device, batch_size: int, frames: int | None,
                    size: tuple[int, int], g: torch.Generator) -> dict:
    """A random training batch, encoded by the frozen VAE as training does: latents
    (B,c,h,w) or clips (B,F,c,h,w), conditions in [0,1], references in [-1,1]."""
    height, width = size
    n = batch_size * (frames or 1)
    video = torch.rand(n, 3, height, width, generator=g) * 2 - 1
    cond = {k: torch.rand(n, 3, height, width, generator=g).to(device)
            for k in ("pose_map", "hand_render")}
    with torch.no_grad():
        latents = vae.encode(video.to(device, vae.dtype)).latent_dist.mean.float()
    latents = latents * vae.config.scaling_factor
    if frames:  # clips: (B,F,...), as the frame cache's clips come
        latents = latents.view(batch_size, frames, *latents.shape[1:])
        cond = {k: v.view(batch_size, frames, *v.shape[1:]) for k, v in cond.items()}
    reference = (torch.rand(batch_size, 3, height, width, generator=g) * 2 - 1).to(device)
    return {"latents": latents, **cond, "reference": reference}


def train_step(model, accelerator, optimiser, noise_scheduler, batch: dict,
               device) -> torch.Tensor:
    """One optimiser step of the denoising loss (nothing dropped); returns the loss."""
    batch_size = len(batch["latents"])
    noise = torch.randn_like(batch["latents"])
    timesteps = torch.randint(0, 1000, (batch_size,), device=device)
    drops = torch.zeros(batch_size, 2, dtype=torch.bool, device=device)
    loss = model(noise_scheduler, batch, noise, timesteps, drops,
                 torch.zeros(batch_size, dtype=torch.bool, device=device))
    accelerator.backward(loss)
    optimiser.step()
    optimiser.zero_grad(set_to_none=True)
    return loss


def bench_training(parts, device, size, meter, settings, mixed_precision):
    from signgen.models.denoiser import freeze_except_motion, to_motion_unet
    from signgen.training.loop import make_accelerator
    from signgen.training.video_loss import VideoParts, training_scheduler

    vae, unet, condition_encoder, reference_encoder, adapter = parts
    noise_scheduler = training_scheduler(1000, "epsilon")
    rows = []
    for name, temporal, batch_size, frames, checkpointing, steps in settings:
        accelerator = make_accelerator(mixed_precision=mixed_precision,
                                       cpu=device.type == "cpu")
        denoiser = to_motion_unet(unet, adapter) if temporal else unet
        model = VideoParts(condition_encoder, reference_encoder, denoiser)
        model.requires_grad_(True)
        if temporal:
            model.condition_encoder.requires_grad_(False)
            model.reference_encoder.requires_grad_(False)
            params = freeze_except_motion(model.unet)
        else:
            params = list(model.parameters())
        if checkpointing:
            model.unet.enable_gradient_checkpointing()
        else:
            model.unet.disable_gradient_checkpointing()
        optimiser = torch.optim.AdamW(params, lr=1e-5)
        model, optimiser = accelerator.prepare(model, optimiser)
        vae.to(device, torch.bfloat16 if device.type == "cuda" else torch.float32)
        model.train()
        n = batch_size * (frames or 1)
        g = torch.Generator().manual_seed(0)
        step = functools.partial(train_step, model, accelerator, optimiser, noise_scheduler)
        batch = functools.partial(synthetic_batch, vae, device, batch_size, frames, size, g)
        row = {"setting": name, "temporal": temporal, "batch_size": batch_size,
               "clip_frames": frames, "gradient_checkpointing": checkpointing,
               "mixed_precision": mixed_precision,
               "trainable_params_m": round(sum(p.numel() for p in params) / 1e6, 1)}
        try:
            step(batch(), device)  # warm-up; optimiser states allocated
            with meter.measure(row):
                for _ in range(steps):
                    loss = step(batch(), device).detach()
            row["seconds_per_step"] = round(row["seconds"] / steps, 3)
            row["frames_per_second"] = round(n * steps / row["seconds"], 1)
            row["loss"] = round(loss.item(), 4)
        except torch.OutOfMemoryError as error:
            row["error"] = f"out of memory: {str(error).splitlines()[0]}"
        rows.append(row)
        print(json.dumps(row), flush=True)
        model.unet.disable_gradient_checkpointing()
        accelerator.free_memory()
        del model, optimiser, accelerator, step, batch
        unet.to("cpu")
        condition_encoder.to("cpu")
        reference_encoder.to("cpu")
        adapter.to("cpu")
    return rows


def markdown(result: dict) -> str:
    lines = [f"# Full-scale video model on {result['device']}", "",
             f"Random weights, SD-1.5 + AnimateDiff-v1.5 shapes, frames "
             f"{result['height']}x{result['width']}; `{result['command']}`.", "",
             "| inference | temporal | steps | guidance | window/overlap | dtype | ms/frame "
             "| peak GiB |", "|---|---|---|---|---|---|---|---|"]
    for r in result["inference"]:
        lines.append(f"| {r['setting']} | {r['temporal']} | {r['steps']} | "
                     f"{r['guidance_scale']} | {r['window']}/{r['overlap']} | {r['dtype']} | "
                     f"{r['ms_per_frame']} | {r.get('peak_gib', '-')} |")
    if not result["training"]:
        return "\n".join(lines) + "\n"
    lines += ["", "| training | batch | clip frames | grad ckpt | s/step | frames/s "
              "| peak GiB | trainable M |", "|---|---|---|---|---|---|---|---|"]
    for r in result["training"]:
        lines.append(f"| {r['setting']} | {r['batch_size']} | {r['clip_frames'] or '-'} | "
                     f"{r['gradient_checkpointing']} | {r.get('seconds_per_step', '-')} | "
                     f"{r.get('frames_per_second', '-')} | {r.get('peak_gib', '-')} | "
                     f"{r['trainable_params_m']} |" + (f" {r['error']}" if "error" in r
                                                       else ""))
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_full.json / .md")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny models and frames on the CPU (checks the script)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--levers", action="store_true",
                        help="inference only: the baseline setting against speed levers "
                             "(overlap 0, 6 steps, channels_last, torch.compile)")
    args = parser.parse_args(argv)
    device = pick_device(parser, args.smoke)
    size = (32, 32) if args.smoke else (272, 224)
    frames = 12 if args.smoke else 48
    dtype = torch.float32 if args.smoke else torch.float16
    parts = build_parts(args.smoke)
    meter = Meter(device)
    window = 8 if args.smoke else 16
    overlap = 2 if args.smoke else 4
    inference = [  # name, temporal, steps, guidance, window, overlap, dtype
        ("motion 8 steps", True, 8, 1.0, window, overlap, None),
        ("motion 4 steps", True, 4, 1.0, window, overlap, None),
        ("motion 20 steps + CFG", True, 20, 2.0, window, overlap, None),
        ("2D (no temporal) 8 steps", False, 8, 1.0, window, 0, None),
    ]
    if not args.smoke:
        inference.append(("motion 8 steps bf16", True, 8, 1.0, window, overlap,
                          torch.bfloat16))
    if args.levers:
        inference = [
            ("motion 8 steps", True, 8, 1.0, window, overlap, None, {"parts": True}),
            ("motion 8 steps, overlap 0", True, 8, 1.0, window, 0, None),
            ("motion 6 steps", True, 6, 1.0, window, overlap, None),
            ("motion 8 steps, channels_last", True, 8, 1.0, window, overlap, None,
             {"channels_last": True}),
            ("motion 8 steps, torch.compile", True, 8, 1.0, window, overlap, None,
             {"compile": True}),
        ]
        args.skip_training = True
    clip = 4 if args.smoke else 16
    training = [  # name, temporal, batch, clip frames, checkpointing, timed steps
        ("phase 1 frames", False, 8, None, False, 3),
        ("phase 1 frames", False, 32, None, False, 3),
        ("phase 1 frames", False, 32, None, True, 3),
        ("phase 2 clips", True, 1, clip, False, 3),
        ("phase 2 clips", True, 2, clip, True, 3),
    ]
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else
              platform.processor() or "cpu", "torch": torch.__version__,
              "command": "python benchmarks/gpu_full.py" + (" --smoke" if args.smoke else ""),
              "height": size[0], "width": size[1], "attention": "PyTorch SDPA (default)",
              "params_m": {name: round(count(m) / 1e6, 1) for name, m in zip(
                  ("vae", "unet2d", "condition_encoder", "reference_encoder",
                   "motion_adapter"), parts, strict=True)}}
    import diffusers

    result["diffusers"] = diffusers.__version__
    print(json.dumps(result), flush=True)
    result["inference"] = bench_inference(parts, device, dtype, size, frames, meter,
                                          inference)
    result["training"] = [] if args.skip_training else bench_training(
        parts, device, size, meter, training, "no" if args.smoke else "bf16")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_full_levers" if args.levers else "gpu_full"
    result["command"] += " --levers" if args.levers else ""
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
