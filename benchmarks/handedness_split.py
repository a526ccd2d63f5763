"""The text2avatar pose back-translation WER split by the signer's handedness.

SynthSign's left-handed signers (``signers.json``: handedness) mirror every sign. A
translator with signer conditioning (``translator.model.signer_conditioning``) is told
whose sentence it signs; this reports, per handedness of the sample's signer, the number
of sentences, the pose recogniser's WER on the engine's avatar keypoints and the mean
length difference (generated - true frames), once telling the translator the signer and
once not (``--unknown-signer``-style; the same for a translator without conditioning).
Decoding: the config's ``translator.decoding`` and seeds (as ``eval score``).

    python benchmarks/handedness_split.py --model outputs/pipeline-sig-ss [--num N]
        [--tag NAME] [--config tiny] [section.key=value ...]

Writes ``benchmarks/results/handedness_split__<split>[__<tag>].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.config import load_config  # noqa: E402
from signgen.data.synthsign.mirroring import left_handed_signers  # noqa: E402
from signgen.eval import metrics  # noqa: E402
from signgen.eval.recogniser import recognise_poses  # noqa: E402
from signgen.eval.score import Evaluators, iter_ground_truth, split_samples  # noqa: E402
from signgen.eval.systems import TextToSignSystem  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def split_by_handedness(system, root: Path, samples: list[dict], evaluators,
                        left: set[str]) -> dict[str, dict]:
    """{"left"/"right": sentences, pose_bt_wer, mean_length_difference} of ``system``."""
    refs, hyps, lengths = {"left": [], "right": []}, {"left": [], "right": []}, \
        {"left": [], "right": []}
    for gt in iter_ground_truth(root, samples):
        out = system.generate(gt)
        hand = "left" if gt.sample["signer_id"] in left else "right"
        refs[hand].append(list(gt.sample["glosses"]))
        hyps[hand].append(recognise_poses(evaluators.pose_recogniser, [out.keypoints],
                                          [out.visible], [gt.sample["language"]])[0])
        lengths[hand].append(len(out.keypoints) - len(gt.keypoints))
    return {hand: {"sentences": len(refs[hand]),
                   "pose_bt_wer": metrics.wer(refs[hand], hyps[hand]) if refs[hand] else None,
                   "mean_length_difference": float(np.mean(lengths[hand]))
                   if lengths[hand] else None}
            for hand in refs}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="SignGenPipeline folder")
    parser.add_argument("--split", default="test_novel_sentences")
    parser.add_argument("--num", type=int, help="only the first N samples")
    parser.add_argument("--tag", help="a name for this model in the result file names")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    root = Path(cfg.data.root) / cfg.data.dataset
    left = set(left_handed_signers(root))
    evaluators = Evaluators.load(cfg.eval.weights_dir)
    samples = split_samples(root, args.split, args.num)
    decoding = dataclasses.asdict(cfg.translator.decoding)
    start = time.perf_counter()
    rows = {}
    for tell in (True, False):
        system = TextToSignSystem(args.model, root, name="text2avatar", avatar_only=True,
                                  seed=cfg.experiment.seed, decoding=decoding,
                                  tell_signer=tell)
        name = "told the sample's signer" if tell else "told nothing"
        rows[name] = split_by_handedness(system, root, samples, evaluators, left)
    command = "python benchmarks/handedness_split.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    result = {"split": args.split, "num_samples": len(samples), "model": args.model,
              "decoding": decoding, "left_handed_signers": sorted(left), "rows": rows,
              "seconds": round(time.perf_counter() - start, 1), "command": command}
    stem = f"handedness_split__{args.split}" + (f"__{args.tag}" if args.tag else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"text2avatar by the signer's handedness, `{args.model}`, {len(samples)} "
             f"sentences of {args.split}; `{command}`", "",
             "| translator | signers | sentences | pose BT-WER | mean length difference "
             "(frames) |", "|---|---|---|---|---|"]
    for name, split in rows.items():
        for hand, row in split.items():
            wer = "–" if row["pose_bt_wer"] is None else f"{row['pose_bt_wer']:.3f}"
            diff = ("–" if row["mean_length_difference"] is None
                    else f"{row['mean_length_difference']:+.1f}")
            lines.append(f"| {name} | {hand}-handed | {row['sentences']} | {wer} | {diff} |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
