"""DWPose / RTMW ONNX keypoint extraction: preprocessing, SimCC decoding, the inverse
affine, batching, the COCO_WHOLEBODY_133 .pose round trip, the CLI and bad inputs.

The models are tiny ONNX graphs with RTMPose's I/O contract built here with the onnx
helper API: keypoint 0 follows the brightest image column / row (so the forward warp is
checked: a blob drawn in a frame must decode back onto itself), every other keypoint
peaks at a fixed SimCC bin (so the decoding and inverse affine are checked exactly).
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from signgen.body.keypoints import COCO_WHOLEBODY_NAMES
from signgen.data.onnx_pose import (
    MEAN,
    STD,
    WholeBodyPoseEstimator,
    decode_simcc,
    main,
    write_coco_pose,
)
from signgen.data.pose_import import (
    COCO_MIN_SCORE,
    COCO_POINT_NAMES,
    import_pose,
    keypoints_to_imported_pose,
    read_pose_file,
)
from signgen.errors import InvalidInputError, ModelLoadError, SignGenError

K = 133
INPUT = (256, 192)  # (H, W), RTMPose-256x192
TRACKER = 0  # the keypoint that follows the image


def _peaks(seed=0):
    """Fixed SimCC peaks of keypoints 1..132: bins (x, y) and peak values (x, y)."""
    rng = np.random.default_rng(seed)
    bins = np.stack([rng.integers(0, 2 * INPUT[1], K), rng.integers(0, 2 * INPUT[0], K)], -1)
    values = rng.uniform(0.35, 1.5, (K, 2))
    values[[30, 31, 95]] = [[0.1, 0.9], [0.9, 0.2], [0.0, 0.0]]  # below 0.3: not detected
    # Shoulders well apart and level (the .pose import frames on them).
    bins[5], bins[6] = (250, 200), (134, 204)
    values[[5, 6]] = 1.0
    return bins, values.astype(np.float32)


def _build_model(path, keypoints=K, batch="N", size=INPUT, dynamic_size=False,
                 output_names=("simcc_x", "simcc_y"), swap=False):
    """An RTMPose-like ONNX model (opset 17) written to ``path``; ``swap`` lists the
    outputs y first."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    height, width = size
    bins, values = _peaks()
    const_x = np.full((1, keypoints, 2 * width), -1.0, np.float32)
    const_y = np.full((1, keypoints, 2 * height), -1.0, np.float32)
    for k in range(1, keypoints):
        const_x[0, k, bins[k, 0]], const_y[0, k, bins[k, 1]] = values[k]
    const_x[0, TRACKER] = const_y[0, TRACKER] = 0.0
    mask = np.zeros((1, keypoints, 1), np.float32)
    mask[0, TRACKER] = 1.0
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (const_x, "const_x"), (const_y, "const_y"), (mask, "mask"),
        (np.array([0, -1, 1], np.int64), "column"), (np.array([0, 1, -1], np.int64), "row"))]
    # Keypoint 0's x (y) vector: the max over channels and rows (columns), each pixel
    # repeated for its 2 bins; the other keypoints: the constant peaks.
    branches = [("x", [1, 2], width), ("y", [1, 3], height)][:len(output_names)]
    nodes, outputs = [], []
    for (axis, reduce_axes, length), name in zip(branches, output_names, strict=True):
        nodes += [
            helper.make_node("ReduceMax", ["input"], [f"{axis}_max"], axes=reduce_axes,
                             keepdims=0),
            helper.make_node("Reshape", [f"{axis}_max", "column"], [f"{axis}_col"]),
            helper.make_node("Concat", [f"{axis}_col", f"{axis}_col"], [f"{axis}_two"],
                             axis=2),
            helper.make_node("Reshape", [f"{axis}_two", "row"], [f"{axis}_track"]),
            helper.make_node("Mul", ["mask", f"{axis}_track"], [f"{axis}_masked"]),
            helper.make_node("Add", [f"{axis}_masked", f"const_{axis}"], [name]),
        ]
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                     [batch, keypoints, 2 * length]))
    if swap:
        outputs.reverse()
    in_shape = [batch, 3, "H" if dynamic_size else height, "W" if dynamic_size else width]
    graph = helper.make_graph(nodes, "simcc", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, in_shape)], outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    return _build_model(tmp_path_factory.mktemp("onnx") / "simcc.onnx")


@pytest.fixture(scope="module")
def estimator(model):
    return WholeBodyPoseEstimator(model, batch_size=2, threads=1)


def _reference_inverse(q, box):
    """The reference decoding (rtmlib's formula, independent of the module's): bbox ->
    centre and padded (w, h) scale fitted to the input aspect, then
    q / input_size * scale + centre - scale / 2."""
    x1, y1, x2, y2 = box
    centre = np.array([x1 + x2, y1 + y2]) * 0.5
    scale = np.array([x2 - x1, y2 - y1]) * 1.25
    w, h = INPUT[1], INPUT[0]
    if scale[0] > scale[1] * w / h:
        scale = np.array([scale[0], scale[0] * h / w])
    else:
        scale = np.array([scale[1] * w / h, scale[1]])
    return np.asarray(q) / np.array([w, h]) * scale + centre - scale / 2


def _blob_frames(centres, height, width, sigma=3.0):
    """(T,H,W,3) uint8 black frames with a white Gaussian blob at each (x, y)."""
    ys, xs = np.mgrid[0:height, 0:width]
    frames = [255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
              for x, y in centres]
    return np.repeat(np.rint(np.stack(frames))[..., None], 3, -1).astype(np.uint8)


def test_keypoint_names_are_dwpose_order():
    """COCO_POINT_NAMES = signgen's layout, unique names (hand roots renamed as mmpose)."""
    assert len(COCO_POINT_NAMES) == K == len(set(COCO_POINT_NAMES))
    differ = [i for i in range(K) if COCO_POINT_NAMES[i] != COCO_WHOLEBODY_NAMES[i]]
    assert differ == [91, 112] and COCO_POINT_NAMES[91] == "left_hand_root"
    assert COCO_POINT_NAMES[17:23] == ("left_big_toe", "left_small_toe", "left_heel",
                                       "right_big_toe", "right_small_toe", "right_heel")
    assert COCO_POINT_NAMES[5:7] == ("left_shoulder", "right_shoulder")


def test_decode_simcc_min_mean_and_first_maximum():
    x = np.zeros((1, 2, 8), np.float32)
    y = np.zeros((1, 2, 6), np.float32)
    x[0, 0, 5], y[0, 0, 2] = 0.9, 0.4
    x[0, 1, [1, 6]] = 0.7  # a tie: the first maximum wins
    y[0, 1, 3] = 0.5
    loc, score = decode_simcc(x, y, 2.0)
    np.testing.assert_allclose(loc[0], [[2.5, 1.0], [0.5, 1.5]])
    np.testing.assert_allclose(score[0], [0.4, 0.5])
    _, mean = decode_simcc(x, y, 2.0, score="mean")
    np.testing.assert_allclose(mean[0], [0.65, 0.6])
    with pytest.raises(InvalidInputError, match="score"):
        decode_simcc(x, y, 2.0, score="max")


def test_reads_input_size_and_batch_from_the_model(estimator):
    assert estimator.input_size == INPUT and estimator.batch_size == 2


def test_preprocess_normalises_rgb_and_pads_with_black(estimator):
    frames = np.zeros((2, 256, 192, 3), np.uint8)
    frames[:] = (200, 100, 50)
    batch, centres, scales = estimator.preprocess(frames)
    assert batch.shape == (2, 3, 256, 192) and batch.dtype == np.float32
    expected = (np.array([200, 100, 50]) - MEAN) / STD
    np.testing.assert_allclose(batch[:, :, 128, 96], np.tile(expected, (2, 1)), atol=1e-5)
    # Padding 1.25: the input's corners lie outside the frame, which reads as black.
    np.testing.assert_allclose(batch[0, :, 0, 0], -np.array(MEAN) / STD, atol=1e-5)
    np.testing.assert_allclose(centres, [[96, 128]] * 2)
    np.testing.assert_allclose(scales, [0.8, 0.8])  # 192 / (1.25 * 192)


@pytest.mark.parametrize("box", [None, (-20.0, 50.0, 70.0, 200.0), (30.0, 10.0, 60.0, 40.0)])
def test_warp_is_bilinear_with_black_outside(estimator, box):
    """The crop equals scipy's bilinear sampling (zeros outside, interpolated across the
    edge like cv2.warpAffine's BORDER_CONSTANT) at q -> p of the inverse affine."""
    from scipy.ndimage import map_coordinates

    frame = np.random.default_rng(1).integers(0, 256, (1, 120, 90, 3), dtype=np.uint8)
    batch, centres, scales = estimator.preprocess(frame, box)
    crop = batch[0].transpose(1, 2, 0) * STD + MEAN
    xs = (np.arange(INPUT[1]) - INPUT[1] / 2) / scales[0] + centres[0, 0]
    ys = (np.arange(INPUT[0]) - INPUT[0] / 2) / scales[0] + centres[0, 1]
    rows, cols = np.meshgrid(ys, xs, indexing="ij")
    expected = np.stack([map_coordinates(frame[0, ..., c].astype(np.float64), [rows, cols],
                                         order=1, mode="grid-constant", cval=0.0)
                         for c in range(3)], -1)
    np.testing.assert_allclose(crop, expected, atol=1e-3)


def test_fixed_peaks_decode_through_the_inverse_affine(estimator):
    """Whole frame 192x256: input (0,0) is frame (-24,-32) by hand; the rest as rtmlib."""
    frames = np.zeros((3, 256, 192, 3), np.uint8)
    keypoints, scores = estimator(frames)
    assert keypoints.shape == (3, K, 2) and keypoints.dtype == np.float32
    assert scores.shape == (3, K) and scores.dtype == np.float32
    bins, values = _peaks()
    q = bins / 2.0
    expected = _reference_inverse(q, (0, 0, 192, 256))
    np.testing.assert_allclose(keypoints[:, 1:], np.broadcast_to(expected[1:], (3, K - 1, 2)),
                               atol=1e-3)
    np.testing.assert_allclose(_reference_inverse([[0, 0], [96, 128]], (0, 0, 192, 256)),
                               [[-24, -32], [96, 128]])
    np.testing.assert_allclose(scores[:, 1:], np.broadcast_to(values[1:].min(-1), (3, K - 1)),
                               rtol=1e-6)


@pytest.mark.parametrize("box", [(40.0, 30.0, 140.0, 230.0), (10.0, 100.0, 300.0, 160.0)])
def test_fixed_peaks_with_a_box(estimator, box):
    frames = np.zeros((2, 240, 320, 3), np.uint8)
    keypoints, _ = estimator(frames, boxes=box)
    expected = _reference_inverse(_peaks()[0] / 2.0, box)
    np.testing.assert_allclose(keypoints[0, 1:], expected[1:], atol=1e-3)
    np.testing.assert_allclose(keypoints[1], keypoints[0])


def test_blob_decodes_back_onto_itself_within_a_pixel(estimator):
    """Forward warp + decoding + inverse: keypoint 0 lands on a blob drawn in the frame."""
    centres = [(40.0, 60.0), (150.0, 200.0), (96.0, 128.0), (10.0, 240.0), (181.0, 7.0)]
    frames = _blob_frames(centres, 256, 192)
    keypoints, scores = estimator(frames)  # batch_size 2: 2 + 2 + 1
    np.testing.assert_allclose(keypoints[:, TRACKER], centres, atol=1.0)
    assert (scores[:, TRACKER] > 2.0).all()  # the white blob's normalised value
    # Per-frame boxes around the blobs of a bigger frame.
    centres = [(60.0, 50.0), (250.0, 170.0), (300.0, 20.0)]
    boxes = [(x - 50, y - 40, x + 40, y + 60) for x, y in centres]
    frames = _blob_frames(centres, 240, 320)
    keypoints, _ = estimator(frames, boxes=boxes)
    np.testing.assert_allclose(keypoints[:, TRACKER], centres, atol=1.0)


def test_batching_and_a_fixed_batch_model_agree(model, tmp_path, estimator):
    centres = [(20.0 + 30 * i, 30.0 + 40 * i) for i in range(5)]
    frames = _blob_frames(centres, 256, 192)
    one_batch = WholeBodyPoseEstimator(model, batch_size=16, threads=1)
    fixed = WholeBodyPoseEstimator(_build_model(tmp_path / "b1.onnx", batch=1), threads=1)
    assert fixed.batch_size == 1
    results = [e(frames) for e in (estimator, one_batch, fixed)]
    for keypoints, scores in results[1:]:
        np.testing.assert_array_equal(keypoints, results[0][0])
        np.testing.assert_array_equal(scores, results[0][1])
    fixed3 = WholeBodyPoseEstimator(_build_model(tmp_path / "b3.onnx", batch=3), threads=1)
    keypoints, scores = fixed3(frames)  # 3 + 2 padded to 3
    np.testing.assert_array_equal(keypoints, results[0][0])


def test_dynamic_input_size_needs_input_size(tmp_path):
    pytest.importorskip("onnxruntime")
    path = _build_model(tmp_path / "dyn.onnx", dynamic_size=True)
    with pytest.raises(InvalidInputError, match="input_size"):
        WholeBodyPoseEstimator(path)
    estimator = WholeBodyPoseEstimator(path, input_size=INPUT, threads=1)
    keypoints, _ = estimator(np.zeros((1, 256, 192, 3), np.uint8))
    expected = _reference_inverse(_peaks()[0] / 2.0, (0, 0, 192, 256))
    np.testing.assert_allclose(keypoints[0, 1:], expected[1:], atol=1e-3)


def test_mean_score_mode(model):
    estimator = WholeBodyPoseEstimator(model, score="mean", threads=1)
    _, scores = estimator(np.zeros((1, 256, 192, 3), np.uint8))
    np.testing.assert_allclose(scores[0, 1:], _peaks()[1][1:].mean(-1), rtol=1e-6)


def test_pose_file_round_trip_through_import_pose(estimator, tmp_path):
    frames = _blob_frames([(90.0, 100.0)] * 4, 256, 192)
    keypoints, scores = estimator(frames)
    path = write_coco_pose(tmp_path / "clip.pose", keypoints, scores, fps=25.0, size=(256, 192))
    assert not (tmp_path / "clip.pose.tmp").exists()
    pose = read_pose_file(path)
    assert [c.name for c in pose.header.components] == ["COCO_WHOLEBODY_133"]
    assert pose.header.components[0].points == list(COCO_POINT_NAMES)
    assert (pose.header.dimensions.width, pose.header.dimensions.height) == (192, 256)
    # Score 0 (point 95) is masked by pose-format, but its coordinates are in the file.
    np.testing.assert_allclose(np.ma.getdata(pose.body.data)[:, 0], keypoints, atol=1e-4)
    np.testing.assert_allclose(pose.body.confidence[:, 0], scores)

    got = import_pose(path, size=(128, 128))
    expected = keypoints_to_imported_pose(keypoints, scores, fps=25.0, size=(128, 128))
    assert got.fps == 25.0 and got.num_frames == 4 and got.hands_3d is None
    assert got.world is None and got.source_span == (0, 4)
    np.testing.assert_array_equal(got.visible, expected.visible)
    np.testing.assert_allclose(got.keypoints, expected.keypoints, atol=1e-3)
    assert got.transform.scale == pytest.approx(expected.transform.scale, rel=1e-5)
    # Visible = score > 0.3 (and inside the output frame); the shoulders frame the clip.
    assert not (got.visible & ~(scores > COCO_MIN_SCORE)).any()
    assert not got.visible[:, [30, 31, 95]].any() and got.visible[:, [5, 6]].all()
    np.testing.assert_allclose(np.linalg.norm(got.keypoints[0, 5] - got.keypoints[0, 6]),
                               0.348 * 128, rtol=1e-4)
    # A lower threshold at import shows the low-score points (score 0 stays masked).
    low = import_pose(path, size=(128, 128), min_confidence=0.05)
    assert low.visible[:, [30, 31]].all() and not low.visible[:, 95].any()


def test_keypoints_to_imported_pose_threshold_and_resampling(estimator):
    keypoints, scores = estimator(np.zeros((10, 256, 192, 3), np.uint8))
    pose = keypoints_to_imported_pose(keypoints, scores, fps=25.0, out_fps=12.0,
                                      size=(64, 96), threshold=0.5)
    assert pose.num_frames == 5 and pose.size == (64, 96) and pose.source_fps == 25.0
    assert not (pose.visible & ~(scores[:5] > 0.5)).any()
    with pytest.raises(InvalidInputError, match="scores"):
        keypoints_to_imported_pose(keypoints, scores[:, :17], fps=25.0)
    with pytest.raises(InvalidInputError, match="no visible"):
        keypoints_to_imported_pose(keypoints, np.zeros_like(scores), fps=25.0)
    with pytest.raises(InvalidInputError, match="fps"):
        keypoints_to_imported_pose(keypoints, scores, fps=0)


def test_cli_video_to_pose(model, tmp_path, capsys):
    from signgen.cli import run_cli
    from signgen.data.synthsign.generate import write_video

    video = tmp_path / "clip.mp4"
    write_video(video, _blob_frames([(50.0 + 10 * i, 80.0) for i in range(6)], 256, 192),
                fps=25)
    out = tmp_path / "clip.pose"
    code = run_cli(main, ["--model", str(model), "--video", str(video), "--out", str(out),
                          "--threads", "1", "--batch-size", "4"])
    assert code == 0 and str(out) in capsys.readouterr().out
    got = import_pose(out, size=(128, 128))
    assert got.num_frames == 6 and got.source_fps == 25.0
    pose = read_pose_file(out)
    np.testing.assert_allclose(pose.body.data[:, 0, TRACKER].filled(np.nan),
                               [(50.0 + 10 * i, 80.0) for i in range(6)], atol=1.5)
    # User errors: one line, exit 2.
    for argv, message in (
            (["--model", str(model), "--video", str(tmp_path / "gone.mp4")], "no video"),
            (["--model", str(tmp_path / "gone.onnx"), "--video", str(video)], "no such ONNX"),
            (["--model", str(model), "--video", str(video), "--box", "5", "5", "1", "1"],
             "boxes")):
        assert run_cli(main, [*argv, "--out", str(tmp_path / "x.pose")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(video.read_bytes()[:200])
    assert run_cli(main, ["--model", str(model), "--video", str(broken), "--out",
                          str(tmp_path / "x.pose")]) == 2
    assert "cannot read video" in capsys.readouterr().err


def test_missing_and_unreadable_model_files(tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(ModelLoadError, match="no such ONNX model file") as info:
        WholeBodyPoseEstimator(tmp_path / "dw-ll_ucoco_384.onnx")
    assert "dw-ll_ucoco_384.onnx" in str(info.value)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot load"):
        WholeBodyPoseEstimator(garbage)


def test_models_with_the_wrong_outputs(tmp_path):
    pytest.importorskip("onnxruntime")
    with pytest.raises(ModelLoadError, match="17 keypoints.*133"):
        WholeBodyPoseEstimator(_build_model(tmp_path / "body17.onnx", keypoints=17))
    with pytest.raises(ModelLoadError, match="expected SimCC outputs"):
        WholeBodyPoseEstimator(_build_model(tmp_path / "one.onnx", output_names=("heat",)))
    # Unnamed outputs are taken in order, x then y: here they come y first, and their
    # lengths are no single split ratio of the input width and height.
    with pytest.raises(ModelLoadError, match="split ratio"):
        WholeBodyPoseEstimator(_build_model(tmp_path / "swap.onnx", output_names=("a", "b"),
                                            swap=True))
    with_names = WholeBodyPoseEstimator(_build_model(tmp_path / "named.onnx", swap=True))
    assert with_names._outputs == ["simcc_x", "simcc_y"]  # by name, whatever the order


@pytest.mark.parametrize("frames, boxes, message", [
    (np.zeros((2, 64, 64, 3), np.float32), None, "uint8"),
    (np.zeros((64, 64, 3), np.uint8), None, "(T,H,W,3)"),
    (np.zeros((2, 64, 64, 4), np.uint8), None, "(T,H,W,3)"),
    (np.zeros((0, 64, 64, 3), np.uint8), None, "(T,H,W,3)"),
    ([[[[0, 0, 0]]]], None, "uint8"),
    (np.zeros((2, 64, 64, 3), np.uint8), np.zeros((3, 4)), "boxes"),
    (np.zeros((2, 64, 64, 3), np.uint8), (10, 10, 5, 20), "x2 > x1"),
    (np.zeros((2, 64, 64, 3), np.uint8), (0, 0, np.nan, 20), "finite"),
])
def test_bad_frames_and_boxes(estimator, frames, boxes, message):
    with pytest.raises(InvalidInputError) as info:
        estimator(frames, boxes)
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_size": (384, 288)}, "takes (256, 192)"),
    ({"providers": ["NoSuchExecutionProvider"]}, "not available"),
    ({"batch_size": 0}, "batch_size"),
    ({"score": "max"}, "score"),
])
def test_bad_arguments(model, kwargs, message):
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        WholeBodyPoseEstimator(model, **kwargs)


def test_missing_onnxruntime_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import -> ImportError
    with pytest.raises(SignGenError, match=r"pip install 'signgen\[onnx\]'"):
        WholeBodyPoseEstimator(tmp_path / "model.onnx")
