"""Where the text -> token translator loses: teacher-forced frames against free-running
decoding, each decoded by the pipeline's FSQ autoencoder and back-translated by the pose
recogniser (``assets/evaluators``), on a split whose tokens exist (dev by default).

Rows, per sample:

- ``true tokens``: the split's tokens themselves (the FSQ's ceiling);
- ``teacher-forced argmax``: at every frame the translator's most likely codes given the
  text and the *true* previous frames (no error can accumulate);
- ``sampled (text)``, ``sampled (glosses)``, ``greedy (text)``: free-running decoding
  as inference does it, from the text or from the reference glosses.

A large gap between the teacher-forced row and the sampled rows is exposure bias: the
decoder drifts once it continues from its own frames. A gap between text and glosses
would be the text side (translation) instead.

    python benchmarks/translator_exposure.py --model assets/pipeline [--split dev]
        [--num 60] [--tag NAME]

Writes ``benchmarks/results/translator_exposure__<tag>.json`` and ``.md`` (tag default:
the model folder's name).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.data.tokens import default_tokens_dir, fsq_weights_id, load_tokens  # noqa: E402
from signgen.errors import SignGenError  # noqa: E402
from signgen.eval import metrics  # noqa: E402
from signgen.eval.recogniser import recognise_poses  # noqa: E402
from signgen.eval.score import Evaluators, iter_ground_truth, split_samples  # noqa: E402
from signgen.models.translator import sample_predicted_frames  # noqa: E402
from signgen.pipelines.sign_gen import SignGenPipeline, inside_frame  # noqa: E402

ROWS = ("true tokens", "teacher-forced argmax", "sampled (text)", "sampled (glosses)",
        "greedy (text)")


def teacher_forced_argmax(pipe: SignGenPipeline, text: str, language: str,
                          tokens: np.ndarray, signer: str | None = None) -> np.ndarray:
    """(T,S) true tokens -> (T,S) the translator's most likely codes of every frame given
    the true frames before it (and ``signer``, for a translator with signer conditioning;
    one with segments needs the true segmentation: not supported here)."""
    ids, notices = pipe._text_ids(text, language, None)
    model = pipe.translator
    with torch.no_grad():
        out = model(ids, torch.ones_like(ids, dtype=torch.bool), torch.as_tensor(tokens)[None],
                    signer_ids=pipe._signer_ids(signer, notices))
    return sample_predicted_frames(out, len(tokens), greedy=True)[0].numpy()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="assets/pipeline", help="SignGenPipeline folder")
    parser.add_argument("--root", default="data/synthsign")
    parser.add_argument("--split", default="dev", help="a split with tokens of the "
                        "pipeline's FSQ (python -m signgen.data.tokens)")
    parser.add_argument("--num", type=int, default=60)
    parser.add_argument("--evaluators", default="assets/evaluators")
    parser.add_argument("--fsq-id", default=None, help="the token folders' FSQ id "
                        "(default: that of the FSQ run the pipeline's stages.json names)")
    parser.add_argument("--max-frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder, root = Path(args.model), Path(args.root)
    pipe = SignGenPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    fsq_id = args.fsq_id or fsq_weights_id(
        json.loads((folder / "stages.json").read_text())["fsq"])  # the trained FSQ's id
    # a translator trained with canonical handedness learnt (and is fed) mirrored tokens
    canonical = bool(pipe.translator.config.mirrored_signers)
    token_dir = default_tokens_dir(root, fsq_id, args.split, canonical)
    if not (token_dir / "meta.json").is_file():
        raise SignGenError(f"no {args.split} tokens of FSQ {fsq_id} in {token_dir}")
    true_tokens = {s["sample_id"]: s["tokens"] for s in load_tokens(token_dir, fsq_id).samples}
    evaluators = Evaluators.load(args.evaluators)
    samples = split_samples(root, args.split, args.num)
    refs = []
    hyps = {row: [] for row in ROWS}
    dtw = {row: [] for row in ROWS}
    length_error = {row: [] for row in ROWS}
    for i, gt in enumerate(iter_ground_truth(root, samples)):
        sample, language = gt.sample, gt.sample["language"]
        refs.append(list(sample["glosses"]))
        truth = true_tokens[sample["sample_id"]]
        for row in ROWS:
            decoding = dict(greedy=row.startswith("greedy"), max_frames=args.max_frames,
                            generator=torch.Generator().manual_seed(i))
            if row == "true tokens":
                tokens = truth
            elif row == "teacher-forced argmax":
                tokens = teacher_forced_argmax(pipe, sample["text"], language, truth,
                                               sample["signer_id"])
            elif row == "sampled (glosses)":
                tokens, _ = pipe.translate(None, language, list(sample["glosses"]),
                                           signer=sample["signer_id"], **decoding)
            else:
                tokens, _ = pipe.translate(sample["text"], language, None,
                                           signer=sample["signer_id"], **decoding)
            _, _, keypoints = pipe.decode_tokens(tokens, embeddings=False,
                                                 signer=sample["signer_id"])
            visible = inside_frame(keypoints, *pipe.frame_size)
            hyps[row].append(recognise_poses(evaluators.pose_recogniser, [keypoints],
                                             [visible], [language])[0])
            joints = metrics.DTW_JOINTS
            norm_gt = metrics.normalise_keypoints(gt.keypoints, gt.visible)
            norm_out = metrics.normalise_keypoints(keypoints, visible)
            dtw[row].append(metrics.dtw_mje(norm_gt[:, joints], norm_out[:, joints],
                                            gt.visible[:, joints], visible[:, joints]))
            length_error[row].append(abs(len(tokens) - len(truth)))
    rows = {row: {"pose_bt_wer": round(metrics.wer(refs, hyps[row]), 3),
                  "pose_bt_bleu4": round(metrics.bleu4(refs, hyps[row]), 2),
                  "dtw_mje": round(float(np.mean(dtw[row])), 3),
                  "length_error": round(float(np.mean(length_error[row])), 1)}
            for row in ROWS}
    tag = args.tag or folder.name
    result = {"model": str(folder), "fsq_id": fsq_id, "split": args.split,
              "num_samples": len(samples), "rows": rows, "evaluators": evaluators.versions,
              "examples": [{"reference": refs[k], **{row: hyps[row][k] for row in ROWS}}
                           for k in range(min(3, len(refs)))],
              "command": "python benchmarks/translator_exposure.py "
                         + " ".join(sys.argv[1:] if argv is None else argv)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"translator_exposure__{tag}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"Translator `{folder}` on {len(samples)} {args.split} samples, decoded by its "
             f"FSQ, pose back-translation; `{result['command'].strip()}`", "",
             "| frames from | pose BT-WER | pose BT-BLEU-4 | DTW-MJE | length error (frames) |",
             "|---|---|---|---|---|"]
    lines += [f"| {row} | {r['pose_bt_wer']} | {r['pose_bt_bleu4']} | {r['dtw_mje']} | "
              f"{r['length_error']} |" for row, r in rows.items()]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
