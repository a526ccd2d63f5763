"""Benchmark: generate the default SynthSign dataset; time and size.

    python benchmarks/synthsign_generate.py [--config tiny] [--out data/synthsign]
                                            [--workers 2] [key=value ...]

Generates into an empty folder (refuses a non-empty one, so the time is the whole
run) and writes ``benchmarks/results/synthsign_generate__<config>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from signgen.config import config_hash, load_config
from signgen.data.synthsign.generate import generate


def folder_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--out", default="data/synthsign")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; the benchmark times a whole generation")
    start = time.perf_counter()
    generate(cfg, out, workers=args.workers)
    seconds = time.perf_counter() - start
    meta = json.loads((out / "meta.json").read_text())
    frames = sum(json.loads(line)["num_frames"]
                 for line in (out / "manifest.jsonl").read_text().splitlines())
    size = folder_size(out)
    result = {
        "benchmark": "synthsign_generate", "config": args.config,
        "overrides": args.overrides, "config_hash": config_hash(cfg),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "workers": args.workers, "samples": meta["finished"], "counts": meta["counts"],
        "frames": frames, "size": f"{cfg.render.height}x{cfg.render.width}",
        "fps": cfg.data.fps, "seconds": round(seconds, 1),
        "samples_per_second": round(meta["finished"] / seconds, 2),
        "disk_bytes": size, "disk_gb": round(size / 1e9, 3),
        "command": "python benchmarks/synthsign_generate.py --config "
                   f"{args.config} --workers {args.workers}",
    }
    results = Path("benchmarks/results")
    results.mkdir(parents=True, exist_ok=True)
    stem = results / f"synthsign_generate__{args.config}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    table = ["| samples | frames | size | workers | minutes | samples/s | disk GB |",
             "|---|---|---|---|---|---|---|",
             f"| {result['samples']} | {frames} | {result['size']} @ {cfg.data.fps} fps | "
             f"{args.workers} | {seconds / 60:.1f} | {result['samples_per_second']} | "
             f"{result['disk_gb']} |"]
    stem.with_suffix(".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
