"""FSQ autoencoder: stage-I condition embeddings <-> a few discrete tokens per frame,
plus an explicit SMPL-X / keypoint head (the avatar path).

SignViP (Sec. 3.2) compresses the multi-condition embedding of every frame into a small
grid of Finite Scalar Quantisation tokens (Mentzer et al. 2023) that a translator can
predict from text, and decodes tokens back to the embedding map that drives the video
model. The quantiser is ``vector_quantize_pytorch.FSQ`` itself (no copy)::

    embedding (N,E,h,w) --standardise (embedding_mean, embedding_scale)-->
      --conv_in, len(hidden_channels) x [stride-2 conv, res block]-->
      features (N,C,gh,gw) [+ pose encoder(SMPL-X pose) (N,C,gh,gw), with pose_input]
      [--temporal conv over frames-->] --1x1--> z (N,D,gh,gw)
    z --FSQ(levels)--> codes (N,D,gh,gw) on the lattice, indices (N,gh*gw) in [0, prod(levels))
    codes --1x1, res block [, temporal conv]--> decoded token-grid features (N,C,gh,gw)
      +--> mirror of the encoder (resize to each encoder resolution, conv, res block)
      |      --> x embedding_scale + embedding_mean --> embedding (N,E,h,w)
      +--> pose head (MLP) --> 6D rotation per joint (Zhou et al. 2019) --> axis-angle
                           --> SMPL-X full pose (N,165); COCO-WholeBody keypoints (N,133,2)

D = len(levels) (no projection inside FSQ: the 1x1 convs around it are ours), so the
codes are exactly the lattice points ``FSQ.indices_to_codes`` returns and
``decode_indices(encode(x).indices) == encode(x).codes`` bit for bit. Every stage halves
the map (rounding up), so the token grid is ``ceil(h / 2**S)`` x ``ceil(w / 2**S)`` for
S = len(hidden_channels): tiny 32x32 -> 4x4 = 16 tokens per frame.

The embedding is standardised per value (channel and position) with statistics of the
training embeddings (``set_embedding_statistics``; saved with the weights): much of a
condition map is the same in every frame (background), and without this the few tokens
must first learn to ignore that constant part before they can tell frames apart.

With ``pose_input`` the encoder also reads each frame's SMPL-X pose (the 53 posed
joints as 6D rotations, an MLP to one feature map of the token grid, added to the
encoder's features). The condition maps are 2D: a skeleton drawing and a hand render
carry little of the arms' depth: the tiny FSQ that read only the embedding (8,000 steps,
8 dev samples) put the left wrist and elbow 39 and 38 mm off, with a mean absolute error
of 26 and 30 mm in depth against 13 mm across the image. With the pose read, the tokens
carry the pose the avatar needs. Tokenising a corpus then needs its
SMPL-X motion (SynthSign's ground truth, or the fits of ``signgen.body.fitting`` for real
data); decoding (what the translator's tokens go through) needs nothing more.

Shape convention for frames and clips: every method takes a flat batch of N frames.
With temporal context (``temporal_kernel`` > 1) the rows are clip-major, row ``b*F + f``
is frame f of clip b (as for the stage-I UNet), and ``num_frames`` = F says how to cut
them; ``num_frames=None`` means the whole batch is one clip (a video being tokenised).
Without temporal context frames are independent and ``num_frames`` is only checked.
The temporal convs are residual and zero-initialised (a model starts per-frame) and pad
by repeating the edge frames, so a clip's first and last frames see themselves.

The pose head predicts, per frame, 53 rotations: global orient, 21 body joints, jaw, and
15 + 15 finger joints (SMPL-X full-pose order without the eyes, ``POSE_PARTS``); the eyes
are output as zero rotations. 6D (the first two rows of the rotation matrix,
Gram-Schmidt completed) is continuous, unlike axis-angle or quaternions, which is why it
is regressed; axis-angle is derived for SMPL-X. Keypoints are normalised to the frame:
-1 / +1 are the outer edges of the first / last pixel (``keypoints_to_pixels``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from einops import rearrange
from torch import nn
from vector_quantize_pytorch import FSQ

from signgen.errors import InvalidInputError
from signgen.precision import float32

#: The posed parts in SMPL-X full-pose order (``SMPLXParams.FULL_POSE_ORDER`` without the
#: eyes), with their number of joints.
POSE_PARTS: tuple[tuple[str, int], ...] = (
    ("global_orient", 1), ("body_pose", 21), ("jaw_pose", 1),
    ("left_hand_pose", 15), ("right_hand_pose", 15))
NUM_POSE_JOINTS = sum(n for _, n in POSE_PARTS)  # 53
#: Indices of those 53 joints among the 55 of the SMPL-X skeleton (23, 24 are the eyes).
POSE_JOINT_INDICES: tuple[int, ...] = (*range(0, 23), *range(25, 55))
FULL_POSE_DIM = 165  # 55 joints x 3
NUM_KEYPOINTS = 133  # COCO-WholeBody


# -- rotations (batched, any leading shape) ------------------------------------------------
def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """(...,3) axis-angle (radians) -> (...,3,3) rotation matrices, Rodrigues' formula
    R = I + A [v]x + B [v]x^2 with A = sin t / t, B = (1 - cos t) / t^2, t = |v|, written
    with sinc so that t -> 0 is exact (B = sinc(t/2)^2 / 2)."""
    angle = axis_angle.norm(dim=-1)[..., None, None]
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1)
    skew = skew.view(*axis_angle.shape[:-1], 3, 3)
    a = torch.sinc(angle / math.pi)
    b = 0.5 * torch.sinc(angle / (2 * math.pi)) ** 2
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * skew + b * (skew @ skew)


def _sqrt_positive(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(0, x)) with a zero (not NaN) gradient where x <= 0."""
    out = torch.zeros_like(x)
    positive = x > 0
    out[positive] = torch.sqrt(x[positive])
    return out


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """(...,3,3) rotation matrices -> (...,4) unit quaternions (w, x, y, z), w >= 0.

    Of the four algebraically equal formulas (one per largest component) the
    best-conditioned is taken per matrix, as in PyTorch3D's ``matrix_to_quaternion``
    (Shepperd 1978), so rotations near pi stay accurate."""
    m = matrix.reshape(*matrix.shape[:-2], 9)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    q_abs = _sqrt_positive(torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                                        1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1))
    candidates = torch.stack([
        torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
        torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
        torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], dim=-1),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], dim=-1),
    ], dim=-2) / (2.0 * q_abs[..., None].clamp(min=0.1))
    best = F.one_hot(q_abs.argmax(dim=-1), num_classes=4).to(matrix.dtype)
    quaternion = (candidates * best[..., None]).sum(dim=-2)
    return torch.where(quaternion[..., :1] < 0, -quaternion, quaternion)


def quaternion_to_axis_angle(quaternion: torch.Tensor) -> torch.Tensor:
    """(...,4) unit quaternions (w, x, y, z) -> (...,3) axis-angle, angle in [0, pi] when
    w >= 0: v = xyz * t / sin(t/2), t = 2 atan2(|xyz|, w) (sinc keeps t -> 0 exact)."""
    norm = quaternion[..., 1:].norm(dim=-1, keepdim=True)
    half = torch.atan2(norm, quaternion[..., :1])
    return quaternion[..., 1:] / (0.5 * torch.sinc(half / math.pi))


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(...,3,3) rotation matrices -> (...,3) axis-angle with angle in [0, pi]."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(...,6) two 3-vectors -> (...,3,3): Gram-Schmidt gives the first two rows, their
    cross product the third (Zhou et al., "On the Continuity of Rotation Representations
    in Neural Networks", CVPR 2019; PyTorch3D's row convention)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-2)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """(...,3,3) -> (...,6), the first two rows (inverse of ``rotation_6d_to_matrix`` on
    rotation matrices)."""
    return matrix[..., :2, :].reshape(*matrix.shape[:-2], 6)


# -- keypoint coordinates ------------------------------------------------------------------
def pixels_to_keypoints(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(...,2) pixel (u, v) ((0,0) = centre of the top-left pixel) -> normalised to the
    frame: -1 / +1 are the outer edges of the first / last pixel."""
    size = pixels.new_tensor([width, height])
    return (2 * pixels + 1) / size - 1


def keypoints_to_pixels(keypoints: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of ``pixels_to_keypoints``."""
    size = keypoints.new_tensor([width, height])
    return ((keypoints + 1) * size - 1) / 2


def clip_length(n: int, num_frames: int | None) -> int:
    """F for a flat batch of n clip-major frames (row ``b*F + f``; see the module doc):
    ``num_frames``, which must divide n, or n itself (one clip) when None."""
    if num_frames is None:
        return max(n, 1)
    if num_frames < 1 or n % num_frames:
        raise InvalidInputError(f"num_frames ({num_frames}) must be >= 1 and divide the "
                                f"batch of {n} frames (rows clip-major: b*F + f)")
    return num_frames


def indices_to_code_grid(quantizer: FSQ, indices: torch.Tensor, token_grid: Sequence[int],
                         device: torch.device) -> torch.Tensor:
    """(N,gh*gw) integer token indices -> (N,D,gh,gw) float lattice points of
    ``quantizer`` on ``device``; indices that are not integers, not gh*gw per frame or
    outside [0, codebook_size) are an InvalidInputError."""
    gh, gw = token_grid
    size = quantizer.codebook_size
    if not isinstance(indices, torch.Tensor) or indices.is_floating_point() \
            or indices.dtype == torch.bool:
        raise InvalidInputError("indices must be an integer tensor, got "
                                f"{getattr(indices, 'dtype', type(indices).__name__)}")
    if indices.ndim != 2 or indices.shape[1] != gh * gw:
        raise InvalidInputError(f"indices must be (N,{gh * gw}), got {tuple(indices.shape)}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= size):
        raise InvalidInputError(f"indices must lie in [0, {size}), got "
                                f"[{int(indices.min())}, {int(indices.max())}]")
    codes = quantizer.indices_to_codes(indices.to(device))  # (N,L,D)
    return rearrange(codes, "n (h w) d -> n d h w", h=gh, w=gw)


# -- building blocks -----------------------------------------------------------------------
class _ResBlock(nn.Module):
    """x + conv(SiLU(conv(SiLU(x)))), 3x3, same width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class _TemporalConv(nn.Module):
    """Residual 1D conv over the frames of each clip, per token-grid cell; zero-initialised
    and edge-replicating (see the module doc)."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2,
                              padding_mode="replicate")
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        _, _, h, w = x.shape
        y = rearrange(x, "(b f) c h w -> (b h w) c f", f=num_frames)
        y = self.conv(F.silu(y))
        return x + rearrange(y, "(b h w) c f -> (b f) c h w", h=h, w=w)


@dataclass
class FSQEncoderOutput(BaseOutput):
    """What :meth:`FSQAutoencoder.encode` returns.

    Attributes:
        codes: (N,D,gh,gw) float, the quantised lattice points (D = len(levels)); values
            in [-1,1]. Carries straight-through gradients in training.
        indices: (N,gh*gw) int64 in [0, codebook_size), row-major over the token grid.
    """

    codes: torch.Tensor = None
    indices: torch.Tensor = None


@dataclass
class FSQDecoderOutput(BaseOutput):
    """What :meth:`FSQAutoencoder.decode` returns.

    Attributes:
        embedding: (N,E,h,w) float, the reconstructed stage-I condition embedding (None
            when decoded with ``embedding=False``).
        smplx_pose: (N,165) axis-angle radians in SMPL-X full-pose order (global_orient 3,
            body 63, jaw 3, leye 3, reye 3, left hand 45, right hand 45); eyes are zeros.
        keypoints: (N,133,2) COCO-WholeBody (x, y) normalised to the frame (see
            ``keypoints_to_pixels``); may leave [-1,1] for points outside the frame.
        rotations: (N,53,3,3) the predicted rotation matrices of ``POSE_JOINT_INDICES``
            (for rotation losses; ``smplx_pose`` is derived from them).
    """

    embedding: torch.Tensor | None = None
    smplx_pose: torch.Tensor = None
    keypoints: torch.Tensor = None
    rotations: torch.Tensor = None


def pose_heads(hidden: int) -> tuple[nn.Linear, nn.Linear]:
    """The two linear heads of a pose trunk of width ``hidden``: 6D rotations of the 53
    posed joints (started at the rest pose, identity rotations, with small deviations: a
    random 6D start would put every joint at an arbitrary rotation) and COCO-WholeBody
    keypoints."""
    to_rotations = nn.Linear(hidden, NUM_POSE_JOINTS * 6)
    with torch.no_grad():
        to_rotations.weight.mul_(0.1)
        to_rotations.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(NUM_POSE_JOINTS))
    return to_rotations, nn.Linear(hidden, NUM_KEYPOINTS * 2)


def pose_outputs(hidden: torch.Tensor, to_rotations: nn.Module, to_keypoints: nn.Module
                 ) -> FSQDecoderOutput:
    """(N,hidden) pose-trunk features -> ``FSQDecoderOutput`` without an embedding:
    smplx_pose (N,165) (eyes zero), keypoints (N,133,2), rotations (N,53,3,3)."""
    n = hidden.shape[0]
    rotations = rotation_6d_to_matrix(to_rotations(hidden).view(n, NUM_POSE_JOINTS, 6))
    axis_angle = matrix_to_axis_angle(rotations)  # (N,53,3)
    eyes = axis_angle.new_zeros(n, 2, 3)
    full = torch.cat([axis_angle[:, :23], eyes, axis_angle[:, 23:]], dim=1)  # (N,55,3)
    return FSQDecoderOutput(smplx_pose=full.reshape(n, FULL_POSE_DIM),
                            keypoints=to_keypoints(hidden).view(n, NUM_KEYPOINTS, 2),
                            rotations=rotations)


@dataclass
class FSQAutoencoderOutput(BaseOutput):
    """:meth:`FSQAutoencoder.forward`: the fields of both outputs above."""

    codes: torch.Tensor = None
    indices: torch.Tensor = None
    embedding: torch.Tensor = None
    smplx_pose: torch.Tensor = None
    keypoints: torch.Tensor = None
    rotations: torch.Tensor = None


class FSQAutoencoder(ModelMixin, ConfigMixin):
    """Condition embedding map <-> FSQ tokens, with a SMPL-X pose and keypoint head.

    Args:
        embedding_channels: E, channels of the stage-I embedding map.
        embedding_size: (h, w) of the embedding map.
        hidden_channels: widths of the encoder stages; each halves h and w (rounding up),
            the decoder mirrors them.
        levels: FSQ levels per code dimension, each >= 3 (``codebook_size`` =
            their product; D = len(levels)).
        temporal_kernel: odd kernel of the temporal convs over frames on the token-grid
            features (encoder and decoder); 1 = frames independent.
        pose_hidden: width of the pose head's MLP (and of the pose encoder's).
        pose_input: the encoder also reads the frame's SMPL-X pose (see the module doc);
            ``encode`` then needs ``smplx_pose``.
    """

    @register_to_config
    def __init__(self, embedding_channels: int = 32, embedding_size: Sequence[int] = (32, 32),
                 hidden_channels: Sequence[int] = (64, 128, 128),
                 levels: Sequence[int] = (5, 5, 5, 5), temporal_kernel: int = 1,
                 pose_hidden: int = 512, pose_input: bool = False) -> None:
        super().__init__()
        size = list(embedding_size)
        widths = list(hidden_channels)
        levels = list(levels)
        if embedding_channels < 1 or len(size) != 2 or min(size) < 1:
            raise InvalidInputError("need embedding_channels >= 1 and embedding_size = "
                                    f"(h, w) >= 1, got {embedding_channels}, {size}")
        if not widths or min(widths) < 1:
            raise InvalidInputError(f"hidden_channels must be non-empty and positive, got {widths}")
        if not levels or min(levels) < 3:
            # FSQ needs preserve_symmetry for level 2; 1 would be a constant dimension.
            raise InvalidInputError(f"FSQ levels must each be >= 3, got {levels}")
        if temporal_kernel < 1 or temporal_kernel % 2 == 0:
            raise InvalidInputError(f"temporal_kernel must be odd and >= 1, got {temporal_kernel}")
        if pose_hidden < 1:
            raise InvalidInputError(f"pose_hidden must be >= 1, got {pose_hidden}")
        # Resolution of each encoder level: sizes[0] = the embedding, sizes[-1] = the grid.
        self._sizes = [tuple(size)]
        for _ in widths:
            h, w = self._sizes[-1]
            self._sizes.append(((h + 1) // 2, (w + 1) // 2))
        code_dim = len(levels)
        # Persistent buffers (saved with the weights), set by the trainer from its data.
        self.register_buffer("embedding_mean", torch.zeros(embedding_channels, *size))
        self.register_buffer("embedding_scale", torch.ones(embedding_channels, *size))
        # Encoder: level k (k >= 1) has widths[k-1] channels; level 0 has widths[0].
        self.encoder_in = nn.Conv2d(embedding_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(prev, width, 3, stride=2, padding=1), _ResBlock(width))
            for prev, width in zip([widths[0], *widths[:-1]], widths, strict=True))
        gh, gw = self._sizes[-1]
        if pose_input:
            self.pose_encoder = nn.Sequential(
                nn.Linear(NUM_POSE_JOINTS * 6, pose_hidden), nn.SiLU(),
                nn.Linear(pose_hidden, pose_hidden), nn.SiLU(),
                nn.Linear(pose_hidden, widths[-1] * gh * gw))
        self.to_code = nn.Conv2d(widths[-1], code_dim, 1)
        self.quantizer = FSQ(levels=levels, dim=code_dim)
        self.from_code = nn.Sequential(nn.Conv2d(code_dim, widths[-1], 1), _ResBlock(widths[-1]))
        if temporal_kernel > 1:
            self.encoder_temporal = _TemporalConv(widths[-1], temporal_kernel)
            self.decoder_temporal = _TemporalConv(widths[-1], temporal_kernel)
        # Decoder: up[j] goes from level S-j to S-j-1, to that level's encoder width.
        out_widths = [widths[0], *widths[:-1]][::-1]
        self.up = nn.ModuleList(
            nn.ModuleDict({"conv": nn.Conv2d(prev, width, 3, padding=1),
                           "block": _ResBlock(width)})
            for prev, width in zip([widths[-1], *out_widths[:-1]], out_widths, strict=True))
        self.decoder_out = nn.Conv2d(widths[0], embedding_channels, 3, padding=1)
        self.pose_trunk = nn.Sequential(
            nn.Flatten(), nn.Linear(widths[-1] * gh * gw, pose_hidden), nn.SiLU(),
            nn.Linear(pose_hidden, pose_hidden), nn.SiLU())
        self.to_rotations, self.to_keypoints = pose_heads(pose_hidden)

    # -- derived sizes ---------------------------------------------------------------------
    @property
    def codebook_size(self) -> int:
        """prod(levels): indices lie in [0, codebook_size)."""
        return math.prod(self.config.levels)

    @property
    def code_dim(self) -> int:
        """D, channels of ``codes`` (= len(levels))."""
        return len(self.config.levels)

    @property
    def token_grid(self) -> tuple[int, int]:
        """(gh, gw), the token grid of one frame."""
        return self._sizes[-1]

    @property
    def tokens_per_frame(self) -> int:
        return self.token_grid[0] * self.token_grid[1]

    @torch.no_grad()
    def set_embedding_statistics(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Set the per-value standardisation: ``mean`` and ``scale`` (E,h,w), scale > 0
        (typically the mean and standard deviation over training frames, floored)."""
        shape = tuple(self.embedding_mean.shape)
        if tuple(mean.shape) != shape or tuple(scale.shape) != shape:
            raise InvalidInputError(f"mean and scale must be {shape}, got "
                                    f"{tuple(mean.shape)} and {tuple(scale.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(scale).all()
                and bool((scale > 0).all())):
            raise InvalidInputError("mean must be finite and scale finite and > 0")
        self.embedding_mean.copy_(mean)
        self.embedding_scale.copy_(scale)

    # -- checks ----------------------------------------------------------------------------
    def _check_embedding(self, embedding: torch.Tensor) -> None:
        expected = (self.config.embedding_channels, *self._sizes[0])
        if (not isinstance(embedding, torch.Tensor) or embedding.ndim != 4
                or tuple(embedding.shape[1:]) != expected):
            shape = tuple(embedding.shape) if isinstance(embedding, torch.Tensor) else embedding
            raise InvalidInputError(f"embedding must be (N,{','.join(map(str, expected))}) "
                                    f"(frames flattened clip-major), got {shape}")
        if not embedding.is_floating_point():
            raise InvalidInputError(f"embedding must be a float tensor, got {embedding.dtype}")

    def _pose_features(self, smplx_pose: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """(N,165) axis-angle SMPL-X full pose -> (N,C,gh,gw) encoder features (None
        without ``pose_input``)."""
        if not self.config.pose_input:
            if smplx_pose is not None:
                raise InvalidInputError("this FSQ autoencoder was built without pose_input; "
                                        "it encodes the embedding alone (smplx_pose=None)")
            return None
        if smplx_pose is None:
            raise InvalidInputError("this FSQ autoencoder reads each frame's SMPL-X pose "
                                    "(pose_input): pass smplx_pose (N,165)")
        if (not isinstance(smplx_pose, torch.Tensor) or not smplx_pose.is_floating_point()
                or tuple(smplx_pose.shape) != (n, FULL_POSE_DIM)):
            shape = tuple(smplx_pose.shape) if isinstance(smplx_pose, torch.Tensor) else smplx_pose
            raise InvalidInputError(f"smplx_pose must be float ({n},{FULL_POSE_DIM}) axis-angle "
                                    f"(one row per embedding frame), got {shape}")
        joints = smplx_pose.to(self.device, self.dtype).view(n, -1, 3)[:, list(POSE_JOINT_INDICES)]
        gh, gw = self.token_grid
        with float32(self.device):  # cheap, and rotations want the precision
            d6 = matrix_to_rotation_6d(axis_angle_to_matrix(joints)).flatten(1)  # (N,318)
            return self.pose_encoder(d6).view(n, -1, gh, gw)

    # -- encoder ---------------------------------------------------------------------------
    def encode(self, embedding: torch.Tensor, num_frames: int | None = None,
               smplx_pose: torch.Tensor | None = None) -> FSQEncoderOutput:
        """(N,E,h,w) embedding [+ (N,165) SMPL-X pose] -> codes (N,D,gh,gw) and indices
        (N,gh*gw) int64.

        ``num_frames``: F of the clip-major rows when ``temporal_kernel`` > 1 (None = one
        clip of N frames); ignored otherwise (but must divide N). ``smplx_pose``: axis-angle
        full pose per frame, required with ``pose_input`` and refused without."""
        self._check_embedding(embedding)
        frames = clip_length(embedding.shape[0], num_frames)
        pose_features = self._pose_features(smplx_pose, embedding.shape[0])
        x = (embedding.to(self.dtype) - self.embedding_mean) / self.embedding_scale
        # channels_last, the layout oneDNN (CPU) and tensor cores prefer; the values
        # differ from row-major convolutions only by rounding.
        x = self.encoder_in(x.contiguous(memory_format=torch.channels_last))
        for stage in self.down:
            x = stage(x)
        if pose_features is not None:
            x = x + pose_features
        if self.config.temporal_kernel > 1:
            x = self.encoder_temporal(x, frames)
        z = rearrange(self.to_code(x), "n d h w -> n (h w) d")
        codes, indices = self.quantizer(z)
        gh, gw = self.token_grid
        return FSQEncoderOutput(codes=rearrange(codes, "n (h w) d -> n d h w", h=gh, w=gw),
                                indices=indices.long())

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(N,gh*gw) integer indices in [0, codebook_size) -> codes (N,D,gh,gw), exactly
        the lattice points ``encode`` returned for them."""
        return indices_to_code_grid(self.quantizer, indices, self.token_grid,
                                    self.device).to(self.dtype)

    # -- decoder ---------------------------------------------------------------------------
    def decode(self, codes: torch.Tensor, num_frames: int | None = None,
               embedding: bool = True) -> FSQDecoderOutput:
        """codes (N,D,gh,gw) -> embedding (N,E,h,w), SMPL-X pose (N,165), keypoints
        (N,133,2); ``num_frames`` as in :meth:`encode`. ``embedding=False`` skips the
        embedding decoder (most of the work; the avatar needs only the pose)."""
        expected = (self.code_dim, *self.token_grid)
        if (not isinstance(codes, torch.Tensor) or codes.ndim != 4
                or tuple(codes.shape[1:]) != expected or not codes.is_floating_point()):
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else codes
            raise InvalidInputError(f"codes must be float (N,{','.join(map(str, expected))}), "
                                    f"got {shape}")
        frames = clip_length(codes.shape[0], num_frames)
        features = self.from_code(codes.to(self.dtype))
        if self.config.temporal_kernel > 1:
            features = self.decoder_temporal(features, frames)
        decoded = self._decode_embedding(features) if embedding else None
        # The pose head in float32 under any autocast: it is small, and bfloat16 rounding
        # of the rotations alone would move the fingertips by millimetres.
        with float32(self.device):
            hidden = self.pose_trunk(features.float())
            pose = pose_outputs(hidden, self.to_rotations, self.to_keypoints)
        return FSQDecoderOutput(embedding=decoded, smplx_pose=pose.smplx_pose,
                                keypoints=pose.keypoints, rotations=pose.rotations)

    def _decode_embedding(self, features: torch.Tensor) -> torch.Tensor:
        """Decoder features (N,C,gh,gw) -> embedding (N,E,h,w)."""
        x = features
        for up, size in zip(self.up, self._sizes[-2::-1], strict=True):
            x = F.interpolate(x, size=size, mode="nearest")
            x = up["block"](F.silu(up["conv"](x)))
        x = self.decoder_out(F.silu(x)).float() * self.embedding_scale + self.embedding_mean
        return x.contiguous()  # row-major again (the convolutions ran channels_last)

    def forward(self, embedding: torch.Tensor, num_frames: int | None = None,
                smplx_pose: torch.Tensor | None = None) -> FSQAutoencoderOutput:
        """Encode then decode (N,E,h,w); see :meth:`encode` and :meth:`decode`."""
        encoded = self.encode(embedding, num_frames, smplx_pose)
        decoded = self.decode(encoded.codes, num_frames)
        return FSQAutoencoderOutput(codes=encoded.codes, indices=encoded.indices,
                                    embedding=decoded.embedding,
                                    smplx_pose=decoded.smplx_pose,
                                    keypoints=decoded.keypoints, rotations=decoded.rotations)
