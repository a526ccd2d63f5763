"""Read published sign-language corpora's annotation files into one item list.

Each adapter reads only the text annotation files of a release, as laid out on disk
after unpacking, and returns :class:`CorpusItem` rows in file order.  Media files are
not opened (``check_media=True`` checks that they exist).  Splits are ``train``,
``dev`` and ``test`` everywhere (``val`` is accepted for ``dev``: How2Sign's name).

- ``phoenix14t``: RWTH-PHOENIX-Weather 2014 T.  ``root`` is the folder holding
  ``annotations/`` and ``features/`` (``PHOENIX-2014-T-release-v3/PHOENIX-2014-T``).
  Reads ``annotations/manual/PHOENIX-2014-T.<split>.corpus.csv``: '|'-separated, header
  ``name|video|start|end|speaker|orth|translation``; ``video`` is a frame pattern such
  as ``<name>/1/*.png`` under ``features/fullFrame-210x260px/<split>/``, whose folder
  becomes ``video_path``.  ``start``/``end`` are -1 (the whole folder) in the release;
  other values are read as first/last (inclusive) frame indices at PHOENIX's 25 fps.
  German text, ``dgs``.
- ``how2sign``: How2Sign, green-screen front-view sentence clips.  Reads
  ``how2sign_realigned_<split>.csv`` (split ``train``/``val``/``test``) from ``root`` or
  from ``root/<split>_rgb_front_clips/``: tab-separated, with at least the columns
  VIDEO_ID, VIDEO_NAME, SENTENCE_ID, SENTENCE_NAME, START_REALIGNED, END_REALIGNED,
  SENTENCE.  ``video_path`` is ``<split>_rgb_front_clips/raw_videos/<SENTENCE_NAME>.mp4``,
  a clip already cut to the sentence, so ``start_s`` is 0 and ``end_s`` None; the
  realigned times (seconds in the full source video VIDEO_NAME) are checked to be
  numbers but not used.  No glosses, no signer column.  English text, ``asl``.
- ``csl_daily``: CSL-Daily.  ``root`` holds ``sentence_label/`` and ``sentence/``.
  Reads ``sentence_label/split_1.txt`` (header ``name|split``) and
  ``sentence_label/video_map.txt`` (header ``index|name|length|gloss|char|word|postag``;
  gloss and char are space-separated tokens).  ``text`` is the characters joined,
  ``glosses`` the gloss tokens, the signer the ``P`` number of the name
  (``S000007_P0003_T00`` -> ``"3"``, as the release's pickle records it), ``video_path``
  ``sentence/frames_512x512/<name>/``.  ``sentence_label/csl2020ct_v2.pkl`` holds the
  same labels but is never read: unpickling a downloaded file can run arbitrary code.
  Chinese text, ``csl``.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from signgen.errors import SignGenError

SPLITS = ("train", "dev", "test")
_SPLIT_ALIASES = {"val": "dev"}
PHOENIX_FPS = 25.0


@dataclass(frozen=True)
class CorpusItem:
    """One sentence of a corpus.

    video_path: an .mp4 file or a folder of frames; start_s / end_s: the sentence's
    span in it in seconds (end None = to the end); glosses: tuple of gloss tokens
    (empty when the corpus has none); signer_id: None when the corpus does not say.
    """

    sample_id: str
    video_path: Path
    start_s: float
    end_s: float | None
    text: str
    glosses: tuple[str, ...]
    signer_id: str | None
    split: str
    language: str


def _split(corpus: str, split: str) -> str:
    split = _SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise SignGenError(f"unknown split {split!r} for {corpus}; splits: "
                           f"{', '.join(SPLITS)} (val = dev)")
    return split


def _root(corpus: str, root: str | os.PathLike, holds: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise SignGenError(f"{root}: no such folder (expected the {corpus} release root, "
                           f"holding {holds})")
    return root


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise SignGenError(f"{path}: {what} not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise SignGenError(f"{path}:{line}: not UTF-8 text ({err.reason})") from err


def _rows(path: Path, what: str, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a '|'-separated file with exactly ``header``; blank
    lines are skipped, a row with another field count is an error."""
    lines = _read_text(path, what).splitlines()
    if not lines or lines[0].strip().split("|") != list(header):
        got = lines[0].strip() if lines else "an empty file"
        raise SignGenError(f"{path}:1: expected the header {'|'.join(header)!r}, got {got!r}")
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != len(header):
            raise SignGenError(f"{path}:{number}: expected {len(header)} '|'-separated fields "
                               f"({'|'.join(header)}), got {len(fields)}")
        yield number, fields


def _int(path: Path, number: int, column: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SignGenError(f"{path}:{number}: {column} must be an integer, got "
                           f"{value!r}") from None


def _seconds(path: Path, number: int, column: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise SignGenError(f"{path}:{number}: {column} must be a number of seconds, got "
                           f"{value!r}")
    return seconds


def _require(path: Path, number: int, column: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise SignGenError(f"{path}:{number}: empty {column}")
    return value


def _check_media(items: list[CorpusItem]) -> None:
    missing = [item.video_path for item in items if not item.video_path.exists()]
    if missing:
        raise SignGenError(f"{missing[0]}: media of {len(missing)} of {len(items)} items "
                           f"not found (first shown); annotation files and media disagree")


# --- RWTH-PHOENIX-Weather 2014 T ---------------------------------------------------

PHOENIX_HEADER = ("name", "video", "start", "end", "speaker", "orth", "translation")


def load_phoenix14t(root: str | os.PathLike, split: str,
                    check_media: bool = False) -> list[CorpusItem]:
    """Sentences of one PHOENIX-2014-T split (see the module docstring)."""
    split = _split("phoenix14t", split)
    root = _root("phoenix14t", root, "annotations/ and features/")
    path = root / "annotations" / "manual" / f"PHOENIX-2014-T.{split}.corpus.csv"
    frames = root / "features" / "fullFrame-210x260px" / split
    items = []
    for number, fields in _rows(path, "PHOENIX-2014-T annotation file", PHOENIX_HEADER):
        name, video, start, end, speaker, orth, translation = fields
        name = _require(path, number, "name", name)
        video = _require(path, number, "video", video)
        folder = Path(video)
        if "*" in folder.name:  # a frame pattern such as name/1/*.png
            folder = folder.parent
        if folder.is_absolute() or ".." in folder.parts:
            raise SignGenError(f"{path}:{number}: video {video!r} leaves the frame folder")
        first = _int(path, number, "start", start)
        last = _int(path, number, "end", end)
        items.append(CorpusItem(
            sample_id=name, video_path=frames / folder,
            start_s=max(first, 0) / PHOENIX_FPS,
            end_s=None if last < 0 else (last + 1) / PHOENIX_FPS,
            text=translation.strip(), glosses=tuple(orth.split()),
            signer_id=speaker.strip() or None, split=split, language="dgs"))
    if check_media:
        _check_media(items)
    return items


# --- How2Sign ------------------------------------------------------------------------

HOW2SIGN_COLUMNS = ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME",
                    "START_REALIGNED", "END_REALIGNED", "SENTENCE")


def load_how2sign(root: str | os.PathLike, split: str,
                  check_media: bool = False) -> list[CorpusItem]:
    """Sentence clips of one How2Sign split (see the module docstring)."""
    split = _split("how2sign", split)
    native = "val" if split == "dev" else split
    root = _root("how2sign", root, f"how2sign_realigned_{native}.csv and "
                                   f"{native}_rgb_front_clips/")
    name = f"how2sign_realigned_{native}.csv"
    candidates = (root / name, root / f"{native}_rgb_front_clips" / name)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise SignGenError(f"{root}: How2Sign annotation file {name} not found (looked in "
                           f"{', '.join(str(p.parent) for p in candidates)})")
    # Default csv quoting, as pandas.read_csv(sep="\t") reads these files everywhere.
    reader = csv.reader(_read_text(path, "How2Sign annotation file").splitlines(),
                        delimiter="\t")
    try:
        header = next(reader, [])
        missing = [c for c in HOW2SIGN_COLUMNS if c not in header]
        if missing:
            raise SignGenError(f"{path}:1: missing columns {missing} (header {header})")
        column = {c: header.index(c) for c in HOW2SIGN_COLUMNS}
        clips = root / f"{native}_rgb_front_clips" / "raw_videos"
        items = []
        number = reader.line_num
        for row in reader:
            first, number = number + 1, reader.line_num
            if number != first:  # every sentence is one line: a stray quote ran on
                raise SignGenError(f"{path}:{first}: a quoted field opened on this line "
                                   f"runs to line {number}")
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise SignGenError(f"{path}:{number}: expected {len(header)} tab-separated "
                                   f"fields, got {len(row)}")
            sentence_name = _require(path, number, "SENTENCE_NAME",
                                     row[column["SENTENCE_NAME"]])
            if "/" in sentence_name or "\\" in sentence_name or sentence_name in (".", ".."):
                raise SignGenError(f"{path}:{number}: SENTENCE_NAME {sentence_name!r} is not "
                                   f"a file name")
            for c in ("START_REALIGNED", "END_REALIGNED"):
                _seconds(path, number, c, row[column[c]])
            items.append(CorpusItem(
                sample_id=sentence_name, video_path=clips / f"{sentence_name}.mp4",
                start_s=0.0, end_s=None, text=row[column["SENTENCE"]].strip(), glosses=(),
                signer_id=None, split=split, language="asl"))
    except csv.Error as err:
        raise SignGenError(f"{path}:{reader.line_num}: malformed row ({err})") from err
    if check_media:
        _check_media(items)
    return items


# --- CSL-Daily -------------------------------------------------------------------------

CSL_DAILY_SPLIT_HEADER = ("name", "split")
CSL_DAILY_LABEL_HEADER = ("index", "name", "length", "gloss", "char", "word", "postag")
# split_1.txt lists S000005_P0004_T00 where video_map.txt has S000007_P0003_T00; public
# CSL-Daily loaders (e.g. CorrNet's preprocessing) read it as this training sample.
_CSL_DAILY_SPLIT_RENAMES = {"S000005_P0004_T00": "S000007_P0003_T00"}
_CSL_DAILY_SIGNER = re.compile(r"_P(\d+)_")


def load_csl_daily(root: str | os.PathLike, split: str,
                   check_media: bool = False) -> list[CorpusItem]:
    """Sentences of one CSL-Daily split (see the module docstring).  Labelled names
    that split_1.txt does not assign are in no split."""
    split = _split("csl_daily", split)
    root = _root("csl_daily", root, "sentence_label/ and sentence/")
    labels = root / "sentence_label"
    split_path = labels / "split_1.txt"
    assigned: dict[str, str] = {}
    for number, (name, name_split) in _rows(split_path, "CSL-Daily split file",
                                            CSL_DAILY_SPLIT_HEADER):
        name = _require(split_path, number, "name", name)
        name_split = name_split.strip()
        if name_split not in SPLITS:
            raise SignGenError(f"{split_path}:{number}: unknown split {name_split!r} "
                               f"(expected one of {', '.join(SPLITS)})")
        assigned[name] = name_split
    for old, new in _CSL_DAILY_SPLIT_RENAMES.items():
        if old in assigned and new not in assigned:
            assigned[new] = assigned.pop(old)
    label_path = labels / "video_map.txt"
    frames = root / "sentence" / "frames_512x512"
    items = []
    for number, fields in _rows(label_path, "CSL-Daily label file", CSL_DAILY_LABEL_HEADER):
        _, name, length, gloss, char, _, _ = fields
        name = _require(label_path, number, "name", name)
        if "/" in name or "\\" in name or name in (".", ".."):
            raise SignGenError(f"{label_path}:{number}: name {name!r} is not a folder name")
        if _int(label_path, number, "length", length) < 0:
            raise SignGenError(f"{label_path}:{number}: negative length {length!r}")
        if assigned.get(name) != split:
            continue
        signer = _CSL_DAILY_SIGNER.search(name)
        items.append(CorpusItem(
            sample_id=name, video_path=frames / name, start_s=0.0, end_s=None,
            text="".join(char.split()), glosses=tuple(gloss.split()),
            signer_id=str(int(signer.group(1))) if signer else None, split=split,
            language="csl"))
    if check_media:
        _check_media(items)
    return items


CORPORA: dict[str, Callable[..., list[CorpusItem]]] = {
    "phoenix14t": load_phoenix14t,
    "how2sign": load_how2sign,
    "csl_daily": load_csl_daily,
}


def load_corpus(name: str, root: str | os.PathLike, split: str,
                check_media: bool = False) -> list[CorpusItem]:
    """``CORPORA[name](root, split)``; SignGenError for an unknown corpus name."""
    if name not in CORPORA:
        raise SignGenError(f"unknown corpus {name!r}; corpora: {', '.join(CORPORA)}")
    return CORPORA[name](root, split, check_media=check_media)
