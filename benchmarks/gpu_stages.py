"""Speed and memory of stages II and III of the full configs on one GPU (random weights).

``benchmarks/gpu_full.py`` covers stage I (the video model). This script covers the other
two trained stages of ``configs/full/phoenix14t.yaml`` and ``configs/full/how2sign.yaml``,
built from those configs with random weights (speed and memory depend on the sizes, not
the weights):

- **FSQ autoencoder** (stage II): training steps at the config's batch size through
  ``accelerate`` (the config's mixed precision, AdamW), with the frozen full-size condition
  encoder embedding each batch of 272x224 conditions and the SMPL-X body model (the
  stand-in in ``assets/body_models``) giving the joint loss, i.e. ``FSQTask.loss`` itself;
  and tokenising throughput (conditions -> embedding -> tokens, frames per second), which
  sets the time of ``python -m signgen.data.tokens`` on a corpus.
- **Translator** (stage III): training steps of ``TranslatorTask.loss`` at the config's
  batch size for sentences of a typical and of the longest allowed length; decoding one
  sentence (greedy and sampled, KV cache) and 16 candidates of one sentence in a batch.

    python benchmarks/gpu_stages.py --out benchmarks/results          # on a GPU
    python benchmarks/gpu_stages.py --smoke --out outputs/gpu_smoke   # tiny sizes, CPU

Writes ``gpu_stages.json`` and ``gpu_stages.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_full import Meter, pick_device  # noqa: E402  (benchmarks/ is the script's folder)

FULL_CONFIGS = ("configs/full/phoenix14t.yaml", "configs/full/how2sign.yaml")
TEXT_VOCAB = 8000  # a BPE vocabulary of the size a corpus' tokenizer gets
TEXT_LENGTH = 48  # text ids per training sentence (the longest PHOENIX ones are ~50)
CANDIDATES = 16


def fsq_parts(cfg, height: int, width: int, device):
    """(FSQ task with the real loss, FSQ model) for ``cfg`` with random weights."""
    from signgen.models.condition_encoder import MultiConditionEncoder
    from signgen.training.tasks.fsq import FSQTask, PoseTargets, build_fsq_model

    v = cfg.video.condition_encoder
    encoder = MultiConditionEncoder(conditions=["pose_map", "hand_render"],
                                    block_out_channels=list(v.block_out_channels),
                                    embedding_channels=v.embedding_channels,
                                    out_channels=32)
    encoder.to(device).eval().requires_grad_(False)
    f = encoder.downsample_factor
    model = build_fsq_model(cfg.fsq.model, encoder, height, width)
    # FSQTask.__init__ reads a prepared corpus from disk; its loss needs only these parts.
    task = FSQTask.__new__(FSQTask)
    task.cfg, task.fsq = cfg, cfg.fsq
    task.condition_encoder = encoder
    task.targets = PoseTargets(cfg.body)
    emb = (v.embedding_channels, height // f, width // f)
    task.embedding_mean, task.embedding_scale = torch.zeros(emb), torch.ones(emb)
    task.embedding_variance = 1.0
    return task, model


def fsq_batch(task, batch_size: int, frames: int, height: int, width: int,
              g: torch.Generator) -> dict:
    """A random FSQ training batch in ``FSQItems``/``collate`` format."""
    n = (batch_size, frames)
    body = task.targets.body
    return {
        "pose_map": torch.rand(*n, 3, height, width, generator=g),
        "hand_render": torch.rand(*n, 3, height, width, generator=g),
        "poses": 0.2 * torch.randn(*n, 165, generator=g),
        "betas": torch.zeros(*n, body.num_betas),
        "expression": torch.zeros(*n, body.num_expression),
        "transl": torch.zeros(*n, 3),
        "keypoints": torch.rand(*n, 133, 2, generator=g),
        "visible": torch.ones(*n, 133, dtype=torch.bool),
    }


def translator_parts(cfg, tokens_per_frame: int, codebook_size: int, levels):
    from signgen.training.tasks.translator import TranslatorTask, build_translator

    model = build_translator(cfg.translator.model, TEXT_VOCAB, codebook_size,
                             tokens_per_frame, 0, levels)
    # TranslatorTask.__init__ reads token files from disk; its loss needs only these.
    task = TranslatorTask.__new__(TranslatorTask)
    task.cfg, task.settings = cfg, cfg.translator
    task.codebook_size = codebook_size
    task.sampling_rate = cfg.translator.scheduled_sampling  # its final share
    return task, model


def translator_batch(batch_size: int, frames: int, tokens_per_frame: int, codebook_size: int,
                     g: torch.Generator) -> dict:
    text = torch.randint(1, TEXT_VOCAB, (batch_size, TEXT_LENGTH), generator=g)
    return {"text_ids": text, "text_mask": torch.ones_like(text, dtype=torch.bool),
            "frames": torch.randint(0, codebook_size, (batch_size, frames, tokens_per_frame),
                                    generator=g),
            "num_frames": torch.full((batch_size,), frames)}


def time_training(task, model, make_batch, device, meter, mixed_precision: str,
                  steps: int, row: dict) -> dict:
    """Warm-up step, then ``steps`` timed optimiser steps of ``task.loss``."""
    from signgen.training.loop import make_accelerator

    accelerator = make_accelerator(mixed_precision=mixed_precision, cpu=device.type == "cpu")
    model.to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model, optimiser = accelerator.prepare(model, optimiser)
    assert next(model.parameters()).device.type == device.type, "model not on the device"

    def step():
        with accelerator.autocast():
            loss, _ = task.loss(model, make_batch())
        accelerator.backward(loss)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        return loss.detach()

    row["trainable_params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    try:
        step()
        with meter.measure(row):
            for _ in range(steps):
                loss = step()
        row["seconds_per_step"] = round(row.pop("seconds") / steps, 4)
        row["loss"] = round(loss.item(), 4)
    except torch.OutOfMemoryError as error:
        row["error"] = f"out of memory: {str(error).splitlines()[0]}"
    accelerator.free_memory()
    model.to("cpu")
    print(json.dumps(row), flush=True)
    return row


@torch.no_grad()
def time_tokenising(task, model, device, meter, dtype, batch: int, height: int, width: int,
                    repeats: int) -> dict:
    """Conditions -> stage-I embedding -> FSQ token indices, frames per second."""
    model.to(device, dtype).eval()
    task.condition_encoder.to(device, dtype)
    g = torch.Generator().manual_seed(1)
    pose = torch.rand(batch, 3, height, width, generator=g).to(device, dtype)
    hands = torch.rand(batch, 3, height, width, generator=g).to(device, dtype)

    def tokenise():
        embedding = task.condition_encoder.embed({"pose_map": pose, "hand_render": hands})
        return model.encode(embedding).indices

    tokenise()
    row = {"setting": "tokenise (conditions -> tokens)", "batch": batch,
           "dtype": str(dtype).replace("torch.", "")}
    with meter.measure(row):
        for _ in range(repeats):
            indices = tokenise()
    row["frames_per_second"] = round(batch * repeats / row.pop("seconds"), 1)
    row["tokens_per_frame"] = int(indices[0].numel())
    model.to("cpu", torch.float32)
    task.condition_encoder.to("cpu", torch.float32)
    print(json.dumps(row), flush=True)
    return row


@torch.no_grad()
def time_decoding(model, device, meter, frames: int, tokens_per_frame: int,
                  repeats: int) -> list[dict]:
    """Milliseconds per sentence of ``frames`` frames (forced length), fp32, KV cache."""
    model.to(device).eval()
    g = torch.Generator().manual_seed(2)
    text = torch.randint(1, TEXT_VOCAB, (1, TEXT_LENGTH // 2), generator=g).to(device)
    rows = []
    for name, batch, greedy in (("greedy, 1 sentence", 1, True),
                                ("sampled, 1 sentence", 1, False),
                                (f"sampled, {CANDIDATES} candidates of 1 sentence",
                                 CANDIDATES, False)):
        ids = text.expand(batch, -1)
        mask = torch.ones_like(ids, dtype=torch.bool)

        def run(ids=ids, mask=mask, greedy=greedy):
            return model.generate(ids, mask, max_frames=frames, min_frames=frames,
                                  greedy=greedy, generator=torch.Generator().manual_seed(0))

        run()
        row = {"setting": name, "frames": frames, "batch": batch}
        with meter.measure(row):
            for _ in range(repeats):
                out = run()
        assert out[0].shape == (frames, tokens_per_frame), out[0].shape
        row["ms_per_sentence"] = round(1000 * row.pop("seconds") / repeats, 1)
        row["ms_per_frame"] = round(row["ms_per_sentence"] / frames, 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    model.to("cpu")
    return rows


def bench_config(path: str, device, meter, smoke: bool) -> dict:
    from signgen.config.load import config_hash, load_config

    overrides = []
    if smoke:  # the same code on sizes a CPU runs in seconds
        overrides = ["fsq.model.hidden_channels=[8,16]", "fsq.train.batch_size=2",
                     "translator.model.dim=32", "translator.model.num_heads=2",
                     "translator.model.encoder_layers=1", "translator.model.decoder_layers=1",
                     "translator.train.batch_size=2", "translator.model.max_frames=24",
                     "fsq.train.mixed_precision='no'",
                     "translator.train.mixed_precision='no'"]
    cfg = load_config(path, overrides)
    height, width = (32, 32) if smoke else (cfg.render.height, cfg.render.width)
    steps = 2 if smoke else 5
    out = {"config": path, "config_hash": config_hash(cfg), "height": height, "width": width}
    g = torch.Generator().manual_seed(0)

    # -- stage II --------------------------------------------------------------------------
    task, fsq = fsq_parts(cfg, height, width, device)
    clip = cfg.fsq.clip_length if cfg.fsq.model.temporal_kernel > 1 else 1
    b = cfg.fsq.train.batch_size
    out["fsq"] = {"codebook_size": fsq.codebook_size, "tokens_per_frame": fsq.tokens_per_frame,
                  "token_grid": list(fsq.token_grid),
                  "params_m": round(sum(p.numel() for p in fsq.parameters()) / 1e6, 2)}
    row = {"setting": "FSQ training step", "batch": b, "clip_frames": clip,
           "mixed_precision": cfg.fsq.train.mixed_precision}
    out["fsq"]["training"] = time_training(
        task, fsq, lambda: fsq_batch(task, b, clip, height, width, g), device, meter,
        cfg.fsq.train.mixed_precision, steps, row)
    row = out["fsq"]["training"]
    if "seconds_per_step" in row:
        row["frames_per_second"] = round(b * clip / row["seconds_per_step"], 1)
        row["hours_for_max_steps"] = round(cfg.fsq.train.max_steps * row["seconds_per_step"]
                                           / 3600, 2)
    dtype = torch.float32 if smoke else torch.bfloat16
    out["fsq"]["tokenise"] = time_tokenising(task, fsq, device, meter, dtype, 4 if smoke else 256,
                                             height, width, 2 if smoke else 10)
    levels, s, c = list(cfg.fsq.model.levels), fsq.tokens_per_frame, fsq.codebook_size
    del task, fsq

    # -- stage III -------------------------------------------------------------------------
    # A fresh model per measurement: accelerate does not prepare (nor place) a model twice.
    task, translator = translator_parts(cfg, s, c, levels)
    out["translator"] = {"params_m": round(sum(p.numel() for p in translator.parameters())
                                           / 1e6, 2), "text_vocab": TEXT_VOCAB}
    b = cfg.translator.train.batch_size
    typical = min(8 if smoke else 200, cfg.translator.model.max_frames)
    rows = []
    for frames in (typical, cfg.translator.model.max_frames):
        row = {"setting": "translator training step", "batch": b, "frames": frames,
               "text_ids": TEXT_LENGTH, "mixed_precision": cfg.translator.train.mixed_precision}
        task, translator = translator_parts(cfg, s, c, levels)
        rows.append(time_training(task, translator,
                                  lambda f=frames: translator_batch(b, f, s, c, g), device,
                                  meter, cfg.translator.train.mixed_precision, steps, row))
        if "seconds_per_step" in row:
            row["hours_for_max_steps"] = round(cfg.translator.train.max_steps
                                               * row["seconds_per_step"] / 3600, 2)
    out["translator"]["training"] = rows
    task, translator = translator_parts(cfg, s, c, levels)
    out["translator"]["decoding"] = time_decoding(translator, device, meter, typical, s,
                                                  1 if smoke else 3)
    return out


def markdown(result: dict) -> str:
    lines = [f"# Full configs, stages II and III, on {result['device']}", "",
             f"Random weights; `{result['command']}`; torch {result['torch']}.", ""]
    for c in result["configs"]:
        f, t = c["fsq"], c["translator"]
        lines += [f"## `{c['config']}` (frames {c['height']}x{c['width']})", "",
                  f"FSQ: {f['params_m']} M parameters, {f['tokens_per_frame']} tokens per frame "
                  f"({f['token_grid'][0]}x{f['token_grid'][1]}), codebook {f['codebook_size']}. "
                  f"Translator: {t['params_m']} M parameters (text vocabulary "
                  f"{t['text_vocab']}).", "",
                  "| training | batch | frames | precision | s/step | peak GiB "
                  "| hours for max_steps |",
                  "|---|---|---|---|---|---|---|"]
        for r in [f["training"], *t["training"]]:
            frames = r.get("frames", r.get("clip_frames"))
            lines.append(f"| {r['setting']} | {r['batch']} | {frames} | {r['mixed_precision']} "
                         f"| {r.get('seconds_per_step', '-')} | {r.get('peak_gib', '-')} | "
                         f"{r.get('hours_for_max_steps', '-')} |"
                         + (f" {r['error']}" if "error" in r else ""))
        k = f["tokenise"]
        lines += ["", f"Tokenising ({k['dtype']}, batches of {k['batch']} frames): "
                  f"{k['frames_per_second']} frames/s, peak {k.get('peak_gib', '-')} GiB.", "",
                  "| decoding (fp32, KV cache) | frames | ms/sentence | ms/frame | peak GiB |",
                  "|---|---|---|---|---|"]
        for r in t["decoding"]:
            lines.append(f"| {r['setting']} | {r['frames']} | {r['ms_per_sentence']} | "
                         f"{r['ms_per_frame']} | {r.get('peak_gib', '-')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_stages.json / .md")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on the CPU (checks the script)")
    parser.add_argument("--config", action="append",
                        help=f"config(s) to measure (default: {', '.join(FULL_CONFIGS)})")
    args = parser.parse_args(argv)
    device = pick_device(parser, args.smoke)
    meter = Meter(device)
    import diffusers

    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else
              platform.processor() or "cpu", "torch": torch.__version__,
              "diffusers": diffusers.__version__,
              "command": "python benchmarks/gpu_stages.py" + (" --smoke" if args.smoke else ""),
              "configs": []}
    started = time.perf_counter()
    for path in args.config or FULL_CONFIGS:
        result["configs"].append(bench_config(path, device, meter, args.smoke))
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_stages.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "gpu_stages.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
