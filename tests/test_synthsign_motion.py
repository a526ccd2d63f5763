"""SynthSign handshapes, arm IK and motion planning."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from signgen.body import OUTPUT_JOINT_NAMES, BodyModel
from signgen.body.skeleton import JOINT_INDEX
from signgen.data.synthsign.handshapes import (
    RELAXED,
    angles_to_hand_pose,
    hand_pose,
    handshape_angles,
)
from signgen.data.synthsign.kinematics import solve_arm
from signgen.data.synthsign.motion import MotionPlanner, SignerMotionStyle
from signgen.data.synthsign.phonology import HANDSHAPES, LOCATIONS, SignForm
from signgen.errors import InvalidInputError


@pytest.fixture(scope="module")
def body():
    return BodyModel()


@pytest.fixture(scope="module")
def planner(body):
    return MotionPlanner(body, fps=12)


def tip(out, name):
    return out.joints[:, OUTPUT_JOINT_NAMES.index(name)]


def test_handshapes_move_the_right_fingers(body):
    params = body.zero_params(3)
    for i, name in enumerate(["B", "1", "S"]):
        params.right_hand_pose[i] = torch.tensor(hand_pose(name, "right"))
    out = body(params)
    wrist = out.joints[:, JOINT_INDEX["right_wrist"]]
    reach = {f: (tip(out, f"right_{f}") - wrist).norm(dim=1) for f in ("index", "middle")}
    # B: all straight; 1: index straight, middle curled; S: both curled.
    assert reach["index"][0] == pytest.approx(reach["index"][1].item(), abs=2e-3)
    assert reach["middle"][1] < reach["middle"][0] - 0.03
    assert reach["index"][2] < reach["index"][0] - 0.03
    # Curling goes toward the palm (-Y in the T-pose), not the back of the hand.
    assert tip(out, "right_middle")[1, 1] < wrist[1, 1] - 0.02


def test_left_and_right_handshapes_are_mirror_images(body):
    params = body.zero_params(1)
    params.right_hand_pose[0] = torch.tensor(hand_pose("V", "right"))
    params.left_hand_pose[0] = torch.tensor(hand_pose("V", "left"))
    j = body(params).joints[0]
    for f in ("thumb", "index", "middle", "ring", "pinky"):
        right, left = tip_of(j, "right_" + f), tip_of(j, "left_" + f)
        np.testing.assert_allclose(left.numpy(), (right * torch.tensor([-1.0, 1, 1])).numpy(),
                                   atol=2e-3)


def tip_of(joints, name):
    return joints[OUTPUT_JOINT_NAMES.index(name)]


def test_inventory_is_distinct():
    table = np.stack([handshape_angles(n) for n in [*HANDSHAPES, RELAXED]])
    distances = np.linalg.norm(table[:, None] - table[None], axis=-1)
    assert (distances + np.eye(len(table)) * 10).min() > 0.3
    assert angles_to_hand_pose(table, "left").shape == (len(table), 45)
    with pytest.raises(ValueError, match="unknown handshape"):
        handshape_angles("Q")


def test_arm_ik_reaches_targets_with_the_requested_hand_rotation(body):
    with torch.no_grad():
        rest = body(body.zero_params(1)).joints[0, :55].numpy().astype(float)
    rng = np.random.default_rng(0)
    n = 32
    shoulder = rest[JOINT_INDEX["left_shoulder"]]
    targets = shoulder + rng.uniform([-0.3, -0.45, 0.1], [0.35, 0.25, 0.4], (n, 3))
    rotations = Rotation.random(n, random_state=2)
    sh, el, wr, reached = solve_arm("left", rest, np.repeat(shoulder[None], n, 0),
                                    Rotation.identity(n), targets, rotations)
    params = body.zero_params(n)
    for name, rot in (("left_shoulder", sh), ("left_elbow", el), ("left_wrist", wr)):
        i = JOINT_INDEX[name]
        params.body_pose[:, 3 * (i - 1):3 * i] = torch.tensor(rot.as_rotvec(), dtype=torch.float32)
    wrist = body(params).joints[:, JOINT_INDEX["left_wrist"]].numpy()
    assert np.abs(wrist - reached).max() < 2e-3
    in_reach = np.linalg.norm(reached - targets, axis=1) < 1e-9
    assert in_reach.mean() > 0.7
    assert ((sh * el * wr).inv() * rotations).magnitude().max() < 1e-6
    # The elbow is a hinge: its local rotation is about one fixed axis.
    axes = el.as_rotvec()
    axes = axes[np.linalg.norm(axes, axis=1) > 1e-3]
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    assert np.abs(np.abs(axes[:, 1]) - 1).max() < 0.05


SENTENCE = [
    ("TOMORROW", [SignForm("A", "chin", "arc_forward", "palm_side_fingers_up")]),
    ("STORE", [SignForm("O", "neutral", "twist", "palm_down_fingers_forward",
                        hands="symmetric")]),
    ("BOOK", [SignForm("B", "palm", "tap", "palm_down_fingers_forward", hands="base",
                       base_handshape="B", repeat=2)]),
    ("fs-AB", [SignForm("A", "fingerspell", "hold", "palm_out_fingers_up", duration=0.25),
               SignForm("B", "fingerspell", "hold", "palm_out_fingers_up", duration=0.25)]),
    ("NOT", [SignForm("5", "neutral", "straight_out", "palm_in_fingers_up",
                      nonmanual="head_shake")]),
]


def plan(planner, handedness="right", seed=0, **style):
    return planner.plan(SENTENCE, SignerMotionStyle(betas=(0.0,) * 10, handedness=handedness,
                                                    **style),
                        np.random.default_rng(seed), [None, None, None, None, "head_shake"])


def test_plan_is_deterministic_and_aligned(planner):
    a, b = plan(planner), plan(planner)
    assert torch.equal(a.params.full_pose(), b.params.full_pose())
    assert not torch.equal(a.params.full_pose(), plan(planner, seed=1).params.full_pose())
    assert [g for g, _, _ in a.gloss_spans] == [g for g, _ in SENTENCE]
    ends = [0]
    for _, start, end in a.gloss_spans:
        assert ends[-1] <= start < end <= a.num_frames
        ends.append(end)
    # Rest at both ends: the first and last frames are outside every stroke.
    assert a.frame_gloss[0] == -1 and a.frame_gloss[-1] == -1


def test_hands_reach_locations_and_contacts(planner, body):
    clip = plan(planner)
    out = body(clip.params)
    rest, action = planner._geometry((0.0,) * 10)
    tips = [OUTPUT_JOINT_NAMES.index(f"right_{f}") for f in ("thumb", "index", "middle",
                                                              "ring", "pinky")]
    knuckles = [JOINT_INDEX[f"right_{f}1"] for f in ("index", "middle", "ring", "pinky")]
    point = out.joints[:, tips + knuckles].mean(dim=1).detach().numpy()
    _, start, end = clip.gloss_spans[0]  # TOMORROW at the chin, arcing forward
    chin = rest[JOINT_INDEX[LOCATIONS["chin"]["anchor"]]] + LOCATIONS["chin"]["offset"]
    assert np.linalg.norm(point[start] - chin) < 0.03
    # BOOK: the dominant hand taps the palm of the base (left) hand.
    _, start, end = clip.gloss_spans[2]
    left_palm = out.joints[start:end, JOINT_INDEX["left_middle1"]].detach().numpy()
    gap = np.linalg.norm(point[start:end] - left_palm, axis=1)
    assert gap.min() < 0.09
    # STORE is symmetric: the hands mirror each other across the body's midline.
    _, start, end = clip.gloss_spans[1]
    r = out.joints[start:end, JOINT_INDEX["right_wrist"]].detach().numpy()
    l_ = out.joints[start:end, JOINT_INDEX["left_wrist"]].detach().numpy()
    np.testing.assert_allclose(l_[:, 0], -r[:, 0], atol=0.03)


def test_head_shakes_during_negation_only(planner):
    clip = plan(planner)
    head = JOINT_INDEX["head"]
    yaw = clip.params.body_pose[:, 3 * (head - 1) + 1].numpy()
    _, start, end = clip.gloss_spans[-1]
    assert np.abs(yaw[start:end]).max() > 0.12
    assert np.abs(yaw[: clip.gloss_spans[0][1]]).max() < 0.08


def test_left_handed_signers_mirror_right_handed_ones(planner, body):
    right, left = plan(planner, "right"), plan(planner, "left")
    jr, jl = body(right.params).joints[:, :55], body(left.params).joints[:, :55]
    mirror = [JOINT_INDEX[n.replace("left_", "#").replace("right_", "left_").replace(
        "#", "right_")] for n in list(JOINT_INDEX)]
    np.testing.assert_allclose(jl.detach().numpy(),
                               (jr[:, mirror] * torch.tensor([-1.0, 1, 1])).detach().numpy(),
                               atol=2e-3)


def test_speed_changes_duration(planner):
    slow, fast = plan(planner, speed=0.8), plan(planner, speed=1.25)
    assert fast.num_frames < slow.num_frames


def test_bad_inputs(planner):
    with pytest.raises(InvalidInputError, match="empty"):
        planner.plan([], SignerMotionStyle(betas=(0.0,) * 10), np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match="handedness"):
        planner.plan(SENTENCE, SignerMotionStyle(betas=(0.0,) * 10, handedness="both"),
                     np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs hands='base'"):
        SignForm("B", "palm", "tap", "palm_down_fingers_forward", hands="one")
    with pytest.raises(ValueError, match="base_handshape"):
        SignForm("B", "chest", "tap", "palm_down_fingers_forward", hands="base")
