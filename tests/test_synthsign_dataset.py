"""SynthSign dataset generation: plan, splits, determinism, resume, reading."""

import json
import shutil

import numpy as np
import pytest
import torch

from signgen.config import load_config
from signgen.data.synthsign.dataset import SynthSignDataset, collate
from signgen.data.synthsign.generate import (
    SPLITS,
    SampleRenderer,
    expand_signs,
    generate,
    plan_hash,
    plan_samples,
)
from signgen.data.synthsign.lexicon import Lexicon
from signgen.data.synthsign.signers import make_signers
from signgen.errors import SignGenError

SMALL = ["synthsign.num_signers=6", "synthsign.num_unseen_signers=2",
         "synthsign.num_train=150", "synthsign.num_dev=1",
         "synthsign.num_test_novel_sentences=1", "synthsign.num_test_unseen_signers=1",
         "render.height=64", "render.width=64", "data.fps=8"]


@pytest.fixture(scope="module")
def cfg():
    return load_config("tiny", SMALL)


@pytest.fixture(scope="module")
def lexicon():
    return Lexicon.load()


# Enough training sentences to cover the held-out ones; only these are rendered.
RENDERED = [*(f"train-{i:05d}" for i in range(5)), "dev-00000", "test_novel_sentences-00000",
            "test_unseen_signers-00000"]


@pytest.fixture(scope="module")
def dataset(cfg, tmp_path_factory):
    return generate(cfg, tmp_path_factory.mktemp("synthsign"), workers=1, only=RENDERED,
                    progress=False)


def test_default_plan_has_disjoint_splits_and_covered_glosses(lexicon):
    cfg = load_config("tiny")
    signers = make_signers(cfg.synthsign.num_signers, cfg.synthsign.seed)
    specs = plan_samples(cfg, lexicon, signers)
    by_split = {s: [x for x in specs if x.split == s] for s in SPLITS}
    assert {s: len(v) for s, v in by_split.items()} == {
        "train": 1600, "dev": 100, "test_novel_sentences": 150, "test_unseen_signers": 150}
    assert len({x.sample_id for x in specs}) == len(specs)
    unseen = {s.signer_id for s in signers[-cfg.synthsign.num_unseen_signers:]}
    train_signers = {x.signer_id for x in by_split["train"] + by_split["dev"]
                     + by_split["test_novel_sentences"]}
    assert {x.signer_id for x in by_split["test_unseen_signers"]} <= unseen
    assert not train_signers & unseen
    train_keys = {x.frame_key for x in by_split["train"]}
    for split in ("dev", "test_novel_sentences"):
        assert not {x.frame_key for x in by_split[split]} & train_keys
        # Novel sentences are new combinations of signs seen in training.
        for x in by_split[split]:
            known = {g for t in by_split["train"] if t.language == x.language
                     for g in t.glosses}
            assert all(g in known or g.startswith("fs-") for g in x.glosses)
    assert {x.language for x in specs} == {"ssl-a", "ssl-b"}
    # Deterministic by seed.
    again = plan_samples(cfg, lexicon, signers)
    assert again == specs
    other = plan_samples(load_config("tiny", ["synthsign.seed=1"]), lexicon, signers)
    assert other != specs


def test_extra_training_sentences_leave_the_main_splits_and_plan_hash_alone(lexicon):
    cfg = load_config("tiny", ["synthsign.num_train_extra=0"])
    signers = make_signers(cfg.synthsign.num_signers, cfg.synthsign.seed)
    specs = plan_samples(cfg, lexicon, signers)
    more = plan_samples(load_config("tiny", ["synthsign.num_train_extra=400"]), lexicon,
                        signers)
    assert more[:len(specs)] == specs and plan_hash(more) == plan_hash(specs)
    extra = more[len(specs):]
    assert len(extra) == 400 and {x.split for x in extra} == {"train_extra"}
    assert len({x.sample_id for x in more}) == len(more)
    unseen = {s.signer_id for s in signers[-cfg.synthsign.num_unseen_signers:]}
    assert not {x.signer_id for x in extra} & unseen
    # No held-out sentence frame and no dev / test text reaches training.
    held_out = {x.frame_key for x in specs if x.split in ("dev", "test_novel_sentences")}
    tested = {x.text for x in specs if x.split not in ("train",)}
    assert not {x.frame_key for x in extra} & held_out
    assert not {x.text for x in extra} & tested
    assert {x.language for x in extra} == {"ssl-a", "ssl-b"}


def test_fingerspelled_names_expand_to_letters(lexicon):
    signs = expand_signs(["HELLO", "fs-ANNA"], "ssl-a", lexicon)
    assert [g for g, _ in signs] == ["HELLO", "fs-ANNA"]
    assert len(signs[1][1]) == 4 and signs[1][1][1] == signs[1][1][2]  # N N
    with pytest.raises(SignGenError, match="BANANAPHONE"):
        expand_signs(["BANANAPHONE"], "ssl-a", lexicon)


def test_generated_dataset_layout_and_reading(dataset, cfg):
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["status"] == "incomplete" and meta["finished"] == 8
    lines = (dataset / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 8
    assert len(list((dataset / "references").glob("*.png"))) == 6
    ds = SynthSignDataset(dataset, "train", clip_length=12)
    item = ds[0]
    assert item["frames"].shape == (12, 3, 64, 64)
    assert item["frames"].min() >= -1 and item["frames"].max() <= 1
    assert item["pose_map"].shape == item["hand_render"].shape == (12, 3, 64, 64)
    assert item["reference"].shape == (3, 64, 64)
    assert item["poses"].shape == (12, 165) and item["keypoints"].shape == (12, 133, 2)
    assert item["valid"].dtype == torch.bool
    batch = collate([ds[0], ds[1]])
    assert batch["frames"].shape == (2, 12, 3, 64, 64) and len(batch["glosses"]) == 2
    # The pose map is drawn where the keypoints are: the right wrist (COCO 10) is lit
    # whenever it is visible.
    whole = SynthSignDataset(dataset, "train")[0]
    lit = whole["pose_map"].amax(dim=1) > 0
    for t in range(len(lit)):
        if whole["visible"][t, 10]:
            u, v = whole["keypoints"][t, 10].round().long().tolist()
            assert lit[t, max(v - 1, 0):v + 2, max(u - 1, 0):u + 2].any()
    with pytest.raises(SignGenError, match="unknown split"):
        SynthSignDataset(dataset, "validation")
    with pytest.raises(SignGenError, match="not a SynthSign dataset"):
        SynthSignDataset(dataset / "samples", "train")


def test_rendering_is_deterministic(dataset, cfg, lexicon):
    signers = make_signers(cfg.synthsign.num_signers, cfg.synthsign.seed)
    spec = plan_samples(cfg, lexicon, signers)[0]
    arrays = SampleRenderer(cfg, lexicon, signers).render(spec)
    with np.load(dataset / "samples" / spec.sample_id / "conditions.npz") as stored:
        np.testing.assert_array_equal(stored["pose_map"], arrays["pose_map"])
        np.testing.assert_array_equal(stored["hand_render"], arrays["hand_render"])
    with np.load(dataset / "samples" / spec.sample_id / "motion.npz") as stored:
        np.testing.assert_array_equal(stored["poses"], arrays["poses"])


def test_rerun_resumes_and_cleans_up(dataset, cfg):
    sample = dataset / "samples" / "train-00002"
    before = (sample / "motion.npz").read_bytes()
    video = (sample / "video.mp4").read_bytes()
    for path in sample.iterdir():
        path.unlink()
    sample.rmdir()
    stale = dataset / "samples" / ".train-00003.tmp-99999"  # left by a killed run
    stale.mkdir()
    (stale / "video.mp4").write_bytes(b"half a video")
    generate(cfg, dataset, workers=1, only=RENDERED, progress=False)
    assert (sample / "motion.npz").read_bytes() == before
    assert (sample / "video.mp4").read_bytes() == video
    assert not stale.exists()
    assert len((dataset / "manifest.jsonl").read_text().splitlines()) == 8


def test_extra_split_is_generated_into_the_same_folder_and_read(dataset, cfg):
    more = load_config("tiny", [*SMALL, "synthsign.num_train_extra=3"])
    generate(more, dataset, workers=1, only=[*RENDERED, "train_extra-00001"], progress=False)
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["counts"]["train_extra"] == 3 and meta["splits"][-1] == "train_extra"
    extra = SynthSignDataset(dataset, "train_extra")
    assert [s["sample_id"] for s in extra.samples] == ["train_extra-00001"]
    assert extra[0]["frames"].shape[1:] == (3, 64, 64)
    assert len(SynthSignDataset(dataset, "train").samples) == 5  # train is unchanged
    shutil.rmtree(dataset / "samples" / "train_extra-00001")  # the module's dataset as before
    generate(cfg, dataset, workers=1, only=RENDERED, progress=False)


def test_folder_of_other_settings_is_refused(dataset):
    other = load_config("tiny", [*SMALL, "synthsign.seed=5"])
    with pytest.raises(SignGenError, match="other settings"):
        generate(other, dataset, workers=1, only=RENDERED, progress=False)
