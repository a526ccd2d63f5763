"""Corpus adapters on small fake releases in each published layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from signgen.data.corpora import CORPORA, CorpusItem, load_corpus
from signgen.errors import SignGenError

PHOENIX_HEADER = "name|video|start|end|speaker|orth|translation"
HOW2SIGN_HEADER = ("VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\t"
                   "END_REALIGNED\tSENTENCE")
CSL_LABEL_HEADER = "index|name|length|gloss|char|word|postag"


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _phoenix(root: Path, split="train", rows=None) -> Path:
    rows = rows if rows is not None else [
        "01April_2010_Thursday_heute-6694|01April_2010_Thursday_heute-6694/1/*.png|-1|-1|"
        "Signer04|JETZT WETTER MORGEN DONNERSTAG|und nun die wettervorhersage für morgen",
        "",  # a blank line is skipped
        "27January_2013_Sunday_tagesschau-8842|27January_2013_Sunday_tagesschau-8842/1/*.png"
        "|-1|-1|Signer01|REGEN SCHNEE|es gibt regen und schnee – örtlich glätte",
    ]
    return _write(root / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv",
                  [PHOENIX_HEADER, *rows])


def _how2sign(root: Path, native="train", rows=None, inside_clips=False) -> Path:
    rows = rows if rows is not None else [
        "--7E2sU6zP4\t--7E2sU6zP4-5-rgb_front\t--7E2sU6zP4_10\t--7E2sU6zP4_10-5-rgb_front\t"
        "129.06\t142.48\tAnd I call them decorative elements because they're \"pretty\".",
        "-d5dN54tH2E\t-d5dN54tH2E-1-rgb_front\t-d5dN54tH2E_0\t-d5dN54tH2E_0-1-rgb_front\t"
        "0.0\t4.2\tWe're going to work on a café-style arm drill.",
    ]
    folder = root / f"{native}_rgb_front_clips" if inside_clips else root
    return _write(folder / f"how2sign_realigned_{native}.csv", [HOW2SIGN_HEADER, *rows])


def _csl(root: Path, split_rows=None, label_rows=None) -> tuple[Path, Path]:
    split_rows = split_rows if split_rows is not None else [
        "S000000_P0000_T00|train", "S000001_P0008_T00|dev", "S000005_P0004_T00|train",
        "S000010_P0001_T00|test"]
    label_rows = label_rows if label_rows is not None else [
        "000000|S000000_P0000_T00|102|你 好|你 好 。|你好 。|r a w",
        "000001|S000001_P0008_T00|77|我 爱 你|我 爱 你 ！|我 爱 你 ！|r v r w",
        "000002|S000007_P0003_T00|55||他 是 谁 ？|他 是 谁 ？|r v r w",
        "000003|S000010_P0001_T00|60|谢谢|谢 谢 。|谢谢 。|v w",
    ]
    labels = root / "sentence_label"
    return (_write(labels / "split_1.txt", ["name|split", *split_rows]),
            _write(labels / "video_map.txt", [CSL_LABEL_HEADER, *label_rows]))


def test_phoenix14t_rows(tmp_path):
    _phoenix(tmp_path)
    items = load_corpus("phoenix14t", tmp_path, "train")
    assert [i.sample_id for i in items] == ["01April_2010_Thursday_heute-6694",
                                            "27January_2013_Sunday_tagesschau-8842"]
    first = items[0]
    assert first == CorpusItem(
        sample_id="01April_2010_Thursday_heute-6694",
        video_path=tmp_path / "features" / "fullFrame-210x260px" / "train"
        / "01April_2010_Thursday_heute-6694" / "1",
        start_s=0.0, end_s=None, text="und nun die wettervorhersage für morgen",
        glosses=("JETZT", "WETTER", "MORGEN", "DONNERSTAG"), signer_id="Signer04",
        split="train", language="dgs")
    assert items[1].text == "es gibt regen und schnee – örtlich glätte"  # unicode kept


def test_phoenix14t_frame_span_and_media_check(tmp_path):
    _phoenix(tmp_path, "dev", ["a|a/1/*.png|25|49|Signer02|X|x"])
    (item,) = load_corpus("phoenix14t", tmp_path, "dev")
    assert (item.start_s, item.end_s) == (1.0, 2.0)
    with pytest.raises(SignGenError, match="media of 1 of 1 items"):
        load_corpus("phoenix14t", tmp_path, "dev", check_media=True)
    item.video_path.mkdir(parents=True)
    assert load_corpus("phoenix14t", tmp_path, "dev", check_media=True) == [item]


def test_how2sign_rows(tmp_path):
    _how2sign(tmp_path)
    items = load_corpus("how2sign", tmp_path, "train")
    assert len(items) == 2
    first = items[0]
    assert first.sample_id == "--7E2sU6zP4_10-5-rgb_front"
    assert first.video_path == (tmp_path / "train_rgb_front_clips" / "raw_videos"
                                / "--7E2sU6zP4_10-5-rgb_front.mp4")
    assert first.text == 'And I call them decorative elements because they\'re "pretty".'
    assert (first.glosses, first.signer_id, first.language) == ((), None, "asl")
    assert (first.start_s, first.end_s) == (0.0, None)
    assert items[1].text == "We're going to work on a café-style arm drill."


def test_how2sign_val_is_dev_and_csv_may_sit_in_the_clips_folder(tmp_path):
    _how2sign(tmp_path, "val", inside_clips=True)
    for split in ("dev", "val"):
        items = load_corpus("how2sign", tmp_path, split)
        assert len(items) == 2 and {i.split for i in items} == {"dev"}
        assert items[0].video_path.parent == tmp_path / "val_rgb_front_clips" / "raw_videos"


def test_how2sign_extra_columns_in_any_order(tmp_path):
    header = "SENTENCE\tEXTRA\tSENTENCE_NAME\tEND_REALIGNED\tSTART_REALIGNED\tVIDEO_NAME\t" \
             "SENTENCE_ID\tVIDEO_ID"
    _write(tmp_path / "how2sign_realigned_test.csv",
           [header, "Hi there.\tx\tclip_0-rgb_front\t2.5\t1.0\tv-rgb_front\tv_0\tv"])
    (item,) = load_corpus("how2sign", tmp_path, "test")
    assert (item.sample_id, item.text) == ("clip_0-rgb_front", "Hi there.")


def test_csl_daily_rows(tmp_path):
    _csl(tmp_path)
    train = load_corpus("csl_daily", tmp_path, "train")
    # S000005_P0004_T00 in split_1.txt is the labelled S000007_P0003_T00.
    assert [i.sample_id for i in train] == ["S000000_P0000_T00", "S000007_P0003_T00"]
    first, renamed = train
    assert first.text == "你好。" and first.glosses == ("你", "好")
    assert first.video_path == tmp_path / "sentence" / "frames_512x512" / "S000000_P0000_T00"
    assert (first.signer_id, first.language, first.split) == ("0", "csl", "train")
    assert renamed.glosses == () and renamed.text == "他是谁？" and renamed.signer_id == "3"
    (dev,) = load_corpus("csl_daily", tmp_path, "dev")
    assert (dev.text, dev.glosses, dev.signer_id) == ("我爱你！", ("我", "爱", "你"), "8")
    assert [i.sample_id for i in load_corpus("csl_daily", tmp_path, "test")] == [
        "S000010_P0001_T00"]


def test_csl_daily_never_reads_the_pickle(tmp_path):
    _csl(tmp_path)
    # A booby-trapped pickle next to the text labels must not matter.
    (tmp_path / "sentence_label" / "csl2020ct_v2.pkl").write_bytes(b"cos\nsystem\n(S'x'\ntR.")
    assert len(load_corpus("csl_daily", tmp_path, "train")) == 2


def test_registry_covers_every_corpus():
    assert set(CORPORA) == {"phoenix14t", "how2sign", "csl_daily"}


MALFORMED = {
    "phoenix_fields": ("phoenix14t", lambda r: _phoenix(r, rows=["a|a/1/*.png|-1|-1|S1|X"]),
                       ":2: expected 7"),
    "phoenix_later_line": ("phoenix14t", lambda r: _phoenix(r, rows=[
        "a|a/1/*.png|-1|-1|S1|X|x", "", "b|b/1/*.png|one|-1|S1|X|x"]), ":4: start must be"),
    "phoenix_header": ("phoenix14t", lambda r: _write(
        r / "annotations" / "manual" / "PHOENIX-2014-T.train.corpus.csv",
        ["id|folder|signer|annotation", "a|b|c|d"]), ":1: expected the header"),
    "phoenix_empty_name": ("phoenix14t", lambda r: _phoenix(r, rows=[" |a/*.png|-1|-1|S|X|x"]),
                           ":2: empty name"),
    "phoenix_escaping_video": ("phoenix14t", lambda r: _phoenix(
        r, rows=["a|../../x/*.png|-1|-1|S|X|x"]), ":2: video"),
    "how2sign_fields": ("how2sign", lambda r: _how2sign(r, rows=["a\tb\tc"]),
                        ":2: expected 7 tab-separated"),
    "how2sign_time": ("how2sign", lambda r: _how2sign(r, rows=[
        "v\tv-rgb_front\tv_0\tv_0-rgb_front\t0.0\tsoon\tHello."]), ":2: END_REALIGNED"),
    "how2sign_columns": ("how2sign", lambda r: _write(
        r / "how2sign_realigned_train.csv", ["VIDEO_ID\tSENTENCE", "a\tb"]),
        ":1: missing columns"),
    "how2sign_quote": ("how2sign", lambda r: _how2sign(r, rows=[
        'v\tv-rgb_front\tv_0\tv_0-rgb_front\t0.0\t1.0\t"Hello there.',
        "w\tw-rgb_front\tw_0\tw_0-rgb_front\t0.0\t1.0\tBye."]), ":2: a quoted field"),
    "csl_split_value": ("csl_daily", lambda r: _csl(r, split_rows=["S000000_P0000_T00|val"]),
                        "split_1.txt:2: unknown split"),
    "csl_label_fields": ("csl_daily", lambda r: _csl(r, label_rows=[
        "000000|S000000_P0000_T00|102|你 好|你 好 。"]), "video_map.txt:2: expected 7"),
    "csl_length": ("csl_daily", lambda r: _csl(r, label_rows=[
        "000000|S000000_P0000_T00|many|你|你|你|r"]), "video_map.txt:2: length"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_rows_name_file_and_line(tmp_path, case):
    corpus, build, expected = MALFORMED[case]
    build(tmp_path)
    with pytest.raises(SignGenError) as info:
        load_corpus(corpus, tmp_path, "train")
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_not_utf8_names_the_line(tmp_path):
    path = _phoenix(tmp_path)
    path.write_bytes(path.read_bytes() + "c|c/1/*.png|-1|-1|S|X|gr\u00fc\u00df".encode("latin-1"))
    with pytest.raises(SignGenError, match=r"corpus\.csv:5: not UTF-8"):
        load_corpus("phoenix14t", tmp_path, "train")


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_missing_root_and_files(tmp_path, corpus):
    with pytest.raises(SignGenError, match="no such folder"):
        load_corpus(corpus, tmp_path / "nowhere", "train")
    with pytest.raises(SignGenError, match="not found"):
        load_corpus(corpus, tmp_path, "train")


def test_csl_daily_missing_label_file(tmp_path):
    split_path, label_path = _csl(tmp_path)
    label_path.unlink()
    with pytest.raises(SignGenError, match=r"video_map\.txt: CSL-Daily label file not found"):
        load_corpus("csl_daily", tmp_path, "train")


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_unknown_split(tmp_path, corpus):
    with pytest.raises(SignGenError, match="unknown split 'validation'"):
        load_corpus(corpus, tmp_path, "validation")


def test_unknown_corpus(tmp_path):
    with pytest.raises(SignGenError, match="unknown corpus 'phoenix2014'"):
        load_corpus("phoenix2014", tmp_path, "train")
