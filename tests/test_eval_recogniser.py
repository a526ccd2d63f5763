"""Back-translation recognisers: vocabulary, shapes, padding, save/load, decoding, CTC
training, the recognise functions and the training tasks on a tiny generated dataset."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from signgen.config import load_config
from signgen.data.synthsign.lexicon import Lexicon
from signgen.errors import ConfigError, InvalidInputError, SignGenError
from signgen.eval.recogniser import (
    BLANK,
    GlossVocabulary,
    PoseGlossRecogniser,
    RecogniserOutput,
    UnknownGlossError,
    VideoGlossRecogniser,
    ctc_greedy_decode,
    pose_input,
    recognise,
    recognise_poses,
    resize_video,
)
from signgen.training.tasks.pose_recogniser import augment_keypoints
from signgen.training.tasks.recogniser import (
    IGNORE,
    GlossClips,
    augment_frames,
    ctc_loss,
    frame_labels,
    group_labels,
    pad_batch,
)

pytestmark = pytest.mark.usefixtures("one_thread")

GLOSSES = ["HELLO", "TEA", "WHO", "fs-ANNA"]
LANGUAGES = ["ssl-a", "ssl-b"]
SMALL = dict(dim=32, conv_layers=1, temporal_kernel=3, num_layers=1, num_heads=2, dropout=0.0)


def video_model(**kw):
    return VideoGlossRecogniser(GLOSSES, LANGUAGES, input_size=16, channels=[8, 16],
                                **{**SMALL, **kw})


def pose_model(**kw):
    return PoseGlossRecogniser(GLOSSES, LANGUAGES, **{**SMALL, **kw})


def keypoint_tracks(b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    points = 64 + 20 * torch.randn(b, t, 133, 2, generator=g)
    points[..., 5, :] = torch.tensor([84.0, 50.0])  # shoulders 40 px apart
    points[..., 6, :] = torch.tensor([44.0, 50.0])
    return points, torch.rand(b, t, 133, generator=g) > 0.1


def test_vocabulary_round_trip_and_blank():
    vocab = GlossVocabulary(GLOSSES)
    assert len(vocab) == 5 and vocab.tokens[0] == BLANK and vocab.blank == 0
    ids = vocab.encode(["WHO", "fs-ANNA", "WHO"])
    assert ids == [3, 4, 3] and vocab.decode(ids) == ["WHO", "fs-ANNA", "WHO"]
    assert vocab.decode([0, 1, 0, 0, 2]) == ["HELLO", "TEA"]
    with pytest.raises(UnknownGlossError, match="'TE'.*did you mean TEA"):
        vocab.encode(["TE"])
    with pytest.raises(UnknownGlossError):
        vocab.encode([BLANK])
    with pytest.raises(InvalidInputError):
        vocab.decode([5])
    with pytest.raises(ConfigError):
        GlossVocabulary(["A", "A"])
    with pytest.raises(ConfigError):
        GlossVocabulary([BLANK, "A"])


def test_vocabulary_from_lexicon_covers_every_language_and_name():
    lexicon = Lexicon.load()
    vocab = GlossVocabulary.from_lexicon(lexicon)
    lexical = {g for lang in lexicon.languages for g in lexicon.glosses(lang)}
    assert len(vocab) == 1 + len(lexical) + len(lexicon.names)
    assert list(vocab.glosses[: len(lexical)]) == sorted(lexical)
    assert "fs-ANNA" in vocab.glosses and vocab.encode(["fs-ANNA"])[0] > len(lexical)


def test_greedy_decoding_collapses_repeats_and_drops_blanks():
    def one_hot(path, v=5):
        return torch.nn.functional.one_hot(torch.tensor(path), v).float().log_softmax(-1)

    paths = [[0, 1, 1, 0, 1, 2, 2, 0], [3, 3, 3, 0, 0, 0, 0, 0], [0] * 8]
    log_probs = torch.stack([one_hot(p) for p in paths])
    assert ctc_greedy_decode(log_probs) == [[1, 1, 2], [3], []]
    valid = torch.ones(3, 8, dtype=torch.bool)
    valid[0, 5:] = False  # the tail (2, 2, 0) is padding
    assert ctc_greedy_decode(log_probs, valid) == [[1, 1], [3], []]
    output = RecogniserOutput(log_probs, valid)
    assert video_model().decode(output) == [["HELLO", "HELLO"], ["WHO"], []]


@pytest.mark.parametrize("kind", ["video", "pose"])
def test_forward_shapes_and_padding_leaves_valid_frames_unchanged(kind):
    torch.manual_seed(0)
    model = (video_model() if kind == "video" else pose_model()).eval()
    language = model.language_ids(["ssl-b", "ssl-a"])
    if kind == "video":
        x = (torch.rand(2, 7, 3, 16, 16) * 2 - 1,)
        pad = (torch.rand(2, 4, 3, 16, 16),)
    else:
        x = keypoint_tracks(2, 7)
        pad = keypoint_tracks(2, 4, seed=1)
    with torch.no_grad():
        out = model(*x, language)
        padded_inputs = [torch.cat([a, b], 1) for a, b in zip(x, pad, strict=True)]
        valid = torch.zeros(2, 11, dtype=torch.bool)
        valid[:, :7] = True
        padded = model(*padded_inputs, language, valid)
    # temporal_stride 2: 7 frames -> 4 steps (the last one half padding), 11 -> 6.
    assert out.log_probs.shape == (2, 4, 5) and out.valid.all()
    assert padded.log_probs.shape == (2, 6, 5)
    assert padded.valid.tolist() == [[True] * 4 + [False] * 2] * 2
    assert torch.allclose(out.log_probs.exp().sum(-1), torch.ones(2, 4), atol=1e-5)
    assert torch.allclose(padded.log_probs[:, :4], out.log_probs, atol=1e-5)
    # The language tag matters.
    with torch.no_grad():
        other = model(*x, model.language_ids(["ssl-a", "ssl-b"]))
    assert not torch.allclose(other.log_probs, out.log_probs)


def test_stride_one_keeps_the_frame_rate():
    model = pose_model(temporal_stride=1).eval()
    with torch.no_grad():
        out = model(*keypoint_tracks(1, 5), model.language_ids(["ssl-a"]))
    assert out.log_probs.shape == (1, 5, 5)


def test_frame_labels_are_grouped_by_the_stride():
    labels = torch.tensor([[0, 0, 3, 3, 3, IGNORE, 4]])
    assert group_labels(labels, 2).tolist() == [[0, 3, IGNORE, IGNORE]]
    assert group_labels(labels, 1).tolist() == labels.tolist()


def test_bad_inputs_fail_loudly():
    model = video_model()
    with pytest.raises(InvalidInputError, match="resize"):
        model(torch.zeros(1, 3, 3, 32, 32), model.language_ids(["ssl-a"]))
    with pytest.raises(InvalidInputError, match="languages"):
        model.language_ids(["ssl-x"])
    with pytest.raises(InvalidInputError, match="valid frame"):
        model(torch.zeros(1, 3, 3, 16, 16), model.language_ids(["ssl-a"]),
              torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ConfigError, match="divisible"):
        VideoGlossRecogniser(GLOSSES, LANGUAGES, input_size=20, channels=[8, 16, 32])
    with pytest.raises(InvalidInputError, match="square"):
        resize_video(np.zeros((2, 16, 20, 3), np.uint8), 8)
    assert issubclass(UnknownGlossError, SignGenError)


@pytest.mark.parametrize("kind", ["video", "pose"])
def test_save_and_load_round_trip(kind, tmp_path):
    torch.manual_seed(0)
    model = (video_model() if kind == "video" else pose_model()).eval()
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path).eval()
    assert loaded.vocabulary == model.vocabulary and loaded.languages == model.languages
    x = ((torch.rand(2, 5, 3, 16, 16) * 2 - 1,) if kind == "video"
         else keypoint_tracks(2, 5))
    language = model.language_ids(["ssl-a", "ssl-b"])
    with torch.no_grad():
        assert torch.equal(model(*x, language).log_probs, loaded(*x, language).log_probs)


def test_ctc_loss_falls_when_overfitting_two_clips():
    torch.manual_seed(0)
    model = video_model()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    items = [{"input": torch.rand(12, 3, 16, 16) * 2 - 1, "targets": torch.tensor([1, 3]),
              "language": 0},
             {"input": torch.rand(9, 3, 16, 16) * 2 - 1, "targets": torch.tensor([4, 2, 4]),
              "language": 1}]
    batch = pad_batch(items)
    losses = []
    for _ in range(25):
        loss = ctc_loss(model(batch["input"], batch["language"], batch["valid"]), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_recognise_functions_return_gloss_lists():
    torch.manual_seed(0)
    videos = [np.random.default_rng(i).integers(0, 256, (t, 32, 32, 3), dtype=np.uint8)
              for i, t in enumerate([5, 9, 3])]
    out = recognise(video_model(), videos, ["ssl-a", "ssl-b", "ssl-a"], batch_size=2)
    assert len(out) == 3 and all(isinstance(g, str) for seq in out for g in seq)
    assert set(g for seq in out for g in seq) <= set(GLOSSES)
    with pytest.raises(InvalidInputError, match="one language per input"):
        recognise(video_model(), videos, "ssl-a")
    points, visible = keypoint_tracks(2, 6)
    out = recognise_poses(pose_model(), [points[0].numpy(), points[1, :4].numpy()],
                          [visible[0].numpy(), visible[1, :4].numpy()], ["ssl-a", "ssl-b"])
    assert len(out) == 2 and all(isinstance(seq, list) for seq in out)
    # A track without shoulders cannot be normalised: it reads as nothing.
    hidden = visible[0].numpy().copy()
    hidden[:, 5] = False
    model = pose_model()
    out = recognise_poses(model, [points[0].numpy()] * 2, [hidden, visible[0].numpy()],
                          ["ssl-a", "ssl-a"])
    assert out[0] == [] and out[1] == recognise_poses(
        model, [points[0].numpy()], [visible[0].numpy()], ["ssl-a"])[0]


def test_pose_input_is_in_shoulder_widths_and_hides_missing_points():
    points, visible = keypoint_tracks(1, 3)
    points, visible = points[0].numpy(), visible[0].numpy()
    visible[:, 5:7] = True
    points[1, 100] = np.nan  # a missing point, even if marked visible
    x, vis = pose_input(points, visible)
    assert x.shape == (3, 133, 2) and vis.dtype == torch.bool and not vis[1, 100]
    assert torch.allclose(x[:, 5], torch.tensor([0.5, 0.0]).expand(3, 2))
    assert torch.allclose(x[:, 6], torch.tensor([-0.5, 0.0]).expand(3, 2))
    assert torch.isfinite(x).all() and (x[~vis] == 0).all()
    assert torch.allclose(x[0, 0], torch.from_numpy((points[0, 0] - [64, 50]) / 40).float())


def test_resize_is_area_interpolation():
    video = np.zeros((1, 4, 4, 3), np.uint8)
    video[0, :2, :2] = 200
    assert resize_video(video, 2)[0, :, 0, 0].tolist() == [200] * 3
    assert resize_video(video, 2)[0, :, 1, 1].tolist() == [0] * 3


def test_augmentations_keep_shapes_and_ranges():
    rng = np.random.default_rng(0)
    frames = torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8)
    out = augment_frames(frames, rng)
    assert out.shape == (20, 3, 16, 16) and out.min() >= -1 and out.max() <= 1
    points, visible = keypoint_tracks(1, 20)
    track = torch.cat([points[0], visible[0, ..., None].float()], -1)
    out = augment_keypoints(track, rng)
    assert out.shape == (20, 133, 3) and set(out[..., 2].unique().tolist()) <= {0.0, 1.0}


def test_clips_replay_frames_and_labels_at_the_same_random_speed():
    labels = frame_labels(np.array([-1, -1, -1, 0, 0, 0, 0, -1, -1, 1, 1, 1]), [7, 9])
    i = IGNORE
    assert labels.tolist() == [0, 0, i, i, 7, 7, i, i, i, i, 9, 9]
    clip = torch.arange(12)[:, None].float()
    data = GlossClips([clip], [[7, 9]], [labels], [1], plain=lambda x: x,
                      augment=lambda x, rng: x)
    lengths = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        item = data[0]
        keep = item["input"][:, 0].long()
        assert torch.equal(item["frame_labels"], labels[keep]) and keep.diff().min() >= 0
        lengths.add(len(keep))
    assert len(lengths) > 1 and min(lengths) >= 9 and max(lengths) <= 15


MODEL = ["input_size=16", "channels=[8,16]", "dim=32", "num_layers=1", "num_heads=2",
         "conv_layers=1"]
TRAIN = ["max_steps=3", "batch_size=2", "warmup_steps=1", "log_every=1", "eval_every=3",
         "save_every=2"]


@pytest.mark.parametrize("stage", ["recogniser", "pose_recogniser", "video_pose_recogniser"])
def test_training_task_runs_and_exports_a_loadable_model(stage, tiny_overrides, tmp_path):
    import train
    from signgen.eval.keypoints import KeypointEstimator

    if stage == "video_pose_recogniser":  # reads keypoints the evaluators' reader finds
        from signgen.eval.hand_keypoints import HandRefiner

        estimator = KeypointEstimator(input_size=32, channels=(8, 8), heatmap_stride=4)
        with torch.no_grad():  # untrained, but sure that every point is visible
            estimator.visibility[-1].bias.fill_(10.0)
        estimator.save_pretrained(tmp_path / "weights" / "keypoints")
        HandRefiner(crop_size=8, channels=(4, 4)).save_pretrained(
            tmp_path / "weights" / "hand_keypoints")
    overrides = [*tiny_overrides, f"experiment.output_dir={tmp_path}/out",
                 f"eval.weights_dir={tmp_path}/weights",
                 *(f"eval.{stage}.model.{kv}" for kv in MODEL),
                 *(f"eval.{stage}.train.{kv}" for kv in TRAIN)]
    folder = train.main(load_config("tiny", overrides), stage, progress=False)
    cls = VideoGlossRecogniser if stage == "recogniser" else PoseGlossRecogniser
    model = cls.from_pretrained(tmp_path / "weights" / stage)
    assert len(model.vocabulary) == len(GlossVocabulary.from_lexicon(Lexicon.load()))
    # tiny.yaml: the video recogniser learns from train and train_extra (3 + 1 clips here)
    trained_on = 4 if stage == "video_pose_recogniser" else 3
    assert json.loads((folder / "dataset.json").read_text())["train_samples"] == trained_on
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] == 3 and 0 <= info["eval"]["dev_wer"]
    log = [json.loads(line) for line in (tmp_path / "out" / stage / "metrics.jsonl")
           .read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and "eval/dev_wer" in log[-1]
    assert log[0]["frame_ce"] > 0 and log[0]["ctc"] > 0
    if stage == "video_pose_recogniser":
        from signgen.paths import weights_hash

        estimator = weights_hash(tmp_path / "weights" / "keypoints")
        refiner = weights_hash(tmp_path / "weights" / "hand_keypoints")
        info = json.loads((folder / "dataset.json").read_text())
        assert info["keypoint_estimator_hash"] == estimator
        assert info["keypoint_reader_version"] == f"{estimator}-{refiner}"
        cache = Path(tiny_overrides[-1].split("=", 1)[1]) / "synthsign" / "cache"
        for name in (f"keypoints-{estimator}", f"keypoints-{estimator}-{refiner}"):
            assert len(list((cache / name).glob("*.npz"))) == 5  # 4 training + 1 dev clips


def test_recognisers_learn_from_the_configured_training_splits(tiny_overrides):
    from signgen.training.tasks.pose_recogniser import build_task

    task = build_task(load_config("tiny", tiny_overrides))
    assert {s["split"] for s in task.train_samples} == {"train"}
    task = build_task(load_config("tiny", [
        *tiny_overrides, "eval.pose_recogniser.train_splits=[train,train_extra]"]))
    ids = [s["sample_id"] for s in task.train_samples]
    assert ids == ["train-00000", "train-00001", "train-00002", "train_extra-00000"]
    for splits in ("[train,test_novel_sentences]", "[train,dev]", "[train,train]", "[]"):
        with pytest.raises(ConfigError, match="train_splits must be distinct training splits"):
            load_config("tiny", [*tiny_overrides,
                                 f"eval.video_pose_recogniser.train_splits={splits}"])


def test_video_pose_recogniser_needs_the_keypoint_estimator(tiny_overrides, tmp_path):
    import train
    from signgen.eval.keypoints import KeypointEstimator

    cfg = load_config("tiny", [*tiny_overrides, f"eval.weights_dir={tmp_path}/weights",
                               f"experiment.output_dir={tmp_path}/out"])
    with pytest.raises(SignGenError, match="python train.py --stage keypoints"):
        train.main(cfg, "video_pose_recogniser", progress=False)
    estimator = KeypointEstimator(input_size=32, channels=(8, 8), heatmap_stride=4)
    with torch.no_grad():  # sees nothing
        estimator.visibility[-1].bias.fill_(-10.0)
    estimator.save_pretrained(tmp_path / "weights" / "keypoints")
    with pytest.raises(SignGenError, match="python train.py --stage hand_keypoints"):
        train.main(cfg, "video_pose_recogniser", progress=False)
    from signgen.eval.hand_keypoints import HandRefiner

    HandRefiner(crop_size=8, channels=(4, 4)).save_pretrained(
        tmp_path / "weights" / "hand_keypoints")
    with pytest.raises(SignGenError, match="finds no shoulders in any train video"):
        train.main(cfg, "video_pose_recogniser", progress=False)


def test_splicing_keeps_frames_labels_and_targets_consistent():
    from signgen.training.tasks import recogniser as task

    rng = np.random.default_rng(0)
    inputs, targets, labels, positions = [], [], [], []
    for clip in range(4):  # clip c signs glosses 10c+1 .. 10c+k, 3 stroke frames each
        k = 3 + clip % 2
        gloss = np.concatenate([[-1, -1]] + [[g] * 3 + [-1, -1] for g in range(k)])
        positions.append(gloss)
        targets.append([10 * clip + g + 1 for g in range(k)])
        labels.append(task.frame_labels(gloss, targets[-1]))
        # The "frames" carry the class of their gloss (0 on transitions).
        inputs.append(torch.tensor([targets[-1][g] if g >= 0 else 0 for g in gloss]))
    data = task.GlossClips(inputs, targets, labels, [0] * 4, plain=lambda x: x,
                           augment=lambda x, rng: x, frame_gloss=positions,
                           groups=["s0/ssl-a"] * 4)
    spliced = 0
    for epoch in range(20):
        data.set_epoch(epoch)
        item = data[int(rng.integers(4))]
        frames = item["input"].tolist()
        runs = [c for i, c in enumerate(frames) if c and (i == 0 or frames[i - 1] != c)]
        assert runs == item["targets"].tolist()  # every sign's frames, in target order
        known = item["frame_labels"] != task.IGNORE
        assert torch.equal(item["frame_labels"][known], item["input"][known])
        spliced += len(item["targets"]) not in (3, 4) or runs != targets[runs[0] // 10]
    assert spliced > 0
