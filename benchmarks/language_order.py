"""Does asking for one sign language ever give the other? (issue #7: one model serves both
synthetic languages; asking for language B must never yield language A's word order.)

For each sentence of a split, the engine signs its text in every language (avatar path:
tokens -> FSQ pose -> keypoints, with the config's ``translator.decoding`` and seed
``experiment.seed + i`` for sentence i, as ``eval score`` seeds it). The pose
recogniser (``assets/evaluators``) then reads the keypoints once as each language, and
each reading is scored against that language's reference glosses: the SynthSign grammar
orders the same meaning (the manifest's ``frame_key``) differently per language, and the
two languages sign a gloss differently. Per requested language L:

- ``own_wer``: the reading as L against L's glosses (the pose back-translation WER);
- ``own_read_other_order_wer``: the same reading against the other language's glosses
  (the right signs in the other word order would score well here);
- ``other_wer``: the reading as the other language against its glosses;
- ``confused``: share of sentences better explained by the other language (its reading
  has a lower sentence WER than L's own), ``other_order_closer``: share whose L reading
  is closer to the other language's gloss order than to L's; both over the sentences
  whose two gloss sequences differ, and lower is better (ground truth: the control);
- ``right_signs``: share of those sentences whose L reading has exactly the reference's
  glosses in some order (every sign right, none missing or extra), and among them
  ``wrong_order_given_right_signs`` (not in L's order) and
  ``other_order_given_right_signs`` (exactly the other language's order): word order
  told apart from sign errors, which the two rates above mix;
- ``other_order_pairs``: word order over every sentence, not only those read without an
  error: take the glosses found exactly once in the L reading and in each language's
  reference, and every pair of them that the two languages order differently
  (``order_pairs`` of them in all); the share of those pairs the reading puts in the
  other language's order (0: L's order wherever the signs let it show; 1: the other's).
  A pair that L's grammar orders either way is not counted: ssl-a may front a
  statement's object as a topic (STORE I GO) or not (I GO STORE), and the corpus picks
  by a hash of the meaning that the English text does not show, so a translation that
  takes the other option is still ssl-a (``orders``: every order each grammar allows).
  ``other_order_sentences``: share of the sentences with such pairs where most of them
  are in the other language's order.

Two control rows: the ground-truth clips of the split (each exists only in its own
language), and dictionary lookup + concatenation (``lookup_concat``) of the requested
language's reference glosses, which has the right order by construction and errs about
as much as the engine: whatever it scores on ``confused`` / ``other_order_closer`` is
what poor signing in the right order scores (these rates count a sentence whose own
reading is worse than the other's, so a bad translation counts as much as a confused one).

    python benchmarks/language_order.py [--model assets/pipeline] [--split
        test_novel_sentences] [--num N] [--config tiny] [section.key=value ...]

Writes ``benchmarks/results/language_order__<split>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signgen.config import load_config  # noqa: E402
from signgen.data.synthsign.grammar import Frame, can_topicalise, glosses  # noqa: E402
from signgen.data.synthsign.lexicon import LANGUAGES  # noqa: E402
from signgen.eval import metrics  # noqa: E402
from signgen.eval.recogniser import PoseGlossRecogniser, recognise_poses  # noqa: E402
from signgen.eval.score import split_samples  # noqa: E402
from signgen.loading import load_pretrained  # noqa: E402
from signgen.paths import assets_dir, display_path  # noqa: E402


def sentence_wer(reference, hypothesis) -> float:
    """Edit distance over the reference length (one sentence)."""
    return sum(metrics.edit_ops(list(reference), list(hypothesis))) / len(reference)


def references(sample: dict) -> dict[str, tuple[str, ...]]:
    """The sample's meaning as glosses of every language, by language."""
    frame = Frame.from_key(sample["frame_key"])
    return {language: glosses(frame, language)[0] for language in LANGUAGES}


def orders(sample: dict) -> dict[str, list[tuple[str, ...]]]:
    """Every gloss order each language's grammar allows for the sample's meaning: ssl-a
    may front a statement's object as a topic or not (the corpus picks by a hash of the
    meaning, which the English text does not show), so a translation may take either."""
    frame = Frame.from_key(sample["frame_key"])
    return {language: sorted({glosses(frame, language, topic=topic)[0] for topic in (
        (False, True) if language == "ssl-a" and can_topicalise(frame) else (None,))})
        for language in LANGUAGES}


def readings(recogniser, keypoints, visible) -> dict[str, list[str]]:
    """One keypoint track read as every language."""
    found = recognise_poses(recogniser, [keypoints] * len(LANGUAGES),
                            [visible] * len(LANGUAGES), list(LANGUAGES))
    return dict(zip(LANGUAGES, found, strict=True))


def pair_orders(own: list[str], other: list[str], reading: list[str],
                own_alternatives: Sequence[Sequence[str]] = ()) -> tuple[int, int]:
    """(pairs in ``own``'s order, pairs in ``other``'s order): over the pairs of glosses
    that occur once in each of the three sequences and that ``own`` and ``other`` order
    differently, how ``reading`` orders them. ``own_alternatives``: other orders of the
    same glosses that ``own``'s language allows; a pair they order either way is free
    in that language and not counted."""
    owns = [list(own), *map(list, own_alternatives)]
    once = [g for g in own if all(o.count(g) == 1 for o in owns)
            and other.count(g) == reading.count(g) == 1]
    in_own = in_other = 0
    for i, a in enumerate(once):
        for b in once[i + 1:]:  # a comes before b in own
            if other.index(a) < other.index(b):
                continue  # both languages order the pair alike: says nothing
            if any(o.index(a) > o.index(b) for o in owns[1:]):
                continue  # own's language orders the pair either way
            if reading.index(a) < reading.index(b):
                in_own += 1
            else:
                in_other += 1
    return in_own, in_other


def summarise(rows: list[dict]) -> dict:
    """Per-sentence rows (requested, refs, reads) -> the figures of the module docstring."""
    out = {"sentences": len(rows)}
    if not rows:
        return out
    own = [r["requested"] for r in rows]
    other = [next(lang for lang in LANGUAGES if lang != o) for o in own]
    refs_own = [list(r["refs"][o]) for r, o in zip(rows, own, strict=True)]
    refs_other = [list(r["refs"][o]) for r, o in zip(rows, other, strict=True)]
    read_own = [r["reads"][o] for r, o in zip(rows, own, strict=True)]
    read_other = [r["reads"][o] for r, o in zip(rows, other, strict=True)]
    out["own_wer"] = metrics.wer(refs_own, read_own)
    out["own_read_other_order_wer"] = metrics.wer(refs_other, read_own)
    out["other_wer"] = metrics.wer(refs_other, read_other)
    differ = [i for i in range(len(rows)) if refs_own[i] != refs_other[i]]
    out["sentences_whose_orders_differ"] = len(differ)
    if differ:
        out["confused"] = float(np.mean([
            sentence_wer(refs_other[i], read_other[i]) < sentence_wer(refs_own[i], read_own[i])
            for i in differ]))
        out["other_order_closer"] = float(np.mean([
            sentence_wer(refs_other[i], read_own[i]) < sentence_wer(refs_own[i], read_own[i])
            for i in differ]))
        right = [i for i in differ if sorted(read_own[i]) == sorted(refs_own[i])]
        out["right_signs"] = len(right) / len(differ)
        if right:
            out["wrong_order_given_right_signs"] = float(np.mean(
                [read_own[i] != refs_own[i] for i in right]))
            out["other_order_given_right_signs"] = float(np.mean(
                [read_own[i] == refs_other[i] for i in right]))
        alternatives = [[o for o in rows[i].get("orders", {}).get(own[i], [])
                         if list(o) != refs_own[i]] for i in range(len(rows))]
        pairs = [pair_orders(refs_own[i], refs_other[i], read_own[i], alternatives[i])
                 for i in differ]
        out["order_pairs"] = int(sum(a + b for a, b in pairs))
        if out["order_pairs"]:
            out["other_order_pairs"] = sum(b for _, b in pairs) / out["order_pairs"]
            out["other_order_sentences"] = float(np.mean([b > a for a, b in pairs if a + b]))
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=display_path(assets_dir() / "pipeline"))
    parser.add_argument("--split", default="test_novel_sentences")
    parser.add_argument("--num", type=int, default=None)
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_args(argv)

    from signgen.data.synthsign.dataset import read_npz
    from signgen.pipelines.sign_gen import SignGenPipeline

    start = time.perf_counter()
    cfg = load_config(args.config, args.overrides)
    root = Path(cfg.data.root) / cfg.data.dataset
    samples = split_samples(root, args.split, args.num)
    recogniser = load_pretrained(PoseGlossRecogniser,
                                 Path(cfg.eval.weights_dir) / "pose_recogniser").eval()
    pipe = SignGenPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    decoding = dataclasses.asdict(cfg.translator.decoding)
    unknown = set(pipe.languages) ^ set(LANGUAGES)
    if unknown:
        raise SystemExit(f"the pipeline serves {pipe.languages}, SynthSign has {LANGUAGES}")

    from tqdm import tqdm

    lexicon_dir = Path(cfg.data.root) / "synthsign_lexicon"
    lookup = None
    if (lexicon_dir / "index.csv").is_file():
        from signgen.eval.lookup_baseline import LookupConcatBaseline

        lookup = LookupConcatBaseline(lexicon_dir)
    else:
        print(f"no lexicon export in {lexicon_dir} (python -m signgen.eval score --system "
              f"lookup_concat makes it): no lookup row")
    generated = {language: [] for language in LANGUAGES}
    looked_up = {language: [] for language in LANGUAGES}
    truth = []
    for i, sample in enumerate(tqdm(samples, desc="sentences")):
        refs, allowed = references(sample), orders(sample)
        with read_npz(root / "samples" / sample["sample_id"] / "motion.npz") as motion:
            truth.append({"requested": sample["language"], "refs": refs, "orders": allowed,
                          "reads": readings(recogniser, motion["keypoints"],
                                            motion["visible"])})
        for language in LANGUAGES:
            if lookup is not None:
                keypoints, visible = lookup.keypoints(list(refs[language]), language)
                looked_up[language].append({"requested": language, "refs": refs,
                                            "orders": allowed,
                                            "reads": readings(recogniser, keypoints, visible)})
            out = pipe(sample["text"], language, avatar_only=True, signer=sample["signer_id"],
                       seed=cfg.experiment.seed + i, progress=False, **decoding)
            generated[language].append({
                "requested": language, "refs": refs, "orders": allowed,
                "reads": readings(recogniser, out.keypoints, out.visible)})
    rows = {"ground truth (each clip in its own language)": summarise(truth)}
    for language in LANGUAGES:
        if lookup is not None:
            rows[f"lookup + concatenation, {language}"] = summarise(looked_up[language])
    for language in LANGUAGES:
        rows[f"engine, asked for {language}"] = summarise(generated[language])
    command = "python benchmarks/language_order.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    result = {"split": args.split, "num_samples": len(samples), "model": str(args.model),
              "decoding": decoding, "seed": cfg.experiment.seed, "rows": rows,
              "seconds": round(time.perf_counter() - start, 1), "command": command.strip(),
              # every reading, to study them again without signing anew
              "readings": {"ground truth": truth,
                           **{f"lookup, {k}": v for k, v in looked_up.items() if v},
                           **{f"engine, {k}": v for k, v in generated.items()}}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"language_order__{args.split}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    keys = ["sentences", "own_wer", "own_read_other_order_wer", "other_wer",
            "sentences_whose_orders_differ", "confused", "other_order_closer", "right_signs",
            "wrong_order_given_right_signs", "other_order_given_right_signs", "order_pairs",
            "other_order_pairs", "other_order_sentences"]
    lines = [f"Language confusion on {args.split} ({len(samples)} sentences), "
             f"`{result['command']}`", "", "| clips | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name, row in rows.items():
        cells = [f"{row[k]:.3f}" if isinstance(row.get(k), float) else str(row.get(k, "–"))
                 for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
