"""SynthSign grammar: one meaning, realised as English text and as glosses per language.

A sentence starts as a semantic ``Frame`` (who does what to whom, when, negated or not,
stated or asked), sampled from templates by ``sample_frame``. ``english`` realises it as
natural English; ``glosses`` realises it in one sign language. Synonyms, digits or
number words, contractions and articles are *text variants*: they change the English
but not the frame, so the glosses are a function of the frame.

Word order, per language:

- ssl-a: answer (YES/NO), time, [topic], subject, verb, NOT, object, WH word last.
  A statement's object or destination is fronted as a topic (STORE I GO) when a hash of
  the frame says so (``has_topic``), so this too is a function of the frame.
  Adjectives and numbers follow the noun (CAR RED, APPLE THREE).
- ssl-b: answer, WH word first, subject, time, object, NOT, verb (SOV: I TOMORROW STORE
  GO); adjectives and numbers precede the noun (THREE RED APPLE); a yes/no question ends
  with the particle Q-PART (a vocabulary concept that only ssl-b's grammar uses).
- Both drop articles, copulas and auxiliaries, put possessives before the noun (MY
  MOTHER), gloss pronouns by person whatever their case ("me" -> I), fingerspell names
  (fs-ANNA) and start greetings with the greeting (HELLO fs-ANNA).

Sentence-level non-manual markers, one per gloss (``None`` or a ``NONMANUALS`` name): a
negated statement's verb (or predicate adjective) and NOT get "head_shake"; every gloss
of a yes/no question gets "brows_up", of a WH question "brows_down". A sign's own
lexical marker stays in the lexicon.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import cache

from signgen.data.synthsign.lexicon import (
    DEFAULT_LANGUAGE,
    FINGERSPELL_PREFIX,
    LANGUAGES,
    Lexicon,
    check_language,
)
from signgen.data.synthsign.phonology import NONMANUALS
from signgen.data.synthsign.vocabulary import (
    CATEGORIES,
    CONCEPTS,
    NAMES,
    NOUN_CATEGORIES,
    TENSES,
    name_gloss,
)
from signgen.errors import InvalidInputError

QUESTIONS: tuple[str, ...] = ("none", "yes-no", "wh")
MIN_GLOSSES, MAX_GLOSSES = 2, 10
GREETINGS: tuple[str, ...] = ("HELLO", "THANK-YOU", "GOODBYE", "SORRY")
Q_PARTICLE = "Q-PART"

_BY_CATEGORY = {cat: tuple(g for g, c in CONCEPTS.items() if c.category == cat)
                for cat in CATEGORIES}
_NAME_GLOSSES = tuple(name_gloss(n) for n in NAMES)
_NAME_TEXT = {name_gloss(n): n for n in NAMES}
_GENERIC_VERBS = ("LIKE", "LOVE", "HATE")  # "I like dogs": a generic plural object
_DESTINATION_ONLY = ("HOME",)  # "go home", but "visit the home" is not English
_ADDRESSEES = ("FRIEND", "NEIGHBOR", "TEACHER", "DOCTOR", "NURSE", "BOSS")  # "Hello, my friend."
_BARE_DESTINATIONS = ("school", "church", "college")  # "go to school", no article
_BE = {"present": {"1s": "am", "3s": "is", "pl": "are"},
       "past": {"1s": "was", "3s": "was", "pl": "were"}}
_CONTRACTIONS = {"does": "doesn't", "do": "don't", "did": "didn't", "is": "isn't",
                 "are": "aren't", "was": "wasn't", "were": "weren't", "will": "won't"}


class GrammarError(InvalidInputError):
    """A frame that cannot be realised, or a bad sentence request."""


@cache
def _category(gloss: str | None) -> str | None:
    if gloss is None:
        return None
    if re.fullmatch(FINGERSPELL_PREFIX + "[A-Z]+", gloss):
        return "name"
    return CONCEPTS[gloss].category if gloss in CONCEPTS else "unknown"


@cache
def _kind(predicate: str) -> str | None:
    if predicate in GREETINGS:
        return "greeting"
    return {"verb": "event", "adjective": "state"}.get(_category(predicate))


def _expand(refs: Sequence[str], destination: bool = False) -> tuple[str, ...]:
    """Glosses named by a ``combines`` list (categories and glosses)."""
    out = [g for ref in refs for g in (_BY_CATEGORY.get(ref) or (ref,))]
    return tuple(g for g in out if destination or g not in _DESTINATION_ONLY)


@cache
def is_motion(verb: str) -> bool:
    """A verb whose object is a destination ("go to the store")."""
    c = CONCEPTS[verb]
    return c.preposition == "to" and all(CONCEPTS[g].category == "place"
                                         for g in _expand(c.combines, destination=True))


@cache
def _objects(verb: str) -> tuple[str, ...]:
    return _expand(CONCEPTS[verb].combines, destination=is_motion(verb))


@cache
def _adjectives_for(noun: str) -> tuple[str, ...]:
    category = "person" if _category(noun) in ("pronoun", "name") else _category(noun)
    return tuple(a for a in _BY_CATEGORY["adjective"]
                 if category in CONCEPTS[a].combines or noun in CONCEPTS[a].combines)


@dataclass(frozen=True)
class Frame:
    """What a sentence means, before any language orders it."""

    predicate: str  # a verb, an adjective ("X is ADJ") or a greeting
    subject: str | None = None  # actor, described thing or greeted person; None: WHO asks
    subject_possessor: str | None = None
    obj: str | None = None  # object or destination
    obj_possessor: str | None = None
    adjective: str | None = None  # describes the object
    number: str | None = None  # counts the object
    time: str | None = None
    tense: str = "present"  # one of vocabulary.TENSES
    negated: bool = False
    question: str = "none"  # one of QUESTIONS
    wh: str | None = None
    answer: str | None = None  # YES / NO before a statement

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise GrammarError(f"invalid frame: {problem}")

    def _problem(self) -> str | None:
        """What makes the frame unrealisable, if anything."""
        nouns = (None, "name", "pronoun", *NOUN_CATEGORIES)
        if _kind(self.predicate) is None:
            return f"predicate {self.predicate!r} is not a verb, adjective or greeting"
        if self.tense not in TENSES or self.question not in QUESTIONS:
            return f"tense must be one of {TENSES} and question one of {QUESTIONS}"
        if (self.question == "wh") != (self.wh is not None):
            return "wh is set exactly when question='wh'"
        if self.wh is not None and _category(self.wh) != "wh":
            return f"{self.wh!r} is not a WH word"
        if self.subject is None and self.wh != "WHO":
            return "only WHO may replace the subject"
        asks_object = self.wh in ("WHAT", "WHERE") or (self.wh == "WHO" and self.subject)
        if asks_object and (self.obj is not None or self.kind != "event"):
            return f"{self.wh} asks for the object of a verb, so obj must be None"
        if _category(self.subject) not in nouns or _category(self.obj) not in nouns:
            return "subject and object must be nouns, pronouns or names"
        if self.obj is not None and self.kind != "event":
            return "only verbs take an object"
        if self.obj is not None and is_motion(self.predicate) and _category(self.obj) != "place":
            return f"the destination of {self.predicate} must be a place"
        if _category(self.time) not in (None, "time") or (self.wh == "WHEN" and self.time):
            return "time must be a time word, and WHEN replaces it"
        if (self.negated or self.answer) and self.question != "none":
            return "only statements are negated or answered"
        if self.answer not in (None, "NO" if self.negated else "YES"):
            return "a negated statement answers NO, any other YES"
        if self.kind == "greeting" and (self.subject is None or self.question != "none"
                                        or self.negated or self.time or self.answer):
            return "a greeting has an addressee and nothing else"
        for possessor in (self.subject_possessor, self.obj_possessor):
            if _category(possessor) not in (None, "possessive"):
                return f"{possessor!r} is not a possessive"
        if self.adjective is None and self.number is None:
            return None
        if self.obj is None or _category(self.obj) in ("pronoun", "name"):
            return "adjective and number describe a noun object"
        if _category(self.adjective) not in (None, "adjective"):
            return f"{self.adjective!r} is not an adjective"
        if _category(self.number) not in (None, "number"):
            return f"{self.number!r} is not a number"
        if self.number is not None and (CONCEPTS[self.obj].is_mass or self.obj_possessor):
            return "mass nouns and possessed nouns are not counted"
        return None

    @property
    def key(self) -> str:
        """Identifies the meaning: equal for every text variant and language."""
        return "|".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                        if getattr(self, f.name) != f.default)

    @classmethod
    def from_key(cls, key: str) -> Frame:
        """The frame a :attr:`key` names (a manifest's ``frame_key``), e.g. to sign the
        same meaning in another language."""
        kinds = {f.name: f for f in fields(cls)}
        values = {}
        for part in key.split("|"):
            name, sep, value = part.partition("=")
            if not sep or name not in kinds or name in values:
                raise GrammarError(f"not a frame key: {key!r} (at {part!r})")
            values[name] = value == "True" if kinds[name].type in (bool, "bool") else value
        if "predicate" not in values:
            raise GrammarError(f"not a frame key: {key!r} (no predicate)")
        return cls(**values)

    @property
    def kind(self) -> str:
        """"event" (a verb), "state" (an adjective) or "greeting"."""
        return _kind(self.predicate)


def can_topicalise(frame: Frame) -> bool:
    """Whether ssl-a's grammar allows fronting the frame's object as a topic: statements
    with a noun or name object."""
    return (frame.kind == "event" and frame.question == "none" and frame.obj is not None
            and _category(frame.obj) != "pronoun")


def has_topic(frame: Frame) -> bool:
    """Whether ssl-a fronts the object as a topic: of the frames that allow it
    (``can_topicalise``), a third by a hash of the frame (deterministic, but nothing in
    the English text tells which)."""
    return can_topicalise(frame) and zlib.crc32(frame.key.encode()) % 3 == 0


# ---- English --------------------------------------------------------------------------

def _noun_phrase(gloss: str, possessor: str | None, adjective: str | None,
                 number: str | None, determiners: Sequence[str], role: str,
                 pick: Callable) -> tuple[list[str], str]:
    """English words of a noun phrase and its person for agreement ("1s", "3s", "pl")."""
    if _category(gloss) == "name":
        return [_NAME_TEXT.get(gloss, gloss[len(FINGERSPELL_PREFIX):].capitalize())], "3s"
    if _category(gloss) == "pronoun":
        person = {"I": "1s", "HE": "3s", "SHE": "3s"}.get(gloss, "pl")
        return [CONCEPTS[gloss].lemmas[0][0 if role == "subject" else 1]], person
    lemma = pick(CONCEPTS[gloss].lemmas)
    singular, plural = lemma[0], lemma[-1]
    adj = [pick(CONCEPTS[adjective].lemmas)[0]] if adjective else []
    if number is not None:
        plural_count = number != "ONE"
        return ([pick(CONCEPTS[number].lemmas)[0], *adj, plural if plural_count else singular],
                "pl" if plural_count else "3s")
    if possessor is not None:
        return [CONCEPTS[possessor].lemmas[0][0], *adj, singular], "3s"
    determiner = pick(determiners)
    if determiner == "plural" and len(lemma) > 1:
        return [*adj, plural], "pl"
    words = [*adj, singular]
    if determiner == "a":
        return ["an" if words[0][0] in "aeiou" else "a", *words], "3s"
    return (["the"] if determiner == "the" else []) + words, "3s"


def _object_words(frame: Frame, pick: Callable) -> list[str]:
    verb = CONCEPTS[frame.predicate]
    if frame.obj is None:
        # "What are you listening to?": the preposition stays behind.
        return [verb.preposition] if frame.wh in ("WHAT", "WHO") and verb.preposition else []
    if is_motion(frame.predicate):
        place = pick(CONCEPTS[frame.obj].lemmas)[0]
        if frame.obj in _DESTINATION_ONLY:
            return [place]
        return ["to", place] if place in _BARE_DESTINATIONS else ["to", "the", place]
    category = _category(frame.obj)
    if category == "place":
        determiners = ("the",)
    elif CONCEPTS.get(frame.obj) is not None and CONCEPTS[frame.obj].is_mass:
        determiners = ("",)
    elif frame.predicate in _GENERIC_VERBS:
        determiners = ("plural", "the")
    else:
        determiners = ("the", "a") if category == "person" else ("a", "the")
    words, _ = _noun_phrase(frame.obj, frame.obj_possessor, frame.adjective, frame.number,
                            determiners, "object", pick)
    return ([verb.preposition] if verb.preposition else []) + words


def _verb_group(frame: Frame, lemma: Sequence[str], person: str, inverted: bool
                ) -> tuple[str, str]:
    """(auxiliary, rest) of the predicate; auxiliary "" for a plain present or past."""
    tense = frame.tense
    if frame.kind == "state":
        if tense == "future":
            return "will", "be " + lemma[0]
        return _BE["present" if tense == "progressive" else tense][person], lemma[0]
    base, third, past, ing = lemma
    if tense == "future":
        return "will", base
    if tense == "progressive":
        return _BE["present"][person], ing
    support = frame.negated or inverted  # "does not go", "did you go"
    if tense == "past":
        return ("did", base) if support else ("", past)
    if support:
        return ("does" if person == "3s" else "do"), base
    return "", third if person == "3s" else base


def english(frame: Frame, rng: random.Random | None = None) -> str:
    """The frame as an English sentence; ``rng`` picks text variants (None: the first)."""
    def pick(options: Sequence):
        return options[0] if rng is None else rng.choice(options)

    if frame.kind == "greeting":
        words, _ = _noun_phrase(frame.subject, frame.subject_possessor, None, None, ("",),
                                "object", pick)
        greeting = pick(CONCEPTS[frame.predicate].lemmas)[0]
        return f"{greeting.capitalize()}, {' '.join(words)}."
    if frame.subject is None:  # WHO asks for the subject
        subject, person = [], "3s"
    else:
        subject, person = _noun_phrase(frame.subject, frame.subject_possessor, None, None,
                                       ("the",), "subject", pick)
    inverted = frame.question != "none" and frame.subject is not None
    aux, rest = _verb_group(frame, pick(CONCEPTS[frame.predicate].lemmas), person, inverted)
    if frame.negated:
        aux = pick([f"{aux} not", _CONTRACTIONS[aux]] if aux in _CONTRACTIONS
                   else [f"{aux} not"])
    time = [pick(CONCEPTS[frame.time].lemmas)[-1]] if frame.time else []
    objects = _object_words(frame, pick) if frame.kind == "event" else []
    wh = [pick(CONCEPTS[frame.wh].lemmas)[0]] if frame.wh else []
    if frame.question == "none":
        words = [*time, *subject, aux, rest, *objects]
    elif inverted:
        words = [*wh, aux, *subject, rest, *objects, *time]
    else:
        words = [*wh, aux, rest, *objects, *time]
    text = " ".join(w for w in words if w)
    if frame.answer:
        text = f"{pick(CONCEPTS[frame.answer].lemmas)[0]}, {text}"
    return text[0].upper() + text[1:] + ("." if frame.question == "none" else "?")


# ---- Sign languages -------------------------------------------------------------------

def _noun_glosses(gloss: str | None, possessor: str | None, adjective: str | None,
                  number: str | None, language: str) -> list[str]:
    if gloss is None:
        return []
    modifiers = [m for m in (adjective, number) if m]
    if language == "ssl-a":
        return [p for p in (possessor,) if p] + [gloss] + modifiers
    return [p for p in (possessor,) if p] + modifiers[::-1] + [gloss]


def glosses(frame: Frame, language: str = DEFAULT_LANGUAGE, topic: bool | None = None
            ) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """The frame's glosses in ``language`` and their sentence-level non-manual markers.
    ``topic``: whether ssl-a fronts the object (default: as the corpus does, ``has_topic``;
    True needs ``can_topicalise``); the other order the grammar allows for the frame."""
    check_language(language)
    if topic is None:
        topic = has_topic(frame)
    elif topic and not can_topicalise(frame):
        raise GrammarError(f"{frame.key} has no object ssl-a can front as a topic")
    subject = _noun_glosses(frame.subject, frame.subject_possessor, None, None, language)
    if frame.kind == "greeting":
        return (frame.predicate, *subject), (None,) * (1 + len(subject))
    obj = _noun_glosses(frame.obj, frame.obj_possessor, frame.adjective, frame.number,
                        language)
    answer, time, wh = ([g for g in (x,) if g] for x in (frame.answer, frame.time, frame.wh))
    # (glosses, whether they are the negated span), in the language's order.
    predicate = ([frame.predicate], True)
    negation = (["NOT"] if frame.negated else [], True)
    if language == "ssl-a":
        fronted = obj if topic else []
        parts = [([*answer, *time, *fronted, *subject], False), predicate, negation,
                 ([*([] if topic else obj), *wh], False)]
    else:
        question = [Q_PARTICLE] if frame.question == "yes-no" else []
        parts = [([*answer, *wh, *subject, *time, *obj], False), negation, predicate,
                 (question, False)]
    sequence = tuple(g for part, _ in parts for g in part)
    if frame.question != "none":
        mark = "brows_up" if frame.question == "yes-no" else "brows_down"
        return sequence, (mark,) * len(sequence)
    marks = tuple("head_shake" if frame.negated and negated else None
                  for part, negated in parts for _ in part)
    return sequence, marks


@dataclass(frozen=True)
class Sentence:
    """One sentence in one sign language: English text, glosses and non-manual layer."""

    text: str
    language: str
    glosses: tuple[str, ...]
    nonmanuals: tuple[str | None, ...]
    frame_key: str  # Frame.key: equal across languages and text variants

    def __post_init__(self) -> None:
        check_language(self.language)
        if not self.text.strip():
            raise GrammarError("a sentence needs non-empty text")
        if not MIN_GLOSSES <= len(self.glosses) <= MAX_GLOSSES:
            raise GrammarError(f"a sentence has {MIN_GLOSSES} to {MAX_GLOSSES} glosses, "
                               f"not {len(self.glosses)}")
        if len(self.nonmanuals) != len(self.glosses):
            raise GrammarError("nonmanuals must have one entry per gloss")
        for mark in self.nonmanuals:
            if mark is not None and mark not in NONMANUALS:
                raise GrammarError(f"unknown non-manual marker {mark!r}")


def realise(frame: Frame, language: str = DEFAULT_LANGUAGE,
            rng: random.Random | None = None) -> Sentence:
    """The frame as a sentence of ``language`` (English variants picked by ``rng``)."""
    check_language(language)
    return _sentence(frame, english(frame, rng), language)


def _sentence(frame: Frame, text: str, language: str) -> Sentence:
    sequence, marks = glosses(frame, language)
    return Sentence(text=text, language=language, glosses=sequence, nonmanuals=marks,
                    frame_key=frame.key)


# ---- Sampling -------------------------------------------------------------------------

def _sample_person(rng: random.Random, exclude: str | None = None) -> tuple[str, str | None]:
    """A person: pronoun, person noun (maybe with a possessor) or name; not ``exclude``."""
    while True:
        r = rng.random()
        if r < 0.4:
            gloss, possessor = rng.choice(_BY_CATEGORY["pronoun"]), None
        elif r < 0.75:
            gloss = rng.choice(_BY_CATEGORY["person"])
            possessor = rng.choice(_BY_CATEGORY["possessive"]) if rng.random() < 0.5 else None
        else:
            gloss, possessor = rng.choice(_NAME_GLOSSES), None
        if gloss != exclude:
            return gloss, possessor


def _sample_noun(rng: random.Random, candidates: Sequence[str], modify: bool,
                 count: bool) -> dict:
    """A noun and (if ``modify``) maybe a possessor, adjective and (if ``count``) number."""
    noun = rng.choice(candidates)
    out = {"noun": noun, "possessor": None, "adjective": None, "number": None}
    countable = count and _category(noun) != "place" and not CONCEPTS[noun].is_mass
    if modify and _category(noun) != "place" and rng.random() < 0.15:
        out["possessor"] = rng.choice(_BY_CATEGORY["possessive"])
    elif modify and countable and rng.random() < 0.25:
        out["number"] = rng.choice(_BY_CATEGORY["number"])
    adjectives = _adjectives_for(noun)
    if modify and adjectives and rng.random() < 0.3:
        out["adjective"] = rng.choice(adjectives)
    return out


def _sample_clause(rng: random.Random, stative: bool, wh_roles: list[str]) -> dict:
    """Question type, WH role, time, tense, negation and answer of a clause."""
    question = rng.choices(QUESTIONS, (0.6, 0.2, 0.2))[0]
    role = rng.choice(wh_roles) if question == "wh" else None
    time = None
    if role not in ("when", "why") and rng.random() < 0.5:
        time = rng.choice(_BY_CATEGORY["time"])
    if role == "when":
        tense = rng.choice(("past", "future"))
    elif time is not None:
        tense = rng.choice(CONCEPTS[time].tenses)
    else:
        tense = rng.choice(("present", "progressive"))
    if stative and tense == "progressive":
        tense = "present"  # "I am liking" is not English
    negated = question == "none" and rng.random() < 0.25
    answer = None
    if question == "none" and rng.random() < 0.1:
        answer = "NO" if negated else "YES"
    return {"question": question, "role": role, "time": time, "tense": tense,
            "negated": negated, "answer": answer}


def _sample_event(rng: random.Random) -> Frame:
    verb = rng.choice(_BY_CATEGORY["verb"])
    objects = _objects(verb)
    motion = is_motion(verb)
    roles = ["subject", "why", "when", *(["object"] if objects else []),
             *(["how"] if motion else [])]
    clause = _sample_clause(rng, CONCEPTS[verb].stative, roles)
    role = clause["role"]
    subject, possessor = (None, None) if role == "subject" else _sample_person(rng)
    wh = {"subject": "WHO", "why": "WHY", "when": "WHEN", "how": "HOW"}.get(role)
    obj = {"noun": None, "possessor": None, "adjective": None, "number": None}
    takes_person = "person" in CONCEPTS[verb].combines
    things = [g for g in objects if _category(g) != "person"]
    if role == "object":
        if motion:
            wh = "WHERE"
        else:
            wh = rng.choice((["WHO"] if takes_person else []) + (["WHAT"] if things else []))
    elif objects and takes_person and (not things or rng.random() < 0.5):
        noun, obj_possessor = _sample_person(rng, exclude=subject)
        obj = {**obj, "noun": noun, "possessor": obj_possessor}
        if _category(noun) == "person" and rng.random() < 0.2:
            obj["adjective"] = rng.choice(_adjectives_for(noun))
    elif objects:
        # "listen to three radios" sounds wrong: no numbers after a preposition.
        obj = _sample_noun(rng, things, modify=not motion,
                           count=not CONCEPTS[verb].preposition)
    return Frame(predicate=verb, subject=subject, subject_possessor=possessor,
                 obj=obj["noun"], obj_possessor=obj["possessor"], adjective=obj["adjective"],
                 number=obj["number"], time=clause["time"], tense=clause["tense"],
                 negated=clause["negated"], question=clause["question"], wh=wh,
                 answer=clause["answer"])


def _sample_state(rng: random.Random) -> Frame:
    adjective = rng.choice(_BY_CATEGORY["adjective"])
    about_people = "person" in CONCEPTS[adjective].combines
    things = [g for g in _expand(CONCEPTS[adjective].combines) if _category(g) != "person"]
    clause = _sample_clause(rng, True, ["why"] + (["subject"] if about_people else []))
    if clause["role"] == "subject":
        subject, possessor = None, None
    elif about_people and (not things or rng.random() < 0.6):
        subject, possessor = _sample_person(rng)
    else:
        subject, possessor = rng.choice(things), None
        if _category(subject) != "place" and rng.random() < 0.3:
            possessor = rng.choice(_BY_CATEGORY["possessive"])
    tense = clause["tense"]
    if clause["question"] == "wh":
        tense = "past" if tense == "past" else "present"  # "Why will you be sad?" is odd
    return Frame(predicate=adjective, subject=subject, subject_possessor=possessor,
                 time=clause["time"], tense=tense, negated=clause["negated"],
                 question=clause["question"], wh={"subject": "WHO", "why": "WHY"}.get(
                     clause["role"]), answer=clause["answer"])


def _sample_greeting(rng: random.Random) -> Frame:
    greeting = rng.choice(GREETINGS)
    if rng.random() < 0.5:
        return Frame(predicate=greeting, subject=rng.choice(_NAME_GLOSSES))
    return Frame(predicate=greeting, subject=rng.choice(_ADDRESSEES), subject_possessor="MY")


def sample_frame(rng: random.Random) -> Frame:
    """A random frame: 8% greetings, 20% descriptions ("X is ADJ"), the rest events."""
    r = rng.random()
    if r < 0.08:
        return _sample_greeting(rng)
    return _sample_state(rng) if r < 0.28 else _sample_event(rng)


class SentenceGenerator:
    """Random parallel sentences from a seed: English text and glosses per language.

    ``sample`` and ``sample_parallel`` draw the same frames from the same seed, so two
    generators with equal seeds give parallel sentences whatever the language.
    """

    def __init__(self, lexicon: Lexicon, seed: int = 0) -> None:
        for language in LANGUAGES:
            missing = sorted(set(CONCEPTS) - set(lexicon.glosses(language)))
            if missing:
                raise GrammarError(
                    f"the lexicon has no {language} sign for {', '.join(missing[:5])}; "
                    f"regenerate it with python -m signgen.data.synthsign.lexicon")
        self.lexicon = lexicon
        self._rng = random.Random(seed)

    def sample(self, language: str = DEFAULT_LANGUAGE) -> Sentence:
        """One random sentence in ``language``."""
        check_language(language)
        return realise(sample_frame(self._rng), language, self._rng)

    def sample_parallel(self) -> dict[str, Sentence]:
        """One random frame in every language, with the same English text."""
        frame = sample_frame(self._rng)
        text = english(frame, self._rng)
        return {language: _sentence(frame, text, language) for language in LANGUAGES}

    def generate(self, n: int, language: str = DEFAULT_LANGUAGE) -> list[Sentence]:
        """``n`` random sentences in ``language``."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise GrammarError(f"the number of sentences must be an integer >= 0, got {n!r}")
        check_language(language)
        return [self.sample(language) for _ in range(n)]
