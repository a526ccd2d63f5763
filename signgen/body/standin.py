"""Build signgen's open stand-in body model in the official SMPL-X ``.npz`` format.

The official SMPL-X files are licence-gated, so signgen ships a low-poly human made
entirely by this module (no SMPL-X data is used) and saves it with the keys, shapes
and conventions of ``SMPLX_NEUTRAL.npz``, so the unmodified ``smplx`` package loads and
poses it. Licence of the generated file: Apache-2.0, like the rest of signgen.

Geometry: every body part is a closed tube along a polyline of joints (torso, arms
with palms, fingers of three segments, legs, neck) or an ellipsoid (head, eyes, nose,
ears, brows, lips, feet). Units are metres, +Y up, the body faces +Z and its left is +X
(SMPL-X's frame). Skinning weights blend smoothly across each joint of a tube; the
joint regressor averages the ring of vertices that sits exactly on each joint, so
shape blend shapes move the joints consistently. Pose correctives (``posedirs``) are
zero: this model has none.

Extra keys (all prefixed ``signgen_``) carry what SMPL-X keeps elsewhere: the vertex
ids of the extra keypoints (nose, eyes, ears, toes, heels, fingertips; smplx's
built-in ids assume the 10,475-vertex topology), a region label per vertex (skin,
hair, shirt, ... for appearance) and a version string.

Rebuild the shipped file with ``python -m signgen.body.standin`` (deterministic).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from signgen.body.skeleton import JOINT_INDEX as J
from signgen.body.skeleton import NUM_JOINTS, PARENTS, mirror_joint

STANDIN_VERSION = "signgen-standin-1"
NUM_SHAPE = 10
NUM_EXPRESSION = 10

# Appearance regions (index = id stored per vertex). Renderers colour by region.
REGIONS: tuple[str, ...] = (
    "skin", "hair", "eye", "brow", "lips", "shirt", "trousers", "shoes", "hand",
)
R = {name: i for i, name in enumerate(REGIONS)}

# Rest-pose joint positions of the left side and the midline (metres). The right side
# is the mirror image (x -> -x). Proportions follow a 1.71 m adult in a T-pose.
_LEFT_AND_MID = {
    "pelvis": (0.0, -0.35, 0.0), "left_hip": (0.075, -0.44, 0.0),
    "spine1": (0.0, -0.24, -0.01), "left_knee": (0.095, -0.82, 0.0),
    "spine2": (0.0, -0.11, 0.0), "left_ankle": (0.09, -1.22, -0.03),
    "spine3": (0.0, -0.05, 0.01), "left_foot": (0.10, -1.285, 0.10),
    "neck": (0.0, 0.17, -0.02), "left_collar": (0.07, 0.09, -0.01),
    "head": (0.0, 0.25, 0.0), "left_shoulder": (0.18, 0.11, -0.015),
    "left_elbow": (0.44, 0.10, -0.025), "left_wrist": (0.69, 0.09, -0.025),
    "jaw": (0.0, 0.27, 0.02), "left_eye_smplhf": (0.032, 0.325, 0.094),
    "left_index1": (0.785, 0.088, 0.003), "left_index2": (0.825, 0.088, 0.004),
    "left_index3": (0.850, 0.088, 0.005),
    "left_middle1": (0.790, 0.088, -0.017), "left_middle2": (0.834, 0.088, -0.017),
    "left_middle3": (0.862, 0.088, -0.017),
    "left_ring1": (0.784, 0.088, -0.036), "left_ring2": (0.824, 0.088, -0.037),
    "left_ring3": (0.850, 0.088, -0.038),
    "left_pinky1": (0.772, 0.087, -0.053), "left_pinky2": (0.802, 0.087, -0.056),
    "left_pinky3": (0.822, 0.087, -0.058),
    "left_thumb1": (0.712, 0.078, 0.0), "left_thumb2": (0.740, 0.072, 0.022),
    "left_thumb3": (0.764, 0.070, 0.036),
}
HEAD_CENTRE = np.array([0.0, 0.31, 0.02])
# Ends of the finger chains (fingertips), beyond the third joint.
_LEFT_TIPS = {
    "index": (0.872, 0.088, 0.006), "middle": (0.886, 0.088, -0.017),
    "ring": (0.872, 0.088, -0.039), "pinky": (0.841, 0.087, -0.060),
    "thumb": (0.786, 0.068, 0.048),
}


def rest_joints() -> np.ndarray:
    """Designed rest-pose joint positions, (55, 3) metres (before regression)."""
    out = np.zeros((NUM_JOINTS, 3))
    for name, pos in _LEFT_AND_MID.items():
        i = J[name]
        out[i] = pos
        m = mirror_joint(i)
        if m != i:
            out[m] = (-pos[0], pos[1], pos[2])
    return out


@dataclass
class _Mesh:
    """Accumulates parts; per-vertex data is stored in parallel lists."""

    vertices: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    regions: list = field(default_factory=list)
    parts: list = field(default_factory=list)  # part name per vertex
    axis_points: list = field(default_factory=list)  # centre of the vertex's ring
    ring_of_joint: dict = field(default_factory=dict)  # joint -> global vertex ids
    part_names: list = field(default_factory=list)  # one per add()
    count: int = 0

    def add(self, name, verts, faces, weights, regions, centres, rings=None):
        verts = np.asarray(verts, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
        # Orient faces outward: a closed surface has positive signed volume.
        a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
        if np.einsum("ij,ij->i", a, np.cross(b, c)).sum() < 0:
            faces = faces[:, ::-1]
        self.vertices.append(verts)
        self.faces.append(faces + self.count)
        self.weights.append(np.asarray(weights, dtype=np.float64))
        self.regions.append(np.asarray(regions, dtype=np.int64))
        self.axis_points.append(np.asarray(centres, dtype=np.float64))
        self.parts += [name] * len(verts)
        self.part_names.append(name)
        for joint, ids in (rings or {}).items():
            self.ring_of_joint[joint] = np.asarray(ids) + self.count
        self.count += len(verts)

    def arrays(self):
        return (np.concatenate(self.vertices), np.concatenate(self.faces),
                np.concatenate(self.weights), np.concatenate(self.regions),
                np.array(self.parts), np.concatenate(self.axis_points))


def _orthonormal(axis, hint):
    axis = axis / np.linalg.norm(axis)
    u = hint - axis * np.dot(hint, axis)
    if np.linalg.norm(u) < 1e-6:  # hint parallel to the axis: pick any perpendicular
        u = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


def _grid_faces(n_rings: int, n_around: int, first: int = 0) -> list:
    """Quads between consecutive rings of ``n_around`` vertices, as triangles."""
    out = []
    for r in range(n_rings - 1):
        for k in range(n_around):
            a = first + r * n_around + k
            b = first + r * n_around + (k + 1) % n_around
            c, d = a + n_around, b + n_around
            out += [(a, b, d), (a, d, c)]
    return out


def _close_ends(faces: list, n_rings: int, n_around: int, pole0: int, pole1: int):
    last = (n_rings - 1) * n_around
    for k in range(n_around):
        faces.append((pole0, (k + 1) % n_around, k))
        faces.append((pole1, last + k, last + (k + 1) % n_around))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _tube(nodes, radii, joints, width_hint, n_around, rings_per_segment, regions,
          cap=1.0, blend=0.3):
    """A closed tube along a polyline with elliptical cross-sections.

    Args:
        nodes: (N, 3) polyline points. radii: (N, 2) half-width / half-depth at each node.
        joints: length-N list; ``joints[k]`` owns the segment starting at node k. An entry
            None continues the previous owner (a shaping node, not a joint). The entry for
            the last node is ignored.
        width_hint: direction of the half-width axis. regions: per-segment region id.
        cap: end-cap length as a fraction of the end radius. blend: skinning blend
            half-width around each joint node, as a fraction of the shorter segment.

    Returns vertices, faces, weights (V, 55), region ids, ring centres and
    {joint: vertex ids of the ring exactly at that joint}.
    """
    nodes = np.asarray(nodes, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    owners, cur = [], None
    for j in joints[:-1]:
        cur = j if j is not None else cur
        owners.append(cur)
    seg = np.diff(nodes, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    seg_dir = seg / seg_len[:, None]
    width_hint = np.asarray(width_hint, dtype=np.float64)

    # Ring stations: (position, half-width, half-depth, tangent, segment, node-or-None).
    stations = []
    n0 = len(nodes) - 1
    cap_angles = np.linspace(np.pi / 2, 0, 4)[1:-1]  # excludes pole and equator
    r0 = radii[0].min() * cap
    for phi in cap_angles:  # start cap, pole side first
        stations.append((nodes[0] - seg_dir[0] * r0 * np.sin(phi), radii[0] * np.cos(phi),
                         seg_dir[0], 0, None))
    for s in range(n0):
        for t in np.linspace(0, 1, rings_per_segment + 1)[:-1]:
            tangent = seg_dir[s] if t > 0 or s == 0 else seg_dir[s - 1] + seg_dir[s]
            stations.append((nodes[s] + t * seg[s], radii[s] * (1 - t) + radii[s + 1] * t,
                             tangent / np.linalg.norm(tangent), s, s if t == 0 else None))
    stations.append((nodes[-1], radii[-1], seg_dir[-1], n0 - 1, n0))
    r1 = radii[-1].min() * cap
    for phi in cap_angles[::-1]:
        stations.append((nodes[-1] + seg_dir[-1] * r1 * np.sin(phi), radii[-1] * np.cos(phi),
                         seg_dir[-1], n0 - 1, None))

    ang = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    verts, centres, seg_of, rings = [], [], [], {}
    # Position of each vertex along the polyline (for skin blending).
    arc = np.concatenate([[0.0], np.cumsum(seg_len)])
    arc_of = []
    for pos, (rw, rd), tangent, s, node in stations:
        u, v = _orthonormal(tangent, width_hint)
        ring = pos + rw * np.cos(ang)[:, None] * u + rd * np.sin(ang)[:, None] * v
        if node is not None and node < len(joints) and joints[node] is not None:
            rings[joints[node]] = np.arange(len(verts), len(verts) + n_around)
        verts += list(ring)
        centres += [pos] * n_around
        seg_of += [s] * n_around
        arc_of += [arc[s] + np.dot(pos - nodes[s], seg_dir[s])] * n_around
    n_rings = len(stations)
    faces = _grid_faces(n_rings, n_around)
    pole0, pole1 = len(verts), len(verts) + 1
    verts += [nodes[0] - seg_dir[0] * r0, nodes[-1] + seg_dir[-1] * r1]
    centres += [nodes[0], nodes[-1]]
    seg_of += [0, n0 - 1]
    arc_of += [arc[0] - r0, arc[-1] + r1]
    _close_ends(faces, n_rings, n_around, pole0, pole1)

    weights = np.zeros((len(verts), NUM_JOINTS))
    arc_of = np.asarray(arc_of)
    for i, s in enumerate(seg_of):
        weights[i, owners[s]] = 1.0
    # Blend across every node where ownership changes.
    for k in range(1, n0):
        if owners[k] == owners[k - 1]:
            continue
        half = blend * min(seg_len[k - 1], seg_len[k])
        w_next = _smoothstep((arc_of - arc[k] + half) / (2 * half))
        near = np.abs(arc_of - arc[k]) < half
        weights[near] = 0.0
        weights[near, owners[k - 1]] = 1 - w_next[near]
        weights[near, owners[k]] += w_next[near]
    region = np.asarray(regions)[np.asarray(seg_of)]
    return np.asarray(verts), faces, weights, region, np.asarray(centres), rings


def _ellipsoid(centre, radii, n_rings, n_around, joint, region, axes=None):
    """A UV ellipsoid with its poles along ``axes[1]`` (the local 'up')."""
    centre = np.asarray(centre, dtype=np.float64)
    axes = np.eye(3) if axes is None else np.asarray(axes, dtype=np.float64)
    theta = np.linspace(0, np.pi, n_rings + 2)[1:-1]
    phi = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    local = np.stack([np.sin(t) * np.sin(p) * radii[0], np.cos(t) * radii[1],
                      np.sin(t) * np.cos(p) * radii[2]], axis=-1).reshape(-1, 3)
    verts = centre + local @ np.asarray(axes)
    verts = np.concatenate([verts, centre + np.array([[0, radii[1], 0], [0, -radii[1], 0]])
                            @ np.asarray(axes)])
    faces = _grid_faces(n_rings, n_around)
    _close_ends(faces, n_rings, n_around, len(verts) - 2, len(verts) - 1)
    weights = np.zeros((len(verts), NUM_JOINTS))
    weights[:, joint] = 1.0
    regions = np.full(len(verts), region)
    return verts, faces, weights, regions, np.repeat(centre[None], len(verts), 0)


def _build_left_and_mid(joints: np.ndarray) -> tuple[_Mesh, _Mesh]:
    """Parts of the midline (``mid``) and of the left side (``left``, mirrored later)."""
    mid, left = _Mesh(), _Mesh()
    jp = {name: joints[i] for name, i in J.items()}
    z_axis = np.array([0.0, 0.0, 1.0])

    # Torso: pelvis -> spine1 -> spine2 -> spine3 -> upper chest -> neck base.
    upper_chest = np.array([0.0, 0.11, -0.015])
    mid.add("torso", *_tube(
        [jp["pelvis"] + [0, -0.04, 0], jp["pelvis"], jp["spine1"], jp["spine2"], jp["spine3"],
         upper_chest, jp["neck"] + [0, -0.02, 0]],
        [(0.165, 0.105), (0.17, 0.11), (0.145, 0.095), (0.145, 0.10), (0.16, 0.105),
         (0.185, 0.095), (0.07, 0.06)],
        [J["pelvis"], J["pelvis"], J["spine1"], J["spine2"], J["spine3"], None, None],
        [1.0, 0.0, 0.0], 32, 3, [R["trousers"], R["shirt"], R["shirt"], R["shirt"],
                                  R["shirt"], R["shirt"]], cap=0.6))
    mid.add("neck", *_tube(
        [jp["neck"] + [0, -0.03, 0], jp["neck"], jp["head"], jp["head"] + [0, 0.03, 0.01]],
        [(0.052, 0.05), (0.05, 0.048), (0.047, 0.045), (0.045, 0.045)],
        [J["neck"], J["neck"], J["head"], None], [1.0, 0, 0], 20, 2,
        [R["skin"]] * 3, cap=0.5))

    # Head: an ellipsoid; the lower front (chin) follows the jaw.
    head_c = HEAD_CENTRE
    hv, hf, hw, hr, hc = _ellipsoid(head_c, (0.078, 0.105, 0.095), 22, 32, J["head"], R["skin"])
    mouth_y = 0.258
    front = _smoothstep((hv[:, 2] - head_c[2] + 0.01) / 0.04)
    below = _smoothstep((mouth_y - 0.004 - hv[:, 1]) / 0.012)
    w_jaw = front * below
    hw[:, J["head"]] = 1 - w_jaw
    hw[:, J["jaw"]] = w_jaw
    rel = hv - head_c
    hair = (rel[:, 1] > 0.045) & (rel[:, 2] < 0.07) | (rel[:, 2] < -0.02) & (rel[:, 1] > -0.04)
    hr[hair] = R["hair"]
    mid.add("head", hv, hf, hw, hr, hc)
    # Lips: upper half with the head, lower half with the jaw, so the mouth opens.
    lv, lf, lw, lr, lc = _ellipsoid((0.0, mouth_y, 0.102), (0.026, 0.009, 0.011), 6, 16,
                                    J["head"], R["lips"])
    lower = _smoothstep((mouth_y - lv[:, 1]) / 0.006 + 0.5)
    lw[:, J["head"]] = 1 - lower
    lw[:, J["jaw"]] = lower
    mid.add("lips", lv, lf, lw, lr, lc)
    mid.add("nose", *_ellipsoid((0.0, 0.292, 0.112), (0.012, 0.024, 0.018), 6, 10,
                                J["head"], R["skin"]))

    # Left side -----------------------------------------------------------------
    left.add("left_eye", *_ellipsoid(jp["left_eye_smplhf"], (0.0125, 0.0125, 0.0125), 6, 10,
                                     J["left_eye_smplhf"], R["eye"]))
    left.add("left_brow", *_ellipsoid((0.035, 0.349, 0.097), (0.021, 0.0045, 0.007), 3, 10,
                                      J["head"], R["brow"]))
    left.add("left_ear", *_ellipsoid((0.079, 0.312, 0.008), (0.01, 0.027, 0.017), 5, 10,
                                     J["head"], R["skin"]))
    # Arm with the palm: collar -> shoulder -> elbow -> wrist -> knuckles.
    knuckles = np.array([0.782, 0.088, -0.025])
    left.add("left_arm", *_tube(
        [jp["left_collar"], jp["left_shoulder"], (0.31, 0.105, -0.02), jp["left_elbow"],
         (0.57, 0.095, -0.025), jp["left_wrist"], (0.735, 0.088, -0.025), knuckles],
        [(0.05, 0.05), (0.055, 0.057), (0.047, 0.05), (0.038, 0.04), (0.036, 0.031),
         (0.028, 0.021), (0.040, 0.016), (0.044, 0.013)],
        [J["left_collar"], J["left_shoulder"], None, J["left_elbow"], None, J["left_wrist"],
         None, None], z_axis, 16, 3,
        [R["shirt"]] * 5 + [R["hand"]] * 2, cap=0.6))
    for finger, radius in (("index", 0.0085), ("middle", 0.009), ("ring", 0.0085),
                           ("pinky", 0.0075), ("thumb", 0.011)):
        names = [f"left_{finger}{k}" for k in (1, 2, 3)]
        v, f, w, r, c, rings = _tube(
            [jp[n] for n in names] + [_LEFT_TIPS[finger]],
            [(radius * 1.1, radius), (radius, radius * 0.9), (radius * 0.9, radius * 0.8),
             (radius * 0.8, radius * 0.7)],
            [J[n] for n in names] + [None], z_axis if finger != "thumb" else [0, 1.0, 0],
            8, 2, [R["hand"]] * 3, cap=1.0, blend=0.35)
        left.add(f"left_{finger}", v, f, w, r, c, rings)
    left.add("left_leg", *_tube(
        [jp["left_hip"], (0.085, -0.62, 0.005), jp["left_knee"], (0.095, -0.97, -0.02),
         jp["left_ankle"]],
        [(0.08, 0.085), (0.07, 0.072), (0.05, 0.052), (0.052, 0.055), (0.034, 0.036)],
        [J["left_hip"], None, J["left_knee"], None, J["left_ankle"]], z_axis, 16, 3,
        [R["trousers"]] * 4, cap=0.8))
    # Foot: an ellipsoid lying along +Z, heel with the ankle, toes with the foot joint.
    foot_axes = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # local up = +Z
    fv, ff, fw, fr, fc = _ellipsoid((0.095, -1.27, 0.05), (0.045, 0.125, 0.033), 10, 14,
                                    J["left_ankle"], R["shoes"], axes=foot_axes)
    w_toes = _smoothstep((fv[:, 2] - jp["left_foot"][2] + 0.03) / 0.06)
    fw[:, J["left_ankle"]] = 1 - w_toes
    fw[:, J["left_foot"]] = w_toes
    left.add("left_foot", fv, ff, fw, fr, fc)
    return mid, left


def _mirror(mesh: _Mesh) -> _Mesh:
    """Right-side copy of a left-side mesh (x -> -x, joints swapped, winding flipped)."""
    out = _Mesh()
    perm = [mirror_joint(j) for j in range(NUM_JOINTS)]
    flip = np.array([-1.0, 1.0, 1.0])
    for v, f, w, r, c, name in zip(mesh.vertices, mesh.faces, mesh.weights, mesh.regions,
                                   mesh.axis_points, mesh.part_names, strict=True):
        first = f.min()
        w_m = np.zeros_like(w)
        w_m[:, perm] = w
        out.add(name.replace("left_", "right_"), v * flip, f[:, ::-1] - first, w_m, r, c * flip)
    out.ring_of_joint = {mirror_joint(j): ids for j, ids in mesh.ring_of_joint.items()}
    return out


def _merge(*meshes: _Mesh):
    """Concatenate meshes; returns arrays plus remapped rings and tip ids per mesh."""
    out, offsets, rings = _Mesh(), [], {}
    for m in meshes:
        offsets.append(out.count)
        for v, f, w, r, c, name in zip(m.vertices, m.faces, m.weights, m.regions,
                                       m.axis_points, m.part_names, strict=True):
            out.add(name, v, f - f.min(), w, r, c)
        for j, ids in m.ring_of_joint.items():
            rings[j] = ids + offsets[-1]
    return out, offsets, rings


def _regress(point, candidates: np.ndarray, ridge: float = 1e-3) -> np.ndarray:
    """Non-negative weights summing to 1 with ``weights @ candidates ~= point``."""
    a = np.vstack([candidates.T, np.full(len(candidates), 10.0)])
    b = np.concatenate([point, [10.0]])
    a = np.vstack([a, ridge * np.eye(len(candidates))])
    b = np.concatenate([b, np.zeros(len(candidates))])
    w, _ = nnls(a, b, maxiter=5000)
    return w / w.sum()


def _face_bary(point, vertices, faces, allowed):
    """The face (among ``allowed``) nearest to ``point`` and the barycentrics of the
    point's projection onto it, clipped to the triangle."""
    a, b, c = (vertices[faces[allowed, k]] for k in range(3))
    centroid = (a + b + c) / 3
    best = allowed[np.argmin(np.linalg.norm(centroid - point, axis=1))]
    ta, tb, tc = vertices[faces[best]]
    m = np.stack([tb - ta, tc - ta], axis=1)
    uv, *_ = np.linalg.lstsq(m, point - ta, rcond=None)
    bary = np.clip(np.array([1 - uv.sum(), uv[0], uv[1]]), 0, None)
    return best, bary / bary.sum()


def _ibug_face_points() -> np.ndarray:
    """51 ibug-68 landmarks (points 17..67) on the stand-in face, subject's right = -x.

    Order: right brow (outer->inner), left brow (inner->outer), nose bridge (4, top->
    bottom), nostrils (5, right->left), right eye (6), left eye (6), outer lip (12,
    from the right corner over the top), inner lip (8)."""
    pts = []
    for x in np.linspace(-0.052, -0.016, 5):
        pts.append((x, 0.352 - 8 * (x + 0.034) ** 2, 0.1))
    for x in np.linspace(0.016, 0.052, 5):
        pts.append((x, 0.352 - 8 * (x - 0.034) ** 2, 0.1))
    for y in np.linspace(0.33, 0.285, 4):
        pts.append((0.0, y, 0.105 + (0.33 - y) * 0.55))
    for x in np.linspace(-0.014, 0.014, 5):
        pts.append((x, 0.275, 0.118 - 30 * x * x))
    # Right eye: outer corner first; left eye: inner corner first. Both run left to
    # right along the top, then back along the bottom, so one ring serves both.
    eye_ring = [(-0.012, 0), (-0.005, 0.005), (0.005, 0.005), (0.012, 0), (0.005, -0.005),
                (-0.005, -0.005)]
    for cx in (-0.032, 0.032):
        for dx, dy in eye_ring:
            pts.append((cx + dx, 0.325 + dy, 0.107))
    outer = [(-0.026, 0), (-0.016, 0.006), (-0.006, 0.009), (0, 0.008), (0.006, 0.009),
             (0.016, 0.006), (0.026, 0), (0.016, -0.007), (0.006, -0.009), (0, -0.0095),
             (-0.006, -0.009), (-0.016, -0.007)]
    for dx, dy in outer:
        pts.append((dx, 0.258 + dy, 0.11))
    inner = [(-0.02, 0), (-0.007, 0.002), (0, 0.002), (0.007, 0.002), (0.02, 0),
             (0.007, -0.002), (0, -0.002), (-0.007, -0.002)]
    for dx, dy in inner:
        pts.append((dx, 0.258 + dy, 0.112))
    return np.asarray(pts)


def _shape_and_expression_dirs(v, parts, centres, joints) -> np.ndarray:
    """(V, 3, 20) blend shapes: 10 body-shape betas, then 10 expression components.

    One unit of each beta is a plausible one-standard-deviation change:
    0 stature, 1 girth, 2 shoulder width, 3 arm length, 4 leg length, 5 head size,
    6 hand size, 7 torso length, 8 chest depth, 9 hip width. Expressions:
    0 smile, 1 brows raised, 2 brows furrowed, 3 lips pucker, 4 cheeks puffed,
    5 mouth wide, 6 lower lip raised, 7 nose wrinkle, 8 left brow up, 9 right brow up.
    """
    d = np.zeros((len(v), 3, NUM_SHAPE + NUM_EXPRESSION))
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    sx = np.sign(x)
    is_ = {name: np.char.startswith(parts, name) for name in
           ("torso", "neck", "head", "lips", "nose", "left_", "right_")}
    side_part = np.char.partition(parts, "_")[:, 2]
    limb = np.isin(side_part, ["arm", "leg"])
    hand = np.isin(side_part, ["index", "middle", "ring", "pinky", "thumb"])
    headish = is_["head"] | is_["lips"] | is_["nose"] | np.isin(side_part, ["eye", "brow", "ear"])
    pelvis, head_c = joints[J["pelvis"]], HEAD_CENTRE
    d[:, :, 0] = 0.06 * (v - pelvis)
    girth = is_["torso"] | limb | is_["neck"]
    d[girth, :, 1] = 0.12 * (v - centres)[girth]
    arm_side = np.abs(x) > 0.12
    d[:, 0, 2] = 0.02 * sx * _smoothstep((np.abs(x) - 0.05) / 0.12) * (y > -0.1)
    d[:, 0, 3] = 0.08 * sx * np.clip(np.abs(x) - 0.18, 0, None) * arm_side * (y > -0.2)
    leg = y < joints[J["left_hip"], 1]
    d[leg, 1, 4] = -0.08 * (joints[J["left_hip"], 1] - y[leg])
    d[headish, :, 5] = 0.08 * (v - head_c)[headish]
    hand_like = hand | (np.abs(x) > joints[J["left_wrist"], 0])
    wrist = joints[np.where(x > 0, J["left_wrist"], J["right_wrist"])]
    d[hand_like, :, 6] = 0.1 * (v - wrist)[hand_like]
    d[:, 1, 7] = 0.06 * np.clip(y - pelvis[1], 0, joints[J["neck"], 1] - pelvis[1])
    chest = is_["torso"] & (y > joints[J["spine2"], 1]) & (z > 0)
    d[chest, 2, 8] = 0.15 * z[chest]
    hips = (is_["torso"] | leg) & (y < joints[J["spine1"], 1])
    d[hips, 0, 9] = 0.1 * x[hips]

    # Expressions: smooth displacement fields around facial features.
    face = headish
    e = NUM_SHAPE

    def bump(cx, cy, radius):
        return face * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2)) * (z > 0.05)

    mouth = bump(0, 0.258, 0.02)
    corners = bump(-0.026, 0.258, 0.012) + bump(0.026, 0.258, 0.012)
    brows = bump(-0.035, 0.349, 0.02) + bump(0.035, 0.349, 0.02)
    d[:, 0, e + 0] = 0.004 * sx * corners
    d[:, 1, e + 0] = 0.005 * corners
    d[:, 1, e + 1] = 0.007 * brows
    d[:, 0, e + 2] = -0.004 * sx * brows
    d[:, 1, e + 2] = -0.004 * brows
    d[:, 2, e + 3] = 0.008 * mouth
    d[:, 0, e + 3] = -0.1 * x * mouth
    cheeks = bump(-0.045, 0.27, 0.02) + bump(0.045, 0.27, 0.02)
    d[:, 0, e + 4] = 0.008 * sx * cheeks
    d[:, 2, e + 4] = 0.004 * cheeks
    d[:, 0, e + 5] = 0.2 * x * mouth
    lower_lip = mouth * (y < 0.258)
    d[:, 1, e + 6] = 0.004 * lower_lip
    d[:, 1, e + 7] = 0.004 * bump(0, 0.29, 0.015)
    d[:, 1, e + 8] = 0.008 * bump(0.035, 0.349, 0.02)
    d[:, 1, e + 9] = 0.008 * bump(-0.035, 0.349, 0.02)
    return d


def build_standin() -> dict[str, np.ndarray]:
    """All arrays of the stand-in ``SMPLX_NEUTRAL.npz`` (deterministic)."""
    joints0 = rest_joints()
    mid, left = _build_left_and_mid(joints0)
    right = _mirror(left)
    mesh, offsets, rings = _merge(mid, left, right)
    v, f, w, regions, parts, centres = mesh.arrays()
    n_v = len(v)

    # Joint regressor: the ring at each joint, else a sparse convex combination of the
    # nearby vertices of the part that owns the joint.
    regressor = np.zeros((NUM_JOINTS, n_v))
    eye_parts = {J["left_eye_smplhf"]: "left_eye", J["right_eye_smplhf"]: "right_eye"}
    for j in range(NUM_JOINTS):
        ids = rings.get(j)
        if ids is not None:
            regressor[j, ids] = 1.0 / len(ids)
            continue
        part = eye_parts.get(j) or {J["jaw"]: "head", J["left_foot"]: "left_foot",
                                    J["right_foot"]: "right_foot"}[j]
        cand = np.flatnonzero(parts == part)
        if part.endswith("eye"):  # the eye's centre is the mean of its own vertices
            regressor[j, cand] = 1.0 / len(cand)
        else:  # an interior point: a convex combination of the whole part's vertices
            regressor[j, cand] = _regress(joints0[j], v[cand])
    joints = regressor @ v

    # Extra keypoint vertices (smplx's VertexJointSelector names).
    def extreme(part, direction, among=None):
        cand = np.flatnonzero(parts == part) if among is None else among
        return int(cand[np.argmax(v[cand] @ np.asarray(direction, dtype=float))])

    vertex_ids = {
        "nose": extreme("nose", [0, -0.3, 1]),
        "reye": extreme("right_eye", [0, 0, 1]), "leye": extreme("left_eye", [0, 0, 1]),
        "rear": extreme("right_ear", [-1, 0, 0]), "lear": extreme("left_ear", [1, 0, 0]),
    }
    for side, sx in (("L", 1.0), ("R", -1.0)):
        foot = "left_foot" if sx > 0 else "right_foot"
        vertex_ids[f"{side}BigToe"] = extreme(foot, [-sx * 0.3, 0, 1])
        vertex_ids[f"{side}SmallToe"] = extreme(foot, [sx * 0.5, 0, 1])
        vertex_ids[f"{side}Heel"] = extreme(foot, [0, -0.3, -1])
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            part = f"{'left' if sx > 0 else 'right'}_{finger}"
            tip_direction = [sx, 0, 0.4 if finger == "thumb" else 0.0]
            vertex_ids[f"{side.lower()}{finger}"] = extreme(part, tip_direction)

    # Static face landmarks (51) and a face contour (17, the same for every yaw bin).
    head_faces = np.flatnonzero(np.isin(parts[f[:, 0]], ["head", "lips", "nose"]))
    head_c = HEAD_CENTRE
    lmk = [_face_bary(p, v, f, head_faces) for p in _ibug_face_points()]
    head_only = np.flatnonzero(parts[f[:, 0]] == "head")
    contour = []
    for a in np.linspace(-np.pi / 2, np.pi / 2, 17):  # subject's right ear -> chin -> left
        p = head_c + np.array([0.078 * np.sin(a) * 0.98, -0.045 - 0.06 * np.cos(a),
                               0.095 * np.cos(a) * 0.75])
        contour.append(_face_bary(p, v, f, head_only))
    dyn_idx = np.tile(np.array([c[0] for c in contour])[None], (79, 1))
    dyn_bary = np.tile(np.stack([c[1] for c in contour])[None], (79, 1, 1))

    hands_mean_l = np.zeros((15, 3))
    hands_mean_l[:, 2] = -0.15  # a relaxed curl: left-hand fingers flex about -Z
    hands_mean_l[12:, :] = (0.0, 0.05, -0.05)  # thumb
    hands_mean_r = hands_mean_l * np.array([1.0, -1.0, -1.0])  # mirror of an axis-angle

    kintree = np.array([PARENTS, list(range(NUM_JOINTS))], dtype=np.int64)
    kintree[0, 0] = 4294967295  # the official files store the root's parent as uint32(-1)
    names = sorted(vertex_ids)
    return {
        "v_template": v.astype(np.float32),
        "f": f.astype(np.uint32),
        "J_regressor": regressor.astype(np.float32),
        "kintree_table": kintree,
        "weights": w.astype(np.float32),
        "shapedirs": _shape_and_expression_dirs(v, parts, centres, joints).astype(np.float32),
        "posedirs": np.zeros((n_v, 3, 9 * (NUM_JOINTS - 1)), dtype=np.float32),
        "hands_componentsl": np.eye(45, dtype=np.float32),
        "hands_componentsr": np.eye(45, dtype=np.float32),
        "hands_meanl": hands_mean_l.reshape(-1).astype(np.float32),
        "hands_meanr": hands_mean_r.reshape(-1).astype(np.float32),
        "lmk_faces_idx": np.array([lm[0] for lm in lmk], dtype=np.int64),
        "lmk_bary_coords": np.stack([lm[1] for lm in lmk]).astype(np.float32),
        "dynamic_lmk_faces_idx": dyn_idx.astype(np.int64),
        "dynamic_lmk_bary_coords": dyn_bary.astype(np.float32),
        "signgen_vertex_id_names": np.array(names),
        "signgen_vertex_ids": np.array([vertex_ids[n] for n in names], dtype=np.int64),
        "signgen_vertex_regions": regions.astype(np.uint8),
        "signgen_region_names": np.array(REGIONS),
        "signgen_version": np.array(STANDIN_VERSION),
    }


def save_standin(out_dir: str | Path) -> Path:
    """Write ``SMPLX_NEUTRAL.npz`` into ``out_dir`` and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "SMPLX_NEUTRAL.npz"
    tmp = out_dir / "SMPLX_NEUTRAL.tmp.npz"
    np.savez_compressed(tmp, **build_standin())
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="assets/body_models/smplx",
                        help="folder to write SMPLX_NEUTRAL.npz into")
    args = parser.parse_args(argv)
    path = save_standin(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
