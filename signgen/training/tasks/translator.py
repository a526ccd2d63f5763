"""Training task of the text-to-token translator (``python train.py --stage translator``).

Data: the token folders of ``translator.train_splits`` (default: train) and of dev, made
by the FSQ autoencoder at ``translator.fsq_model`` (``python -m signgen.data.tokens --fsq
<folder> --split train``; a folder made by another FSQ checkpoint is refused). Each
sample gives its text, glosses, language and per-frame tokens (T,S).

The text tokenizer is trained here on the train texts (names the corpus fingerspells,
``fs-`` glosses, are kept out of its vocabulary so that they are spelled letter by
letter) and exported with the model. A training input is the text or, with probability
``gloss_input_rate``, the gloss sequence; with ``scheduled_sampling`` a share of the
decoder's input frames (rising over training) is replaced by frames the model samples
itself in a first teacher-forced pass without gradients (``mix_frames``); then the input
codes are corrupted at ``corruption_rate`` (``corrupt_tokens``), the targets never.
With ``model.max_segments`` each sample's segment starts come from the corpus manifest's
gloss spans (``sign_timing``); with ``model.signer_conditioning`` the model learns the
training signers' ids and sees each sample's signer, hidden at ``signer_dropout``.
With ``canonical_handedness`` the token folders are those made with
``--canonical-handedness`` (left-handed signers' samples as their mirror images); the
mirrored signers' ids go to the model's config (``mirrored_signers``).

Evaluation on the dev split: teacher-forced ``dev_loss``, its codes' part ``dev_code_ce``
(comparable across models with and without segments) and ``dev_code_accuracy`` on all
dev samples; greedy decoding of ``DEV_DECODED`` of them gives ``length_error`` (mean
|decoded - true| frames), ``decoded_repeat_rate`` and ``reference_repeat_rate`` (the
share of consecutive frames whose tokens are all equal: a translator that copies its
previous frame shows a decoded rate far above the reference's); decoding them as
inference does (``translator.decoding``, seed 0) gives ``sampled_length_error`` and
``sampled_repeat_rate``.

Export: ``save_pretrained`` + the tokenizer (``tokenizer.json``, ``text_tokenizer.json``)
+ ``translator.json`` (the FSQ checkpoint id the tokens mean something to).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.synthsign.lexicon import FINGERSPELL_PREFIX
from signgen.errors import SignGenError
from signgen.training.tasks.keypoints import dataset_root

DEV_DECODED = 16


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.translator.train


def build_task(cfg: SignGenConfig) -> TranslatorTask:
    return TranslatorTask(cfg)


def build_translator(settings, vocab_size: int, codebook_size: int, tokens_per_frame: int,
                     pad_id: int, levels, signers: list[str] | None = None,
                     mirrored_signers: list[str] | None = None):
    """A fresh ``SignTranslator`` of ``translator.model`` settings; ``levels`` (the FSQ
    autoencoder's) are used by the digits head only, ``signers`` (the training corpus'
    signer ids) with ``signer_conditioning`` only; ``mirrored_signers``: the signers whose
    tokens are their mirror images' (canonical handedness), or None."""
    from signgen.models.translator import SignTranslator

    kwargs = dataclasses.asdict(settings)
    head = kwargs.pop("head")
    if kwargs.pop("signer_conditioning"):
        if not signers:
            raise SignGenError("translator.model.signer_conditioning needs the training "
                               "corpus' signer ids")
        kwargs["signers"] = sorted(signers)
    return SignTranslator(vocab_size=vocab_size, codebook_size=codebook_size,
                          tokens_per_frame=tokens_per_frame, pad_id=pad_id,
                          levels=list(levels) if head == "digits" else None,
                          mirrored_signers=mirrored_signers, **kwargs)


def train_text_tokenizer(samples: list[dict]):
    """The text tokenizer of a translator trained on ``samples`` (text, glosses, language):
    fingerspelled names (``fs-`` glosses) stay out of the vocabulary, so they are spelled."""
    from signgen.data.text_tokenizer import TextTokenizer

    names = {g[len(FINGERSPELL_PREFIX):] for s in samples for g in s["glosses"]
             if g.startswith(FINGERSPELL_PREFIX)}
    glosses = {g for s in samples for g in s["glosses"]}
    return TextTokenizer.train([s["text"] for s in samples],
                               sorted({s["language"] for s in samples}),
                               spelled_words=names, glosses=glosses)


def sign_timing(root) -> dict[str, tuple[list, int]]:
    """sample_id -> (gloss_spans, num_frames) of every sample in the corpus manifest at
    ``root`` (SynthSign's spans: (gloss, first, last + 1 frame) of each sign's stroke;
    empty for a preprocessed corpus without timing)."""
    manifest = Path(root) / "manifest.jsonl"
    if not manifest.is_file():
        raise SignGenError(f"no manifest.jsonl in {root}: cannot read the sign timing that "
                           f"translator.model.max_segments needs")
    timing = {}
    for line in manifest.read_text().splitlines():
        sample = json.loads(line)
        timing[sample["sample_id"]] = (sample.get("gloss_spans") or [],
                                       int(sample.get("num_frames") or 0))
    return timing


def repeat_rate(tokens: np.ndarray) -> float:
    """Share of consecutive frame pairs of (T,S) tokens whose tokens are all equal."""
    tokens = np.asarray(tokens)
    if len(tokens) < 2:
        return 0.0
    return float((tokens[1:] == tokens[:-1]).all(axis=1).mean())


class TranslatorTask:
    """Text (or glosses) -> FSQ tokens of the frames."""

    def __init__(self, cfg: SignGenConfig) -> None:
        from signgen.data.tokens import default_tokens_dir, fsq_weights_id, load_tokens

        self.cfg, self.settings = cfg, cfg.translator
        self.fsq_dir = Path(self.settings.fsq_model)
        if not (self.fsq_dir / "config.json").is_file():
            raise SignGenError(f"no FSQ autoencoder in {self.fsq_dir}; train it with "
                               f"python train.py --stage fsq (or set translator.fsq_model)")
        self.fsq_id = fsq_weights_id(self.fsq_dir)
        train_splits = list(self.settings.train_splits)  # checked with the config
        self.inputs_version = f"fsq {self.fsq_id}"
        if train_splits != ["train"]:  # (a train-only run keeps its older record)
            self.inputs_version += f" splits {'+'.join(train_splits)}"
        canonical = self.settings.canonical_handedness
        if canonical:
            self.inputs_version += " canonical handedness"
        root = dataset_root(cfg)
        splits = {}
        for split in (*train_splits, "dev"):
            folder = default_tokens_dir(root, self.fsq_id, split, canonical)
            if not (folder / "meta.json").is_file():
                raise SignGenError(f"no {split} tokens of FSQ checkpoint {self.fsq_id} in "
                                   f"{folder}; make them with python -m signgen.data.tokens "
                                   f"--fsq {self.fsq_dir} --split {split}"
                                   + (" --canonical-handedness" if canonical else ""))
            splits[split] = load_tokens(folder, self.fsq_id)
        mirrored = {split: tokens.meta.get("mirrored_signers") for split, tokens in splits.items()}
        if canonical and len({json.dumps(m) for m in mirrored.values()}) > 1:
            raise SignGenError(f"the token splits disagree on which signers were mirrored: "
                               f"{mirrored}; tokenise them again")
        self.mirrored_signers = mirrored["dev"] if canonical else None
        dev = splits["dev"]
        train = [sample for split in train_splits for sample in splits[split].samples]
        self.spans = sign_timing(root) if self.settings.model.max_segments else None
        self.codebook_size, self.tokens_per_frame = dev.codebook_size, dev.tokens_per_frame
        self.tokenizer = train_text_tokenizer(train)
        # signer conditioning: index 1.. of each training signer (0: unknown)
        self.signers = sorted({s["signer_id"] for s in train}) \
            if self.settings.model.signer_conditioning else None
        self.train_items = self._items(train)
        self.dev_items = self._items(dev.samples)
        self._dev_batches = None
        self.sampling_rate = 0.0  # scheduled sampling's current share (set_step)

    def set_step(self, step: int, max_steps: int) -> None:
        """Scheduled sampling's share for training step ``step`` (0-based): linear from 0
        to ``scheduled_sampling`` over the first ``scheduled_sampling_ramp`` of training."""
        final, ramp = self.settings.scheduled_sampling, self.settings.scheduled_sampling_ramp
        ramp_steps = ramp * max_steps
        self.sampling_rate = final if ramp_steps <= 0 else final * min(1.0, step / ramp_steps)

    def _items(self, samples: list[dict]) -> list[dict]:
        from signgen.models.translator import signer_index

        longest = self.settings.model.max_frames
        items = []
        for s in samples:
            if len(s["tokens"]) > longest:
                raise SignGenError(f"{s['sample_id']} has {len(s['tokens'])} frames; "
                                   f"translator.model.max_frames is {longest}")
            item = {"sample_id": s["sample_id"],
                    "text": self.tokenizer.encode(s["text"], s["language"]).ids,
                    "gloss": self.tokenizer.encode_glosses(s["glosses"], s["language"]).ids,
                    "tokens": torch.from_numpy(s["tokens"])}
            if self.spans is not None:
                item["segment_starts"] = self._segment_starts(s["sample_id"], len(s["tokens"]))
            if self.signers is not None:
                item["signer"] = signer_index(self.signers, s["signer_id"])
            items.append(item)
        return items

    def _segment_starts(self, sample_id: str, num_frames: int) -> torch.Tensor:
        """(num_frames,) bool segment starts of a sample from the corpus' sign timing."""
        from signgen.models.translator import span_segment_starts

        spans, source_frames = self.spans.get(sample_id, ([], 0))
        if not spans:
            raise SignGenError(f"translator.model.max_segments needs the sign timing "
                               f"(gloss_spans) of every training sample; {sample_id} has none "
                               f"in {dataset_root(self.cfg)}/manifest.jsonl. Set "
                               f"translator.model.max_segments=0 for corpora without it")
        return span_segment_starts(spans, num_frames, source_frames)

    # -- model -----------------------------------------------------------------------------
    def build_model(self):
        levels = json.loads((self.fsq_dir / "config.json").read_text())["levels"]
        return build_translator(self.settings.model, self.tokenizer.vocab_size,
                                self.codebook_size, self.tokens_per_frame,
                                self.tokenizer.pad_id, levels, self.signers,
                                self.mirrored_signers)

    # -- data ------------------------------------------------------------------------------
    def train_dataset(self) -> list[dict]:
        return self.train_items

    def collate(self, items: list[dict], use_gloss: list[bool] | None = None) -> dict:
        """Pad a list of items: text_ids (B,L) + text_mask, frames (B,T,S) + num_frames
        (with ``frames_per_step`` k > 1: decoder steps (B,T/k,k*S) and their counts, see
        ``group_frames``). ``use_gloss`` (default: drawn with ``gloss_input_rate``) picks
        the gloss input."""
        from signgen.models.translator import group_frames

        if use_gloss is None:
            use_gloss = (torch.rand(len(items)) < self.settings.gloss_input_rate).tolist()
        texts = [item["gloss" if gloss else "text"] for item, gloss in
                 zip(items, use_gloss, strict=True)]
        length = max(map(len, texts))
        if length > self.settings.model.max_text_length:
            raise SignGenError(f"an input of {length} text ids exceeds "
                               f"translator.model.max_text_length")
        text_ids = torch.full((len(items), length), self.tokenizer.pad_id, dtype=torch.long)
        for row, ids in enumerate(texts):
            text_ids[row, :len(ids)] = torch.tensor(ids)
        longest = max(len(item["tokens"]) for item in items)
        tokens = torch.zeros(len(items), longest, self.tokens_per_frame, dtype=torch.long)
        for row, item in enumerate(items):
            tokens[row, :len(item["tokens"])] = item["tokens"]
        # decoder steps of translator.model.frames_per_step frames (B,T/k,k*S), their counts
        steps, num_steps = group_frames(
            tokens, torch.tensor([len(item["tokens"]) for item in items]),
            self.settings.model.frames_per_step)
        batch = {"text_ids": text_ids, "text_mask": text_ids != self.tokenizer.pad_id,
                 "frames": steps, "num_frames": num_steps,
                 "sample_ids": [item["sample_id"] for item in items]}
        if self.spans is not None:  # (segments need frames_per_step 1: steps are frames)
            starts = torch.zeros(len(items), longest, dtype=torch.bool)
            for row, item in enumerate(items):
                starts[row, :len(item["segment_starts"])] = item["segment_starts"]
            batch["segment_starts"] = starts
        if self.signers is not None:
            batch["signer_ids"] = torch.tensor([item["signer"] for item in items])
        return batch

    # -- loss ------------------------------------------------------------------------------
    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        from signgen.models.translator import (
            corrupt_tokens,
            mix_frames,
            sample_predicted_frames,
            translator_loss,
        )

        device = next(model.parameters()).device
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        inputs, starts = batch["frames"], batch.get("segment_starts")
        signers = batch.get("signer_ids")
        if signers is not None:  # hide some signers: the "unknown signer" entry learns too
            hidden = torch.rand(len(signers)) < self.settings.signer_dropout
            signers = signers.masked_fill(hidden.to(signers.device), 0)
        if self.sampling_rate > 0:  # scheduled sampling: continue from its own frames
            with torch.no_grad():
                first = model(batch["text_ids"], batch["text_mask"],
                              corrupt_tokens(inputs, self.settings.corruption_rate,
                                             self.codebook_size), starts, signers)
            inputs = mix_frames(inputs, sample_predicted_frames(first, inputs.shape[1]),
                                self.sampling_rate)
        inputs = corrupt_tokens(inputs, self.settings.corruption_rate, self.codebook_size)
        out = model(batch["text_ids"], batch["text_mask"], inputs, starts, signers)
        loss, extra = translator_loss(out, batch["frames"], batch["num_frames"], starts)
        if self.settings.scheduled_sampling > 0:
            extra["sampling_rate"] = self.sampling_rate
        return loss, extra

    # -- evaluation and export ------------------------------------------------------------
    def evaluate(self, model) -> dict[str, float]:
        from signgen.models.translator import translator_loss

        device = next(model.parameters()).device
        if self._dev_batches is None:
            self._dev_batches = [self.collate(self.dev_items[i:i + 32],
                                              [False] * len(self.dev_items[i:i + 32]))
                                 for i in range(0, len(self.dev_items), 32)]
        losses, code_ces, accuracies, weights = [], [], [], []
        for batch in self._dev_batches:
            b = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            out = model(b["text_ids"], b["text_mask"], b["frames"], b.get("segment_starts"),
                        b.get("signer_ids"))
            loss, extra = translator_loss(out, b["frames"], b["num_frames"],
                                          b.get("segment_starts"))
            losses.append(loss.item())
            code_ces.append(extra["code_ce"])
            accuracies.append(extra["code_accuracy"])
            weights.append(len(batch["sample_ids"]))
        decoded_items = self.dev_items[:DEV_DECODED]
        batch = self.collate(decoded_items, [False] * len(decoded_items))
        signers = batch.get("signer_ids")
        signers = None if signers is None else signers.to(device)
        decoded = model.generate(batch["text_ids"].to(device), batch["text_mask"].to(device),
                                 max_frames=self.settings.model.max_frames,
                                 signer_ids=signers)
        # ... and by sampling with the inference defaults (translator.decoding), seeded.
        decoding = self.settings.decoding
        sampled = model.generate(batch["text_ids"].to(device), batch["text_mask"].to(device),
                                 max_frames=self.settings.model.max_frames,
                                 greedy=decoding.greedy, temperature=decoding.temperature,
                                 top_k=decoding.top_k, top_p=decoding.top_p,
                                 generator=torch.Generator().manual_seed(0),
                                 signer_ids=signers)
        true = [item["tokens"].numpy() for item in decoded_items]

        def length_error(outputs) -> float:
            return float(np.mean([abs(len(d) - len(t)) for d, t in zip(outputs, true,
                                                                         strict=True)]))

        return {"dev_loss": float(np.average(losses, weights=weights)),
                "dev_code_ce": float(np.average(code_ces, weights=weights)),
                "dev_code_accuracy": float(np.average(accuracies, weights=weights)),
                "length_error": length_error(decoded),
                "decoded_repeat_rate": float(np.mean([repeat_rate(d.numpy())
                                                      for d in decoded])),
                "sampled_length_error": length_error(sampled),
                "sampled_repeat_rate": float(np.mean([repeat_rate(d.numpy())
                                                      for d in sampled])),
                "reference_repeat_rate": float(np.mean([repeat_rate(t) for t in true]))}

    def export(self, model, folder: Path) -> None:
        folder = Path(folder)
        model.save_pretrained(folder)
        self.tokenizer.save(folder)
        info = {"fsq_id": self.fsq_id, "fsq_model": str(self.fsq_dir),
                "languages": self.tokenizer.languages,
                "corruption_rate": self.settings.corruption_rate,
                "scheduled_sampling": self.settings.scheduled_sampling,
                "scheduled_sampling_ramp": self.settings.scheduled_sampling_ramp,
                "gloss_input_rate": self.settings.gloss_input_rate}
        if self.signers is not None:
            info["signer_dropout"] = self.settings.signer_dropout
        (folder / "translator.json").write_text(json.dumps(info, indent=2) + "\n")
