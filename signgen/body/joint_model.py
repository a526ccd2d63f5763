"""SMPL-X output joints and their analytic Jacobian, fast enough to fit with.

:class:`JointModel` reproduces ``BodyModel``'s first 127 output joints (55 skeleton
joints, 21 vertex keypoints, 51 face landmarks; not the 17 face-contour points) from the
same tensors, running smplx's linear blend skinning on only the ~100 vertices those joints
need, so a batch of frames costs a few milliseconds instead of a full-mesh pass.  Its
``jacobian`` gives d joints / d pose and d joints / d shape in closed form, checked
against autodiff in the tests.
"""

from __future__ import annotations

import torch
from torch import nn

from signgen.body.model import OUTPUT_JOINT_NAMES, BodyModel
from signgen.body.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS
from signgen.errors import BodyModelError

#: Output joints JointModel computes: the 55 skeleton joints, 21 vertex keypoints and
#: 51 face landmarks (BodyModel's first 127 output joints; the face contour is left out).
NUM_FIT_JOINTS = 127
#: Index of every output joint name in BodyModel's 144 output joints.
OUTPUT_INDEX = {name: i for i, name in enumerate(OUTPUT_JOINT_NAMES)}
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
NUM_TRUNK_JOINTS = JOINT_INDEX["left_index1"]  # joints 0..24: body, jaw, eyes; then 2 x 15 fingers
SIDES = ("left", "right")
#: Per side: the 15 finger joints (in skeleton order) and the 5 fingertips.
HAND_OUTPUTS = {
    side: tuple(range(NUM_TRUNK_JOINTS + 15 * s, NUM_TRUNK_JOINTS + 15 * (s + 1)))
    + tuple(OUTPUT_INDEX[f"{side}_{f}"] for f in FINGERS)
    for s, side in enumerate(SIDES)}


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(...,3) -> (...,3,3) cross-product matrices: skew(a) @ b = a x b."""
    x, y, z = v.unbind(-1)
    zeros = torch.zeros_like(x)
    return torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], -1).reshape(*v.shape, 3)


def axis_angle_to_matrix(rot_vecs: torch.Tensor) -> torch.Tensor:
    """(...,3) axis-angle -> (...,3,3) rotation matrices (Rodrigues, as smplx computes it)."""
    angle = torch.linalg.norm(rot_vecs + 1e-8, dim=-1, keepdim=True)
    k = _skew(rot_vecs / angle)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device)
    return eye + torch.sin(angle)[..., None] * k + (1 - torch.cos(angle))[..., None] * k @ k


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(...,3,3) rotation matrices -> (...,3) axis-angle with angle in [0, pi] (via a unit
    quaternion, taken from the best-conditioned of its four formulas)."""
    m = matrix
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = torch.stack([
        torch.stack([1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                     m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                     1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                     m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                     m[..., 1, 2] + m[..., 2, 1],
                     1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1),
    ], -2)  # row k is 4 q_k (w, x, y, z)
    diag = torch.stack([trace, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = diag.argmax(-1)[..., None, None].expand(*diag.shape[:-1], 1, 4)
    quat = torch.gather(candidates, -2, best).squeeze(-2)
    quat = quat / torch.linalg.norm(quat, dim=-1, keepdim=True)
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    sin_half = torch.linalg.norm(quat[..., 1:], dim=-1, keepdim=True)
    return quat[..., 1:] * 2 * torch.atan2(sin_half, quat[..., :1]) / sin_half.clamp_min(1e-12)


def left_jacobian(rot_vecs: torch.Tensor) -> torch.Tensor:
    """(...,3) -> (...,3,3) left Jacobian of SO(3): exp(r + d) ~ exp(J_l(r) d) exp(r)."""
    angle = torch.linalg.norm(rot_vecs, dim=-1, keepdim=True)[..., None]
    small = angle < 1e-3
    safe = torch.where(small, torch.ones_like(angle), angle)
    a = torch.where(small, 0.5 - angle**2 / 24, (1 - torch.cos(safe)) / safe**2)
    b = torch.where(small, 1 / 6 - angle**2 / 120, (safe - torch.sin(safe)) / safe**3)
    k = _skew(rot_vecs)
    return torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device) + a * k + b * k @ k


_LEVI_CIVITA = torch.zeros(3, 3, 3)
for _i, _j, _k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
    _LEVI_CIVITA[_i, _j, _k], _LEVI_CIVITA[_i, _k, _j] = 1.0, -1.0


def _rotation_jacobian(offsets: torch.Tensor, to_world: torch.Tensor) -> torch.Tensor:
    """d point / d axis-angle from the points' offsets a (B,K,J,3) to J joints and the
    joints' (B,J,3,3) local-to-world maps M: -skew(a) @ M, as (B,K,3,J*3)."""
    # -skew(a) M = -sum_f a_f E_f with E_f[c, e] = sum_d eps[c, f, d] M[d, e]
    e = torch.einsum("cfd,bjde->bjfce", _LEVI_CIVITA, to_world)
    out = -torch.einsum("bkjf,bjfce->bkcje", offsets, e)
    return out.reshape(*out.shape[:3], -1)


class JointModel(nn.Module):
    """BodyModel's first 127 output joints (skeleton, vertex keypoints, face landmarks),
    skinning only the vertices they need, with their analytic Jacobian.

    ``forward(full_pose (B,55,3), shape (B,S+E), transl (B,3)) -> joints (B,127,3)``
    in metres, equal to ``body(params).joints[:, :127]`` up to float rounding.
    """

    def __init__(self, body: BodyModel) -> None:
        super().__init__()
        s = body.smplx
        shapedirs = torch.cat([s.shapedirs, s.expr_dirs], dim=-1)  # (V,3,S+E)
        extra = s.vertex_joint_selector.extra_joints_idxs
        lmk_faces = s.faces_tensor[s.lmk_faces_idx]  # (51,3) vertex ids
        used, inverse = torch.unique(torch.cat([extra, lmk_faces.reshape(-1)]),
                                     return_inverse=True)
        self.register_buffer("extra_pos", inverse[:len(extra)])
        self.register_buffer("lmk_pos", inverse[len(extra):].reshape(-1, 3))
        self.register_buffer("lmk_bary", s.lmk_bary_coords.clone())
        # Joints are linear in the shape coefficients: J = J_regressor (v_template + D s).
        self.register_buffer("joint_template", s.J_regressor @ s.v_template)
        self.register_buffer("joint_dirs",
                             torch.einsum("jv,vcs->jcs", s.J_regressor, shapedirs))
        self.register_buffer("v_template", s.v_template[used].clone())
        self.register_buffer("shapedirs", shapedirs[used].clone())
        posedirs = s.posedirs.reshape(s.posedirs.shape[0], -1, 3)[:, used]  # (486,N,3)
        self.has_posedirs = bool(posedirs.abs().max() > 0)
        self.register_buffer("posedirs", posedirs.reshape(posedirs.shape[0], -1).clone())
        self.register_buffer("weights", s.lbs_weights[used].clone())  # (N,55)
        self.register_buffer("parents", torch.as_tensor(PARENTS).clamp_min(0))
        subtree = torch.eye(NUM_JOINTS)  # subtree[i, k] = 1 if k is i or below i
        for k in range(NUM_JOINTS):
            p = PARENTS[k]
            while p != -1:
                subtree[p, k] = 1
                p = PARENTS[p]
        self.register_buffer("subtree", subtree)
        depth = [0] * NUM_JOINTS
        for j in range(1, NUM_JOINTS):
            depth[j] = depth[PARENTS[j]] + 1
        # The chain runs level by level (~11 batched steps) in breadth-first order.
        order = sorted(range(NUM_JOINTS), key=lambda j: depth[j])
        where = {j: i for i, j in enumerate(order)}
        self.levels = []
        for d in range(1, max(depth) + 1):
            level = [j for j in order if depth[j] == d]
            self.levels.append((torch.tensor(level),
                                torch.tensor([where[PARENTS[j]] for j in level])))
        self.register_buffer("unorder", torch.tensor([where[j] for j in range(NUM_JOINTS)]))
        self._check_hand_influence()

    def _check_hand_influence(self) -> None:
        """The Jacobian's hand blocks assume finger joints move only their own hand's 20
        outputs (finger joints and fingertips)."""
        skinned = (self.weights @ self.subtree.T > 0).float()  # (N,55) vertex moved by j
        vert_out = torch.cat([skinned[self.extra_pos],
                              skinned[self.lmk_pos].amax(1)])  # (72,55)
        moved = torch.cat([self.subtree.T, vert_out]) > 0  # (127,55)
        for s, side in enumerate(SIDES):
            fingers = slice(NUM_TRUNK_JOINTS + 15 * s, NUM_TRUNK_JOINTS + 15 * (s + 1))
            outside = moved[:, fingers].any(1)
            outside[list(HAND_OUTPUTS[side])] = False
            if outside.any():
                raise BodyModelError(f"the {side} finger joints move outputs other than the "
                                     f"{side} hand's; fitting does not support this model")

    def _pose(self, full_pose: torch.Tensor, shape: torch.Tensor):
        """Global rotations and positions of the joints, rest joints, rest vertices,
        per-joint skinning translations, blended rotations and posed vertices."""
        b = full_pose.shape[0]
        rot = axis_angle_to_matrix(full_pose)  # (B,55,3,3)
        rest = self.joint_template + torch.einsum("jcs,bs->bjc", self.joint_dirs, shape)
        rel = rest - rest[:, self.parents]
        g_rot, g_pos = rot[:, :1], rest[:, :1]  # breadth-first order while building
        for level, parent_pos in self.levels:
            p_rot = g_rot[:, parent_pos]
            g_pos = torch.cat([g_pos, g_pos[:, parent_pos]
                               + (p_rot @ rel[:, level, :, None])[..., 0]], 1)
            g_rot = torch.cat([g_rot, p_rot @ rot[:, level]], 1)
        g_rot, g_pos = g_rot[:, self.unorder], g_pos[:, self.unorder]
        verts = self.v_template + torch.einsum("vcs,bs->bvc", self.shapedirs, shape)
        if self.has_posedirs:
            feature = (rot[:, 1:] - torch.eye(3, dtype=rot.dtype, device=rot.device)).reshape(b, -1)
            verts = verts + (feature @ self.posedirs).reshape(b, -1, 3)
        # Linear blend skinning: v = sum_j w_j (G_j (v_rest - J_j) + p_j).
        g_trans = g_pos - (g_rot @ rest[..., None])[..., 0]
        blend_rot = torch.einsum("vj,bjcd->bvcd", self.weights, g_rot)
        posed = (blend_rot @ verts[..., None])[..., 0] + self.weights @ g_trans
        return g_rot, g_pos, rest, verts, g_trans, blend_rot, posed

    def _stack(self, joint_part: torch.Tensor, vert_part: torch.Tensor) -> torch.Tensor:
        """Per-joint and per-vertex quantities (B,55|N,...) -> output order (B,127,...)."""
        landmarks = torch.einsum("blf...,lf->bl...", vert_part[:, self.lmk_pos], self.lmk_bary)
        return torch.cat([joint_part, vert_part[:, self.extra_pos], landmarks], 1)

    def forward(self, full_pose: torch.Tensor, shape: torch.Tensor,
                transl: torch.Tensor) -> torch.Tensor:
        _, g_pos, _, _, _, _, posed = self._pose(full_pose, shape)
        return self._stack(g_pos, posed) + transl[:, None]

    def jacobian(self, full_pose: torch.Tensor, shape: torch.Tensor, transl: torch.Tensor):
        """Joints and their derivatives, exact except for the official model's pose
        corrective blend shapes (treated as constant; the stand-in has none).

        Returns:
            joints (B,127,3); trunk (B,127,3,75): d joints / d full_pose of joints 0..24;
            hands: {'left'|'right': (B,20,3,45)}, d (the side's 15 finger joints and 5
            fingertips) / d (its 15 finger joints' axis-angle); shape (B,127,3,S+E).
        """
        g_rot, g_pos, rest, verts, g_trans, blend_rot, posed = self._pose(full_pose, shape)
        b = full_pose.shape[0]
        # Turning joint j by w (world axis) moves output k by w x a_kj: a_kj is k's offset
        # from joint j, summed over the skinning weights of j's subtree.
        per_bone = torch.einsum("bicd,bnd->bnic", g_rot, verts) + g_trans[:, None]
        weighted = self.weights[None, :, :, None] * per_bone  # (B,N,55,3)

        def offsets(joint_rows, vert_rows, cols) -> tuple[torch.Tensor, torch.Tensor]:
            """a of skeleton outputs joint_rows (B,R,J,3) and of vertices vert_rows
            (B,V,J,3) for the joints cols."""
            sub = self.subtree[cols]
            mask = sub.T[joint_rows][None, :, :, None]
            a_joint = (g_pos[:, joint_rows, None] - g_pos[:, None, cols]) * mask
            a_vert = (torch.einsum("ji,bnic->bnjc", sub, weighted[:, vert_rows])
                      - (self.weights[vert_rows] @ sub.T)[None, ..., None] * g_pos[:, None, cols])
            return a_joint, a_vert

        trunk_cols = slice(0, NUM_TRUNK_JOINTS)
        a_joint, a_vert = offsets(slice(None), slice(None), trunk_cols)
        # A local axis-angle change d turns joint j about the world axis G_parent J_l d.
        parent_rot = torch.cat([torch.eye(3).expand(b, 1, 3, 3),
                                g_rot[:, self.parents[1:]]], 1)
        to_world = parent_rot @ left_jacobian(full_pose)  # (B,55,3,3)
        trunk = _rotation_jacobian(self._stack(a_joint, a_vert), to_world[:, trunk_cols])
        hands = {}
        for s, side in enumerate(SIDES):
            fingers = slice(NUM_TRUNK_JOINTS + 15 * s, NUM_TRUNK_JOINTS + 15 * (s + 1))
            tips = self.extra_pos[[o - NUM_JOINTS for o in HAND_OUTPUTS[side][15:]]]
            a_joint, a_vert = offsets(fingers, tips, fingers)
            hands[side] = _rotation_jacobian(torch.cat([a_joint, a_vert], 1),
                                             to_world[:, fingers])
        # Shape: rest-joint offsets rotated by the parents' rotations, summed down the tree.
        dirs = self.joint_dirs  # (55,3,S)
        step = torch.cat([dirs[:1].expand(b, -1, -1, -1),
                          parent_rot[:, 1:] @ (dirs[1:] - dirs[self.parents[1:]])], 1)
        d_joint = torch.einsum("ik,bics->bkcs", self.subtree, step)  # (B,55,3,S)
        rot_dirs = torch.einsum("bicd,ids->bics", g_rot, dirs)
        d_vert = blend_rot @ self.shapedirs + torch.einsum(
            "ni,bics->bncs", self.weights, d_joint - rot_dirs)
        joints = self._stack(g_pos, posed) + transl[:, None]
        return joints, trunk, hands, self._stack(d_joint, d_vert)
