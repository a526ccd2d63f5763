"""Memory of a long batch job (issue #10): ``sample.py --batch`` renders ``--items``
avatar-only jobs while this script samples the process's resident memory (Linux
``/proc/<pid>/status``), and records it when 1, 100, ... items are finished.

    python benchmarks/batch_memory.py [--model assets/pipeline] [--items 500]

Flat memory means RSS after item 500 is within a few MB of RSS after item 100. Writes
``benchmarks/results/batch_memory.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ("Hello, I go to the store tomorrow.", "Who goes to the store?",
             "Hello Anna.", "Where do you go?", "I go to the store.")


def memory_mb(pid: int) -> tuple[float, float] | None:
    """(current RSS, peak RSS) of ``pid`` in MB, None once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
    except KeyError:  # a zombie has no memory fields
        return None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="assets/pipeline")
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--marks", type=int, nargs="+", default=[1, 100, 250, 500],
                        help="record memory when this many items are finished")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    marks = sorted(m for m in set(args.marks) if m <= args.items)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        jobs = work / "jobs.jsonl"
        jobs.write_text("".join(json.dumps({"id": f"item-{i:05d}", "seed": i,
                                            "text": SENTENCES[i % len(SENTENCES)]}) + "\n"
                                for i in range(args.items)))
        out = work / "out"
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        command = [sys.executable, str(ROOT / "sample.py"), "--batch", str(jobs), "--model",
                   str(args.model), "--out", str(out), "--avatar-only"]
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        recorded, peak, first_item_at = {}, 0.0, None
        while process.poll() is None:
            sample = memory_mb(process.pid)
            done = len(list(out.glob("*/.complete"))) if out.is_dir() else 0
            if sample:
                peak = max(peak, sample[1])
                for mark in marks:
                    if done >= mark and mark not in recorded:
                        recorded[mark] = round(sample[0], 1)
            if done and first_item_at is None:
                first_item_at = time.monotonic()
            time.sleep(0.1)
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"batch job failed ({process.returncode}):\n{stderr[-3000:]}")
        finished = len(list(out.glob("*/.complete")))
    elapsed = time.monotonic() - (first_item_at or start)
    result = {"benchmark": "batch_memory", "model": str(args.model), "items": args.items,
              "finished": finished, "rss_mb_after_items": {str(k): v for k, v in
                                                           sorted(recorded.items())},
              "peak_rss_mb": round(peak, 1), "threads": args.threads,
              "seconds_per_item": round(elapsed / max(finished - 1, 1), 3),
              "command": "python benchmarks/batch_memory.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    rows = "\n".join(f"| {k} | {v} |" for k, v in result["rss_mb_after_items"].items())
    table = (f"Batch job of {args.items} avatar-only items (`{result['command']}`), "
             f"{result['seconds_per_item']} s per item\n\n| items finished | RSS MB |\n"
             f"|---|---|\n{rows}\n\npeak RSS: {result['peak_rss_mb']} MB\n")
    target = Path(args.out)
    target.mkdir(parents=True, exist_ok=True)
    (target / "batch_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    (target / "batch_memory.md").write_text(table)
    print(table)
    return result


if __name__ == "__main__":
    main()
