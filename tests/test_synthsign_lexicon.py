"""SynthSign vocabulary and lexicon: shipped asset current, forms valid and distinct."""

import json
from collections import Counter

import pytest

from signgen.data.synthsign.lexicon import (
    LANGUAGES,
    LETTERS,
    Lexicon,
    LexiconError,
    SpellingError,
    UnknownGlossError,
    UnknownLanguageError,
    form_key,
    main,
)
from signgen.data.synthsign.phonology import DURATION_RANGE, REPEAT_RANGE
from signgen.data.synthsign.vocabulary import CONCEPTS, NAMES, name_gloss
from signgen.errors import InvalidInputError, SignGenError

FACE = {"forehead", "temple", "eye", "nose", "mouth", "chin", "cheek", "ear"}


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load()


def all_forms(lexicon, language):
    return [lexicon.form(g, language) for g in lexicon.glosses(language)]


def test_shipped_asset_equals_a_regeneration(lexicon):
    text = Lexicon.default_path().read_text()
    assert Lexicon.generate(lexicon.seed).to_json() == text
    data = json.loads(text)
    assert data["format"] == "signgen-synthsign-lexicon" and data["version"] == 1
    assert data["command"].endswith(f"--seed {lexicon.seed} --out assets/synthsign/lexicon.json")


def test_generation_is_deterministic_per_seed():
    assert Lexicon.generate(3).to_json() == Lexicon.generate(3).to_json()
    assert Lexicon.generate(3).to_json() != Lexicon.generate(4).to_json()


def test_save_load_round_trip_and_cli(tmp_path):
    path = tmp_path / "sub" / "lexicon.json"
    assert main(["--seed", "7", "--out", str(path)]) == 0
    loaded = Lexicon.load(path)
    assert loaded.seed == 7 and loaded.to_json() == Lexicon.generate(7).to_json()
    assert Lexicon.from_json(loaded.to_json()).to_json() == path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["lexicon.json"]  # no temp file left


def test_load_errors_name_the_problem(tmp_path, lexicon):
    with pytest.raises(LexiconError, match="python -m signgen.data.synthsign.lexicon"):
        Lexicon.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LexiconError, match="bad.json: not JSON"):
        Lexicon.load(bad)
    with pytest.raises(LexiconError, match="version 2"):
        Lexicon.from_json(lexicon.to_json().replace('"version": 1', '"version": 2'))
    data = json.loads(lexicon.to_json())
    signs = data["languages"]["ssl-a"]["signs"]
    signs["CAR"] = {**signs["BUS"], "duration": 0.5}  # same form, different duration
    bad.write_text(json.dumps(data))
    with pytest.raises(LexiconError, match="BUS and CAR have the same form"):
        Lexicon.load(bad)


def test_vocabulary_is_large_and_covers_the_categories(lexicon):
    assert len(CONCEPTS) >= 220 and lexicon.glosses("ssl-a") == lexicon.glosses("ssl-b")
    assert sorted(CONCEPTS) == lexicon.glosses()
    categories = Counter(c.category for c in CONCEPTS.values())
    for category in ("pronoun", "person", "place", "thing", "food", "animal", "verb",
                     "adjective", "time", "wh", "number", "negation", "discourse"):
        assert categories[category] >= 1, category
    for gloss in ("I", "YOU", "HE", "SHE", "WE", "THEY", "WHO", "WHAT", "WHERE", "WHEN", "WHY",
                  "HOW", "NOT", "THANK-YOU", "NEXT-WEEK", "MONDAY", "ONE", "TEN", "Q-PART"):
        assert gloss in CONCEPTS
    assert sum(len(c.lemmas) > 1 for c in CONCEPTS.values()) >= 25
    assert 25 <= len(NAMES) <= 35 and lexicon.names == NAMES


def test_synonyms_and_inflections_map_to_one_gloss(lexicon):
    w2g = lexicon.words_to_gloss
    for words, gloss in [("store shop", "STORE"), ("car automobile", "CAR"), ("big large", "BIG"),
                         ("happy glad", "HAPPY"), ("go goes went going", "GO"),
                         ("i me", "I"), ("her she", "SHE"), ("three 3", "THREE"),
                         ("anna", "fs-ANNA")]:
        assert {w2g[w] for w in words.split()} == {gloss}, words
    assert w2g["thank you"] == w2g["thanks"] == "THANK-YOU"
    assert lexicon.concept("STORE").category == "place"
    assert {"store", "shop", "shops"} <= set(lexicon.concept("STORE").words)
    assert lexicon.concept("Q-PART").words == ()  # a particle has no English word


def test_forms_are_distinct_within_each_language(lexicon):
    for language in LANGUAGES:
        keys = [form_key(f) for f in all_forms(lexicon, language)]
        assert len(set(keys)) == len(keys)


def test_forms_are_phonologically_plausible(lexicon):
    for language in LANGUAGES:
        forms = all_forms(lexicon, language)
        hands = Counter(f.hands for f in forms)
        assert 0.5 < hands["one"] / len(forms) < 0.7
        assert 0.15 < hands["symmetric"] / len(forms) < 0.35
        assert 0.08 < hands["base"] / len(forms) < 0.25
        assert len({f.handshape for f in forms}) >= 12
        assert 0.05 < sum(f.nonmanual is not None for f in forms) / len(forms) < 0.2
        for f in forms:
            assert f.location not in FACE or f.hands == "one"
            assert f.location != "fingerspell"
            assert DURATION_RANGE[0] <= f.duration <= DURATION_RANGE[1]
            low = 2 if f.movement in ("tap", "wiggle") else REPEAT_RANGE[0]
            assert low <= f.repeat <= REPEAT_RANGE[1]
        assert lexicon.form("NOT", language).nonmanual == "head_shake"
        assert {lexicon.form(w, language).nonmanual for w in ("WHO", "WHERE", "HOW")} == {
            "brows_down"}


def test_about_thirty_percent_of_signs_are_shared(lexicon):
    glosses = lexicon.glosses()
    shared = [g for g in glosses if lexicon.is_shared(g)]
    assert 0.2 <= len(shared) / len(glosses) <= 0.4
    for gloss in glosses:
        a, b = lexicon.form(gloss, "ssl-a"), lexicon.form(gloss, "ssl-b")
        assert (a == b) == (gloss in shared)


def test_fingerspelling_alphabets(lexicon):
    for language in LANGUAGES:
        letters = [lexicon.letter(c, language) for c in LETTERS]
        assert len({(f.handshape, f.orientation, f.movement) for f in letters}) == 26
        assert {f.location for f in letters} == {"fingerspell"}
        assert [c for c, f in zip(LETTERS, letters, strict=True) if f.movement != "hold"] == [
            "J", "Z"]
        assert all(0.2 <= f.duration <= 0.3 for f in letters)
    assert sum(lexicon.letter(c, "ssl-a") != lexicon.letter(c, "ssl-b") for c in LETTERS) >= 8


def test_spell_and_fingerspelled_glosses(lexicon):
    assert lexicon.spell("Anna") == [lexicon.letter(c) for c in "ANNA"]
    assert lexicon.forms(name_gloss("Anna"), "ssl-b") == lexicon.spell("anna", "ssl-b")
    assert lexicon.forms("CAR") == [lexicon.form("CAR")]
    for word, bad in [("R2D2", "2"), ("O'Neil", "'"), ("two words", " ")]:
        with pytest.raises(SpellingError, match="only the letters A-Z") as err:
            lexicon.spell(word)
        assert bad in str(err.value) and isinstance(err.value, InvalidInputError)
    with pytest.raises(SpellingError, match="empty"):
        lexicon.spell("")
    with pytest.raises(UnknownGlossError, match="A-Z"):
        lexicon.letter("7")


def test_unknown_gloss_and_language_are_clear_errors(lexicon):
    with pytest.raises(UnknownGlossError) as err:
        lexicon.form("STOR", "ssl-b")
    message = str(err.value)
    assert "'STOR'" in message and "ssl-b" in message and "STORE" in message
    assert isinstance(err.value, SignGenError) and isinstance(err.value, KeyError)
    with pytest.raises(UnknownGlossError, match="forms"):
        lexicon.form("fs-ANNA")
    with pytest.raises(UnknownLanguageError, match="ssl-a, ssl-b"):
        lexicon.form("CAR", "asl")
    with pytest.raises(UnknownGlossError, match="NOPE"):
        lexicon.is_shared("NOPE")
