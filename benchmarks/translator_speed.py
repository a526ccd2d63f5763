"""Decoding speed of the text-to-token translator on this CPU.

The translator's size comes from the config (``translator.model``); speed does not depend
on the weights, so a randomly initialised model decodes a fixed number of frames (the
end decision is forced with ``min_frames = max_frames``). Reported for both code heads
(``translator.model.head``: "codes", 625-way per slot; "digits", one distribution per FSQ
level of ``--levels``): milliseconds per sentence (median of ``--repeats`` runs, after a
warm-up) with the key/value cache, and without it (each frame re-runs the whole prefix
through ``forward``), greedy and sampled, and per sentence when ``--batch`` sentences
are decoded together (batch jobs).

    python benchmarks/translator_speed.py [--config tiny] [--frames 60] [--threads 2]

A third column decodes with the digits head and ``frames_per_step`` 2 (two frames per
decoder step, half the steps; see ``SignTranslator``).

Writes ``benchmarks/results/translator_speed__<config>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.config import load_config  # noqa: E402
from signgen.models.translator import SignTranslator, digits_to_codes  # noqa: E402
from signgen.training.tasks.translator import build_translator  # noqa: E402


def uncached_greedy(model: SignTranslator, text, mask, frames: int) -> torch.Tensor:
    """Greedy decoding that recomputes the whole prefix for every step (no cache)."""
    prefix = torch.zeros(len(text), 0, model.slots, dtype=torch.long)
    for _ in range(-(-frames // model.config.frames_per_step)):
        logits = model(text, mask, prefix).code_logits[:, -1]
        if model.levels is None:
            codes = logits.argmax(-1)
        else:
            digits = [part.argmax(-1) for part in logits.split(model.levels, dim=-1)]
            codes = digits_to_codes(torch.stack(digits, -1), model.levels)
        prefix = torch.cat([prefix, codes[:, None]], dim=1)
    return prefix


def decoders(model: SignTranslator, text, mask, n: int) -> dict:
    """The timed ways of decoding ``n`` frames, by name."""
    def sampled(**kwargs):
        return model.generate(text, mask, min_frames=n, max_frames=n, greedy=False,
                              generator=torch.Generator().manual_seed(0), **kwargs)

    return {"greedy, KV cache": lambda: model.generate(text, mask, min_frames=n, max_frames=n),
            "sampled (top-k 50, top-p 0.9), KV cache": lambda: sampled(top_k=50, top_p=0.9),
            "sampled (temperature 1, the default), KV cache": sampled,
            "greedy, no cache (prefix recomputed)":
                lambda: uncached_greedy(model, text, mask, n)}


def batched(model: SignTranslator, text, mask, n: int, batch: int):
    """Sampled decoding of ``batch`` sentences at once (a batch job's lever: one frame step
    reads the weights once for all of them); timed per sentence."""
    texts, masks = text.expand(batch, -1), mask.expand(batch, -1)
    return model.generate(texts, masks, min_frames=n, max_frames=n, greedy=False,
                          generator=torch.Generator().manual_seed(0))


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--frames", type=int, default=60, help="frames per sentence "
                        "(SynthSign sentences: 40-90 at 12 fps)")
    parser.add_argument("--text-ids", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=400)
    parser.add_argument("--levels", default="5,5,5,5", help="FSQ levels (the codebook is "
                        "their product)")
    parser.add_argument("--tokens-per-frame", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="sentences decoded together "
                        "in the batched row")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    levels = [int(level) for level in args.levels.split(",")]
    # signer conditioning adds one embedding row per input: no speed difference
    settings = dataclasses.replace(cfg.translator.model, signer_conditioning=False)
    sizes = dataclasses.asdict(settings)
    text = torch.randint(1, args.vocab, (1, args.text_ids),
                         generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(text, dtype=torch.bool)
    n = args.frames
    results, params = {}, {}
    variants = {"codes": dict(head="codes", frames_per_step=1),
                "digits": dict(head="digits", frames_per_step=1),
                "digits, 2 frames per step": dict(head="digits", frames_per_step=2)}
    for head, variant in variants.items():
        torch.manual_seed(0)
        model = build_translator(dataclasses.replace(settings, **variant),
                                 vocab_size=args.vocab, codebook_size=math.prod(levels),
                                 tokens_per_frame=args.tokens_per_frame, pad_id=0,
                                 levels=levels).eval()
        rows = decoders(model, text, mask, n)
        with torch.inference_mode():
            results[head] = {name: round(timed(fn, args.repeats), 1)
                             for name, fn in rows.items()}
            name = f"sampled, {args.batch} sentences at once, KV cache (per sentence)"
            run = functools.partial(batched, model, text, mask, n, args.batch)
            results[head][name] = round(timed(run, args.repeats) / args.batch, 1)
        params[head] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    result = {"config": args.config, "frames": n, "text_ids": args.text_ids,
              "threads": args.threads, "levels": levels, "params_m": params,
              "model": sizes, "ms_per_sentence": results, "torch": torch.__version__,
              "command": "python benchmarks/translator_speed.py "
                         + " ".join(sys.argv[1:] if argv is None else argv)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"translator_speed__{args.config}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"Translator decoding, {args.config} config ({params['codes']} M parameters "
             f"with the codes head, {params['digits']} M with the digits head, "
             f"{params['digits, 2 frames per step']} M with 2 frames per step), {n} frames x "
             f"{args.tokens_per_frame} tokens, {args.threads} threads; "
             f"`{result['command'].strip()}`", "",
             "| decoding | " + " | ".join(f"{head} head, ms per sentence"
                                           for head in variants) + " |",
             "|---|" + "---|" * len(variants)]
    lines += [f"| {name} | " + " | ".join(str(results[head][name]) for head in variants)
              + " |" for name in results["codes"]]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
