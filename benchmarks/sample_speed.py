"""What a user waits for (issue #8): ``python sample.py --text ...`` as a fresh process,
wall time from start to exit (imports and model load included), per-stage seconds (from
its ``tokens.json``) and the process's peak memory; also ``--avatar-only`` (the median
of ``--repeats`` runs) and its real-time factor.

    python benchmarks/sample_speed.py [--model assets/pipeline] [--text "..."]

Writes ``benchmarks/results/sample_speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_sample(args: list[str], threads: int) -> dict:
    """Runs sample.py once in a fresh process; wall seconds, its tokens.json, peak RSS."""
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "out"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(ROOT / "sample.py"), *args, "--out", str(out)],
                              cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"sample.py failed:\n{done.stderr[-3000:]}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        info = json.loads((out / "tokens.json").read_text())
    frames = len(info["tokens"])
    return {"wall_seconds": round(wall, 2), "frames": frames,
            "video_seconds": round(frames / info["fps"], 2),
            "stage_seconds": info["timings"],
            # ru_maxrss of children is the largest child so far: exact for the first run,
            # a lower bound after it (reported per run only when it grew).
            "peak_rss_mb": round(max(peak, before) / 1024, 1)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="assets/pipeline")
    parser.add_argument("--text", default="Tomorrow I go to the store with my friend Anna.")
    parser.add_argument("--steps", type=int, help="diffusion steps (default: the config's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="--avatar-only runs")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    common = ["--text", args.text, "--model", args.model]
    if args.steps:
        common += ["--steps", str(args.steps)]
    video = run_sample(common, args.threads)
    # The avatar-only run is short and swings with the machine: --repeats fresh processes,
    # the median run (by speed) reported, every run's speed kept.
    runs = [run_sample([*common, "--avatar-only"], args.threads) for _ in range(args.repeats)]
    for run in runs:
        compute = sum(run["stage_seconds"].values())
        run["speed_x_real_time"] = round(run["video_seconds"] / max(compute, 1e-9), 1)
    runs.sort(key=lambda run: run["speed_x_real_time"])
    avatar = dict(runs[len(runs) // 2])
    avatar["speed_x_real_time_runs"] = [run["speed_x_real_time"] for run in runs]
    result = {"benchmark": "sample_speed", "model": args.model, "text": args.text,
              "threads": args.threads, "video": video, "avatar_only": avatar,
              "command": "python benchmarks/sample_speed.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    rows = []
    for name, run in (("video + avatar", video), ("--avatar-only", avatar)):
        stages = ", ".join(f"{k} {v:.2f}" for k, v in run["stage_seconds"].items())
        rows.append(f"| {name} | {run['wall_seconds']:.1f} | {run['video_seconds']:.1f} | "
                    f"{stages} | {run['peak_rss_mb']:.0f} |")
    table = (f"`python sample.py` as a fresh process, {args.threads} threads "
             f"(`{result['command']}`)\n\n| run | wall s (imports, load, generate, write) | "
             f"video s | stage seconds | peak RSS MB |\n|---|---|---|---|---|\n"
             + "\n".join(rows) + f"\n\n--avatar-only after load: "
             f"{avatar['speed_x_real_time']}x real time (median of {len(runs)} fresh "
             f"processes: {', '.join(map(str, avatar['speed_x_real_time_runs']))})\n")
    target = Path(args.out)
    target.mkdir(parents=True, exist_ok=True)
    (target / "sample_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (target / "sample_speed.md").write_text(table)
    print(table)
    return result


if __name__ == "__main__":
    main()
