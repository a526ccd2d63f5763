"""The scoring command end to end, with small untrained evaluators on a tiny dataset."""

import json

import numpy as np
import pytest
import torch

from signgen.config import load_config
from signgen.data.synthsign.lexicon import Lexicon
from signgen.data.synthsign.lexicon_export import export_lexicon
from signgen.data.synthsign.signers import make_signers
from signgen.errors import SignGenError
from signgen.eval.hand_keypoints import HandRefiner
from signgen.eval.identity import IdentityEncoder
from signgen.eval.keypoints import KeypointEstimator
from signgen.eval.recogniser import GlossVocabulary, PoseGlossRecogniser, VideoGlossRecogniser
from signgen.eval.score import (
    RESULT_KEYS,
    Evaluators,
    GroundTruth,
    markdown_table,
    score_system,
    split_samples,
    write_result,
)
from signgen.eval.systems import GroundTruthSystem, LookupConcatSystem

RENDERED = ["test_novel_sentences-00000", "test_unseen_signers-00000",
            "test_unseen_signers-00001"]  # rendered by conftest.tiny_data_root


@pytest.fixture(scope="module")
def evaluator_weights(tmp_path_factory):
    """Small untrained evaluators saved as ``eval.weights_dir`` expects them."""
    torch.manual_seed(0)
    lexicon = Lexicon.load()
    vocab = list(GlossVocabulary.from_lexicon(lexicon).glosses)[1:]
    weights = tmp_path_factory.mktemp("evaluators")
    small = dict(vocabulary=vocab, languages=["ssl-a", "ssl-b"], dim=16, num_layers=1,
                 num_heads=2, conv_layers=1)
    VideoGlossRecogniser(input_size=16, channels=[8, 8], **small).save_pretrained(
        weights / "recogniser")
    PoseGlossRecogniser(**small).save_pretrained(weights / "pose_recogniser")
    PoseGlossRecogniser(**small).save_pretrained(weights / "video_pose_recogniser")
    KeypointEstimator(input_size=32, channels=(8, 8), heatmap_stride=4).save_pretrained(
        weights / "keypoints")
    HandRefiner(crop_size=8, channels=(4, 4)).save_pretrained(weights / "hand_keypoints")
    IdentityEncoder(input_size=16, channels=(8, 8), embedding_dim=8,
                    num_classes=4).save_pretrained(weights / "identity")
    return weights


@pytest.fixture(scope="module")
def setup(tiny_overrides, tiny_data_root, evaluator_weights):
    cfg = load_config("tiny", tiny_overrides)
    return cfg, tiny_data_root / "synthsign", Evaluators.load(evaluator_weights), Lexicon.load()


def test_ground_truth_scores_every_metric(setup, tmp_path):
    cfg, root, evaluators, _ = setup
    result = score_system(GroundTruthSystem(), root, "test_unseen_signers", evaluators,
                          progress=False)
    assert set(RESULT_KEYS) <= set(result) and result["num_samples"] == 2
    # Against itself the ground truth is perfect on the frame-aligned metrics.
    assert result["ssim"] == pytest.approx(1.0) and result["ssim_masked"] == pytest.approx(1.0)
    assert result["dtw_mje"] == pytest.approx(0.0, abs=1e-9)
    assert result["psnr"] is None and "psnr" in result["notes"]  # identical frames: inf
    assert 0.0 <= result["identity_top1"] <= 1.0 and 0.0 <= result["pck"] <= 1.0
    assert 0.0 <= result["pck_hands"] <= 1.0
    assert result["bt_wer"] >= 0 and result["pose_bt_wer"] >= 0 and result["cnn_bt_wer"] >= 0
    path = write_result(result, tmp_path)
    assert json.loads(path.read_text())["system"] == "ground_truth"
    assert "| ground_truth | test_unseen_signers |" in markdown_table([result])
    # A subset and a tagged variant get their own files, never the whole split's.
    tagged = write_result({**result, "subset": "n2", "tag": "steps4"}, tmp_path)
    assert tagged.name == "ground_truth__test_unseen_signers__n2__steps4.json"
    assert path.is_file() and "| ground_truth [steps4] |" in markdown_table(
        [json.loads(tagged.read_text())])


def test_lookup_baseline_is_scored_on_keypoints(setup, tmp_path):
    cfg, root, evaluators, lexicon = setup
    sample = json.loads((root / "samples" / RENDERED[0] / "sample.json").read_text())
    glosses = [g for g in sample["glosses"] if not g.startswith("fs-")]
    export_lexicon(tmp_path / "lex", lexicon, make_signers(1)[0], sample["language"], fps=8,
                   size=(64, 64), glosses=glosses)
    result = score_system(LookupConcatSystem(tmp_path / "lex"), root, "test_novel_sentences",
                          evaluators, progress=False)
    assert result["bt_wer"] is None and "bt_wer" in result["notes"]
    assert result["dtw_mje"] > 0 and result["pose_bt_wer"] >= 0
    assert result["ssim"] is None and result["identity_top1"] is None
    assert result["pck_hands"] is None and "pck_hands" in result["notes"]


def test_missing_evaluators_are_named(tmp_path):
    with pytest.raises(SignGenError, match="python train.py --stage recogniser"):
        Evaluators.load(tmp_path)


def test_video_pose_recogniser_must_match_the_keypoint_reader(evaluator_weights, tmp_path):
    import shutil

    from signgen.eval.hand_keypoints import VideoKeypointReader

    weights = tmp_path / "weights"
    shutil.copytree(evaluator_weights, weights)
    dataset = weights / "video_pose_recogniser" / "dataset.json"
    version = VideoKeypointReader.from_weights_dir(weights).version
    dataset.write_text(json.dumps({"keypoint_reader_version": version}))
    assert Evaluators.load(weights).versions["keypoint_reader"] == version
    HandRefiner(crop_size=8, channels=(4, 8)).save_pretrained(weights / "hand_keypoints")
    with pytest.raises(SignGenError, match="retrain it with python train.py --stage "
                                           "video_pose_recogniser"):
        Evaluators.load(weights)


def test_silhouette_mask_separates_signer_from_background():
    from signgen.eval.score import silhouette

    video = np.full((1, 4, 4, 3), 51, np.uint8)
    video[0, 1:3, 1:3] = 200
    mask = silhouette(video, (0.2, 0.2, 0.2))
    assert mask.sum() == 4 and mask[0, 1, 1]


def test_video_model_system_renders_frame_aligned_video(setup, tmp_path, one_thread):
    from test_video_pipeline import make_pipeline

    from signgen.eval.systems import VideoModelSystem

    cfg, root, evaluators, _ = setup
    make_pipeline(size=64).save_pretrained(tmp_path / "video")
    system = VideoModelSystem(tmp_path / "video", root, "stage1_gt_conditions",
                              num_inference_steps=1)
    result = score_system(system, root, "test_unseen_signers", evaluators, progress=False)
    assert result["system"] == "stage1_gt_conditions" and result["num_samples"] == 2
    for key in ("bt_wer", "pck", "ssim", "ssim_masked", "psnr", "identity_top1", "dtw_mje"):
        assert result[key] is not None, key
    assert result["ssim"] < 0.99  # an untrained model does not copy the ground truth
    skeleton = VideoModelSystem(tmp_path / "video", root, "stage1_skeleton_only",
                                conditions=("pose_map",), num_inference_steps=1)
    sample = {"sample_id": RENDERED[1], "signer_id": json.loads(
        (root / "samples" / RENDERED[1] / "sample.json").read_text())["signer_id"]}
    from signgen.eval.score import GroundTruth

    gt = GroundTruth(sample, None, None, None, (1.0, 1.0, 1.0))
    assert skeleton.generate(gt).video.shape[1:] == (64, 64, 3)
    with pytest.raises(SignGenError, match="no video model"):
        VideoModelSystem(tmp_path / "none", root, "stage1_gt_conditions")


def test_vae_reconstruction_decodes_the_ground_truth_frame_by_frame(setup, tmp_path,
                                                                     one_thread):
    """``vae_reconstruction``: the ground truth through the video model's VAE, frame
    aligned; an identity-like VAE would score as the ground truth."""
    from test_video_pipeline import make_pipeline

    from signgen.eval.score import GroundTruth
    from signgen.eval.systems import VAEReconstructionSystem

    cfg, root, evaluators, _ = setup
    pipe = make_pipeline(size=64)
    pipe.save_pretrained(tmp_path / "video")
    system = VAEReconstructionSystem(tmp_path / "video")
    video = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    out = system.generate(GroundTruth({"sample_id": "x"}, video, None, None, (1.0,) * 3))
    assert out.frame_aligned and out.video.shape == video.shape and out.video.dtype == np.uint8
    x = torch.from_numpy(video[3:4]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():  # frame 3, alone, decodes to the same frame (batches independent)
        alone = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mean).sample
    alone = ((alone.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 0)
    assert np.abs(out.video[3].astype(int) - alone.numpy().astype(int)).max() <= 1
    result = score_system(system, root, "test_unseen_signers", evaluators, progress=False)
    assert result["system"] == "vae_reconstruction" and result["ssim"] < 0.99
    alone_vae = VAEReconstructionSystem(tmp_path / "video" / "vae")  # a VAE folder itself
    assert np.array_equal(alone_vae.generate(GroundTruth({}, video, None, None, None)).video,
                          out.video)
    with pytest.raises(SignGenError, match="no VAE"):
        VAEReconstructionSystem(tmp_path / "none")


def test_stage2_decoded_system_scores_video_and_token_statistics(setup, tmp_path, one_thread):
    from test_video_pipeline import make_pipeline

    from signgen.eval.systems import DecodedEmbeddingSystem
    from signgen.models.fsq_autoencoder import FSQAutoencoder

    cfg, root, evaluators, _ = setup
    make_pipeline(size=64).save_pretrained(tmp_path / "video")
    torch.manual_seed(0)
    FSQAutoencoder(embedding_channels=8, embedding_size=(32, 32), hidden_channels=(8, 8),
                   levels=(3, 3, 3), pose_hidden=16).save_pretrained(tmp_path / "fsq")
    system = DecodedEmbeddingSystem(tmp_path / "video", tmp_path / "fsq", root,
                                    num_inference_steps=1)
    result = score_system(system, root, "test_unseen_signers", evaluators, progress=False)
    assert result["system"] == "stage2_decoded" and result["num_samples"] == 2
    for key in ("bt_wer", "pck", "ssim_masked", "dtw_mje"):
        assert result[key] is not None, key
    stats = system.token_stats()
    assert 0 < stats["codebook_usage"] <= 1 and 0 <= stats["consecutive_repeat_rate"] <= 1
    assert stats["smplx_joint_error_mm"] > 0  # an untrained pose head is off
    # stage2_avatar: the same keypoints, no video; visible = inside the frame.
    avatar = DecodedEmbeddingSystem(tmp_path / "video", tmp_path / "fsq", root,
                                    name="stage2_avatar", avatar_only=True)
    result = score_system(avatar, root, "test_unseen_signers", evaluators, progress=False)
    assert result["bt_wer"] is None and result["pose_bt_wer"] is not None
    sample = split_samples(root, "test_unseen_signers", 1)[0]
    gt = GroundTruth(sample, None, None, None, (1.0, 1.0, 1.0))
    out = avatar.generate(gt)
    assert out.video is None and out.keypoints.shape[1:] == (133, 2)
    inside = (out.keypoints >= -0.5).all(-1) & (out.keypoints < 63.5).all(-1)
    np.testing.assert_array_equal(out.visible, inside)


def test_lookup_baseline_poses_are_rendered_to_video_by_stage_one(setup, tmp_path, one_thread):
    from test_video_pipeline import make_pipeline

    from signgen.eval.systems import VideoModelSystem

    cfg, root, evaluators, lexicon = setup
    sample = json.loads((root / "samples" / RENDERED[0] / "sample.json").read_text())
    glosses = [g for g in sample["glosses"] if not g.startswith("fs-")]
    export_lexicon(tmp_path / "lex", lexicon, make_signers(1)[0], sample["language"], fps=8,
                   size=(64, 64), glosses=glosses)
    make_pipeline(size=64).save_pretrained(tmp_path / "video")
    renderer = VideoModelSystem(tmp_path / "video", root, "renderer", ("pose_map",),
                                num_inference_steps=1)
    system = LookupConcatSystem(tmp_path / "lex", renderer, size=(64, 64))
    result = score_system(system, root, "test_novel_sentences", evaluators, progress=False)
    assert result["bt_wer"] is not None and result["cnn_bt_wer"] is not None
    assert result["ssim"] is None  # not frame-aligned with the ground truth


def test_report_names_results_scored_by_older_evaluators():
    from signgen.eval.__main__ import _stale_results

    old = {"system": "a", "split": "s", "num_samples": 1, "evaluators": {"keypoint_reader": "x"}}
    undated = {"system": "c", "split": "s", "num_samples": 1, "evaluators": {}}
    new = {"system": "b", "split": "s", "num_samples": 2, "evaluators": {"keypoint_reader": "y"},
           "date": "2026-11-26T14:00:00+00:00"}
    same = {**new, "system": "d", "date": "2026-11-25T10:00:00+00:00"}
    assert _stale_results([old, new, undated, same]) == [old, undated]
    assert _stale_results([]) == []
    # A new video recogniser makes rows with a bt_wer stale, not the pose-only rows.
    versions = {"keypoint_reader": "y", "video_pose_recogniser": "v2", "pose_recogniser": "p"}
    newest = {**new, "bt_wer": 0.1, "pose_bt_wer": 0.1, "evaluators": versions}
    earlier = {**versions, "video_pose_recogniser": "v1"}
    video_row = {**same, "bt_wer": 0.5, "pose_bt_wer": 0.4, "evaluators": earlier}
    pose_row = {**same, "bt_wer": None, "pose_bt_wer": 0.4, "evaluators": earlier}
    assert _stale_results([newest, video_row, pose_row]) == [video_row]
    pose_row["evaluators"] = {**earlier, "pose_recogniser": "p0"}
    assert _stale_results([newest, pose_row]) == [pose_row]


def test_report_lists_stage2_token_statistics(tmp_path, monkeypatch):
    import argparse

    import signgen.eval.__main__ as cli

    row = {"system": "stage2_decoded", "split": "test_unseen_signers", "num_samples": 3,
           "evaluators": {}, "codebook_usage": 0.8125, "consecutive_repeat_rate": 0.02,
           "smplx_joint_error_mm": 21.25}
    (tmp_path / "stage2_decoded__test_unseen_signers.json").write_text(json.dumps(row))
    monkeypatch.setattr(cli, "RESULTS_DIR", tmp_path)
    cli._report(argparse.Namespace(out=str(tmp_path / "results.md")))
    text = (tmp_path / "results.md").read_text()
    assert "| stage2_decoded | test_unseen_signers | 3 | 0.812 | 0.020 | 21.2 |" in text


def test_text_systems_render_video_or_only_the_avatar_pose(setup, engine, one_thread):
    from signgen.eval.systems import TextToSignSystem

    cfg, root, evaluators, _ = setup
    sample = json.loads((root / "samples" / RENDERED[0] / "sample.json").read_text())
    gt = GroundTruth(sample, None, None, None, (1.0, 1.0, 1.0))
    video = TextToSignSystem(engine, root, num_inference_steps=1, window=4, overlap=1)
    out = video.generate(gt)
    assert out.video is not None and out.video.shape[0] == out.keypoints.shape[0]
    assert out.keypoints.shape[1:] == (133, 2) and not out.frame_aligned
    avatar = TextToSignSystem(engine, root, name="text2avatar", avatar_only=True)
    out = avatar.generate(gt)
    assert out.video is None and out.keypoints.shape[1:] == (133, 2)
    assert avatar.info["avatar_only"] and "render_video" not in avatar.timings
    result = score_system(avatar, root, "test_novel_sentences", evaluators, progress=False)
    assert result["system"] == "text2avatar"
    assert result["dtw_mje"] is not None and result["pose_bt_wer"] is not None
    assert result["bt_wer"] is None and result["ssim"] is None  # no video to score


def test_scores_of_a_pipeline_record_how_its_stages_were_made(tmp_path):
    from signgen.eval.systems import stage_commands

    assert stage_commands(tmp_path) == {}
    (tmp_path / "demo.json").write_text(json.dumps({"stages": {
        "fsq": {"steps": 3, "command": "python train.py --stage fsq"},
        "translator": {"command": "python train.py --stage translator x=1"}}}))
    assert stage_commands(tmp_path) == {"fsq": "python train.py --stage fsq",
                                        "translator": "python train.py --stage translator x=1"}


@pytest.mark.parametrize("tag", ["../up", "a b", "", "x" * 41])
def test_a_tag_is_a_plain_name(tag):
    import signgen.eval.__main__ as cli

    with pytest.raises(SignGenError, match="a tag is letters"):
        cli.main(["score", "--system", "ground_truth", "--tag", tag])


def test_saved_outputs_are_rescored_to_the_same_result(setup, tmp_path):
    from signgen.eval.saved_outputs import OutputSaver, SavedOutputsSystem

    _, root, evaluators, _ = setup
    saver = OutputSaver(GroundTruthSystem(), tmp_path / "out", "test_unseen_signers",
                        "python -m signgen.eval score --system ground_truth", tag="t1")
    first = score_system(saver, root, "test_unseen_signers", evaluators, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.npz")) == \
        [f"{s}.npz" for s in RENDERED[1:]]
    saver.record(token_stats={"codebook_usage": 0.5})
    saved = SavedOutputsSystem(tmp_path / "out", "test_unseen_signers")
    assert saved.name == "ground_truth" and saved.tag == "t1"
    assert saved.saved["token_stats"] == {"codebook_usage": 0.5}
    again = score_system(saved, root, "test_unseen_signers", evaluators, progress=False)
    metrics = [k for k in RESULT_KEYS if k not in ("generate_seconds_per_sample",)]
    assert {k: again[k] for k in metrics} == {k: first[k] for k in metrics}
    assert len(saved.generate_seconds) == 2
    with pytest.raises(SignGenError, match="holds outputs for test_unseen_signers"):
        SavedOutputsSystem(tmp_path / "out", "test_novel_sentences")


def test_own_videos_are_scored_and_missing_ones_named(setup, tmp_path):
    import imageio.v2 as imageio

    from signgen.data.synthsign.dataset import read_video
    from signgen.eval.saved_outputs import EXTERNAL_NAME, SavedOutputsSystem

    _, root, evaluators, _ = setup
    sample = RENDERED[0]
    video = read_video(root / "samples" / sample / "video.mp4")
    (tmp_path / "mine").mkdir()
    imageio.mimwrite(tmp_path / "mine" / f"{sample}.mp4", list(video[::2]), fps=4)
    system = SavedOutputsSystem(tmp_path / "mine", "test_novel_sentences")
    result = score_system(system, root, "test_novel_sentences", evaluators, progress=False)
    assert result["system"] == EXTERNAL_NAME and result["num_samples"] == 1
    assert result["bt_wer"] >= 0 and result["ssim"] is None  # not frame-aligned
    (tmp_path / "none").mkdir()
    with pytest.raises(SignGenError, match=f"no output for {sample}"):
        score_system(SavedOutputsSystem(tmp_path / "none", "test_novel_sentences"), root,
                     "test_novel_sentences", evaluators, progress=False)


def test_saved_outputs_needs_a_folder():
    import signgen.eval.__main__ as cli

    with pytest.raises(SignGenError, match="needs --outputs DIR"):
        cli.main(["score", "--system", "saved_outputs"])
