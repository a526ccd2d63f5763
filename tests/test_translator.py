"""Stage III building blocks: the text tokenizer (vocabulary, tags, spelling, notices)
and the SignTranslator (shapes, loss, cached decoding, sampling, save/load, bad input)."""

import json
import shutil

import pytest
import torch

from signgen.data.text_tokenizer import TextTokenizer
from signgen.errors import ConfigError, InvalidInputError, SignGenError
from signgen.models.translator import (
    SignTranslator,
    code_digits,
    corrupt_tokens,
    digits_to_codes,
    group_frames,
    mix_frames,
    sample_predicted_frames,
    translator_loss,
)

TEXTS = ["Who will understand a driver on Friday?", "Hello Anna, I go to the store.",
         "The driver goes to the store tomorrow."]


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer.train(TEXTS, ["ssl-a", "ssl-b"], spelled_words=["Anna"],
                               glosses=["HELLO", "GO", "STORE", "fs-ANNA"])


def tokens(tok, encoded):
    return tok.decode(encoded.ids)


def test_known_words_and_the_language_tag(tokenizer):
    out = tokenizer.encode("Who will UNDERSTAND a driver?", "ssl-b")
    assert tokens(tokenizer, out) == ["<ssl-b>", "who", "will", "understand", "a", "driver", "?"]
    assert out.notices == []


def test_names_are_spelled_silently_unknown_words_with_a_notice(tokenizer):
    out = tokenizer.encode("Hello Anna and Zoë!", "ssl-a")
    spelled = ["[SPELL]", "##a", "##n", "##n", "##a", "[/SPELL]"]
    assert tokens(tokenizer, out) == ["<ssl-a>", "hello", *spelled, "[SPELL]", "##a", "##n",
                                      "##d", "[/SPELL]", "[SPELL]", "##z", "##o", "##e",
                                      "[/SPELL]"]  # "!" is punctuation: skipped
    assert out.notices == ["unknown word 'and': fingerspelled",
                           "unknown word 'zoe': fingerspelled"]


def test_characters_without_letters_are_left_out_with_a_notice(tokenizer):
    out = tokenizer.encode("hello 42 🙂", "ssl-a")
    assert tokens(tokenizer, out) == ["<ssl-a>", "hello"]
    assert len(out.notices) == 2 and all("no sign for it" in n for n in out.notices)


def test_gloss_input(tokenizer):
    out = tokenizer.encode_glosses("HELLO fs-ANNA GO XY", "ssl-a")
    assert tokens(tokenizer, out) == ["<ssl-a>", "[GLOSS]", "g:hello", "[SPELL]", "##a",
                                      "##n", "##n", "##a", "[/SPELL]", "g:go", "[SPELL]",
                                      "##x", "##y", "[/SPELL]"]
    assert out.notices == ["unknown gloss 'XY': fingerspelled"]


@pytest.mark.parametrize("text, language, message", [
    ("", "ssl-a", "nothing to sign"), ("  \t ", "ssl-a", "nothing to sign"),
    ("🙂", "ssl-a", "nothing to sign"), ("hello", "ssl-x", "unknown sign language 'ssl-x'"),
    ("a" * 3000, "ssl-a", "at most 2000"), (None, "ssl-a", "must be a string")])
def test_bad_text_is_a_clear_error(tokenizer, text, language, message):
    with pytest.raises(InvalidInputError, match=message):
        tokenizer.encode(text, language)


def test_save_and_load_encode_identically(tokenizer, tmp_path):
    tokenizer.save(tmp_path)
    loaded = TextTokenizer.load(tmp_path)
    for text in TEXTS + ["Hello Zoë"]:
        assert loaded.encode(text, "ssl-a") == tokenizer.encode(text, "ssl-a")
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(SignGenError, match="cannot read the tokenizer"):
        TextTokenizer.load(tmp_path)
    with pytest.raises(SignGenError, match="no tokenizer.json"):
        TextTokenizer.load(tmp_path / "missing")


# -- the translator ------------------------------------------------------------------------
C, S = 7, 3  # codebook size, tokens per frame
# The digit head: codes of a 3x4 FSQ lattice (12 codes; the test frames use 0..6).
DIGITS = {"codebook_size": 12, "levels": [3, 4]}
HEADS = pytest.mark.parametrize("head", [{}, DIGITS], ids=["codes", "digits"])


def small(**kw) -> SignTranslator:
    torch.manual_seed(0)
    args = dict(vocab_size=20, codebook_size=C, tokens_per_frame=S, dim=32, num_heads=2,
                encoder_layers=1, decoder_layers=2, ffn_mult=2, dropout=0.0,
                max_text_length=16, max_frames=12)
    return SignTranslator(**{**args, **kw}).eval()


def batch():
    g = torch.Generator().manual_seed(0)
    text = torch.randint(1, 20, (2, 6), generator=g)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    text[1, 4:] = 0
    frames = torch.randint(0, C, (2, 5, S), generator=g)
    frames[1, 3:] = 0  # padding beyond 3 frames
    return text, mask, frames, torch.tensor([5, 3])


@HEADS
def test_forward_shapes(head):
    text, mask, frames, _ = batch()
    out = small(**head)(text, mask, frames)
    assert out.code_logits.shape == (2, 6, S, 7) and out.end_logits.shape == (2, 6)
    assert out.levels == (None if not head else (3, 4))


def test_digits_are_the_fsq_lattice_coordinates():
    from vector_quantize_pytorch import FSQ

    levels = [8, 5, 5, 3]
    fsq = FSQ(levels=levels)
    codes = torch.arange(fsq.codebook_size)
    digits = code_digits(codes, levels)
    assert digits.shape == (600, 4) and (digits.max(0).values == torch.tensor(levels) - 1).all()
    assert torch.equal(digits_to_codes(digits, levels), codes)
    # digit i is FSQ's i-th coordinate, in order: one value per digit, rising with it
    points = fsq.indices_to_codes(codes)
    for i, level in enumerate(levels):
        values = [points[digits[:, i] == d, i].unique() for d in range(level)]
        assert all(len(v) == 1 for v in values)
        assert (torch.cat(values).diff() > 0).all()
    with pytest.raises(InvalidInputError, match="multiply to"):
        small(codebook_size=12, levels=[3, 5])


def fit(model, text, mask, targets, counts, iterations: int = 150) -> list[float]:
    """Teacher-forced Adam steps on one batch; the losses; leaves the model in eval mode."""
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(iterations):
        loss, _ = translator_loss(model(text, mask, targets), targets, counts)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    return losses


@HEADS
def test_loss_falls_and_the_model_learns_lengths(head):
    model = small(**head)
    text, mask, frames, lengths = batch()
    losses = fit(model, text, mask, frames, lengths)
    assert losses[-1] < 0.1 * losses[0]
    decoded = model.generate(text, mask, max_frames=10)
    assert [len(d) for d in decoded] == [5, 3]  # the end decision was learnt
    assert torch.equal(decoded[0], frames[0]) and torch.equal(decoded[1], frames[1, :3])


def test_group_frames_pads_each_row_with_its_last_frame():
    _, _, frames, lengths = batch()  # 5 and 3 real frames of 5
    steps, counts = group_frames(frames, lengths, 2)
    assert steps.shape == (2, 3, 2 * S) and counts.tolist() == [3, 2]
    frames_again = steps.view(2, 6, S)
    assert torch.equal(frames_again[0, :5], frames[0]) and torch.equal(frames_again[0, 5],
                                                                       frames[0, 4])
    assert torch.equal(frames_again[1, :3], frames[1, :3])
    assert (frames_again[1, 3:] == frames[1, 2]).all()  # padding: the last real frame
    same, same_counts = group_frames(frames, lengths, 1)
    assert same is frames and same_counts is lengths
    model = small(frames_per_step=2)
    assert torch.equal(model.ungroup_frames(steps), frames_again)


@HEADS
def test_two_frames_per_step_learn_the_frames_and_their_lengths(head, tmp_path):
    """frames_per_step=2: half the decoder steps; generate / stream return frames (the
    last step's second frame repeats a sequence's last frame when its length is odd)."""
    model = small(frames_per_step=2, **head)
    text, mask, frames, lengths = batch()
    steps, counts = model.group_frames(frames, lengths)
    losses = fit(model, text, mask, steps, counts)
    assert losses[-1] < 0.1 * losses[0]
    decoded = model.generate(text, mask, max_frames=10)
    assert [len(d) for d in decoded] == [6, 4]
    assert torch.equal(decoded[0][:5], frames[0]) and torch.equal(decoded[0][5], frames[0, 4])
    assert torch.equal(decoded[1][:3], frames[1, :3])
    capped = model.generate(text, mask, min_frames=7, max_frames=7)
    assert [len(d) for d in capped] == [7, 7]
    one, one_mask = text[:1], mask[:1]
    for kwargs in ({}, {"greedy": False, "min_frames": 7, "max_frames": 9}):
        expected = model.generate(one, one_mask, generator=torch.Generator().manual_seed(2),
                                  **kwargs)[0]
        for chunk_frames in (1, 3):
            chunks = list(model.stream(one, one_mask, chunk_frames=chunk_frames,
                                       generator=torch.Generator().manual_seed(2), **kwargs))
            assert torch.equal(torch.cat(chunks), expected), (kwargs, chunk_frames)
    model.save_pretrained(tmp_path)
    loaded = SignTranslator.from_pretrained(tmp_path).eval()
    assert loaded.config.frames_per_step == 2
    assert torch.equal(loaded(text, mask, steps).code_logits, model(text, mask, steps).code_logits)
    with pytest.raises(InvalidInputError, match="group_frames"):
        model(text, mask, frames)
    with pytest.raises(InvalidInputError, match="segments"):
        small(frames_per_step=2, max_segments=4)


def greedy_by_recomputing(model, text, mask, frames: int) -> torch.Tensor:
    """(B,frames,S) greedy codes, each frame from a teacher-forced pass over the prefix."""
    prefix = torch.zeros(len(text), 0, S, dtype=torch.long)
    with torch.no_grad():
        for _ in range(frames):
            logits = model(text, mask, prefix).code_logits[:, -1]
            prefix = torch.cat([prefix, logits.argmax(-1)[:, None]], dim=1)
    return prefix


def test_cached_greedy_decoding_equals_recomputing_the_prefix():
    model = small()
    text, mask, _, _ = batch()
    cached = model.generate(text, mask, min_frames=6, max_frames=6)
    prefix = greedy_by_recomputing(model, text, mask, 6)
    assert all(torch.equal(cached[i], prefix[i]) for i in range(2))


@HEADS
def test_sampling_is_seeded_and_filtered(head):
    model = small(**head)
    text, mask, _, _ = batch()

    def sample(seed, **kw):
        return model.generate(text, mask, min_frames=8, max_frames=8, greedy=False,
                              generator=torch.Generator().manual_seed(seed), **kw)

    a, b, c = sample(0), sample(0), sample(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    top1 = sample(3, top_k=1)  # top-k 1 is greedy
    greedy = model.generate(text, mask, min_frames=8, max_frames=8)
    assert all(torch.equal(x, y) for x, y in zip(top1, greedy, strict=True))
    tiny_p = sample(4, top_p=1e-6)  # only the most likely code survives
    assert all(torch.equal(x, y) for x, y in zip(tiny_p, greedy, strict=True))


@HEADS
def test_streamed_chunks_are_the_generated_frames(head):
    model = small(**head)
    text, mask, frames, lengths = batch()
    fit(model, text, mask, frames, lengths)  # learns the lengths: streams end on their own
    one, one_mask = text[1:], mask[1:]
    for kwargs in ({}, {"greedy": False}, {"greedy": False, "min_frames": 7, "top_k": 3}):
        expected = model.generate(one, one_mask, generator=torch.Generator().manual_seed(2),
                                  **kwargs)[0]
        for chunk_frames in (1, 2, 100):
            chunks = list(model.stream(one, one_mask, chunk_frames=chunk_frames,
                                       generator=torch.Generator().manual_seed(2), **kwargs))
            assert all(0 < len(c) <= chunk_frames for c in chunks)
            assert torch.equal(torch.cat(chunks), expected), (kwargs, chunk_frames)
    assert len(expected) == 7  # min_frames held it past its learnt end
    with pytest.raises(InvalidInputError, match="one text"):
        next(model.stream(text, mask))
    with pytest.raises(InvalidInputError, match="chunk_frames"):
        next(model.stream(one, one_mask, chunk_frames=0))


@HEADS
def test_save_and_load_give_identical_logits(tmp_path, head):
    model = small(**head)
    text, mask, frames, _ = batch()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["codebook_size"] == head.get("codebook_size", C)
    assert config["levels"] == head.get("levels")
    loaded = SignTranslator.from_pretrained(tmp_path).eval()
    assert torch.equal(model(text, mask, frames).code_logits,
                       loaded(text, mask, frames).code_logits)
    generator = torch.Generator().manual_seed(1)
    assert all(torch.equal(a, b) for a, b in zip(
        model.generate(text, mask, greedy=False, generator=generator),
        loaded.generate(text, mask, greedy=False, generator=generator.manual_seed(1)),
        strict=True))


def test_corruption_changes_inputs_only_at_its_rate():
    frames = torch.randint(0, C, (4, 50, S), generator=torch.Generator().manual_seed(0))
    assert torch.equal(corrupt_tokens(frames, 0.0, C), frames)
    noisy = corrupt_tokens(frames, 0.5, C, generator=torch.Generator().manual_seed(1))
    changed = (noisy != frames).float().mean().item()
    assert 0.35 < changed < 0.5  # half replaced, 1/C of them by the same code
    assert noisy.min() >= 0 and noisy.max() < C


def test_scheduled_sampling_replaces_whole_frames_at_its_rate():
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, C, (4, 50, S), generator=g)
    predicted = (frames + 1) % C  # differs from the true frame in every code
    assert torch.equal(mix_frames(frames, predicted, 0.0), frames)
    assert torch.equal(mix_frames(frames, predicted, 1.0), predicted)
    mixed = mix_frames(frames, predicted, 0.5, generator=torch.Generator().manual_seed(1))
    from_model = (mixed == predicted).all(-1)
    assert torch.equal(from_model | (mixed == frames).all(-1), torch.ones(4, 50, dtype=bool))
    assert 0.4 < from_model.float().mean().item() < 0.6
    with pytest.raises(InvalidInputError, match="must match"):
        mix_frames(frames, predicted[:, :3], 0.5)


@HEADS
def test_predicted_frames_are_drawn_from_each_position(head):
    model = small(**head)
    text, mask, frames, _ = batch()
    out = model(text, mask, frames)
    drawn = sample_predicted_frames(out, frames.shape[1], torch.Generator().manual_seed(0))
    assert drawn.shape == frames.shape and drawn.min() >= 0
    assert drawn.max() < model.config.codebook_size
    # Logits scaled up 1000x: the draw is the argmax of each position's distribution.
    sharp = type(out)(code_logits=out.code_logits * 1000, end_logits=out.end_logits,
                      levels=out.levels)
    argmax = sample_predicted_frames(sharp, frames.shape[1])
    if not head:
        expected = out.code_logits[:, :5].argmax(-1)
    else:
        parts = out.code_logits[:, :5].split(out.levels, dim=-1)
        expected = digits_to_codes(torch.stack([p.argmax(-1) for p in parts], -1), out.levels)
    assert torch.equal(argmax, expected)


@pytest.mark.parametrize("change, message", [
    (dict(frames_value=C), "frame tokens must lie in"),
    (dict(text_length=17), "exceeds max_text_length"),
    (dict(empty_text=True), "at least one token"),
])
def test_bad_input_is_a_clear_error(change, message):
    model = small()
    text, mask, frames, _ = batch()
    if "frames_value" in change:
        frames[0, 0, 0] = change["frames_value"]
    if "text_length" in change:
        text = torch.ones(2, change["text_length"], dtype=torch.long)
        mask = torch.ones_like(text, dtype=torch.bool)
    if "empty_text" in change:
        mask[0] = False
    with pytest.raises(InvalidInputError, match=message):
        model(text, mask, frames)
    with pytest.raises(InvalidInputError, match="must divide"):
        small(dim=30, num_heads=4)
    with pytest.raises(InvalidInputError, match="min_frames"):
        model.generate(text, mask, max_frames=13)


# -- the training stage --------------------------------------------------------------------
# Token folders as the FSQ makes them without --canonical-handedness (tiny.yaml asks for
# canonical ones; they have their own test).
PLAIN_TOKENS = "translator.canonical_handedness=false"

def _token_folders(root, fsq_dir, codebook_size=9, width=4, mirrored_signers=None):
    """Token folders of the tiny dataset's train, train_extra and dev samples, as if FSQ
    made them (with ``mirrored_signers``: as ``--canonical-handedness`` would)."""
    from signgen.data.tokens import FORMAT, FORMAT_VERSION, default_tokens_dir, fsq_weights_id

    fsq_id = fsq_weights_id(fsq_dir)
    g = torch.Generator().manual_seed(0)
    for split in ("train", "train_extra", "dev"):
        samples = [json.loads(p.read_text()) for p in sorted((root / "samples").glob(
            f"{split}-*/sample.json"))]
        folder = default_tokens_dir(root, fsq_id, split, mirrored_signers is not None)
        folder.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({**{k: s[k] for k in ("sample_id", "text", "glosses", "language",
                                                 "signer_id")},
                             "tokens": torch.randint(0, codebook_size, (s["num_frames"], width),
                                                     generator=g).tolist()})
                 for s in samples]
        (folder / "tokens.jsonl").write_text("\n".join(lines) + "\n")
        (folder / "meta.json").write_text(json.dumps({
            "format": FORMAT, "format_version": FORMAT_VERSION, "fsq_id": fsq_id,
            "codebook_size": codebook_size, "tokens_per_frame": width, "split": split,
            "num_samples": len(samples),
            **({} if mirrored_signers is None else {"mirrored_signers": mirrored_signers})}))
    return fsq_id


@pytest.mark.parametrize("head, per_step", [("codes", 1), ("digits", 1), ("codes", 2)],
                         ids=["codes", "digits", "codes-2-frames-per-step"])
def test_translator_stage_trains_evaluates_and_exports(tiny_overrides, tiny_data_root,
                                                       tmp_path, one_thread, head, per_step):
    from safetensors.torch import save_file

    import train
    from signgen.config import load_config

    fsq = tmp_path / "fsq"
    fsq.mkdir()
    (fsq / "config.json").write_text('{"levels": [3, 3]}')
    # another checkpoint: its own token folders
    seed = 9 if per_step > 1 else 7 if head == "codes" else 8
    save_file({"w": torch.randn(8, generator=torch.Generator().manual_seed(seed))},
              str(fsq / "diffusion_pytorch_model.safetensors"))
    overrides = [*tiny_overrides, f"experiment.output_dir={tmp_path}/out", PLAIN_TOKENS,
                 f"translator.fsq_model={fsq}", "translator.model.dim=32",
                 "translator.model.num_heads=2", "translator.model.encoder_layers=1",
                 "translator.model.decoder_layers=1", f"translator.model.head={head}",
                 "translator.scheduled_sampling=0.5",
                 f"translator.model.frames_per_step={per_step}",
                 # the digits run also goes through bf16 autocast, with the tag embedding
                 # and segments (from the corpus' gloss spans)
                 *(["translator.train.mixed_precision=bf16",
                    "translator.model.language_embedding=true",
                    "translator.model.max_segments=16",
                    "translator.model.signer_conditioning=true"] if head == "digits" else []),
                 *(f"translator.train.{kv}" for kv in
                   ("max_steps=3", "batch_size=2", "warmup_steps=1", "log_every=1",
                    "eval_every=3", "save_every=3"))]
    cfg = load_config("tiny", overrides)
    with pytest.raises(SignGenError, match="python -m signgen.data.tokens"):
        train.main(cfg, "translator", progress=False)
    fsq_id = _token_folders(tiny_data_root / "synthsign", fsq)
    folder = train.main(cfg, "translator", progress=False)
    info = json.loads((folder / "translator.json").read_text())
    assert info["fsq_id"] == fsq_id and info["languages"]
    model = SignTranslator.from_pretrained(folder).eval()
    tokenizer = TextTokenizer.load(folder)
    assert model.config.codebook_size == 9 and model.config.tokens_per_frame == 4
    assert model.config.levels == ([3, 3] if head == "digits" else None)
    assert model.config.language_embedding == (head == "digits")
    assert model.config.max_segments == (16 if head == "digits" else 0)
    assert model.config.frames_per_step == per_step
    manifest = (tiny_data_root / "synthsign" / "manifest.jsonl").read_text().splitlines()
    train_signers = sorted({s["signer_id"] for s in map(json.loads, manifest)
                            if s["split"] in cfg.translator.train_splits})
    assert model.config.signers == (train_signers if head == "digits" else None)
    encoded = tokenizer.encode("Hello", info["languages"][0])
    ids = torch.tensor([encoded.ids])
    frames = model.generate(ids, torch.ones_like(ids, dtype=torch.bool), max_frames=5)
    assert frames[0].shape[1] == 4 and 1 <= len(frames[0]) <= 5
    log = [json.loads(line) for line in (tmp_path / "out" / "translator" / "metrics.jsonl")
           .read_text().splitlines()]
    assert {"eval/dev_loss", "eval/dev_code_ce", "eval/length_error",
            "eval/decoded_repeat_rate", "eval/sampled_length_error",
            "eval/sampled_repeat_rate"} <= set(log[-1])
    assert log[0]["code_ce"] > 0
    # scheduled sampling rises over the first half of the 3 steps, then stays at 0.5
    assert [round(entry["sampling_rate"], 3) for entry in log if "sampling_rate" in entry] \
        == [0.0, 0.333, 0.5]
    # The same run folder asked for the other head: a clear error, not the old model.
    other = "codes" if head == "digits" else "digits"
    changed = load_config("tiny", [o.replace(f"head={head}", f"head={other}")
                                   for o in overrides])
    with pytest.raises(ConfigError, match="another architecture"):
        train.main(changed, "translator", progress=False)
    assert train.main(cfg, "translator", progress=False) == folder  # unchanged: kept


def test_translator_learns_from_every_train_split_it_is_given(tiny_overrides, tiny_data_root,
                                                            tmp_path, one_thread):
    from safetensors.torch import save_file

    from signgen.config import load_config
    from signgen.data.tokens import default_tokens_dir
    from signgen.training.tasks.translator import TranslatorTask

    root = tmp_path / "synthsign"  # a private copy: token folders are written into it
    shutil.copytree(tiny_data_root / "synthsign", root, ignore=shutil.ignore_patterns("cache"))
    fsq = tmp_path / "fsq"
    fsq.mkdir()
    (fsq / "config.json").write_text('{"levels": [3, 3]}')
    save_file({"w": torch.ones(8)}, str(fsq / "diffusion_pytorch_model.safetensors"))
    fsq_id = _token_folders(root, fsq)

    def task(splits):
        return TranslatorTask(load_config("tiny", [
            *tiny_overrides, PLAIN_TOKENS, f"data.root={tmp_path}", f"translator.fsq_model={fsq}",
            f"translator.train_splits=[{','.join(splits)}]"]))

    plain, both = task(["train"]), task(["train", "train_extra"])
    assert [i["sample_id"] for i in both.train_items] == [
        *(i["sample_id"] for i in plain.train_items), "train_extra-00000"]
    assert len(both.dev_items) == len(plain.dev_items)
    assert plain.inputs_version == f"fsq {fsq_id}"  # run folders of before stay valid
    assert both.inputs_version == f"fsq {fsq_id} splits train+train_extra"
    for bad in (["train", "dev"], ["test_novel_sentences"], ["train", "train"], []):
        with pytest.raises(SignGenError, match="distinct training splits"):
            task(bad)
    with pytest.raises(SignGenError, match="no train_more tokens"):
        task(["train", "train_more"])
    # Segments need the sign timing of every sample; a corpus without it: a clear error.
    segmented = TranslatorTask(load_config("tiny", [
        *tiny_overrides, PLAIN_TOKENS, f"data.root={tmp_path}", f"translator.fsq_model={fsq}",
        "translator.model.max_segments=16"]))
    lines = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    item = segmented.train_items[0]
    spans = next(line["gloss_spans"] for line in lines if line["sample_id"] == item["sample_id"])
    # every stroke's first frame and the frame after it (within the clip) opens a segment
    expected = sorted({f for _, first, end in spans for f in (first, end)
                       if 0 < f < len(item["tokens"])})
    assert item["segment_starts"].nonzero().flatten().tolist() == expected and expected
    batch_ = segmented.collate(segmented.train_items[:2])
    assert batch_["segment_starts"].shape == batch_["frames"].shape[:2]
    # Canonical handedness: the canonical folders, whose mirrored signers the model keeps.
    canonical = [*tiny_overrides, f"data.root={tmp_path}", f"translator.fsq_model={fsq}",
                 "translator.canonical_handedness=true"]
    with pytest.raises(SignGenError, match="--canonical-handedness"):
        TranslatorTask(load_config("tiny", canonical))
    _token_folders(root, fsq, mirrored_signers=["s02"])
    task_ = TranslatorTask(load_config("tiny", canonical))
    assert task_.inputs_version == f"fsq {fsq_id} splits train+train_extra canonical handedness"
    assert task_.build_model().config.mirrored_signers == ["s02"]
    assert plain.build_model().config.mirrored_signers is None
    dev_meta = default_tokens_dir(root, fsq_id, "dev", True) / "meta.json"
    dev_meta.write_text(json.dumps({**json.loads(dev_meta.read_text()),
                                    "mirrored_signers": ["s03"]}))
    with pytest.raises(SignGenError, match="disagree on which signers were mirrored"):
        TranslatorTask(load_config("tiny", canonical))
    (root / "manifest.jsonl").write_text("".join(
        json.dumps({**line, "gloss_spans": []}) + "\n" for line in lines))
    with pytest.raises(SignGenError, match="max_segments=0 for corpora without it"):
        TranslatorTask(load_config("tiny", [
            *tiny_overrides, PLAIN_TOKENS, f"data.root={tmp_path}",
            f"translator.fsq_model={fsq}", "translator.model.max_segments=16"]))


def test_draws_follow_the_softmax_and_respect_the_filters():
    from signgen.models.translator import _choose

    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5, 0.5, -3.0])  # two distributions: 4 + 3
    rows = logits.expand(20000, 1, 7)  # (B,S,K) with B draws at once
    generator = torch.Generator().manual_seed(0)
    first, second = _choose(rows, False, 1.0, 0, 1.0, generator, sizes=(4, 3))
    for picks, part in ((first, logits[:4]), (second, logits[4:])):
        frequency = torch.bincount(picks.flatten(), minlength=len(part)).float() / 20000
        torch.testing.assert_close(frequency, part.softmax(0), atol=0.01, rtol=0)
    hot = _choose(rows, False, 0.5, 0, 1.0, generator)[0]  # temperature sharpens
    frequency = torch.bincount(hot.flatten(), minlength=7).float() / 20000
    torch.testing.assert_close(frequency, (logits / 0.5).softmax(0), atol=0.01, rtol=0)
    top2 = _choose(rows, False, 1.0, 2, 1.0, generator, sizes=(4, 3))
    assert set(top2[0].unique().tolist()) == {0, 1} and set(top2[1].unique().tolist()) == {0, 1}


def test_language_embedding_reaches_every_frame_and_decodes_like_teacher_forcing(tmp_path):
    model = small(language_embedding=True)
    text, mask, frames, _ = batch()
    with torch.no_grad():
        neutral = model(text, mask, frames).code_logits
        model.language_embed.weight.normal_()  # zero at initialisation: give it a say
        told = model(text, mask, frames).code_logits
    assert not torch.allclose(neutral, told)
    with torch.no_grad():  # only the tag's row matters: other rows change nothing
        rows = torch.ones(model.config.vocab_size, dtype=torch.bool)
        rows[text[:, 0]] = False
        model.language_embed.weight[rows] = 0
        assert torch.equal(model(text, mask, frames).code_logits, told)
    cached = model.generate(text, mask, min_frames=6, max_frames=6)
    prefix = greedy_by_recomputing(model, text, mask, 6)
    assert all(torch.equal(cached[i], prefix[i]) for i in range(2))
    model.save_pretrained(tmp_path / "m")
    loaded = SignTranslator.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.language_embedding
    with torch.no_grad():
        assert torch.equal(loaded(text, mask, frames).code_logits, told)


def test_segment_positions_count_segments_and_frames_within_them():
    from signgen.models.translator import segment_positions, span_segment_starts

    starts = torch.tensor([[True, False, True, False, True], [False, True, True, False, False]])
    segment, frame = segment_positions(starts, max_segments=8, max_segment_frames=8)
    # position t is frame t's (frame 0 always opens segment 0); position 5 continues
    assert segment.tolist() == [[0, 0, 1, 1, 2, 2], [0, 1, 2, 2, 2, 2]]
    assert frame.tolist() == [[0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 2, 3]]
    segment, frame = segment_positions(starts, max_segments=2, max_segment_frames=3)
    assert segment.max() == 1 and frame.max() == 2  # clamped
    spans = [("HELLO", 2, 5), ("fs-ANNA", 7, 12)]
    assert span_segment_starts(spans, 12).nonzero().flatten().tolist() == [2, 5, 7]
    # tokens at half the video's rate: the spans are rescaled
    assert span_segment_starts(spans, 6, source_frames=12).nonzero().flatten().tolist() == \
        [1, 2, 4]


def segment_batch():
    text, mask, frames, lengths = batch()
    starts = torch.zeros(2, 5, dtype=torch.bool)
    starts[0, [2, 4]] = True
    starts[1, 1] = True
    return text, mask, frames, lengths, starts


def test_segments_are_learnt_and_decode_like_teacher_forcing(tmp_path):
    model = small(**DIGITS, max_segments=4, max_segment_frames=4).train()
    text, mask, frames, lengths, starts = segment_batch()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss, extra = translator_loss(model(text, mask, frames, starts), frames, lengths, starts)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert extra["boundary_accuracy"] == 1.0 and extra["boundary_bce"] < 0.05
    model.eval()
    decoded = model.generate(text, mask, max_frames=10)
    assert torch.equal(decoded[0], frames[0]) and torch.equal(decoded[1], frames[1, :3])
    # Cached decoding = a teacher-forced pass over its own frames and boundary decisions.
    model = small(max_segments=4, max_segment_frames=2)
    with torch.no_grad():
        model.segment_embed.weight.normal_()  # give the segments a say
        model.segment_frame_embed.weight.normal_()
        model.boundary_head.weight.normal_()
    cached = model.generate(text, mask, min_frames=6, max_frames=6)
    prefix = torch.zeros(2, 0, S, dtype=torch.long)
    with torch.no_grad():  # own_starts holds the decision for the frame about to come
        own_starts = torch.zeros(2, 1, dtype=torch.bool)
        for _ in range(6):
            out = model(text, mask, prefix, own_starts)
            prefix = torch.cat([prefix, out.code_logits[:, -1].argmax(-1)[:, None]], dim=1)
            own_starts = torch.cat([own_starts, out.boundary_logits[:, -1:] > 0], dim=1)
    assert own_starts[:, 1:].any() and not own_starts[:, 1:].all()  # both kinds of step
    assert all(torch.equal(cached[i], prefix[i]) for i in range(2))
    a = model.generate(text, mask, max_frames=8, greedy=False,
                       generator=torch.Generator().manual_seed(3))
    b = model.generate(text, mask, max_frames=8, greedy=False,
                       generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    model.save_pretrained(tmp_path / "m")
    loaded = SignTranslator.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.max_segments == 4
    with torch.no_grad():
        torch.testing.assert_close(loaded(text, mask, frames, starts).boundary_logits,
                                   model(text, mask, frames, starts).boundary_logits)


def test_segment_starts_must_match_the_model():
    text, mask, frames, lengths, starts = segment_batch()
    with pytest.raises(InvalidInputError, match="exactly when the model has segments"):
        small()(text, mask, frames, starts)
    with pytest.raises(InvalidInputError, match="exactly when the model has segments"):
        small(max_segments=4)(text, mask, frames)
    with pytest.raises(InvalidInputError, match="must be \\(B,T\\) or"):
        small(max_segments=4)(text, mask, frames, starts[:, :3])
    out = small(max_segments=4)(text, mask, frames, starts)
    with pytest.raises(InvalidInputError, match="needs segment_starts"):
        translator_loss(out, frames, lengths)


def test_signer_conditioning_tells_signers_apart_and_decodes_like_teacher_forcing(tmp_path):
    model = small(signers=["s01", "s00"], max_segments=4)
    text, mask, frames, _, starts = segment_batch()
    with torch.no_grad():
        model.signer_embed.weight.normal_()  # give the signers a say
        known = model(text, mask, frames, starts, torch.tensor([1, 2])).code_logits
        unknown = model(text, mask, frames, starts, torch.tensor([0, 0])).code_logits
        default = model(text, mask, frames, starts).code_logits  # None: unknown signers
    assert not torch.allclose(known, unknown) and torch.equal(default, unknown)
    assert [model.signer_index(s) for s in ("s01", "s00", "s99", None)] == [1, 2, 0, 0]
    signers = torch.tensor([2, 0])
    cached = model.generate(text, mask, min_frames=6, max_frames=6, signer_ids=signers)
    prefix = torch.zeros(2, 0, S, dtype=torch.long)
    own_starts = torch.zeros(2, 1, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(6):
            out = model(text, mask, prefix, own_starts, signers)
            prefix = torch.cat([prefix, out.code_logits[:, -1].argmax(-1)[:, None]], dim=1)
            own_starts = torch.cat([own_starts, out.boundary_logits[:, -1:] > 0], dim=1)
    assert all(torch.equal(cached[i], prefix[i]) for i in range(2))
    model.save_pretrained(tmp_path / "m")
    loaded = SignTranslator.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.signers == ["s01", "s00"]
    with torch.no_grad():
        assert torch.equal(loaded(text, mask, frames, starts, torch.tensor([1, 2])).code_logits,
                           known)
    with pytest.raises(InvalidInputError, match=r"signer_ids must be \(2,\) in \[0, 2\]"):
        model(text, mask, frames, starts, torch.tensor([1, 3]))
    with pytest.raises(InvalidInputError, match="no signer conditioning"):
        small()(text, mask, frames, signer_ids=torch.tensor([0, 0]))
    with pytest.raises(InvalidInputError, match="distinct ids"):
        small(signers=["s00", "s00"])
