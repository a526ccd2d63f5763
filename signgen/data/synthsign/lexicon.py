"""SynthSign lexicon: a sign form for every concept in two synthetic sign languages.

    python -m signgen.data.synthsign.lexicon [--seed 0] [--out assets/synthsign/lexicon.json]

The two languages, ``ssl-a`` (the default) and ``ssl-b``, sign every concept of
``vocabulary.CONCEPTS``. About 30% of the concepts are cross-lingual (the same form in
both, listed as ``shared``), like cognates between related sign languages; the rest are
drawn independently. Each language also has a fingerspelling alphabet (A-Z) for names.

Forms are drawn from the seed with phonological constraints from sign-language
research: most signs are one-handed, two-handed signs are symmetric or use the
non-dominant hand as a static base with an unmarked handshape (Battison), only
one-handed signs touch the face, and only base signs are made on the other palm.
Within a language no two signs share a form (ignoring duration, repeat and non-manual
marker), so every sign is recognisable. Every draw uses its own ``random.Random`` keyed
by (seed, language, gloss), so adding a concept leaves the other forms unchanged.

The shipped asset ``assets/synthsign/lexicon.json`` is this module's output for seed 0;
it is written with sorted keys and one sign per line, byte-identical across runs.
"""

from __future__ import annotations

import difflib
import json
import os
import random
import string
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType

from signgen.cli import ArgumentParser, run_cli
from signgen.data.synthsign.phonology import (
    DURATION_RANGE,
    HANDSHAPES,
    LOCATIONS,
    MOVEMENTS,
    ORIENTATIONS,
    REPEAT_RANGE,
    SignForm,
)
from signgen.data.synthsign.vocabulary import CONCEPTS, NAMES, name_gloss
from signgen.errors import InvalidInputError, SignGenError
from signgen.paths import assets_dir

FORMAT = "signgen-synthsign-lexicon"
VERSION = 1
LANGUAGES: tuple[str, ...] = ("ssl-a", "ssl-b")
DEFAULT_LANGUAGE = "ssl-a"
DEFAULT_SEED = 0
LETTERS = string.ascii_uppercase
SHARED_FRACTION = 0.3
FINGERSPELL_PREFIX = "fs-"
_DEFAULT_OUT = "assets/synthsign/lexicon.json"  # relative, as written into the asset

# Phonological constraints. Face locations are only reached with one hand; symmetric
# signs stay in the space in front of the body; the base hand takes an unmarked shape.
_FACE = ("forehead", "temple", "eye", "nose", "mouth", "chin", "cheek", "ear")
_ONE_HANDED_LOCATIONS = tuple(loc for loc in LOCATIONS if loc not in ("palm", "fingerspell"))
_SYMMETRIC_LOCATIONS = ("neutral", "neutral_high", "neutral_low", "chest", "stomach",
                        "shoulder")
_BASE_LOCATIONS = ("palm", "palm", "palm", "neutral", "neutral_low")  # mostly on the palm
_UNMARKED = ("B", "A", "S", "1", "5", "C", "O")
# Unmarked handshapes are the most frequent in sign languages: three times as likely.
_HANDSHAPE_POOL = tuple(h for h in HANDSHAPES for _ in range(3 if h in _UNMARKED else 1))
_NO_EXTENDED_FINGERS = ("A", "S", "E", "O", "X")  # nothing to wiggle
_REPEATED = ("tap", "wiggle")  # these movements are repeated by nature
_HAND_TYPE_WEIGHTS = {"one": 0.6, "symmetric": 0.25, "base": 0.15}
_LEXICAL_NONMANUAL_RATE = 0.1
_LEXICAL_NONMANUALS = ("mouth_open", "puff", "pucker", "smile")
# Obligatory markers: negation and WH signs carry them in both languages.
_FIXED_NONMANUALS = {"NOT": "head_shake", "NO": "head_shake", "YES": "head_nod",
                     **{g: "brows_down" for g, c in CONCEPTS.items() if c.category == "wh"}}

# Fingerspelling: letters are held in front of the dominant shoulder, palm mostly out;
# J and Z trace their shape.
_LETTER_MOVEMENTS = {"J": "twist", "Z": "zigzag"}
_LETTER_ORIENTATIONS = ("palm_out_fingers_up", "palm_out_fingers_up", "palm_side_fingers_up",
                        "palm_side_fingers_forward", "palm_down_fingers_forward")
_LETTER_DURATION = (0.22, 0.28)
_REDRAWN_LETTERS = 13  # letters ssl-b signs differently from ssl-a


class LexiconError(SignGenError):
    """The lexicon file is missing or malformed."""


class UnknownGlossError(SignGenError, KeyError):
    """A gloss or letter that the lexicon has no sign for."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class UnknownLanguageError(SignGenError, ValueError):
    """A language tag other than those in ``LANGUAGES``."""


class SpellingError(InvalidInputError):
    """A word with characters that have no fingerspelled letter."""


@dataclass(frozen=True)
class ConceptEntry:
    """What the lexicon records about a concept: its category and English forms."""

    gloss: str
    category: str
    words: tuple[str, ...]


def check_language(language: str) -> str:
    """Return ``language`` if it is a known tag, else raise UnknownLanguageError."""
    if language not in LANGUAGES:
        raise UnknownLanguageError(
            f"unknown sign language {language!r}; known: {', '.join(LANGUAGES)}")
    return language


def form_key(form: SignForm) -> tuple:
    """What tells two signs apart: every field except duration, repeat and non-manual."""
    return (form.handshape, form.location, form.movement, form.orientation, form.hands,
            form.base_handshape)


def _draw_sign(rng: random.Random, gloss: str) -> SignForm:
    hands = rng.choices(tuple(_HAND_TYPE_WEIGHTS), tuple(_HAND_TYPE_WEIGHTS.values()))[0]
    handshape = rng.choice(_HANDSHAPE_POOL)
    location = rng.choice({"one": _ONE_HANDED_LOCATIONS, "symmetric": _SYMMETRIC_LOCATIONS,
                           "base": _BASE_LOCATIONS}[hands])
    movements = [m for m in MOVEMENTS if not (m == "wiggle" and handshape in _NO_EXTENDED_FINGERS)]
    movement = rng.choice(movements)
    nonmanual = _FIXED_NONMANUALS.get(gloss)
    if nonmanual is None and rng.random() < _LEXICAL_NONMANUAL_RATE:
        nonmanual = rng.choice(_LEXICAL_NONMANUALS)
    low, high = REPEAT_RANGE
    return SignForm(
        handshape=handshape, location=location, movement=movement,
        orientation=rng.choice(tuple(ORIENTATIONS)), hands=hands,
        base_handshape=rng.choice(_UNMARKED) if hands == "base" else None,
        nonmanual=nonmanual, duration=round(rng.uniform(*DURATION_RANGE), 3),
        repeat=rng.randint(max(2, low) if movement in _REPEATED else low, high))


def _draw_letter(rng: random.Random, letter: str) -> SignForm:
    return SignForm(handshape=rng.choice(HANDSHAPES), location="fingerspell",
                    movement=_LETTER_MOVEMENTS.get(letter, "hold"),
                    orientation=rng.choice(_LETTER_ORIENTATIONS),
                    duration=round(rng.uniform(*_LETTER_DURATION), 3))


def _letter_key(form: SignForm) -> tuple:
    return (form.handshape, form.orientation, form.movement)


def _draw_unique(draw: Callable[[], SignForm], used: set, key: Callable[[SignForm], tuple],
                 avoid: SignForm | None = None) -> SignForm:
    """Redraw until the form's key is unused (and differs from ``avoid``'s key)."""
    while True:
        form = draw()
        if key(form) not in used and (avoid is None or key(form) != key(avoid)):
            used.add(key(form))
            return form


def _generate_signs(seed: int, glosses: list[str]) -> tuple[dict, set[str]]:
    """Sign forms of both languages and the shared glosses."""
    def rng_for(language: str, gloss: str) -> random.Random:
        return random.Random(f"{seed}:{language}:{gloss}")

    used: set = set()
    signs_a = {}
    for gloss in glosses:
        rng = rng_for("ssl-a", gloss)
        signs_a[gloss] = _draw_unique(partial(_draw_sign, rng, gloss), used, form_key)
    rank = sorted(glosses, key=lambda g: random.Random(f"{seed}:shared:{g}").random())
    shared = set(rank[:round(SHARED_FRACTION * len(glosses))])
    signs_b = {g: signs_a[g] for g in glosses if g in shared}
    used = {form_key(f) for f in signs_b.values()}
    for gloss in glosses:
        if gloss not in shared:
            rng = rng_for("ssl-b", gloss)
            signs_b[gloss] = _draw_unique(partial(_draw_sign, rng, gloss), used, form_key,
                                          avoid=signs_a[gloss])
    return {"ssl-a": signs_a, "ssl-b": signs_b}, shared


def _generate_alphabets(seed: int) -> dict[str, dict[str, SignForm]]:
    """ssl-a's alphabet, and ssl-b's: the same but for ``_REDRAWN_LETTERS`` letters."""
    def draw_alphabet(language: str, letters, base: dict) -> dict[str, SignForm]:
        alphabet = {c: f for c, f in base.items() if c not in letters}
        used = {_letter_key(f) for f in alphabet.values()}
        for letter in letters:
            rng = random.Random(f"{seed}:{language}:letter:{letter}")
            alphabet[letter] = _draw_unique(partial(_draw_letter, rng, letter), used,
                                            _letter_key, avoid=base.get(letter))
        return dict(sorted(alphabet.items()))

    alphabet_a = draw_alphabet("ssl-a", LETTERS, {})
    redrawn = random.Random(f"{seed}:alphabet").sample(LETTERS, _REDRAWN_LETTERS)
    return {"ssl-a": alphabet_a, "ssl-b": draw_alphabet("ssl-b", sorted(redrawn), alphabet_a)}


def _dumps(value, indent: int = 0) -> str:
    """JSON with sorted keys, nesting on separate lines, and each flat dict on one line."""
    if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
        pad = " " * (indent + 1)
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in sorted(value.items())]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return json.dumps(value, sort_keys=True)


class Lexicon:
    """Sign forms of every concept and letter in each SynthSign language."""

    def __init__(self, *, seed: int, concepts: Mapping[str, ConceptEntry], names: Iterable[str],
                 signs: Mapping[str, Mapping[str, SignForm]],
                 alphabets: Mapping[str, Mapping[str, SignForm]], shared: Iterable[str]) -> None:
        if set(signs) != set(LANGUAGES) or set(alphabets) != set(LANGUAGES):
            raise LexiconError(f"a lexicon must cover exactly the languages {LANGUAGES}")
        self.seed = seed
        self._concepts = dict(sorted(concepts.items()))
        self.names: tuple[str, ...] = tuple(names)
        self._signs = {lang: dict(sorted(signs[lang].items())) for lang in LANGUAGES}
        self._alphabets = {lang: dict(sorted(alphabets[lang].items())) for lang in LANGUAGES}
        self._shared = frozenset(shared)
        self.words_to_gloss: Mapping[str, str] = MappingProxyType(self._check())

    def _check(self) -> dict[str, str]:
        """Raise LexiconError unless the lexicon is complete and unambiguous; return the
        English-word index."""
        for lang in LANGUAGES:
            if set(self._signs[lang]) != set(self._concepts):
                missing = sorted(set(self._concepts) ^ set(self._signs[lang]))[:5]
                raise LexiconError(f"{lang}: signs and concepts differ, e.g. {missing}")
            seen: dict[tuple, str] = {}
            for gloss, form in self._signs[lang].items():
                other = seen.setdefault(form_key(form), gloss)
                if other != gloss:
                    raise LexiconError(f"{lang}: {other} and {gloss} have the same form")
            alphabet = self._alphabets[lang]
            if tuple(alphabet) != tuple(LETTERS):
                raise LexiconError(f"{lang}: the alphabet must have exactly the letters A-Z")
            if len({_letter_key(f) for f in alphabet.values()}) != len(LETTERS):
                raise LexiconError(f"{lang}: two letters share handshape, orientation and "
                                   f"movement")
        for gloss in self._shared:
            if gloss not in self._concepts or len({self._signs[lg][gloss] for lg in LANGUAGES}) > 1:
                raise LexiconError(f"shared sign {gloss} is unknown or differs between languages")
        index: dict[str, str] = {}
        entries = [(w, e.gloss) for e in self._concepts.values() for w in e.words]
        for word, gloss in entries + [(n, name_gloss(n)) for n in self.names]:
            if index.setdefault(word.lower(), gloss) != gloss:
                raise LexiconError(f"English {word!r} maps to both {index[word.lower()]} "
                                   f"and {gloss}")
        return index

    @classmethod
    def generate(cls, seed: int = DEFAULT_SEED) -> Lexicon:
        """Draw both languages' lexicons from ``seed`` (deterministic)."""
        glosses = sorted(CONCEPTS)
        signs, shared = _generate_signs(seed, glosses)
        concepts = {g: ConceptEntry(gloss=g, category=c.category, words=c.words)
                    for g, c in CONCEPTS.items()}
        return cls(seed=seed, concepts=concepts, names=NAMES, signs=signs,
                   alphabets=_generate_alphabets(seed), shared=shared)

    @staticmethod
    def default_path() -> Path:
        """The shipped asset: ``<assets>/synthsign/lexicon.json``."""
        return assets_dir() / "synthsign" / "lexicon.json"

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Lexicon:
        """Read a lexicon file (None: the shipped asset)."""
        path = Path(path) if path is not None else cls.default_path()
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise LexiconError(f"{path}: no such lexicon file; build it with "
                               f"python -m signgen.data.synthsign.lexicon --out {path}") from None
        except OSError as err:
            raise LexiconError(f"{path}: cannot read the lexicon: {err}") from None
        try:
            return cls.from_json(text)
        except LexiconError as err:
            raise LexiconError(f"{path}: {err}") from None

    @classmethod
    def from_json(cls, text: str) -> Lexicon:
        """Parse the text ``to_json`` writes."""
        try:
            data = json.loads(text)
        except ValueError as err:
            raise LexiconError(f"not JSON ({err})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise LexiconError(f"not a {FORMAT} file")
        if data.get("version") != VERSION:
            raise LexiconError(f"version {data.get('version')!r}, expected {VERSION}")
        try:
            languages = data["languages"]
            return cls(
                seed=data["seed"], names=data["names"], shared=data["shared"],
                concepts={g: ConceptEntry(gloss=g, category=c["category"],
                                          words=tuple(c["words"]))
                          for g, c in data["concepts"].items()},
                signs={lg: {g: SignForm.from_dict(f) for g, f in v["signs"].items()}
                       for lg, v in languages.items()},
                alphabets={lg: {c: SignForm.from_dict(f) for c, f in v["alphabet"].items()}
                           for lg, v in languages.items()})
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise LexiconError(f"malformed lexicon ({type(err).__name__}: {err})") from None

    def to_json(self) -> str:
        """The file text ``save`` writes (sorted keys; byte-identical for equal lexicons)."""
        data = {
            "format": FORMAT, "version": VERSION, "seed": self.seed,
            "command": f"python -m signgen.data.synthsign.lexicon --seed {self.seed} "
                       f"--out {_DEFAULT_OUT}",
            "concepts": {g: {"category": e.category, "words": list(e.words)}
                         for g, e in self._concepts.items()},
            "names": list(self.names),
            "languages": {lang: {"signs": {g: f.to_dict() for g, f in self._signs[lang].items()},
                                 "alphabet": {c: f.to_dict()
                                              for c, f in self._alphabets[lang].items()}}
                          for lang in LANGUAGES},
            "shared": sorted(self._shared),
        }
        return _dumps(data) + "\n"

    def save(self, path: str | os.PathLike) -> None:
        """Write the lexicon atomically (a temporary file renamed over ``path``)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(self.to_json())
            os.replace(tmp, path)
        except OSError as err:
            raise LexiconError(f"cannot write the lexicon to {path}: {err}") from None

    @property
    def languages(self) -> tuple[str, ...]:
        return LANGUAGES

    def glosses(self, language: str = DEFAULT_LANGUAGE) -> list[str]:
        """Every lexical gloss of ``language``, sorted."""
        return list(self._signs[check_language(language)])

    def form(self, gloss: str, language: str = DEFAULT_LANGUAGE) -> SignForm:
        """The sign of ``gloss`` in ``language``."""
        signs = self._signs[check_language(language)]
        if gloss not in signs:
            close = difflib.get_close_matches(gloss, list(signs), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            if gloss.startswith(FINGERSPELL_PREFIX):
                hint = "; fingerspelled glosses have one form per letter: use forms()"
            raise UnknownGlossError(f"no sign for gloss {gloss!r} in {language}{hint}")
        return signs[gloss]

    def forms(self, gloss: str, language: str = DEFAULT_LANGUAGE) -> list[SignForm]:
        """The signs that make up a gloss: one, or a letter each for ``fs-NAME``."""
        if gloss.startswith(FINGERSPELL_PREFIX):
            return self.spell(gloss[len(FINGERSPELL_PREFIX):], language)
        return [self.form(gloss, language)]

    def letter(self, ch: str, language: str = DEFAULT_LANGUAGE) -> SignForm:
        """The fingerspelled letter ``ch`` (either case)."""
        alphabet = self._alphabets[check_language(language)]
        if len(ch) != 1 or ch.upper() not in alphabet:
            raise UnknownGlossError(f"{ch!r} is not a letter A-Z; {language} can only "
                                    f"fingerspell the letters A-Z")
        return alphabet[ch.upper()]

    def spell(self, word: str, language: str = DEFAULT_LANGUAGE) -> list[SignForm]:
        """The letters of ``word`` (A-Z after upper-casing) as fingerspelled signs."""
        check_language(language)
        bad = sorted({ch for ch in word.upper() if ch not in LETTERS})
        if bad or not word:
            what = f"characters {''.join(bad)!r}" if bad else "an empty word"
            raise SpellingError(f"cannot fingerspell {word!r}: {what}; only the letters A-Z "
                                f"have fingerspelled forms")
        return [self._alphabets[language][ch] for ch in word.upper()]

    def concept(self, gloss: str) -> ConceptEntry:
        """Category and English forms of a gloss."""
        if gloss not in self._concepts:
            close = difflib.get_close_matches(gloss, list(self._concepts), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownGlossError(f"unknown concept {gloss!r}{hint}")
        return self._concepts[gloss]

    def is_shared(self, gloss: str) -> bool:
        """Whether both languages sign ``gloss`` alike (a cross-lingual sign)."""
        self.concept(gloss)  # unknown glosses are errors, not "not shared"
        return gloss in self._shared


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output file (default: {_DEFAULT_OUT} in the assets folder)")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else Lexicon.default_path()
    lexicon = Lexicon.generate(args.seed)
    lexicon.save(out)
    print(f"wrote {out}: {len(lexicon.glosses())} signs x {len(LANGUAGES)} languages")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
