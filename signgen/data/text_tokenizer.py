"""The translator's text tokenizer: words of the training corpus, a sign-language tag,
and letters for everything else (which the translator fingerspells).

Built on a ``tokenizers`` word-level model (NFKD + accent stripping + lowercase, split on
whitespace and punctuation) trained on the corpus sentences and saved as
``tokenizer.json`` beside the translator. An input becomes::

    <tag> word word [SPELL] ##a ##n ##n ##a [/SPELL] word ?          (text)
    <tag> [GLOSS] g:tomorrow g:store [SPELL] ##a ... [/SPELL] g:go    (gloss input)

- ``<tag>``: the target sign language (``<ssl-a>``); asking for an unknown one is an
  error naming the known tags.
- A word the vocabulary lacks, and every name the corpus fingerspells (``fs-`` glosses,
  kept out of the vocabulary on purpose so that the model learns to spell from letters),
  is spelled letter by letter; an unknown word also produces a notice for the user.
- Characters that have no letter (digits, emoji, symbols) cannot be signed here: they
  are left out *with a notice*, never silently. Punctuation outside the vocabulary is
  skipped (the corpus's own punctuation, such as ``?``, is kept: it marks questions).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from signgen.data.synthsign.lexicon import FINGERSPELL_PREFIX
from signgen.errors import InvalidInputError, SignGenError

PAD, UNK, SPELL, END_SPELL, GLOSS = "[PAD]", "[UNK]", "[SPELL]", "[/SPELL]", "[GLOSS]"
SPECIAL_TOKENS = (PAD, UNK, SPELL, END_SPELL, GLOSS)
LETTERS = "abcdefghijklmnopqrstuvwxyz"
LETTER_PREFIX = "##"
GLOSS_PREFIX = "g:"
TOKENIZER_FILE = "tokenizer.json"
INFO_FILE = "text_tokenizer.json"
MAX_INPUT_CHARS = 2000


@dataclass
class EncodedText:
    """ids: the token ids (tag first); notices: what the user should be told (words
    spelled because they are unknown, characters left out)."""

    ids: list[int]
    notices: list[str] = field(default_factory=list)


def _tag(language: str) -> str:
    return f"<{language}>"


def _letters(word: str) -> tuple[str, str]:
    """(spellable letters a-z, the characters that have none), accents stripped."""
    plain = unicodedata.normalize("NFKD", word).lower()
    letters = "".join(c for c in plain if c in LETTERS)
    dropped = "".join(c for c in plain if c not in LETTERS and not unicodedata.combining(c))
    return letters, dropped


class TextTokenizer:
    """Word vocabulary + language tags + spelling letters (see the module docstring)."""

    def __init__(self, tokenizer, languages: Sequence[str], spelled_words: Iterable[str] = (),
                 glosses: Iterable[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.languages = list(languages)
        self.spelled_words = set(spelled_words)
        self.glosses = set(glosses)
        self.vocab = tokenizer.get_vocab()
        missing = [t for t in (*SPECIAL_TOKENS, *map(_tag, self.languages),
                               *(LETTER_PREFIX + c for c in LETTERS)) if t not in self.vocab]
        if missing:
            raise SignGenError(f"tokenizer vocabulary lacks {missing[:5]}")

    # -- building --------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], languages: Sequence[str],
              spelled_words: Iterable[str] = (), glosses: Iterable[str] = ()) -> TextTokenizer:
        """Learn the word vocabulary of ``texts`` (minus ``spelled_words``, the names the
        corpus fingerspells, lowercase) and add ``glosses`` (gloss input) as ``g:`` words."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

        if not languages:
            raise InvalidInputError("the tokenizer needs at least one sign-language tag")
        spelled = {w.lower() for w in spelled_words}
        glosses = sorted({g.lower() for g in glosses if not g.startswith(FINGERSPELL_PREFIX)})
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        fixed = [*SPECIAL_TOKENS, *map(_tag, languages), *(LETTER_PREFIX + c for c in LETTERS),
                 *(GLOSS_PREFIX + g for g in glosses)]
        trainer = trainers.WordLevelTrainer(special_tokens=fixed, min_frequency=1)

        # Normalised before training: the tokenizer must not be used while it trains
        # (calling it from the training iterator deadlocks).
        lines = []
        for text in texts:
            normalized = tokenizer.normalizer.normalize_str(text)
            lines.append(" ".join(w for w, _ in tokenizer.pre_tokenizer.pre_tokenize_str(
                normalized) if w not in spelled))
        tokenizer.train_from_iterator(lines, trainer)
        return cls(tokenizer, languages, spelled, glosses)

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(folder / TOKENIZER_FILE))
        (folder / INFO_FILE).write_text(json.dumps(
            {"languages": self.languages, "spelled_words": sorted(self.spelled_words),
             "glosses": sorted(self.glosses)}, indent=1) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> TextTokenizer:
        from tokenizers import Tokenizer

        folder = Path(folder)
        for name in (TOKENIZER_FILE, INFO_FILE):
            if not (folder / name).is_file():
                raise SignGenError(f"no {name} in {folder}: not a translator folder")
        try:
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
            info = json.loads((folder / INFO_FILE).read_text())
        except Exception as error:  # the tokenizers library raises a plain Exception
            raise SignGenError(f"cannot read the tokenizer in {folder}: {error}") from None
        return cls(tokenizer, info["languages"], info["spelled_words"], info["glosses"])

    # -- encoding --------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def pad_id(self) -> int:
        return self.vocab[PAD]

    def _spell(self, word: str, ids: list[int], notices: list[str], why: str | None) -> None:
        letters, dropped = _letters(word)
        if dropped:
            notices.append(f"left out {dropped!r} of {word!r}: no sign for it")
        if letters:
            if why:
                notices.append(f"{why} {word!r}: fingerspelled")
            ids += [self.vocab[SPELL], *(self.vocab[LETTER_PREFIX + c] for c in letters),
                    self.vocab[END_SPELL]]

    def encode(self, text: str, language: str) -> EncodedText:
        """Text in ``language``'s target sign language -> ids (see the module docstring)."""
        self._check(text, language)
        ids, notices = [self.vocab[_tag(language)]], []
        normalized = self.tokenizer.normalizer.normalize_str(text)
        for word, _ in self.tokenizer.pre_tokenizer.pre_tokenize_str(normalized):
            if word in self.spelled_words:
                self._spell(word, ids, notices, None)  # names are always spelled
            elif word in self.vocab and not word.startswith(("[", "<", LETTER_PREFIX,
                                                             GLOSS_PREFIX)):
                ids.append(self.vocab[word])
            elif all(unicodedata.category(c).startswith("P") for c in word):
                continue  # punctuation the corpus never had: nothing to sign
            else:
                self._spell(word, ids, notices, "unknown word")
        return self._finish(text, ids, notices, header=1)

    def encode_glosses(self, glosses: Sequence[str] | str, language: str) -> EncodedText:
        """Gloss input (``"TOMORROW STORE I GO"`` or a list; ``fs-NAME`` spelled)."""
        if isinstance(glosses, str):
            glosses = glosses.split()
        self._check(" ".join(glosses), language)
        ids, notices = [self.vocab[_tag(language)], self.vocab[GLOSS]], []
        for gloss in glosses:
            if gloss.startswith(FINGERSPELL_PREFIX):
                self._spell(gloss[len(FINGERSPELL_PREFIX):], ids, notices, None)
            elif GLOSS_PREFIX + gloss.lower() in self.vocab:
                ids.append(self.vocab[GLOSS_PREFIX + gloss.lower()])
            else:
                self._spell(gloss, ids, notices, "unknown gloss")
        return self._finish(" ".join(glosses), ids, notices, header=2)

    def _check(self, text: str, language: str) -> None:
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
        if language not in self.languages:
            raise InvalidInputError(f"unknown sign language {language!r}; this model knows "
                                    f"{', '.join(self.languages)}")
        if len(text) > MAX_INPUT_CHARS:
            raise InvalidInputError(f"text of {len(text)} characters; at most "
                                    f"{MAX_INPUT_CHARS} per sentence")

    @staticmethod
    def _finish(text: str, ids: list[int], notices: list[str], header: int) -> EncodedText:
        """``header``: how many leading ids are not content (tag, gloss marker)."""
        if len(ids) <= header:
            raise InvalidInputError(f"nothing to sign in {text[:80]!r}"
                                    + (f" ({'; '.join(notices)})" if notices else ""))
        return EncodedText(ids, notices)

    def decode(self, ids: Sequence[int]) -> list[str]:
        """ids -> their tokens (for notices and debugging)."""
        return [self.tokenizer.id_to_token(int(i)) for i in ids]
